"""Form content lives here, not in SpiffWorkflow's task data (DESIGN §2)."""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow


class TaskSubmission(Base):
    """A completed (or drafted) form for a work item, or a side action such as a progress update."""

    __tablename__ = "task_submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_item.id"), index=True)
    form_key: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]]
    is_draft: Mapped[bool] = mapped_column(Boolean, default=False)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    submitted_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class ExtensionState(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class ExtensionRequest(Base):
    """延期申请: approved requests move the real timers (DESIGN §2)."""

    __tablename__ = "extension_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    requested_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    old_deadline: Mapped[datetime.datetime | None]
    new_deadline: Mapped[datetime.datetime]
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=ExtensionState.PENDING.value)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_at: Mapped[datetime.datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
