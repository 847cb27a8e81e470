"""Real local receivers for the notifier tests: an SMTP server (aiosmtpd) and an HTTP server.

Each is created on a free port but not started, so a test can first dispatch while nothing
listens (connection refused) and start the server afterwards on the same port.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import replace
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from engine.config import Settings
from engine.runtime import EngineContext


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._controller: Controller | None = None
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpSink:
    """A threaded HTTP server on 127.0.0.1 recording every request; answers ``status`` and ``answer``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Request] = []
        self.status = 200
        #: the JSON answer (WeCom and DingTalk robots answer {"errcode": 0, "errmsg": "ok"})
        self.answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urllib.parse.urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=dict(urllib.parse.parse_qsl(parts.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with sink._lock:
                    sink.requests.append(request)
                answer = json.dumps(sink.answer).encode()
                self.send_response(sink.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=10)
            self._server = None

    def on(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.stop()


WEBHOOK_SECRET = "webhook-secret-for-tests"
SMTP_DOMAIN = "notify.hazardloop.test"


@pytest.fixture
def notify_settings(settings: Settings, smtp_sink: SmtpSink, http_sink: HttpSink) -> Settings:
    """Every channel on, pointed at the (not yet started) local servers."""
    return replace(
        settings,
        notify_channels=("inapp", "email", "webhook", "sms", "console"),
        notify_max_attempts=4,
        notify_backoff_base_seconds=60.0,
        notify_backoff_cap_seconds=600.0,
        notify_lease_seconds=120,
        notify_timeout_seconds=5.0,
        public_url="http://hazardloop.test",
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_from=f"隐患系统 <noreply@{SMTP_DOMAIN}>",
        webhook_secret=WEBHOOK_SECRET,
        webhook_format="wecom",
        sms_url_template=http_sink.url("/sms/send?to={mobile}&msg={text}&id={key}"),
        sms_method="GET",
    )


@pytest.fixture
def notify_ctx(notify_settings: Settings) -> EngineContext:
    return EngineContext(settings=notify_settings)
