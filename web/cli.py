"""The ``hazardloop`` command line: a click group whose commands each open their own unit of work.

Settings come from :meth:`engine.config.Settings.from_env` (or a :class:`Settings` passed as
click's ``obj``, which is how tests call it). Errors the engine raises on purpose, and bad
configuration, are printed as one line on stderr with a non-zero exit status, never a traceback:
exit 2 for bad input (unknown user, refused definition, missing file), 1 for a failed check.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import signal
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

from engine import db as dbmod
from engine import definitions
from engine import demo
from engine.access import load_actor
from engine.config import Settings
from engine.errors import DefinitionInvalid
from engine.errors import EngineError
from engine.events import count_events
from engine.events import verify_chain
from engine.models.org import ROLE_LABELS
from engine.runtime import EngineContext
from engine.tasklist import inbox
from engine.timers import RunResult
from engine.timers import run_due

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
    return f"到期 {result.due} 个，已触发 {result.fired}，失败 {result.failed}，转入死信 {result.dead}"


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
        world = demo.seed_organisations(session)
    click.echo(
        f"[3/{total}] 组织与用户就绪：{len(world.departments)} 个部门，"
        f"{len(world.enterprises)} 家企业，{len(world.users)} 个用户"
    )
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
@click.pass_obj
@_guarded
def processes_deploy(state: _State, file: Path) -> None:
    """校验并部署 BPMN 文件 (validate and deploy FILE).

    Identical content keeps its version; a refused file names the element and exits 2.
    """
    with state.sessions.begin() as session:
        result = definitions.deploy_file(session, file, state.ctx.forms)
        labels = [f"{v.process_key}@{v.version}" for v in result.versions]
    status = "新版本已部署" if result.created else "未变更（与已部署版本内容相同）"
    for label in labels:
        click.echo(f"{label}  {status}")


# --- timers ---------------------------------------------------------------------------------------


@main.group()
def timers() -> None:
    """定时器：到期提醒、逾期 (timers)."""


@timers.command("run-due")
@click.pass_obj
@_guarded
def timers_run_due(state: _State) -> None:
    """触发到期定时器一次 (fire every due timer once, each in its own transaction)."""
    click.echo(_run_summary(run_due(state.sessions, state.ctx)))


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


# --- worker ---------------------------------------------------------------------------------------


def _tick(state: _State) -> None:
    """One sweep; a failing sweep (database down) is logged and the next tick tries again."""
    try:
        result = run_due(state.sessions, state.ctx)
    except Exception:
        logger.exception("timer sweep failed")
        return
    if result.due:
        stamp = _local(state.ctx, state.ctx.clock.now())
        click.echo(f"[{stamp}] {_run_summary(result)}")


def _interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def _run_worker(state: _State, *, once: bool, interval: float) -> None:
    """Run ``run_due`` every ``interval`` seconds until Ctrl-C or SIGTERM (or once)."""
    if once:
        click.echo(_run_summary(run_due(state.sessions, state.ctx)))
        return
    # Imported here: only the worker needs APScheduler.
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state.ctx  # noqa: B018 - fail on bad configuration before the scheduler starts
    scheduler = BlockingScheduler(timezone=state.ctx.tz)
    scheduler.add_job(
        _tick,
        "interval",
        args=[state],
        seconds=interval,
        id="timer-tick",
        max_instances=1,
        coalesce=True,
        replace_existing=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    click.echo(f"worker 已启动：每 {interval:g} 秒检查一次到期定时器（Ctrl-C 停止）")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        scheduler.start()
    except KeyboardInterrupt:
        click.echo("正在停止 worker（等待当前一轮检查结束）…")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if scheduler.running:
            scheduler.shutdown(wait=True)
    click.echo("worker 已停止")


@main.command()
@click.option("--once", is_flag=True, help="只检查一轮到期定时器，然后退出。")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=None,
    help="检查间隔（秒），默认为 HAZARDLOOP_TICK_SECONDS。",
)
@click.pass_obj
@_guarded
def worker(state: _State, once: bool, interval: float | None) -> None:
    """运行定时器 worker (fire due timers in the foreground until Ctrl-C).

    An APScheduler job every --interval seconds (max one running, missed runs coalesced); Ctrl-C
    or SIGTERM stops it after the current sweep.
    """
    _run_worker(state, once=once, interval=interval or state.settings.tick_seconds)


# --- demo -----------------------------------------------------------------------------------------


def _memberships(username: str) -> str:
    names = {code: name for code, name, _level, _parent in demo.REGIONS}
    parts = []
    for role, ent_key, dept_key, region_code in demo.USERS[username][1]:
        if ent_key:
            org = demo.ENTERPRISES[ent_key][0]
        elif dept_key:
            org = demo.DEPARTMENTS[dept_key][0]
        elif region_code:
            org = names[region_code]
        else:
            org = "全系统"
        parts.append(f"{ROLE_LABELS[role]}（{org}）")
    return "、".join(parts)


@main.command("demo")
@click.option("--once", is_flag=True, help="展示后只检查一轮定时器就退出，不常驻运行 worker。")
@click.pass_obj
@_guarded
def demo_command(state: _State, once: bool) -> None:
    """演示：init --demo，列出演示用户与待办，再运行 worker (what ./bin/run runs)."""
    _init(state, with_demo=True)
    click.echo("")
    click.echo(
        f"演示用户（密码均为 {demo.DEMO_PASSWORD}；网页界面稍后提供，现在可用 hazardloop tasks list）："
    )
    for username in demo.USERS:
        click.echo("")
        click.echo(f"● {username}  {_memberships(username)}")
        _echo_tasks(state, username, indent="  ")
    click.echo("")
    _run_worker(state, once=once, interval=state.settings.tick_seconds)
