"""engine.outbox: who is notified of what, one row per (recipient, channel), in the step's transaction.

(The engine side of the notifiers; it lives here with the rest of the notification tests.)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from itertools import product

import pytest
import time_machine
from sqlalchemy import select

from engine import runtime
from engine.access import can_act_as
from engine.models import Enterprise
from engine.models import Event
from engine.models import Hazard
from engine.models import OutboxMessage
from engine.models import Role
from engine.models import User
from engine.models import UserContact
from engine.outbox import candidate_user_ids
from engine.runtime import EngineContext
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
VERIFY_REJECT = {"decision": "reject", "opinion": "探头未更换", "verifier_signature": "陈静"}


@pytest.fixture
def inapp_ctx(settings):
    return EngineContext(settings=replace(settings, notify_channels=("inapp",)))


@pytest.fixture
def driver(sessions, inapp_ctx, world):
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, inapp_ctx, world, round_trip=False)


def rows(sessions, hazard_id, **where):
    with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.hazard_id == hazard_id).order_by(OutboxMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list(session.scalars(query))


def recipients(driver, hazard_id, kind):
    usernames = {u.id: name for name, u in driver.world.users.items()}
    return sorted(usernames[r.recipient_user_id] for r in rows(driver.sessions, hazard_id, kind=kind))


def test_candidates_are_exactly_the_users_access_lets_act(sessions, world):
    """The one-query recipient lookup agrees with engine.access.can_act_as for every user and role."""
    with sessions() as session:
        actors = [world.actor(session, name) for name in world.users]
        enterprises = {k: session.get(Enterprise, e.id) for k, e in world.enterprises.items()}
        hazards = [
            Hazard(
                enterprise_id=e.id,
                region_path=e.region.path,
                sector_code=e.sector_code,
                lead_department_id=lead,
                source=source,
            )
            for e in enterprises.values()
            for lead in (None, world.departments["lx_emergency"].id, world.departments["lx_fire"].id)
            for source in ("self_check", "public_tip")
        ]
        for hazard, role, scope in product(hazards, list(Role), ("enterprise", "department", "region")):
            expected = sorted(a.user_id for a in actors if can_act_as(a, role, hazard, org_scope=scope))
            got = candidate_user_ids(session, hazard, role.value, scope)
            assert got == expected, (role, scope, hazard.sector_code, hazard.lead_department_id)


def test_who_hears_of_what(driver):
    hid = driver.register()
    assert recipients(driver, hid, "task_created") == ["chen_safety"]  # assign_plan: safety officer
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    # rectify: both rectifiers of the enterprise (nobody at the mall or elsewhere)
    assert recipients(driver, hid, "task_created") == ["chen_safety", "liu_rectifier", "zhang_rectifier"]
    item = driver.item(hid, "rectify")
    zhang = driver.actor("zhang_rectifier")
    driver.step(lambda s: runtime.claim(s, driver.ctx, work_item_id=item.id, actor=zhang))
    with time_machine.travel(dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC), tick=False):
        from engine.timers import run_due

        run_due(driver.sessions, driver.ctx)
    # claimed: the reminder goes to the assignee only; overdue adds the lead department's reviewers
    assert recipients(driver, hid, "reminder") == ["zhang_rectifier"]
    assert recipients(driver, hid, "overdue") == ["wu_reviewer", "zhang_rectifier"]
    [overdue] = rows(
        driver.sessions, hid, kind="overdue", recipient_user_id=driver.world.users["wu_reviewer"].id
    )
    facts = overdue.payload
    assert facts["hazard_number"].startswith("YH-") and facts["enterprise_name"] == "郎溪县华宇化工有限公司"
    assert facts["task_title"] == "限期整改" and facts["task_due_at"] == "2026-11-30T15:59:59+00:00"
    assert facts["recipient_name"] == "吴刚（县应急局审核）" and facts["kind"] == "rectify"
    assert overdue.subject is None  # rendered by the dispatcher, not by the engine
    assert (overdue.state, overdue.attempts, overdue.channel) == ("pending", 0, "inapp")


def test_delegation_notifies_the_new_assignee(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    item = driver.item(hid, "rectify")
    zhang = driver.actor("zhang_rectifier")
    liu_id = driver.world.users["liu_rectifier"].id
    driver.step(
        lambda s: runtime.delegate(s, driver.ctx, work_item_id=item.id, actor=zhang, to_user_id=liu_id)
    )
    assert recipients(driver, hid, "delegated") == ["liu_rectifier"]


def test_escalation_notifies_the_principal_and_the_lead_reviewers(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    for round_no in range(3):
        photo = driver.upload(hid, f"after-{round_no}".encode())
        form = {"summary": "已整改", "after_photos": [photo], "completed_on": "2026-11-24"}
        driver.complete(hid, "rectify", "zhang_rectifier", form)
        driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    # the reject cap summons the principal (约谈, L3): the escalation is announced once, by its
    # notice, to the enterprise's side (principal included) and the lead department's reviewers
    assert driver.hazard(hid).escalation_level == 3
    assert recipients(driver, hid, "escalated") == []
    notified = ["chen_safety", "liu_rectifier", "wang_principal", "wu_reviewer", "zhang_rectifier"]
    assert recipients(driver, hid, "notice_issued") == notified
    row = next(
        r
        for r in rows(driver.sessions, hid, kind="notice_issued")
        if r.recipient_user_id == driver.world.users["wang_principal"].id
    )
    assert row.payload["kind"] == "interview" and row.payload["escalation_level"] == 3
    assert "约谈" in row.payload["notice_title"] and row.payload["notice_number"]
    # a fourth round at the cap is superseded: nobody is notified again
    photo = driver.upload(hid, b"after-3")
    form = {"summary": "已整改", "after_photos": [photo], "completed_on": "2026-11-24"}
    driver.complete(hid, "rectify", "zhang_rectifier", form)
    driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    assert recipients(driver, hid, "notice_issued") == notified
    assert recipients(driver, hid, "escalated") == []


def test_closure_notifies_safety_officers_and_principals(driver):
    hid = driver.register(handling_type="immediate")
    photo = driver.upload(hid, b"fixed")
    driver.complete(
        hid, "fix_on_spot", "zhang_rectifier", {"description": "现场已整改", "after_photos": [photo]}
    )
    driver.complete(
        hid, "verify", "chen_safety", {"decision": "pass", "opinion": "好", "verifier_signature": "陈"}
    )
    driver.complete(
        hid,
        "closure_review",
        "wu_reviewer",
        {"decision": "pass", "opinion": "同意", "reviewer_signature": "吴"},
    )
    assert recipients(driver, hid, "closed") == ["chen_safety", "wang_principal"]


def test_one_row_per_recipient_and_channel_with_a_deterministic_key(driver, settings):
    users = driver.world.users
    driver.ctx = EngineContext(
        settings=replace(settings, notify_channels=("inapp", "email", "sms", "console"))
    )

    def contacts(session):
        # chen: every channel, but no mobile; zhang: only SMS; liu: no contact row at all
        session.add(UserContact(user_id=users["chen_safety"].id, email="chen@chem.test"))
        session.add(UserContact(user_id=users["zhang_rectifier"].id, mobile="13800000002", channels=["sms"]))

    driver.step(contacts)
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    with driver.sessions() as session:
        instance_id, seq = session.execute(
            select(Event.instance_id, Event.seq).where(
                Event.hazard_id == hid, Event.action == "task_created", Event.task_key == "rectify"
            )
        ).one()
    got = {
        (r.recipient_user_id, r.channel): (r.recipient_address, r.idempotency_key)
        for r in rows(driver.sessions, hid, kind="task_created")
        if r.payload["task_key"] == "rectify"
    }
    zhang, liu = users["zhang_rectifier"].id, users["liu_rectifier"].id
    assert got == {
        (zhang, "sms"): ("13800000002", f"{instance_id}:{seq}:{zhang}:sms"),
        (liu, "inapp"): (str(liu), f"{instance_id}:{seq}:{liu}:inapp"),
        (liu, "console"): ("liu_rectifier", f"{instance_id}:{seq}:{liu}:console"),
    }
    chen_rows = {
        r.channel: r.recipient_address
        for r in rows(driver.sessions, hid, recipient_user_id=users["chen_safety"].id)
    }
    assert chen_rows == {
        "inapp": str(users["chen_safety"].id),
        "email": "chen@chem.test",
        "console": "chen_safety",
    }


def test_the_outbox_is_written_in_the_transaction_of_the_change(driver):
    class Abort(Exception):
        """Fails the step after its outbox rows were written."""

    actor = driver.actor("chen_safety")
    from tests.factories import make_hazard

    with pytest.raises(Abort), driver.sessions.begin() as session:
        hazard = make_hazard(session, driver.ctx, driver.world, actor)
        session.flush()
        hid = hazard.id
        assert rows_in(session, hid)  # written with the change …
        raise Abort
    assert rows(driver.sessions, hid) == []  # … and gone with it


def rows_in(session, hazard_id):
    session.flush()
    return session.scalars(select(OutboxMessage).where(OutboxMessage.hazard_id == hazard_id)).all()


def test_no_channels_no_rows_and_inactive_users_are_left_out(driver, settings):
    with driver.sessions.begin() as session:
        session.get(User, driver.world.users["liu_rectifier"].id).active = False
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    assert recipients(driver, hid, "task_created") == ["chen_safety", "zhang_rectifier"]
    driver.ctx = EngineContext(settings=replace(settings, notify_channels=()))
    hid2 = driver.register()
    assert rows(driver.sessions, hid2) == []


def test_whoever_did_the_work_is_not_asked_to_verify_it(driver):
    """li_mall holds every enterprise role at the mall: after rectifying, the 验收 is not theirs."""
    hid = driver.register("li_mall", enterprise_id=driver.world.enterprises["mall"].id)
    driver.complete(hid, "assign_plan", "li_mall", plan_form(dt.date(2026, 12, 10)))
    assert recipients(driver, hid, "task_created") == ["li_mall", "li_mall"]  # plan, rectify
    photo = driver.upload(hid, b"mall-after", username="li_mall")
    form = {"summary": "已整改", "after_photos": [photo], "completed_on": "2026-11-24"}
    driver.complete(hid, "rectify", "li_mall", form)
    assert driver.open_keys(hid) == ["verify"]
    assert recipients(driver, hid, "task_created") == ["li_mall", "li_mall"]  # no verify notice
