"""Fixtures: a real database (SQLite by default, PostgreSQL via HAZARDLOOP_TEST_DATABASE_URL).

Session scope: a fresh database migrated with Alembic (this also tests the migrations), bundled
processes deployed and the demo organisations seeded, all committed. Function scope: one
connection in an outer transaction, and a sessionmaker whose sessions run in savepoints, so each
test step is its own unit of work (rolled back on error, like a real request) and the whole test
is rolled back at the end.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Connection
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import db as dbmod
from engine.config import Settings
from engine.demo import DemoWorld
from engine.demo import deploy_bundled
from engine.demo import seed_calendar_and_policies
from engine.demo import seed_organisations
from engine.runtime import EngineContext

TEST_DATABASE_URL = os.environ.get("HAZARDLOOP_TEST_DATABASE_URL", "")


def is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hazardloop-test-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> Iterator[str]:
    if not is_postgres():
        yield f"sqlite:///{tmp_root / 'test.sqlite'}"
        return
    # A fresh PostgreSQL database per test session, dropped afterwards.
    with dbmod.scratch_database(TEST_DATABASE_URL, prefix="hl_test_") as url:
        yield url


@pytest.fixture(scope="session")
def settings(tmp_root: Path, database_url: str) -> Settings:
    return replace(
        Settings(),
        env="test",
        database_url=database_url,
        var_dir=tmp_root / "var",
        audit_key="test-audit-key-0123456789abcdef",
        max_rejects=3,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    dbmod.upgrade(settings.database_url)
    eng = dbmod.make_engine(settings.database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def ctx(settings: Settings) -> EngineContext:
    return EngineContext(settings=settings)


@pytest.fixture(scope="session")
def world(engine: Engine, ctx: EngineContext, settings: Settings) -> DemoWorld:
    """Committed once per session: organisations, users, deployed processes and bindings,
    the working-day calendar (2004–2026 from chinese-calendar), the bundled policy profiles and the
    shipped task forms as their national version 1 (so instances pin forms stored in the database)."""
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        world = seed_organisations(session)
        deploy_bundled(session, settings.processes_dir, ctx.forms)
        seed_calendar_and_policies(session, settings.processes_dir)
    return world


@pytest.fixture
def sessions(engine: Engine, world: DemoWorld) -> Iterator[sessionmaker[Session]]:
    """A sessionmaker whose sessions are savepoints inside one outer, rolled-back transaction."""
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield factory
    outer.rollback()
    connection.close()


#: what hangs off hazards, children first (:func:`delete_hazards`)
HAZARD_TABLES = (
    "notice",
    "outbox_message",
    "in_app_notification",
    "event",
    "incident",
    "timer_job",
    "task_submission",
    "attachment",
    "extension_request",
    "work_item",
    "process_instance",
    "hazard_department",
    "hazard",
)


def delete_hazards(conn: Connection | Session) -> None:
    """Delete every hazard and what hangs off it (a Connection or a Session)."""
    for table in HAZARD_TABLES:
        conn.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def committed(engine: Engine, world: DemoWorld) -> Iterator[sessionmaker[Session]]:
    """Real commits visible to other connections and processes; hazards are deleted afterwards."""
    factory = dbmod.make_sessionmaker(engine)
    yield factory
    with engine.begin() as conn:
        delete_hazards(conn)
