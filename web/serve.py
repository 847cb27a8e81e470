"""The web server (gunicorn running :func:`web.create_app`) and the demo's supervisor.

``hazardloop serve`` runs :class:`WebServer` in the foreground: gunicorn's arbiter in that process,
its workers forked from it. Each worker builds its own app (engine, connection pool, engine
context) after the fork, as ``gunicorn web.wsgi:app`` would; nothing that holds a database
connection crosses a fork. Workers are ``gthread`` (threads, HTTP keep-alive).

``hazardloop demo`` runs :func:`run_services`: two child processes, ``hazardloop serve`` and
``hazardloop worker``, watched by a thread-free loop. Timers and notifications run only in the
worker, never inside the web processes (STYLE rule 9). The children get their own process group,
so a Ctrl-C reaches the supervisor alone, which then stops each child exactly once with SIGTERM:
gunicorn finishes the requests in flight, the worker its current sweep.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NoReturn
from urllib.parse import urlencode

from flask import Flask
from gunicorn.app.base import BaseApplication

from engine.config import Settings

from . import create_app

#: gunicorn's ``--graceful-timeout``: how long a stopping worker may finish its requests
GRACEFUL_SECONDS = 10
#: how long the supervisor waits for a child to stop after SIGTERM before it kills it
STOP_SECONDS = 20.0
#: how long the supervisor waits for ``/healthz`` to answer after starting the server
READY_SECONDS = 60.0


class PortUnavailable(Exception):
    """The address cannot be bound (in use, not local, or a privileged port)."""


# --- gunicorn -------------------------------------------------------------------------------------


def default_workers(database_url: str) -> int:
    """2 on SQLite (one writer at a time anyway), else 2 × CPUs + 1, at most 8."""
    if database_url.startswith("sqlite"):
        return 2
    return min(8, 2 * (os.cpu_count() or 1) + 1)


def bind_address(host: str, port: int) -> str:
    """``host:port`` as gunicorn's ``bind`` wants it (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def public_url(host: str, port: int) -> str:
    """The URL to open in a browser: a wildcard address is reached through loopback."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{bind_address(host, port)}/"


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once (as gunicorn will: SO_REUSEADDR) to tell a busy port early.

    :raises PortUnavailable: with a sentence saying why.
    """
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortUnavailable(f"无法解析监听地址 {host}：{exc.strerror}") from exc
    family, kind, proto, _canon, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            where = bind_address(host, port)
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(
                    f"端口 {port} 已被占用（{where}）：先停止占用它的程序，或用 --port 换一个端口"
                ) from exc
            if exc.errno == errno.EACCES:
                raise PortUnavailable(
                    f"没有权限监听 {where}（1024 以下的端口需要特权），请换一个端口"
                ) from exc
            raise PortUnavailable(f"无法监听 {where}：{exc.strerror}") from exc


def gunicorn_options(
    host: str,
    port: int,
    *,
    workers: int,
    threads: int,
    log_level: str = "info",
    access_log: bool = False,
) -> dict[str, Any]:
    return {
        "bind": [bind_address(host, port)],
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "keepalive": 5,
        "timeout": 60,
        "graceful_timeout": GRACEFUL_SECONDS,
        "proc_name": "hazardloop",
        "errorlog": "-",
        "loglevel": log_level,
        "accesslog": "-" if access_log else None,
        # gunicorn ≥ 25.1 opens a control socket at one fixed path per user: two servers (the demo
        # and a benchmark) would fight over it, and nothing here uses it.
        "control_socket_disable": True,
    }


class WebServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
    """gunicorn with :func:`web.create_app` as its WSGI app (``web.wsgi:app`` with these settings)."""

    def __init__(self, settings: Settings, options: Mapping[str, Any]) -> None:
        self.settings = settings
        self.options = dict(options)
        super().__init__(prog="hazardloop serve")

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # a setting this gunicorn lacks is left out
                self.cfg.set(key, value)

    def load(self) -> Flask:
        # Called in each worker after the fork: its own engine and connection pool.
        return create_app(self.settings)


def check_app(settings: Settings) -> None:
    """Build the app once before forking: bad configuration fails here, in one process, and in
    ``dev`` the audit key file is created once instead of by each worker racing the others.

    :raises RuntimeError: bad configuration.
    """
    app = create_app(settings)
    app.extensions["hazardloop"].engine.dispose()


# --- a tiny HTTP client (the demo's --check) --------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Browser:
    """One keep-alive connection with a cookie jar; enough to log in through the real form."""

    host: str
    port: int
    timeout: float = 10.0
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, form: Mapping[str, str] | None = None) -> Reply:
        headers = {"Accept": "text/html"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # the server closed an idle keep-alive connection: once more
                if attempt == 2:
                    raise
                continue
            break
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie_name, _eq, rest = value.partition("=")
                self.cookies[cookie_name.strip()] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def login(self, username: str, password: str) -> Reply:
        """GET /login for the CSRF token, then POST the form (302 on success)."""
        page = self.request("GET", "/login")
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text())
        if page.status != 200 or match is None:
            raise RuntimeError(f"/login 返回 {page.status}，没有登录表单")
        form = {"csrf_token": match.group(1), "username": username, "password": password, "next": "/"}
        return self.request("POST", "/login", form)


def get(host: str, port: int, path: str, timeout: float = 5.0) -> Reply:
    browser = Browser(host, port, timeout=timeout)
    try:
        return browser.request("GET", path)
    finally:
        browser.close()


# --- the supervisor ---------------------------------------------------------------------------------


class _Stop(Exception):
    """SIGTERM or SIGHUP reached the supervisor."""


def _raise_stop(signum: int, frame: object) -> NoReturn:
    raise _Stop(signal.Signals(signum).name)


_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`_Stop` (SIGINT raises KeyboardInterrupt as usual); the
    previous handlers are restored afterwards."""
    previous = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _set_signals(handler: Any) -> None:
    for sig in _SIGNALS:
        signal.signal(sig, handler)


def hazardloop_argv(*args: str) -> list[str]:
    """The command line of ``hazardloop ARGS…`` with this interpreter (works without the script)."""
    return [sys.executable, "-c", "from web.cli import main; main(prog_name='hazardloop')", *args]


def child_environment(settings: Settings) -> dict[str, str]:
    """This environment, plus the settings that must agree between the demo's processes
    (database, files, keys), so the children use what ``init`` used."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "HAZARDLOOP_ENV": settings.env,
            "HAZARDLOOP_VAR_DIR": str(settings.var_dir),
            "HAZARDLOOP_PROCESSES_DIR": str(settings.processes_dir),
            "HAZARDLOOP_AUDIT_KEY_FILE": str(settings.audit_key_file),
            "HAZARDLOOP_TICK_SECONDS": f"{settings.tick_seconds:g}",
            "PYTHONUNBUFFERED": "1",  # the children's lines appear as they happen, piped or not
        }
    )
    env.pop("HAZARDLOOP_DATABASE_URL", None)
    if settings.audit_key:
        env["HAZARDLOOP_AUDIT_KEY"] = settings.audit_key
    if settings.secret_key != Settings.secret_key:
        env["HAZARDLOOP_SECRET_KEY"] = settings.secret_key
    return env


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def running(self) -> bool:
        return self.process.poll() is None


def _start(name: str, argv: Sequence[str], env: Mapping[str, str]) -> Child:
    # process_group=0: Ctrl-C in the terminal reaches the supervisor only; it stops the children.
    process = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, process_group=0)
    return Child(name, process)


def stop_children(children: Sequence[Child], timeout: float = STOP_SECONDS) -> None:
    """SIGTERM each running child once, wait, and kill what is still running after ``timeout``
    (or at a second Ctrl-C or SIGTERM)."""
    _set_signals(_raise_stop)  # from here on a signal means "hurry": kill
    for child in children:
        if child.running:
            child.process.terminate()
    deadline = time.monotonic() + timeout
    try:
        for child in children:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
    except (subprocess.TimeoutExpired, KeyboardInterrupt, _Stop):
        for child in children:
            if child.running:
                child.process.kill()
                child.process.wait()


def _exited(children: Sequence[Child]) -> Child | None:
    return next((c for c in children if not c.running), None)


def wait_ready(
    host: str, port: int, children: Sequence[Child], timeout: float = READY_SECONDS
) -> Child | None:
    """Poll ``/healthz`` until it answers 200; a child that exits meanwhile is returned.

    :raises TimeoutError: no answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = _exited(children)
        if dead is not None:
            return dead
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(host, port, "/healthz", timeout=2.0).status == 200:
                return None
        time.sleep(0.2)
    raise TimeoutError(f"{timeout:g} 秒内 /healthz 没有应答")


def wait_worker_ready(
    ready_file: str, children: Sequence[Child], timeout: float = READY_SECONDS
) -> Child | None:
    """Wait until the worker has created ``ready_file`` (``hazardloop worker --ready-file``); a
    child that exits meanwhile is returned.

    :raises TimeoutError: not ready within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = _exited(children)
        if dead is not None:
            return dead
        if os.path.exists(ready_file):
            return None
        time.sleep(0.1)
    raise TimeoutError(f"{timeout:g} 秒内 worker 没有就绪")


def check_services(host: str, port: int, username: str, password: str) -> list[str]:
    """What ``demo --check`` verifies over HTTP; returns one line per check (raises on failure)."""
    lines = []
    health = get(host, port, "/healthz")
    if health.status != 200 or b'"ok"' not in health.body:
        raise RuntimeError(f"/healthz 返回 {health.status}：{health.text()[:200]}")
    lines.append("GET /healthz 200")
    browser = Browser(host, port)
    try:
        page = browser.request("GET", "/login")
        if page.status != 200 or 'name="password"' not in page.text():
            raise RuntimeError(f"/login 返回 {page.status}，没有登录表单")
        lines.append("GET /login 200（登录表单）")
        answer = browser.login(username, password)
        if answer.status != 302:
            raise RuntimeError(f"以 {username} 登录失败：POST /login 返回 {answer.status}")
        lines.append(f"POST /login 302（{username} 登录成功）")
        home = browser.request("GET", answer.headers.get("location", "/"))
        while home.status in (301, 302, 303) and "location" in home.headers:
            home = browser.request("GET", home.headers["location"])
        if home.status != 200:
            raise RuntimeError(f"登录后的首页返回 {home.status}")
        lines.append("登录后首页 200")
    finally:
        browser.close()
    return lines


def run_services(
    *,
    settings: Settings,
    host: str,
    port: int,
    serve_args: Sequence[str],
    worker_args: Sequence[str],
    check: bool,
    check_login: tuple[str, str],
    echo: Callable[[str], None],
    banner: Callable[[], None],
) -> int:
    """Start ``hazardloop serve`` and ``hazardloop worker`` and watch them; returns the exit status.

    ``check``: once ``/healthz`` answers, run :func:`check_services`, print ``OK`` and stop both.
    Otherwise print the banner and run until Ctrl-C, SIGTERM or SIGHUP (0), or until a child
    exits on its own (its exit status, at least 1; the other child is stopped).
    """
    env = child_environment(settings)
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="hazardloop-demo-") as scratch, _stop_signals():
        # the worker creates it once SIGTERM stops it cleanly: ``check`` waits for it, so "worker
        # 运行中" means running, and the stop that follows is a clean one
        ready_file = os.path.join(scratch, "worker.ready")
        try:
            children.append(_start("网页服务", hazardloop_argv("serve", *serve_args), env))
            worker_argv = hazardloop_argv("worker", *worker_args, "--ready-file", ready_file)
            children.append(_start("worker", worker_argv, env))
            try:
                dead = wait_ready(host, port, children)
            except TimeoutError as exc:
                echo(f"错误：网页服务没有就绪：{exc}")
                return 1
            if dead is None and check:
                try:
                    lines = check_services(host, port, *check_login)
                    dead = wait_worker_ready(ready_file, children)
                except (RuntimeError, OSError, http.client.HTTPException, TimeoutError) as exc:
                    echo(f"错误：检查失败：{exc}")
                    return 1
                dead = dead or _exited(children)
                if dead is None:
                    echo("OK：" + "；".join([*lines, "worker 运行中"]))
                    return 0
            if dead is None:
                banner()
            while dead is None:
                time.sleep(0.5)
                dead = _exited(children)
            status = dead.process.returncode
            echo(f"错误：{dead.name}意外退出（退出码 {status}），正在停止其余进程")
            return status if status and status > 0 else 1
        except (KeyboardInterrupt, _Stop):
            _set_signals(signal.SIG_IGN)  # until stop_children takes over: no second exception here
            echo("正在停止网页服务与 worker（等待进行中的请求和当前一轮检查结束）…")
            return 0
        finally:
            stop_children(children)
