"""Drafts of task forms: a submission is never lost (DESIGN §4).

A draft is a :class:`~engine.models.TaskSubmission` with ``is_draft=True``, one per (work item,
user), checked with :meth:`FormDefinition.validate_partial` (types and formats, no required
fields). The task page re-loads it; completing the task through :func:`complete` deletes it.
When a completion loses a race (:class:`~engine.errors.Conflict`), the web layer calls
:func:`save_draft` with ``drop_invalid=True`` in a new transaction, so what was typed survives
even when part of it would not pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from . import form_versions
from . import runtime
from .access import Actor
from .access import can_see
from .errors import InvalidInput
from .errors import NotFound
from .forms import FormDefinition
from .models import Hazard
from .models import TaskSubmission
from .models import WorkItem
from .runtime import EngineContext

#: fields dropped one round at a time at most this often (a form has far fewer fields)
_MAX_ROUNDS = 100


@dataclass(frozen=True, slots=True)
class SavedDraft:
    submission: TaskSubmission
    #: fields left out because they did not pass even the draft checks (``drop_invalid``)
    dropped: tuple[str, ...] = ()


def _validated(
    definition: FormDefinition, form: Mapping[str, Any], *, drop_invalid: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    data = dict(form)
    dropped: list[str] = []
    for _round in range(_MAX_ROUNDS):
        try:
            return definition.validate_partial(data), tuple(dropped)
        except InvalidInput as exc:
            bad = [k for k in exc.messages if k in data]
            if not drop_invalid or not bad:
                raise
            for key in bad:
                data.pop(key)
                dropped.append(key)
    raise InvalidInput({"_schema": ["草稿无法保存"]})  # pragma: no cover - each round drops a field


def save_draft(
    session: Session,
    ctx: EngineContext,
    *,
    work_item_id: int,
    actor: Actor,
    form: Mapping[str, Any],
    drop_invalid: bool = False,
) -> SavedDraft:
    """Save (or replace) the actor's draft of a task's form.

    The task need not be open nor the actor able to do it any more: a draft kept after a lost
    race must still be saved. Only its owner ever sees it.

    :raises NotFound: unknown task, or its hazard is outside the actor's scope.
    :raises InvalidInput: a value fails the draft checks (unless ``drop_invalid``, which leaves
        such fields out and names them in :attr:`SavedDraft.dropped`).
    """
    item = session.get(WorkItem, work_item_id)
    if item is None:
        raise NotFound("任务", work_item_id)
    hazard = session.get_one(Hazard, item.hazard_id, options=[joinedload(Hazard.co_departments)])
    if not can_see(actor, hazard):
        raise NotFound("任务", work_item_id)
    data, dropped = _validated(
        form_versions.form_for_item(session, ctx, item), form, drop_invalid=drop_invalid
    )
    draft = load_draft(session, work_item_id=item.id, actor=actor)
    now = ctx.clock.now()
    if draft is None:
        draft = TaskSubmission(
            hazard_id=item.hazard_id,
            work_item_id=item.id,
            form_key=item.form_key,
            is_draft=True,
            submitted_by_id=actor.user_id,
        )
        session.add(draft)
    draft.data = data
    draft.submitted_at = now
    session.flush()
    return SavedDraft(draft, dropped)


def load_draft(session: Session, *, work_item_id: int, actor: Actor) -> TaskSubmission | None:
    """The actor's draft of this task, if any."""
    return session.scalars(
        select(TaskSubmission)
        .where(
            TaskSubmission.work_item_id == work_item_id,
            TaskSubmission.is_draft.is_(True),
            TaskSubmission.submitted_by_id == actor.user_id,
        )
        .order_by(TaskSubmission.id.desc())
        .limit(1)
    ).first()


def complete(
    session: Session, ctx: EngineContext, *, work_item_id: int, actor: Actor, form: Mapping[str, Any]
) -> WorkItem:
    """:func:`engine.runtime.complete`, then delete the actor's draft of the task.

    :raises: whatever :func:`engine.runtime.complete` raises; the draft is kept then.
    """
    item = runtime.complete(session, ctx, work_item_id=work_item_id, actor=actor, form=form)
    session.execute(
        delete(TaskSubmission).where(
            TaskSubmission.work_item_id == work_item_id,
            TaskSubmission.is_draft.is_(True),
            TaskSubmission.submitted_by_id == actor.user_id,
        )
    )
    return item
