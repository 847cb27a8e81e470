"""engine.deadlines: provisional working-day deadlines are recomputed when a year's schedule arrives.

End to end on the 重大 loop with its 核销审查 deadline in working days: computed on a provisional
2027, then moved — work item, timer_job rows and the real SpiffWorkflow timer — by entering the
2027 schedule, with one ``deadline_recomputed`` event.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine import bpmn
from engine import calendar
from engine import deadlines
from engine import definitions
from engine import runtime
from engine.models import Event
from engine.models import ProcessInstance
from engine.models import TimerJob
from tests.processes.test_hazard_major import CLOSURE_APPLICATION
from tests.processes.test_hazard_major import REPORT_CONGRESS
from tests.processes.test_hazard_major import REPORT_REGULATOR
from tests.processes.test_hazard_major import SIGN_PASS
from tests.processes.test_hazard_major import MajorDriver
from tests.processes.test_hazard_major import governance_plan

START = dt.datetime(2027, 1, 20, 1, 0, tzinfo=dt.UTC)  # Wednesday 09:00 in Shanghai
APPLIED = dt.datetime(2027, 1, 28, 1, 0, tzinfo=dt.UTC)  # Thursday 09:00: 申请核销
# 10 working days from Thursday 2027-01-28 on the provisional calendar (春节 除夕–初七 = 2/5–2/12,
# no 调休 workdays): 1/29, 2/1–2/4, 2/15–2/19 → Friday 2/19, 23:59:59 Shanghai
PROVISIONAL_DUE = dt.datetime(2027, 2, 19, 15, 59, 59, tzinfo=dt.UTC)
# the official schedule below makes Sunday 1/31 a 调休 workday: the tenth working day is 2/18
OFFICIAL_DUE = dt.datetime(2027, 2, 18, 15, 59, 59, tzinfo=dt.UTC)

HOLIDAYS_2027 = [
    *((dt.date(2027, 1, d), "元旦") for d in (1, 2, 3)),
    *((dt.date(2027, 2, d), "春节") for d in range(5, 13)),
    *((dt.date(2027, 4, d), "清明") for d in (3, 4, 5)),
    *((dt.date(2027, 5, d), "劳动节") for d in range(1, 6)),
    (dt.date(2027, 6, 9), "端午"),
    (dt.date(2027, 9, 15), "中秋"),
    *((dt.date(2027, 10, d), "国庆节") for d in range(1, 8)),
]
WORKDAYS_2027 = [
    (dt.date(2027, 1, 31), "春节"),
    (dt.date(2027, 2, 20), "春节"),
    (dt.date(2027, 5, 8), "劳动节"),
    (dt.date(2027, 9, 26), "国庆节"),
    (dt.date(2027, 10, 9), "国庆节"),
]


@pytest.fixture(autouse=True)
def fresh_calendar_cache():
    calendar.reset_cache()
    yield
    calendar.reset_cache()


@pytest.fixture
def driver(sessions, ctx, world):
    """The 重大 loop with its 10-day review deadline counted in working days (a sector variant)."""
    xml = (ctx.settings.processes_dir / "hazard_major.bpmn").read_bytes()
    assert xml.count(b"&quot;calendar_days&quot;") == 1
    variant = xml.replace(b"&quot;calendar_days&quot;", b"&quot;working_days&quot;")
    with sessions.begin() as session:
        definitions.deploy(session, bpmn_xml=variant, filename="hazard_major_wd.bpmn", forms=ctx.forms)
        definitions.bind(session, grade="major", process_key="hazard_major")
        calendar.load_calendar(session)  # this process's calendar: 2027 is provisional
    with time_machine.travel(START, tick=False):
        yield MajorDriver(sessions, ctx, world, False)


def at_regulator_review(driver) -> int:
    hid = driver.register_major()
    driver.complete(hid, "report_regulator", "chen_safety", REPORT_REGULATOR)
    driver.complete(hid, "report_congress", "chen_safety", REPORT_CONGRESS)
    driver.complete(hid, "governance_plan", "chen_safety", governance_plan(due_date="2027-03-31"))
    driver.complete(hid, "principal_signoff", "wang_principal", SIGN_PASS)
    driver.govern(hid)
    driver.evaluate(hid, "pass")
    with time_machine.travel(APPLIED, tick=False):
        driver.complete(hid, "apply_closure", "wang_principal", CLOSURE_APPLICATION)
    return hid


def events(driver, hid, action):
    with driver.sessions() as session:
        return list(
            session.scalars(
                select(Event).where(Event.hazard_id == hid, Event.action == action).order_by(Event.id)
            )
        )


def spiff_timers(driver, hid):
    """The waiting timers of the stored workflow, freshly deserialized (as a restarted worker sees them)."""
    definitions._spec_cache.clear()
    with driver.sessions() as session:
        instance = session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hid)).one()
        spec, subs = definitions.spec_for(instance.definition_version)
        workflow = bpmn.load_state(instance.state, instance.serializer_version, spec, subs)
    return {t.key: t.due_at for t in bpmn.waiting_timers(workflow)}


@pytest.mark.parametrize("sweep", [False, True], ids=["enter_year", "sweep"])
def test_entering_the_schedule_moves_a_provisional_deadline_and_its_real_timer(driver, sweep):
    hid = at_regulator_review(driver)
    # computed on the provisional 2027 calendar, and recorded as such
    assert driver.open_item_due(hid, "regulator_review") == PROVISIONAL_DUE
    assert driver.timer_jobs(hid) == {
        "review_remind": PROVISIONAL_DUE - dt.timedelta(days=2),
        "review_overdue": PROVISIONAL_DUE,
    }
    [computed] = events(driver, hid, "deadline_computed")
    assert computed.payload["provisional"] is True
    assert computed.payload["rule"] == {"start": APPLIED.isoformat(), "n": 10, "unit": "working_days"}
    with driver.sessions() as session:
        tracked = deadlines.tracked_deadlines(session, calendar.build_calendar(session), year=2027)
    assert [(t.hazard_id, t.task_key, t.due) for t in tracked] == [(hid, "set_review_due", PROVISIONAL_DUE)]

    with time_machine.travel(APPLIED + dt.timedelta(days=1), tick=False):
        with driver.sessions.begin() as session:
            changed = calendar.enter_official_year(
                session, 2027, HOLIDAYS_2027, WORKDAYS_2027, driver.world.users["admin"].id
            )
            results = deadlines.recompute_provisional_deadlines(session, driver.ctx, None if sweep else 2027)
    assert changed == [d for d, _ in WORKDAYS_2027]  # only the 调休 Saturdays/Sundays differ
    [result] = results
    assert (result.hazard_id, result.variables, result.moved) == (hid, ("review_due_at",), True)
    assert (result.old_due_at, result.new_due_at, result.provisional) == (
        PROVISIONAL_DUE,
        OFFICIAL_DUE,
        False,
    )

    # the work item, the timer_job rows and the real SpiffWorkflow timers all moved
    assert driver.open_item_due(hid, "regulator_review") == OFFICIAL_DUE
    expected = {"review_remind": OFFICIAL_DUE - dt.timedelta(days=2), "review_overdue": OFFICIAL_DUE}
    assert driver.timer_jobs(hid) == expected
    assert spiff_timers(driver, hid) == expected
    [recomputed] = events(driver, hid, "deadline_recomputed")
    assert recomputed.task_key == "set_review_due"
    assert recomputed.payload["old_due_at"] == PROVISIONAL_DUE.isoformat()
    assert recomputed.payload["due_at"] == OFFICIAL_DUE.isoformat()
    assert recomputed.payload["provisional"] is False
    assert recomputed.payload["variable"] == "review_due_at"

    # recomputing again changes nothing and records nothing
    with driver.sessions.begin() as session:
        assert deadlines.recompute_provisional_deadlines(session, driver.ctx, 2027) == []
        assert deadlines.recompute_provisional_deadlines(session, driver.ctx) == []
    assert len(events(driver, hid, "deadline_recomputed")) == 1

    # between the new and the old due time, SpiffWorkflow itself decides the timer is due
    with time_machine.travel(OFFICIAL_DUE + dt.timedelta(minutes=30), tick=False):
        with driver.sessions() as session:
            job_id = session.scalar(
                select(TimerJob.id).where(TimerJob.hazard_id == hid, TimerJob.timer_key == "review_overdue")
            )
        with driver.sessions.begin() as session:
            assert runtime.fire_timer(session, driver.ctx, timer_job_id=job_id) == "fired"
    assert driver.hazard(hid).overdue is True
    assert len(events(driver, hid, "overdue")) == 1
    assert driver.open_keys(hid) == ["regulator_review"]  # non-interrupting


def test_a_deadline_whose_variable_was_replaced_is_left_alone(driver):
    hid = at_regulator_review(driver)
    with driver.sessions.begin() as session:
        with runtime._protocol(session, driver.ctx, hid, actor=None) as loaded:
            bpmn.set_variable(loaded.workflow, "review_due_at", OFFICIAL_DUE.isoformat())
            runtime._project(session, driver.ctx, loaded)
    with driver.sessions.begin() as session:
        calendar.enter_official_year(session, 2027, HOLIDAYS_2027, WORKDAYS_2027)
        assert deadlines.recompute_provisional_deadlines(session, driver.ctx, 2027) == []
    assert events(driver, hid, "deadline_recomputed") == []


def test_a_correction_that_keeps_the_date_only_clears_the_provisional_flag(driver):
    hid = at_regulator_review(driver)
    # the official schedule has no 调休 before the deadline: same day, no longer provisional
    with driver.sessions.begin() as session:
        calendar.enter_official_year(session, 2027, HOLIDAYS_2027, WORKDAYS_2027[2:])
        [result] = deadlines.recompute_provisional_deadlines(session, driver.ctx, 2027)
    assert (result.moved, result.provisional, result.new_due_at) == (False, False, PROVISIONAL_DUE)
    assert events(driver, hid, "deadline_recomputed") == []
    [confirmed] = events(driver, hid, "deadline_confirmed")
    assert confirmed.payload["provisional"] is False
    assert driver.timer_jobs(hid)["review_overdue"] == PROVISIONAL_DUE
    # the sweep finds nothing provisional any more
    with driver.sessions.begin() as session:
        assert deadlines.recompute_provisional_deadlines(session, driver.ctx) == []


def test_a_deadline_outside_the_entered_year_is_not_touched(driver):
    at_regulator_review(driver)
    with driver.sessions.begin() as session:
        calendar.enter_official_year(session, 2028, [(dt.date(2028, 1, 1), "元旦")], [])
        assert deadlines.recompute_provisional_deadlines(session, driver.ctx, 2028) == []
