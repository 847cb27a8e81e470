"""The in-app channel: an ``in_app_notification`` row per message, written once per key."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine.clock import Clock
from engine.clock import SystemClock
from engine.models import InAppNotification

from . import OutgoingMessage
from . import PermanentDeliveryError


class InAppChannel:
    """Writes notifications shown in the web application, in its own short transaction.

    Idempotent on the message's key: a redelivery (a dispatcher that crashed after writing the row
    but before marking the message sent) finds the row and writes nothing.
    """

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def send(self, message: OutgoingMessage) -> None:
        if message.recipient_user_id is None:
            raise PermanentDeliveryError("站内通知需要接收用户")
        try:
            with self._sessions.begin() as session:
                if _exists(session, message.idempotency_key):
                    return
                session.add(
                    InAppNotification(
                        idempotency_key=message.idempotency_key,
                        user_id=message.recipient_user_id,
                        hazard_id=message.hazard_id,
                        kind=message.kind,
                        title=message.subject[:300],
                        body=message.body,
                        created_at=self._clock.now(),
                    )
                )
        except IntegrityError:
            # a concurrent delivery of the same message won the unique key: delivered once
            with self._sessions() as session:
                if not _exists(session, message.idempotency_key):
                    raise


def _exists(session: Session, key: str) -> bool:
    return (
        session.scalar(select(InAppNotification.id).where(InAppNotification.idempotency_key == key))
        is not None
    )
