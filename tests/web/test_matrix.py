"""Authorization through the web: every demo user × every hazard-scoped page and endpoint.

The expectations are the hand-written visibility matrix of ``tests/engine/test_access.py``
(``MATRIX``: who sees, acts on, supervises which of the eight scene hazards); nothing here is
computed by the code under test. The scene is the one that module builds (``_build``), but
committed, because the app under test runs on its own engine and only sees committed rows: it
is built once for this module and deleted at the end (the tables ``committed`` clears).

This module therefore has its own module-scoped app (the conftest ``app`` hangs off the
function-scoped ``committed`` fixture, whose teardown would delete the scene after every test),
one bearer token per user for the API and one logged-in test client per user for the pages.

Nothing here leaves the scene changed: a successful claim is released by the same user, and a
successful void is made on a fresh copy of the hazard (registered by the same user with the same
enterprise, sector and departments), never on the scene hazard itself.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from collections.abc import Iterator

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import text
from werkzeug.test import TestResponse

from engine import db as dbmod
from engine import runtime
from engine.config import Settings
from engine.demo import DemoWorld
from engine.models import ApiToken
from engine.models import Hazard
from engine.models import LoginAttempt
from engine.runtime import EngineContext
from tests.engine.test_access import HAZARDS
from tests.engine.test_access import MATRIX
from tests.engine.test_access import START
from tests.engine.test_access import USERS
from tests.engine.test_access import Expect
from tests.engine.test_access import _build
from tests.engine.test_access import _registration
from tests.engine.test_access import _Scene
from web import create_app
from web.auth import issue_token
from web.security import CSRF_SESSION_KEY
from web.session import app_state

#: the tables the conftest ``committed`` fixture clears: everything a hazard brings along
HAZARD_TABLES = (
    "notice",
    "outbox_message",
    "in_app_notification",
    "event",
    "timer_job",
    "task_submission",
    "attachment",
    "extension_request",
    "work_item",
    "process_instance",
    "hazard_department",
    "hazard",
)

LEDGER_LINK = re.compile(r'href="/hazards/(\d+)"')


def _clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in HAZARD_TABLES:
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(delete(LoginAttempt))
        conn.execute(delete(ApiToken))


class _Web:
    """The committed scene, the app, and per-user API headers and logged-in page clients."""

    def __init__(self, scene: _Scene, app: Flask, world: DemoWorld, engine: Engine) -> None:
        self.scene, self.app, self.world, self.engine = scene, app, world, engine
        self.api_client = app.test_client()
        self.numbers: dict[str, str] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self.pages: dict[str, FlaskClient] = {}

    def headers(self, user: str) -> dict[str, str]:
        if user not in self._headers:
            with app_state(self.app).sessions.begin() as session:
                token = issue_token(
                    session,
                    self.world.users[user].id,
                    "matrix",
                    dt.timedelta(hours=1),
                    now=dt.datetime.now(dt.UTC),
                )
            self._headers[user] = {"Authorization": f"Bearer {token}"}
        return self._headers[user]

    def api_get(self, user: str, url: str) -> TestResponse:
        return self.api_client.get(url, headers=self.headers(user))

    def api_post(self, user: str, url: str) -> TestResponse:
        return self.api_client.post(url, headers=self.headers(user))

    def copy_of(self, key: str) -> int:
        """A fresh hazard registered exactly as the scene's ``key`` (its loop at the first task)."""
        username, spec = HAZARDS[key]
        data = _registration(self.world, spec)
        with dbmod.make_sessionmaker(self.engine).begin() as session:
            actor = self.world.actor(session, username)
            return runtime.register_hazard(session, self.scene.ctx, actor=actor, data=data).id


@pytest.fixture(scope="module")
def web(
    engine: Engine, world: DemoWorld, ctx: EngineContext, web_settings: Settings, demo_passwords: str
) -> Iterator[_Web]:
    _clear(engine)
    sessions = dbmod.make_sessionmaker(engine)
    sessions.configure(expire_on_commit=False)
    scene = _Scene(None, sessions, ctx)  # type: ignore[arg-type]  # committed: no scratch savepoints
    app = create_app(web_settings)
    app.config["TESTING"] = True
    try:
        with time_machine.travel(START, tick=False):
            _build(scene, world)
        built = _Web(scene, app, world, engine)
        with sessions() as session:
            rows = session.execute(
                select(Hazard.id, Hazard.number).where(Hazard.id.in_(scene.hazards.values()))
            )
            built.numbers = {scene.key_of[i]: n for i, n in rows}
        yield built
    finally:
        app_state(app).engine.dispose()
        _clear(engine)


@pytest.fixture
def page(web: _Web, login: Callable[..., TestResponse]) -> Callable[[str], FlaskClient]:
    """``page(user)``: a test client logged in as ``user`` (once per user for the module)."""

    def client_for(user: str) -> FlaskClient:
        if user not in web.pages:
            client = web.app.test_client()
            response = login(client, user)
            assert response.status_code == 302, response.get_data(as_text=True)
            web.pages[user] = client
        return web.pages[user]

    return client_for


def _visible(row: Expect, key: str) -> int:
    return 200 if key in row.sees else 404


def _expected_status(row: Expect, key: str, allowed: frozenset[str]) -> int:
    if key not in row.sees:
        return 404
    return 200 if key in allowed else 403


# --- hazard-scoped GETs -------------------------------------------------------------------------------

HAZARD_PAGES = ("/hazards/{}", "/hazards/{}/diagram.bpmn", "/hazards/{}/actions")


@pytest.mark.parametrize("pattern", HAZARD_PAGES)
@pytest.mark.parametrize("username", USERS)
def test_hazard_pages_are_found_only_by_who_sees_the_hazard(web, page, username, pattern):
    client, row = page(username), MATRIX[username]
    got = {key: client.get(pattern.format(hid)).status_code for key, hid in web.scene.hazards.items()}
    assert got == {key: _visible(row, key) for key in web.scene.hazards}


@pytest.mark.parametrize("username", USERS)
def test_api_hazard_is_found_only_by_who_sees_it(web, username):
    row = MATRIX[username]
    got = {}
    for key, hid in web.scene.hazards.items():
        response = web.api_get(username, f"/api/v1/hazards/{hid}")
        got[key] = response.status_code
        if response.status_code == 200:
            assert response.get_json()["id"] == hid
    assert got == {key: _visible(row, key) for key in web.scene.hazards}


# --- ledgers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", USERS)
def test_ledger_page_lists_exactly_the_visible_hazards(web, page, username):
    response = page(username).get("/hazards?per_page=100")
    assert response.status_code == 200
    listed = {int(i) for i in LEDGER_LINK.findall(response.get_data(as_text=True))}
    ours = set(web.scene.hazards.values())
    assert {web.scene.key_of[i] for i in listed & ours} == set(MATRIX[username].sees)


@pytest.mark.parametrize("username", USERS)
def test_api_ledger_lists_exactly_the_visible_hazards(web, username):
    response = web.api_get(username, "/api/v1/hazards?per_page=100")
    assert response.status_code == 200, response.get_data(as_text=True)
    listed = {item["id"] for item in response.get_json()["items"]}
    ours = set(web.scene.hazards.values())
    assert {web.scene.key_of[i] for i in listed & ours} == set(MATRIX[username].sees)


@pytest.mark.parametrize("username", USERS)
def test_ledger_export_holds_exactly_the_visible_hazards(web, page, username):
    response = page(username).get("/hazards/export.xlsx")
    assert response.status_code == 200
    rows = [
        list(r) for r in load_workbook(io.BytesIO(response.get_data())).active.iter_rows(values_only=True)
    ]
    assert rows[3][0] == "隐患编号"
    exported = {r[0] for r in rows[4:]}
    by_number = {n: k for k, n in web.numbers.items()}
    assert {by_number[n] for n in exported if n in by_number} == set(MATRIX[username].sees)


# --- tasks -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", USERS)
def test_task_page_is_found_only_by_who_sees_the_hazard(web, page, username):
    client, row = page(username), MATRIX[username]
    got = {key: client.get(f"/tasks/{item}").status_code for key, item in web.scene.items.items()}
    assert got == {key: _visible(row, key) for key in web.scene.items}


@pytest.mark.parametrize("username", USERS)
def test_api_task_is_found_only_by_who_sees_the_hazard(web, username):
    row = MATRIX[username]
    got = {
        key: web.api_get(username, f"/api/v1/tasks/{item}").status_code
        for key, item in web.scene.items.items()
    }
    assert got == {key: _visible(row, key) for key in web.scene.items}


@pytest.mark.parametrize("username", USERS)
def test_api_claim_succeeds_exactly_where_the_matrix_allows(web, username):
    row = MATRIX[username]
    got = {}
    for key, item in web.scene.items.items():
        response = web.api_post(username, f"/api/v1/tasks/{item}/claim")
        got[key] = response.status_code
        if response.status_code == 200:  # hand it back so the next user finds it open
            released = web.api_post(username, f"/api/v1/tasks/{item}/release")
            assert released.status_code == 200, released.get_data(as_text=True)
    assert got == {key: _expected_status(row, key, row.acts) for key in web.scene.items}


# --- side actions ---------------------------------------------------------------------------------------


def _void(client: FlaskClient, hazard_id: int) -> int:
    with client.session_transaction() as sess:
        token = sess[CSRF_SESSION_KEY]
    response = client.post(f"/hazards/{hazard_id}/void", data={"csrf_token": token, "reason": "重复登记"})
    return 200 if response.status_code == 302 else response.status_code


@pytest.mark.parametrize("username", USERS)
def test_void_page_needs_supervising_rights(web, page, username):
    """Refusals are tried on the scene hazard (nothing changes); a void the matrix allows is made
    on a fresh copy, which the user must see and which ends up voided."""
    client, row = page(username), MATRIX[username]
    got = {}
    for key, hid in web.scene.hazards.items():
        if key in row.supervises:
            copy = web.copy_of(key)
            got[key] = _void(client, copy)
            with dbmod.make_sessionmaker(web.engine)() as session:
                assert session.get_one(Hazard, copy).status == "voided", key
        else:
            got[key] = _void(client, hid)
    assert got == {key: _expected_status(row, key, row.supervises) for key in web.scene.hazards}
    with dbmod.make_sessionmaker(web.engine)() as session:
        statuses = session.scalars(select(Hazard.status).where(Hazard.id.in_(web.scene.hazards.values())))
        assert "voided" not in set(statuses)


def test_the_scene_is_the_one_the_matrix_describes(web):
    assert set(web.scene.hazards) == set(web.scene.items) == set(HAZARDS) == set(web.numbers)
    assert {key for row in MATRIX.values() for key in row.sees} <= set(HAZARDS)
