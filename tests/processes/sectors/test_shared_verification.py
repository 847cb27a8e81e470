"""The sector variant files as files: the shared verification call activity, the gate, DI, the ladder.

Every ``processes/sectors/<variant>.bpmn`` holds one variant process and a copy of the shared
verification process ``hazard_verification`` (canonical text: ``shared_verification.bpmn``),
which the variant calls with a ``bpmn:callActivity``. SpiffWorkflow resolves a called process only
within the document it parses, so the copy must travel with every variant, and must not drift.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from lxml import etree

from engine import bpmn
from engine import definitions
from engine import sectors
from engine.errors import DefinitionInvalid
from tests.processes.test_hazard_general import LADDER_TIMERS

ROOT = Path(__file__).resolve().parents[3]
PROCESSES = ROOT / "processes"
SECTORS = PROCESSES / "sectors"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
FLOW_NODES = (
    "startEvent",
    "endEvent",
    "boundaryEvent",
    "intermediateCatchEvent",
    "userTask",
    "serviceTask",
    "callActivity",
    "exclusiveGateway",
    "parallelGateway",
)
VARIANT_FILES = [SECTORS / v.filename for v in sectors.VARIANTS]


def tree(path: Path):
    return etree.parse(str(path)).getroot()


def process(root, process_id: str):
    found = root.find(f"bpmn:process[@id='{process_id}']", NS)
    assert found is not None, process_id
    return found


def diagram(root, process_id: str):
    for candidate in root.iterfind("bpmndi:BPMNDiagram", NS):
        if candidate.find("bpmndi:BPMNPlane", NS).get("bpmnElement") == process_id:
            return candidate
    raise AssertionError(f"no diagram for {process_id}")


def canonical(element) -> bytes:
    return etree.tostring(element, method="c14n")


def test_every_file_is_a_listed_variant():
    on_disk = {p.name for p in SECTORS.glob("*.bpmn")} - {sectors.SHARED_FILE}
    assert on_disk == {v.filename for v in sectors.VARIANTS}


@pytest.mark.parametrize("path", VARIANT_FILES, ids=lambda p: p.stem)
def test_variant_carries_an_identical_copy_of_the_shared_verification(path):
    shared, variant = tree(SECTORS / sectors.SHARED_FILE), tree(path)
    key = sectors.SHARED_PROCESS_KEY
    assert canonical(process(variant, key)) == canonical(process(shared, key))
    assert canonical(diagram(variant, key)) == canonical(diagram(shared, key))


@pytest.mark.parametrize("path", VARIANT_FILES, ids=lambda p: p.stem)
def test_variant_passes_the_gate_and_calls_the_shared_verification(path, ctx):
    xml = path.read_bytes()
    definitions.check_bpmn_rules(xml, ctx.forms)
    item = next(v for v in sectors.VARIANTS if v.filename == path.name)
    parsed = {p.process_key: p for p in bpmn.parse_bpmn(xml, path.name)}
    assert set(parsed) == {item.process_key, sectors.SHARED_PROCESS_KEY}
    # the called process's spec travels inside the variant's own spec
    assert set(parsed[item.process_key].subprocess_specs) == {sectors.SHARED_PROCESS_KEY}
    calls = process(tree(path), item.process_key).findall("bpmn:callActivity", NS)
    assert [c.get("calledElement") for c in calls] == [sectors.SHARED_PROCESS_KEY]
    # the id names the track the statutory rules are checked against (hazard_general_… / hazard_major_…)
    assert all(item.process_key.startswith(f"hazard_{grade}_") for grade in item.grades)


@pytest.mark.parametrize("path", [*VARIANT_FILES, SECTORS / sectors.SHARED_FILE], ids=lambda p: p.stem)
def test_every_element_has_di(path):
    """bpmn-js draws only what has a shape or an edge: every flow node and flow of every process."""
    root = tree(path)
    for proc in root.iterfind("bpmn:process", NS):
        plane = diagram(root, proc.get("id")).find("bpmndi:BPMNPlane", NS)
        shapes = {s.get("bpmnElement") for s in plane.iterfind("bpmndi:BPMNShape", NS)}
        edges = {
            e.get("bpmnElement"): len(e.findall("{http://www.omg.org/spec/DD/20100524/DI}waypoint"))
            for e in plane.iterfind("bpmndi:BPMNEdge", NS)
        }
        nodes = {n.get("id") for tag in FLOW_NODES for n in proc.iterfind(f"bpmn:{tag}", NS)}
        flows = {f.get("id") for f in proc.iterfind("bpmn:sequenceFlow", NS)}
        assert nodes - shapes == set(), proc.get("id")
        assert flows - set(edges) == set(), proc.get("id")
        assert all(count >= 2 for count in edges.values())
        assert shapes <= nodes and set(edges) <= flows  # nothing drawn that is not in the process


@pytest.mark.parametrize("path", VARIANT_FILES, ids=lambda p: p.stem)
def test_the_rectification_task_carries_the_escalation_ladder(path):
    """The same boundary timers, with the same expressions, as hazard_general's ``rectify``."""
    general = tree(PROCESSES / "hazard_general.bpmn")
    expected = {
        b.get("id").removeprefix("rectify_"): b.findtext(".//bpmn:timeDate", namespaces=NS)
        for b in general.iterfind(".//bpmn:boundaryEvent[@attachedToRef='rectify']", NS)
    }
    assert set(expected) == set(LADDER_TIMERS)
    item = next(v for v in sectors.VARIANTS if v.filename == path.name)
    proc = process(tree(path), item.process_key)
    task = "govern" if proc.find("bpmn:userTask[@id='govern']", NS) is not None else "rectify"
    timers = {
        b.get("id").removeprefix(f"{task}_"): b
        for b in proc.iterfind(f"bpmn:boundaryEvent[@attachedToRef='{task}']", NS)
    }
    assert set(LADDER_TIMERS) <= set(timers)
    for name in LADDER_TIMERS:
        boundary = timers[name]
        assert boundary.get("cancelActivity") == "false"
        assert boundary.findtext(".//bpmn:timeDate", namespaces=NS) == expected[name]


def test_the_shared_verification_separates_from_every_rectification_task():
    proc = process(tree(SECTORS / sectors.SHARED_FILE), sectors.SHARED_PROCESS_KEY)
    separate = {}
    for task in proc.iterfind("bpmn:userTask", NS):
        props = {
            p.get("name"): p.get("value")
            for p in task.iterfind(
                "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS
            )
        }
        separate[task.get("id")] = set(props.get("separate_from", "").split(","))
    assert {"rectify", "govern", "fix_on_spot"} <= separate["verify"]
    assert {"rectify", "govern"} <= separate["evaluate"]
    for path in VARIANT_FILES:
        item = next(v for v in sectors.VARIANTS if v.filename == path.name)
        variant = process(tree(path), item.process_key)
        rectification = {
            t.get("id")
            for t in variant.iterfind("bpmn:userTask", NS)
            if t.get("id") in ("rectify", "govern", "fix_on_spot")
        }
        assert rectification and rectification <= separate["verify"], path.name


def _policy_value(profile: str, name: str) -> dict:
    return json.loads((PROCESSES / "policies" / f"{profile}.json").read_text(encoding="utf-8"))["values"][
        name
    ]


def test_fire_six_months_is_read_from_the_pinned_profile():
    """The 挂牌满6个月 timer reads fire.json's major_fire_unresolved_escalation (exposed to the
    instance at start as policy_<name> / policy_<name>_unit), so the policy editor changes it."""
    proc = process(tree(SECTORS / "fire.bpmn"), "hazard_major_fire")
    expression = proc.find("bpmn:boundaryEvent[@id='govern_unresolved']", NS).findtext(
        ".//bpmn:timeDate", namespaces=NS
    )
    call = ast.parse(expression, mode="eval").body
    ladder = call.args[0]
    assert isinstance(ladder, ast.Dict)
    assert [ast.literal_eval(k) for k in ladder.keys] == ["major_fire_unresolved_escalation"]
    assert [n.id for n in ladder.values[0].elts] == [
        "policy_major_fire_unresolved_escalation",
        "policy_major_fire_unresolved_escalation_unit",
    ]
    assert _policy_value("fire", "major_fire_unresolved_escalation")["value"] == 6
    assert definitions.policy_names_in(tree(SECTORS / "fire.bpmn")).keys() == {
        "major_fire_unresolved_escalation"
    }


def test_road_ten_days_are_read_from_the_pinned_profile():
    proc = process(tree(SECTORS / "road.bpmn"), "hazard_general_road")
    params = {
        p.get("id"): p.get("value")
        for p in proc.iterfind("bpmn:serviceTask[@id='set_elimination_due']//spiffworkflow:parameter", NS)
    }
    assert params == {
        "days": "policy_vehicle_hazard_elimination",
        "unit": "policy_vehicle_hazard_elimination_unit",
    }
    value = _policy_value("national", "vehicle_hazard_elimination")
    assert (value["value"], value["unit"]) == (10, "calendar_days")


@pytest.mark.parametrize("path", VARIANT_FILES, ids=lambda p: p.stem)
def test_the_gate_holds_the_variant_to_its_grade(path, ctx):
    """Skipping the departmental review (验收通过 straight to the end) is refused at deploy."""
    text = path.read_text(encoding="utf-8")
    old = 'id="flow_accepted" name="验收通过" sourceRef="gw_accepted" targetRef="set_review_due"'
    assert old in text
    mutant = text.replace(old, old.replace('targetRef="set_review_due"', 'targetRef="end_closed"'))
    with pytest.raises(DefinitionInvalid):
        definitions.check_bpmn_rules(mutant.encode("utf-8"), ctx.forms)
