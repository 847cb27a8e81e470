"""Stored serialized instances (tests/data/instances/) load with the current code and keep running.

The files were written once by ``tests/data/make_instances.py`` through ``engine.runtime`` (one of
them by a separate process). A serializer change that cannot read them fails here, before it can
fail on a customer's database (DESIGN §2: own a serializer version, keep stored fixtures).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import time_machine

from engine import bpmn

INSTANCES = Path(__file__).resolve().parents[1] / "data" / "instances"
DOCUMENTS = sorted(INSTANCES.glob("*.json"))


def _load_document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def _process(definition: str, process_key: str) -> Any:
    """The spec, parsed from the diagram snapshot stored beside the instances."""
    path = INSTANCES / definition
    [process] = [p for p in bpmn.parse_bpmn(path.read_bytes(), path.name) if p.process_key == process_key]
    return process


def _load(document: dict[str, Any]) -> Any:
    process = _process(document["definition"], document["process_key"])
    state = base64.b64decode(document["state_b64"])
    return bpmn.load_state(state, document["serializer_version"], process.spec, process.subprocess_specs)


def _timers(workflow: Any) -> dict[str, str]:
    return {t.key: t.due_at.isoformat() for t in bpmn.waiting_timers(workflow)}


@pytest.fixture(params=DOCUMENTS, ids=[p.stem for p in DOCUMENTS])
def document(request) -> Iterator[dict[str, Any]]:
    doc = _load_document(request.param)
    with time_machine.travel(dt.datetime.fromisoformat(doc["saved_at"]), tick=False):
        yield doc


def test_the_stored_set_covers_the_loops():
    names = {p.stem for p in DOCUMENTS}
    assert {
        "general_rectify",
        "general_verify_after_reject",
        "general_closed",
        "major_govern",
        "general_closure_review_subprocess",
    } <= names
    docs = [_load_document(p) for p in DOCUMENTS]
    assert any(d["created_in_subprocess"] for d in docs)
    assert any(d["expected"]["completed"] for d in docs)
    assert any(d["expected"]["waiting_timers"] for d in docs)
    assert {d["process_key"] for d in docs} == {"hazard_general", "hazard_major"}


def test_definition_snapshot_is_the_deployed_content(document):
    snapshot = (INSTANCES / document["definition"]).read_bytes()
    assert hashlib.sha256(snapshot).hexdigest() == document["content_hash"]


def test_stored_state_is_what_the_runtime_stores(document):
    state = base64.b64decode(document["state_b64"])
    assert len(state) == document["state_bytes"]
    stored = json.loads(zlib.decompress(state))
    assert stored["typename"] == "BpmnWorkflow"
    assert "spec" not in stored and "subprocess_specs" not in stored  # spec-free (DESIGN §3)


def test_stored_instance_loads_with_its_expectations(document):
    assert document["serializer_version"] == bpmn.SERIALIZER_VERSION, (
        "the serializer version changed: keep these files, add a migration for them, and generate "
        "new ones with tests/data/make_instances.py"
    )
    workflow = _load(document)
    assert isinstance(workflow.script_engine, bpmn.SafeScriptEngine)
    expected = document["expected"]
    assert sorted(t.key for t in bpmn.ready_user_tasks(workflow)) == expected["ready"]
    assert _timers(workflow) == expected["waiting_timers"]
    assert bpmn.workflow_completed(workflow) is expected["completed"]
    # nothing was due at the time it was saved: refreshing timers changes nothing
    bpmn.advance(workflow)
    assert sorted(t.key for t in bpmn.ready_user_tasks(workflow)) == expected["ready"]
    assert _timers(workflow) == expected["waiting_timers"]
    ready = bpmn.ready_user_tasks(workflow)
    data = ready[0].data if ready else workflow.data
    for key, value in expected["data"].items():
        assert data.get(key) == value, key


def test_stored_instance_continues(document):
    step = document["next"]
    workflow = _load(document)
    if step is None:
        assert document["expected"]["completed"]
        assert bpmn.ready_user_tasks(workflow) == []
        return
    [task] = [t for t in bpmn.ready_user_tasks(workflow) if t.key == step["task"]]
    bpmn.complete_task(workflow, bpmn.find_ready_task(workflow, task.id), step["variables"])
    assert sorted(t.key for t in bpmn.ready_user_tasks(workflow)) == step["then_ready"]
    assert sorted(_timers(workflow)) == step["then_waiting"]
    assert bpmn.workflow_completed(workflow) is step["then_completed"]
    # and the continued instance survives the current serializer
    process = _process(document["definition"], document["process_key"])
    again = bpmn.load_state(
        bpmn.dump_state(workflow), bpmn.SERIALIZER_VERSION, process.spec, process.subprocess_specs
    )
    assert sorted(t.key for t in bpmn.ready_user_tasks(again)) == step["then_ready"]


WITH_TIMERS = [p for p in DOCUMENTS if _load_document(p)["expected"]["waiting_timers"]]


@pytest.mark.parametrize("path", WITH_TIMERS, ids=[p.stem for p in WITH_TIMERS])
def test_stored_instance_timers_fire_when_due(path):
    """Loaded timers are live: travelling past the last due time fires every waiting one."""
    document = _load_document(path)
    waiting = document["expected"]["waiting_timers"]
    workflow = _load(document)
    last_due = max(dt.datetime.fromisoformat(v) for v in waiting.values())
    with time_machine.travel(last_due + dt.timedelta(seconds=1), tick=False):
        bpmn.advance(workflow)
        assert _timers(workflow) == {}
    effects = bpmn.effects_of(workflow)
    assert sorted(e.handler for e in effects) == ["mark_overdue", "remind"]
    assert sorted(t.key for t in bpmn.ready_user_tasks(workflow)) == document["expected"]["ready"]


@pytest.mark.parametrize("version", ["hl-0", "hl-2", "1.5", "1.4", ""])
def test_load_state_refuses_another_serializer_version(version):
    doc = _load_document(INSTANCES / "general_rectify.json")
    process = _process(doc["definition"], doc["process_key"])
    with pytest.raises(ValueError, match="serializer version"):
        bpmn.load_state(base64.b64decode(doc["state_b64"]), version, process.spec, process.subprocess_specs)
