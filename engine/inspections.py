"""Scheduled inspections (排查计划): recurring work items cut from policy values (DOMAIN §2.3).

Two plans, as data (:data:`PLANS`):

* ``principal_self_inspection`` — every enterprise's 主要负责人 leads a check of its major-hazard
  work 「每季度…至少开展1次检查(高危行业领域每月至少1次)」 (S000 #3; S004 #9): the policy values
  ``principal_inspection_interval`` and, for ``Enterprise.high_risk``,
  ``principal_inspection_interval_high_risk``;
* ``grid_check`` — the grid's 「市级季检查、县级月排查、乡级周巡查、村级日排查」 (S003 三(一)4):
  ``grid_check_interval_<level>`` for every city, county, township and village.

A cadence is a policy value with a unit (``months``, ``calendar_days`` or ``working_days``);
periods are aligned to calendar periods in business time (Asia/Shanghai): 3 months are the
quarters, 1 month the months, 6 the half-years; 7 calendar days the ISO weeks (Monday–Sunday),
1 the days; ``n`` working days are runs of ``n`` working days counted from the start of the
year. The profile that applies is the most specific one for the subject (as
:func:`engine.policy.resolve_policy`); the occurrence records the version it came from.

:func:`generate_due` is one sweep: open occurrences of an ended period become *missed*, and
every subject gets the occurrence of the current period (and of later periods starting within
``horizon``), inserted with ``ON CONFLICT DO NOTHING`` (SQLite: ``INSERT OR IGNORE``) against the
unique ``(plan_key, subject_id, period_start)``, so concurrent sweeps never duplicate a period.
Periods continue from the end of the subject's last occurrence: a subject whose current period is
already covered by an occurrence cut under an older cadence gets nothing new until it ends (a
policy change applies from the next period; a longer cadence first fills the rest of its own
period), and periods no sweep created while the worker was down (up to :data:`CATCH_UP` back)
are created already missed, so they are counted like any other.

:func:`tick` is what the worker calls every tick; it sweeps once per business day and every
:data:`SWEEP_INTERVAL` (new enterprises, changed policies), and is cheap otherwise.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import logging
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import cast
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import sessionmaker

from . import policy
from .access import DEPARTMENT_SCOPED
from .access import REGION_SCOPED
from .access import Actor
from .access import Scope
from .access import hazard_visibility
from .calendar import WorkingCalendar
from .calendar import load_calendar
from .errors import Conflict
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .models import Enterprise
from .models import Hazard
from .models import InspectionOccurrence
from .models import InspectionState
from .models import PolicyProfile
from .models import Region
from .models import RegionLevel
from .models import Role
from .models.org import ENTERPRISE_ROLES
from .models.org import ROLE_LABELS

if TYPE_CHECKING:
    from .runtime import EngineContext

__all__ = [
    "CADENCE_UNITS",
    "MAX_PER_PAGE",
    "PLANS",
    "SCOPES",
    "SWEEP_INTERVAL",
    "GenerateResult",
    "InspectionCounts",
    "MissedCount",
    "OccurrencePage",
    "Period",
    "Plan",
    "can_complete",
    "can_see",
    "complete",
    "counts",
    "generate_due",
    "get_occurrence",
    "missed_counts",
    "occurrence_page",
    "period_containing",
    "recent",
    "reset_tick_state",
    "tick",
    "actable",
    "visibility",
]

logger = logging.getLogger(__name__)

Occ = InspectionOccurrence

#: units a cadence may have (policy values in hours, minutes or counts are not periods)
CADENCE_UNITS = ("months", "calendar_days", "working_days")
SUBJECT_ENTERPRISE = "enterprise"
SUBJECT_REGION = "region"
#: a note longer than this is refused
MAX_NOTE = 2000
MAX_HAZARDS_FOUND = 10_000
MAX_LINKED_HAZARDS = 100
MAX_PER_PAGE = 200
#: rows per INSERT statement of a sweep
INSERT_BATCH = 1000
#: how far back a sweep creates the periods no sweep created (already missed): a worker that was
#: down for a week leaves no gap in the record, one down for a year does not flood it (a subject
#: whose last occurrence ended before this starts again with the current period)
CATCH_UP = dt.timedelta(days=31)
#: ``scope`` of :func:`occurrence_page`: what I may record (open and missed by default), or
#: everything I may see (my enterprise, my region subtree, my department's sectors there)
SCOPES = ("mine", "visible")


# --- plans -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Plan:
    """A recurring inspection: whom it is for, who records it, and which policy value sets its cadence."""

    key: str
    label: str
    #: ``enterprise`` (one occurrence per enterprise) or ``region`` (one per region of a level)
    subject: str
    #: the role the occurrence is addressed to
    assignee_role: Role
    #: roles that may record it (within the subject: the enterprise, or the region's subtree)
    completers: frozenset[Role]
    #: subject variant → policy value name (enterprise: ``standard``/``high_risk``; region: its level)
    values: Mapping[str, str]
    #: subject variant → the title after the subject's name
    titles: Mapping[str, str]
    source: str

    def variant(self, *, high_risk: bool = False, level: str | None = None) -> str:
        if self.subject == SUBJECT_ENTERPRISE:
            return "high_risk" if high_risk else "standard"
        return str(level)


PLANS: dict[str, Plan] = {
    plan.key: plan
    for plan in (
        Plan(
            key="principal_self_inspection",
            label="主要负责人带队检查",
            subject=SUBJECT_ENTERPRISE,
            assignee_role=Role.PRINCIPAL,
            completers=frozenset({Role.PRINCIPAL, Role.SAFETY_OFFICER}),
            values={
                "standard": "principal_inspection_interval",
                "high_risk": "principal_inspection_interval_high_risk",
            },
            titles={"standard": "主要负责人带队检查", "high_risk": "主要负责人带队检查（高危行业领域）"},
            source="「每季度…至少开展1次检查(高危行业领域每月至少1次)」S000 #3；S004 #9 (DOMAIN §2.3)",
        ),
        Plan(
            key="grid_check",
            label="网格化“四查”",
            subject=SUBJECT_REGION,
            assignee_role=Role.GRID_WORKER,
            completers=frozenset({Role.GRID_WORKER, Role.INSPECTOR, Role.OFFICE_ADMIN}),
            values={
                RegionLevel.CITY.value: "grid_check_interval_city",
                RegionLevel.COUNTY.value: "grid_check_interval_county",
                RegionLevel.TOWNSHIP.value: "grid_check_interval_township",
                RegionLevel.VILLAGE.value: "grid_check_interval_village",
            },
            titles={
                RegionLevel.CITY.value: "市级网格检查",
                RegionLevel.COUNTY.value: "县级网格排查",
                RegionLevel.TOWNSHIP.value: "乡级网格巡查",
                RegionLevel.VILLAGE.value: "村级网格排查",
            },
            source="「市级季检查、县级月排查、乡级周巡查、村级日排查」S003 三(一)4 (DOMAIN §2.3)",
        ),
    )
}
"""The inspection plans by key."""


# --- periods -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """A period of a cadence: its first and last day (business time, inclusive) and its name."""

    start: dt.date
    end: dt.date
    label: str


def _day(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def _range_label(start: dt.date, end: dt.date) -> str:
    if start == end:
        return _day(start)
    if start.year == end.year:
        return f"{_day(start)}至{end.month}月{end.day}日"
    return f"{_day(start)}至{_day(end)}"


def _months_period(day: dt.date, n: int) -> Period:
    index = day.year * 12 + day.month - 1
    first = index - index % n
    after = first + n
    start = dt.date(first // 12, first % 12 + 1, 1)
    end = dt.date(after // 12, after % 12 + 1, 1) - dt.timedelta(days=1)
    if n == 1:
        label = f"{start.year}年{start.month}月"
    elif n == 3 and start.month % 3 == 1:
        label = f"{start.year}年第{(start.month - 1) // 3 + 1}季度"
    elif n == 6 and start.month in (1, 7):
        label = f"{start.year}年{'上' if start.month == 1 else '下'}半年"
    elif n == 12 and start.month == 1:
        label = f"{start.year}年"
    else:
        label = _range_label(start, end)
    return Period(start, end, label)


def _days_period(day: dt.date, n: int) -> Period:
    # 0001-01-01 was a Monday: periods of 7·k days are whole ISO weeks
    ordinal = day.toordinal()
    first = ordinal - (ordinal - 1) % n
    start, end = dt.date.fromordinal(first), dt.date.fromordinal(first + n - 1)
    if n == 1:
        label = _day(start)
    elif n == 7:
        iso = start.isocalendar()
        label = f"{iso.year}年第{iso.week}周（{start.month}月{start.day}日至{end.month}月{end.day}日）"
    else:
        label = _range_label(start, end)
    return Period(start, end, label)


@functools.lru_cache(maxsize=32)
def _period_starts(calendar: WorkingCalendar, year: int, n: int) -> tuple[dt.date, ...]:
    """1 January, then every ``n``-th working day of ``year`` after the first ``n``."""
    day, working = dt.date(year, 1, 1), []
    while day.year == year:
        if calendar.is_working_day(day):
            working.append(day)
        day += dt.timedelta(days=1)
    return (dt.date(year, 1, 1), *working[n::n])


def _working_days_period(day: dt.date, n: int, calendar: WorkingCalendar) -> Period:
    starts = _period_starts(calendar, day.year, n)
    index = bisect.bisect_right(starts, day) - 1
    start = starts[index]
    end = starts[index + 1] - dt.timedelta(days=1) if index + 1 < len(starts) else dt.date(day.year, 12, 31)
    return Period(start, end, _range_label(start, end))


def period_containing(day: dt.date, value: int, unit: str, calendar: WorkingCalendar | None = None) -> Period:
    """The period of a cadence of ``value`` ``unit`` that contains the business day ``day``.

    :raises ValueError: a unit outside :data:`CADENCE_UNITS`, a value below 1, or ``working_days``
        without a calendar.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"检查周期必须是正整数（得到 {value!r}）")
    if unit == "months":
        return _months_period(day, value)
    if unit == "calendar_days":
        return _days_period(day, value)
    if unit == "working_days":
        if calendar is None:
            raise ValueError("按工作日计的检查周期需要工作日历")
        return _working_days_period(day, value, calendar)
    raise ValueError(f"检查周期的单位必须是 {', '.join(CADENCE_UNITS)} 之一（得到 {unit!r}）")


# --- policy lookup for many subjects ---------------------------------------------------------------


class _Policies:
    """:func:`engine.policy.resolve_policy` for thousands of subjects: the profiles read once,
    the choice cached per (sector, region path)."""

    def __init__(self, session: Session) -> None:
        self.profiles = policy.latest_profiles(session)
        self._chosen: dict[tuple[str | None, str], PolicyProfile | None] = {}

    def resolve(self, sector_code: str | None, region_path: str) -> PolicyProfile | None:
        key = (sector_code, region_path)
        if key not in self._chosen:
            # the same order as engine.policy.resolve_policy: sector and nearest region, sector,
            # nearest region, national
            best: tuple[tuple[bool, int], PolicyProfile] | None = None
            for candidate in self.profiles:
                if candidate.sector_code is not None and candidate.sector_code != sector_code:
                    continue
                depth = 0
                if candidate.region is not None:
                    if not region_path.startswith(candidate.region.path):
                        continue
                    depth = len(candidate.region.path)
                rank = (candidate.sector_code is not None, depth)
                if best is None or rank > best[0]:
                    best = (rank, candidate)
            self._chosen[key] = best[1] if best is not None else None
        return self._chosen[key]


# --- generation --------------------------------------------------------------------------------------


@dataclass
class GenerateResult:
    """What one sweep did."""

    #: occurrences inserted (a concurrent sweep's rows are not counted twice)
    created: int = 0
    #: occurrences of ended periods marked missed (open ones, and periods no sweep had created)
    missed: int = 0
    #: enterprises and regions considered
    subjects: int = 0
    #: subjects left out, counted by reason (no policy applies, a value is missing or not a period)
    problems: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Subject:
    plan: Plan
    subject_id: int
    name: str
    enterprise_id: int | None
    region_id: int
    region_path: str
    sector_code: str | None
    variant: str


#: ``progress(done, total)`` after each batch of a sweep's inserts
ProgressCallback = Callable[[int, int], None]


def _subjects(session: Session) -> Iterable[_Subject]:
    for plan in PLANS.values():
        if plan.subject == SUBJECT_ENTERPRISE:
            rows = session.execute(
                select(
                    Enterprise.id,
                    Enterprise.name,
                    Enterprise.sector_code,
                    Enterprise.high_risk,
                    Enterprise.region_id,
                    Region.path,
                )
                .join(Region, Region.id == Enterprise.region_id)
                .order_by(Enterprise.id)
            )
            for ent_id, name, sector, high_risk, region_id, path in rows:
                yield _Subject(
                    plan,
                    ent_id,
                    name,
                    ent_id,
                    region_id,
                    path,
                    sector,
                    plan.variant(high_risk=bool(high_risk)),
                )
        else:
            rows = session.execute(
                select(Region.id, Region.name, Region.level, Region.path)
                .where(Region.level.in_(list(plan.values)))
                .order_by(Region.id)
            )
            for region_id, name, level, path in rows:
                yield _Subject(plan, region_id, name, None, region_id, path, None, plan.variant(level=level))


def _insert_ignoring_duplicates(session: Session, rows: Sequence[dict[str, Any]]) -> list[str]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING state: the states of the rows really inserted.

    PostgreSQL gets one array parameter per column (``INSERT … SELECT * FROM unnest(…)``) instead
    of one parameter per column and row, whose parsing by psycopg cost more than the insert
    itself (a first sweep of 5,009 rows on PostgreSQL 15: 1.2 s with a multi-row VALUES, 0.5–0.7 s
    with arrays). SQLite takes a multi-row VALUES (``INSERT … ON CONFLICT DO NOTHING``, i.e.
    INSERT OR IGNORE).
    """
    table = Occ.__table__
    conflict = ["plan_key", "subject_id", "period_start"]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        columns = [name for name in rows[0] if any(row[name] is not None for row in rows)]
        arrays = [
            cast(bindparam(f"v_{name}", [row[name] for row in rows]), ARRAY(table.c[name].type))
            for name in columns
        ]
        source = func.unnest(*arrays).table_valued(*columns).render_derived()
        statement = (
            pg_insert(table)
            .from_select(columns, select(*(source.c[name] for name in columns)), include_defaults=False)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(table.c.state)
        )
        return list(session.scalars(statement))
    if dialect == "sqlite":
        statement = (
            sqlite_insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.state)
        )
        return list(session.scalars(statement, list(rows)))
    raise RuntimeError(f"unsupported database {dialect}")  # pragma: no cover - the project runs on these two


def _mark_missed(session: Session, *, today: dt.date, now: dt.datetime) -> int:
    result = session.execute(
        update(Occ)
        .where(Occ.state == InspectionState.OPEN.value, Occ.period_end < today)
        .values(state=InspectionState.MISSED.value, missed_at=now)
        # loaded occurrences are updated in Python (a sweep itself loads none)
        .execution_options(synchronize_session="evaluate")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _latest_ends(session: Session, plan_key: str, since: dt.date) -> dict[int, dt.date]:
    """The last day covered by an occurrence of ``plan_key``, per subject (periods ending from ``since``)."""
    return {
        subject_id: end
        for subject_id, end in session.execute(
            select(Occ.subject_id, func.max(Occ.period_end))
            .where(Occ.plan_key == plan_key, Occ.period_end >= since)
            .group_by(Occ.subject_id)
        )
    }


def generate_due(
    session: Session,
    ctx: EngineContext,
    *,
    now: dt.datetime | None = None,
    horizon: dt.timedelta = dt.timedelta(0),
    progress: ProgressCallback | None = None,
) -> GenerateResult:
    """One sweep: mark ended open occurrences missed, then create the current period's occurrences.

    Every enterprise gets its principal's self-inspection and every city, county, township and
    village its grid check, for the period containing ``now`` (default: the clock) and each
    later period that starts by ``now + horizon`` (plus, already missed, the periods since the
    subject's last occurrence that no sweep created). Idempotent and safe to run concurrently:
    rows are inserted ignoring the unique ``(plan_key, subject_id, period_start)``. A subject
    with no applicable policy value is left out and counted in ``problems``. Statements: one
    update, one read per plan and of the profiles, one per plan for the covered periods, one
    insert per :data:`INSERT_BATCH` rows.
    """
    now = now or ctx.clock.now()
    tz = ctx.tz
    today = now.astimezone(tz).date()
    until = (now + horizon).astimezone(tz).date()
    result = GenerateResult()
    result.missed = _mark_missed(session, today=today, now=now)

    calendar: WorkingCalendar | None = None
    policies = _Policies(session)
    subjects = list(_subjects(session))
    result.subjects = len(subjects)

    # The cadence of every subject (the applicable profile's value), then the earliest period
    # start among them: occurrences ending before it cannot cover any current period.
    cadences: dict[int, tuple[PolicyProfile, int, str]] = {}
    for index, subject in enumerate(subjects):
        profile = policies.resolve(subject.sector_code, subject.region_path)
        if profile is None:
            result.problems["没有适用的策略配置（请运行 hazardloop policy import）"] += 1
            continue
        name = subject.plan.values[subject.variant]
        spec = profile.content.get("values", {}).get(name)
        if spec is None:
            result.problems[f"策略配置 {profile.key}@{profile.version} 缺少 {name}"] += 1
            continue
        if spec["unit"] not in CADENCE_UNITS or spec["value"] < 1:
            result.problems[f"策略值 {profile.key}@{profile.version}:{name} 不是检查周期"] += 1
            continue
        if spec["unit"] == "working_days" and calendar is None:
            calendar = load_calendar(session, timezone=ctx.settings.business_timezone)
        cadences[index] = (profile, spec["value"], spec["unit"])

    def period(day: dt.date, value: int, unit: str) -> Period:
        return _cached_period(day, value, unit, calendar)

    earliest: dict[str, dt.date] = {}
    for index, (_profile, value, unit) in cadences.items():
        key = subjects[index].plan.key
        start = period(today, value, unit).start
        earliest[key] = min(start, earliest.get(key, start))
    back = today - CATCH_UP
    covered = {key: _latest_ends(session, key, min(since, back)) for key, since in earliest.items()}

    rows: list[dict[str, Any]] = []
    for index, (profile, value, unit) in cadences.items():
        subject = subjects[index]
        last_end = covered[subject.plan.key].get(subject.subject_id)
        floor = last_end + dt.timedelta(days=1) if last_end is not None else None
        # from the end of the subject's last occurrence: periods no sweep created (the worker
        # was down) are created too, already missed, back to CATCH_UP at most; a new subject,
        # or one without an occurrence for longer than that, starts with today's period
        day = max(floor, back) if floor is not None else today
        while day <= until:
            p = period(day, value, unit)
            start, label = p.start, p.label
            if floor is not None and start < floor:
                # an occurrence cut under an earlier cadence covers the beginning of this period
                start, label = floor, _range_label(floor, p.end)
            rows.append(_row(subject, profile, value, unit, start, p.end, label, ctx, now, today))
            floor = day = p.end + dt.timedelta(days=1)

    # a fixed order: concurrent sweeps meet on the unique index in the same order (no deadlock)
    rows.sort(key=lambda r: (r["plan_key"], r["subject_id"], r["period_start"]))
    for offset in range(0, len(rows), INSERT_BATCH):
        states = _insert_ignoring_duplicates(session, rows[offset : offset + INSERT_BATCH])
        result.created += len(states)
        result.missed += states.count(InspectionState.MISSED.value)
        if progress is not None:
            progress(min(offset + INSERT_BATCH, len(rows)), len(rows))
    for problem, count in result.problems.items():
        logger.warning("inspection sweep: %d subject(s) skipped: %s", count, problem)
    return result


@functools.lru_cache(maxsize=4096)
def _cached_period(day: dt.date, value: int, unit: str, calendar: WorkingCalendar | None) -> Period:
    return period_containing(day, value, unit, calendar)


def _row(
    subject: _Subject,
    profile: PolicyProfile,
    value: int,
    unit: str,
    start: dt.date,
    end: dt.date,
    label: str,
    ctx: EngineContext,
    now: dt.datetime,
    today: dt.date,
) -> dict[str, Any]:
    plan = subject.plan
    missed = end < today
    suffix = f"{plan.titles[subject.variant]}（{label}）"
    return {
        "plan_key": plan.key,
        "subject_id": subject.subject_id,
        "enterprise_id": subject.enterprise_id,
        "region_id": subject.region_id,
        "region_path": subject.region_path,
        "sector_code": subject.sector_code,
        "assignee_role": plan.assignee_role.value,
        "assignee_scope": plan.subject,
        "period_start": start,
        "period_end": end,
        "due_at": ctx.end_of_business_day(end),
        "title": subject.name[: 200 - len(suffix) - 1] + " " + suffix,
        "state": (InspectionState.MISSED if missed else InspectionState.OPEN).value,
        "created_at": now,
        "missed_at": now if missed else None,
        "completed_at": None,
        "completed_by_id": None,
        "completed_late": False,
        "note": None,
        "hazards_found": 0,
        "hazard_ids": None,
        "cadence_value": value,
        "cadence_unit": unit,
        "policy_profile_id": profile.id,
        "policy_key": profile.key,
        "policy_version": profile.version,
    }


#: a sweep runs on the first tick of each business day and then at most this often
SWEEP_INTERVAL = dt.timedelta(minutes=10)
#: database URL → (business day, instant) of this process's last successful sweep
_last_sweeps: dict[str, tuple[dt.date, dt.datetime]] = {}


def tick(sessions: sessionmaker[Session], ctx: EngineContext) -> GenerateResult | None:
    """The worker's call on every tick: a sweep in its own unit of work when one is due, else None.

    Due on the first tick of a business day (the ended periods become missed right after
    midnight) and then every :data:`SWEEP_INTERVAL` (new enterprises and regions, changed
    policies). Several workers may sweep at once: the inserts ignore duplicates. A failing
    sweep raises (the caller logs it) and is retried on the next tick.
    """
    now = ctx.clock.now()
    today = now.astimezone(ctx.tz).date()
    key = ctx.settings.database_url
    last = _last_sweeps.get(key)
    if last is not None and last[0] == today and last[1] <= now < last[1] + SWEEP_INTERVAL:
        return None
    with sessions.begin() as session:
        result = generate_due(session, ctx, now=now)
    _last_sweeps[key] = (today, now)
    return result


def reset_tick_state() -> None:
    """Forget when this process last swept (tests; after restoring a database)."""
    _last_sweeps.clear()


# --- who sees and records what -------------------------------------------------------------------------


def _in_region(scope: Scope) -> ColumnElement[bool]:
    assert scope.region_path is not None
    return Occ.region_path.startswith(scope.region_path, autoescape=True)


def _visible_clause(scope: Scope) -> ColumnElement[bool]:
    if scope.role in ENTERPRISE_ROLES:
        return Occ.enterprise_id == scope.enterprise_id if scope.enterprise_id else false()
    if scope.region_path is None:
        return false()
    if scope.role in REGION_SCOPED:
        return _in_region(scope)
    if scope.role in DEPARTMENT_SCOPED:
        # grid checks in the region; self-inspections of the sectors the department supervises
        return and_(
            _in_region(scope), or_(Occ.enterprise_id.is_(None), Occ.sector_code.in_(sorted(scope.sectors)))
        )
    return false()  # tip officers, process and system administrators


def _actable_clause(scope: Scope) -> ColumnElement[bool]:
    clauses = []
    for plan in PLANS.values():
        if scope.role not in plan.completers:
            continue
        if plan.subject == SUBJECT_ENTERPRISE and scope.enterprise_id is not None:
            clauses.append(and_(Occ.plan_key == plan.key, Occ.enterprise_id == scope.enterprise_id))
        elif plan.subject == SUBJECT_REGION and scope.region_path is not None:
            clauses.append(and_(Occ.plan_key == plan.key, _in_region(scope)))
    return or_(*clauses) if clauses else false()


def visibility(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause over ``InspectionOccurrence``: the occurrences the actor may see."""
    clauses = [_visible_clause(s) for s in actor.scopes]
    return or_(*clauses) if clauses else false()


def actable(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause over ``InspectionOccurrence``: the occurrences the actor may record."""
    clauses = [_actable_clause(s) for s in actor.scopes]
    return or_(*clauses) if clauses else false()


def _scope_sees(scope: Scope, occ: InspectionOccurrence) -> bool:
    if scope.role in ENTERPRISE_ROLES:
        return scope.enterprise_id is not None and occ.enterprise_id == scope.enterprise_id
    if scope.region_path is None or not occ.region_path.startswith(scope.region_path):
        return False
    if scope.role in REGION_SCOPED:
        return True
    if scope.role in DEPARTMENT_SCOPED:
        return occ.enterprise_id is None or occ.sector_code in scope.sectors
    return False


def can_see(actor: Actor, occ: InspectionOccurrence) -> bool:
    """Python twin of :func:`visibility` for a loaded occurrence."""
    return any(_scope_sees(s, occ) for s in actor.scopes)


def can_complete(actor: Actor, occ: InspectionOccurrence) -> bool:
    """Python twin of :func:`actable`: may the actor record this occurrence (whatever its state)?"""
    plan = PLANS.get(occ.plan_key)
    if plan is None:
        return False
    for scope in actor.scopes_for(plan.completers):
        if plan.subject == SUBJECT_ENTERPRISE:
            if scope.enterprise_id is not None and scope.enterprise_id == occ.enterprise_id:
                return True
        elif scope.region_path is not None and occ.region_path.startswith(scope.region_path):
            return True
    return False


def get_occurrence(session: Session, actor: Actor, occurrence_id: int) -> InspectionOccurrence:
    """One occurrence the actor may see.

    :raises NotFound: no such occurrence, or the actor may not see it.
    """
    occ = session.scalars(
        select(Occ)
        .options(joinedload(Occ.enterprise), joinedload(Occ.region))
        .where(Occ.id == occurrence_id, visibility(actor))
    ).first()
    if occ is None:
        raise NotFound("排查任务", occurrence_id)
    return occ


# --- recording -----------------------------------------------------------------------------------------


def _check_input(
    note: object, hazards_found: object, hazard_ids: Sequence[object]
) -> tuple[str, int, list[int]]:
    errors: dict[str, list[str]] = {}
    text = note.strip() if isinstance(note, str) else ""
    if not text:
        errors["note"] = ["请填写检查情况"]
    elif len(text) > MAX_NOTE:
        errors["note"] = [f"不能超过 {MAX_NOTE} 个字符"]
    if isinstance(hazards_found, bool) or not isinstance(hazards_found, int):
        errors["hazards_found"] = ["发现隐患数必须是整数"]
    elif not 0 <= hazards_found <= MAX_HAZARDS_FOUND:
        errors["hazards_found"] = [f"发现隐患数必须在 0–{MAX_HAZARDS_FOUND} 之间"]
    ids: list[int] = []
    if len(hazard_ids) > MAX_LINKED_HAZARDS:
        errors["hazard_ids"] = [f"最多关联 {MAX_LINKED_HAZARDS} 条隐患"]
    elif any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in hazard_ids):
        errors["hazard_ids"] = ["必须是隐患编号（正整数）列表"]
    else:
        ids = list(dict.fromkeys(int(i) for i in hazard_ids))  # type: ignore[call-overload]
        if isinstance(hazards_found, int) and "hazards_found" not in errors and hazards_found < len(ids):
            errors["hazards_found"] = ["发现隐患数不能少于关联的隐患数"]
    if errors:
        raise InvalidInput(errors, "排查记录填写有误")
    assert isinstance(hazards_found, int)
    return text, hazards_found, ids


def _check_hazards(session: Session, actor: Actor, occ: InspectionOccurrence, ids: Sequence[int]) -> None:
    if not ids:
        return
    found = {
        hazard_id: (enterprise_id, path)
        for hazard_id, enterprise_id, path in session.execute(
            select(Hazard.id, Hazard.enterprise_id, Hazard.region_path).where(
                Hazard.id.in_(list(ids)), hazard_visibility(actor)
            )
        )
    }
    wrong = []
    for hazard_id in ids:
        row = found.get(hazard_id)
        if row is None or (
            row[0] != occ.enterprise_id
            if occ.enterprise_id is not None
            else not row[1].startswith(occ.region_path)
        ):
            wrong.append(hazard_id)
    if wrong:
        listed = "、".join(str(i) for i in wrong)
        raise InvalidInput({"hazard_ids": [f"隐患 {listed} 不存在、无权查看或不属于本次排查的对象"]})


def complete(
    session: Session,
    ctx: EngineContext,
    *,
    occurrence_id: int,
    actor: Actor,
    note: str,
    hazards_found: int,
    hazard_ids: Sequence[int] = (),
) -> InspectionOccurrence:
    """Record an inspection: what was checked (``note``), how many hazards were found, and
    optionally the hazards registered from it.

    A missed occurrence, or one recorded after its period, may still be recorded: it is marked
    ``completed_late``.

    :raises NotFound: no such occurrence, or the actor may not see it.
    :raises Forbidden: the actor may see it but is not among the roles that record it.
    :raises Conflict: already recorded, or its period has not begun.
    :raises InvalidInput: an empty note, a bad count, or linked hazards that are not the subject's.
    """
    occ = session.scalars(
        select(Occ)
        .where(Occ.id == occurrence_id, visibility(actor))
        .with_for_update(of=Occ)  # two submissions of one form: the second sees it done
    ).first()
    if occ is None:
        raise NotFound("排查任务", occurrence_id)
    plan = PLANS[occ.plan_key]
    if not can_complete(actor, occ):
        roles = "、".join(ROLE_LABELS[r] for r in sorted(plan.completers, key=list(Role).index))
        raise Forbidden(f"「{occ.title}」只能由{roles}填报")
    now = ctx.clock.now()
    if occ.state == InspectionState.DONE.value:
        when = occ.completed_at.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M") if occ.completed_at else ""
        raise Conflict(f"「{occ.title}」已于 {when} 填报，不能重复填报")
    if occ.period_start > now.astimezone(ctx.tz).date():
        raise Conflict(f"「{occ.title}」的检查周期自 {occ.period_start.isoformat()} 开始，尚不能填报")
    text, count, ids = _check_input(note, hazards_found, hazard_ids)
    _check_hazards(session, actor, occ, ids)
    occ.completed_late = occ.state == InspectionState.MISSED.value or now > occ.due_at
    occ.state = InspectionState.DONE.value
    occ.completed_at = now
    occ.completed_by_id = actor.user_id
    occ.note = text
    occ.hazards_found = count
    occ.hazard_ids = ids or None
    session.flush()
    return occ


# --- queries -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OccurrencePage:
    items: Sequence[InspectionOccurrence]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _check_state(state: str | None) -> None:
    if state is not None and state not in {s.value for s in InspectionState}:
        raise InvalidInput({"state": [f"必须是 {', '.join(s.value for s in InspectionState)} 之一"]})


def _scope_where(actor: Actor, scope: str, state: str | None) -> list[ColumnElement[bool]]:
    _check_state(state)
    if scope == "mine":
        states = [state] if state else [InspectionState.OPEN.value, InspectionState.MISSED.value]
        return [actable(actor), Occ.state.in_(states)]
    if scope == "visible":
        return [visibility(actor), *([Occ.state == state] if state else [])]
    raise InvalidInput({"scope": [f"必须是 {', '.join(SCOPES)} 之一"]})


def occurrence_page(
    session: Session,
    actor: Actor,
    *,
    scope: str = "mine",
    state: str | None = None,
    page: int = 1,
    per_page: int = 20,
) -> OccurrencePage:
    """One page of occurrences: ``mine`` (those I may record; open and missed unless ``state``
    says otherwise) or ``visible`` (all I may see, optionally of one ``state``).

    Missed first, then by due time; recorded ones newest first.

    :raises InvalidInput: unknown ``scope`` or ``state``, or bad paging.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput({"page": [f"页码从 1 开始，每页 1–{MAX_PER_PAGE} 条"]})
    where = _scope_where(actor, scope, state)
    total = session.scalar(select(func.count(Occ.id)).where(*where)) or 0
    order = (
        [Occ.completed_at.desc(), Occ.id.desc()]
        if state == InspectionState.DONE.value
        else [(Occ.state != InspectionState.MISSED.value), Occ.due_at, Occ.id]
    )
    items = session.scalars(
        select(Occ)
        .options(joinedload(Occ.enterprise), joinedload(Occ.region))
        .where(*where)
        .order_by(*order)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return OccurrencePage(items, total, page, per_page)


@dataclass(frozen=True, slots=True)
class InspectionCounts:
    open: int = 0
    missed: int = 0
    done: int = 0
    #: recorded after their period (included in ``done``)
    done_late: int = 0


def counts(session: Session, actor: Actor, *, scope: str = "visible") -> InspectionCounts:
    """How many occurrences of each state the actor may see (``visible``) or record (``mine``)."""
    if scope not in SCOPES:
        raise InvalidInput({"scope": [f"必须是 {', '.join(SCOPES)} 之一"]})
    where = visibility(actor) if scope == "visible" else actable(actor)
    tally: dict[str, int] = Counter()
    late = 0
    for state, was_late, n in session.execute(
        select(Occ.state, Occ.completed_late, func.count(Occ.id))
        .where(where)
        .group_by(Occ.state, Occ.completed_late)
    ):
        tally[state] += n
        if state == InspectionState.DONE.value and was_late:
            late += n
    return InspectionCounts(
        open=tally[InspectionState.OPEN.value],
        missed=tally[InspectionState.MISSED.value],
        done=tally[InspectionState.DONE.value],
        done_late=late,
    )


@dataclass(frozen=True, slots=True)
class MissedCount:
    """Missed occurrences of one enterprise or region."""

    id: int
    name: str
    count: int


def missed_counts(
    session: Session, actor: Actor, *, by: str = "region", limit: int = 20
) -> list[MissedCount]:
    """Missed occurrences the actor may see, per region (every plan of the region) or per
    enterprise (its self-inspections), most first.

    :raises InvalidInput: ``by`` is neither ``region`` nor ``enterprise``.
    """
    if by == "region":
        key, name, join_on = Occ.region_id, Region.name, Region.id == Occ.region_id
        table: Any = Region
    elif by == "enterprise":
        key, name, join_on = Occ.enterprise_id, Enterprise.name, Enterprise.id == Occ.enterprise_id
        table = Enterprise
    else:
        raise InvalidInput({"by": ["必须是 region 或 enterprise"]})
    n = func.count(Occ.id).label("n")
    rows = session.execute(
        select(key, name, n)
        .join(table, join_on)
        .where(visibility(actor), Occ.state == InspectionState.MISSED.value)
        .group_by(key, name)
        .order_by(n.desc(), name, key)
        .limit(limit)
    )
    return [MissedCount(int(i), str(label), int(c)) for i, label, c in rows]


def recent(session: Session, *, state: str | None = None, limit: int = 50) -> Sequence[InspectionOccurrence]:
    """Occurrences of every subject, for operators (``hazardloop inspections list``): missed and
    open ones by due time, recorded ones newest first; not scoped to any actor.

    :raises InvalidInput: unknown ``state``.
    """
    _check_state(state)
    order = (
        [Occ.completed_at.desc(), Occ.id.desc()]
        if state == InspectionState.DONE.value
        else [(Occ.state != InspectionState.MISSED.value), Occ.due_at, Occ.id]
    )
    query = select(Occ).options(joinedload(Occ.completed_by))
    if state is not None:
        query = query.where(Occ.state == state)
    return session.scalars(query.order_by(*order).limit(limit)).all()
