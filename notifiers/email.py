"""The e-mail channel: SMTP with a Message-ID derived from the message's idempotency key.

Every delivery of the same message carries the same ``Message-ID`` (and the key itself in
``X-Hazardloop-Idempotency-Key``), so mail systems and readers can recognise a redelivery.
Subject and body are UTF-8.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime

from engine.clock import Clock
from engine.clock import SystemClock
from engine.config import Settings

from . import DeliveryError
from . import OutgoingMessage
from . import PermanentDeliveryError

KEY_HEADER = "X-Hazardloop-Idempotency-Key"


def message_id(idempotency_key: str, domain: str) -> str:
    """``<hazardloop.12.5.3.email@domain>`` for key ``12:5:3:email``: stable across retries."""
    local = re.sub(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]", ".", idempotency_key).strip(".")
    return f"<hazardloop.{local}@{domain}>"


class EmailChannel:
    """Sends one e-mail per message through the configured SMTP server."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        tls: str = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._tls = tls
        self._username, self._password = username, password
        self._timeout = timeout
        self._clock = clock or SystemClock()
        self._domain = sender.rsplit("@", 1)[-1].strip(">").strip() or "localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.notify_timeout_seconds,
        )

    def build(self, message: OutgoingMessage) -> EmailMessage:
        """The e-mail for ``message``.

        :raises PermanentDeliveryError: the recipient address is not an e-mail address.
        """
        mail = EmailMessage(policy=SMTP_POLICY)
        mail["Subject"] = message.subject
        mail["From"] = self._sender
        try:
            name = str(message.facts.get("recipient_name") or "")
            mail["To"] = Address(display_name=name, addr_spec=message.recipient_address)
        except (ValueError, IndexError) as exc:
            raise PermanentDeliveryError(f"无效的邮箱地址: {message.recipient_address!r}") from exc
        mail["Date"] = format_datetime(self._clock.now())
        mail["Message-ID"] = message_id(message.idempotency_key, self._domain)
        mail[KEY_HEADER] = message.idempotency_key
        mail.set_content(message.body, charset="utf-8")
        return mail

    def send(self, message: OutgoingMessage) -> None:
        mail = self.build(message)
        try:
            if self._tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
            with smtp:
                if self._tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _msg in exc.recipients.values()]
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"收件人被拒绝: {exc.recipients}") from exc
            raise DeliveryError(f"收件人暂时被拒绝: {exc.recipients}") from exc
        except smtplib.SMTPDataError as exc:
            error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            raise (PermanentDeliveryError if exc.smtp_code >= 500 else DeliveryError)(error) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, 4xx, TLS, auth …
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
