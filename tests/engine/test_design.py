"""engine.design: who may edit, shared drafts, publishing diagrams, forms and policies, the log."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy import update

from engine import definitions
from engine import design
from engine import policy
from engine import sectors
from engine.access import load_actor
from engine.errors import Conflict
from engine.errors import DefinitionInvalid
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.forms import parse_form_definition
from engine.models import DefinitionVersion
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import Membership
from engine.models import ProcessInstance
from engine.models import Role
from engine.models import User
from engine.models import WorkItem
from tests.factories import make_hazard

ROOT = Path(__file__).resolve().parents[2]
GENERAL = (ROOT / "processes" / "hazard_general.bpmn").read_text(encoding="utf-8")
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
}


def mutate(source: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in source, f"mutation anchor not found: {old!r}"
        source = source.replace(old, new, 1)
    return source


def actor(session, world, username):
    return world.actor(session, username)


def add_process_admin(session, world, username: str, department: str):
    """A process administrator of a demo department (lx_fire leads fire, co-supervises hazchem)."""
    user = User(username=username, display_name=f"{username}（流程管理员）")
    session.add(user)
    session.flush()
    dept = world.departments[department]
    session.add(
        Membership(user_id=user.id, role=Role.PROCESS_ADMIN, department_id=dept.id, region_id=dept.region_id)
    )
    session.flush()
    session.refresh(user)
    return load_actor(session, user.id)


def copy_general(session, world, sector="hazchem"):
    gao = actor(session, world, "gao_modeler")
    return design.copy_process_for_sector(session, gao, source_key="hazard_general", sector_code=sector)


# --------------------------------------------------------------------------------------------------
# permissions


def test_lead_department_process_admins_edit_their_sectors(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        reviewer = actor(session, world, "zheng_fire")  # dept_reviewer + inspector of lx_fire
        fire_admin = add_process_admin(session, world, "fire_modeler", "lx_fire")

        assert [s.code for s in design.editable_sectors(session, gao)] == [
            "hazchem",
            "industry_trade",
            "mines",
        ]
        assert design.can_edit(session, gao, "hazchem")
        assert not design.can_edit(session, gao, "fire")
        assert not design.can_edit(session, gao, None)
        assert not design.may_edit_national(gao)
        # lx_fire leads fire but only co-supervises hazchem: no design rights there
        assert design.can_edit(session, fire_admin, "fire")
        assert not design.can_edit(session, fire_admin, "hazchem")
        assert [s.code for s in design.editable_sectors(session, fire_admin)] == ["fire"]
        # another role of the lead department may not design
        assert not design.can_edit(session, reviewer, "fire")
        assert design.editable_sectors(session, reviewer) == []
        # the system administrator edits everything, national included
        assert design.may_edit_national(admin)
        assert design.can_edit(session, admin, None) and design.can_edit(session, admin, "fire")
        assert not design.can_edit(session, admin, "no_such_sector")
        assert len(design.editable_sectors(session, admin)) >= 6

        with pytest.raises(Forbidden, match="消防"):
            design.require_editor(session, gao, "fire")
        with pytest.raises(Forbidden, match="系统管理员"):
            design.require_editor(session, gao, None)
        with pytest.raises(Forbidden):
            design.save_draft(
                session, reviewer, kind="form", key="verify", sector_code="fire", content="{}", revision=None
            )
        with pytest.raises(Forbidden):
            design.copy_process_for_sector(
                session, fire_admin, source_key="hazard_general", sector_code="hazchem"
            )


# --------------------------------------------------------------------------------------------------
# drafts


def test_a_shared_draft_refuses_a_stale_revision(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        first = design.save_draft(
            session, gao, kind="form", key="verify", sector_code="hazchem", content='{"a": 1}', revision=None
        )
        assert (first.revision, first.scope, first.sector_code) == (1, "hazchem", "hazchem")
        with pytest.raises(Conflict, match="高远"):
            design.save_draft(
                session, gao, kind="form", key="verify", sector_code="hazchem", content="{}", revision=None
            )
        second = design.save_draft(
            session, admin, kind="form", key="verify", sector_code="hazchem", content='{"a": 2}', revision=1
        )
        assert second.revision == 2 and second.content == '{"a": 2}'
        with pytest.raises(Conflict, match="系统管理员 于 .* 修改，请重新加载"):
            design.save_draft(
                session, gao, kind="form", key="verify", sector_code="hazchem", content='{"a": 3}', revision=1
            )
        draft = design.get_draft(session, "form", "verify", "hazchem")
        assert draft is not None and draft.content == '{"a": 2}' and draft.updated_by_id == admin.user_id
        # the national draft of the same form is another working copy
        assert design.get_draft(session, "form", "verify", None) is None
        with pytest.raises(Conflict):
            design.discard_draft(session, gao, kind="form", key="verify", sector_code="hazchem", revision=1)
        design.discard_draft(session, gao, kind="form", key="verify", sector_code="hazchem", revision=2)
        assert design.get_draft(session, "form", "verify", "hazchem") is None
        with pytest.raises(Conflict, match="已被丢弃或已发布"):
            design.save_draft(
                session, gao, kind="form", key="verify", sector_code="hazchem", content="{}", revision=2
            )
        with pytest.raises(NotFound):
            design.discard_draft(
                session, gao, kind="form", key="verify", sector_code="hazchem", revision=None
            )
        actions = [
            (e.action, e.actor_id)
            for e in design.design_log(session, kind="form", key="verify", sector_code="hazchem")
        ]
        assert actions == [
            ("draft_discarded", gao.user_id),
            ("draft_saved", admin.user_id),
            ("draft_saved", gao.user_id),
        ]


def test_a_concurrent_save_loses_the_compare_and_set(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        design.save_draft(
            session, gao, kind="policy", key="hazchem", sector_code="hazchem", content="{}", revision=None
        )
        # someone else's save lands between our read and our write
        session.execute(
            update(DesignDraft)
            .where(DesignDraft.kind == "policy", DesignDraft.key == "hazchem")
            .values(revision=5)
        )
        session.expire_all()
        with pytest.raises(Conflict):
            design.save_draft(
                session, gao, kind="policy", key="hazchem", sector_code="hazchem", content="{}", revision=1
            )


@pytest.mark.parametrize(
    ("kind", "content", "field"),
    [
        ("diagram", "<bpmn:definitions", "xml"),
        ("diagram", '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "evil">]><x>&e;</x>', "xml"),
        ("diagram", "<html><body/></html>", "xml"),
        ("form", "{not json", "content"),
        ("form", "[1, 2]", "content"),
        ("policy", '{"values": NaN}', "content"),
        ("form", json.dumps({"x": "y" * (2 * 1024 * 1024)}), "content"),
    ],
)
def test_malformed_drafts_are_refused(sessions, world, kind, content, field):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        key = "hazard_general_hazchem" if kind == "diagram" else "verify"
        with pytest.raises(InvalidInput) as refused:
            design.save_draft(
                session, gao, kind=kind, key=key, sector_code="hazchem", content=content, revision=None
            )
        assert field in refused.value.messages
        assert design.get_draft(session, kind, key, "hazchem") is None


def test_a_policy_draft_lives_under_the_scope_profile_key(sessions, world):
    with sessions.begin() as session:
        admin = actor(session, world, "admin")
        draft = design.save_draft(
            session, admin, kind="policy", key="whatever", sector_code="fire", content="{}", revision=None
        )
        assert draft.key == "fire"  # fire.json's key covers the sector
        assert design.policy_key(session, "hazchem") == "hazchem"
        assert design.policy_key(session, None) == "national"


# --------------------------------------------------------------------------------------------------
# diagrams


def test_copy_publish_bind_and_republish_a_sector_process(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        draft = copy_general(session, world)
        assert (draft.key, draft.sector_code, draft.base_version, draft.revision) == (
            "hazard_general_hazchem",
            "hazchem",
            None,
            1,
        )
        root = etree.fromstring(draft.content.encode("utf-8"))
        process = root.find("bpmn:process", NS)
        assert process.get("id") == "hazard_general_hazchem"
        assert process.get("name").startswith("一般隐患排查治理闭环（") and "化" in process.get("name")
        assert root.find(".//bpmndi:BPMNPlane", NS).get("bpmnElement") == "hazard_general_hazchem"
        source = etree.fromstring(GENERAL.encode("utf-8"))
        assert len(root.findall(".//bpmndi:BPMNShape", NS)) == len(source.findall(".//bpmndi:BPMNShape", NS))
        assert 'hazard_general"' not in draft.content
        # the new copy is the sector's even before it is published
        assert design.process_sector(session, "hazard_general_hazchem") == "hazchem"
        xml, revision, base = design.diagram_source(session, "hazard_general_hazchem", "hazchem")
        assert (revision, base) == (1, None) and xml == draft.content
        listed = {p.process_key: p for p in design.list_processes(session, gao)}
        assert listed["hazard_general_hazchem"].has_draft
        assert listed["hazard_general_hazchem"].latest_version is None
        assert "hazard_general" not in listed  # national: the system administrator's
        with pytest.raises(Conflict):
            copy_general(session, world)

        problems = design.check_diagram(
            session, key="hazard_general_hazchem", sector_code="hazchem", xml=draft.content.encode()
        )
        assert [p for p in problems if p.severity == "error"] == []
        result = design.publish_diagram(
            session,
            gao,
            key="hazard_general_hazchem",
            sector_code="hazchem",
            xml=draft.content.encode("utf-8"),
            note="危化行业一般隐患流程",
            bind_grade="general",
            revision=1,
        )
        assert (result.kind, result.version, result.created) == ("diagram", 1, True)
        assert all(w.severity == "warning" for w in result.warnings)
        v1 = definitions.get_version(session, "hazard_general_hazchem", 1)
        assert (v1.sector_code, v1.deployed_by_id, v1.note) == (
            "hazchem",
            gao.user_id,
            "危化行业一般隐患流程",
        )
        assert design.get_draft(session, "diagram", "hazard_general_hazchem", "hazchem") is None
        binding = definitions.find_binding(session, grade="general", sector_code="hazchem")
        assert binding is not None and binding.process_key == "hazard_general_hazchem"
        assert definitions.resolve_definition(session, grade="general", sector_code="hazchem").id == v1.id
        assert definitions.resolve_definition(session, grade="prominent", sector_code="hazchem").id == v1.id
        assert definitions.resolve_definition(session, grade="general", sector_code="fire").process_key == (
            "hazard_general"
        )

        # version 2: the department renames a task
        v2_xml = mutate(
            v1.bpmn_xml,
            (
                '<bpmn:userTask id="verify" name="整改验收">',
                '<bpmn:userTask id="verify" name="企业整改验收">',
            ),
        )
        design.save_draft(
            session,
            gao,
            kind="diagram",
            key="hazard_general_hazchem",
            sector_code="hazchem",
            content=v2_xml,
            revision=None,
        )
        assert design.get_draft(session, "diagram", "hazard_general_hazchem", "hazchem").base_version == 1
        second = design.publish_diagram(
            session,
            gao,
            key="hazard_general_hazchem",
            sector_code="hazchem",
            xml=v2_xml.encode(),
            note="改名",
        )
        assert (second.version, second.created) == (2, True)
        assert definitions.get_version(session, "hazard_general_hazchem", 2).sector_code == "hazchem"
        assert definitions.resolve_definition(session, grade="general", sector_code="hazchem").version == 2
        again = design.publish_diagram(
            session,
            gao,
            key="hazard_general_hazchem",
            sector_code="hazchem",
            xml=v2_xml.encode(),
            note="同上",
        )
        assert (again.version, again.created) == (2, False)
        back = design.publish_diagram(
            session,
            gao,
            key="hazard_general_hazchem",
            sector_code="hazchem",
            xml=v1.bpmn_xml.encode(),
            note="改回",
        )
        assert (back.version, back.created) == (1, False)
        assert any("最新版本仍是 v2" in w.message for w in back.warnings)

        summary = {p.process_key: p for p in design.list_processes(session, gao)}["hazard_general_hazchem"]
        assert (summary.latest_version, summary.has_draft, summary.bindings) == (
            2,
            False,
            ["general/hazchem"],
        )
        assert summary.sector_code == "hazchem" and summary.running == 0
        assert design.version_usage(session, "hazard_general_hazchem") == {1: 0, 2: 0}
        xml, revision, base = design.diagram_source(session, "hazard_general_hazchem", "hazchem")
        assert (revision, base) == (None, 2)

        log = design.design_log(session, key="hazard_general_hazchem")
        assert [e.action for e in reversed(log)] == [
            "draft_saved",
            "published",
            "bound",
            "draft_saved",
            "published",
            "published",
            "published",
        ]
        published = [e for e in log if e.action == "published"][-1]
        assert published.content_hash == hashlib.sha256(draft.content.encode()).hexdigest()
        assert published.version == 1 and published.actor_id == gao.user_id
        assert log[-1].details["source_key"] == "hazard_general"


def test_a_binding_in_place_is_kept_with_a_warning(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        draft = copy_general(session, world, "mines")
        definitions.bind(session, grade="general", process_key="hazard_general", sector_code="mines")
        result = design.publish_diagram(
            session,
            gao,
            key="hazard_general_mines",
            sector_code="mines",
            xml=draft.content.encode(),
            note=None,
            bind_grade="general",
        )
        assert definitions.find_binding(session, grade="general", sector_code="mines").process_key == (
            "hazard_general"
        )
        assert any("general/mines" in w.message for w in result.warnings)
        with pytest.raises(InvalidInput):
            design.publish_diagram(
                session,
                gao,
                key="hazard_general_mines",
                sector_code="mines",
                xml=draft.content.encode(),
                note=None,
                bind_grade="prominent",
            )


def test_a_process_is_changed_only_in_its_owners_name(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        fire_admin = add_process_admin(session, world, "fire_modeler", "lx_fire")
        draft = copy_general(session, world)
        xml = draft.content.encode()
        design.publish_diagram(
            session, gao, key="hazard_general_hazchem", sector_code="hazchem", xml=xml, note=None
        )
        # another sector's administrator
        with pytest.raises(Forbidden, match="危险化学品|化"):
            design.publish_diagram(
                session, fire_admin, key="hazard_general_hazchem", sector_code="fire", xml=xml, note=None
            )
        with pytest.raises(Forbidden):
            design.publish_diagram(
                session, fire_admin, key="hazard_general_hazchem", sector_code="hazchem", xml=xml, note=None
            )
        # the department in the name of another of its own sectors
        with pytest.raises(Forbidden, match="不能以"):
            design.publish_diagram(
                session, gao, key="hazard_general_hazchem", sector_code="mines", xml=xml, note=None
            )
        with pytest.raises(Forbidden, match="不能以"):
            design.save_draft(
                session,
                gao,
                kind="diagram",
                key="hazard_general_hazchem",
                sector_code="mines",
                content=draft.content,
                revision=None,
            )
        # the national loop
        with pytest.raises(Forbidden, match="全国通用"):
            design.publish_diagram(
                session, gao, key="hazard_general", sector_code="hazchem", xml=GENERAL.encode(), note=None
            )
        with pytest.raises(Forbidden, match="系统管理员"):
            design.publish_diagram(
                session, gao, key="hazard_general", sector_code=None, xml=GENERAL.encode(), note=None
            )
        unchanged = design.publish_diagram(
            session, admin, key="hazard_general", sector_code=None, xml=GENERAL.encode(), note=None
        )
        assert not unchanged.created
        assert definitions.latest_version(session, "hazard_general").sector_code is None
        # passengers of a file are never a copy source
        with pytest.raises(NotFound):
            design.copy_process_for_sector(
                session, gao, source_key=sectors.SHARED_PROCESS_KEY, sector_code="hazchem"
            )
        with pytest.raises(NotFound):
            design.copy_process_for_sector(session, gao, source_key="no_such_process", sector_code="hazchem")
        with pytest.raises(NotFound):
            design.process_sector(session, "no_such_process")


def test_sector_variants_belong_to_their_sector(sessions, world, settings, ctx):
    with sessions.begin() as session:
        sectors.bind_sector_variants(session, settings.processes_dir, ctx.forms)
        gao = actor(session, world, "gao_modeler")
        assert design.process_sector(session, "hazard_major_hazchem") == "hazchem"
        assert design.process_sector(session, "hazard_major_fire") == "fire"
        assert design.process_sector(session, sectors.SHARED_PROCESS_KEY) is None
        assert all(
            v.sector_code is None
            for v in session.scalars(
                select(DefinitionVersion).where(DefinitionVersion.process_key == sectors.SHARED_PROCESS_KEY)
            )
        )
        keys = {p.process_key for p in design.list_processes(session, gao)}
        assert {"hazard_major_hazchem", "hazard_major_mines"} <= keys
        assert not keys & {"hazard_major_fire", "hazard_general", sectors.SHARED_PROCESS_KEY}
        admin_keys = {p.process_key for p in design.list_processes(session, actor(session, world, "admin"))}
        assert {"hazard_general", "hazard_major", "hazard_supervision", "hazard_major_fire"} <= admin_keys
        assert sectors.SHARED_PROCESS_KEY not in admin_keys
        assert {p.process_key for p in design.copy_sources(session)} >= {"hazard_general", "hazard_major"}
        assert not {p.process_key for p in design.copy_sources(session)} & {"hazard_major_fire"}
        # a department's variant publication keeps the shared verification process a passenger
        xml = definitions.latest_version(session, "hazard_major_hazchem").bpmn_xml
        changed = mutate(xml, ('name="重大', 'name="（危化）重大'))
        result = design.publish_diagram(
            session, gao, key="hazard_major_hazchem", sector_code="hazchem", xml=changed.encode(), note="v2"
        )
        assert result.created
        assert definitions.latest_version(session, "hazard_major_hazchem").sector_code == "hazchem"
        assert definitions.latest_version(session, sectors.SHARED_PROCESS_KEY).sector_code is None
        # binding again keeps the owner of every version
        sectors.bind_sector_variants(session, settings.processes_dir, ctx.forms, only=["hazchem"])
        assert {
            v.sector_code
            for v in session.scalars(
                select(DefinitionVersion).where(DefinitionVersion.process_key == "hazard_major_hazchem")
            )
        } == {"hazchem"}


def test_the_gate_names_the_offending_element(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        good = copy_general(session, world).content

        def check(xml: str, key: str = "hazard_general_hazchem"):
            return design.check_diagram(session, key=key, sector_code="hazchem", xml=xml.encode("utf-8"))

        assert [p for p in check(good) if p.severity == "error"] == []
        script = mutate(
            good,
            (
                '<bpmn:userTask id="verify"',
                '<bpmn:scriptTask id="evil_script" name="脚本"><bpmn:script>1</bpmn:script></bpmn:scriptTask>'
                '<bpmn:userTask id="verify"',
            ),
        )
        errors = [p for p in check(script) if p.severity == "error"]
        assert [p.element for p in errors] == ["evil_script"] and "scriptTask" in errors[0].message
        # the departmental 审核把关销号 handed to the enterprise
        no_review = mutate(
            good,
            ('name="candidate_role" value="dept_reviewer"', 'name="candidate_role" value="safety_officer"'),
            ('name="org_scope" value="department"', 'name="org_scope" value="enterprise"'),
        )
        errors = [p for p in check(no_review) if p.severity == "error"]
        assert [p.element for p in errors] == ["closure_review"] and "监管职责" in errors[0].message
        # an unknown form
        errors = [
            p
            for p in check(mutate(good, ('value="rectification_plan"', 'value="no_such_form"')))
            if p.severity == "error"
        ]
        assert [p.element for p in errors] == ["assign_plan"]
        # the file's main process must carry the key
        errors = check(good, key="hazard_general_mines")
        assert errors[0].severity == "error" and errors[0].element == "hazard_general_hazchem"
        # a second executable process nobody calls
        orphan = mutate(
            good,
            (
                "<bpmndi:BPMNDiagram",
                '<bpmn:process id="orphan" isExecutable="true"><bpmn:startEvent id="o_start" />'
                "</bpmn:process>"
                "<bpmndi:BPMNDiagram",
            ),
        )
        assert "orphan" in [p.element for p in check(orphan) if p.severity == "error"]
        # a managed process smuggled in as a called passenger
        smuggled = mutate(
            good,
            (
                "<bpmndi:BPMNDiagram",
                '<bpmn:process id="hazard_general" isExecutable="true"><bpmn:startEvent id="h_start" />'
                "</bpmn:process><bpmndi:BPMNDiagram",
            ),
            (
                '<bpmn:userTask id="verify"',
                '<bpmn:callActivity id="call_general" calledElement="hazard_general" />'
                '<bpmn:userTask id="verify"',
            ),
        )
        assert "hazard_general" in [p.element for p in check(smuggled) if p.severity == "error"]
        # the 重大 loop copied for a sector passes as it is
        major = design.copy_process_for_sector(session, gao, source_key="hazard_major", sector_code="mines")
        assert not [
            p
            for p in design.check_diagram(
                session, key="hazard_major_mines", sector_code="mines", xml=major.content.encode()
            )
            if p.severity == "error"
        ]
        # malformed XML is one error without an element
        assert check("<bpmn:definitions") == [design.GateProblem(None, check("<bpmn:definitions")[0].message)]
        # warnings: an unreachable element
        unreachable = mutate(
            good,
            ('<bpmn:userTask id="verify"', '<bpmn:task id="island" name="孤岛" /><bpmn:userTask id="verify"'),
        )
        found = check(unreachable)
        assert [p.element for p in found if p.severity == "warning"] == ["island"]
        assert not [p for p in found if p.severity == "error"]

        with pytest.raises(design.GateRefused) as refused:
            design.publish_diagram(
                session,
                gao,
                key="hazard_general_hazchem",
                sector_code="hazchem",
                xml=script.encode(),
                note=None,
            )
        assert isinstance(refused.value, DefinitionInvalid)
        assert refused.value.element_id == "evil_script"
        assert [p.element for p in refused.value.errors] == ["evil_script"]
        assert definitions.latest_version(session, "hazard_general_hazchem") is None
        event = design.record_refusal(
            session, gao, "diagram", "hazard_general_hazchem", "hazchem", refused.value.problems
        )
        assert event.action == "refused" and event.details["errors"][0]["element"] == "evil_script"
        form_refusal = design.record_refusal(
            session, gao, "form", "verify", "hazchem", {"fields.decision": ["不能删除"]}
        )
        assert form_refusal.details["errors"] == [
            {"element": "fields.decision", "message": "不能删除", "severity": "error"}
        ]


# --------------------------------------------------------------------------------------------------
# forms


def test_plan_presets_are_valid_plan_forms():
    assert set(design.PLAN_PRESETS) == set(design.PLAN_PRESET_LABELS)
    plan_fields = {
        "responsible_person",
        "measures",
        "funds",
        "contingency_plan",
        "interim_measures",
        "due_date",
    }
    for name, document in design.PLAN_PRESETS.items():
        form = parse_form_definition(document)
        assert form.key == "rectification_plan", name
        assert form.deadline_field == "due_date", name
        assert set(form.field_names) <= plan_fields, name
        assert {"responsible_person", "measures"} <= set(form.field_names), name
    assert "funds" not in parse_form_definition(design.PLAN_PRESETS["four_implementations"]).field_names
    assert "contingency_plan" in parse_form_definition(design.PLAN_PRESETS["five_in_place"]).field_names


def test_publishing_forms_per_sector(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        shipped_doc, revision, version = design.form_document(session, "rectification_plan", "hazchem")
        national_version = {f.form_key: f for f in design.form_keys(session, "hazchem")}[
            "rectification_plan"
        ].national_version  # the shipped form, seeded as national version 1 (or not seeded: None)
        assert (revision, version) == (None, national_version) and shipped_doc["key"] == "rectification_plan"

        preset = design.PLAN_PRESETS["four_implementations"]
        design.save_draft(
            session,
            gao,
            kind="form",
            key="rectification_plan",
            sector_code="hazchem",
            content=json.dumps(preset, ensure_ascii=False),
            revision=None,
        )
        doc, revision, version = design.form_document(session, "rectification_plan", "hazchem")
        assert (doc, revision, version) == (preset, 1, None)
        result = design.publish_form(
            session,
            gao,
            form_key="rectification_plan",
            sector_code="hazchem",
            document=preset,
            note="四落实",
            revision=1,
        )
        assert (result.kind, result.version, result.created) == ("form", 1, True)
        assert design.get_draft(session, "form", "rectification_plan", "hazchem") is None
        doc, revision, version = design.form_document(session, "rectification_plan", "hazchem")
        assert version == 1 and doc["title"] == preset["title"]
        # fire still sees the shipped form
        assert design.form_document(session, "rectification_plan", "fire")[0]["title"] == "整改方案（五落实）"
        listed = {f.form_key: f for f in design.form_keys(session, "hazchem")}
        assert (listed["rectification_plan"].sector_version, listed["rectification_plan"].title) == (
            1,
            preset["title"],
        )
        assert listed["verify"].shipped and listed["verify"].sector_version is None
        again = design.publish_form(
            session, gao, form_key="rectification_plan", sector_code="hazchem", document=preset, note=None
        )
        assert (again.version, again.created) == (1, False)

        # an invalid form is refused by field
        broken = dict(preset, fields=[*preset["fields"], {"name": "x", "label": "X", "type": "spreadsheet"}])
        with pytest.raises(InvalidInput) as refused:
            design.publish_form(
                session, gao, form_key="rectification_plan", sector_code="hazchem", document=broken, note=None
            )
        assert list(refused.value.messages) == ["fields.x"]
        # the deadline field stays
        no_deadline = dict(preset, fields=[f for f in preset["fields"] if f["name"] != "due_date"])
        with pytest.raises(InvalidInput) as refused:
            design.publish_form(
                session,
                gao,
                form_key="rectification_plan",
                sector_code="hazchem",
                document=no_deadline,
                note=None,
            )
        assert "fields.due_date" in refused.value.messages
        with pytest.raises(Forbidden):
            design.publish_form(
                session, gao, form_key="rectification_plan", sector_code="fire", document=preset, note=None
            )
        # the system administrator publishes nationally
        national = design.publish_form(
            session, admin, form_key="rectification_plan", sector_code=None, document=preset, note=None
        )
        assert national.created
        listed = {f.form_key: f for f in design.form_keys(session, "hazchem")}
        assert listed["rectification_plan"].national_version == national.version
        log = design.design_log(session, kind="form", key="rectification_plan")
        assert [(e.action, e.scope) for e in log][:3] == [
            ("published", "*"),
            ("published", "hazchem"),
            ("published", "hazchem"),
        ]


def test_fields_the_diagrams_route_on_must_stay(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        verify, _revision, _version = design.form_document(session, "verify", "hazchem")
        decision = next(f for f in verify["fields"] if f["name"] == "decision")

        relabelled = json.loads(json.dumps(verify))
        next(f for f in relabelled["fields"] if f["name"] == "decision")["options"][0]["label"] = "合格"
        assert design.publish_form(
            session, gao, form_key="verify", sector_code="hazchem", document=relabelled, note=None
        ).created

        renamed = json.loads(json.dumps(verify))
        next(f for f in renamed["fields"] if f["name"] == "decision")["options"][0]["value"] = "ok"
        dropped = dict(verify, fields=[f for f in verify["fields"] if f is not decision], routing={})
        unrouted = dict(verify, routing={})
        for document in (renamed, dropped, unrouted):
            with pytest.raises(InvalidInput) as refused:
                design.publish_form(
                    session, gao, form_key="verify", sector_code="hazchem", document=document, note=None
                )
            assert list(refused.value.messages) == ["fields.decision"]
        with pytest.raises(InvalidInput, match="key"):
            design.publish_form(
                session,
                gao,
                form_key="verify",
                sector_code="hazchem",
                document=dict(verify, key="rectify"),
                note=None,
            )


def test_fields_the_runtime_reads_must_stay(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        decision, _revision, _version = design.form_document(session, "extension_decision", "hazchem")
        optional = json.loads(json.dumps(decision))
        next(f for f in optional["fields"] if f["name"] == "opinion")["required"] = False
        renamed = json.loads(json.dumps(decision))
        next(f for f in renamed["fields"] if f["name"] == "decision")["options"][0]["value"] = "yes"
        for document, field in ((optional, "fields.opinion"), (renamed, "fields.decision")):
            with pytest.raises(InvalidInput) as refused:
                design.publish_form(
                    session,
                    gao,
                    form_key="extension_decision",
                    sector_code="hazchem",
                    document=document,
                    note=None,
                )
            assert list(refused.value.messages) == [field]
        request, _revision, _version = design.form_document(session, "extension_request", "hazchem")
        relabelled = json.loads(json.dumps(request))
        relabelled["fields"][0]["label"] = "申请延期至"
        assert design.publish_form(
            session, gao, form_key="extension_request", sector_code="hazchem", document=relabelled, note=None
        ).created


def test_the_重大_plan_keeps_its_五落实_fields(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        plan, _revision, _version = design.form_document(session, "governance_plan", "hazchem")
        without = dict(plan, fields=[f for f in plan["fields"] if f["name"] != "funds"])
        with pytest.raises(InvalidInput) as refused:
            design.publish_form(
                session, gao, form_key="governance_plan", sector_code="hazchem", document=without, note=None
            )
        assert "fields.funds" in refused.value.messages


def test_a_form_published_for_a_sector_is_known_to_its_diagrams_only(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        extra = dict(design.PLAN_PRESETS["five_implementations"], key="hazchem_plan", title="危化整改方案")
        design.publish_form(
            session, gao, form_key="hazchem_plan", sector_code="hazchem", document=extra, note=None
        )
        assert "hazchem_plan" in design.known_forms(session, "hazchem")
        assert "hazchem_plan" not in design.known_forms(session, "fire")
        xml = mutate(
            copy_general(session, world).content, ('value="rectification_plan"', 'value="hazchem_plan"')
        )
        assert not [
            p
            for p in design.check_diagram(
                session, key="hazard_general_hazchem", sector_code="hazchem", xml=xml.encode()
            )
            if p.severity == "error"
        ]
        fire_xml = xml.replace("hazard_general_hazchem", "hazard_general_fire")
        errors = [
            p
            for p in design.check_diagram(
                session, key="hazard_general_fire", sector_code="fire", xml=fire_xml.encode()
            )
            if p.severity == "error"
        ]
        assert [p.element for p in errors] == ["assign_plan"]
        published = design.publish_diagram(
            session, gao, key="hazard_general_hazchem", sector_code="hazchem", xml=xml.encode(), note=None
        )
        assert published.version == 1
        with pytest.raises(design.GateRefused):
            design.publish_diagram(
                session,
                admin,
                key="hazard_general_fire",
                sector_code="fire",
                xml=fire_xml.encode(),
                note=None,
            )


# --------------------------------------------------------------------------------------------------
# policies


def circular(days: int) -> dict:
    return {
        "value": days,
        "unit": "working_days",
        "label": "逾期后通报（L2）",
        "source": "危化行业 测试 (DOMAIN §4.3)",
    }


def test_a_sector_overrides_one_policy_value(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        national = policy.get_profile(session, "national")
        document, revision, version = design.policy_document(session, "hazchem")
        assert (revision, version) == (None, None)
        assert document == {
            "key": "hazchem",
            "title": document["title"],
            "sector": "hazchem",
            "region": None,
            "extends": "national",
            "note": None,
            "values": {},
            "ladder": {"rungs": {}, "triggers": {}},
        }
        effective = design.effective_policy(session, "hazchem")
        assert effective["values"]["escalation_circular_after_overdue"]["value"] == 10
        assert effective["overrides"] == [] and "escalation_circular_after_overdue" in effective["inherited"]
        assert effective["extends"] == {"key": "national", "version": national.version}

        document["values"]["escalation_circular_after_overdue"] = circular(20)
        draft = design.save_draft(
            session,
            gao,
            kind="policy",
            key="hazchem",
            sector_code="hazchem",
            content=json.dumps(document, ensure_ascii=False),
            revision=None,
        )
        assert design.policy_document(session, "hazchem")[1] == draft.revision
        assert design.effective_policy(session, "hazchem")["overrides"] == [
            "escalation_circular_after_overdue"
        ]
        result = design.publish_policy(
            session, gao, sector_code="hazchem", document=document, note="危化通报提前", revision=1
        )
        assert (result.kind, result.key, result.version, result.created) == ("policy", "hazchem", 1, True)
        chosen = policy.resolve_policy(session, "hazchem", "/34/3418/341821/")
        assert (chosen.key, chosen.version, chosen.created_by_id) == ("hazchem", 1, gao.user_id)
        assert policy.policy_value(chosen, "escalation_circular_after_overdue").value == 20
        assert policy.policy_value(chosen, "closure_review").value == (
            policy.policy_value(national, "closure_review").value
        )
        assert policy.resolve_policy(session, "mines", None).key == "national"
        assert policy.get_profile(session, "national").version == national.version
        assert (
            policy.policy_value(
                policy.get_profile(session, "national"), "escalation_circular_after_overdue"
            ).value
            == 10
        )

        # the stored profile reads back as the same overrides, and republishing changes nothing
        reread, revision, version = design.policy_document(session, "hazchem")
        assert (revision, version) == (None, 1)
        assert reread["values"] == {"escalation_circular_after_overdue": circular(20)}
        assert reread["ladder"] == {"rungs": {}, "triggers": {}}
        assert not design.publish_policy(
            session, gao, sector_code="hazchem", document=reread, note=None
        ).created

        with pytest.raises(Forbidden):
            design.publish_policy(session, gao, sector_code="fire", document=reread, note=None)
        with pytest.raises(InvalidInput):
            design.publish_policy(
                session,
                gao,
                sector_code="hazchem",
                document=dict(reread, values={"escalation_circular_after_overdue": {"value": "ten"}}),
                note=None,
            )
        event = design.design_log(session, kind="policy", sector_code="hazchem")[0]
        assert (event.action, event.version, event.content_hash) == ("published", 1, chosen.content_hash)


def test_an_existing_sector_profile_keeps_its_key(sessions, world):
    with sessions.begin() as session:
        admin = actor(session, world, "admin")
        fire_admin = add_process_admin(session, world, "fire_modeler", "lx_fire")
        fire = policy.get_profile(session, "fire")
        document, revision, version = design.policy_document(session, "fire")
        assert (document["key"], revision, version) == ("fire", None, fire.version)
        assert set(document["values"]) == set(fire.content["overrides"])
        assert not design.publish_policy(
            session, fire_admin, sector_code="fire", document=document, note=None
        ).created

        document["values"]["escalation_circular_after_overdue"] = circular(5)
        rung = dict(policy.get_profile(session, "national").content["ladder"]["rungs"]["circular"])
        rung["label"] = "通报（消防）"
        document["ladder"]["rungs"]["circular"] = rung
        result = design.publish_policy(
            session, fire_admin, sector_code="fire", document=dict(document, key="other"), note="消防通报"
        )
        assert (result.key, result.version, result.created) == ("fire", fire.version + 1, True)
        chosen = policy.resolve_policy(session, "fire", None)
        assert chosen.key == "fire" and policy.ladder_of(chosen).rung("circular").label == "通报（消防）"
        reread = design.policy_document(session, "fire")[0]
        assert list(reread["ladder"]["rungs"]) == ["circular"]
        assert design.effective_policy(session, "fire")["overridden_rungs"] == ["circular"]

        # the national profile: all values, only the system administrator
        national, _revision, national_version = design.policy_document(session, None)
        assert national["key"] == "national" and national["extends"] is None and national["sector"] is None
        assert national_version == policy.get_profile(session, "national").version
        assert not design.publish_policy(
            session, admin, sector_code=None, document=national, note=None
        ).created
        with pytest.raises(Forbidden):
            design.publish_policy(session, fire_admin, sector_code=None, document=national, note=None)
        national["values"]["closure_review"] = dict(national["values"]["closure_review"], value=12)
        changed = design.publish_policy(
            session, admin, sector_code=None, document=national, note="审核期 12 日"
        )
        assert changed.created
        assert {w.element for w in changed.warnings} >= {"fire"}  # fire extends an older national version


# --------------------------------------------------------------------------------------------------
# heatmap and log


def test_heatmap_counts_open_and_overdue_items_per_element(sessions, world, ctx):
    with sessions.begin() as session:
        officer = actor(session, world, "chen_safety")
        first = make_hazard(session, ctx, world, officer)
        make_hazard(session, ctx, world, officer)
        instance = session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == first.id)).one()
        version_id = instance.definition_version_id
        now = dt.datetime.now(dt.UTC)
        item = session.scalars(
            select(WorkItem).where(WorkItem.hazard_id == first.id, WorkItem.state == "open")
        ).one()
        item.due_at = now - dt.timedelta(days=1)
        session.flush()
        counts = design.heatmap(session, version_id, now)
        key = item.task_key
        assert counts[key]["open"] >= 2 and counts[key]["overdue"] >= 1
        before = counts[key]
        item.state = "completed"
        session.flush()
        after = design.heatmap(session, version_id, now)[key]
        assert (after["open"], after["overdue"]) == (before["open"] - 1, before["overdue"] - 1)
        process_key = session.get_one(DefinitionVersion, version_id).process_key
        version = session.get_one(DefinitionVersion, version_id).version
        assert design.version_usage(session, process_key)[version] >= 2
        assert design.heatmap(session, -1, now) == {}


def test_design_log_filters_and_names(sessions, world):
    with sessions.begin() as session:
        gao = actor(session, world, "gao_modeler")
        admin = actor(session, world, "admin")
        design.save_draft(
            session, gao, kind="form", key="verify", sector_code="mines", content="{}", revision=None
        )
        design.save_draft(
            session, admin, kind="form", key="verify", sector_code=None, content="{}", revision=None
        )
        design.save_draft(
            session, gao, kind="form", key="rectify", sector_code="mines", content="{}", revision=None
        )
        mines = design.design_log(session, sector_code="mines")
        assert [e.key for e in mines[:2]] == ["rectify", "verify"]
        assert all(e.scope == "mines" for e in mines)
        national = design.design_log(session, sectors=[None], kind="form", key="verify")
        assert [e.actor_id for e in national][:1] == [admin.user_id]
        assert national[0].content_hash == hashlib.sha256(b"{}").hexdigest()
        assert len(design.design_log(session, limit=1)) == 1
        names = design.user_names(session, [e.actor_id for e in mines] + [None])
        assert names == {gao.user_id: "高远（县应急局流程管理员）"}
        assert session.scalars(select(DesignEvent).where(DesignEvent.key == "rectify")).one().details == {
            "revision": 1
        }
