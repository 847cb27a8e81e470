"""Firing due timers: ``hazardloop timers run-due`` and the worker tick use this.

Each due ``timer_job`` is only a trigger: firing runs the per-instance protocol, where
SpiffWorkflow decides under the instance lock whether the timer fires, so a timer fires once
however many callers race. (Leases, backoff and incidents for many workers: see the scheduler.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from . import bpmn
from .models import TimerJob
from .models import TimerJobState
from .runtime import EngineContext
from .runtime import fire_timer

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RunResult:
    due: int
    fired: int
    failed: int
    dead: int


def due_job_ids(session: Session, ctx: EngineContext, *, limit: int = 500) -> list[int]:
    now = ctx.clock.now()
    return list(
        session.scalars(
            select(TimerJob.id)
            .where(TimerJob.state == TimerJobState.WAITING.value, TimerJob.due_at <= now)
            .order_by(TimerJob.due_at, TimerJob.id)
            .limit(limit)
        )
    )


def run_due(sessions: sessionmaker[Session], ctx: EngineContext, *, limit: int = 500) -> RunResult:
    """Fire every due timer job, each in its own transaction; one failure never blocks the sweep."""
    with sessions() as session:
        ids = due_job_ids(session, ctx, limit=limit)
    fired = failed = dead = 0
    for job_id in ids:
        try:
            with sessions.begin() as session:
                state = fire_timer(session, ctx, timer_job_id=job_id)
            fired += state == TimerJobState.FIRED.value
        except Exception as exc:  # one broken instance must not block the sweep
            logger.exception("timer job %s failed", job_id)
            failed += 1
            cause = bpmn.unwrap_error(exc)
            with sessions.begin() as session:
                job = session.get(TimerJob, job_id)
                if job is not None and job.state == TimerJobState.WAITING.value:
                    job.attempts += 1
                    job.last_error = f"{type(cause).__name__}: {cause}"[:2000]
                    if job.attempts >= MAX_ATTEMPTS:
                        job.state = TimerJobState.DEAD.value
                        dead += 1
    return RunResult(due=len(ids), fired=fired, failed=failed, dead=dead)
