"""Deployed process definitions: one row per (process key, version), spec stored once."""

from __future__ import annotations

import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow


class DefinitionVersion(Base):
    __tablename__ = "definition_version"
    __table_args__ = (
        UniqueConstraint("process_key", "version"),
        UniqueConstraint("process_key", "content_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    source_filename: Mapped[str] = mapped_column(String(255))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    #: the serialized SpiffWorkflow spec (JSON), stored once per version, never per instance.
    spec_json: Mapped[str] = mapped_column(Text)
    deployed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    deployed_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500))


class DefinitionBinding(Base):
    """Which process new hazards of a grade (and optionally a sector) start on."""

    __tablename__ = "definition_binding"
    __table_args__ = (UniqueConstraint("grade", "sector_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grade: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    process_key: Mapped[str] = mapped_column(String(100))
    #: pinned version; None means the latest deployed version of ``process_key``.
    definition_version_id: Mapped[int | None] = mapped_column(ForeignKey("definition_version.id"))
