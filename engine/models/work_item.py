"""WorkItem: one per ready human task, the projection every task list queries."""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .hazard import Hazard


class WorkItemState(enum.StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class WorkItem(Base):
    __tablename__ = "work_item"
    __table_args__ = (
        UniqueConstraint("instance_id", "spiff_task_id"),
        Index("ix_work_item_state_role", "state", "candidate_role"),
        Index("ix_work_item_assignee_state", "assignee_id", "state"),
        Index("ix_work_item_state_due", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    spiff_task_id: Mapped[str] = mapped_column(String(36))
    task_key: Mapped[str] = mapped_column(String(100))  # BPMN element id
    title: Mapped[str] = mapped_column(String(200))
    candidate_role: Mapped[str] = mapped_column(String(32))
    org_scope: Mapped[str] = mapped_column(String(32))  # enterprise | department | region
    form_key: Mapped[str] = mapped_column(String(100))
    #: the form version pinned to the instance for ``form_key`` (None: the shipped file form)
    form_version_id: Mapped[int | None] = mapped_column(ForeignKey("form_version.id"))
    delegable: Mapped[bool] = mapped_column(Boolean, default=True)
    #: ",rectify,fix_on_spot," — whoever completed one of these tasks may not do this one
    #: (验收人不得为整改人); kept here so task lists can leave such items out in SQL.
    separate_from: Mapped[str] = mapped_column(String(300), default="")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    claimed_at: Mapped[datetime.datetime | None]
    due_at: Mapped[datetime.datetime | None]
    state: Mapped[str] = mapped_column(String(16), default=WorkItemState.OPEN.value)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime.datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    completed_late: Mapped[bool] = mapped_column(Boolean, default=False)

    hazard: Mapped[Hazard] = relationship()
