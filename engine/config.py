"""Settings: every HAZARDLOOP_* variable is read here, in one place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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
    lease_seconds: int = 60

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
            lease_seconds=int(env.get("HAZARDLOOP_LEASE_SECONDS", defaults.lease_seconds)),
        )
        if settings.env != "dev" and settings.secret_key == defaults.secret_key:
            raise RuntimeError("HAZARDLOOP_SECRET_KEY must be set outside the dev environment")
        return settings

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
