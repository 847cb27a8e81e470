"""Registry of service-task handlers: the only side effects a diagram can ask for.

Handlers run inside ``do_engine_steps()``; they never touch the database. They compute a result
(stored by SpiffWorkflow in the task's result variable) and record :class:`Effect` objects that
the runtime applies afterwards, inside the same transaction (events, hazard columns, escalation).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any

from . import calendar
from .clock import Clock
from .errors import HandlerError
from .policy import NOTICE_KINDS
from .policy import RUNG_KEYS
from .policy import TRIGGERS


@dataclass(frozen=True, slots=True)
class Effect:
    """Something a handler asks the runtime to do once the engine step is over."""

    handler: str
    task_key: str
    params: Mapping[str, Any]


@dataclass(slots=True)
class HandlerContext:
    clock: Clock
    task_key: str
    data: Mapping[str, Any]
    effects: list[Effect] = field(default_factory=list)


Handler = Callable[..., object]


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    fn: Handler
    #: parameter name -> allowed Python types; deploy checks the diagram names exactly these.
    params: Mapping[str, tuple[type, ...]]
    #: whether the handler's result must be stored in a result variable.
    needs_result_variable: bool = False
    #: string parameters whose literal value deploy checks against a fixed vocabulary
    literals: Mapping[str, frozenset[str]] = field(default_factory=dict)


HANDLERS: dict[str, HandlerSpec] = {}


def register_handler(
    name: str,
    params: Mapping[str, tuple[type, ...]],
    *,
    needs_result_variable: bool = False,
    literals: Mapping[str, frozenset[str]] | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the service-task handler ``name``."""

    def decorator(fn: Handler) -> Handler:
        HANDLERS[name] = HandlerSpec(name, fn, dict(params), needs_result_variable, dict(literals or {}))
        return fn

    return decorator


def call_handler(name: str, ctx: HandlerContext, params: Mapping[str, Any]) -> object:
    """Run a registered handler with typed parameters.

    :raises HandlerError: unknown handler, wrong parameters, or the handler failed (real cause kept).
    """
    spec = HANDLERS.get(name)
    if spec is None:
        raise HandlerError(name, "未注册的服务任务处理器")
    unknown = set(params) - set(spec.params)
    missing = set(spec.params) - set(params)
    if unknown or missing:
        raise HandlerError(name, f"参数不匹配: 多余 {sorted(unknown)}, 缺少 {sorted(missing)}")
    for key, value in params.items():
        if (
            not isinstance(value, spec.params[key])
            or isinstance(value, bool)
            and bool not in spec.params[key]
        ):
            raise HandlerError(name, f"参数 {key} 类型错误: {type(value).__name__}")
    try:
        return spec.fn(ctx, **params)
    except HandlerError:
        raise
    except Exception as exc:  # the real cause is recorded, never masked
        raise HandlerError(name, f"{type(exc).__name__}: {exc}") from exc


@register_handler("remind", {"kind": (str,)})
def _remind(ctx: HandlerContext, *, kind: str) -> None:
    """提醒: a due date is approaching."""
    ctx.effects.append(Effect("remind", ctx.task_key, {"kind": kind}))


@register_handler("mark_overdue", {"kind": (str,)})
def _mark_overdue(ctx: HandlerContext, *, kind: str) -> None:
    """逾期: the task stays open (non-interrupting); the hazard is marked overdue."""
    ctx.effects.append(Effect("mark_overdue", ctx.task_key, {"kind": kind}))


#: triggers whose rung sits at a time computed from the ladder (and the base variable it counts from)
_TIMED_TRIGGERS = {"deadline": "deadline_at", "overdue": "deadline_at", "no_progress": "last_progress_at"}


@register_handler(
    "escalate",
    {"rung": (str,), "trigger": (str,)},
    literals={"rung": frozenset({"", *RUNG_KEYS}), "trigger": frozenset(TRIGGERS)},
)
def _escalate(ctx: HandlerContext, *, rung: str, trigger: str) -> None:
    """督办升级: climb the escalation ladder to ``rung`` (its level, issuer, notice: policy data).

    ``rung`` empty: the rung the pinned profile's ``ladder.triggers`` names for ``trigger``
    (failed verifications, recurrence …). For a timed rung the effect carries the instant it
    fell due (computed from the pinned ``ladder`` data, without any suppression), which the
    notice records beside its issue time.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"未知的升级触发条件 {trigger!r}")
    if rung and rung not in RUNG_KEYS:
        raise ValueError(f"未知的督办梯度 {rung!r}")
    due_at = None
    ladder = ctx.data.get("ladder")
    base = ctx.data.get(_TIMED_TRIGGERS.get(trigger, ""))
    if rung and isinstance(ladder, dict) and rung in ladder and base:
        due_at = calendar.ladder_time(ladder, rung, base)
    ctx.effects.append(Effect("escalate", ctx.task_key, {"rung": rung, "trigger": trigger, "due_at": due_at}))


@register_handler("issue_notice", {"kind": (str,)}, literals={"kind": frozenset(NOTICE_KINDS)})
def _issue_notice(ctx: HandlerContext, *, kind: str) -> None:
    """签发文书: the 挂牌督办 track's documents (通知书, 公告, 摘牌, 提请上级督办); issuer and
    recipients come from the pinned profile's ``listing`` rung."""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"未知的文书种类 {kind!r}")
    ctx.effects.append(Effect("issue_notice", ctx.task_key, {"kind": kind}))


@register_handler("compute_deadline", {"days": (int,), "unit": (str,)}, needs_result_variable=True)
def _compute_deadline(ctx: HandlerContext, *, days: int, unit: str) -> str:
    """Return an absolute due time (ISO, UTC) ``days`` from now.

    ``calendar_days``: exactly ``days`` × 24 hours from now. ``working_days``: the end of the
    business day (23:59:59 Asia/Shanghai) of the ``days``-th working day after today, by
    :func:`engine.calendar.current_calendar`; the effect (and so the ``deadline_computed``
    event) records whether it is provisional and the rule, which is how
    :mod:`engine.deadlines` finds and recomputes it once the year's schedule is entered.
    """
    if unit not in ("calendar_days", "working_days"):
        raise ValueError(f"unsupported unit {unit!r}")
    if not 0 <= days <= 3660:
        raise ValueError(f"days out of range: {days}")
    if unit == "working_days":
        deadline = calendar.current_calendar().deadline_after(ctx.clock.now(), days, unit)
        due_at = deadline.at.isoformat()
        params = {
            "due_at": due_at,
            "days": days,
            "unit": unit,
            "provisional": deadline.provisional,
            "rule": deadline.rule.to_dict(),
        }
        ctx.effects.append(Effect("compute_deadline", ctx.task_key, params))
        return due_at
    due = ctx.clock.now() + timedelta(days=days)
    ctx.effects.append(Effect("compute_deadline", ctx.task_key, {"due_at": due.isoformat(), "days": days}))
    return due.isoformat()
