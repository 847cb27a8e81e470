"""The escalation ladder's catch-up rule (DESIGN §6, DOMAIN §4.3): which rung of a batch fires.

Several rungs can fall due in one engine step: after an outage, for a back-filled hazard whose
deadline lies weeks in the past, or when rework re-enters rectification after the deadline.
Only the highest of them fires; the others are recorded as skipped, so a hazard gets one notice
at the right rung instead of a flood. A rung at or below the level the hazard already reached is
superseded (a 通报 after a 约谈 adds nothing), except that reminders (level 0) are sent while the
hazard has not been escalated at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .policy import Ladder
from .policy import LadderRung

#: why a requested rung did not fire
SKIP_REASONS = {
    "caught_up": "同批到期的更高梯度已发出（补发时只发最高一级）",
    "superseded": "已采取同级或更高级别的督办措施",
    "not_configured": "策略配置未设置该梯度",
    "suppressed": "导入隐患暂缓督办期内",
    "already_issued": "本轮整改已发出该梯度的督办文书",
}


@dataclass(frozen=True, slots=True)
class EscalationRequest:
    """One ``escalate`` effect: a rung (or a trigger the profile maps to one)."""

    rung: str
    trigger: str
    due_at: str | None = None
    task_key: str | None = None


@dataclass(frozen=True, slots=True)
class Resolved:
    request: EscalationRequest
    rung: LadderRung


@dataclass(frozen=True, slots=True)
class Plan:
    fire: Resolved | None
    skipped: list[tuple[EscalationRequest, str]]


def plan(ladder: Ladder, current_level: int, requests: Sequence[EscalationRequest]) -> Plan:
    """Choose the rung to fire from one step's requests; the rest are skipped with a reason."""
    skipped: list[tuple[EscalationRequest, str]] = []
    candidates: list[Resolved] = []
    for request in requests:
        rung = ladder.rungs.get(request.rung) if request.rung else ladder.for_trigger(request.trigger)
        if rung is None:
            skipped.append((request, "not_configured"))
        elif rung.level > current_level or rung.level == current_level == 0:
            candidates.append(Resolved(request, rung))
        else:
            skipped.append((request, "superseded"))
    if not candidates:
        return Plan(None, skipped)
    fire = max(candidates, key=lambda r: (r.rung.level, r.request.due_at or ""))
    skipped.extend((c.request, "caught_up") for c in candidates if c is not fire)
    return Plan(fire, skipped)
