"""``/api/v1/notices``: escalation-related events of the hazards the caller may see.

Formal notices (三书一函, numbered documents) arrive in a later issue; until then this endpoint
returns the events that lead to them: reminders, overdue marks, escalations and recorded
refusals. The response shape will keep these fields when notices are added.
"""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from engine import ledger

from ..auth import api_auth_required
from ..auth import current_actor
from ..session import read_session
from . import bp
from . import operation
from . import query_args
from . import schemas


@bp.get("/notices")
@operation(
    "督办提醒与升级",
    tag="notices",
    description=(
        "调用者有权查看的隐患上发生的提醒（reminder）、逾期（overdue）、升级（escalated）和"
        "拒不整改/虚假整改认定（violation_recorded）事件，按时间倒序。"
        "注意：正式的通知文书（三书一函）将在后续版本加入，届时本接口会增加字段，现有字段保持不变。"
    ),
    query=schemas.NoticeQuerySchema,
    response=schemas.NoticePageSchema,
    errors=(422,),
)
@api_auth_required
def list_notices() -> ResponseReturnValue:
    args = query_args(schemas.NoticeQuerySchema())
    with read_session() as session:
        page = ledger.escalation_notices(session, current_actor(), **args)
        return schemas.NoticePageSchema().dump(page)
