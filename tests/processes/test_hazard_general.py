"""Scenario tests for processes/hazard_general.bpmn, driven through engine.runtime."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.models import TaskSubmission
from engine.models import TimerJob
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai


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
        assert sorted(j.timer_key for j in jobs) == ["rectify_overdue", "rectify_remind"]
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
    assert hazard.escalation_level == 2  # rounds 3 and 4 reached the cap of 3
    with driver.sessions() as s:
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
    assert actions.index("overdue") < actions.index("task_completed", actions.index("overdue") - 1)
    hazard = driver.hazard(hid)
    assert hazard.rectified_late is True
    assert driver.open_keys(hid) == ["verify"]
    with driver.sessions() as s:
        states = dict(
            s.execute(select(TimerJob.timer_key, TimerJob.state).where(TimerJob.hazard_id == hid)).all()
        )
    assert states == {"rectify_remind": "fired", "rectify_overdue": "fired"}
