"""Department designs without a programmer: who may edit, shared drafts, publishing, the design log.

A lead department's process administrators (``Role.PROCESS_ADMIN`` in a department whose
``DepartmentSector`` row has ``leads``) edit their sectors' diagrams, task forms and policy
profile; system administrators edit everything, including the national artefacts (sector
``None``). Every artefact has one shared working copy per scope (:class:`~engine.models.DesignDraft`)
whose ``revision`` turns a lost update into a :class:`~engine.errors.Conflict`. Publishing goes
through the same gates as the command line (:func:`engine.definitions.deploy`,
:func:`engine.form_versions.publish_form_version`, :func:`engine.policy.import_policy`) and every
step is written to the design log (:class:`~engine.models.DesignEvent`).

A diagram file holds one *main* process whose id is the process key; other executable processes
in the file travel with it (passengers, e.g. the shared ``hazard_verification``) and must be
called by it through a ``callActivity``. A process belongs to the sector stored on its versions
(``DefinitionVersion.sector_code``; ``None``: national).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo

from lxml import etree
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import bpmn
from . import definitions
from . import form_versions
from . import policy
from .access import Actor
from .calendar import DEFAULT_TIMEZONE
from .clock import Clock
from .clock import SystemClock
from .config import Settings
from .errors import Conflict
from .errors import DefinitionInvalid
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .forms import PLAN_FIELDS
from .forms import FormDefinition
from .forms import parse_form_definition
from .models import DefinitionBinding
from .models import DefinitionVersion
from .models import DesignDraft
from .models import DesignEvent
from .models import FormVersion
from .models import PolicyProfile
from .models import ProcessInstance
from .models import Role
from .models import Sector
from .models import User
from .models import WorkItem
from .models import WorkItemState
from .models.design import NATIONAL_SCOPE
from .models.design import scope_of
from .process_graph import ProcessGraph
from .process_graph import process_graphs

__all__ = [
    "BINDABLE_GRADES",
    "KINDS",
    "PLAN_PRESETS",
    "PLAN_PRESET_LABELS",
    "FormSummary",
    "GateProblem",
    "GateRefused",
    "ProcessSummary",
    "PublishResult",
    "can_edit",
    "check_diagram",
    "check_owner",
    "copy_process_for_sector",
    "copy_sources",
    "design_log",
    "diagram_source",
    "discard_draft",
    "editable_sectors",
    "effective_policy",
    "form_document",
    "form_keys",
    "get_draft",
    "heatmap",
    "known_forms",
    "list_processes",
    "may_edit_national",
    "policy_document",
    "policy_key",
    "process_sector",
    "publish_diagram",
    "publish_form",
    "publish_policy",
    "record_refusal",
    "require_editor",
    "save_draft",
    "user_names",
    "version_usage",
]

KINDS = ("diagram", "form", "policy")
#: grades a publication may bind its process to (突出 runs the general loop: bind ``general``)
BINDABLE_GRADES = ("general", "major", "supervision")
MAX_DRAFT_BYTES = definitions.MAX_BPMN_BYTES
_BPMN_NS = definitions.NS["bpmn"]
_PROCESS_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
_FORM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
_TZ = ZoneInfo(DEFAULT_TIMEZONE)
#: lengths of the definition_version columns a publication fills
_NOTE_MAX = 500
_NAME_MAX = 200
#: attributes that name a process by its id (renamed with the process by :func:`copy_process_for_sector`)
_PROCESS_REFERENCES = ("calledElement", "processRef", "bpmnElement")
#: ids derived from the process id by convention (``Definitions_hazard_general`` …), renamed too
_DI_PREFIXES = frozenset({"Definitions", "BPMNDiagram", "BPMNPlane"})
#: the 重大 plan whose 五落实 columns the principal's sign-off checks (engine.runtime PLAN_ITEMS)
_SIGNOFF_CHECKED_FORMS = frozenset({"governance_plan"})
#: fields of the side-action forms the runtime reads by name (engine.runtime update_progress,
#: request_extension, decide_extension): they stay, required, with their type and option values
_RUNTIME_FIELDS: Mapping[str, tuple[str, ...]] = {
    "progress_update": ("progress_percent",),
    "extension_request": ("requested_due_date", "reason"),
    "extension_decision": ("decision", "opinion"),
}


# --- permissions --------------------------------------------------------------------------------------


def may_edit_national(actor: Actor) -> bool:
    """System administrators alone change national diagrams, forms and the national policy."""
    return Role.SYS_ADMIN in actor.roles


def _lead_sectors(actor: Actor) -> frozenset[str]:
    sectors: set[str] = set()
    for scope in actor.scopes_for([Role.PROCESS_ADMIN]):
        sectors |= scope.lead_sectors
    return frozenset(sectors)


def can_edit(session: Session, actor: Actor, sector_code: str | None) -> bool:
    """May ``actor`` change the designs of ``sector_code`` (``None``: the national ones)?"""
    if may_edit_national(actor):
        return sector_code is None or session.get(Sector, sector_code) is not None
    return sector_code is not None and sector_code in _lead_sectors(actor)


def _sector_label(session: Session, sector_code: str | None) -> str:
    if sector_code is None:
        return "全国通用"
    sector = session.get(Sector, sector_code)
    return sector.name if sector is not None else sector_code


def require_editor(session: Session, actor: Actor, sector_code: str | None) -> None:
    """:raises Forbidden: ``actor`` may not change the designs of ``sector_code``."""
    if can_edit(session, actor, sector_code):
        return
    if sector_code is None:
        raise Forbidden("只有系统管理员可以修改全国通用的流程、表单和策略配置")
    raise Forbidden(
        f"只有牵头负责「{_sector_label(session, sector_code)}」行业的部门流程管理员"
        "可以修改该行业的流程、表单和策略配置"
    )


def editable_sectors(session: Session, actor: Actor) -> list[Sector]:
    """The sectors whose designs ``actor`` may change (every sector for a system administrator)."""
    query = select(Sector).order_by(Sector.code)
    if not may_edit_national(actor):
        query = query.where(Sector.code.in_(sorted(_lead_sectors(actor))))
    return list(session.scalars(query))


def _now(clock: Clock | None) -> dt.datetime:
    return (clock or SystemClock()).now()


def _text_hash(content: str | bytes) -> str:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return hashlib.sha256(data).hexdigest()


def _event(
    session: Session,
    actor: Actor | None,
    *,
    kind: str,
    key: str,
    sector_code: str | None,
    action: str,
    version: int | None = None,
    content_hash: str | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
    clock: Clock | None = None,
) -> DesignEvent:
    entry = DesignEvent(
        kind=kind,
        key=key,
        scope=scope_of(sector_code),
        sector_code=sector_code,
        action=action,
        version=version,
        content_hash=content_hash,
        actor_id=actor.user_id if actor is not None and actor.user_id else None,
        at=_now(clock),
        note=note or None,
        details=dict(details) if details else None,
    )
    session.add(entry)
    session.flush()
    return entry


# --- processes: ownership and listing ----------------------------------------------------------------


def _latest(session: Session, process_key: str) -> DefinitionVersion | None:
    return definitions.latest_version(session, process_key)


def _diagram_draft_sector(session: Session, process_key: str) -> tuple[bool, str | None]:
    row = session.execute(
        select(DesignDraft.sector_code)
        .where(DesignDraft.kind == "diagram", DesignDraft.key == process_key)
        .order_by(DesignDraft.id)
        .limit(1)
    ).first()
    return (row is not None, row[0] if row is not None else None)


def process_sector(session: Session, process_key: str) -> str | None:
    """The sector owning ``process_key``: that of its latest version, else of its draft (a new copy).

    :raises NotFound: the process was never published and has no draft.
    """
    latest = _latest(session, process_key)
    if latest is not None:
        return latest.sector_code
    found, sector_code = _diagram_draft_sector(session, process_key)
    if not found:
        raise NotFound("流程定义", process_key)
    return sector_code


def check_owner(
    session: Session, process_key: str, sector_code: str | None, actor: Actor | None = None
) -> None:
    """:raises Forbidden: ``process_key`` belongs to another sector (or to the national designs).

    A system administrator may move a process to another owner (by publishing it for that sector).
    Saving and publishing check this; a caller checking a diagram for a sector it names checks it too.
    """
    if actor is not None and may_edit_national(actor):
        return
    latest = _latest(session, process_key)
    if latest is not None:
        owner = latest.sector_code
    else:
        found, owner = _diagram_draft_sector(session, process_key)
        if not found:
            return
    if owner != sector_code:
        raise Forbidden(
            f"流程 {process_key} 属于「{_sector_label(session, owner)}」，"
            f"不能以「{_sector_label(session, sector_code)}」的名义修改"
        )


def _managed_keys(session: Session) -> set[str]:
    """Processes managed on their own: bound, owned by a sector, published here, or drafted here.

    The others are passengers of a file (``hazard_verification`` in every sector variant file):
    never listed, never the main process of a publication.
    """
    keys = set(session.scalars(select(DefinitionBinding.process_key).distinct()))
    keys |= set(
        session.scalars(
            select(DefinitionVersion.process_key)
            .where(
                or_(
                    DefinitionVersion.sector_code.is_not(None),
                    DefinitionVersion.source_filename == DefinitionVersion.process_key + ".bpmn",
                )
            )
            .distinct()
        )
    )
    keys |= set(session.scalars(select(DesignDraft.key).where(DesignDraft.kind == "diagram").distinct()))
    return keys


@dataclass(frozen=True, slots=True)
class ProcessSummary:
    """One managed process, for the design overview."""

    process_key: str
    name: str
    sector_code: str | None
    sector_name: str
    latest_version: int | None
    has_draft: bool
    draft_updated_at: dt.datetime | None
    #: binding labels (``major``, ``major/fire``, ``general@341821`` …)
    bindings: list[str]
    #: running instances over all versions
    running: int
    #: draft revision (None: no draft)
    draft_revision: int | None = None
    editable: bool = True


def _summaries(
    session: Session, keys: Iterable[str], editable: set[str | None] | None
) -> list[ProcessSummary]:
    keys = sorted(set(keys))
    if not keys:
        return []
    newest = (
        select(DefinitionVersion.process_key, func.max(DefinitionVersion.version).label("version"))
        .where(DefinitionVersion.process_key.in_(keys))
        .group_by(DefinitionVersion.process_key)
        .subquery()
    )
    latest = {
        row.process_key: row
        for row in session.execute(
            select(
                DefinitionVersion.process_key,
                DefinitionVersion.name,
                DefinitionVersion.version,
                DefinitionVersion.sector_code,
            ).join(
                newest,
                and_(
                    DefinitionVersion.process_key == newest.c.process_key,
                    DefinitionVersion.version == newest.c.version,
                ),
            )
        )
    }
    drafts: dict[str, DesignDraft] = {}
    for draft in session.scalars(
        select(DesignDraft).where(DesignDraft.kind == "diagram", DesignDraft.key.in_(keys))
    ):
        drafts.setdefault(draft.key, draft)
    bound: dict[str, list[str]] = {}
    for binding in session.scalars(select(DefinitionBinding).where(DefinitionBinding.process_key.in_(keys))):
        bound.setdefault(binding.process_key, []).append(definitions.binding_label(binding))
    running = dict(
        session.execute(
            select(DefinitionVersion.process_key, func.count(ProcessInstance.id))
            .join(ProcessInstance, ProcessInstance.definition_version_id == DefinitionVersion.id)
            .where(DefinitionVersion.process_key.in_(keys), ProcessInstance.status == "running")
            .group_by(DefinitionVersion.process_key)
        ).all()
    )
    names = dict(session.execute(select(Sector.code, Sector.name)).all())
    summaries = []
    for key in keys:
        row, draft = latest.get(key), drafts.get(key)
        if row is not None:
            sector_code, name = row.sector_code, row.name
        elif draft is not None:
            sector_code, name = draft.sector_code, _draft_process_name(draft, key)
        else:
            continue
        if editable is not None and sector_code not in editable:
            continue
        summaries.append(
            ProcessSummary(
                process_key=key,
                name=name,
                sector_code=sector_code,
                sector_name=names.get(sector_code, sector_code) if sector_code else "全国通用",
                latest_version=row.version if row is not None else None,
                has_draft=draft is not None,
                draft_updated_at=draft.updated_at if draft is not None else None,
                bindings=sorted(bound.get(key, [])),
                running=int(running.get(key, 0)),
                draft_revision=draft.revision if draft is not None else None,
                editable=editable is not None,
            )
        )
    summaries.sort(key=lambda s: (s.sector_code is not None, s.sector_code or "", s.process_key))
    return summaries


def _draft_process_name(draft: DesignDraft, key: str) -> str:
    try:
        root = definitions._parse_xml(draft.content.encode("utf-8"))
    except DefinitionInvalid:
        return key
    for process in root.iterfind("bpmn:process", definitions.NS):
        if process.get("id") == key:
            return str(process.get("name") or key)
    return key


def list_processes(session: Session, actor: Actor) -> list[ProcessSummary]:
    """The processes ``actor`` may edit (national ones for a system administrator), with drafts.

    Processes that only travel in another process's file (``hazard_verification``) are not listed.
    """
    editable: set[str | None] = set(_lead_sectors(actor))
    if may_edit_national(actor):
        editable |= {None} | set(session.scalars(select(Sector.code)))
    if not editable:
        return []
    return _summaries(session, _managed_keys(session), editable)


def copy_sources(session: Session) -> list[ProcessSummary]:
    """The national processes (the default loops), read-only: what a sector may copy."""
    keys = {
        key
        for key in _managed_keys(session)
        if (latest := _latest(session, key)) is not None and latest.sector_code is None
    }
    return [s for s in _summaries(session, keys, None) if s.latest_version is not None]


def version_usage(session: Session, process_key: str) -> dict[int, int]:
    """Running instances per version of ``process_key`` (every version, 0 included)."""
    rows = session.execute(
        select(DefinitionVersion.version, func.count(ProcessInstance.id))
        .outerjoin(
            ProcessInstance,
            and_(
                ProcessInstance.definition_version_id == DefinitionVersion.id,
                ProcessInstance.status == "running",
            ),
        )
        .where(DefinitionVersion.process_key == process_key)
        .group_by(DefinitionVersion.version)
    )
    return {int(version): int(count) for version, count in rows}


def heatmap(session: Session, definition_version_id: int, now: dt.datetime) -> dict[str, dict[str, int]]:
    """Open work items of the instances on one version, by BPMN element id.

    ``{"rectify": {"open": 12, "overdue": 3, "claimed": 5}}``: overdue means ``due_at < now``.
    """
    rows = session.execute(
        select(
            WorkItem.task_key,
            func.count(WorkItem.id),
            func.sum(case((WorkItem.due_at < now, 1), else_=0)),
            func.count(WorkItem.assignee_id),
        )
        .join(ProcessInstance, ProcessInstance.id == WorkItem.instance_id)
        .where(
            ProcessInstance.definition_version_id == definition_version_id,
            WorkItem.state == WorkItemState.OPEN.value,
        )
        .group_by(WorkItem.task_key)
    )
    return {
        key: {"open": int(count), "overdue": int(overdue or 0), "claimed": int(claimed)}
        for key, count, overdue, claimed in rows
    }


# --- drafts -------------------------------------------------------------------------------------------


def get_draft(session: Session, kind: str, key: str, sector_code: str | None) -> DesignDraft | None:
    """The shared working copy of one artefact in one scope."""
    return session.scalars(
        select(DesignDraft).where(
            DesignDraft.kind == kind, DesignDraft.key == key, DesignDraft.scope == scope_of(sector_code)
        )
    ).first()


def _who_when(session: Session, draft: DesignDraft) -> str:
    user = session.get(User, draft.updated_by_id) if draft.updated_by_id is not None else None
    who = user.display_name if user is not None else "系统"
    return f"{who} 于 {draft.updated_at.astimezone(_TZ):%Y-%m-%d %H:%M}"


def _reject_constant(name: str) -> object:
    raise ValueError(f"不支持的数值 {name}")


def _check_content(kind: str, content: str) -> None:
    """Well-formed content of the kind. :raises InvalidInput: with a Chinese message."""
    if not isinstance(content, str):
        raise InvalidInput({"content": ["内容必须是文本"]}, "草稿内容有误")
    size = len(content.encode("utf-8"))
    if size > MAX_DRAFT_BYTES:
        raise InvalidInput({"content": [f"内容过大（{size} 字节，上限 {MAX_DRAFT_BYTES}）"]}, "草稿内容有误")
    if kind == "diagram":
        try:
            root = definitions._parse_xml(content.encode("utf-8"))
        except DefinitionInvalid as exc:
            raise InvalidInput({"xml": [exc.reason]}, "流程图不是合法的 XML") from exc
        if root.tag != f"{{{_BPMN_NS}}}definitions":
            raise InvalidInput(
                {"xml": ["不是 BPMN 2.0 文件（根元素应为 bpmn:definitions）"]}, "流程图格式有误"
            )
        return
    try:
        data = json.loads(content, parse_constant=_reject_constant)
    except ValueError as exc:
        where = f"第 {exc.lineno} 行: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise InvalidInput({"content": [f"不是合法的 JSON（{where}）"]}, "草稿内容有误") from exc
    if not isinstance(data, dict):
        raise InvalidInput({"content": ["必须是 JSON 对象 {…}"]}, "草稿内容有误")


def _check_key(kind: str, key: str) -> None:
    if kind not in KINDS:
        raise InvalidInput({"kind": [f"未知的设计类别，可选: {', '.join(KINDS)}"]})
    pattern = _PROCESS_KEY if kind == "diagram" else _FORM_KEY
    if not isinstance(key, str) or not pattern.match(key):
        raise InvalidInput({"key": ["标识只能由字母、数字和下划线组成，并以字母开头"]})


def _published_version(session: Session, kind: str, key: str, sector_code: str | None) -> int | None:
    if kind == "diagram":
        latest = _latest(session, key)
        return latest.version if latest is not None else None
    if kind == "form":
        return session.scalar(
            select(func.max(FormVersion.version)).where(
                FormVersion.form_key == key, FormVersion.scope == scope_of(sector_code)
            )
        )
    return session.scalar(select(func.max(PolicyProfile.version)).where(PolicyProfile.key == key))


def save_draft(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    key: str,
    sector_code: str | None,
    content: str,
    revision: int | None,
    base_version: int | None = None,
    clock: Clock | None = None,
) -> DesignDraft:
    """Create (``revision`` None) or update the shared draft of one artefact.

    An update names the revision it was based on; if someone saved since, nothing is written.
    A diagram must be well-formed BPMN XML (no DTD), a form or policy a JSON object. A policy
    draft is always kept under the scope's profile key (:func:`policy_key`). Without
    ``base_version`` a new draft records the version now published in its scope.

    :raises Forbidden: not an editor of the sector, or the process belongs to another sector.
    :raises Conflict: a draft exists already (create), or it changed or is gone (update).
    :raises InvalidInput: malformed content or key.
    """
    require_editor(session, actor, sector_code)
    if kind == "policy":
        key = policy_key(session, sector_code)
    _check_key(kind, key)
    if kind == "diagram":
        check_owner(session, key, sector_code, actor)
    _check_content(kind, content)
    now = _now(clock)
    draft = get_draft(session, kind, key, sector_code)
    if revision is None:
        if draft is not None:
            raise Conflict(f"草稿已由 {_who_when(session, draft)} 创建，请重新加载后再修改")
        if base_version is None:
            base_version = _published_version(session, kind, key, sector_code)
        draft = DesignDraft(
            kind=kind,
            key=key,
            scope=scope_of(sector_code),
            sector_code=sector_code,
            content=content,
            base_version=base_version,
            revision=1,
            updated_at=now,
            updated_by_id=actor.user_id or None,
        )
        try:
            with session.begin_nested():
                session.add(draft)
                session.flush()
        except IntegrityError:
            raise Conflict("草稿刚被他人创建，请重新加载后再修改") from None
    else:
        if draft is None:
            raise Conflict("草稿已被丢弃或已发布，请重新加载")
        if draft.revision != revision:
            raise Conflict(f"草稿已被 {_who_when(session, draft)} 修改，请重新加载")
        changes: dict[str, Any] = {
            "content": content,
            "revision": revision + 1,
            "updated_at": now,
            "updated_by_id": actor.user_id or None,
        }
        if base_version is not None:
            changes["base_version"] = base_version
        written = session.execute(
            update(DesignDraft)
            .where(DesignDraft.id == draft.id, DesignDraft.revision == revision)
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        if written.rowcount != 1:  # type: ignore[attr-defined]
            session.expire(draft)
            raise Conflict("草稿刚被他人修改，请重新加载")
        session.expire(draft)
        session.refresh(draft)
    _event(
        session,
        actor,
        kind=kind,
        key=key,
        sector_code=sector_code,
        action="draft_saved",
        version=draft.base_version,
        content_hash=_text_hash(content),
        details={"revision": draft.revision},
        clock=clock,
    )
    return draft


def discard_draft(
    session: Session,
    actor: Actor,
    *,
    kind: str,
    key: str,
    sector_code: str | None,
    revision: int | None,
    clock: Clock | None = None,
) -> None:
    """Throw the shared draft away (``revision`` None: whatever revision it has).

    :raises Forbidden: not an editor of the sector.
    :raises NotFound: there is no draft.
    :raises Conflict: someone saved since ``revision``.
    """
    require_editor(session, actor, sector_code)
    if kind == "policy":
        key = policy_key(session, sector_code)
    draft = get_draft(session, kind, key, sector_code)
    if draft is None:
        raise NotFound("草稿", key)
    if revision is not None and draft.revision != revision:
        raise Conflict(f"草稿已被 {_who_when(session, draft)} 修改，请重新加载")
    content_hash, base, current = _text_hash(draft.content), draft.base_version, draft.revision
    deleted = session.execute(
        delete(DesignDraft)
        .where(DesignDraft.id == draft.id, DesignDraft.revision == current)
        .execution_options(synchronize_session=False)
    )
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("草稿刚被他人修改，请重新加载")
    session.expunge(draft)
    _event(
        session,
        actor,
        kind=kind,
        key=key,
        sector_code=sector_code,
        action="draft_discarded",
        version=base,
        content_hash=content_hash,
        details={"revision": current},
        clock=clock,
    )


def _take_draft(session: Session, kind: str, key: str, sector_code: str | None, revision: int | None) -> None:
    """Delete the draft a publication came from (checking ``revision`` when given)."""
    draft = get_draft(session, kind, key, sector_code)
    if draft is None:
        if revision is not None:
            raise Conflict("草稿已被丢弃或已发布，请重新加载")
        return
    if revision is not None and draft.revision != revision:
        raise Conflict(f"草稿已被 {_who_when(session, draft)} 修改，请重新加载后再发布")
    deleted = session.execute(
        delete(DesignDraft)
        .where(DesignDraft.id == draft.id, DesignDraft.revision == draft.revision)
        .execution_options(synchronize_session=False)
    )
    if deleted.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("草稿刚被他人修改，请重新加载后再发布")
    session.expunge(draft)


# --- publication results and refusals ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GateProblem:
    """One finding of a publish gate: the element (or form field) and what is wrong."""

    element: str | None
    message: str
    severity: Literal["error", "warning"] = "error"

    def as_dict(self) -> dict[str, str | None]:
        return {"element": self.element, "message": self.message, "severity": self.severity}


class GateRefused(DefinitionInvalid):
    """A publication the gate turned down; ``problems`` holds every error and warning found."""

    def __init__(self, problems: Sequence[GateProblem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        first = errors[0] if errors else GateProblem(None, "发布被拒绝")
        super().__init__(first.element, first.message)

    @property
    def errors(self) -> list[GateProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[GateProblem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    kind: str
    key: str
    version: int
    #: False: the content equals the latest version, which is kept
    created: bool
    warnings: list[GateProblem] = field(default_factory=list)


def _problems_of(problems: Sequence[GateProblem] | Mapping[str, Any] | Exception) -> list[GateProblem]:
    if isinstance(problems, GateRefused):
        return problems.problems
    if isinstance(problems, DefinitionInvalid):
        return [GateProblem(problems.element_id, problems.reason)]
    if isinstance(problems, InvalidInput):
        problems = problems.messages
    if isinstance(problems, Exception):
        return [GateProblem(None, str(problems))]
    if isinstance(problems, Mapping):
        found = []
        for where, messages in problems.items():
            items = messages if isinstance(messages, list | tuple) else [messages]
            found.extend(GateProblem(str(where), str(m)) for m in items)
        return found
    return list(problems)


def record_refusal(
    session: Session,
    actor: Actor,
    kind: str,
    key: str,
    sector_code: str | None,
    problems: Sequence[GateProblem] | Mapping[str, Any] | Exception,
    *,
    content_hash: str | None = None,
    note: str | None = None,
    clock: Clock | None = None,
) -> DesignEvent:
    """Log a refused publication (for the web layer, in its own transaction after the rollback).

    ``problems``: gate problems, ``InvalidInput.messages``-style field errors, or the exception.
    """
    found = _problems_of(problems)
    return _event(
        session,
        actor,
        kind=kind,
        key=key,
        sector_code=sector_code,
        action="refused",
        content_hash=content_hash,
        note=note,
        details={
            "errors": [p.as_dict() for p in found if p.severity == "error"],
            "warnings": [p.as_dict() for p in found if p.severity == "warning"],
        },
        clock=clock,
    )


# --- diagrams -----------------------------------------------------------------------------------------

_form_cache: dict[tuple[str, str], FormDefinition] = {}


def _parsed(row: FormVersion) -> FormDefinition:
    cache_key = (row.form_key, row.content_hash)
    found = _form_cache.get(cache_key)
    if found is None:
        found = parse_form_definition(row.content)
        _form_cache[cache_key] = found
    return found


def _latest_form_rows(session: Session, sector_code: str | None) -> dict[tuple[str, str], FormVersion]:
    scopes = [NATIONAL_SCOPE] if sector_code is None else [NATIONAL_SCOPE, sector_code]
    newest = (
        select(FormVersion.form_key, FormVersion.scope, func.max(FormVersion.version).label("version"))
        .where(FormVersion.scope.in_(scopes))
        .group_by(FormVersion.form_key, FormVersion.scope)
        .subquery()
    )
    rows = session.scalars(
        select(FormVersion).join(
            newest,
            and_(
                FormVersion.form_key == newest.c.form_key,
                FormVersion.scope == newest.c.scope,
                FormVersion.version == newest.c.version,
            ),
        )
    )
    return {(row.form_key, row.scope): row for row in rows}


def known_forms(
    session: Session,
    sector_code: str | None,
    *,
    processes_dir: Path | None = None,
    forms: Mapping[str, FormDefinition] | None = None,
) -> dict[str, FormDefinition]:
    """The forms a diagram of ``sector_code`` may name: shipped files, then published versions
    (national, then the sector's) over them."""
    base = (
        forms if forms is not None else definitions.shipped_forms(processes_dir or Settings().processes_dir)
    )
    known = dict(base)
    rows = _latest_form_rows(session, sector_code)
    # national versions first, the sector's over them
    for row in sorted(rows.values(), key=lambda r: r.scope != NATIONAL_SCOPE):
        known[row.form_key] = _parsed(row)
    return known


def _is_executable(process: Any) -> bool:
    return process.get("isExecutable") == "true"


def _called_closure(graphs: Mapping[str, ProcessGraph], main: str) -> set[str]:
    seen, queue = {main}, [main]
    while queue:
        graph = graphs.get(queue.pop())
        if graph is None:
            continue
        for element in graph.elements.values():
            if element.tag == "callActivity" and element.called and element.called not in seen:
                seen.add(element.called)
                queue.append(element.called)
    return seen


def check_diagram(
    session: Session,
    *,
    key: str,
    sector_code: str | None,
    xml: bytes,
    bind_grade: str | None = None,
    forms: Mapping[str, FormDefinition] | None = None,
    processes_dir: Path | None = None,
) -> list[GateProblem]:
    """Run the publish gate on ``xml`` without publishing: errors first, then warnings.

    The file's main process must be executable and have the id ``key``; any other executable
    process must be called by it (a passenger) and must not be a process managed on its own.
    Then :func:`engine.definitions.check_definition` with the forms known to the sector and the
    statutory track of the grades the processes are bound to (and ``bind_grade``), then the
    named policy profiles and the BPMN schema (SpiffWorkflow's parser), as :func:`publish_diagram`
    does. The gate stops at its first error, so at most one error comes from it.
    """
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if len(xml) > definitions.MAX_BPMN_BYTES:
        return [GateProblem(None, f"文件过大（{len(xml)} 字节，上限 {definitions.MAX_BPMN_BYTES}）")]
    try:
        root = definitions._parse_xml(xml)
    except DefinitionInvalid as exc:
        return [GateProblem(exc.element_id, exc.reason)]
    errors: list[GateProblem] = []
    processes = {p.get("id"): p for p in root.iterfind("bpmn:process", definitions.NS)}
    graphs = {graph.process_id: graph for graph in process_graphs(root)}
    executable = [ident for ident, p in processes.items() if _is_executable(p)]
    if key not in processes or not _is_executable(processes[key]):
        errors.append(
            GateProblem(
                executable[0] if executable else None,
                f'文件的主流程 id 必须是 {key}，且为可执行流程 (isExecutable="true")'
                + (f"；文件中的可执行流程: {', '.join(executable)}" if executable else ""),
            )
        )
    else:
        for ident in executable:
            name = processes[ident].get("name") or ""
            if len(name) > _NAME_MAX:
                errors.append(GateProblem(ident, f"流程名称过长（{len(name)} 字，上限 {_NAME_MAX}）"))
        called = _called_closure(graphs, key)
        managed = _managed_keys(session) - {key}
        for ident in executable:
            if ident == key:
                continue
            if ident not in called:
                errors.append(
                    GateProblem(
                        ident,
                        f"可执行流程 {ident} 没有被主流程 {key} 调用：一个文件只发布一个主流程，"
                        "其他可执行流程须由调用活动 (callActivity calledElement) 引用",
                    )
                )
            elif ident in managed:
                errors.append(
                    GateProblem(
                        ident,
                        f"被调用的流程 {ident} 是单独管理（绑定或归属某行业）的流程，"
                        "不能随本文件发布；请改用其他 id",
                    )
                )
    tracks = definitions._bound_tracks(session, list(graphs))
    if bind_grade is not None:
        track = definitions.track_for_grade(bind_grade)
        if track is not None:
            tracks[key] = definitions._strictest(tracks.get(key), track) or track
    known = known_forms(session, sector_code, processes_dir=processes_dir, forms=forms)
    warnings: list[GateProblem] = []
    try:
        found = definitions.check_definition(xml, known, tracks=tracks)
    except DefinitionInvalid as exc:
        errors.append(GateProblem(exc.element_id, exc.reason))
    else:
        warnings = [GateProblem(w.element_id, w.message, "warning") for w in found]
        if not errors:
            try:
                definitions.check_policy_profiles(session, xml, sector_code=sector_code)
                bpmn.parse_bpmn(xml, f"{key}.bpmn")
            except DefinitionInvalid as exc:
                errors.append(GateProblem(exc.element_id, exc.reason))
    return errors + warnings


def diagram_source(session: Session, key: str, sector_code: str | None) -> tuple[str, int | None, int | None]:
    """The diagram to edit: ``(xml, draft revision, base version)`` of the draft if there is
    one, else ``(xml, None, latest version)`` of the latest published version.

    :raises NotFound: neither a draft nor a published version.
    """
    draft = get_draft(session, "diagram", key, sector_code)
    if draft is not None:
        return draft.content, draft.revision, draft.base_version
    latest = _latest(session, key)
    if latest is None:
        raise NotFound("流程定义", key)
    return latest.bpmn_xml, None, latest.version


def copy_process_for_sector(
    session: Session, actor: Actor, *, source_key: str, sector_code: str, clock: Clock | None = None
) -> DesignDraft:
    """Start a sector's own copy of a process as a draft: key ``<source_key>_<sector_code>``.

    The executable process is renamed (its id, and every ``calledElement``, ``processRef`` and
    diagram ``bpmnElement`` naming it; the layout is kept) and its name gets the sector's name.

    :raises Forbidden: not an editor of the sector.
    :raises NotFound: no published source process (or one that only travels in another file).
    :raises Conflict: the new key is taken (published or drafted).
    """
    if sector_code is None:
        raise InvalidInput({"sector": ["请选择要复制到的行业"]})
    require_editor(session, actor, sector_code)
    sector = session.get_one(Sector, sector_code)
    source = _latest(session, source_key)
    if source is None or source_key not in _managed_keys(session):
        raise NotFound("可复制的流程", source_key)
    new_key = f"{source_key}_{sector_code}"
    if not _PROCESS_KEY.match(new_key):
        raise InvalidInput({"source_key": [f"复制后的流程标识 {new_key} 过长或含非法字符"]})
    if _latest(session, new_key) is not None or _diagram_draft_sector(session, new_key)[0]:
        raise Conflict(f"流程 {new_key} 已存在，请直接修改它")
    root = definitions._parse_xml(source.bpmn_xml.encode("utf-8"))
    process = next(
        (p for p in root.iterfind("bpmn:process", definitions.NS) if p.get("id") == source_key), None
    )
    if process is None:
        raise NotFound("可复制的流程", source_key)
    process.set("id", new_key)
    process.set("name", f"{process.get('name') or source.name}（{sector.name}）")
    for node in root.iter():
        for attribute in _PROCESS_REFERENCES:
            if node.get(attribute) == source_key:
                node.set(attribute, new_key)
        ident = node.get("id")
        if ident is not None and ident.endswith(f"_{source_key}") and ident.split("_", 1)[0] in _DI_PREFIXES:
            node.set("id", ident[: -len(source_key)] + new_key)
    content = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8").decode("utf-8")
    draft = DesignDraft(
        kind="diagram",
        key=new_key,
        scope=scope_of(sector_code),
        sector_code=sector_code,
        content=content,
        base_version=None,
        revision=1,
        updated_at=_now(clock),
        updated_by_id=actor.user_id or None,
    )
    try:
        with session.begin_nested():
            session.add(draft)
            session.flush()
    except IntegrityError:
        raise Conflict(f"流程 {new_key} 的草稿刚被他人创建") from None
    _event(
        session,
        actor,
        kind="diagram",
        key=new_key,
        sector_code=sector_code,
        action="draft_saved",
        content_hash=_text_hash(content),
        note=f"复制自 {source_key} v{source.version}",
        details={"revision": 1, "source_key": source_key, "source_version": source.version},
        clock=clock,
    )
    return draft


def suggested_binding(session: Session, key: str, sector_code: str | None, xml: str | bytes) -> str | None:
    """The grade a sector's not-yet-bound process would serve, for the "bind on publish" offer.

    ``None`` when the process is national, already bound anywhere, or its kind (``hazard_general…``
    / ``hazard_major…`` / the ``track`` property) names no loop grade.
    """
    if sector_code is None:
        return None
    if session.scalar(select(DefinitionBinding.id).where(DefinitionBinding.process_key == key).limit(1)):
        return None
    try:
        root = definitions._parse_xml(xml.encode("utf-8") if isinstance(xml, str) else xml)
        graph = next((g for g in process_graphs(root) if g.process_id == key), None)
        track = definitions.process_track(graph) if graph is not None else None
    except DefinitionInvalid:
        return None
    return track if track in ("general", "major") else None


def publish_diagram(
    session: Session,
    actor: Actor,
    *,
    key: str,
    sector_code: str | None,
    xml: bytes,
    note: str | None,
    bind_grade: str | None = None,
    revision: int | None = None,
    clock: Clock | None = None,
    forms: Mapping[str, FormDefinition] | None = None,
    processes_dir: Path | None = None,
) -> PublishResult:
    """Publish a diagram as the next version of ``key``, owned by ``sector_code``.

    Unchanged content keeps the version (``created`` False). The draft is deleted (``revision``,
    when given, must still be the draft's). With ``bind_grade``, new hazards of that grade in
    the sector start on the process, unless the sector already has a binding for the grade
    (then a warning says so; change bindings on the versions page).

    :raises Forbidden: not an editor of the sector, or the process belongs to another sector.
    :raises GateRefused: the gate found errors (a :class:`DefinitionInvalid` with ``problems``).
    :raises Conflict: the draft changed since ``revision``.
    :raises InvalidInput: an unknown ``bind_grade``.
    """
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    require_editor(session, actor, sector_code)
    _check_key("diagram", key)
    check_owner(session, key, sector_code, actor)
    if bind_grade is not None and bind_grade not in BINDABLE_GRADES:
        raise InvalidInput({"bind_grade": [f"只能绑定到 {', '.join(BINDABLE_GRADES)} 之一"]})
    if note is not None and len(note) > _NOTE_MAX:
        raise InvalidInput({"note": [f"发布说明最多 {_NOTE_MAX} 个字"]})
    known = known_forms(session, sector_code, processes_dir=processes_dir, forms=forms)
    problems = check_diagram(
        session, key=key, sector_code=sector_code, xml=xml, bind_grade=bind_grade, forms=known
    )
    if any(p.severity == "error" for p in problems):
        raise GateRefused(problems)
    warnings = [p for p in problems if p.severity == "warning"]
    _take_draft(session, "diagram", key, sector_code, revision)
    content_hash = _text_hash(xml)
    existed = session.scalar(
        select(DefinitionVersion.id).where(
            DefinitionVersion.process_key == key, DefinitionVersion.content_hash == content_hash
        )
    )
    result = definitions.deploy(
        session,
        bpmn_xml=xml,
        filename=f"{key}.bpmn",
        forms=known,
        deployed_by_id=actor.user_id or None,
        note=note or None,
    )
    version = next(v for v in result.versions if v.process_key == key)
    created = existed is None
    version.sector_code = sector_code
    session.flush()
    if not created:
        latest = _latest(session, key)
        if latest is not None and latest.id != version.id:
            warnings.append(
                GateProblem(
                    key,
                    f"内容与已发布的 v{version.version} 相同，未生成新版本；最新版本仍是 v{latest.version}"
                    f"（如需让新隐患改用 v{version.version}，请在版本页面固定绑定）",
                    "warning",
                )
            )
    _event(
        session,
        actor,
        kind="diagram",
        key=key,
        sector_code=sector_code,
        action="published",
        version=version.version,
        content_hash=version.content_hash,
        note=note,
        details={"created": created, "warnings": [w.as_dict() for w in warnings]},
        clock=clock,
    )
    if bind_grade is not None:
        existing = definitions.find_binding(session, grade=bind_grade, sector_code=sector_code)
        if existing is None:
            binding = definitions.bind(
                session,
                grade=bind_grade,
                process_key=key,
                sector_code=sector_code,
                changed_by_id=actor.user_id or None,
                note=note,
            )
            _event(
                session,
                actor,
                kind="diagram",
                key=key,
                sector_code=sector_code,
                action="bound",
                version=version.version,
                content_hash=version.content_hash,
                details={"grade": bind_grade, "binding": definitions.binding_label(binding)},
                clock=clock,
            )
        elif existing.process_key != key:
            warnings.append(
                GateProblem(
                    key,
                    f"该行业的 {definitions.binding_label(existing)} 已绑定到流程 {existing.process_key}，"
                    "未更改；如需改用本流程请在版本页面修改绑定",
                    "warning",
                )
            )
    return PublishResult("diagram", key, version.version, created, warnings)


# --- forms --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormSummary:
    """One task form as a scope sees it: the national and the sector's latest versions."""

    form_key: str
    title: str
    national_version: int | None
    sector_version: int | None
    has_draft: bool
    #: whether the form ships as a file (``processes/forms/<key>.json``)
    shipped: bool = False
    draft_revision: int | None = None


def _draft_title(draft: DesignDraft) -> str | None:
    try:
        data = json.loads(draft.content)
    except ValueError:
        return None
    title = data.get("title") if isinstance(data, dict) else None
    return title if isinstance(title, str) and title.strip() else None


def form_keys(
    session: Session, sector_code: str | None, *, processes_dir: Path | None = None
) -> list[FormSummary]:
    """Every form a scope can edit: shipped files, published versions (national and the
    sector's) and drafts of the scope, by key."""
    shipped = definitions.shipped_forms(processes_dir or Settings().processes_dir)
    rows = _latest_form_rows(session, sector_code)
    drafts = {
        d.key: d
        for d in session.scalars(
            select(DesignDraft).where(DesignDraft.kind == "form", DesignDraft.scope == scope_of(sector_code))
        )
    }
    keys = set(shipped) | {form_key for form_key, _scope in rows} | set(drafts)
    summaries = []
    for form_key in sorted(keys):
        national = rows.get((form_key, NATIONAL_SCOPE))
        own = rows.get((form_key, sector_code)) if sector_code is not None else None
        draft = drafts.get(form_key)
        title = (
            (own.title if own is not None else None)
            or (national.title if national is not None else None)
            or (shipped[form_key].title if form_key in shipped else None)
            or (_draft_title(draft) if draft is not None else None)
            or form_key
        )
        summaries.append(
            FormSummary(
                form_key=form_key,
                title=title,
                national_version=national.version if national is not None else None,
                sector_version=own.version if own is not None else None,
                has_draft=draft is not None,
                shipped=form_key in shipped,
                draft_revision=draft.revision if draft is not None else None,
            )
        )
    return summaries


def _current_form(
    session: Session, form_key: str, sector_code: str | None, processes_dir: Path | None
) -> tuple[dict[str, Any], int | None] | None:
    rows = _latest_form_rows(session, sector_code)
    row = (rows.get((form_key, sector_code)) if sector_code is not None else None) or rows.get(
        (form_key, NATIONAL_SCOPE)
    )
    if row is not None:
        return dict(row.content), row.version
    shipped = definitions.shipped_forms(processes_dir or Settings().processes_dir)
    if form_key in shipped:
        return shipped[form_key].to_dict(), None
    return None


def form_document(
    session: Session, form_key: str, sector_code: str | None, *, processes_dir: Path | None = None
) -> tuple[dict[str, Any], int | None, int | None]:
    """The form to edit: ``(document, draft revision, base version)`` of the scope's draft, else
    ``(document, None, version)`` of the latest version in the scope, else of the national
    version (its version number), else of the shipped file (version None).

    :raises NotFound: no such form anywhere.
    """
    draft = get_draft(session, "form", form_key, sector_code)
    if draft is not None:
        return json.loads(draft.content), draft.revision, draft.base_version
    current = _current_form(session, form_key, sector_code, processes_dir)
    if current is None:
        raise NotFound("表单", form_key)
    document, version = current
    return document, None, version


def _compatibility(form_key: str, current: FormDefinition, new: FormDefinition) -> dict[str, list[str]]:
    """What the running diagrams and the runtime rely on in ``current`` that ``new`` drops."""
    errors: dict[str, list[str]] = {}
    old_fields, new_fields = {f.name: f for f in current.fields}, {f.name: f for f in new.fields}
    for name, variable in current.routing.items():
        where = f"fields.{name}"
        old_field, new_field = old_fields[name], new_fields.get(name)
        if new_field is None:
            errors[where] = [f"字段 {name} 决定流程走向（写入流程变量 {variable}），不能删除"]
            continue
        if new.routing.get(name) != variable:
            errors.setdefault(where, []).append(f"字段 {name} 必须继续写入流程变量 {variable}（routing）")
        if new_field.type != old_field.type:
            errors.setdefault(where, []).append(f"字段 {name} 决定流程走向，类型必须保持为 {old_field.type}")
        old_values = sorted(o.value for o in old_field.options)
        new_values = sorted(o.value for o in new_field.options)
        if old_values != new_values:
            errors.setdefault(where, []).append(
                f"字段 {name} 的选项值必须保持为 {', '.join(old_values)}"
                "（流程图的条件使用这些值；可以修改选项的名称）"
            )
    for name in _RUNTIME_FIELDS.get(form_key, ()):
        where = f"fields.{name}"
        old_field, new_field = old_fields.get(name), new_fields.get(name)
        if old_field is None or where in errors:
            continue
        if new_field is None or not new_field.required or new_field.type != old_field.type:
            errors[where] = [f"系统按字段 {name} 处理该表单：必须保留为必填的 {old_field.type} 字段"]
        elif sorted(o.value for o in old_field.options) != sorted(o.value for o in new_field.options):
            errors[where] = [f"系统按字段 {name} 的选项值处理该表单，选项值不能修改（可以修改选项的名称）"]
    if current.deadline_field is not None and new.deadline_field is None:
        errors[f"fields.{current.deadline_field}"] = [
            "期限字段（date，role 为 deadline）不能删除：它的值是隐患的整改期限"
        ]
    if form_key in _SIGNOFF_CHECKED_FORMS:
        covered_before = {PLAN_FIELDS[f.name] for f in current.fields if f.name in PLAN_FIELDS}
        covered_after = {PLAN_FIELDS[f.name] for f in new.fields if f.name in PLAN_FIELDS}
        for column in sorted(covered_before - covered_after):
            names = [n for n, c in PLAN_FIELDS.items() if c == column]
            errors[f"fields.{names[0]}"] = [
                f"主要负责人签批时检查五落实是否齐全，治理方案必须保留字段 {' 或 '.join(names)}"
            ]
    return errors


def publish_form(
    session: Session,
    actor: Actor,
    *,
    form_key: str,
    sector_code: str | None,
    document: Mapping[str, Any],
    note: str | None,
    revision: int | None = None,
    clock: Clock | None = None,
    processes_dir: Path | None = None,
) -> PublishResult:
    """Publish a form document as the scope's next version of ``form_key`` (new hazards of the
    sector pin it; running ones keep theirs).

    Fields the current form routes on (``routing``) must stay, writing the same variable with
    the same option values; so must the fields the runtime reads from the side-action forms
    (进展, 延期申请, 延期审批); the deadline field must stay; the 重大 plan keeps its 五落实 fields.

    :raises Forbidden: not an editor of the sector.
    :raises InvalidInput: an invalid form (keyed by field) or a dropped field the diagrams use.
    :raises Conflict: the draft changed since ``revision``.
    """
    require_editor(session, actor, sector_code)
    _check_key("form", form_key)
    if not isinstance(document, Mapping):
        raise InvalidInput({"document": ["表单定义必须是 JSON 对象"]}, "表单定义有误")
    doc = dict(document)
    if doc.get("key", form_key) != form_key:
        raise InvalidInput({"key": [f"表单标识必须是 {form_key}"]}, "表单定义有误")
    doc["key"] = form_key
    try:
        new = parse_form_definition(doc)
    except DefinitionInvalid as exc:
        where = exc.element_id or "document"
        if where.startswith(f"{form_key}."):
            where = "fields." + where[len(form_key) + 1 :]
        elif where == form_key:
            where = "document"
        raise InvalidInput({where: [exc.reason]}, "表单定义有误") from exc
    current = _current_form(session, form_key, sector_code, processes_dir)
    if current is not None:
        errors = _compatibility(form_key, parse_form_definition(current[0]), new)
        if errors:
            raise InvalidInput(errors, "表单的修改会影响流程")
    _take_draft(session, "form", form_key, sector_code, revision)
    version, created = form_versions.publish_form_version(
        session,
        form_key=form_key,
        sector_code=sector_code,
        document=doc,
        created_by_id=actor.user_id or None,
        note=note or None,
        clock=clock,
    )
    _event(
        session,
        actor,
        kind="form",
        key=form_key,
        sector_code=sector_code,
        action="published",
        version=version.version,
        content_hash=version.content_hash,
        note=note,
        details={"created": created},
        clock=clock,
    )
    return PublishResult("form", form_key, version.version, created, [])


def _plan_field(name: str, label: str, type_: str, required: bool = True, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "label": label, "type": type_, "required": required}
    spec.update(extra)
    return spec


_DUE_HELP = "整改完成的最后日期，将作为该隐患的整改期限。"
_INTERIM = _plan_field(
    "interim_measures",
    "整改期间防范措施",
    "text",
    False,
    max_length=4000,
    multiline=True,
    help="整改完成前为防止事故发生采取的临时管控措施。",
)


def _plan(title: str, description: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "key": "rectification_plan",
        "title": title,
        "version": 1,
        "description": description,
        "fields": fields,
        "routing": {},
    }


#: the 整改方案 form (``rectification_plan``) as each sector family words it (DOMAIN §1.4), to load
#: into the form editor; every preset keeps ``due_date`` (role deadline) and the field names the
#: runtime copies into the hazard (engine.forms.PLAN_FIELDS)
PLAN_PRESETS: dict[str, dict[str, Any]] = {
    "five_implementations": _plan(
        "整改方案（五落实）",
        "按照责任、措施、资金、期限和应急预案“五落实”要求制定整改方案"
        "（「确保责任、措施、资金、期限和应急预案落实到位」非煤矿山、地勘）。",
        [
            _plan_field("responsible_person", "责任：整改责任人", "person"),
            _plan_field("measures", "措施：整改措施", "text", max_length=4000, multiline=True),
            _plan_field("funds", "资金：整改资金（元）", "money", min=0),
            _plan_field("due_date", "期限：整改期限", "date", role="deadline", help=_DUE_HELP),
            _plan_field("contingency_plan", "应急预案", "text", max_length=4000, multiline=True),
            _INTERIM,
        ],
    ),
    "five_in_place": _plan(
        "整改方案（五到位）",
        "按照责任、措施、时限、资金和预案“五到位”的要求制定整改方案（网格化监管）。",
        [
            _plan_field("responsible_person", "责任到位：整改责任人", "person"),
            _plan_field("measures", "措施到位：整改措施", "text", max_length=4000, multiline=True),
            _plan_field("due_date", "时限到位：整改时限", "date", role="deadline", help=_DUE_HELP),
            _plan_field("funds", "资金到位：整改资金（元）", "money", min=0),
            _plan_field("contingency_plan", "预案到位：应急预案", "text", max_length=4000, multiline=True),
            _INTERIM,
        ],
    ),
    "four_implementations": _plan(
        "整改方案（四落实）",
        "做到整改责任、措施、时限、预案“四落实”（体育场所）。",
        [
            _plan_field("responsible_person", "整改责任人", "person"),
            _plan_field("measures", "整改措施", "text", max_length=4000, multiline=True),
            _plan_field("due_date", "整改时限", "date", role="deadline", help=_DUE_HELP),
            _plan_field("contingency_plan", "应急预案", "text", max_length=4000, multiline=True),
            _INTERIM,
        ],
    ),
    "person_time_measures": _plan(
        "整改措施（定人、定时间、定措施）",
        "落实“定人、定时间、定措施”整改闭环（房屋市政工程）。",
        [
            _plan_field("responsible_person", "定人：整改责任人", "person"),
            _plan_field("due_date", "定时间：整改期限", "date", role="deadline", help=_DUE_HELP),
            _plan_field("measures", "定措施：整改措施", "text", max_length=4000, multiline=True),
            _INTERIM,
        ],
    ),
}
PLAN_PRESET_LABELS: dict[str, str] = {
    "five_implementations": "五落实（责任、措施、资金、期限、应急预案）",
    "five_in_place": "五到位（责任、措施、时限、资金、预案）",
    "four_implementations": "四落实（责任、措施、时限、预案）",
    "person_time_measures": "定人、定时间、定措施",
}


# --- policies -----------------------------------------------------------------------------------------


def _sector_profile(session: Session, sector_code: str | None) -> PolicyProfile | None:
    for profile in policy.latest_profiles(session):
        national = sector_code is None and profile.key == policy.NATIONAL_KEY
        if profile.sector_code == sector_code and profile.region_id is None and (sector_code or national):
            return profile
    return None


def policy_key(session: Session, sector_code: str | None) -> str:
    """The profile key of a scope: ``national``, the key of the sector's profile, else the sector code."""
    if sector_code is None:
        return policy.NATIONAL_KEY
    existing = _sector_profile(session, sector_code)
    return existing.key if existing is not None else sector_code


def _profile_document(session: Session, profile: PolicyProfile) -> dict[str, Any]:
    content = profile.content
    extends = content.get("extends") or None
    base = None
    if extends:
        try:
            base = policy.get_profile(session, extends["key"], extends["version"])
        except NotFound:
            base = None
    all_values = content.get("values", {})
    ladder = content.get("ladder") or {"rungs": {}, "triggers": {}}
    if base is None:
        values = dict(all_values)
        rungs, triggers = dict(ladder.get("rungs", {})), dict(ladder.get("triggers", {}))
    else:
        overrides = content.get("overrides") or []
        values = {name: all_values[name] for name in overrides if name in all_values}
        base_ladder = base.content.get("ladder") or {}
        base_rungs, base_triggers = base_ladder.get("rungs", {}), base_ladder.get("triggers", {})
        rungs = {k: r for k, r in ladder.get("rungs", {}).items() if base_rungs.get(k) != r}
        triggers = {t: k for t, k in ladder.get("triggers", {}).items() if base_triggers.get(t) != k}
    return {
        "key": profile.key,
        "title": content.get("title") or profile.key,
        "sector": profile.sector_code,
        "region": profile.region.code if profile.region is not None else None,
        "extends": extends["key"] if extends else None,
        "note": profile.note,
        "values": values,
        "ladder": {"rungs": rungs, "triggers": triggers},
    }


def policy_document(
    session: Session, sector_code: str | None, *, include_draft: bool = True
) -> tuple[dict[str, Any], int | None, int | None]:
    """The policy profile to edit: ``(document, draft revision, base version)`` of the draft, else
    ``(document, None, version)`` of the scope's profile (a sector's overrides only), else a new
    sector document extending ``national`` (version None). ``include_draft=False``: what is
    published, whatever the draft holds.

    :raises NotFound: an unknown sector, or no national profile.
    """
    key = policy_key(session, sector_code)
    draft = get_draft(session, "policy", key, sector_code) if include_draft else None
    if draft is not None:
        return json.loads(draft.content), draft.revision, draft.base_version
    profile = _sector_profile(session, sector_code)
    if profile is not None:
        return _profile_document(session, profile), None, profile.version
    if sector_code is None:
        raise NotFound("策略配置", policy.NATIONAL_KEY)
    sector = session.get(Sector, sector_code)
    if sector is None:
        raise NotFound("行业", sector_code)
    document = {
        "key": key,
        "title": f"{sector.name}策略配置",
        "sector": sector_code,
        "region": None,
        "extends": policy.NATIONAL_KEY,
        "note": None,
        "values": {},
        "ladder": {"rungs": {}, "triggers": {}},
    }
    return document, None, None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def effective_policy(
    session: Session, sector_code: str | None, document: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What importing the scope's document (``document``, else :func:`policy_document`) would
    store: the values and ladder after inheritance, which names it overrides and which it inherits.

    Malformed entries of a draft are skipped (publishing reports them).
    """
    doc = dict(document) if document is not None else policy_document(session, sector_code)[0]
    base = None
    extends = doc.get("extends")
    if isinstance(extends, str):
        try:
            base = policy.get_profile(session, extends)
        except NotFound:
            base = None
    own_values = _mapping(doc.get("values"))
    values: dict[str, Any] = dict(base.content.get("values", {})) if base is not None else {}
    overrides = []
    for name, spec in own_values.items():
        if isinstance(spec, Mapping):
            values[str(name)] = dict(spec)
            overrides.append(str(name))
    base_ladder = _mapping(base.content.get("ladder")) if base is not None else {}
    rungs, triggers = dict(_mapping(base_ladder.get("rungs"))), dict(_mapping(base_ladder.get("triggers")))
    own_ladder = _mapping(doc.get("ladder"))
    own_rungs, own_triggers = _mapping(own_ladder.get("rungs")), _mapping(own_ladder.get("triggers"))
    rungs.update({str(k): dict(r) for k, r in own_rungs.items() if isinstance(r, Mapping)})
    triggers.update({str(t): k for t, k in own_triggers.items() if isinstance(k, str)})
    return {
        "key": doc.get("key"),
        "extends": {"key": base.key, "version": base.version} if base is not None else None,
        "values": dict(sorted(values.items())),
        "ladder": {"rungs": dict(sorted(rungs.items())), "triggers": dict(sorted(triggers.items()))},
        "overrides": sorted(overrides),
        "inherited": sorted(set(values) - set(overrides)),
        "overridden_rungs": sorted(str(k) for k in own_rungs),
    }


def publish_policy(
    session: Session,
    actor: Actor,
    *,
    sector_code: str | None,
    document: Mapping[str, Any],
    note: str | None,
    revision: int | None = None,
    clock: Clock | None = None,
) -> PublishResult:
    """Import the scope's policy document as its profile's next version (new hazards of the
    sector resolve to it; running ones keep the version they pinned).

    The document's key, sector and region are forced to the scope's (:func:`policy_key`, the
    sector, no region). ``note`` goes to the design log (the document's own ``note`` describes
    the profile).

    :raises Forbidden: not an editor of the sector.
    :raises InvalidInput: the document is refused by :func:`engine.policy.import_policy`.
    :raises Conflict: the draft changed since ``revision``.
    """
    require_editor(session, actor, sector_code)
    if not isinstance(document, Mapping):
        raise InvalidInput({"document": ["策略配置必须是 JSON 对象"]}, "策略配置格式有误")
    key = policy_key(session, sector_code)
    doc = dict(document)
    doc.update({"key": key, "sector": sector_code, "region": None})
    _take_draft(session, "policy", key, sector_code, revision)
    result = policy.import_policy(session, doc, created_by_id=actor.user_id or None, clock=clock)
    warnings = [
        GateProblem(
            dependent,
            f"策略配置 {dependent} 继承自 {key} 的旧版本，需重新发布它才会采用本次修改",
            "warning",
        )
        for dependent in result.stale_dependents
    ]
    _event(
        session,
        actor,
        kind="policy",
        key=key,
        sector_code=sector_code,
        action="published",
        version=result.profile.version,
        content_hash=result.profile.content_hash,
        note=note,
        details={"created": result.created, "stale_dependents": result.stale_dependents},
        clock=clock,
    )
    return PublishResult("policy", key, result.profile.version, result.created, warnings)


# --- the design log -----------------------------------------------------------------------------------


def design_log(
    session: Session,
    *,
    kind: str | None = None,
    key: str | None = None,
    sector_code: str | None = None,
    sectors: Iterable[str | None] | None = None,
    limit: int = 100,
) -> list[DesignEvent]:
    """Design events, newest first; ``sector_code`` filters one sector, ``sectors`` several
    (``None`` in it: the national scope)."""
    query = select(DesignEvent)
    if kind is not None:
        query = query.where(DesignEvent.kind == kind)
    if key is not None:
        query = query.where(DesignEvent.key == key)
    if sector_code is not None:
        query = query.where(DesignEvent.scope == scope_of(sector_code))
    if sectors is not None:
        query = query.where(DesignEvent.scope.in_(sorted({scope_of(s) for s in sectors})))
    return list(session.scalars(query.order_by(DesignEvent.id.desc()).limit(limit)))


def user_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of users (for the design log and draft banners)."""
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())
