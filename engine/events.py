"""The audit log: events HMAC-chained per process instance; ``verify_chain`` finds the first break."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Event
from .models import ProcessInstance


def _digest(key: bytes, prev_hash: str, event: Event) -> str:
    body = json.dumps(
        [
            prev_hash,
            event.instance_id,
            event.hazard_id,
            event.seq,
            event.action,
            event.actor_id,
            event.task_key,
            event.payload,
            event.at.isoformat(),
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def append_event(
    session: Session,
    instance: ProcessInstance,
    *,
    key: bytes,
    action: str,
    at: datetime,
    actor_id: int | None = None,
    task_key: str | None = None,
    payload: Mapping[str, Any] | None = None,
) -> Event:
    """Append one event to the instance's chain; the caller holds the instance lock.

    The event is written with the session's next flush, together with every other event appended
    since the last one, as one multi-row ``INSERT`` (see :func:`_write_pending_events`); the
    returned object is not added to the session (nothing reads an event's id in the transaction
    that appends it). A rollback discards the pending events with the rest of the unit of work.
    """
    instance.event_seq = (instance.event_seq or 0) + 1
    event = Event(
        hazard_id=instance.hazard_id,
        instance_id=instance.id,
        seq=instance.event_seq,
        action=action,
        actor_id=actor_id,
        task_key=task_key,
        payload=json.loads(json.dumps(dict(payload or {}), ensure_ascii=False, default=str)),
        at=at.replace(microsecond=(at.microsecond // 1000) * 1000),
        prev_hash=instance.last_event_hash or "",
    )
    event.hash = _digest(key, event.prev_hash, event)
    instance.last_event_hash = event.hash
    session.info.setdefault(_PENDING, []).append(event)
    return event


#: ``session.info`` key of the events appended since the session's last flush
_PENDING = "hazardloop.pending_events"
_EVENT_COLUMNS = ("hazard_id", "instance_id", "seq", "action", "actor_id", "task_key", "payload", "at")


@sa_event.listens_for(Session, "before_flush")
def _write_pending_events(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Insert the pending events in one statement, ahead of the flush that updates their instance.

    Appending an event always changes its instance (``event_seq``, ``last_event_hash``), so a
    session with pending events is never clean and its next flush (explicit, autoflush or commit)
    reaches this hook. The instances' rows exist already (an event needs ``instance.id``).
    """
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    rows = [
        {**{c: getattr(e, c) for c in _EVENT_COLUMNS}, "prev_hash": e.prev_hash, "hash": e.hash}
        for e in pending
    ]
    session.connection().execute(insert(Event.__table__), rows)


@sa_event.listens_for(Session, "after_soft_rollback")
def _discard_pending_events(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)


@dataclass(frozen=True, slots=True)
class ChainBreak:
    instance_id: int
    event_id: int
    seq: int
    reason: str


def verify_chain(session: Session, *, key: bytes, instance_id: int | None = None) -> list[ChainBreak]:
    """Recompute every chain (or one); return the first broken link of each broken chain."""
    query = select(Event).order_by(Event.instance_id, Event.seq)
    if instance_id is not None:
        query = query.where(Event.instance_id == instance_id)
    breaks: list[ChainBreak] = []
    current: int | None = None
    prev = ""
    expected_seq = 0
    broken = False
    heads: dict[int, str] = {}
    for event in session.scalars(query):
        if event.instance_id != current:
            current, prev, expected_seq, broken = event.instance_id, "", 0, False
        expected_seq += 1
        if broken:
            continue
        reason = None
        if event.seq != expected_seq:
            reason = f"序号不连续: 期望 {expected_seq}, 实际 {event.seq}"
        elif event.prev_hash != prev:
            reason = "前序哈希不匹配"
        elif not hmac.compare_digest(_digest(key, prev, event), event.hash):
            reason = "HMAC 不匹配: 记录被修改"
        if reason:
            breaks.append(ChainBreak(event.instance_id, event.id, event.seq, reason))
            broken = True
        prev = event.hash
        heads[event.instance_id] = event.hash
    instances = select(
        ProcessInstance.id, ProcessInstance.last_event_hash, ProcessInstance.event_seq
    ).order_by(ProcessInstance.id)
    if instance_id is not None:
        instances = instances.where(ProcessInstance.id == instance_id)
    broken_ids = {b.instance_id for b in breaks}
    for iid, head, seq in session.execute(instances):
        if iid not in broken_ids and seq and heads.get(iid) != head:
            breaks.append(ChainBreak(iid, 0, seq, "链尾与实例记录的哈希不一致: 事件被删除"))
    return breaks


def count_events(session: Session) -> int:
    """How many audit events there are (``hazardloop audit verify`` reports it beside the result)."""
    return int(session.scalar(select(func.count()).select_from(Event)) or 0)
