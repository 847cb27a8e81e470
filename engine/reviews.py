"""The review queue of the supervising departments: 销号审核, 监管审查 and pending 延期申请.

A department reviewer sees the open review work items they may act on (the forms in
:data:`REVIEW_FORMS`, scoped like the task list: their department leads the hazard) and the
extension requests they may decide; a 安委办 sees the review items of its region as well, to chase
the slow ones, without acting on them. Decisions go through :func:`engine.runtime.complete` and
:func:`engine.runtime.decide_extension`, with the form filled from a decision and an opinion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm import joinedload

from . import runtime
from .access import Actor
from .access import actable_clause
from .access import can_act_as_any
from .access import hazard_visibility
from .errors import InvalidInput
from .errors import NotFound
from .models import Attachment
from .models import ExtensionRequest
from .models import ExtensionState
from .models import Hazard
from .models import TaskSubmission
from .models import User
from .models import WorkItem
from .models import WorkItemState
from .runtime import EngineContext

#: the forms of the department-side closure decisions (一般: 销号审核; 重大: 监管部门现场审查)
REVIEW_FORMS = ("closure_review", "regulator_review")
#: form keys whose latest submission the queue shows as the facts behind a review
FACT_FORMS = ("fix_on_spot", "rectify", "govern", "verify", "evaluation", "closure_application")
DECISIONS = ("pass", "reject")
EXTENSION_DECISIONS = ("approve", "deny")
DEFAULT_OPINIONS = {
    "closure_review": "资料齐全，整改到位，同意销号",
    "regulator_review": "现场审查合格，同意核销",
    "approve": "同意延期",
}


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    #: review work items the actor may decide, earliest due first
    items: Sequence[WorkItem]
    #: review work items the actor may see but not decide (安委办 chasing its region)
    watching: Sequence[WorkItem]
    #: pending extension requests the actor may decide
    extensions: Sequence[ExtensionRequest]
    #: hazard id -> form key -> the latest submission of that form (the facts of the review)
    facts: Mapping[int, Mapping[str, TaskSubmission]] = field(default_factory=dict)
    #: display names of the users the queue mentions
    user_names: Mapping[int, str] = field(default_factory=dict)
    #: the hazards of the extension requests, by id
    hazards: Mapping[int, Hazard] = field(default_factory=dict)
    #: the attachments the facts name (整改后照片, 验收照片, 申请材料), by id
    attachments: Mapping[int, Attachment] = field(default_factory=dict)


def _review_items(session: Session, where: object, *, limit: int) -> Sequence[WorkItem]:
    return session.scalars(
        select(WorkItem)
        .join(Hazard, Hazard.id == WorkItem.hazard_id)
        .options(
            contains_eager(WorkItem.hazard).joinedload(Hazard.enterprise),
            contains_eager(WorkItem.hazard).joinedload(Hazard.lead_department),
        )
        .where(
            WorkItem.state == WorkItemState.OPEN.value,
            WorkItem.form_key.in_(REVIEW_FORMS),
            where,  # type: ignore[arg-type]
        )
        .order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id)
        .limit(limit)
    ).all()


def review_queue(session: Session, actor: Actor, *, limit: int = 200) -> ReviewQueue:
    """What waits for the actor's decision, and (for 安委办) what waits in their region."""
    actable = and_(
        actable_clause(actor, WorkItem.candidate_role, WorkItem.org_scope),
        or_(WorkItem.assignee_id.is_(None), WorkItem.assignee_id == actor.user_id),
    )
    items = _review_items(session, actable, limit=limit)
    mine = {w.id for w in items}
    watching = [w for w in _review_items(session, hazard_visibility(actor), limit=limit) if w.id not in mine]
    pending = session.scalars(
        select(ExtensionRequest)
        .join(Hazard, Hazard.id == ExtensionRequest.hazard_id)
        .where(ExtensionRequest.state == ExtensionState.PENDING.value, hazard_visibility(actor))
        .order_by(ExtensionRequest.requested_at, ExtensionRequest.id)
        .limit(limit)
    ).all()
    hazards = {x.hazard_id: _hazard(session, x) for x in pending}
    extensions = [
        x for x in pending if can_act_as_any(actor, runtime.SUPERVISING_ROLES, hazards[x.hazard_id])
    ]
    hazard_ids = sorted({w.hazard_id for w in (*items, *watching)} | {x.hazard_id for x in extensions})
    facts: dict[int, dict[str, TaskSubmission]] = {}
    if hazard_ids:
        for sub in session.scalars(
            select(TaskSubmission)
            .where(
                TaskSubmission.hazard_id.in_(hazard_ids),
                TaskSubmission.form_key.in_(FACT_FORMS),
                TaskSubmission.is_draft.is_(False),
            )
            .order_by(TaskSubmission.id)
        ):
            facts.setdefault(sub.hazard_id, {})[sub.form_key] = sub
    attachment_ids = sorted(
        {
            v
            for by_form in facts.values()
            for sub in by_form.values()
            for value in (sub.data or {}).values()
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
                    Attachment.id.in_(attachment_ids), Attachment.hazard_id.in_(hazard_ids)
                )
            )
        }
        if attachment_ids
        else {}
    )
    ids = {w.assignee_id for w in (*items, *watching) if w.assignee_id}
    ids |= {x.requested_by_id for x in extensions if x.requested_by_id}
    ids |= {s.submitted_by_id for f in facts.values() for s in f.values() if s.submitted_by_id}
    names = (
        dict(session.execute(select(User.id, User.display_name).where(User.id.in_(sorted(ids)))).all())
        if ids
        else {}
    )
    return ReviewQueue(
        items,
        watching,
        extensions,
        facts,
        names,
        {x.hazard_id: hazards[x.hazard_id] for x in extensions},
        attachments,
    )


def _hazard(session: Session, request: ExtensionRequest) -> Hazard:
    hazard = session.get(
        Hazard,
        request.hazard_id,
        options=[
            joinedload(Hazard.co_departments),
            joinedload(Hazard.enterprise),
            joinedload(Hazard.lead_department),
        ],
    )
    assert hazard is not None  # a foreign key
    return hazard


def signature(actor: Actor) -> str:
    """The name a reviewer signs with: the display name without its note (吴刚 from 吴刚（县应急局审核）)."""
    return actor.display_name.split("（", 1)[0].split("(", 1)[0].strip() or actor.display_name


def decide(
    session: Session,
    ctx: EngineContext,
    *,
    work_item_id: int,
    actor: Actor,
    decision: str,
    opinion: str = "",
    document_no: str = "",
) -> WorkItem:
    """Approve (销号/核销) or reject a review work item; a rejection needs a reason.

    The reviewer signs with their own name and, for 监管审查, reviews today (business time).

    :raises NotFound: no such open review item (or not a review form), or out of scope.
    :raises InvalidInput: unknown decision, a rejection without a reason, or the form's own checks.
    :raises Forbidden: the actor may not decide it (role, department, 验收人 ≠ 整改人).
    :raises Conflict: it was decided (or claimed) by someone else first.
    """
    item = session.get(WorkItem, work_item_id)
    if item is None or item.form_key not in REVIEW_FORMS:
        raise NotFound("审核任务", work_item_id)
    if decision not in DECISIONS:
        raise InvalidInput({"decision": ["审核结论必须是同意（pass）或驳回（reject）"]})
    opinion = (opinion or "").strip()
    if decision == "reject" and not opinion:
        raise InvalidInput({"opinion": ["驳回必须填写理由"]})
    form: dict[str, object] = {
        "decision": decision,
        "opinion": opinion or DEFAULT_OPINIONS[item.form_key],
        "reviewer_signature": signature(actor),
    }
    if item.form_key == "regulator_review":
        form["reviewed_on"] = ctx.clock.now().astimezone(ctx.tz).date().isoformat()
        if document_no.strip():
            form["document_no"] = document_no.strip()
    return runtime.complete(session, ctx, work_item_id=work_item_id, actor=actor, form=form)


def decide_extension(
    session: Session,
    ctx: EngineContext,
    *,
    request_id: int,
    actor: Actor,
    decision: str,
    opinion: str = "",
) -> ExtensionRequest:
    """Approve or deny a pending 延期申请; a denial needs a reason.

    :raises InvalidInput: unknown decision, or a denial without a reason.
    :raises NotFound, Forbidden, Conflict: as :func:`engine.runtime.decide_extension`.
    """
    if decision not in EXTENSION_DECISIONS:
        raise InvalidInput({"decision": ["审批结论必须是同意（approve）或不同意（deny）"]})
    opinion = (opinion or "").strip()
    if decision == "deny" and not opinion:
        raise InvalidInput({"opinion": ["不同意延期必须填写理由"]})
    return runtime.decide_extension(
        session,
        ctx,
        request_id=request_id,
        actor=actor,
        form={"decision": decision, "opinion": opinion or DEFAULT_OPINIONS["approve"]},
    )


def review_due(item: WorkItem, now: dt.datetime) -> bool:
    """Is the review past its due time (10 days for 销号审核)?"""
    return item.due_at is not None and item.due_at < now
