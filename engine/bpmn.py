"""The only module that imports SpiffWorkflow: parser, serializer, safe script engine, typed views.

Everything else in the engine sees :class:`ReadyTask`, :class:`WaitingTimer` and opaque
workflow objects passed back into this module.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import Any
from uuid import UUID

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.parser.BpmnParser import BpmnValidator
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.bpmn.serializer.default.workflow import WorkflowConverter
from SpiffWorkflow.bpmn.specs.control import BoundaryEventJoin
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.control import _EndJoin
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimeDateEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.specs.Join import Join
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.util.task import TaskState

from . import expressions
from .clock import Clock
from .clock import SystemClock
from .errors import DefinitionInvalid
from .errors import ExpressionError
from .errors import HandlerError
from .errors import UnsafeExpression
from .handlers import Effect
from .handlers import HandlerContext
from .handlers import call_handler

#: our own serializer version; stored state with any other version is refused, never "migrated"
#: by SpiffWorkflow's built-in migrations (which eval stored timer expressions).
SERIALIZER_VERSION = "hl-1"
SPIFF_SERIALIZER_VERSION = "1.5"

_VALIDATOR: BpmnValidator | None = None


def _validator() -> BpmnValidator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = BpmnValidator()  # ~5 ms to build: once per process
    return _VALIDATOR


# --- safe script engine -------------------------------------------------------------------------


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Conditions, timer expressions, DMN cells and service parameters go through the allow-list.

    ``execute`` (script tasks, pre/post scripts) refuses to run anything.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__({})
        self.clock = clock
        self.effects: list[Effect] = []
        self.current_task_key = ""

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> object:
        return expressions.evaluate(expression, context, external_context)

    def execute(self, script: str, context: Mapping[str, Any], external_context: Any = None) -> bool:
        raise UnsafeExpression(script, "脚本任务与前置/后置脚本已被禁用")

    def call_service(self, context: Mapping[str, Any], **kwargs: Any) -> str:
        name = kwargs["operation_name"]
        params = {key: spec["value"] for key, spec in kwargs.get("operation_params", {}).items()}
        ctx = HandlerContext(clock=self.clock, task_key=self.current_task_key, data=dict(context))
        result = call_handler(name, ctx, params)
        self.effects.extend(ctx.effects)
        return json.dumps(result)


class SafeScriptEngine(PythonScriptEngine):
    """Fixes 3.2.0's ``call_service`` (which masks errors as ``NameError: script``)."""

    environment: SafeEnvironment

    def __init__(self, clock: Clock) -> None:
        super().__init__(environment=SafeEnvironment(clock))

    # ``validate`` stays SpiffWorkflow's ``ast.parse``: the DMN engine relies on a SyntaxError for
    # cells like ``> 5``; the safety check happens in ``evaluate`` (and at deploy time).

    def call_service(self, task: Any, **kwargs: Any) -> str:
        self.environment.current_task_key = task.task_spec.bpmn_id or task.task_spec.name
        return self.environment.call_service(task.data, **kwargs)


def unwrap_error(exc: BaseException) -> BaseException:
    """Find our own typed error under SpiffWorkflow's exception wrapping, if there is one."""
    # SpiffWorkflow 3.2.0's ``WorkflowTaskException(msg, task=..., exception=e)`` does not keep
    # ``e``: it is raised inside ``except`` without ``from``, so the cause is only ``__context__``.
    seen: BaseException | None = exc
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        if isinstance(seen, HandlerError | ExpressionError | UnsafeExpression):
            return seen
        inner = getattr(seen, "exception", None)
        if isinstance(inner, BaseException):
            seen = inner
        else:
            seen = seen.__cause__ or seen.__context__
    return exc


# --- serialization --------------------------------------------------------------------------------


class _SpecFreeWorkflowConverter(BpmnWorkflowConverter):
    """Store an instance without its spec; restore it onto a cached, already-parsed spec."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(  # type: ignore[override]
        self,
        dct: dict[str, Any],
        spec: Any = None,
        subprocess_specs: Any = None,
        script_engine: Any = None,
    ) -> BpmnWorkflow:
        if spec is None:
            return super().from_dict(dct)
        workflow = self.target_class(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


_config = dict(SPIFF_CONFIG)
_config[BpmnWorkflow] = _SpecFreeWorkflowConverter
_REGISTRY = BpmnWorkflowSerializer.configure(_config)
_SERIALIZER = BpmnWorkflowSerializer(_REGISTRY, version=SPIFF_SERIALIZER_VERSION)


@dataclass(frozen=True, slots=True)
class ParsedProcess:
    process_key: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]

    def spec_json(self) -> str:
        return json.dumps(
            {
                "spec": _REGISTRY.convert(self.spec),
                "subprocess_specs": {k: _REGISTRY.convert(v) for k, v in self.subprocess_specs.items()},
            },
            ensure_ascii=False,
        )


def load_spec(spec_json: str) -> tuple[Any, dict[str, Any]]:
    dct = json.loads(spec_json)
    spec = _REGISTRY.restore(dct["spec"])
    subs = {k: _REGISTRY.restore(v) for k, v in dct["subprocess_specs"].items()}
    return spec, subs


def _element_at_line(xml: bytes | None, line: object) -> str | None:
    """The id of the element an XSD error points at (by line), or of its nearest ancestor with one.

    SpiffWorkflow's validator reports only the line; a department needs the element.
    """
    if not xml or not isinstance(line, int) or line <= 0:
        return None
    try:
        root = etree.fromstring(xml, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return None
    node = None
    for candidate in root.iter():
        if candidate.sourceline == line and isinstance(candidate.tag, str):
            node = candidate  # the last (innermost) element starting on that line
        elif candidate.sourceline is not None and candidate.sourceline > line:
            break
    while node is not None:
        if node.get("id"):
            return str(node.get("id"))
        node = node.getparent()
    return None


def parse_bpmn(
    bpmn: bytes, filename: str, dmn_files: Mapping[str, bytes] | None = None
) -> list[ParsedProcess]:
    """Parse and XSD-validate a BPMN document; returns its executable processes.

    :raises DefinitionInvalid: XSD or structural errors, with the element id when known.
    """
    parser = SpiffBpmnParser(validator=_validator())
    try:
        for dmn_name, dmn in (dmn_files or {}).items():
            parser.add_dmn_str(dmn, filename=dmn_name)
        parser.add_bpmn_str(bpmn, filename=filename)
        result = []
        for key in parser.get_process_ids():
            spec = parser.get_spec(key)
            subs = parser.get_subprocess_specs(key)
            result.append(ParsedProcess(key, spec.description or key, spec, subs))
    except ValidationException as exc:
        element = getattr(exc, "id", None) or _element_at_line(
            bpmn if exc.file_name == filename else (dmn_files or {}).get(exc.file_name or ""),
            getattr(exc, "line_number", None),
        )
        raise DefinitionInvalid(element or None, f"BPMN 校验失败: {exc}") from exc
    except SpiffWorkflowException as exc:
        raise DefinitionInvalid(None, f"BPMN 解析失败: {exc}") from exc
    except Exception as exc:  # lxml syntax errors and the like: still a clear deployment error
        raise DefinitionInvalid(None, f"BPMN 解析失败: {type(exc).__name__}: {exc}") from exc
    return result


def new_workflow(spec: Any, subprocess_specs: Mapping[str, Any], clock: Clock | None = None) -> BpmnWorkflow:
    """A fresh workflow on the safe script engine (never SpiffWorkflow's default ``eval``)."""
    return BpmnWorkflow(spec, dict(subprocess_specs), script_engine=SafeScriptEngine(clock or SystemClock()))


def dump_state(workflow: BpmnWorkflow) -> bytes:
    """Serialize without the spec; zlib-compressed UTF-8 JSON."""
    _REGISTRY._encoder_mode = True
    try:
        dct = _REGISTRY.convert(workflow)
    finally:
        _REGISTRY._encoder_mode = False
    return zlib.compress(json.dumps(dct, ensure_ascii=False, separators=(",", ":")).encode(), 1)


def load_state(
    state: bytes,
    serializer_version: str,
    spec: Any,
    subprocess_specs: Mapping[str, Any],
    clock: Clock | None = None,
) -> BpmnWorkflow:
    """Restore a workflow onto a cached spec, with the safe script engine re-attached.

    :raises ValueError: stored state written by another serializer version.
    """
    if serializer_version != SERIALIZER_VERSION:
        raise ValueError(
            f"stored state has serializer version {serializer_version!r}, expected {SERIALIZER_VERSION}"
        )
    dct = json.loads(zlib.decompress(state))
    return _REGISTRY.restore(
        dct,
        spec=spec,
        subprocess_specs=dict(subprocess_specs),
        script_engine=SafeScriptEngine(clock or SystemClock()),
    )


def effects_of(workflow: BpmnWorkflow) -> list[Effect]:
    """Take (and clear) the effects recorded by handlers since the last call."""
    env: SafeEnvironment = workflow.script_engine.environment
    effects, env.effects = env.effects, []
    return effects


# --- typed views ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadyTask:
    id: str
    key: str
    name: str
    properties: Mapping[str, str]
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class WaitingTimer:
    id: str
    key: str
    due_at: datetime


def ready_user_tasks(workflow: BpmnWorkflow) -> list[ReadyTask]:
    return [
        ReadyTask(
            id=str(task.id),
            key=task.task_spec.bpmn_id,
            name=task.task_spec.bpmn_name or task.task_spec.bpmn_id,
            properties=task.task_spec.extensions.get("properties", {}),
            data=task.data,
        )
        for task in workflow.get_tasks(state=TaskState.READY, manual=True)
    ]


def _timer_tasks(workflow: BpmnWorkflow) -> Iterator[Any]:
    for task in workflow.get_tasks(state=TaskState.WAITING):
        definition = getattr(task.task_spec, "event_definition", None)
        if isinstance(definition, TimerEventDefinition):
            yield task


def waiting_timers(workflow: BpmnWorkflow) -> list[WaitingTimer]:
    """Every waiting timer with its absolute due time (evaluated and cached by SpiffWorkflow)."""
    result = []
    for task in _timer_tasks(workflow):
        value = task.internal_data.get("event_value")
        if value is None:
            task.task_spec.event_definition.has_fired(task)  # evaluates and caches the due time
            value = task.internal_data.get("event_value")
        if isinstance(value, dict):  # cycle timers keep {"next": ...}
            value = value.get("next")
        due = TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
        if due is None:
            continue
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        result.append(WaitingTimer(id=str(task.id), key=task.task_spec.bpmn_id, due_at=due.astimezone(UTC)))
    return result


def task_state_name(workflow: BpmnWorkflow, task_id: str) -> str | None:
    """``READY``/``COMPLETED``/``CANCELLED``/… for a task id, or None when it is not in the tree."""
    task = workflow.get_task_from_id(UUID(task_id))
    return TaskState.get_name(task.state) if task is not None else None


def find_ready_task(workflow: BpmnWorkflow, task_id: str) -> Any | None:
    task = workflow.get_task_from_id(UUID(task_id))
    if task is None or task.state != TaskState.READY or not task.task_spec.manual:
        return None
    return task


def advance(workflow: BpmnWorkflow) -> None:
    """Due timers win first: refresh timers, then run every automatic step."""
    workflow.refresh_timers()
    workflow.do_engine_steps()


def complete_task(workflow: BpmnWorkflow, task: Any, variables: Mapping[str, Any]) -> None:
    task.data.update(variables)
    task.run()
    workflow.do_engine_steps()


def set_variable(workflow: BpmnWorkflow, name: str, value: Any) -> int:
    """Set a routing variable on every unfinished task, moving any timer that reads it.

    A timer's due time is cached in ``internal_data['event_value']`` on first evaluation; changing
    task data alone would not move it. Returns the number of timers reset.
    """
    moved = 0
    for task in workflow.get_tasks(state=TaskState.NOT_FINISHED_MASK):
        task.data[name] = value
        definition = getattr(task.task_spec, "event_definition", None)
        if (
            task.state == TaskState.WAITING
            and isinstance(definition, TimerEventDefinition)
            and name in expressions.names_used(definition.expression)
        ):
            task.internal_data.pop("event_value", None)
            # refresh_timers() re-inherits the parent's data (TaskSpec._update_hook → _inherit_data)
            # before re-evaluating, and a boundary timer's parent (the BoundaryEventSplit) is already
            # COMPLETED: without this the timer re-reads the old value and does not move.
            if task.parent is not None:
                task.parent.data[name] = value
            moved += 1
    return moved


def workflow_completed(workflow: BpmnWorkflow) -> bool:
    return bool(workflow.completed)


def cancel(workflow: BpmnWorkflow) -> None:
    workflow.cancel()


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- instance migration onto another version of the spec -----------------------------------------

_PREDICTED = TaskState.LIKELY | TaskState.MAYBE
_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED


@dataclass(frozen=True, slots=True)
class MigrationIssue:
    """Why an instance cannot move to a new version (or what moving it will change)."""

    element_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    blockers: list[MigrationIssue]
    #: what moving changes without breaking anything (boundary events added, properties updated)
    notes: list[MigrationIssue]
    #: BPMN ids of the ready user tasks (where the instance stands)
    active: list[str]
    #: BPMN ids of the waiting events (timers …)
    waiting: list[str]

    @property
    def movable(self) -> bool:
        return not self.blockers


def _kept_tasks(workflow: BpmnWorkflow) -> list[Any]:
    """The tasks that carry the instance's state: everything but the predicted future.

    Predictions (LIKELY/MAYBE children, and FUTURE children of tasks still running) describe the
    *old* diagram's next steps; they are dropped and predicted again from the new spec. A FUTURE
    task below a finished one is real state (a token on its way) and is kept.
    """
    kept = []
    pending = [workflow.task_tree]
    while pending:
        task = pending.pop()
        kept.append(task)
        for child in task.children:
            if child.has_state(_PREDICTED):
                continue
            if child.state == TaskState.FUTURE and not task.has_state(TaskState.FINISHED_MASK):
                continue
            pending.append(child)
    return kept


def _element(spec: Any) -> str:
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def _label(spec: Any) -> str:
    name = getattr(spec, "bpmn_name", None)
    return f"{_element(spec)}（{name}）" if name else _element(spec)


def _timer_due(workflow: BpmnWorkflow, task: Any, definition: Any) -> datetime | None:
    """When a waiting timeDate timer falls due under ``definition`` (its cached value if unchanged)."""
    value = workflow.script_engine.evaluate(task, definition.expression)
    if not isinstance(value, str):
        return None
    return TimerEventDefinition.get_datetime(value)


def _timer_issue(workflow: BpmnWorkflow, task: Any, old: Any, new: Any) -> MigrationIssue | None:
    """A waiting timer whose definition changed keeps its due time, or it cannot move."""
    old_def, new_def = old.event_definition, new.event_definition
    if type(old_def) is not type(new_def):
        return MigrationIssue(
            _element(new),
            f"等待中的定时器 {_label(new)} 的类型已改变"
            f" ({type(old_def).__name__} → {type(new_def).__name__})",
        )
    if not isinstance(new_def, TimerEventDefinition) or old_def.expression == new_def.expression:
        return None
    if not isinstance(new_def, TimeDateEventDefinition):
        return MigrationIssue(
            _element(new),
            f"等待中的定时器 {_label(new)} 的时长表达式已改变"
            f"（{old_def.expression} → {new_def.expression}），迁移后将从迁移时重新计时",
        )
    cached = task.internal_data.get("event_value")
    try:
        before = TimerEventDefinition.get_datetime(cached) if isinstance(cached, str) else None
        before = before or _timer_due(workflow, task, old_def)
        after = _timer_due(workflow, task, new_def)
    except Exception as exc:  # an expression error is a reason, not a crash of the preview
        error = unwrap_error(exc)
        return MigrationIssue(_element(new), f"定时器 {_label(new)} 的新表达式无法按实例数据求值: {error}")
    if before != after:
        return MigrationIssue(
            _element(new),
            f"等待中的定时器 {_label(new)} 的表达式已改变（{old_def.expression} → {new_def.expression}），"
            f"到期时间将从 {before.isoformat() if before else '—'}"
            f" 变为 {after.isoformat() if after else '—'}",
        )
    return None


def plan_migration(
    workflow: BpmnWorkflow, new_spec: Any, new_subprocess_specs: Mapping[str, Any]
) -> MigrationPlan:
    """Can this workflow continue on ``new_spec`` where it stands, keeping its state and deadlines?

    SpiffWorkflow restores a task onto the spec of the same name, so every task that carries
    state must still exist; a ready or waiting task must keep its type (and event type), a
    waiting timer its due time, a waiting parallel join its inputs, and an activity its boundary
    structure. Completed history only has to exist.
    """
    blockers: list[MigrationIssue] = []
    notes: list[MigrationIssue] = []
    active, waiting = [], []
    if workflow.subprocesses:
        blockers.append(MigrationIssue(None, "实例中有正在运行的子流程或调用活动，暂不支持迁移"))
    new_specs = new_spec.task_specs
    for task in _kept_tasks(workflow):
        old = task.task_spec
        new = new_specs.get(old.name)
        is_active = task.has_state(_ACTIVE)
        if is_active and old.bpmn_id:
            (active if old.manual and task.state == TaskState.READY else waiting).append(old.bpmn_id)
        if task.state == TaskState.ERROR:
            blockers.append(MigrationIssue(_element(old), f"步骤 {_label(old)} 处于错误状态，请先处理故障"))
            continue
        if new is None:
            if old.name.endswith(".BoundaryEventSplit"):
                reason = f"{old.name.rsplit('.', 1)[0]} 的边界事件在新版本中已全部删除"
            elif is_active:
                reason = f"实例正停留在 {_label(old)}，而新版本中没有这个元素"
            else:
                reason = f"已完成的步骤 {_label(old)} 在新版本中不存在（实例的任务树仍引用它）"
            blockers.append(MigrationIssue(_element(old), reason))
            continue
        if not is_active:
            continue
        if type(old) is not type(new):
            blockers.append(
                MigrationIssue(
                    _element(new),
                    f"实例正停留在 {_label(new)}，而它在新版本中的类型已改变"
                    f" ({type(old).__name__} → {type(new).__name__})",
                )
            )
            continue
        if hasattr(old, "event_definition") and task.state == TaskState.WAITING:
            issue = _timer_issue(workflow, task, old, new)
            if issue is not None:
                blockers.append(issue)
                continue
        inputs_changed = sorted(s.name for s in old.inputs) != sorted(s.name for s in new.inputs)
        # the process's EndJoin waits for every unfinished task, a BoundaryEventJoin for its split:
        # only other joins (parallel/inclusive gateways) count their inputs
        counts_inputs = isinstance(new, Join) and not isinstance(new, _EndJoin | BoundaryEventJoin)
        if counts_inputs and task.state == TaskState.WAITING and inputs_changed:
            blockers.append(MigrationIssue(_element(new), f"等待汇聚的 {_label(new)} 在新版本中的入口已改变"))
            continue
        parent = task.parent
        split = next((s for s in new.inputs if isinstance(s, BoundaryEventSplit)), None)
        under_split = isinstance(parent.task_spec, BoundaryEventSplit)
        if (under_split or split is not None) and (split is None or parent.task_spec.name != split.name):
            blockers.append(
                MigrationIssue(
                    _element(new), f"{_label(new)} 的边界事件结构在新版本中已改变（增加或取消了边界事件）"
                )
            )
            continue
        if task.task_spec.manual:
            old_props = old.extensions.get("properties", {})
            new_props = new.extensions.get("properties", {})
            if old_props != new_props or old.bpmn_name != new.bpmn_name:
                notes.append(
                    MigrationIssue(_element(new), f"待办任务 {_label(new)} 的名称或属性将按新版本更新")
                )
        if under_split and not isinstance(new, BoundaryEvent):
            present = {c.task_spec.name for c in parent.children}
            for output in new_specs[parent.task_spec.name].outputs:
                if output.name not in present:
                    notes.append(
                        MigrationIssue(
                            _element(output), f"将为 {_label(new)} 增加新的边界事件 {_label(output)}"
                        )
                    )
    return MigrationPlan(blockers, notes, sorted(set(active)), sorted(set(waiting)))


def rebase_workflow(
    workflow: BpmnWorkflow, new_spec: Any, new_subprocess_specs: Mapping[str, Any]
) -> BpmnWorkflow:
    """The same instance on ``new_spec``: its tasks, data and timers' cached due times kept.

    The state is serialized without the spec, its predicted future dropped (see
    :func:`_kept_tasks`), restored onto the new spec (tasks are looked up by name), and the
    future predicted again from the new diagram; boundary events the new version adds to a
    running activity are attached as if the activity had been entered on it.

    :raises ValueError: :func:`plan_migration` found a blocker.
    """
    plan = plan_migration(workflow, new_spec, new_subprocess_specs)
    if not plan.movable:
        raise ValueError("; ".join(issue.reason for issue in plan.blockers))
    kept = {str(task.id) for task in _kept_tasks(workflow)}
    dct = json.loads(zlib.decompress(dump_state(workflow)))
    tasks = dct["tasks"]
    for ident in list(tasks):
        if ident not in kept:
            del tasks[ident]
    for task in tasks.values():
        task["children"] = [c for c in task["children"] if c in kept]
    if dct.get("last_task") not in kept:
        dct["last_task"] = None
    moved: BpmnWorkflow = _REGISTRY.restore(
        dct,
        spec=new_spec,
        subprocess_specs=dict(new_subprocess_specs),
        script_engine=workflow.script_engine,
    )
    for task in list(moved.get_tasks(state=_ACTIVE | TaskState.FUTURE)):
        spec = task.task_spec
        if task.state == TaskState.FUTURE and not task.parent.has_state(TaskState.FINISHED_MASK):
            continue  # predicted just now by an earlier task of this loop
        if task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
            # a waiting event's successors were predicted while it was only MAYBE (see
            # EventSplit._predict_hook), and a cycle timer predicts nothing
            if not isinstance(getattr(spec, "event_definition", None), CycleTimerEventDefinition):
                task._sync_children(spec.outputs, TaskState.MAYBE)
                for child in task.children:
                    child.task_spec._predict(child)
        else:
            spec._predict(task, mask=TaskState.ANY_MASK)
    for split in list(moved.get_tasks(state=TaskState.COMPLETED)):
        if not isinstance(split.task_spec, BoundaryEventSplit):
            continue
        main = [c for c in split.children if c.task_spec in split.task_spec.outputs]
        if not any(c.has_state(TaskState.READY | TaskState.STARTED) for c in main):
            continue
        present = {c.task_spec.name for c in split.children}
        for output in split.task_spec.outputs:
            if output.name in present:
                continue
            event = split._add_child(output, TaskState.MAYBE)
            output._predict(event)
            event._set_state(TaskState.WAITING)
            output._update(event)
    # the result must load from its own serialization, as the next step will load it
    check = dump_state(moved)
    load_state(check, SERIALIZER_VERSION, new_spec, new_subprocess_specs)
    return moved
