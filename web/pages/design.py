"""``/design``: department process administrators edit their sector's forms and policy profile.

* ``/design``: the sectors the actor may edit (a system administrator also 全国), per sector its
  processes (links to the modeler and the version pages), a form to copy a national process for
  the sector, its forms and its policy profile; and the recent design log.
* ``/design/forms?sector=S``: the sector's task forms with their national and sector versions;
  ``/design/forms/<key>?sector=S``: the form editor. A structured editor, not a JSON textarea:
  title, description and one row per field (name, label, type, required, help and the type's own
  attributes). Rows are added, removed and moved by ``static/js/design-forms.js``; without script
  the same buttons post the form and the server re-renders it. 保存草稿 stores the document as the
  scope's shared draft (:func:`engine.design.save_draft`, a stale revision is a conflict: 409 with
  what was typed kept), 预览 shows the form as the rectifier will see it, 发布 publishes a new
  version (:func:`engine.design.publish_form`; a refused definition is 422 with the message on
  the offending row), 放弃草稿 discards the draft. Plan forms (``*_plan``) can load a preset
  (五落实 / 五到位 / 四落实 / 定人定时间定措施) into the editor.
* ``/design/policy?sector=S``: the sector's policy profile (deadline and escalation values with
  units and sources, the escalation ladder's rungs and the triggers). A value inherited from the
  national profile is greyed with a 覆盖 box; a rung or trigger that differs from the national one
  is stored as the sector's own. The offset of a rung can be changed right in the rung's row.

``?sector=*`` is the national scope (system administrators only). Every view checks
:func:`engine.design.require_editor` for the scope.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields as dataclass_fields
from typing import Any

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine import design
from engine import form_versions
from engine import forms as engine_forms
from engine import policy as engine_policy
from engine.errors import Conflict
from engine.errors import DefinitionInvalid
from engine.errors import InvalidInput
from engine.models import PolicyProfile
from engine.models import Role
from engine.models import Sector
from engine.models.design import NATIONAL_SCOPE
from engine.models.design import FormVersion
from engine.models.design import scope_of

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import read_session
from ..session import sessions
from ..session import settings

bp = Blueprint("design", __name__)

#: the processes a sector copies first as the start of its own (C1's POST /design/diagrams/new)
COPY_SOURCES = {"hazard_general": "一般隐患治理闭环", "hazard_major": "重大事故隐患治理闭环"}
#: how many design log entries the overview shows
LOG_LIMIT = 30
#: most field rows accepted in one POST
MAX_ROWS = 200
#: blank rows offered for new policy values (more with 添加一行)
NEW_VALUE_ROWS = 1
MAX_NEW_VALUE_ROWS = 50

FIELD_TYPE_LABELS = {
    "text": "文本",
    "number": "数字",
    "money": "金额",
    "date": "日期",
    "choice": "选项",
    "person": "人员",
    "photo": "照片",
    "file": "文件",
    "signature": "签字",
    "checklist": "检查清单",
}
ISSUER_LEVEL_LABELS = {"province": "省级", "city": "市级", "county": "县级", "township": "乡镇级"}
PHASE_LABELS = {"before": "整改前", "after": "整改后"}
ACTION_LABELS = {
    "draft_saved": "保存草稿",
    "draft_discarded": "放弃草稿",
    "imported": "导入",
    "published": "发布",
    "refused": "发布被拒绝",
    "bound": "绑定",
}
KIND_LABELS = {"diagram": "流程图", "form": "表单", "policy": "策略配置"}

_ROW_ID = re.compile(r"^[0-9]{1,6}$")
_INTEGER = re.compile(r"^-?[0-9]+$")
_DECIMAL = re.compile(r"^-?[0-9]+\.[0-9]+$")
_ROW_ACTION = re.compile(r"^(remove|up|down):([0-9]{1,6})$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return current_app.make_response((render_template(template, **context), status))


# --- the scope: ?sector=S, * for national -------------------------------------------------------------


def _scope() -> str | None:
    """The sector code of ``?sector=`` (``*``: national, ``None``); 404 without one."""
    raw = request.args.get("sector", "").strip()
    if not raw:
        abort(404)
    return None if raw == NATIONAL_SCOPE else raw


def _scope_arg(sector_code: str | None) -> str:
    return scope_of(sector_code)


def _scope_name(session: Session, sector_code: str | None) -> str:
    if sector_code is None:
        return _("全国")
    sector = session.get(Sector, sector_code)
    return sector.name if sector is not None else sector_code


def _user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    return design.user_names(session, ids)


def _revision(form: Mapping[str, str]) -> int | None:
    raw = (form.get("revision") or "").strip()
    return int(raw) if raw.isdigit() else None


def _base_version(form: Mapping[str, str]) -> int | None:
    raw = (form.get("base_version") or "").strip()
    return int(raw) if raw.isdigit() else None


def _check_revision(
    session: Session, kind: str, key: str, sector_code: str | None, revision: int | None
) -> None:
    """Publishing from a page whose draft was changed or dropped meanwhile is a conflict."""
    draft = design.get_draft(session, kind, key, sector_code)
    if draft is None and revision is None:
        return
    if draft is None:
        raise Conflict(_("草稿已被其他管理员发布或放弃，请重新加载页面后再修改。"))
    if draft.revision != revision:
        who = _user_names(session, [draft.updated_by_id]).get(draft.updated_by_id or 0, _("其他管理员"))
        raise Conflict(_("草稿已被 {who} 修改，请重新加载页面后再发布。", who=who))


def _messages(value: object) -> list[str]:
    if isinstance(value, Mapping):
        return [m for v in value.values() for m in _messages(v)]
    if isinstance(value, list | tuple):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


# --- the overview -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScopeCard:
    code: str | None
    name: str
    processes: list[Any]

    @property
    def arg(self) -> str:
        return scope_of(self.code)


@bp.get("/design")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def index() -> Response:
    actor = current_actor()
    with read_session() as session:
        sectors = design.editable_sectors(session, actor)
        processes = design.list_processes(session, actor)
        cards: list[ScopeCard] = []
        if design.may_edit_national(actor):
            cards.append(ScopeCard(None, _("全国"), [p for p in processes if p.sector_code is None]))
        for sector in sectors:
            cards.append(
                ScopeCard(sector.code, sector.name, [p for p in processes if p.sector_code == sector.code])
            )
        if design.may_edit_national(actor):
            log = design.design_log(session, limit=LOG_LIMIT)
        else:
            log = design.design_log(session, sectors=[s.code for s in sectors], limit=LOG_LIMIT)
        names = _user_names(session, [e.actor_id for e in log])
        sources = {p.process_key: p.name for p in design.copy_sources(session)} or COPY_SOURCES
        sources = dict(sorted(sources.items(), key=lambda kv: (kv[0] not in COPY_SOURCES, kv[0])))
        sector_names = {s.code: s.name for s in session.scalars(select(Sector))}
        return _page(
            "design/index.html",
            cards=cards,
            log=log,
            names=names,
            sector_names=sector_names,
            copy_sources=sources,
            action_labels=ACTION_LABELS,
            kind_labels=KIND_LABELS,
        )


# --- forms: the list ----------------------------------------------------------------------------------


def _is_plan(form_key: str) -> bool:
    return form_key.endswith("_plan")


@bp.get("/design/forms")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def forms_index() -> Response:
    sector_code = _scope()
    with read_session() as session:
        design.require_editor(session, current_actor(), sector_code)
        summaries = design.form_keys(session, sector_code)
        return _page(
            "design/forms.html",
            summaries=summaries,
            sector_code=sector_code,
            scope=_scope_arg(sector_code),
            scope_name=_scope_name(session, sector_code),
        )


# --- forms: editor rows -------------------------------------------------------------------------------


@dataclass
class FieldRow:
    """One field of the editor as typed (strings; checkboxes as booleans)."""

    id: str
    name: str = ""
    label: str = ""
    type: str = "text"
    required: bool = False
    help: str = ""
    # text
    max_length: str = ""
    min_length: str = ""
    multiline: bool = False
    # number, money
    min: str = ""
    max: str = ""
    integer: bool = False
    # date
    role: str = ""
    # choice (options), checklist (items): one "value=标签" per line
    options: str = ""
    multiple: bool = False
    all_required: bool = False
    # photo, file
    phase: str = ""
    min_count: str = ""
    max_count: str = ""

    def is_blank(self) -> bool:
        return not (self.name or self.label or self.help)


_BOOL_ATTRS = frozenset(f.name for f in dataclass_fields(FieldRow) if f.type in ("bool", bool))
_TEXT_ATTRS = [f.name for f in dataclass_fields(FieldRow) if f.name != "id" and f.name not in _BOOL_ATTRS]


def _text(value: object) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return str(value)


def _option_lines(options: object) -> str:
    if not isinstance(options, list):
        return ""
    lines = []
    for option in options:
        if isinstance(option, Mapping):
            value, label = _text(option.get("value")), _text(option.get("label"))
            lines.append(value if value == label else f"{value}={label}")
        else:
            lines.append(_text(option))
    return "\n".join(lines)


def _rows_from_document(document: Mapping[str, Any]) -> list[FieldRow]:
    rows = []
    raw_fields = document.get("fields")
    for index, raw in enumerate(raw_fields if isinstance(raw_fields, list) else []):
        spec = raw if isinstance(raw, Mapping) else {}
        ftype = _text(spec.get("type")) or "text"
        rows.append(
            FieldRow(
                id=str(index),
                name=_text(spec.get("name")),
                label=_text(spec.get("label")),
                type=ftype,
                required=spec.get("required") is True,
                help=_text(spec.get("help")),
                max_length=_text(spec.get("max_length")),
                min_length=_text(spec.get("min_length")),
                multiline=spec.get("multiline") is True,
                min=_text(spec.get("min")),
                max=_text(spec.get("max")),
                integer=spec.get("integer") is True,
                role=_text(spec.get("role")),
                options=_option_lines(spec.get("items") if ftype == "checklist" else spec.get("options")),
                multiple=spec.get("multiple") is True,
                all_required=spec.get("all_required") is True,
                phase=_text(spec.get("phase")),
                min_count=_text(spec.get("min_count")),
                max_count=_text(spec.get("max_count")),
            )
        )
    return rows


def _rows_from_form(form: MultiDict[str, str]) -> list[FieldRow]:
    """The rows as posted, in the order of their ``row`` inputs (the page's order)."""
    rows = []
    seen: set[str] = set()
    for row_id in form.getlist("row")[:MAX_ROWS]:
        if not _ROW_ID.match(row_id) or row_id in seen:
            continue
        seen.add(row_id)
        prefix = f"fields-{row_id}-"
        values: dict[str, Any] = {name: form.get(prefix + name, "").strip() for name in _TEXT_ATTRS}
        values["options"] = form.get(prefix + "options", "").strip("\n")
        values.update({name: form.get(prefix + name) == "1" for name in _BOOL_ATTRS})
        rows.append(FieldRow(id=row_id, **values))
    return rows


def _number(raw: str) -> object:
    """A typed number as JSON: int, float, or the text itself (the engine names what is wrong)."""
    if _INTEGER.match(raw):
        return int(raw)
    if _DECIMAL.match(raw):
        return float(raw)
    return raw


def _money(raw: str) -> object:
    return int(raw) if _INTEGER.match(raw) else raw


def _options(text: str) -> list[dict[str, str]]:
    options = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        value, sep, label = line.replace("＝", "=").partition("=")
        value, label = value.strip(), label.strip()
        options.append({"value": value, "label": label if sep else value})
    return options


def _field_document(row: FieldRow) -> dict[str, Any]:
    """One row as a field definition: the common attributes and those of the row's type."""
    out: dict[str, Any] = {"name": row.name, "label": row.label, "type": row.type, "required": row.required}
    if row.help:
        out["help"] = row.help
    if row.type == "text":
        for attr in ("max_length", "min_length"):
            if getattr(row, attr):
                out[attr] = _number(getattr(row, attr))
        if row.multiline:
            out["multiline"] = True
    elif row.type in ("number", "money"):
        convert = _number if row.type == "number" else _money
        for attr in ("min", "max"):
            if getattr(row, attr):
                out[attr] = convert(getattr(row, attr))
        if row.type == "number" and row.integer:
            out["integer"] = True
    elif row.type == "date":
        if row.role:
            out["role"] = row.role
    elif row.type == "choice":
        out["options"] = _options(row.options)
        if row.multiple:
            out["multiple"] = True
    elif row.type in ("photo", "file"):
        if row.type == "photo" and row.phase:
            out["phase"] = row.phase
        for attr in ("min_count", "max_count"):
            if getattr(row, attr):
                out[attr] = _number(getattr(row, attr))
    elif row.type == "checklist":
        out["items"] = _options(row.options)
        if row.all_required:
            out["all_required"] = True
    return out


@dataclass
class FormState:
    """The editor's content: what the page shows and posts back."""

    title: str
    description: str
    rows: list[FieldRow]
    #: from the stored document, never from the page (diagram conditions depend on it)
    routing: dict[str, str]
    version: int
    revision: int | None
    base_version: int | None
    note: str = ""

    def document(self, form_key: str) -> dict[str, Any]:
        """The form definition document (blank rows left out)."""
        document: dict[str, Any] = {"key": form_key, "title": self.title, "version": self.version}
        if self.description:
            document["description"] = self.description
        document["fields"] = [_field_document(row) for row in self.kept_rows()]
        document["routing"] = dict(self.routing)
        return document

    def kept_rows(self) -> list[FieldRow]:
        return [row for row in self.rows if not row.is_blank()]

    def next_row_id(self) -> str:
        return str(max((int(row.id) for row in self.rows), default=-1) + 1)


def _stored_state(session: Session, form_key: str, sector_code: str | None) -> FormState:
    document, revision, version = design.form_document(session, form_key, sector_code)
    return FormState(
        title=_text(document.get("title")),
        description=_text(document.get("description")),
        rows=_rows_from_document(document),
        routing=_routing_of(document),
        version=_document_version(document),
        revision=revision,
        base_version=version,
    )


def _routing_of(document: Mapping[str, Any]) -> dict[str, str]:
    routing = document.get("routing")
    return {str(k): str(v) for k, v in routing.items()} if isinstance(routing, Mapping) else {}


def _document_version(document: Mapping[str, Any]) -> int:
    version = document.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) and version > 0 else 1


def _posted_state(session: Session, form_key: str, sector_code: str | None) -> FormState:
    stored = _stored_state(session, form_key, sector_code)
    form = request.form
    return FormState(
        title=form.get("title", "").strip(),
        description=form.get("description", "").strip(),
        rows=_rows_from_form(form),
        routing=stored.routing,
        version=stored.version,
        revision=_revision(form),
        base_version=_base_version(form),
        note=form.get("note", "").strip(),
    )


# --- forms: checking, and engine messages on the rows ----------------------------------------------------


@dataclass
class FormErrors:
    """Messages for the editor: per row id, per form attribute (title, description), and the rest."""

    rows: dict[str, list[str]] = field(default_factory=dict)
    form: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.form or self.general)

    def add_row(self, row_id: str, message: str) -> None:
        messages = self.rows.setdefault(row_id, [])
        if message not in messages:
            messages.append(message)

    def add(self, key: str | None, message: str, state: FormState, form_key: str) -> None:
        """Place an engine message: on the row it names, on the title, or at the top."""
        row_id = _row_of(key, state, form_key, message)
        if row_id is not None:
            self.add_row(row_id, message)
        elif key in ("title", f"{form_key}.title"):
            self.form.setdefault("title", []).append(message)
        elif message not in self.general:
            self.general.append(message)

    def as_dict(self) -> dict[str, list[str]]:
        """Keyed by row id (``fields-3``), attribute, or ``_form`` (for JSON clients and tests)."""
        out: dict[str, list[str]] = {f"fields-{k}": v for k, v in self.rows.items()}
        out.update(self.form)
        if self.general:
            out["_form"] = list(self.general)
        return out


_FIELD_INDEX = re.compile(r"^fields\[(\d+)\]$")


def _row_of(key: str | None, state: FormState, form_key: str, message: str) -> str | None:
    """The row an engine message is about: ``<form>.<field>``, ``<form>.fields[i]``, ``fields.<field>``."""
    if not key:
        return None
    kept = state.kept_rows()
    name = key
    for prefix in (f"{form_key}.", "fields."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    match = _FIELD_INDEX.match(name)
    if match:
        index = int(match.group(1))
        return kept[index].id if index < len(kept) else None
    same = [row.id for row in kept if row.name == name]
    if not same:
        return None
    return same[1] if len(same) > 1 and "重复" in message else same[0]


def _check_form(state: FormState, form_key: str) -> FormErrors:
    """Every row checked on its own (all problems at once, each on its row), then the whole form."""
    errors = FormErrors()
    if not state.title:
        errors.form["title"] = [_("请填写表单标题")]
    names: dict[str, str] = {}
    for row in state.kept_rows():
        if row.name in names:
            errors.add_row(row.id, _("字段名 {name} 重复（与前面的字段相同）", name=row.name))
        elif row.name:
            names[row.name] = row.id
        single = {
            "key": form_key,
            "title": state.title or form_key,
            "version": 1,
            "fields": [_field_document(row)],
        }
        try:
            engine_forms.parse_form_definition(single)
        except DefinitionInvalid as exc:
            errors.add_row(row.id, exc.reason)
    if not state.kept_rows():
        errors.general.append(_("表单至少需要一个字段"))
    if not errors:
        try:
            engine_forms.parse_form_definition(state.document(form_key))
        except DefinitionInvalid as exc:
            errors.add(exc.element_id, exc.reason, state, form_key)
    return errors


def _place_engine_error(exc: Exception, state: FormState, form_key: str) -> FormErrors:
    errors = FormErrors()
    if isinstance(exc, DefinitionInvalid):
        errors.add(exc.element_id, exc.reason, state, form_key)
    elif isinstance(exc, InvalidInput):
        for key, value in exc.messages.items():
            for message in _messages(value):
                errors.add(str(key), message, state, form_key)
        if not errors:
            errors.general.append(str(exc))
    else:
        errors.general.append(str(exc))
    return errors


# --- forms: versions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionRow:
    scope_name: str
    version: int
    title: str
    author: str
    created_at: dt.datetime
    note: str | None
    current: bool
    #: the version's scope (sector code or ``*``), for the links to its page and its diff
    scope: str = NATIONAL_SCOPE
    #: (scope, version) of the version it replaced (:func:`form_versions.previous_form_version`)
    previous: tuple[str, int] | None = None


def _form_versions(session: Session, form_key: str, sector_code: str | None) -> list[VersionRow]:
    """Published versions of the form in the scope and nationally, newest first per scope."""
    scopes = [scope_of(sector_code)] + ([NATIONAL_SCOPE] if sector_code is not None else [])
    found = list(
        session.scalars(
            select(FormVersion)
            .where(FormVersion.form_key == form_key, FormVersion.scope.in_(scopes))
            .order_by(FormVersion.version.desc())
        )
    )
    names = _user_names(session, [v.created_by_id for v in found])
    latest: dict[str, int] = {}
    for version in found:
        latest.setdefault(version.scope, version.version)
    rows = []
    for scope in scopes:
        scope_name = _scope_name(session, None if scope == NATIONAL_SCOPE else scope)
        for version in (v for v in found if v.scope == scope):
            if version.version > 1:
                previous: tuple[str, int] | None = (scope, version.version - 1)
            else:
                replaced = form_versions.previous_form_version(session, version)
                previous = (replaced.scope, replaced.version) if replaced is not None else None
            rows.append(
                VersionRow(
                    scope_name,
                    version.version,
                    version.title,
                    names.get(version.created_by_id or 0, _("系统")),
                    version.created_at,
                    version.note,
                    version.version == latest[scope],
                    scope,
                    previous,
                )
            )
    return rows


# --- forms: the editor page -----------------------------------------------------------------------------


def _presets() -> dict[str, Mapping[str, Any]]:
    return dict(design.PLAN_PRESETS)


def _preset_label(key: str, preset: Mapping[str, Any]) -> str:
    return design.PLAN_PRESET_LABELS.get(key) or str(preset.get("title") or key)


def _render_editor(
    form_key: str,
    sector_code: str | None,
    state: FormState | None = None,
    *,
    errors: FormErrors | None = None,
    status: int = 200,
    conflict: str | None = None,
    preview: engine_forms.FormDefinition | None = None,
    notice: str | None = None,
    check_stored: bool = False,
) -> Response:
    actor = current_actor()
    with read_session() as session:
        design.require_editor(session, actor, sector_code)
        if state is None:
            state = _stored_state(session, form_key, sector_code)
        if errors is None:
            errors = FormErrors()
            if check_stored and state.revision is not None:
                errors = _check_form(state, form_key)  # a draft that cannot be published yet
        draft = design.get_draft(session, "form", form_key, sector_code)
        draft_author = (
            _user_names(session, [draft.updated_by_id]).get(draft.updated_by_id or 0) if draft else None
        )
        summary = next((s for s in design.form_keys(session, sector_code) if s.form_key == form_key), None)
        presets = _presets() if _is_plan(form_key) else {}
        return _page(
            "design/form_edit.html",
            status,
            form_key=form_key,
            sector_code=sector_code,
            scope=_scope_arg(sector_code),
            scope_name=_scope_name(session, sector_code),
            state=state,
            errors=errors,
            draft=draft,
            draft_author=draft_author,
            summary=summary,
            versions=_form_versions(session, form_key, sector_code),
            presets={key: _preset_label(key, p) for key, p in presets.items()},
            conflict=conflict,
            preview=preview,
            notice=notice,
            field_types=[(t, FIELD_TYPE_LABELS.get(t, t)) for t in engine_forms.FIELD_TYPES],
            type_labels=FIELD_TYPE_LABELS,
            phase_labels=PHASE_LABELS,
            blank_row=FieldRow(id="__ID__"),
        )


@bp.get("/design/forms/<form_key>")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def form_edit(form_key: str) -> Response:
    return _render_editor(form_key, _scope(), check_stored=True)


def _editor_url(form_key: str, sector_code: str | None) -> str:
    return url_for("design.form_edit", form_key=form_key, sector=_scope_arg(sector_code))


@bp.post("/design/forms/<form_key>")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def form_post(form_key: str) -> Response:
    """``action``: save, preview, publish, discard, preset, add, remove:<row>, up:<row>, down:<row>."""
    sector_code = _scope()
    actor = current_actor()
    with read_session() as session:
        design.require_editor(session, actor, sector_code)
        state = _posted_state(session, form_key, sector_code)
    action = request.form.get("action", "preview")
    if action == "add":
        state.rows.append(FieldRow(id=state.next_row_id()))
        return _render_editor(form_key, sector_code, state)
    moved = _ROW_ACTION.match(action)
    if moved:
        _move_row(state.rows, moved.group(2), moved.group(1))
        return _render_editor(form_key, sector_code, state)
    if action == "preset":
        return _load_preset(form_key, sector_code, state)
    if action == "discard":
        return _discard(form_key, sector_code, state)
    if action == "save":
        return _save_form(form_key, sector_code, state)
    if action == "publish":
        return _publish_form(form_key, sector_code, state)
    errors = _check_form(state, form_key)
    if errors:
        return _render_editor(form_key, sector_code, state, errors=errors, status=422)
    preview = engine_forms.parse_form_definition(state.document(form_key))
    return _render_editor(form_key, sector_code, state, preview=preview)


def _move_row(rows: list[FieldRow], row_id: str, how: str) -> None:
    index = next((i for i, row in enumerate(rows) if row.id == row_id), None)
    if index is None:
        return
    if how == "remove":
        del rows[index]
    elif how == "up" and index > 0:
        rows[index - 1], rows[index] = rows[index], rows[index - 1]
    elif how == "down" and index < len(rows) - 1:
        rows[index + 1], rows[index] = rows[index], rows[index + 1]


def _load_preset(form_key: str, sector_code: str | None, state: FormState) -> Response:
    presets = _presets() if _is_plan(form_key) else {}
    chosen = request.form.get("preset", "")
    preset = presets.get(chosen)
    if preset is None:
        errors = FormErrors(general=[_("请选择要套用的模板")])
        return _render_editor(form_key, sector_code, state, errors=errors, status=422)
    document = preset
    state.rows = _rows_from_document(document)
    if isinstance(document.get("title"), str) and document["title"]:
        state.title = document["title"]
    if isinstance(document.get("description"), str):
        state.description = document["description"]
    notice = _(
        "已套用模板「{name}」：请检查字段后保存草稿或发布（尚未保存）。", name=_preset_label(chosen, preset)
    )
    return _render_editor(form_key, sector_code, state, notice=notice)


def _discard(form_key: str, sector_code: str | None, state: FormState) -> Response:
    try:
        with sessions().begin() as session:
            design.discard_draft(
                session,
                current_actor(),
                kind="form",
                key=form_key,
                sector_code=sector_code,
                revision=state.revision,
            )
    except Conflict as exc:
        return _render_editor(form_key, sector_code, state, status=409, conflict=str(exc))
    flash(_("草稿已放弃"), "success")
    return redirect(_editor_url(form_key, sector_code))


def _save_form(form_key: str, sector_code: str | None, state: FormState) -> Response:
    content = json.dumps(state.document(form_key), ensure_ascii=False, indent=1)
    try:
        with sessions().begin() as session:
            draft = design.save_draft(
                session,
                current_actor(),
                kind="form",
                key=form_key,
                sector_code=sector_code,
                content=content,
                revision=state.revision,
                base_version=state.base_version,
            )
            revision = draft.revision
    except Conflict as exc:
        return _render_editor(form_key, sector_code, state, status=409, conflict=str(exc))
    except InvalidInput as exc:
        errors = _place_engine_error(exc, state, form_key)
        return _render_editor(form_key, sector_code, state, errors=errors, status=422)
    problems = _check_form(state, form_key)
    if problems:
        flash(_("草稿已保存（第 {n} 次修改），但还不能发布：请修正标注的字段。", n=revision), "warning")
    else:
        flash(_("草稿已保存（第 {n} 次修改）", n=revision), "success")
    return redirect(_editor_url(form_key, sector_code))


def _publish_form(form_key: str, sector_code: str | None, state: FormState) -> Response:
    errors = _check_form(state, form_key)
    if errors:
        return _render_editor(form_key, sector_code, state, errors=errors, status=422)
    actor = current_actor()
    try:
        with sessions().begin() as session:
            _check_revision(session, "form", form_key, sector_code, state.revision)
            result = design.publish_form(
                session,
                actor,
                form_key=form_key,
                sector_code=sector_code,
                document=state.document(form_key),
                note=state.note or None,
                revision=state.revision,
            )
            version, created = result.version, result.created
    except Conflict as exc:
        return _render_editor(form_key, sector_code, state, status=409, conflict=str(exc))
    except (InvalidInput, DefinitionInvalid) as exc:
        errors = _place_engine_error(exc, state, form_key)
        _record_refusal("form", form_key, sector_code, errors)
        return _render_editor(form_key, sector_code, state, errors=errors, status=422)
    if created:
        flash(
            _(
                "已发布「{title}」第 {version} 版，此后新启动的隐患流程使用该版本。",
                title=state.title,
                version=version,
            ),
            "success",
        )
    else:
        flash(_("内容与已发布的第 {version} 版相同，未产生新版本。", version=version), "info")
    return redirect(_editor_url(form_key, sector_code))


def _record_refusal(
    kind: str, key: str, sector_code: str | None, errors: FormErrors | dict[str, list[str]]
) -> None:
    """The refused publish in the design log (its own transaction: the publish rolled back)."""
    if isinstance(errors, FormErrors):
        pairs = [(None, m) for m in errors.general] + [
            (k, m) for k, messages in {**errors.form, **errors.rows}.items() for m in messages
        ]
    else:
        pairs = [(k, m) for k, messages in errors.items() for m in messages]
    problems = [design.GateProblem(element=k, message=m, severity="error") for k, m in pairs]
    with sessions().begin() as session:
        design.record_refusal(session, current_actor(), kind, key, sector_code, problems)


# --- policy ---------------------------------------------------------------------------------------------


@dataclass
class ValueRow:
    """One policy value as shown: the sector's own or inherited from the national profile."""

    name: str
    label: str = ""
    value: str = ""
    unit: str = "calendar_days"
    source: str = ""
    note: str = ""
    #: the national profile has this value (sector profiles only)
    inherited: bool = False
    #: part of the document's ``values`` (always, for the national profile)
    overridden: bool = False
    #: the national value as it reads (``10 个工作日``), for inherited rows
    national: str = ""
    #: a row for a new value (name typed by the administrator)
    new: bool = False
    index: int = 0

    @property
    def error_key(self) -> str:
        """Where the page shows the row's messages (a new row: ``new.<i>``; engine messages for
        its name, ``values.<name>``, are shown there too)."""
        return f"new.{self.index}" if self.new else f"values.{self.name}"


@dataclass
class RungRow:
    key: str
    title: str
    level: int
    kind: str
    label: str = ""
    offset: str = ""
    issuer: str = "lead_department"
    issuer_level: str = ""
    recipients: list[str] = field(default_factory=list)
    response: str = ""
    template: str = ""
    place: str = ""
    #: differs from the national rung (stored in the sector's document)
    overridden: bool = False
    configured: bool = True

    def spec(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "kind": self.kind,
            "label": self.label,
            "offset": self.offset or None,
            "issuer": self.issuer,
            "issuer_level": self.issuer_level or None,
            "recipients": list(self.recipients),
            "response": self.response or None,
            "template": self.template or self.kind,
            "place": self.place or None,
        }


@dataclass
class PolicyState:
    document: dict[str, Any]
    title: str
    note: str
    values: list[ValueRow]
    new_values: list[ValueRow]
    rungs: list[RungRow]
    triggers: dict[str, str]
    revision: int | None
    base_version: int | None
    publish_note: str = ""


def _describe(spec: Mapping[str, Any] | None) -> str:
    if not spec:
        return ""
    unit = engine_policy.UNITS.get(str(spec.get("unit")), str(spec.get("unit", "")))
    return f"{spec.get('value')} {unit}"


def _national_content(session: Session) -> dict[str, Any]:
    """The published national profile's values and ladder (what a sector's profile inherits)."""
    content = engine_policy.get_profile(session, engine_policy.NATIONAL_KEY).content
    return {"values": dict(content.get("values") or {}), "ladder": dict(content.get("ladder") or {})}


def _normal_rung(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "level": spec.get("level"),
        "kind": spec.get("kind"),
        "label": spec.get("label"),
        "offset": spec.get("offset") or None,
        "issuer": spec.get("issuer"),
        "issuer_level": spec.get("issuer_level") or None,
        "recipients": list(spec.get("recipients") or []),
        "response": spec.get("response") or None,
        "template": spec.get("template") or spec.get("kind"),
        "place": spec.get("place") or None,
    }


def _policy_state(
    document: Mapping[str, Any], revision: int | None, version: int | None, national: Mapping[str, Any] | None
) -> PolicyState:
    """The editor rows of a profile document; ``national`` is None when editing the national profile."""
    own_values = document.get("values") if isinstance(document.get("values"), Mapping) else {}
    assert isinstance(own_values, Mapping)
    base_values = national["values"] if national is not None else {}
    rows = []
    for name in sorted(set(base_values) | set(own_values)):
        own = own_values.get(name)
        base = base_values.get(name)
        spec = own if isinstance(own, Mapping) else base if isinstance(base, Mapping) else {}
        rows.append(
            ValueRow(
                name=name,
                label=_text(spec.get("label")),
                value=_text(spec.get("value")),
                unit=_text(spec.get("unit")),
                source=_text(spec.get("source")),
                note=_text(spec.get("note")),
                inherited=national is not None and name in base_values,
                overridden=national is None or name in own_values,
                national=_describe(base) if isinstance(base, Mapping) else "",
            )
        )
    if national is not None:  # the sector's own values first, then those it inherits
        rows.sort(key=lambda r: (not r.overridden, r.name))
    ladder = document.get("ladder") if isinstance(document.get("ladder"), Mapping) else {}
    assert isinstance(ladder, Mapping)
    own_rungs = ladder.get("rungs") if isinstance(ladder.get("rungs"), Mapping) else {}
    assert isinstance(own_rungs, Mapping)
    base_ladder = national["ladder"] if national is not None else {}
    base_rungs = base_ladder.get("rungs") or {}
    rungs = []
    for key, title in engine_policy.RUNG_KEYS.items():
        own = own_rungs.get(key)
        spec = own if isinstance(own, Mapping) else base_rungs.get(key)
        if not isinstance(spec, Mapping):
            rungs.append(RungRow(key, title, 0, "", configured=False))
            continue
        rungs.append(
            RungRow(
                key=key,
                title=title,
                level=int(spec.get("level") or 0),
                kind=_text(spec.get("kind")),
                label=_text(spec.get("label")),
                offset=_text(spec.get("offset")),
                issuer=_text(spec.get("issuer")),
                issuer_level=_text(spec.get("issuer_level")),
                recipients=[str(r) for r in spec.get("recipients") or []],
                response=_text(spec.get("response")),
                template=_text(spec.get("template")) or _text(spec.get("kind")),
                place=_text(spec.get("place")),
                overridden=national is None or isinstance(own, Mapping),
            )
        )
    triggers = dict(base_ladder.get("triggers") or {})
    own_triggers = ladder.get("triggers")
    if isinstance(own_triggers, Mapping):
        triggers.update({str(k): str(v) for k, v in own_triggers.items()})
    return PolicyState(
        document=dict(document),
        title=_text(document.get("title")),
        note=_text(document.get("note")),
        values=rows,
        new_values=[ValueRow(name="", new=True, index=i) for i in range(NEW_VALUE_ROWS)],
        rungs=rungs,
        triggers=triggers,
        revision=revision,
        base_version=version,
    )


def _posted_policy(stored: PolicyState, national: Mapping[str, Any] | None) -> PolicyState:
    """The page's rows as posted, on top of the stored state (names, inheritance, level and kind)."""
    form = request.form
    for row in stored.values:
        prefix = f"value-{row.name}-"
        if form.get(prefix + "shown") != "1":
            continue  # not on the page that posted (a value added to the national profile since)
        row.overridden = national is None or form.get(prefix + "override") == "1"
        row.label = form.get(prefix + "label", row.label).strip()
        row.value = form.get(prefix + "value", row.value).strip()
        row.unit = form.get(prefix + "unit", row.unit).strip()
        row.source = form.get(prefix + "source", row.source).strip()
    count = form.get("new_rows", "")
    new_count = min(int(count), MAX_NEW_VALUE_ROWS) if count.isdigit() else NEW_VALUE_ROWS
    stored.new_values = []
    for index in range(new_count):
        prefix = f"new-{index}-"
        stored.new_values.append(
            ValueRow(
                name=form.get(prefix + "name", "").strip(),
                label=form.get(prefix + "label", "").strip(),
                value=form.get(prefix + "value", "").strip(),
                unit=form.get(prefix + "unit", "calendar_days").strip(),
                source=form.get(prefix + "source", "").strip(),
                overridden=True,
                new=True,
                index=index,
            )
        )
    by_name = {row.name: row for row in stored.values}
    for rung in stored.rungs:
        if not rung.configured:
            continue
        prefix = f"rung-{rung.key}-"
        rung.label = form.get(prefix + "label", "").strip()
        rung.offset = form.get(prefix + "offset", "").strip()
        rung.issuer = form.get(prefix + "issuer", "").strip()
        rung.issuer_level = form.get(prefix + "issuer_level", "").strip()
        rung.recipients = [r for r in form.getlist(prefix + "recipients") if r]
        rung.response = form.get(prefix + "response", "").strip()
        rung.template = form.get(prefix + "template", "").strip()
        rung.place = form.get(prefix + "place", "").strip()
        # the offset's amount typed in the rung's row: it edits the value the rung names
        amount = form.get(prefix + "offset_value", "").strip()
        unit = form.get(prefix + "offset_unit", "").strip()
        changed = (amount, unit) != (
            form.get(prefix + "offset_orig_value", "").strip(),
            form.get(prefix + "offset_orig_unit", "").strip(),
        )
        target = by_name.get(rung.offset)
        if changed and target is not None and (amount or unit):
            target.value, target.unit = amount or target.value, unit or target.unit
            target.overridden = True
        if national is not None:
            base = (national["ladder"].get("rungs") or {}).get(rung.key)
            rung.overridden = not isinstance(base, Mapping) or _normal_rung(base) != rung.spec()
    for trigger in _TRIGGERS:
        chosen = form.get(f"trigger-{trigger}")
        if chosen is not None:
            if chosen:
                stored.triggers[trigger] = chosen.strip()
            else:
                stored.triggers.pop(trigger, None)
    stored.title = form.get("title", stored.title).strip()
    stored.note = form.get("doc_note", stored.note).strip()
    stored.publish_note = form.get("note", "").strip()
    stored.revision = _revision(form)
    stored.base_version = _base_version(form)
    return stored


_TRIGGERS = [t for t in engine_policy.TRIGGERS if t not in ("deadline", "overdue")]


#: the document's attribute names in engine.policy's messages, as the page labels them
_POLICY_WORDS = {
    "value": "数值",
    "unit": "单位",
    "source": "出处",
    "label": "说明",
    "issuer_level": "签发层级",
    "issuer": "签发机关",
    "recipients": "送达对象",
    "offset": "时间点",
    "response": "回复/公布期限",
    "template": "文书模板",
    "null": "空（牵头部门本级）",
    **ISSUER_LEVEL_LABELS,
    **engine_policy.UNITS,
    **engine_policy.ISSUER_BODIES,
    **engine_policy.RECIPIENTS,
}
_POLICY_WORD = re.compile(r"\b(" + "|".join(sorted(_POLICY_WORDS, key=len, reverse=True)) + r")\b")


def _policy_words(message: str) -> str:
    """An engine.policy message in the page's words (``value 必须…`` → ``数值 必须…``)."""
    return _POLICY_WORD.sub(lambda m: _POLICY_WORDS[m.group(1)], message)


def _value_document(row: ValueRow) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "value": int(row.value) if _INTEGER.match(row.value) else row.value,
        "unit": row.unit,
        "source": row.source,
        "label": row.label,
    }
    if row.note:
        spec["note"] = row.note
    return spec


def _policy_document(
    state: PolicyState, national: Mapping[str, Any] | None
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The profile document of the page, and the problems found before the engine sees it."""
    errors: dict[str, list[str]] = {}
    values = {row.name: _value_document(row) for row in state.values if row.overridden}
    for row in state.new_values:
        if not (row.name or row.label or row.value or row.source):
            continue
        if not row.name:
            errors[row.error_key] = [_("请填写名称（小写字母、数字和下划线，以字母开头）")]
        elif not _NAME.match(row.name):
            errors[row.error_key] = [_("名称只能由小写字母、数字和下划线组成，并以字母开头")]
        elif row.name in values or any(r.name == row.name for r in state.values):
            errors[row.error_key] = [_("策略值 {name} 已存在，请直接修改上面的行", name=row.name)]
        else:
            values[row.name] = _value_document(row)
    rungs = {r.key: r.spec() for r in state.rungs if r.configured and r.overridden}
    base_triggers = (national["ladder"].get("triggers") or {}) if national is not None else {}
    triggers = {t: k for t, k in state.triggers.items() if national is None or base_triggers.get(t) != k}
    document = {key: state.document.get(key) for key in ("key", "sector", "region", "extends")}
    document.update(title=state.title, note=state.note or None, values=values)
    if rungs or triggers or national is None:
        document["ladder"] = {"rungs": rungs, "triggers": triggers}
    return document, errors


def _template_names() -> list[str]:
    folder = settings().processes_dir / "notices"
    return sorted(
        p.name.removesuffix(".html.j2") for p in folder.glob("*.html.j2") if not p.name.startswith("_")
    )


@dataclass(frozen=True, slots=True)
class ProfileVersionRow:
    key: str
    version: int
    author: str
    created_at: dt.datetime
    note: str | None
    extends: str


def _profile_versions(session: Session, key: str) -> list[ProfileVersionRow]:
    """The profile's versions, newest first; the note is the one given when publishing, if any."""
    found = list(
        session.scalars(
            select(PolicyProfile).where(PolicyProfile.key == key).order_by(PolicyProfile.version.desc())
        )
    )
    names = _user_names(session, [p.created_by_id for p in found])
    published = {
        e.version: e.note
        for e in reversed(design.design_log(session, kind="policy", key=key, limit=500))
        if e.action == "published" and e.note
    }
    rows = []
    for profile in found:
        base = profile.content.get("extends") or {}
        rows.append(
            ProfileVersionRow(
                profile.key,
                profile.version,
                names.get(profile.created_by_id or 0, _("系统")),
                profile.created_at,
                published.get(profile.version) or profile.note,
                f"{base.get('key')} v{base.get('version')}" if base else "",
            )
        )
    return rows


def _render_policy(
    sector_code: str | None,
    state: PolicyState | None = None,
    *,
    errors: Mapping[str, list[str]] | None = None,
    status: int = 200,
    conflict: str | None = None,
) -> Response:
    actor = current_actor()
    with read_session() as session:
        design.require_editor(session, actor, sector_code)
        national = _national_content(session) if sector_code is not None else None
        if state is None:
            document, revision, version = design.policy_document(session, sector_code)
            state = _policy_state(document, revision, version, national)
        key = _text(state.document.get("key")) or (sector_code or engine_policy.NATIONAL_KEY)
        draft = design.get_draft(session, "policy", key, sector_code)
        draft_author = (
            _user_names(session, [draft.updated_by_id]).get(draft.updated_by_id or 0) if draft else None
        )
        errors = dict(errors or {})
        # where each message key is shown: (element id, what the summary calls it)
        places: dict[str, tuple[str, str]] = {
            f"values.{r.name}": (f"values-{r.name}", r.label or r.name) for r in state.values
        }
        for r in state.new_values:
            place = (f"new-{r.index}", _("新增策略值第 {n} 行", n=r.index + 1))
            places[r.error_key] = place
            if r.name:
                places[f"values.{r.name}"] = place
        places.update({f"ladder.rungs.{r.key}": (f"ladder-rungs-{r.key}", _(r.title)) for r in state.rungs})
        places.update(
            {
                f"ladder.triggers.{t}": (f"ladder-triggers-{t}", _(engine_policy.TRIGGERS[t]))
                for t in _TRIGGERS
            }
        )
        known = set(places) | {"title"}
        value_names = [(r.name, r.label) for r in state.values if r.unit != "count"]
        return _page(
            "design/policy.html",
            status,
            sector_code=sector_code,
            scope=_scope_arg(sector_code),
            scope_name=_scope_name(session, sector_code),
            state=state,
            key=key,
            inherits=national is not None,
            errors=errors,
            general_errors=[m for k, v in errors.items() if k not in known for m in _messages(v)],
            places=places,
            conflict=conflict,
            draft=draft,
            draft_author=draft_author,
            versions=_profile_versions(session, key),
            national_versions=_profile_versions(session, engine_policy.NATIONAL_KEY)[:1] if national else [],
            units=engine_policy.UNITS,
            issuers=engine_policy.ISSUER_BODIES,
            issuer_levels=ISSUER_LEVEL_LABELS,
            recipients=engine_policy.RECIPIENTS,
            triggers={t: engine_policy.TRIGGERS[t] for t in _TRIGGERS},
            rung_titles=engine_policy.RUNG_KEYS,
            templates=_template_names(),
            notice_kinds=engine_policy.NOTICE_KINDS,
            value_names=value_names,
            offset_names={name for name, _label in value_names},
            values_by_name={r.name: r for r in state.values},
        )


@bp.get("/design/policy")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def policy_edit() -> Response:
    return _render_policy(_scope())


@bp.post("/design/policy")
@login_required
@roles_required(Role.PROCESS_ADMIN, Role.SYS_ADMIN)
def policy_post() -> Response:
    """``action``: save, publish, discard, add (another blank value row)."""
    sector_code = _scope()
    actor = current_actor()
    with read_session() as session:
        design.require_editor(session, actor, sector_code)
        national = _national_content(session) if sector_code is not None else None
        document, revision, version = design.policy_document(session, sector_code)
        state = _posted_policy(_policy_state(document, revision, version, national), national)
    action = request.form.get("action", "save")
    key = _text(state.document.get("key")) or (sector_code or engine_policy.NATIONAL_KEY)
    if action == "add":
        state.new_values.append(ValueRow(name="", new=True, index=len(state.new_values)))
        return _render_policy(sector_code, state)
    if action == "discard":
        try:
            with sessions().begin() as session:
                design.discard_draft(
                    session, actor, kind="policy", key=key, sector_code=sector_code, revision=state.revision
                )
        except Conflict as exc:
            return _render_policy(sector_code, state, status=409, conflict=str(exc))
        flash(_("草稿已放弃"), "success")
        return redirect(url_for("design.policy_edit", sector=_scope_arg(sector_code)))
    new_document, errors = _policy_document(state, national)
    if errors:
        return _render_policy(sector_code, state, errors=errors, status=422)
    if action == "publish":
        return _publish_policy(sector_code, state, key, new_document)
    try:
        with sessions().begin() as session:
            draft = design.save_draft(
                session,
                actor,
                kind="policy",
                key=key,
                sector_code=sector_code,
                content=json.dumps(new_document, ensure_ascii=False, indent=1),
                revision=state.revision,
                base_version=state.base_version,
            )
            saved = draft.revision
    except Conflict as exc:
        return _render_policy(sector_code, state, status=409, conflict=str(exc))
    except InvalidInput as exc:
        messages = {str(k): _messages(v) for k, v in exc.messages.items()}
        return _render_policy(sector_code, state, errors=messages, status=422)
    flash(_("草稿已保存（第 {n} 次修改）", n=saved), "success")
    return redirect(url_for("design.policy_edit", sector=_scope_arg(sector_code)))


def _publish_policy(
    sector_code: str | None, state: PolicyState, key: str, document: dict[str, Any]
) -> Response:
    actor = current_actor()
    try:
        with sessions().begin() as session:
            _check_revision(session, "policy", key, sector_code, state.revision)
            result = design.publish_policy(
                session,
                actor,
                sector_code=sector_code,
                document=document,
                note=state.publish_note or None,
                revision=state.revision,
            )
            version, created = result.version, result.created
    except Conflict as exc:
        return _render_policy(sector_code, state, status=409, conflict=str(exc))
    except InvalidInput as exc:
        messages = {str(k): _messages(v) for k, v in exc.messages.items()}
        _record_refusal("policy", key, sector_code, messages)
        shown = {k: [_policy_words(m) for m in v] for k, v in messages.items()}
        return _render_policy(sector_code, state, errors=shown, status=422)
    if created:
        flash(_("策略配置已发布为第 {version} 版，此后新登记的隐患使用该版本。", version=version), "success")
    else:
        flash(_("内容与已发布的第 {version} 版相同，未产生新版本。", version=version), "info")
    return redirect(url_for("design.policy_edit", sector=_scope_arg(sector_code)))
