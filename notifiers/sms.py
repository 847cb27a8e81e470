"""The SMS channel: an HTTP SMS gateway whose URL template comes from the settings.

``HAZARDLOOP_SMS_URL`` holds ``{mobile}``, ``{text}`` and ``{key}`` placeholders, filled in
URL-encoded (e.g. ``https://sms.example/send?to={mobile}&msg={text}&id={key}``). With POST the
same values also go as a JSON body. Every request carries an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import json
import urllib.parse

from engine.config import Settings

from . import OutgoingMessage
from . import PermanentDeliveryError
from ._http import request


class SmsChannel:
    """Sends the message's one-line summary to the recipient's mobile number."""

    def __init__(self, *, url_template: str, method: str = "GET", timeout: float = 10.0) -> None:
        self._template = url_template
        self._method = method.upper()
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmsChannel:
        if not settings.sms_url_template:
            raise ValueError("the sms channel needs HAZARDLOOP_SMS_URL")
        return cls(
            url_template=settings.sms_url_template,
            method=settings.sms_method,
            timeout=settings.notify_timeout_seconds,
        )

    def url_for(self, message: OutgoingMessage) -> str:
        """The gateway URL with the placeholders filled in, URL-encoded.

        :raises PermanentDeliveryError: the template names an unknown placeholder.
        """
        values = {
            "mobile": message.recipient_address,
            "text": message.summary,
            "key": message.idempotency_key,
        }
        try:
            return self._template.format_map({k: urllib.parse.quote(v, safe="") for k, v in values.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise PermanentDeliveryError(f"短信网关地址模板无效: {exc!r}") from exc

    def send(self, message: OutgoingMessage) -> None:
        headers = {"Idempotency-Key": message.idempotency_key, "User-Agent": "hazardloop-notifier"}
        body = None
        if self._method == "POST":
            headers["Content-Type"] = "application/json; charset=utf-8"
            body = json.dumps(
                {
                    "mobile": message.recipient_address,
                    "text": message.summary,
                    "idempotency_key": message.idempotency_key,
                },
                ensure_ascii=False,
            ).encode("utf-8")
        request(self._method, self.url_for(message), headers=headers, body=body, timeout=self._timeout)
