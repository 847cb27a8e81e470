"""``/api/v1/definitions``: the deployed process definitions and the grades bound to them."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from engine import ledger

from ..auth import api_auth_required
from ..session import read_session
from . import bp
from . import operation
from . import schemas


@bp.get("/definitions")
@operation(
    "已部署的流程定义",
    tag="definitions",
    description=(
        "每个已部署的流程版本：标识、版本号、BPMN 文件的 sha256、部署时间，以及新登记隐患时"
        "绑定到它的等级（未固定版本的绑定算作该流程的最新版本）。"
    ),
    response=schemas.DefinitionListSchema,
)
@api_auth_required
def list_definitions() -> ResponseReturnValue:
    with read_session() as session:
        items = ledger.deployed_definitions(session)
        return schemas.DefinitionListSchema().dump({"items": items, "total": len(items)})
