"""Notifiers: deliver the outbox the engine writes, on the channels the settings enable.

The engine adds ``outbox_message`` rows in the same transaction as the state change they announce
(:mod:`engine.outbox`); :func:`notifiers.dispatcher.dispatch_due`, run by the worker, claims due
rows with a short lease, renders them (:mod:`notifiers.rendering`), sends them outside any
database transaction and records the outcome: sent, retry later with exponential backoff, or dead
after the last attempt. Delivery is at least once; every message carries its idempotency key
(``Message-ID`` for e-mail, an ``Idempotency-Key`` header over HTTP, a unique row in-app) so a
receiver can drop a redelivery.

One module per channel, each a :class:`Channel`: :mod:`~notifiers.inapp`, :mod:`~notifiers.email`,
:mod:`~notifiers.webhook`, :mod:`~notifiers.sms`, :mod:`~notifiers.console`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One rendered message for one recipient on one channel (what a :class:`Channel` sends)."""

    id: int
    #: deterministic per (event, recipient, channel); receivers dedupe on it.
    idempotency_key: str
    kind: str
    channel: str
    #: e-mail address, mobile number, webhook URL, user id (in-app) or username (console)
    recipient_address: str
    recipient_user_id: int | None
    hazard_id: int | None
    subject: str
    body: str
    #: one short line (SMS text, console)
    summary: str
    facts: Mapping[str, Any] = field(default_factory=dict)


class Channel(Protocol):
    """A way to reach people. ``send`` returns once the receiver accepted the message.

    :raises DeliveryError: the receiver is unreachable or refused for now (the message is retried).
    :raises PermanentDeliveryError: the message can never be delivered as it is (dead at once).
    """

    def send(self, message: OutgoingMessage) -> None: ...


class DeliveryError(Exception):
    """Delivery failed for now: connection refused, timeout, 5xx, 429 …; the dispatcher retries."""


class PermanentDeliveryError(DeliveryError):
    """Delivery can never succeed as the message stands (bad address, 4xx, unrenderable template)."""


__all__ = ["Channel", "DeliveryError", "OutgoingMessage", "PermanentDeliveryError"]
