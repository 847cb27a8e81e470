"""The hazard ledger (台账): filtered, paginated, scoped by the visibility matrix; the hazard file.

Pages, the JSON API and the Excel export all call :func:`search`; nobody writes their own query.
The choosers of the ledger filters and the registration form (:func:`region_choices`,
:func:`enterprise_choices`, :func:`department_choices`, :func:`sector_choices`) live here too,
scoped like the ledger, and so does the diagram of a hazard's loop (:func:`diagram_xml`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from xml.etree import ElementTree

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import load_only

from .access import DEPARTMENT_SCOPED
from .access import REGION_SCOPED
from .access import Actor
from .access import can_see
from .access import hazard_visibility
from .errors import InvalidInput
from .errors import NotFound
from .models import Attachment
from .models import DefinitionBinding
from .models import DefinitionVersion
from .models import Department
from .models import Enterprise
from .models import Event
from .models import ExtensionRequest
from .models import Grade
from .models import Hazard
from .models import HazardSource
from .models import HazardStatus
from .models import InstanceStatus
from .models import ProcessInstance
from .models import Region
from .models import Role
from .models import Sector
from .models import TaskSubmission
from .models import TimerJob
from .models import TimerJobState
from .models import User
from .models import WorkItem
from .models import WorkItemState
from .models.org import ENTERPRISE_ROLES

MAX_PER_PAGE = 200
SORTS = {
    "discovered_at": Hazard.discovered_at,
    "deadline": Hazard.deadline,
    "created_at": Hazard.created_at,
    "number": Hazard.number,
    "escalation_level": Hazard.escalation_level,
}


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Ledger filters (every one optional); dates are business-time calendar dates, inclusive."""

    region_code: str | None = None
    sector_code: str | None = None
    grade: str | None = None
    status: str | None = None
    source: str | None = None
    overdue: bool | None = None
    escalation_level_min: int | None = None
    enterprise_id: int | None = None
    discovered_from: dt.datetime | None = None
    discovered_to: dt.datetime | None = None
    text: str | None = None
    sort: str = "discovered_at"
    descending: bool = True

    def validate(self) -> None:
        """:raises InvalidInput: a filter value outside its enumeration."""
        errors: dict[str, list[str]] = {}
        if self.grade is not None and self.grade not in {g.value for g in Grade}:
            errors["grade"] = ["未知的隐患等级"]
        if self.status is not None and self.status not in {s.value for s in HazardStatus}:
            errors["status"] = ["未知的状态"]
        if self.source is not None and self.source not in {s.value for s in HazardSource}:
            errors["source"] = ["未知的来源"]
        if self.sort not in SORTS:
            errors["sort"] = [f"排序字段必须是 {', '.join(SORTS)} 之一"]
        if self.escalation_level_min is not None and not 0 <= self.escalation_level_min <= 6:
            errors["escalation_level_min"] = ["升级级别必须是 0–6"]
        if self.discovered_from and self.discovered_to and self.discovered_from > self.discovered_to:
            errors["discovered_to"] = ["结束日期不能早于开始日期"]
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Hazard]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _sort_order(column: ColumnElement[object], descending: bool) -> ColumnElement[object]:
    """The ledger's sort: hazards without the value (no deadline yet) last either way, on every
    database (SQLite puts NULLs first and PostgreSQL last by default)."""
    return (column.desc() if descending else column.asc()).nulls_last()


def _filtered(
    session: Session, actor: Actor, filters: LedgerFilter, now: dt.datetime
) -> Select[tuple[Hazard]]:
    filters.validate()
    query = select(Hazard).where(hazard_visibility(actor))
    if filters.region_code:
        path = session.scalar(select(Region.path).where(Region.code == filters.region_code))
        if path is None:
            raise InvalidInput({"region_code": ["地区不存在"]})
        query = query.where(Hazard.region_path.startswith(path, autoescape=True))
    if filters.sector_code:
        query = query.where(Hazard.sector_code == filters.sector_code)
    if filters.grade:
        query = query.where(Hazard.grade == filters.grade)
    if filters.status:
        query = query.where(Hazard.status == filters.status)
    if filters.source:
        query = query.where(Hazard.source == filters.source)
    if filters.enterprise_id is not None:
        query = query.where(Hazard.enterprise_id == filters.enterprise_id)
    if filters.escalation_level_min is not None:
        query = query.where(Hazard.escalation_level >= filters.escalation_level_min)
    if filters.discovered_from is not None:
        query = query.where(Hazard.discovered_at >= filters.discovered_from)
    if filters.discovered_to is not None:
        query = query.where(Hazard.discovered_at <= filters.discovered_to)
    if filters.overdue is not None:
        query = query.where(overdue_clause(now) if filters.overdue else ~overdue_clause(now))
    if filters.text and filters.text.strip():
        pattern = "%" + _LIKE_SPECIALS.sub(r"\\\g<0>", filters.text.strip()) + "%"
        query = query.where(
            or_(
                Hazard.title.ilike(pattern, escape="\\"),
                Hazard.number.ilike(pattern, escape="\\"),
                Hazard.location.ilike(pattern, escape="\\"),
                Hazard.enterprise_id.in_(
                    select(Enterprise.id).where(Enterprise.name.ilike(pattern, escape="\\"))
                ),
            )
        )
    return query


_LIKE_SPECIALS = re.compile(r"[\\%_]")
_FINISHED = (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value)


def overdue_clause(now: dt.datetime) -> ColumnElement[bool]:
    """逾期 in SQL: not closed or voided, and past its deadline or marked overdue by its timer.

    Never NULL (a hazard without a deadline is simply not overdue), so ``~overdue_clause(now)``
    is its exact complement.
    """
    past_deadline = and_(Hazard.deadline.is_not(None), Hazard.deadline < now)
    return and_(Hazard.status.not_in(_FINISHED), or_(past_deadline, Hazard.overdue.is_(True)))


def is_overdue(hazard: Hazard, now: dt.datetime) -> bool:
    """:func:`overdue_clause` for a loaded hazard (the 逾期 badge of pages and exports)."""
    if hazard.status in _FINISHED:
        return False
    return bool(hazard.overdue) or (hazard.deadline is not None and hazard.deadline < now)


def search(
    session: Session,
    actor: Actor,
    filters: LedgerFilter,
    *,
    now: dt.datetime,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """One page of the hazards the actor may see, filtered and sorted.

    :raises InvalidInput: bad filters or paging.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput({"page": [f"页码从 1 开始，每页 1–{MAX_PER_PAGE} 条"]})
    query = _filtered(session, actor, filters, now)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORTS[filters.sort]
    ordered = query.order_by(_sort_order(column, filters.descending), Hazard.id.desc())
    items = session.scalars(
        ordered.options(
            joinedload(Hazard.enterprise), joinedload(Hazard.region), joinedload(Hazard.lead_department)
        )
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(items, total, page, per_page)


def export_rows(
    session: Session, actor: Actor, filters: LedgerFilter, *, now: dt.datetime, limit: int = 50000
) -> Sequence[Hazard]:
    """Every hazard matching the filters (for the Excel export), capped at ``limit``.

    :raises InvalidInput: bad filters.
    """
    filters.validate()
    column = SORTS[filters.sort]
    query = _filtered(session, actor, filters, now).order_by(
        _sort_order(column, filters.descending), Hazard.id.desc()
    )
    return session.scalars(
        query.options(
            joinedload(Hazard.enterprise), joinedload(Hazard.region), joinedload(Hazard.lead_department)
        ).limit(limit)
    ).all()


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts over the whole filtered ledger (not just one page)."""

    total: int
    overdue: int
    major: int
    finished: int


def summary(session: Session, actor: Actor, filters: LedgerFilter, *, now: dt.datetime) -> Summary:
    """How many hazards match, and how many of them are overdue, 重大, or closed/voided.

    :raises InvalidInput: bad filters.
    """
    matching = _filtered(session, actor, filters, now).subquery()
    hazard = select(Hazard.id).where(Hazard.id == matching.c.id)
    row = session.execute(
        select(
            func.count(),
            func.coalesce(
                func.sum(case((matching.c.id.in_(hazard.where(overdue_clause(now))), 1), else_=0)), 0
            ),
            func.coalesce(func.sum(case((matching.c.grade == Grade.MAJOR.value, 1), else_=0)), 0),
            func.coalesce(func.sum(case((matching.c.status.in_(_FINISHED), 1), else_=0)), 0),
        ).select_from(matching)
    ).one()
    return Summary(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


# --- choosers ----------------------------------------------------------------------------------------


def _region_paths(actor: Actor) -> list[str]:
    """The roots of the region subtrees the actor works in (enterprise members: their enterprise's)."""
    paths = sorted({s.region_path for s in actor.scopes if s.region_path})
    # keep only the outermost roots: /34/3418/ covers /34/3418/341821/
    return [p for p in paths if not any(p != q and p.startswith(q) for q in paths)]


def region_choices(session: Session, actor: Actor) -> Sequence[Region]:
    """The regions of the actor's subtrees, in tree order (the ledger's region filter)."""
    paths = _region_paths(actor)
    if not paths:
        return []
    clause = or_(*(Region.path.startswith(p, autoescape=True) for p in paths))
    return session.scalars(select(Region).where(clause).order_by(Region.path)).all()


def _enterprise_clause(actor: Actor) -> ColumnElement[bool]:
    clauses: list[ColumnElement[bool]] = []
    for scope in actor.scopes:
        if scope.role in ENTERPRISE_ROLES:
            if scope.enterprise_id:
                clauses.append(Enterprise.id == scope.enterprise_id)
            continue
        if scope.region_path is None:
            continue
        in_region = Region.path.startswith(scope.region_path, autoescape=True)
        if scope.role in DEPARTMENT_SCOPED:
            clauses.append(and_(in_region, Enterprise.sector_code.in_(sorted(scope.sectors))))
        elif scope.role in REGION_SCOPED or scope.role == Role.TIP_OFFICER:
            clauses.append(in_region)
    return or_(*clauses) if clauses else false()


def enterprise_choices(session: Session, actor: Actor) -> Sequence[Enterprise]:
    """Enterprises the actor may register hazards for, by name.

    The same rules as the visibility matrix (DESIGN §3) applied to the enterprise's region and
    sector: enterprise staff their own enterprise, grid workers, 安委办 and tip officers their
    region subtree, inspectors and reviewers the sectors their department supervises there.
    ``register_hazard`` still checks the hazard itself (a changed sector may leave the scope).
    """
    return session.scalars(
        select(Enterprise)
        .join(Region, Region.id == Enterprise.region_id)
        .where(_enterprise_clause(actor))
        .order_by(Region.path, Enterprise.name)
    ).all()


def department_choices(session: Session, actor: Actor) -> Sequence[Department]:
    """Departments that may lead or co-supervise a hazard the actor registers.

    A department governs the enterprises below its region, so these are the departments in the
    actor's region subtrees and above them (a 市 department may lead a 县 hazard).
    """
    paths = _region_paths(actor)
    if not paths:
        return []
    inside = [Region.path.startswith(p, autoescape=True) for p in paths]
    ancestors = {"/".join(p.split("/")[:i]) + "/" for p in paths for i in range(2, p.count("/"))}
    clause = or_(*inside, Region.path.in_(sorted(ancestors))) if ancestors else or_(*inside)
    return session.scalars(
        select(Department)
        .join(Region, Region.id == Department.region_id)
        .where(clause)
        .order_by(Region.path, Department.name)
    ).all()


def sector_choices(session: Session) -> Sequence[Sector]:
    """Every sector (行业领域), by code."""
    return session.scalars(select(Sector).order_by(Sector.code)).all()


def sector_names(session: Session) -> dict[str, str]:
    return {s.code: s.name for s in sector_choices(session)}


# --- the hazard file ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HazardFile:
    """一患一档: the record and everything recorded about it, as the actor may see it."""

    hazard: Hazard
    events: Sequence[Event]
    open_items: Sequence[WorkItem]
    submissions: Sequence[TaskSubmission]
    attachments: Sequence[Attachment]
    extensions: Sequence[ExtensionRequest]
    completed_task_keys: frozenset[str] = field(default_factory=frozenset)
    #: the hazard's current (latest) process instance; a reopened hazard has older ones too
    instance: ProcessInstance | None = None
    #: every work item of the hazard, over all its instances, in creation order
    work_items: Sequence[WorkItem] = ()
    #: timer jobs of the current loop instance and of the 挂牌督办 track
    timer_jobs: Sequence[TimerJob] = ()
    #: the hazard's latest 挂牌督办 track (processes/supervision.bpmn), if it was ever listed
    supervision: ProcessInstance | None = None
    #: display names of every user the file mentions (actors, submitters, assignees, uploaders)
    user_names: Mapping[int, str] = field(default_factory=dict)
    #: BPMN element id -> name, from the definitions the hazard's instances ran on
    element_names: Mapping[str, str] = field(default_factory=dict)
    sector_name: str | None = None
    #: the hazard's region and its ancestors, province first
    region_chain: Sequence[Region] = ()
    co_departments: Sequence[Department] = ()

    def markers(self, now: dt.datetime, instance: ProcessInstance | None = None) -> dict[str, list[str]]:
        """Diagram markers of the current loop (or ``instance``, e.g. the 挂牌督办 track):
        completed, active and overdue element ids.

        completed: tasks with a completed work item and timers that fired; active: tasks with an
        open work item; overdue: open work items past their due time. An element active again
        (a rectification sent back) is shown active, not completed.
        """
        instance = instance if instance is not None else self.instance
        current = instance.id if instance is not None else None
        items = [w for w in self.work_items if w.instance_id == current]
        active = {w.task_key for w in items if w.state == WorkItemState.OPEN.value}
        overdue = {
            w.task_key
            for w in items
            if w.state == WorkItemState.OPEN.value and w.due_at is not None and w.due_at < now
        }
        completed = {w.task_key for w in items if w.state == WorkItemState.COMPLETED.value}
        completed |= {
            j.timer_key
            for j in self.timer_jobs
            if j.state == TimerJobState.FIRED.value and j.instance_id == current
        }
        if instance is not None and instance.status == InstanceStatus.COMPLETED.value:
            # a finished loop: the end event(s) its last task led to (已销号)
            done = [w for w in items if w.state == WorkItemState.COMPLETED.value and w.completed_at]
            if done:
                last = max(done, key=lambda w: (w.completed_at, w.id))
                version = instance.definition_version
                completed |= set(_end_events_after(version.content_hash, version.bpmn_xml, last.task_key))
        return {
            "completed": sorted(completed - active),
            "active": sorted(active),
            "overdue": sorted(overdue),
        }


def _current_instance(session: Session, hazard_id: int, kind: str = "loop") -> ProcessInstance | None:
    """The hazard's latest loop (or, with ``kind="supervision"``, its latest 挂牌督办 track)."""
    return session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == kind)
        .order_by(ProcessInstance.id.desc())
        .limit(1)
    ).first()


@functools.lru_cache(maxsize=64)
def _names_in(content_hash: str, xml: str) -> Mapping[str, str]:
    """Element id -> name (whitespace collapsed) of every named element of a BPMN document."""
    del content_hash  # the cache key: the same definition version parses once
    names = {}
    for element in ElementTree.fromstring(xml.encode()).iter():
        ident, name = element.get("id"), element.get("name")
        if ident and name:
            names[ident] = " ".join(name.split())
    return names


_BPMN = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"


@functools.lru_cache(maxsize=64)
def _end_events_after(content_hash: str, xml: str, task_key: str) -> tuple[str, ...]:
    """End events reached from ``task_key`` along sequence flows without passing another user task."""
    del content_hash  # the cache key
    root = ElementTree.fromstring(xml.encode())
    kinds: dict[str, str] = {}
    outgoing: dict[str, list[str]] = {}
    for element in root.iter():
        ident = element.get("id")
        tag = element.tag.removeprefix(_BPMN)
        if ident:
            kinds[ident] = tag
        if tag == "sequenceFlow" and element.get("sourceRef") and element.get("targetRef"):
            outgoing.setdefault(element.get("sourceRef", ""), []).append(element.get("targetRef", ""))
    found: list[str] = []
    seen = {task_key}
    todo = list(outgoing.get(task_key, []))
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        kind = kinds.get(node, "")
        if kind == "endEvent":
            found.append(node)
        elif kind != "userTask":
            todo.extend(outgoing.get(node, []))
    return tuple(sorted(found))


def _user_ids(
    events: Sequence[Event],
    items: Sequence[WorkItem],
    submissions: Sequence[TaskSubmission],
    attachments: Sequence[Attachment],
    extensions: Sequence[ExtensionRequest],
    hazard: Hazard,
) -> set[int]:
    ids: set[int] = {hazard.created_by_id} if hazard.created_by_id else set()
    for e in events:
        ids.update(i for i in (e.actor_id, e.payload.get("to_user_id")) if isinstance(i, int))
    for w in items:
        ids.update(i for i in (w.assignee_id, w.completed_by_id) if i)
    ids.update(s.submitted_by_id for s in submissions if s.submitted_by_id)
    ids.update(a.uploaded_by_id for a in attachments if a.uploaded_by_id)
    for x in extensions:
        ids.update(i for i in (x.requested_by_id, x.decided_by_id) if i)
    return ids


def hazard_file(session: Session, actor: Actor, hazard_id: int) -> HazardFile:
    """Load one hazard with its timeline, tasks, submissions, attachments and extension requests.

    :raises NotFound: unknown, or outside the actor's scope.
    """
    hazard = session.get(Hazard, hazard_id)
    if hazard is None or not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    events = session.scalars(select(Event).where(Event.hazard_id == hazard_id).order_by(Event.id)).all()
    items = session.scalars(
        select(WorkItem).where(WorkItem.hazard_id == hazard_id).order_by(WorkItem.id)
    ).all()
    submissions = session.scalars(
        select(TaskSubmission)
        .where(TaskSubmission.hazard_id == hazard_id, TaskSubmission.is_draft.is_(False))
        .order_by(TaskSubmission.id)
    ).all()
    attachments = session.scalars(
        select(Attachment).where(Attachment.hazard_id == hazard_id).order_by(Attachment.id)
    ).all()
    extensions = session.scalars(
        select(ExtensionRequest).where(ExtensionRequest.hazard_id == hazard_id).order_by(ExtensionRequest.id)
    ).all()
    instance = _current_instance(session, hazard_id)
    supervision = _current_instance(session, hazard_id, "supervision")
    runs = [i.id for i in (instance, supervision) if i is not None]
    timer_jobs = (
        session.scalars(select(TimerJob).where(TimerJob.instance_id.in_(runs)).order_by(TimerJob.id)).all()
        if runs
        else []
    )
    element_names: dict[str, str] = {}
    versions = session.scalars(
        select(ProcessInstance).where(ProcessInstance.hazard_id == hazard_id).order_by(ProcessInstance.id)
    ).all()
    for run in versions:
        version = run.definition_version
        element_names.update(_names_in(version.content_hash, version.bpmn_xml))
    ids = _user_ids(events, items, submissions, attachments, extensions, hazard)
    user_names = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(sorted(ids)))).all())
        if ids
        else {}
    )
    codes = [c for c in hazard.region_path.split("/") if c]
    chain = {r.code: r for r in session.scalars(select(Region).where(Region.code.in_(codes)))}
    co_ids = [d.department_id for d in hazard.co_departments]
    return HazardFile(
        hazard=hazard,
        events=events,
        open_items=[w for w in items if w.state == WorkItemState.OPEN.value],
        submissions=submissions,
        attachments=attachments,
        extensions=extensions,
        completed_task_keys=frozenset(w.task_key for w in items if w.state == WorkItemState.COMPLETED.value),
        instance=instance,
        supervision=supervision,
        work_items=items,
        timer_jobs=timer_jobs,
        user_names=user_names,
        element_names=element_names,
        sector_name=session.scalar(select(Sector.name).where(Sector.code == hazard.sector_code)),
        region_chain=[chain[c] for c in codes if c in chain],
        co_departments=session.scalars(
            select(Department).where(Department.id.in_(co_ids)).order_by(Department.id)
        ).all()
        if co_ids
        else [],
    )


def diagram_xml(session: Session, actor: Actor, hazard_id: int, kind: str = "loop") -> str:
    """The BPMN XML of the definition the hazard's current loop (or 挂牌督办 track) runs on.

    :raises NotFound: unknown hazard, outside the actor's scope, or no process instance.
    """
    hazard = session.get(Hazard, hazard_id)
    if hazard is None or not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    instance = _current_instance(session, hazard_id, kind)
    if instance is None:
        raise NotFound("流程实例", hazard_id)
    return instance.definition_version.bpmn_xml


# --- deployed definitions (the JSON API) -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeployedDefinition:
    """A deployed definition version and the bindings that start new hazards on it."""

    version: DefinitionVersion
    bindings: Sequence[DefinitionBinding]
    latest: bool


def deployed_definitions(session: Session) -> list[DeployedDefinition]:
    """Every deployed definition version (newest first per process), without the diagram texts.

    A binding without a pinned version counts for the latest version of its process.
    """
    versions = session.scalars(
        select(DefinitionVersion)
        .options(
            load_only(
                DefinitionVersion.id,
                DefinitionVersion.process_key,
                DefinitionVersion.name,
                DefinitionVersion.version,
                DefinitionVersion.content_hash,
                DefinitionVersion.source_filename,
                DefinitionVersion.deployed_at,
                DefinitionVersion.deployed_by_id,
                DefinitionVersion.note,
            )
        )
        .order_by(DefinitionVersion.process_key, DefinitionVersion.version.desc())
    ).all()
    latest: dict[str, int] = {}
    for version in versions:
        latest.setdefault(version.process_key, version.id)
    bindings = session.scalars(
        select(DefinitionBinding).order_by(DefinitionBinding.grade, DefinitionBinding.sector_code)
    ).all()
    bound: dict[int, list[DefinitionBinding]] = {}
    for binding in bindings:
        target = binding.definition_version_id or latest.get(binding.process_key)
        if target is not None:
            bound.setdefault(target, []).append(binding)
    return [
        DeployedDefinition(v, tuple(bound.get(v.id, ())), latest[v.process_key] == v.id) for v in versions
    ]
