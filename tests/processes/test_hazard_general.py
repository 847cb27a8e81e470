"""Scenario tests for processes/hazard_general.bpmn, driven through engine.runtime."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine import calendar
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.models import Event
from engine.models import Notice
from engine.models import TaskSubmission
from engine.models import TimerJob
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: the escalation ladder's boundary timers on rectify (``rectify_*``) / govern (``govern_*``)
LADDER_TIMERS = (
    "remind",
    "overdue",
    "urge_due",
    "no_progress",
    "letter",
    "circular",
    "interview",
    "exposure",
    "listing",
)
#: the national ladder's overdue rungs, in working days after the deadline (processes/policies/national.json)
OVERDUE_WORKING_DAYS = {"letter": 3, "circular": 10, "interview": 20, "exposure": 30, "listing": 60}


def ladder_keys(prefix: str = "rectify") -> set[str]:
    return {f"{prefix}_{name}" for name in LADDER_TIMERS}


def nine_am(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=SHANGHAI).astimezone(dt.UTC)


def ladder_due(deadline: dt.datetime, last_progress: dt.datetime, prefix: str = "rectify") -> dict:
    """When each ladder timer of a task due at ``deadline`` falls due under the national profile
    (computed independently of the engine): 提醒敦促 09:00 three calendar days before the deadline
    day, on the deadline day and 15 calendar days after the last progress; the overdue mark at the
    deadline itself; the overdue rungs at 09:00 of the n-th working day after the deadline day."""
    due_day = deadline.astimezone(SHANGHAI).date()
    cal = calendar.current_calendar()
    times = {
        "remind": nine_am(due_day - dt.timedelta(days=3)),
        "overdue": deadline,
        "urge_due": nine_am(due_day),
        "no_progress": nine_am(last_progress.astimezone(SHANGHAI).date() + dt.timedelta(days=15)),
    } | {rung: nine_am(cal.add_working_days(due_day, n)) for rung, n in OVERDUE_WORKING_DAYS.items()}
    return {f"{prefix}_{name}": at for name, at in times.items()}


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, request.param)


VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
VERIFY_REJECT = {"decision": "reject", "opinion": "探头未更换", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}
REVIEW_REJECT = {"decision": "reject", "opinion": "资料不全", "reviewer_signature": "吴刚"}


def upload(driver, hazard_id, username, phase, content):
    return driver.upload(hazard_id, content, username=username, phase=phase)


def rectify_form(driver, hazard_id, content=b"after-photo"):
    photo = upload(driver, hazard_id, "zhang_rectifier", "after", content)
    return {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-11-25"}


def test_deadline_path_closes_after_departmental_review(driver):
    hid = driver.register()
    assert driver.open_keys(hid) == ["assign_plan"]
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    hazard = driver.hazard(hid)
    assert hazard.status == "rectifying"
    assert hazard.deadline == dt.datetime(2026, 12, 10, 15, 59, 59, tzinfo=dt.UTC)
    assert hazard.responsible_person == "张强"
    assert driver.open_keys(hid) == ["rectify"]
    with driver.sessions() as s:
        jobs = s.scalars(select(TimerJob).where(TimerJob.hazard_id == hid, TimerJob.state == "waiting")).all()
        assert {j.timer_key for j in jobs} == ladder_keys()
        assert {j.timer_key: j.due_at for j in jobs} == ladder_due(hazard.deadline, START)
        assert {j.timer_key: j.due_at for j in jobs}["rectify_overdue"] == hazard.deadline
    driver.complete(hid, "rectify", "zhang_rectifier", rectify_form(driver, hid))
    assert driver.hazard(hid).status == "verifying"
    driver.complete(hid, "verify", "chen_safety", VERIFY_PASS)
    assert driver.open_keys(hid) == ["closure_review"]
    driver.complete(hid, "closure_review", "wu_reviewer", REVIEW_PASS)
    hazard = driver.hazard(hid)
    assert hazard.status == "closed" and hazard.closed_at is not None
    assert driver.open_keys(hid) == []
    actions = driver.actions(hid)
    assert actions[0] == "registered" and actions[-1] == "closed"
    with driver.sessions() as s:
        assert (
            s.scalar(select(TimerJob.id).where(TimerJob.hazard_id == hid, TimerJob.state == "waiting"))
            is None
        )


def test_immediate_path(driver):
    hid = driver.register(handling_type="immediate")
    assert driver.open_keys(hid) == ["fix_on_spot"]
    photo = upload(driver, hid, "zhang_rectifier", "after", b"fixed")
    driver.complete(
        hid, "fix_on_spot", "zhang_rectifier", {"description": "现场已整改", "after_photos": [photo]}
    )
    driver.complete(hid, "verify", "chen_safety", VERIFY_PASS)
    driver.complete(hid, "closure_review", "wu_reviewer", REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"


def test_reject_loop_keeps_history_and_escalates_at_cap(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    for round_no in range(1, 5):
        driver.complete(
            hid, "rectify", "zhang_rectifier", rectify_form(driver, hid, f"after-{round_no}".encode())
        )
        driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
        assert driver.open_keys(hid) == ["rectify"]
        assert driver.hazard(hid).failed_verifications == round_no
    hazard = driver.hazard(hid)
    # round 3 reached the cap of 3: the profile maps failed verifications to the 约谈 rung (L3), once
    # per loop; round 4 at the cap adds nothing (the rung was issued already: not even a skip record)
    assert hazard.escalation_level == 3
    with driver.sessions() as s:
        notices = s.scalars(select(Notice).where(Notice.hazard_id == hid)).all()
        assert [(n.rung, n.trigger, n.level) for n in notices] == [("interview", "failed_verifications", 3)]
        escalated = s.scalars(
            select(Event.payload).where(Event.hazard_id == hid, Event.action == "escalated")
        ).all()
        assert [(e["rung"], e["level"], e["notice_id"]) for e in escalated] == [
            ("interview", 3, notices[0].id)
        ]
        skipped = s.scalars(
            select(Event.payload).where(Event.hazard_id == hid, Event.action == "escalation_skipped")
        ).all()
        assert skipped == []
        assert s.scalar(select(TaskSubmission.id).where(TaskSubmission.form_key == "verify").limit(1))
        assert len(s.scalars(select(TaskSubmission).where(TaskSubmission.hazard_id == hid)).all()) == 9


def test_verifier_must_not_be_rectifier(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    # li_mall holds every enterprise role at the mall; use a mall hazard so one person could do both
    hid2 = driver.register("li_mall", enterprise_id=driver.world.enterprises["mall"].id)
    driver.complete(hid2, "assign_plan", "li_mall", plan_form(dt.date(2026, 12, 10)))
    photo = upload(driver, hid2, "li_mall", "after", b"mall-after")
    driver.complete(
        hid2,
        "rectify",
        "li_mall",
        {"summary": "已整改", "after_photos": [photo], "completed_on": "2026-11-24"},
    )
    with pytest.raises(Forbidden, match="验收人不得为整改人"):
        driver.complete(hid2, "verify", "li_mall", VERIFY_PASS)
    assert driver.open_keys(hid2) == ["verify"]


def test_form_cannot_set_deadline_or_grade(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    form = rectify_form(driver, hid)
    for key in ("deadline_at", "grade", "deadline"):
        with pytest.raises(InvalidInput) as err:
            driver.complete(hid, "rectify", "zhang_rectifier", {**form, key: "2030-01-01"})
        assert key in err.value.messages
    assert driver.hazard(hid).grade == "general"
    assert driver.open_keys(hid) == ["rectify"]


def test_late_completion_fires_the_due_timer_first_and_is_marked_late(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    form = rectify_form(driver, hid)
    with time_machine.travel(dt.datetime(2026, 12, 2, 2, 0, tzinfo=dt.UTC), tick=False):
        driver.complete(hid, "rectify", "zhang_rectifier", form)
        actions = driver.actions(hid)
    assert actions.count("overdue") == 1 and actions.count("reminder") == 1
    # 提醒敦促 before and on the deadline fell due together: only the later one was issued (catch-up)
    assert actions.count("escalated") == 1 and actions.count("escalation_skipped") == 1
    assert actions.index("overdue") < actions.index("task_completed", actions.index("overdue") - 1)
    hazard = driver.hazard(hid)
    assert hazard.rectified_late is True
    assert driver.open_keys(hid) == ["verify"]
    with driver.sessions() as s:
        states = dict(
            s.execute(select(TimerJob.timer_key, TimerJob.state).where(TimerJob.hazard_id == hid)).all()
        )
    # the rungs due by then fired (only the latest 提醒敦促 issued a reminder); the rest were cancelled
    assert states == {key: "cancelled" for key in ladder_keys()} | {
        "rectify_remind": "fired",
        "rectify_urge_due": "fired",
        "rectify_overdue": "fired",
    }
