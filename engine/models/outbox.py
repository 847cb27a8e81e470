"""Notifications: the outbox the engine writes, in-app notifications, and users' contact data.

The engine writes :class:`OutboxMessage` rows in the same transaction as the state change they
announce; ``notifiers`` claims and delivers them (at least once, each with its idempotency key).

``hazard_id`` columns here are plain indexed integers, not foreign keys: the outbox is a delivery
log that must never stand in the way of the rows it talks about.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow


class OutboxState(enum.StrEnum):
    PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
    LEASED = "leased"  # claimed by a dispatcher until lock_expires_at
    SENT = "sent"
    DEAD = "dead"  # gave up (max attempts, or a permanent failure); ``retry`` resurrects it


class OutboxMessage(Base):
    """One message for one recipient on one channel; rendered at dispatch time from ``kind`` + ``payload``."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_state_next_attempt", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: deterministic (``<instance>:<event seq>:<user>:<channel>``): a replay never duplicates,
    #: and it travels with the message (Message-ID, Idempotency-Key) so receivers can dedupe.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recipient_address: Mapped[str] = mapped_column(String(500))
    hazard_id: Mapped[int | None] = mapped_column(Integer, index=True)
    #: filled in when the message is rendered (for listings); the text itself is not stored.
    subject: Mapped[str | None] = mapped_column(String(300))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), default=OutboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[datetime.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime.datetime | None]


class InAppNotification(Base):
    """A notification shown in the web application (the ``inapp`` channel writes these)."""

    __tablename__ = "in_app_notification"
    __table_args__ = (Index("ix_in_app_notification_user_read", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the outbox message's key: delivering the same message twice writes one row.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    hazard_id: Mapped[int | None] = mapped_column(Integer, index=True)
    kind: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime.datetime | None]


class UserContact(Base):
    """Where a user is reached besides the web application, and on which channels.

    ``channels`` lists the channels the user wants (``["inapp", "email"]``); ``None`` means every
    channel the deployment enables. A channel without an address (no e-mail, no mobile) is skipped.
    """

    __tablename__ = "user_contact"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    mobile: Mapped[str | None] = mapped_column(String(32))
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    channels: Mapped[list[Any] | None] = mapped_column(JSON)
