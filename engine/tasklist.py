"""Task-list queries over the work_item projection; each is one indexed SQL statement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm import joinedload

from .access import Actor
from .access import actable_clause
from .access import can_act_as
from .access import can_act_as_any
from .access import can_see
from .access import hazard_visibility
from .access import load_actor
from .errors import InvalidInput
from .errors import NotFound
from .models import Attachment
from .models import ExtensionRequest
from .models import ExtensionState
from .models import Grade
from .models import Hazard
from .models import HazardStatus
from .models import Role
from .models import TaskSubmission
from .models import User
from .models import WorkItem
from .models import WorkItemState
from .models.org import ENTERPRISE_ROLES
from .outbox import candidate_user_ids


def _not_separated(actor: Actor):  # type: ignore[no-untyped-def]
    """Leave out tasks the actor may not do because they did the work under review (验收人≠整改人)."""
    done = aliased(WorkItem)
    return ~exists().where(
        done.instance_id == WorkItem.instance_id,
        done.completed_by_id == actor.user_id,
        done.state == WorkItemState.COMPLETED.value,
        WorkItem.separate_from.contains(literal(",") + done.task_key + literal(",")),
    )


def _base() -> Select[tuple[WorkItem]]:
    return (
        select(WorkItem)
        .join(Hazard, Hazard.id == WorkItem.hazard_id)
        .options(contains_eager(WorkItem.hazard))
        .where(WorkItem.state == WorkItemState.OPEN.value)
    )


def my_tasks(session: Session, actor: Actor, *, limit: int = 200) -> Sequence[WorkItem]:
    """Open work items assigned to (claimed by) the actor."""
    query = (
        _base()
        .where(WorkItem.assignee_id == actor.user_id, hazard_visibility(actor))
        .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def group_tasks(
    session: Session, actor: Actor, *, include_claimed: bool = False, limit: int = 200
) -> Sequence[WorkItem]:
    """Open work items for one of the actor's roles within its org scope (unclaimed by default)."""
    query = _base().where(
        actable_clause(actor, WorkItem.candidate_role, WorkItem.org_scope), _not_separated(actor)
    )
    if not include_claimed:
        query = query.where(WorkItem.assignee_id.is_(None))
    query = query.order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id).limit(limit)
    return session.scalars(query).all()


def inbox(session: Session, actor: Actor, *, limit: int = 200) -> Sequence[WorkItem]:
    """Mine plus my groups' unclaimed tasks: what the inbox page shows."""
    query = (
        _base()
        .where(
            or_(
                and_(WorkItem.assignee_id == actor.user_id, hazard_visibility(actor)),
                and_(
                    WorkItem.assignee_id.is_(None),
                    actable_clause(actor, WorkItem.candidate_role, WorkItem.org_scope),
                    _not_separated(actor),
                ),
            )
        )
        .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def overdue_tasks(
    session: Session, actor: Actor, *, now: dt.datetime, limit: int = 500
) -> Sequence[WorkItem]:
    """Open work items past their due time, among the hazards the actor may see."""
    query = (
        _base()
        .where(WorkItem.due_at < now, hazard_visibility(actor))
        .order_by(WorkItem.due_at, WorkItem.id)
        .limit(limit)
    )
    return session.scalars(query).all()


def visible_hazards(session: Session, actor: Actor, *, limit: int = 500) -> Sequence[Hazard]:
    return session.scalars(
        select(Hazard).where(hazard_visibility(actor)).order_by(Hazard.id).limit(limit)
    ).all()


# --- pages and single tasks (the JSON API) -----------------------------------------------------------

#: ``scope`` of :func:`task_page`: claimed by me, or my groups' unclaimed tasks
TASK_SCOPES = ("mine", "group")
MAX_PER_PAGE = 200


@dataclass(frozen=True, slots=True)
class TaskPage:
    items: Sequence[WorkItem]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _scope_where(actor: Actor, scope: str) -> list[ColumnElement[bool]]:
    if scope == "mine":
        return [WorkItem.assignee_id == actor.user_id, hazard_visibility(actor)]
    if scope == "group":
        return [
            WorkItem.assignee_id.is_(None),
            actable_clause(actor, WorkItem.candidate_role, WorkItem.org_scope),
            _not_separated(actor),
        ]
    raise InvalidInput({"scope": [f"必须是 {', '.join(TASK_SCOPES)} 之一"]})


def task_page(session: Session, actor: Actor, *, scope: str, page: int = 1, per_page: int = 50) -> TaskPage:
    """One page of open tasks: ``mine`` (as :func:`my_tasks`) or ``group`` (as :func:`group_tasks`).

    :raises InvalidInput: unknown ``scope`` or bad paging.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput({"page": [f"页码从 1 开始，每页 1–{MAX_PER_PAGE} 条"]})
    where = _scope_where(actor, scope)
    total = session.scalar(
        select(func.count(WorkItem.id))
        .join(Hazard, Hazard.id == WorkItem.hazard_id)
        .where(WorkItem.state == WorkItemState.OPEN.value, *where)
    )
    items = session.scalars(
        _base()
        .where(*where)
        .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return TaskPage(items, total or 0, page, per_page)


def _did_separated_work(session: Session, actor: Actor, item: WorkItem) -> bool:
    """Did the actor complete a task this one must be separated from (验收人不得为整改人)?"""
    keys = [k for k in item.separate_from.split(",") if k]
    if not keys:
        return False
    return (
        session.scalar(
            select(WorkItem.id)
            .where(
                WorkItem.instance_id == item.instance_id,
                WorkItem.task_key.in_(keys),
                WorkItem.state == WorkItemState.COMPLETED.value,
                WorkItem.completed_by_id == actor.user_id,
            )
            .limit(1)
        )
        is not None
    )


# --- the inbox page: tabs, counts, sort and filter ----------------------------------------------

#: inbox tabs: claimed by me, my groups' unclaimed tasks, overdue among what I may see
TABS = ("mine", "group", "overdue")
#: inbox sort keys: due time (soonest first, none last), newest first, hazard number
TASK_SORTS = ("due", "created", "number")
#: roles that decide extension requests (engine.runtime.decide_extension checks the same)
EXTENSION_DECIDERS = (Role.DEPT_REVIEWER, Role.OFFICE_ADMIN)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Filters of the inbox (each optional): hazard grade and status, and a text search."""

    grade: str | None = None
    status: str | None = None
    #: matched (case-insensitively, as a substring) against task title, hazard number, title, location
    text: str | None = None
    sort: str = "due"

    def validate(self) -> None:
        """:raises InvalidInput: a value outside its enumeration."""
        errors: dict[str, list[str]] = {}
        if self.grade is not None and self.grade not in {g.value for g in Grade}:
            errors["grade"] = ["未知的隐患等级"]
        if self.status is not None and self.status not in {s.value for s in HazardStatus}:
            errors["status"] = ["未知的状态"]
        if self.sort not in TASK_SORTS:
            errors["sort"] = [f"排序方式必须是 {', '.join(TASK_SORTS)} 之一"]
        if self.text is not None and len(self.text) > 100:
            errors["q"] = ["搜索内容不能超过 100 个字符"]
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class Inbox:
    """One tab of the inbox, the item count of every tab (same filters) and pending extensions."""

    tab: str
    items: Sequence[WorkItem]
    counts: Mapping[str, int]
    #: pending extension requests this actor may decide (reviewers, 安委办), oldest first
    extensions: Sequence[tuple[ExtensionRequest, Hazard]]
    #: display names of the items' assignees by user id
    assignees: Mapping[int, str]
    #: the tab has more items than ``items`` holds
    truncated: bool = False


def _tab_clause(actor: Actor, tab: str, now: dt.datetime) -> ColumnElement[bool]:
    if tab == "mine":
        return and_(WorkItem.assignee_id == actor.user_id, hazard_visibility(actor))
    if tab == "group":
        return and_(
            WorkItem.assignee_id.is_(None),
            actable_clause(actor, WorkItem.candidate_role, WorkItem.org_scope),
            _not_separated(actor),
        )
    return and_(WorkItem.due_at < now, hazard_visibility(actor))


def _filter_clauses(filters: TaskFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.grade:
        clauses.append(Hazard.grade == filters.grade)
    if filters.status:
        clauses.append(Hazard.status == filters.status)
    text = (filters.text or "").strip()
    if text:
        clauses.append(
            or_(
                WorkItem.title.icontains(text, autoescape=True),
                Hazard.number.icontains(text, autoescape=True),
                Hazard.title.icontains(text, autoescape=True),
                Hazard.location.icontains(text, autoescape=True),
            )
        )
    return clauses


def _task_order(sort: str) -> tuple[Any, ...]:
    if sort == "created":
        return (WorkItem.created_at.desc(), WorkItem.id.desc())
    if sort == "number":
        return (Hazard.number, WorkItem.id)
    return (WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)


def task_inbox(
    session: Session,
    actor: Actor,
    *,
    tab: str | None = None,
    filters: TaskFilter | None = None,
    now: dt.datetime,
    limit: int = 200,
) -> Inbox:
    """The inbox page: one tab's open work items (sorted, filtered) and every tab's count.

    ``tab=None`` picks ``mine``, or ``group`` when nothing is claimed but something waits there.

    :raises InvalidInput: an unknown tab, sort key, grade or status.
    """
    filters = filters or TaskFilter()
    filters.validate()
    if tab is not None and tab not in TABS:
        raise InvalidInput({"tab": [f"必须是 {', '.join(TABS)} 之一"]})
    where = _filter_clauses(filters)
    counts = {
        name: session.scalar(
            select(func.count(WorkItem.id))
            .join(Hazard, Hazard.id == WorkItem.hazard_id)
            .where(WorkItem.state == WorkItemState.OPEN.value, _tab_clause(actor, name, now), *where)
        )
        or 0
        for name in TABS
    }
    if tab is None:
        tab = "group" if counts["mine"] == 0 and counts["group"] > 0 else "mine"
    items = session.scalars(
        _base()
        .options(contains_eager(WorkItem.hazard).joinedload(Hazard.enterprise))
        .where(_tab_clause(actor, tab, now), *where)
        .order_by(*_task_order(filters.sort))
        .limit(limit)
    ).all()
    extensions = pending_extensions(session, actor)
    assignee_ids = {i.assignee_id for i in items if i.assignee_id is not None}
    assignees = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(assignee_ids))).all())
        if assignee_ids
        else {}
    )
    return Inbox(tab, items, counts, extensions, assignees, truncated=counts[tab] > len(items))


def pending_extensions(
    session: Session, actor: Actor, *, limit: int = 200
) -> list[tuple[ExtensionRequest, Hazard]]:
    """Pending extension requests the actor may decide (a lead reviewer or 安委办 in scope)."""
    if not actor.roles & set(EXTENSION_DECIDERS):
        return []
    rows = session.execute(
        select(ExtensionRequest, Hazard)
        .join(Hazard, Hazard.id == ExtensionRequest.hazard_id)
        .where(ExtensionRequest.state == ExtensionState.PENDING.value, hazard_visibility(actor))
        .options(joinedload(Hazard.co_departments), joinedload(Hazard.enterprise))
        .order_by(ExtensionRequest.requested_at, ExtensionRequest.id)
        .limit(limit)
    ).unique()
    return [(r, h) for r, h in rows if can_act_as_any(actor, EXTENSION_DECIDERS, h)]


# --- one task, and who may take it ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HazardActions:
    """Which actions beside the happy path this actor may take on a hazard (the engine re-checks)."""

    hazard: Hazard
    #: the pending extension request, if any (at most one is pending at a time)
    pending_extension: ExtensionRequest | None
    progress: bool = False
    request_extension: bool = False
    decide_extension: bool = False
    record_violation: bool = False
    void: bool = False
    reopen: bool = False

    @property
    def any(self) -> bool:
        return any(
            (
                self.progress,
                self.request_extension,
                self.decide_extension,
                self.record_violation,
                self.void,
                self.reopen,
            )
        )


def _actions_for(session: Session, actor: Actor, hazard: Hazard) -> HazardActions:
    pending = session.scalars(
        select(ExtensionRequest).where(
            ExtensionRequest.hazard_id == hazard.id, ExtensionRequest.state == ExtensionState.PENDING.value
        )
    ).first()
    finished = hazard.status in (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value)
    enterprise_side = any(can_act_as(actor, r, hazard) for r in ENTERPRISE_ROLES)
    supervising = can_act_as_any(actor, EXTENSION_DECIDERS, hazard)
    return HazardActions(
        hazard=hazard,
        pending_extension=pending,
        progress=not finished and enterprise_side,
        request_extension=(
            not finished and enterprise_side and hazard.deadline is not None and pending is None
        ),
        decide_extension=pending is not None and supervising,
        record_violation=not finished
        and can_act_as_any(actor, (*EXTENSION_DECIDERS, Role.INSPECTOR), hazard),
        void=not finished and supervising,
        reopen=finished and supervising,
    )


def hazard_actions(session: Session, actor: Actor, hazard_id: int) -> HazardActions:
    """The hazard and the side actions the actor may take on it.

    :raises NotFound: unknown hazard, or outside the actor's scope.
    """
    hazard = session.get(Hazard, hazard_id, options=[joinedload(Hazard.enterprise)])
    if hazard is None or not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    return _actions_for(session, actor, hazard)


def extension_detail(
    session: Session, actor: Actor, request_id: int
) -> tuple[ExtensionRequest, HazardActions]:
    """An extension request with its hazard's actions (``decide_extension``: may decide it).

    :raises NotFound: unknown request, or its hazard is outside the actor's scope.
    """
    request = session.get(ExtensionRequest, request_id)
    if request is None:
        raise NotFound("延期申请", request_id)
    hazard = session.get_one(Hazard, request.hazard_id)
    if not can_see(actor, hazard):
        raise NotFound("延期申请", request_id)
    return request, _actions_for(session, actor, hazard)


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """Everything the task page shows about one work item, as one actor (``viewer_id``) sees it."""

    item: WorkItem
    hazard: Hazard
    viewer_id: int
    #: holds the task's role in scope and did not do the work under review (验收人≠整改人)
    may_act: bool
    assignee_name: str | None
    completed_by_name: str | None
    #: the viewer's saved draft of the form, if any
    draft: TaskSubmission | None
    #: the completed submission (once the task is done)
    submission: TaskSubmission | None
    #: every attachment of the hazard by id (photo fields show theirs; before photos for reference)
    attachments: Mapping[int, Attachment]
    actions: HazardActions

    @property
    def is_open(self) -> bool:
        return self.item.state == WorkItemState.OPEN.value

    @property
    def claimed_by_me(self) -> bool:
        return self.item.assignee_id is not None and self.item.assignee_id == self.viewer_id

    @property
    def claimed_by_other(self) -> bool:
        return self.item.assignee_id is not None and self.item.assignee_id != self.viewer_id

    @property
    def can_claim(self) -> bool:
        return self.is_open and self.may_act and self.item.assignee_id is None

    @property
    def can_release(self) -> bool:
        return self.is_open and self.claimed_by_me

    @property
    def can_complete(self) -> bool:
        return self.is_open and self.may_act and not self.claimed_by_other

    @property
    def can_delegate(self) -> bool:
        return self.can_complete and self.item.delegable

    @property
    def before_photos(self) -> list[Attachment]:
        return [a for a in self.attachments.values() if a.phase == "before"]


def _did_work_under_review(session: Session, actor: Actor, item: WorkItem) -> bool:
    """Did the actor complete a task ``item`` must be separated from (验收人不得为整改人)?"""
    keys = [k for k in item.separate_from.split(",") if k]
    if not keys:
        return False
    done = session.scalar(
        select(WorkItem.id)
        .where(
            WorkItem.instance_id == item.instance_id,
            WorkItem.task_key.in_(keys),
            WorkItem.state == WorkItemState.COMPLETED.value,
            WorkItem.completed_by_id == actor.user_id,
        )
        .limit(1)
    )
    return done is not None


def may_act_on(session: Session, actor: Actor, item: WorkItem, hazard: Hazard) -> bool:
    """May ``actor`` do ``item`` (role in scope, not separated)? Claims are not considered."""
    if not can_act_as(actor, item.candidate_role, hazard, org_scope=item.org_scope):
        return False
    return not _did_work_under_review(session, actor, item)


def task_detail(session: Session, actor: Actor, work_item_id: int) -> TaskDetail:
    """One work item (open or done) with its hazard, the actor's draft and the hazard's attachments.

    :raises NotFound: unknown work item, or its hazard is outside the actor's scope.
    """
    item = session.get(WorkItem, work_item_id)
    if item is None:
        raise NotFound("任务", work_item_id)
    hazard = session.get_one(Hazard, item.hazard_id, options=[joinedload(Hazard.co_departments)])
    if not can_see(actor, hazard):
        raise NotFound("任务", work_item_id)
    submissions = session.scalars(
        select(TaskSubmission)
        .where(TaskSubmission.work_item_id == item.id)
        .order_by(TaskSubmission.submitted_at.desc(), TaskSubmission.id.desc())
    ).all()
    draft = next((s for s in submissions if s.is_draft and s.submitted_by_id == actor.user_id), None)
    done = next((s for s in submissions if not s.is_draft), None)
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(
                User.id.in_([i for i in (item.assignee_id, item.completed_by_id) if i is not None])
            )
        ).all()
    )
    attachments = session.scalars(
        select(Attachment).where(Attachment.hazard_id == hazard.id).order_by(Attachment.id)
    ).all()
    return TaskDetail(
        item=item,
        hazard=hazard,
        viewer_id=actor.user_id,
        may_act=item.state == WorkItemState.OPEN.value and may_act_on(session, actor, item, hazard),
        assignee_name=names.get(item.assignee_id) if item.assignee_id is not None else None,
        completed_by_name=names.get(item.completed_by_id) if item.completed_by_id is not None else None,
        draft=draft,
        submission=done,
        attachments={a.id: a for a in attachments},
        actions=_actions_for(session, actor, hazard),
    )


# --- the work under review, and why a task was sent back ----------------------------------------------

#: forms of the decision tasks (验收, 销号审核, 监管审查, 效果评估, 签批): their page shows the work under
#: review (:func:`evidence_for`)
DECISION_FORMS = frozenset(
    {"verify", "closure_review", "regulator_review", "evaluation", "principal_signoff"}
)
#: form field -> the value of it that sends the work back (驳回, 不通过, 评估不合格)
REJECTING_VALUES = {"decision": "reject", "conclusion": "fail"}
#: the fields holding a rejection's reason, first non-empty wins
REASON_FIELDS = ("opinion", "reason", "note")


@dataclass(frozen=True, slots=True)
class EvidenceEntry:
    """The latest completed submission of one earlier task of the round."""

    item: WorkItem
    submission: TaskSubmission
    submitted_by: str


@dataclass(frozen=True, slots=True)
class Rejection:
    """The latest submission that sent the work back (驳回/不通过), with its reason."""

    item: WorkItem
    submission: TaskSubmission
    reason: str
    by: str

    @property
    def at(self) -> dt.datetime:
        return self.submission.submitted_at


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a task page shows beside the form: the work under review and why it came back."""

    #: decision tasks: the latest submission of each earlier task in this round, newest first
    entries: Sequence[EvidenceEntry] = ()
    #: the attachments the entries name, by id
    attachments: Mapping[int, Attachment] = field(default_factory=dict)
    #: a task done again (a rework): the latest rejecting submission since it was last done
    rejection: Rejection | None = None


def is_rejection(submission: TaskSubmission) -> bool:
    data = submission.data or {}
    return any(data.get(name) == value for name, value in REJECTING_VALUES.items())


def evidence_for(session: Session, work_item: WorkItem) -> Evidence:
    """The work under review on a decision task, and why a reworked task was sent back.

    A round starts after the task (``work_item.task_key``) was last completed in the same process
    instance (or at the instance's start). ``entries`` (decision forms only, :data:`DECISION_FORMS`):
    the latest completed submission of every other task of the round, newest first.
    ``rejection`` (work, not decision, tasks): when the task was done before in this instance, the
    latest rejecting submission after that (e.g. 销号审核 驳回 sending 限期整改 back); a decision
    task shows such a rejection among its entries instead. One query for the history, one for names
    and attachments each. Callers check visibility first (:func:`task_detail`).
    """
    rows = session.execute(
        select(TaskSubmission, WorkItem)
        .join(WorkItem, WorkItem.id == TaskSubmission.work_item_id)
        .where(
            WorkItem.instance_id == work_item.instance_id,
            WorkItem.id < work_item.id,
            WorkItem.state == WorkItemState.COMPLETED.value,
            TaskSubmission.is_draft.is_(False),
        )
        .order_by(WorkItem.id, TaskSubmission.id)
    ).all()
    previous = [i for i, (_, w) in enumerate(rows) if w.task_key == work_item.task_key]
    since = rows[previous[-1] + 1 :] if previous else rows
    latest: dict[str, tuple[TaskSubmission, WorkItem]] = {}
    if work_item.form_key in DECISION_FORMS:
        for sub, item in since:
            latest[item.task_key] = (sub, item)
    rejecting = (
        next(((s, w) for s, w in reversed(since) if is_rejection(s)), None)
        if previous and work_item.form_key not in DECISION_FORMS
        else None
    )
    picked = sorted(latest.values(), key=lambda pair: (pair[1].id, pair[0].id), reverse=True)
    ids = {s.submitted_by_id for s, _ in picked if s.submitted_by_id}
    if rejecting is not None and rejecting[0].submitted_by_id:
        ids.add(rejecting[0].submitted_by_id)
    names = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(sorted(ids)))).all())
        if ids
        else {}
    )
    attachment_ids = sorted(
        {
            v
            for s, _ in picked
            for value in (s.data or {}).values()
            if isinstance(value, list)
            for v in value
            if isinstance(v, int) and not isinstance(v, bool)
        }
    )
    attachments = (
        {
            a.id: a
            for a in session.scalars(
                select(Attachment).where(
                    Attachment.id.in_(attachment_ids), Attachment.hazard_id == work_item.hazard_id
                )
            )
        }
        if attachment_ids
        else {}
    )
    rejection = None
    if rejecting is not None:
        sub, item = rejecting
        data = sub.data or {}
        reason = next((str(data[k]).strip() for k in REASON_FIELDS if str(data.get(k) or "").strip()), "")
        rejection = Rejection(item, sub, reason, names.get(sub.submitted_by_id or 0, ""))
    entries = [EvidenceEntry(w, s, names.get(s.submitted_by_id or 0, "")) for s, w in picked]
    return Evidence(entries, attachments, rejection)


def candidates_for(session: Session, work_item: WorkItem) -> list[User]:
    """Active users who may act on ``work_item``: its role in scope, not separated from it.

    The choice offered when delegating (转办); :func:`engine.runtime.delegate` re-checks it.
    """
    hazard = session.get_one(Hazard, work_item.hazard_id, options=[joinedload(Hazard.co_departments)])
    ids = candidate_user_ids(session, hazard, work_item.candidate_role, work_item.org_scope)
    users = []
    for user in session.scalars(select(User).where(User.id.in_(ids)).order_by(User.display_name, User.id)):
        actor = load_actor(session, user.id)
        if may_act_on(session, actor, work_item, hazard):
            users.append(user)
    return users
