"""hazardloop's outer layer and composition root: the Flask app factory and the ``hazardloop`` CLI.

``web`` is the only layer that may import both ``engine`` and ``notifiers`` (STYLE rule 1).

:func:`create_app` builds one app per :class:`~engine.config.Settings`: one SQLAlchemy engine and
sessionmaker, one :class:`~engine.runtime.EngineContext`, all in ``app.extensions["hazardloop"]``
(:class:`web.session.AppState`). It never starts a scheduler: timers run in ``hazardloop worker``.

Where things are, for a page or API view:

- ``web.session``: ``sessions().begin()`` (writes), ``read_session()`` (GETs), ``engine_context()``
- ``web.auth``: ``login_required``, ``roles_required``, ``api_auth_required``, ``current_actor()``
- ``web.security``: ``csrf_field()`` in every POST form (checked for you), ``safe_next()``
- ``web.errors``: raise engine errors (or ``abort``); they become 4xx JSON or HTML pages
- ``web.i18n``: ``_()`` for every user-facing string; label filters for enum values
- ``web.pages``: ``PAGE_MODULES`` (one line per page blueprint) and the navigation bar
"""

from __future__ import annotations

import datetime as dt

from flask import Flask

from engine import db as dbmod
from engine.config import Settings
from engine.runtime import EngineContext

from . import api
from . import assets
from . import auth
from . import i18n
from . import security
from .errors import register_error_handlers
from .pages import register_pages
from .session import EXTENSION_KEY
from .session import AppState


def create_app(settings: Settings | None = None) -> Flask:
    """Build the web application (``settings`` default: :meth:`Settings.from_env`).

    :raises RuntimeError: bad configuration (no secret key outside dev, missing audit key).
    """
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="hazardloop_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=settings.max_content_length,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined] - Chinese stays readable in JSON

    engine = dbmod.make_engine(settings.database_url)
    ctx = EngineContext(settings=settings)
    ctx.audit_key  # noqa: B018 - fail at start-up, not at the first change, when the key is missing
    app.extensions[EXTENSION_KEY] = AppState(
        settings=settings,
        engine=engine,
        sessions=dbmod.make_sessionmaker(engine),
        ctx=ctx,
        hasher=auth.make_hasher(settings),
    )

    # Order matters: auth loads the actor before security checks the size and the CSRF token.
    auth.init_app(app)
    security.init_app(app, settings)
    i18n.init_app(app)
    assets.init_app(app)
    register_error_handlers(app)
    register_pages(app)
    api.init_app(app)
    return app
