"""Database access for views: one SQLAlchemy engine and sessionmaker per Flask app.

The app factory puts an :class:`AppState` in ``app.extensions["hazardloop"]``; views reach it
through these helpers and never create engines or sessions themselves. The view owns the unit of
work (STYLE rule 4): engine functions take the session and never commit.

A view that changes something (POST)::

    from web.session import engine_context, sessions

    with sessions().begin() as session:  # commits on success; rolls back on any error,
        hazard = runtime.void(            # *before* the error handler turns it into a 4xx
            session, engine_context(), hazard_id=hazard_id, actor=current_actor(), reason=reason
        )
        number = hazard.number            # read what you need inside the block
    flash(_("已作废 {number}", number=number), "success")
    return redirect(url_for("hazards.detail", hazard_id=hazard_id))

A view that only reads (GET)::

    from web.session import read_session

    with read_session() as session:       # never commits: rolled back when the block ends
        items = tasklist.inbox(session, current_actor())
        return render_template("tasks/index.html", items=items)  # render inside the block:
                                                                  # lazy loads need the session

Sessions are made with ``expire_on_commit=False``, so objects stay readable after a commit, but
relationships not yet loaded cannot be fetched once the block has closed.

On SQLite every transaction, reads included, starts with ``BEGIN IMMEDIATE`` (engine/db.py), so
keep blocks short: render, don't wait on anything else inside them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from argon2 import PasswordHasher
from flask import Flask
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine.config import Settings
from engine.runtime import EngineContext

EXTENSION_KEY = "hazardloop"


@dataclass(frozen=True, slots=True)
class AppState:
    """What one app holds for its whole life: settings, the engine, sessions and engine context."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    ctx: EngineContext
    #: argon2id with the cost from settings (``web.auth.hash_password`` uses it).
    hasher: PasswordHasher


def app_state(app: Flask | None = None) -> AppState:
    """The :class:`AppState` of ``app`` (default: the current app)."""
    state: AppState = (app or current_app).extensions[EXTENSION_KEY]
    return state


def sessions() -> sessionmaker[Session]:
    """The current app's sessionmaker: ``with sessions().begin() as session: ...``."""
    return app_state().sessions


def engine_context() -> EngineContext:
    """The current app's :class:`engine.runtime.EngineContext` (settings, clock, forms, audit key)."""
    return app_state().ctx


def settings() -> Settings:
    return app_state().settings


@contextmanager
def read_session() -> Iterator[Session]:
    """A session for reading: whatever happens inside, nothing is committed."""
    with sessions()() as session:
        try:
            yield session
        finally:
            session.rollback()
