"""Login, logout, sessions, CSRF, the login rate limit, redirects and API bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import time_machine
from click.testing import CliRunner
from flask import Blueprint
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

import web.auth
from engine import db as dbmod
from engine import demo as engine_demo
from engine.config import PROJECT_ROOT
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import DemoWorld
from engine.models import ApiToken
from engine.models import LoginAttempt
from engine.models import Role
from engine.models import User
from web import create_app
from web.auth import api_auth_required
from web.auth import current_actor
from web.auth import hash_password
from web.auth import login_required
from web.auth import make_hasher
from web.auth import revoke_token
from web.auth import roles_required
from web.auth import verify_password
from web.cli import main as cli_main
from web.security import CSRF_SESSION_KEY
from web.security import safe_next
from web.session import app_state

LOCKED = "登录失败次数过多"


def _probe(app: Flask) -> None:
    """Test-only views behind each decorator."""
    bp = Blueprint("authprobe", __name__)

    @bp.get("/probe/page")
    @login_required
    def page() -> str:
        return f"page for {current_actor().username}"

    @bp.get("/probe/admin")
    @login_required
    @roles_required(Role.SYS_ADMIN)
    def admin() -> str:
        return "admin only"

    @bp.route("/api/probe/me", methods=["GET", "POST"])
    @api_auth_required
    def me() -> dict[str, object]:
        actor = current_actor()
        return {"username": actor.username, "roles": sorted(actor.roles)}

    app.register_blueprint(bp)


@pytest.fixture
def probed(app: Flask) -> FlaskClient:
    _probe(app)
    return app.test_client()


def _attempts(app: Flask, **where: object) -> list[LoginAttempt]:
    with app_state(app).sessions() as session:
        query = select(LoginAttempt).filter_by(**where).order_by(LoginAttempt.id)
        return list(session.scalars(query))


def _fail(login: Callable[..., object], client: FlaskClient, username: str, times: int, **kw: object) -> None:
    for _ in range(times):
        response = login(client, username, "wrong-password", **kw)
        assert response.status_code == 200  # type: ignore[attr-defined]
        assert "用户名或密码错误" in response.get_data(as_text=True)  # type: ignore[attr-defined]


@pytest.fixture
def restore_password(engine: Engine, world: DemoWorld) -> Iterator[Callable[[str], None]]:
    """Put back the password hash and active flag of users a test changes."""
    saved: dict[str, tuple[str | None, bool]] = {}
    factory = dbmod.make_sessionmaker(engine)

    def remember(username: str) -> None:
        with factory() as session:
            user = session.scalars(select(User).where(User.username == username)).one()
            saved[username] = (user.password_hash, user.active)

    yield remember
    with factory.begin() as session:
        for username, (password_hash, active) in saved.items():
            session.execute(
                update(User)
                .where(User.username == username)
                .values(password_hash=password_hash, active=active)
            )


# --- login and logout ---------------------------------------------------------------------------


def test_login_page_is_a_chinese_form_with_csrf(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "用户登录" in page and "用户名" in page and "密码" in page
    assert 'name="csrf_token"' in page
    assert 'method="post"' in page


def test_anonymous_home_goes_to_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"


def test_login_success_starts_a_fresh_session(client: FlaskClient, login: Callable[..., object]) -> None:
    client.get("/login")
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
        old_token = sess[CSRF_SESSION_KEY]
    response = login(client, "chen_safety")
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response.headers["Location"] == "/"  # type: ignore[attr-defined]
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess[CSRF_SESSION_KEY] != old_token
        assert isinstance(sess["user_id"], int)
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "陈静（安全管理员）" in page
    assert "安全管理人员" in page  # roles in the user menu
    assert "欢迎" in page
    assert 'action="/logout"' in page


def test_home_shows_the_inbox_or_the_task_list(client: FlaskClient, login: Callable[..., object]) -> None:
    login(client, "chen_safety")
    response = client.get("/")
    if any(rule.rule.rstrip("/") == "/tasks" for rule in client.application.url_map.iter_rules()):
        assert response.status_code == 302
        assert response.headers["Location"] == "/tasks"
    else:
        assert response.status_code == 200
        assert "工作台" in response.get_data(as_text=True)


def test_session_cookie_flags(client: FlaskClient, login: Callable[..., object]) -> None:
    response = login(client, "chen_safety")
    cookie = response.headers["Set-Cookie"]  # type: ignore[attr-defined]
    assert cookie.startswith("hazardloop_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain-HTTP intranet: a Secure cookie would never come back
    assert "Expires=" in cookie


def test_session_cookie_is_secure_over_https(app: Flask, login: Callable[..., object]) -> None:
    client = app.test_client()
    response = login(client, "chen_safety", base_url="https://hazardloop.example")
    assert "Secure" in response.headers["Set-Cookie"]  # type: ignore[attr-defined]


def test_secure_cookie_can_be_forced(make_app: Callable[..., Flask]) -> None:
    client = make_app(session_cookie_secure=True).test_client()
    assert "Secure" in client.get("/login").headers["Set-Cookie"]


def test_wrong_password_and_unknown_user_fail_alike(
    app: Flask, client: FlaskClient, login: Callable[..., object]
) -> None:
    wrong = login(client, "chen_safety", "not-the-password")
    unknown = login(client, "no_such_user", "whatever")
    for response in (wrong, unknown):
        assert response.status_code == 200  # type: ignore[attr-defined]
        assert "用户名或密码错误" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    with client.session_transaction() as sess:
        assert "user_id" not in sess
    attempts = _attempts(app)
    assert [(a.username, a.succeeded) for a in attempts] == [("chen_safety", False), ("no_such_user", False)]
    assert attempts[0].remote_addr == "127.0.0.1"


def test_empty_form_is_refused_without_an_attempt(
    app: Flask, client: FlaskClient, csrf: Callable[..., str]
) -> None:
    response = client.post("/login", data={"csrf_token": csrf(client), "username": " ", "password": ""})
    assert response.status_code == 400
    assert "请输入用户名和密码" in response.get_data(as_text=True)
    assert _attempts(app) == []


def test_inactive_user_cannot_log_in(
    client: FlaskClient, login: Callable[..., object], engine: Engine, restore_password: Callable[[str], None]
) -> None:
    restore_password("liu_rectifier")
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "liu_rectifier").values(active=False))
    response = login(client, "liu_rectifier")
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "用户名或密码错误" in response.get_data(as_text=True)  # type: ignore[attr-defined]


def test_deactivation_and_password_change_end_sessions(
    probed: FlaskClient, login: Callable[..., object], engine: Engine, restore_password: Callable[[str], None]
) -> None:
    restore_password("liu_rectifier")
    login(probed, "liu_rectifier")
    assert probed.get("/probe/page").status_code == 200
    with engine.begin() as conn:
        new_hash = hash_password("a-new-password", hasher=make_hasher(app_state(probed.application).settings))
        conn.execute(update(User).where(User.username == "liu_rectifier").values(password_hash=new_hash))
    assert probed.get("/probe/page").status_code == 302  # the old session is over
    login(probed, "liu_rectifier", "a-new-password")
    assert probed.get("/probe/page").status_code == 200
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "liu_rectifier").values(active=False))
    assert probed.get("/probe/page").status_code == 302


def test_logout_ends_the_session(
    probed: FlaskClient, login: Callable[..., object], csrf: Callable[..., str]
) -> None:
    login(probed, "chen_safety")
    probed.get("/lang/en")
    assert probed.get("/probe/page").status_code == 200
    response = probed.post("/logout", data={"csrf_token": csrf(probed)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    with probed.session_transaction() as sess:
        assert "user_id" not in sess
        assert sess["lang"] == "en"  # the language choice survives
    assert probed.get("/probe/page").status_code == 302
    assert probed.get("/logout").status_code == 405


def test_logout_needs_the_csrf_token(
    probed: FlaskClient, login: Callable[..., object], csrf: Callable[..., str]
) -> None:
    login(probed, "chen_safety")
    refused = probed.post("/logout")
    assert refused.status_code == 400
    assert "页面已过期" in refused.get_data(as_text=True)
    assert probed.get("/probe/page").status_code == 200  # still logged in
    accepted = probed.post("/logout", headers={"X-CSRF-Token": csrf(probed)})  # htmx's way
    assert accepted.status_code == 302
    assert probed.get("/probe/page").status_code == 302


def test_login_without_or_with_a_wrong_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    client.get("/login")
    form = {"username": "chen_safety", "password": DEMO_PASSWORD}
    missing = client.post("/login", data=form)
    assert missing.status_code == 400
    wrong = client.post("/login", data={**form, "csrf_token": "forged"})
    assert wrong.status_code == 400
    no_session = app.test_client().post("/login", data={**form, "csrf_token": "forged"})
    assert no_session.status_code == 400
    json_refusal = client.post("/login", data=form, headers={"Accept": "application/json"})
    assert json_refusal.get_json()["code"] == "csrf_failed"
    assert _attempts(app) == []


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/ok\r\nLocation: https://evil.example",
        "",
    ],
)
def test_next_cannot_leave_the_site(client: FlaskClient, login: Callable[..., object], target: str) -> None:
    response = login(client, "chen_safety", next=target)
    assert response.status_code == 302  # type: ignore[attr-defined]
    assert response.headers["Location"] == "/"  # type: ignore[attr-defined]


def test_next_keeps_a_relative_url(client: FlaskClient, login: Callable[..., object]) -> None:
    response = login(client, "chen_safety", next="/hazards?status=open&page=2")
    assert response.headers["Location"] == "/hazards?status=open&page=2"  # type: ignore[attr-defined]


def test_safe_next() -> None:
    assert safe_next("/tasks") == "/tasks"
    assert safe_next("/tasks/3?x=1#top") == "/tasks/3?x=1#top"
    for bad in (None, "tasks", "//x", "/\\x", "https://x/", "/\tx", "ftp://x"):
        assert safe_next(bad) == "/"


def test_login_required_sends_pages_to_login_and_apis_a_401(probed: FlaskClient) -> None:
    page = probed.get("/probe/page?x=1")
    assert page.status_code == 302
    location = urlsplit(page.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/probe/page?x=1"]}
    as_json = probed.get("/probe/page", headers={"Accept": "application/json"})
    assert as_json.status_code == 401
    assert as_json.get_json()["code"] == "unauthenticated"
    htmx = probed.get("/probe/page", headers={"HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"].startswith("/login?next=")


def test_login_then_back_to_next(probed: FlaskClient, login: Callable[..., object]) -> None:
    target = probed.get("/probe/page").headers["Location"]
    next_url = parse_qs(urlsplit(target).query)["next"][0]
    response = login(probed, "chen_safety", next=next_url)
    assert response.headers["Location"] == "/probe/page"  # type: ignore[attr-defined]
    assert probed.get("/probe/page").get_data(as_text=True) == "page for chen_safety"


def test_roles_required(probed: FlaskClient, app: Flask, login: Callable[..., object]) -> None:
    login(probed, "chen_safety")
    assert probed.get("/probe/admin").status_code == 403
    admin = app.test_client()
    login(admin, "admin")
    assert admin.get("/probe/admin").status_code == 200


def test_nav_shows_links_by_role(client: FlaskClient, app: Flask, login: Callable[..., object]) -> None:
    login(client, "wu_reviewer")
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    assert 'href="/reviews"' in page and 'href="/hazards/new"' in page
    assert 'href="/admin"' not in page
    admin = app.test_client()
    login(admin, "admin")
    page = admin.get("/login", follow_redirects=True).get_data(as_text=True)
    assert 'href="/admin"' in page and 'href="/hazards"' not in page


# --- the login rate limit -----------------------------------------------------------------------


def test_five_failures_lock_the_username_without_checking_passwords(
    app: Flask, client: FlaskClient, login: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail(login, client, "chen_safety", 5)

    def no_password_check(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a password was checked while the username is locked")

    monkeypatch.setattr(web.auth, "verify_password", no_password_check)
    refused = login(client, "chen_safety")  # the right password
    assert refused.status_code == 429  # type: ignore[attr-defined]
    page = refused.get_data(as_text=True)  # type: ignore[attr-defined]
    assert LOCKED in page and "15 分钟后再试" in page
    assert 14 * 60 < int(refused.headers["Retry-After"]) <= 15 * 60  # type: ignore[attr-defined]
    assert len(_attempts(app, username="chen_safety")) == 5  # refusals are not counted
    monkeypatch.undo()
    assert login(client, "wu_reviewer").status_code == 302  # type: ignore[attr-defined]


def test_the_lock_lifts_after_the_window(
    app: Flask, client: FlaskClient, login: Callable[..., object]
) -> None:
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False) as traveller:
        _fail(login, client, "chen_safety", 5)
        traveller.shift(dt.timedelta(minutes=14))
        refused = login(client, "chen_safety")
        assert refused.status_code == 429  # type: ignore[attr-defined]
        assert "1 分钟后再试" in refused.get_data(as_text=True)  # type: ignore[attr-defined]
        traveller.shift(dt.timedelta(minutes=1, seconds=1))
        assert login(client, "chen_safety").status_code == 302  # type: ignore[attr-defined]


def test_a_success_resets_the_username_count(
    client: FlaskClient, app: Flask, login: Callable[..., object]
) -> None:
    _fail(login, client, "chen_safety", 4)
    assert login(client, "chen_safety").status_code == 302  # type: ignore[attr-defined]
    other = app.test_client()
    _fail(login, other, "chen_safety", 4)
    assert login(other, "chen_safety").status_code == 302  # type: ignore[attr-defined]


def test_twenty_failures_lock_the_address(app: Flask, login: Callable[..., object]) -> None:
    attacker = app.test_client()
    addr = {"environ_base": {"REMOTE_ADDR": "10.9.8.7"}}
    for i in range(20):
        _fail(login, attacker, f"guess_{i}", 1, **addr)
    refused = login(attacker, "chen_safety", **addr)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert LOCKED in refused.get_data(as_text=True)  # type: ignore[attr-defined]
    elsewhere = app.test_client()
    assert login(elsewhere, "chen_safety", environ_base={"REMOTE_ADDR": "10.9.8.8"}).status_code == 302  # type: ignore[attr-defined]


def test_the_limit_is_shared_by_every_web_process(
    make_app: Callable[..., Flask], login: Callable[..., object]
) -> None:
    first, second = make_app(), make_app()
    _fail(login, first.test_client(), "chen_safety", 5)
    assert login(second.test_client(), "chen_safety").status_code == 429  # type: ignore[attr-defined]


# --- passwords ----------------------------------------------------------------------------------


def test_argon2id_hashes_with_the_configured_cost(app: Flask) -> None:
    hasher = make_hasher(app_state(app).settings)
    hashed = hash_password("秘密 password", hasher=hasher)
    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(hashed, "秘密 password", hasher=hasher)
    assert not verify_password(hashed, "wrong", hasher=hasher)
    assert not verify_password(None, "x")
    assert not verify_password("not-a-hash", "x")
    with app.app_context():
        assert hash_password("x").startswith("$argon2id$v=19$m=8,t=1,p=1$")  # the app's cost
    assert hash_password("x").startswith("$argon2id$v=19$m=65536,t=3,p=4$")  # argon2's defaults


def test_login_upgrades_a_hash_made_with_an_older_cost(
    make_app: Callable[..., Flask],
    login: Callable[..., object],
    committed: sessionmaker[Session],
    restore_password: Callable[[str], None],
) -> None:
    restore_password("liu_rectifier")
    app = make_app(argon2_time_cost=2)
    assert login(app.test_client(), "liu_rectifier").status_code == 302  # type: ignore[attr-defined]
    with committed() as session:
        stored = session.scalars(select(User.password_hash).where(User.username == "liu_rectifier")).one()
    assert stored is not None and "$m=8,t=2,p=1$" in stored


def test_init_demo_stores_argon2_hashes_of_the_demo_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, login: Callable[..., object]
) -> None:
    url = f"sqlite:///{tmp_path / 'init.sqlite'}"
    env = {
        "DATABASE_URL": url,
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(tmp_path / "var"),
        "HAZARDLOOP_AUDIT_KEY": "init-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
        "HAZARDLOOP_ARGON2_TIME_COST": "1",
        "HAZARDLOOP_ARGON2_MEMORY_COST": "8",
        "HAZARDLOOP_ARGON2_PARALLELISM": "1",
    }
    # The demo hazards are test_cli.py's business; here only the users matter.
    monkeypatch.setattr(engine_demo, "seed_demo_hazards", lambda *args, **kwargs: [])
    result = CliRunner().invoke(cli_main, ["init", "--demo"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    engine = dbmod.make_engine(url)
    try:
        with engine.connect() as conn:
            hashes = conn.scalars(select(User.password_hash)).all()
    finally:
        engine.dispose()
    assert len(hashes) == len(engine_demo.USERS)
    assert all(h and h.startswith("$argon2id$v=19$m=8,t=1,p=1$") for h in hashes)
    app = create_app(Settings.from_env(env))
    try:
        assert login(app.test_client(), "admin", DEMO_PASSWORD).status_code == 302  # type: ignore[attr-defined]
    finally:
        app_state(app).engine.dispose()


# --- API bearer tokens --------------------------------------------------------------------------


def test_bearer_token_authenticates_api_calls(
    probed: FlaskClient, app: Flask, api_token: Callable[..., str]
) -> None:
    token = api_token("wu_reviewer")
    response = probed.get("/api/probe/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.get_json() == {"username": "wu_reviewer", "roles": ["dept_reviewer"]}
    with app_state(app).sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in (row.token_hash, row.name)
        assert row.last_used_at is not None
    # CSRF does not apply to bearer-authenticated API writes ...
    assert probed.post("/api/probe/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_bearer_token_errors_are_401_json(
    probed: FlaskClient, app: Flask, api_token: Callable[..., str], world: DemoWorld
) -> None:
    def call(header: str | None) -> tuple[int, str, str]:
        headers = {"Authorization": header} if header is not None else {}
        response = probed.get("/api/probe/me", headers=headers)
        assert response.mimetype == "application/json"
        return response.status_code, response.get_json()["code"], response.get_json()["message"]

    assert call(None) == (401, "unauthenticated", "需要有效的 API 令牌")
    assert call("Bearer not-a-real-token") == (401, "invalid_token", "API 令牌无效")
    assert call("Basic dXNlcjpwYXNz") == (401, "invalid_token", "API 令牌无效")
    assert call("Bearer ") == (401, "invalid_token", "API 令牌无效")

    expiring = api_token("wu_reviewer", ttl=dt.timedelta(minutes=30))
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)):
        assert call(f"Bearer {expiring}") == (401, "invalid_token", "API 令牌已过期")

    revoked = api_token("wu_reviewer")
    with app_state(app).sessions.begin() as session:
        token_id = session.scalars(select(ApiToken.id).order_by(ApiToken.id.desc())).first()
        assert token_id is not None
        revoke_token(session, token_id=token_id, user_id=world.users["wu_reviewer"].id)
    assert call(f"Bearer {revoked}") == (401, "invalid_token", "API 令牌已被吊销")


def test_a_deactivated_users_token_stops_working(
    probed: FlaskClient,
    api_token: Callable[..., str],
    engine: Engine,
    restore_password: Callable[[str], None],
) -> None:
    restore_password("liu_rectifier")
    token = api_token("liu_rectifier")
    with engine.begin() as conn:
        conn.execute(update(User).where(User.username == "liu_rectifier").values(active=False))
    response = probed.get("/api/probe/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_browser_session_may_call_the_api_with_the_csrf_header(
    probed: FlaskClient, login: Callable[..., object], csrf: Callable[..., str]
) -> None:
    login(probed, "chen_safety")
    assert probed.get("/api/probe/me").get_json()["username"] == "chen_safety"
    refused = probed.post("/api/probe/me")
    assert refused.status_code == 400
    assert refused.get_json()["code"] == "csrf_failed"
    assert probed.post("/api/probe/me", headers={"X-CSRF-Token": csrf(probed)}).status_code == 200


def test_a_bearer_header_never_falls_back_to_the_cookie(
    probed: FlaskClient, login: Callable[..., object]
) -> None:
    login(probed, "chen_safety")
    response = probed.post("/api/probe/me", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


# --- headers, language --------------------------------------------------------------------------


def test_security_headers(client: FlaskClient) -> None:
    headers = client.get("/login").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "http" not in csp  # no CDN or other origin
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cache-Control"] == "no-store"
    with client.get("/static/css/app.css") as css:
        assert css.status_code == 200
        assert "no-store" not in css.headers.get("Cache-Control", "")
        assert "://" not in css.get_data(as_text=True)  # no external fonts or images


def test_language_choice_and_accept_language(client: FlaskClient, app: Flask) -> None:
    english = app.test_client().get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Sign in" in english.get_data(as_text=True)
    assert "用户登录" in client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    assert "Sign in" in client.get("/login").get_data(as_text=True)
    assert client.get("/lang/xx?next=https://evil.example").headers["Location"] == "/"
    back = client.get("/lang/zh", headers={"Accept-Language": "en"})
    assert back.headers["Location"] == "/"
    assert "用户登录" in client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
