"""TimerJob: one per waiting timer, with its absolute due time and lease fields (DESIGN §6).

A job stays ``waiting`` while a worker holds it: the lease is ``lock_owner`` + ``lock_expires_at``
(the runtime's projection only knows waiting jobs, and marks the one it fires ``fired``). A job
is claimable when it is waiting, due, past its backoff (``available_at``) and not leased, or its
lease expired (see :mod:`engine.scheduler`).
"""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base


class TimerJobState(enum.StrEnum):
    WAITING = "waiting"
    FIRED = "fired"
    CANCELLED = "cancelled"
    DEAD = "dead"


class TimerJob(Base):
    __tablename__ = "timer_job"
    __table_args__ = (
        UniqueConstraint("instance_id", "spiff_task_id"),
        Index("ix_timer_job_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"))
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    timer_key: Mapped[str] = mapped_column(String(100))  # BPMN element id of the timer event
    due_at: Mapped[datetime.datetime]
    state: Mapped[str] = mapped_column(String(16), default=TimerJobState.WAITING.value)
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[datetime.datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: not claimed before this instant (the backoff after a failed attempt); None: as soon as due.
    available_at: Mapped[datetime.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    fired_at: Mapped[datetime.datetime | None]
