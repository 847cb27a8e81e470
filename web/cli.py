"""The ``hazardloop`` command line: a click group whose commands each open their own unit of work.

Settings come from :meth:`engine.config.Settings.from_env` (or a :class:`Settings` passed as
click's ``obj``, which is how tests call it). Errors the engine raises on purpose, and bad
configuration, are printed as one line on stderr with a non-zero exit status, never a traceback:
exit 2 for bad input (unknown user, refused definition, missing file), 1 for a failed check.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import signal
import socket
import threading
import unicodedata
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import NoReturn
from typing import ParamSpec
from typing import TypeVar

import click
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import admin as engine_admin
from engine import calendar as workcal
from engine import db as dbmod
from engine import deadlines
from engine import definitions
from engine import demo
from engine import design
from engine import inspections
from engine import migration
from engine import policy
from engine import scheduler
from engine import sectors
from engine.access import load_actor
from engine.config import Settings
from engine.errors import DefinitionInvalid
from engine.errors import EngineError
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.events import count_events
from engine.events import verify_chain
from engine.models import DefinitionVersion
from engine.models.org import ROLE_LABELS
from engine.runtime import EngineContext
from engine.scheduler import RunResult
from engine.tasklist import inbox
from notifiers import Channel
from notifiers.dispatcher import DispatchResult
from notifiers.dispatcher import build_channels
from notifiers.dispatcher import dispatch_due
from notifiers.dispatcher import list_messages
from notifiers.dispatcher import retry_message

from .auth import hash_password
from .auth import make_hasher

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class CliError(click.ClickException):
    """A one-line error on stderr and an exit status (2: bad input or configuration, 1: failure)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"错误：{self.format_message()}", err=True)


class _State:
    """What the commands of one invocation share; the engine is created on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._ctx: EngineContext | None = None
        self._channels: dict[str, Channel] | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = dbmod.make_engine(self.settings.database_url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = dbmod.make_sessionmaker(self.engine)
        return self._sessions

    @property
    def ctx(self) -> EngineContext:
        if self._ctx is None:
            ctx = EngineContext(settings=self.settings)
            try:
                ctx.audit_key  # noqa: B018 - load it now, so a missing key is a config error
            except (RuntimeError, OSError) as exc:
                raise CliError(f"配置错误：{exc}") from exc
            self._ctx = ctx
        return self._ctx

    @property
    def channels(self) -> dict[str, Channel]:
        """The notification channels of HAZARDLOOP_NOTIFY_CHANNELS, built once per process."""
        if self._channels is None:
            try:
                self._channels = build_channels(self.settings, self.sessions)
            except ValueError as exc:
                raise CliError(f"配置错误：{exc}") from exc
        return self._channels

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn the engine's deliberate errors and unusable databases into :class:`CliError`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except DefinitionInvalid as exc:
            raise CliError(f"流程定义被拒绝：{exc}") from exc
        except EngineError as exc:
            raise CliError(str(exc)) from exc
        except (ArgumentError, NoSuchModuleError) as exc:
            raise CliError(f"数据库地址无效（DATABASE_URL）：{exc}") from exc
        except OperationalError as exc:
            raise CliError(
                f"数据库不可用：{exc.orig or exc}\n（数据库是否已启动？是否已运行 hazardloop init？）",
                exit_code=1,
            ) from exc

    return wrapper


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<无效地址>"


# --- output helpers -------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Terminal columns of ``text``: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(_width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)]
        return (indent + "  ".join(padded)).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _local(ctx: EngineContext, when: dt.datetime | None) -> str:
    return when.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M") if when is not None else "—"


TASK_HEADERS = ("任务ID", "编号", "任务", "隐患标题", "期限", "逾期", "认领")


def _task_rows(state: _State, username: str) -> tuple[str, list[tuple[str, ...]]]:
    """The user's inbox as table rows, read in one unit of work.

    :raises NotFound: unknown or inactive user.
    """
    ctx = state.ctx
    now = ctx.clock.now()
    with state.sessions.begin() as session:
        actor = load_actor(session, username=username)
        rows = []
        for item in inbox(session, actor):
            overdue = item.hazard.overdue or (item.due_at is not None and item.due_at < now)
            if item.assignee_id is None:
                claimed = "待认领"
            elif item.assignee_id == actor.user_id:
                claimed = "本人"
            else:
                claimed = "他人"
            rows.append(
                (
                    str(item.id),
                    item.hazard.number,
                    item.title,
                    item.hazard.title,
                    _local(ctx, item.due_at),
                    "逾期" if overdue else "",
                    claimed,
                )
            )
    return actor.display_name, rows


def _echo_tasks(state: _State, username: str, indent: str = "") -> None:
    display, rows = _task_rows(state, username)
    if not rows:
        click.echo(f"{indent}{username} {display}：暂无待办任务")
        return
    click.echo(f"{indent}{username} {display}：待办 {len(rows)} 项")
    for line in _table(TASK_HEADERS, rows, indent=indent + "  "):
        click.echo(line)


def _run_summary(result: RunResult) -> str:
    r = result
    text = f"到期 {r.due} 个，已触发 {r.fired}，失败 {r.failed}，转入死信 {r.dead}"
    if r.reclaimed:
        text += f"，接管过期租约 {r.reclaimed}"
    if r.released:
        text += f"，交还 {r.released}"
    return text


# --- the group ------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(click_ctx: click.Context) -> None:
    """hazardloop — 隐患排查治理闭环 (work-safety hazard rectification closed loop).

    Configuration comes from HAZARDLOOP_* variables and DATABASE_URL (see README.md).
    """
    if isinstance(click_ctx.obj, _State):
        return
    settings = click_ctx.obj if isinstance(click_ctx.obj, Settings) else None
    if settings is None:
        try:
            settings = Settings.from_env()
        except (RuntimeError, ValueError) as exc:
            raise CliError(f"配置错误：{exc}") from exc
    state = _State(settings)
    click_ctx.obj = state
    click_ctx.call_on_close(state.close)


# --- db -------------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """数据库：迁移 (database migrations)."""


def _upgrade(state: _State) -> str:
    url = state.settings.database_url
    dbmod.upgrade(url)
    head = ScriptDirectory.from_config(dbmod.alembic_config(url)).get_current_head()
    return f"数据库已迁移到最新版本 {head}：{_safe_url(url)}"


@db.command("upgrade")
@click.pass_obj
@_guarded
def db_upgrade(state: _State) -> None:
    """迁移数据库到最新版本 (migrate to the Alembic head)."""
    click.echo(_upgrade(state))


# --- init -----------------------------------------------------------------------------------------


def _init(state: _State, *, with_demo: bool) -> None:
    """Migrate, deploy the bundled processes, seed organisations (and demo hazards); idempotent."""
    total = 4 if with_demo else 3
    click.echo(f"[1/{total}] {_upgrade(state)}")
    ctx = state.ctx
    with state.sessions.begin() as session:
        deployed = demo.deploy_bundled(session, state.settings.processes_dir, ctx.forms)
    click.echo(f"[2/{total}] 已部署流程定义：{'、'.join(deployed)}")
    with state.sessions.begin() as session:
        # Demo users get argon2 hashes of demo.DEMO_PASSWORD (cost from settings) with --demo only:
        # a plain init must not leave accounts with a published password.
        hasher = functools.partial(hash_password, hasher=make_hasher(state.settings)) if with_demo else None
        world = demo.seed_organisations(session, password_hasher=hasher)
    click.echo(
        f"[3/{total}] 组织与用户就绪：{len(world.departments)} 个部门，"
        f"{len(world.enterprises)} 家企业，{len(world.users)} 个用户"
    )
    with state.sessions.begin() as session:
        reference = demo.seed_calendar_and_policies(session, state.settings.processes_dir)
    click.echo(f"      {_seeded_years(reference.calendar_years)}；策略配置：{'、'.join(reference.policies)}")
    if reference.forms:
        click.echo(f"      已发布随系统提供的表单（全国版本 1）：{reference.forms} 个")
    with state.sessions.begin() as session:
        variants = sectors.deploy_sector_variants(session, state.settings.processes_dir, ctx.forms)
        labels = "、".join(f"{v.process_key}@{v.version}" for v in variants)
    click.echo(f"      行业流程变体（未绑定，由牵头部门在“流程设计”中绑定）：{labels}")
    if not with_demo:
        click.echo("初始化完成。")
        return

    def progress(done: int, count: int, label: str) -> None:
        click.echo(f"      [{done:>2}/{count}] {label}")

    click.echo(f"[4/{total}] 创建演示隐患（通过流程引擎逐步办理，每种状态各一）…")
    seeded = demo.seed_demo_hazards(state.sessions, ctx, world, progress=progress)
    if seeded:
        click.echo(f"初始化完成：已创建 {len(seeded)} 条演示隐患。")
    else:
        click.echo("初始化完成：数据库中已有隐患，跳过演示隐患。")


@main.command()
@click.option("--demo", "with_demo", is_flag=True, help="同时创建演示隐患（每种状态各一条）。")
@click.pass_obj
@_guarded
def init(state: _State, with_demo: bool) -> None:
    """初始化：迁移、部署流程、创建组织与用户 (--demo: 演示隐患).

    Migrates the database, deploys the bundled processes and seeds organisations and users; with
    --demo also creates the demo hazards. Safe to run again: nothing is duplicated, and the demo
    hazards are skipped once any hazard exists.
    """
    _init(state, with_demo=with_demo)


# --- processes ------------------------------------------------------------------------------------


@main.group()
def processes() -> None:
    """流程定义：部署 BPMN (process definitions)."""


@processes.command("deploy")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--by", "username", default=None, help="发布人用户名（记录在版本中）。")
@click.option("--note", default=None, help="版本说明。")
@click.pass_obj
@_guarded
def processes_deploy(state: _State, file: Path, username: str | None, note: str | None) -> None:
    """校验并部署 BPMN 文件 (validate and publish FILE as the next version).

    Identical content keeps its version; a refused file names the element and exits 2. Warnings
    (unreachable elements …) are printed and do not stop the publication.
    """
    with state.sessions.begin() as session:
        author = load_actor(session, username=username).user_id if username else None
        forms = design.known_forms(session, None, forms=state.ctx.forms)  # shipped and published
        result = definitions.deploy_file(session, file, forms, deployed_by_id=author, note=note)
        labels = [f"{v.process_key}@{v.version}" for v in result.versions]
    status = "新版本已部署" if result.created else "未变更（与已部署版本内容相同）"
    for label in labels:
        click.echo(f"{label}  {status}")
    for warning in result.warnings:
        click.echo(f"警告：元素 {warning.element_id}: {warning.message}")


@processes.command("versions")
@click.argument("key")
@click.pass_obj
@_guarded
def processes_versions(state: _State, key: str) -> None:
    """列出流程的全部版本 (versions of process KEY: author, note, hash, running instances, bindings)."""
    with state.sessions.begin() as session:
        versions = definitions.list_versions(session, key)
    rows = [
        (
            str(v.version),
            _local(state.ctx, v.deployed_at),
            v.deployed_by or "—",
            v.content_hash[:12],
            str(v.running),
            "、".join(v.bound_as) or "—",
            v.note or "",
        )
        for v in versions
    ]
    click.echo(f"{key}：{len(versions)} 个版本")
    for line in _table(("版本", "发布时间", "发布人", "sha256", "运行中", "绑定", "说明"), rows, indent="  "):
        click.echo(line)


def _diff_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if not isinstance(value, str) else value


@processes.command("diff")
@click.argument("key")
@click.argument("old", type=int)
@click.argument("new", type=int)
@click.pass_obj
@_guarded
def processes_diff(state: _State, key: str, old: int, new: int) -> None:
    """比较两个版本 (elements added, removed and changed from version OLD to NEW, by BPMN id)."""
    with state.sessions.begin() as session:
        diff = definitions.diff_versions(
            definitions.get_version(session, key, old), definitions.get_version(session, key, new)
        )
    click.echo(f"{key}@{old} → {key}@{new}")
    if diff.empty:
        click.echo("  两个版本的流程元素相同（仅布局或文本格式不同）")
        return
    for sign, elements in (("+", diff.added), ("-", diff.removed)):
        for element in elements:
            click.echo(f"  {sign} {element.element_id}  {element.type}  {element.name or ''}".rstrip())
    for change in diff.changed:
        click.echo(f"  ~ {change.element_id}  {change.type}  {change.name or ''}".rstrip())
        for field_name, (before, after) in change.fields.items():
            click.echo(f"      {field_name}: {_diff_value(before)} → {_diff_value(after)}")


def _region_id(session: Session, code: str | None) -> int | None:
    return definitions.find_region(session, code).id if code else None


@processes.command("bind")
@click.argument("key")
@click.option("--grade", required=True, help="隐患等级：general / prominent / major / supervision。")
@click.option("--sector", default=None, help="行业代码（不填：所有行业）。")
@click.option("--region", "region_code", default=None, help="地区代码，绑定对其下级地区同样有效。")
@click.option("--version", "number", type=int, default=None, help="固定版本号（不填：始终用最新版本）。")
@click.option("--by", "username", default=None, help="操作人用户名（记录在绑定历史中）。")
@click.option("--note", default=None, help="说明。")
@click.pass_obj
@_guarded
def processes_bind(
    state: _State,
    key: str,
    grade: str,
    sector: str | None,
    region_code: str | None,
    number: int | None,
    username: str | None,
    note: str | None,
) -> None:
    """新登记的隐患按等级（行业、地区）使用流程 KEY (bind; running instances keep their version)."""
    with state.sessions.begin() as session:
        actor_id = load_actor(session, username=username).user_id if username else None
        binding = definitions.bind(
            session,
            grade=grade,
            process_key=key,
            sector_code=sector,
            region_id=_region_id(session, region_code),
            version=number,
            changed_by_id=actor_id,
            note=note,
        )
        label = definitions.binding_label(binding)
    click.echo(f"{label} → {key}@{number if number is not None else '最新版本'}")


@processes.command("rollback")
@click.option("--grade", required=True, help="隐患等级。")
@click.option("--sector", default=None, help="行业代码。")
@click.option("--region", "region_code", default=None, help="地区代码。")
@click.option("--by", "username", default=None, help="操作人用户名（记录在绑定历史中）。")
@click.option("--note", default=None, help="说明。")
@click.pass_obj
@_guarded
def processes_rollback(
    state: _State,
    grade: str,
    sector: str | None,
    region_code: str | None,
    username: str | None,
    note: str | None,
) -> None:
    """撤销最近一次绑定变更，恢复之前的版本 (again: one more step back)."""
    with state.sessions.begin() as session:
        actor_id = load_actor(session, username=username).user_id if username else None
        region_id = _region_id(session, region_code)
        binding = definitions.rollback_binding(
            session, grade=grade, sector_code=sector, region_id=region_id, changed_by_id=actor_id, note=note
        )
        if binding is None:
            label = grade + (f"/{sector}" if sector else "") + (f"@{region_code}" if region_code else "")
            click.echo(f"{label}：绑定已撤销，改用更上一级的绑定")
            return
        version = binding.definition_version_id and session.get(
            DefinitionVersion, binding.definition_version_id
        )
        target = f"{binding.process_key}@{version.version}" if version else f"{binding.process_key}@最新版本"
        click.echo(f"{definitions.binding_label(binding)} → {target}")


@processes.command("migrate")
@click.argument("key")
@click.option("--from", "old", type=int, required=True, help="源版本号。")
@click.option("--to", "new", type=int, required=True, help="目标版本号。")
@click.option("--dry-run", is_flag=True, help="只列出每个运行中实例能否迁移及原因，不做改动。")
@click.option("--instance", "instance_ids", type=int, multiple=True, help="只迁移这些实例（可重复）。")
@click.option("--by", "username", default=None, help="操作人用户名（记录在审计日志中）。")
@click.pass_obj
@_guarded
def processes_migrate(
    state: _State,
    key: str,
    old: int,
    new: int,
    dry_run: bool,
    instance_ids: tuple[int, ...],
    username: str | None,
) -> None:
    """把运行中的实例从版本 --from 迁移到 --to (each under its lock; a blocked one is left as it is).

    The deadlines and history of a moved instance are kept. Exits 1 when some instance could
    not move.
    """
    ctx = state.ctx
    with state.sessions.begin() as session:
        old_id = definitions.get_version(session, key, old).id
        new_id = definitions.get_version(session, key, new).id
        actor = load_actor(session, username=username) if username else None
        migration.require_process_admin(actor)
        checks = migration.preview_migration(
            session, from_version_id=old_id, to_version_id=new_id, actor=actor
        )
    if instance_ids:
        checks = [c for c in checks if c.instance_id in set(instance_ids)]
    click.echo(f"{key}@{old} → {key}@{new}：运行中的实例 {len(checks)} 个")
    rows = [
        (
            str(c.instance_id),
            c.hazard_number,
            ",".join(c.active) + (f"（+{len(c.waiting)} 个等待事件）" if c.waiting else "") or "—",
            "可以" if c.movable else "不能",
            "；".join(c.reasons or c.notes) or "",
        )
        for c in checks
    ]
    if rows:
        for line in _table(("实例", "隐患编号", "当前环节", "迁移", "原因/说明"), rows, indent="  "):
            click.echo(line)
    movable = [c.instance_id for c in checks if c.movable]
    if dry_run:
        click.echo(f"预览：可迁移 {len(movable)} 个，不能迁移 {len(checks) - len(movable)} 个（未做改动）")
        return
    moved = 0
    for done, instance_id in enumerate(movable, start=1):
        # one unit of work per instance: a long migration holds no lock for long, and a failure
        # leaves the instances before it migrated
        with state.sessions.begin() as session:
            worker = load_actor(session, username=username) if username else None
            [result] = migration.migrate_instances(
                session,
                ctx,
                from_version_id=old_id,
                to_version_id=new_id,
                instance_ids=[instance_id],
                actor=worker,
            )
        moved += result.migrated
        outcome = "已迁移" if result.migrated else f"未迁移：{'；'.join(result.reasons)}"
        click.echo(f"  [{done}/{len(movable)}] 实例 {instance_id} {result.hazard_number} {outcome}")
    left = len(checks) - moved
    click.echo(f"完成：已迁移 {moved} 个，未迁移 {left} 个")
    if left:
        raise click.exceptions.Exit(1)


# --- timers ---------------------------------------------------------------------------------------


@main.group()
def timers() -> None:
    """定时器：到期提醒、逾期 (timers)."""


@timers.command("run-due")
@click.pass_obj
@_guarded
def timers_run_due(state: _State) -> None:
    """触发到期定时器一次 (claim and fire every due timer, each in its own transaction).

    The worker's scheduler code with a one-off lease owner: safe beside running workers.
    """
    result = scheduler.run_due(state.sessions, state.ctx, owner=scheduler.new_owner("run-due"))
    click.echo(_run_summary(result))


# --- tasks ----------------------------------------------------------------------------------------


@main.group()
def tasks() -> None:
    """待办任务 (task lists)."""


@tasks.command("list")
@click.option("--user", "username", required=True, help="用户名，例如 chen_safety。")
@click.pass_obj
@_guarded
def tasks_list(state: _State, username: str) -> None:
    """列出用户的待办 (a user's inbox: claimed tasks and the groups' unclaimed ones)."""
    _echo_tasks(state, username)


# --- audit ----------------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """审计日志 (audit log)."""


@audit.command("verify")
@click.pass_obj
@_guarded
def audit_verify(state: _State) -> None:
    """校验审计链 (recompute every HMAC chain; exit 1 if one is broken)."""
    with state.sessions.begin() as session:
        breaks = verify_chain(session, key=state.ctx.audit_key)
        count = count_events(session)
    if not breaks:
        click.echo(f"OK：审计链完整，共 {count} 条事件")
        return
    for b in breaks:
        click.echo(f"实例 {b.instance_id}  事件 {b.event_id}（序号 {b.seq}）：{b.reason}")
    raise CliError(f"审计链校验失败：{len(breaks)} 条链被破坏（共 {count} 条事件）", exit_code=1)


# --- calendar -------------------------------------------------------------------------------------


def _invalid(exc: InvalidInput) -> CliError:
    """An InvalidInput as one error line per field (exit 2)."""
    lines = [str(exc).split(":", 1)[0]]
    for key, messages in exc.messages.items():
        items = messages if isinstance(messages, list | tuple) else [messages]
        lines.extend(f"  {key}: {message}" for message in items)
    return CliError("\n".join(lines))


def _seeded_years(years: Sequence[int]) -> str:
    if not years:
        return "工作日历：节假日安排已存在"
    return f"工作日历：已载入 {years[0]}–{years[-1]} 年节假日安排（{len(years)} 年，{workcal.SEED_SOURCE}）"


def _refresh_calendar(state: _State) -> workcal.WorkingCalendar:
    """Re-read the working-day calendar if it changed (one primary-key read otherwise)."""
    with state.sessions() as session:
        return workcal.load_calendar(session, timezone=state.settings.business_timezone)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"无法读取文件 {file}：{exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{file.name} 不是合法的 JSON：第 {exc.lineno} 行第 {exc.colno} 列 {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{file.name} 不是 UTF-8 文本") from exc


def _parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CliError(f"日期无效：{value!r}（应为 YYYY-MM-DD）") from None


def _span(first: dt.date, last: dt.date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} 至 {last.isoformat()}"


@main.group("calendar")
def calendar_group() -> None:
    """工作日历：法定节假日与调休 (working-day calendar)."""


@calendar_group.command("seed")
@click.pass_obj
@_guarded
def calendar_seed(state: _State) -> None:
    """从 chinese-calendar 载入官方节假日安排 (2004–2026; stored years are kept)."""
    with state.sessions.begin() as session:
        years = workcal.seed_from_chinese_calendar(session)
    click.echo(
        _seeded_years(years) if years else "节假日安排已是最新：chinese-calendar 覆盖的年份均已在数据库中"
    )


@calendar_group.command("show")
@click.argument("year", type=int)
@click.pass_obj
@_guarded
def calendar_show(state: _State, year: int) -> None:
    """显示某年的节假日安排 (status, holidays and 调休 workdays of YEAR)."""
    with state.sessions() as session:
        schedule = workcal.year_schedule(session, year)
    official = schedule.status == "official"
    status = "正式安排" if official else "暂定（尚未录入国务院办公厅通知）"
    click.echo(f"{year} 年：{status}")
    click.echo(f"来源：{schedule.source}")
    if schedule.entered_at is not None:
        click.echo(f"录入：{_local(state.ctx, schedule.entered_at)}  {schedule.entered_by or '系统'}")
    click.echo(f"放假（{len(schedule.holidays)} 天）：")
    for item in workcal.breaks(schedule.holidays):
        click.echo(f"  {item.name}  {_span(item.first, item.last)}（{item.days} 天）")
    if not official:
        click.echo("调休上班：暂定日历不含调休上班日（周末一律按休息日计算，期限只会偏晚，不会偏早）")
        return
    click.echo(f"调休上班（{len(schedule.workdays)} 天）：")
    for day, name in schedule.workdays:
        click.echo(f"  {day.isoformat()}（星期{'一二三四五六日'[day.weekday()]}）  {name}")


@calendar_group.command("enter-year")
@click.argument("year", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--by", "username", default=None, help="录入人用户名（记录在日历中）。")
@click.pass_obj
@_guarded
def calendar_enter_year(state: _State, year: int, file: Path, username: str | None) -> None:
    """录入某年的正式节假日安排并重新计算暂定期限 (enter YEAR's official schedule from FILE).

    FILE is JSON: {"source": "国办发明电〔…〕…号", "holidays": [{"date": "2027-02-06", "name": "春节"}
    or {"from": "2027-02-05", "to": "2027-02-12", "name": "春节"} …], "workdays": [{"date": …,
    "name": …} …]}. Bad input exits 2 and changes nothing.
    """
    document = _read_json(file)
    try:
        holidays, workdays, source = workcal.parse_schedule_document(document)
        with state.sessions.begin() as session:
            actor_id = load_actor(session, username=username).user_id if username else None
            changed = workcal.enter_official_year(
                session,
                year,
                holidays,
                workdays,
                actor_id,
                source=source or f"{year} 年国务院办公厅节假日安排通知（{file.name}）",
            )
            results = deadlines.recompute_provisional_deadlines(session, state.ctx, year)
    except InvalidInput as exc:
        raise _invalid(exc) from exc
    _refresh_calendar(state)
    click.echo(
        f"{year} 年节假日安排已录入：放假 {len(holidays)} 天，调休上班 {len(workdays)} 天；"
        f"{len(changed)} 天的工作日状态与原日历不同"
    )
    moved = [r for r in results if r.moved]
    click.echo(f"已重新计算 {len(moved)} 个期限（另有 {len(results) - len(moved)} 个期限日期不变、不再暂定）")
    for r in moved:
        click.echo(
            f"  隐患 {r.hazard_id} {r.task_key or ''} {'、'.join(r.variables)}："
            f"{_local(state.ctx, r.old_due_at)} → {_local(state.ctx, r.new_due_at)}"
        )


@calendar_group.command("recompute")
@click.pass_obj
@_guarded
def calendar_recompute(state: _State) -> None:
    """重新计算所有暂定期限 (a sweep: every provisional working-day deadline, on the current calendar)."""
    with state.sessions.begin() as session:
        results = deadlines.recompute_provisional_deadlines(session, state.ctx)
    moved = sum(1 for r in results if r.moved)
    click.echo(f"已重新计算 {moved} 个期限（另有 {len(results) - moved} 个期限日期不变、不再暂定）")


@calendar_group.command("add-days", context_settings={"ignore_unknown_options": True})
@click.argument("day")
@click.argument("n", type=int)
@click.pass_obj
@_guarded
def calendar_add_days(state: _State, day: str, n: int) -> None:
    """计算 DATE 之后第 N 个工作日 (N < 0: before; e.g. add-days 2026-02-13 1)."""
    start = _parse_date(day)
    calendar = _refresh_calendar(state)
    result = calendar.add_working_days(start, n)
    sign = "+" if n >= 0 else "-"
    what = calendar.day_info(result).describe()
    click.echo(f"{start.isoformat()} {sign} {abs(n)} 个工作日 = {result.isoformat()}（{what}）")
    if calendar.span_provisional(start, result):
        click.echo("暂定：涉及尚未录入正式节假日安排的年份，录入后结果可能变化")


# --- policy ---------------------------------------------------------------------------------------


@main.group("policy")
def policy_group() -> None:
    """策略配置：期限与升级规则 (policy profiles)."""


@policy_group.command("show")
@click.option("--sector", default=None, help="行业代码，例如 fire；显示该行业适用的配置。")
@click.option("--region", default=None, help="地区代码，例如 341821。")
@click.pass_obj
@_guarded
def policy_show(state: _State, sector: str | None, region: str | None) -> None:
    """显示适用的策略配置 (the profile that applies: sector+region, sector, region, national)."""
    with state.sessions() as session:
        profiles = policy.latest_profiles(session)
        chosen = policy.resolve_for_region_code(session, sector, region)
        values = policy.policy_values(chosen)
        scope_region = chosen.region.name if chosen.region is not None else "全国"
    if sector is None and region is None:
        click.echo("已导入的策略配置（最新版本）：")
        for line in _table(
            ("配置", "名称", "行业", "地区"),
            [
                (
                    f"{p.key}@{p.version}",
                    str(p.content.get("title", "")),
                    p.sector_code or "全部",
                    p.region.name if p.region is not None else "全国",
                )
                for p in profiles
            ],
            indent="  ",
        ):
            click.echo(line)
        click.echo("")
    title = chosen.content.get("title", "")
    click.echo(
        f"{chosen.key}@{chosen.version}  {title}（行业 {chosen.sector_code or '全部'}，{scope_region}）"
    )
    base = chosen.content.get("extends")
    if base:
        overrides = "、".join(chosen.content.get("overrides", []))
        click.echo(f"继承 {base['key']}@{base['version']}；本配置覆盖：{overrides}")
    rows = [(v.name, v.describe(), v.label, v.source) for v in values.values()]
    for line in _table(("名称", "值", "说明", "出处"), rows, indent="  "):
        click.echo(line)


@policy_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
@_guarded
def policy_import(state: _State, file: Path) -> None:
    """导入策略配置 JSON (changed content: a new version; unchanged: the same version)."""
    document = _read_json(file)
    try:
        with state.sessions.begin() as session:
            result = policy.import_policy(session, document)
            label = f"{result.profile.key}@{result.profile.version}"
    except InvalidInput as exc:
        raise _invalid(exc) from exc
    click.echo(f"{label}  {'新版本已导入' if result.created else '未变更（与最新版本内容相同）'}")
    for key in result.stale_dependents:
        click.echo(f"提示：{key} 继承自 {result.profile.key} 的旧版本，重新导入 {key} 才会采用新值")


# --- worker ---------------------------------------------------------------------------------------


class _Worker:
    """One worker process: its lease owner (``host:pid:worker-uuid``) and its stop flag."""

    def __init__(self) -> None:
        self.owner = scheduler.new_owner("worker")
        self.stopping = threading.Event()


def _tick(state: _State, worker: _Worker) -> None:
    """Fire due timers until none are left (claims of HAZARDLOOP_TIMER_BATCH, repeated while they
    come back full), then the scheduled-inspections sweep (at most every few minutes), then one
    notification round; a failing part (database down) is logged and the next tick tries again."""
    try:
        _refresh_calendar(state)
        result = scheduler.run_due(
            state.sessions, state.ctx, owner=worker.owner, should_stop=worker.stopping.is_set
        )
    except Exception:
        logger.exception("timer sweep failed")
    else:
        if result.due:
            stamp = _local(state.ctx, state.ctx.clock.now())
            click.echo(f"[{stamp}] {_run_summary(result)}")
    if worker.stopping.is_set():
        return
    try:
        generated = inspections.tick(state.sessions, state.ctx)
    except Exception:
        logger.exception("scheduled inspections sweep failed")
    else:
        if generated is not None and (generated.created or generated.missed):
            stamp = _local(state.ctx, state.ctx.clock.now())
            counts = f"新建 {generated.created} 项，转为未按期完成 {generated.missed} 项"
            click.echo(f"[{stamp}] 排查计划：{counts}")
    try:
        sent = _dispatch(state)
    except Exception:
        logger.exception("notification dispatch failed")
        return
    if sent.claimed:
        stamp = _local(state.ctx, state.ctx.clock.now())
        click.echo(f"[{stamp}] {_dispatch_summary(sent)}")


def _dispatch(state: _State) -> DispatchResult:
    """Deliver one batch of due notifications (the worker's lease owner is host:pid)."""
    owner = f"{socket.gethostname()}:{os.getpid()}"
    return dispatch_due(state.sessions, state.settings, owner=owner, channels=state.channels)


def _dispatch_summary(result: DispatchResult) -> str:
    r = result
    return f"通知：处理 {r.claimed} 条，成功 {r.sent}，待重试 {r.retried}，转入死信 {r.dead}"


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


class _SkippedTickFilter(logging.Filter):
    """A tick that outlasts the interval (a backlog) is expected: APScheduler's "skipped: maximum
    number of running instances reached" warnings would only be noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


def _run_worker(state: _State, *, once: bool, interval: float, ready_file: Path | None = None) -> None:
    """Run the tick every ``interval`` seconds until Ctrl-C or SIGTERM (or once); ``ready_file``
    is created once SIGTERM stops the worker cleanly."""
    worker = _Worker()
    if once:
        click.echo(_run_summary(scheduler.run_due(state.sessions, state.ctx, owner=worker.owner)))
        click.echo(_dispatch_summary(_dispatch(state)))
        return
    # Imported here: only the worker needs APScheduler.
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    skipped = _SkippedTickFilter()
    logging.getLogger("apscheduler.scheduler").addFilter(skipped)
    state.ctx  # noqa: B018 - fail on bad configuration before the scheduler starts
    scheduler_ = BlockingScheduler(timezone=state.ctx.tz)
    scheduler_.add_job(
        _tick,
        "interval",
        args=[state, worker],
        seconds=interval,
        id="timer-tick",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    settings = state.settings
    click.echo(
        f"worker 已启动（{worker.owner}）：每 {interval:g} 秒检查一次到期定时器（每次认领 "
        f"{settings.timer_batch} 个，租约 {settings.timer_lease_seconds} 秒）并发送通知（Ctrl-C 停止）"
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if ready_file is not None:  # the demo's supervisor waits for it (``demo --check``)
            ready_file.touch()
        scheduler_.start()
    except KeyboardInterrupt:
        click.echo("正在停止 worker（交还未触发的定时任务，等待当前触发结束）…")
    finally:
        worker.stopping.set()  # the running tick hands back what it has not fired yet
        signal.signal(signal.SIGTERM, previous)
        if scheduler_.running:
            scheduler_.shutdown(wait=True)
        logging.getLogger("apscheduler.scheduler").removeFilter(skipped)
    click.echo("worker 已停止")


@main.command()
@click.option("--once", is_flag=True, help="只触发一轮到期定时器（直到没有到期的为止），然后退出。")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="检查间隔（秒），默认为 HAZARDLOOP_TICK_SECONDS。",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    hidden=True,  # for the demo's supervisor
    help="启动完成（SIGTERM 可正常停止）后创建此文件。",
)
@click.pass_obj
@_guarded
def worker(state: _State, once: bool, interval: float | None, ready_file: Path | None) -> None:
    """运行定时器 worker (fire due timers and deliver notifications until Ctrl-C).

    An APScheduler job every --interval seconds (max one running, missed runs coalesced). Each tick
    leases due timer jobs (HAZARDLOOP_TIMER_BATCH at a time, for HAZARDLOOP_TIMER_LEASE_SECONDS),
    fires them and claims again while claims come back full. Any number of workers may run: each
    timer fires once, and the jobs of a worker that dies are taken over when its lease expires.
    Ctrl-C or SIGTERM hands back the unfired jobs and stops after the current firing.
    """
    _run_worker(state, once=once, interval=interval or state.settings.tick_seconds, ready_file=ready_file)


# --- incidents ------------------------------------------------------------------------------------

INCIDENT_HEADERS = ("ID", "状态", "定时任务", "隐患编号", "定时器", "尝试", "发生时间", "错误")


@main.group()
def incidents() -> None:
    """故障事件：多次重试仍失败的定时任务 (incidents: dead timer jobs)."""


@incidents.command("list")
@click.option("--all", "show_all", is_flag=True, help="也列出已重试的故障事件。")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="最多列出条数。")
@click.pass_obj
@_guarded
def incidents_list(state: _State, show_all: bool, limit: int) -> None:
    """列出故障事件 (open incidents, newest first; --all adds the retried ones)."""
    ctx = state.ctx
    with state.sessions() as session:
        rows = [
            (
                str(row.incident.id),
                "待处理" if row.incident.state == "open" else "已重试",
                str(row.job.id),
                row.hazard_number,
                row.job.timer_key,
                str(row.incident.attempts),
                _local(ctx, row.incident.created_at),
                " ".join(row.incident.error.split())[:60],
            )
            for row in engine_admin.incidents(session, state=None if show_all else "open", limit=limit)
        ]
    if not rows:
        click.echo("没有故障事件" if show_all else "没有待处理的故障事件，定时任务运行正常")
        return
    for line in _table(INCIDENT_HEADERS, rows):
        click.echo(line)


@incidents.command("retry")
@click.argument("incident_id", type=int)
@click.pass_obj
@_guarded
def incidents_retry(state: _State, incident_id: int) -> None:
    """重试一个故障事件 (its dead timer job is queued again, claimable now)."""
    try:
        with state.sessions.begin() as session:
            incident = engine_admin.retry_incident(
                session, incident_id=incident_id, now=state.ctx.clock.now()
            )
            job_id = incident.timer_job_id
    except NotFound:
        raise CliError(
            f"故障事件 {incident_id} 不存在（hazardloop incidents list --all 列出全部故障事件）"
        ) from None
    click.echo(f"故障事件 {incident_id} 已重试：定时任务 {job_id} 已重新排队，worker 下一轮触发")


# --- notifications --------------------------------------------------------------------------------

NOTIFICATION_STATES = ("pending", "leased", "sent", "dead")
NOTIFICATION_HEADERS = ("ID", "状态", "通道", "类型", "接收人", "尝试", "下次尝试", "主题/错误")


@main.group()
def notifications() -> None:
    """通知：发件箱与死信 (notification outbox)."""


@notifications.command("list")
@click.option("--state", "state_name", type=click.Choice(NOTIFICATION_STATES), help="只列出该状态的通知。")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="最多列出条数。")
@click.pass_obj
@_guarded
def notifications_list(state: _State, state_name: str | None, limit: int) -> None:
    """列出最近的通知 (newest first; --state dead shows the dead letters)."""
    ctx = state.ctx
    with state.sessions() as session:
        rows = [
            (
                str(m.id),
                m.state,
                m.channel,
                m.kind,
                m.recipient_address,
                str(m.attempts),
                _local(ctx, m.next_attempt_at) if m.state in ("pending", "leased") else "—",
                ((m.last_error if m.state != "sent" else None) or m.subject or "")[:60],
            )
            for m in list_messages(session, state=state_name, limit=limit)
        ]
    if not rows:
        click.echo("没有通知" + (f"（状态 {state_name}）" if state_name else ""))
        return
    for line in _table(NOTIFICATION_HEADERS, rows):
        click.echo(line)


@notifications.command("retry")
@click.argument("message_id", type=int)
@click.pass_obj
@_guarded
def notifications_retry(state: _State, message_id: int) -> None:
    """重新发送一条通知 (a dead letter gets a fresh set of attempts, due now)."""
    with state.sessions.begin() as session:
        message = retry_message(session, message_id, now=state.ctx.clock.now())
        label = f"{message.channel} → {message.recipient_address}"
    click.echo(f"通知 {message_id}（{label}）已重新排队，worker 下一轮发送")


# --- serve ----------------------------------------------------------------------------------------

LOG_LEVELS = ("debug", "info", "warning", "error")


def _check_port(host: str, port: int) -> None:
    from . import serve  # gunicorn is imported only by the commands that serve

    try:
        serve.check_port(host, port)
    except serve.PortUnavailable as exc:
        raise CliError(str(exc)) from exc


def _check_migrated(state: _State) -> None:
    """The database answers and is at the newest schema (else exit 1: run init)."""
    from alembic.runtime.migration import MigrationContext

    url = state.settings.database_url
    head = ScriptDirectory.from_config(dbmod.alembic_config(url)).get_current_head()
    with state.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current != head:
        raise CliError(
            f"数据库 {_safe_url(url)} 的版本是 {current or '空'}，不是最新的 {head}："
            "请先运行 hazardloop init（或 hazardloop db upgrade）",
            exit_code=1,
        )


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址（0.0.0.0：所有网卡）。")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="端口。")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="gunicorn 工作进程数；默认 SQLite 为 2，PostgreSQL 为 2×CPU+1（最多 8）。",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=4, show_default=True, help="每个进程的线程数。"
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
@click.option("--access-log", is_flag=True, help="把每个请求记录到标准错误输出。")
@click.pass_obj
@_guarded
def serve_command(
    state: _State, host: str, port: int, workers: int | None, threads: int, log_level: str, access_log: bool
) -> None:
    """运行网页服务 (gunicorn: the web app in N processes × T threads, until Ctrl-C or SIGTERM).

    A busy port exits 2 before anything starts; an unmigrated database exits 1. Timers are not
    run here: start `hazardloop worker` beside it (`hazardloop demo` runs both).
    """
    from . import serve

    _check_port(host, port)
    _check_migrated(state)
    try:
        serve.check_app(state.settings)
    except (RuntimeError, OSError) as exc:
        raise CliError(f"配置错误：{exc}") from exc
    state.close()  # no pooled connection may cross gunicorn's fork
    workers = workers or serve.default_workers(state.settings.database_url)
    options = serve.gunicorn_options(
        host, port, workers=workers, threads=threads, log_level=log_level, access_log=access_log
    )
    click.echo(
        f"网页服务：{serve.public_url(host, port)}（gunicorn，{workers} 个进程 × {threads} 个线程，"
        f"数据库 {_safe_url(state.settings.database_url)}；Ctrl-C 停止）"
    )
    serve.WebServer(state.settings, options).run()  # returns by SystemExit when stopped


# --- demo -----------------------------------------------------------------------------------------

DEMO_LOGIN_HEADERS = ("用户名", "姓名", "角色（单位）", "密码", "待办")
#: the user ``demo --check`` logs in as
DEMO_CHECK_USER = "chen_safety"


def _memberships(username: str) -> str:
    """The user's roles grouped by organisation: 主要负责人、安全管理人员（郎溪县金桥商贸广场）."""
    names = {code: name for code, name, _level, _parent in demo.REGIONS}
    by_org: dict[str, list[str]] = {}
    for role, ent_key, dept_key, region_code in demo.USERS[username][1]:
        if ent_key:
            org = demo.ENTERPRISES[ent_key][0]
        elif dept_key:
            org = demo.DEPARTMENTS[dept_key][0]
        elif region_code:
            org = names[region_code]
        else:
            org = "全系统"
        by_org.setdefault(org, []).append(ROLE_LABELS[role])
    return "、".join(f"{'、'.join(roles)}（{org}）" for org, roles in by_org.items())


def _login_rows(state: _State) -> list[tuple[str, ...]]:
    """One row per demo user: username, display name, roles, password, open tasks in the inbox."""
    rows = []
    with state.sessions() as session:
        for username, (display, _roles) in demo.USERS.items():
            tasks = len(inbox(session, load_actor(session, username=username)))
            rows.append(
                (username, display, _memberships(username), demo.DEMO_PASSWORD, str(tasks) if tasks else "—")
            )
    return rows


def _echo_logins(state: _State, url: str | None) -> None:
    click.echo("")
    click.echo(f"演示用户（密码均为 {demo.DEMO_PASSWORD}；待办：登录后「我的待办」与「组待办」中的任务数）：")
    for line in _table(DEMO_LOGIN_HEADERS, _login_rows(state), indent="  "):
        click.echo(line)
    click.echo("")
    if url:
        click.echo(f"网址：{url}")
    click.echo("命令行查看某人的待办：hazardloop tasks list --user chen_safety")


@main.command("demo")
@click.option(
    "--once", is_flag=True, help="只初始化、列出演示用户并检查一轮定时器，然后退出（不启动网页服务）。"
)
@click.option(
    "--check",
    is_flag=True,
    help="启动网页服务与 worker，请求 /healthz、/login 并以演示用户登录，打印 OK 后停止（失败：退出码 1）。",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="网页服务监听地址。")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="网页服务端口。")
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="gunicorn 工作进程数（默认见 serve）。"
)
@click.pass_obj
@_guarded
def demo_command(state: _State, once: bool, check: bool, host: str, port: int, workers: int | None) -> None:
    """演示：init --demo，打印网址与演示用户，再同时运行网页服务与 worker (what ./bin/run runs).

    The web server (`hazardloop serve`) and the timer worker (`hazardloop worker`) run as two
    child processes in the foreground; Ctrl-C or SIGTERM stops both. A busy port exits 2 before
    anything is done; if either process dies, the other is stopped and the exit status is 1.
    """
    if once and check:
        raise CliError("--once 与 --check 不能同时使用")
    if not once:
        _check_port(host, port)
    _init(state, with_demo=True)
    if once:
        _echo_logins(state, None)
        click.echo("")
        _run_worker(state, once=True, interval=state.settings.tick_seconds)
        return
    from . import serve

    url = serve.public_url(host, port)
    _echo_logins(state, url)
    state.close()
    workers = workers or serve.default_workers(state.settings.database_url)
    click.echo("")
    click.echo(f"正在启动网页服务（gunicorn，{workers} 个进程）与定时器 worker …")

    def banner() -> None:
        rule = "=" * 72
        click.echo(rule)
        click.echo(f"hazardloop 已启动：{url}")
        click.echo(
            f"在浏览器中打开上面的网址，用上表任一用户名登录（例如 {DEMO_CHECK_USER}），"
            f"密码 {demo.DEMO_PASSWORD}。"
        )
        click.echo("网页服务与定时器 worker 在前台运行，Ctrl-C 停止。")
        click.echo(rule)

    status = serve.run_services(
        settings=state.settings,
        host=host,
        port=port,
        serve_args=["--host", host, "--port", str(port), "--workers", str(workers), "--log-level", "warning"],
        worker_args=[],
        check=check,
        check_login=(DEMO_CHECK_USER, demo.DEMO_PASSWORD),
        echo=click.echo,
        banner=banner,
    )
    if status:
        raise CliError("演示未能正常运行（见上面的输出）", exit_code=status if status == 2 else 1)
    if not check:
        click.echo("网页服务与 worker 已停止")


# ``hazardloop inspections``: registers itself on ``main`` (web/cli_inspections.py)
from . import cli_inspections  # noqa: E402, F401
