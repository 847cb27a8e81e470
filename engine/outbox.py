"""The notification outbox: which messages a state change causes, written in its transaction.

:func:`on_event` is called by the runtime for every event it appends (under the instance lock,
inside the unit of work of the state change). For the events people must hear about it decides
the recipients and adds one :class:`~engine.models.OutboxMessage` per (recipient, channel):

============== ======================================================== ==========
event          recipients                                               kind
============== ======================================================== ==========
task_created   users who may act on the new work item (role in scope)   新的待办
delegated      the user the task was handed to                          转办
reminder       each open item's assignee, or its candidates             即将到期
overdue        as reminder, plus the lead department's reviewers        已逾期
escalated      the enterprise's principals, the lead dept's reviewers   升级督办
closed         the enterprise's safety officers and principals          已销号
notice_issued  the enterprise's principals, safety officers and         督办文书
               rectifiers; the lead department's reviewers
============== ======================================================== ==========

Nothing is rendered here: a row holds the message kind and the facts a template needs, and
``notifiers`` renders and delivers it later, at least once. Each row's idempotency key is
``<instance>:<event seq>:<user>:<channel>``, so the same event can never enqueue twice and
receivers can drop a redelivery.

The rows are written with the session's next flush, every message since the last flush in one
multi-row ``INSERT`` (like the events they announce, see :mod:`engine.events`): nothing reads a
message back in the transaction that enqueues it, so they are not ORM objects of the session.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import event as sa_event
from sqlalchemy import exists
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from .access import DEPARTMENT_SCOPED
from .access import REGION_SCOPED
from .models import Department
from .models import DepartmentSector
from .models import Enterprise
from .models import Event
from .models import Hazard
from .models import HazardSource
from .models import Membership
from .models import OutboxMessage
from .models import OutboxState
from .models import Region
from .models import Role
from .models import User
from .models import UserContact
from .models import WorkItem
from .models import WorkItemState
from .models.org import ENTERPRISE_ROLES

if TYPE_CHECKING:
    from .runtime import EngineContext
    from .runtime import _Loaded

#: event actions that notify; every other action returns at once (no query).
NOTIFYING_ACTIONS = frozenset(
    {"task_created", "delegated", "reminder", "overdue", "escalated", "closed", "notice_issued"}
)

#: (role, org scope) pairs beside a work item's own candidates
_LEAD_REVIEWERS = ((Role.DEPT_REVIEWER.value, "department"),)
_PRINCIPALS = ((Role.PRINCIPAL.value, "enterprise"),)
_SAFETY_AND_PRINCIPALS = ((Role.SAFETY_OFFICER.value, "enterprise"), (Role.PRINCIPAL.value, "enterprise"))
#: who hears of a notice (督办文书): the target enterprise's side and the lead department's reviewers
_NOTICE_RECIPIENTS = (
    *_SAFETY_AND_PRINCIPALS,
    (Role.RECTIFIER.value, "enterprise"),
    *_LEAD_REVIEWERS,
)


def on_event(session: Session, ctx: EngineContext, loaded: _Loaded, event: Event) -> int:
    """Enqueue the notifications ``event`` causes (no flush, no commit); returns how many.

    Called by the runtime right after it appended ``event`` to ``loaded.instance``'s chain (so the
    session is dirty and its next flush writes the rows, see :func:`_write_pending_messages`).
    """
    if event.action not in NOTIFYING_ACTIONS or not ctx.settings.notify_channels:
        return 0
    with session.no_autoflush:  # the caller's pending rows are flushed with the transaction
        items = _items_concerned(session, loaded, event)
        roles: list[tuple[str, str]] = []
        users: set[int] = set()
        if event.action == "delegated":
            users.add(int(event.payload["to_user_id"]))
        elif event.action in ("task_created", "reminder", "overdue"):
            for item in items:
                if item.assignee_id is not None and event.action != "task_created":
                    users.add(item.assignee_id)
                else:
                    roles.append((item.candidate_role, item.org_scope))
            if event.action == "overdue":
                roles.extend(_LEAD_REVIEWERS)
        elif event.action == "escalated" and "notice_id" not in event.payload:
            # an escalation that issued a notice is announced once, by its notice_issued event
            roles.extend([*_PRINCIPALS, *_LEAD_REVIEWERS])
        elif event.action == "closed":
            roles.extend(_SAFETY_AND_PRINCIPALS)
        elif event.action == "notice_issued":
            roles.extend(_NOTICE_RECIPIENTS)
        recipients = _recipients(session, loaded.hazard, roles, users, cache=loaded.recipients)
        excluded = _separated_users(session, loaded, items) if recipients else set()
        recipients = [r for r in recipients if r.user_id not in excluded or r.user_id in users]
        if not recipients:
            return 0
        facts = _facts(loaded, event, items, recipients[0].enterprise_name)
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    count = 0
    for recipient in recipients:
        user_id, contact = recipient.user_id, recipient.contact
        for channel in ctx.settings.notify_channels:
            if contact is not None and contact.channels is not None and channel not in contact.channels:
                continue
            address = _address(channel, user_id, recipient.username, contact)
            if not address:
                continue
            pending.append(
                {
                    "idempotency_key": f"{event.instance_id}:{event.seq}:{user_id}:{channel}",
                    "kind": event.action,
                    "channel": channel,
                    "recipient_user_id": user_id,
                    "recipient_address": address,
                    "hazard_id": loaded.hazard.id,
                    "subject": None,
                    "payload": {**facts, "recipient_name": recipient.display_name},
                    "state": OutboxState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": loaded.now,
                    "created_at": loaded.now,
                }
            )
            count += 1
    return count


#: ``session.info`` key of the messages enqueued since the session's last flush
_PENDING = "hazardloop.pending_outbox"


def update_pending(session: Session, event: Event, **facts: Any) -> int:
    """Change facts of the messages ``event`` enqueued that are not written yet (the runtime fills
    in a notice's number when it is taken, at the flush); returns how many messages changed."""
    prefix = f"{event.instance_id}:{event.seq}:"
    changed = 0
    for row in session.info.get(_PENDING, ()):
        if row["idempotency_key"].startswith(prefix):
            row["payload"].update(facts)
            changed += 1
    return changed


@sa_event.listens_for(Session, "before_flush")
def _write_pending_messages(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Insert the enqueued messages in one statement, with the flush that writes their event."""
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(insert(OutboxMessage.__table__), pending)


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard_pending_messages(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_pending_messages(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # ended without a flush (closed): nothing is left for the next
        session.info.pop(_PENDING, None)


def _items_concerned(session: Session, loaded: _Loaded, event: Event) -> list[WorkItem]:
    """The work items a message is about: the new one, or every open one of the instance."""
    if event.action == "task_created":
        created = [
            w
            for w in (loaded.open_items or {}).values()
            if w.task_key == event.task_key and w.state == WorkItemState.OPEN.value
        ]
        return created[-1:]
    if event.action not in ("reminder", "overdue"):
        return []
    if loaded.open_items is not None:
        return [w for w in loaded.open_items.values() if w.state == WorkItemState.OPEN.value]
    return list(
        session.scalars(
            select(WorkItem)
            .where(WorkItem.instance_id == loaded.instance.id, WorkItem.state == WorkItemState.OPEN.value)
            .order_by(WorkItem.id)
        )
    )


def _separated_users(session: Session, loaded: _Loaded, items: Sequence[WorkItem]) -> set[int]:
    """Who did the work an item reviews (验收人不得为整改人): they are no candidates for it."""
    keys = {k for item in items for k in (item.separate_from or "").strip(",").split(",") if k}
    if not keys:
        return set()
    done = set(
        session.scalars(
            select(WorkItem.completed_by_id).where(
                WorkItem.instance_id == loaded.instance.id,
                WorkItem.task_key.in_(sorted(keys)),
                WorkItem.state == WorkItemState.COMPLETED.value,
            )
        )
    )
    # completed in this very transaction (not flushed yet: the runtime holds them in open_items)
    done.update(
        w.completed_by_id
        for w in (loaded.open_items or {}).values()
        if w.task_key in keys and w.state == WorkItemState.COMPLETED.value
    )
    done.discard(None)
    return {user_id for user_id in done if user_id is not None}


def _path_prefixes(path: str) -> list[str]:
    """``/34/3418/341821/`` → ``/34/``, ``/34/3418/``, ``/34/3418/341821/`` (every ancestor's path)."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def _scope_kind(hazard: Hazard, role_name: str, org_scope: str) -> str | None:
    """How a membership in ``role`` reaches ``hazard`` when acting (:func:`engine.access.can_act_as`)."""
    try:
        role = Role(role_name)
    except ValueError:
        return None
    if role in ENTERPRISE_ROLES:
        return "enterprise"
    if role in DEPARTMENT_SCOPED:
        if org_scope != "department":
            return None
        return "lead_department" if hazard.lead_department_id is not None else "lead_sector"
    if role in REGION_SCOPED or (role == Role.TIP_OFFICER and hazard.source == HazardSource.PUBLIC_TIP.value):
        return "region"
    return None


@dataclass(frozen=True, slots=True)
class _Recipient:
    user_id: int
    username: str
    display_name: str
    contact: UserContact | None
    #: the hazard's enterprise (read by the same query, for the message facts)
    enterprise_name: str | None


@functools.lru_cache(maxsize=64)
def _recipients_statement(kinds: tuple[str, ...], with_ids: bool) -> Select[Any]:
    """One SELECT for the users holding ``role_<i>`` reached the ``kinds[i]`` way, or named by id.

    Each row ends with one flag per role (does the user hold ``role_<i>`` that way?), so the
    caller can remember the users of each role. Built once per shape with bound parameters (the
    statement is on the path of every step that creates a task, so it is not rebuilt each time).
    """
    in_region = or_(
        # a membership's region is its own, or else its department's (as engine.access.load_actor reads it)
        Membership.region_id.in_(
            select(Region.id).where(Region.path.in_(bindparam("prefixes", expanding=True)))
        ),
        and_(
            Membership.region_id.is_(None),
            Membership.department_id.in_(
                select(Department.id)
                .join(Region, Region.id == Department.region_id)
                .where(Region.path.in_(bindparam("prefixes", expanding=True)))
            ),
        ),
    )
    acting: list[ColumnElement[bool]] = []
    for i, kind in enumerate(kinds):
        this_role = Membership.role == bindparam(f"role_{i}")
        if kind == "enterprise":
            acting.append(and_(this_role, Membership.enterprise_id == bindparam("enterprise_id")))
        elif kind == "lead_department":
            acting.append(
                and_(this_role, in_region, Membership.department_id == bindparam("lead_department_id"))
            )
        elif kind == "lead_sector":
            leads = Membership.department_id.in_(
                select(DepartmentSector.department_id).where(
                    DepartmentSector.sector_code == bindparam("sector_code"), DepartmentSector.leads.is_(True)
                )
            )
            acting.append(and_(this_role, in_region, leads))
        else:
            acting.append(and_(this_role, in_region))
    clauses: list[ColumnElement[bool]] = []
    if with_ids:
        clauses.append(User.id.in_(bindparam("user_ids", expanding=True)))
    if acting:
        clauses.append(exists().where(Membership.user_id == User.id, or_(*acting)))
    enterprise_name = select(Enterprise.name).where(Enterprise.id == bindparam("enterprise_id"))
    flags = [
        exists().where(Membership.user_id == User.id, clause).label(f"holds_{i}")
        for i, clause in enumerate(acting)
    ]
    return (
        select(
            User.id, User.username, User.display_name, UserContact, enterprise_name.scalar_subquery(), *flags
        )
        .outerjoin(UserContact, UserContact.user_id == User.id)
        .where(User.active.is_(True), or_(*clauses))
        .order_by(User.id)
    )


def candidate_user_ids(session: Session, hazard: Hazard, role: str, org_scope: str) -> list[int]:
    """Active users who may act on ``hazard`` in ``role`` (a work item's candidates), in one query."""
    return [r.user_id for r in _recipients(session, hazard, [(role, org_scope)], ())]


def _recipients(
    session: Session,
    hazard: Hazard,
    roles: Sequence[tuple[str, str]],
    user_ids: Iterable[int],
    *,
    cache: dict[Any, Any] | None = None,
) -> list[_Recipient]:
    """The active users named by id or holding one of ``roles`` on the hazard (by user id) — at
    most one query.

    ``cache`` (the runtime passes one per protocol run, i.e. per transaction) remembers the users
    of each role reached each way and the users read, so the events of one step (a notice and its
    reminder, say) ask the database once per role, not once per event.
    """
    ids = sorted(set(user_ids))
    wanted: dict[tuple[Role, str], None] = {}
    for role, org_scope in dict.fromkeys(roles):
        kind = _scope_kind(hazard, role, org_scope)
        if kind is not None:
            wanted[(Role(role), kind)] = None
    if not wanted and not ids:
        return []
    scope = (hazard.enterprise_id, hazard.lead_department_id, hazard.sector_code, hazard.region_path)
    known = (cache if cache is not None else {}).setdefault(scope, ({}, {}))
    by_role: dict[tuple[Role, str], tuple[int, ...]] = known[0]
    users: dict[int, _Recipient] = known[1]
    missing = [w for w in wanted if w not in by_role]
    missing_ids = [i for i in ids if i not in users]
    if missing or missing_ids:
        params: dict[str, Any] = {f"role_{i}": role for i, (role, _kind) in enumerate(missing)}
        params.update(
            prefixes=_path_prefixes(hazard.region_path),
            enterprise_id=hazard.enterprise_id,
            lead_department_id=hazard.lead_department_id,
            sector_code=hazard.sector_code,
        )
        if missing_ids:
            params["user_ids"] = missing_ids
        statement = _recipients_statement(tuple(kind for _role, kind in missing), bool(missing_ids))
        holders: dict[tuple[Role, str], list[int]] = {w: [] for w in missing}
        for row in session.execute(statement, params):
            recipient = _Recipient(*row[:5])
            users[recipient.user_id] = recipient
            for w, holds in zip(missing, row[5:], strict=True):
                if holds:
                    holders[w].append(recipient.user_id)
        by_role.update({w: tuple(found) for w, found in holders.items()})
    chosen = {i for i in ids if i in users}
    for w in wanted:
        chosen.update(by_role[w])
    return [users[i] for i in sorted(chosen)]


def _address(channel: str, user_id: int, username: str, contact: UserContact | None) -> str | None:
    if channel == "inapp":
        return str(user_id)
    if channel == "console":
        return username
    if contact is None:
        return None
    return {"email": contact.email, "sms": contact.mobile, "webhook": contact.webhook_url}.get(channel)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _facts(
    loaded: _Loaded, event: Event, items: Sequence[WorkItem], enterprise_name: str | None
) -> dict[str, Any]:
    """What the templates need, as JSON: the hazard as it is now, the event, the task."""
    hazard = loaded.hazard
    item = items[0] if items else None
    facts: dict[str, Any] = {
        "hazard_id": hazard.id,
        "hazard_number": hazard.number,
        "hazard_title": hazard.title,
        "enterprise_name": enterprise_name or "",
        "location": hazard.location,
        "grade": hazard.grade,
        "deadline": _iso(hazard.deadline),
        "escalation_level": hazard.escalation_level or 0,
        "event": event.action,
        "event_at": _iso(event.at),
        "task_key": item.task_key if item is not None else event.task_key,
        "task_title": item.title if item is not None else event.payload.get("title"),
        "task_due_at": _iso(item.due_at) if item is not None else None,
    }
    for key in ("kind", "reason", "level", "to_user_id"):
        if key in event.payload:
            facts[key] = event.payload[key]
    if event.action == "notice_issued":  # payload: notice_id, number, kind, title
        facts["notice_id"] = event.payload.get("notice_id")
        facts["notice_number"] = event.payload.get("number", "")
        facts["notice_title"] = event.payload.get("title", "")
    return facts
