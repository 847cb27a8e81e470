"""Side actions of the 一般 loop: review rejects, void, reopen, extensions, progress, violations, timers."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine
from sqlalchemy import func
from sqlalchemy import select

from engine import bpmn
from engine import db as dbmod
from engine import definitions
from engine import runtime
from engine import timers
from engine.errors import Conflict
from engine.errors import InvalidInput
from engine.events import verify_chain
from engine.models import Event
from engine.models import ExtensionRequest
from engine.models import Hazard
from engine.models import Notice
from engine.models import ProcessInstance
from engine.models import TaskSubmission
from engine.models import TimerJob
from engine.models import WorkItem
from engine.runtime import EngineContext
from tests.driver import Driver
from tests.factories import plan_form
from tests.processes.test_hazard_general import REVIEW_PASS
from tests.processes.test_hazard_general import REVIEW_REJECT
from tests.processes.test_hazard_general import VERIFY_PASS
from tests.processes.test_hazard_general import VERIFY_REJECT
from tests.processes.test_hazard_general import ladder_due
from tests.processes.test_hazard_general import ladder_keys

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
DUE = dt.date(2026, 12, 10)
DEADLINE = dt.datetime(2026, 12, 10, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai
NEW_DUE = dt.date(2026, 12, 20)
NEW_DEADLINE = dt.datetime(2026, 12, 20, 15, 59, 59, tzinfo=dt.UTC)


class ActionsDriver(Driver):
    """The general-loop driver plus the side actions and what they project."""

    def planned(self, due=DUE, **overrides):
        """A registered hazard whose plan is assigned: ``rectify`` is open."""
        hid = self.register(**overrides)
        self.complete(hid, "assign_plan", "chen_safety", plan_form(due))
        return hid

    def rectify(self, hazard_id, content=b"after-photo"):
        photo = self.upload(hazard_id, content)
        form = {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-11-25"}
        return self.complete(hazard_id, "rectify", "zhang_rectifier", form)

    def close(self, hazard_id):
        self.rectify(hazard_id)
        self.complete(hazard_id, "verify", "chen_safety", VERIFY_PASS)
        self.complete(hazard_id, "closure_review", "wu_reviewer", REVIEW_PASS)

    def call(self, fn, username, **kwargs):
        actor = self.actor(username)
        return self.step(lambda s: fn(s, self.ctx, actor=actor, **kwargs))

    def items(self, hazard_id):
        with self.sessions() as session:
            return [
                (w.task_key, w.state)
                for w in session.scalars(
                    select(WorkItem).where(WorkItem.hazard_id == hazard_id).order_by(WorkItem.id)
                )
            ]

    def jobs(self, hazard_id, state=None):
        with self.sessions() as session:
            query = select(TimerJob).where(TimerJob.hazard_id == hazard_id)
            if state is not None:
                query = query.where(TimerJob.state == state)
            return {j.timer_key: (j.state, j.due_at) for j in session.scalars(query.order_by(TimerJob.id))}

    def instances(self, hazard_id):
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(ProcessInstance)
                    .where(ProcessInstance.hazard_id == hazard_id)
                    .order_by(ProcessInstance.id)
                )
            )

    def workflow(self, hazard_id):
        """The stored workflow, freshly deserialized (as a restarted process would see it)."""
        definitions._spec_cache.clear()
        with self.sessions() as session:
            instance = session.scalars(
                select(ProcessInstance)
                .where(ProcessInstance.hazard_id == hazard_id)
                .order_by(ProcessInstance.id.desc())
                .limit(1)
            ).one()
            spec, subs = definitions.spec_for(instance.definition_version)
            return bpmn.load_state(instance.state, instance.serializer_version, spec, subs)

    def count(self, hazard_id, action):
        return self.actions(hazard_id).count(action)

    def escalated_rungs(self, hazard_id):
        """The rungs that fired (``escalated`` events), in order."""
        with self.sessions() as session:
            return [
                p["rung"]
                for p in session.scalars(
                    select(Event.payload)
                    .where(Event.hazard_id == hazard_id, Event.action == "escalated")
                    .order_by(Event.id)
                )
            ]


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield ActionsDriver(sessions, ctx, world, request.param)


EXTENSION = {"requested_due_date": NEW_DUE.isoformat(), "reason": "探头供货延迟，厂家书面说明附后"}
APPROVE = {"decision": "approve", "opinion": "同意延期至12月20日"}
DENY = {"decision": "deny", "opinion": "理由不充分"}


def request_extension(driver, hid, form=EXTENSION, username="chen_safety"):
    return driver.call(runtime.request_extension, username, hazard_id=hid, form=form).id


def decide_extension(driver, request_id, form, username="wu_reviewer"):
    return driver.call(runtime.decide_extension, username, request_id=request_id, form=form)


# --- review rejects -----------------------------------------------------------------------------------


def test_failed_closure_review_goes_back_to_rectify(driver):
    hid = driver.planned()
    driver.rectify(hid, b"after-1")
    driver.complete(hid, "verify", "chen_safety", VERIFY_PASS)
    assert driver.open_keys(hid) == ["closure_review"]
    driver.complete(hid, "closure_review", "wu_reviewer", REVIEW_REJECT)
    assert driver.open_keys(hid) == ["rectify"]
    hazard = driver.hazard(hid)
    assert hazard.status == "rectifying" and hazard.failed_verifications == 1
    assert driver.item(hid, "rectify").due_at == DEADLINE
    assert set(driver.jobs(hid, "waiting")) == ladder_keys()
    assert {key: due for key, (_, due) in driver.jobs(hid, "waiting").items()} == ladder_due(DEADLINE, START)
    assert driver.jobs(hid)["review_overdue"][0] == "cancelled"
    driver.close(hid)
    assert driver.hazard(hid).status == "closed"


# --- void ------------------------------------------------------------------------------------------------


def test_void_cancels_work_items_and_timer_jobs(driver):
    hid = driver.planned()
    assert set(driver.jobs(hid, "waiting")) == ladder_keys()
    for reason in ("", "   "):
        with pytest.raises(InvalidInput) as err:
            driver.call(runtime.void, "wu_reviewer", hazard_id=hid, reason=reason)
        assert list(err.value.messages) == ["reason"]
    assert driver.open_keys(hid) == ["rectify"]

    driver.call(runtime.void, "wu_reviewer", hazard_id=hid, reason=" 重复登记，与 YH-0001 为同一隐患 ")
    hazard = driver.hazard(hid)
    assert hazard.status == "voided" and hazard.voided_at == START
    assert hazard.void_reason == "重复登记，与 YH-0001 为同一隐患"
    assert driver.open_keys(hid) == []
    assert driver.items(hid) == [("assign_plan", "completed"), ("rectify", "cancelled")]
    assert {key: state for key, (state, _) in driver.jobs(hid).items()} == {
        key: "cancelled" for key in ladder_keys()
    }
    assert [i.status for i in driver.instances(hid)] == ["cancelled"]
    actions = driver.actions(hid)
    assert actions[-2:] == ["task_cancelled", "voided"]
    # a voided hazard takes no more actions, and its timers never fire
    with pytest.raises(Conflict):
        driver.call(runtime.void, "wu_reviewer", hazard_id=hid, reason="again")
    with time_machine.travel(DEADLINE + dt.timedelta(days=1), tick=False):
        assert timers.run_due(driver.sessions, driver.ctx).due == 0


# --- reopen ----------------------------------------------------------------------------------------------


def test_reopen_closed_and_voided_hazards_starts_a_new_instance(driver):
    closed = driver.planned()
    driver.close(closed)
    voided = driver.planned()
    driver.call(runtime.void, "wu_reviewer", hazard_id=voided, reason="误报")
    open_one = driver.planned()
    with pytest.raises(Conflict):
        driver.call(runtime.reopen, "wu_reviewer", hazard_id=open_one, reason="复查")
    with pytest.raises(InvalidInput):
        driver.call(runtime.reopen, "wu_reviewer", hazard_id=closed, reason=" ")

    for hid, before in ((closed, "completed"), (voided, "cancelled")):
        old = driver.instances(hid)[0]
        driver.call(runtime.reopen, "wu_reviewer", hazard_id=hid, reason="回头看发现问题反弹")
        instances = driver.instances(hid)
        assert [i.status for i in instances] == [before, "running"]
        assert instances[1].id != old.id
        hazard = driver.hazard(hid)
        assert hazard.status == "planning"
        assert hazard.closed_at is None and hazard.voided_at is None and hazard.void_reason is None
        assert hazard.deadline is None and hazard.failed_verifications == 0
        assert driver.open_keys(hid) == ["assign_plan"]
        assert driver.jobs(hid, "waiting") == {}
        with driver.sessions() as s:
            new_events = list(
                s.scalars(
                    select(Event.action).where(Event.instance_id == instances[1].id).order_by(Event.seq)
                )
            )
            assert new_events[0] == "reopened" and new_events[-1] == "reopen_reason"
            assert verify_chain(s, key=driver.ctx.audit_key, instance_id=instances[1].id) == []
        # the new loop runs to the end again
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
        driver.close(hid)
        assert driver.hazard(hid).status == "closed"


# --- extensions ------------------------------------------------------------------------------------------


def test_approved_extension_moves_the_real_timer(driver):
    hid = driver.planned()
    old = {t.key: t.due_at for t in bpmn.waiting_timers(driver.workflow(hid))}
    assert old == ladder_due(DEADLINE, START)

    request_id = request_extension(driver, hid)
    decided = decide_extension(driver, request_id, APPROVE)
    assert decided.state == "approved"

    # the SpiffWorkflow timers of the reloaded workflow ...
    # (every rung counted from the deadline moves; 15 days without progress does not depend on it)
    moved = {t.key: t.due_at for t in bpmn.waiting_timers(driver.workflow(hid))}
    assert moved == ladder_due(NEW_DEADLINE, START)
    assert moved["rectify_no_progress"] == old["rectify_no_progress"]
    # ... the timer_job rows, the work item and the hazard all carry the new deadline
    assert driver.jobs(hid, "waiting") == {
        key: ("waiting", due) for key, due in ladder_due(NEW_DEADLINE, START).items()
    }
    assert driver.item(hid, "rectify").due_at == NEW_DEADLINE
    assert driver.hazard(hid).deadline == NEW_DEADLINE
    with driver.sessions() as s:
        event = s.scalars(
            select(Event).where(Event.hazard_id == hid, Event.action == "extension_approved")
        ).one()
        assert event.payload["timers_moved"] == len(ladder_keys()) - 1  # all but rectify_no_progress

    # past the OLD deadline nothing bound to the deadline fires (only 15 days without progress)
    with time_machine.travel(DEADLINE + dt.timedelta(days=1), tick=False):
        result = timers.run_due(driver.sessions, driver.ctx)
        assert (result.due, result.fired) == (1, 1)
        driver.call(runtime.update_progress, "zhang_rectifier", hazard_id=hid, form=PROGRESS)
    assert set(driver.jobs(hid, "fired")) == {"rectify_no_progress"}
    assert driver.escalated_rungs(hid) == ["urge_no_progress"]
    assert driver.count(hid, "overdue") == 0 and driver.count(hid, "reminder") == 1
    assert driver.hazard(hid).overdue is False

    # past the NEW deadline the overdue timer fires, once (with one 提醒敦促: the two due together
    # catch up to the one at the deadline)
    with time_machine.travel(NEW_DEADLINE + dt.timedelta(hours=1), tick=False):
        result = timers.run_due(driver.sessions, driver.ctx)
        assert result.fired == 3 and result.failed == 0
        assert timers.run_due(driver.sessions, driver.ctx).due == 0
    assert driver.count(hid, "overdue") == 1 and driver.count(hid, "reminder") == 2
    assert driver.escalated_rungs(hid) == ["urge_no_progress", "urge_due"]
    assert driver.hazard(hid).overdue is True
    assert {key: state for key, (state, _) in driver.jobs(hid).items()} == {
        key: "waiting" for key in ladder_keys()
    } | {
        "rectify_remind": "fired",
        "rectify_urge_due": "fired",
        "rectify_overdue": "fired",
        "rectify_no_progress": "fired",
    }
    assert driver.open_keys(hid) == ["rectify"]  # non-interrupting: the task stays open


def test_approved_extension_survives_a_rework_round(driver):
    # the new deadline must also flow on in task data, or the next rectify round re-arms the old one
    hid = driver.planned()
    decide_extension(driver, request_extension(driver, hid), APPROVE)
    driver.rectify(hid)
    driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    assert driver.open_keys(hid) == ["rectify"]
    assert driver.item(hid, "rectify").due_at == NEW_DEADLINE
    assert driver.jobs(hid, "waiting") == {
        key: ("waiting", due) for key, due in ladder_due(NEW_DEADLINE, START).items()
    }
    # past the OLD deadline only the rung counted from the last progress (not the deadline) fires
    with time_machine.travel(DEADLINE + dt.timedelta(days=1), tick=False):
        assert timers.run_due(driver.sessions, driver.ctx).due == 1
    assert set(driver.jobs(hid, "fired")) == {"rectify_no_progress"}
    assert driver.count(hid, "overdue") == 0


def test_denied_extension_changes_nothing(driver):
    hid = driver.planned()
    jobs_before = driver.jobs(hid)
    request_id = request_extension(driver, hid)
    decided = decide_extension(driver, request_id, DENY)
    assert decided.state == "denied" and decided.decision_note == "理由不充分"
    assert driver.jobs(hid) == jobs_before
    assert driver.item(hid, "rectify").due_at == DEADLINE
    assert driver.hazard(hid).deadline == DEADLINE
    assert {t.key: t.due_at for t in bpmn.waiting_timers(driver.workflow(hid))}["rectify_overdue"] == DEADLINE
    with pytest.raises(Conflict):  # decided once
        decide_extension(driver, request_id, APPROVE)
    with time_machine.travel(DEADLINE + dt.timedelta(minutes=1), tick=False):
        assert timers.run_due(driver.sessions, driver.ctx).fired == 4
    assert set(driver.jobs(hid, "fired")) == {
        "rectify_remind",
        "rectify_no_progress",
        "rectify_urge_due",
        "rectify_overdue",
    }
    assert driver.count(hid, "overdue") == 1


def test_second_pending_extension_request_conflicts(driver):
    hid = driver.planned()
    first = request_extension(driver, hid)
    with pytest.raises(Conflict, match="待审批"):
        request_extension(driver, hid, {**EXTENSION, "requested_due_date": "2026-12-25"})
    decide_extension(driver, first, DENY)
    with pytest.raises(InvalidInput) as err:  # must be later than the current deadline
        request_extension(driver, hid, {**EXTENSION, "requested_due_date": "2026-12-01"})
    assert "requested_due_date" in err.value.messages
    # once the first is decided, a new request is accepted
    second = request_extension(driver, hid, {**EXTENSION, "requested_due_date": "2026-12-25"})
    with driver.sessions() as s:
        states = dict(s.execute(select(ExtensionRequest.id, ExtensionRequest.state)).all())
    assert states[first] == "denied" and states[second] == "pending"


# --- progress and violations ---------------------------------------------------------------------------

PROGRESS = {"progress_percent": 40, "note": "探头已到货，正在安装"}


def test_progress_updates_are_recorded(driver):
    hid = driver.planned()
    photo = driver.upload(hid, b"progress-photo")
    driver.call(runtime.update_progress, "zhang_rectifier", hazard_id=hid, form=PROGRESS)
    later = START + dt.timedelta(days=2)
    with time_machine.travel(later, tick=False):
        driver.call(
            runtime.update_progress,
            "chen_safety",
            hazard_id=hid,
            form={"progress_percent": 80, "note": "已安装，待联调", "photos": [photo]},
        )
    with pytest.raises(InvalidInput) as err:
        driver.call(runtime.update_progress, "zhang_rectifier", hazard_id=hid, form={"progress_percent": 120})
    assert {"progress_percent", "note"} <= set(err.value.messages)
    hazard = driver.hazard(hid)
    assert hazard.progress_percent == 80 and hazard.last_progress_at == later
    with driver.sessions() as s:
        rows = s.scalars(
            select(TaskSubmission)
            .where(TaskSubmission.hazard_id == hid, TaskSubmission.form_key == "progress_update")
            .order_by(TaskSubmission.id)
        ).all()
        assert [(r.data["progress_percent"], r.work_item_id) for r in rows] == [(40, None), (80, None)]
        assert rows[1].data["photos"] == [photo]
        payloads = s.scalars(
            select(Event.payload)
            .where(Event.hazard_id == hid, Event.action == "progress_updated")
            .order_by(Event.id)
        ).all()
        assert [p["percent"] for p in payloads] == [40, 80]
    assert driver.open_keys(hid) == ["rectify"]


def test_record_violation_escalates_to_level_six(driver):
    hid = driver.planned()
    with pytest.raises(InvalidInput):
        driver.call(runtime.record_violation, "wu_reviewer", hazard_id=hid, kind="laziness", note="x")
    with pytest.raises(InvalidInput):
        driver.call(runtime.record_violation, "wu_reviewer", hazard_id=hid, kind="refusal", note=" ")
    driver.call(
        runtime.record_violation,
        "zhou_inspector",
        hazard_id=hid,
        kind="fake_rectification",
        note="整改照片为网络图片",
    )
    assert driver.hazard(hid).escalation_level == 6
    with driver.sessions() as s:
        event = s.scalars(
            select(Event).where(Event.hazard_id == hid, Event.action == "violation_recorded")
        ).one()
        assert event.payload == {
            "kind": "fake_rectification",
            "label": "虚假整改",
            "note": "整改照片为网络图片",
        }
        assert event.actor_id == driver.world.users["zhou_inspector"].id
    assert driver.open_keys(hid) == ["rectify"]  # the loop itself goes on


# --- long reject loops ---------------------------------------------------------------------------------


def test_fifty_consecutive_rejects_still_work(driver):
    hid = driver.planned()
    started = time.perf_counter()
    for round_no in range(1, 51):
        driver.rectify(hid, f"after-{round_no}".encode())
        driver.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"50 reject rounds took {elapsed:.1f}s"
    hazard = driver.hazard(hid)
    assert hazard.failed_verifications == 50
    # rounds 3..50 reached the reject cap (max_rejects=3): round 3 summoned the principal (约谈, L3),
    # once per loop; rounds 4..50 add nothing (that rung was issued already, so not even a skip record)
    assert driver.escalated_rungs(hid) == ["interview"]
    assert hazard.escalation_level == 3
    with driver.sessions() as s:
        notices = s.scalars(select(Notice).where(Notice.hazard_id == hid)).all()
        assert [(n.rung, n.trigger) for n in notices] == [("interview", "failed_verifications")]
        skipped = s.scalars(
            select(Event.payload).where(Event.hazard_id == hid, Event.action == "escalation_skipped")
        ).all()
        assert skipped == []
    # the state still loads (and stays small) and the loop still runs
    stored = driver.instances(hid)[0].state
    assert len(stored) < 256 * 1024, f"stored state is {len(stored)} bytes"
    workflow = driver.workflow(hid)
    assert [t.key for t in bpmn.ready_user_tasks(workflow)] == ["rectify"]
    assert driver.open_keys(hid) == ["rectify"]
    driver.close(hid)
    assert driver.hazard(hid).status == "closed"
    with driver.sessions() as s:
        instance = driver.instances(hid)[0]
        assert verify_chain(s, key=driver.ctx.audit_key, instance_id=instance.id) == []
        assert (
            s.scalar(select(func.count(TaskSubmission.id)).where(TaskSubmission.hazard_id == hid))
            == 1 + 2 * 50 + 3
        )


# --- timers run-due ------------------------------------------------------------------------------------


def test_run_due_fires_a_due_reminder_exactly_once(driver):
    hid = driver.planned()
    remind_at = ladder_due(DEADLINE, START)["rectify_remind"]  # 09:00, three days before the deadline
    with time_machine.travel(remind_at + dt.timedelta(minutes=5), tick=False):
        results = [timers.run_due(driver.sessions, driver.ctx) for _ in range(3)]
    assert [(r.due, r.fired, r.failed) for r in results] == [(1, 1, 0), (0, 0, 0), (0, 0, 0)]
    assert driver.count(hid, "reminder") == 1 and driver.count(hid, "overdue") == 0
    jobs = driver.jobs(hid)
    assert jobs["rectify_remind"][0] == "fired" and jobs["rectify_overdue"][0] == "waiting"
    with driver.sessions() as s:
        fired = s.scalars(select(Event).where(Event.hazard_id == hid, Event.action == "timer_fired")).one()
        assert fired.task_key == "rectify_remind"


# --- restart -----------------------------------------------------------------------------------------------


def test_a_restarted_process_continues_where_it_stopped(committed, ctx, world, settings):
    """Needs committed data: a brand-new engine (as after a restart) must see what was written."""
    with time_machine.travel(START, tick=False):
        before = ActionsDriver(committed, ctx, world, round_trip=False)
        hid = before.planned()
        before.rectify(hid, b"before-restart")
        assert before.open_keys(hid) == ["verify"]

        # "restart": no cached specs, a new engine, new connections, a new engine context
        definitions._spec_cache.clear()
        engine = dbmod.make_engine(settings.database_url)
        try:
            after = ActionsDriver(
                dbmod.make_sessionmaker(engine), EngineContext(settings=settings), world, False
            )
            assert after.hazard(hid).status == "verifying"
            after.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
            assert after.open_keys(hid) == ["rectify"]
            remind_at = ladder_due(DEADLINE, START)["rectify_remind"]
            with time_machine.travel(remind_at + dt.timedelta(hours=1), tick=False):
                assert timers.run_due(after.sessions, after.ctx).fired == 1  # the reminder
            after.close(hid)
            hazard = after.hazard(hid)
            assert hazard.status == "closed" and hazard.failed_verifications == 1
            assert after.count(hid, "reminder") == 1
            with after.sessions() as s:
                assert verify_chain(s, key=after.ctx.audit_key) == []
                assert s.get(Hazard, hid).closed_at == START
        finally:
            engine.dispose()
