"""Policy profiles: deadline rules and escalation offsets as versioned data (DESIGN §6, DOMAIN §9.3)."""

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
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .org import Region


class PolicyProfile(Base):
    """One version of a policy profile; versions are immutable and an instance pins one by id.

    ``sector_code`` and ``region_id`` say where the profile applies (both empty: the national
    default). ``content`` is ``{"title": str, "extends": {"key", "version"} | None,
    "overrides": [names], "values": {name: {"value", "unit", "source", "label"[, "note"]}}}``;
    see :mod:`engine.policy`.
    """

    __tablename__ = "policy_profile"
    __table_args__ = (UniqueConstraint("key", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    sector_code: Mapped[str | None] = mapped_column(ForeignKey("sector.code"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]]
    #: sha256 of the canonical JSON of (sector, region, content): unchanged content keeps its version.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    note: Mapped[str | None] = mapped_column(Text)

    region: Mapped[Region | None] = relationship(lazy="joined")
