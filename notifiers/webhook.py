"""The webhook channel: WeCom/DingTalk-style JSON robots, signed with HMAC-SHA256.

Each request carries ``Idempotency-Key`` (the message's key, the same on every retry) and
``X-Hazardloop-Signature``: the hex HMAC-SHA256 of the exact request body under the configured
secret, so a receiver can check the message came from us and was not altered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from engine.config import Settings

from . import DeliveryError
from . import OutgoingMessage
from ._http import request

SIGNATURE_HEADER = "X-Hazardloop-Signature"


def signature(secret: str, body: bytes) -> str:
    """The X-Hazardloop-Signature value of ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload_for(message: OutgoingMessage, fmt: str) -> dict[str, Any]:
    """The robot message: ``{"msgtype": "markdown", ...}`` in WeCom (企业微信) or DingTalk (钉钉) shape."""
    text = f"**{message.subject}**\n\n{message.body}"
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": message.subject, "text": text}}
    return {"msgtype": "markdown", "markdown": {"content": text}}


class WebhookChannel:
    """POSTs to the recipient's webhook URL (``user_contact.webhook_url``)."""

    def __init__(self, *, secret: str | None, fmt: str = "wecom", timeout: float = 10.0) -> None:
        self._secret = secret
        self._fmt = fmt
        self._timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookChannel:
        return cls(
            secret=settings.webhook_secret,
            fmt=settings.webhook_format,
            timeout=settings.notify_timeout_seconds,
        )

    def send(self, message: OutgoingMessage) -> None:
        body = json.dumps(payload_for(message, self._fmt), ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": message.idempotency_key,
            "User-Agent": "hazardloop-notifier",
        }
        if self._secret:
            headers[SIGNATURE_HEADER] = signature(self._secret, body)
        response = request(
            "POST", message.recipient_address, headers=headers, body=body, timeout=self._timeout
        )
        _check_robot_answer(response.body)


def _check_robot_answer(body: bytes) -> None:
    """WeCom and DingTalk answer 200 with ``{"errcode": n}``; a non-zero code is a failure."""
    try:
        answer = json.loads(body) if body.strip() else None
    except ValueError:
        return
    if isinstance(answer, dict) and answer.get("errcode") not in (None, 0):
        raise DeliveryError(f"webhook errcode {answer.get('errcode')}: {answer.get('errmsg', '')}")
