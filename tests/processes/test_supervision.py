"""The 挂牌督办 track end to end (processes/supervision.bpmn): decision, 通知书, 备案 and 公告 within
their working-day periods, rectification under listing with an approved and a denied extension,
on-site acceptance within 10 days of the application (a failed one first), 摘牌 and its 公告;
and a listing left unresolved past the maximum period goes to the next-higher government."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine import calendar
from engine import runtime
from engine import timers
from engine.events import verify_chain
from engine.models import Event
from engine.models import Hazard
from engine.models import Notice
from engine.models import ProcessInstance
from engine.models import TimerJob
from engine.models import WorkItem
from tests.factories import plan_form
from tests.processes.test_hazard_general__actions import START
from tests.processes.test_hazard_general__actions import ActionsDriver

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
DUE = dt.date(2027, 3, 31)
ACCEPT = {"decision": "pass", "opinion": "现场验收合格", "verifier_signature": "吴刚"}
REJECT = {"decision": "reject", "opinion": "防爆电气未更换完毕", "verifier_signature": "吴刚"}
APPLY = {"summary": "已按治理方案完成整改", "principal_signature": "王建国"}


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield ActionsDriver(sessions, ctx, world, request.param)


def kinds(driver, hazard_id) -> list[str]:
    with driver.sessions() as session:
        return list(
            session.scalars(select(Notice.kind).where(Notice.hazard_id == hazard_id).order_by(Notice.id))
        )


def track(driver, hazard_id) -> ProcessInstance:
    with driver.sessions() as session:
        return session.scalars(
            select(ProcessInstance).where(
                ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == "supervision"
            )
        ).one()


def due_of(driver, hazard_id, task_key) -> dt.datetime:
    with driver.sessions() as session:
        return session.scalars(
            select(WorkItem.due_at).where(
                WorkItem.hazard_id == hazard_id, WorkItem.task_key == task_key, WorkItem.state == "open"
            )
        ).one()


def working_days_to(day: dt.datetime) -> int:
    cal = calendar.current_calendar()
    return cal.working_days_between(START.astimezone(SHANGHAI).date(), day.astimezone(SHANGHAI).date())


def test_listing_track_end_to_end(driver):
    hid = driver.register(listed_level=3)  # 县级挂牌 from registration (DOMAIN §4.3 note a)
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    # the listing decision was made at registration: the 通知书 is issued at once
    assert kinds(driver, hid) == ["listing_notice"]
    assert driver.hazard(hid).listed_level == 3
    assert {"listing_filing", "listing_announcement", "delisting_application", "rectify"} <= set(
        driver.open_keys(hid)
    )
    assert working_days_to(due_of(driver, hid, "listing_filing")) == 3
    assert working_days_to(due_of(driver, hid, "listing_announcement")) == 5

    driver.complete(
        hid,
        "listing_filing",
        "he_office",
        {"filed_with": "宣城市安委办", "filing_number": "宣安备〔2026〕8号", "filed_on": "2026-11-24"},
    )
    driver.complete(
        hid,
        "listing_announcement",
        "he_office",
        {"channel": "郎溪县人民政府网站", "published_on": "2026-11-25"},
    )
    assert kinds(driver, hid) == ["listing_notice", "listing_announcement"]

    # a denied and an approved extension: the approved one moves both tracks' deadlines and timers
    wanted = DUE + dt.timedelta(days=30)
    denied = driver.call(
        runtime.request_extension,
        "chen_safety",
        hazard_id=hid,
        form={"requested_due_date": wanted.isoformat(), "reason": "设备未到货"},
    ).id
    driver.call(
        runtime.decide_extension,
        "wu_reviewer",
        request_id=denied,
        form={"decision": "deny", "opinion": "理由不足"},
    )
    assert due_of(driver, hid, "delisting_application").astimezone(SHANGHAI).date() == DUE
    approved = driver.call(
        runtime.request_extension,
        "chen_safety",
        hazard_id=hid,
        form={"requested_due_date": wanted.isoformat(), "reason": "供货商停产，已另行采购"},
    ).id
    driver.call(
        runtime.decide_extension,
        "wu_reviewer",
        request_id=approved,
        form={"decision": "approve", "opinion": "同意"},
    )
    assert due_of(driver, hid, "delisting_application").astimezone(SHANGHAI).date() == wanted
    assert due_of(driver, hid, "rectify").astimezone(SHANGHAI).date() == wanted
    with driver.sessions() as session:
        track_events = session.scalars(
            select(Event.action).where(Event.instance_id == track(driver, hid).id).order_by(Event.id)
        ).all()
    assert "extension_approved" in track_events

    # application → a failed on-site acceptance → re-application → acceptance within 10 days
    applied_at = START + dt.timedelta(days=20)
    with time_machine.travel(applied_at, tick=False):
        driver.complete(hid, "delisting_application", "wang_principal", APPLY)
        assert (due_of(driver, hid, "onsite_acceptance") - applied_at).days in (9, 10)
        driver.complete(hid, "onsite_acceptance", "wu_reviewer", REJECT)
        assert "delisting_application" in driver.open_keys(hid)
        driver.complete(hid, "delisting_application", "wang_principal", APPLY)
        driver.complete(hid, "onsite_acceptance", "wu_reviewer", ACCEPT)
        assert working_days_to(due_of(driver, hid, "delisting")) >= 5
        driver.complete(
            hid, "delisting", "he_office", {"channel": "郎溪县人民政府网站", "opinion": "同意摘牌"}
        )
    assert kinds(driver, hid) == [
        "listing_notice",
        "listing_announcement",
        "delisting_notice",
        "delisting_announcement",
    ]
    hazard = driver.hazard(hid)
    assert hazard.listed_level is None
    assert track(driver, hid).status == "completed"
    assert hazard.status != "closed"  # 摘牌 is not 销号: the loop goes on to verification and review
    with driver.sessions() as session:
        numbers = session.scalars(select(Notice.document_number).where(Notice.hazard_id == hid)).all()
        assert len(set(numbers)) == 4
        for instance in session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hid)):
            assert verify_chain(session, key=driver.ctx.audit_key, instance_id=instance.id) == []


def test_declined_listing_ends_the_track(driver):
    hid = driver.register(grade="major")
    with driver.sessions.begin() as session:
        hazard = session.get(Hazard, hid)
        loaded_actor = driver.world.actor(session, "he_office")
    # the ladder reaching 挂牌督办 asks for a decision; here the office declines it
    with driver.sessions.begin() as session:
        from engine.runtime import _protocol
        from engine.runtime import _start_supervision

        with _protocol(session, driver.ctx, hid, actor=None) as loaded:
            _start_supervision(session, driver.ctx, loaded, level=3, reason="overdue")
    assert "listing_decision" in driver.open_keys(hid)
    driver.complete(hid, "listing_decision", "he_office", {"decision": "reject", "opinion": "已责令停产整改"})
    assert kinds(driver, hid) == []
    assert track(driver, hid).status == "completed"
    assert hazard.listed_level is None and loaded_actor.user_id


def test_listing_unresolved_past_the_maximum_goes_to_the_higher_government(driver):
    hid = driver.register(listed_level=3)
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    with driver.sessions() as session:
        expiry = session.scalars(
            select(TimerJob.due_at).where(TimerJob.hazard_id == hid, TimerJob.timer_key == "listing_expired")
        ).one()
    assert 360 <= (expiry - START).days <= 366  # at most one year listed
    with time_machine.travel(expiry + dt.timedelta(minutes=1), tick=False):
        timers.run_due(driver.sessions, driver.ctx)
    issued = kinds(driver, hid)
    assert issued[-1] == "higher_referral"
    with driver.sessions() as session:
        referral = session.scalars(
            select(Notice).where(Notice.hazard_id == hid, Notice.kind == "higher_referral")
        ).one()
        # the county listed it, so the county government asks the city government to take over
        assert referral.issuer_name.endswith("县人民政府")
        [higher] = [r for r in referral.recipients if r["key"] == "higher_government"]
        assert "市" in higher["name"]
