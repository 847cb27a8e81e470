"""The deploy gate (engine.definitions) and its run-time twin (the safe script engine in engine.bpmn).

Deploy side: versioning by content hash, then one crafted diagram per rule (a mutation of the
shipped ``processes/hazard_general.bpmn``), each refused with :class:`DefinitionInvalid` naming the
element and the reason, and the known sandbox escapes refused wherever an expression may stand.

Run-time side: the same escapes in a diagram that bypassed the gate are refused by the safe
script engine (also after a ``dump_state``/``load_state`` round trip), every expression shipped
in ``processes/`` evaluates correctly, and the DMN decision ``processes/decisions/review_days.dmn``
runs cell by cell through SpiffWorkflow's DMN engine on the safe script engine.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from lxml import etree
from sqlalchemy import func
from sqlalchemy import select

from engine import bpmn
from engine import calendar as working_calendar
from engine import definitions
from engine import expressions
from engine.clock import FixedClock
from engine.errors import DefinitionInvalid
from engine.errors import ExpressionError
from engine.errors import UnsafeExpression
from engine.handlers import HANDLERS
from engine.models import DefinitionVersion

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ROOT / "processes"
DATA_DIR = ROOT / "tests" / "data"
GENERAL_PATH = PROCESSES / "hazard_general.bpmn"
GENERAL = GENERAL_PATH.read_text(encoding="utf-8")
REVIEW_DAYS_DMN = PROCESSES / "decisions" / "review_days.dmn"
REVIEW_DAYS_TASK = DATA_DIR / "review_days_task.bpmn"
NS = definitions.NS

DEADLINE = "2026-12-10T15:59:59+00:00"
REVIEW_DUE = "2026-12-20T01:00:00+00:00"


def mutate(old: str, new: str, *, source: str = GENERAL, count: int = 1) -> bytes:
    """The shipped general loop with one textual change (the change must apply)."""
    assert old in source, f"mutation anchor not found: {old!r}"
    return source.replace(old, new, count).encode("utf-8")


def replace_element(tag: str, ident: str, new: str) -> bytes:
    """Replace the whole ``<bpmn:tag id="ident" …>…</bpmn:tag>`` element."""
    pattern = re.compile(rf'<bpmn:{tag} id="{ident}"[^>]*>.*?</bpmn:{tag}>', re.S)
    assert pattern.search(GENERAL), f"{tag} {ident} not found"
    return pattern.sub(new, GENERAL, count=1).encode("utf-8")


def version_count(session) -> int:
    return session.scalar(select(func.count()).select_from(DefinitionVersion))


def refused(sessions, ctx, xml: bytes) -> DefinitionInvalid:
    """Deploy ``xml`` and return the refusal; nothing may have been stored."""
    with sessions.begin() as session:
        before = version_count(session)
        with pytest.raises(DefinitionInvalid) as err:
            definitions.deploy(session, bpmn_xml=xml, filename="hazard_general.bpmn", forms=ctx.forms)
        assert version_count(session) == before
    return err.value


# --------------------------------------------------------------------------------------------------
# Versioning


def test_identical_content_is_the_same_version(sessions, ctx):
    with sessions.begin() as session:
        latest = session.scalars(
            select(DefinitionVersion)
            .where(DefinitionVersion.process_key == "hazard_general")
            .order_by(DefinitionVersion.version.desc())
        ).first()
        result = definitions.deploy_file(session, GENERAL_PATH, ctx.forms)
        assert result.created is False
        assert [v.id for v in result.versions] == [latest.id]
        again = definitions.deploy_file(session, GENERAL_PATH, ctx.forms)
        assert again.created is False and [v.id for v in again.versions] == [latest.id]


def test_changed_content_is_version_n_plus_one(sessions, ctx):
    with sessions.begin() as session:
        latest = session.scalar(
            select(func.max(DefinitionVersion.version)).where(
                DefinitionVersion.process_key == "hazard_general"
            )
        )
        changed = mutate('name="一般隐患排查治理闭环"', 'name="一般隐患排查治理闭环（修订）"')
        first = definitions.deploy(
            session, bpmn_xml=changed, filename="hazard_general.bpmn", forms=ctx.forms, note="修订"
        )
        assert first.created is True
        [version] = first.versions
        assert (version.process_key, version.version) == ("hazard_general", latest + 1)
        assert version.name == "一般隐患排查治理闭环（修订）"
        assert len(version.content_hash) == 64
        spec, _subs = definitions.spec_for(version)
        assert spec.name == "hazard_general"
        # the same changed content again: the same version
        same = definitions.deploy(session, bpmn_xml=changed, filename="hazard_general.bpmn", forms=ctx.forms)
        assert same.created is False and same.versions[0].id == version.id
        # another change: n + 2; the original content still maps to its old version
        third = definitions.deploy(
            session,
            bpmn_xml=mutate('name="一般隐患排查治理闭环"', 'name="一般隐患闭环 v3"'),
            filename="hazard_general.bpmn",
            forms=ctx.forms,
        )
        assert third.created is True and third.versions[0].version == latest + 2
        original = definitions.deploy_file(session, GENERAL_PATH, ctx.forms)
        assert original.created is False and original.versions[0].version <= latest


# --------------------------------------------------------------------------------------------------
# Structural rules, one crafted diagram each

SCRIPT_TASK = (
    '<bpmn:scriptTask id="escalate_rejects" name="脚本">'
    "<bpmn:incoming>flow_cap_reached</bpmn:incoming><bpmn:outgoing>flow_escalated</bpmn:outgoing>"
    "<bpmn:script>import os; os.system('id')</bpmn:script></bpmn:scriptTask>"
)
VERIFY_OPEN = '<bpmn:userTask id="verify" name="整改验收">\n      <bpmn:extensionElements>'
RECTIFY_OPEN = '<bpmn:userTask id="rectify" name="限期整改">\n      <bpmn:extensionElements>'


@pytest.mark.parametrize(
    ("xml", "element", "reason"),
    [
        pytest.param(
            mutate(
                VERIFY_OPEN,
                VERIFY_OPEN.replace(
                    "<bpmn:extensionElements>", "<bpmn:wrongChild /><bpmn:extensionElements>"
                ),
            ),
            "verify",
            "wrongChild",
            id="xsd-unexpected-element",
        ),
        pytest.param(
            mutate('isExecutable="true"', 'isExecutable="maybe"'),
            "hazard_general",
            "isExecutable",
            id="xsd-bad-attribute",
        ),
        pytest.param(
            mutate(
                '<bpmn:userTask id="verify" name="整改验收">', '<bpmn:userTask id="verify" name="整改验收"'
            ),
            None,
            "XML 语法错误",
            id="malformed-xml",
        ),
        pytest.param(
            replace_element("serviceTask", "escalate_rejects", SCRIPT_TASK),
            "escalate_rejects",
            "scriptTask",
            id="script-task",
        ),
        pytest.param(
            mutate(VERIFY_OPEN, VERIFY_OPEN + "\n<spiffworkflow:preScript>x = 1</spiffworkflow:preScript>"),
            "verify",
            "spiffworkflow:preScript",
            id="pre-script",
        ),
        pytest.param(
            mutate(
                RECTIFY_OPEN,
                RECTIFY_OPEN + "\n<spiffworkflow:postScript>import os</spiffworkflow:postScript>",
            ),
            "rectify",
            "spiffworkflow:postScript",
            id="post-script",
        ),
        pytest.param(
            mutate(
                '<spiffworkflow:property name="candidate_role" value="safety_officer" />\n'
                '          <spiffworkflow:property name="org_scope" value="enterprise" />\n'
                '          <spiffworkflow:property name="form_key" value="verify" />',
                '<spiffworkflow:property name="candidate_role" value="superuser" />\n'
                '          <spiffworkflow:property name="org_scope" value="enterprise" />\n'
                '          <spiffworkflow:property name="form_key" value="verify" />',
            ),
            "verify",
            "未知的候选角色 'superuser'",
            id="unknown-candidate-role",
        ),
        pytest.param(
            mutate('          <spiffworkflow:property name="form_key" value="verify" />\n', ""),
            "verify",
            "缺少属性 form_key",
            id="missing-form-key",
        ),
        pytest.param(
            mutate(
                '<spiffworkflow:property name="form_key" value="verify" />',
                '<spiffworkflow:property name="form_key" value="no_such_form" />',
            ),
            "verify",
            "未知的表单 'no_such_form'",
            id="unknown-form-key",
        ),
        pytest.param(
            mutate('serviceTaskOperator id="escalate"', 'serviceTaskOperator id="os_system"'),
            "rectify_remind_notice",
            "未注册的服务任务处理器 'os_system'",
            id="unknown-handler",
        ),
        pytest.param(
            mutate(
                'parameter id="trigger" type="str" value="&quot;failed_verifications&quot;"',
                'parameter id="why" type="str" value="&quot;failed_verifications&quot;"',
            ),
            "escalate_rejects",
            "的参数应为 ['rung', 'trigger']",
            id="wrong-handler-params",
        ),
        pytest.param(
            mutate(
                'value="&quot;failed_verifications&quot;" />',
                'value="&quot;failed_verifications&quot;" />'
                '<spiffworkflow:parameter id="command" type="str" value="&quot;rm&quot;" />',
            ),
            "escalate_rejects",
            "的参数应为 ['rung', 'trigger']",
            id="extra-handler-param",
        ),
        pytest.param(
            mutate('value="&quot;circular&quot;"', 'value="&quot;mayor&quot;"'),
            "rectify_circular_notice",
            "参数 rung 的值 'mayor' 不在允许范围内",
            id="unknown-escalation-rung",
        ),
        pytest.param(
            mutate('value="&quot;overdue&quot;"', 'value="handling"'),
            "rectify_letter_notice",
            "参数 trigger 必须是字符串常量",
            id="escalation-trigger-not-a-literal",
        ),
        pytest.param(
            mutate('resultVariable="review_due_at"', 'resultVariable=""'),
            "set_review_due",
            "compute_deadline 需要 resultVariable",
            id="missing-result-variable",
        ),
        pytest.param(
            replace_element(
                "serviceTask",
                "escalate_rejects",
                '<bpmn:serviceTask id="escalate_rejects" name="无处理器">'
                "<bpmn:incoming>flow_cap_reached</bpmn:incoming>"
                "<bpmn:outgoing>flow_escalated</bpmn:outgoing></bpmn:serviceTask>",
            ),
            "escalate_rejects",
            "serviceTaskOperator",
            id="service-task-without-handler",
        ),
    ],
)
def test_rule_refuses_crafted_diagram(sessions, ctx, xml, element, reason):
    error = refused(sessions, ctx, xml)
    assert error.element_id == element
    assert reason in error.reason
    if element is not None:
        assert f"元素 {element}" in str(error)


def test_malformed_xml_names_the_line(sessions, ctx):
    error = refused(sessions, ctx, GENERAL[: len(GENERAL) // 2].encode())
    assert error.element_id is None
    assert re.search(r"line \d+", error.reason)


# Regression: SpiffWorkflow's parser expands internal DTD entities while the gate's parser does
# not, so ``handling == "immediate"&evil;`` passed the gate as ``handling == "immediate"`` and ran
# as ``… or __import__('os')…`` (refused only by the run-time engine). DOCTYPEs are refused now.
@pytest.mark.parametrize(
    ("doctype", "old", "new"),
    [
        (
            "<!DOCTYPE d [<!ENTITY evil \" or __import__('os').system('id')\">]>",
            'handling == "immediate"',
            'handling == "immediate"&evil;',
        ),
        (
            '<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>',
            'name="一般隐患排查治理闭环"',
            'name="&lol2;"',
        ),
        (
            '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>',
            'name="一般隐患排查治理闭环"',
            'name="&xxe;"',
        ),
        ("<!DOCTYPE bpmn:definitions>", "", ""),
    ],
)
def test_doctype_and_entities_are_refused(sessions, ctx, doctype, old, new):
    body = GENERAL.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "").replace(old, new, 1)
    error = refused(sessions, ctx, (doctype + "\n" + body).encode())
    assert error.element_id is None
    assert "DOCTYPE" in error.reason or "external entity" in error.reason
    with pytest.raises(DefinitionInvalid, match="DOCTYPE|external entity"):
        dmn = DMN.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "")
        definitions.check_dmn_rules(
            (doctype.replace("bpmn:definitions", "definitions") + "\n" + dmn).encode()
        )


def test_oversized_file_is_refused(sessions, ctx):
    padding = "<!--" + "x" * definitions.MAX_BPMN_BYTES + "-->"
    error = refused(sessions, ctx, (GENERAL + padding).encode())
    assert "文件过大" in error.reason


def test_shipped_diagrams_pass_the_gate(ctx):
    for path in sorted(PROCESSES.glob("*.bpmn")):
        definitions.check_bpmn_rules(path.read_bytes(), ctx.forms)
        assert bpmn.parse_bpmn(path.read_bytes(), path.name)


# --------------------------------------------------------------------------------------------------
# Sandbox escapes: refused at deploy wherever an expression may stand

ESCAPES = [
    "__import__('os').system('id')",
    "().__class__.__base__.__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()[0]",
    "getattr(x, 'y')",
    "setattr(x, 'y', 1)",
    "(lambda: 1)()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "[x for x in handling]",
    "{k: v for k, v in {}.items()}",
    "{s for s in 'ab'}",
    "next(g for g in ())",
    "'{0.__class__}'.format(x)",
    "str.format('{0.__class__}', handling)",
    "f'{handling}'",
    "f'{handling.__class__}'",
    "9**9**9",
    "2 << 10000",
    "open('/etc/passwd').read()",
    "open('/etc/passwd')",
    "exec('1')",
    "eval('1+1')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "breakpoint()",
    "x.__dict__",
    "handling.__class__.__mro__",
    "type(handling)",
    "(y := 1)",
    "__builtins__",
    "_private",
    "handling[::-1]",
    "*handling",
    "import os",
    "yield 1",
    "await x",
    "b'bytes'",
    "x.y",
    "print('x')",
    "max.__self__",
]


def _place_condition(expression: str) -> tuple[bytes, str]:
    old = '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">handling == "immediate"'
    new = f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(expression)}'
    return mutate(old, new), "flow_immediate"


def _place_timer(expression: str) -> tuple[bytes, str]:
    old = (
        '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">'
        'ladder_time(ladder, "urge_before", deadline_at, escalation_not_before)'
    )
    new = f'<bpmn:timeDate xsi:type="bpmn:tFormalExpression">{escape(expression)}'
    return mutate(old, new), "rectify_remind_timer"


def _place_service_parameter(expression: str) -> tuple[bytes, str]:
    old = 'id="days" type="int" value="10"'
    new = f'id="days" type="int" value="{escape(expression, {chr(34): "&quot;"})}"'
    return mutate(old, new), "set_review_due"


PLACES = {
    "condition": _place_condition,
    "timer": _place_timer,
    "service-parameter": _place_service_parameter,
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize("expression", ESCAPES)
def test_sandbox_escape_is_refused_at_deploy(sessions, ctx, expression, place):
    xml, element = PLACES[place](expression)
    error = refused(sessions, ctx, xml)
    assert error.element_id == element
    assert "不安全" in error.reason
    assert expression.strip() in error.reason  # the offending text is quoted back


def test_empty_expression_is_refused(sessions, ctx):
    xml, element = _place_condition("   ")
    error = refused(sessions, ctx, xml)
    assert error.element_id == element and "为空" in error.reason


# --------------------------------------------------------------------------------------------------
# Run time: a diagram that bypassed the gate still cannot run unsafe expressions


def _parse_unchecked(xml: bytes):
    """Parse without the deploy gate (what a forged or legacy definition would look like)."""
    [process] = bpmn.parse_bpmn(xml, "bypass.bpmn")
    return process


START_DATA = {
    "grade": "general",
    "handling": "deadline",
    "max_rejects": 3,
    "failed_verifications": 0,
    "deadline_at": None,
    "decision": None,
    "verified": None,
    # what the runtime pins at start from the national profile (engine.runtime._ladder_data)
    "ladder": {
        "urge_before": [-3, "calendar_days"],
        "urge_due": [0, "working_days"],
        "urge_no_progress": [15, "calendar_days"],
        "letter": [3, "working_days"],
        "circular": [10, "working_days"],
        "interview": [20, "working_days"],
        "exposure": [30, "working_days"],
        "listing": [60, "working_days"],
    },
    "last_progress_at": "2026-11-23T01:00:00+00:00",
    "escalation_not_before": None,
}


def _start(process, **data):
    workflow = bpmn.new_workflow(process.spec, process.subprocess_specs)
    workflow.task_tree.data.update({**START_DATA, **data})
    return workflow


def _complete(workflow, key: str, **variables) -> None:
    [task] = [t for t in bpmn.ready_user_tasks(workflow) if t.key == key]
    bpmn.complete_task(workflow, bpmn.find_ready_task(workflow, task.id), variables)


def _round_trip(process, workflow):
    state = bpmn.dump_state(workflow)
    return bpmn.load_state(state, bpmn.SERIALIZER_VERSION, process.spec, process.subprocess_specs)


def _refused_at_run_time(run) -> UnsafeExpression:
    with pytest.raises(Exception) as err:  # SpiffWorkflow wraps it in WorkflowTaskException
        run()
    cause = bpmn.unwrap_error(err.value)
    assert isinstance(cause, UnsafeExpression), repr(err.value)
    return cause


@pytest.mark.parametrize(
    "expression",
    [e for e in ESCAPES if e not in ("import os", "yield 1", "await x", "*handling")],
)
def test_unsafe_condition_is_refused_at_run_time(expression):
    xml, _ = _place_condition(expression)
    process = _parse_unchecked(xml)
    workflow = _start(process)
    cause = _refused_at_run_time(workflow.do_engine_steps)
    assert cause.expression == expression


def test_nothing_runs_when_the_gate_is_bypassed(tmp_path):
    marker = tmp_path / "pwned"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"().__class__.__base__.__subclasses__() or open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
    ]
    for expression in attempts:
        process = _parse_unchecked(_place_condition(expression)[0])
        _refused_at_run_time(_start(process).do_engine_steps)
        process = _parse_unchecked(_place_timer(expression)[0])
        workflow = _start(process)
        workflow.do_engine_steps()
        # the remind timer's expression is evaluated once rectify (its host) is reached
        _refused_at_run_time(lambda wf=workflow: _complete(wf, "assign_plan", deadline_at=DEADLINE))
        process = _parse_unchecked(_place_service_parameter(expression)[0])
        workflow = _start(process)
        workflow.do_engine_steps()
        _complete(workflow, "assign_plan", deadline_at=DEADLINE)
        _complete(workflow, "rectify")
        _refused_at_run_time(lambda wf=workflow: _complete(wf, "verify", decision="pass"))
    assert not marker.exists()


def test_unsafe_condition_is_refused_after_a_round_trip():
    verify_pass = '<bpmn:sequenceFlow id="flow_verify_pass" name="验收通过" sourceRef="gw_verify"'
    assert verify_pass in GENERAL
    block = re.search(re.escape(verify_pass) + r".*?</bpmn:sequenceFlow>", GENERAL, re.S).group(0)
    unsafe = block.replace('decision == "pass"', "().__class__.__base__.__subclasses__()")
    process = _parse_unchecked(mutate(block, unsafe))
    workflow = _start(process)
    workflow.do_engine_steps()
    workflow = _round_trip(process, workflow)
    _complete(workflow, "assign_plan", deadline_at=DEADLINE)
    workflow = _round_trip(process, workflow)
    _complete(workflow, "rectify")
    workflow = _round_trip(process, workflow)
    assert isinstance(workflow.script_engine, bpmn.SafeScriptEngine)
    cause = _refused_at_run_time(lambda: _complete(workflow, "verify", decision="pass"))
    assert "__class__" in cause.expression


def test_loaded_state_always_runs_on_the_safe_script_engine():
    [process] = bpmn.parse_bpmn(GENERAL.encode(), "hazard_general.bpmn")
    workflow = _start(process)
    workflow.do_engine_steps()
    state = bpmn.dump_state(workflow)
    # whatever a stored document claims, the spec and the engine come from us
    document = json.loads(zlib.decompress(state))
    document["script_engine"] = "SpiffWorkflow.bpmn.script_engine.PythonScriptEngine"
    document["spec"] = {"typename": "BpmnProcessSpec", "name": "forged"}
    forged = zlib.compress(json.dumps(document).encode())
    for stored in (state, forged):
        loaded = bpmn.load_state(stored, bpmn.SERIALIZER_VERSION, process.spec, process.subprocess_specs)
        engine = loaded.script_engine
        assert type(engine) is bpmn.SafeScriptEngine
        assert type(engine.environment) is bpmn.SafeEnvironment
        assert loaded.spec is process.spec
        [task] = [t for t in loaded.get_tasks() if t.task_spec.name == "assign_plan"]
        with pytest.raises(Exception) as err:
            engine.evaluate(task, "__import__('os').getcwd()")
        assert isinstance(bpmn.unwrap_error(err.value), UnsafeExpression)
        with pytest.raises(UnsafeExpression):
            engine.environment.execute("x = 1", {})
        assert engine.evaluate(task, 'handling == "deadline"') is True
        for sub in loaded.subprocesses.values():  # sub-workflows share the top engine
            assert sub.script_engine is engine


def test_each_load_gets_its_own_engine_with_the_given_clock():
    [process] = bpmn.parse_bpmn(GENERAL.encode(), "hazard_general.bpmn")
    workflow = _start(process)
    workflow.do_engine_steps()
    state = bpmn.dump_state(workflow)
    clock = FixedClock(dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC))
    first = bpmn.load_state(state, bpmn.SERIALIZER_VERSION, process.spec, process.subprocess_specs, clock)
    second = bpmn.load_state(state, bpmn.SERIALIZER_VERSION, process.spec, process.subprocess_specs)
    assert first.script_engine is not second.script_engine
    assert first.script_engine.environment.clock is clock


def test_load_state_refuses_a_foreign_serializer_version():
    [process] = bpmn.parse_bpmn(GENERAL.encode(), "hazard_general.bpmn")
    state = bpmn.dump_state(_start(process))
    for version in ("1.4", "hl-0", "", bpmn.SPIFF_SERIALIZER_VERSION):
        with pytest.raises(ValueError, match="serializer version"):
            bpmn.load_state(state, version, process.spec, process.subprocess_specs)


# --------------------------------------------------------------------------------------------------
# Every expression shipped in processes/*.bpmn evaluates correctly through engine.expressions

#: expected results for each shipped condition: (data overrides, expected)
CONDITION_CASES = {
    'handling == "immediate"': [({"handling": "immediate"}, True), ({"handling": "deadline"}, False)],
    'decision == "pass"': [({"decision": "pass"}, True), ({"decision": "reject"}, False)],
    'verified == "pass"': [({"verified": "pass"}, True), ({"verified": "fail"}, False)],
    'listing_reason == "registration"': [
        ({"listing_reason": "registration"}, True),
        ({"listing_reason": "overdue"}, False),
    ],
    'decision == "approve"': [({"decision": "approve"}, True), ({"decision": "reject"}, False)],
    "failed_verifications >= max_rejects": [
        ({"failed_verifications": 3}, True),
        ({"failed_verifications": 4}, True),
        ({"failed_verifications": 2}, False),
        ({"failed_verifications": 0}, False),
    ],
}


#: expected due time (UTC) of each shipped timer expression with the representative data
def _rung_at(working_days: int) -> str:
    """09:00 Shanghai of the n-th working day after the deadline's day (computed without ladder_time)."""
    cal = working_calendar.current_calendar()
    day = cal.add_working_days(dt.date(2026, 12, 10), working_days)
    return dt.datetime.combine(day, dt.time(1, 0), tzinfo=dt.UTC).isoformat()


def _ladder(rung: str, base: str = "deadline_at") -> str:
    return f'ladder_time(ladder, "{rung}", {base}, escalation_not_before)'


SUPERVISION_DUE = {
    "filing_due_at": "2026-11-26T15:59:59+00:00",
    "announce_due_at": "2026-11-30T15:59:59+00:00",
    "listing_expires_at": "2027-11-23T15:59:59+00:00",
    "acceptance_due_at": "2026-12-20T15:59:59+00:00",
    "delist_due_at": "2026-12-27T15:59:59+00:00",
}
TIMER_CASES = {
    "deadline_at": "2026-12-10T15:59:59+00:00",
    _ladder("urge_before"): "2026-12-07T01:00:00+00:00",  # 3 days before, 09:00 Shanghai
    _ladder("urge_due"): "2026-12-10T01:00:00+00:00",  # 09:00 on the deadline day
    _ladder("urge_no_progress", "last_progress_at"): "2026-12-08T01:00:00+00:00",
    _ladder("letter"): "2026-12-15T01:00:00+00:00",
    _ladder("circular"): "2026-12-24T01:00:00+00:00",
    _ladder("interview"): _rung_at(20),
    _ladder("exposure"): _rung_at(30),
    _ladder("listing"): _rung_at(60),
    "review_due_at": "2026-12-20T01:00:00+00:00",
    "days_before(review_due_at, 2)": "2026-12-18T01:00:00+00:00",
    **SUPERVISION_DUE,
}
#: the runtime-owned variables a timer may read (a form can never set them)
TIMER_VARIABLES = {"deadline_at", "review_due_at", "ladder", "last_progress_at", "escalation_not_before"}
#: policy values the supervision track pins (engine.runtime.SUPERVISION_POLICY_VALUES)
PINNED_POLICY = {
    "policy_listing_filing": 3,
    "policy_listing_filing_unit": "working_days",
    "policy_listing_announcement": 5,
    "policy_listing_announcement_unit": "working_days",
    "policy_closure_review": 10,
    "policy_closure_review_unit": "calendar_days",
    "policy_delisting_announcement": 5,
    "policy_delisting_announcement_unit": "working_days",
}
REPRESENTATIVE = {
    **START_DATA,
    "deadline_at": DEADLINE,
    "review_due_at": REVIEW_DUE,
    **SUPERVISION_DUE,
    **PINNED_POLICY,
    "listing_reason": "overdue",
}


def _shipped(kind: str) -> Iterator[tuple[str, str, str, object]]:
    """(file, element id, expression, extra) for every expression of ``kind`` in processes/*.bpmn."""
    for path in sorted(PROCESSES.glob("*.bpmn")):
        root = etree.parse(str(path)).getroot()
        if kind == "condition":
            for node in root.iter(f"{{{NS['bpmn']}}}conditionExpression"):
                yield path.name, node.getparent().get("id"), node.text.strip(), None
        elif kind == "timer":
            for tag in ("timeDate", "timeDuration", "timeCycle"):
                for node in root.iter(f"{{{NS['bpmn']}}}{tag}"):
                    yield path.name, node.getparent().getparent().get("id"), node.text.strip(), tag
        else:
            for node in root.iter(f"{{{NS['bpmn']}}}serviceTask"):
                operator = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
                for param in operator.findall("spiffworkflow:parameters/spiffworkflow:parameter", NS):
                    yield (
                        path.name,
                        node.get("id"),
                        param.get("value"),
                        (operator.get("id"), param.get("id"), param.get("type")),
                    )


def test_shipped_diagrams_have_expressions_of_every_kind():
    for kind in ("condition", "timer", "parameter"):
        files = {name for name, *_ in _shipped(kind)}
        assert files == {p.name for p in PROCESSES.glob("*.bpmn")}, kind


@pytest.mark.parametrize(("filename", "element", "expression", "_"), list(_shipped("condition")))
def test_shipped_condition_evaluates_correctly(filename, element, expression, _):
    assert expression in CONDITION_CASES, f"{filename}#{element}: add representative cases for {expression!r}"
    for overrides, expected in CONDITION_CASES[expression]:
        assert expressions.evaluate(expression, {**REPRESENTATIVE, **overrides}) is expected


@pytest.mark.parametrize(("filename", "element", "expression", "tag"), list(_shipped("timer")))
def test_shipped_timer_expression_evaluates_to_an_aware_instant(filename, element, expression, tag):
    assert tag == "timeDate", f"{filename}#{element}: only absolute timeDate deadlines (DESIGN §2)"
    assert expression in TIMER_CASES, f"{filename}#{element}: add the expected due time of {expression!r}"
    value = expressions.evaluate(expression, REPRESENTATIVE)
    assert isinstance(value, str)
    due = dt.datetime.fromisoformat(value)
    assert due.utcoffset() is not None
    assert due == dt.datetime.fromisoformat(TIMER_CASES[expression])
    # the timer reads only routing variables the runtime owns (a form cannot set them)
    assert expressions.names_used(expression) <= TIMER_VARIABLES | set(SUPERVISION_DUE)


@pytest.mark.parametrize(("filename", "element", "expression", "param"), list(_shipped("parameter")))
def test_shipped_service_parameter_evaluates_to_its_declared_type(filename, element, expression, param):
    handler, name, declared = param
    value = expressions.evaluate(expression, REPRESENTATIVE)
    if expression in PINNED_POLICY:  # a policy value pinned at start, or …
        assert value == PINNED_POLICY[expression]
    else:  # … a literal
        assert value == ast.literal_eval(expression)
    assert isinstance(value, HANDLERS[handler].params[name])
    assert type(value).__name__ == declared


def test_shipped_expressions_evaluate_through_the_workflow_engine():
    """The same expressions, evaluated by SpiffWorkflow through the safe environment."""
    env = bpmn.SafeEnvironment(FixedClock(dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)))
    for kind in ("condition", "timer", "parameter"):
        for _name, _element, expression, _extra in _shipped(kind):
            assert env.evaluate(expression, REPRESENTATIVE) == expressions.evaluate(
                expression, REPRESENTATIVE
            )


# --------------------------------------------------------------------------------------------------
# DMN: processes/decisions/review_days.dmn through SpiffWorkflow's DMN engine on the safe engine

DMN = REVIEW_DAYS_DMN.read_text(encoding="utf-8")


def _decision_process(dmn: str = DMN):
    [process] = bpmn.parse_bpmn(
        REVIEW_DAYS_TASK.read_bytes(), REVIEW_DAYS_TASK.name, dmn_files={"review_days.dmn": dmn.encode()}
    )
    return process


def _decide(process, **data) -> dict[str, object]:
    workflow = bpmn.new_workflow(process.spec, process.subprocess_specs)
    workflow.task_tree.data.update(data)
    workflow.do_engine_steps()
    assert bpmn.workflow_completed(workflow)
    return {k: workflow.data[k] for k in ("review_days", "review_basis")}


@pytest.mark.parametrize(
    ("grade", "rectify_days", "review_days", "basis", "rule"),
    [
        # rule_major: cell "major" → (grade) == ("major"); the '-' cell matches anything
        ("major", 1, 20, "重大隐患现场审查", "rule_major"),
        ("major", 90, 20, "重大隐患现场审查", "rule_major"),
        # rule_long: ? in ("general", "prominent") and "> 30" → rectify_days> 30
        ("general", 31, 15, "长期整改", "rule_long"),
        ("prominent", 45, 15, "长期整改", "rule_long"),
        # rule_medium: "7 < ? <= 30" → 7 < dmninputexpr <= 30
        ("general", 30, 10, "中期整改", "rule_medium"),
        ("prominent", 8, 10, "中期整改", "rule_medium"),
        # rule_short_prominent: "prominent" and "<= 7"
        ("prominent", 7, 7, "短期整改（突出）", "rule_short_prominent"),
        ("prominent", 0, 7, "短期整改（突出）", "rule_short_prominent"),
        # rule_short_general: output cell max(3, rectify_days // 2)
        ("general", 7, 3, "短期整改（一般）", "rule_short_general"),
        ("general", 2, 3, "短期整改（一般）", "rule_short_general"),
        # rule_default: '-' and an empty cell
        ("unknown", 3, 10, "默认", "rule_default"),
        ("", None, 10, "默认", "rule_default"),
    ],
)
def test_review_days_decision_every_cell(grade, rectify_days, review_days, basis, rule):
    result = _decide(_decision_process(), grade=grade, rectify_days=rectify_days)
    assert result == {"review_days": review_days, "review_basis": basis}, rule


def test_review_days_cells_are_evaluated_in_the_checked_rewritten_form(monkeypatch):
    """What SpiffWorkflow hands to ``evaluate`` is exactly what check_dmn_rules checked."""
    seen: list[str] = []
    real = expressions.evaluate

    def recording(expression, context, external_context=None):
        seen.append(expression)
        return real(expression, context, external_context)

    monkeypatch.setattr(expressions, "evaluate", recording)
    process = _decision_process()
    for grade, days in [("major", 1), ("general", 31), ("prominent", 8), ("prominent", 7), ("general", 2)]:
        _decide(process, grade=grade, rectify_days=days)
        _decide(process, grade="other", rectify_days=days)
    root = etree.fromstring(DMN.encode())
    ns = {"dmn": NS["dmn"]}
    inputs = [t.text for t in root.iterfind(".//dmn:input/dmn:inputExpression/dmn:text", ns)]
    checked: set[str] = set(inputs)
    for rule in root.iterfind(".//dmn:rule", ns):
        for index, entry in enumerate(rule.iterfind("dmn:inputEntry", ns)):
            cell = entry.findtext("dmn:text", namespaces=ns)
            if cell and cell != "-":
                checked.update(definitions.dmn_cell_expressions(inputs[index], cell))
        checked.update(t.text for t in rule.iterfind("dmn:outputEntry/dmn:text", ns) if t.text)
    assert seen and set(seen) <= checked
    assert {'(grade) == ("major")', "rectify_days> 30", "7 < dmninputexpr <= 30"} <= set(seen)


def test_review_days_decision_with_a_bad_input_raises_a_typed_error():
    with pytest.raises(Exception) as err:
        _decide(_decision_process(), grade="general", rectify_days=None)  # None > 30
    cause = bpmn.unwrap_error(err.value)
    assert isinstance(cause, ExpressionError)
    assert "rectify_days> 30" in cause.expression


def test_unsafe_dmn_cell_is_refused_at_run_time():
    unsafe = DMN.replace("<text>&gt; 30</text>", "<text>&gt; ().__class__.__base__.__subclasses__()</text>")
    assert unsafe != DMN
    cause = _refused_at_run_time(lambda: _decide(_decision_process(unsafe), grade="general", rectify_days=31))
    assert "__subclasses__" in cause.expression
    with pytest.raises(DefinitionInvalid) as err:
        definitions.check_dmn_rules(unsafe.encode())
    assert err.value.element_id == "rule_long_days"


def test_decision_task_diagram_passes_the_bpmn_gate(ctx):
    definitions.check_bpmn_rules(REVIEW_DAYS_TASK.read_bytes(), ctx.forms)


def test_business_rule_task_must_name_a_decision(ctx):
    xml = REVIEW_DAYS_TASK.read_text().replace(
        "<spiffworkflow:calledDecisionId>review_days</spiffworkflow:calledDecisionId>", ""
    )
    with pytest.raises(DefinitionInvalid) as err:
        definitions.check_bpmn_rules(xml.encode(), ctx.forms)
    assert err.value.element_id == "decide_review_days"


# --------------------------------------------------------------------------------------------------
# check_dmn_rules


def test_shipped_decisions_pass_check_dmn_rules():
    paths = sorted((PROCESSES / "decisions").glob("*.dmn"))
    assert REVIEW_DAYS_DMN in paths
    for path in paths:
        definitions.check_dmn_rules(path.read_bytes())


@pytest.mark.parametrize(
    ("old", "new", "element", "reason"),
    [
        pytest.param(
            '<text>"major"</text>',
            "<text>__import__('os').system('id')</text>",
            "rule_major_grade",
            "__import__",
            id="input-cell-call",
        ),
        pytest.param(
            '<text>? in ("general", "prominent")</text>',
            "<text>? in ().__class__.__mro__</text>",
            "rule_long_grade",
            "__class__",
            id="question-mark-cell",
        ),
        pytest.param(
            "<text>&gt; 30</text>",
            "<text>.__class__</text>",
            "rule_long_days",
            "rectify_days.__class__",  # harmless-looking alone, an attribute once glued on
            id="glued-attribute",
        ),
        pytest.param(
            '<text>"prominent"</text>',
            '<text>in ("prominent", "general")</text>',
            "rule_short_prominent_grade",
            "gradein",  # SpiffWorkflow glues without a space: a call of 'gradein'
            id="glued-in-without-question-mark",
        ),
        pytest.param(
            '<text>"prominent"</text>',
            '<text>"prominent", "general"</text>',
            "rule_short_prominent_grade",
            "元组比较",
            id="tuple-cell",
        ),
        pytest.param(
            "<text>7 &lt; ? &lt;= 30</text>",
            "<text>7 &lt; ? &lt;= 9**9**9</text>",
            "rule_medium_days",
            "**",
            id="pow-in-question-mark-cell",
        ),
        pytest.param(
            '<text>"major"</text>',
            '<text>"unclosed</text>',
            "rule_major_grade",
            "语法错误",
            id="syntax-error",
        ),
        pytest.param(
            "<text>max(3, rectify_days // 2)</text>",
            "<text>open('/etc/passwd').read()</text>",
            "rule_short_general_out_days",
            "决策表输出不安全",
            id="output-cell",
        ),
        pytest.param(
            "<text>rectify_days</text>",
            "<text>rectify_days.__class__</text>",
            "input_rectify_days",
            "输入表达式不安全",
            id="input-expression",
        ),
        pytest.param(
            "<text>rectify_days</text>",
            "<text> </text>",
            "input_rectify_days",
            "缺少输入表达式",
            id="missing-input-expression",
        ),
        pytest.param(
            '<text>"重大隐患现场审查"</text>',
            "<text>f'{grade}'</text>",
            "rule_major_out_basis",
            "f-string",
            id="output-f-string",
        ),
    ],
)
def test_check_dmn_rules_refuses(old, new, element, reason):
    assert old in DMN
    with pytest.raises(DefinitionInvalid) as err:
        definitions.check_dmn_rules(DMN.replace(old, new, 1).encode())
    assert err.value.element_id == element
    assert reason in err.value.reason


def test_check_dmn_rules_refuses_malformed_xml():
    with pytest.raises(DefinitionInvalid) as err:
        definitions.check_dmn_rules(DMN[:200].encode())
    assert "XML 语法错误" in err.value.reason


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('"major"', ['(grade) == ("major")']),
        ("> 5", ["grade> 5"]),
        ("4 < ? < 6", ["grade", "4 < dmninputexpr < 6"]),
        ('? in ("a", "b")', ["grade", 'dmninputexpr in ("a", "b")']),
        ('"what?"', ['(grade) == ("what?")']),  # a ? inside quotes is left alone
        ("'a?' == ?", ["grade", "'a?' == dmninputexpr"]),
        ("5", ["(grade) == (5)"]),
    ],
)
def test_dmn_cell_rewriting_matches_spiffworkflow(cell, expected):
    assert definitions.dmn_cell_expressions("grade", cell) == expected
