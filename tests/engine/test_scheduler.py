"""The leased scheduler (engine/scheduler.py) on the test database, SQLite or PostgreSQL.

Claims and leases, takeover of expired leases, backoff between failed attempts, dead jobs and
their incidents, retry, hand-back on stop, and the ``hazardloop incidents``/``timers``/``worker``
commands. Failures are real: an instance whose stored state has an unknown serializer version
cannot be loaded, so firing its timer fails until the state is repaired. Time moves with
time-machine (the engine's clock and SpiffWorkflow's both follow it). The worker processes are in
test_scheduler_processes.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import admin
from engine import bpmn
from engine import runtime
from engine import scheduler
from engine.config import Settings
from engine.demo import DemoWorld
from engine.errors import Conflict
from engine.errors import NotFound
from engine.models import Event
from engine.models import Hazard
from engine.models import Incident
from engine.models import ProcessInstance
from engine.models import TimerJob
from engine.models import WorkItem
from engine.runtime import EngineContext
from tests.factories import make_hazard
from tests.factories import plan_form
from web.cli import main

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
DUE = dt.date(2026, 11, 30)
DEADLINE = dt.datetime(2026, 11, 30, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai
REMIND_AT = DEADLINE - dt.timedelta(days=3)  # rectify_remind: three days before the deadline
T0 = REMIND_AT + dt.timedelta(minutes=5)  # the reminders are due, the overdue timers are not
LEASE = 60
BACKOFF_BASE = 30.0
BACKOFF_CAP = 100.0
MAX_ATTEMPTS = 5


@pytest.fixture
def tctx(settings: Settings) -> EngineContext:
    """An engine context with the timer settings these tests count on."""
    return EngineContext(
        settings=replace(
            settings,
            timer_batch=10,
            timer_lease_seconds=LEASE,
            timer_max_attempts=MAX_ATTEMPTS,
            timer_backoff_base_seconds=BACKOFF_BASE,
            timer_backoff_cap_seconds=BACKOFF_CAP,
        )
    )


def planned(
    factory: sessionmaker[Session], ctx: EngineContext, world: DemoWorld, count: int = 1
) -> list[int]:
    """``count`` hazards at 限期整改 with the deadline DEADLINE: two waiting timer jobs each."""
    ids = []
    with time_machine.travel(START, tick=False):
        for _ in range(count):
            with factory.begin() as session:
                hid = make_hazard(session, ctx, world, world.actor(session, "chen_safety")).id
            with factory.begin() as session:
                item = session.scalars(
                    select(WorkItem.id).where(WorkItem.hazard_id == hid, WorkItem.state == "open")
                ).one()
                runtime.complete(
                    session,
                    ctx,
                    work_item_id=item,
                    actor=world.actor(session, "chen_safety"),
                    form=plan_form(DUE),
                )
            ids.append(hid)
    return ids


def job(factory: sessionmaker[Session], hid: int, key: str = "rectify_remind") -> TimerJob:
    with factory() as session:
        return session.scalars(
            select(TimerJob).where(TimerJob.hazard_id == hid, TimerJob.timer_key == key)
        ).one()


def fired_events(factory: sessionmaker[Session], hid: int) -> list[str | None]:
    with factory() as session:
        return list(
            session.scalars(
                select(Event.task_key)
                .where(Event.hazard_id == hid, Event.action == "timer_fired")
                .order_by(Event.id)
            )
        )


def set_serializer_version(factory: sessionmaker[Session], hid: int, version: str) -> None:
    """Break (or repair) the stored state: an unknown serializer version is refused on load."""
    with factory.begin() as session:
        session.execute(
            update(ProcessInstance).where(ProcessInstance.hazard_id == hid).values(serializer_version=version)
        )


def at(when: dt.datetime) -> Any:
    return time_machine.travel(when, tick=False)


# --- settings and backoff ----------------------------------------------------------------------------


def test_timer_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "HAZARDLOOP_TIMER_BATCH": "7",
            "HAZARDLOOP_TIMER_LEASE_SECONDS": "30",
            "HAZARDLOOP_TIMER_MAX_ATTEMPTS": "3",
            "HAZARDLOOP_TIMER_BACKOFF_BASE": "5",
            "HAZARDLOOP_TIMER_BACKOFF_CAP": "50",
            "HAZARDLOOP_TEST_FIRE_DELAY_MS": "10",
        }
    )
    assert (settings.timer_batch, settings.timer_lease_seconds, settings.timer_max_attempts) == (7, 30, 3)
    assert (settings.timer_backoff_base_seconds, settings.timer_backoff_cap_seconds) == (5.0, 50.0)
    assert settings.test_fire_delay_ms == 10
    # the earlier, documented name of the lease still works; the new one wins
    assert Settings.from_env({"HAZARDLOOP_LEASE_SECONDS": "45"}).timer_lease_seconds == 45
    legacy_and_new = {"HAZARDLOOP_LEASE_SECONDS": "45", "HAZARDLOOP_TIMER_LEASE_SECONDS": "20"}
    assert Settings.from_env(legacy_and_new).timer_lease_seconds == 20
    with pytest.raises(ValueError, match="HAZARDLOOP_TIMER_BATCH"):
        Settings.from_env({"HAZARDLOOP_TIMER_BATCH": "0"})


def test_backoff_doubles_up_to_the_cap(tctx: EngineContext) -> None:
    waits = [scheduler.backoff(tctx.settings, n).total_seconds() for n in range(1, 6)]
    assert waits == [30.0, 60.0, 100.0, 100.0, 100.0]


# --- claims and leases ---------------------------------------------------------------------------------


def test_a_claim_leases_due_jobs_to_one_owner_at_a_time(sessions, tctx, world) -> None:
    hids = planned(sessions, tctx, world, 3)
    settings = tctx.settings
    with at(T0):
        first, buried = scheduler.claim(sessions, settings, owner="host:1:a", batch=2, now=T0)
        assert buried == 0 and len(first) == 2  # the batch size bounds a claim
        second, _ = scheduler.claim(sessions, settings, owner="host:2:b", batch=10, now=T0)
        assert len(second) == 1  # only the job nobody holds
        assert not scheduler.claim(sessions, settings, owner="host:3:c", batch=10, now=T0)[0]
    assert {c.hazard_id for c in first + second} == set(hids)
    assert all(c.previous_owner is None and c.attempts == 0 for c in first + second)
    for c in first:
        row = job(sessions, c.hazard_id)
        assert (
            row.id == c.id and row.state == "waiting"
        )  # a leased job is still waiting (the protocol fires it)
        assert row.lock_owner == "host:1:a" and row.lock_expires_at == T0 + dt.timedelta(seconds=LEASE)
    for hid in hids:  # jobs that are not due are never claimed
        overdue = job(sessions, hid, "rectify_overdue")
        assert overdue.lock_owner is None and overdue.due_at == DEADLINE
    # handing back (stopping): claimable again at once, no attempt counted
    assert scheduler.release(sessions, [c.id for c in first], owner="host:1:a") == 2
    assert scheduler.release(sessions, [second[0].id], owner="host:1:a") == 0  # not ours
    with at(T0):
        again, _ = scheduler.claim(sessions, settings, owner="host:3:c", batch=10, now=T0)
    assert sorted(c.id for c in again) == sorted(c.id for c in first)
    assert all(c.attempts == 0 for c in again)


def test_an_expired_lease_is_taken_over_and_each_timer_fires_once(sessions, tctx, world) -> None:
    hids = planned(sessions, tctx, world, 2)
    settings = tctx.settings
    with at(T0):
        crashed, _ = scheduler.claim(sessions, settings, owner="host:1:dead", batch=10, now=T0)
    assert len(crashed) == 2
    before_expiry = T0 + dt.timedelta(seconds=LEASE - 1)
    with at(before_expiry):
        assert scheduler.claim(sessions, settings, owner="host:2:b", batch=10, now=before_expiry)[0] == []
        assert scheduler.run_due(sessions, tctx, owner="host:2:b").due == 0
    after_expiry = T0 + dt.timedelta(seconds=LEASE + 1)
    with at(after_expiry):
        result = scheduler.run_due(sessions, tctx, owner="host:2:b")
    assert (result.due, result.fired, result.reclaimed, result.failed) == (2, 2, 2, 0)
    for hid in hids:
        row = job(sessions, hid)
        assert row.state == "fired" and row.lock_owner is None and row.fired_at == after_expiry
        # the takeover counted as an attempt and says whose lease expired
        assert row.attempts == 1 and "host:1:dead" in (row.last_error or "")
        assert fired_events(sessions, hid) == ["rectify_remind"]
    # the crashed owner coming back late fires nothing twice: the protocol decides
    with at(after_expiry):
        assert scheduler.fire(sessions, tctx, crashed[0], owner="host:1:dead") == ("fired", False)
    assert all(fired_events(sessions, hid) == ["rectify_remind"] for hid in hids)


def test_run_due_claims_again_while_claims_come_back_full(sessions, tctx, world) -> None:
    hids = planned(sessions, tctx, world, 5)
    with at(T0):
        result = scheduler.run_due(sessions, tctx, batch=2)
        assert (result.due, result.fired, result.batches) == (5, 5, 3)  # 2 + 2 + 1: the short claim ends it
        assert scheduler.run_due(sessions, tctx, batch=2) == scheduler.RunResult(batches=1)
    assert all(fired_events(sessions, hid) == ["rectify_remind"] for hid in hids)
    assert all(job(sessions, hid, "rectify_overdue").state == "waiting" for hid in hids)


def test_run_due_with_a_limit_claims_no_more(sessions, tctx, world) -> None:
    planned(sessions, tctx, world, 3)
    with at(T0):
        assert scheduler.run_due(sessions, tctx, batch=2, limit=3).due == 3
    planned(sessions, tctx, world, 3)
    with at(T0):
        result = scheduler.run_due(sessions, tctx, batch=2, limit=1)
        assert (result.due, result.fired) == (1, 1)
        assert scheduler.run_due(sessions, tctx).fired == 2


def test_timers_of_one_instance_that_fell_due_together_take_one_protocol_run(
    sessions, tctx, world, engine
) -> None:
    """After an outage several timers of a hazard are due: the first firing fires them all, the
    other jobs are only checked (no second lock, load and save of the instance)."""
    [hid] = planned(sessions, tctx, world)
    locks: list[str] = []

    def count_locks(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if (
            statement.lstrip().startswith("SELECT")
            and "process_instance" in statement
            and "FOR UPDATE" in statement
        ):
            locks.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count_locks)
    try:
        with at(DEADLINE + dt.timedelta(hours=1)):
            result = scheduler.run_due(sessions, tctx)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count_locks)
    assert result.failed == 0 and result.fired == result.due >= 2
    events = fired_events(sessions, hid)
    assert {"rectify_overdue", "rectify_remind"} <= set(events) and len(events) == len(set(events))
    if sessions.kw["bind"].dialect.name == "postgresql":  # SQLite locks by BEGIN IMMEDIATE instead
        assert len(locks) == 1, locks


def test_a_claim_skips_jobs_another_transaction_holds(committed, tctx, world) -> None:
    """PostgreSQL: ``FOR UPDATE SKIP LOCKED`` — rows locked by a claim (or a firing) still in
    progress are neither waited for nor taken."""
    if committed.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises claims with BEGIN IMMEDIATE")
    hids = planned(committed, tctx, world, 2)
    held = job(committed, hids[0])
    with committed.begin() as holder:
        holder.execute(select(TimerJob.id).where(TimerJob.id == held.id).with_for_update())
        with at(T0):
            claimed, _ = scheduler.claim(committed, tctx.settings, owner="host:2:b", batch=10, now=T0)
        assert [c.hazard_id for c in claimed] == [hids[1]]
    with at(T0):
        claimed, _ = scheduler.claim(committed, tctx.settings, owner="host:3:c", batch=10, now=T0)
    assert [c.id for c in claimed] == [held.id]


# --- failures, backoff, incidents ------------------------------------------------------------------


def test_a_failing_job_backs_off_dies_with_an_incident_and_fires_after_retry(sessions, tctx, world) -> None:
    [hid] = planned(sessions, tctx, world)
    set_serializer_version(sessions, hid, "0.0")
    when = T0
    waits = [30, 60, 100, 100]  # base 30 s, doubling, capped at 100 s
    for attempt, wait in enumerate(waits, start=1):
        with at(when):
            result = scheduler.run_due(sessions, tctx)
        assert (result.due, result.failed, result.dead, result.fired) == (1, 1, 0, 0)
        row = job(sessions, hid)
        assert row.state == "waiting" and row.attempts == attempt and row.lock_owner is None
        assert row.available_at == when + dt.timedelta(seconds=wait)
        assert "ValueError" in (row.last_error or "") and "serializer version" in (row.last_error or "")
        # not attempted again before its backoff has passed
        with at(when + dt.timedelta(seconds=wait - 1)):
            assert scheduler.run_due(sessions, tctx).due == 0
        when += dt.timedelta(seconds=wait)
    with at(when):
        result = scheduler.run_due(sessions, tctx)
    assert (result.due, result.failed, result.dead) == (1, 0, 1)
    row = job(sessions, hid)
    assert row.state == "dead" and row.attempts == MAX_ATTEMPTS and row.lock_owner is None
    with sessions() as session:
        [incident] = session.scalars(select(Incident).where(Incident.hazard_id == hid)).all()
        assert (incident.timer_job_id, incident.instance_id) == (row.id, row.instance_id)
        assert incident.state == "open" and incident.attempts == MAX_ATTEMPTS
        assert incident.created_at == when and incident.resolved_at is None
        assert "serializer version" in incident.error
        assert admin.count_incidents(session) == 1
        [listed] = admin.incidents(session)
        assert listed.incident.id == incident.id and listed.job.timer_key == "rectify_remind"
        assert listed.hazard_number == session.get_one(Hazard, hid).number
        incident_id = incident.id
    with at(when + dt.timedelta(days=1)):
        assert scheduler.run_due(sessions, tctx).due == 0  # dead jobs are not claimed
    assert fired_events(sessions, hid) == []

    # repaired, and retried by an administrator: it fires at the next run, once
    set_serializer_version(sessions, hid, bpmn.SERIALIZER_VERSION)
    retried_at = when + dt.timedelta(hours=1)
    with sessions.begin() as session:
        admin.retry_incident(
            session, incident_id=incident_id, now=retried_at, by_user_id=world.users["admin"].id
        )
    row = job(sessions, hid)
    assert row.state == "waiting" and row.attempts == 0 and row.available_at == retried_at
    with at(retried_at):
        assert scheduler.run_due(sessions, tctx).fired == 1
    assert fired_events(sessions, hid) == ["rectify_remind"]
    with sessions() as session:
        incident = session.get_one(Incident, incident_id)
        assert incident.state == "retried" and incident.resolved_at == retried_at
        assert incident.resolved_by_id == world.users["admin"].id
        assert admin.count_incidents(session) == 0
        with pytest.raises(Conflict, match="已重试过"):
            admin.retry_incident(session, incident_id=incident_id, now=retried_at)
        with pytest.raises(NotFound, match="故障事件"):
            admin.retry_incident(session, incident_id=incident_id + 1000, now=retried_at)


def test_a_job_whose_takeovers_use_up_its_attempts_dies(sessions, tctx, world) -> None:
    """A job every worker dies on (its lease expires again and again) ends as an incident."""
    [hid] = planned(sessions, tctx, world)
    with sessions.begin() as session:
        session.execute(
            update(TimerJob)
            .where(TimerJob.hazard_id == hid, TimerJob.timer_key == "rectify_remind")
            .values(attempts=MAX_ATTEMPTS - 1, lock_owner="host:9:gone", lock_expires_at=T0)
        )
    with at(T0 + dt.timedelta(seconds=1)):
        result = scheduler.run_due(sessions, tctx)
    assert (result.due, result.dead, result.fired, result.reclaimed) == (1, 1, 0, 1)
    assert job(sessions, hid).state == "dead"
    with sessions() as session:
        [incident] = session.scalars(select(Incident).where(Incident.hazard_id == hid)).all()
        assert "租约" in incident.error and "host:9:gone" in incident.error
    assert fired_events(sessions, hid) == []


def test_a_job_claimed_before_its_time_goes_back_to_its_own_due_time(sessions, tctx, world) -> None:
    """SpiffWorkflow decides: a job whose row says "due" but whose timer is not is not fired."""
    [hid] = planned(sessions, tctx, world)
    with sessions.begin() as session:
        session.execute(
            update(TimerJob)
            .where(TimerJob.hazard_id == hid, TimerJob.timer_key == "rectify_overdue")
            .values(due_at=T0 - dt.timedelta(hours=1))
        )
    with at(T0):
        result = scheduler.run_due(sessions, tctx)
    assert (result.due, result.fired, result.failed) == (2, 1, 0)
    overdue = job(sessions, hid, "rectify_overdue")
    # the projection put its real due time back; no attempt counted, no lease left behind
    assert overdue.state == "waiting" and overdue.due_at == DEADLINE
    assert overdue.attempts == 0 and overdue.lock_owner is None
    assert fired_events(sessions, hid) == ["rectify_remind"]


def test_a_due_job_the_engine_does_not_fire_counts_as_a_failed_attempt(sessions, tctx, world) -> None:
    [hid] = planned(sessions, tctx, world)
    with sessions.begin() as session:  # an instance that is not running is never advanced
        session.execute(
            update(ProcessInstance).where(ProcessInstance.hazard_id == hid).values(status="completed")
        )
    with at(T0):
        result = scheduler.run_due(sessions, tctx)
    assert (result.due, result.fired, result.failed) == (1, 0, 1)
    row = job(sessions, hid)
    assert row.attempts == 1 and row.available_at == T0 + dt.timedelta(seconds=BACKOFF_BASE)
    assert "到期未触发" in (row.last_error or "")


# --- stopping --------------------------------------------------------------------------------------


def test_stopping_hands_back_the_unfired_jobs(sessions, tctx, world) -> None:
    hids = planned(sessions, tctx, world, 3)
    checks = iter([False, False])  # the loop's check, the first job's check; then: stop

    def stop() -> bool:
        return next(checks, True)

    with at(T0):
        result = scheduler.run_due(sessions, tctx, owner="host:1:a", should_stop=stop)
        assert (result.due, result.fired, result.released, result.failed) == (3, 1, 2, 0)
        rows = [job(sessions, hid) for hid in hids]
        assert sorted(r.state for r in rows) == ["fired", "waiting", "waiting"]
        assert all(r.lock_owner is None and r.attempts == 0 for r in rows)
        assert scheduler.run_due(sessions, tctx).fired == 2


def test_a_lease_running_out_hands_back_the_rest(sessions, settings, world) -> None:
    """A slow batch (here: 0.5 s per firing, a 2 s lease) stops firing at 3/4 of its lease."""
    slow = EngineContext(settings=replace(settings, timer_lease_seconds=2, test_fire_delay_ms=500))
    hids = planned(sessions, slow, world, 4)
    with time_machine.travel(T0, tick=True):
        result = scheduler.run_due(sessions, slow, owner="host:1:slow")
    assert result.due == 4 and result.released >= 1 and result.fired + result.released == 4
    assert sum(job(sessions, hid).lock_owner is None for hid in hids) == 4


# --- several owners at once --------------------------------------------------------------------------


def test_two_owners_racing_fire_each_timer_once(committed, tctx, world) -> None:
    hids = planned(committed, tctx, world, 8)
    barrier = threading.Barrier(2, timeout=60)
    results: dict[str, scheduler.RunResult] = {}
    errors: list[BaseException] = []

    def worker(owner: str) -> Callable[[], None]:
        def run() -> None:
            try:
                barrier.wait()
                results[owner] = scheduler.run_due(committed, tctx, owner=owner, batch=2)
            except BaseException as exc:  # reported below
                errors.append(exc)

        return run

    with at(T0):
        threads = [threading.Thread(target=worker(o)) for o in ("host:1:a", "host:2:b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors, errors
    assert sum(r.fired for r in results.values()) == 8 and sum(r.failed for r in results.values()) == 0
    with committed() as session:
        counts = dict(
            session.execute(
                select(Event.hazard_id, func.count(Event.id))
                .where(Event.hazard_id.in_(hids), Event.action == "timer_fired")
                .group_by(Event.hazard_id)
            ).all()
        )
    assert counts == {hid: 1 for hid in hids}


# --- the command line ------------------------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings) -> Iterator[Callable[..., Any]]:
    runner = CliRunner()
    one_attempt = replace(settings, timer_max_attempts=1)

    def invoke(*args: str) -> Any:
        return runner.invoke(main, list(args), obj=one_attempt, catch_exceptions=False)

    yield invoke


def test_cli_incidents_list_and_retry(committed, tctx, world, cli) -> None:
    [hid] = planned(committed, tctx, world)
    set_serializer_version(committed, hid, "0.0")
    with at(T0):
        result = cli("timers", "run-due")  # one attempt allowed: the job dies at once
    assert result.exit_code == 0, result.output
    assert "到期 1 个" in result.stdout and "转入死信 1" in result.stdout
    with committed() as session:
        incident = session.scalars(select(Incident).where(Incident.hazard_id == hid)).one()
        number = session.get_one(Hazard, hid).number

    listed = cli("incidents", "list")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith(str(incident.id)))
    assert number in row and "rectify_remind" in row and "待处理" in row and "ValueError" in row
    assert str(incident.timer_job_id) in row

    set_serializer_version(committed, hid, bpmn.SERIALIZER_VERSION)
    with at(T0 + dt.timedelta(minutes=1)):
        retried = cli("incidents", "retry", str(incident.id))
        assert retried.exit_code == 0, retried.output
        assert f"故障事件 {incident.id} 已重试" in retried.stdout
        again = cli("incidents", "retry", str(incident.id))
        assert again.exit_code == 2 and "已重试过" in again.stderr and "Traceback" not in again.output
        unknown = cli("incidents", "retry", "999999")
        assert unknown.exit_code == 2 and "故障事件 999999 不存在" in unknown.stderr
        fired = cli("timers", "run-due")
    assert "已触发 1" in fired.stdout
    assert fired_events(committed, hid) == ["rectify_remind"]
    assert "没有待处理的故障事件" in cli("incidents", "list").stdout
    history = cli("incidents", "list", "--all").stdout
    assert "已重试" in history and number in history


def test_cli_worker_once_fires_the_due_timers(committed, tctx, world, cli) -> None:
    hids = planned(committed, tctx, world, 2)
    with at(T0):
        result = cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "到期 2 个，已触发 2，失败 0" in result.stdout
    assert all(fired_events(committed, hid) == ["rectify_remind"] for hid in hids)
