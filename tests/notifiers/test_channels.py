"""Each channel on its own, against the local servers (or a database row, or a stream)."""

from __future__ import annotations

import hashlib
import hmac
import io

import pytest
from sqlalchemy import func
from sqlalchemy import select

from engine.models import InAppNotification
from notifiers import DeliveryError
from notifiers import OutgoingMessage
from notifiers import PermanentDeliveryError
from notifiers.console import ConsoleChannel
from notifiers.email import EmailChannel
from notifiers.email import message_id
from notifiers.inapp import InAppChannel
from notifiers.sms import SmsChannel
from notifiers.webhook import WebhookChannel
from notifiers.webhook import payload_for

from .conftest import SMTP_DOMAIN
from .conftest import WEBHOOK_SECRET


def message(**overrides) -> OutgoingMessage:
    fields = {
        "id": 1,
        "idempotency_key": "7:12:3:email",
        "kind": "overdue",
        "channel": "email",
        "recipient_address": "chen@chem.test",
        "recipient_user_id": None,
        "hazard_id": None,
        "subject": "【已逾期】YH-341821-2026-00001 储罐区可燃气体报警器失效",
        "body": "陈静，您好：\n\n隐患已超过整改期限。\n",
        "summary": "逾期：YH-341821-2026-00001 储罐区可燃气体报警器失效 & 请立即办理",
        "facts": {"recipient_name": "陈静（安全管理员）"},
    }
    fields.update(overrides)
    return OutgoingMessage(**fields)


# --- e-mail ---------------------------------------------------------------------------------------------


def test_email_carries_a_stable_message_id_and_utf8_text(notify_settings, smtp_sink):
    smtp_sink.start()
    channel = EmailChannel.from_settings(notify_settings)
    channel.send(message())
    channel.send(message())  # a redelivery: same Message-ID, the receiver can drop it
    first, second = smtp_sink.messages
    assert first["Message-ID"] == second["Message-ID"] == "<hazardloop.7.12.3.email@notify.hazardloop.test>"
    assert first["Message-ID"] == message_id("7:12:3:email", SMTP_DOMAIN)
    assert first["X-Hazardloop-Idempotency-Key"] == "7:12:3:email"
    assert first["Subject"] == "【已逾期】YH-341821-2026-00001 储罐区可燃气体报警器失效"
    assert first["To"].addresses[0].display_name == "陈静（安全管理员）"
    assert first["From"].addresses[0].display_name == "隐患系统"
    assert first.get_content_charset() == "utf-8"
    assert "隐患已超过整改期限" in first.get_content()
    assert smtp_sink.envelopes[0] == (f"noreply@{SMTP_DOMAIN}", ["chen@chem.test"])


def test_email_failures_are_sorted_into_retry_and_dead(notify_settings, smtp_sink):
    channel = EmailChannel.from_settings(notify_settings)
    with pytest.raises(DeliveryError, match="ConnectionRefused") as down:
        channel.send(message())
    assert not isinstance(down.value, PermanentDeliveryError)
    smtp_sink.start()
    with pytest.raises(PermanentDeliveryError, match="收件人被拒绝"):
        channel.send(message(recipient_address="nobody@refused.test"))
    with pytest.raises(PermanentDeliveryError, match="无效的邮箱地址"):
        channel.send(message(recipient_address="not an address"))
    assert smtp_sink.messages == []


# --- webhook ------------------------------------------------------------------------------------------


def test_webhook_posts_signed_wecom_json_with_the_key(notify_settings, http_sink):
    http_sink.start()
    channel = WebhookChannel.from_settings(notify_settings)
    channel.send(message(channel="webhook", recipient_address=http_sink.url("/robot/a")))
    [request] = http_sink.requests
    assert request.method == "POST"
    assert request.headers["idempotency-key"] == "7:12:3:email"
    assert request.headers["content-type"].startswith("application/json")
    expected = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-hazardloop-signature"] == expected
    body = request.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["content"].startswith("**【已逾期】")
    assert "储罐区" in request.body.decode("utf-8")  # UTF-8, not \\u escapes


def test_webhook_dingtalk_shape_and_no_signature_without_a_secret(http_sink):
    http_sink.start()
    WebhookChannel(secret=None, fmt="dingtalk", timeout=5).send(
        message(recipient_address=http_sink.url("/robot/d"))
    )
    [request] = http_sink.requests
    assert "x-hazardloop-signature" not in request.headers
    assert request.json()["markdown"]["title"].startswith("【已逾期】")
    assert payload_for(message(), "wecom")["markdown"].keys() == {"content"}


def test_webhook_failures_are_sorted_into_retry_and_dead(http_sink):
    channel = WebhookChannel(secret="k", timeout=5)
    url = http_sink.url("/robot/f")
    with pytest.raises(DeliveryError, match="ConnectionRefused"):
        channel.send(message(recipient_address=url))
    http_sink.start()
    http_sink.status = 503
    with pytest.raises(DeliveryError, match="HTTP 503") as unavailable:
        channel.send(message(recipient_address=url))
    assert not isinstance(unavailable.value, PermanentDeliveryError)
    http_sink.status = 404
    with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
        channel.send(message(recipient_address=url))
    with pytest.raises(PermanentDeliveryError, match="http/https"):
        channel.send(message(recipient_address="file:///etc/passwd"))


def test_a_robot_errcode_is_a_failure(http_sink):
    """WeCom/DingTalk answer HTTP 200 with a non-zero errcode when they refuse a message."""
    http_sink.start()
    http_sink.answer = {"errcode": 45009, "errmsg": "api freq out of limit"}
    with pytest.raises(DeliveryError, match="errcode 45009"):
        WebhookChannel(secret="k", timeout=5).send(message(recipient_address=http_sink.url("/robot/r")))


# --- SMS ----------------------------------------------------------------------------------------------


def test_sms_fills_the_url_template_url_encoded(notify_settings, http_sink):
    http_sink.start()
    channel = SmsChannel.from_settings(notify_settings)
    channel.send(message(channel="sms", recipient_address="+86 13800000001"))
    [request] = http_sink.requests
    assert request.method == "GET" and request.path == "/sms/send"
    assert request.query == {
        "to": "+86 13800000001",
        "msg": "逾期：YH-341821-2026-00001 储罐区可燃气体报警器失效 & 请立即办理",
        "id": "7:12:3:email",
    }
    assert request.headers["idempotency-key"] == "7:12:3:email"


def test_sms_post_sends_json_too(http_sink):
    http_sink.start()
    SmsChannel(url_template=http_sink.url("/sms?key={key}"), method="POST", timeout=5).send(
        message(recipient_address="13800000001")
    )
    [request] = http_sink.requests
    assert request.method == "POST" and request.query == {"key": "7:12:3:email"}
    assert request.json() == {
        "mobile": "13800000001",
        "text": "逾期：YH-341821-2026-00001 储罐区可燃气体报警器失效 & 请立即办理",
        "idempotency_key": "7:12:3:email",
    }


def test_sms_template_with_an_unknown_placeholder_is_permanent():
    with pytest.raises(PermanentDeliveryError, match="模板无效"):
        SmsChannel(url_template="http://127.0.0.1:1/?to={phone}").send(message())


# --- in-app and console ------------------------------------------------------------------------------------


def test_inapp_writes_one_row_however_often_it_is_delivered(sessions, world):
    user_id = world.users["chen_safety"].id
    channel = InAppChannel(sessions)
    note = message(channel="inapp", recipient_user_id=user_id, recipient_address=str(user_id), hazard_id=42)
    channel.send(note)
    channel.send(note)
    with sessions() as session:
        rows = session.scalars(
            select(InAppNotification).where(InAppNotification.idempotency_key == note.idempotency_key)
        ).all()
        assert len(rows) == 1
        assert (rows[0].user_id, rows[0].hazard_id, rows[0].kind) == (user_id, 42, "overdue")
        assert rows[0].title == note.subject and rows[0].body == note.body and rows[0].read_at is None
        total = session.scalar(select(func.count()).select_from(InAppNotification))
    channel.send(message(channel="inapp", idempotency_key="other", recipient_user_id=user_id))
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InAppNotification)) == total + 1
    with pytest.raises(PermanentDeliveryError):
        channel.send(message(channel="inapp", recipient_user_id=None))


def test_console_writes_a_line_and_records_the_message():
    stream = io.StringIO()
    channel = ConsoleChannel(stream)
    channel.send(message(recipient_address="chen_safety"))
    assert stream.getvalue() == (
        "[通知 overdue] chen_safety: 逾期：YH-341821-2026-00001 储罐区可燃气体报警器失效 & 请立即办理\n"
    )
    assert [m.idempotency_key for m in channel.sent] == ["7:12:3:email"]
