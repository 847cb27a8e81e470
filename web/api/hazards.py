"""``/api/v1/hazards``: register a hazard, the ledger (台账) with its filters, one hazard's file."""

from __future__ import annotations

from flask import url_for
from flask.typing import ResponseReturnValue

from engine import ledger
from engine import runtime

from ..auth import api_auth_required
from ..auth import current_actor
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import json_body
from . import operation
from . import query_args
from . import schemas


@bp.post("/hazards")
@operation(
    "登记隐患",
    tag="hazards",
    description=(
        "登记一条隐患并按其等级（和行业）启动整改闭环。`discovered_at` 和 `deadline` 可以早于今天，"
        "用于补录 2024 年以前的存量隐患；时间必须带时区偏移。"
    ),
    body=schemas.HazardCreateRequestSchema,
    response=schemas.HazardSchema,
    status=201,
    errors=(400, 403, 415, 422),
    location=True,
)
@api_auth_required
def create_hazard() -> ResponseReturnValue:
    data = json_body(schemas.HazardCreateRequestSchema())
    with sessions().begin() as session:
        hazard = runtime.register_hazard(session, engine_context(), actor=current_actor(), data=data)
        body = schemas.HazardSchema().dump(hazard)
    return body, 201, {"Location": url_for("api.get_hazard", hazard_id=body["id"])}


@bp.get("/hazards")
@operation(
    "隐患台账",
    tag="hazards",
    description="调用者有权查看的隐患，按台账条件筛选、排序、分页；`total` 为符合条件的总数。",
    query=schemas.HazardQuerySchema,
    response=schemas.HazardPageSchema,
    errors=(422,),
)
@api_auth_required
def list_hazards() -> ResponseReturnValue:
    args = query_args(schemas.HazardQuerySchema())
    page, per_page = args.pop("page"), args.pop("per_page")
    with read_session() as session:
        result = ledger.search(
            session,
            current_actor(),
            ledger.LedgerFilter(**args),
            now=engine_context().clock.now(),
            page=page,
            per_page=per_page,
        )
        return schemas.HazardPageSchema().dump(result)


@bp.get("/hazards/<id:hazard_id>")
@operation(
    "隐患档案（一患一档）",
    tag="hazards",
    description="隐患记录、事件时间线、当前待办任务和附件。无权查看的隐患与不存在的一样返回 404。",
    response=schemas.HazardDetailSchema,
    errors=(404,),
)
@api_auth_required
def get_hazard(hazard_id: int) -> ResponseReturnValue:
    with read_session() as session:
        file = ledger.hazard_file(session, current_actor(), hazard_id)
        body = schemas.HazardSchema().dump(file.hazard)
        body["timeline"] = schemas.TimelineEventSchema(many=True).dump(file.events)
        body["tasks"] = schemas.TaskSchema(many=True).dump(file.open_items)
        body["attachments"] = schemas.AttachmentSchema(many=True).dump(file.attachments)
        return body
