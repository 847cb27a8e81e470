"""Task-list queries over the work_item projection; each is one indexed SQL statement."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import literal
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased
from sqlalchemy.orm import contains_eager

from .access import Actor
from .access import actable_clause
from .access import hazard_visibility
from .models import Hazard
from .models import WorkItem
from .models import WorkItemState


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
