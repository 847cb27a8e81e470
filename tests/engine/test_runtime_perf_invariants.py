"""Invariants the persisted path's speed relies on (bench/engine_loop.py): one compare-and-set per
step, one INSERT for a step's events, and a workflow cache that can never hand out a stale object."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator

import pytest
import time_machine
from sqlalchemy import event
from sqlalchemy import select

from engine import bpmn
from engine import runtime
from engine.definitions import spec_for
from engine.errors import InvalidInput
from engine.models import Event
from engine.models import ProcessInstance
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}


@pytest.fixture
def driver(sessions, ctx, world) -> Iterator[Driver]:
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, round_trip=False)


@pytest.fixture
def statements(engine) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()

    def count(conn, cursor, statement, params, context, executemany):
        words = statement.split()
        if words[0] in ("INSERT", "UPDATE"):
            counts[f"{words[0]} {words[2] if words[0] == 'INSERT' else words[1]}"] += 1

    event.listen(engine, "before_cursor_execute", count)
    yield counts
    event.remove(engine, "before_cursor_execute", count)


def _version(driver: Driver, hazard_id: int) -> int:
    with driver.sessions() as session:
        return session.scalar(select(ProcessInstance.version).where(ProcessInstance.hazard_id == hazard_id))


def _rectify_form(driver: Driver, hazard_id: int) -> dict:
    photo = driver.upload(hazard_id, b"after-photo", username="zhang_rectifier", phase="after")
    return {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-11-25"}


def test_each_completed_step_bumps_the_version_once_with_one_update(driver, statements):
    hid = driver.register()
    steps = [
        ("assign_plan", "chen_safety", lambda: plan_form(dt.date(2026, 12, 10))),
        ("rectify", "zhang_rectifier", lambda: _rectify_form(driver, hid)),
        ("verify", "chen_safety", lambda: VERIFY_PASS),
        ("closure_review", "wu_reviewer", lambda: REVIEW_PASS),
    ]
    for key, username, form in steps:
        data = form()
        before = _version(driver, hid)
        statements.clear()
        driver.complete(hid, key, username, data)
        assert _version(driver, hid) == before + 1, key
        assert statements["UPDATE process_instance"] == 1, (key, statements)
        # every event of the step (task_completed, task_created, timer_fired, closed …) in one INSERT
        assert statements["INSERT event"] == 1, (key, statements)
    assert driver.hazard(hid).status == "closed"
    with driver.sessions() as session:
        seqs = session.scalars(select(Event.seq).where(Event.hazard_id == hid).order_by(Event.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_failed_step_leaves_no_pending_events_or_cached_workflow(driver, monkeypatch):
    hid = driver.register()
    loads = []
    real_load = bpmn.load_state
    monkeypatch.setattr(bpmn, "load_state", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    with pytest.raises(InvalidInput):
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10), measures=""))
    assert loads == []  # the committed registration's workflow came from the cache …
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    assert loads == [1]  # … and, taken by the failed step, was not put back: deserialized again
    assert driver.open_keys(hid) == ["rectify"]
    actions = driver.actions(hid)
    assert actions.count("task_completed") == 1
    with driver.sessions() as session:
        seqs = session.scalars(select(Event.seq).where(Event.hazard_id == hid).order_by(Event.seq)).all()
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_cached_workflow_is_the_stored_state(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    with driver.sessions() as session:
        instance = session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hid)).one()
        spec, subs = spec_for(instance.definition_version)
        cached = runtime._WORKFLOWS.take(instance.id, runtime._cache_key(instance, spec), instance.state)
        assert cached is not None
        fresh = bpmn.load_state(instance.state, instance.serializer_version, spec, subs)
        assert bpmn.dump_state(cached) == instance.state == bpmn.dump_state(fresh)
        # taken means gone: a second taker (another thread) deserializes its own copy
        assert (
            runtime._WORKFLOWS.take(instance.id, runtime._cache_key(instance, spec), instance.state) is None
        )


def test_a_stale_cache_entry_is_a_miss():
    cache = runtime._WorkflowCache(size=2)
    wf = object()
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (3, 1, "hl-1", 7), b"other state") is None  # same version, other bytes
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (4, 1, "hl-1", 7), b"state") is None  # another writer bumped the version
    cache.put_all({1: ((3, 1, "hl-1", 7), b"state", wf)})
    assert cache.take(1, (3, 1, "hl-1", 8), b"state") is None  # another spec object
    cache.put_all({n: ((1,), b"s", wf) for n in range(1, 5)})
    assert cache.take(1, (1,), b"s") is None and cache.take(4, (1,), b"s") is wf  # bounded (LRU)
