"""Move running instances from one version of a diagram to another (DESIGN §6: only explicitly).

New hazards start on whatever their binding names; running ones stay on the version they started
on until a process administrator migrates them. :func:`preview_migration` says, for each running
instance, whether it can move and why not; :func:`migrate_instances` moves the movable ones, each
under its instance lock through the runtime's protocol, in its own savepoint: an instance that
cannot move (or fails) is reported and left exactly as it was.

Moving keeps the instance's task tree, task data and the cached due times of its waiting timers
(SpiffWorkflow restores tasks onto the new spec by name; see :func:`engine.bpmn.rebase_workflow`),
so statutory deadlines do not restart; the audit chain gets a ``migrated`` event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import bpmn
from .access import Actor
from .definitions import spec_for
from .errors import EngineError
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .models import DefinitionVersion
from .models import Hazard
from .models import InstanceStatus
from .models import ProcessInstance
from .models import Role
from .models import WorkItemState

# read-only use of the runtime's protocol: lock, load, advance, project, event, save
from .runtime import EngineContext
from .runtime import _apply_effects
from .runtime import _event
from .runtime import _pin_forms
from .runtime import _pinned_version
from .runtime import _project
from .runtime import _protocol
from .runtime import _separation_keys

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstanceCheck:
    """Whether one running instance can move to the new version, and why not."""

    instance_id: int
    hazard_id: int
    hazard_number: str
    hazard_title: str
    kind: str
    #: BPMN ids of its ready user tasks (where it stands)
    active: tuple[str, ...]
    movable: bool
    #: why it cannot move (element id first where there is one)
    reasons: tuple[str, ...]
    #: what moving changes without breaking anything (boundary events added, task properties)
    notes: tuple[str, ...] = ()
    #: BPMN ids of its waiting events (timers …)
    waiting: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MigrationResult:
    instance_id: int
    hazard_id: int
    hazard_number: str
    migrated: bool
    reasons: tuple[str, ...] = ()


class _Blocked(EngineError):
    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(reasons))


def _issue_text(issue: bpmn.MigrationIssue) -> str:
    return f"{issue.element_id}: {issue.reason}" if issue.element_id else issue.reason


def may_manage(actor: Actor | None, hazard: Hazard) -> bool:
    """Process administrators manage the sectors their department leads, in its region subtree.

    ``None`` is the operator at the command line (who has the database anyway); a system
    administrator manages everything.
    """
    if actor is None or Role.SYS_ADMIN in actor.roles:
        return True
    return any(
        hazard.sector_code in scope.lead_sectors
        and scope.region_path is not None
        and hazard.region_path.startswith(scope.region_path)
        for scope in actor.scopes_for([Role.PROCESS_ADMIN])
    )


def require_process_admin(actor: Actor | None) -> None:
    """:raises Forbidden: the actor is neither a process administrator nor a system administrator."""
    if actor is not None and not ({Role.PROCESS_ADMIN, Role.SYS_ADMIN} & actor.roles):
        raise Forbidden("只有部门流程管理员或系统管理员可以迁移流程实例")


def _versions(session: Session, from_version_id: int, to_version_id: int) -> tuple[DefinitionVersion, ...]:
    old = session.get(DefinitionVersion, from_version_id)
    new = session.get(DefinitionVersion, to_version_id)
    if old is None:
        raise NotFound("流程定义版本", from_version_id)
    if new is None:
        raise NotFound("流程定义版本", to_version_id)
    if old.process_key != new.process_key:
        raise InvalidInput({"to": [f"只能在同一流程的版本之间迁移（{old.process_key} ≠ {new.process_key}）"]})
    if old.id == new.id:
        raise InvalidInput({"to": ["源版本与目标版本相同"]})
    return old, new


def _label(version: DefinitionVersion) -> str:
    return f"{version.process_key}@{version.version}"


def running_instances(session: Session, version_id: int) -> list[tuple[ProcessInstance, Hazard]]:
    """The running instances on a definition version, oldest first, with their hazards."""
    rows = session.execute(
        select(ProcessInstance, Hazard)
        .join(Hazard, Hazard.id == ProcessInstance.hazard_id)
        .where(
            ProcessInstance.definition_version_id == version_id,
            ProcessInstance.status == InstanceStatus.RUNNING.value,
        )
        .order_by(ProcessInstance.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


def preview_migration(
    session: Session, *, from_version_id: int, to_version_id: int, actor: Actor | None = None
) -> list[InstanceCheck]:
    """For each running instance on the old version (that ``actor`` manages): can it move?

    Read-only: the stored state is loaded and compared with the new spec; nothing is locked or
    written. The answer may change before the migration (a timer fires, a task is completed):
    :func:`migrate_instances` checks again under the lock.

    :raises Forbidden: ``actor`` is neither a process nor a system administrator.
    :raises NotFound: no such version. :raises InvalidInput: versions of different processes.
    """
    require_process_admin(actor)
    old, new = _versions(session, from_version_id, to_version_id)
    old_spec, old_subs = spec_for(old)
    new_spec, new_subs = spec_for(new)
    checks = []
    for instance, hazard in running_instances(session, old.id):
        if not may_manage(actor, hazard):
            continue
        try:
            workflow = bpmn.load_state(instance.state, instance.serializer_version, old_spec, old_subs)
            plan = bpmn.plan_migration(workflow, new_spec, new_subs)
        except Exception as exc:  # one unreadable instance must not hide the others
            logger.exception("migration preview of instance %s failed", instance.id)
            checks.append(
                InstanceCheck(
                    instance.id, hazard.id, hazard.number, hazard.title, instance.kind, (), False, (str(exc),)
                )
            )
            continue
        checks.append(
            InstanceCheck(
                instance_id=instance.id,
                hazard_id=hazard.id,
                hazard_number=hazard.number,
                hazard_title=hazard.title,
                kind=instance.kind,
                active=tuple(plan.active),
                movable=plan.movable,
                reasons=tuple(_issue_text(i) for i in plan.blockers),
                notes=tuple(_issue_text(i) for i in plan.notes),
                waiting=tuple(plan.waiting),
            )
        )
    return checks


def _migrate_one(
    session: Session,
    ctx: EngineContext,
    instance: ProcessInstance,
    hazard: Hazard,
    old: DefinitionVersion,
    new: DefinitionVersion,
    actor: Actor | None,
) -> None:
    new_spec, new_subs = spec_for(new)
    with _protocol(session, ctx, hazard.id, actor=None, instance_id=instance.id) as loaded:
        locked = loaded.instance
        if locked.status != InstanceStatus.RUNNING.value:
            raise _Blocked(["实例已结束，无需迁移"])
        if locked.definition_version_id != old.id:
            raise _Blocked([f"实例已不在 {_label(old)} 上"])
        plan = bpmn.plan_migration(loaded.workflow, new_spec, new_subs)
        if not plan.movable:
            raise _Blocked([_issue_text(i) for i in plan.blockers])
        workflow = bpmn.rebase_workflow(loaded.workflow, new_spec, new_subs)
        loaded.workflow = workflow
        locked.definition_version_id = new.id
        locked.definition_version = new
        # forms the new version adds are pinned now; those pinned at start stay as they were
        _pin_forms(session, locked, new, loaded.hazard)
        _event(
            session,
            ctx,
            loaded,
            "migrated",
            actor=actor,
            **{"from": _label(old), "to": _label(new)},
            from_version_id=old.id,
            to_version_id=new.id,
        )
        bpmn.advance(workflow)  # a boundary timer the new version added may be due already
        _apply_effects(session, ctx, loaded)
        _project(session, ctx, loaded)
        # open work items follow the new version's task names and properties
        for task in bpmn.ready_user_tasks(workflow):
            item = (loaded.open_items or {}).get(task.id)
            if item is None or item.state != WorkItemState.OPEN.value:
                continue
            props = task.properties
            item.title = task.name
            item.candidate_role = props["candidate_role"]
            item.org_scope = props["org_scope"]
            item.form_key = props["form_key"]
            item.form_version_id = _pinned_version(locked, item.form_key)
            item.delegable = props.get("delegable", "true") != "false"
            item.separate_from = _separation_keys(props)


def migrate_instances(
    session: Session,
    ctx: EngineContext,
    *,
    from_version_id: int,
    to_version_id: int,
    instance_ids: Sequence[int] | None = None,
    actor: Actor | None = None,
    progress: Callable[[int, int, MigrationResult], None] | None = None,
) -> list[MigrationResult]:
    """Move the given running instances (all that ``actor`` manages, if None) to the new version.

    Each instance moves under its lock in its own savepoint: one that cannot move (the reasons
    of :func:`preview_migration`, checked again after due timers fired) or fails is reported and
    rolled back to exactly what it was; the others are moved. ``progress(done, total, result)``
    is called after each instance.

    :raises Forbidden: the actor may not migrate instances.
    :raises NotFound: no such version. :raises InvalidInput: versions of different processes.
    """
    require_process_admin(actor)
    old, new = _versions(session, from_version_id, to_version_id)
    candidates = {i.id: (i, h) for i, h in running_instances(session, old.id) if may_manage(actor, h)}
    wanted = list(candidates) if instance_ids is None else list(dict.fromkeys(instance_ids))
    results: list[MigrationResult] = []
    for done, instance_id in enumerate(wanted, start=1):
        found = candidates.get(instance_id)
        if found is None:
            result = MigrationResult(
                instance_id, 0, "", False, (f"不是 {_label(old)} 上运行中的实例（或无权管理）",)
            )
        else:
            instance, hazard = found
            session.flush()  # nothing of earlier instances may be pending when a savepoint rolls back
            try:
                with session.begin_nested():
                    _migrate_one(session, ctx, instance, hazard, old, new, actor)
                result = MigrationResult(instance.id, hazard.id, hazard.number, True)
            except _Blocked as blocked:
                result = MigrationResult(instance.id, hazard.id, hazard.number, False, blocked.reasons)
            except EngineError as exc:
                result = MigrationResult(instance.id, hazard.id, hazard.number, False, (str(exc),))
            except Exception as exc:
                # one broken instance must not stop the others (rolled back, reported, logged)
                logger.exception("migration of instance %s failed", instance.id)
                result = MigrationResult(
                    instance.id, hazard.id, hazard.number, False, (f"迁移失败: {type(exc).__name__}: {exc}",)
                )
        results.append(result)
        if progress is not None:
            progress(done, len(wanted), result)
    return results
