"""CSRF protection, security headers, request size limit, cookie flags and safe redirects.

CSRF: every POST/PUT/PATCH/DELETE must carry the session's token, either as the form field
``csrf_token`` or in the ``X-CSRF-Token`` header; otherwise it is refused with 400 before the
view runs. In a form::

    <form method="post" action="{{ url_for('hazards.void', hazard_id=hazard.id) }}">
      {{ csrf_field() }}
      ...
    </form>

htmx requests need nothing: ``base.html`` puts the header on ``<body hx-headers=…>`` (and the
token in ``<meta name="csrf-token">`` for hand-written ``fetch`` calls). The only exemption is
an ``/api/`` request that carries ``Authorization: Bearer …``: it is authenticated by the token,
not by a cookie a browser would send on its own, and ``api_auth_required`` then ignores the
session cookie (an ``/api/`` request with no logged-in session is not checked either: there is
nobody to impersonate, and ``api_auth_required`` answers 401). ``/api/`` requests authenticated
by the browser session are checked like forms.

Headers: a Content-Security-Policy allowing only this origin (no CDN, no inline script or style:
put CSS in ``web/static/css`` and JS in ``web/static/js``), ``frame-ancestors 'none'``,
``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` and ``Cache-Control:
no-store`` on dynamic pages. A view that needs a different policy (Swagger UI, say) sets its own
``Content-Security-Policy`` header on its response, which is then left alone.

Size: bodies over ``Settings.max_content_length`` are refused with 413 before anything reads them.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask
from flask import request
from flask import session
from flask.sessions import SecureCookieSessionInterface
from markupsafe import Markup
from markupsafe import escape
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from engine.config import Settings

from .errors import CsrfFailed

CSRF_SESSION_KEY = "_csrf"
#: where web.auth keeps the logged-in user's id (defined here: web.auth imports this module)
SESSION_USER_KEY = "user_id"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # data:/blob: for photo previews made in the browser from a chosen file
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), geolocation=(self), microphone=()",
}


# --- CSRF ---------------------------------------------------------------------------------------


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_SESSION_KEY] = token
    return token


def rotate_csrf_token() -> str:
    """Replace the token (at login, after the session was cleared)."""
    session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return str(session[CSRF_SESSION_KEY])


def csrf_field() -> Markup:
    """``<input type="hidden" name="csrf_token" value="…">`` for a form."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, escape(csrf_token()))


def is_api_request() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def is_bearer_api_request() -> bool:
    """An ``/api/`` request carrying a bearer token (exempt from CSRF; see the module docstring)."""
    return is_api_request() and request.headers.get("Authorization", "")[:7].lower() == "bearer "


def _check_csrf() -> None:
    if request.method in SAFE_METHODS or is_bearer_api_request():
        return
    if is_api_request() and SESSION_USER_KEY not in session:
        return  # nobody to impersonate: api_auth_required answers 401
    if request.routing_exception is not None:
        return  # no view will run: let the 404/405 answer
    expected = session.get(CSRF_SESSION_KEY)
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD)
    if not isinstance(expected, str) or not expected or not sent:
        raise CsrfFailed()
    if not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfFailed()


# --- size, headers ------------------------------------------------------------------------------


def _check_size() -> None:
    limit = request.max_content_length
    if limit is not None and request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def _set_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static" and "Cache-Control" not in response.headers:
        # Pages show who may see what; never leave them in a shared browser's or proxy's cache.
        response.headers["Cache-Control"] = "no-store"
    return response


# --- redirects ----------------------------------------------------------------------------------


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a relative path on this site, else ``default``.

    Refuses absolute and scheme-relative URLs (``https://x``, ``//x``, ``/\\x``), anything with
    a scheme (``javascript:``) and control characters, so ``?next=`` cannot send a user away.
    """
    if not target or not isinstance(target, str):
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def this_page() -> str:
    """This request's path and query string, for a ``?next=`` back to it."""
    path = request.full_path
    return path[:-1] if path.endswith("?") else path


# --- cookies ------------------------------------------------------------------------------------


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, marked Secure when the request came over HTTPS.

    ``SESSION_COOKIE_SECURE`` (``Settings.session_cookie_secure``) forces it on; intranets that
    serve plain HTTP still get a working cookie. Behind a TLS-terminating proxy set
    ``Settings.trusted_proxies`` so ``X-Forwarded-Proto`` is believed.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_app(app: Flask, settings: Settings) -> None:
    """Install the size limit, CSRF check, security headers, cookie session and proxy handling."""
    app.session_interface = SessionInterface()
    if settings.trusted_proxies > 0:
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.before_request(_check_size)
    app.before_request(_check_csrf)
    app.after_request(_set_headers)
    app.add_template_global(csrf_field, "csrf_field")
    app.add_template_global(csrf_token, "csrf_token")
    app.add_template_global(this_page, "this_page")
