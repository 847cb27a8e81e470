"""The escalation ladder (DOMAIN §4.3, DESIGN §6): rungs on time, once, with notices; catch-up.

The national profile's ladder: 提醒敦促函 3 days before the deadline, at the deadline and after 15
days without progress; 函告 3, 通报 10, 约谈 20, 曝光 30 working days overdue; 挂牌督办 after 60;
failed verifications and recurrence → 约谈; refusal / fake rectification → referral (L6).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine import calendar
from engine import policy
from engine import runtime
from engine import timers
from engine.errors import InvalidInput
from engine.events import verify_chain
from engine.models import Event
from engine.models import Hazard
from engine.models import Notice
from engine.models import ProcessInstance
from engine.models import TimerJob
from tests.factories import plan_form
from tests.processes.test_hazard_general import VERIFY_REJECT
from tests.processes.test_hazard_general__actions import DEADLINE
from tests.processes.test_hazard_general__actions import DUE
from tests.processes.test_hazard_general__actions import START
from tests.processes.test_hazard_general__actions import ActionsDriver

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: the national ladder's overdue rungs and their offsets in working days (processes/policies/national.json)
OVERDUE_RUNGS = [("letter", 3), ("circular", 10), ("interview", 20), ("exposure", 30)]


@pytest.fixture
def driver(sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield ActionsDriver(sessions, ctx, world, False)


def notices(driver, hazard_id) -> list[Notice]:
    with driver.sessions() as session:
        return list(session.scalars(select(Notice).where(Notice.hazard_id == hazard_id).order_by(Notice.id)))


def events(driver, hazard_id, action) -> list[dict]:
    with driver.sessions() as session:
        return [
            e.payload
            for e in session.scalars(
                select(Event).where(Event.hazard_id == hazard_id, Event.action == action).order_by(Event.id)
            )
        ]


def rung_time(rung: str, base: dt.datetime = DEADLINE) -> dt.datetime:
    """When the national ladder puts ``rung`` (computed independently of the engine's helper)."""
    cal = calendar.current_calendar()
    offsets = dict(OVERDUE_RUNGS) | {"listing": 60}
    day = cal.add_working_days(base.astimezone(SHANGHAI).date(), offsets[rung])
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=SHANGHAI).astimezone(dt.UTC)


def run_at(driver, when: dt.datetime):
    with time_machine.travel(when, tick=False):
        return timers.run_due(driver.sessions, driver.ctx)


def test_untouched_hazard_walks_the_whole_ladder_once_each(driver):
    hid = driver.planned()
    urge_before = dt.datetime.combine(DUE - dt.timedelta(days=3), dt.time(9, 0), tzinfo=SHANGHAI)
    no_progress = dt.datetime.combine(
        START.astimezone(SHANGHAI).date() + dt.timedelta(days=15), dt.time(9, 0), tzinfo=SHANGHAI
    )
    expected = [
        ("urge_before", urge_before),
        ("urge_no_progress", no_progress),
        ("urge_due", dt.datetime.combine(DUE, dt.time(9, 0), tzinfo=SHANGHAI)),
        *[(rung, rung_time(rung)) for rung, _ in OVERDUE_RUNGS],
    ]
    for rung, due in expected:
        before = len(notices(driver, hid))
        run_at(driver, due - dt.timedelta(minutes=1))
        assert len(notices(driver, hid)) == before, f"{rung} fired early"
        run_at(driver, due + dt.timedelta(minutes=1))
        run_at(driver, due + dt.timedelta(minutes=2))  # a second sweep adds nothing
        issued = notices(driver, hid)
        assert len(issued) == before + 1, rung
        notice = issued[-1]
        assert notice.rung == rung
        assert notice.due_at == due.astimezone(dt.UTC)
        issued_day = notice.issued_at.astimezone(SHANGHAI).date()
        assert issued_day == due.astimezone(SHANGHAI).date()
        if rung in dict(OVERDUE_RUNGS):
            cal = calendar.current_calendar()
            assert cal.is_working_day(issued_day)
            assert cal.working_days_between(DUE, issued_day) == dict(OVERDUE_RUNGS)[rung]
    issued = notices(driver, hid)
    assert [n.kind for n in issued] == [
        "urge_letter",
        "urge_letter",
        "urge_letter",
        "letter",
        "circular",
        "interview",
        "exposure",
    ]
    assert len({n.document_number for n in issued}) == len(issued)
    by_rung = {n.rung: n for n in issued}
    assert {r["key"] for r in by_rung["letter"].recipients} == {"enterprise", "competent_department"}
    assert {r["key"] for r in by_rung["circular"].recipients} >= {"member_units"}
    assert {r["key"] for r in by_rung["interview"].recipients} >= {"principal", "actual_controller"}
    assert by_rung["interview"].meeting_at is not None and by_rung["interview"].place
    assert "〔" in by_rung["circular"].document_number
    assert driver.hazard(hid).escalation_level == 4
    levels = [e["level"] for e in events(driver, hid, "escalated")]
    assert levels == [0, 0, 0, 1, 2, 3, 4]

    # completing the rectification stops the ladder: no listing, however long we wait
    driver.rectify(hid)
    with driver.sessions() as session:
        waiting = session.scalars(
            select(TimerJob.timer_key).where(TimerJob.hazard_id == hid, TimerJob.state == "waiting")
        ).all()
    assert not [k for k in waiting if k.startswith("rectify_")]
    run_at(driver, rung_time("listing") + dt.timedelta(days=30))
    assert len(notices(driver, hid)) == len(issued)
    with driver.sessions() as session:
        for instance in session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hid)):
            assert verify_chain(session, key=driver.ctx.audit_key, instance_id=instance.id) == []


def test_completing_before_the_deadline_issues_nothing_more(driver):
    hid = driver.planned()
    urge_before = dt.datetime.combine(DUE - dt.timedelta(days=3), dt.time(9, 1), tzinfo=SHANGHAI)
    run_at(driver, urge_before)  # 提醒敦促函 (before) only
    assert [n.rung for n in notices(driver, hid)] == ["urge_before"]
    with time_machine.travel(urge_before + dt.timedelta(hours=2), tick=False):
        driver.rectify(hid)
    run_at(driver, rung_time("exposure") + dt.timedelta(days=1))
    assert [n.rung for n in notices(driver, hid)] == ["urge_before"]


def test_three_day_outage_issues_one_notice_at_the_right_rung(driver):
    hid = driver.planned()
    run_at(driver, rung_time("letter") + dt.timedelta(minutes=1))
    assert notices(driver, hid)[-1].rung == "letter"
    # nothing runs from a day before the 通报 until three days after it
    run_at(driver, rung_time("circular") + dt.timedelta(days=3))
    issued = notices(driver, hid)
    assert [n.rung for n in issued].count("circular") == 1
    assert issued[-1].rung == "circular"
    assert issued[-1].due_at == rung_time("circular")  # records when it fell due …
    assert issued[-1].issued_at > issued[-1].due_at  # … and when it was actually issued


def test_backfilled_hazard_forty_working_days_past_gets_one_notice(driver):
    cal = calendar.current_calendar()
    due_day = cal.add_working_days(START.astimezone(SHANGHAI).date(), -40)
    deadline = dt.datetime.combine(due_day, dt.time(23, 59, 59), tzinfo=SHANGHAI)
    on_time = driver.planned()
    # 存量: registered today with its original (past) deadline, planned with that same deadline
    hid = driver.register(discovered_at=deadline - dt.timedelta(days=90), deadline=deadline)
    with pytest.raises(InvalidInput):
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(due_day - dt.timedelta(days=1)))
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(due_day))
    run_at(driver, START + dt.timedelta(minutes=1))
    issued = notices(driver, hid)
    assert [n.rung for n in issued] == ["exposure"], "only the highest rung that is due"
    assert issued[0].due_at == rung_time("exposure", deadline)
    skipped = {e["rung"]: e["reason"] for e in events(driver, hid, "escalation_skipped")}
    assert skipped == {
        "urge_before": "caught_up",
        "urge_due": "caught_up",
        "letter": "caught_up",
        "circular": "caught_up",
        "interview": "caught_up",
    }
    run_at(driver, START + dt.timedelta(minutes=5))
    assert len(notices(driver, hid)) == 1
    assert driver.hazard(hid).escalation_level == 4
    assert notices(driver, on_time) == []  # the other hazard is on time


def test_suppressed_import_waits_until_the_date_then_issues_one(driver):
    cal = calendar.current_calendar()
    due_day = cal.add_working_days(START.astimezone(SHANGHAI).date(), -12)
    until = START + dt.timedelta(days=10)
    old = dt.datetime.combine(due_day, dt.time(9), tzinfo=SHANGHAI) - dt.timedelta(days=30)
    deadline = dt.datetime.combine(due_day, dt.time(23, 59, 59), tzinfo=SHANGHAI)
    hid = driver.register(discovered_at=old, deadline=deadline, suppress_escalation_until=until)
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(due_day))
    run_at(driver, START)
    assert notices(driver, hid) == []
    assert driver.hazard(hid).overdue  # still marked overdue: only the notices wait
    run_at(driver, until - dt.timedelta(minutes=1))
    assert notices(driver, hid) == []
    run_at(driver, until + dt.timedelta(minutes=1))
    assert [n.rung for n in notices(driver, hid)] == ["interview"]  # 20+ working days overdue by then


def test_refusal_jumps_to_referral(driver):
    hid = driver.planned()
    driver.call(runtime.record_violation, "wu_reviewer", hazard_id=hid, kind="refusal", note="拒绝整改")
    issued = notices(driver, hid)
    assert [(n.rung, n.kind, n.level) for n in issued] == [("referral", "referral", 6)]
    assert {r["key"] for r in issued[0].recipients} >= {"discipline"}
    assert driver.hazard(hid).escalation_level == 6
    # the ladder's lower rungs are superseded afterwards
    run_at(driver, rung_time("circular") + dt.timedelta(minutes=1))
    assert [n.rung for n in notices(driver, hid)] == ["referral"]


def test_failed_verifications_summon_the_principal(driver):
    hid = driver.planned()
    for attempt in range(3):
        driver.rectify(hid, f"after-{attempt}".encode())
        driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    issued = notices(driver, hid)
    assert [(n.rung, n.trigger) for n in issued] == [("interview", "failed_verifications")]
    driver.rectify(hid, b"after-4")
    driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    assert len(notices(driver, hid)) == 1  # once per loop


def test_recurrence_at_the_same_location_escalates_at_registration(driver):
    first = driver.planned(location="2号装车台")
    driver.close(first)
    other = driver.register(location="3号装车台")
    assert notices(driver, other) == []
    again = driver.register(location=" 2号装车台 ")
    issued = notices(driver, again)
    assert [(n.rung, n.trigger) for n in issued] == [("interview", "recurrence")]
    assert issued[0].facts.get("previous_number") == driver.hazard(first).number


def test_progress_update_moves_the_no_progress_rung(driver):
    hid = driver.planned(due=DUE + dt.timedelta(days=60))
    later = START + dt.timedelta(days=10)
    with time_machine.travel(later, tick=False):
        driver.call(
            runtime.update_progress,
            "zhang_rectifier",
            hazard_id=hid,
            form={"progress_percent": 40, "note": "探头已到货"},
        )
    run_at(driver, START + dt.timedelta(days=16))
    assert notices(driver, hid) == []
    run_at(driver, later + dt.timedelta(days=16))
    assert [n.rung for n in notices(driver, hid)] == ["urge_no_progress"]


def test_the_ladder_is_policy_data(driver):
    with driver.sessions.begin() as session:
        national = policy.get_profile(session, "national")
        ladder = policy.ladder_of(national)
        assert ladder.rung("circular").offset == "escalation_circular_after_overdue"
        assert policy.policy_value(national, "escalation_circular_after_overdue").unit == "working_days"
        document = {
            "key": "national",
            "title": "全国默认策略配置",
            "sector": None,
            "region": None,
            "extends": None,
            "values": {name: value.as_dict() for name, value in policy.policy_values(national).items()}
            | {
                "escalation_circular_after_overdue": {
                    "value": 5,
                    "unit": "working_days",
                    "label": "逾期后通报（L2）",
                    "source": "测试：部门修改",
                }
            },
            "ladder": national.content["ladder"],
        }
        policy.import_policy(session, document)
    hid = driver.planned()
    run_at(driver, rung_time("letter") + dt.timedelta(minutes=1))
    cal = calendar.current_calendar()
    day5 = cal.add_working_days(DUE, 5)
    run_at(driver, dt.datetime.combine(day5, dt.time(9, 1), tzinfo=SHANGHAI))
    assert [n.rung for n in notices(driver, hid)][-1] == "circular"


def test_bad_ladder_documents_are_refused(driver):
    with driver.sessions.begin() as session:
        national = policy.get_profile(session, "national")
        base = {
            "key": "fire",
            "title": "消防",
            "sector": "fire",
            "region": None,
            "extends": "national",
            "values": {},
        }
        for ladder, where in (
            ({"rungs": {"warp": {}}}, "ladder.rungs.warp"),
            (
                {"rungs": {"letter": {**national.content["ladder"]["rungs"]["letter"], "offset": "nope"}}},
                None,
            ),
            ({"triggers": {"overdue": "letter"}}, "ladder.triggers.overdue"),
            (
                {"rungs": {"letter": {**national.content["ladder"]["rungs"]["letter"], "issuer": "mayor"}}},
                None,
            ),
        ):
            with pytest.raises(InvalidInput) as caught:
                policy.import_policy(session, {**base, "ladder": ladder})
            if where:
                assert where in caught.value.messages


def test_listing_rung_starts_the_supervision_track(driver):
    hid = driver.planned()
    run_at(driver, rung_time("listing") + dt.timedelta(minutes=1))
    with driver.sessions() as session:
        query = (
            select(ProcessInstance.kind).where(ProcessInstance.hazard_id == hid).order_by(ProcessInstance.id)
        )
        kinds = list(session.scalars(query))
        hazard = session.get(Hazard, hid)
        assert kinds == ["loop", "supervision"]
        assert hazard.escalation_level == 5
    assert "listing_decision" in driver.open_keys(hid)
    assert "rectify" in driver.open_keys(hid)
