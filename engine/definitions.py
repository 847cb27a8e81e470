"""Deploy BPMN definitions: XSD, the safe-expression gate, our extension rules, versioning.

Identical content is the same version; changed content becomes version n+1. Anything refused
raises :class:`DefinitionInvalid` naming the element and the reason.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

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
from .models import DefinitionVersion
from .models import Role

NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
    "dmn": "https://www.omg.org/spec/DMN/20191111/MODEL/",
}
ORG_SCOPES = frozenset({"enterprise", "department", "region"})
REQUIRED_USER_TASK_PROPERTIES = ("candidate_role", "org_scope", "form_key", "status")
MAX_BPMN_BYTES = 2 * 1024 * 1024

_spec_cache: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


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


def check_bpmn_rules(xml: bytes, forms: Mapping[str, FormDefinition]) -> None:
    """Our rules on top of the XSD: no scripts, safe expressions, required task properties.

    :raises DefinitionInvalid: naming the first offending element.
    """
    root = _parse_xml(xml)
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


def deploy(
    session: Session,
    *,
    bpmn_xml: bytes,
    filename: str,
    forms: Mapping[str, FormDefinition],
    deployed_by_id: int | None = None,
    note: str | None = None,
) -> DeployResult:
    """Validate and store a BPMN file; identical content returns the existing versions.

    :raises DefinitionInvalid: the file is refused (element and reason named).
    """
    if len(bpmn_xml) > MAX_BPMN_BYTES:
        raise DefinitionInvalid(None, f"文件过大 ({len(bpmn_xml)} 字节, 上限 {MAX_BPMN_BYTES})")
    check_bpmn_rules(bpmn_xml, forms)
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
    return DeployResult(versions, created)


def deploy_file(
    session: Session, path: Path, forms: Mapping[str, FormDefinition], **kwargs: Any
) -> DeployResult:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionInvalid(None, f"无法读取文件 {path}: {exc.strerror}") from exc
    return deploy(session, bpmn_xml=data, filename=path.name, forms=forms, **kwargs)


def bind(
    session: Session, *, grade: str, process_key: str, sector_code: str | None = None
) -> DefinitionBinding:
    """Bind new hazards of ``grade`` (and sector) to the latest version of ``process_key``."""
    if (
        session.scalar(select(DefinitionVersion.id).where(DefinitionVersion.process_key == process_key))
        is None
    ):
        raise NotFound("流程定义", process_key)
    binding = session.scalars(
        select(DefinitionBinding).where(
            DefinitionBinding.grade == grade,
            DefinitionBinding.sector_code.is_(None)
            if sector_code is None
            else DefinitionBinding.sector_code == sector_code,
        )
    ).first()
    if binding is None:
        binding = DefinitionBinding(grade=grade, sector_code=sector_code, process_key=process_key)
        session.add(binding)
    binding.process_key = process_key
    session.flush()
    return binding


def resolve_definition(session: Session, *, grade: str, sector_code: str) -> DefinitionVersion:
    """The definition a new hazard starts on: sector binding first, then the grade's default.

    突出 (prominent) runs the general loop (with 限期整改 forced by the runtime).
    """
    lookup_grade = "general" if grade == "prominent" else grade
    for sector in (sector_code, None):
        binding = session.scalars(
            select(DefinitionBinding).where(
                DefinitionBinding.grade == lookup_grade,
                DefinitionBinding.sector_code.is_(None)
                if sector is None
                else DefinitionBinding.sector_code == sector,
            )
        ).first()
        if binding is None:
            continue
        if binding.definition_version_id is not None:
            return session.get_one(DefinitionVersion, binding.definition_version_id)
        version = session.scalars(
            select(DefinitionVersion)
            .where(DefinitionVersion.process_key == binding.process_key)
            .order_by(DefinitionVersion.version.desc())
        ).first()
        if version is not None:
            return version
    raise NotFound("适用于该等级的流程定义", lookup_grade)


def spec_for(version: DefinitionVersion) -> tuple[Any, dict[str, Any]]:
    """The parsed spec of a definition version, cached by content hash (specs are immutable)."""
    key = (version.process_key, version.content_hash)
    cached = _spec_cache.get(key)
    if cached is None:
        cached = bpmn.load_spec(version.spec_json)
        _spec_cache[key] = cached
    return cached
