"""Designs departments edit without a programmer: form versions, working drafts, the design log.

Diagrams are :class:`~engine.models.DefinitionVersion` rows and policy profiles are
:class:`~engine.models.PolicyProfile` rows; task forms get their own immutable versions here.
A *scope* is a sector code, or ``None`` for the national artefact (system administrators only);
``scope`` columns hold the sector code or ``"*"`` (national) so unique keys work on every database.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow

NATIONAL_SCOPE = "*"


def scope_of(sector_code: str | None) -> str:
    """The ``scope`` column value of a sector code (``None``: national)."""
    return sector_code if sector_code is not None else NATIONAL_SCOPE


class FormVersion(Base):
    """One published version of a task form in one scope; immutable, pinned to instances by id.

    ``content`` is the form definition document (:func:`engine.forms.parse_form_definition`);
    versions count per (form_key, scope). A sector's version overrides the national one for
    hazards of that sector started after it was published.
    """

    __tablename__ = "form_version"
    __table_args__ = (UniqueConstraint("form_key", "scope", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    form_key: Mapped[str] = mapped_column(String(100), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]]
    #: sha256 of the canonical JSON of content: republishing unchanged content is a no-op
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    note: Mapped[str | None] = mapped_column(Text)


class DesignDraft(Base):
    """The working copy of one artefact in one scope, shared by the scope's administrators.

    ``kind`` is ``diagram`` (content: BPMN XML, ``key`` the process id), ``form`` (content: the
    form document as JSON text) or ``policy`` (content: the policy document as JSON text, ``key``
    the profile key). ``revision`` rises with every save: a save naming an older revision is a
    conflict, so two administrators never overwrite each other silently. ``base_version`` is the
    published version the draft started from (``None``: a new artefact).
    """

    __tablename__ = "design_draft"
    __table_args__ = (UniqueConstraint("kind", "key", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    content: Mapped[str] = mapped_column(Text)
    base_version: Mapped[int | None] = mapped_column(Integer)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))


class DesignEvent(Base):
    """The design audit log: every draft save, discard, import and publish, by whom and when.

    ``action``: ``draft_saved``, ``draft_discarded``, ``imported``, ``published``, ``refused``
    (a publish the gate turned down; ``details`` holds the errors), ``bound``.
    """

    __tablename__ = "design_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    action: Mapped[str] = mapped_column(String(24))
    version: Mapped[int | None] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    at: Mapped[datetime.datetime] = mapped_column(default=utcnow, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None]
