"""Real ``hazardloop worker`` processes on PostgreSQL: many workers, each timer fired once; a worker
killed with SIGKILL while it holds leases loses nothing.

Due timers in volume: one template hazard is driven through the engine under time-machine five
days in the past with its deadline tomorrow, so its reminder is due in real time (the workers run
on the real clock) and its overdue timer is not; then faithful copies of its rows (hazard,
process instance with the same stored workflow, open work item, timer jobs) are inserted in one
transaction while the workers are already running (bench/scheduler.py, which uses the same
helpers). Every check is made on the rows: job states, ``timer_fired`` events, leases, attempts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from bench.scheduler import DUE_KEY
from bench.scheduler import Template
from bench.scheduler import Worker
from bench.scheduler import check_fired_once
from bench.scheduler import due_keys
from bench.scheduler import fired_count
from bench.scheduler import insert_copies
from bench.scheduler import load_template
from bench.scheduler import make_template
from bench.scheduler import start_worker
from bench.scheduler import stop_worker
from bench.scheduler import wait_started
from bench.scheduler import worker_environment
from engine.models import Notice
from engine.models import TimerJob
from tests.conftest import is_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not is_postgres(), reason="needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=…)"),
]


@pytest.fixture
def template(committed: sessionmaker[Session], ctx, world) -> Template:
    """The template's rows; its own timer jobs are cancelled (only its copies count)."""
    hazard_id = make_template(committed, ctx, world)
    with committed.begin() as session:
        template = load_template(session, hazard_id)
        session.execute(update(TimerJob).where(TimerJob.hazard_id == hazard_id).values(state="cancelled"))
    assert due_keys(template) == [DUE_KEY]  # the reminder is due in real time, the others are not
    assert "rectify_overdue" in {j["timer_key"] for j in template.timer_jobs}
    return template


def assert_one_notice_each(session: Session, hazard_ids: list[int]) -> None:
    """Each fired reminder issued its 提醒敦促函 exactly once, every 文号 distinct (the notice's
    dedupe key and 文号 are unique constraints: a duplicate is impossible, not just unlikely)."""
    rows = session.execute(
        select(Notice.hazard_id, Notice.rung, Notice.document_number).where(Notice.hazard_id.in_(hazard_ids))
    ).all()
    assert sorted(h for h, _, _ in rows) == sorted(hazard_ids)
    assert {rung for _, rung, _ in rows} == {"urge_before"}
    assert len({number for _, _, number in rows}) == len(rows)


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, workers: Sequence[Worker] = ()
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for w in workers:
            assert w.process.poll() is None, f"worker exited with {w.process.returncode}:\n{w.output()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def count(committed: sessionmaker[Session], hazard_ids: list[int]) -> int:
    with committed() as session:
        return fired_count(session, hazard_ids)


def test_two_worker_processes_fire_2000_due_timers_each_exactly_once(
    committed, settings, template, tmp_path: Path
) -> None:
    env = worker_environment(settings, HAZARDLOOP_TIMER_BATCH="50")
    workers = [start_worker(env, tmp_path / f"worker-{n}.log") for n in range(2)]
    try:
        wait_started(workers)
        with committed.begin() as session:  # at its commit 2,000 reminders are due at once
            hazard_ids = insert_copies(session, template, 2000)
        wait_until(lambda: count(committed, hazard_ids) == 2000, 600, "2,000 fired timers", workers)
    finally:
        codes = [stop_worker(w) for w in workers]
    assert codes == [0, 0], [w.output() for w in workers]
    with committed() as session:
        # every due job fired, exactly one timer_fired event each, nothing else moved, no incidents
        assert check_fired_once(session, hazard_ids) == []
        assert_one_notice_each(session, hazard_ids)
        leftover = session.scalar(
            select(func.count(TimerJob.id)).where(
                TimerJob.hazard_id.in_(hazard_ids), TimerJob.lock_owner.is_not(None)
            )
        )
        assert leftover == 0  # no lease left behind
    fired = [w.fired() for w in workers]
    assert sum(fired) == 2000 and all(n > 0 for n in fired), fired  # both workers did some of the work
    for w in workers:
        assert "worker 已停止" in w.output() and "Traceback" not in w.output()


def test_a_killed_worker_loses_nothing_its_leases_expire_and_another_fires_them_once(
    committed, settings, template, tmp_path: Path
) -> None:
    lease = 4
    slow = worker_environment(
        settings,
        HAZARDLOOP_TIMER_BATCH="40",
        HAZARDLOOP_TIMER_LEASE_SECONDS=str(lease),
        HAZARDLOOP_TEST_FIRE_DELAY_MS="200",
    )
    doomed = start_worker(slow, tmp_path / "doomed.log")
    try:
        wait_started([doomed])
        with committed.begin() as session:
            hazard_ids = insert_copies(session, template, 200)
        mine = TimerJob.lock_owner.like(f"%:{doomed.process.pid}:worker-%")

        def holding() -> int:
            with committed() as session:
                return (
                    session.scalar(select(func.count(TimerJob.id)).where(mine, TimerJob.state == "waiting"))
                    or 0
                )

        # it committed a claim and fired a few of the jobs it holds: now kill it, no goodbye
        wait_until(lambda: holding() > 0 and count(committed, hazard_ids) >= 2, 60, "a claim", [doomed])
        doomed.process.kill()
        doomed.process.wait(30)
    finally:
        stop_worker(doomed)
    with committed() as session:
        held = dict(session.execute(select(TimerJob.id, TimerJob.lock_expires_at).where(mine)).all())
        owner = session.scalars(select(TimerJob.lock_owner).where(mine)).first()
    fired_by_the_dead = count(committed, hazard_ids)
    assert held and owner and fired_by_the_dead >= 2

    survivor = start_worker(worker_environment(settings), tmp_path / "survivor.log")
    try:
        wait_until(lambda: count(committed, hazard_ids) == 200, 300, "200 fired timers", [survivor])
    finally:
        assert stop_worker(survivor) == 0, survivor.output()
    with committed() as session:
        assert check_fired_once(session, hazard_ids) == []  # each timer fired exactly once
        assert_one_notice_each(session, hazard_ids)  # and no duplicate notice
        taken_over = session.scalars(select(TimerJob).where(TimerJob.id.in_(list(held)))).all()
    for job in taken_over:
        # not before the dead worker's lease expired; the takeover counted as an attempt, named the owner
        assert job.state == "fired" and job.fired_at is not None and job.fired_at >= held[job.id]
        assert job.attempts == 1 and owner in (job.last_error or "")
        assert job.lock_owner is None
    assert survivor.fired() == 200 - fired_by_the_dead
    assert "接管过期租约" in survivor.output()


def test_a_stopped_worker_hands_back_the_jobs_it_has_not_fired(
    committed, settings, template, tmp_path: Path
) -> None:
    """SIGTERM (or Ctrl-C) mid-claim: the current firing finishes, the rest is released at once
    (no attempt counted, no lease to wait for)."""
    slow = worker_environment(settings, HAZARDLOOP_TIMER_BATCH="50", HAZARDLOOP_TEST_FIRE_DELAY_MS="200")
    worker = start_worker(slow, tmp_path / "stopped.log")
    try:
        wait_started([worker])
        with committed.begin() as session:
            hazard_ids = insert_copies(session, template, 60)
        wait_until(lambda: count(committed, hazard_ids) >= 2, 60, "a few fired timers", [worker])
    finally:
        assert stop_worker(worker) == 0, worker.output()
    fired = count(committed, hazard_ids)
    with committed() as session:
        rows = session.scalars(
            select(TimerJob).where(TimerJob.hazard_id.in_(hazard_ids), TimerJob.timer_key == DUE_KEY)
        ).all()
    waiting = [r for r in rows if r.state == "waiting"]
    assert fired < 60 and len(waiting) == 60 - fired
    assert all(r.lock_owner is None and r.attempts == 0 for r in waiting)
    assert "交还" in worker.output() and "worker 已停止" in worker.output()
