"""``hazardloop inspections``: generate the scheduled inspections and list them (DOMAIN §2.3).

Registered on the main group when :mod:`web.cli` imports this module (its last line)::

    hazardloop inspections generate [--at 2026-05-20T10:00] [--horizon 7]
    hazardloop inspections list [--state missed] [--user he_office] [--limit 50]

The worker sweeps by itself (:func:`engine.inspections.tick`); ``generate`` runs one sweep now,
or as of another moment (``--at``: back-filling a demo, checking a policy change).
"""

from __future__ import annotations

import datetime as dt

import click

from engine import inspections as engine_inspections
from engine.access import load_actor
from engine.models import InspectionState
from engine.models.inspection import INSPECTION_STATE_LABELS

from .cli import CliError
from .cli import _guarded
from .cli import _local
from .cli import _State
from .cli import _table
from .cli import main

LIST_HEADERS = ("ID", "排查任务", "周期", "期限", "状态", "填报")
#: a sweep writing more rows than this prints its progress
PROGRESS_ABOVE = engine_inspections.INSERT_BATCH


def _parse_at(value: str | None, state: _State) -> dt.datetime | None:
    """``--at``: ISO 8601; a date or a time without offset is business time (Asia/Shanghai)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"--at 应为 ISO 8601 时间，例如 2026-05-20 或 2026-05-20T10:00+08:00（得到 {value!r}）"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=state.ctx.tz)
    return parsed.astimezone(dt.UTC)


@main.group("inspections")
def inspections() -> None:
    """排查计划：主要负责人带队检查与网格化“四查” (scheduled inspections)."""


@inspections.command("generate")
@click.option("--at", "at", default=None, help="按此时间生成（ISO 8601；不带时区按北京时间），默认为现在。")
@click.option(
    "--horizon",
    type=click.IntRange(min=0, max=366),
    default=0,
    show_default=True,
    help="同时生成此后若干天内开始的周期（天）。",
)
@click.pass_obj
@_guarded
def generate(state: _State, at: str | None, horizon: int) -> None:
    """生成到期的排查任务，并把已过周期未填报的标记为逾期 (one sweep; idempotent)."""
    ctx = state.ctx
    now = _parse_at(at, state) or ctx.clock.now()

    def progress(done: int, total: int) -> None:
        if total > PROGRESS_ABOVE:
            click.echo(f"  写入 {done}/{total}")

    with state.sessions.begin() as session:
        result = engine_inspections.generate_due(
            session, ctx, now=now, horizon=dt.timedelta(days=horizon), progress=progress
        )
    click.echo(
        f"[{_local(ctx, now)}] 排查计划：检查对象 {result.subjects} 个，"
        f"新建排查任务 {result.created} 条，标记逾期 {result.missed} 条"
    )
    for problem, count in sorted(result.problems.items()):
        click.echo(f"提示：{count} 个对象未生成：{problem}", err=True)


@inspections.command("list")
@click.option(
    "--state",
    "state_filter",
    type=click.Choice([s.value for s in InspectionState]),
    default=None,
    help="只列出此状态：open 待检查、missed 逾期未检查、done 已完成。",
)
@click.option("--user", "username", default=None, help="只列出此用户可见的排查任务（用户名）。")
@click.option(
    "--limit", type=click.IntRange(min=1, max=1000), default=50, show_default=True, help="最多列出条数。"
)
@click.pass_obj
@_guarded
def list_occurrences(state: _State, state_filter: str | None, username: str | None, limit: int) -> None:
    """列出排查任务 (missed and open ones by due time, recorded ones newest first)."""
    ctx = state.ctx
    with state.sessions() as session:
        if username is not None:
            actor = load_actor(session, username=username)
            items = engine_inspections.occurrence_page(
                session, actor, scope="visible", state=state_filter, per_page=min(limit, 200)
            ).items
        else:
            items = engine_inspections.recent(session, state=state_filter, limit=limit)
        rows = []
        for occ in items:
            period = f"{occ.period_start.isoformat()}～{occ.period_end.isoformat()}"
            label = INSPECTION_STATE_LABELS[InspectionState(occ.state)]
            if occ.completed_late:
                label += "（逾期补报）"
            done = ""
            if occ.completed_at is not None:
                who = occ.completed_by.display_name if occ.completed_by is not None else ""
                done = f"{_local(ctx, occ.completed_at)} {who}".strip()
            rows.append((str(occ.id), occ.title, period, _local(ctx, occ.due_at), label, done))
    if not rows:
        click.echo("没有符合条件的排查任务")
        return
    for line in _table(LIST_HEADERS, rows):
        click.echo(line)
