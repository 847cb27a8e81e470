"""``/api/v1/notices``: the escalation notices (督办文书) of the hazards the caller may see.

List (filters, pages), one notice with its text and what the caller may do with it, the status
actions (签收 ``acknowledge`` and 书面回复 ``respond`` by the target enterprise, 办结 ``close`` by
the issuing side) and the PDF. A notice of a hazard outside the caller's scope is 404.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from engine import notices
from engine.models import Notice

from .. import pdf
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


def _detail(session: Session, notice: Notice) -> dict[str, Any]:
    dumped: dict[str, Any] = schemas.NoticeDetailSchema().dump(
        {"notice": notice, "actions": notices.notice_actions(session, current_actor(), notice)}
    )
    return dumped


def _optional_body(schema: Any) -> dict[str, Any]:
    """An optional JSON body: none (or an empty one) is ``{}``; anything else goes through ``schema``."""
    if not request.get_data(cache=True):
        return {}
    return json_body(schema)


@bp.get("/notices")
@operation(
    "督办文书列表",
    tag="notices",
    description=(
        "调用者有权查看的隐患的督办文书（提醒敦促函、督办函、通报、约谈通知书、曝光公告、挂牌督办文书等），"
        "按签发时间倒序；可按种类、状态、签发机关、年度、隐患编号筛选。"
    ),
    query=schemas.NoticeQuerySchema,
    response=schemas.NoticePageSchema,
    errors=(422,),
)
@api_auth_required
def list_notices() -> ResponseReturnValue:
    args = query_args(schemas.NoticeQuerySchema())
    with read_session() as session:
        page = notices.list_notices(session, current_actor(), **args)
        return schemas.NoticePageSchema().dump(page)


@bp.get("/notices/<id:notice_id>")
@operation(
    "督办文书详情",
    tag="notices",
    description="文书的全部字段、签发时生成的正文（HTML）和事实快照，以及调用者现在可以执行的操作。",
    response=schemas.NoticeDetailSchema,
    errors=(404,),
)
@api_auth_required
def get_notice(notice_id: int) -> ResponseReturnValue:
    with read_session() as session:
        return _detail(session, notices.get_notice(session, current_actor(), notice_id))


@bp.post("/notices/<id:notice_id>/acknowledge")
@operation(
    "签收督办文书",
    tag="notices",
    description="被督办企业（主要负责人、安全管理人员、整改责任人）签收：issued → acknowledged。无请求体。",
    response=schemas.NoticeDetailSchema,
    errors=(403, 404, 409),
)
@api_auth_required
def acknowledge_notice(notice_id: int) -> ResponseReturnValue:
    with sessions().begin() as session:
        notice = notices.acknowledge(session, engine_context(), notice_id=notice_id, actor=current_actor())
        return _detail(session, notice)


@bp.post("/notices/<id:notice_id>/respond")
@operation(
    "书面回复督办文书",
    tag="notices",
    description="被督办企业书面回复已签收的文书：acknowledged → responded。",
    body=schemas.NoticeRespondRequestSchema,
    response=schemas.NoticeDetailSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def respond_notice(notice_id: int) -> ResponseReturnValue:
    data = json_body(schemas.NoticeRespondRequestSchema())
    with sessions().begin() as session:
        notice = notices.respond(
            session, engine_context(), notice_id=notice_id, actor=current_actor(), text=data["text"]
        )
        return _detail(session, notice)


@bp.post("/notices/<id:notice_id>/close")
@operation(
    "办结督办文书",
    tag="notices",
    description=(
        "签发机关的审核人员或覆盖签发机关的安委办办结文书（任何未办结状态 → closed）；"
        "企业尚未书面回复的，须在 note 中说明理由。请求体可省略。"
    ),
    request_body={
        "required": False,
        "content": {"application/json": {"schema": schemas.NoticeCloseRequestSchema}},
    },
    response=schemas.NoticeDetailSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def close_notice(notice_id: int) -> ResponseReturnValue:
    data = _optional_body(schemas.NoticeCloseRequestSchema())
    with sessions().begin() as session:
        notice = notices.close(
            session, engine_context(), notice_id=notice_id, actor=current_actor(), note=data.get("note")
        )
        return _detail(session, notice)


@bp.get("/notices/<id:notice_id>/pdf")
@operation(
    "督办文书 PDF",
    tag="notices",
    description="与打印页面相同的 A4 文书（PDF，文件名为文号）。服务器无 Chromium 时返回 503。",
    produces=pdf.PDF_MIMETYPE,
    errors=(404, 503),
)
@api_auth_required
def notice_pdf(notice_id: int) -> ResponseReturnValue:
    with read_session() as session:
        notice = notices.get_notice(session, current_actor(), notice_id)
        html, number = notices.render_printable(notice), notice.document_number
    return pdf.pdf_response(pdf.html_to_pdf(html), f"{number}.pdf")
