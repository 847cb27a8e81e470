"""``hazardloop serve`` and ``hazardloop demo``: a busy port, an unmigrated database, and the real
thing — gunicorn and the worker as child processes on a temporary SQLite database, checked over
HTTP and stopped with SIGTERM.

The process tests run in the SQLite pass only (they make their own database either way).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.config import PROJECT_ROOT
from tests.conftest import is_postgres
from web import serve
from web.cli import main

CHEAP_ARGON2 = {
    "HAZARDLOOP_ARGON2_TIME_COST": "1",
    "HAZARDLOOP_ARGON2_MEMORY_COST": "8192",
    "HAZARDLOOP_ARGON2_PARALLELISM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite'}",
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(tmp_path / "var"),
        "HAZARDLOOP_AUDIT_KEY": "serve-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
        "HAZARDLOOP_TICK_SECONDS": "1",
        **CHEAP_ARGON2,
    }


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_urls_and_bind_addresses():
    assert serve.public_url("0.0.0.0", 8000) == "http://127.0.0.1:8000/"
    assert serve.public_url("::", 8000) == "http://[::1]:8000/"
    assert serve.bind_address("127.0.0.1", 8000) == "127.0.0.1:8000"
    assert serve.default_workers("sqlite:///x.db") == 2
    assert 3 <= serve.default_workers("postgresql+psycopg://h/db") <= 8


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_busy_port_is_one_line_and_exit_2(command, env, busy_port):
    result = CliRunner().invoke(main, [command, "--port", str(busy_port)], env=env)
    assert result.exit_code == 2, result.output
    assert f"端口 {busy_port} 已被占用" in result.stderr
    assert "Traceback" not in result.output
    assert not Path(env["DATABASE_URL"].split("///", 1)[1]).exists()  # nothing was initialised


def test_serve_refuses_an_unmigrated_database(env):
    result = CliRunner().invoke(main, ["serve", "--port", str(free_port())], env=env)
    assert result.exit_code == 1, result.output
    assert "hazardloop init" in result.stderr


def _run(args: list[str], env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        serve.hazardloop_argv(*args),
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


sqlite_pass_only = pytest.mark.skipif(
    is_postgres(), reason="runs its own SQLite database: once per CI run, in the SQLite pass"
)


@sqlite_pass_only
def test_demo_check_starts_server_and_worker_logs_in_and_stops(env):
    port = free_port()
    proc = _run(["demo", "--check", "--port", str(port), "--workers", "1"], env)
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert f"网址：http://127.0.0.1:{port}/" in output
    assert "chen_safety" in output and "hazard-demo-2026" in output
    assert "OK：GET /healthz 200；GET /login 200" in output
    assert "POST /login 302（chen_safety 登录成功）" in output
    assert "worker 已停止" in output
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@sqlite_pass_only
def test_demo_runs_until_sigterm_then_stops_both_children(env):
    port = free_port()
    proc = _run(["demo", "--port", str(port), "--workers", "1"], env)
    assert proc.stdout is not None
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, "demo exited before it was ready:\n" + "".join(lines)
        lines.append(line)
        if f"hazardloop 已启动：http://127.0.0.1:{port}/" in line:
            break
    children = _children_of(proc.pid)
    assert len(children) == 2, lines
    assert serve.get("127.0.0.1", port, "/healthz").status == 200
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + rest
    assert "网页服务与 worker 已停止" in rest
    for pid in children:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
