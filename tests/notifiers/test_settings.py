"""The notification settings: read from HAZARDLOOP_* variables, refused when unusable."""

from __future__ import annotations

import pytest

from engine.config import Settings

BASE = {"HAZARDLOOP_ENV": "production", "HAZARDLOOP_SECRET_KEY": "a-real-secret"}


def test_defaults_deliver_in_app_only():
    settings = Settings.from_env(BASE)
    assert settings.notify_channels == ("inapp",)
    assert (settings.notify_backoff_base_seconds, settings.notify_backoff_cap_seconds) == (30.0, 3600.0)


def test_every_notification_variable_is_read():
    settings = Settings.from_env(
        {
            **BASE,
            "HAZARDLOOP_NOTIFY_CHANNELS": " inapp, Email ,webhook,sms,console,email",
            "HAZARDLOOP_NOTIFY_MAX_ATTEMPTS": "5",
            "HAZARDLOOP_NOTIFY_BACKOFF_BASE": "10",
            "HAZARDLOOP_NOTIFY_BACKOFF_CAP": "900",
            "HAZARDLOOP_NOTIFY_LEASE_SECONDS": "300",
            "HAZARDLOOP_NOTIFY_TIMEOUT": "3.5",
            "HAZARDLOOP_PUBLIC_URL": "https://yh.example.gov.cn",
            "HAZARDLOOP_SMTP_HOST": "smtp.example.gov.cn",
            "HAZARDLOOP_SMTP_PORT": "465",
            "HAZARDLOOP_SMTP_FROM": "yh@example.gov.cn",
            "HAZARDLOOP_SMTP_TLS": "SSL",
            "HAZARDLOOP_SMTP_USERNAME": "yh",
            "HAZARDLOOP_SMTP_PASSWORD": "pw",
            "HAZARDLOOP_WEBHOOK_SECRET": "hook-secret",
            "HAZARDLOOP_WEBHOOK_FORMAT": "DingTalk",
            "HAZARDLOOP_SMS_URL": "https://sms.example/send?to={mobile}&msg={text}&id={key}",
            "HAZARDLOOP_SMS_METHOD": "post",
        }
    )
    assert settings.notify_channels == ("inapp", "email", "webhook", "sms", "console")
    assert settings.notify_max_attempts == 5 and settings.notify_lease_seconds == 300
    assert settings.notify_timeout_seconds == 3.5 and settings.public_url == "https://yh.example.gov.cn"
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == ("smtp.example.gov.cn", 465, "ssl")
    assert (settings.smtp_username, settings.smtp_password) == ("yh", "pw")
    assert (settings.webhook_secret, settings.webhook_format) == ("hook-secret", "dingtalk")
    assert settings.sms_method == "POST" and "{mobile}" in (settings.sms_url_template or "")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HAZARDLOOP_NOTIFY_CHANNELS": "inapp,pigeon"}, "pigeon"),
        ({"HAZARDLOOP_NOTIFY_CHANNELS": "sms"}, "HAZARDLOOP_SMS_URL"),
        ({"HAZARDLOOP_NOTIFY_CHANNELS": "webhook"}, "HAZARDLOOP_WEBHOOK_SECRET"),
        ({"HAZARDLOOP_SMTP_TLS": "maybe"}, "HAZARDLOOP_SMTP_TLS"),
        ({"HAZARDLOOP_WEBHOOK_FORMAT": "slack"}, "HAZARDLOOP_WEBHOOK_FORMAT"),
        ({"HAZARDLOOP_SMS_METHOD": "PUT"}, "HAZARDLOOP_SMS_METHOD"),
    ],
)
def test_unusable_notification_settings_are_refused(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({**BASE, **env})


def test_a_webhook_without_a_secret_is_allowed_in_dev():
    settings = Settings.from_env({"HAZARDLOOP_NOTIFY_CHANNELS": "webhook"})
    assert settings.notify_channels == ("webhook",) and settings.webhook_secret is None
