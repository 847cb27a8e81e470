"""Working-day deadlines that move when the calendar changes (DESIGN §2 sharp edges, §6).

``compute_deadline`` (:mod:`engine.handlers`) records every working-day deadline it computes in
the event log: a ``deadline_computed`` event with ``due_at``, ``provisional`` and the ``rule``
(``{"start", "n", "unit"}``). That event is the record of which deadlines are provisional — a
handler cannot write task data (SpiffWorkflow hands it a copy), and the log is where an auditor
looks anyway. When a year's official schedule is entered (:func:`engine.calendar.enter_official_year`),
:func:`recompute_provisional_deadlines` re-evaluates the rule of every running instance's
working-day deadline that touches that year and moves the ones that changed:

* under the per-instance protocol (:func:`engine.runtime._protocol`: lock, load, refresh, save
  with compare-and-set),
* through the engine's adapter :func:`engine.bpmn.set_variable`, which clears the cached due
  time of the waiting SpiffWorkflow timers that read the variable, so the *real* timer moves,
  then the runtime's projection rewrites ``work_item.due_at`` and the ``timer_job`` rows,
* with one ``deadline_recomputed`` event (old and new due time) per moved deadline, or a
  ``deadline_confirmed`` event when only the provisional flag cleared.

A deadline whose variable no longer holds the recorded value (an approved extension replaced
it, or its task is finished) is left alone. The variable is looked up in the data of the
instance's ready user tasks (where every shipped deadline lives, next to its boundary timers).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import bpmn
from . import runtime
from .calendar import Deadline
from .calendar import DeadlineRule
from .calendar import WorkingCalendar
from .calendar import build_calendar
from .calendar import using_calendar
from .models import Event
from .models import InstanceStatus
from .models import ProcessInstance
from .runtime import EngineContext

__all__ = [
    "RECORD_ACTIONS",
    "Recomputed",
    "TrackedDeadline",
    "recompute_provisional_deadlines",
    "tracked_deadlines",
]

#: events that record a working-day deadline's current due time and rule (latest one wins)
RECORD_ACTIONS = ("deadline_computed", "deadline_recomputed", "deadline_confirmed")


@dataclass(frozen=True, slots=True)
class TrackedDeadline:
    """A working-day deadline of a running instance, as its latest event records it."""

    hazard_id: int
    instance_id: int
    task_key: str | None
    due_at: str
    provisional: bool
    rule: DeadlineRule

    @property
    def due(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.due_at)


@dataclass(frozen=True, slots=True)
class Recomputed:
    """What :func:`recompute_provisional_deadlines` did to one deadline."""

    hazard_id: int
    task_key: str | None
    variables: tuple[str, ...]
    old_due_at: dt.datetime
    new_due_at: dt.datetime
    provisional: bool

    @property
    def moved(self) -> bool:
        return self.old_due_at != self.new_due_at


def _tracked(row: Any) -> TrackedDeadline | None:
    payload: Mapping[str, Any] = row.payload or {}
    if payload.get("unit") != "working_days" or not isinstance(payload.get("rule"), Mapping):
        return None
    try:
        rule = DeadlineRule.from_dict(payload["rule"])
        due_at = str(payload["due_at"])
        dt.datetime.fromisoformat(due_at)
    except (KeyError, ValueError):
        return None
    return TrackedDeadline(
        row.hazard_id, row.instance_id, row.task_key, due_at, bool(payload.get("provisional")), rule
    )


def tracked_deadlines(
    session: Session,
    calendar: WorkingCalendar,
    *,
    year: int | None = None,
    provisional_only: bool = True,
    hazard_id: int | None = None,
) -> list[TrackedDeadline]:
    """The working-day deadlines of running instances (the latest record per service task).

    ``year``: only those whose counting span (start day to due day, business time) touches it;
    ``provisional_only``: only those computed on a provisional calendar.
    """
    query = (
        select(Event.instance_id, Event.hazard_id, Event.task_key, Event.seq, Event.payload)
        .join(ProcessInstance, ProcessInstance.id == Event.instance_id)
        .where(Event.action.in_(RECORD_ACTIONS), ProcessInstance.status == InstanceStatus.RUNNING.value)
        .order_by(Event.instance_id, Event.seq)
    )
    if hazard_id is not None:
        query = query.where(Event.hazard_id == hazard_id)
    latest: dict[tuple[int, str | None], Any] = {}
    for row in session.execute(query):
        latest[(row.instance_id, row.task_key)] = row
    result = []
    for row in latest.values():
        tracked = _tracked(row)
        if tracked is None or (provisional_only and not tracked.provisional):
            continue
        if year is not None:
            first = calendar.local_date(tracked.rule.start).year
            last = calendar.local_date(tracked.due).year
            if not min(first, last) <= year <= max(first, last):
                continue
        result.append(tracked)
    return result


def _same_instant(value: object, instant: dt.datetime) -> bool:
    if not isinstance(value, str) or len(value) < 19 or value[4:5] != "-":
        return False
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None and parsed == instant


def _variables_holding(workflow: Any, instant: dt.datetime) -> tuple[str, ...]:
    """Routing variables of the ready user tasks that hold ``instant`` (the deadline to move)."""
    names: set[str] = set()
    for task in bpmn.ready_user_tasks(workflow):
        for name, value in task.data.items():
            if _same_instant(value, instant):
                names.add(name)
    return tuple(sorted(names))


def recompute_provisional_deadlines(
    session: Session, ctx: EngineContext, year: int | None = None
) -> list[Recomputed]:
    """Re-evaluate working-day deadlines on the calendar as it now is; move the ones that changed.

    With ``year`` (after :func:`engine.calendar.enter_official_year` for that year, in the same
    unit of work): every working-day deadline whose span touches the year, provisional or not
    (a corrected schedule moves deadlines computed on the old one). Without: every provisional
    deadline (a sweep, e.g. ``hazardloop calendar recompute``).

    Returns one entry per deadline that moved or stopped being provisional.

    :raises Conflict: an instance changed under us (the caller's unit of work rolls back; retry).
    """
    calendar = build_calendar(session, timezone=ctx.settings.business_timezone)
    # by (hazard, instance): a hazard's loop and its 挂牌督办 track are separate instances
    pending: dict[tuple[int, int], list[tuple[TrackedDeadline, Deadline]]] = defaultdict(list)
    for tracked in tracked_deadlines(session, calendar, year=year, provisional_only=year is None):
        new = calendar.recompute(tracked.rule)
        if new.at != tracked.due or new.provisional != tracked.provisional:
            pending[(tracked.hazard_id, tracked.instance_id)].append((tracked, new))
    results: list[Recomputed] = []
    # handlers that run while the instances advance must see the new schedule too
    with using_calendar(calendar):
        for hazard_id, instance_id in sorted(pending):
            with runtime._protocol(session, ctx, hazard_id, actor=None, instance_id=instance_id) as loaded:
                for tracked, new in pending[(hazard_id, instance_id)]:
                    if loaded.instance.id != tracked.instance_id:
                        continue
                    variables = _variables_holding(loaded.workflow, tracked.due)
                    if not variables:
                        continue  # replaced (approved extension) or its task is finished
                    moved = new.at != tracked.due
                    if moved:
                        for name in variables:
                            bpmn.set_variable(loaded.workflow, name, new.at.isoformat())
                        if "deadline_at" in variables and loaded.instance.kind == "loop":
                            loaded.hazard.deadline = new.at
                            loaded.hazard.overdue = loaded.hazard.overdue and new.at <= loaded.now
                        bpmn.advance(loaded.workflow)
                        runtime._apply_effects(session, ctx, loaded)
                        runtime._project(session, ctx, loaded)
                    runtime._event(
                        session,
                        ctx,
                        loaded,
                        "deadline_recomputed" if moved else "deadline_confirmed",
                        task_key=tracked.task_key,
                        variable=variables[0],
                        old_due_at=tracked.due_at,
                        due_at=new.at.isoformat(),
                        provisional=new.provisional,
                        unit=new.rule.unit,
                        days=new.rule.n,
                        rule=new.rule.to_dict(),
                        calendar_year=year,
                    )
                    results.append(
                        Recomputed(
                            hazard_id, tracked.task_key, variables, tracked.due, new.at, new.provisional
                        )
                    )
    return results
