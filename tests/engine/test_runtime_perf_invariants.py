"""Invariants the persisted path's speed relies on (bench/engine_loop.py, bench/scheduler.py): one
compare-and-set per step, one INSERT for a step's events, a workflow cache that can never hand out a
stale object, and a timer firing (with its escalation notice) in a bounded number of statements
that takes the notice's 文号 last."""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select

from engine import bpmn
from engine import events
from engine import policy
from engine import runtime
from engine.definitions import spec_for
from engine.errors import InvalidInput
from engine.models import Event
from engine.models import Notice
from engine.models import NumberSequence
from engine.models import OutboxMessage
from engine.models import PolicyProfile
from engine.models import ProcessInstance
from engine.models import TimerJob
from engine.notices import NoticeTemplateError
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
DEADLINE = dt.datetime(2026, 11, 30, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai on the due day
REMINDERS_DUE = DEADLINE - dt.timedelta(days=3) + dt.timedelta(minutes=5)  # rectify_remind, not overdue
VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}


@pytest.fixture
def driver(sessions, ctx, world) -> Iterator[Driver]:
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, round_trip=False)


@pytest.fixture
def statements(engine) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()

    def count(conn, cursor, statement, params, context, executemany):
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE"):
            counts[f"{words[0]} {words[2] if words[0] == 'INSERT' else words[1]}"] += 1

    event.listen(engine, "before_cursor_execute", count)
    yield counts
    event.remove(engine, "before_cursor_execute", count)


def _version(driver: Driver, hazard_id: int) -> int:
    with driver.sessions() as session:
        return session.scalar(select(ProcessInstance.version).where(ProcessInstance.hazard_id == hazard_id))


def _rectify_form(driver: Driver, hazard_id: int) -> dict:
    photo = driver.upload(hazard_id, b"after-photo", username="zhang_rectifier", phase="after")
    return {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-11-25"}


def test_each_completed_step_bumps_the_version_once_with_one_update(driver, statements):
    hid = driver.register()
    steps = [
        ("assign_plan", "chen_safety", lambda: plan_form(dt.date(2026, 12, 10))),
        ("rectify", "zhang_rectifier", lambda: _rectify_form(driver, hid)),
        ("verify", "chen_safety", lambda: VERIFY_PASS),
        ("closure_review", "wu_reviewer", lambda: REVIEW_PASS),
    ]
    for key, username, form in steps:
        data = form()
        before = _version(driver, hid)
        statements.clear()
        driver.complete(hid, key, username, data)
        assert _version(driver, hid) == before + 1, key
        assert statements["UPDATE process_instance"] == 1, (key, statements)
        # every event of the step (task_completed, task_created, timer_fired, closed …) in one INSERT
        assert statements["INSERT event"] == 1, (key, statements)
        # and every notification they cause (the new task's candidates …) in at most one more
        assert statements["INSERT outbox_message"] <= 1, (key, statements)
    assert driver.hazard(hid).status == "closed"
    with driver.sessions() as session:
        seqs = session.scalars(select(Event.seq).where(Event.hazard_id == hid).order_by(Event.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_failed_step_leaves_no_pending_events_or_cached_workflow(driver, monkeypatch):
    hid = driver.register()
    loads = []
    real_load = bpmn.load_state
    monkeypatch.setattr(bpmn, "load_state", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with pytest.raises(InvalidInput):
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10), measures=""))
    assert loads == []  # the committed registration's workflow came from the cache …
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    assert loads == [1]  # … and, taken by the failed step, was not put back: deserialized again
    assert driver.open_keys(hid) == ["rectify"]
    actions = driver.actions(hid)
    assert actions.count("task_completed") == 1
    with driver.sessions() as session:
        seqs = session.scalars(select(Event.seq).where(Event.hazard_id == hid).order_by(Event.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_cached_workflow_is_the_stored_state(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    with driver.sessions() as session:
        instance = session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hid)).one()
        spec, subs = spec_for(instance.definition_version)
        cached = runtime._WORKFLOWS.take(instance.id, runtime._cache_key(instance, spec), instance.state)
        assert cached is not None
        fresh = bpmn.load_state(instance.state, instance.serializer_version, spec, subs)
        assert bpmn.dump_state(cached) == instance.state == bpmn.dump_state(fresh)
        # taken means gone: a second taker (another thread) deserializes its own copy
        assert (
            runtime._WORKFLOWS.take(instance.id, runtime._cache_key(instance, spec), instance.state) is None
        )


def test_a_stale_cache_entry_is_a_miss():
    cache = runtime._WorkflowCache(size=2)
    wf = object()
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (3, 1, "hl-1", 7), b"other state") is None  # same version, other bytes
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (4, 1, "hl-1", 7), b"state") is None  # another writer bumped the version
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (3, 1, "hl-1", 8), b"state") is None  # another spec object
    cache.put_all({n: ((1,), b"s", wf) for n in range(1, 5)})
    assert cache.take(1, (1,), b"s") is None and cache.take(4, (1,), b"s") is wf  # bounded (LRU)


# --- firing a due timer (bench/scheduler.py) -----------------------------------------------------------


@pytest.fixture
def executed(engine) -> Iterator[list[str]]:
    """Every statement sent to the database, in order."""
    sent: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def _planned(driver: Driver) -> tuple[int, int, int]:
    """A hazard at 限期整改, deadline DEADLINE: (hazard, instance, its rectify_remind job)."""
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DEADLINE.date()))
    with driver.sessions() as session:
        job = session.scalars(
            select(TimerJob).where(TimerJob.hazard_id == hid, TimerJob.timer_key == "rectify_remind")
        ).one()
        return hid, job.instance_id, job.id


def _fire(driver: Driver, ids: tuple[int, int, int], ctx=None) -> str:
    hid, instance_id, job_id = ids
    with time_machine.travel(REMINDERS_DUE, tick=False), driver.sessions.begin() as session:
        return runtime.fire_timer(
            session, ctx or driver.ctx, timer_job_id=job_id, hazard_id=hid, instance_id=instance_id
        )


def _kind(statement: str) -> str:
    words = statement.split()
    if words[0] == "INSERT":
        return f"INSERT {words[2]}"
    if words[0] in ("UPDATE", "DELETE"):
        return f"{words[0]} {words[1]}"
    return words[0]


def test_firing_a_reminder_with_its_notice_takes_a_bounded_number_of_statements(driver, executed):
    """The scheduler's path (bench/scheduler.py): the timer fires, the 提醒敦促函 is issued, notified
    and numbered, the step is written with one compare-and-set — in 13 statements. The 文号 is
    taken after every read, when the step is written (its row lock is shared by every notice of the
    issuer), and no savepoint is needed."""
    first, second = _planned(driver), _planned(driver)
    assert _fire(driver, first) == "fired"  # may create the issuer's number_sequence row
    version = _version(driver, second[0])
    executed.clear()
    assert _fire(driver, second) == "fired"
    # the test's session is itself a savepoint of the test's transaction: leave out its own two
    sent = [s for s in executed if not s.startswith(("SAVEPOINT sa_savepoint", "RELEASE SAVEPOINT"))]
    assert len(executed) - len(sent) == 2, executed
    kinds = Counter(_kind(s) for s in sent)
    writes = {k: n for k, n in kinds.items() if k != "SELECT"}
    assert writes == {
        "UPDATE number_sequence": 1,
        "INSERT notice": 1,
        "INSERT event": 1,  # escalated, notice_issued, reminder, timer_fired: one INSERT
        "INSERT outbox_message": 1,  # the notice's and the reminder's messages: one INSERT
        "UPDATE timer_job": 1,
        "UPDATE hazard": 1,
        "UPDATE process_instance": 1,
    }, sent
    # lock + hazard, work items, timer jobs, issued notices, regions/enterprise/department,
    # recipients (once for the notice and the reminder); the pinned policy came from the cache
    assert kinds["SELECT"] <= 6, sent
    number = next(i for i, s in enumerate(sent) if s.startswith("UPDATE number_sequence"))
    assert all(not s.startswith("SELECT") for s in sent[number:]), sent
    assert _version(driver, second[0]) == version + 1
    with driver.sessions() as session:
        hid, instance_id, _job = second
        assert events.verify_chain(session, key=driver.ctx.audit_key, instance_id=instance_id) == []
        actions = session.scalars(
            select(Event.action).where(Event.instance_id == instance_id).order_by(Event.seq)
        ).all()
        assert actions[-4:] == ["escalated", "notice_issued", "reminder", "timer_fired"]
        notice = session.scalars(select(Notice).where(Notice.hazard_id == hid)).one()
        escalated, issued = (
            session.scalars(
                select(Event).where(Event.instance_id == instance_id, Event.action == action)
            ).one()
            for action in ("escalated", "notice_issued")
        )
        assert escalated.payload["notice_id"] == issued.payload["notice_id"] == notice.id
        assert escalated.payload["number"] == issued.payload["number"] == notice.document_number
        assert (
            issued.payload["title"] == notice.title
            and notice.facts["document_number"] == notice.document_number
        )
        messages = session.scalars(
            select(OutboxMessage).where(OutboxMessage.hazard_id == hid, OutboxMessage.kind == "notice_issued")
        ).all()
        assert messages and {(m.payload["notice_id"], m.payload["notice_number"]) for m in messages} == {
            (notice.id, notice.document_number)
        }
        scope = f"notice:{notice.issuer_key}:{notice.kind}"
        sequence = session.scalar(select(NumberSequence.value).where(NumberSequence.scope == scope))
        first_notice = session.scalars(select(Notice).where(Notice.hazard_id == first[0])).one()
        assert notice.sequence == sequence == first_notice.sequence + 1  # the next number, no gap


def test_a_notice_template_failing_when_the_step_is_written_leaves_nothing_behind(
    driver, ctx, tmp_path: Path
):
    """The 文号 is taken when the step is written; a template that fails then rolls the whole step
    back (the timer stays due) and uses up no number."""
    shutil.copytree(Path(ctx.settings.processes_dir) / "notices", tmp_path / "notices")
    (tmp_path / "notices" / "urge_letter.html.j2").write_text("{{ no_such_fact }}", encoding="utf-8")
    broken = runtime.EngineContext(
        settings=replace(ctx.settings, processes_dir=tmp_path), forms=ctx.forms, _audit_key=ctx.audit_key
    )
    ids = _planned(driver)
    _fire(driver, _planned(driver))  # an issued notice: its number_sequence row exists

    def counts() -> tuple[int, int, int, int]:
        with driver.sessions() as session:
            return (
                session.scalar(select(func.sum(NumberSequence.value))) or 0,
                session.scalar(select(func.count(Notice.id))) or 0,
                session.scalar(select(func.count(Event.id)).where(Event.hazard_id == ids[0])) or 0,
                _version(driver, ids[0]),
            )

    before = counts()
    with pytest.raises(NoticeTemplateError, match="urge_letter"):
        _fire(driver, ids, broken)
    assert counts() == before
    with driver.sessions() as session:
        assert session.get_one(TimerJob, ids[2]).state == "waiting"
    assert _fire(driver, ids) == "fired"
    after = counts()
    assert (after[0], after[1]) == (before[0] + 1, before[1] + 1)


def test_a_pinned_policy_version_is_read_once_and_forgotten_when_a_profile_is_written(
    sessions, engine, executed
):
    with sessions.begin() as session:
        national = policy.get_profile(session, "national")
        data = {"policy_profile_id": national.id}

    def reads() -> int:
        return sum(1 for s in executed if "FROM policy_profile" in s)

    policy.clear_pinned_cache()
    with sessions.begin() as session:
        assert policy.pinned_policy(session, data).id == national.id
    executed.clear()
    with sessions.begin() as session:
        pinned = policy.pinned_policy(session, data)
        # merged into this session without a query, as the stored version
        assert isinstance(pinned, PolicyProfile) and pinned in session and pinned.content == national.content
        assert policy.ladder_of(pinned).rungs.keys() == policy.ladder_of(national).rungs.keys()
    assert reads() == 0
    # a profile written through this process clears the cache; a version read by a transaction
    # that rolls back is not kept
    with pytest.raises(RuntimeError, match="roll back"), sessions.begin() as session:
        session.add(
            PolicyProfile(
                key="perf_probe",
                version=1,
                content={"title": "t", "values": {}, "ladder": None},
                content_hash="0" * 64,
            )
        )
        session.flush()
        policy.pinned_policy(session, data)
        assert reads() == 1
        raise RuntimeError("roll back")
    with sessions.begin() as session:
        policy.pinned_policy(session, data)
    assert reads() == 2
    with sessions.begin() as session:
        policy.pinned_policy(session, data)
    assert reads() == 2


def test_a_job_read_before_the_lock_does_not_fire_twice(driver):
    """Projections read an instance's jobs by the instance alone and check their state in Python:
    a job a caller read before the lock (its state from before a racing firing committed) is read
    again under the lock, so the loser of the race fires nothing."""
    hid, instance_id, job_id = _planned(driver)
    with driver.sessions() as loser:
        stale = loser.get_one(TimerJob, job_id)  # read before the lock (and kept: the map is weak)
        assert stale.state == "waiting"
        assert _fire(driver, (hid, instance_id, job_id)) == "fired"  # the winner commits
        with time_machine.travel(REMINDERS_DUE, tick=False):
            assert runtime.fire_timer(loser, driver.ctx, timer_job_id=job_id) == "fired"
            loser.commit()
    with driver.sessions() as session:
        fired = session.scalars(
            select(Event.task_key).where(Event.instance_id == instance_id, Event.action == "timer_fired")
        ).all()
        assert fired == ["rectify_remind"]
        assert session.scalar(select(func.count(Notice.id)).where(Notice.hazard_id == hid)) == 1
