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
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.exceptions import SpiffWorkflowException
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
