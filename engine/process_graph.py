"""A BPMN process as a graph of elements, read from the XML (never from SpiffWorkflow's spec).

Two users: the publish gate (:mod:`engine.definitions`) walks the sequence flows to prove that
statutory steps cannot be bypassed and to find unreachable elements, and the version diff
compares the elements of two versions by BPMN id. Both need the diagram as a department drew it,
so this works on the lxml tree the gate already parsed (no entity expansion, no DOCTYPE).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import Any

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
_NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}

ACTIVITIES = frozenset(
    {
        "task",
        "userTask",
        "manualTask",
        "serviceTask",
        "scriptTask",
        "businessRuleTask",
        "sendTask",
        "receiveTask",
        "callActivity",
        "subProcess",
        "transaction",
        "adHocSubProcess",
    }
)
EVENTS = frozenset(
    {"startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"}
)
GATEWAYS = frozenset(
    {"exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway", "complexGateway"}
)
FLOW_NODES = ACTIVITIES | EVENTS | GATEWAYS
CONTAINERS = frozenset({"process", "subProcess", "transaction", "adHocSubProcess"})
_EVENT_DEFINITIONS = {
    "timerEventDefinition": "timer",
    "messageEventDefinition": "message",
    "signalEventDefinition": "signal",
    "errorEventDefinition": "error",
    "escalationEventDefinition": "escalation",
    "terminateEventDefinition": "terminate",
    "cancelEventDefinition": "cancel",
    "compensateEventDefinition": "compensate",
    "conditionalEventDefinition": "conditional",
    "linkEventDefinition": "link",
}
_TIMER_KINDS = ("timeDate", "timeDuration", "timeCycle")


def local_name(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


@dataclass(frozen=True, slots=True)
class Element:
    """One flow node or sequence flow, with everything a department can change about it."""

    id: str
    tag: str
    name: str | None = None
    #: id of the process or sub-process the element sits in
    container: str | None = None
    #: event definition kind (``timer``, ``message``, ``terminate`` …) for events
    event: str | None = None
    link_name: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    #: (``timeDate`` | ``timeDuration`` | ``timeCycle``, expression)
    timer: tuple[str, str] | None = None
    condition: str | None = None
    #: (handler, resultVariable, ((param id, type, value), …)) of a service task
    handler: tuple[str, str, tuple[tuple[str, str, str], ...]] | None = None
    attached_to: str | None = None
    cancel_activity: bool = True
    default: str | None = None
    source: str | None = None
    target: str | None = None
    #: calledElement of a call activity, calledDecisionId of a business-rule task
    called: str | None = None
    triggered_by_event: bool = False
    interrupting: bool = True

    @property
    def props(self) -> dict[str, str]:
        return dict(self.properties)

    @property
    def kind(self) -> str:
        return f"{self.tag}:{self.event}" if self.event else self.tag

    def describe(self) -> dict[str, Any]:
        """The comparable fields (what a version diff reports), without the id."""
        return {
            "type": self.kind,
            "name": self.name,
            "properties": self.props,
            "timer": list(self.timer) if self.timer else None,
            "condition": self.condition,
            "handler": (
                {
                    "operator": self.handler[0],
                    "result_variable": self.handler[1],
                    "params": {p[0]: {"type": p[1], "value": p[2]} for p in self.handler[2]},
                }
                if self.handler
                else None
            ),
            "attached_to": self.attached_to,
            "cancel_activity": self.cancel_activity if self.tag == "boundaryEvent" else None,
            "default": self.default,
            "source": self.source,
            "target": self.target,
            "called": self.called,
        }


def _text(node: Any) -> str | None:
    if node is None or node.text is None:
        return None
    return str(node.text).strip()


def _element(node: Any, container: str | None) -> Element:
    tag = local_name(node.tag)
    event = link_name = None
    timer = None
    if tag in EVENTS:
        event = "none"
        for child in node:
            kind = _EVENT_DEFINITIONS.get(local_name(child.tag))
            if kind is None:
                continue
            event = kind
            if kind == "link":
                link_name = child.get("name")
            if kind == "timer":
                for timer_kind in _TIMER_KINDS:
                    expression = child.find(f"bpmn:{timer_kind}", _NS)
                    if expression is not None:
                        timer = (timer_kind, _text(expression) or "")
    properties = tuple(
        (str(p.get("name")), str(p.get("value")))
        for p in node.findall("bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", _NS)
    )
    handler = None
    operator = node.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", _NS)
    if operator is not None:
        params = tuple(
            (str(p.get("id")), str(p.get("type")), str(p.get("value")))
            for p in operator.findall("spiffworkflow:parameters/spiffworkflow:parameter", _NS)
        )
        handler = (str(operator.get("id")), operator.get("resultVariable") or "", params)
    called = node.get("calledElement") or _text(
        node.find("bpmn:extensionElements/spiffworkflow:calledDecisionId", _NS)
    )
    start = node.find("bpmn:startEvent", _NS) if tag in CONTAINERS else None
    return Element(
        id=str(node.get("id")),
        tag=tag,
        name=node.get("name"),
        container=container,
        event=event,
        link_name=link_name,
        properties=properties,
        timer=timer,
        condition=_text(node.find("bpmn:conditionExpression", _NS)) if tag == "sequenceFlow" else None,
        handler=handler,
        attached_to=node.get("attachedToRef"),
        cancel_activity=node.get("cancelActivity", "true") != "false",
        default=node.get("default"),
        source=node.get("sourceRef"),
        target=node.get("targetRef"),
        called=called,
        triggered_by_event=node.get("triggeredByEvent") == "true",
        interrupting=(start.get("isInterrupting", "true") != "false") if start is not None else True,
    )


@dataclass
class ProcessGraph:
    """The elements of one ``bpmn:process`` (sub-processes included) and its flows."""

    process_id: str
    name: str | None
    properties: dict[str, str]
    elements: dict[str, Element] = field(default_factory=dict)

    @classmethod
    def from_process(cls, process: Any) -> ProcessGraph:
        props = {
            str(p.get("name")): str(p.get("value"))
            for p in process.findall(
                "bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property", _NS
            )
        }
        graph = cls(str(process.get("id")), process.get("name"), props)
        graph._collect(process, str(process.get("id")))
        return graph

    def _collect(self, container: Any, container_id: str) -> None:
        for node in container:
            tag = local_name(node.tag)
            if (tag in FLOW_NODES or tag == "sequenceFlow") and node.get("id"):
                element = _element(node, container_id)
                self.elements[element.id] = element
                if tag in CONTAINERS:
                    self._collect(node, element.id)

    # --- structure ---------------------------------------------------------------------------

    def nodes(self, container: str | None = None) -> list[Element]:
        """Flow nodes directly in ``container`` (the process itself by default)."""
        where = container or self.process_id
        return [e for e in self.elements.values() if e.container == where and e.tag in FLOW_NODES]

    def flows(self) -> Iterator[Element]:
        return (e for e in self.elements.values() if e.tag == "sequenceFlow")

    def outgoing(self, node_id: str) -> list[Element]:
        return [f for f in self.flows() if f.source == node_id]

    def incoming(self, node_id: str) -> list[Element]:
        return [f for f in self.flows() if f.target == node_id]

    def boundaries(self, node_id: str) -> list[Element]:
        return [e for e in self.elements.values() if e.tag == "boundaryEvent" and e.attached_to == node_id]

    def user_tasks(self, container: str | None = None) -> list[Element]:
        return [e for e in self.nodes(container) if e.tag == "userTask"]

    def _link_targets(self, node: Element) -> list[str]:
        if node.tag != "intermediateThrowEvent" or node.event != "link":
            return []
        return [
            e.id
            for e in self.nodes(node.container)
            if e.tag == "intermediateCatchEvent" and e.event == "link" and e.link_name == node.link_name
        ]

    def _is_parallel_join(self, node: Element) -> bool:
        return node.tag == "parallelGateway" and len(self.incoming(node.id)) > 1

    def _successors(self, node: Element, *, boundaries: str) -> Iterator[tuple[str, str | None]]:
        """(next node, flow id) pairs; ``boundaries``: ``all``, ``interrupting`` or ``none``."""
        for flow in self.outgoing(node.id):
            if flow.target in self.elements:
                yield flow.target, flow.id
        for target in self._link_targets(node):
            yield target, None
        if boundaries != "none":
            for boundary in self.boundaries(node.id):
                if boundaries == "all" or boundary.cancel_activity:
                    yield boundary.id, None

    def roots(self, container: str | None = None) -> list[Element]:
        """Where tokens start in ``container``: its start events and its event sub-processes."""
        return [
            e
            for e in self.nodes(container)
            if (e.tag == "startEvent") or (e.tag in CONTAINERS and e.triggered_by_event)
        ]

    def reachable(self, container: str | None = None) -> set[str]:
        """Flow nodes of ``container`` a token can reach (boundary events with their activity)."""
        seen: set[str] = set()
        queue = deque(e.id for e in self.roots(container))
        seen.update(queue)
        while queue:
            node = self.elements[queue.popleft()]
            for target, _flow in self._successors(node, boundaries="all"):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        return seen

    def unreachable(self) -> list[Element]:
        """Flow nodes no token can reach, in every container that is itself reachable."""
        result = []
        pending = [self.process_id]
        while pending:
            container = pending.pop()
            reached = self.reachable(container)
            for node in self.nodes(container):
                if node.id not in reached:
                    result.append(node)
                elif node.tag in CONTAINERS:
                    pending.append(node.id)
        return result

    def main_ends(self, container: str | None = None) -> set[str]:
        """End events of the main flow of ``container`` (the process by default).

        Reached from a start event along sequence flows and the branches of *interrupting*
        boundary events (which cancel their activity, so ending such a branch can end the whole
        process); a terminate end event anywhere ends the process too. End events reached only
        through non-interrupting boundary branches (the escalation ladder's ``*_end``) are side
        ends: the main token is still inside the activity.
        """
        seen: set[str] = set()
        queue = deque(e.id for e in self.nodes(container) if e.tag == "startEvent")
        seen.update(queue)
        while queue:
            node = self.elements[queue.popleft()]
            for target, _flow in self._successors(node, boundaries="interrupting"):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        ends = {i for i in seen if self.elements[i].tag == "endEvent"}
        ends |= {e.id for e in self.nodes(container) if e.tag == "endEvent" and e.event == "terminate"}
        return ends

    def bypass(self, blocked: Iterable[str], container: str | None = None) -> list[str] | None:
        """A path from a start event to a main end event that completes none of ``blocked``.

        A blocked activity is entered but never left through its sequence flows; its boundary
        events still fire (an interrupting one cancels it, which is not passing it). A parallel
        join is passed only when every incoming flow carries a token, so a statutory step on one
        branch of a parallel fork is on every path. ``container``: a sub-process instead of the
        process. Returns the node ids of the path, or None.
        """
        stop = set(blocked)
        ends = self.main_ends(container)
        previous: dict[str, str | None] = {}
        arrived: dict[str, set[str]] = {}
        queue: deque[str] = deque()
        for start in self.nodes(container):
            if start.tag == "startEvent":
                previous[start.id] = None
                queue.append(start.id)
        while queue:
            current = queue.popleft()
            if current in ends:
                path = [current]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            node = self.elements[current]
            for target, flow in self._successors(node, boundaries="all"):
                is_boundary = self.elements[target].tag == "boundaryEvent" and flow is None
                if current in stop and not is_boundary:
                    continue
                if target in previous:
                    continue
                target_node = self.elements[target]
                if flow is not None and self._is_parallel_join(target_node):
                    got = arrived.setdefault(target, set())
                    got.add(flow)
                    if len(got) < len(self.incoming(target)):
                        continue
                previous[target] = current
                queue.append(target)
        return None


def process_graphs(root: Any) -> list[ProcessGraph]:
    """One graph per ``bpmn:process`` of a parsed ``bpmn:definitions`` document."""
    return [ProcessGraph.from_process(p) for p in root.iterfind("bpmn:process", _NS)]
