"""Working days with Chinese public holidays and 调休 workdays (DESIGN §6, DOMAIN §9.3).

The holiday schedule is data in the database (:mod:`engine.models.calendar`): seeded from
``chinese-calendar`` for the years it covers (1.11.0: 2004–2026; it raises
``NotImplementedError`` for 2027), and entered by an administrator for each new year from the
State Council notice (国务院办公厅关于某年部分节假日安排的通知). A year without an official
schedule is computed *provisionally* from :data:`PROVISIONAL_RULES` — weekends, the fixed-date
holidays, the lunar festivals (``lunardate``) and 清明 (a solar term) — and every result that
relied on a provisional year says so, so that :mod:`engine.deadlines` can recompute it once the
schedule is entered.

Conventions (the ones Chinese statutes use for 期间, 《民法典》第二百零一条: the day an event
happens is not counted):

* ``add_working_days(d, n)`` is the *n*-th working day after ``d`` (``d`` itself not counted);
  ``n < 0`` counts backwards; ``n == 0`` is ``d``.
* ``working_days_between(a, b)`` counts the working days in ``(a, b]`` (negative when ``b < a``),
  so ``add_working_days(a, working_days_between(a, b)) == b`` for every working day ``b``.
* A deadline ends at 23:59:59 business time (Asia/Shanghai) of its last day, stored as UTC.

Only dates in :data:`MIN_YEAR`–:data:`MAX_YEAR` are supported (the lunar tables end in 2099);
anything else raises :class:`CalendarOutOfRange`.

Processes cache the calendar: :func:`load_calendar` re-reads it only when the
``calendar_revision`` token changed. Service-task handlers and expression functions, which have
no session, use :func:`current_calendar`: the calendar installed by :func:`using_calendar`, else
the last one :func:`load_calendar` read in this process, else the package's own data (the same
as a freshly seeded database).
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
from calendar import monthrange as _monthrange
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
from lunardate import LunarDate
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from . import expressions
from .clock import Clock
from .clock import SystemClock
from .errors import EngineError
from .errors import InvalidInput
from .models import CalendarDay
from .models import CalendarDayKind
from .models import CalendarRevision
from .models import CalendarYear
from .models import CalendarYearStatus
from .models import User

__all__ = [
    "DEFAULT_TIMEZONE",
    "MAX_YEAR",
    "MIN_YEAR",
    "PROVISIONAL_RULES",
    "SEED_SOURCE",
    "UNITS",
    "Break",
    "CalendarOutOfRange",
    "DayInfo",
    "Deadline",
    "DeadlineRule",
    "ProvisionalRule",
    "WorkingCalendar",
    "YearSchedule",
    "breaks",
    "build_calendar",
    "current_calendar",
    "enter_official_year",
    "load_calendar",
    "package_calendar",
    "parse_schedule_document",
    "provisional_holidays",
    "reset_cache",
    "seed_from_chinese_calendar",
    "using_calendar",
    "working_days_after",
    "working_days_before",
    "working_days_between",
    "year_schedule",
]

MIN_YEAR = 2004
"""First year with data (chinese-calendar starts here)."""

MAX_YEAR = 2099
"""Last year the provisional rules can compute (``lunardate`` covers 1900–2099)."""

DEFAULT_TIMEZONE = "Asia/Shanghai"

SEED_SOURCE = f"chinese-calendar {chinese_calendar.__version__}"

UNITS = ("working_days", "calendar_days", "hours", "minutes", "months")
"""Units :meth:`WorkingCalendar.deadline_after` understands."""

#: a notice names at most a few dozen days; more is a data-entry error (e.g. a pasted year)
_MAX_ENTRIES = 60
#: a 调休 workday makes up for a nearby break: further than this from every holiday is a typo
_WORKDAY_REACH = dt.timedelta(days=15)
_WEEKDAYS = "一二三四五六日"


class CalendarOutOfRange(EngineError, ValueError):
    """A date or year outside :data:`MIN_YEAR`–:data:`MAX_YEAR` (no holiday data can exist for it)."""

    code = "calendar_out_of_range"

    def __init__(self, what: dt.date | int) -> None:
        self.what = what
        super().__init__(f"工作日历只支持 {MIN_YEAR}–{MAX_YEAR} 年，{what} 超出范围")


def _check_year(year: int) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise CalendarOutOfRange(year)


# --- provisional rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvisionalRule:
    """One festival of the provisional schedule: where its break starts and how long it is.

    ``anchor`` is ``"solar"`` (``month``/``day`` of the Gregorian calendar), ``"lunar"``
    (``month``/``day`` of the Chinese calendar), ``"new_year_eve"`` (除夕, the day before
    正月初一) or ``"solar_term"`` (清明). ``bridge`` marks a one-day festival that usually
    becomes a three-day break: see :func:`_bridged`.
    """

    name: str
    anchor: str
    month: int = 0
    day: int = 0
    days: int = 1
    bridge: bool = False
    #: one more day off when this festival falls inside the break (中秋 inside 国庆: 8 days)
    extend_if_contains: str | None = None


# The usual pattern of the State Council's annual notice under the 2024 revision of
# 《全国年节及纪念日放假办法》 (国务院令第795号, in force 2025-01-01: 元旦 1, 春节 4 incl. 除夕,
# 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3 statutory days), as the 2025 and 2026 notices applied it:
# 春节 除夕–初七, 劳动节 5/1–5/5, 国庆 10/1–10/7 (10/8 too when 中秋 falls inside), one-day
# festivals bridged to a weekend. The notices make up for the extra days with 调休 Saturdays or
# Sundays; those cannot be predicted, so the provisional schedule has none: a provisional
# deadline is never earlier than the official one will be (checked against 2019–2026 in
# tests/engine/test_calendar.py), so no escalation fires too early while the notice is awaited.
PROVISIONAL_RULES: tuple[ProvisionalRule, ...] = (
    ProvisionalRule("元旦", "solar", 1, 1, bridge=True),
    ProvisionalRule("春节", "new_year_eve", days=8),  # 除夕 … 正月初七 (2025: 1/28–2/4)
    ProvisionalRule("清明", "solar_term", bridge=True),  # 2025: 4/4–4/6; 2026: 4/4–4/6
    ProvisionalRule("劳动节", "solar", 5, 1, days=5),  # 2025, 2026: 5/1–5/5
    ProvisionalRule("端午", "lunar", 5, 5, bridge=True),  # 2025: 5/31–6/2
    ProvisionalRule("中秋", "lunar", 8, 15, bridge=True),  # before 国庆: it may fall inside it
    ProvisionalRule("国庆节", "solar", 10, 1, days=7, extend_if_contains="中秋"),  # 2025: 10/1–10/8
)


def _bridged(day: dt.date) -> set[dt.date]:
    """A one-day festival and the day that usually joins it to a weekend.

    Tuesday → also Monday, Thursday → also Friday (a three-day break, made up by a 调休 day);
    Saturday or Sunday → the following Monday (补休).
    """
    days = {day}
    weekday = day.weekday()
    if weekday == 1:
        days.add(day - dt.timedelta(days=1))
    elif weekday == 3:
        days.add(day + dt.timedelta(days=1))
    elif weekday == 5:
        days.add(day + dt.timedelta(days=2))
    elif weekday == 6:
        days.add(day + dt.timedelta(days=1))
    return days


def _qingming(year: int) -> dt.date:
    """清明: the solar term (chinese-calendar's 寿星公式 with its corrections; 4 or 5 April)."""
    terms = chinese_calendar.get_solar_terms(dt.date(year, 4, 1), dt.date(year, 4, 30))
    for day, name in terms:
        if name == "清明":
            return day
    raise AssertionError(f"no 清明 in April {year}")  # pragma: no cover - always present


def _anchor(rule: ProvisionalRule, year: int) -> dt.date:
    if rule.anchor == "solar":
        return dt.date(year, rule.month, rule.day)
    if rule.anchor == "lunar":
        return LunarDate(year, rule.month, rule.day).to_solar_date()
    if rule.anchor == "new_year_eve":
        return LunarDate(year, 1, 1).to_solar_date() - dt.timedelta(days=1)
    if rule.anchor == "solar_term":
        return _qingming(year)
    raise ValueError(f"unknown anchor {rule.anchor!r}")


@functools.lru_cache(maxsize=256)
def _provisional_holidays(year: int) -> dict[dt.date, str]:
    """Cached and shared: callers only read it (:func:`provisional_holidays` returns a copy)."""
    named: dict[dt.date, str] = {}
    bridges: list[tuple[dt.date, str]] = []
    for rule in PROVISIONAL_RULES:
        start = _anchor(rule, year)
        days = [start + dt.timedelta(days=i) for i in range(rule.days)]
        if rule.extend_if_contains and any(named.get(d) == rule.extend_if_contains for d in days):
            days.append(start + dt.timedelta(days=rule.days))
        for day in days:
            named.setdefault(day, rule.name)  # an earlier festival keeps its day (中秋 inside 国庆)
        if rule.bridge:
            bridges.extend((day, rule.name) for day in sorted(_bridged(start) - {start}))
    for day, name in bridges:  # bridge days never take a festival's own day
        named.setdefault(day, name)
    return dict(sorted(named.items()))


def provisional_holidays(year: int) -> dict[dt.date, str]:
    """The provisional holidays of ``year`` by :data:`PROVISIONAL_RULES` (weekends included).

    :raises CalendarOutOfRange: ``year`` outside :data:`MIN_YEAR`–:data:`MAX_YEAR`.
    """
    _check_year(year)
    return dict(_provisional_holidays(year))


# --- the calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """How a deadline was computed: ``n`` ``unit`` after ``start`` (kept to recompute it)."""

    start: dt.datetime
    n: int
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "n": self.n, "unit": self.unit}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadlineRule:
        """Read :meth:`to_dict` output back.

        :raises ValueError: malformed data.
        """
        start = dt.datetime.fromisoformat(str(data["start"]))
        n = data["n"]
        unit = data["unit"]
        if start.tzinfo is None or not isinstance(n, int) or isinstance(n, bool) or unit not in UNITS:
            raise ValueError(f"malformed deadline rule {dict(data)!r}")
        return cls(start, n, unit)


@dataclass(frozen=True, slots=True)
class Deadline:
    """A computed deadline: the instant (aware UTC), its business-time day, and whether it is provisional."""

    at: dt.datetime
    day: dt.date
    provisional: bool
    rule: DeadlineRule


@dataclass(frozen=True, slots=True)
class DayInfo:
    """What the calendar says about one day (for display: 「星期六，调休上班」)."""

    day: dt.date
    working: bool
    #: the festival a holiday or 调休 workday belongs to
    name: str | None
    #: ``holiday`` / ``workday`` (调休) / ``weekend`` / ``weekday``
    kind: str
    provisional: bool

    def describe(self) -> str:
        weekday = f"星期{_WEEKDAYS[self.day.weekday()]}"
        if self.kind == "holiday":
            text = f"{weekday}，{self.name}放假"
        elif self.kind == "workday":
            text = f"{weekday}，{self.name}调休上班"
        elif self.kind == "weekend":
            text = f"{weekday}，休息日"
        else:
            text = f"{weekday}，工作日"
        return text + ("（暂定）" if self.provisional else "")


class WorkingCalendar:
    """Working-day arithmetic over official schedules plus provisional rules for other years.

    Stored days (holidays and 调休 workdays) are authoritative for their date; other days of an
    official year follow the Monday–Friday rule; days of any other year follow
    :data:`PROVISIONAL_RULES` and are *provisional*.
    """

    def __init__(
        self,
        *,
        official_years: Iterable[int],
        holidays: Mapping[dt.date, str],
        workdays: Mapping[dt.date, str],
        timezone: str = DEFAULT_TIMEZONE,
        token: str | None = None,
    ) -> None:
        self.official_years = frozenset(official_years)
        self._holidays = dict(holidays)
        self._workdays = dict(workdays)
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        #: the ``calendar_revision`` token this calendar was read under (None: not from a database)
        self.token = token

    def __repr__(self) -> str:
        years = sorted(self.official_years)
        span = f"{years[0]}–{years[-1]}" if years else "none"
        return f"<WorkingCalendar official={span} token={self.token!r}>"

    # -- single days --

    def is_official(self, year: int) -> bool:
        """Whether ``year`` has an official schedule."""
        return year in self.official_years

    def is_provisional(self, day: dt.date) -> bool:
        """Whether what the calendar says about ``day`` is provisional.

        :raises CalendarOutOfRange: ``day`` outside the supported years.
        """
        _check_year(day.year)
        return day.year not in self.official_years

    def span_provisional(self, a: dt.date, b: dt.date) -> bool:
        """Whether any day between ``a`` and ``b`` (inclusive, either order) is provisional."""
        first, last = min(a, b), max(a, b)
        _check_year(first.year)
        _check_year(last.year)
        return any(year not in self.official_years for year in range(first.year, last.year + 1))

    def day_info(self, day: dt.date) -> DayInfo:
        """What kind of day ``day`` is, and why.

        :raises CalendarOutOfRange: ``day`` outside the supported years.
        """
        provisional = self.is_provisional(day)
        if day in self._workdays:
            return DayInfo(day, True, self._workdays[day], "workday", provisional)
        if day in self._holidays:
            return DayInfo(day, False, self._holidays[day], "holiday", provisional)
        if provisional:
            name = _provisional_holidays(day.year).get(day)
            if name is not None:
                return DayInfo(day, False, name, "holiday", True)
        if day.weekday() >= 5:
            return DayInfo(day, False, None, "weekend", provisional)
        return DayInfo(day, True, None, "weekday", provisional)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day (Mon–Fri unless a holiday, or a 调休 workday).

        :raises CalendarOutOfRange: ``day`` outside the supported years.
        """
        _check_year(day.year)
        if day in self._workdays:
            return True
        if day in self._holidays or day.weekday() >= 5:
            return False
        if day.year in self.official_years:
            return True
        return day not in _provisional_holidays(day.year)

    # -- arithmetic --

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The ``n``-th working day after ``day`` (before it when ``n < 0``; ``day`` itself for 0).

        :raises CalendarOutOfRange: the count runs outside the supported years.
        """
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an integer, not {type(n).__name__}")
        self.is_provisional(day)  # range check of the start
        step = dt.timedelta(days=1 if n >= 0 else -1)
        remaining = abs(n)
        while remaining:
            day += step
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days in ``(a, b]``; negative (those in ``[b, a)``) when ``b < a``.

        :raises CalendarOutOfRange: a date outside the supported years.
        """
        self.span_provisional(a, b)  # range check
        if b < a:
            return -sum(1 for i in range((a - b).days) if self.is_working_day(b + dt.timedelta(days=i)))
        return sum(1 for i in range(1, (b - a).days + 1) if self.is_working_day(a + dt.timedelta(days=i)))

    def next_working_day(self, day: dt.date) -> dt.date:
        """``day`` if it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def end_of_day(self, day: dt.date) -> dt.datetime:
        """23:59:59 business time on ``day``, as aware UTC."""
        return dt.datetime.combine(day, dt.time(23, 59, 59), self.tz).astimezone(dt.UTC)

    def local_date(self, instant: dt.datetime) -> dt.date:
        """The business-time date of an aware instant.

        :raises ValueError: a naive datetime.
        """
        if instant.tzinfo is None or instant.utcoffset() is None:
            raise ValueError(f"naive datetime {instant!r} refused: pass an aware datetime")
        return instant.astimezone(self.tz).date()

    def deadline_after(
        self, start: dt.datetime, n: int, unit: str, *, roll_forward: bool = False
    ) -> Deadline:
        """The deadline ``n`` ``unit`` after the instant ``start``.

        * ``working_days``: the end (23:59:59 business time) of the ``n``-th working day after
          ``start``'s business day;
        * ``calendar_days`` / ``months``: the end of the day ``n`` days / months later (same day
          of the month, or the month's last day), moved to the next working day when
          ``roll_forward`` (《民法典》第二百零三条: a period whose last day is a holiday ends on
          the day after the holiday);
        * ``hours`` / ``minutes``: exactly that much later.

        :raises ValueError: naive ``start``, a non-integer ``n`` or an unknown unit.
        :raises CalendarOutOfRange: the deadline falls outside the supported years.
        """
        if unit not in UNITS:
            raise ValueError(f"unknown unit {unit!r} (expected one of {', '.join(UNITS)})")
        if isinstance(n, bool) or not isinstance(n, int):
            raise ValueError(f"n must be an integer, not {type(n).__name__}")
        local = self.local_date(start)
        rule = DeadlineRule(start, n, unit)
        if unit in ("hours", "minutes"):
            at = (start + dt.timedelta(**{unit: n})).astimezone(dt.UTC)
            return Deadline(at, self.local_date(at), False, rule)
        if unit == "working_days":
            due = self.add_working_days(local, n)
            return Deadline(self.end_of_day(due), due, self.span_provisional(local, due), rule)
        due = local + dt.timedelta(days=n) if unit == "calendar_days" else _add_months(local, n)
        self.is_provisional(due)  # range check
        provisional = False
        if roll_forward:
            rolled = self.next_working_day(due)
            provisional = self.span_provisional(due, rolled)
            due = rolled
        return Deadline(self.end_of_day(due), due, provisional, rule)

    def recompute(self, rule: DeadlineRule) -> Deadline:
        """The same rule evaluated by this calendar (after a schedule was entered)."""
        return self.deadline_after(rule.start, rule.n, rule.unit)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise CalendarOutOfRange(year)
    return dt.date(year, month, min(day.day, _monthrange(year, month)[1]))


# --- package data ------------------------------------------------------------------------------------


def _package_name(english: str) -> str:
    """The Chinese name of a chinese-calendar holiday (its enum value is the English name)."""
    try:
        return str(chinese_calendar.Holiday(english).chinese)
    except ValueError:
        return english


@functools.lru_cache(maxsize=1)
def _package_years() -> tuple[int, ...]:
    """The years chinese-calendar has data for (it raises NotImplementedError outside them)."""
    years: list[int] = []
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        try:
            chinese_calendar.is_workday(dt.date(year, 1, 1))
        except NotImplementedError:
            break
        years.append(year)
    return tuple(years)


def _notice_year(day: dt.date, english: str, years: Sequence[int]) -> int:
    """The notice a package day belongs to: December days of a 元旦 break are the next year's."""
    if day.month == 12 and english == chinese_calendar.Holiday.new_years_day.value and day.year + 1 in years:
        return day.year + 1
    return day.year


def _package_days(year: int, years: Sequence[int]) -> tuple[dict[dt.date, str], dict[dt.date, str]]:
    """The holidays and workdays of ``year``'s notice as chinese-calendar has them."""

    def of_year(table: Mapping[dt.date, str]) -> dict[dt.date, str]:
        return {d: _package_name(n) for d, n in table.items() if _notice_year(d, n, years) == year}

    return of_year(chinese_calendar.holidays), of_year(chinese_calendar.workdays)


@functools.lru_cache(maxsize=1)
def package_calendar(timezone: str = DEFAULT_TIMEZONE) -> WorkingCalendar:
    """A calendar from chinese-calendar alone (no database): what a freshly seeded database holds."""
    return WorkingCalendar(
        official_years=_package_years(),
        holidays={d: _package_name(n) for d, n in chinese_calendar.holidays.items()},
        workdays={d: _package_name(n) for d, n in chinese_calendar.workdays.items()},
        timezone=timezone,
    )


# --- the database ------------------------------------------------------------------------------------


def build_calendar(session: Session, *, timezone: str = DEFAULT_TIMEZONE) -> WorkingCalendar:
    """Read the calendar from the database (uncached; sees the caller's own uncommitted changes)."""
    token = session.scalar(select(CalendarRevision.token).where(CalendarRevision.id == 1))
    official = session.scalars(
        select(CalendarYear.year).where(CalendarYear.status == CalendarYearStatus.OFFICIAL.value)
    ).all()
    holidays: dict[dt.date, str] = {}
    workdays: dict[dt.date, str] = {}
    for day, kind, name in session.execute(select(CalendarDay.day, CalendarDay.kind, CalendarDay.name)):
        (workdays if kind == CalendarDayKind.WORKDAY.value else holidays)[day] = name
    return WorkingCalendar(
        official_years=official, holidays=holidays, workdays=workdays, timezone=timezone, token=token
    )


_cache: WorkingCalendar | None = None
_override: ContextVar[WorkingCalendar | None] = ContextVar("hazardloop_calendar", default=None)


def load_calendar(session: Session, *, timezone: str = DEFAULT_TIMEZONE) -> WorkingCalendar:
    """The calendar, re-read only when its revision token changed; becomes :func:`current_calendar`.

    Costs one primary-key read when nothing changed. Call it at the start of a unit of work that
    may compute deadlines (the runtime's protocol, a worker tick).
    """
    global _cache
    token = session.scalar(select(CalendarRevision.token).where(CalendarRevision.id == 1))
    cached = _cache
    if cached is not None and token is not None and cached.token == token and cached.timezone == timezone:
        return cached
    calendar = build_calendar(session, timezone=timezone)
    _cache = calendar
    return calendar


def current_calendar() -> WorkingCalendar:
    """The calendar for code without a session (service-task handlers, expression functions)."""
    override = _override.get()
    if override is not None:
        return override
    cached = _cache
    if cached is not None:
        return cached
    return package_calendar()


@contextmanager
def using_calendar(calendar: WorkingCalendar) -> Iterator[WorkingCalendar]:
    """Make ``calendar`` the :func:`current_calendar` of this thread/task inside the block."""
    token = _override.set(calendar)
    try:
        yield calendar
    finally:
        _override.reset(token)


def reset_cache() -> None:
    """Forget the process cache (tests; after restoring a database)."""
    global _cache
    _cache = None


def _bump_revision(session: Session, now: dt.datetime) -> None:
    """Mark the calendar changed: every process reloads it on its next :func:`load_calendar`."""
    token = secrets.token_hex(16)
    updated = session.execute(
        update(CalendarRevision)
        .where(CalendarRevision.id == 1)
        .values(value=CalendarRevision.value + 1, token=token, changed_at=now)
    )
    if not getattr(updated, "rowcount", 0):  # a schema built without the migration's seed row
        session.add(CalendarRevision(id=1, value=1, token=token, changed_at=now))
    session.flush()


def seed_from_chinese_calendar(
    session: Session,
    years: Iterable[int] = range(MIN_YEAR, MAX_YEAR + 1),
    *,
    clock: Clock | None = None,
) -> list[int]:
    """Store the official schedules chinese-calendar has, for the ``years`` not stored yet.

    Stops at the first year the package has no data for (2027 with 1.11.0: it raises
    ``NotImplementedError``). A year already in the database — seeded or entered by an
    administrator — is never overwritten. Returns the years seeded.
    """
    now = (clock or SystemClock()).now()
    package_years = _package_years()
    # _package_years() asked the package year by year until it raised NotImplementedError
    last = max(package_years, default=MIN_YEAR - 1)
    wanted = []
    for year in years:
        if year > last:
            break
        if year in package_years:
            wanted.append(year)
    if not set(wanted) - set(session.scalars(select(CalendarYear.year))):
        return []
    _bump_revision(session, now)  # the revision row lock serialises concurrent calendar changes
    existing = set(session.scalars(select(CalendarYear.year)))
    known_days = set(session.scalars(select(CalendarDay.day)))
    seeded = []
    for year in wanted:
        if year in existing:
            continue
        session.add(
            CalendarYear(
                year=year,
                status=CalendarYearStatus.OFFICIAL.value,
                source=SEED_SOURCE,
                entered_by_id=None,
                entered_at=now,
            )
        )
        session.flush()
        holidays, workdays = _package_days(year, package_years)
        for kind, days in ((CalendarDayKind.HOLIDAY, holidays), (CalendarDayKind.WORKDAY, workdays)):
            for day, name in sorted(days.items()):
                if day not in known_days:
                    session.add(CalendarDay(day=day, kind=kind.value, name=name, year=year))
                    known_days.add(day)
        seeded.append(year)
    session.flush()
    return seeded


DayEntry = tuple[dt.date, str]


def _validate_entries(
    year: int, holidays: Sequence[DayEntry], workdays: Sequence[DayEntry]
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        errors.setdefault(key, []).append(message)

    if not holidays:
        add("holidays", "至少需要一个放假日期")
    if len(holidays) + len(workdays) > _MAX_ENTRIES:
        add("holidays", f"日期过多（{len(holidays) + len(workdays)} 个，上限 {_MAX_ENTRIES}）")
    seen: dict[dt.date, str] = {}
    for field, entries in (("holidays", holidays), ("workdays", workdays)):
        for index, entry in enumerate(entries):
            key = f"{field}[{index}]"
            try:
                day, name = entry
            except (TypeError, ValueError):
                add(key, "必须是（日期, 名称）")
                continue
            if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
                add(key, f"日期无效: {day!r}")
                continue
            if not isinstance(name, str) or not name.strip():
                add(key, "名称必填（例如 春节）")
            elif len(name.strip()) > 50:
                add(key, "名称不能超过 50 个字符")
            # a notice may name the last days of the previous December: the 2019 notice's 元旦 is
            # 「2018年12月30日至2019年1月1日放假调休」 with Saturday 2018-12-29 worked
            previous_december = day.year == year - 1 and day.month == 12 and day.day >= 20
            if day.year != year and not previous_december:
                add(key, f"{day.isoformat()} 不在 {year} 年内")
            if day in seen:
                earlier = "放假" if seen[day] == "holidays" else "调休上班"
                add(key, f"{day.isoformat()} 重复（已作为{earlier}日期）")
            seen[day] = field
            if field == "workdays" and day.weekday() < 5:
                add(
                    key, f"{day.isoformat()} 是星期{_WEEKDAYS[day.weekday()]}：调休上班日只能是星期六或星期日"
                )
    holiday_days = [d for d, f in seen.items() if f == "holidays"]
    for index, entry in enumerate(workdays):
        day = entry[0] if isinstance(entry, tuple) and entry else None
        if (
            isinstance(day, dt.date)
            and holiday_days
            and all(abs(day - h) > _WORKDAY_REACH for h in holiday_days)
        ):
            add(f"workdays[{index}]", f"{day.isoformat()} 距离任何放假日期都超过 15 天，请核对")
    return errors


def enter_official_year(
    session: Session,
    year: int,
    holidays: Sequence[DayEntry],
    workdays: Sequence[DayEntry],
    actor_id: int | None = None,
    *,
    source: str = "国务院办公厅节假日安排通知",
    clock: Clock | None = None,
) -> list[dt.date]:
    """Store (or correct) ``year``'s official schedule; returns the days whose status changed.

    Replaces whatever the year had (nothing, the seed, or an earlier entry). Deadlines computed
    on the old calendar are not touched here: run :func:`engine.deadlines.recompute_provisional_deadlines`
    in the same unit of work.

    :raises CalendarOutOfRange: ``year`` outside the supported years.
    :raises InvalidInput: a date outside the year, a duplicate, a 调休 workday that is not a
        Saturday or Sunday, a missing name, a day already stored with the other kind by a
        neighbouring year's schedule (keys ``holidays[i]`` / ``workdays[i]``). Days from 20
        December of the previous year are accepted (a notice's 元旦 break may start there).
    """
    _check_year(year)
    errors = _validate_entries(year, holidays, workdays)
    if errors:
        raise InvalidInput(errors, f"{year} 年节假日安排有误")
    now = (clock or SystemClock()).now()
    _bump_revision(session, now)  # first: its row lock serialises concurrent calendar changes
    before = build_calendar(session)
    entries = {d: (CalendarDayKind.HOLIDAY, n.strip()) for d, n in holidays}
    entries.update({d: (CalendarDayKind.WORKDAY, n.strip()) for d, n in workdays})
    # rows of neighbouring schedules on the same dates (a December weekend named by both notices)
    others = {
        row.day: row
        for row in session.scalars(
            select(CalendarDay).where(CalendarDay.day.in_(list(entries)), CalendarDay.year != year)
        )
    }
    conflicts: dict[str, list[str]] = {}
    for field, items in (("holidays", holidays), ("workdays", workdays)):
        for index, (day, _name) in enumerate(items):
            other = others.get(day)
            if other is not None and other.kind != entries[day][0].value:
                label = "放假" if other.kind == CalendarDayKind.HOLIDAY.value else "调休上班"
                conflicts[f"{field}[{index}]"] = [
                    f"{day.isoformat()} 已在 {other.year} 年安排中登记为{label}"
                ]
    if conflicts:
        raise InvalidInput(conflicts, f"{year} 年节假日安排有误")
    for row in session.scalars(select(CalendarDay).where(CalendarDay.year == year)):
        session.delete(row)
    session.flush()
    record = session.get(CalendarYear, year)
    if record is None:
        record = CalendarYear(year=year)
        session.add(record)
    record.status = CalendarYearStatus.OFFICIAL.value
    record.source = source.strip()[:300] or "国务院办公厅节假日安排通知"
    record.entered_by_id = actor_id
    record.entered_at = now
    session.flush()
    for day, (kind, name) in sorted(entries.items()):
        if day in others:
            others[day].name = name  # same kind: the neighbouring schedule keeps the row
            continue
        session.add(CalendarDay(day=day, kind=kind.value, name=name, year=year))
    session.flush()
    after = build_calendar(session)
    first = min([dt.date(year, 1, 1), *entries])
    span = (dt.date(year, 12, 31) - first).days + 1
    changed = []
    for i in range(span):
        day = first + dt.timedelta(days=i)
        if before.is_working_day(day) != after.is_working_day(day):
            changed.append(day)
    return changed


@dataclass(frozen=True, slots=True)
class Break:
    """Consecutive days with one name (「春节 2026-02-15 至 2026-02-23，共 9 天」)."""

    name: str
    first: dt.date
    last: dt.date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def breaks(days: Iterable[DayEntry]) -> list[Break]:
    """Group dated names into runs of consecutive days with the same name."""
    result: list[Break] = []
    for day, name in sorted(days):
        last = result[-1] if result else None
        if last is not None and last.name == name and day - last.last == dt.timedelta(days=1):
            result[-1] = Break(name, last.first, day)
        else:
            result.append(Break(name, day, day))
    return result


@dataclass(frozen=True, slots=True)
class YearSchedule:
    """One year's schedule as stored (official) or as the provisional rules compute it."""

    year: int
    status: str
    source: str
    entered_at: dt.datetime | None
    entered_by_id: int | None
    #: the entering user's display name (None: seeded, or provisional)
    entered_by: str | None
    holidays: list[DayEntry]
    workdays: list[DayEntry]


def year_schedule(session: Session, year: int) -> YearSchedule:
    """The schedule of ``year`` (for ``calendar show`` and the admin page).

    :raises CalendarOutOfRange: ``year`` outside the supported years.
    """
    _check_year(year)
    record = session.get(CalendarYear, year)
    if record is None or record.status != CalendarYearStatus.OFFICIAL.value:
        return YearSchedule(
            year,
            CalendarYearStatus.PROVISIONAL.value,
            "暂定规则（周末、固定日期节日、农历节日与清明；不含调休上班日）",
            None,
            None,
            None,
            sorted(provisional_holidays(year).items()),
            [],
        )
    rows = session.scalars(
        select(CalendarDay).where(CalendarDay.year == year).order_by(CalendarDay.day)
    ).all()
    user = session.get(User, record.entered_by_id) if record.entered_by_id is not None else None
    return YearSchedule(
        year,
        record.status,
        record.source,
        record.entered_at,
        record.entered_by_id,
        user.display_name if user is not None else None,
        [(r.day, r.name) for r in rows if r.kind == CalendarDayKind.HOLIDAY.value],
        [(r.day, r.name) for r in rows if r.kind == CalendarDayKind.WORKDAY.value],
    )


def parse_schedule_document(document: Any) -> tuple[list[DayEntry], list[DayEntry], str | None]:
    """Read a schedule document: ``{"holidays": [...], "workdays": [...], "source": "…"}``.

    Each holiday is ``{"date": "2027-02-06", "name": "春节"}`` or a range
    ``{"from": "2027-02-05", "to": "2027-02-12", "name": "春节"}``; each workday is
    ``{"date": …, "name": …}``.

    :raises InvalidInput: the document's shape or a date is wrong (keys name the entry).
    """
    errors: dict[str, list[str]] = {}
    if not isinstance(document, Mapping):
        raise InvalidInput({"document": ['必须是 JSON 对象：{"holidays": [...], "workdays": [...]}']})
    unknown = set(document) - {"holidays", "workdays", "source"}
    for key in sorted(unknown):
        errors[key] = ["未知字段"]
    source = document.get("source")
    if source is not None and not isinstance(source, str):
        errors["source"] = ["必须是字符串"]
        source = None
    parsed: dict[str, list[DayEntry]] = {"holidays": [], "workdays": []}
    for field in ("holidays", "workdays"):
        items = document.get(field, [])
        if not isinstance(items, list):
            errors[field] = ["必须是列表"]
            continue
        for index, item in enumerate(items):
            key = f"{field}[{index}]"
            if not isinstance(item, Mapping):
                errors[key] = ['必须是 {"date": "YYYY-MM-DD", "name": "…"}']
                continue
            allowed = {"date", "name"} | ({"from", "to"} if field == "holidays" else set())
            extra = set(item) - allowed
            if extra:
                errors[key] = [f"未知字段 {', '.join(sorted(extra))}"]
                continue
            name = item.get("name")
            try:
                if "date" in item:
                    if "from" in item or "to" in item:
                        raise ValueError("date 与 from/to 只能二选一")
                    days = [_parse_day(item["date"])]
                elif "from" in item and "to" in item:
                    first, last = _parse_day(item["from"]), _parse_day(item["to"])
                    if last < first or (last - first).days > 31:
                        raise ValueError(f"日期范围无效: {first} 至 {last}")
                    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
                else:
                    raise ValueError("缺少 date（或 from/to）")
            except ValueError as exc:
                errors[key] = [str(exc)]
                continue
            parsed[field].extend((day, name if isinstance(name, str) else "") for day in days)
    if errors:
        raise InvalidInput(errors, "节假日安排文件格式有误")
    return parsed["holidays"], parsed["workdays"], source


def _parse_day(value: object) -> dt.date:
    if not isinstance(value, str):
        raise ValueError(f"日期必须是 YYYY-MM-DD 字符串: {value!r}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"日期无效: {value!r}（应为 YYYY-MM-DD）") from None


# --- expression functions ------------------------------------------------------------------------------


def _instant(value: object, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise TypeError(f"{what} 需要 ISO-8601 时间字符串, 得到 {type(value).__name__}")
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} 不是合法的 ISO-8601 时间: {value!r}") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} 必须带时区 (例如 +08:00 或 Z): {value!r}")
    return instant


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"工作日数必须是整数, 得到 {type(value).__name__}")
    if abs(value) > 3660:
        raise ValueError(f"工作日数超出范围: {value}")
    return value


def working_days_after(ts: object, n: object) -> str:
    """End of the business day (23:59:59 Asia/Shanghai, as ISO UTC) ``n`` working days after ``ts``."""
    calendar = current_calendar()
    day = calendar.add_working_days(calendar.local_date(_instant(ts, "时间")), _count(n))
    return calendar.end_of_day(day).isoformat()


def working_days_before(ts: object, n: object) -> str:
    """End of the business day (as ISO UTC) ``n`` working days before ``ts``."""
    calendar = current_calendar()
    day = calendar.add_working_days(calendar.local_date(_instant(ts, "时间")), -_count(n))
    return calendar.end_of_day(day).isoformat()


def working_days_between(a: object, b: object) -> int:
    """Working days from the business day of ``a`` to that of ``b`` (``(a, b]``; negative if ``b < a``)."""
    calendar = current_calendar()
    start = calendar.local_date(_instant(a, "起始时间"))
    end = calendar.local_date(_instant(b, "结束时间"))
    return calendar.working_days_between(start, end)


#: escalation rungs measured in days fire when the working day starts (Asia/Shanghai business time)
RUNG_START_OF_DAY = dt.time(9, 0)


def ladder_time(ladder: object, rung: object, base: object, not_before: object = None) -> str:
    """When escalation rung ``rung`` falls due, from the pinned ``ladder`` data (ISO UTC).

    ``ladder`` is the instance's ``{rung: [n, unit]}`` (from its pinned policy profile; ``n`` is
    negative for a rung before ``base``). Day-based units: 09:00 business time of the ``n``-th
    working day / calendar day / month after (before) the business day of ``base`` (zero: 09:00
    of that day, or ``base`` itself if earlier). Hours and minutes: exactly that much later.
    ``not_before`` (an ISO instant or None) postpones the rung, e.g. for imported hazards whose
    escalation is suppressed.
    """
    if not isinstance(ladder, dict) or not isinstance(rung, str):
        raise TypeError("ladder_time(ladder, rung, base, not_before) 需要督办梯度配置和梯度名称")
    spec = ladder.get(rung)
    if not isinstance(spec, list) or len(spec) != 2:
        raise ValueError(f"固定的策略配置没有督办梯度 {rung!r}")
    n, unit = spec
    n = _count(n)
    start = _instant(base, "基准时间")
    calendar = current_calendar()
    if n == 0 and unit in ("hours", "minutes"):
        at = start.astimezone(dt.UTC)
    elif unit in ("hours", "minutes"):
        at = (start + dt.timedelta(**{unit: n})).astimezone(dt.UTC)
    else:
        day = calendar.local_date(start)
        if unit == "working_days":
            day = calendar.add_working_days(day, n)
        elif unit == "calendar_days":
            day = day + dt.timedelta(days=n)
        elif unit == "months":
            day = _add_months(day, n)
        else:
            raise ValueError(f"督办梯度 {rung} 的单位 {unit!r} 不是期限单位")
        at = dt.datetime.combine(day, RUNG_START_OF_DAY, tzinfo=calendar.tz).astimezone(dt.UTC)
        if n == 0:
            at = min(at, start.astimezone(dt.UTC))
    if not_before is not None and not_before != "":
        floor = _instant(not_before, "暂缓督办截止时间").astimezone(dt.UTC)
        at = max(at, floor)
    return at.isoformat()


expressions.register_function("ladder_time", ladder_time)
expressions.register_function("working_days_after", working_days_after)
expressions.register_function("working_days_before", working_days_before)
expressions.register_function("working_days_between", working_days_between)
