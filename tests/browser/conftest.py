"""Browser-test fixtures: Debian's Chromium driven by Python Playwright against a live server.

STYLE rule 18. Every test here is marked ``@pytest.mark.browser`` and uses these fixtures:

* ``browser`` (session): headless ``/usr/bin/chromium`` with the flags this machine needs (no
  downloaded browsers: ``playwright install`` does not work here).
* ``page`` (function): a fresh context (zh-CN, Asia/Shanghai, 1280×900). Console errors, uncaught
  page errors and any request to a host other than 127.0.0.1/localhost (we use no CDN) are
  collected in ``js_errors``; the test fails at teardown if there were any. A failing test leaves
  a full-page screenshot in ``test-artifacts/browser/``; ``screenshot(page, name)`` saves one on
  purpose.
* ``app`` (session): ``web.create_app(browser_settings)`` on the session's test database (skipped
  with a reason while the factory does not exist). A module may override ``app`` with its own.
* ``live_server`` (module): serves ``app`` with werkzeug's ``make_server`` on 127.0.0.1 (a free
  port) in a background thread; ``live_server.url("/path")`` gives an absolute URL.

Browser tests run once per CI run, not once per database: ``./bin/test`` runs the suite on
SQLite and then again with HAZARDLOOP_TEST_DATABASE_URL set for PostgreSQL, and the browser tests
skip themselves in that second pass. When Chromium, Playwright or the built vendor assets are
missing they skip with the reason (and fail instead under CI=true, where ``.ci/run`` installs them).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from engine.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VENDOR_MANIFEST = ROOT / "web" / "static" / "vendor" / "manifest.json"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _missing_prerequisite() -> str | None:
    if not (os.path.exists(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"{CHROMIUM} is missing: apt-get install chromium fonts-wqy-microhei (.ci/run does)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]' (./bin/test does)"
    if not VENDOR_MANIFEST.is_file():
        return "vendor assets are not built: npm ci && python3 scripts/build_assets.py (./bin/test does)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    if os.environ.get("HAZARDLOOP_TEST_DATABASE_URL"):
        reason = "browser tests run once per CI run, in the SQLite pass (STYLE rule 18)"
        skip = pytest.mark.skip(reason=reason)
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(skip)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[Any]:
    """Keep each phase's report on the item, so that ``page`` knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/browser/<name>.png and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{_artifact_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = _missing_prerequisite()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def js_errors() -> list[str]:
    """What went wrong in the page so far (console errors, page errors, outside requests)."""
    return []


@pytest.fixture
def page(browser: Any, js_errors: list[str], request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )

    def guard(route: Any) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            js_errors.append(f"request to a non-local host (no CDNs): {url}")
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.on(
        "console",
        lambda msg: msg.type == "error" and js_errors.append(f"console.error: {msg.text} ({msg.location})"),
    )
    pg.on("pageerror", lambda exc: js_errors.append(f"page error: {exc}"))
    yield pg
    rep = getattr(request.node, "rep_call", None)
    failed_name = f"FAILED-{request.node.nodeid}"
    if (rep is None or rep.failed or js_errors) and not pg.is_closed():
        try:
            screenshot(pg, failed_name)
        except Exception as exc:  # a screenshot must not hide the real failure
            js_errors.append(f"(screenshot failed: {exc})")
    else:
        # Not wiped per run (runs may overlap): a test that passes again drops its old failure.
        (ARTIFACTS / f"{_artifact_name(failed_name)}.png").unlink(missing_ok=True)
    context.close()
    if js_errors:
        pytest.fail("errors in the browser:\n  " + "\n  ".join(js_errors), pytrace=False)


@pytest.fixture(scope="session")
def browser_settings(settings: Settings) -> Settings:
    """The session's test settings, with a secret key and cheap argon2 parameters."""
    return replace(
        settings,
        secret_key="browser-test-secret-key-0123456789",
        argon2_time_cost=1,
        argon2_memory_cost=8,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="session")
def app(request: pytest.FixtureRequest, browser_settings: Settings) -> Iterator[Any]:
    """The real application on the session's test database (migrated, processes deployed)."""
    from web import create_app

    request.getfixturevalue("world")  # migrated, bundled processes deployed, organisations seeded
    application = create_app(browser_settings)
    yield application
    engine = getattr(application.extensions.get("hazardloop"), "engine", None)
    if engine is not None:
        engine.dispose()


class LiveServer:
    """A WSGI app served on 127.0.0.1 in a daemon thread (werkzeug's threaded dev server)."""

    def __init__(self, app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self._server.server_port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(app: Any) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()
