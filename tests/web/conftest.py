"""Web fixtures: the app on the session's committed demo world, a client, a real login.

- ``web_settings``: the test settings with cheap argon2 parameters.
- ``app``: ``create_app(web_settings)`` (its own engine on the test database, so it sees the
  committed ``world``); hazards created through it are deleted after the test (``committed``),
  and so are login attempts and API tokens.
- ``client``: ``app.test_client()``.
- ``login(client, username, password=DEMO_PASSWORD, next=None)``: GETs the login form, takes
  its CSRF token and POSTs it, exactly as a browser does; returns the POST's response.
- ``csrf(client)``: the client's current CSRF token (log in first: login rotates it), for
  ``client.post(url, data={"csrf_token": csrf(client), ...})`` or the ``X-CSRF-Token`` header.
- ``api_token(username, ttl=timedelta(hours=1))``: a bearer token for ``Authorization``.

Every demo user has the password ``engine.demo.DEMO_PASSWORD``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from werkzeug.test import TestResponse

from engine import db as dbmod
from engine import form_versions
from engine import policy
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import USERS
from engine.demo import DemoWorld
from engine.models import ApiToken
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import FormVersion
from engine.models import LoginAttempt
from engine.models import PolicyProfile
from engine.models import User
from web import create_app
from web.auth import hash_password
from web.auth import issue_token
from web.auth import make_hasher
from web.security import CSRF_SESSION_KEY
from web.session import app_state

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')

LoginFn = Callable[..., TestResponse]


@pytest.fixture(scope="session")
def web_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        secret_key="test-secret-key-0123456789abcdef",
        # argon2's minimum memory is 8 KiB per lane: ~1 ms per hash instead of ~50 ms
        argon2_time_cost=1,
        argon2_memory_cost=8,
        argon2_parallelism=1,
    )


@pytest.fixture(scope="session")
def demo_passwords(engine: Engine, world: DemoWorld, web_settings: Settings) -> str:
    """Give every demo user an argon2 hash of DEMO_PASSWORD (committed once per session)."""
    hashed = hash_password(DEMO_PASSWORD, hasher=make_hasher(web_settings))
    with dbmod.make_sessionmaker(engine).begin() as session:
        for user in session.scalars(select(User).where(User.username.in_(list(USERS)))):
            user.password_hash = hashed
    return DEMO_PASSWORD


def _forget_auth_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(LoginAttempt))
        conn.execute(delete(ApiToken))


@pytest.fixture
def make_app(
    web_settings: Settings, demo_passwords: str, committed: sessionmaker[Session], engine: Engine
) -> Iterator[Callable[..., Flask]]:
    """``make_app(**setting_overrides)``: more apps (another web process, other settings)."""
    apps: list[Flask] = []

    def make(**overrides: object) -> Flask:
        app = create_app(replace(web_settings, **overrides) if overrides else web_settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    _forget_auth_rows(engine)
    yield make
    for app in apps:
        app_state(app).engine.dispose()
    _forget_auth_rows(engine)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def csrf_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


@pytest.fixture
def csrf() -> Callable[[FlaskClient], str]:
    def token(client: FlaskClient) -> str:
        with client.session_transaction() as sess:
            value = sess.get(CSRF_SESSION_KEY)
        if value is None:
            return csrf_from(client.get("/login").get_data(as_text=True))
        return str(value)

    return token


@pytest.fixture
def login() -> LoginFn:
    def do_login(
        client: FlaskClient,
        username: str,
        password: str = DEMO_PASSWORD,
        next: str | None = None,
        **kwargs: object,
    ) -> TestResponse:
        form_page = client.get("/login", **kwargs)  # type: ignore[arg-type]
        if form_page.status_code == 200:
            token = csrf_from(form_page.get_data(as_text=True))
        else:  # already logged in: /login redirects; the session still holds the token
            with client.session_transaction() as sess:
                token = sess[CSRF_SESSION_KEY]
        data = {"csrf_token": token, "username": username, "password": password}
        if next is not None:
            data["next"] = next
        return client.post("/login", data=data, **kwargs)  # type: ignore[arg-type]

    return do_login


@pytest.fixture
def api_token(app: Flask, world: DemoWorld) -> Callable[..., str]:
    def make(username: str, ttl: dt.timedelta = dt.timedelta(hours=1), name: str = "test") -> str:
        with app_state(app).sessions.begin() as session:
            return issue_token(session, world.users[username].id, name, ttl, now=dt.datetime.now(dt.UTC))

    return make


@pytest.fixture
def forget_designs(engine: Engine, world: DemoWorld) -> Iterator[None]:
    """Form versions, policy profiles, drafts and design events a test made are removed afterwards
    (rows with ids above those before it; use with ``pytestmark = pytest.mark.usefixtures(…)``)."""
    del world
    tables = (FormVersion, PolicyProfile, DesignEvent, DesignDraft)
    with engine.connect() as conn:
        before = {t: conn.scalar(select(func.coalesce(func.max(t.id), 0))) for t in tables}
    yield
    with engine.begin() as conn:
        for table in tables:
            conn.execute(delete(table).where(table.id > before[table]))
    policy.clear_pinned_cache()
    form_versions.clear_cache()
