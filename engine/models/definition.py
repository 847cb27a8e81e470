"""Deployed process definitions: one row per (process key, version), spec stored once."""

from __future__ import annotations

import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .org import Region


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
    #: the sector whose lead department owns (may change) this process; None: national (系统管理员)
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))


class DefinitionBinding(Base):
    """Which process new hazards of a grade start on, optionally only in a sector and/or region.

    The most specific binding wins (:func:`engine.definitions.resolve_definition`): sector and
    region (the nearest region up the hazard's path), sector only, region only, the grade's default.
    """

    __tablename__ = "definition_binding"
    __table_args__ = (UniqueConstraint("grade", "sector_code", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grade: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    process_key: Mapped[str] = mapped_column(String(100))
    #: pinned version; None means the latest deployed version of ``process_key``.
    definition_version_id: Mapped[int | None] = mapped_column(ForeignKey("definition_version.id"))

    region: Mapped[Region | None] = relationship(lazy="joined")


class DefinitionBindingHistory(Base):
    """One change of a binding (bind, rebind, rollback): who, when, from what to what.

    The binding is identified by its key (grade, sector, region), not by its row, because a
    rollback of the binding's creation deletes the row. ``effective_version_id`` is the version
    new hazards started on after the change (a binding that follows the latest version records
    the version that was latest then), so a rollback restores exactly what ran before.
    Published versions are never deleted; where a test or an operator deletes one anyway, the
    history rows naming it go with it (``ON DELETE CASCADE``).
    """

    __tablename__ = "definition_binding_history"
    __table_args__ = (Index("ix_definition_binding_history_key", "grade", "sector_code", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grade: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    #: ``bind`` or ``rollback``
    action: Mapped[str] = mapped_column(String(16))
    #: the binding after the change (process key None: the binding was removed)
    process_key: Mapped[str | None] = mapped_column(String(100))
    definition_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_version.id", name="fk_binding_history_version", ondelete="CASCADE")
    )
    effective_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_version.id", name="fk_binding_history_effective", ondelete="CASCADE")
    )
    #: the binding before the change (process key None: there was none)
    previous_process_key: Mapped[str | None] = mapped_column(String(100))
    previous_definition_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_version.id", name="fk_binding_history_previous_version", ondelete="CASCADE")
    )
    previous_effective_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_version.id", name="fk_binding_history_previous_effective", ondelete="CASCADE")
    )
    #: for a rollback: the change it undid
    undoes_id: Mapped[int | None] = mapped_column(
        ForeignKey("definition_binding_history.id", name="fk_binding_history_undoes", ondelete="SET NULL")
    )
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    changed_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(String(500))
