"""Published versions of a sector's task forms and policy profile: one version read-only, and two
compared (:mod:`engine.design_diff`). Linked from the 版本记录 tables of the editors
(``templates/design/form_edit.html``, ``policy.html``).

* ``/design/forms/<key>/versions/<n>?sector=S[&scope=*]``: version ``n`` of the form as the
  rectifier sees it (the editor's preview macro, disabled), with its scope, author, time, note and
  sha256. ``scope`` is the scope the number counts in: the sector's own (default) or ``*``, the
  national versions the sector's editor lists too.
* ``/design/forms/<key>/diff?sector=S[&scope=…][&from=N][&to=M][&from_scope=…]``: fields added,
  removed and changed from version ``from`` (in ``from_scope``, default ``scope``) to ``to`` (in
  ``scope``). Defaults: ``to`` the scope's latest, ``from`` the version ``to`` replaced (for a
  sector's first version, the national version that applied when it was published).
* ``/design/policy/versions/<n>?sector=S``: version ``n`` of the scope's profile: every value
  after inheritance (the sector's own marked), the ladder and the triggers.
* ``/design/policy/diff?sector=S[&from=N][&to=M]``: values, rungs and triggers added, removed and
  changed (defaults: the latest and the one before).

Who may open the editor of the scope may open these (:func:`engine.design.require_editor`); an
unknown sector, form or version is 404, a version number that is not a number 422.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask import abort
from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine import design
from engine import form_versions
from engine import policy as engine_policy
from engine.design_diff import RUNG_ORDER
from engine.design_diff import AttributeChange
from engine.design_diff import Entry
from engine.design_diff import EntryChange
from engine.design_diff import diff_forms
from engine.design_diff import diff_policies
from engine.errors import NotFound
from engine.models import FormVersion
from engine.models import PolicyProfile
from engine.models import Role
from engine.models import Sector
from engine.models.design import NATIONAL_SCOPE
from engine.models.design import scope_of

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import read_session
from .design import FIELD_TYPE_LABELS
from .design import ISSUER_LEVEL_LABELS
from .design import PHASE_LABELS
from .design import _describe
from .design import _page
from .design import _profile_versions
from .design import _scope
from .design import _scope_name
from .design import _user_names
from .design_versions import FieldChange
from .design_versions import _shown

bp = Blueprint("design_history", __name__)

EDITORS = (Role.PROCESS_ADMIN, Role.SYS_ADMIN)

#: what the diff calls a form's and a field's attributes (the editor's words)
FORM_LABELS = {
    "title": "表单标题",
    "description": "表单说明",
    "routing": "流程路由",
    "label": "标签",
    "type": "类型",
    "required": "必填",
    "help": "填写说明",
    "max_length": "最多字数",
    "min_length": "最少字数",
    "multiline": "多行文本",
    "min": "最小值",
    "max": "最大值",
    "integer": "只能填整数",
    "role": "日期用途",
    "options": "选项",
    "multiple": "可多选",
    "phase": "照片阶段",
    "min_count": "最少个数",
    "max_count": "最多个数",
    "items": "检查项",
    "all_required": "须全部勾选",
}
#: what the diff calls a profile's, a value's and a rung's attributes (the policy editor's words)
POLICY_LABELS = {
    "title": "配置名称",
    "extends": "基于",
    "overrides": "本行业设置的策略值",
    "value": "数值",
    "unit": "单位",
    "source": "出处",
    "label": "说明",
    "note": "备注",
    "level": "级别",
    "kind": "文书",
    "offset": "时间点",
    "offset_value": "时间点期限",
    "issuer": "签发机关",
    "issuer_level": "签发层级",
    "recipients": "送达对象",
    "response": "回复/公布期限",
    "response_value": "回复/公布期限时长",
    "template": "文书模板",
    "place": "约谈地点",
}
ROLE_LABELS = {"deadline": "整改期限"}
#: a rung's attributes on a version page, in this order
RUNG_SHOWN = tuple(name for name in RUNG_ORDER if name != "level")


# --- the scope and version numbers ------------------------------------------------------------------


def _editor_scope(session: Session) -> str | None:
    """``?sector=`` (404 for an unknown sector), checked like the editors (403)."""
    sector_code = _scope()
    if sector_code is not None and session.get(Sector, sector_code) is None:
        raise NotFound("行业", sector_code)
    design.require_editor(session, current_actor(), sector_code)
    return sector_code


def _version_scope(sector_code: str | None, name: str, default: str | None = None) -> str:
    """A ``scope`` argument: the sector's own scope or the national one (404 otherwise)."""
    raw = request.args.get(name, "").strip() or default or scope_of(sector_code)
    if raw not in (scope_of(sector_code), NATIONAL_SCOPE):
        abort(404)
    return raw


def _numbers(errors: dict[str, list[str]]) -> tuple[int | None, int | None]:
    """``from`` and ``to`` (``None``: not given); a value that is not a version number is an error."""
    found: dict[str, int | None] = {}
    for name in ("from", "to"):
        raw = request.args.get(name, "").strip()
        if not raw:
            found[name] = None
        elif raw.isdigit() and len(raw) < 10 and int(raw) > 0:
            found[name] = int(raw)
        else:
            found[name] = None
            errors[name] = [_("版本号必须是正整数（得到 {value}）", value=raw[:20])]
    return found["from"], found["to"]


@dataclass(frozen=True, slots=True)
class Meta:
    """What a version page says about the version."""

    scope_name: str
    version: int
    title: str
    author: str
    created_at: dt.datetime
    note: str | None
    content_hash: str


def _author(session: Session, user_id: int | None) -> str:
    return _user_names(session, [user_id]).get(user_id or 0, _("系统"))


# --- showing values ------------------------------------------------------------------------------------


def _options(value: object) -> str:
    if not isinstance(value, list):
        return _shown(value)
    shown = []
    for option in value:
        if isinstance(option, Mapping):
            label, code = str(option.get("label", "")), str(option.get("value", ""))
            shown.append(label if label == code else f"{label}（{code}）")
        else:
            shown.append(str(option))
    return "、".join(shown) or "—"


def _form_value(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name == "type":
        return _(FIELD_TYPE_LABELS.get(str(value), str(value)))
    if name == "phase":
        return _(PHASE_LABELS.get(str(value), str(value)))
    if name == "role":
        return _(ROLE_LABELS.get(str(value), str(value)))
    if name in ("options", "items"):
        return _options(value)
    if name == "routing" and isinstance(value, Mapping):
        return "、".join(f"{k} → {v}" for k, v in value.items()) or "—"
    return _shown(value)


def _form_change(change: AttributeChange) -> FieldChange:
    label = _(FORM_LABELS[change.name]) if change.name in FORM_LABELS else change.name
    return FieldChange(label, _form_value(change.name, change.old), _form_value(change.name, change.new))


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row of a diff table: what changed (``added``, ``removed``, ``changed``), the entry's
    name and key, and its attributes (added/removed: each attribute's value in ``new``/``old``)."""

    kind: str
    key: str
    name: str
    attributes: list[FieldChange]


def _rows(
    added: Iterable[Entry],
    removed: Iterable[Entry],
    changed: Iterable[EntryChange],
    shown: Any,
    name: Any,
    *,
    skip: frozenset[str] = frozenset({"name"}),
) -> list[DiffRow]:
    """Table rows, added then removed then changed; ``shown(change)`` formats an attribute and
    ``name(key, label)`` names the entry."""

    def whole(entry: Entry, new: bool) -> list[FieldChange]:
        return [
            shown(AttributeChange(k, None, v) if new else AttributeChange(k, v, None))
            for k, v in entry.spec.items()
            if k not in skip and v not in (None, False, [], "")
        ]

    rows = [DiffRow("added", e.key, name(e.key, e.label), whole(e, True)) for e in added]
    rows += [DiffRow("removed", e.key, name(e.key, e.label), whole(e, False)) for e in removed]
    rows += [DiffRow("changed", c.key, name(c.key, c.label), [shown(x) for x in c.changes]) for c in changed]
    return rows


# --- forms ---------------------------------------------------------------------------------------------


def _form_row(session: Session, form_key: str, scope: str, version: int) -> FormVersion:
    """:raises NotFound: no such version of the form in the scope."""
    return form_versions.get_form_version(
        session, form_key, None if scope == NATIONAL_SCOPE else scope, version
    )


def _form_meta(session: Session, row: FormVersion) -> Meta:
    return Meta(
        _scope_name(session, row.sector_code),
        row.version,
        row.title,
        _author(session, row.created_by_id),
        row.created_at,
        row.note,
        row.content_hash,
    )


def _scope_versions(session: Session, form_key: str, scope: str) -> list[FormVersion]:
    return list(
        session.scalars(
            select(FormVersion)
            .where(FormVersion.form_key == form_key, FormVersion.scope == scope)
            .order_by(FormVersion.version.desc())
        )
    )


@bp.get("/design/forms/<form_key>/versions/<int:version>")
@login_required
@roles_required(*EDITORS)
def form_version(form_key: str, version: int) -> Response:
    with read_session() as session:
        sector_code = _editor_scope(session)
        scope = _version_scope(sector_code, "scope")
        row = _form_row(session, form_key, scope, version)
        previous = form_versions.previous_form_version(session, row)
        return _page(
            "design_history/form_version.html",
            form_key=form_key,
            sector_code=sector_code,
            scope=scope_of(sector_code),
            scope_name=_scope_name(session, sector_code),
            version_scope=scope,
            meta=_form_meta(session, row),
            definition=form_versions.form_definition(session, row.id),
            previous=previous,
        )


@bp.get("/design/forms/<form_key>/diff")
@login_required
@roles_required(*EDITORS)
def form_diff(form_key: str) -> Response:
    errors: dict[str, list[str]] = {}
    old_number, new_number = _numbers(errors)
    with read_session() as session:
        sector_code = _editor_scope(session)
        to_scope = _version_scope(sector_code, "scope")
        from_scope = _version_scope(sector_code, "from_scope", to_scope)
        versions = _scope_versions(session, form_key, to_scope)
        if not versions and to_scope != NATIONAL_SCOPE:  # nothing of the sector's own yet
            to_scope = from_scope = NATIONAL_SCOPE
            versions = _scope_versions(session, form_key, to_scope)
        if not versions:
            raise NotFound("表单版本", f"{form_key}@{to_scope}")
        context: dict[str, Any] = {}
        if not errors:
            new = _form_row(session, form_key, to_scope, new_number) if new_number else versions[0]
            old: FormVersion | None
            if old_number is not None:
                old = _form_row(session, form_key, from_scope, old_number)
            else:
                old = form_versions.previous_form_version(session, new)
            context = {"new": _form_meta(session, new), "new_scope": new.scope}
            if old is not None:
                result = diff_forms(old.content, new.content)
                order = None
                if result.order is not None:
                    labels = {f.name: f.label for f in form_versions.form_definition(session, new.id).fields}
                    order = tuple("、".join(labels.get(n, n) for n in names) for names in result.order)
                context.update(
                    old=_form_meta(session, old),
                    old_scope=old.scope,
                    same=old.id == new.id,
                    result=result,
                    form_changes=[_form_change(c) for c in result.form],
                    rows=_rows(
                        result.added,
                        result.removed,
                        result.changed,
                        _form_change,
                        lambda key, label: label or key,
                    ),
                    order=order,
                )
        return _page(
            "design_history/form_diff.html",
            422 if errors else 200,
            form_key=form_key,
            sector_code=sector_code,
            scope=scope_of(sector_code),
            scope_name=_scope_name(session, sector_code),
            version_scope=to_scope,
            version_scope_name=_scope_name(session, None if to_scope == NATIONAL_SCOPE else to_scope),
            versions=versions,
            errors=errors,
            selected={
                "from": str(context["old"].version) if "old" in context else request.args.get("from", ""),
                "to": str(context["new"].version) if "new" in context else request.args.get("to", ""),
            },
            **context,
        )


# --- policy profiles -----------------------------------------------------------------------------------


def _profile_meta(session: Session, profile: PolicyProfile, notes: Mapping[int, str | None]) -> Meta:
    return Meta(
        _scope_name(session, profile.sector_code),
        profile.version,
        str(profile.content.get("title") or profile.key),
        _author(session, profile.created_by_id),
        profile.created_at,
        notes.get(profile.version, profile.note),
        profile.content_hash,
    )


def _notes(session: Session, key: str) -> dict[int, str | None]:
    """Each version's note as the editor's 版本记录 shows it (the one given when publishing)."""
    return {row.version: row.note for row in _profile_versions(session, key)}


def _extends(value: object) -> str:
    if isinstance(value, Mapping):
        return f"{value.get('key')} v{value.get('version')}"
    return _shown(value)


class _PolicyShown:
    """Formats policy attributes; value names read as their labels in the document they come from."""

    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old_values = old.get("values") or {}
        self.new_values = new.get("values") or {}

    def _value_name(self, name: object, values: Mapping[str, Any]) -> str:
        if not isinstance(name, str):
            return _shown(name)
        spec = values.get(name) or self.new_values.get(name) or self.old_values.get(name) or {}
        label = spec.get("label") if isinstance(spec, Mapping) else None
        return f"{label}（{name}）" if label else name

    def value(self, name: str, value: Any, values: Mapping[str, Any]) -> str:
        if value is None:
            return "—"
        if name == "unit":
            return _(engine_policy.UNITS.get(str(value), str(value)))
        if name in ("offset_value", "response_value"):
            return _describe(value) if isinstance(value, Mapping) else _shown(value)
        if name in ("offset", "response"):
            return self._value_name(value, values)
        if name == "level":
            return f"L{value}"
        if name == "kind" or name == "template":
            return _(engine_policy.NOTICE_KINDS.get(str(value), str(value)))
        if name == "issuer":
            return _(engine_policy.ISSUER_BODIES.get(str(value), str(value)))
        if name == "issuer_level":
            return _(ISSUER_LEVEL_LABELS.get(str(value), str(value)))
        if name == "recipients" and isinstance(value, list):
            return "、".join(_(engine_policy.RECIPIENTS.get(str(r), str(r))) for r in value) or "—"
        if name == "overrides" and isinstance(value, list):
            return "、".join(self._value_name(v, values) for v in value) or "—"
        if name == "extends":
            return _extends(value)
        return _shown(value)

    def __call__(self, change: AttributeChange) -> FieldChange:
        label = _(POLICY_LABELS[change.name]) if change.name in POLICY_LABELS else change.name
        return FieldChange(
            label,
            self.value(change.name, change.old, self.old_values),
            self.value(change.name, change.new, self.new_values),
        )


def _rung_name(key: str, label: str | None) -> str:
    title = engine_policy.RUNG_KEYS.get(key)
    return _(title) if title else (label or key)


def _trigger_change(change: AttributeChange) -> FieldChange:
    def rung(key: object) -> str:
        return _rung_name(str(key), None) if key else _("不启动督办")

    label = _(engine_policy.TRIGGERS[change.name]) if change.name in engine_policy.TRIGGERS else change.name
    return FieldChange(label, rung(change.old), rung(change.new))


@dataclass(frozen=True, slots=True)
class ValueLine:
    name: str
    label: str
    amount: str
    source: str
    note: str
    own: bool


@dataclass(frozen=True, slots=True)
class RungLine:
    key: str
    title: str
    own: bool
    attributes: list[FieldChange]


@bp.get("/design/policy/versions/<int:version>")
@login_required
@roles_required(*EDITORS)
def policy_version(version: int) -> Response:
    with read_session() as session:
        sector_code = _editor_scope(session)
        key = design.policy_key(session, sector_code)
        profile = engine_policy.get_profile(session, key, version)
        content = profile.content
        base_ref = content.get("extends") or None
        base = None
        if base_ref:
            try:
                base = engine_policy.get_profile(session, base_ref["key"], base_ref["version"])
            except NotFound:
                base = None
        own = set(content.get("overrides") or []) if base_ref else set(content.get("values") or {})
        values = [
            ValueLine(
                name,
                str(spec.get("label") or name),
                _describe(spec),
                str(spec.get("source") or ""),
                str(spec.get("note") or ""),
                name in own,
            )
            for name, spec in sorted(
                (content.get("values") or {}).items(), key=lambda kv: (kv[0] not in own, kv[0])
            )
        ]
        shown = _PolicyShown(content, content)
        base_rungs = ((base.content.get("ladder") or {}).get("rungs") or {}) if base is not None else {}
        ladder = content.get("ladder") or {}
        amounts = content.get("values") or {}
        rungs = []
        for rung_key, spec in sorted(
            (ladder.get("rungs") or {}).items(), key=lambda kv: (kv[1].get("level", 99), kv[0])
        ):
            full = {
                **spec,
                "offset_value": amounts.get(spec.get("offset") or ""),
                "response_value": amounts.get(spec.get("response") or ""),
            }
            rungs.append(
                RungLine(
                    rung_key,
                    f"L{spec.get('level')} {_rung_name(rung_key, spec.get('label'))}",
                    base is None or base_rungs.get(rung_key) != spec,
                    [
                        shown(AttributeChange(name, None, full.get(name)))
                        for name in RUNG_SHOWN
                        if full.get(name) not in (None, "", [])
                    ],
                )
            )
        triggers = [
            _trigger_change(AttributeChange(t, None, k))
            for t, k in sorted((ladder.get("triggers") or {}).items())
        ]
        return _page(
            "design_history/policy_version.html",
            sector_code=sector_code,
            scope=scope_of(sector_code),
            scope_name=_scope_name(session, sector_code),
            key=key,
            meta=_profile_meta(session, profile, _notes(session, key)),
            extends=_extends(base_ref) if base_ref else "",
            inherits=base is not None,
            values=values,
            rungs=rungs,
            triggers=triggers,
        )


@bp.get("/design/policy/diff")
@login_required
@roles_required(*EDITORS)
def policy_diff() -> Response:
    errors: dict[str, list[str]] = {}
    old_number, new_number = _numbers(errors)
    with read_session() as session:
        sector_code = _editor_scope(session)
        key = design.policy_key(session, sector_code)
        versions = list(
            session.scalars(
                select(PolicyProfile).where(PolicyProfile.key == key).order_by(PolicyProfile.version.desc())
            )
        )
        if not versions:
            raise NotFound("策略配置", key)
        context: dict[str, Any] = {}
        if not errors:
            notes = _notes(session, key)
            new = engine_policy.get_profile(session, key, new_number) if new_number else versions[0]
            if old_number is not None:
                old: PolicyProfile | None = engine_policy.get_profile(session, key, old_number)
            else:
                old = engine_policy.get_profile(session, key, new.version - 1) if new.version > 1 else None
            context = {"new": _profile_meta(session, new, notes)}
            if old is not None:
                result = diff_policies(old.content, new.content)
                shown = _PolicyShown(old.content, new.content)
                context.update(
                    old=_profile_meta(session, old, notes),
                    same=old.id == new.id,
                    result=result,
                    profile_changes=[shown(c) for c in result.profile],
                    value_rows=_rows(
                        result.values_added,
                        result.values_removed,
                        result.values_changed,
                        shown,
                        lambda name, label: label or name,
                    ),
                    rung_rows=_rows(
                        result.rungs_added, result.rungs_removed, result.rungs_changed, shown, _rung_name
                    ),
                    trigger_changes=[_trigger_change(c) for c in result.triggers],
                )
        return _page(
            "design_history/policy_diff.html",
            422 if errors else 200,
            sector_code=sector_code,
            scope=scope_of(sector_code),
            scope_name=_scope_name(session, sector_code),
            key=key,
            versions=versions,
            errors=errors,
            selected={
                "from": str(context["old"].version) if "old" in context else request.args.get("from", ""),
                "to": str(context["new"].version) if "new" in context else request.args.get("to", ""),
            },
            **context,
        )
