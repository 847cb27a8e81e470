"""``/admin/calendar``: the working-day calendar (法定节假日与调休) in the web administration.

* ``/admin/calendar``: every year from 2004 with its status (official from the chinese-calendar
  seed, official as entered by an administrator, or provisional), its holiday and 调休 workday
  counts, and how many working-day deadlines of running processes still rest on a provisional year;
* ``/admin/calendar/<year>``: the year's schedule, month by month;
* ``/admin/calendar/<year>/enter``: the form that enters the State Council's notice
  (国务院办公厅关于某年部分节假日安排的通知) for the year, pre-filled with what the calendar
  has now (the provisional schedule, or the stored one) so the administrator only corrects it.

The same engine calls as ``hazardloop calendar show`` and ``calendar enter-year`` (web/cli.py):
:func:`engine.calendar.year_schedule` to show a year; :func:`engine.calendar.parse_schedule_document`,
:func:`engine.calendar.enter_official_year` and :func:`engine.deadlines.recompute_provisional_deadlines`
in one unit of work to enter one. Their ``InvalidInput`` re-renders the form (422) with each
message on the form row it names and the typed rows kept; nothing is stored then.

As for the organisations (``/admin/orgs``): a system administrator enters schedules, a 安委办
may look at the calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine import calendar as workcal
from engine import deadlines
from engine.errors import InvalidInput
from engine.models import CalendarYearStatus
from engine.models import Hazard
from engine.models import Role
from engine.runtime import EngineContext

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions

bp = Blueprint("admin_calendar", __name__)

#: years listed after the current one (the engine computes provisional years up to MAX_YEAR)
YEARS_AHEAD = 5
#: form rows of each kind accepted in one POST (a notice names about seven breaks and a few 调休 days)
MAX_ROWS = 40
#: blank rows offered after the pre-filled ones (no script: clear a row to drop it)
BLANK_HOLIDAY_ROWS = 2
MIN_WORKDAY_ROWS = 6
WEEKDAYS = "一二三四五六日"

_INDEXED = re.compile(r"^(holidays|workdays)\[(\d+)\]$")


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return current_app.make_response((render_template(template, **context), status))


def _this_year(ctx: EngineContext) -> int:
    return ctx.clock.now().astimezone(ctx.tz).year


def _kind(schedule: workcal.YearSchedule) -> str:
    """``seeded`` (chinese-calendar), ``entered`` (by an administrator) or ``provisional``."""
    if schedule.status != CalendarYearStatus.OFFICIAL.value:
        return "provisional"
    return "seeded" if schedule.source.startswith("chinese-calendar") else "entered"


# --- the list of years ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class YearRow:
    year: int
    kind: str
    schedule: workcal.YearSchedule
    #: working-day deadlines of running processes computed on this (provisional) year
    provisional_deadlines: int


@bp.get("/admin/calendar")
@login_required
@roles_required(Role.SYS_ADMIN, Role.OFFICE_ADMIN)
def index() -> Response:
    """Every year the calendar knows, newest first; ``?year=`` jumps to one year's page."""
    wanted = request.args.get("year", "").strip()
    if wanted:
        if wanted.isdigit() and workcal.MIN_YEAR <= int(wanted) <= workcal.MAX_YEAR:
            return redirect(url_for("admin_calendar.show", year=int(wanted)))
        flash(
            _("年份须在 {first}–{last} 之间", first=workcal.MIN_YEAR, last=workcal.MAX_YEAR),
            "error",
        )
    ctx = engine_context()
    this_year = _this_year(ctx)
    with read_session() as session:
        calendar = workcal.load_calendar(session, timezone=ctx.settings.business_timezone)
        pending: Counter[int] = Counter()
        for tracked in deadlines.tracked_deadlines(session, calendar, provisional_only=True):
            first = calendar.local_date(tracked.rule.start).year
            last = calendar.local_date(tracked.due).year
            for year in range(min(first, last), max(first, last) + 1):
                if not calendar.is_official(year):
                    pending[year] += 1
        last_year = max(this_year + YEARS_AHEAD, *calendar.official_years, *pending)
        years = range(min(last_year, workcal.MAX_YEAR), workcal.MIN_YEAR - 1, -1)
        rows = []
        for year in years:
            schedule = workcal.year_schedule(session, year)
            rows.append(YearRow(year, _kind(schedule), schedule, pending.get(year, 0)))
        return _page(
            "admin/calendar.html",
            rows=rows,
            this_year=this_year,
            next_year=next((r for r in rows if r.year == this_year + 1), None),
            can_enter=Role.SYS_ADMIN in current_actor().roles,
            min_year=workcal.MIN_YEAR,
            max_year=workcal.MAX_YEAR,
        )


# --- one year ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayRow:
    day: dt.date
    weekday: str
    #: ``holiday`` (放假) or ``workday`` (调休上班)
    kind: str
    name: str


def _months(schedule: workcal.YearSchedule) -> list[tuple[str, list[DayRow]]]:
    """The schedule's days by month: the previous December first if the notice names some."""
    days = [(d, "holiday", n) for d, n in schedule.holidays] + [
        (d, "workday", n) for d, n in schedule.workdays
    ]
    rows = [DayRow(d, f"星期{WEEKDAYS[d.weekday()]}", kind, name) for d, kind, name in sorted(days)]
    months: list[tuple[str, list[DayRow]]] = []
    earlier = [r for r in rows if r.day.year < schedule.year]
    if earlier:
        months.append((_("{year} 年 12 月", year=schedule.year - 1), earlier))
    for month in range(1, 13):
        months.append(
            (
                _("{month} 月", month=month),
                [r for r in rows if r.day.year == schedule.year and r.day.month == month],
            )
        )
    return months


@bp.get("/admin/calendar/<int:year>")
@login_required
@roles_required(Role.SYS_ADMIN, Role.OFFICE_ADMIN)
def show(year: int) -> Response:
    with read_session() as session:
        schedule = workcal.year_schedule(session, year)
        return _page(
            "admin/calendar_year.html",
            schedule=schedule,
            kind=_kind(schedule),
            breaks=workcal.breaks(schedule.holidays),
            months=_months(schedule),
            can_enter=Role.SYS_ADMIN in current_actor().roles,
            min_year=workcal.MIN_YEAR,
            max_year=workcal.MAX_YEAR,
        )


# --- entering a year's schedule ------------------------------------------------------------------------


def _prefilled(schedule: workcal.YearSchedule) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    holidays = [
        {"name": b.name, "first": b.first.isoformat(), "last": b.last.isoformat()}
        for b in workcal.breaks(schedule.holidays)
    ]
    holidays += [{"name": "", "first": "", "last": ""}] * BLANK_HOLIDAY_ROWS
    workdays = [{"date": d.isoformat(), "name": n} for d, n in schedule.workdays]
    workdays += [{"date": "", "name": ""}] * max(2, MIN_WORKDAY_ROWS - len(workdays))
    return holidays, workdays


def _posted_rows(form: MultiDict[str, str]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The rows as typed (blank ones included, so that row numbers match the messages)."""
    holidays = [
        {"name": n.strip(), "first": f.strip(), "last": last.strip()}
        for n, f, last in zip_longest(
            form.getlist("holiday_name"),
            form.getlist("holiday_first"),
            form.getlist("holiday_last"),
            fillvalue="",
        )
    ]
    workdays = [
        {"date": d.strip(), "name": n.strip()}
        for d, n in zip_longest(form.getlist("workday_date"), form.getlist("workday_name"), fillvalue="")
    ]
    return holidays, workdays


@dataclass
class _Document:
    """The form rows as an :func:`engine.calendar.parse_schedule_document` document.

    ``holiday_rows[k]`` / ``workday_rows[k]`` is the form row of the document's ``k``-th entry.
    """

    document: dict[str, Any]
    holiday_rows: list[int]
    workday_rows: list[int]
    errors: dict[str, list[str]]


def _document(
    holidays: Sequence[Mapping[str, str]], workdays: Sequence[Mapping[str, str]], source: str
) -> _Document:
    doc = _Document({"holidays": [], "workdays": [], "source": source}, [], [], {})
    for field, rows in (("holidays", holidays), ("workdays", workdays)):
        if len(rows) > MAX_ROWS:
            doc.errors[field] = [_("行数过多（上限 {n} 行）", n=MAX_ROWS)]
            continue
        for index, row in enumerate(rows):
            if not any(row.values()):
                continue  # a blank row: not part of the schedule
            if field == "holidays":
                first, last = row["first"], row["last"] or row["first"]
                if not first:
                    doc.errors[f"holidays[{index}]"] = [_("请填写放假第一天")]
                    continue
                item = {"date": first} if first == last else {"from": first, "to": last}
                doc.document["holidays"].append({**item, "name": row["name"]})
                doc.holiday_rows.append(index)
            else:
                if not row["date"]:
                    doc.errors[f"workdays[{index}]"] = [_("请填写调休上班日期")]
                    continue
                doc.document["workdays"].append({"date": row["date"], "name": row["name"]})
                doc.workday_rows.append(index)
    return doc


def _day_rows(doc: _Document) -> tuple[list[int], list[int]]:
    """The form row of each day :func:`parse_schedule_document` returned (a range is one row)."""
    holiday_days: list[int] = []
    for item, row in zip(doc.document["holidays"], doc.holiday_rows, strict=True):
        if "date" in item:
            holiday_days.append(row)
        else:
            span = dt.date.fromisoformat(item["to"]) - dt.date.fromisoformat(item["from"])
            holiday_days.extend([row] * (span.days + 1))
    return holiday_days, list(doc.workday_rows)


def _on_rows(
    messages: Mapping[str, Any], holiday_rows: Sequence[int], workday_rows: Sequence[int]
) -> dict[str, list[str]]:
    """Engine messages keyed ``holidays[i]`` (``i`` an entry of the engine's list) moved to form rows."""
    result: dict[str, list[str]] = {}
    for key, value in messages.items():
        items = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
        match = _INDEXED.match(key)
        if match:
            rows = holiday_rows if match.group(1) == "holidays" else workday_rows
            position = int(match.group(2))
            if position < len(rows):
                key = f"{match.group(1)}[{rows[position]}]"
        target = result.setdefault(key, [])
        target.extend(m for m in items if m not in target)  # a range repeats a message per day
    return result


@dataclass(frozen=True, slots=True)
class MovedDeadline:
    number: str
    title: str
    task_key: str | None
    variables: str
    old_due_at: dt.datetime
    new_due_at: dt.datetime


def _render_form(
    year: int,
    holidays: Sequence[Mapping[str, str]],
    workdays: Sequence[Mapping[str, str]],
    *,
    source: str,
    schedule: workcal.YearSchedule | None = None,
    confirmed: bool = False,
    errors: Mapping[str, Any] | None = None,
    status: int = 200,
) -> Response:
    errors = errors or {}
    with read_session() as session:
        if schedule is None:
            schedule = workcal.year_schedule(session, year)
        return _page(
            "admin/calendar_enter.html",
            status,
            year=year,
            schedule=schedule,
            kind=_kind(schedule),
            holidays=holidays,
            workdays=workdays,
            source=source,
            confirmed=confirmed,
            errors=errors,
            # messages the form has no place for (the rows and fields show their own)
            general_errors=[
                m
                for k, v in errors.items()
                if not _INDEXED.match(k) and k not in ("source", "confirm")
                for m in (v if isinstance(v, list | tuple) else [v])
            ],
            first_day=dt.date(year - 1, 12, 20).isoformat() if year > workcal.MIN_YEAR else f"{year}-01-01",
            last_day=f"{year}-12-31",
        )


@bp.get("/admin/calendar/<int:year>/enter")
@login_required
@roles_required(Role.SYS_ADMIN)
def enter_form(year: int) -> Response:
    with read_session() as session:
        schedule = workcal.year_schedule(session, year)
    holidays, workdays = _prefilled(schedule)
    source = schedule.source if _kind(schedule) == "entered" else ""
    return _render_form(year, holidays, workdays, source=source, schedule=schedule)


@bp.post("/admin/calendar/<int:year>/enter")
@login_required
@roles_required(Role.SYS_ADMIN)
def enter(year: int) -> Response:
    """Enter ``year``'s official schedule and recompute the deadlines that touch the year.

    Form: ``holiday_name``/``holiday_first``/``holiday_last`` rows (a one-day break may leave the
    last day blank), ``workday_date``/``workday_name`` rows, ``source`` (the notice's 文号) and,
    when the year is official already, ``confirm=1``. Blank rows are ignored.
    """
    holidays, workdays = _posted_rows(request.form)
    source = request.form.get("source", "").strip()
    confirmed = request.form.get("confirm") == "1"
    doc = _document(holidays, workdays, source)
    errors = dict(doc.errors)
    if not source:
        errors["source"] = [_("请填写通知文号，例如 国办发明电〔{y}〕7号", y=year - 1)]
    elif len(source) > 300:
        errors["source"] = [_("不能超过 300 个字符")]
    entries: list[workcal.DayEntry] = []
    adjusted: list[workcal.DayEntry] = []
    try:
        entries, adjusted, _source = workcal.parse_schedule_document(doc.document)
    except InvalidInput as exc:
        errors.update(_on_rows(exc.messages, doc.holiday_rows, doc.workday_rows))
    ctx = engine_context()
    try:
        with sessions().begin() as session:
            schedule = workcal.year_schedule(session, year)  # CalendarOutOfRange: 400
            if schedule.status == CalendarYearStatus.OFFICIAL.value and not confirmed:
                errors["confirm"] = [_("{year} 年已有正式安排，请勾选确认后再替换", year=year)]
            if errors:
                raise InvalidInput(errors, f"{year} 年节假日安排有误")
            try:
                changed = workcal.enter_official_year(
                    session, year, entries, adjusted, current_actor().user_id, source=source
                )
            except InvalidInput as exc:
                raise InvalidInput(_on_rows(exc.messages, *_day_rows(doc)), str(exc)) from exc
            results = deadlines.recompute_provisional_deadlines(session, ctx, year)
            moved = []
            for result in results:
                if result.moved:
                    hazard = session.get_one(Hazard, result.hazard_id)
                    moved.append(
                        MovedDeadline(
                            hazard.number,
                            hazard.title,
                            result.task_key,
                            "、".join(result.variables),
                            result.old_due_at,
                            result.new_due_at,
                        )
                    )
    except InvalidInput as exc:
        return _render_form(
            year, holidays, workdays, source=source, confirmed=confirmed, errors=exc.messages, status=422
        )
    with read_session() as session:  # this process computes on the new calendar from now on
        workcal.load_calendar(session, timezone=ctx.settings.business_timezone)
    flash(
        _(
            "{year} 年节假日安排已录入：放假 {off} 天，调休上班 {work} 天，{changed} 天工作日状态改变",
            year=year,
            off=len(entries),
            work=len(adjusted),
            changed=len(changed),
        ),
        "success",
    )
    return _page(
        "admin/calendar_entered.html",
        year=year,
        moved=moved,
        confirmed_only=len(results) - len(moved),
    )
