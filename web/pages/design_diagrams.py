"""``/design/diagrams``: department administrators edit their sectors' BPMN diagrams in the browser.

* ``GET /design/diagrams/<key>/edit``: the modeler page (bpmn-js Modeler, served locally, with our
  own properties panel, ``web/static/js/modeler.js``) for the sector that owns the process
  (:func:`engine.design.process_sector`: its published versions', else its draft's);
* ``GET …/source.bpmn``: what the modeler opens (the shared draft, else the latest published version;
  header ``X-Draft-Revision``); ``GET …/export.bpmn``: the same as a download;
* ``POST …/draft`` ``{xml, revision}`` → ``{revision, saved_at, saved_at_text}`` (409 when someone
  saved in between: nothing is overwritten); ``POST …/draft/discard`` ``{revision}``;
* ``POST …/check`` ``{xml}`` → ``{errors: [{element, message}], warnings: [...]}`` (the publish gate,
  nothing stored); ``POST …/publish`` ``{xml, note, revision}`` → ``{version, created, warnings}``,
  or 422 ``{errors, warnings}`` (the refusal is written to the design log);
* ``GET``/``POST /design/diagrams/new`` (``source_key``, ``sector``): a sector's copy of a process,
  saved as a draft, then the editor;
* ``GET /design/vocabulary.json?sector=S``: the lists the properties panel offers (roles, scopes,
  forms known to the sector, statuses, due rules, policy profiles, handlers).

Only editors of the owning sector (:func:`engine.design.require_editor`: a process administrator
of a department leading the sector; system administrators for everything) may use any of these,
GETs included; everybody else gets 403. A body that is not a BPMN XML document, or is larger than
:data:`engine.definitions.MAX_BPMN_BYTES`, is refused with 422 and a Chinese message before
anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from lxml import etree
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine import definitions
from engine import design
from engine import form_versions
from engine import policy
from engine.access import Actor
from engine.errors import Conflict
from engine.errors import NotFound
from engine.handlers import HANDLERS
from engine.models import HazardStatus
from engine.models import Role
from engine.models import Sector
from engine.models import User
from engine.models.hazard import STATUS_LABELS
from engine.models.org import ROLE_LABELS

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..i18n import localtime
from ..security import safe_next
from ..session import engine_context
from ..session import read_session
from ..session import sessions

bp = Blueprint("design_diagrams", __name__)

KIND = "diagram"
EDITOR_ROLES = (Role.PROCESS_ADMIN, Role.SYS_ADMIN)
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
#: the longest publish note kept (DefinitionVersion.note is 500 characters)
MAX_NOTE = 500
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")

#: roles a user task may name (administrators never do hazard work)
TASK_ROLES = tuple(r for r in Role if r not in (Role.PROCESS_ADMIN, Role.SYS_ADMIN))
ORG_SCOPE_LABELS = {"enterprise": "企业", "department": "部门", "region": "属地"}
#: statuses a task may project onto the hazard (terminal ones are set by the engine, not by tasks)
TASK_STATUSES = tuple(
    s for s in HazardStatus if s not in (HazardStatus.CLOSED, HazardStatus.VOIDED, HazardStatus.REFERRED)
)
#: statuses of the 挂牌督办 track (processes/supervision.bpmn), not hazard statuses
EXTRA_STATUS_LABELS = {"listing": "挂牌督办决定中", "listed": "已挂牌督办"}
#: the deadline variables a user task's ``due_variable`` names (set by compute_deadline service tasks)
DUE_VARIABLE_LABELS = {
    "deadline_at": "整改期限",
    "review_due_at": "审核期限",
    "filing_due_at": "挂牌督办备案期限",
    "announce_due_at": "挂牌督办公告期限",
    "acceptance_due_at": "现场验收期限",
    "delist_due_at": "摘牌公告期限",
}
STATUTORY_LABELS = {
    "closure_review": "审核把关销号",
    "report_regulator": "双报告",
    "governance_plan": "治理方案（五落实）",
    "principal_signoff": "主要负责人签批",
}
#: forms for actions on a hazard (进展/延期), not for user tasks
ACTION_FORM_KEYS = frozenset(form_versions.ACTION_FORM_KEYS)


# --- request parsing -------------------------------------------------------------------------------


class BadBody(Exception):
    """A JSON body the views refuse with 422 (``message`` is Chinese source text)."""

    def __init__(self, message: str, **params: object) -> None:
        self.message = message
        self.params = params
        super().__init__(message)


@bp.errorhandler(BadBody)
def _bad_body(exc: BadBody) -> Response:
    message = _(exc.message, **exc.params)
    response = jsonify(code="invalid_input", message=message, errors={"xml": [message]})
    response.status_code = 422
    return response


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadBody("请求内容应为 JSON 对象")
    return body


def _xml_of(body: Mapping[str, Any]) -> bytes:
    """The ``xml`` member as UTF-8 bytes: a BPMN document no larger than MAX_BPMN_BYTES."""
    xml = body.get("xml")
    if not isinstance(xml, str) or not xml.strip():
        raise BadBody("缺少流程图内容 (xml)")
    data = xml.encode("utf-8")
    if len(data) > definitions.MAX_BPMN_BYTES:
        raise BadBody("流程图文件超过 {mb} MB 上限", mb=definitions.MAX_BPMN_BYTES // (1024 * 1024))
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise BadBody("不是有效的 XML 文件：{reason}", reason=str(exc)) from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise BadBody("不允许 DOCTYPE 或实体声明 (DTD)：建模工具导出的文件不含这些内容")
    if root.tag != f"{{{BPMN_NS}}}definitions":
        raise BadBody("不是 BPMN 2.0 流程图文件（根元素应为 bpmn:definitions）")
    return data


def _revision_of(body: Mapping[str, Any]) -> int | None:
    revision = body.get("revision")
    if revision is None or revision == "":
        return None
    if isinstance(revision, bool) or not isinstance(revision, int | str) or not str(revision).isdigit():
        raise BadBody("草稿版本号无效")
    return int(revision)


# --- ownership -----------------------------------------------------------------------------------


def _editable(session: Session, key: str) -> tuple[Actor, str | None]:
    """The actor and the sector owning ``key`` (its published versions', else its draft's).

    :raises NotFound: no such process (never published, no draft).
    :raises Forbidden: the actor may not edit the sector's designs.
    """
    if not _KEY.match(key):
        raise NotFound("流程定义", key)
    actor = current_actor()
    sector = design.process_sector(session, key)
    design.require_editor(session, actor, sector)
    return actor, sector


def _urls(key: str, sector: str | None) -> dict[str, str]:
    return {
        "source": url_for("design_diagrams.source", key=key),
        "export": url_for("design_diagrams.export", key=key),
        "save": url_for("design_diagrams.save_draft", key=key),
        "discard": url_for("design_diagrams.discard", key=key),
        "check": url_for("design_diagrams.check", key=key),
        "publish": url_for("design_diagrams.publish", key=key),
        "vocabulary": url_for("design_diagrams.vocabulary", **({"sector": sector} if sector else {})),
        "edit": url_for("design_diagrams.edit", key=key),
        # pages of helpers C3 (design_versions) and C2 (design)
        "versions": f"/design/diagrams/{key}/versions",
        "overview": "/design",
    }


def _process_name(xml: str, key: str) -> str | None:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser=parser)
    except etree.XMLSyntaxError:
        return None
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        if process.get("id") == key:
            return process.get("name")
    return None


# --- the editor page ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DraftInfo:
    revision: int
    saved_at_text: str
    saved_by: str


def _draft_info(session: Session, key: str, sector: str | None) -> DraftInfo | None:
    draft = design.get_draft(session, KIND, key, sector)
    if draft is None:
        return None
    user = session.get(User, draft.updated_by_id) if draft.updated_by_id else None
    return DraftInfo(
        draft.revision,
        localtime(draft.updated_at, "%Y-%m-%d %H:%M:%S"),
        user.display_name if user else "",
    )


@bp.get("/design/diagrams/<key>/edit")
@login_required
@roles_required(*EDITOR_ROLES)
def edit(key: str) -> str:
    with read_session() as session:
        _actor, sector = _editable(session, key)
        xml, _revision, version = design.diagram_source(session, key, sector)
        sector_row = session.get(Sector, sector) if sector else None
        return render_template(
            "design_diagrams/edit.html",
            key=key,
            sector=sector,
            bind_grade=design.suggested_binding(session, key, sector, xml),
            sector_name=sector_row.name if sector_row else _("全国通用"),
            name=_process_name(xml, key) or key,
            version=version,
            draft=_draft_info(session, key, sector),
            urls=_urls(key, sector),
        )


def _bpmn_response(xml: str, revision: int | None, version: int | None, filename: str | None) -> Response:
    response = current_app.response_class(xml, mimetype="application/xml")
    response.charset = "utf-8"
    response.headers["X-Draft-Revision"] = "" if revision is None else str(revision)
    response.headers["X-Base-Version"] = "" if version is None else str(version)
    if filename:
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/design/diagrams/<key>/source.bpmn")
@login_required
@roles_required(*EDITOR_ROLES)
def source(key: str) -> Response:
    with read_session() as session:
        _actor, sector = _editable(session, key)
        xml, revision, version = design.diagram_source(session, key, sector)
    return _bpmn_response(xml, revision, version, None)


@bp.get("/design/diagrams/<key>/export.bpmn")
@login_required
@roles_required(*EDITOR_ROLES)
def export(key: str) -> Response:
    with read_session() as session:
        _actor, sector = _editable(session, key)
        xml, revision, version = design.diagram_source(session, key, sector)
    return _bpmn_response(xml, revision, version, f"{key}.bpmn")


# --- drafts ------------------------------------------------------------------------------------------


@bp.post("/design/diagrams/<key>/draft")
@login_required
@roles_required(*EDITOR_ROLES)
def save_draft(key: str) -> Response:
    body = _json_body()
    xml = _xml_of(body)
    revision = _revision_of(body)
    ctx = engine_context()
    with sessions().begin() as session:
        actor, sector = _editable(session, key)
        base_version = None
        if revision is None:
            base_version = design.diagram_source(session, key, sector)[2]
        draft = design.save_draft(
            session,
            actor,
            kind=KIND,
            key=key,
            sector_code=sector,
            content=xml.decode("utf-8"),
            revision=revision,
            base_version=base_version,
            clock=ctx.clock,
        )
        saved = {
            "revision": draft.revision,
            "saved_at": draft.updated_at.isoformat(),
            "saved_at_text": localtime(draft.updated_at, "%Y-%m-%d %H:%M:%S"),
            "saved_by": actor.display_name,
        }
    return jsonify(saved)


@bp.post("/design/diagrams/<key>/draft/discard")
@login_required
@roles_required(*EDITOR_ROLES)
def discard(key: str) -> Response:
    """Drop the shared draft (JSON ``{revision}`` or a form with ``revision``)."""
    body = request.get_json(silent=True) if request.is_json else request.form.to_dict()
    revision = _revision_of(body if isinstance(body, dict) else {})
    if revision is None:
        raise BadBody("缺少草稿版本号")
    with sessions().begin() as session:
        actor, sector = _editable(session, key)
        design.discard_draft(session, actor, kind=KIND, key=key, sector_code=sector, revision=revision)
        try:
            design.process_sector(session, key)
            target = url_for("design_diagrams.edit", key=key)
        except NotFound:  # a copy never published: nothing is left to edit
            target = "/design"
    if request.is_json:
        return jsonify(discarded=True, redirect=target)
    flash(_("已放弃草稿"), "success")
    return redirect(target)


# --- check and publish ----------------------------------------------------------------------------


def _problems_json(problems: Iterable[design.GateProblem]) -> dict[str, list[dict[str, Any]]]:
    problems = list(problems)
    return {
        "errors": [{"element": p.element, "message": p.message} for p in problems if p.severity == "error"],
        "warnings": [{"element": p.element, "message": p.message} for p in problems if p.severity != "error"],
    }


@bp.post("/design/diagrams/<key>/check")
@login_required
@roles_required(*EDITOR_ROLES)
def check(key: str) -> Response:
    """The publish gate on the posted XML; nothing is stored."""
    xml = _xml_of(_json_body())
    with read_session() as session:
        _actor, sector = _editable(session, key)
        problems = design.check_diagram(
            session, key=key, sector_code=sector, xml=xml, forms=engine_context().forms
        )
    return jsonify(_problems_json(problems))


@bp.post("/design/diagrams/<key>/publish")
@login_required
@roles_required(*EDITOR_ROLES)
def publish(key: str) -> Response:
    """Publish the modeler's XML as the next version; a refusal names the elements (422).

    ``revision`` is the draft the page edited (``null``: it started from no draft). When the shared
    draft moved on meanwhile, publishing would throw away someone's saved work: 409, nothing written.
    A refusal is written to the design log in a transaction of its own.
    """
    body = _json_body()
    xml = _xml_of(body)
    revision = _revision_of(body)
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise BadBody("发布说明应为文字")
    note = (note or "").strip()[:MAX_NOTE] or None
    bind = body.get("bind", False)
    if not isinstance(bind, bool):
        raise BadBody("bind 应为 true 或 false")
    ctx = engine_context()
    actor = current_actor()
    sector: str | None = None
    try:
        with sessions().begin() as session:
            actor, sector = _editable(session, key)
            if revision is None and design.get_draft(session, KIND, key, sector) is not None:
                raise Conflict(_("草稿刚被他人创建，请重新加载页面后再发布（可先导出 .bpmn 备份您的修改）"))
            # "bind on publish" (offered while the sector's process is bound nowhere): new hazards of
            # the sector and the process's grade start on it from now on
            bind_grade = design.suggested_binding(session, key, sector, xml) if bind else None
            result = design.publish_diagram(
                session,
                actor,
                key=key,
                sector_code=sector,
                xml=xml,
                note=note,
                bind_grade=bind_grade,
                revision=revision,
                clock=ctx.clock,
                forms=ctx.forms,
            )
            answer = {
                "version": result.version,
                "created": result.created,
                "warnings": _problems_json(result.warnings)["warnings"],
                "versions_url": _urls(key, sector)["versions"],
            }
    except design.GateRefused as exc:
        with sessions().begin() as session:
            design.record_refusal(session, actor, KIND, key, sector, exc.problems, note=note, clock=ctx.clock)
        response = jsonify(message=_("未通过发布检查，未发布"), **_problems_json(exc.problems))
        response.status_code = 422
        return response
    return jsonify(answer)


# --- a sector's copy ------------------------------------------------------------------------------


@bp.get("/design/diagrams/new")
@login_required
@roles_required(*EDITOR_ROLES)
def new_form() -> str:
    with read_session() as session:
        actor = current_actor()
        return render_template(
            "design_diagrams/new.html",
            sectors=design.editable_sectors(session, actor),
            sources=[(s.process_key, s.name) for s in design.copy_sources(session)],
            source_key=request.args.get("source_key", ""),
            sector=request.args.get("sector", ""),
        )


def _referring_page() -> str | None:
    """The page of this site the form was posted from (the design overview, or the new form)."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host or not referrer.path:
        return None
    return referrer.path + (f"?{referrer.query}" if referrer.query else "")


@bp.post("/design/diagrams/new")
@login_required
@roles_required(*EDITOR_ROLES)
def new() -> Response:
    """Copy ``source_key`` for ``sector`` as a draft (:func:`engine.design.copy_process_for_sector`)."""
    source_key = request.form.get("source_key", "").strip()
    sector = request.form.get("sector", "").strip()
    back = safe_next(request.form.get("next") or _referring_page(), url_for("design_diagrams.new_form"))
    if not source_key or not sector:
        flash(_("请选择要复制的流程和行业"), "error")
        return redirect(back)
    try:
        with sessions().begin() as session:
            draft = design.copy_process_for_sector(
                session,
                current_actor(),
                source_key=source_key,
                sector_code=sector,
                clock=engine_context().clock,
            )
            key = draft.key
    except Conflict as exc:
        flash(str(exc), "error")
        return redirect(back)
    flash(_("已复制为本行业的流程草稿，修改后检查并发布"), "success")
    return redirect(url_for("design_diagrams.edit", key=key))


# --- the properties panel's lists -------------------------------------------------------------------


def _option(value: str, label: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, "label": label, **extra}


@lru_cache(maxsize=4)
def _shipped_values(processes_dir: Path, name: str) -> tuple[str, ...]:
    """Values of the user-task property ``name`` in the bundled diagrams (new ones get offered too)."""
    found: set[str] = set()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for path in sorted([*processes_dir.glob("*.bpmn"), *processes_dir.glob("sectors/*.bpmn")]):
        try:
            root = etree.parse(str(path), parser=parser).getroot()
        except (OSError, etree.XMLSyntaxError):
            continue
        for prop in root.iter(f"{{{SPIFF_NS}}}property"):
            if prop.get("name") == name and prop.get("value"):
                found.add(str(prop.get("value")))
    return tuple(sorted(found))


def _forms(session: Session, sector: str | None) -> list[dict[str, Any]]:
    """Task forms a user task of the sector may name: shipped files and published versions."""
    processes_dir = engine_context().settings.processes_dir
    return [
        _option(f.form_key, f.title, version=f.sector_version or f.national_version)
        for f in design.form_keys(session, sector, processes_dir=processes_dir)
        if (f.shipped or f.sector_version or f.national_version) and f.form_key not in ACTION_FORM_KEYS
    ]


def _profiles(session: Session, sector: str | None) -> list[dict[str, Any]]:
    return [
        _option(p.key, str(p.content.get("title") or p.key), sector=p.sector_code, version=p.version)
        for p in policy.latest_profiles(session)
        if p.sector_code in (None, sector) and p.region_id is None
    ]


def vocabulary_for(session: Session, sector: str | None) -> dict[str, Any]:
    """Everything the properties panel offers as a choice (JSON-ready)."""
    processes_dir = engine_context().settings.processes_dir
    statuses = [_option(s.value, STATUS_LABELS.get(s, s.value)) for s in TASK_STATUSES]
    for value in _shipped_values(processes_dir, "status"):
        if value not in {s["value"] for s in statuses}:
            statuses.append(_option(value, EXTRA_STATUS_LABELS.get(value, value)))
    due = [_option(k, label) for k, label in DUE_VARIABLE_LABELS.items()]
    for value in _shipped_values(processes_dir, "due_variable"):
        if value not in DUE_VARIABLE_LABELS:
            due.append(_option(value, value))
    return {
        "sector": sector,
        "roles": [_option(r.value, ROLE_LABELS[r]) for r in TASK_ROLES],
        "org_scopes": [_option(k, ORG_SCOPE_LABELS[k]) for k in ("enterprise", "department", "region")],
        "forms": _forms(session, sector),
        "statuses": statuses,
        "due_variables": due,
        "statutory": [
            _option(k, STATUTORY_LABELS.get(k, k), title=definitions.STATUTORY_STEPS.get(k, ""))
            for k in definitions.STATUTORY_FORMS
        ],
        "policy_profiles": _profiles(session, sector),
        "handlers": [
            _option(name, name, params=sorted(spec.params), result=spec.needs_result_variable)
            for name, spec in sorted(HANDLERS.items())
        ],
        "required": list(definitions.REQUIRED_USER_TASK_PROPERTIES),
    }


@bp.get("/design/vocabulary.json")
@login_required
@roles_required(*EDITOR_ROLES)
def vocabulary() -> Response:
    sector = request.args.get("sector") or None
    with read_session() as session:
        if sector is not None and session.get(Sector, sector) is None:
            raise NotFound("行业", sector)
        design.require_editor(session, current_actor(), sector)
        return jsonify(vocabulary_for(session, sector))
