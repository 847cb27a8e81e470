"""Escalation notices (督办文书): one numbered document per escalation (DESIGN §6, DOMAIN §4).

A notice is issued once (``dedupe_key`` is unique), numbered per issuing body, kind and year
(文号, unique), rendered when issued and never re-rendered: ``title``, ``body_html`` and the
``facts`` it was rendered from are immutable (an update that changes them is refused before it
reaches the database). Only its status moves: issued → acknowledged → responded → closed.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import event
from sqlalchemy import inspect
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from .hazard import Hazard


class NoticeStatus(enum.StrEnum):
    ISSUED = "issued"  # 已签发
    ACKNOWLEDGED = "acknowledged"  # 已签收
    RESPONDED = "responded"  # 已回复
    CLOSED = "closed"  # 已办结


NOTICE_STATUS_LABELS = {
    NoticeStatus.ISSUED: "已签发",
    NoticeStatus.ACKNOWLEDGED: "已签收",
    NoticeStatus.RESPONDED: "已回复",
    NoticeStatus.CLOSED: "已办结",
}

#: columns fixed when the notice is issued (the document as sent)
IMMUTABLE_COLUMNS = (
    "hazard_id",
    "instance_id",
    "rung",
    "kind",
    "level",
    "trigger",
    "dedupe_key",
    "issuer_key",
    "issuer_name",
    "issuer_abbreviation",
    "year",
    "sequence",
    "document_number",
    "enterprise_id",
    "target_departments",
    "recipients",
    "title",
    "body_html",
    "facts",
    "due_at",
    "issued_at",
    "response_due_at",
    "meeting_at",
    "place",
)


class Notice(Base):
    __tablename__ = "notice"
    __table_args__ = (
        UniqueConstraint("issuer_key", "year", "kind", "sequence"),
        Index("ix_notice_hazard_issued", "hazard_id", "issued_at"),
        Index("ix_notice_status_issued", "status", "issued_at"),
        Index("ix_notice_issuer_year", "issuer_key", "year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"))
    #: the process instance whose audit chain records the notice and its status changes
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"))
    #: the ladder rung (``engine.policy.RUNG_KEYS``); None for a notice issued outside the ladder
    rung: Mapped[str | None] = mapped_column(String(32))
    #: ``engine.policy.NOTICE_KINDS`` key
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer)
    #: ``engine.policy.TRIGGERS`` key (``overdue`` for the timer rungs)
    trigger: Mapped[str] = mapped_column(String(32))
    #: e.g. ``instance:42:circular``: a second notice for the same occasion is impossible
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    #: ``dept:7``, ``office:region:5``, ``committee:region:5``, ``government:region:5``
    issuer_key: Mapped[str] = mapped_column(String(64))
    issuer_name: Mapped[str] = mapped_column(String(100))
    issuer_abbreviation: Mapped[str] = mapped_column(String(32))
    #: the year of the 文号 (business time)
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    #: 文号, e.g. 郎应急函〔2026〕3号
    document_number: Mapped[str] = mapped_column(String(100), unique=True)
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    #: names of the departments the notice is addressed to or copied to (lead, co-responsible)
    target_departments: Mapped[list[Any]]
    #: ``[{"key": RECIPIENTS key, "label": 中文, "name": resolved name}]``
    recipients: Mapped[list[Any]]
    title: Mapped[str] = mapped_column(String(300))
    #: rendered once, at issue (sandboxed template, autoescaped)
    body_html: Mapped[str] = mapped_column(Text)
    #: the snapshot the body was rendered from
    facts: Mapped[dict[str, Any]]
    #: when the rung fell due (may be earlier than issued_at after an outage: catch-up)
    due_at: Mapped[datetime.datetime | None]
    issued_at: Mapped[datetime.datetime]
    #: written response or publication deadline (约谈: the meeting time)
    response_due_at: Mapped[datetime.datetime | None]
    meeting_at: Mapped[datetime.datetime | None]
    place: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=NoticeStatus.ISSUED.value)
    acknowledged_at: Mapped[datetime.datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    response_text: Mapped[str | None] = mapped_column(Text)
    responded_at: Mapped[datetime.datetime | None]
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    closed_at: Mapped[datetime.datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    close_note: Mapped[str | None] = mapped_column(Text)

    hazard: Mapped[Hazard] = relationship()


@event.listens_for(Notice, "before_update")
def _refuse_changes_to_the_document(_mapper: Any, _connection: Any, target: Notice) -> None:
    state = inspect(target)
    changed = [name for name in IMMUTABLE_COLUMNS if state.attrs[name].history.has_changes()]
    if changed:
        raise ValueError(f"督办文书签发后不可修改: {', '.join(changed)}")
