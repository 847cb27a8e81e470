"""Chinese message text per kind: ``notifiers/templates/<kind>/{subject,body,summary}.txt``.

Templates render in Jinja2's sandbox with strict undefined variables (a template naming a fact the
outbox row lacks fails loudly instead of sending a hole). The context is the row's facts plus
``link`` (the hazard's page when ``public_url`` is configured); settings are never exposed.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from engine.config import Settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

GRADE_LABELS = {"general": "一般", "prominent": "突出", "major": "重大"}
#: hazard.escalation_level → the rung of the ladder (DOMAIN §4.3, L1–L6)
LEVEL_LABELS = {
    1: "函告",
    2: "通报",
    3: "约谈",
    4: "曝光",
    5: "挂牌督办",
    6: "参照事故调查处理",
}
REASON_LABELS = {"repeated_rejects": "多次验收不通过", "overdue": "逾期未整改"}


class RenderError(Exception):
    """A template is missing or failed (unknown kind, a fact it needs is absent)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body: str
    summary: str


def _local(value: str | None, tz: str) -> str:
    """An ISO timestamp as local business time, ``2026-12-10 23:59``; empty for None."""
    if not value:
        return ""
    when = dt.datetime.fromisoformat(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path, tz: str) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["local"] = functools.partial(_local, tz=tz)
    env.filters["grade_label"] = lambda g: GRADE_LABELS.get(g, g)
    env.filters["level_label"] = lambda n: LEVEL_LABELS.get(int(n), f"第{n}级") if n else ""
    env.filters["reason_label"] = lambda r: REASON_LABELS.get(r, r)
    return env


def render(
    kind: str, facts: Mapping[str, Any], settings: Settings, *, templates_dir: Path = TEMPLATES_DIR
) -> Rendered:
    """Render the subject, body and one-line summary of a ``kind`` message.

    :raises RenderError: no templates for ``kind``, or a template failed.
    """
    env = _environment(templates_dir, settings.business_timezone)
    hazard_id = facts.get("hazard_id")
    base = settings.public_url.rstrip("/")
    context = {**facts, "link": f"{base}/hazards/{hazard_id}" if base and hazard_id else ""}
    parts = []
    for name in ("subject", "body", "summary"):
        try:
            text = env.get_template(f"{kind}/{name}.txt").render(context)
        except jinja2.TemplateNotFound as exc:
            raise RenderError(f"没有消息模板 {kind}/{name}.txt") from exc
        except jinja2.TemplateError as exc:
            raise RenderError(f"消息模板 {kind}/{name}.txt 渲染失败: {exc}") from exc
        parts.append(text.strip() if name != "body" else text.rstrip() + "\n")
    subject, body, summary = parts
    return Rendered(subject=" ".join(subject.split()), body=body, summary=" ".join(summary.split()))
