"""``/api/v1/inspections``: scheduled inspections (排查计划) — list them, record one.

The shapes live here with the views; :mod:`web.api.openapi` adds :data:`COMPONENTS` to the
document next to those of :mod:`web.api.schemas`.
"""

from __future__ import annotations

from typing import Any

from flask.typing import ResponseReturnValue
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

from engine import inspections
from engine.models import InspectionState
from engine.models import Role

from ..auth import api_auth_required
from ..auth import current_actor
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import json_body
from . import operation
from . import query_args
from .schemas import ApiSchema
from .schemas import _id
from .schemas import _Instant
from .schemas import _Int
from .schemas import _List
from .schemas import _one_of
from .schemas import _PageQuery
from .schemas import _range
from .schemas import _Text

# --- shapes -----------------------------------------------------------------------------------------


class InspectionQuerySchema(_PageQuery):
    scope = _Text(
        load_default="mine",
        validate=_one_of(inspections.SCOPES),
        metadata={
            "description": "mine：我可以填报的（默认只列待检查和逾期未检查）；visible：我可以查看的全部"
        },
    )
    state = _Text(
        validate=_one_of(InspectionState),
        metadata={"description": "open 待检查、missed 逾期未检查、done 已完成"},
    )


class InspectionSchema(Schema):
    id = fields.Integer()
    plan_key = fields.String(
        validate=_one_of(inspections.PLANS),
        metadata={"description": "principal_self_inspection 主要负责人带队检查；grid_check 网格化“四查”"},
    )
    title = fields.String()
    enterprise_id = fields.Integer(allow_none=True)
    enterprise_name = fields.Function(
        lambda o: o.enterprise.name if o.enterprise is not None else None,
        allow_none=True,
        metadata={"type": "string"},
    )
    region_id = fields.Integer()
    region_name = fields.Function(lambda o: o.region.name, metadata={"type": "string"})
    assignee_role = fields.String(validate=_one_of(Role), metadata={"description": "排查任务面向的岗位"})
    period_start = fields.Date(metadata={"description": "周期第一天（北京时间）"})
    period_end = fields.Date(metadata={"description": "周期最后一天（北京时间），当日 24:00 前填报"})
    due_at = _Instant()
    state = fields.String(validate=_one_of(InspectionState))
    missed_at = _Instant(allow_none=True, metadata={"description": "被标记为逾期未检查的时间"})
    completed_at = _Instant(allow_none=True)
    completed_by_id = fields.Integer(allow_none=True)
    completed_late = fields.Boolean(metadata={"description": "周期结束后才填报（逾期补报）"})
    note = fields.String(allow_none=True, metadata={"description": "检查情况"})
    hazards_found = fields.Integer(metadata={"description": "发现隐患数"})
    hazard_ids = fields.List(fields.Integer(), allow_none=True, metadata={"description": "关联的隐患编号"})
    cadence_value = fields.Integer(metadata={"description": "检查周期的数值"})
    cadence_unit = fields.String(validate=_one_of(inspections.CADENCE_UNITS))
    policy_key = fields.String(allow_none=True, metadata={"description": "生成时适用的策略配置"})
    policy_version = fields.Integer(allow_none=True)


class InspectionPageSchema(Schema):
    items = fields.List(fields.Nested(InspectionSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class InspectionCompleteRequestSchema(ApiSchema):
    note = _Text(
        required=True,
        validate=validate.Length(min=1, max=inspections.MAX_NOTE, error="长度必须在 1–2000 个字符之间"),
        metadata={"description": "检查情况"},
    )
    hazards_found = _Int(
        required=True,
        validate=_range(0, inspections.MAX_HAZARDS_FOUND),
        metadata={"description": "发现隐患数"},
    )
    hazard_ids = _List(
        _id(),
        load_default=list,
        validate=validate.Length(max=inspections.MAX_LINKED_HAZARDS, error="最多关联 100 条隐患"),
        metadata={"description": "本次检查登记的隐患编号（须为被检查企业或地区的隐患）"},
    )


#: this module's schemas with their component names (nested before nesting)
COMPONENTS: dict[str, type[Schema]] = {
    "InspectionQuery": InspectionQuerySchema,
    "Inspection": InspectionSchema,
    "InspectionPage": InspectionPageSchema,
    "InspectionCompleteRequest": InspectionCompleteRequestSchema,
}


# --- views ------------------------------------------------------------------------------------------


@bp.get("/inspections")
@operation(
    "排查任务列表",
    tag="inspections",
    description=(
        "按策略配置生成的排查任务（主要负责人带队检查、网格化“四查”）。"
        "`scope=mine`：我可以填报的，默认只列待检查和逾期未检查，逾期的在前；"
        "`scope=visible`：我可以查看的全部（本企业，或管辖地区内；部门只看其监管行业的企业）。"
    ),
    query=InspectionQuerySchema,
    response=InspectionPageSchema,
    errors=(422,),
)
@api_auth_required
def list_inspections() -> ResponseReturnValue:
    args = query_args(InspectionQuerySchema())
    with read_session() as session:
        page = inspections.occurrence_page(session, current_actor(), **args)
        return InspectionPageSchema().dump(page)


@bp.post("/inspections/<id:occurrence_id>/complete")
@operation(
    "填报排查任务",
    tag="inspections",
    description=(
        "记录检查情况和发现隐患数（可关联本次登记的隐患）。逾期未检查的仍可补报，记为逾期补报"
        "（`completed_late`）。主要负责人带队检查由该企业的主要负责人或安全管理人员填报；"
        "网格检查由该地区（含上级）的网格员、执法检查人员或安委办填报。"
        "已填报或周期尚未开始：409；可查看但无权填报：403。"
    ),
    body=InspectionCompleteRequestSchema,
    response=InspectionSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def complete_inspection(occurrence_id: int) -> ResponseReturnValue:
    data: dict[str, Any] = json_body(InspectionCompleteRequestSchema())
    with sessions().begin() as session:
        occ = inspections.complete(
            session,
            engine_context(),
            occurrence_id=occurrence_id,
            actor=current_actor(),
            note=data["note"],
            hazards_found=data["hazards_found"],
            hazard_ids=data["hazard_ids"],
        )
        return InspectionSchema().dump(occ)
