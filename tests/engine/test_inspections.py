"""engine.inspections: recurring inspections cut from policy values (DOMAIN §2.3).

Cadences per subject (principal quarterly, monthly when high-risk; grid city quarterly, county
monthly, township ISO week, village daily), idempotent and concurrent sweeps, missed periods,
late records, permissions, and a policy change applying from the next period.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import inspections
from engine import policy
from engine.calendar import package_calendar
from engine.config import PROJECT_ROOT
from engine.demo import DemoWorld
from engine.errors import Conflict
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.models import Enterprise
from engine.models import InspectionOccurrence
from engine.models import InspectionState
from engine.models import Region
from engine.runtime import EngineContext
from tests.factories import make_hazard

SHANGHAI = ZoneInfo("Asia/Shanghai")
SELF = "principal_self_inspection"
GRID = "grid_check"
#: Wednesday 20 May 2026, 10:00 in Shanghai (ISO week 21: 18–24 May)
WEDNESDAY = dt.datetime(2026, 5, 20, 10, 0, tzinfo=SHANGHAI)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), SHANGHAI)


def add_enterprise(
    session: Session, world: DemoWorld, *, key: str, sector: str = "industry_trade", high_risk: bool = False
) -> Enterprise:
    """A plain enterprise of 郎溪县 (industry and trade: no sector profile, the national cadence)."""
    enterprise = Enterprise(
        name=f"测试{key}有限公司",
        credit_code=f"91341821TEST{key:0>6}"[:18],
        region_id=world.regions["341821"].id,
        sector_code=sector,
        principal_name="测试",
        high_risk=high_risk,
    )
    session.add(enterprise)
    session.flush()
    return enterprise


def occurrence(session: Session, plan: str, subject_id: int, *, on: dt.date) -> InspectionOccurrence:
    """The occurrence of ``plan`` for ``subject_id`` whose period contains ``on``."""
    found = session.scalars(
        select(InspectionOccurrence).where(
            InspectionOccurrence.plan_key == plan,
            InspectionOccurrence.subject_id == subject_id,
            InspectionOccurrence.period_start <= on,
            InspectionOccurrence.period_end >= on,
        )
    ).all()
    assert len(found) == 1, found
    return found[0]


def periods(session: Session, plan: str, subject_id: int) -> list[tuple[dt.date, dt.date, str]]:
    return [
        (o.period_start, o.period_end, o.state)
        for o in session.scalars(
            select(InspectionOccurrence)
            .where(InspectionOccurrence.plan_key == plan, InspectionOccurrence.subject_id == subject_id)
            .order_by(InspectionOccurrence.period_start)
        )
    ]


def count_rows(session: Session) -> int:
    return session.scalar(select(func.count(InspectionOccurrence.id))) or 0


@pytest.fixture(autouse=True)
def _fresh_tick_state() -> Iterator[None]:
    inspections.reset_tick_state()
    yield
    inspections.reset_tick_state()


# --- periods -----------------------------------------------------------------------------------------


def test_periods_are_calendar_quarters_months_iso_weeks_and_days() -> None:
    day = dt.date(2026, 5, 20)
    quarter = inspections.period_containing(day, 3, "months")
    assert (quarter.start, quarter.end, quarter.label) == (
        dt.date(2026, 4, 1),
        dt.date(2026, 6, 30),
        "2026年第2季度",
    )
    month = inspections.period_containing(day, 1, "months")
    assert (month.start, month.end, month.label) == (dt.date(2026, 5, 1), dt.date(2026, 5, 31), "2026年5月")
    half = inspections.period_containing(dt.date(2026, 12, 31), 6, "months")
    assert (half.start, half.end, half.label) == (dt.date(2026, 7, 1), dt.date(2026, 12, 31), "2026年下半年")
    week = inspections.period_containing(day, 7, "calendar_days")
    assert (week.start, week.end) == (dt.date(2026, 5, 18), dt.date(2026, 5, 24))
    assert week.start.weekday() == 0 and week.start.isocalendar().week == 21
    assert week.label.startswith("2026年第21周")
    # an ISO week across the new year belongs to the ISO year of its Monday
    new_year = inspections.period_containing(dt.date(2027, 1, 1), 7, "calendar_days")
    assert (new_year.start, new_year.end) == (dt.date(2026, 12, 28), dt.date(2027, 1, 3))
    daily = inspections.period_containing(day, 1, "calendar_days")
    assert (daily.start, daily.end, daily.label) == (day, day, "2026年5月20日")


def test_working_day_periods_carry_the_days_off_that_follow_them() -> None:
    calendar = package_calendar()
    # 国庆 2026: 1–7 October off; 30 September (Wednesday) is the last working day before it
    before = inspections.period_containing(dt.date(2026, 9, 30), 1, "working_days", calendar)
    holiday = inspections.period_containing(dt.date(2026, 10, 3), 1, "working_days", calendar)
    assert before == holiday
    assert before.start == dt.date(2026, 9, 30)
    assert calendar.is_working_day(before.end + dt.timedelta(days=1))
    # 元旦: the days off at the start of a year open its first period
    first = inspections.period_containing(dt.date(2026, 1, 1), 5, "working_days", calendar)
    assert first.start == dt.date(2026, 1, 1)
    span = (first.end - first.start).days + 1
    assert sum(calendar.is_working_day(first.start + dt.timedelta(days=i)) for i in range(span)) == 5
    assert calendar.is_working_day(first.end + dt.timedelta(days=1))


@pytest.mark.parametrize(("value", "unit"), [(0, "months"), (2, "hours"), (1, "count"), (1, "years")])
def test_only_positive_periods_in_months_or_days_are_cadences(value: int, unit: str) -> None:
    with pytest.raises(ValueError):
        inspections.period_containing(dt.date(2026, 5, 20), value, unit, package_calendar())


# --- cadences ----------------------------------------------------------------------------------------


def test_the_principal_inspects_quarterly_and_monthly_in_high_risk_enterprises(sessions, ctx, world):
    today = WEDNESDAY.date()
    with sessions.begin() as session:
        plain = add_enterprise(session, world, key="plain")
        risky = add_enterprise(session, world, key="risky", high_risk=True)
        result = inspections.generate_due(session, ctx, now=WEDNESDAY)
        assert result.created >= 2 + len(world.enterprises) + 5
        assert not result.problems

        quarter = occurrence(session, SELF, plain.id, on=today)
        assert (quarter.period_start, quarter.period_end) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
        assert quarter.title == "测试plain有限公司 主要负责人带队检查（2026年第2季度）"
        assert (quarter.cadence_value, quarter.cadence_unit) == (3, "months")
        assert quarter.due_at == dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=SHANGHAI)
        assert (quarter.assignee_role, quarter.assignee_scope) == ("principal", "enterprise")
        assert quarter.enterprise_id == plain.id and quarter.region_path == world.regions["341821"].path
        national = policy.get_profile(session, "national")
        assert (quarter.policy_key, quarter.policy_version, quarter.policy_profile_id) == (
            "national",
            national.version,
            national.id,
        )
        assert quarter.state == InspectionState.OPEN

        month = occurrence(session, SELF, risky.id, on=today)
        assert (month.period_start, month.period_end) == (dt.date(2026, 5, 1), dt.date(2026, 5, 31))
        assert "高危行业领域" in month.title and "2026年5月" in month.title
        chem = occurrence(session, SELF, world.enterprises["chem"].id, on=today)
        assert chem.period_start == dt.date(2026, 5, 1)
        # 金桥商贸广场 is a fire-sector unit: the fire profile's monthly principal check applies
        mall = occurrence(session, SELF, world.enterprises["mall"].id, on=today)
        assert (mall.period_start, mall.policy_key) == (dt.date(2026, 5, 1), "fire")


def test_the_grid_checks_city_quarterly_county_monthly_township_weekly_village_daily(sessions, ctx, world):
    today = WEDNESDAY.date()
    with sessions.begin() as session:
        inspections.generate_due(session, ctx, now=WEDNESDAY)
        expected = {
            "3418": (dt.date(2026, 4, 1), dt.date(2026, 6, 30), "宣城市 市级网格检查（2026年第2季度）"),
            "341821": (dt.date(2026, 5, 1), dt.date(2026, 5, 31), "郎溪县 县级网格排查（2026年5月）"),
            "341882": (dt.date(2026, 5, 1), dt.date(2026, 5, 31), "广德市 县级网格排查（2026年5月）"),
            "341821100": (
                dt.date(2026, 5, 18),
                dt.date(2026, 5, 24),
                "建平镇 乡级网格巡查（2026年第21周（5月18日至5月24日））",
            ),
            "341821100001": (today, today, "东门村 村级网格排查（2026年5月20日）"),
        }
        for code, (start, end, title) in expected.items():
            region = world.regions[code]
            found = occurrence(session, GRID, region.id, on=today)
            assert (found.period_start, found.period_end, found.title) == (start, end, title), code
            assert found.enterprise_id is None and found.region_path == region.path
            assert (found.assignee_role, found.assignee_scope) == ("grid_worker", "region")
        assert periods(session, GRID, world.regions["34"].id) == []  # no 省级 grid check


def test_generating_twice_creates_nothing_more(sessions, ctx, world):
    with sessions.begin() as session:
        first = inspections.generate_due(session, ctx, now=WEDNESDAY)
        rows = count_rows(session)
        again = inspections.generate_due(session, ctx, now=WEDNESDAY + dt.timedelta(hours=5))
        assert (again.created, again.missed) == (0, 0)
        assert count_rows(session) == rows
        assert first.created == rows
        # a horizon adds the periods starting within it, once
        ahead = inspections.generate_due(session, ctx, now=WEDNESDAY, horizon=dt.timedelta(days=7))
        village = world.regions["341821100001"].id
        assert [p[0] for p in periods(session, GRID, village)] == [
            dt.date(2026, 5, 20) + dt.timedelta(days=i) for i in range(8)
        ]
        assert ahead.created == count_rows(session) - rows
        assert (
            inspections.generate_due(session, ctx, now=WEDNESDAY, horizon=dt.timedelta(days=7)).created == 0
        )


def test_a_missed_period_is_marked_at_the_next_sweep_and_counted(sessions, ctx, world):
    village = world.regions["341821100001"]
    with sessions.begin() as session:
        inspections.generate_due(session, ctx, now=WEDNESDAY)
        office = world.actor(session, "he_office")
        assert inspections.counts(session, office).missed == 0

        # the last minute of the day: still open
        late_evening = at(WEDNESDAY.date(), 23) + dt.timedelta(minutes=59)
        assert inspections.generate_due(session, ctx, now=late_evening).missed == 0

        thursday = WEDNESDAY + dt.timedelta(days=1)
        result = inspections.generate_due(session, ctx, now=thursday)
        assert result.missed == 1  # only the village's daily check ended
        missed = occurrence(session, GRID, village.id, on=WEDNESDAY.date())
        assert missed.state == InspectionState.MISSED and missed.missed_at == thursday
        assert occurrence(session, GRID, village.id, on=thursday.date()).state == InspectionState.OPEN

        assert inspections.counts(session, office).missed == 1
        by_region = inspections.missed_counts(session, office, by="region")
        assert [(m.name, m.count) for m in by_region] == [("东门村", 1)]
        grid_worker = world.actor(session, "sun_grid")
        page = inspections.occurrence_page(session, grid_worker, scope="mine", state="missed")
        assert [o.id for o in page.items] == [missed.id]
        # missed items come first in the default "mine" list
        assert inspections.occurrence_page(session, grid_worker).items[0].id == missed.id
        # a principal sees nothing of the grid
        assert inspections.counts(session, world.actor(session, "wang_principal")).missed == 0

        # the next month: the enterprises' monthly checks of May were missed too
        june = at(dt.date(2026, 6, 1))
        inspections.generate_due(session, ctx, now=june)
        # no sweep ran from 22 to 31 May: those days are created too, already missed
        states = periods(session, GRID, village.id)
        assert [s[0] for s in states] == [dt.date(2026, 5, 20) + dt.timedelta(days=i) for i in range(13)]
        assert [s[2] for s in states] == ["missed"] * 12 + ["open"]
        by_enterprise = inspections.missed_counts(session, office, by="enterprise")
        names = {m.name: m.count for m in by_enterprise}
        assert names[world.enterprises["chem"].name] == 1
        assert world.enterprises["gd_chem"].name not in names  # 广德 is outside 郎溪县
        # after an outage longer than CATCH_UP the village starts again with the current day
        august = at(dt.date(2026, 8, 15))
        inspections.generate_due(session, ctx, now=august)
        assert [s[0] for s in periods(session, GRID, village.id)][13:] == [dt.date(2026, 8, 15)]


def test_late_records_are_allowed_and_marked_late(sessions, ctx, world):
    village = world.regions["341821100001"]
    chem = world.enterprises["chem"]
    with time_machine.travel(WEDNESDAY, tick=False):
        with sessions.begin() as session:
            inspections.generate_due(session, ctx)
            on_time = occurrence(session, SELF, chem.id, on=WEDNESDAY.date())
            done = inspections.complete(
                session,
                ctx,
                occurrence_id=on_time.id,
                actor=world.actor(session, "wang_principal"),
                note="带队检查储罐区、装卸站台，发现隐患1处",
                hazards_found=1,
            )
            assert (done.state, done.completed_late, done.hazards_found) == ("done", False, 1)
            assert done.completed_by_id == world.users["wang_principal"].id
            assert done.completed_at == WEDNESDAY
            wednesday_check = occurrence(session, GRID, village.id, on=WEDNESDAY.date()).id
    with time_machine.travel(WEDNESDAY + dt.timedelta(days=1), tick=False):
        with sessions.begin() as session:
            grid_worker = world.actor(session, "sun_grid")
            # recorded after its period before any sweep marked it missed: late all the same
            recorded = inspections.complete(
                session,
                ctx,
                occurrence_id=wednesday_check,
                actor=grid_worker,
                note="补录：已巡查",
                hazards_found=0,
            )
            assert recorded.completed_late and recorded.missed_at is None
    with time_machine.travel(WEDNESDAY + dt.timedelta(days=2), tick=False):
        with sessions.begin() as session:
            assert inspections.generate_due(session, ctx).missed == 1  # Thursday's check
            thursday = occurrence(session, GRID, village.id, on=WEDNESDAY.date() + dt.timedelta(days=1))
            assert thursday.state == "missed"
            office = world.actor(session, "he_office")
            before = inspections.counts(session, office)
            recorded = inspections.complete(
                session,
                ctx,
                occurrence_id=thursday.id,
                actor=world.actor(session, "sun_grid"),
                note="周四漏检，周五补查",
                hazards_found=0,
            )
            assert recorded.state == "done" and recorded.completed_late
            assert recorded.missed_at is not None  # the miss stays on record
            after = inspections.counts(session, office)
            assert (after.missed, after.done, after.done_late) == (
                before.missed - 1,
                before.done + 1,
                before.done_late + 1,
            )


# --- permissions -------------------------------------------------------------------------------------


def _attempt(
    session: Session, ctx: EngineContext, world: DemoWorld, username: str, occurrence_id: int
) -> str:
    attempt = session.begin_nested()
    try:
        inspections.complete(
            session,
            ctx,
            occurrence_id=occurrence_id,
            actor=world.actor(session, username),
            note="检查",
            hazards_found=0,
        )
    except NotFound:
        return "not_found"
    except Forbidden:
        return "forbidden"
    finally:
        attempt.rollback()  # the next user finds it open again
    return "ok"


def test_who_records_which_inspection(sessions, ctx, world):
    expected = {
        # 华宇化工's self-inspection: its principal or safety officer
        (SELF, "chem"): {
            "wang_principal": "ok",
            "chen_safety": "ok",
            "zhang_rectifier": "forbidden",
            "sun_grid": "forbidden",
            "zhou_inspector": "forbidden",
            "zheng_fire": "forbidden",  # the fire brigade co-supervises hazchem
            "he_office": "forbidden",
            "li_mall": "not_found",
            "feng_housing": "not_found",
            "ma_gd": "not_found",
            "lin_tips": "not_found",
            "admin": "not_found",
        },
        # 东门村's daily check: grid workers, inspectors and the 安委办 of the region
        (GRID, "341821100001"): {
            "sun_grid": "ok",
            "zhou_inspector": "ok",
            "he_office": "ok",
            "wu_reviewer": "forbidden",
            "wang_principal": "not_found",
            "chen_safety": "not_found",
            "ma_gd": "not_found",
            "admin": "not_found",
        },
        # 郎溪县's monthly check: not a township grid worker's
        (GRID, "341821"): {"sun_grid": "not_found", "he_office": "ok", "xu_city": "forbidden"},
    }
    with time_machine.travel(WEDNESDAY, tick=False):
        with sessions.begin() as session:
            inspections.generate_due(session, ctx)
            for (plan, key), outcomes in expected.items():
                subject = world.enterprises[key].id if plan == SELF else world.regions[key].id
                target = occurrence(session, plan, subject, on=WEDNESDAY.date()).id
                got = {user: _attempt(session, ctx, world, user, target) for user in outcomes}
                assert got == outcomes, (plan, key)


def test_sql_and_python_agree_on_who_sees_and_records(sessions, ctx, world):
    with sessions.begin() as session:
        inspections.generate_due(session, ctx, now=WEDNESDAY)
        every = session.scalars(select(InspectionOccurrence)).all()
        for username in world.users:
            actor = world.actor(session, username)
            visible = set(
                session.scalars(select(InspectionOccurrence.id).where(inspections.visibility(actor)))
            )
            actable = set(session.scalars(select(InspectionOccurrence.id).where(inspections.actable(actor))))
            assert visible == {o.id for o in every if inspections.can_see(actor, o)}, username
            assert actable == {o.id for o in every if inspections.can_complete(actor, o)}, username
            assert actable <= visible, username


def test_records_are_checked(sessions, ctx, world):
    chem = world.enterprises["chem"]
    with time_machine.travel(WEDNESDAY, tick=False):
        with sessions.begin() as session:
            inspections.generate_due(session, ctx, horizon=dt.timedelta(days=20))
            target = occurrence(session, SELF, chem.id, on=WEDNESDAY.date()).id
            principal = world.actor(session, "wang_principal")

            def record(**kwargs: object) -> InspectionOccurrence:
                data: dict[str, object] = {"note": "检查", "hazards_found": 0, **kwargs}
                with session.begin_nested():
                    return inspections.complete(
                        session, ctx, occurrence_id=data.pop("occurrence_id", target), actor=principal, **data
                    )  # type: ignore[arg-type]

            with pytest.raises(InvalidInput) as blank:
                record(note="  ")
            assert "note" in blank.value.messages
            with pytest.raises(InvalidInput) as negative:
                record(hazards_found=-1)
            assert "hazards_found" in negative.value.messages
            with pytest.raises(InvalidInput):
                record(hazards_found=True)
            # a linked hazard must be visible and of the inspected enterprise
            own = make_hazard(session, ctx, world, world.actor(session, "chen_safety"))
            mall_hazard = make_hazard(
                session,
                ctx,
                world,
                world.actor(session, "li_mall"),
                enterprise_id=world.enterprises["mall"].id,
                title="疏散通道堆放杂物",
            )
            with pytest.raises(InvalidInput) as foreign:
                record(hazards_found=2, hazard_ids=[own.id, mall_hazard.id])
            assert str(mall_hazard.id) in foreign.value.messages["hazard_ids"][0]
            with pytest.raises(InvalidInput) as fewer:
                record(hazards_found=0, hazard_ids=[own.id])
            assert "hazards_found" in fewer.value.messages
            # a later period cannot be recorded yet
            june = occurrence(session, SELF, chem.id, on=dt.date(2026, 6, 1)).id
            with pytest.raises(Conflict, match="尚不能填报"):
                record(occurrence_id=june)

            done = record(hazards_found=1, hazard_ids=[own.id])
            assert done.hazard_ids == [own.id]
            with pytest.raises(Conflict, match="不能重复填报"):
                record()


# --- policy changes and the worker tick --------------------------------------------------------------


def _national_with(session: Session, **values: tuple[int, str]) -> int:
    document = json.loads((PROJECT_ROOT / "processes" / "policies" / "national.json").read_text("utf-8"))
    document = copy.deepcopy(document)
    for name, (value, unit) in values.items():
        document["values"][name]["value"] = value
        document["values"][name]["unit"] = unit
    result = policy.import_policy(session, document)
    assert result.created
    return result.profile.version


def test_a_new_policy_version_applies_from_the_next_period(sessions, ctx, world):
    with sessions.begin() as session:
        plain = add_enterprise(session, world, key="policy")
        inspections.generate_due(session, ctx, now=WEDNESDAY)
        old = occurrence(session, SELF, plain.id, on=WEDNESDAY.date())
        assert (old.period_start, old.period_end) == (dt.date(2026, 4, 1), dt.date(2026, 6, 30))

        # monthly from now on: the running quarter stands, July is the first monthly period
        version = _national_with(session, principal_inspection_interval=(1, "months"))
        assert inspections.generate_due(session, ctx, now=WEDNESDAY + dt.timedelta(days=1)).created >= 0
        assert [p[:2] for p in periods(session, SELF, plain.id)] == [
            (dt.date(2026, 4, 1), dt.date(2026, 6, 30))
        ]
        inspections.generate_due(session, ctx, now=at(dt.date(2026, 7, 2)))
        assert periods(session, SELF, plain.id) == [
            (dt.date(2026, 4, 1), dt.date(2026, 6, 30), "missed"),
            (dt.date(2026, 7, 1), dt.date(2026, 7, 31), "open"),
        ]
        july = occurrence(session, SELF, plain.id, on=dt.date(2026, 7, 2))
        assert (july.policy_version, july.cadence_value, july.cadence_unit) == (version, 1, "months")


def test_a_longer_cadence_starts_where_the_last_period_ended(sessions, ctx, world):
    chem = world.enterprises["chem"]
    with sessions.begin() as session:
        inspections.generate_due(session, ctx, now=WEDNESDAY)  # May (monthly, high-risk)
        _national_with(session, principal_inspection_interval_high_risk=(3, "months"))
        inspections.generate_due(session, ctx, now=at(dt.date(2026, 6, 10)))
        inspections.generate_due(session, ctx, now=at(dt.date(2026, 7, 1)))
        assert [p[:2] for p in periods(session, SELF, chem.id)] == [
            (dt.date(2026, 5, 1), dt.date(2026, 5, 31)),
            (dt.date(2026, 6, 1), dt.date(2026, 6, 30)),  # the rest of the second quarter
            (dt.date(2026, 7, 1), dt.date(2026, 9, 30)),
        ]
        rest = occurrence(session, SELF, chem.id, on=dt.date(2026, 6, 10))
        assert rest.title.endswith("（2026年6月1日至6月30日）")


def test_a_profile_without_the_value_skips_the_subject_and_says_why(sessions, ctx, world):
    with sessions.begin() as session:
        document = json.loads((PROJECT_ROOT / "processes" / "policies" / "national.json").read_text("utf-8"))
        document["values"]["grid_check_interval_village"]["unit"] = "hours"
        policy.import_policy(session, document)
        result = inspections.generate_due(session, ctx, now=WEDNESDAY)
        assert any("grid_check_interval_village" in p for p in result.problems)
        assert periods(session, GRID, world.regions["341821100001"].id) == []
        assert periods(session, GRID, world.regions["341821100"].id) != []


def test_the_worker_tick_sweeps_on_a_new_day_and_every_interval(sessions, ctx, world):
    with time_machine.travel(WEDNESDAY, tick=False) as traveller:
        first = inspections.tick(sessions, ctx)
        assert first is not None and first.created > 0
        assert inspections.tick(sessions, ctx) is None  # nothing due within the interval
        traveller.shift(inspections.SWEEP_INTERVAL + dt.timedelta(seconds=1))
        again = inspections.tick(sessions, ctx)
        assert again is not None and again.created == 0
        traveller.move_to(WEDNESDAY + dt.timedelta(days=1) - dt.timedelta(hours=10))  # Thursday 00:00
        next_day = inspections.tick(sessions, ctx)
        assert next_day is not None and next_day.missed == 1
    with sessions() as session:
        assert occurrence(session, GRID, world.regions["341821100001"].id, on=dt.date(2026, 5, 21))


# --- scale and concurrency ---------------------------------------------------------------------------


def test_a_sweep_over_5000_enterprises_is_a_few_bulk_statements(sessions, ctx, world):
    with sessions.begin() as session:
        county = world.regions["341821"].id
        session.execute(
            insert(Enterprise),
            [
                {
                    "name": f"批量企业{i}",
                    "credit_code": f"91341821BULK{i:06d}",
                    "region_id": county,
                    "sector_code": "industry_trade",
                    "principal_name": "测试",
                    "high_risk": i % 3 == 0,
                }
                for i in range(5000)
            ],
        )
        statements: list[str] = []

        def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            statements.append(statement)

        bind = session.connection().engine
        event.listen(bind, "before_cursor_execute", count)
        try:
            started = time.perf_counter()
            result = inspections.generate_due(session, ctx, now=WEDNESDAY)
            elapsed = time.perf_counter() - started
            assert result.created >= 5000
            quiet_started = time.perf_counter()
            assert inspections.generate_due(session, ctx, now=WEDNESDAY).created == 0
            quiet = time.perf_counter() - quiet_started
        finally:
            event.remove(bind, "before_cursor_execute", count)
        # one update, two subject reads, the profiles, the covered periods, ~6 inserts; twice
        assert len(statements) < 40, len(statements)
        assert elapsed < 15 and quiet < 10, (elapsed, quiet)
        quarter = session.scalar(
            select(func.count(InspectionOccurrence.id)).where(
                InspectionOccurrence.period_start == dt.date(2026, 4, 1),
                InspectionOccurrence.plan_key == SELF,
                InspectionOccurrence.title.like("批量企业%"),
            )
        )
        assert quarter == 5000 - len(range(0, 5000, 3))


@pytest.fixture
def pg(committed: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    if committed.kw["bind"].dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=postgresql+psycopg://…)")
    yield committed
    with committed.begin() as session:
        session.execute(delete(InspectionOccurrence))
    assert committed.kw["bind"].pool.checkedout() == 0, "a connection leaked"


@pytest.mark.postgres
def test_concurrent_sweeps_create_every_period_once(pg, ctx, world):
    barrier = threading.Barrier(4, timeout=60)
    results: list[inspections.GenerateResult] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            with pg.begin() as session:
                session.execute(select(Region.id).limit(1))  # open the transaction first
                barrier.wait()
                results.append(inspections.generate_due(session, ctx, now=WEDNESDAY))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), "a sweep hung"
    assert errors == []
    with pg() as session:
        rows = count_rows(session)
        duplicates = session.execute(
            select(InspectionOccurrence.plan_key, InspectionOccurrence.subject_id)
            .group_by(InspectionOccurrence.plan_key, InspectionOccurrence.subject_id)
            .having(func.count() > 1)
        ).all()
        subjects = session.scalar(select(func.count(Enterprise.id))) + session.scalar(
            select(func.count(Region.id)).where(Region.level != "province")
        )
    assert duplicates == []
    assert rows == subjects
    assert sum(r.created for r in results) == rows  # each row counted by the sweep that inserted it
