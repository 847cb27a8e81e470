"""engine.calendar: working days with Chinese public holidays, 调休 workdays and provisional years.

The holiday data asserted here is the State Council's (as chinese-calendar 1.11.0 carries it):
2026 春节 2/15–2/23 with Saturdays 2/14 and 2/28 worked; 2025 国庆 (with 中秋) 10/1–10/8 with
Sunday 9/28 and Saturday 10/11 worked.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import pytest
from lunardate import LunarDate
from sqlalchemy import delete
from sqlalchemy import select

from engine import calendar
from engine.calendar import CalendarOutOfRange
from engine.calendar import WorkingCalendar
from engine.clock import FixedClock
from engine.errors import EngineError
from engine.errors import ExpressionError
from engine.errors import InvalidInput
from engine.expressions import check
from engine.expressions import evaluate
from engine.handlers import HandlerContext
from engine.handlers import call_handler
from engine.models import CalendarDay
from engine.models import CalendarYear

D = dt.date
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

HOLIDAYS_2027 = [
    *((D(2027, 1, d), "元旦") for d in (1, 2, 3)),
    *((D(2027, 2, d), "春节") for d in range(5, 13)),
    *((D(2027, 4, d), "清明") for d in (3, 4, 5)),
    *((D(2027, 5, d), "劳动节") for d in range(1, 6)),
    (D(2027, 6, 9), "端午"),
    (D(2027, 9, 15), "中秋"),
    *((D(2027, 10, d), "国庆节") for d in range(1, 8)),
]
WORKDAYS_2027 = [
    (D(2027, 1, 31), "春节"),
    (D(2027, 2, 20), "春节"),
    (D(2027, 5, 8), "劳动节"),
    (D(2027, 9, 26), "国庆节"),
    (D(2027, 10, 9), "国庆节"),
]


@pytest.fixture(autouse=True)
def fresh_calendar_cache():
    calendar.reset_cache()
    yield
    calendar.reset_cache()


@pytest.fixture
def cal(sessions) -> WorkingCalendar:
    """The calendar as the test database holds it (seeded 2004–2026 by the session fixture)."""
    with sessions() as session:
        return calendar.build_calendar(session)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


# --- 春节 2026 and 国庆 2025 ------------------------------------------------------------------------


def test_spring_festival_2026_with_its_adjusted_saturdays(cal):
    assert chinese_calendar.is_workday(D(2026, 2, 14)) and chinese_calendar.is_workday(D(2026, 2, 28))
    for day in days(D(2026, 2, 15), D(2026, 2, 23)):
        assert not cal.is_working_day(day), day
        assert cal.day_info(day).name == "春节"
    for saturday in (D(2026, 2, 14), D(2026, 2, 28)):
        info = cal.day_info(saturday)
        assert (info.working, info.kind, info.name) == (True, "workday", "春节")
        assert info.describe() == "星期六，春节调休上班"
    assert cal.is_working_day(D(2026, 2, 13)) and cal.is_working_day(D(2026, 2, 24))
    assert not cal.is_working_day(D(2026, 2, 7))  # an ordinary Saturday

    assert cal.add_working_days(D(2026, 2, 13), 1) == D(2026, 2, 14)  # Friday → the 调休 Saturday
    assert cal.add_working_days(D(2026, 2, 14), 1) == D(2026, 2, 24)  # across the whole break
    assert cal.add_working_days(D(2026, 2, 13), 2) == D(2026, 2, 24)
    assert cal.add_working_days(D(2026, 2, 24), -1) == D(2026, 2, 14)
    assert cal.add_working_days(D(2026, 2, 14), -1) == D(2026, 2, 13)
    assert cal.add_working_days(D(2026, 2, 27), 1) == D(2026, 2, 28)
    assert cal.add_working_days(D(2026, 2, 28), 1) == D(2026, 3, 2)
    assert cal.add_working_days(D(2026, 2, 18), 0) == D(2026, 2, 18)
    assert cal.working_days_between(D(2026, 2, 13), D(2026, 2, 24)) == 2
    assert cal.working_days_between(D(2026, 2, 24), D(2026, 2, 13)) == -2
    assert cal.working_days_between(D(2026, 2, 15), D(2026, 2, 23)) == 0
    # February: 20 weekdays, minus the 6 of them off for 春节 (2/16–2/20, 2/23), plus two Saturdays
    assert cal.working_days_between(D(2026, 1, 31), D(2026, 2, 28)) == 20 - 6 + 2

    # 10 working days from Thursday 2026-02-12 09:00: 2/13, 2/14, 2/24–2/27, 2/28, 3/2, 3/3, 3/4
    deadline = cal.deadline_after(dt.datetime(2026, 2, 12, 9, 0, tzinfo=SHANGHAI), 10, "working_days")
    assert deadline.day == D(2026, 3, 4)
    assert deadline.at == dt.datetime(2026, 3, 4, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai
    assert deadline.provisional is False


def test_national_day_2025_with_mid_autumn_and_its_adjusted_weekend_days(cal):
    for day in days(D(2025, 10, 1), D(2025, 10, 8)):
        assert not cal.is_working_day(day), day
    assert cal.day_info(D(2025, 10, 6)).name == "中秋"
    assert cal.day_info(D(2025, 10, 1)).name == "国庆节"
    sunday, saturday = cal.day_info(D(2025, 9, 28)), cal.day_info(D(2025, 10, 11))
    assert (sunday.working, sunday.describe()) == (True, "星期日，国庆节调休上班")
    assert (saturday.working, saturday.describe()) == (True, "星期六，国庆节调休上班")

    assert cal.add_working_days(D(2025, 9, 26), 1) == D(2025, 9, 28)
    assert cal.add_working_days(D(2025, 9, 28), 1) == D(2025, 9, 29)
    assert cal.add_working_days(D(2025, 9, 30), 1) == D(2025, 10, 9)
    assert cal.add_working_days(D(2025, 10, 10), 1) == D(2025, 10, 11)
    assert cal.add_working_days(D(2025, 10, 11), 1) == D(2025, 10, 13)
    assert cal.add_working_days(D(2025, 10, 9), -2) == D(2025, 9, 29)
    assert cal.working_days_between(D(2025, 9, 30), D(2025, 10, 13)) == 4  # 10/9, 10/10, 10/11, 10/13
    assert cal.working_days_between(D(2025, 9, 26), D(2025, 9, 29)) == 2  # 9/28, 9/29

    # 5 working days from Monday 2025-09-29: 9/30, 10/9, 10/10, 10/11 (Saturday), 10/13
    deadline = cal.deadline_after(dt.datetime(2025, 9, 29, 1, 0, tzinfo=dt.UTC), 5, "working_days")
    assert (deadline.day, deadline.provisional) == (D(2025, 10, 13), False)


def test_adding_and_counting_are_inverse_across_both_breaks(cal):
    starts = [*days(D(2025, 9, 20), D(2025, 10, 15)), *days(D(2026, 2, 5), D(2026, 3, 5))]
    for start in starts:
        for n in range(-12, 13):
            end = cal.add_working_days(start, n)
            if n:
                assert cal.is_working_day(end)
                assert (end > start) == (n > 0)
            assert cal.working_days_between(start, end) == n, (start, n)


def test_the_seeded_calendar_is_chinese_calendar_day_for_day(cal):
    assert cal.official_years == frozenset(range(2004, 2027))
    for day in days(D(2004, 1, 1), D(2026, 12, 31)):
        assert cal.is_working_day(day) == chinese_calendar.is_workday(day), day
    assert calendar.package_calendar().official_years == cal.official_years


# --- provisional years --------------------------------------------------------------------------------


def test_chinese_calendar_has_no_2027():
    # the reason the schedule is data: the package stops at 2026
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(D(2027, 1, 4))


def test_2027_is_provisional_weekends_spring_festival_from_lunardate_and_qingming(cal):
    assert not cal.is_official(2027)
    assert cal.is_provisional(D(2027, 3, 1)) and not cal.is_provisional(D(2026, 12, 31))
    new_year = LunarDate(2027, 1, 1).to_solar_date()
    assert new_year == D(2027, 2, 6)
    # 春节: 除夕 (2/5) through 正月初七 (2/12)
    for day in days(new_year - dt.timedelta(days=1), new_year + dt.timedelta(days=6)):
        info = cal.day_info(day)
        assert (info.working, info.name, info.provisional) == (False, "春节", True), day
    assert cal.is_working_day(D(2027, 2, 4)) and cal.is_working_day(D(2027, 2, 15))
    assert cal.day_info(D(2027, 2, 4)).describe() == "星期四，工作日（暂定）"
    # 清明 is a solar term: Monday 5 April 2027
    qingming = [
        d for d, name in chinese_calendar.get_solar_terms(D(2027, 4, 1), D(2027, 4, 30)) if name == "清明"
    ]
    assert qingming == [D(2027, 4, 5)]
    assert cal.day_info(D(2027, 4, 5)).name == "清明" and not cal.is_working_day(D(2027, 4, 5))
    assert cal.is_working_day(D(2027, 4, 6))
    # weekends, and no 调休 workdays are guessed
    assert not cal.is_working_day(D(2027, 3, 6)) and not cal.is_working_day(D(2027, 3, 7))
    assert all(not cal.is_working_day(d) for d in days(D(2027, 1, 1), D(2027, 12, 31)) if d.weekday() >= 5)
    # the other festivals
    holidays = calendar.provisional_holidays(2027)
    assert holidays[D(2027, 1, 1)] == "元旦"
    assert [d for d, n in holidays.items() if n == "劳动节"] == days(D(2027, 5, 1), D(2027, 5, 5))
    assert holidays[LunarDate(2027, 5, 5).to_solar_date()] == "端午"
    assert holidays[LunarDate(2027, 8, 15).to_solar_date()] == "中秋"
    assert [d for d, n in holidays.items() if n == "国庆节"] == days(D(2027, 10, 1), D(2027, 10, 7))


def test_a_deadline_crossing_into_2027_is_provisional(cal):
    # from Thursday 2026-12-24: 12/25, 12/28–12/31, (元旦 1/1), 1/4–1/8
    deadline = cal.deadline_after(dt.datetime(2026, 12, 24, 9, 0, tzinfo=SHANGHAI), 10, "working_days")
    assert (deadline.day, deadline.provisional) == (D(2027, 1, 8), True)
    inside_2026 = cal.deadline_after(dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI), 10, "working_days")
    assert (inside_2026.day, inside_2026.provisional) == (D(2026, 12, 15), False)
    assert cal.span_provisional(D(2026, 12, 30), D(2027, 1, 2))
    assert not cal.span_provisional(D(2026, 1, 1), D(2026, 12, 31))


def test_provisional_rules_bridge_single_festivals_and_extend_national_day():
    # 中秋 inside 国庆 makes the break eight days (2020: 10/1, 2025: 10/6 — as the notices did)
    assert max(d for d, n in calendar.provisional_holidays(2025).items() if d.month == 10) == D(2025, 10, 8)
    assert max(d for d, n in calendar.provisional_holidays(2027).items() if d.month == 10) == D(2027, 10, 7)
    # a Thursday festival joins the Friday (2026 元旦: 1/1–1/3), a Sunday one the Monday (补休)
    assert D(2026, 1, 2) in calendar.provisional_holidays(2026)
    assert calendar.provisional_holidays(2028)[D(2028, 1, 3)] == "元旦"  # 2028-01-01 is a Saturday
    # 2028: 中秋 (Tuesday 10/3) inside 国庆 keeps its own name; its bridge Monday stays 国庆
    assert calendar.provisional_holidays(2028)[D(2028, 10, 3)] == "中秋"
    assert calendar.provisional_holidays(2028)[D(2028, 10, 2)] == "国庆节"


def test_provisional_rules_never_make_a_deadline_earlier_than_the_official_schedule(cal):
    """For 2019–2026 every official day off is a provisional day off (so provisional deadlines are
    never earlier); the provisional calendar only misses the 调休 workdays and a few bridges."""
    provisional = WorkingCalendar(official_years=[], holidays={}, workdays={})
    for year in range(2019, 2027):
        year_days = days(D(year, 1, 1), D(year, 12, 31))
        too_early = [d for d in year_days if provisional.is_working_day(d) and not cal.is_working_day(d)]
        too_late = [d for d in year_days if cal.is_working_day(d) and not provisional.is_working_day(d)]
        assert too_early == [], year
        assert len(too_late) <= 10, (year, too_late)
    for start in days(D(2025, 1, 1), D(2025, 12, 20)):
        assert provisional.add_working_days(start, 10) >= cal.add_working_days(start, 10)


# --- out of range --------------------------------------------------------------------------------------


def test_out_of_range_is_an_explicit_error(cal, sessions):
    for day in (D(2100, 1, 1), D(2003, 12, 31)):
        with pytest.raises(CalendarOutOfRange) as err:
            cal.is_working_day(day)
        assert isinstance(err.value, EngineError)
        assert "2004–2099" in str(err.value)
    assert cal.is_working_day(D(2099, 12, 31)) is True  # a Thursday: the last supported day
    with pytest.raises(CalendarOutOfRange):
        cal.add_working_days(D(2099, 12, 30), 5)
    with pytest.raises(CalendarOutOfRange):
        cal.add_working_days(D(2004, 1, 5), -5)
    with pytest.raises(CalendarOutOfRange):
        cal.deadline_after(dt.datetime(2099, 12, 1, tzinfo=dt.UTC), 2, "months")
    with pytest.raises(CalendarOutOfRange):
        cal.working_days_between(D(2026, 1, 1), D(2100, 1, 1))
    with pytest.raises(CalendarOutOfRange):
        calendar.provisional_holidays(2100)
    with sessions.begin() as session:
        with pytest.raises(CalendarOutOfRange):
            calendar.year_schedule(session, 2003)
        with pytest.raises(CalendarOutOfRange):
            calendar.enter_official_year(session, 2100, [(D(2100, 1, 1), "元旦")], [])


# --- the database: seeding and entering a year -------------------------------------------------------------


def test_seeding_keeps_stored_years_and_stops_where_chinese_calendar_stops(sessions):
    with sessions.begin() as session:
        assert calendar.seed_from_chinese_calendar(session) == []  # the session fixture seeded it
        session.execute(delete(CalendarDay).where(CalendarDay.year == 2026))
        session.execute(delete(CalendarYear).where(CalendarYear.year == 2026))
        assert calendar.seed_from_chinese_calendar(session, range(2025, 2031)) == [2026]
        assert session.get(CalendarYear, 2027) is None
        assert session.get(CalendarYear, 2026).source == "chinese-calendar 1.11.0"
        schedule = calendar.year_schedule(session, 2026)
    assert schedule.status == "official"
    assert (D(2026, 2, 14), "春节") in schedule.workdays and (D(2026, 2, 28), "春节") in schedule.workdays
    spring = [b for b in calendar.breaks(schedule.holidays) if b.name == "春节"]
    assert [(b.first, b.last, b.days) for b in spring] == [(D(2026, 2, 15), D(2026, 2, 23), 9)]


def test_entering_2027_makes_it_official_and_changes_results_and_flags(sessions, world):
    with sessions.begin() as session:
        before = calendar.load_calendar(session)
        assert calendar.load_calendar(session) is before  # cached under the same revision token
        assert before.add_working_days(D(2027, 1, 29), 1) == D(2027, 2, 1)
        changed = calendar.enter_official_year(
            session,
            2027,
            HOLIDAYS_2027,
            WORKDAYS_2027,
            world.users["admin"].id,
            source="国办发明电〔2026〕7号",
            clock=FixedClock(dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)),
        )
        assert changed == [d for d, _ in WORKDAYS_2027]
        after = calendar.load_calendar(session)
        assert after is not before and calendar.current_calendar() is after
        schedule = calendar.year_schedule(session, 2027)
    assert after.is_official(2027) and not after.is_provisional(D(2027, 6, 1))
    assert after.add_working_days(D(2027, 1, 29), 1) == D(2027, 1, 31)  # the 调休 Sunday
    assert after.day_info(D(2027, 1, 31)).describe() == "星期日，春节调休上班"
    deadline = after.deadline_after(dt.datetime(2026, 12, 24, 9, 0, tzinfo=SHANGHAI), 10, "working_days")
    assert (deadline.day, deadline.provisional) == (D(2027, 1, 8), False)
    assert (schedule.status, schedule.source, schedule.entered_by) == (
        "official",
        "国办发明电〔2026〕7号",
        "系统管理员",
    )
    assert schedule.entered_at == dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    assert [(b.name, b.days) for b in calendar.breaks(schedule.holidays)][:2] == [("元旦", 3), ("春节", 8)]
    assert schedule.workdays == WORKDAYS_2027

    # a correction replaces the year: 2/20 is not worked after all
    with sessions.begin() as session:
        changed = calendar.enter_official_year(session, 2027, HOLIDAYS_2027, WORKDAYS_2027[:1])
        assert changed == [D(2027, 2, 20), D(2027, 5, 8), D(2027, 9, 26), D(2027, 10, 9)]
        assert not calendar.load_calendar(session).is_working_day(D(2027, 2, 20))


def test_the_last_december_days_may_belong_to_the_next_years_notice(sessions):
    # the 2019 notice: 「2018年12月30日至2019年1月1日放假调休，共3天。2018年12月29日（星期六）上班」
    stored = select(CalendarDay.year, CalendarDay.kind).where(CalendarDay.day == D(2018, 12, 31))
    holidays = [(D(2018, 12, 30), "元旦"), (D(2018, 12, 31), "元旦"), (D(2019, 1, 1), "元旦")]
    with sessions.begin() as session:
        assert session.execute(stored).one() == (2019, "holiday")  # seeded with the notice it belongs to
        changed = calendar.enter_official_year(session, 2019, holidays, [(D(2018, 12, 29), "元旦")])
        assert [d for d in changed if d.year == 2018] == []  # the December days did not change
        assert not calendar.build_calendar(session).is_working_day(D(2018, 12, 31))  # a Monday
        # correcting 2018 cannot take 2019's days: same kind is left with 2019, the other kind refused
        calendar.enter_official_year(
            session, 2018, [(D(2018, 10, 1), "国庆节"), (D(2018, 12, 31), "元旦")], []
        )
        assert session.execute(stored).one() == (2019, "holiday")
        with pytest.raises(InvalidInput) as err:
            calendar.enter_official_year(
                session, 2018, [(D(2018, 12, 31), "元旦")], [(D(2018, 12, 30), "元旦")]
            )
        assert "2019 年安排中登记为放假" in err.value.messages["workdays[0]"][0]


def test_every_real_schedule_passes_validation_and_re_entering_it_changes_nothing(sessions):
    # each notice as the State Council published it: December 元旦 days belong to the next year's
    def notice_year(day: dt.date, english: str) -> int:
        return day.year + 1 if day.month == 12 and english == "New Year's Day" else day.year

    notices: dict[int, tuple[list, list]] = {year: ([], []) for year in range(2004, 2027)}
    for index, table in enumerate((chinese_calendar.holidays, chinese_calendar.workdays)):
        for day, english in sorted(table.items()):
            year = notice_year(day, english)
            if year in notices:
                notices[year][index].append((day, chinese_calendar.Holiday(english).chinese))
    with sessions.begin() as session:
        for year, (holidays, workdays) in notices.items():
            assert calendar.enter_official_year(session, year, holidays, workdays) == [], year


@pytest.mark.parametrize(
    ("holidays", "workdays", "key", "fragment"),
    [
        ([], [], "holidays", "至少需要一个"),
        ([(D(2028, 1, 1), "元旦")], [], "holidays[0]", "不在 2027 年内"),
        ([(D(2026, 12, 19), "元旦")], [], "holidays[0]", "不在 2027 年内"),  # before 20 December
        ([(D(2027, 1, 1), "元旦"), (D(2027, 1, 1), "元旦")], [], "holidays[1]", "重复"),
        ([(D(2027, 1, 1), "元旦")], [(D(2027, 1, 1), "元旦")], "workdays[0]", "重复"),
        ([(D(2027, 1, 1), "元旦")], [(D(2027, 1, 4), "元旦")], "workdays[0]", "只能是星期六或星期日"),
        ([(D(2027, 1, 1), " ")], [], "holidays[0]", "名称必填"),
        ([(D(2027, 1, 1), "元旦")], [(D(2027, 6, 26), "春节")], "workdays[0]", "超过 15 天"),
        ([("2027-01-01", "元旦")], [], "holidays[0]", "日期无效"),
    ],
)
def test_entering_a_year_validates_its_dates(sessions, holidays, workdays, key, fragment):
    with sessions.begin() as session:
        with pytest.raises(InvalidInput) as err:
            calendar.enter_official_year(session, 2027, holidays, workdays)
        assert any(fragment in message for message in err.value.messages[key]), err.value.messages
        assert session.get(CalendarYear, 2027) is None


def test_parse_schedule_document_reads_dates_and_ranges():
    holidays, workdays, source = calendar.parse_schedule_document(
        {
            "source": "国办发明电〔2026〕7号",
            "holidays": [
                {"date": "2027-01-01", "name": "元旦"},
                {"from": "2027-02-05", "to": "2027-02-12", "name": "春节"},
            ],
            "workdays": [{"date": "2027-01-31", "name": "春节"}],
        }
    )
    assert (
        holidays[0] == (D(2027, 1, 1), "元旦")
        and len(holidays) == 9
        and holidays[-1] == (D(2027, 2, 12), "春节")
    )
    assert workdays == [(D(2027, 1, 31), "春节")] and source == "国办发明电〔2026〕7号"
    with pytest.raises(InvalidInput) as err:
        calendar.parse_schedule_document(
            {
                "holidays": [
                    {"date": "2027-13-01", "name": "x"},
                    {"from": "2027-02-12", "to": "2027-02-05"},
                    "x",
                ],
                "workdays": [{"from": "2027-01-30", "to": "2027-01-31", "name": "春节"}],
                "extra": 1,
            }
        )
    assert set(err.value.messages) == {"holidays[0]", "holidays[1]", "holidays[2]", "workdays[0]", "extra"}
    with pytest.raises(InvalidInput):
        calendar.parse_schedule_document([])


# --- deadlines, expressions and the compute_deadline handler --------------------------------------------


def test_deadline_units(cal):
    start = dt.datetime(2026, 2, 13, 10, 0, tzinfo=SHANGHAI)  # Friday before 春节
    assert cal.deadline_after(start, 3, "hours").at == dt.datetime(2026, 2, 13, 5, 0, tzinfo=dt.UTC)
    assert cal.deadline_after(start, 30, "minutes").at == dt.datetime(2026, 2, 13, 2, 30, tzinfo=dt.UTC)
    assert cal.deadline_after(start, 5, "calendar_days").day == D(2026, 2, 18)
    rolled = cal.deadline_after(start, 5, "calendar_days", roll_forward=True)
    assert (rolled.day, rolled.provisional) == (D(2026, 2, 24), False)  # 《民法典》第203条
    assert cal.deadline_after(dt.datetime(2026, 1, 31, tzinfo=SHANGHAI), 1, "months").day == D(2026, 2, 28)
    assert cal.deadline_after(start, 1, "working_days").day == D(2026, 2, 14)
    with pytest.raises(ValueError):
        cal.deadline_after(dt.datetime(2026, 2, 13, 10, 0), 1, "working_days")  # naive
    with pytest.raises(ValueError):
        cal.deadline_after(start, 1, "fortnights")
    with pytest.raises(ValueError):
        cal.deadline_after(start, True, "working_days")
    rule = cal.deadline_after(start, 2, "working_days").rule
    assert calendar.DeadlineRule.from_dict(rule.to_dict()) == rule
    with pytest.raises(ValueError):
        calendar.DeadlineRule.from_dict({"start": "2026-02-13T10:00:00", "n": 1, "unit": "working_days"})


def test_expression_functions_use_the_current_calendar(cal):
    data = {"ts": "2026-02-13T09:00:00+08:00", "due": "2026-02-24T15:59:59+00:00"}
    check("working_days_after(ts, 1)")
    with calendar.using_calendar(cal):
        assert evaluate("working_days_after(ts, 1)", data) == "2026-02-14T15:59:59+00:00"
        assert evaluate("working_days_before(due, 2)", data) == "2026-02-13T15:59:59+00:00"
        assert evaluate("working_days_between(ts, due)", data) == 2
        assert evaluate("working_days_between(due, ts)", data) == -2
        with pytest.raises(ExpressionError):
            evaluate("working_days_after('2026-02-13T09:00:00', 1)", {})
        with pytest.raises(ExpressionError):
            evaluate("working_days_after(ts, 1.5)", data)
        with pytest.raises(CalendarOutOfRange):
            evaluate("working_days_after('2099-12-31T09:00:00+08:00', 2)", {})
    assert calendar.current_calendar() is calendar.package_calendar()  # no calendar loaded yet


def test_compute_deadline_in_working_days_records_the_rule_and_the_provisional_flag(cal):
    clock = FixedClock(dt.datetime(2026, 12, 24, 1, 0, tzinfo=dt.UTC))
    with calendar.using_calendar(cal):
        ctx = HandlerContext(clock=clock, task_key="set_review_due", data={})
        due = call_handler("compute_deadline", ctx, {"days": 10, "unit": "working_days"})
        ctx_2026 = HandlerContext(
            clock=FixedClock(dt.datetime(2026, 2, 12, 1, 0, tzinfo=dt.UTC)), task_key="t", data={}
        )
        due_2026 = call_handler("compute_deadline", ctx_2026, {"days": 10, "unit": "working_days"})
    assert due == "2027-01-08T15:59:59+00:00"
    [effect] = ctx.effects
    assert effect.params == {
        "due_at": due,
        "days": 10,
        "unit": "working_days",
        "provisional": True,
        "rule": {"start": "2026-12-24T01:00:00+00:00", "n": 10, "unit": "working_days"},
    }
    assert due_2026 == "2026-03-04T15:59:59+00:00" and ctx_2026.effects[0].params["provisional"] is False
    # calendar days stay what they were: exactly n × 24 hours
    ctx_days = HandlerContext(clock=clock, task_key="t", data={})
    assert call_handler("compute_deadline", ctx_days, {"days": 10, "unit": "calendar_days"}) == (
        "2027-01-03T01:00:00+00:00"
    )
