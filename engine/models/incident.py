"""Incident: a timer job the scheduler gave up on after its last attempt (DESIGN §6).

One row per death of a job: the job is ``dead`` while its incident is ``open``; retrying the
incident (``hazardloop incidents retry ID`` or the admin page) marks it ``retried`` and puts the
job back in the queue. A job that dies again raises a new incident.
"""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow


class IncidentState(enum.StrEnum):
    OPEN = "open"  # the job is dead
    RETRIED = "retried"  # an administrator put the job back in the queue


class Incident(Base):
    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    timer_job_id: Mapped[int] = mapped_column(ForeignKey("timer_job.id"), index=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    #: the last attempt's error (exception type and message)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.OPEN.value)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime.datetime | None]
    #: who retried it (None: retried from the command line)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
