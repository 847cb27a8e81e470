"""Who is asking: argon2 passwords, the login form, the session, API bearer tokens, rate limits.

A page::

    from web.auth import current_actor, login_required, roles_required

    @bp.get("/hazards")
    @login_required            # anonymous: 302 to /login?next=/hazards (JSON or htmx: 401)
    def index() -> str:
        actor = current_actor()  # engine.access.Actor, loaded once per request (cached in g)
        ...

    @bp.get("/admin/users")
    @login_required
    @roles_required(Role.SYS_ADMIN)   # other roles: 403
    def users() -> str: ...

An API view::

    @api.post("/api/v1/tasks/<int:item_id>/claim")
    @api_auth_required         # Authorization: Bearer <token>, or the browser session (then the
    def claim(item_id: int):   # X-CSRF-Token header is required); failure: 401 JSON
        actor = current_actor()

Tokens are issued with :func:`issue_token` (only their sha256 is stored) and checked with
:func:`actor_from_bearer`, which raises :class:`web.errors.InvalidToken` (``reason``: missing,
invalid, expired, revoked). The session cookie holds ``user_id``, a fingerprint of the password
hash (changing a password ends every other session) and the CSRF token; it is cleared at login
(no session fixation) and at logout.

Login attempts are rows in ``login_attempt``, so the rate limit holds across every web process:
``login_max_failures_per_user`` failures for a username (since its last success) or
``login_max_failures_per_address`` from one address within ``login_window_minutes`` refuse the
login with 429 *before* any password is checked. The check takes no lock, so a burst of parallel
attempts may slip a few past the limit; the limit slows guessing, it does not count exactly.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import secrets
from collections.abc import Callable
from typing import ParamSpec
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError
from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import flash
from flask import g
from flask import has_app_context
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from sqlalchemy import ColumnElement
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine.access import Actor
from engine.access import load_actor
from engine.config import Settings
from engine.errors import Forbidden
from engine.errors import NotFound
from engine.models import ApiToken
from engine.models import LoginAttempt
from engine.models import Role
from engine.models import User

from .errors import InvalidToken
from .errors import TooManyAttempts
from .errors import Unauthenticated
from .errors import wants_json
from .i18n import SESSION_KEY as LANG_SESSION_KEY
from .i18n import _
from .security import SESSION_USER_KEY
from .security import is_bearer_api_request
from .security import rotate_csrf_token
from .security import safe_next
from .security import this_page
from .session import app_state
from .session import read_session
from .session import sessions

P = ParamSpec("P")
R = TypeVar("R")

SESSION_USER_ID = SESSION_USER_KEY
SESSION_AUTH_KEY = "auth_key"
SESSION_AUTH_AT = "auth_at"
#: ``g`` attribute caching the request's actor (``None``: looked up, nobody logged in)
_G_ACTOR = "hl_actor"
#: last_used_at of a token is written at most this often (not one write per API call)
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=5)
LOCKED_MESSAGE = "登录失败次数过多，已暂时锁定。请在 {minutes} 分钟后再试，或联系系统管理员。"


def _now() -> dt.datetime:
    """Now, from the app's engine clock when there is an app (time-machine moves both)."""
    if has_app_context():
        return app_state().ctx.clock.now()
    return dt.datetime.now(dt.UTC)


# --- passwords ----------------------------------------------------------------------------------


def make_hasher(settings: Settings) -> PasswordHasher:
    """argon2id with the cost from settings."""
    return PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )


_DEFAULT_HASHER = PasswordHasher()


def _hasher(hasher: PasswordHasher | None) -> PasswordHasher:
    if hasher is not None:
        return hasher
    return app_state().hasher if has_app_context() else _DEFAULT_HASHER


def hash_password(password: str, *, hasher: PasswordHasher | None = None) -> str:
    """An argon2id hash (``$argon2id$…``) of ``password``.

    Uses ``hasher``, else the current app's (cost from settings), else argon2-cffi's defaults.
    """
    return _hasher(hasher).hash(password)


def verify_password(
    password_hash: str | None, password: str, *, hasher: PasswordHasher | None = None
) -> bool:
    """Does ``password`` match ``password_hash``? ``False`` for a missing or malformed hash."""
    if not password_hash:
        return False
    try:
        return _hasher(hasher).verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return PasswordHasher(time_cost, memory_cost, parallelism).hash(secrets.token_urlsafe(16))


def _dummy_verify(password: str) -> None:
    """Spend the time of one verification, so unknown usernames answer as slowly as known ones."""
    hasher = app_state().hasher
    dummy = _dummy_hash(hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    verify_password(dummy, password, hasher=hasher)


def _auth_key(password_hash: str | None) -> str:
    """A fingerprint of the password hash kept in the session: a new password ends old sessions."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


# --- login rate limit ---------------------------------------------------------------------------


def _locked_until(
    session: Session, where: list[ColumnElement[bool]], limit: int, since: dt.datetime
) -> dt.datetime | None:
    """When fewer than ``limit`` failures matching ``where`` will remain in the window, if locked."""
    ats = session.scalars(
        select(LoginAttempt.at)
        .where(*where, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)
        .order_by(LoginAttempt.at.desc())
        .limit(limit)
    ).all()
    if len(ats) < limit:
        return None
    return ats[-1]


def check_login_allowed(
    session: Session, settings: Settings, *, username: str, remote_addr: str, now: dt.datetime
) -> None:
    """Refuse a login attempt while its username or address is over the failure limit.

    :raises TooManyAttempts: with ``retry_after`` seconds until the oldest counted failure ages out.
    """
    window = dt.timedelta(minutes=settings.login_window_minutes)
    since = now - window
    last_success = session.scalars(
        select(LoginAttempt.at)
        .where(LoginAttempt.username == username, LoginAttempt.succeeded.is_(True), LoginAttempt.at >= since)
        .order_by(LoginAttempt.at.desc())
        .limit(1)
    ).first()
    user_since = max(since, last_success) if last_success is not None else since
    oldest = [
        _locked_until(
            session,
            [LoginAttempt.username == username, LoginAttempt.at > user_since],
            settings.login_max_failures_per_user,
            since,
        ),
        _locked_until(
            session, [LoginAttempt.remote_addr == remote_addr], settings.login_max_failures_per_address, since
        ),
    ]
    unlocks = [at + window for at in oldest if at is not None]
    if unlocks:
        seconds = (max(unlocks) - now).total_seconds()
        raise TooManyAttempts(math.ceil(seconds), LOCKED_MESSAGE, minutes=max(1, math.ceil(seconds / 60)))


def authenticate(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    remote_addr: str,
    now: dt.datetime,
) -> User | None:
    """Check a username and password and record the attempt; the user, or ``None`` on failure.

    Unknown, inactive and password-less users fail like a wrong password (same message, same
    time). A hash made with older cost parameters is upgraded on success.

    :raises TooManyAttempts: the username or address is locked; no password is checked.
    """
    username = username[:64]
    remote_addr = remote_addr[:64]
    check_login_allowed(session, settings, username=username, remote_addr=remote_addr, now=now)
    user = session.scalars(select(User).where(User.username == username)).first()
    ok = False
    if user is None or not user.password_hash:
        _dummy_verify(password)
    else:
        ok = verify_password(user.password_hash, password) and user.active
    session.add(LoginAttempt(username=username, remote_addr=remote_addr, at=now, succeeded=ok))
    if not ok or user is None:
        return None
    hasher = app_state().hasher
    if hasher.check_needs_rehash(user.password_hash or ""):
        user.password_hash = hasher.hash(password)
    return user


# --- the request's actor ------------------------------------------------------------------------


def _bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else ``None``."""
    if not header:
        return None
    scheme, _sep, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _actor_from_session() -> Actor | None:
    user_id = session.get(SESSION_USER_ID)
    if not isinstance(user_id, int):
        return None
    with read_session() as db:
        user = db.get(User, user_id)
        if user is None or not user.active or session.get(SESSION_AUTH_KEY) != _auth_key(user.password_hash):
            actor = None
        else:
            try:
                actor = load_actor(db, user_id)
            except NotFound:
                actor = None
    if actor is None:
        _end_session()
    return actor


def optional_actor() -> Actor | None:
    """The logged-in actor of this request, or ``None``; loaded once and cached in ``g``.

    For an ``/api/`` request with a bearer token it is the token's user (set by
    :func:`api_auth_required`), never the cookie's.
    """
    if _G_ACTOR in g:
        cached: Actor | None = g.get(_G_ACTOR)
        return cached
    actor = None if is_bearer_api_request() else _actor_from_session()
    setattr(g, _G_ACTOR, actor)
    return actor


def current_actor() -> Actor:
    """The logged-in actor (use under ``login_required`` / ``api_auth_required``).

    :raises Unauthenticated: nobody is logged in (answered with 401).
    """
    actor = optional_actor()
    if actor is None:
        raise Unauthenticated()
    return actor


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Pages only: anonymous users are sent to the login form with ``?next=`` this page."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if optional_actor() is None:
            if wants_json():
                raise Unauthenticated()
            target = url_for("auth.login", next=this_page())
            if request.headers.get("HX-Request"):
                # htmx would swap the login page into a fragment: make it load the page instead.
                response = current_app.make_response(("", 401))
                response.headers["HX-Redirect"] = target
                return response
            flash(_("请先登录"), "info")
            return redirect(target)
        return view(*args, **kwargs)

    return wrapper


def roles_required(*roles: Role | str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Allow only actors holding one of ``roles`` (put it under ``login_required``); else 403."""
    wanted = frozenset(Role(r) for r in roles)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_actor().roles & wanted:
                raise Forbidden(_("您没有权限执行该操作。"))
            return view(*args, **kwargs)

        return wrapper

    return decorate


# --- API tokens ---------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user_id: int, name: str, ttl: dt.timedelta, *, now: dt.datetime | None = None
) -> str:
    """Create an API token for ``user_id`` valid for ``ttl``; returns the token (shown once).

    Only its sha256 is stored, so a database leak yields no usable token.
    """
    token = secrets.token_urlsafe(32)
    now = now or _now()
    session.add(
        ApiToken(
            user_id=user_id,
            token_hash=token_hash(token),
            name=name[:100],
            created_at=now,
            expires_at=now + ttl,
        )
    )
    session.flush()
    return token


def revoke_token(session: Session, *, token_id: int, user_id: int | None = None) -> ApiToken:
    """Revoke a token (only the owner's when ``user_id`` is given).

    :raises NotFound: no such token (for that user).
    """
    token = session.get(ApiToken, token_id)
    if token is None or (user_id is not None and token.user_id != user_id):
        raise NotFound("API 令牌", token_id)
    token.revoked = True
    return token


def actor_from_bearer(session: Session, header: str | None, *, now: dt.datetime | None = None) -> Actor:
    """The actor of an ``Authorization: Bearer <token>`` header value.

    :raises InvalidToken: ``reason`` ``missing`` (no bearer header), ``invalid`` (unknown token,
        or its user is gone or inactive), ``expired`` or ``revoked``.
    """
    if not header:
        raise InvalidToken("missing")
    token = _bearer(header)
    if token is None:
        raise InvalidToken("invalid")
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if row is None:
        raise InvalidToken("invalid")
    if row.revoked:
        raise InvalidToken("revoked")
    now = now or _now()
    if row.expires_at <= now:
        raise InvalidToken("expired")
    try:
        actor = load_actor(session, row.user_id)
    except NotFound:
        raise InvalidToken("invalid") from None
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_TOUCH_INTERVAL:
        row.last_used_at = now
    return actor


def api_auth_required(view: Callable[P, R]) -> Callable[P, R]:
    """API views: a bearer token, else the browser session (CSRF-checked); else 401 JSON."""

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        header = request.headers.get("Authorization")
        if header:
            with sessions().begin() as db:
                actor = actor_from_bearer(db, header)
            setattr(g, _G_ACTOR, actor)
        elif optional_actor() is None:
            raise InvalidToken("missing")
        return view(*args, **kwargs)

    return wrapper


# --- login and logout pages ---------------------------------------------------------------------

bp = Blueprint("auth", __name__)


def _end_session() -> None:
    """Forget the user, keeping only the language choice."""
    lang = session.get(LANG_SESSION_KEY)
    session.clear()
    if lang:
        session[LANG_SESSION_KEY] = lang
    g.pop(_G_ACTOR, None)


def _render_login(next_url: str, username: str = "", error: str | None = None, status: int = 200) -> Response:
    html = render_template("auth/login.html", next_url=next_url, username=username, error=error)
    response = current_app.make_response((html, status))
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """The login form; POST checks the rate limit, then the password, then starts a new session."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if optional_actor() is not None:
            return redirect(next_url)
        return _render_login(next_url)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return _render_login(next_url, username, _("请输入用户名和密码"), 400)
    try:
        # Render nothing inside the transaction: templates may read the database themselves
        # (on SQLite a second transaction would wait for this one's write lock).
        with sessions().begin() as db:
            user = authenticate(
                db,
                app_state().settings,
                username=username,
                password=password,
                remote_addr=request.remote_addr or "unknown",
                now=_now(),
            )
            found = (user.id, user.display_name, _auth_key(user.password_hash)) if user else None
    except TooManyAttempts as exc:
        response = _render_login(next_url, username, _(exc.message, **exc.params), 429)
        response.headers.update(exc.headers())
        return response
    if found is None:
        return _render_login(next_url, username, _("用户名或密码错误"), 200)
    user_id, display_name, auth_key = found
    _end_session()  # a fresh session: nothing an attacker planted before login survives it
    session[SESSION_USER_ID] = user_id
    session[SESSION_AUTH_KEY] = auth_key
    session[SESSION_AUTH_AT] = _now().isoformat()
    session.permanent = True
    rotate_csrf_token()
    flash(_("欢迎，{name}", name=display_name), "success")
    return redirect(next_url)


@bp.post("/logout")
def logout() -> Response:
    """End the session (POST with the CSRF token, so another site cannot log a user out)."""
    _end_session()
    flash(_("您已退出登录"), "info")
    return redirect(url_for("auth.login"))


def cached_actor() -> Actor | None:
    """The actor already loaded for this request, without touching the database (templates)."""
    actor: Actor | None = g.get(_G_ACTOR)
    return actor


def _load_actor() -> None:
    # Load the actor before the view opens its own transaction: loading it lazily inside one
    # would open a second transaction, which on SQLite waits for the first one's lock.
    if request.endpoint != "static":
        optional_actor()


def init_app(app: Flask) -> None:
    """Register ``/login`` and ``/logout``, load the actor first thing, expose ``current_user``."""
    app.register_blueprint(bp)
    app.before_request(_load_actor)
    app.context_processor(lambda: {"current_user": cached_actor()})
