"""Running the loop: start, claim, release, delegate, complete and the actions beside the happy path.

Every mutation follows the per-instance protocol (DESIGN §4):

1. lock the instance row (``SELECT … FOR UPDATE``; SQLite holds its write lock from ``BEGIN IMMEDIATE``),
2. load it onto the cached spec and ``refresh_timers(); do_engine_steps()`` so due timers fire first,
3. re-check the target task is still ready and the actor may act on it,
4. validate the form, apply it, run the engine,
5. rewrite projections, append events and compare-and-set the instance ``version`` — one transaction.

The instance's open work items and waiting timer jobs are read right after the lock, and nothing
is flushed until step 5: the step is written by one flush (one ``UPDATE`` of the instance, one
``INSERT`` of its events, one of its notifications). An escalation notice is prepared during the
step and numbered by that flush (:func:`_issue_deferred_notices`): the 文号's row lock, shared by
every notice of the issuer, is held only while the step is written and committed.

The caller owns the session and the transaction (``with sessions.begin() as session``).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import bindparam
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.exc import StaleDataError

from . import bpmn
from . import calendar as working_calendar
from . import events
from . import form_versions
from . import notices
from . import outbox
from . import policy
from .access import Actor
from .access import can_act_as
from .access import can_act_as_any
from .access import can_see
from .access import load_actor
from .clock import Clock
from .clock import SystemClock
from .config import Settings
from .definitions import POLICY_PROFILE_PROPERTY
from .definitions import form_keys_of
from .definitions import policy_names_of
from .definitions import process_properties
from .definitions import resolve_definition
from .definitions import shipped_forms
from .definitions import spec_for
from .errors import Conflict
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .escalation import SKIP_REASONS
from .escalation import EscalationRequest
from .escalation import plan as plan_escalation
from .events import append_event
from .forms import PLAN_FIELDS
from .forms import FormDefinition
from .handlers import Effect
from .models import Attachment
from .models import DefinitionVersion
from .models import Department
from .models import DepartmentSector
from .models import Enterprise
from .models import Event
from .models import ExtensionRequest
from .models import ExtensionState
from .models import Grade
from .models import HandlingType
from .models import Hazard
from .models import HazardDepartment
from .models import HazardSource
from .models import HazardStatus
from .models import InstanceKind
from .models import InstanceStatus
from .models import Notice
from .models import NumberSequence
from .models import ProcessInstance
from .models import Region
from .models import Role
from .models import Sector
from .models import TaskSubmission
from .models import TimerJob
from .models import TimerJobState
from .models import WorkItem
from .models import WorkItemState

#: roles that may take the department-side actions (void, reopen, decide extensions, record refusals)
SUPERVISING_ROLES = (Role.DEPT_REVIEWER, Role.OFFICE_ADMIN)
ENTERPRISE_SIDE_ROLES = (Role.RECTIFIER, Role.SAFETY_OFFICER, Role.PRINCIPAL)
SUPERVISING_OR_INSPECTING = frozenset({Role.DEPT_REVIEWER, Role.OFFICE_ADMIN, Role.INSPECTOR})
#: the 五落实 items (and interim measures) a 重大 plan needs before the principal may sign it off
PLAN_ITEMS = {
    "responsible_person": "责任（整改责任人）",
    "measures": "措施",
    "funds": "资金",
    "deadline": "期限",
    "contingency_plan": "应急预案",
    "interim_measures": "整改期间防范措施",
}
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
#: the top rung of the escalation ladder (DOMAIN §4.3, L6 参照事故调查处理): escalations saturate here
MAX_ESCALATION_LEVEL = 6


@dataclass
class EngineContext:
    """What every engine call needs besides the session: settings, clock, audit key, forms."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    forms: Mapping[str, FormDefinition] | None = None
    _audit_key: bytes | None = None
    #: monotonic time of the last calendar revision check (see :func:`_refresh_calendar`)
    _calendar_checked: float = -1e9

    def __post_init__(self) -> None:
        if self.forms is None:
            self.forms = shipped_forms(self.settings.processes_dir)

    @property
    def audit_key(self) -> bytes:
        if self._audit_key is None:
            self._audit_key = self.settings.load_audit_key()
        return self._audit_key

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.business_timezone)

    def form(self, key: str) -> FormDefinition:
        assert self.forms is not None
        try:
            return self.forms[key]
        except KeyError:
            raise NotFound("表单", key) from None

    def end_of_business_day(self, day: dt.date) -> dt.datetime:
        """23:59:59 local business time on ``day``, as UTC."""
        return dt.datetime.combine(day, dt.time(23, 59, 59), self.tz).astimezone(dt.UTC)


@dataclass
class _Loaded:
    instance: ProcessInstance
    hazard: Hazard
    workflow: Any
    now: dt.datetime
    #: the instance's open work items and waiting timer jobs by SpiffWorkflow task id, read once
    #: under the instance lock by the first projection and kept current by later ones (every
    #: change to them goes through this transaction, so re-querying would only cost round trips).
    open_items: dict[str, WorkItem] | None = None
    waiting_jobs: dict[str, TimerJob] | None = None
    #: recipients resolved by :mod:`engine.outbox` in this protocol run, by role (see its ``_recipients``)
    recipients: dict[Any, Any] = field(default_factory=dict)
    #: the projection moved the hazard's deadline to one the diagram computed (see :func:`_project`)
    deadline_moved: bool = False


# --- deserialized workflows of committed steps ---------------------------------------------------


class _WorkflowCache:
    """The workflow objects of recently committed steps, so an unchanged instance is not deserialized.

    An entry is the workflow a step left behind with the exact bytes it stored, the instance
    ``version`` that write produced and the spec object it runs on. It is used only if all of them
    still match what the locked row holds (any other writer bumps the version and changes the
    bytes; a re-created row with a recycled id has other bytes; a dropped spec cache gives another
    spec object), so a stale entry is a miss, never a wrong workflow. Entries enter only after
    their transaction committed (``after_commit``); a rollback drops what the session was about to
    add. Workflows are not thread-safe: :meth:`take` removes the entry, so an object is used by one
    transaction at a time and comes back only with that transaction's commit.
    """

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[int, tuple[tuple[Any, ...], bytes, Any]] = OrderedDict()

    def take(self, instance_id: int, key: tuple[Any, ...], state: bytes) -> Any | None:
        with self._lock:
            entry = self._entries.pop(instance_id, None)
        if entry is not None and entry[0] == key and entry[1] == state:
            return entry[2]
        return None

    def put_all(self, entries: Mapping[int, tuple[tuple[Any, ...], bytes, Any]]) -> None:
        with self._lock:
            for instance_id, entry in entries.items():
                self._entries[instance_id] = entry
                self._entries.move_to_end(instance_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_WORKFLOWS = _WorkflowCache()
#: ``session.info`` key: workflows saved in the session's transaction, cached if it commits
_SAVED_WORKFLOWS = "hazardloop.saved_workflows"


def _cache_key(instance: ProcessInstance, spec: Any) -> tuple[Any, ...]:
    return (instance.version, instance.definition_version_id, instance.serializer_version, id(spec))


def _load_workflow(instance: ProcessInstance) -> Any:
    spec, subs = spec_for(instance.definition_version)
    workflow = _WORKFLOWS.take(instance.id, _cache_key(instance, spec), instance.state)
    if workflow is None:
        workflow = bpmn.load_state(instance.state, instance.serializer_version, spec, subs)
    return workflow


def _remember_saved(session: Session, instance: ProcessInstance, workflow: Any) -> None:
    """After a successful flush of ``instance.state``: cache ``workflow`` if the transaction commits."""
    spec, _subs = spec_for(instance.definition_version)
    saved = session.info.setdefault(_SAVED_WORKFLOWS, {})
    saved[instance.id] = (_cache_key(instance, spec), instance.state, workflow)


@sa_event.listens_for(Session, "after_commit")
def _cache_committed_workflows(session: Session) -> None:
    saved = session.info.pop(_SAVED_WORKFLOWS, None)
    if saved:
        _WORKFLOWS.put_all(saved)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_saved_workflows(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_SAVED_WORKFLOWS, None)


# --- the protocol ---------------------------------------------------------------------------------


#: the spec is cached by content hash: the diagram and spec texts are not needed per step
_VERSION_WITHOUT_TEXTS = (
    joinedload(ProcessInstance.definition_version).defer(DefinitionVersion.bpmn_xml),
    joinedload(ProcessInstance.definition_version).defer(DefinitionVersion.spec_json),
)


def _lock_instance(session: Session, hazard_id: int) -> ProcessInstance:
    instance = session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == InstanceKind.LOOP.value)
        .order_by(ProcessInstance.id.desc())
        .limit(1)
        .with_for_update(of=ProcessInstance)
        .options(
            *_VERSION_WITHOUT_TEXTS,
        )
        .execution_options(populate_existing=True)
    ).first()
    if instance is None:
        raise NotFound("隐患流程实例", hazard_id)
    return instance


# The statements every step runs are built once, with bound parameters: building one (and its
# cache key) each time cost as much as a small query.


@functools.cache
def _lock_statement() -> Select[tuple[ProcessInstance, Hazard]]:
    latest = (
        select(func.max(ProcessInstance.id))
        .where(
            ProcessInstance.hazard_id == bindparam("hazard_id"),
            ProcessInstance.kind == InstanceKind.LOOP.value,
        )
        .scalar_subquery()
    )
    return (
        select(ProcessInstance, Hazard)
        .join(Hazard, Hazard.id == ProcessInstance.hazard_id)
        .where(ProcessInstance.id == latest)
        .with_for_update(of=ProcessInstance)
        .options(
            *_VERSION_WITHOUT_TEXTS,
            joinedload(Hazard.co_departments),
        )
        .execution_options(populate_existing=True)
    )


# An instance's work items and timer jobs are read by its id alone and their state is checked
# here: with the state in the WHERE clause, PostgreSQL may AND the instance index with the
# (state, …) index and walk every open item or waiting job of every hazard (measured: 1 ms per step
# with 24,000 waiting jobs, growing with them), for the few rows of one instance.


@functools.cache
def _items_statement() -> Select[tuple[WorkItem]]:
    # populate_existing: rows read before the lock (the target work item) are refreshed here
    return (
        select(WorkItem)
        .where(WorkItem.instance_id == bindparam("instance_id"))
        .order_by(WorkItem.id)  # events of cancelled items and notices name them in creation order
        .execution_options(populate_existing=True)
    )


@functools.cache
def _jobs_statement() -> Select[tuple[TimerJob]]:
    # populate_existing: a job read before the lock (fire_timer without the ids) has its state
    # from before a racing firing committed; its state is checked below, not by the query
    return (
        select(TimerJob)
        .where(TimerJob.instance_id == bindparam("instance_id"))
        .order_by(TimerJob.id)  # timers due together fire (and are logged) in creation order
        .execution_options(populate_existing=True)
    )


@functools.cache
def _issued_statement() -> Select[tuple[int, str | None, str]]:
    """The notices of an instance, and the one with a dedupe key (NULL: none), in one query (by its
    hazard and the dedupe key: both indexed)."""
    mine = and_(Notice.hazard_id == bindparam("hazard_id"), Notice.instance_id == bindparam("instance_id"))
    return select(Notice.instance_id, Notice.rung, Notice.dedupe_key).where(
        or_(mine, Notice.dedupe_key == bindparam("dedupe_key"))
    )


def _lock_instance_and_hazard(session: Session, hazard_id: int) -> tuple[ProcessInstance, Hazard]:
    """Step 1 and the reads it guards in one statement: lock the hazard's latest instance and
    read it (with its definition version, without the diagram texts) and the hazard with its
    co-responsible departments (``can_see`` reads them), all refreshed from the database.

    ``FOR UPDATE OF process_instance`` on PostgreSQL; SQLite holds its write lock already.
    """
    row = session.execute(_lock_statement(), {"hazard_id": hazard_id}).unique().first()
    if row is None:
        raise NotFound("隐患流程实例", hazard_id)
    return row[0], row[1]


def _lock_track(session: Session, hazard_id: int, instance_id: int) -> ProcessInstance:
    """Lock another instance of the hazard (after its loop instance: the lock order)."""
    instance = session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.id == instance_id, ProcessInstance.hazard_id == hazard_id)
        .with_for_update(of=ProcessInstance)
        .options(
            *_VERSION_WITHOUT_TEXTS,
        )
        .execution_options(populate_existing=True)
    ).first()
    if instance is None:
        raise NotFound("流程实例", instance_id)
    return instance


def _supervision_instance(session: Session, hazard_id: int) -> ProcessInstance | None:
    """The hazard's latest 挂牌督办 track, if it has one."""
    return session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == InstanceKind.SUPERVISION.value)
        .order_by(ProcessInstance.id.desc())
        .limit(1)
    ).first()


def _load_hazard(session: Session, hazard_id: int, *, fresh: bool = False) -> Hazard:
    """The hazard with its co-responsible departments (``can_see`` reads them) in one query."""
    return session.get_one(
        Hazard, hazard_id, options=[joinedload(Hazard.co_departments)], populate_existing=fresh
    )


@contextmanager
def _protocol(
    session: Session,
    ctx: EngineContext,
    hazard_id: int,
    *,
    actor: Actor | None,
    not_found: NotFound | None = None,
    instance_id: int | None = None,
) -> Iterator[_Loaded]:
    """Steps 1, 2 and 5 of the protocol around the caller's steps 3 and 4.

    ``instance_id``: run on that instance of the hazard (its 挂牌督办 track) instead of its loop.
    The loop instance is always locked first, so every mutation of a hazard, on either track,
    takes the same lock first and two tracks never deadlock.

    :raises NotFound: ``not_found`` (or one naming the hazard) if the actor may not see it.
    """
    instance, hazard = _lock_instance_and_hazard(session, hazard_id)
    if actor is not None and not can_see(actor, hazard):
        raise not_found or NotFound("隐患", hazard_id)
    if instance_id is not None and instance_id != instance.id:
        instance = _lock_track(session, hazard_id, instance_id)
    _refresh_calendar(session, ctx)
    now = ctx.clock.now()
    workflow = _load_workflow(instance)
    loaded = _Loaded(instance, hazard, workflow, now)
    if instance.status == InstanceStatus.RUNNING.value:
        # read the projections before anything is appended: a query after the effects would
        # autoflush half a step (a second instance UPDATE and a second event INSERT)
        _load_projections(session, loaded)
        bpmn.advance(workflow)
        _apply_effects(session, ctx, loaded)
        _project(session, ctx, loaded)
    yield loaded
    _save(session, ctx, loaded)


CALENDAR_CHECK_SECONDS = 30.0


def _refresh_calendar(session: Session, ctx: EngineContext) -> None:
    """Pick up a newly entered holiday schedule (one primary-key read, at most every 30 s).

    A schedule entered in this process is seen at once (``enter_official_year`` bumps the cache);
    one entered by another process is seen within :data:`CALENDAR_CHECK_SECONDS`.
    """
    now = time.monotonic()
    if now - ctx._calendar_checked < CALENDAR_CHECK_SECONDS:
        return
    working_calendar.load_calendar(session, timezone=ctx.settings.business_timezone)
    ctx._calendar_checked = now


def _save(session: Session, ctx: EngineContext, loaded: _Loaded) -> None:
    instance = loaded.instance
    instance.state = bpmn.dump_state(loaded.workflow)
    instance.updated_at = loaded.now
    loaded.hazard.updated_at = loaded.now
    try:
        session.flush()  # version_id_col: UPDATE … WHERE id = ? AND version = ?
    except StaleDataError as exc:
        raise Conflict("流程实例已被他人修改，请刷新后重试") from exc
    _remember_saved(session, instance, loaded.workflow)


def _event(
    session: Session,
    ctx: EngineContext,
    loaded: _Loaded,
    action: str,
    *,
    actor: Actor | None = None,
    task_key: str | None = None,
    **payload: Any,
) -> Event:
    event = append_event(
        session,
        loaded.instance,
        key=ctx.audit_key,
        action=action,
        at=loaded.now,
        actor_id=actor.user_id if actor is not None and actor.user_id else None,
        task_key=task_key,
        payload=payload,
    )
    outbox.on_event(session, ctx, loaded, event)  # notifications, in this same transaction
    return event


def _apply_effects(session: Session, ctx: EngineContext, loaded: _Loaded) -> None:
    """Apply what service-task handlers asked for, in the same transaction."""
    # no autoflush: the queries below read nothing this step left pending, and flushing in the
    # middle would write the instance twice (DESIGN §4: one compare-and-set per step)
    with session.no_autoflush:
        _apply_effects_of(session, ctx, loaded)


def _apply_effects_of(session: Session, ctx: EngineContext, loaded: _Loaded) -> None:
    hazard = loaded.hazard
    effects: list[Effect] = bpmn.effects_of(loaded.workflow)
    requests: list[EscalationRequest] = []
    for effect in effects:
        if effect.handler == "remind":
            _event(session, ctx, loaded, "reminder", task_key=effect.task_key, **effect.params)
        elif effect.handler == "mark_overdue":
            if loaded.instance.kind == InstanceKind.LOOP.value:
                hazard.overdue = True
            _event(session, ctx, loaded, "overdue", task_key=effect.task_key, **effect.params)
        elif effect.handler == "issue_notice":
            _issue_track_notice(session, ctx, loaded, effect.params["kind"], task_key=effect.task_key)
        elif effect.handler == "escalate":
            requests.append(
                EscalationRequest(
                    effect.params["rung"],
                    effect.params["trigger"],
                    effect.params.get("due_at"),
                    effect.task_key,
                )
            )
        elif effect.handler == "compute_deadline":
            _event(session, ctx, loaded, "deadline_computed", task_key=effect.task_key, **effect.params)
    if requests:
        _escalate(session, ctx, loaded, requests)


def _escalate(
    session: Session,
    ctx: EngineContext,
    loaded: _Loaded,
    requests: list[EscalationRequest],
    *,
    facts: Mapping[str, Any] | None = None,
) -> None:
    """Climb the ladder for one step's escalation requests (DOMAIN §4.3, DESIGN §6).

    The catch-up rule (:func:`engine.escalation.plan`) picks the one rung that fires; skipped
    rungs are recorded unless this loop already issued them. The rung's notice is issued once per
    loop (its dedupe key names the instance and rung; a unique constraint backs it); it is
    prepared here and numbered when the step is written (:func:`_issue_deferred_notices`). A listing
    rung also lists the hazard (挂牌督办) and starts its supervision track.
    """
    hazard, instance = loaded.hazard, loaded.instance
    profile = policy.pinned_policy(session, loaded.workflow.task_tree.data)
    ladder = policy.ladder_of(profile)
    chosen = plan_escalation(ladder, hazard.escalation_level or 0, requests)
    # the rungs this loop issued, and whether the rung to fire has its notice already (its dedupe
    # key, which issue_notice would otherwise check with a query of its own): one query
    dedupe_key = f"instance:{instance.id}:{chosen.fire.rung.key}" if chosen.fire is not None else None
    params = {"hazard_id": hazard.id, "instance_id": instance.id, "dedupe_key": dedupe_key}
    rows = session.execute(_issued_statement(), params).all()
    issued = {row.rung for row in rows if row.instance_id == instance.id}
    deduplicated = dedupe_key is not None and any(row.dedupe_key == dedupe_key for row in rows)
    for request, reason in chosen.skipped:
        rung_key = request.rung or ladder.triggers.get(request.trigger, "")
        if rung_key and rung_key in issued:
            continue
        _event(
            session,
            ctx,
            loaded,
            "escalation_skipped",
            task_key=request.task_key,
            rung=rung_key,
            trigger=request.trigger,
            due_at=request.due_at,
            reason=reason,
            label=SKIP_REASONS[reason],
        )
    if chosen.fire is None:
        return
    rung, request = chosen.fire.rung, chosen.fire.request
    suppressed_until = hazard.escalation_suppressed_until
    violation = request.trigger in ("refusal", "fake_rectification")
    if suppressed_until is not None and loaded.now < suppressed_until and not violation:
        _event(
            session,
            ctx,
            loaded,
            "escalation_skipped",
            task_key=request.task_key,
            rung=rung.key,
            trigger=request.trigger,
            reason="suppressed",
            label=SKIP_REASONS["suppressed"],
            until=suppressed_until.isoformat(),
        )
        return
    if rung.key in issued:
        return
    due_at = _parse_due(request.due_at) or loaded.now
    if rung.key == "listing":
        # 挂牌督办 is decided on the supervision track, which issues the 挂牌督办通知书
        level = LISTING_LEVELS.get(rung.issuer_level or "county", 3)
        if hazard.listed_level is not None:
            return
        if _start_supervision(session, ctx, loaded, level=level, reason=request.trigger) is None:
            return
        hazard.escalation_level = max(hazard.escalation_level or 0, rung.level)
        _event(
            session,
            ctx,
            loaded,
            "escalated",
            task_key=request.task_key,
            rung=rung.key,
            level=rung.level,
            trigger=request.trigger,
            label=rung.label,
            due_at=due_at.isoformat(),
        )
        return
    if deduplicated:
        return
    prepared = notices.prepare_notice(
        session,
        ctx,
        hazard=hazard,
        instance_id=instance.id,
        rung=rung,
        trigger=request.trigger,
        dedupe_key=f"instance:{instance.id}:{rung.key}",
        due_at=due_at,
        profile=profile,
        facts=facts,
        dedupe_checked=True,
    )
    if prepared is None:
        return
    hazard.escalation_level = max(hazard.escalation_level or 0, min(rung.level, MAX_ESCALATION_LEVEL))
    # The notice's id, 文号 and title are filled in when the step is written (see
    # _issue_deferred_notices): the number's row lock, shared by every notice of the issuer, is
    # then held only while the step is written and committed.
    escalated = _event(
        session,
        ctx,
        loaded,
        "escalated",
        task_key=request.task_key,
        rung=rung.key,
        level=rung.level,
        trigger=request.trigger,
        label=rung.label,
        due_at=due_at.isoformat(),
        notice_id=None,
        number=None,
    )
    issued = _event(
        session,
        ctx,
        loaded,
        "notice_issued",
        notice_id=None,
        number=None,
        kind=rung.kind,
        title=None,
        rung=rung.key,
    )
    session.info.setdefault(_DEFERRED_NOTICES, []).append(
        _DeferredNotice(ctx, loaded.instance, prepared, escalated, issued)
    )
    if rung.level == 0:  # a 提醒敦促函 also reminds whoever holds the rectification task
        _event(session, ctx, loaded, "reminder", task_key=request.task_key, kind="rectify", rung=rung.key)


# --- notices numbered when the step is written -----------------------------------------------------

#: ``session.info`` key: notices prepared by this transaction's escalations, not numbered yet
_DEFERRED_NOTICES = "hazardloop.deferred_notices"


@dataclass
class _DeferredNotice:
    ctx: EngineContext
    instance: ProcessInstance
    prepared: notices.PreparedNotice
    #: its ``escalated`` and ``notice_issued`` events, appended with placeholders for the notice
    escalated: Event
    issued: Event


def _issue_deferred_notices(session: Session, _flush_context: Any, _instances: Any) -> None:
    """Number, render and insert the notices the escalations of this step prepared, before the
    step's events are written (``insert=True``: ahead of :func:`engine.events._write_pending_events`).

    Then their events get the notice's id, 文号 and title, the instance's audit chain is hashed
    again from the first of them on (the events are not written yet: they are written by this
    same flush), and so do the notifications of ``notice_issued``. The 文号 is thus taken when the
    step is written, the latest point of the transaction the runtime controls.

    :raises Conflict: the dedupe key exists after all (impossible under the instance lock: the
        step is rolled back and retried).
    """
    deferred: list[_DeferredNotice] | None = session.info.pop(_DEFERRED_NOTICES, None)
    for item in deferred or ():
        notice = notices.issue_prepared(session, item.ctx, item.prepared)
        if notice is None:
            raise Conflict("督办文书已由其他操作签发，请重试")
        item.escalated.payload.update(notice_id=notice.id, number=notice.document_number)
        item.issued.payload.update(notice_id=notice.id, number=notice.document_number, title=notice.title)
        _rehash_pending_chain(session, item.ctx, item.instance, item.escalated)
        outbox.update_pending(
            session,
            item.issued,
            notice_id=notice.id,
            notice_number=notice.document_number,
            notice_title=notice.title,
        )


sa_event.listen(Session, "before_flush", _issue_deferred_notices, insert=True)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_deferred_notices(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_DEFERRED_NOTICES, None)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_deferred_notices(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # ended without a flush (closed): nothing is left for the next
        session.info.pop(_DEFERRED_NOTICES, None)


def _rehash_pending_chain(
    session: Session, ctx: EngineContext, instance: ProcessInstance, first: Event
) -> None:
    """Hash ``instance``'s unwritten events again from ``first`` on (whose payload changed)."""
    chain = [e for e in session.info.get(events._PENDING) or () if e.instance_id == instance.id]
    start = next((i for i, e in enumerate(chain) if e is first), None)
    if start is None:  # written already: cannot happen (it is written by the flush that calls us)
        raise RuntimeError(f"event {first.seq} of instance {instance.id} was written before its notice")
    previous = first.prev_hash
    for event in chain[start:]:
        event.prev_hash = previous
        event.hash = events._digest(ctx.audit_key, previous, event)
        previous = event.hash
    instance.last_event_hash = previous


def _separation_keys(props: Mapping[str, str]) -> str:
    keys = [k.strip() for k in props.get("separate_from", "").split(",") if k.strip()]
    return f",{','.join(keys)}," if keys else ""


def _parse_due(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _project(
    session: Session,
    ctx: EngineContext,
    loaded: _Loaded,
    *,
    completed_task_id: str | None = None,
) -> None:
    """Rewrite work items, timer jobs and the hazard's business columns from the workflow."""
    instance, hazard, workflow = loaded.instance, loaded.hazard, loaded.workflow
    _load_projections(session, loaded)
    assert loaded.open_items is not None and loaded.waiting_jobs is not None
    open_items = {k: w for k, w in loaded.open_items.items() if w.state == WorkItemState.OPEN.value}
    ready = bpmn.ready_user_tasks(workflow) if instance.status == InstanceStatus.RUNNING.value else []
    ready_ids = set()
    for task in ready:
        ready_ids.add(task.id)
        props = task.properties
        due_at = (
            _parse_due(task.data.get(props.get("due_variable", ""))) if props.get("due_variable") else None
        )
        item = open_items.get(task.id)
        if item is None:
            item = WorkItem(
                instance_id=instance.id,
                hazard_id=hazard.id,
                spiff_task_id=task.id,
                task_key=task.key,
                title=task.name,
                candidate_role=props["candidate_role"],
                org_scope=props["org_scope"],
                form_key=props["form_key"],
                form_version_id=_pinned_version(instance, props["form_key"]),
                delegable=props.get("delegable", "true") != "false",
                separate_from=_separation_keys(props),
                due_at=due_at,
                created_at=loaded.now,
                state=WorkItemState.OPEN.value,
            )
            session.add(item)
            loaded.open_items[task.id] = item
            _event(session, ctx, loaded, "task_created", task_key=task.key, title=task.name)
        elif item.due_at != due_at:
            item.due_at = due_at
        if (
            due_at is not None
            and due_at != hazard.deadline
            and props.get("due_variable") == "deadline_at"
            and instance.kind == InstanceKind.LOOP.value
        ):
            # a deadline the diagram computed (道路运输: 10日内消除) is the hazard's deadline, as
            # one set by a plan form or an approved extension is
            _set_deadline(hazard, due_at, loaded.now)
            loaded.deadline_moved = True
    for spiff_id, item in open_items.items():
        if spiff_id in ready_ids:
            continue
        state = bpmn.task_state_name(workflow, spiff_id)
        if spiff_id == completed_task_id or state == "COMPLETED":
            item.state = WorkItemState.COMPLETED.value
        else:
            item.state = WorkItemState.CANCELLED.value
            _event(session, ctx, loaded, "task_cancelled", task_key=item.task_key)
        item.completed_at = item.completed_at or loaded.now

    waiting = {t.id: t for t in bpmn.waiting_timers(workflow)} if instance.status == "running" else {}
    jobs = {k: j for k, j in loaded.waiting_jobs.items() if j.state == TimerJobState.WAITING.value}
    for timer_id, timer in waiting.items():
        job = jobs.get(timer_id)
        if job is None:
            job = TimerJob(
                instance_id=instance.id,
                hazard_id=hazard.id,
                spiff_task_id=timer_id,
                timer_key=timer.key,
                due_at=timer.due_at,
                state=TimerJobState.WAITING.value,
            )
            session.add(job)
            loaded.waiting_jobs[timer_id] = job
        elif job.due_at != timer.due_at:
            job.due_at = timer.due_at
            job.attempts = 0
    for timer_id, job in jobs.items():
        if timer_id in waiting:
            continue
        if bpmn.task_state_name(workflow, timer_id) == "COMPLETED":
            job.state = TimerJobState.FIRED.value
            job.fired_at = loaded.now
            _event(session, ctx, loaded, "timer_fired", task_key=job.timer_key, due_at=job.due_at.isoformat())
        else:
            job.state = TimerJobState.CANCELLED.value
        job.lock_owner = None
        job.lock_expires_at = None

    if instance.kind != InstanceKind.LOOP.value:
        if instance.status == InstanceStatus.RUNNING.value and bpmn.workflow_completed(workflow):
            instance.status = InstanceStatus.COMPLETED.value
            instance.completed_at = loaded.now
            _event(session, ctx, loaded, "supervision_completed")
        return
    if instance.status == InstanceStatus.RUNNING.value and bpmn.workflow_completed(workflow):
        instance.status = InstanceStatus.COMPLETED.value
        instance.completed_at = loaded.now
        hazard.status = HazardStatus.CLOSED.value
        hazard.closed_at = loaded.now
        hazard.overdue = False
        _event(session, ctx, loaded, "closed")
    elif instance.status == InstanceStatus.RUNNING.value and ready:
        hazard.status = ready[0].properties.get("status", hazard.status)


def _pinned_version(instance: ProcessInstance, form_key: str) -> int | None:
    version_id = (instance.form_pins or {}).get(form_key)
    return version_id if isinstance(version_id, int) else None


def _set_deadline(hazard: Hazard, deadline: dt.datetime, now: dt.datetime) -> None:
    """A new rectification deadline: a hazard overdue stays so only if the new one has passed too."""
    hazard.deadline = deadline
    hazard.overdue = bool(hazard.overdue) and deadline <= now


def _pin_forms(
    session: Session, instance: ProcessInstance, version: DefinitionVersion, hazard: Hazard
) -> None:
    """Pin the form versions ``version`` uses (and the side-action forms) that ``instance`` has
    not pinned yet: the sector's latest, else the national latest (one query).

    A hazard keeps a pinned version for its whole life; without any published version the
    shipped file form applies (nothing pinned).
    """
    pinned = dict(instance.form_pins or {})
    wanted = (set(form_keys_of(version)) | set(form_versions.ACTION_FORM_KEYS)) - set(pinned)
    if wanted:
        with session.no_autoflush:  # nothing pending is read; a flush here would split a step
            pinned.update(form_versions.form_pins_for(session, wanted, hazard.sector_code))
    instance.form_pins = pinned or None


# --- queries used by the protocol ------------------------------------------------------------------


def _load_projections(session: Session, loaded: _Loaded) -> None:
    """Read the instance's open work items and waiting timer jobs, once per protocol run (under
    the instance lock; later projections keep ``loaded`` current)."""
    params = {"instance_id": loaded.instance.id}
    if loaded.open_items is None:
        open_ = WorkItemState.OPEN.value
        items = session.scalars(_items_statement(), params)
        loaded.open_items = {w.spiff_task_id: w for w in items if w.state == open_}
    if loaded.waiting_jobs is None:
        waiting = TimerJobState.WAITING.value
        jobs = session.scalars(_jobs_statement(), params)
        loaded.waiting_jobs = {j.spiff_task_id: j for j in jobs if j.state == waiting}


def _work_item_for_update(session: Session, work_item_id: int) -> WorkItem:
    item = session.get(WorkItem, work_item_id)
    if item is None:
        raise NotFound("任务", work_item_id)
    return item


def _recheck_item(session: Session, loaded: _Loaded, item: WorkItem, actor: Actor) -> Any:
    """Step 3: the task is still ready and this actor may act on it."""
    if loaded.open_items is None or loaded.open_items.get(item.spiff_task_id) is not item:
        session.refresh(item)  # else the projection re-read it under the lock (populate_existing)
    if item.state != WorkItemState.OPEN.value:
        raise Conflict(f"任务「{item.title}」已{'完成' if item.state == 'completed' else '取消'}，不能再处理")
    task = bpmn.find_ready_task(loaded.workflow, item.spiff_task_id)
    if task is None:
        raise Conflict(f"任务「{item.title}」已不在待办状态")
    if not can_act_as(actor, item.candidate_role, loaded.hazard, org_scope=item.org_scope):
        raise Forbidden(f"您没有办理任务「{item.title}」的权限（需要角色 {item.candidate_role}）")
    return task


def _hazard_for_item(session: Session, work_item_id: int, actor: Actor) -> WorkItem:
    """The work item; whether the actor may see its hazard is checked under the instance lock.

    Callers pass ``not_found=NotFound("任务", work_item_id)`` to :func:`_protocol`, which reads
    the hazard once, fresh, after locking (reading it here as well cost a query per step).
    """
    return _work_item_for_update(session, work_item_id)


# --- registration ------------------------------------------------------------------------------------


def _next_number(session: Session, scope: str, year: int) -> int:
    """Increment a per-scope, per-year counter under its row lock (gap-free, concurrency-safe)."""
    for _ in range(3):
        value = session.scalar(
            update(NumberSequence)
            .where(NumberSequence.scope == scope, NumberSequence.year == year)
            .values(value=NumberSequence.value + 1)
            .returning(NumberSequence.value)
        )
        if value is not None:
            return int(value)
        try:
            with session.begin_nested():
                session.add(NumberSequence(scope=scope, year=year, value=1))
            return 1
        except IntegrityError:
            continue
    raise Conflict("编号分配冲突，请重试")


def _default_lead_department(session: Session, sector_code: str, region: Region) -> int | None:
    """谁主管谁牵头: the department leading the sector nearest the enterprise's region."""
    rows = session.execute(
        select(Department.id, Region.path)
        .join(DepartmentSector, DepartmentSector.department_id == Department.id)
        .join(Region, Region.id == Department.region_id)
        .where(DepartmentSector.sector_code == sector_code, DepartmentSector.leads.is_(True))
    ).all()
    candidates = [(len(path), dept_id) for dept_id, path in rows if region.path.startswith(path)]
    return max(candidates)[1] if candidates else None


_REGISTER_FIELDS = {
    "title",
    "description",
    "location",
    "enterprise_id",
    "sector_code",
    "lead_department_id",
    "co_department_ids",
    "source",
    "grade",
    "determination_basis",
    "handling_type",
    "discovered_at",
    "discovered_by",
    "deadline",
    "stop_production",
    "interim_measures",
    "listed_level",
    "suppress_escalation_until",
}


def _registration_errors(data: Mapping[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key in set(data) - _REGISTER_FIELDS:
        errors[key] = ["未知字段"]
    for key, limit in (("title", 200), ("description", 10000), ("location", 300)):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            errors[key] = ["必填"]
        elif len(value) > limit:
            errors[key] = [f"不能超过 {limit} 个字符"]
    if not isinstance(data.get("enterprise_id"), int) or isinstance(data.get("enterprise_id"), bool):
        errors["enterprise_id"] = ["必须是企业编号（整数）"]
    if data.get("grade") not in {g.value for g in Grade}:
        errors["grade"] = ["必须是 general（一般）、prominent（突出）或 major（重大）"]
    if data.get("source") not in {s.value for s in HazardSource}:
        errors["source"] = [f"来源必须是 {', '.join(s.value for s in HazardSource)} 之一"]
    handling = data.get("handling_type", HandlingType.DEADLINE.value)
    if handling not in {h.value for h in HandlingType}:
        errors["handling_type"] = ["必须是 immediate（即查即改）或 deadline（限期整改）"]
    for key in ("discovered_at", "deadline", "suppress_escalation_until"):
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            errors[key] = ["必须是带时区的时间"]
    if data.get("discovered_at") is None:
        errors.setdefault("discovered_at", ["必填"])
    listed = data.get("listed_level")
    if listed is not None and (not isinstance(listed, int) or not 1 <= listed <= 4):
        errors["listed_level"] = ["挂牌级别必须是 1–4"]
    co = data.get("co_department_ids", [])
    if not isinstance(co, list) or not all(isinstance(i, int) for i in co):
        errors["co_department_ids"] = ["必须是部门编号列表"]
    return errors


def register_hazard(session: Session, ctx: EngineContext, *, actor: Actor, data: Mapping[str, Any]) -> Hazard:
    """登记隐患 and start its loop on the definition bound to its grade and sector.

    ``discovered_at`` and ``deadline`` may lie in the past (back-filling the 存量 stock).

    :raises InvalidInput: field errors (keys are field names).
    :raises Forbidden: the actor may not register hazards for this enterprise.
    """
    errors = _registration_errors(data)
    if errors:
        raise InvalidInput(errors)
    enterprise = session.get(Enterprise, data["enterprise_id"])
    if enterprise is None:
        raise InvalidInput({"enterprise_id": ["企业不存在"]})
    sector_code = data.get("sector_code") or enterprise.sector_code
    if session.get(Sector, sector_code) is None:
        raise InvalidInput({"sector_code": ["行业不存在"]})
    grade = data["grade"]
    handling = data.get("handling_type", HandlingType.DEADLINE.value)
    if grade != Grade.GENERAL.value:
        handling = HandlingType.DEADLINE.value  # 突出限期整改、重大挂账整改: never 即查即改
    region = enterprise.region
    default_lead = _default_lead_department(session, sector_code, region)
    lead = data.get("lead_department_id") or default_lead
    if data.get("lead_department_id") and session.get(Department, data["lead_department_id"]) is None:
        raise InvalidInput({"lead_department_id": ["部门不存在"]})
    co_ids = sorted(set(data.get("co_department_ids", [])))
    for dept_id in co_ids:
        if session.get(Department, dept_id) is None:
            raise InvalidInput({"co_department_ids": [f"部门 {dept_id} 不存在"]})
    now = ctx.clock.now()
    hazard = Hazard(
        number="pending",
        title=data["title"].strip(),
        description=data["description"].strip(),
        location=data["location"].strip(),
        enterprise_id=enterprise.id,
        region_id=region.id,
        region_path=region.path,
        sector_code=sector_code,
        lead_department_id=default_lead,
        source=data["source"],
        grade=grade,
        determination_basis=data.get("determination_basis"),
        handling_type=handling,
        interim_measures=data.get("interim_measures"),
        stop_production=bool(data.get("stop_production", False)),
        deadline=data.get("deadline"),
        status=HazardStatus.REGISTERED.value,
        listed_level=None,  # set by the 挂牌督办通知书 the supervision track issues
        escalation_suppressed_until=data.get("suppress_escalation_until"),
        discovered_at=data["discovered_at"],
        discovered_by=data.get("discovered_by") or actor.display_name,
        created_by_id=actor.user_id or None,
        created_at=now,
        updated_at=now,
    )
    # Scope is checked on the registrant's own standing (enterprise, region, sector, default lead):
    # naming one's own department as lead or co-responsible in the same request must not grant it.
    if not can_see(actor, hazard):
        raise Forbidden("您无权为该企业登记隐患")
    if (data.get("lead_department_id") or co_ids) and not (actor.roles & SUPERVISING_OR_INSPECTING):
        raise Forbidden("只有负有监管职责的部门或安委办可以指定牵头部门或协同部门")
    for field_name, dept_ids in (
        ("lead_department_id", [lead] if lead else []),
        ("co_department_ids", co_ids),
    ):
        for dept_id in dept_ids:
            dept = session.get_one(Department, dept_id)
            if not region.path.startswith(dept.region.path):
                raise InvalidInput({field_name: [f"{dept.name} 不管辖该企业所在地区"]})
    hazard.lead_department_id = lead
    hazard.co_departments = [HazardDepartment(department_id=d) for d in co_ids]
    year = now.astimezone(ctx.tz).year
    hazard.number = f"YH-{region.code}-{year}-{_next_number(session, 'hazard:' + region.code, year):05d}"
    session.add(hazard)
    session.flush()
    _start_instance(session, ctx, hazard, actor=actor, action="registered")
    previous = _recurrence_of(session, hazard)
    listed = data.get("listed_level")
    if previous is not None or listed is not None:
        with _protocol(session, ctx, hazard.id, actor=None) as loaded:
            if listed is not None:
                # 挂牌督办 from registration (DOMAIN §4.3 note a): the listing decision is made
                _start_supervision(session, ctx, loaded, level=listed, reason="registration")
            if previous is not None:
                _event(
                    session,
                    ctx,
                    loaded,
                    "recurrence_detected",
                    previous_id=previous.id,
                    number=previous.number,
                )
                _escalate(
                    session,
                    ctx,
                    loaded,
                    [EscalationRequest("", "recurrence")],
                    facts={
                        "previous_number": previous.number,
                        "previous_closed_at": previous.closed_at.isoformat() if previous.closed_at else None,
                    },
                )
    return hazard


def _recurrence_of(session: Session, hazard: Hazard) -> Hazard | None:
    """A closed hazard at the same enterprise and location (场所/部位), most recently closed first."""
    return session.scalars(
        select(Hazard)
        .where(
            Hazard.enterprise_id == hazard.enterprise_id,
            func.lower(func.trim(Hazard.location)) == hazard.location.strip().lower(),
            Hazard.status == HazardStatus.CLOSED.value,
            Hazard.id != hazard.id,
        )
        .order_by(Hazard.closed_at.desc(), Hazard.id.desc())
        .limit(1)
    ).first()


def _ladder_data(profile: policy.PolicyProfile) -> dict[str, list[Any]]:
    """The pinned ladder as timer data: ``{rung: [n, unit]}`` (``n`` < 0: before the deadline)."""
    data: dict[str, list[Any]] = {}
    for key, rung in policy.ladder_of(profile).rungs.items():
        if rung.offset is None:
            continue
        value = policy.policy_value(profile, rung.offset)
        data[key] = [-value.value if key == "urge_before" else value.value, value.unit]
    return data


def _start_instance(
    session: Session,
    ctx: EngineContext,
    hazard: Hazard,
    *,
    actor: Actor | None,
    action: str,
    kind: InstanceKind = InstanceKind.LOOP,
    extra: Mapping[str, Any] | None = None,
) -> ProcessInstance:
    track = "supervision" if kind == InstanceKind.SUPERVISION else hazard.grade
    version = resolve_definition(
        session, grade=track, sector_code=hazard.sector_code, region_path=hazard.region_path
    )
    spec, subs = spec_for(version)
    _refresh_calendar(session, ctx)
    workflow = bpmn.new_workflow(spec, subs)
    start = workflow.task_tree
    now = ctx.clock.now()
    start.data.update(
        {
            "grade": hazard.grade,
            "handling": hazard.handling_type,
            "max_rejects": ctx.settings.max_rejects,
            "failed_verifications": 0,
            "deadline_at": hazard.deadline.isoformat() if hazard.deadline else None,
            "decision": None,
            "verified": None,
            "last_progress_at": now.isoformat(),
            "escalation_not_before": (
                hazard.escalation_suppressed_until.isoformat() if hazard.escalation_suppressed_until else None
            ),
        }
    )
    start.data.update(extra or {})
    # the policy profile (deadline rules, escalation ladder) is pinned to the instance at start:
    # the one the diagram names (its process property ``policy_profile``), else the most specific
    # for the hazard's sector and region
    chosen = process_properties(version).get(POLICY_PROFILE_PROPERTY)
    profile = (
        policy.get_profile(session, chosen.strip())
        if chosen
        else policy.resolve_policy(session, hazard.sector_code, hazard.region_path)
    )
    # values the diagram's expressions read (policy_<name>, e.g. the fire variant's 6 months)
    exposed = policy_names_of(version)
    if kind == InstanceKind.SUPERVISION:
        policy.pin_policy(start.data, profile, expose=sorted(exposed | set(SUPERVISION_POLICY_VALUES)))
        longest = policy.policy_value(profile, "listing_max_duration")
        expires = policy.deadline_for(working_calendar.current_calendar(), longest, now)
        start.data["listing_expires_at"] = expires.at.isoformat()
    else:
        policy.pin_policy(start.data, profile, expose=sorted(exposed))
    start.data["ladder"] = _ladder_data(profile)
    instance = ProcessInstance(
        hazard_id=hazard.id,
        kind=kind.value,
        definition_version_id=version.id,
        status=InstanceStatus.RUNNING.value,
        state=b"",
        serializer_version=bpmn.SERIALIZER_VERSION,
        created_at=now,
        updated_at=now,
    )
    instance.definition_version = version
    _pin_forms(session, instance, version, hazard)
    session.add(instance)
    session.flush()
    # a new instance has no work items or timer jobs yet: nothing to query
    loaded = _Loaded(instance, hazard, workflow, now, open_items={}, waiting_jobs={})
    _event(
        session,
        ctx,
        loaded,
        action,
        actor=actor,
        number=hazard.number,
        grade=hazard.grade,
        handling=hazard.handling_type,
        definition=f"{version.process_key}@{version.version}",
        policy=f"{profile.key}@{profile.version}",
    )
    workflow.do_engine_steps()
    _apply_effects(session, ctx, loaded)
    _project(session, ctx, loaded)
    instance.state = bpmn.dump_state(workflow)
    session.flush()
    _remember_saved(session, instance, workflow)
    return instance


# --- 挂牌督办: the listing flag and the supervision track --------------------------------------------

#: policy values processes/supervision.bpmn reads (备案, 公告, 现场验收, 摘牌公告 periods)
SUPERVISION_POLICY_VALUES = (
    "listing_filing",
    "listing_announcement",
    "closure_review",
    "delisting_announcement",
)
#: 挂牌督办 level by the issuing government's region level (1 省级 … 4 乡镇级)
LISTING_LEVELS = {"province": 1, "city": 2, "county": 3, "township": 4}
LISTING_LEVEL_LABELS = {1: "省级", 2: "市级", 3: "县级", 4: "乡镇级"}
#: the policy value giving each supervision notice's response or publication deadline
_TRACK_NOTICE_RESPONSE = {
    "listing_notice": "listing_filing",
    "listing_announcement": "listing_announcement",
    "delisting_notice": "delisting_announcement",
    "delisting_announcement": None,
    "higher_referral": "notice_response_period",
}


def _start_supervision(
    session: Session, ctx: EngineContext, loaded: _Loaded, *, level: int | None, reason: str
) -> ProcessInstance | None:
    """Start the hazard's 挂牌督办 track unless one is running (or the hazard is listed already)."""
    current = _supervision_instance(session, loaded.hazard.id)
    if current is not None and current.status == InstanceStatus.RUNNING.value:
        return None
    instance = _start_instance(
        session,
        ctx,
        loaded.hazard,
        actor=None,
        action="supervision_started",
        kind=InstanceKind.SUPERVISION,
        extra={"listed_level": level, "listing_reason": reason, "loop_instance_id": loaded.instance.id},
    )
    _event(session, ctx, loaded, "supervision_started", instance_id=instance.id, level=level, reason=reason)
    return instance


def _issue_track_notice(
    session: Session, ctx: EngineContext, loaded: _Loaded, kind: str, *, task_key: str | None
) -> Notice | None:
    """A 挂牌督办 document issued by the supervision track (issuer and recipients of the pinned
    profile's ``listing`` rung; the listing government's 提请上级政府督办 goes to the next-higher
    government)."""
    hazard, instance = loaded.hazard, loaded.instance
    profile = policy.pinned_policy(session, loaded.workflow.task_tree.data)
    listing = policy.ladder_of(profile).rung("listing")
    data = loaded.workflow.task_tree.data
    level = (
        hazard.listed_level or data.get("listed_level") or LISTING_LEVELS.get(listing.issuer_level or "", 3)
    )
    issuer_level = next((k for k, v in LISTING_LEVELS.items() if v == level), listing.issuer_level)
    rung = replace(
        listing,
        kind=kind,
        template=kind,
        label=policy.NOTICE_KINDS[kind],
        issuer_level=issuer_level,
        response=_TRACK_NOTICE_RESPONSE[kind],
        recipients=("enterprise", "principal", "competent_department", "higher_government")
        if kind == "higher_referral"
        else listing.recipients,
    )
    notice = notices.issue_notice(
        session,
        ctx,
        hazard=hazard,
        instance_id=instance.id,
        rung=rung,
        trigger="listing",
        dedupe_key=f"instance:{instance.id}:{kind}",
        due_at=loaded.now,
        profile=profile,
        facts={"listed_level": level, "listed_level_label": LISTING_LEVEL_LABELS.get(level, "")},
    )
    if notice is None:
        return None
    if kind == "listing_notice":
        hazard.listed_level = level
        hazard.escalation_level = max(hazard.escalation_level or 0, listing.level)
        _event(session, ctx, loaded, "listed", task_key=task_key, level=level, number=notice.document_number)
    elif kind == "delisting_notice":
        hazard.listed_level = None
        _event(session, ctx, loaded, "delisted", task_key=task_key, number=notice.document_number)
    _event(
        session,
        ctx,
        loaded,
        "notice_issued",
        task_key=task_key,
        notice_id=notice.id,
        number=notice.document_number,
        kind=notice.kind,
        title=notice.title,
        rung=kind,
    )
    return notice


# --- task actions -----------------------------------------------------------------------------------


def claim(session: Session, ctx: EngineContext, *, work_item_id: int, actor: Actor) -> WorkItem:
    """认领: take a group task as one's own.

    :raises Conflict: already claimed by someone else, or no longer open.
    """
    item = _hazard_for_item(session, work_item_id, actor)
    with _protocol(
        session,
        ctx,
        item.hazard_id,
        actor=actor,
        not_found=NotFound("任务", work_item_id),
        instance_id=item.instance_id,
    ) as loaded:
        _recheck_item(session, loaded, item, actor)
        if item.assignee_id not in (None, actor.user_id):
            raise Conflict(f"任务「{item.title}」已被他人认领")
        item.assignee_id = actor.user_id
        item.claimed_at = loaded.now
        _event(session, ctx, loaded, "claimed", actor=actor, task_key=item.task_key)
    return item


def release(session: Session, ctx: EngineContext, *, work_item_id: int, actor: Actor) -> WorkItem:
    """释放: hand a claimed task back to the group."""
    item = _hazard_for_item(session, work_item_id, actor)
    with _protocol(
        session,
        ctx,
        item.hazard_id,
        actor=actor,
        not_found=NotFound("任务", work_item_id),
        instance_id=item.instance_id,
    ) as loaded:
        _recheck_item(session, loaded, item, actor)
        if item.assignee_id != actor.user_id:
            raise Conflict(f"任务「{item.title}」不是由您认领的")
        item.assignee_id = None
        item.claimed_at = None
        _event(session, ctx, loaded, "released", actor=actor, task_key=item.task_key)
    return item


def delegate(
    session: Session, ctx: EngineContext, *, work_item_id: int, actor: Actor, to_user_id: int
) -> WorkItem:
    """转办: give a task to another user who holds its role in scope.

    :raises Forbidden: the task is not delegable (e.g. the 主要负责人's own sign-off) or the
        target may not act on it.
    """
    item = _hazard_for_item(session, work_item_id, actor)
    target = load_actor(session, to_user_id)
    with _protocol(
        session,
        ctx,
        item.hazard_id,
        actor=actor,
        not_found=NotFound("任务", work_item_id),
        instance_id=item.instance_id,
    ) as loaded:
        _recheck_item(session, loaded, item, actor)
        if not item.delegable:
            raise Forbidden(f"任务「{item.title}」须本人办理，不能转办")
        if item.assignee_id not in (None, actor.user_id):
            raise Conflict(f"任务「{item.title}」已被他人认领")
        if not can_act_as(target, item.candidate_role, loaded.hazard, org_scope=item.org_scope):
            raise Forbidden(f"{target.display_name} 没有办理该任务的权限")
        item.assignee_id = target.user_id
        item.claimed_at = loaded.now
        _event(
            session, ctx, loaded, "delegated", actor=actor, task_key=item.task_key, to_user_id=target.user_id
        )
    return item


def _check_separation(
    session: Session, loaded: _Loaded, item: WorkItem, props: Mapping[str, str], actor: Actor
) -> None:
    keys = [k.strip() for k in props.get("separate_from", "").split(",") if k.strip()]
    if not keys:
        return
    did_it = session.scalar(
        select(WorkItem.id).where(
            WorkItem.instance_id == loaded.instance.id,
            WorkItem.task_key.in_(keys),
            WorkItem.state == WorkItemState.COMPLETED.value,
            WorkItem.completed_by_id == actor.user_id,
        )
    )
    if did_it is not None:
        raise Forbidden(f"「{item.title}」不能由整改人本人办理（验收人不得为整改人）")


def _check_attachments(
    session: Session, ctx: EngineContext, hazard: Hazard, form: FormDefinition, data: Mapping[str, Any]
) -> None:
    errors: dict[str, list[str]] = {}
    for f in form.fields:
        if f.type not in ("photo", "file") or not data.get(f.name):
            continue
        ids = list(data[f.name])
        rows = {a.id: a for a in session.scalars(select(Attachment).where(Attachment.id.in_(ids)))}
        missing = [i for i in ids if i not in rows or rows[i].hazard_id != hazard.id]
        if missing:
            errors[f.name] = [f"附件 {missing} 不存在或不属于该隐患"]
            continue
        if getattr(f, "phase", None) == "after":
            before = set(
                session.scalars(
                    select(Attachment.sha256).where(
                        Attachment.hazard_id == hazard.id, Attachment.phase == "before"
                    )
                )
            )
            same = [i for i in ids if rows[i].sha256 in before]
            if same:
                errors[f.name] = ["整改后照片与整改前照片完全相同，疑似虚假整改"]
    if errors:
        raise InvalidInput(errors)


def _plan_gaps(hazard: Hazard) -> list[str]:
    gaps = []
    for attr, label in PLAN_ITEMS.items():
        value = getattr(hazard, attr)
        if value is None or (isinstance(value, str) and not value.strip()):
            gaps.append(label)
    return gaps


def complete(
    session: Session,
    ctx: EngineContext,
    *,
    work_item_id: int,
    actor: Actor,
    form: Mapping[str, Any],
) -> WorkItem:
    """Complete a work item with its form; a late completion is accepted and marked late.

    :raises InvalidInput: the form failed validation (field errors), or the 治理方案 is incomplete.
    :raises Forbidden: the actor may not complete it (role, scope, verifier = rectifier).
    :raises Conflict: the task is no longer open, or someone else claimed or completed it first.
    """
    item = _hazard_for_item(session, work_item_id, actor)
    with _protocol(
        session,
        ctx,
        item.hazard_id,
        actor=actor,
        not_found=NotFound("任务", work_item_id),
        instance_id=item.instance_id,
    ) as loaded:
        task = _recheck_item(session, loaded, item, actor)
        if item.assignee_id not in (None, actor.user_id):
            raise Conflict(f"任务「{item.title}」已被他人认领")
        props = task.task_spec.extensions.get("properties", {})
        _check_separation(session, loaded, item, props, actor)
        definition = form_versions.form_for_item(session, ctx, item)
        validated = definition.validate(form)
        _check_attachments(session, ctx, loaded.hazard, definition, validated)
        variables = dict(definition.routing_values(validated))
        hazard = loaded.hazard
        if item.form_key == "principal_signoff" and variables.get("decision") == "pass":
            gaps = _plan_gaps(hazard)
            if gaps:
                raise InvalidInput({"decision": [f"治理方案不完整，缺少: {'、'.join(gaps)}"]})
        deadline_field = definition.deadline_field
        if deadline_field:
            due_day = dt.date.fromisoformat(str(validated[deadline_field]))
            registered = hazard.deadline.astimezone(ctx.tz).date() if hazard.deadline else None
            # back-filled stock (存量) may keep the deadline it was registered with, even if past
            if due_day < loaded.now.astimezone(ctx.tz).date() and due_day != registered:
                raise InvalidInput(
                    {deadline_field: ["整改期限不能早于今天（补录的存量隐患可沿用登记时的原定期限）"]}
                )
            deadline = ctx.end_of_business_day(due_day)
            hazard.deadline = deadline
            hazard.overdue = False
            variables["deadline_at"] = deadline.isoformat()
        for field_name, attr in PLAN_FIELDS.items():
            if validated.get(field_name) not in (None, ""):
                value = validated[field_name]
                setattr(hazard, attr, Decimal(str(value)) if attr == "funds" else value)
        if "stop_production" in validated:
            hazard.stop_production = validated["stop_production"] != "none"
        if props.get("verification") == "true" and variables.get("decision") == "reject":
            hazard.failed_verifications = (hazard.failed_verifications or 0) + 1
            variables["failed_verifications"] = hazard.failed_verifications
        late = item.due_at is not None and loaded.now > item.due_at
        session.add(
            TaskSubmission(
                hazard_id=hazard.id,
                work_item_id=item.id,
                form_key=item.form_key,
                data=validated,
                late=late,
                submitted_by_id=actor.user_id,
                submitted_at=loaded.now,
            )
        )
        item.state = WorkItemState.COMPLETED.value
        item.completed_at = loaded.now
        item.completed_by_id = actor.user_id
        item.completed_late = late
        item.assignee_id = actor.user_id
        if late and props.get("due_variable") == "deadline_at":
            hazard.rectified_late = True
        if item.task_key in ("rectify", "fix_on_spot", "govern"):
            hazard.overdue = False if not late else hazard.overdue
        _event(
            session,
            ctx,
            loaded,
            "task_completed",
            actor=actor,
            task_key=item.task_key,
            form_key=item.form_key,
            late=late,
            **{k: v for k, v in variables.items() if k in ("decision", "verified")},
        )
        if loaded.instance.kind == InstanceKind.LOOP.value:
            variables["last_progress_at"] = loaded.now.isoformat()  # completing a step is progress
        bpmn.complete_task(loaded.workflow, task, variables)
        _apply_effects(session, ctx, loaded)
        _project(session, ctx, loaded, completed_task_id=item.spiff_task_id)
    if (deadline_field or loaded.deadline_moved) and hazard.deadline is not None:
        _move_track_deadline(session, ctx, hazard.id, hazard.deadline, "deadline_set", task_key=item.task_key)
    return item


# --- actions beside the happy path ---------------------------------------------------------------------


def _require_open(hazard: Hazard) -> None:
    if hazard.status in (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value):
        raise Conflict(f"隐患 {hazard.number} 已{'销号' if hazard.status == 'closed' else '作废'}")


def update_progress(
    session: Session, ctx: EngineContext, *, hazard_id: int, actor: Actor, form: Mapping[str, Any]
) -> TaskSubmission:
    """动态更新整改落实情况 (progress update) by the enterprise side."""
    with _protocol(session, ctx, hazard_id, actor=actor) as loaded:
        hazard = loaded.hazard
        _require_open(hazard)
        if not any(can_act_as(actor, r, hazard) for r in ENTERPRISE_SIDE_ROLES):
            raise Forbidden("只有企业整改相关人员可以更新整改进展")
        definition = form_versions.pinned_form(session, ctx, loaded.instance.form_pins, "progress_update")
        validated = definition.validate(form)
        _check_attachments(session, ctx, hazard, definition, validated)
        hazard.progress_percent = int(validated["progress_percent"])
        hazard.last_progress_at = loaded.now
        bpmn.set_variable(loaded.workflow, "last_progress_at", loaded.now.isoformat())
        submission = TaskSubmission(
            hazard_id=hazard.id,
            form_key="progress_update",
            data=validated,
            submitted_by_id=actor.user_id,
            submitted_at=loaded.now,
        )
        session.add(submission)
        _event(session, ctx, loaded, "progress_updated", actor=actor, percent=hazard.progress_percent)
    return submission


def request_extension(
    session: Session, ctx: EngineContext, *, hazard_id: int, actor: Actor, form: Mapping[str, Any]
) -> ExtensionRequest:
    """延期申请: the enterprise asks for a later deadline; a department decides.

    :raises Conflict: no deadline yet, or another request is pending.
    :raises InvalidInput: the requested date is not after the current deadline.
    """
    with _protocol(session, ctx, hazard_id, actor=actor) as loaded:
        hazard = loaded.hazard
        _require_open(hazard)
        if not any(can_act_as(actor, r, hazard) for r in ENTERPRISE_SIDE_ROLES):
            raise Forbidden("只有企业整改相关人员可以申请延期")
        if hazard.deadline is None:
            raise Conflict("该隐患尚未确定整改期限，无需申请延期")
        pending = session.scalar(
            select(ExtensionRequest.id).where(
                ExtensionRequest.hazard_id == hazard.id,
                ExtensionRequest.state == ExtensionState.PENDING.value,
            )
        )
        if pending is not None:
            raise Conflict("已有待审批的延期申请")
        definition = form_versions.pinned_form(session, ctx, loaded.instance.form_pins, "extension_request")
        validated = definition.validate(form)
        new_deadline = ctx.end_of_business_day(dt.date.fromisoformat(validated["requested_due_date"]))
        if new_deadline <= hazard.deadline:
            raise InvalidInput({"requested_due_date": ["延期后的期限必须晚于当前期限"]})
        request = ExtensionRequest(
            hazard_id=hazard.id,
            requested_by_id=actor.user_id,
            requested_at=loaded.now,
            old_deadline=hazard.deadline,
            new_deadline=new_deadline,
            reason=validated["reason"],
        )
        session.add(request)
        session.flush()
        _event(
            session,
            ctx,
            loaded,
            "extension_requested",
            actor=actor,
            request_id=request.id,
            new_deadline=new_deadline.isoformat(),
        )
    return request


def decide_extension(
    session: Session, ctx: EngineContext, *, request_id: int, actor: Actor, form: Mapping[str, Any]
) -> ExtensionRequest:
    """Approve or deny an extension; approval moves the real SpiffWorkflow timers and timer jobs."""
    request = session.get(ExtensionRequest, request_id)
    if request is None:
        raise NotFound("延期申请", request_id)
    with _protocol(session, ctx, request.hazard_id, actor=actor) as loaded:
        hazard = loaded.hazard
        session.refresh(request)
        if request.state != ExtensionState.PENDING.value:
            raise Conflict("该延期申请已处理")
        if not can_act_as_any(actor, SUPERVISING_ROLES, hazard):
            raise Forbidden("只有负有监管职责的部门可以审批延期")
        definition = form_versions.pinned_form(session, ctx, loaded.instance.form_pins, "extension_decision")
        validated = definition.validate(form)
        request.decided_by_id = actor.user_id
        request.decided_at = loaded.now
        request.decision_note = validated["opinion"]
        if validated["decision"] == "approve":
            request.state = ExtensionState.APPROVED.value
            _set_deadline(hazard, request.new_deadline, loaded.now)
            moved = bpmn.set_variable(loaded.workflow, "deadline_at", request.new_deadline.isoformat())
            bpmn.advance(loaded.workflow)
            _apply_effects(session, ctx, loaded)
            _project(session, ctx, loaded)
            _event(
                session,
                ctx,
                loaded,
                "extension_approved",
                actor=actor,
                request_id=request.id,
                new_deadline=request.new_deadline.isoformat(),
                timers_moved=moved,
            )
        else:
            request.state = ExtensionState.DENIED.value
            _event(session, ctx, loaded, "extension_denied", actor=actor, request_id=request.id)
    if request.state == ExtensionState.APPROVED.value:
        _move_track_deadline(
            session, ctx, request.hazard_id, request.new_deadline, "extension_approved", request_id=request.id
        )
    return request


def _move_track_deadline(
    session: Session, ctx: EngineContext, hazard_id: int, deadline: dt.datetime, action: str, **payload: Any
) -> None:
    """A deadline set by the plan or moved by an approved extension also moves the running
    挂牌督办 track's deadline and its timers."""
    track = _supervision_instance(session, hazard_id)
    if track is None or track.status != InstanceStatus.RUNNING.value:
        return
    with _protocol(session, ctx, hazard_id, actor=None, instance_id=track.id) as loaded:
        moved = bpmn.set_variable(loaded.workflow, "deadline_at", deadline.isoformat())
        bpmn.advance(loaded.workflow)
        _apply_effects(session, ctx, loaded)
        _project(session, ctx, loaded)
        _event(session, ctx, loaded, action, new_deadline=deadline.isoformat(), timers_moved=moved, **payload)


VIOLATIONS = {"refusal": "拒不整改", "fake_rectification": "虚假整改"}


def record_violation(
    session: Session, ctx: EngineContext, *, hazard_id: int, actor: Actor, kind: str, note: str
) -> Hazard:
    """Record 拒不整改 / 虚假整改: jumps straight to referral for accountability (L6)."""
    if kind not in VIOLATIONS:
        raise InvalidInput({"kind": [f"必须是 {', '.join(VIOLATIONS)} 之一"]})
    if not note or not note.strip():
        raise InvalidInput({"note": ["必须说明情况"]})
    with _protocol(session, ctx, hazard_id, actor=actor) as loaded:
        hazard = loaded.hazard
        _require_open(hazard)
        if not can_act_as_any(actor, (*SUPERVISING_ROLES, Role.INSPECTOR), hazard):
            raise Forbidden("只有负有监管职责的部门可以认定拒不整改或虚假整改")
        _event(
            session,
            ctx,
            loaded,
            "violation_recorded",
            actor=actor,
            kind=kind,
            label=VIOLATIONS[kind],
            note=note,
        )
        # straight to referral for accountability (L6), without waiting for the ladder
        _escalate(session, ctx, loaded, [EscalationRequest("", kind)], facts={"violation_note": note.strip()})
        hazard.escalation_level = MAX_ESCALATION_LEVEL
    return hazard


def void(session: Session, ctx: EngineContext, *, hazard_id: int, actor: Actor, reason: str) -> Hazard:
    """作废 (duplicate, not substantiated …): cancels the loop, keeps every record."""
    if not reason or not reason.strip():
        raise InvalidInput({"reason": ["作废必须填写原因"]})
    with _protocol(session, ctx, hazard_id, actor=actor) as loaded:
        hazard = loaded.hazard
        _require_open(hazard)
        if not can_act_as_any(actor, SUPERVISING_ROLES, hazard):
            raise Forbidden("只有负有监管职责的部门或安委办可以作废隐患")
        bpmn.cancel(loaded.workflow)
        loaded.instance.status = InstanceStatus.CANCELLED.value
        loaded.instance.completed_at = loaded.now
        _project(session, ctx, loaded)
        hazard.status = HazardStatus.VOIDED.value
        hazard.voided_at = loaded.now
        hazard.void_reason = reason.strip()
        _event(session, ctx, loaded, "voided", actor=actor, reason=reason.strip())
    return hazard


def reopen(session: Session, ctx: EngineContext, *, hazard_id: int, actor: Actor, reason: str) -> Hazard:
    """重开: an authorised department restarts the loop of a closed or voided hazard (new instance)."""
    if not reason or not reason.strip():
        raise InvalidInput({"reason": ["重开必须填写原因"]})
    instance = _lock_instance(session, hazard_id)
    hazard = session.get_one(Hazard, hazard_id, populate_existing=True)
    if not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    if hazard.status not in (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value):
        raise Conflict("只有已销号或已作废的隐患可以重开")
    if not can_act_as_any(actor, SUPERVISING_ROLES, hazard):
        raise Forbidden("只有负有监管职责的部门或安委办可以重开隐患")
    previous = instance.id
    hazard.status = HazardStatus.REGISTERED.value
    hazard.closed_at = None
    hazard.voided_at = None
    hazard.void_reason = None
    hazard.failed_verifications = 0
    hazard.overdue = False
    hazard.deadline = None
    if hazard.grade != Grade.GENERAL.value:
        hazard.handling_type = HandlingType.DEADLINE.value
    _start_instance(session, ctx, hazard, actor=actor, action="reopened")
    new_instance = _lock_instance(session, hazard_id)
    append_event(
        session,
        new_instance,
        key=ctx.audit_key,
        action="reopen_reason",
        at=ctx.clock.now(),
        actor_id=actor.user_id,
        payload={"reason": reason.strip(), "previous_instance_id": previous},
    )
    return hazard


# --- timers -----------------------------------------------------------------------------------------


def fire_timer(
    session: Session,
    ctx: EngineContext,
    *,
    timer_job_id: int,
    hazard_id: int | None = None,
    instance_id: int | None = None,
) -> str:
    """Run the protocol for a due timer job; returns its resulting state.

    The job is only a trigger: SpiffWorkflow decides under the instance lock whether the timer
    fires, so it fires exactly once however many callers race. The scheduler passes the job's
    ``hazard_id`` and ``instance_id`` (read back by its claim), so the job is not read before the
    lock; the state comes from the projection, which read the job under the lock.

    :raises NotFound: no such job.
    """
    if hazard_id is None or instance_id is None:
        job = session.get(TimerJob, timer_job_id)
        if job is None:
            raise NotFound("定时任务", timer_job_id)
        hazard_id, instance_id = job.hazard_id, job.instance_id
    with _protocol(session, ctx, hazard_id, actor=None, instance_id=instance_id) as loaded:
        pass
    for projected in (loaded.waiting_jobs or {}).values():
        if projected.id == timer_job_id:
            return projected.state  # flushed by the protocol's save
    # not waiting when the instance was locked (settled before, or the instance is not running)
    state = session.scalar(select(TimerJob.state).where(TimerJob.id == timer_job_id))
    if state is None:
        raise NotFound("定时任务", timer_job_id)
    return state


# --- attachments ----------------------------------------------------------------------------------------


def add_attachment(
    session: Session,
    ctx: EngineContext,
    *,
    hazard_id: int,
    actor: Actor,
    filename: str,
    mime_type: str,
    content: bytes,
    phase: str,
    work_item_id: int | None = None,
    exif_taken_at: dt.datetime | None = None,
    gps_lat: float | None = None,
    gps_lon: float | None = None,
) -> Attachment:
    """Store an attachment's bytes under its sha256 and record its metadata (EXIF time, GPS).

    :raises InvalidInput: empty or too large, or an "after" photo identical to a "before" photo
        of the same hazard (虚假整改).
    """
    hazard = session.get(Hazard, hazard_id)
    if hazard is None or not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    if phase not in ("before", "after", "document"):
        raise InvalidInput({"phase": ["必须是 before、after 或 document"]})
    if not content:
        raise InvalidInput({"file": ["文件为空"]})
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise InvalidInput({"file": [f"文件不能超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB"]})
    digest = hashlib.sha256(content).hexdigest()
    if phase == "after" and session.scalar(
        select(Attachment.id).where(
            Attachment.hazard_id == hazard.id, Attachment.phase == "before", Attachment.sha256 == digest
        )
    ):
        raise InvalidInput({"file": ["整改后照片与整改前照片完全相同，疑似虚假整改"]})
    storage = Path(ctx.settings.var_dir) / "attachments" / digest[:2]
    storage.mkdir(parents=True, exist_ok=True)
    target = storage / digest
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(content)
        tmp.replace(target)
    attachment = Attachment(
        hazard_id=hazard.id,
        work_item_id=work_item_id,
        phase=phase,
        filename=Path(filename).name[:255] or "file",
        mime_type=mime_type[:100],
        size=len(content),
        sha256=digest,
        storage_key=f"{digest[:2]}/{digest}",
        uploaded_by_id=actor.user_id or None,
        uploaded_at=ctx.clock.now(),
        exif_taken_at=exif_taken_at,
        gps_lat=gps_lat,
        gps_lon=gps_lon,
    )
    session.add(attachment)
    session.flush()
    return attachment
