"""Settings: every HAZARDLOOP_* variable is read here, in one place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: the notification channels ``notifiers`` implements (HAZARDLOOP_NOTIFY_CHANNELS picks among them).
NOTIFY_CHANNELS = ("inapp", "email", "webhook", "sms", "console")


def _channel_list(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    names = tuple(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in NOTIFY_CHANNELS]
    if unknown:
        raise ValueError(f"HAZARDLOOP_NOTIFY_CHANNELS: unknown channel(s) {', '.join(unknown)}")
    return names


@dataclass(frozen=True, slots=True)
class Settings:
    """Application settings (frozen); build with :meth:`from_env` or ``dataclasses.replace``."""

    env: str = "dev"
    database_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'hazardloop.sqlite'}"
    processes_dir: Path = PROJECT_ROOT / "processes"
    var_dir: Path = PROJECT_ROOT / "var"
    secret_key: str = "dev-secret-not-for-production"
    #: HMAC key of the audit chain; lives outside the database (env var or key file).
    audit_key_file: Path = PROJECT_ROOT / "var" / "audit.key"
    audit_key: str | None = None
    business_timezone: str = "Asia/Shanghai"
    #: after this many failed verifications the loop escalates (the rework loop stays open).
    max_rejects: int = 3
    tick_seconds: float = 5.0
    # --- timers (engine/scheduler.py: ``hazardloop worker`` and ``timers run-due``) ---
    #: due timer jobs one claim takes (the tick claims again at once while batches come back full).
    timer_batch: int = 100
    #: how long a worker holds the timer jobs it claimed before others may take them over.
    timer_lease_seconds: int = 60
    #: after this many failed attempts a timer job is dead and an incident is raised.
    timer_max_attempts: int = 5
    #: retry n waits min(cap, base * 2**(n-1)) seconds.
    timer_backoff_base_seconds: float = 30.0
    timer_backoff_cap_seconds: float = 3600.0
    #: tests only (HAZARDLOOP_TEST_FIRE_DELAY_MS): the scheduler sleeps this long before each
    #: firing, so a test can kill a worker while it holds leases. Never set it in production.
    test_fire_delay_ms: int = 0
    # --- web (web/auth.py, web/security.py) ---
    #: argon2id cost for password hashes (argon2-cffi's RFC 9106 defaults; tests use cheap ones).
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536  # KiB
    argon2_parallelism: int = 4
    #: largest request body accepted (photos and documents included); larger requests get 413.
    max_content_length: int = 25 * 1024 * 1024
    #: always mark the session cookie Secure; when False it is Secure only on HTTPS requests
    #: (intranets often serve plain HTTP, where a Secure cookie would never come back).
    session_cookie_secure: bool = False
    session_hours: int = 12
    #: reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (ProxyFix).
    trusted_proxies: int = 0
    #: login rate limit, shared by every web process through login_attempt rows.
    login_window_minutes: int = 15
    login_max_failures_per_user: int = 5
    login_max_failures_per_address: int = 20
    # --- notifications (engine/outbox.py writes the outbox, notifiers/ delivers it) ---
    #: channels this deployment delivers on (of NOTIFY_CHANNELS); a user's contact row narrows them.
    notify_channels: tuple[str, ...] = ("inapp",)
    #: after this many failed attempts a message is dead-lettered (``notifications retry`` revives it).
    notify_max_attempts: int = 8
    #: retry n waits min(cap, base * 2**(n-1)) seconds.
    notify_backoff_base_seconds: float = 30.0
    notify_backoff_cap_seconds: float = 3600.0
    #: how long a dispatcher holds the messages it claimed before others may take them over.
    notify_lease_seconds: int = 120
    notify_timeout_seconds: float = 10.0
    #: base URL of the web application, for links in messages ("" = no links).
    public_url: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "hazardloop@localhost"
    #: "none", "starttls" or "ssl".
    smtp_tls: str = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    #: HMAC-SHA256 key for the X-Hazardloop-Signature header of webhook requests.
    webhook_secret: str | None = None
    #: JSON shape of webhook bodies: "wecom" (企业微信) or "dingtalk" (钉钉).
    webhook_format: str = "wecom"
    #: SMS gateway URL with {mobile}, {text} and {key} placeholders (URL-encoded when filled in).
    sms_url_template: str | None = None
    sms_method: str = "GET"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``HAZARDLOOP_*`` variables (and ``DATABASE_URL``)."""
        env = os.environ if environ is None else environ
        defaults = cls()
        settings = cls(
            env=env.get("HAZARDLOOP_ENV", defaults.env),
            database_url=env.get("DATABASE_URL", env.get("HAZARDLOOP_DATABASE_URL", defaults.database_url)),
            processes_dir=Path(env.get("HAZARDLOOP_PROCESSES_DIR", str(defaults.processes_dir))),
            var_dir=Path(env.get("HAZARDLOOP_VAR_DIR", str(defaults.var_dir))),
            secret_key=env.get("HAZARDLOOP_SECRET_KEY", defaults.secret_key),
            audit_key_file=Path(env.get("HAZARDLOOP_AUDIT_KEY_FILE", str(defaults.audit_key_file))),
            audit_key=env.get("HAZARDLOOP_AUDIT_KEY"),
            business_timezone=env.get("HAZARDLOOP_TIMEZONE", defaults.business_timezone),
            max_rejects=int(env.get("HAZARDLOOP_MAX_REJECTS", defaults.max_rejects)),
            tick_seconds=float(env.get("HAZARDLOOP_TICK_SECONDS", defaults.tick_seconds)),
            timer_batch=int(env.get("HAZARDLOOP_TIMER_BATCH", defaults.timer_batch)),
            # HAZARDLOOP_LEASE_SECONDS: the earlier name of the timer lease, still honoured
            timer_lease_seconds=int(
                env.get(
                    "HAZARDLOOP_TIMER_LEASE_SECONDS",
                    env.get("HAZARDLOOP_LEASE_SECONDS", defaults.timer_lease_seconds),
                )
            ),
            timer_max_attempts=int(env.get("HAZARDLOOP_TIMER_MAX_ATTEMPTS", defaults.timer_max_attempts)),
            timer_backoff_base_seconds=float(
                env.get("HAZARDLOOP_TIMER_BACKOFF_BASE", defaults.timer_backoff_base_seconds)
            ),
            timer_backoff_cap_seconds=float(
                env.get("HAZARDLOOP_TIMER_BACKOFF_CAP", defaults.timer_backoff_cap_seconds)
            ),
            test_fire_delay_ms=int(env.get("HAZARDLOOP_TEST_FIRE_DELAY_MS", defaults.test_fire_delay_ms)),
            argon2_time_cost=int(env.get("HAZARDLOOP_ARGON2_TIME_COST", defaults.argon2_time_cost)),
            argon2_memory_cost=int(env.get("HAZARDLOOP_ARGON2_MEMORY_COST", defaults.argon2_memory_cost)),
            argon2_parallelism=int(env.get("HAZARDLOOP_ARGON2_PARALLELISM", defaults.argon2_parallelism)),
            max_content_length=int(env.get("HAZARDLOOP_MAX_CONTENT_LENGTH", defaults.max_content_length)),
            session_cookie_secure=env.get("HAZARDLOOP_SESSION_COOKIE_SECURE", "").strip().lower()
            in {"1", "true", "yes", "on"},
            session_hours=int(env.get("HAZARDLOOP_SESSION_HOURS", defaults.session_hours)),
            trusted_proxies=int(env.get("HAZARDLOOP_TRUSTED_PROXIES", defaults.trusted_proxies)),
            login_window_minutes=int(
                env.get("HAZARDLOOP_LOGIN_WINDOW_MINUTES", defaults.login_window_minutes)
            ),
            login_max_failures_per_user=int(
                env.get("HAZARDLOOP_LOGIN_MAX_FAILURES_PER_USER", defaults.login_max_failures_per_user)
            ),
            login_max_failures_per_address=int(
                env.get("HAZARDLOOP_LOGIN_MAX_FAILURES_PER_ADDRESS", defaults.login_max_failures_per_address)
            ),
            notify_channels=_channel_list(env.get("HAZARDLOOP_NOTIFY_CHANNELS"), defaults.notify_channels),
            notify_max_attempts=int(env.get("HAZARDLOOP_NOTIFY_MAX_ATTEMPTS", defaults.notify_max_attempts)),
            notify_backoff_base_seconds=float(
                env.get("HAZARDLOOP_NOTIFY_BACKOFF_BASE", defaults.notify_backoff_base_seconds)
            ),
            notify_backoff_cap_seconds=float(
                env.get("HAZARDLOOP_NOTIFY_BACKOFF_CAP", defaults.notify_backoff_cap_seconds)
            ),
            notify_lease_seconds=int(
                env.get("HAZARDLOOP_NOTIFY_LEASE_SECONDS", defaults.notify_lease_seconds)
            ),
            notify_timeout_seconds=float(
                env.get("HAZARDLOOP_NOTIFY_TIMEOUT", defaults.notify_timeout_seconds)
            ),
            public_url=env.get("HAZARDLOOP_PUBLIC_URL", defaults.public_url),
            smtp_host=env.get("HAZARDLOOP_SMTP_HOST", defaults.smtp_host),
            smtp_port=int(env.get("HAZARDLOOP_SMTP_PORT", defaults.smtp_port)),
            smtp_from=env.get("HAZARDLOOP_SMTP_FROM", defaults.smtp_from),
            smtp_tls=env.get("HAZARDLOOP_SMTP_TLS", defaults.smtp_tls).strip().lower(),
            smtp_username=env.get("HAZARDLOOP_SMTP_USERNAME") or None,
            smtp_password=env.get("HAZARDLOOP_SMTP_PASSWORD") or None,
            webhook_secret=env.get("HAZARDLOOP_WEBHOOK_SECRET") or None,
            webhook_format=env.get("HAZARDLOOP_WEBHOOK_FORMAT", defaults.webhook_format).strip().lower(),
            sms_url_template=env.get("HAZARDLOOP_SMS_URL") or None,
            sms_method=env.get("HAZARDLOOP_SMS_METHOD", defaults.sms_method).strip().upper(),
        )
        if settings.env != "dev" and settings.secret_key == defaults.secret_key:
            raise RuntimeError("HAZARDLOOP_SECRET_KEY must be set outside the dev environment")
        settings.check_notifications()
        settings.check_timers()
        return settings

    def check_timers(self) -> None:
        """Refuse timer settings the scheduler could not use.

        :raises ValueError: a batch, lease or attempt count below 1, or a negative backoff.
        """
        for name, value in (
            ("HAZARDLOOP_TIMER_BATCH", self.timer_batch),
            ("HAZARDLOOP_TIMER_LEASE_SECONDS", self.timer_lease_seconds),
            ("HAZARDLOOP_TIMER_MAX_ATTEMPTS", self.timer_max_attempts),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, not {value}")
        if self.timer_backoff_base_seconds < 0 or self.timer_backoff_cap_seconds < 0:
            raise ValueError(
                "HAZARDLOOP_TIMER_BACKOFF_BASE and HAZARDLOOP_TIMER_BACKOFF_CAP must not be negative"
            )

    def check_notifications(self) -> None:
        """Refuse notification settings the dispatcher could not use.

        :raises ValueError: an unknown TLS mode, webhook format or SMS method, or a channel
            enabled without what it needs (an SMS URL; a webhook secret outside dev).
        """
        if self.smtp_tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"HAZARDLOOP_SMTP_TLS must be none, starttls or ssl, not {self.smtp_tls!r}")
        if self.webhook_format not in ("wecom", "dingtalk"):
            raise ValueError(
                f"HAZARDLOOP_WEBHOOK_FORMAT must be wecom or dingtalk, not {self.webhook_format!r}"
            )
        if self.sms_method not in ("GET", "POST"):
            raise ValueError(f"HAZARDLOOP_SMS_METHOD must be GET or POST, not {self.sms_method!r}")
        if "sms" in self.notify_channels and not self.sms_url_template:
            raise ValueError("the sms channel needs HAZARDLOOP_SMS_URL")
        if "webhook" in self.notify_channels and self.env != "dev" and not self.webhook_secret:
            raise ValueError(
                "the webhook channel needs HAZARDLOOP_WEBHOOK_SECRET outside the dev environment"
            )

    def load_audit_key(self) -> bytes:
        """Return the audit HMAC key; in dev a key file is created on first use."""
        if self.audit_key:
            return self.audit_key.encode()
        path = self.audit_key_file
        if not path.exists():
            if self.env != "dev":
                raise RuntimeError(f"audit key file {path} missing (set HAZARDLOOP_AUDIT_KEY)")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()
