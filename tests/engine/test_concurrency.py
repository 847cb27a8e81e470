"""Races on one instance: two connections behind a barrier, each in its own transaction (DESIGN §4).

The losers must get :class:`engine.errors.Conflict` and leave nothing behind; winners and losers
are counted from the database rows, not only from the exceptions. These tests need committed
data (savepoint-isolated rows are invisible to other connections).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import runtime
from engine.errors import Conflict
from engine.events import verify_chain
from engine.models import Event
from engine.models import ProcessInstance
from engine.models import TaskSubmission
from engine.models import TimerJob
from engine.models import WorkItem
from tests.factories import make_hazard
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
DUE = dt.date(2026, 11, 30)
DEADLINE = dt.datetime(2026, 11, 30, 15, 59, 59, tzinfo=dt.UTC)
JOIN_TIMEOUT = 60


def _dialect(factory: sessionmaker[Session]) -> str:
    return factory.kw["bind"].dialect.name


@pytest.fixture
def pg(committed):
    if _dialect(committed) != "postgresql":
        pytest.skip("needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=postgresql+psycopg://…)")
    yield committed
    assert committed.kw["bind"].pool.checkedout() == 0, "a connection leaked"


@pytest.fixture
def sqlite_file(committed):
    if _dialect(committed) != "sqlite":
        pytest.skip("the SQLite variant runs when the suite runs on SQLite")
    assert committed.kw["bind"].url.database not in (None, "", ":memory:")
    return committed


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(START, tick=True):
        yield


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def race(*calls: Callable[[], Any]) -> list[Outcome]:
    """Run the calls in threads released together by a barrier; join with a timeout."""
    barrier = threading.Barrier(len(calls), timeout=JOIN_TIMEOUT)
    outcomes = [Outcome() for _ in calls]

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            outcomes[index].value = call()
        except BaseException as exc:  # reported to the test thread below
            outcomes[index].error = exc

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return outcomes


def one_winner(outcomes: list[Outcome]) -> int:
    """Exactly one call succeeded and every other raised Conflict; returns the winner's index."""
    errors = [o.error for o in outcomes if o.error is not None]
    for error in errors:
        if not isinstance(error, Conflict):
            raise AssertionError(f"expected Conflict, got {type(error).__name__}: {error}") from error
    winners = [i for i, o in enumerate(outcomes) if o.error is None]
    assert len(winners) == 1, outcomes
    return winners[0]


class Setup:
    """Builds hazards in committed transactions, one unit of work per step."""

    def __init__(self, factory: sessionmaker[Session], ctx, world) -> None:
        self.factory, self.ctx, self.world = factory, ctx, world
        with factory() as session:
            self.actors = {
                name: world.actor(session, name)
                for name in ("chen_safety", "zhang_rectifier", "liu_rectifier")
            }

    def planned(self) -> tuple[int, int]:
        """A hazard with its plan assigned; returns (hazard id, open rectify work item id)."""
        with self.factory.begin() as session:
            hid = make_hazard(session, self.ctx, self.world, self.actors["chen_safety"]).id
        with self.factory.begin() as session:
            plan = session.scalars(
                select(WorkItem.id).where(WorkItem.hazard_id == hid, WorkItem.state == "open")
            ).one()
            runtime.complete(
                session, self.ctx, work_item_id=plan, actor=self.actors["chen_safety"], form=plan_form(DUE)
            )
        with self.factory() as session:
            item = session.scalars(
                select(WorkItem.id).where(WorkItem.hazard_id == hid, WorkItem.state == "open")
            ).one()
        return hid, item

    def photo(self, hid: int, username: str, content: bytes) -> int:
        with self.factory.begin() as session:
            return runtime.add_attachment(
                session,
                self.ctx,
                hazard_id=hid,
                actor=self.actors[username],
                filename="after.jpg",
                mime_type="image/jpeg",
                content=content,
                phase="after",
            ).id

    def version(self, hid: int) -> int:
        with self.factory() as session:
            return session.scalars(
                select(ProcessInstance.version).where(ProcessInstance.hazard_id == hid)
            ).one()

    def complete_call(self, item_id: int, username: str, photo: int) -> Callable[[], int]:
        form = {"summary": f"{username} 已整改", "after_photos": [photo], "completed_on": "2026-11-23"}

        def call() -> int:
            with self.factory.begin() as session:  # its own session, hence its own connection
                runtime.complete(
                    session, self.ctx, work_item_id=item_id, actor=self.actors[username], form=form
                )
            return self.actors[username].user_id

        return call

    def claim_call(self, item_id: int, username: str) -> Callable[[], int]:
        def call() -> int:
            with self.factory.begin() as session:
                runtime.claim(session, self.ctx, work_item_id=item_id, actor=self.actors[username])
            return self.actors[username].user_id

        return call


def race_complete(factory: sessionmaker[Session], ctx, world, rounds: int) -> None:
    """``rounds`` races of two rectifiers completing the same ``rectify`` item, checked in the database."""
    setup = Setup(factory, ctx, world)
    # what one uncontended completion does to the instance version (each flush of the row bumps it)
    solo_hid, solo_item = setup.planned()
    solo_version = setup.version(solo_hid)
    setup.complete_call(solo_item, "zhang_rectifier", setup.photo(solo_hid, "zhang_rectifier", b"solo"))()
    step = setup.version(solo_hid) - solo_version
    assert step >= 1
    played: list[tuple[int, int, int, int]] = []  # hazard, work item, version before, winner
    for round_no in range(rounds):
        hid, item = setup.planned()
        photos = {
            name: setup.photo(hid, name, f"{name}-{round_no}".encode())
            for name in ("zhang_rectifier", "liu_rectifier")
        }
        version = setup.version(hid)
        outcomes = race(*(setup.complete_call(item, name, photos[name]) for name in photos))
        winner = outcomes[one_winner(outcomes)].value
        played.append((hid, item, version, winner))

    hazard_ids = [p[0] for p in played]
    with factory() as session:
        # winners and losers from the rows: one submission per item, by the thread that won
        submitted = dict(
            session.execute(
                select(TaskSubmission.work_item_id, TaskSubmission.submitted_by_id).where(
                    TaskSubmission.form_key == "rectify", TaskSubmission.hazard_id.in_(hazard_ids)
                )
            ).all()
        )
        per_item = Counter(
            session.scalars(
                select(TaskSubmission.work_item_id).where(
                    TaskSubmission.form_key == "rectify", TaskSubmission.hazard_id.in_(hazard_ids)
                )
            )
        )
        assert len(per_item) == rounds and set(per_item.values()) == {1}
        assert {item: winner for _, item, _, winner in played} == submitted
        # the loser wrote nothing: each instance moved exactly as far as one uncontended completion
        versions = dict(
            session.execute(
                select(ProcessInstance.hazard_id, ProcessInstance.version).where(
                    ProcessInstance.hazard_id.in_(hazard_ids)
                )
            ).all()
        )
        assert versions == {hid: version + step for hid, _, version, _ in played}
        completed = Counter(
            session.scalars(
                select(Event.hazard_id).where(
                    Event.hazard_id.in_(hazard_ids),
                    Event.action == "task_completed",
                    Event.task_key == "rectify",
                )
            )
        )
        assert completed == dict.fromkeys(hazard_ids, 1)
        items = session.execute(
            select(WorkItem.hazard_id, WorkItem.task_key, WorkItem.state, WorkItem.completed_by_id).where(
                WorkItem.hazard_id.in_(hazard_ids)
            )
        ).all()
        open_items = Counter((h, key) for h, key, state, _ in items if state == "open")
        assert open_items == {(hid, "verify"): 1 for hid in hazard_ids}  # no duplicate open items
        rectify_done = {h: by for h, key, state, by in items if key == "rectify" and state == "completed"}
        assert rectify_done == {hid: winner for hid, _, _, winner in played}
        assert verify_chain(session, key=ctx.audit_key) == []


@pytest.mark.postgres
def test_two_rectifiers_complete_the_same_item_one_wins(pg, ctx, world):
    race_complete(pg, ctx, world, rounds=100)


def test_sqlite_begin_immediate_serialises_the_race(sqlite_file, ctx, world):
    # without BEGIN IMMEDIATE both writers read, then one fails to upgrade: "database is locked"
    race_complete(sqlite_file, ctx, world, rounds=20)


@pytest.mark.postgres
def test_two_rectifiers_claim_the_same_item_one_wins(pg, ctx, world):
    setup = Setup(pg, ctx, world)
    played = []
    for _ in range(20):
        hid, item = setup.planned()
        outcomes = race(setup.claim_call(item, "zhang_rectifier"), setup.claim_call(item, "liu_rectifier"))
        played.append((hid, item, outcomes[one_winner(outcomes)].value))
    hazard_ids = [hid for hid, _, _ in played]
    with pg() as session:
        assignees = dict(
            session.execute(
                select(WorkItem.id, WorkItem.assignee_id).where(WorkItem.id.in_([i for _, i, _ in played]))
            ).all()
        )
        assert assignees == {item: winner for _, item, winner in played}
        claimed = Counter(
            session.scalars(
                select(Event.hazard_id).where(Event.hazard_id.in_(hazard_ids), Event.action == "claimed")
            )
        )
        assert claimed == dict.fromkeys(hazard_ids, 1)
        assert verify_chain(session, key=ctx.audit_key) == []


@pytest.mark.postgres
def test_two_workers_fire_the_same_due_timer_once(pg, ctx, world):
    setup = Setup(pg, ctx, world)
    hazards = []
    for _ in range(10):
        hid, _ = setup.planned()
        with pg() as session:
            job = session.scalars(
                select(TimerJob.id).where(TimerJob.hazard_id == hid, TimerJob.timer_key == "rectify_overdue")
            ).one()
        hazards.append((hid, job))

    def fire(job_id: int) -> str:
        with pg.begin() as session:
            return runtime.fire_timer(session, ctx, timer_job_id=job_id)

    with time_machine.travel(DEADLINE + dt.timedelta(hours=2), tick=True):
        for _, job in hazards:
            outcomes = race(lambda job=job: fire(job), lambda job=job: fire(job))
            assert [(o.value, o.error) for o in outcomes] == [("fired", None), ("fired", None)]

    hazard_ids = [hid for hid, _ in hazards]
    now = DEADLINE + dt.timedelta(hours=2)
    with pg() as session:
        fired = Counter(
            session.scalars(
                select(Event.hazard_id).where(Event.hazard_id.in_(hazard_ids), Event.action == "overdue")
            )
        )
        assert fired == dict.fromkeys(hazard_ids, 1)
        # every timer due by then fired exactly once (one timer_fired event each); the later
        # rungs of the escalation ladder still wait
        jobs = session.scalars(select(TimerJob).where(TimerJob.hazard_id.in_(hazard_ids))).all()
        fired_events = Counter(
            (e.hazard_id, e.task_key)
            for e in session.scalars(
                select(Event).where(Event.hazard_id.in_(hazard_ids), Event.action == "timer_fired")
            )
        )
        for job in jobs:
            if job.due_at <= now:
                assert job.state == "fired", job.timer_key
                assert fired_events[(job.hazard_id, job.timer_key)] == 1, job.timer_key
            else:
                assert job.state == "waiting", job.timer_key
        assert {j.timer_key for j in jobs if j.state == "fired"} >= {"rectify_overdue", "rectify_urge_due"}
        assert verify_chain(session, key=ctx.audit_key) == []
