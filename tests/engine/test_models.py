"""Models on the real database: aware UTC datetimes (UTCDateTime) and the tamper-evident event chain.

Runs on whichever database the suite runs on (SQLite by default, PostgreSQL with
``HAZARDLOOP_TEST_DATABASE_URL``), so both are covered by the two CI runs.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import time_machine
from sqlalchemy import Column
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Table
from sqlalchemy import delete
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import StatementError

from engine import runtime
from engine.demo import open_item
from engine.events import verify_chain
from engine.models import Event
from engine.models import Hazard
from engine.models import ProcessInstance
from engine.models import UTCDateTime
from tests.factories import make_hazard
from tests.factories import plan_form

CST = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------------
# UTCDateTime


@pytest.fixture
def probe(sessions):
    """A scratch table with one UTCDateTime column, created inside the test's outer transaction."""
    table = Table(
        "tz_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime(), nullable=True),
    )
    with sessions() as session:
        table.create(session.connection())
        session.commit()
    return table


def test_offset_datetime_reads_back_as_the_same_utc_instant(sessions, probe):
    written = dt.datetime(2026, 11, 23, 8, 0, tzinfo=CST)
    with sessions.begin() as session:
        session.execute(insert(probe).values(id=1, at=written))
    with sessions() as session:
        read = session.scalar(select(probe.c.at).where(probe.c.id == 1))
        raw = session.scalar(text("SELECT at FROM tz_probe WHERE id = 1"))
    assert read == written
    assert read == dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC)
    assert read.utcoffset() == dt.timedelta(0)
    assert (read.hour, read.minute) == (0, 0)  # not a naive 08:00 (the SQLite trap)
    # what the database itself holds is the UTC instant too
    if isinstance(raw, str):  # SQLite: ISO text in UTC
        assert raw.startswith("2026-11-23 00:00:00")
    else:  # PostgreSQL timestamptz
        assert raw == written


def test_model_column_round_trip_keeps_the_instant_and_microseconds(sessions, ctx, world):
    discovered = dt.datetime(2026, 11, 20, 8, 0, 0, 123456, tzinfo=CST)
    deadline = dt.datetime(2026, 12, 10, 23, 59, 59, tzinfo=CST)
    with time_machine.travel(START, tick=False), sessions.begin() as session:
        actor = world.actor(session, "chen_safety")
        hazard_id = make_hazard(session, ctx, world, actor, discovered_at=discovered, deadline=deadline).id
    with sessions() as session:
        hazard = session.get(Hazard, hazard_id)
        assert hazard.discovered_at == dt.datetime(2026, 11, 20, 0, 0, 0, 123456, tzinfo=dt.UTC)
        assert hazard.discovered_at.tzinfo is not None and hazard.discovered_at.utcoffset() == dt.timedelta(0)
        assert hazard.deadline == dt.datetime(2026, 12, 10, 15, 59, 59, tzinfo=dt.UTC)
        # and a query comparing against an offset-aware bound value finds it
        found = session.scalar(
            select(Hazard.id).where(
                Hazard.id == hazard_id,
                Hazard.discovered_at == dt.datetime(2026, 11, 20, 8, 0, 0, 123456, CST),
            )
        )
        assert found == hazard_id


def test_naive_datetime_is_refused(sessions, probe):
    with sessions() as session:
        with pytest.raises(StatementError) as err:
            session.execute(insert(probe).values(id=2, at=dt.datetime(2026, 11, 23, 8, 0)))
        assert isinstance(err.value.orig, ValueError)
        assert "naive datetime" in str(err.value.orig)
        session.rollback()


def test_naive_datetime_on_a_model_is_refused(sessions, ctx, world):
    with time_machine.travel(START, tick=False), sessions.begin() as session:
        actor = world.actor(session, "chen_safety")
        hazard_id = make_hazard(session, ctx, world, actor).id
    with sessions() as session:
        hazard = session.get(Hazard, hazard_id)
        hazard.closed_at = dt.datetime(2026, 11, 23, 8, 0)
        with pytest.raises(StatementError, match="naive datetime"):
            session.flush()
        session.rollback()


def test_none_passes_through(sessions, probe):
    with sessions.begin() as session:
        session.execute(insert(probe).values(id=3, at=None))
    with sessions() as session:
        assert session.scalar(select(probe.c.at).where(probe.c.id == 3)) is None


# --------------------------------------------------------------------------------------------------
# The audit chain: tampering is detected and located


def _drive(sessions, ctx, world, *, title: str) -> int:
    """Register a hazard, complete the plan and claim the rectification: a few links of chain."""
    with sessions.begin() as session:
        actor = world.actor(session, "chen_safety")
        hazard_id = make_hazard(session, ctx, world, actor, title=title).id
    with sessions.begin() as session:
        item = open_item(session, session.get(Hazard, hazard_id), "assign_plan")
        actor = world.actor(session, "chen_safety")
        runtime.complete(
            session, ctx, work_item_id=item.id, actor=actor, form=plan_form(dt.date(2026, 12, 10))
        )
    with sessions.begin() as session:
        item = open_item(session, session.get(Hazard, hazard_id), "rectify")
        runtime.claim(session, ctx, work_item_id=item.id, actor=world.actor(session, "zhang_rectifier"))
    return hazard_id


@pytest.fixture
def chain(sessions, ctx, world):
    """Two driven hazards; returns (instance id, [event ids in chain order]) of the first."""
    with time_machine.travel(START, tick=False):
        first = _drive(sessions, ctx, world, title="储罐区可燃气体报警器失效")
        _drive(sessions, ctx, world, title="二号仓库消防通道堵塞")
    with sessions() as session:
        instance_id = session.scalar(select(ProcessInstance.id).where(ProcessInstance.hazard_id == first))
        event_ids = list(
            session.scalars(select(Event.id).where(Event.instance_id == instance_id).order_by(Event.seq))
        )
    assert len(event_ids) >= 5
    return instance_id, event_ids


def _verify(sessions, ctx, instance_id=None):
    with sessions() as session:  # a fresh session: nothing cached from before the tampering
        return verify_chain(session, key=ctx.audit_key, instance_id=instance_id)


def test_untouched_chain_verifies(sessions, ctx, chain):
    instance_id, _ = chain
    assert _verify(sessions, ctx) == []
    assert _verify(sessions, ctx, instance_id) == []


def test_updated_payload_is_reported_at_that_event(sessions, ctx, chain):
    instance_id, event_ids = chain
    target = event_ids[2]
    with sessions.begin() as session:
        before = session.scalar(select(Event.payload).where(Event.id == target))
        session.execute(
            update(Event.__table__)
            .where(Event.__table__.c.id == target)
            .values(payload={**before, "late": True})
        )
    breaks = _verify(sessions, ctx)
    assert len(breaks) == 1
    [found] = breaks
    assert (found.instance_id, found.event_id, found.seq) == (instance_id, target, 3)
    assert "HMAC" in found.reason
    assert _verify(sessions, ctx, instance_id) == breaks


def test_recomputing_the_hash_without_the_key_is_still_detected(sessions, ctx, chain):
    instance_id, event_ids = chain
    target = event_ids[1]
    with sessions.begin() as session:
        event = session.get(Event, target)
        forged_hash = hashlib.sha256(b"forged").hexdigest()
        session.execute(
            update(Event.__table__)
            .where(Event.__table__.c.id == target)
            .values(actor_id=None, hash=forged_hash)
        )
        assert event.seq == 2
    [found] = _verify(sessions, ctx)
    assert (found.instance_id, found.event_id) == (instance_id, target)


def test_updated_timestamp_is_detected(sessions, ctx, chain):
    instance_id, event_ids = chain
    with sessions.begin() as session:
        session.execute(
            update(Event.__table__)
            .where(Event.__table__.c.id == event_ids[0])
            .values(at=dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC))
        )
    [found] = _verify(sessions, ctx)
    assert (found.instance_id, found.event_id, found.seq) == (instance_id, event_ids[0], 1)


def test_deleting_the_last_event_is_detected(sessions, ctx, chain):
    instance_id, event_ids = chain
    with sessions.begin() as session:
        session.execute(delete(Event.__table__).where(Event.__table__.c.id == event_ids[-1]))
    breaks = _verify(sessions, ctx)
    assert len(breaks) == 1
    [found] = breaks
    assert found.instance_id == instance_id
    assert found.seq == len(event_ids)  # the instance row still counts the deleted event
    assert "删除" in found.reason


def test_deleting_an_event_in_the_middle_is_detected(sessions, ctx, chain):
    instance_id, event_ids = chain
    with sessions.begin() as session:
        session.execute(delete(Event.__table__).where(Event.__table__.c.id == event_ids[2]))
    [found] = _verify(sessions, ctx)
    assert (found.instance_id, found.event_id, found.seq) == (instance_id, event_ids[3], 4)
    assert "序号不连续" in found.reason


def test_a_wrong_key_breaks_the_chain_at_its_first_link(sessions, ctx, chain):
    instance_id, event_ids = chain
    with sessions() as session:
        breaks = verify_chain(session, key=b"not-the-audit-key", instance_id=instance_id)
    assert [(b.event_id, b.seq) for b in breaks] == [(event_ids[0], 1)]
