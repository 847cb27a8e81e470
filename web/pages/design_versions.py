"""``/design/diagrams/<key>/versions``: a process's published versions, bindings and migrations.

For the process administrators of the sector that owns the process (and system administrators);
a 安委办 may look (read-only). The same engine calls as ``hazardloop processes versions|diff|bind|
rollback|migrate`` (web/cli.py) and ``/api/v1/definitions`` (web/api/definitions.py):

* ``/design/diagrams/<key>/versions``: every version, newest first (author, time, note, sha256,
  running instances, the bindings that start new hazards on it); the process's bindings with
  their history, a form to bind a grade (sector, region) to a version or to "always the latest",
  a rollback per binding; the forms that pick two versions to compare or to migrate between;
* ``…/versions/diff?from=&to=``: :func:`engine.definitions.diff_versions`, drawn on the diagrams;
* ``…/versions/migrate?from=&to=``: :func:`engine.migration.preview_migration`; the POST moves
  the chosen movable instances with :func:`engine.migration.migrate_instances`, one unit of work
  per instance like the CLI (a long migration holds no lock for long);
* ``…/versions/<n>``: one version's diagram; ``…/versions/<n>/heatmap``: open and overdue work
  items per element (:func:`engine.design.heatmap`); ``…/versions/<n>.bpmn``: its XML.

Binding, rolling back and migrating need :func:`engine.design.require_editor` on the process's
sector (:func:`engine.design.process_sector`); a binding's own sector must be one the actor may
edit too (a national binding, without sector: system administrators only). Each bind and
rollback carries a note, kept in the binding history; a migration is recorded as a ``migrated``
event in each hazard's audit chain. Form errors re-render the page with status 422.
:func:`bind_version` and :func:`rollback_version` (with :func:`process_access` and
:func:`binding_rows`) are shared with ``/api/v1/definitions/bindings``: one set of checks for both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from lxml import etree
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine import admin
from engine import definitions
from engine import design
from engine import ledger
from engine import migration
from engine.access import Actor
from engine.errors import DefinitionInvalid
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import Role
from engine.process_graph import process_graphs

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions

bp = Blueprint("design_versions", __name__)

#: who may open the pages at all (editors are checked per process; a 安委办 only looks)
VIEWERS = (Role.PROCESS_ADMIN, Role.SYS_ADMIN, Role.OFFICE_ADMIN)
EDITORS = (Role.PROCESS_ADMIN, Role.SYS_ADMIN)
#: labels of the grades a binding can name (突出 runs the general loop: bind ``general``)
GRADE_CHOICES = {"general": "一般（含突出）", "major": "重大", "supervision": "挂牌督办"}
BINDING_GRADES = {g: GRADE_CHOICES.get(g, g) for g in design.BINDABLE_GRADES}
MAX_NOTE = 500
LATEST = "latest"
#: labels of the fields engine.definitions.diff_versions reports
FIELD_LABELS = {
    "type": "类型",
    "name": "名称",
    "properties": "属性",
    "timer": "定时器",
    "condition": "条件",
    "handler": "处理器",
    "attached_to": "附着于",
    "cancel_activity": "中断原任务",
    "default": "默认连线",
    "source": "起点",
    "target": "终点",
    "called": "调用",
}
TYPE_LABELS = {
    "process": "流程",
    "userTask": "人工任务",
    "serviceTask": "服务任务",
    "scriptTask": "脚本任务",
    "businessRuleTask": "决策任务",
    "manualTask": "手工任务",
    "task": "任务",
    "callActivity": "调用子流程",
    "subProcess": "子流程",
    "sequenceFlow": "连线",
    "exclusiveGateway": "排他网关",
    "parallelGateway": "并行网关",
    "inclusiveGateway": "包容网关",
    "eventBasedGateway": "事件网关",
    "startEvent": "开始事件",
    "endEvent": "结束事件",
    "boundaryEvent": "边界事件",
    "intermediateCatchEvent": "中间捕获事件",
    "intermediateThrowEvent": "中间抛出事件",
}


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return current_app.make_response((render_template(template, **context), status))


def type_label(kind: str | None) -> str:
    """``userTask`` → 人工任务, ``boundaryEvent:timer`` → 边界事件（timer）."""
    if not kind:
        return ""
    tag, _sep, event = kind.partition(":")
    label = _(TYPE_LABELS[tag]) if tag in TYPE_LABELS else tag
    return f"{label}（{event}）" if event else label


@bp.app_template_filter("bpmn_type_label")
def _bpmn_type_label(kind: str | None) -> str:
    return type_label(kind)


# --- who may do what --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Access:
    actor: Actor
    #: the sector owning the process (None: national)
    sector_code: str | None
    #: may bind, roll back and migrate (else: a 安委办 looking)
    editor: bool


def process_access(session: Session, key: str, *, edit: bool = False) -> Access:
    """The actor's access to process ``key``.

    :raises NotFound: no such process. :raises Forbidden: neither an editor of its sector nor
        (for reading) a 安委办.
    """
    actor = current_actor()
    sector_code = design.process_sector(session, key)
    if edit:
        design.require_editor(session, actor, sector_code)
        return Access(actor, sector_code, True)
    editor = design.can_edit(session, actor, sector_code)
    if not editor and Role.OFFICE_ADMIN not in actor.roles:
        design.require_editor(session, actor, sector_code)  # raises with the engine's message
        raise Forbidden(_("您没有权限查看该流程"))
    return Access(actor, sector_code, editor)


def _common(session: Session, access: Access, key: str, versions: Sequence[Any]) -> dict[str, Any]:
    """What every page's heading (design_versions/_head.html) shows."""
    return {
        "key": key,
        "name": versions[0].name,
        "versions": versions,
        "access": access,
        "sector_name": ledger.sector_names(session).get(access.sector_code or "", ""),
    }


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


# --- elements of a version ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ElementInfo:
    id: str
    kind: str
    name: str | None


def _elements(version: DefinitionVersion) -> dict[str, ElementInfo]:
    """The flow nodes and flows of the version's process, in document order (deployed XML: trusted
    as far as it passed the publish gate; parsed without entities or network all the same)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(version.bpmn_xml.encode("utf-8"), parser=parser)
    for graph in process_graphs(root):
        if graph.process_id == version.process_key:
            return {e.id: ElementInfo(e.id, e.kind, e.name) for e in graph.elements.values()}
    return {}


# --- versions and bindings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What a binding starts new hazards on: a process, its version then, pinned or following the latest."""

    process_key: str
    version: int | None
    pinned: bool


@dataclass(frozen=True, slots=True)
class HistoryRow:
    entry: DefinitionBindingHistory
    before: str
    after: str
    by: str
    #: the same as ``before`` and ``after``, for JSON (None: no binding)
    before_target: Target | None = None
    after_target: Target | None = None


@dataclass(frozen=True, slots=True)
class BindingRow:
    binding: DefinitionBinding
    label: str
    sector_name: str
    region_name: str
    region_code: str
    #: the version new hazards start on now
    version: int | None
    pinned: bool
    #: the actor may roll this binding back
    can_rollback: bool
    history: list[HistoryRow] = field(default_factory=list)


def _version_labels(session: Session) -> tuple[dict[int, tuple[str, int]], list[ledger.DeployedDefinition]]:
    deployed = ledger.deployed_definitions(session)
    return {d.version.id: (d.version.process_key, d.version.version) for d in deployed}, deployed


def _target(
    labels: Mapping[int, tuple[str, int]], key: str | None, pinned_id: int | None, effective_id: int | None
) -> Target | None:
    if key is None:
        return None
    shown = labels.get(effective_id or pinned_id or -1)
    return Target(key, shown[1] if shown else None, pinned_id is not None)


def _target_text(target: Target | None) -> str:
    if target is None:
        return _("（无此绑定）")
    text = f"{target.process_key} v{target.version}" if target.version else target.process_key
    return text + (_("（固定版本）") if target.pinned else _("（跟随最新版本）"))


def _history_row(
    labels: Mapping[int, tuple[str, int]], entry: DefinitionBindingHistory, names: Mapping[int, str]
) -> HistoryRow:
    before = _target(
        labels,
        entry.previous_process_key,
        entry.previous_definition_version_id,
        entry.previous_effective_version_id,
    )
    after = _target(labels, entry.process_key, entry.definition_version_id, entry.effective_version_id)
    by = names.get(entry.changed_by_id, _("系统")) if entry.changed_by_id else _("系统")
    return HistoryRow(entry, _target_text(before), _target_text(after), by, before, after)


def binding_rows(session: Session, access: Access, key: str) -> list[BindingRow]:
    """The bindings that start new hazards on some version of ``key``, with their history."""
    labels, deployed = _version_labels(session)
    sectors = ledger.sector_names(session)
    found: list[tuple[DefinitionBinding, int]] = []
    for item in deployed:
        if item.version.process_key == key:
            found.extend((b, item.version.version) for b in item.bindings)
    found.sort(key=lambda f: (f[0].grade, f[0].sector_code or "", f[0].region.path if f[0].region else ""))
    histories = {
        b.id: definitions.binding_history(
            session, grade=b.grade, sector_code=b.sector_code, region_id=b.region_id
        )
        for b, _v in found
    }
    names = design.user_names(session, (e.changed_by_id for h in histories.values() for e in h))
    rows = []
    for binding, number in found:
        history = [_history_row(labels, entry, names) for entry in histories[binding.id]]
        rows.append(
            BindingRow(
                binding=binding,
                label=definitions.binding_label(binding),
                sector_name=sectors.get(binding.sector_code, binding.sector_code)
                if binding.sector_code
                else "",
                region_name=binding.region.name if binding.region else "",
                region_code=binding.region.code if binding.region else "",
                version=number,
                pinned=binding.definition_version_id is not None,
                can_rollback=access.editor
                and bool(history)
                and design.can_edit(session, access.actor, binding.sector_code),
                history=history,
            )
        )
    return rows


def _region_choices(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """(code, indented name) of the regions a binding may name: the actor's subtrees (all: sys_admin)."""
    if Role.SYS_ADMIN in actor.roles:
        regions = admin.directory(session).regions
    else:
        regions = ledger.region_choices(session, actor)
    return [(r.code, "　" * max(r.path.count("/") - 2, 0) + r.name) for r in regions]


def _sector_choices(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """(code, name) of the sectors a binding may name; ``""`` (all sectors) for system administrators."""
    choices = [(s.code, s.name) for s in design.editable_sectors(session, actor)]
    if design.may_edit_national(actor):
        choices.insert(0, ("", _("所有行业（全国默认）")))
    return choices


def _render_index(
    key: str,
    *,
    status: int = 200,
    bind_values: Mapping[str, str] | None = None,
    bind_errors: Mapping[str, Any] | None = None,
    rollback_errors: Mapping[str, Any] | None = None,
    rollback_values: Mapping[str, str] | None = None,
) -> Response:
    with read_session() as session:
        access = process_access(session, key)
        versions = definitions.list_versions(session, key)
        bindings = binding_rows(session, access, key)
        context: dict[str, Any] = {}
        if access.editor:
            context["sector_choices"] = _sector_choices(session, access.actor)
            context["region_choices"] = _region_choices(session, access.actor)
        default_sector = access.sector_code or ""
        return _page(
            "design_versions/index.html",
            status,
            **_common(session, access, key, versions),
            latest=versions[0],
            bindings=bindings,
            grades=BINDING_GRADES,
            bind_values=bind_values or {"grade": "general", "sector": default_sector, "version": LATEST},
            bind_errors=bind_errors or {},
            rollback_errors=rollback_errors or {},
            rollback_values=rollback_values or {},
            running_versions=[v for v in versions if v.running],
            **context,
        )


@bp.get("/design/diagrams/<key>/versions")
@login_required
@roles_required(*VIEWERS)
def index(key: str) -> Response:
    return _render_index(key)


# --- binding and rolling back -----------------------------------------------------------------------


def _note(text: str, errors: dict[str, list[str]]) -> str:
    note = text.strip()
    if not note:
        errors["note"] = [_("请填写说明（记录在绑定历史中）")]
    elif len(note) > MAX_NOTE:
        errors["note"] = [_("说明不能超过 {n} 个字符", n=MAX_NOTE)]
    return note


def _region_id(session: Session, actor: Actor, code: str, errors: dict[str, list[str]]) -> int | None:
    if not code:
        return None
    if code not in {c for c, _name in _region_choices(session, actor)}:
        errors["region"] = [_("请选择列表中的地区")]
        return None
    return definitions.find_region(session, code).id


def bind_version(
    session: Session,
    key: str,
    *,
    grade: str,
    sector: str | None,
    region_code: str | None,
    version: int | None,
    note: str,
    errors: Mapping[str, list[str]] | None = None,
) -> DefinitionBinding:
    """Bind new hazards of ``grade`` (``sector``: ``None`` every sector, system administrators
    only; ``region_code``: ``None`` every region) to version ``version`` of ``key`` (``None``: its
    latest), recorded with ``note`` in the binding history. The versions page and
    ``POST /api/v1/definitions/bindings`` both bind through here.

    ``errors``: what the caller found wrong in its input already, reported with the rest.

    :raises NotFound: no such process. :raises Forbidden: not an editor of the process's sector.
    :raises InvalidInput: by field (``grade``, ``sector``, ``region``, ``version``, ``note``).
    """
    found = dict(errors or {})
    note = _note(note, found)
    if grade not in BINDING_GRADES:
        found["grade"] = [_("请选择隐患等级")]
    access = process_access(session, key, edit=True)
    if sector is None and not design.may_edit_national(access.actor):
        found["sector"] = [_("请选择本部门牵头的行业")]
    elif sector is not None and sector not in {c for c, _n in _sector_choices(session, access.actor)}:
        found["sector"] = [_("只能绑定本部门牵头的行业")]
    region_id = _region_id(session, access.actor, region_code or "", found)
    if version is not None:
        try:
            definitions.get_version(session, key, version)
        except NotFound:
            found["version"] = [_("没有版本 v{n}", n=version)]
    if found:
        raise InvalidInput(found)
    try:
        return definitions.bind(
            session,
            grade=grade,
            process_key=key,
            sector_code=sector,
            region_id=region_id,
            version=version,
            changed_by_id=access.actor.user_id,
            note=note,
        )
    except DefinitionInvalid as exc:
        raise InvalidInput({"version": [str(exc)]}) from exc


def rollback_version(
    session: Session, key: str, *, grade: str, sector: str | None, region_code: str | None, note: str
) -> DefinitionBinding | None:
    """Undo the latest change of the binding (``grade``, ``sector``, ``region_code``) from the
    versions page of ``key``, recorded with ``note``; the page and
    ``POST /api/v1/definitions/bindings/rollback`` both roll back through here.

    :returns: the restored binding, or None when the binding was removed (a less specific one applies).
    :raises NotFound: no such process, region or grade. :raises Forbidden: not an editor of the
        process's sector or of the binding's. :raises InvalidInput: no note, or nothing to roll back.
    """
    errors: dict[str, list[str]] = {}
    note = _note(note, errors)
    access = process_access(session, key, edit=True)
    if not design.can_edit(session, access.actor, sector):
        raise Forbidden(_("只能回退本部门牵头行业的绑定"))
    region_id = definitions.find_region(session, region_code).id if region_code else None
    if grade not in BINDING_GRADES:
        raise NotFound("绑定", definitions.binding_key_label(grade, sector, region_code))
    if errors:
        raise InvalidInput(errors)
    try:
        return definitions.rollback_binding(
            session,
            grade=grade,
            sector_code=sector,
            region_id=region_id,
            changed_by_id=access.actor.user_id,
            note=note,
        )
    except NotFound as exc:
        raise InvalidInput({"_schema": [str(exc)]}) from exc


@bp.post("/design/diagrams/<key>/bindings")
@login_required
@roles_required(*EDITORS)
def bind(key: str) -> Response:
    """Bind new hazards of a grade (sector, region) to a version of ``key`` or to its latest.

    Form: ``grade``, ``sector`` (``""``: every sector, system administrators only), ``region``
    (a code, ``""``: every region), ``version`` (a number or ``latest``), ``note``.
    """
    values = {name: request.form.get(name, "").strip() for name in ("grade", "sector", "region", "version")}
    values["note"] = request.form.get("note", "").strip()
    errors: dict[str, list[str]] = {}
    number = None if values["version"] == LATEST else _int(values["version"])
    if values["version"] != LATEST and number is None:
        errors["version"] = [_("请选择版本")]
    try:
        with sessions().begin() as session:
            binding = bind_version(
                session,
                key,
                grade=values["grade"],
                sector=values["sector"] or None,
                region_code=values["region"] or None,
                version=number,
                note=values["note"],
                errors=errors,
            )
            label = definitions.binding_label(binding)
    except InvalidInput as exc:
        return _render_index(key, status=422, bind_values=values, bind_errors=exc.messages)
    target = f"v{number}" if number is not None else _("最新版本")
    flash(
        _(
            "已绑定 {label} → {key} {target}：新登记的隐患从该版本开始，运行中的实例保留原版本。",
            label=label,
            key=key,
            target=target,
        ),
        "success",
    )
    return redirect(url_for("design_versions.index", key=key) + "#bindings")


@bp.post("/design/diagrams/<key>/bindings/rollback")
@login_required
@roles_required(*EDITORS)
def rollback(key: str) -> Response:
    """Undo the latest change of one binding (``grade``, ``sector``, ``region`` code), with a ``note``."""
    grade = request.form.get("grade", "").strip()
    sector = request.form.get("sector", "").strip() or None
    region_code = request.form.get("region", "").strip()
    label = definitions.binding_key_label(grade, sector, region_code)
    try:
        with sessions().begin() as session:
            restored = rollback_version(
                session,
                key,
                grade=grade,
                sector=sector,
                region_code=region_code or None,
                note=request.form.get("note", ""),
            )
            if restored is None:
                message = _("已回退 {label}：该绑定已撤销，改用更上一级的绑定。", label=label)
            else:
                pinned = restored.definition_version_id
                version = session.get(DefinitionVersion, pinned) if pinned is not None else None
                target = f"{restored.process_key} v{version.version}" if version else restored.process_key
                message = _(
                    "已回退 {label} → {target}：新登记的隐患从该版本开始，运行中的实例不受影响。",
                    label=label,
                    target=target,
                )
    except InvalidInput as exc:
        return _render_index(
            key,
            status=422,
            rollback_errors={label: [m for v in exc.messages.values() for m in _messages(v)]},
            rollback_values={label: request.form.get("note", "")},
        )
    flash(message, "success")
    return redirect(url_for("design_versions.index", key=key) + "#bindings")


def _messages(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


# --- one version: diagram, XML, heatmap ----------------------------------------------------------------


def _summary(session: Session, key: str, number: int) -> tuple[definitions.VersionSummary, list[Any]]:
    versions = definitions.list_versions(session, key)
    for summary in versions:
        if summary.version == number:
            return summary, versions
    raise NotFound("流程定义版本", f"{key}@{number}")


@bp.get("/design/diagrams/<key>/versions/<int:number>.bpmn")
@login_required
@roles_required(*VIEWERS)
def xml(key: str, number: int) -> Response:
    """The version's BPMN XML (``?download=1``: as a file ``<key>_v<n>.bpmn``)."""
    with read_session() as session:
        process_access(session, key)
        text = definitions.get_version(session, key, number).bpmn_xml
    response = current_app.make_response(text)
    response.mimetype = "application/xml"
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f'attachment; filename="{key}_v{number}.bpmn"'
    return response


@bp.get("/design/diagrams/<key>/versions/<int:number>")
@login_required
@roles_required(*VIEWERS)
def show(key: str, number: int) -> Response:
    with read_session() as session:
        access = process_access(session, key)
        summary, versions = _summary(session, key, number)
        return _page(
            "design_versions/version.html",
            **_common(session, access, key, versions),
            summary=summary,
        )


@dataclass(frozen=True, slots=True)
class HeatRow:
    element: ElementInfo
    open: int
    overdue: int
    #: open items someone has claimed (the others wait for a claim)
    claimed: int = 0


def _heat_row(element: ElementInfo, count: Mapping[str, int]) -> HeatRow:
    return HeatRow(element, count.get("open", 0), count.get("overdue", 0), count.get("claimed", 0))


@bp.get("/design/diagrams/<key>/versions/<int:number>/heatmap")
@login_required
@roles_required(*VIEWERS)
def heatmap(key: str, number: int) -> Response:
    """Open and overdue work items per element of one version; ``?version=m`` switches to ``m``."""
    switch = request.args.get("version")
    error = None
    if switch is not None:
        wanted = _int(switch)
        if wanted is not None and wanted != number:
            return redirect(url_for("design_versions.heatmap", key=key, number=wanted))
        if wanted is None:
            error = _("请选择版本")
    now = engine_context().clock.now()
    with read_session() as session:
        access = process_access(session, key)
        summary, versions = _summary(session, key, number)
        version = definitions.get_version(session, key, number)
        counts = design.heatmap(session, version.id, now)
        elements = _elements(version)
        rows = [
            _heat_row(e, counts.get(e.id, {}))
            for e in elements.values()
            if e.kind == "userTask" or e.id in counts
        ]
        rows += [_heat_row(ElementInfo(i, "", None), c) for i, c in counts.items() if i not in elements]
        markers = {
            "active": sorted(i for i, c in counts.items() if c.get("open")),
            "overdue": sorted(i for i, c in counts.items() if c.get("overdue")),
            "counts": {
                i: {"open": c.get("open", 0), "overdue": c.get("overdue", 0)} for i, c in counts.items()
            },
        }
        return _page(
            "design_versions/heatmap.html",
            422 if error else 200,
            **_common(session, access, key, versions),
            summary=summary,
            rows=rows,
            markers=markers,
            total_open=sum(r.open for r in rows),
            total_overdue=sum(r.overdue for r in rows),
            total_claimed=sum(r.claimed for r in rows),
            now=now,
            error=error,
        )


# --- differences ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    label: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ChangedElement:
    change: definitions.ElementChange
    fields: list[FieldChange]


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        flat: dict[str, Any] = {}
        for name, inner in value.items():
            flat.update(_flat(inner, f"{prefix}.{name}"))
        return flat or {prefix: None}
    return {prefix: value}


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("是") if value else _("否")
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _field_label(path: str) -> str:
    head, *rest = path.split(".")
    label = _(FIELD_LABELS[head]) if head in FIELD_LABELS else head
    return " · ".join([label, *rest])


def field_changes(fields: Mapping[str, tuple[Any, Any]]) -> list[FieldChange]:
    """Each changed field of an element, nested values (properties, handler) one leaf per row."""
    rows = []
    for name, (old, new) in fields.items():
        before, after = _flat(old, name), _flat(new, name)
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                rows.append(
                    FieldChange(_field_label(path), _shown(before.get(path)), _shown(after.get(path)))
                )
    return rows


def _pair(args: Mapping[str, str], errors: dict[str, list[str]]) -> tuple[int | None, int | None]:
    """Versions ``from`` and ``to`` (messages in ``errors``); neither given: just the form, no errors."""
    if "from" not in args and "to" not in args:
        return None, None
    old, new = _int(args.get("from")), _int(args.get("to"))
    if old is None:
        errors["from"] = [_("请选择版本")]
    if new is None:
        errors["to"] = [_("请选择版本")]
    if old is not None and old == new:
        errors["to"] = [_("请选择两个不同的版本")]
    return old, new


@bp.get("/design/diagrams/<key>/versions/diff")
@login_required
@roles_required(*VIEWERS)
def diff(key: str) -> Response:
    """Elements added, removed and changed from version ``from`` to ``to``, drawn on the diagrams."""
    errors: dict[str, list[str]] = {}
    old, new = _pair(request.args, errors)
    with read_session() as session:
        access = process_access(session, key)
        versions = definitions.list_versions(session, key)
        context: dict[str, Any] = {}
        if not errors and old is not None and new is not None:
            a, b = definitions.get_version(session, key, old), definitions.get_version(session, key, new)
            result = definitions.diff_versions(a, b)
            context = {
                "result": result,
                "changed": [ChangedElement(c, field_changes(c.fields)) for c in result.changed],
                "new_markers": {
                    "added": [e.element_id for e in result.added],
                    "changed": [c.element_id for c in result.changed if c.element_id != key],
                },
                "old_markers": {"removed": [e.element_id for e in result.removed]},
            }
        return _page(
            "design_versions/diff.html",
            422 if errors else 200,
            **_common(session, access, key, versions),
            errors=errors,
            selected={"from": request.args.get("from", ""), "to": request.args.get("to", "")},
            **context,
        )


# --- migration ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewRow:
    check: migration.InstanceCheck
    #: names of the tasks it waits in
    where: str


def _render_preview(
    key: str,
    args: Mapping[str, str],
    *,
    chosen: Sequence[int] | None = None,
    extra: Mapping[str, list[str]] | None = None,
) -> Response:
    errors: dict[str, list[str]] = {}
    old, new = _pair(args, errors)
    for name, messages in (extra or {}).items():
        errors.setdefault(name, messages)
    with read_session() as session:
        access = process_access(session, key, edit=True)
        versions = definitions.list_versions(session, key)
        context: dict[str, Any] = {}
        if old is not None and new is not None and old != new:
            a, b = definitions.get_version(session, key, old), definitions.get_version(session, key, new)
            checks = migration.preview_migration(
                session, from_version_id=a.id, to_version_id=b.id, actor=access.actor
            )
            names = _elements(a)
            rows = [
                PreviewRow(
                    c,
                    "、".join((names[i].name or i) if i in names else i for i in (*c.active, *c.waiting)),
                )
                for c in checks
            ]
            running = next((v.running for v in versions if v.version == old), 0)
            context = {
                "rows": rows,
                "movable": sum(1 for c in checks if c.movable),
                "running": running,
                "chosen": set(chosen) if chosen is not None else {c.instance_id for c in checks if c.movable},
                "result": definitions.diff_versions(a, b),
            }
        return _page(
            "design_versions/migrate.html",
            422 if errors else 200,
            **_common(session, access, key, versions),
            errors=errors,
            selected={"from": args.get("from", ""), "to": args.get("to", "")},
            **context,
        )


@bp.get("/design/diagrams/<key>/versions/migrate")
@login_required
@roles_required(*EDITORS)
def migrate_preview(key: str) -> Response:
    """Which running instances on version ``from`` can move to ``to``, and why the others cannot."""
    return _render_preview(key, request.args)


@bp.post("/design/diagrams/<key>/versions/migrate")
@login_required
@roles_required(*EDITORS)
def migrate(key: str) -> Response:
    """Move the chosen instances (``instance`` ids) from version ``from`` to ``to``.

    One unit of work per instance, as ``hazardloop processes migrate`` does: each moves under its
    lock or is left exactly as it was, with the reasons.
    """
    form: MultiDict[str, str] = request.form
    errors: dict[str, list[str]] = {}
    old, new = _pair(form, errors)
    if old is None or new is None:
        errors.setdefault("from", [_("请选择版本")])
    raw = form.getlist("instance")
    chosen = [i for i in (_int(v) for v in raw) if i is not None]
    if not errors and (not chosen or len(chosen) != len(raw)):
        errors["instance"] = [_("请至少选择一个可以迁移的实例")]
    if errors:
        return _render_preview(key, form, chosen=chosen, extra=errors)
    assert old is not None and new is not None
    with read_session() as session:
        access = process_access(session, key, edit=True)
        old_id = definitions.get_version(session, key, old).id
        new_id = definitions.get_version(session, key, new).id
        name = definitions.list_versions(session, key)[0].name
    ctx = engine_context()
    results: list[migration.MigrationResult] = []
    for instance_id in dict.fromkeys(chosen):
        with sessions().begin() as session:
            results.extend(
                migration.migrate_instances(
                    session,
                    ctx,
                    from_version_id=old_id,
                    to_version_id=new_id,
                    instance_ids=[instance_id],
                    actor=access.actor,
                )
            )
    return _page(
        "design_versions/migrated.html",
        key=key,
        name=name,
        old=old,
        new=new,
        results=results,
        moved=sum(1 for r in results if r.migrated),
    )
