"""Typed builders for tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from engine import runtime
from engine.access import Actor
from engine.demo import DemoWorld
from engine.models import Hazard
from engine.runtime import EngineContext


def hazard_data(world: DemoWorld, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "title": "储罐区可燃气体报警器失效",
        "description": "1号储罐区两台可燃气体检测报警器不能正常报警",
        "location": "1号储罐区",
        "enterprise_id": world.enterprises["chem"].id,
        "source": "self_check",
        "grade": "general",
        "handling_type": "deadline",
        "determination_basis": "《危险化学品企业重大隐患判定标准》第十条",
        "discovered_at": dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC),
    }
    data.update(overrides)
    return data


def make_hazard(
    session: Session, ctx: EngineContext, world: DemoWorld, actor: Actor, **overrides: Any
) -> Hazard:
    return runtime.register_hazard(session, ctx, actor=actor, data=hazard_data(world, **overrides))


def plan_form(due: dt.date, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "responsible_person": "张强",
        "measures": "更换报警器探头并联动测试",
        "funds": "12000.00",
        "due_date": due.isoformat(),
        "contingency_plan": "储罐区泄漏现场处置方案",
        "interim_measures": "每两小时便携式检测仪巡检",
    }
    form.update(overrides)
    return form
