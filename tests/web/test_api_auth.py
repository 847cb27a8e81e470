"""``/api/v1/auth/token``: issuing (with the login rate limit), revoking, and every 401."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.demo import DEMO_PASSWORD
from engine.models import ApiToken
from engine.models import LoginAttempt

TOKEN_URL = "/api/v1/auth/token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status: int, code: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"}, body
    if code is not None:
        assert body["code"] == code, body
    return dict(body)


def test_token_is_issued_for_a_password_and_works(client: FlaskClient, engine: Engine) -> None:
    response = client.post(
        TOKEN_URL, json={"username": "chen_safety", "password": DEMO_PASSWORD, "name": "巡检App"}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["name"] == "巡检App"
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
    with Session(engine) as session:
        row = session.get_one(ApiToken, body["id"])
        assert row.token_hash != body["token"]  # only the hash is stored
    assert client.get("/api/v1/tasks", headers=bearer(body["token"])).status_code == 200


def test_token_ttl_is_chosen_within_bounds(client: FlaskClient) -> None:
    response = client.post(
        TOKEN_URL, json={"username": "chen_safety", "password": DEMO_PASSWORD, "ttl_hours": 2}
    )
    expires = dt.datetime.fromisoformat(response.get_json()["expires_at"])
    assert expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=2)
    too_long = client.post(
        TOKEN_URL, json={"username": "chen_safety", "password": DEMO_PASSWORD, "ttl_hours": 100000}
    )
    assert "ttl_hours" in assert_error(too_long, 422, "invalid_input")["errors"]


def test_wrong_password_is_401_and_counts_as_a_failed_login(client: FlaskClient, engine: Engine) -> None:
    response = client.post(TOKEN_URL, json={"username": "chen_safety", "password": "wrong"})
    assert_error(response, 401, "invalid_credentials")
    unknown = client.post(TOKEN_URL, json={"username": "nobody", "password": "wrong"})
    assert assert_error(unknown, 401)["message"] == response.get_json()["message"]
    with Session(engine) as session:
        attempts = session.scalars(select(LoginAttempt).where(LoginAttempt.username == "chen_safety")).all()
    assert [a.succeeded for a in attempts] == [False]


def test_token_requests_share_the_login_rate_limit(make_app: Callable[..., Flask]) -> None:
    client = make_app(login_max_failures_per_user=2).test_client()
    for _ in range(2):
        assert (
            client.post(TOKEN_URL, json={"username": "zhang_rectifier", "password": "x"}).status_code == 401
        )
    locked = client.post(TOKEN_URL, json={"username": "zhang_rectifier", "password": DEMO_PASSWORD})
    assert_error(locked, 429, "too_many_requests")
    assert int(locked.headers["Retry-After"]) > 0


def test_token_request_validation(client: FlaskClient) -> None:
    bad = client.post(TOKEN_URL, data="{not json", content_type="application/json")
    assert_error(bad, 400, "malformed_json")
    assert_error(client.post(TOKEN_URL, json=["chen_safety"]), 400, "invalid_body")
    assert_error(client.post(TOKEN_URL, data="username=x", content_type="text/plain"), 415)
    missing = assert_error(client.post(TOKEN_URL, json={"username": "chen_safety"}), 422, "invalid_input")
    assert set(missing["errors"]) == {"password"}
    unknown = client.post(TOKEN_URL, json={"username": "a", "password": "b", "scope": "admin"})
    assert assert_error(unknown, 422)["errors"] == {"scope": ["未知字段"]}
    typed = client.post(TOKEN_URL, json={"username": 5, "password": "b", "ttl_hours": "2"})
    assert set(assert_error(typed, 422)["errors"]) == {"username", "ttl_hours"}
    nul = client.post(TOKEN_URL, json={"username": "chen\u0000safety", "password": "b"})
    assert set(assert_error(nul, 422)["errors"]) == {"username"}


def test_every_kind_of_bad_token_is_401(client: FlaskClient, api_token: Callable[..., str]) -> None:
    missing = assert_error(client.get("/api/v1/tasks"), 401, "unauthenticated")
    assert missing["message"]
    assert client.get("/api/v1/tasks").headers["WWW-Authenticate"].startswith("Bearer")
    invalid = client.get("/api/v1/tasks", headers=bearer("not-a-real-token"))
    assert_error(invalid, 401, "invalid_token")
    assert 'error_description="invalid"' in invalid.headers["WWW-Authenticate"]
    malformed = client.get("/api/v1/tasks", headers={"Authorization": "Basic Y2hlbjp4"})
    assert_error(malformed, 401, "invalid_token")
    expired = client.get(
        "/api/v1/tasks", headers=bearer(api_token("chen_safety", ttl=-dt.timedelta(minutes=1)))
    )
    assert_error(expired, 401, "invalid_token")
    assert 'error_description="expired"' in expired.headers["WWW-Authenticate"]


def test_own_token_can_be_revoked_and_then_fails(client: FlaskClient, api_token: Callable[..., str]) -> None:
    issued = client.post(TOKEN_URL, json={"username": "chen_safety", "password": DEMO_PASSWORD}).get_json()
    other = api_token("chen_safety")
    response = client.delete(f"{TOKEN_URL}/{issued['id']}", headers=bearer(other))
    assert response.status_code == 204
    assert response.get_data() == b""
    revoked = client.get("/api/v1/tasks", headers=bearer(issued["token"]))
    assert_error(revoked, 401, "invalid_token")
    assert 'error_description="revoked"' in revoked.headers["WWW-Authenticate"]
    # revoking the token one is using works too, and is the last thing it does
    mine = client.post(TOKEN_URL, json={"username": "chen_safety", "password": DEMO_PASSWORD}).get_json()
    assert client.delete(f"{TOKEN_URL}/{mine['id']}", headers=bearer(mine["token"])).status_code == 204
    assert client.get("/api/v1/tasks", headers=bearer(mine["token"])).status_code == 401


def test_someone_elses_or_an_unknown_token_is_404(client: FlaskClient, api_token: Callable[..., str]) -> None:
    theirs = client.post(
        TOKEN_URL, json={"username": "zhang_rectifier", "password": DEMO_PASSWORD}
    ).get_json()
    mine = api_token("chen_safety")
    assert_error(client.delete(f"{TOKEN_URL}/{theirs['id']}", headers=bearer(mine)), 404, "not_found")
    assert client.get("/api/v1/tasks", headers=bearer(theirs["token"])).status_code == 200
    assert_error(client.delete(f"{TOKEN_URL}/999999", headers=bearer(mine)), 404)
    # ids that do not fit the column are refused by the route, not by the database
    assert_error(client.delete(f"{TOKEN_URL}/99999999999999999999", headers=bearer(mine)), 404)
    assert_error(client.delete(f"{TOKEN_URL}/0", headers=bearer(mine)), 404)


def test_revoking_needs_a_token(client: FlaskClient) -> None:
    assert_error(client.delete(f"{TOKEN_URL}/1"), 401, "unauthenticated")


def test_session_authenticated_api_writes_need_the_csrf_header(
    client: FlaskClient, login: Callable[..., object], csrf: Callable[[FlaskClient], str]
) -> None:
    login(client, "chen_safety")
    assert client.get("/api/v1/tasks").status_code == 200  # the browser session works for reads
    assert_error(client.delete(f"{TOKEN_URL}/999999"), 400, "csrf_failed")
    response = client.delete(f"{TOKEN_URL}/999999", headers={"X-CSRF-Token": csrf(client)})
    assert_error(response, 404)
