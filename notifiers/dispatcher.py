"""The dispatcher: claim due outbox rows, deliver them outside any transaction, record the outcome.

One :func:`dispatch_due` call (the worker runs one each tick):

1. **claim** — one short, committed transaction takes up to ``batch`` due rows (pending and due, or
   leased by someone whose lease expired) and leases them to ``owner`` until now +
   ``notify_lease_seconds``: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, and on SQLite (whose
   ``BEGIN IMMEDIATE`` already serialises writers) the ``UPDATE … WHERE <still due>`` compare-and-set
   that both databases run;
2. **send** — each message is rendered and handed to its channel with no transaction open;
3. **record** — one short transaction per message: sent; or attempts + 1 and the next attempt after
   ``min(cap, base · 2^(attempts-1))`` seconds; or dead once ``notify_max_attempts`` are used up or
   the failure is permanent (:class:`~notifiers.PermanentDeliveryError`).

A dispatcher that dies between 1 and 3 loses nothing: its lease expires and the rows are claimed
again. Delivery is therefore at least once, and every delivery of a message carries the same
idempotency key. Several dispatchers may run at once; a row is leased to one of them at a time.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine.clock import Clock
from engine.clock import SystemClock
from engine.config import Settings
from engine.db import is_sqlite
from engine.errors import Conflict
from engine.errors import NotFound
from engine.models import OutboxMessage
from engine.models import OutboxState

from . import Channel
from . import DeliveryError
from . import OutgoingMessage
from . import PermanentDeliveryError
from .console import ConsoleChannel
from .email import EmailChannel
from .inapp import InAppChannel
from .rendering import RenderError
from .rendering import render
from .sms import SmsChannel
from .webhook import WebhookChannel

logger = logging.getLogger(__name__)

PENDING = OutboxState.PENDING.value
LEASED = OutboxState.LEASED.value
SENT = OutboxState.SENT.value
DEAD = OutboxState.DEAD.value


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """What one :func:`dispatch_due` call did."""

    claimed: int = 0
    sent: int = 0
    #: failed for now, next attempt scheduled
    retried: int = 0
    dead: int = 0
    #: claimed but handed back unsent because the lease was running out
    released: int = 0
    #: among ``claimed``: rows whose previous holder's lease had expired
    reclaimed: int = 0


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    idempotency_key: str
    kind: str
    channel: str
    recipient_address: str
    recipient_user_id: int | None
    hazard_id: int | None
    payload: dict[str, Any]
    attempts: int
    was_leased: bool


@dataclass(frozen=True, slots=True)
class _Outcome:
    subject: str | None = None
    error: str | None = None
    permanent: bool = False


def build_channels(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Channel]:
    """One channel object per name in ``settings.notify_channels``.

    :raises ValueError: a channel lacks its configuration (e.g. sms without a URL template).
    """
    channels: dict[str, Channel] = {}
    for name in settings.notify_channels:
        if name == "inapp":
            channels[name] = InAppChannel(sessions)
        elif name == "email":
            channels[name] = EmailChannel.from_settings(settings)
        elif name == "webhook":
            channels[name] = WebhookChannel.from_settings(settings)
        elif name == "sms":
            channels[name] = SmsChannel.from_settings(settings)
        elif name == "console":
            channels[name] = ConsoleChannel()
        else:
            raise ValueError(f"unknown notification channel {name!r}")
    return channels


def backoff(settings: Settings, attempts: int) -> dt.timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: base · 2^(attempts-1), capped."""
    seconds = settings.notify_backoff_base_seconds * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.notify_backoff_cap_seconds))


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(OutboxMessage.state == PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.state == LEASED, OutboxMessage.lock_expires_at < now),
    )


def _claim(
    sessions: sessionmaker[Session], settings: Settings, *, owner: str, batch: int, now: dt.datetime
) -> list[_Claimed]:
    with sessions.begin() as session:
        query = (
            select(OutboxMessage.id, OutboxMessage.state)
            .where(_due(now))
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(batch)
        )
        if not is_sqlite(session):
            query = query.with_for_update(skip_locked=True)
        candidates = {row.id: row.state for row in session.execute(query)}
        if not candidates:
            return []
        # compare-and-set: only rows still due are taken (and reported back by RETURNING)
        rows = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(list(candidates)), _due(now))
            .values(
                state=LEASED,
                lock_owner=owner,
                lock_expires_at=now + dt.timedelta(seconds=settings.notify_lease_seconds),
            )
            .returning(
                OutboxMessage.id,
                OutboxMessage.idempotency_key,
                OutboxMessage.kind,
                OutboxMessage.channel,
                OutboxMessage.recipient_address,
                OutboxMessage.recipient_user_id,
                OutboxMessage.hazard_id,
                OutboxMessage.payload,
                OutboxMessage.attempts,
            )
            .execution_options(synchronize_session=False)
        ).all()
    claimed = [
        _Claimed(
            id=row.id,
            idempotency_key=row.idempotency_key,
            kind=row.kind,
            channel=row.channel,
            recipient_address=row.recipient_address,
            recipient_user_id=row.recipient_user_id,
            hazard_id=row.hazard_id,
            payload=dict(row.payload),
            attempts=row.attempts,
            was_leased=candidates[row.id] == LEASED,
        )
        for row in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def _deliver(claimed: _Claimed, channels: Mapping[str, Channel], settings: Settings) -> _Outcome:
    channel = channels.get(claimed.channel)
    if channel is None:
        return _Outcome(error=f"通道 {claimed.channel} 未在本进程启用 (HAZARDLOOP_NOTIFY_CHANNELS)")
    try:
        rendered = render(claimed.kind, claimed.payload, settings)
    except RenderError as exc:
        return _Outcome(error=str(exc), permanent=True)
    message = OutgoingMessage(
        id=claimed.id,
        idempotency_key=claimed.idempotency_key,
        kind=claimed.kind,
        channel=claimed.channel,
        recipient_address=claimed.recipient_address,
        recipient_user_id=claimed.recipient_user_id,
        hazard_id=claimed.hazard_id,
        subject=rendered.subject,
        body=rendered.body,
        summary=rendered.summary,
        facts=claimed.payload,
    )
    try:
        channel.send(message)
    except PermanentDeliveryError as exc:
        return _Outcome(subject=rendered.subject, error=f"{type(exc).__name__}: {exc}", permanent=True)
    except DeliveryError as exc:
        return _Outcome(subject=rendered.subject, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a channel bug must not lose the message: retry it, keep the cause
        logger.exception("notification %s: channel %s failed", claimed.id, claimed.channel)
        return _Outcome(subject=rendered.subject, error=f"{type(exc).__name__}: {exc}")
    return _Outcome(subject=rendered.subject)


def _record(
    sessions: sessionmaker[Session],
    settings: Settings,
    claimed: _Claimed,
    outcome: _Outcome,
    *,
    owner: str,
    now: dt.datetime,
) -> str | None:
    """Store the outcome; returns the new state, or None if the lease had passed to another owner."""
    attempts = claimed.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "lock_owner": None, "lock_expires_at": None}
    condition: ColumnElement[bool]
    if outcome.subject is not None:
        values["subject"] = outcome.subject[:300]
    if outcome.error is None:
        values.update(state=SENT, sent_at=now, last_error=None)
        # delivered: record it even if our lease ran out meanwhile (saves a redelivery)
        condition = OutboxMessage.state.in_((PENDING, LEASED))
    else:
        dead = outcome.permanent or attempts >= settings.notify_max_attempts
        values.update(state=DEAD if dead else PENDING, last_error=outcome.error[:2000])
        if not dead:
            values["next_attempt_at"] = now + backoff(settings, attempts)
        condition = and_(OutboxMessage.state == LEASED, OutboxMessage.lock_owner == owner)
    with sessions.begin() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == claimed.id, condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            logger.warning("notification %s: lease lost before its outcome was recorded", claimed.id)
            return None
    return str(values["state"])


def _release(sessions: sessionmaker[Session], ids: Sequence[int], *, owner: str) -> int:
    """Hand unsent claimed rows back (due at once, no attempt counted)."""
    if not ids:
        return 0
    with sessions.begin() as session:
        result = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.state == LEASED,
                OutboxMessage.lock_owner == owner,
            )
            .values(state=PENDING, lock_owner=None, lock_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def dispatch_due(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    owner: str,
    batch: int = 100,
    channels: Mapping[str, Channel] | None = None,
    clock: Clock | None = None,
) -> DispatchResult:
    """Claim up to ``batch`` due messages for ``owner``, deliver them and record each outcome.

    Channel failures never lose a message: it is retried with backoff, or dead-lettered.

    :param channels: channel objects by name (default: :func:`build_channels` from ``settings``).
    :raises sqlalchemy.exc.OperationalError: the database is unreachable (the caller's next tick
        tries again; leases of rows claimed before the failure expire).
    """
    clock = clock or SystemClock()
    if channels is None:
        channels = build_channels(settings, sessions)
    started = clock.now()
    claimed = _claim(sessions, settings, owner=owner, batch=batch, now=started)
    # stop sending while the lease still covers a slow send, so no one else takes a row we send
    send_until = started + dt.timedelta(
        seconds=max(settings.notify_lease_seconds - settings.notify_timeout_seconds * 2, 0)
    )
    counts = {SENT: 0, PENDING: 0, DEAD: 0}
    released = 0
    for index, item in enumerate(claimed):
        if clock.now() >= send_until and index > 0:
            released = _release(sessions, [c.id for c in claimed[index:]], owner=owner)
            break
        outcome = _deliver(item, channels, settings)
        if outcome.error is not None:
            logger.warning(
                "notification %s (%s to %s) failed: %s",
                item.id,
                item.channel,
                item.recipient_address,
                outcome.error,
            )
        state = _record(sessions, settings, item, outcome, owner=owner, now=clock.now())
        if state is not None:
            counts[state] += 1
    return DispatchResult(
        claimed=len(claimed),
        sent=counts[SENT],
        retried=counts[PENDING],
        dead=counts[DEAD],
        released=released,
        reclaimed=sum(1 for c in claimed if c.was_leased),
    )


# --- administration (``hazardloop notifications …``) ------------------------------------------------


def list_messages(session: Session, *, state: str | None = None, limit: int = 50) -> Sequence[OutboxMessage]:
    """The newest outbox messages, optionally only those in ``state``."""
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if state is not None:
        query = query.where(OutboxMessage.state == state)
    return session.scalars(query).all()


def retry_message(session: Session, message_id: int, *, now: dt.datetime) -> OutboxMessage:
    """Make a dead (or waiting) message due now with a fresh set of attempts.

    :raises NotFound: no such message.
    :raises Conflict: it was already sent, or a dispatcher holds it right now.
    """
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None:
        raise NotFound("通知", message_id)
    if message.state == SENT:
        raise Conflict(f"通知 {message_id} 已发送，无需重试")
    if message.state == LEASED and message.lock_expires_at is not None and message.lock_expires_at > now:
        raise Conflict(f"通知 {message_id} 正在发送中")
    message.state = PENDING
    message.attempts = 0
    message.next_attempt_at = now
    message.lock_owner = None
    message.lock_expires_at = None
    return message
