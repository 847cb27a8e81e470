"""Process instances: the serialized workflow (without its spec) plus an optimistic-lock version."""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .definition import DefinitionVersion


class InstanceStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class InstanceKind(enum.StrEnum):
    """A hazard's rectification loop, and its 挂牌督办 track (processes/supervision.bpmn)."""

    LOOP = "loop"
    SUPERVISION = "supervision"


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_process_instance_hazard_kind", "hazard_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_version.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=InstanceKind.LOOP.value, server_default="loop")
    status: Mapped[str] = mapped_column(String(32), default=InstanceStatus.RUNNING.value)
    #: zlib-compressed JSON of the workflow with ``spec``/``subprocess_specs`` stripped.
    state: Mapped[bytes] = mapped_column(LargeBinary)
    serializer_version: Mapped[str] = mapped_column(String(16))
    #: compare-and-set counter (DESIGN §4 step 5).
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: head of the per-instance audit chain (written under the instance lock).
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime.datetime | None]
    #: form versions pinned at start, ``{form_key: form_version id}`` (missing key: the shipped file)
    form_pins: Mapped[dict[str, Any] | None]

    definition_version: Mapped[DefinitionVersion] = relationship(lazy="joined")

    __mapper_args__ = {"version_id_col": version}
