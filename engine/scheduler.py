"""The timer scheduler: leased claims, firing through the per-instance protocol, backoff, incidents.

``hazardloop worker`` runs :func:`run_due` on every APScheduler tick, ``hazardloop timers run-due``
runs it once with a one-off owner. One call repeats, while the claims come back full:

1. **claim** — one short, committed transaction leases up to ``timer_batch`` due jobs to ``owner``
   (``host:pid:uuid``) until now + ``timer_lease_seconds``. A job is claimable when it is
   ``waiting``, due (``due_at <= now``), past its backoff (``available_at``) and not leased — or
   its lease expired. PostgreSQL picks the rows with ``SELECT … FOR UPDATE SKIP LOCKED`` (workers
   never wait for each other's claims); SQLite, whose ``BEGIN IMMEDIATE`` already serialises
   writers, picks them with a plain ``SELECT``. Both then run the same compare-and-set
   ``UPDATE … WHERE id IN (…) AND <still claimable> RETURNING …``, so a row is leased to one
   owner at a time.
2. **fire** — each job in its own transaction through :func:`engine.runtime.fire_timer`, which
   locks the instance (DESIGN §4): the job is only a trigger, SpiffWorkflow decides whether the
   timer fires, so a timer fires once however many workers (or web requests) race for it. The
   projection marks the job ``fired`` and clears its lease in that same transaction.
3. **record** — a failure (or a due job SpiffWorkflow would not fire) counts an attempt: the next
   one waits ``min(cap, base · 2^(attempts-1))`` seconds (``available_at``); after
   ``timer_max_attempts`` the job is ``dead`` and an :class:`~engine.models.Incident` is raised,
   in one transaction, and only while the lease is still ours.

Reaping: nothing has to sweep expired leases — the claim itself takes over a job whose lease
expired, so a worker that dies holding leases loses nothing (its jobs are fired by the next
claim after the lease ends). Such a takeover counts an attempt (the previous holder died or hung
while firing it), so a job that kills every worker that fires it ends as an incident instead of
crashing workers forever. A worker that stops on purpose (Ctrl-C, SIGTERM), or whose lease is
running out before it got to a job, hands the unfired jobs back without counting an attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import fields

from sqlalchemy import ColumnElement
from sqlalchemy import Engine
from sqlalchemy import String
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from . import bpmn
from .config import Settings
from .db import is_sqlite
from .errors import Conflict
from .errors import NotFound
from .models import Hazard
from .models import Incident
from .models import IncidentState
from .models import TimerJob
from .models import TimerJobState
from .runtime import EngineContext
from .runtime import fire_timer

logger = logging.getLogger(__name__)

WAITING = TimerJobState.WAITING.value
FIRED = TimerJobState.FIRED.value
DEAD = TimerJobState.DEAD.value
#: stop starting new firings once this share of the lease has passed (the rest is handed back)
LEASE_SHARE = 0.75
ERROR_LIMIT = 2000
TAKEOVER_ERROR = "租约过期：上一个持有者未在租约内完成触发（进程崩溃或卡住）："


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one :func:`run_due` call did (``due``: jobs claimed, i.e. due and not leased)."""

    due: int = 0
    fired: int = 0
    #: failed for now, next attempt after the backoff
    failed: int = 0
    dead: int = 0
    #: claimed but handed back unfired (stopping, or the lease was running out)
    released: int = 0
    #: among ``due``: jobs whose previous holder's lease had expired
    reclaimed: int = 0
    #: claimed jobs the protocol settled without firing them (cancelled: their task had ended)
    cancelled: int = 0
    #: claims made (a full claim is followed by another at once)
    batches: int = 0

    def __add__(self, other: RunResult) -> RunResult:
        return RunResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job leased to us: what firing and recording need, read back by the claim."""

    id: int
    instance_id: int
    hazard_id: int
    #: attempts so far (including a takeover from an expired lease)
    attempts: int
    #: the owner whose expired lease we took over, if any
    previous_owner: str | None


def new_owner(label: str = "worker") -> str:
    """A lease owner unique to this process and call site: ``host:pid:label-uuid``."""
    return f"{socket.gethostname()}:{os.getpid()}:{label}-{uuid.uuid4().hex[:8]}"[:100]


def backoff(settings: Settings, attempts: int) -> dt.timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: base · 2^(attempts-1), capped."""
    seconds = settings.timer_backoff_base_seconds * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.timer_backoff_cap_seconds))


def _claimable(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        TimerJob.state == WAITING,
        TimerJob.due_at <= now,
        or_(TimerJob.available_at.is_(None), TimerJob.available_at <= now),
        or_(TimerJob.lock_expires_at.is_(None), TimerJob.lock_expires_at < now),
    )


# --- claim -----------------------------------------------------------------------------------------


def claim(
    sessions: sessionmaker[Session], settings: Settings, *, owner: str, batch: int, now: dt.datetime
) -> tuple[list[Claimed], int]:
    """Lease up to ``batch`` due jobs to ``owner`` in one committed transaction.

    Returns the jobs to fire (oldest due first) and the number of jobs buried because taking over
    their expired lease used up their last attempt.
    """
    with sessions.begin() as session:
        query = select(TimerJob.id, TimerJob.lock_owner).where(_claimable(now))
        query = query.order_by(TimerJob.due_at, TimerJob.id).limit(batch)
        if not is_sqlite(session):
            query = query.with_for_update(skip_locked=True)
        candidates = {row.id: row.lock_owner for row in session.execute(query)}
        if not candidates:
            return [], 0
        taken_over = TimerJob.lock_owner.is_not(None)  # the previous holder never finished
        rows = session.execute(
            update(TimerJob)
            .where(TimerJob.id.in_(list(candidates)), _claimable(now))
            .values(
                lock_owner=owner,
                lock_expires_at=now + dt.timedelta(seconds=settings.timer_lease_seconds),
                attempts=case((taken_over, TimerJob.attempts + 1), else_=TimerJob.attempts),
                last_error=case(
                    (taken_over, literal(TAKEOVER_ERROR, String) + TimerJob.lock_owner),
                    else_=TimerJob.last_error,
                ),
            )
            .returning(
                TimerJob.id, TimerJob.instance_id, TimerJob.hazard_id, TimerJob.attempts, TimerJob.due_at
            )
            .execution_options(synchronize_session=False)
        ).all()
        rows = sorted(rows, key=lambda row: (row.due_at, row.id))  # RETURNING has no order
        claimed = [
            Claimed(row.id, row.instance_id, row.hazard_id, row.attempts, candidates[row.id]) for row in rows
        ]
        exhausted = [c for c in claimed if c.previous_owner and c.attempts >= settings.timer_max_attempts]
        for job in exhausted:
            error = (
                f"租约 {job.attempts} 次过期：触发它的 worker 都未能完成（最后一个：{job.previous_owner}）"
            )
            logger.error("timer job %s: %s", job.id, error)
            _bury(session, job, error=error, now=now)
    return [c for c in claimed if c not in exhausted], len(exhausted)


def release(sessions: sessionmaker[Session], ids: Sequence[int], *, owner: str) -> int:
    """Hand claimed, unfired jobs back (claimable at once, no attempt counted)."""
    if not ids:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(TimerJob)
            .where(TimerJob.id.in_(list(ids)), TimerJob.state == WAITING, TimerJob.lock_owner == owner)
            .values(lock_owner=None, lock_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


# --- fire and record -------------------------------------------------------------------------------


def _bury(session: Session, job: Claimed, *, error: str, now: dt.datetime) -> None:
    """Mark the job dead and raise its incident (the caller checked the lease is ours)."""
    session.execute(
        update(TimerJob)
        .where(TimerJob.id == job.id)
        .values(
            state=DEAD,
            attempts=job.attempts,
            last_error=error[:ERROR_LIMIT],
            lock_owner=None,
            lock_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        insert(Incident).values(
            timer_job_id=job.id,
            instance_id=job.instance_id,
            hazard_id=job.hazard_id,
            error=error[:ERROR_LIMIT],
            attempts=job.attempts,
            state=IncidentState.OPEN.value,
            created_at=now,
        )
    )


def _record_failure(
    session: Session, settings: Settings, job: Claimed, error: str, *, owner: str, now: dt.datetime
) -> str | None:
    """Count a failed attempt: backoff, or dead + incident after the last one.

    Returns the job's new state, or None if the lease had passed to another owner meanwhile
    (then that owner's outcome counts, not ours).
    """
    attempts = job.attempts + 1
    ours = session.execute(
        select(TimerJob.id)
        .where(TimerJob.id == job.id, TimerJob.state == WAITING, TimerJob.lock_owner == owner)
        .with_for_update()
    ).first()
    if ours is None:
        logger.warning("timer job %s: lease lost before its failure was recorded", job.id)
        return None
    if attempts >= settings.timer_max_attempts:
        logger.error("timer job %s dead after %s attempts: %s", job.id, attempts, error)
        _bury(session, Claimed(job.id, job.instance_id, job.hazard_id, attempts, None), error=error, now=now)
        return DEAD
    session.execute(
        update(TimerJob)
        .where(TimerJob.id == job.id)
        .values(
            attempts=attempts,
            last_error=error[:ERROR_LIMIT],
            available_at=now + backoff(settings, attempts),
            lock_owner=None,
            lock_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return WAITING


def _describe(exc: BaseException) -> str:
    cause = bpmn.unwrap_error(exc)
    return f"{type(cause).__name__}: {cause}"


def fire(
    sessions: sessionmaker[Session], ctx: EngineContext, job: Claimed, *, owner: str
) -> tuple[str, bool]:
    """Fire one claimed job; returns (its state afterwards, whether this was a failed attempt).

    The state is ``fired`` or ``cancelled`` when the protocol settled the job, ``waiting`` after a
    failure with attempts left, ``dead`` after the last one, or ``""`` if the lease was lost.
    """
    settings = ctx.settings
    if settings.test_fire_delay_ms:
        time.sleep(settings.test_fire_delay_ms / 1000)
    try:
        with sessions.begin() as session:
            state = fire_timer(
                session, ctx, timer_job_id=job.id, hazard_id=job.hazard_id, instance_id=job.instance_id
            )
            if state != WAITING:
                return state, False
            # SpiffWorkflow did not fire a job that is due by our clock: count it as a failed
            # attempt (backoff, then an incident) rather than claim it again and again.
            row = session.get_one(TimerJob, job.id)
            now = ctx.clock.now()
            if row.lock_owner != owner:
                return WAITING, False
            if row.due_at > now:  # the projection moved it (e.g. an approved extension): not due yet
                row.lock_owner = None
                row.lock_expires_at = None
                return WAITING, False
            error = (
                f"到期未触发：流程实例 {job.instance_id} 中该定时器未被 SpiffWorkflow 触发"
                "（实例已结束，或定时器已不在等待？）"
            )
            logger.warning("timer job %s: %s", job.id, error)
            return _record_failure(session, settings, job, error, owner=owner, now=now) or "", True
    except Exception as exc:  # one broken instance must not stop the others
        logger.warning("timer job %s (attempt %s) failed", job.id, job.attempts + 1, exc_info=True)
        error = _describe(exc)
    with sessions.begin() as session:
        return _record_failure(session, settings, job, error, owner=owner, now=ctx.clock.now()) or "", True


# --- the loop --------------------------------------------------------------------------------------


@contextmanager
def _one_connection(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    """Sessions on one connection for a whole run (each still its own transaction), so firing a
    job does not check a connection out of the pool (and ping it) every time. A sessionmaker
    bound to a connection already (the tests' savepoint sessions) is used as it is."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        yield sessions
        return
    with bind.connect() as connection:
        yield sessionmaker(class_=sessions.class_, **{**sessions.kw, "bind": connection})


def _settled(sessions: sessionmaker[Session], job_id: int) -> str | None:
    """The state of a job that is no longer waiting (fired beside a sibling), else None."""
    with sessions() as session:
        state = session.scalar(select(TimerJob.state).where(TimerJob.id == job_id))
    return None if state == WAITING else (state or "")


def run_due(
    sessions: sessionmaker[Session],
    ctx: EngineContext,
    *,
    owner: str | None = None,
    batch: int | None = None,
    limit: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Claim and fire due timer jobs until none are left (or ``limit`` were claimed).

    Claims ``batch`` (default ``timer_batch``) at a time and claims again at once while claims come
    back full, so a backlog is worked off without waiting for the next tick. ``should_stop`` is
    checked before each firing: when it says so, the rest of the claim is handed back.

    When a claim holds several jobs of one instance (timers that fell due together, e.g. after an
    outage), the first firing fires them all: the others are only checked, not run through the
    protocol again.

    :raises sqlalchemy.exc.OperationalError: the database is unreachable (leases of jobs claimed
        before the failure expire and the jobs are claimed again).
    """
    settings = ctx.settings
    owner = owner or new_owner("run-due")
    batch = batch or settings.timer_batch
    stop = should_stop or (lambda: False)
    total = RunResult()
    with _one_connection(sessions) as bound:
        while not stop():
            size = batch if limit is None else min(batch, limit - total.due)
            if size <= 0:
                break
            started = ctx.clock.now()
            claimed, buried = claim(bound, settings, owner=owner, batch=size, now=started)
            fire_until = started + dt.timedelta(seconds=settings.timer_lease_seconds * LEASE_SHARE)
            counts = {"fired": 0, "failed": 0, "dead": buried, "cancelled": 0}
            released = 0
            protocol_ran: set[int] = set()
            for index, job in enumerate(claimed):
                if stop() or (index > 0 and ctx.clock.now() >= fire_until):
                    released = release(bound, [c.id for c in claimed[index:]], owner=owner)
                    break
                state = _settled(bound, job.id) if job.instance_id in protocol_ran else None
                failed = False
                if state is None:
                    state, failed = fire(bound, ctx, job, owner=owner)
                    protocol_ran.add(job.instance_id)
                if state == FIRED:
                    counts["fired"] += 1
                elif state == DEAD:
                    counts["dead"] += 1
                elif failed:
                    counts["failed"] += 1 if state == WAITING else 0
                elif state not in (WAITING, ""):
                    counts["cancelled"] += 1
            total = total + RunResult(
                due=len(claimed) + buried,
                released=released,
                reclaimed=sum(1 for c in claimed if c.previous_owner) + buried,
                batches=1,
                **counts,
            )
            if len(claimed) + buried < size or released:
                break  # nothing more due right now (or we are stopping / running late: next tick)
    return total


# --- incidents ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentRow:
    """An incident with its timer job and the hazard it belongs to."""

    incident: Incident
    job: TimerJob
    hazard_number: str
    hazard_title: str


def list_incidents(
    session: Session, *, state: str | None = IncidentState.OPEN.value, limit: int = 500
) -> list[IncidentRow]:
    """Incidents in ``state`` (default: open, i.e. their job is still dead; None: all), newest first."""
    query = (
        select(Incident, TimerJob, Hazard.number, Hazard.title)
        .join(TimerJob, TimerJob.id == Incident.timer_job_id)
        .join(Hazard, Hazard.id == Incident.hazard_id)
        .order_by(Incident.id.desc())
        .limit(limit)
    )
    if state is not None:
        query = query.where(Incident.state == state)
    return [IncidentRow(i, job, number, title) for i, job, number, title in session.execute(query)]


def count_open_incidents(session: Session) -> int:
    return (
        session.scalar(select(func.count(Incident.id)).where(Incident.state == IncidentState.OPEN.value)) or 0
    )


def retry_incident(
    session: Session, *, incident_id: int, now: dt.datetime, by_user_id: int | None = None
) -> Incident:
    """Put an incident's dead job back in the queue: waiting, no attempts, claimable now.

    The incident is marked retried (when, by whom). The next worker tick fires the job through the
    instance protocol, where SpiffWorkflow still decides whether the timer is due; its
    ``last_error`` is kept for the record until then. Should it fail again, it dies again after
    its last attempt and raises a new incident.

    :raises NotFound: no such incident.
    :raises Conflict: the incident was retried already (or its job is no longer dead).
    """
    incident = session.get(Incident, incident_id, with_for_update=True, populate_existing=True)
    if incident is None:
        raise NotFound("故障事件", incident_id)
    if incident.state != IncidentState.OPEN.value:
        raise Conflict(
            f"故障事件 {incident_id} 已重试过，无需再次重试（其定时任务为 {incident.timer_job_id}）"
        )
    job = session.get_one(TimerJob, incident.timer_job_id, with_for_update=True, populate_existing=True)
    if job.state != DEAD:
        raise Conflict(
            f"故障事件 {incident_id} 的定时任务 {job.id} 当前为 {job.state}，不是失败状态，无需重试"
        )
    incident.state = IncidentState.RETRIED.value
    incident.resolved_at = now
    incident.resolved_by_id = by_user_id
    job.state = WAITING
    job.attempts = 0
    job.available_at = now
    job.lock_owner = None
    job.lock_expires_at = None
    session.flush()
    return incident
