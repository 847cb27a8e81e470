"""Deploy BPMN definitions: XSD, the safe-expression gate, our extension rules, versioning.

Identical content is the same version; changed content becomes version n+1. Anything refused
raises :class:`DefinitionInvalid` naming the element and the reason.
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import lru_cache
from pathlib import Path
from typing import Any
from typing import NamedTuple

from lxml import etree
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import bpmn
from . import expressions
from .errors import DefinitionInvalid
from .errors import NotFound
from .errors import UnsafeExpression
from .forms import FormDefinition
from .forms import load_form_directory
from .handlers import HANDLERS
from .models import DefinitionBinding
from .models import DefinitionBindingHistory
from .models import DefinitionVersion
from .models import PolicyProfile
from .models import ProcessInstance
from .models import Region
from .models import Role
from .models import User
from .policy import resolve_policy
from .process_graph import Element
from .process_graph import ProcessGraph
from .process_graph import process_graphs

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
ORG_SCOPES = frozenset({"enterprise", "department", "region"})
REQUIRED_USER_TASK_PROPERTIES = ("candidate_role", "org_scope", "form_key", "status")
MAX_BPMN_BYTES = 2 * 1024 * 1024

_spec_cache: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
#: process property naming the policy profile (escalation ladder, deadlines) a diagram runs on
POLICY_PROFILE_PROPERTY = "policy_profile"


@lru_cache(maxsize=8)
def shipped_forms(processes_dir: Path) -> Mapping[str, FormDefinition]:
    return load_form_directory(processes_dir / "forms")


def _element_id(node: Any) -> str:
    ident = node.get("id")
    while ident is None and node.getparent() is not None:
        node = node.getparent()
        ident = node.get("id")
    return ident or node.tag


def _check_expression(text: str | None, element: str, what: str) -> None:
    if text is None or not text.strip():
        raise DefinitionInvalid(element, f"{what}为空")
    try:
        expressions.check(text.strip())
    except UnsafeExpression as exc:
        raise DefinitionInvalid(element, f"{what}不安全: {exc.reason} ({text.strip()!r})") from exc


def _parse_xml(xml: bytes) -> Any:
    """Parse without entity expansion; refuse any DOCTYPE.

    SpiffWorkflow's own parser expands internal entities, so a DTD entity would let the text the
    gate checks differ from the text that runs (``cond&evil;`` passes as ``cond``). Modelers
    (bpmn-js, dmn-js) never write a DOCTYPE.
    """
    try:
        root = etree.fromstring(
            xml, parser=etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        )
    except etree.XMLSyntaxError as exc:
        raise DefinitionInvalid(None, f"XML 语法错误: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise DefinitionInvalid(None, "不允许 DOCTYPE 或实体声明 (DTD)")
    return root


class DefinitionWarning(NamedTuple):
    """Something a publisher should look at that does not stop the publication."""

    element_id: str | None
    message: str


def check_bpmn_rules(xml: bytes, forms: Mapping[str, FormDefinition]) -> None:
    """Our rules on top of the XSD: no scripts, safe expressions, required task properties,
    exclusive-gateway defaults, and the statutory steps of a hazard loop (see :func:`check_definition`).

    :raises DefinitionInvalid: naming the first offending element.
    """
    _gate(xml, forms, {})


def check_definition(
    xml: bytes, forms: Mapping[str, FormDefinition], *, tracks: Mapping[str, str] | None = None
) -> list[DefinitionWarning]:
    """The publish gate: every rule of :func:`check_bpmn_rules`, then the warnings.

    ``tracks`` adds what is known outside the file (process key -> ``general``/``major``, from
    the grades the process is bound to); the strictest of that, the process's declared ``track``
    property and its id convention applies (see :func:`process_track`).

    :returns: warnings as ``(element_id, message)``: unreachable elements, exclusive gateways
        with one unconditional exit and no ``default``.
    :raises DefinitionInvalid: naming the first offending element and the reason.
    """
    return _gate(xml, forms, tracks or {})


def _gate(
    xml: bytes, forms: Mapping[str, FormDefinition], tracks: Mapping[str, str]
) -> list[DefinitionWarning]:
    root = _parse_xml(xml)
    _check_elements(root, forms)
    warnings: list[DefinitionWarning] = []
    graphs = {graph.process_id: graph for graph in process_graphs(root)}
    for graph in graphs.values():
        warnings.extend(_check_gateways(graph))
        _check_statutory_markers(graph)
        track = _strictest(process_track(graph), tracks.get(graph.process_id))
        if track in TRACK_RULES:
            _check_statutory_paths(graph, track, graphs)
        for node in graph.unreachable():
            label = f"「{node.name}」" if node.name else ""
            warnings.append(
                DefinitionWarning(node.id, f"从开始事件不可达的元素{label} ({node.tag})：它永远不会执行")
            )
    return warnings


def _check_elements(root: Any, forms: Mapping[str, FormDefinition]) -> None:
    for node in root.iter("{{{}}}scriptTask".format(NS["bpmn"])):
        raise DefinitionInvalid(node.get("id"), "不允许脚本任务 (scriptTask)：请改用已注册的服务任务")
    for tag in ("preScript", "postScript"):
        for node in root.iter("{{{}}}{}".format(NS["spiffworkflow"], tag)):
            raise DefinitionInvalid(_element_id(node), f"不允许 spiffworkflow:{tag} 脚本")
    for node in root.iter("{{{}}}conditionExpression".format(NS["bpmn"])):
        _check_expression(node.text, _element_id(node), "条件表达式")
    for tag in ("timeDate", "timeDuration", "timeCycle"):
        for node in root.iter("{{{}}}{}".format(NS["bpmn"], tag)):
            _check_expression(node.text, _element_id(node), "定时器表达式")
    for node in root.iter("{{{}}}userTask".format(NS["bpmn"])):
        _check_user_task(node, forms)
    for node in root.iter("{{{}}}serviceTask".format(NS["bpmn"])):
        _check_service_task(node)
    for node in root.iter("{{{}}}businessRuleTask".format(NS["bpmn"])):
        if node.find("bpmn:extensionElements/spiffworkflow:calledDecisionId", NS) is None:
            raise DefinitionInvalid(node.get("id"), "业务规则任务必须引用一个 DMN 决策 (calledDecisionId)")


def _check_user_task(node: Any, forms: Mapping[str, FormDefinition]) -> None:
    ident = node.get("id")
    props = {
        p.get("name"): p.get("value")
        for p in node.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", NS)
    }
    for name in REQUIRED_USER_TASK_PROPERTIES:
        if not props.get(name):
            raise DefinitionInvalid(ident, f"用户任务缺少属性 {name}")
    if props["candidate_role"] not in {r.value for r in Role}:
        raise DefinitionInvalid(ident, f"未知的候选角色 {props['candidate_role']!r}")
    if props["org_scope"] not in ORG_SCOPES:
        raise DefinitionInvalid(ident, f"未知的组织范围 {props['org_scope']!r}")
    if props["form_key"] not in forms:
        raise DefinitionInvalid(ident, f"未知的表单 {props['form_key']!r}")
    if props.get("delegable", "true") not in {"true", "false"}:
        raise DefinitionInvalid(ident, "delegable 只能是 true 或 false")


def _check_service_task(node: Any) -> None:
    ident = node.get("id")
    operator = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
    if operator is None:
        raise DefinitionInvalid(ident, "服务任务必须指定已注册的处理器 (spiffworkflow:serviceTaskOperator)")
    handler = HANDLERS.get(operator.get("id", ""))
    if handler is None:
        raise DefinitionInvalid(ident, f"未注册的服务任务处理器 {operator.get('id')!r}")
    params = {}
    for p in operator.findall("spiffworkflow:parameters/spiffworkflow:parameter", NS):
        _check_expression(p.get("value"), ident, f"参数 {p.get('id')} ")
        params[p.get("id")] = p.get("value")
    if set(params) != set(handler.params):
        raise DefinitionInvalid(
            ident, f"处理器 {handler.name} 的参数应为 {sorted(handler.params)}, 实际为 {sorted(params)}"
        )
    if handler.needs_result_variable and not operator.get("resultVariable"):
        raise DefinitionInvalid(ident, f"处理器 {handler.name} 需要 resultVariable")
    for name, allowed in handler.literals.items():
        try:
            literal = ast.literal_eval(params[name] or "")
        except (SyntaxError, ValueError):
            raise DefinitionInvalid(ident, f"参数 {name} 必须是字符串常量") from None
        if literal not in allowed:
            raise DefinitionInvalid(
                ident,
                f"参数 {name} 的值 {literal!r} 不在允许范围内: {', '.join(sorted(a for a in allowed if a))}",
            )


# --- the process graph: gateways and statutory steps -----------------------------------------------


def _check_gateways(graph: ProcessGraph) -> list[DefinitionWarning]:
    """An exclusive gateway with conditional exits needs an unconditional ``default`` exit.

    Without one, a token for which no condition holds stops at the gateway with an error (an
    incident, a stuck hazard): refused. A merge-only gateway (one unconditional exit) runs without
    a default, so it is only a warning (processes/README.md marks it ``default`` by convention).
    """
    warnings = []
    for gateway in graph.elements.values():
        if gateway.tag != "exclusiveGateway":
            continue
        exits = graph.outgoing(gateway.id)
        if gateway.default:
            flow = graph.elements.get(gateway.default)
            if flow is None or flow.tag != "sequenceFlow" or flow.source != gateway.id:
                raise DefinitionInvalid(gateway.id, f"默认流 {gateway.default} 不是该排他网关的出口")
            if flow.condition:
                raise DefinitionInvalid(gateway.id, f"默认流 {gateway.default} 不能带条件表达式")
        elif any(f.condition for f in exits):
            raise DefinitionInvalid(
                gateway.id,
                "排他网关有条件分支但没有默认流 (default)：所有条件都不成立时流程会停在这里",
            )
        elif len(exits) <= 1:
            warnings.append(
                DefinitionWarning(
                    gateway.id, "排他网关没有默认流 (default)：按约定应把唯一的出口标为 default"
                )
            )
    return warnings


#: statutory steps of a hazard loop (DOMAIN §1.3-§1.4), by the value of a user task's
#: ``statutory`` property; a task is also recognised by the shipped form that implies the step.
STATUTORY_STEPS = {
    "verification": '整改验收（verification="true" 的用户任务）',
    "closure_review": "负有监管职责的部门审核把关销号（销号/核销审核）",
    "report_regulator": "向负有监管职责的部门报告（双报告）",
    "governance_plan": "制定重大事故隐患治理方案（五落实）",
    "principal_signoff": "主要负责人签批治理方案（五落实把关）",
}
STATUTORY_FORMS = {
    "closure_review": frozenset({"closure_review", "regulator_review"}),
    "report_regulator": frozenset({"report_regulator"}),
    "governance_plan": frozenset({"governance_plan"}),
    "principal_signoff": frozenset({"principal_signoff"}),
}
# source: 「建立政府负有安全监管职责的有关部门审核把关销号机制」 S000 #17, S004 #10 (closure review);
# 「落实“双报告”制度」 S001 L2327; 「确保责任、措施、资金、期限和应急预案落实到位」 S001 L989 (五落实).
TRACK_RULES = {
    "general": ("verification", "closure_review"),
    "major": ("verification", "closure_review", "report_regulator", "governance_plan", "principal_signoff"),
}
TRACKS = ("general", "major", "supervision")
#: the departmental roles that may do the 审核把关销号
CLOSURE_REVIEW_ROLES = frozenset({Role.DEPT_REVIEWER.value, Role.INSPECTOR.value})
_TRACK_BY_GRADE = {
    "general": "general",
    "prominent": "general",
    "major": "major",
    "supervision": "supervision",
}
_TRACK_RANK = {None: 0, "supervision": 1, "general": 2, "major": 3}


def track_for_grade(grade: str) -> str | None:
    """The statutory rules a process bound to ``grade`` must keep (None: no statutory rules)."""
    return _TRACK_BY_GRADE.get(grade)


def _strictest(*tracks: str | None) -> str | None:
    return max(tracks, key=lambda t: _TRACK_RANK.get(t, 0))


def process_track(graph: ProcessGraph) -> str | None:
    """What a process is, for the statutory rules: its ``track`` property, else its id.

    ``hazard_general…`` / ``hazard_major…`` / ``hazard_supervision…`` (the shipped ids and the
    ``<id>_<variant>`` names sector variants get) are loops resp. the 挂牌督办 track; any other id
    is unknown here and is held to the rules of the grade it gets bound to (:func:`bind`).

    :raises DefinitionInvalid: an unknown ``track`` value.
    """
    declared = graph.properties.get("track")
    if declared is not None:
        if declared not in TRACKS:
            raise DefinitionInvalid(
                graph.process_id, f"未知的流程类别 track={declared!r}（可选: {', '.join(TRACKS)}）"
            )
        return declared
    for track in TRACKS:
        prefix = f"hazard_{track}"
        if graph.process_id == prefix or graph.process_id.startswith(prefix + "_"):
            return track
    return None


def _statutory_kinds(task: Element) -> set[str]:
    props = task.props
    kinds = {kind for kind, keys in STATUTORY_FORMS.items() if props.get("form_key") in keys}
    if props.get("statutory"):
        kinds.add(props["statutory"])
    if props.get("verification") == "true":
        kinds.add("verification")
    return kinds


def _statutory_problem(kind: str, props: Mapping[str, str]) -> str | None:
    """Why a task cannot be the statutory step ``kind`` (None: it can)."""
    role, scope = props.get("candidate_role"), props.get("org_scope")
    if kind == "closure_review" and (role not in CLOSURE_REVIEW_ROLES or scope != "department"):
        return (
            "审核把关销号必须由负有监管职责的部门办理"
            f"（candidate_role 为 {'/'.join(sorted(CLOSURE_REVIEW_ROLES))}，org_scope 为 department）"
        )
    if kind in ("report_regulator", "governance_plan") and scope != "enterprise":
        return f"{STATUTORY_STEPS[kind]}由企业办理（org_scope 应为 enterprise）"
    if kind == "principal_signoff":
        if role != "principal" or scope != "enterprise" or props.get("delegable") != "false":
            return (
                "治理方案必须由主要负责人本人签批"
                "（candidate_role principal，org_scope enterprise，delegable false）"
            )
        if props.get("form_key") != "principal_signoff":
            # the run-time 五落实 completeness check (engine.runtime.complete) is tied to this form
            return "主要负责人签批须使用表单 principal_signoff（运行时据此检查五落实是否齐全）"
    return None


def _check_statutory_markers(graph: ProcessGraph) -> None:
    """``statutory`` marks only user tasks, with a known value and the right role and scope."""
    for element in graph.elements.values():
        marker = element.props.get("statutory")
        if marker is None:
            continue
        if element.tag != "userTask":
            raise DefinitionInvalid(element.id, "statutory 属性只能用于用户任务")
        if marker not in STATUTORY_FORMS:
            raise DefinitionInvalid(
                element.id,
                f"未知的法定环节 statutory={marker!r}（可选: {', '.join(sorted(STATUTORY_FORMS))}）",
            )
        problem = _statutory_problem(marker, element.props)
        if problem:
            raise DefinitionInvalid(element.id, problem)


def _statutory_blockers(
    graphs: Mapping[str, ProcessGraph],
    graph: ProcessGraph,
    container: str | None,
    kind: str,
    seen: frozenset[str],
) -> list[str]:
    """The nodes of ``container`` that complete the statutory step ``kind`` when a token passes them.

    A user task recognised as the step (checked for the right role and scope), or an activity
    that runs the step on every path through it: an embedded sub-process, or a call activity
    whose called process is in the same file (one in another file cannot be seen, so it does not
    count).

    :raises DefinitionInvalid: a task recognised as the step has the wrong role or scope.
    """
    blockers = []
    for node in graph.nodes(container):
        if node.tag == "userTask" and kind in _statutory_kinds(node):
            problem = _statutory_problem(kind, node.props)
            if problem:
                raise DefinitionInvalid(node.id, problem)
            blockers.append(node.id)
        elif node.tag == "callActivity" and node.called in graphs and node.called not in seen:
            if _guarantees(graphs, graphs[node.called], None, kind, seen | {node.called}):
                blockers.append(node.id)
        elif (
            node.tag in ("subProcess", "transaction")
            and not node.triggered_by_event
            and _guarantees(graphs, graph, node.id, kind, seen)
        ):
            blockers.append(node.id)
    return blockers


def _guarantees(
    graphs: Mapping[str, ProcessGraph],
    graph: ProcessGraph,
    container: str | None,
    kind: str,
    seen: frozenset[str],
) -> bool:
    """Every way through ``container`` (that ends at all) completes the statutory step ``kind``."""
    blockers = _statutory_blockers(graphs, graph, container, kind, seen)
    return graph.bypass((), container) is not None and graph.bypass(blockers, container) is None


def _check_statutory_paths(graph: ProcessGraph, track: str, graphs: Mapping[str, ProcessGraph]) -> None:
    """Every path from the start to a main end event passes each statutory step of ``track``.

    Side paths (non-interrupting boundary-event branches ending in their own end events, the
    escalation ladder) are exempt: the main token is still in the activity. An interrupting
    event sub-process can end the process from anywhere, so a loop may not have one. A step may
    sit in a sub-process or in a process of the same file that a call activity calls.
    """
    label = {"general": "一般隐患", "major": "重大事故隐患"}[track]
    for node in graph.nodes():
        event_subprocess = (
            node.tag in ("subProcess", "transaction", "adHocSubProcess") and node.triggered_by_event
        )
        if event_subprocess and node.interrupting:
            raise DefinitionInvalid(
                node.id, f"{label}闭环不能有中断型事件子流程：它可以绕过法定环节直接结束流程"
            )
    if graph.bypass(()) is None:
        raise DefinitionInvalid(
            graph.process_id,
            f"{label}闭环从开始事件无法到达结束事件（检查流向和并行汇聚的每个入口），隐患永远无法销号",
        )
    seen = frozenset({graph.process_id})
    for kind in TRACK_RULES[track]:
        blockers = _statutory_blockers(graphs, graph, None, kind, seen)
        anywhere = any(
            e.tag == "userTask" and kind in _statutory_kinds(e)
            for g in graphs.values()
            for e in g.elements.values()
        )
        if not blockers and not anywhere:
            raise DefinitionInvalid(graph.process_id, f"{label}闭环缺少法定环节：{STATUTORY_STEPS[kind]}")
        path = graph.bypass(blockers)
        if path is not None:
            where = f"（{', '.join(blockers)}）" if blockers else ""
            raise DefinitionInvalid(
                path[-1],
                f"从开始事件到结束事件 {path[-1]} 有一条路径不经过{STATUTORY_STEPS[kind]}{where}: "
                + " → ".join(path),
            )


def check_statutory(xml: bytes, *, process_key: str, track: str) -> None:
    """The statutory rules of ``track`` for one process of a stored diagram (used when binding).

    :raises DefinitionInvalid: naming the element and the reason.
    """
    graphs = {graph.process_id: graph for graph in process_graphs(_parse_xml(xml))}
    graph = graphs.get(process_key)
    if graph is not None:
        _check_statutory_markers(graph)
        track = _strictest(track, process_track(graph))
        if track in TRACK_RULES:
            _check_statutory_paths(graph, track, graphs)
        return
    raise DefinitionInvalid(process_key, "文件中没有该流程")


# SpiffWorkflow 3.2.0 ``DMNEngine.evaluate`` (SpiffWorkflow/dmn/engine/DMNEngine.py) rewrites an
# input cell before evaluating it: a ``?`` outside quotes becomes ``dmninputexpr`` (bound to the
# evaluated input expression); otherwise a cell that parses on its own is compared with
# ``(input) == (cell)`` and a cell that only parses after a name (``> 5``, ``in (...)``) is glued
# to the input expression *without a space*: ``input + cell``. The safety check must look at the
# rewritten form, since that is what reaches ``evaluate``.
_DMN_QUESTION_MARK = re.compile(r"""(\?)(?=(?:[^'"]|['"][^'"]*['"])*$)""")
DMN_INPUT_NAME = "dmninputexpr"


def _python_parses(text: str) -> bool:
    try:
        ast.parse(text)  # what SpiffWorkflow's ``PythonScriptEngine.validate`` does
    except SyntaxError:
        return False
    return True


def _is_tuple_cell(cell: str) -> bool:
    try:
        tree = ast.parse(cell.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return False
    return isinstance(tree.body, ast.Tuple)


def dmn_cell_expressions(input_expression: str, cell: str) -> list[str]:
    """The expressions SpiffWorkflow 3.2.0 evaluates for one DMN input cell, rewritten as it does.

    :raises UnsafeExpression: the cell parses in none of SpiffWorkflow's forms.
    """
    rewritten = _DMN_QUESTION_MARK.sub(DMN_INPUT_NAME, cell)
    if DMN_INPUT_NAME in rewritten:
        return [input_expression, rewritten]
    if _python_parses(cell):
        return [f"({input_expression}) == ({cell})"]
    if _python_parses(f"v {cell}"):
        return [input_expression + cell]
    raise UnsafeExpression(cell, "语法错误: 既不是值也不是比较条件")


def check_dmn_rules(xml: bytes) -> None:
    """The safe-expression gate for a DMN decision table: input expressions and every cell.

    Input cells are checked in the form SpiffWorkflow rewrites them to (see
    :func:`dmn_cell_expressions`); ``-`` and empty cells match anything and are skipped.

    :raises DefinitionInvalid: naming the first offending input, input entry or output entry.
    """
    root = _parse_xml(xml)
    ns = {"dmn": root.nsmap.get(None) or NS["dmn"]}
    for table in root.iterfind(".//dmn:decisionTable", ns):
        inputs: list[str] = []
        for node in table.iterfind("dmn:input", ns):
            text = node.findtext("dmn:inputExpression/dmn:text", namespaces=ns)
            if text is None or not text.strip():
                # SpiffWorkflow would fall back to ``repr(data[label])``: require an expression.
                raise DefinitionInvalid(node.get("id"), "决策表输入列缺少输入表达式 (inputExpression)")
            _check_expression(text, node.get("id"), "输入表达式")
            inputs.append(text)
        for rule in table.iterfind("dmn:rule", ns):
            for index, entry in enumerate(rule.iterfind("dmn:inputEntry", ns)):
                cell = entry.findtext("dmn:text", namespaces=ns)
                if cell is None or not cell.strip() or cell == "-":
                    continue
                if index >= len(inputs):
                    raise DefinitionInvalid(entry.get("id") or rule.get("id"), "输入条目多于输入列")
                if _is_tuple_cell(cell):
                    # ``"a", "b"`` would become ``(x) == ("a", "b")``: tuple equality, never a match.
                    raise DefinitionInvalid(
                        entry.get("id") or rule.get("id"),
                        f"决策表条件 {cell!r} 是元组比较, 永远不会命中: 多个取值请写成 ? in (...)",
                    )
                try:
                    for text in dmn_cell_expressions(inputs[index], cell):
                        expressions.check(text)
                except UnsafeExpression as exc:
                    raise DefinitionInvalid(
                        entry.get("id") or rule.get("id"),
                        f"决策表条件不安全: {exc.reason} ({cell!r}, 实际求值 {exc.expression!r})",
                    ) from exc
            for entry in rule.iterfind("dmn:outputEntry", ns):
                cell = entry.findtext("dmn:text", namespaces=ns)
                if cell is None or not cell.strip() or cell.strip() == "-":
                    continue
                _check_expression(cell, entry.get("id") or rule.get("id"), "决策表输出")


@dataclass(frozen=True, slots=True)
class DeployResult:
    versions: list[DefinitionVersion]
    created: bool
    #: what the publisher should look at (unreachable elements …); never stops a deployment
    warnings: list[DefinitionWarning] = field(default_factory=list)


def _bound_tracks(session: Session, process_keys: Sequence[str]) -> dict[str, str]:
    """The strictest statutory track each process key is bound to (by the grades of its bindings)."""
    tracks: dict[str, str] = {}
    rows = session.execute(
        select(DefinitionBinding.process_key, DefinitionBinding.grade).where(
            DefinitionBinding.process_key.in_(list(process_keys))
        )
    )
    for key, grade in rows:
        track = _strictest(tracks.get(key), track_for_grade(grade))
        if track is not None:
            tracks[key] = track
    return tracks


def deploy(
    session: Session,
    *,
    bpmn_xml: bytes,
    filename: str,
    forms: Mapping[str, FormDefinition],
    deployed_by_id: int | None = None,
    note: str | None = None,
) -> DeployResult:
    """Validate and publish a BPMN file: version n+1 with its author, note and content hash.

    Identical content returns the existing versions (``created`` False). A process already
    bound to a grade is held to that grade's statutory rules even if its id does not say so.

    :raises DefinitionInvalid: the file is refused (element and reason named).
    """
    if len(bpmn_xml) > MAX_BPMN_BYTES:
        raise DefinitionInvalid(None, f"文件过大 ({len(bpmn_xml)} 字节, 上限 {MAX_BPMN_BYTES})")
    keys = [graph.process_id for graph in process_graphs(_parse_xml(bpmn_xml))]
    warnings = check_definition(bpmn_xml, forms, tracks=_bound_tracks(session, keys))
    check_policy_profiles(session, bpmn_xml)
    processes = bpmn.parse_bpmn(bpmn_xml, filename)
    if not processes:
        raise DefinitionInvalid(None, '文件中没有可执行流程 (isExecutable="true")')
    content_hash = hashlib.sha256(bpmn_xml).hexdigest()
    versions: list[DefinitionVersion] = []
    created = False
    xml_text = bpmn_xml.decode("utf-8")
    for process in processes:
        existing = session.scalars(
            select(DefinitionVersion).where(
                DefinitionVersion.process_key == process.process_key,
                DefinitionVersion.content_hash == content_hash,
            )
        ).first()
        if existing is not None:
            versions.append(existing)
            continue
        latest = session.scalar(
            select(func.max(DefinitionVersion.version)).where(
                DefinitionVersion.process_key == process.process_key
            )
        )
        version = DefinitionVersion(
            process_key=process.process_key,
            name=process.name,
            version=(latest or 0) + 1,
            content_hash=content_hash,
            source_filename=filename,
            bpmn_xml=xml_text,
            spec_json=process.spec_json(),
            deployed_by_id=deployed_by_id,
            note=note,
        )
        session.add(version)
        session.flush()
        versions.append(version)
        created = True
    return DeployResult(versions, created, warnings)


#: expression variables the start pins, not policy values
_PINNED_POLICY_VARIABLES = frozenset({"policy_profile_id", "policy_key", "policy_version"})
_POLICY_NAME = re.compile(r"\bpolicy_([a-z][a-z0-9_]*)\b")
_EXPRESSION_TAGS = frozenset({"timeDate", "timeDuration", "timeCycle", "conditionExpression"})


def policy_names_in(root: Any) -> dict[str, str]:
    """The policy values the expressions of a parsed BPMN file read, ``{name: element id}``.

    An expression reads value ``x`` of the instance's pinned profile as ``policy_x`` (the number)
    and ``policy_x_unit`` (its unit), e.g. ``compute_deadline`` parameters or a ``ladder_time``
    timer; the runtime exposes exactly these at start (:func:`policy_names_of`).
    """
    found: dict[str, str] = {}

    def scan(text: str | None, element: str) -> None:
        for match in _POLICY_NAME.finditer(text or ""):
            if f"policy_{match.group(1)}" in _PINNED_POLICY_VARIABLES:
                continue
            name = match.group(1)
            found.setdefault(name.removesuffix("_unit") if name.endswith("_unit") else name, element)

    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        tag = etree.QName(node).localname
        if tag in _EXPRESSION_TAGS:
            scan(node.text, _flow_element_id(node))
        elif tag == "parameter" and etree.QName(node).namespace == NS["spiffworkflow"]:
            scan(node.get("value"), _flow_element_id(node))
    return found


def _flow_element_id(node: Any) -> str:
    """The id of the flow element (task, event, flow) holding ``node``: what a diagram draws."""
    while node.getparent() is not None and etree.QName(node.getparent()).localname not in (
        "process",
        "subProcess",
    ):
        node = node.getparent()
    return _element_id(node)


def check_policy_profiles(session: Session, bpmn_xml: bytes, *, sector_code: str | None = None) -> None:
    """Every ``policy_profile`` property of a process names a stored policy profile, and every
    policy value an expression reads (``policy_<name>``) exists in the profile its hazards pin.

    That profile is the named one; else, for a sector's process (``sector_code``), the sector's;
    else any stored profile must define the value (a typo is refused; a sector binding a diagram
    that reads a value of another sector's profile is its publisher's business; before any
    profile is imported, as in a fresh ``init``, values are not checked). The deploy gate
    proper (:func:`check_definition`) does not see the database; :func:`deploy` runs this after it.

    :raises DefinitionInvalid: naming the process whose profile is unknown, or the element reading
        an unknown value.
    """
    root = _parse_xml(bpmn_xml)
    named: PolicyProfile | None = None
    for graph in process_graphs(root):
        key = graph.properties.get(POLICY_PROFILE_PROPERTY)
        if key is None:
            continue
        named = (
            session.scalars(
                select(PolicyProfile)
                .where(PolicyProfile.key == key.strip())
                .order_by(PolicyProfile.version.desc())
                .limit(1)
            ).first()
            if key.strip()
            else None
        )
        if named is None:
            raise DefinitionInvalid(
                graph.process_id,
                f"流程属性 policy_profile 指定的策略配置 {key!r} 不存在（请先发布该策略配置）",
            )
    wanted = policy_names_in(root)
    if not wanted:
        return
    if named is not None:
        candidates = [named]
        where = f"策略配置 {named.key}"
    elif sector_code is not None:
        candidates = [resolve_policy(session, sector_code, None)]
        where = f"本行业适用的策略配置 {candidates[0].key}"
    else:
        candidates = list(session.scalars(select(PolicyProfile)))
        where = "任何已导入的策略配置"
        if not candidates:
            return  # a fresh database deploys its processes before importing the profiles
    for name, element in wanted.items():
        if not any(name in (c.content.get("values") or {}) for c in candidates):
            raise DefinitionInvalid(element, f"表达式读取的策略值 policy_{name} 在{where}中不存在")


def deploy_file(
    session: Session, path: Path, forms: Mapping[str, FormDefinition], **kwargs: Any
) -> DeployResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionInvalid(None, f"无法读取文件 {path}: {exc.strerror}") from exc
    return deploy(session, bpmn_xml=data, filename=path.name, forms=forms, **kwargs)


# --- versions and their differences ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """One published version of a process, for listings (without the diagram texts)."""

    id: int
    process_key: str
    version: int
    name: str
    content_hash: str
    source_filename: str
    deployed_at: datetime.datetime
    deployed_by: str | None
    note: str | None
    #: running instances still on this version
    running: int
    #: bindings that start new hazards on it (``grade``, ``grade/sector``, ``grade@region`` …)
    bound_as: tuple[str, ...]
    #: the publisher's display name (高远（县应急局流程管理员）) for pages; ``deployed_by`` is the login
    deployed_by_name: str | None = None


def get_version(session: Session, process_key: str, version: int) -> DefinitionVersion:
    """:raises NotFound: no such version of ``process_key``."""
    found = session.scalars(
        select(DefinitionVersion).where(
            DefinitionVersion.process_key == process_key, DefinitionVersion.version == version
        )
    ).first()
    if found is None:
        raise NotFound("流程定义版本", f"{process_key}@{version}")
    return found


def latest_version(session: Session, process_key: str) -> DefinitionVersion | None:
    return session.scalars(
        select(DefinitionVersion)
        .where(DefinitionVersion.process_key == process_key)
        .order_by(DefinitionVersion.version.desc())
        .limit(1)
    ).first()


def binding_key_label(grade: str, sector_code: str | None, region: str | None) -> str:
    """A binding's key as text: ``major``, ``major/hazchem``, ``general@341821`` (region code)."""
    return grade + (f"/{sector_code}" if sector_code else "") + (f"@{region}" if region else "")


def binding_label(binding: DefinitionBinding) -> str:
    """``major``, ``major/hazchem``, ``general@341821``, ``major/fire@341821``."""
    region = binding.region.code if binding.region is not None else None
    return binding_key_label(binding.grade, binding.sector_code, region)


def list_versions(session: Session, process_key: str) -> list[VersionSummary]:
    """Every published version of ``process_key``, newest first, with author and bindings.

    :raises NotFound: the process was never published.
    """
    rows = session.execute(
        select(
            DefinitionVersion.id,
            DefinitionVersion.version,
            DefinitionVersion.name,
            DefinitionVersion.content_hash,
            DefinitionVersion.source_filename,
            DefinitionVersion.deployed_at,
            DefinitionVersion.note,
            User.username,
            User.display_name,
        )
        .outerjoin(User, User.id == DefinitionVersion.deployed_by_id)
        .where(DefinitionVersion.process_key == process_key)
        .order_by(DefinitionVersion.version.desc())
    ).all()
    if not rows:
        raise NotFound("流程定义", process_key)
    running = dict(
        session.execute(
            select(ProcessInstance.definition_version_id, func.count())
            .where(
                ProcessInstance.definition_version_id.in_([r.id for r in rows]),
                ProcessInstance.status == "running",
            )
            .group_by(ProcessInstance.definition_version_id)
        ).all()
    )
    bound: dict[int, list[str]] = {}
    for binding in session.scalars(
        select(DefinitionBinding).where(DefinitionBinding.process_key == process_key)
    ):
        target = binding.definition_version_id or rows[0].id
        bound.setdefault(target, []).append(binding_label(binding))
    return [
        VersionSummary(
            id=r.id,
            process_key=process_key,
            version=r.version,
            name=r.name,
            content_hash=r.content_hash,
            source_filename=r.source_filename,
            deployed_at=r.deployed_at,
            deployed_by=r.username,
            note=r.note,
            running=int(running.get(r.id, 0)),
            bound_as=tuple(sorted(bound.get(r.id, ()))),
            deployed_by_name=r.display_name,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class DiffElement:
    element_id: str
    type: str
    name: str | None


@dataclass(frozen=True, slots=True)
class ElementChange:
    element_id: str
    type: str
    name: str | None
    #: field -> (old, new): ``type``, ``name``, ``properties``, ``timer``, ``condition``,
    #: ``handler``, ``attached_to``, ``cancel_activity``, ``default``, ``source``, ``target``, ``called``
    fields: dict[str, tuple[Any, Any]]


@dataclass(frozen=True, slots=True)
class VersionDiff:
    """What changed between two versions, by BPMN element id (diagram layout is ignored)."""

    process_key: str
    from_version: int
    to_version: int
    added: list[DiffElement]
    removed: list[DiffElement]
    changed: list[ElementChange]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _graph_of(version: DefinitionVersion) -> ProcessGraph:
    for graph in process_graphs(_parse_xml(version.bpmn_xml.encode("utf-8"))):
        if graph.process_id == version.process_key:
            return graph
    raise DefinitionInvalid(version.process_key, "已部署的文件中找不到该流程")


def _described(graph: ProcessGraph) -> dict[str, dict[str, Any]]:
    described = {e.id: e.describe() for e in graph.elements.values()}
    described[graph.process_id] = {"type": "process", "name": graph.name, "properties": graph.properties}
    return described


def diff_versions(a: DefinitionVersion, b: DefinitionVersion) -> VersionDiff:
    """Elements added, removed and changed from version ``a`` to version ``b``.

    Elements are matched by BPMN id; an element is changed when its type, name, properties,
    timer expression, condition, handler or handler parameters, attachment, default flow or
    (for a sequence flow) its source or target differ.
    """
    old, new = _described(_graph_of(a)), _described(_graph_of(b))

    def brief(ident: str, fields: Mapping[str, Any]) -> DiffElement:
        return DiffElement(ident, str(fields.get("type")), fields.get("name"))

    changed = []
    for ident in sorted(set(old) & set(new)):
        fields = {
            key: (old[ident].get(key), new[ident].get(key))
            for key in sorted(set(old[ident]) | set(new[ident]))
            if old[ident].get(key) != new[ident].get(key)
        }
        if fields:
            changed.append(ElementChange(ident, str(new[ident]["type"]), new[ident].get("name"), fields))
    return VersionDiff(
        process_key=b.process_key,
        from_version=a.version,
        to_version=b.version,
        added=[brief(i, new[i]) for i in sorted(set(new) - set(old))],
        removed=[brief(i, old[i]) for i in sorted(set(old) - set(new))],
        changed=changed,
    )


# --- bindings: by grade, sector and region, with history ------------------------------------------


def find_region(session: Session, code: str) -> Region:
    """:raises NotFound: no region has this code."""
    region = session.scalars(select(Region).where(Region.code == code)).first()
    if region is None:
        raise NotFound("地区", code)
    return region


def _binding_key(grade: str, sector_code: str | None, region_id: int | None) -> list[Any]:
    return [
        DefinitionBinding.grade == grade,
        DefinitionBinding.sector_code.is_(None)
        if sector_code is None
        else DefinitionBinding.sector_code == sector_code,
        DefinitionBinding.region_id.is_(None)
        if region_id is None
        else DefinitionBinding.region_id == region_id,
    ]


def find_binding(
    session: Session, *, grade: str, sector_code: str | None = None, region_id: int | None = None
) -> DefinitionBinding | None:
    """The binding with exactly this key (not the one that would apply: see :func:`resolve_definition`)."""
    return session.scalars(
        select(DefinitionBinding).where(*_binding_key(grade, sector_code, region_id))
    ).first()


def _effective_version_id(session: Session, binding: DefinitionBinding) -> int | None:
    if binding.definition_version_id is not None:
        return binding.definition_version_id
    latest = latest_version(session, binding.process_key)
    return latest.id if latest is not None else None


def _record(
    session: Session,
    *,
    action: str,
    grade: str,
    sector_code: str | None,
    region_id: int | None,
    before: tuple[str | None, int | None, int | None],
    after: DefinitionBinding | None,
    changed_by_id: int | None,
    note: str | None,
    undoes_id: int | None = None,
) -> DefinitionBindingHistory:
    entry = DefinitionBindingHistory(
        grade=grade,
        sector_code=sector_code,
        region_id=region_id,
        action=action,
        process_key=after.process_key if after is not None else None,
        definition_version_id=after.definition_version_id if after is not None else None,
        effective_version_id=_effective_version_id(session, after) if after is not None else None,
        previous_process_key=before[0],
        previous_definition_version_id=before[1],
        previous_effective_version_id=before[2],
        undoes_id=undoes_id,
        changed_by_id=changed_by_id,
        note=note,
    )
    session.add(entry)
    session.flush()
    return entry


def bind(
    session: Session,
    *,
    grade: str,
    process_key: str,
    sector_code: str | None = None,
    region_id: int | None = None,
    version: int | None = None,
    changed_by_id: int | None = None,
    note: str | None = None,
) -> DefinitionBinding:
    """Bind new hazards of ``grade`` (in a sector and/or region subtree) to ``process_key``.

    ``version`` pins that version; without it the binding follows the latest published version.
    The version is held to the statutory rules of the grade (a 重大 binding needs a diagram that
    keeps 双报告, 五落实 and the departmental review). A change is recorded in the binding
    history (who, when, before, after); binding what is already bound records nothing. Running
    instances stay on the version they started on.

    :raises NotFound: no such process or version.
    :raises DefinitionInvalid: the version breaks the grade's statutory rules.
    """
    pinned = get_version(session, process_key, version) if version is not None else None
    target = pinned or latest_version(session, process_key)
    if target is None:
        raise NotFound("流程定义", process_key)
    track = track_for_grade(grade)
    if track in TRACK_RULES:
        check_statutory(target.bpmn_xml.encode("utf-8"), process_key=process_key, track=track)
    binding = find_binding(session, grade=grade, sector_code=sector_code, region_id=region_id)
    before: tuple[str | None, int | None, int | None] = (None, None, None)
    if binding is not None:
        if binding.process_key == process_key and binding.definition_version_id == (pinned and pinned.id):
            return binding
        before = (binding.process_key, binding.definition_version_id, _effective_version_id(session, binding))
    else:
        binding = DefinitionBinding(grade=grade, sector_code=sector_code, region_id=region_id)
        session.add(binding)
    binding.process_key = process_key
    binding.definition_version_id = pinned.id if pinned is not None else None
    session.flush()
    _record(
        session,
        action="bind",
        grade=grade,
        sector_code=sector_code,
        region_id=region_id,
        before=before,
        after=binding,
        changed_by_id=changed_by_id,
        note=note,
    )
    return binding


def binding_history(
    session: Session, *, grade: str, sector_code: str | None = None, region_id: int | None = None
) -> list[DefinitionBindingHistory]:
    """The changes of one binding, newest first."""
    return list(
        session.scalars(
            select(DefinitionBindingHistory)
            .where(
                DefinitionBindingHistory.grade == grade,
                DefinitionBindingHistory.sector_code.is_(None)
                if sector_code is None
                else DefinitionBindingHistory.sector_code == sector_code,
                DefinitionBindingHistory.region_id.is_(None)
                if region_id is None
                else DefinitionBindingHistory.region_id == region_id,
            )
            .order_by(DefinitionBindingHistory.id.desc())
        )
    )


def rollback_binding(
    session: Session,
    *,
    grade: str,
    sector_code: str | None = None,
    region_id: int | None = None,
    changed_by_id: int | None = None,
    note: str | None = None,
) -> DefinitionBinding | None:
    """Undo the latest binding change that is not undone yet; repeated calls walk back further.

    The binding gets the process and the version new hazards started on before that change,
    pinned (so a later publication does not move it); undoing the binding's creation removes it,
    and the next less specific binding applies again. Recorded in the history like a bind.

    :returns: the restored binding, or None when it was removed.
    :raises NotFound: nothing to roll back.
    """
    undone: set[int] = set()
    target = None
    for entry in binding_history(session, grade=grade, sector_code=sector_code, region_id=region_id):
        if entry.action == "rollback":
            if entry.undoes_id is not None:
                undone.add(entry.undoes_id)
            continue
        if entry.id not in undone:
            target = entry
            break
    if target is None:
        region = session.get(Region, region_id) if region_id is not None else None
        label = binding_key_label(grade, sector_code, region.code if region else None)
        raise NotFound("可回退的绑定变更", label)
    binding = find_binding(session, grade=grade, sector_code=sector_code, region_id=region_id)
    before: tuple[str | None, int | None, int | None] = (None, None, None)
    if binding is not None:
        before = (binding.process_key, binding.definition_version_id, _effective_version_id(session, binding))
    if target.previous_process_key is None:
        if binding is not None:
            session.delete(binding)
            session.flush()
        binding = None
    else:
        if binding is None:
            binding = DefinitionBinding(grade=grade, sector_code=sector_code, region_id=region_id)
            session.add(binding)
        binding.process_key = target.previous_process_key
        binding.definition_version_id = (
            target.previous_effective_version_id or target.previous_definition_version_id
        )
        session.flush()
    _record(
        session,
        action="rollback",
        grade=grade,
        sector_code=sector_code,
        region_id=region_id,
        before=before,
        after=binding,
        changed_by_id=changed_by_id,
        note=note,
        undoes_id=target.id,
    )
    return binding


def resolve_definition(
    session: Session, *, grade: str, sector_code: str | None, region_path: str | None = None
) -> DefinitionVersion:
    """The definition a new hazard starts on: the most specific binding of its grade.

    Order: sector and region (the nearest region up ``region_path``), sector only, region only
    (nearest first), then the grade's default. 突出 (prominent) runs the general loop (with
    限期整改 forced by the runtime).

    :raises NotFound: no binding applies (or its process has no published version).
    """
    lookup_grade = "general" if grade == "prominent" else grade
    ranked = []
    for binding in session.scalars(select(DefinitionBinding).where(DefinitionBinding.grade == lookup_grade)):
        if binding.sector_code is not None and binding.sector_code != sector_code:
            continue
        depth = 0
        if binding.region_id is not None:
            path = binding.region.path if binding.region is not None else None
            if not path or not region_path or not region_path.startswith(path):
                continue
            depth = len(path)
        ranked.append(((binding.sector_code is not None, depth), binding))
    ranked.sort(key=lambda item: item[0], reverse=True)
    for _rank, binding in ranked:
        if binding.definition_version_id is not None:
            return session.get_one(DefinitionVersion, binding.definition_version_id)
        version = latest_version(session, binding.process_key)
        if version is not None:
            return version
    raise NotFound("适用于该等级的流程定义", lookup_grade)


@dataclass(frozen=True, slots=True)
class _VersionFacts:
    form_keys: frozenset[str]
    properties: Mapping[str, str]
    policy_names: frozenset[str]


_facts_cache: dict[tuple[str, str], _VersionFacts] = {}


def _facts(version: DefinitionVersion) -> _VersionFacts:
    key = (version.process_key, version.content_hash)
    cached = _facts_cache.get(key)
    if cached is None:
        root = _parse_xml(version.bpmn_xml.encode("utf-8"))
        graphs = process_graphs(root)
        form_keys = frozenset(
            element.props["form_key"]
            for graph in graphs
            for element in graph.elements.values()
            if element.tag == "userTask" and element.props.get("form_key")
        )
        main = next((g for g in graphs if g.process_id == version.process_key), None)
        cached = _VersionFacts(
            form_keys, dict(main.properties) if main is not None else {}, frozenset(policy_names_in(root))
        )
        _facts_cache[key] = cached
    return cached


def form_keys_of(version: DefinitionVersion) -> frozenset[str]:
    """The ``form_key`` of every user task in the version's file (called processes included),
    cached by content hash (what the runtime pins at start)."""
    return _facts(version).form_keys


def policy_names_of(version: DefinitionVersion) -> frozenset[str]:
    """The policy values the version's expressions read (:func:`policy_names_in`), cached by
    content hash: the runtime exposes them as ``policy_<name>`` / ``policy_<name>_unit`` at start."""
    return _facts(version).policy_names


def process_properties(version: DefinitionVersion) -> Mapping[str, str]:
    """The extension properties of the version's process element (``track``, ``policy_profile``)."""
    return _facts(version).properties


def spec_for(version: DefinitionVersion) -> tuple[Any, dict[str, Any]]:
    """The parsed spec of a definition version, cached by content hash (specs are immutable)."""
    key = (version.process_key, version.content_hash)
    cached = _spec_cache.get(key)
    if cached is None:
        cached = bpmn.load_spec(version.spec_json)
        _spec_cache[key] = cached
    return cached
