"""The OpenAPI 3.1 document (``/api/v1/openapi.json``) and the Swagger UI page (``/api/docs``).

The document is built from the app's URL map: every ``api.*`` route, with the
:class:`web.api.Operation` its view carries, becomes an operation; the marshmallow schemas of
:mod:`web.api.schemas` become ``components.schemas`` through apispec's ``MarshmallowPlugin``.
Built once per app and cached.

The docs page loads Swagger UI from ``web/static/vendor/swagger-ui-dist/`` (copied from npm by
``scripts/build_assets.py``) and ``js/api-docs.js``, under the app's default CSP ('self' only):
no CDN, no inline script, no validator badge calling out.
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import jsonify
from flask import render_template
from flask.typing import ResponseReturnValue
from werkzeug.routing import Rule

from . import MAX_ID
from . import OPERATION_ATTR
from . import Operation
from . import bp
from . import inspections
from . import operation
from . import schemas

API_TITLE = "隐患排查治理闭环系统 API"
API_VERSION = "1.0.0"
OPENAPI_VERSION = "3.1.0"
_CACHE_KEY = "hazardloop.openapi"
_METHODS = ("get", "post", "put", "patch", "delete")

DESCRIPTION = """\
隐患排查治理闭环的 JSON 接口。

**认证**：先 `POST /api/v1/auth/token` 用用户名和密码换取令牌，之后每个请求带
`Authorization: Bearer <token>`。浏览器中已登录的会话也可以调用（写操作须带 `X-CSRF-Token` 头）。

**可见范围**：每个用户只能看到其岗位和管辖范围内的隐患与任务；范围外的编号与不存在的一样返回 404。

**错误**：一律是 JSON `{"code", "message", "errors"}`：400 请求体不是 JSON 或不是对象，
401 未认证或令牌无效/过期/已吊销，403 无权执行，404 不存在或无权查看，409 状态冲突
（任务已办结、已被他人认领），413 上传过大，415 内容类型不对，422 字段错误（`errors` 按字段名，
包括未知字段），429 登录失败次数过多。

**时间**：ISO 8601，请求中必须带时区偏移（如 `2023-05-01T09:30:00+08:00`）；响应为 UTC。
"""

TAGS = [
    {"name": "auth", "description": "API 令牌"},
    {"name": "hazards", "description": "隐患登记与台账"},
    {"name": "tasks", "description": "待办任务：认领、释放、办结、上传附件"},
    {
        "name": "definitions",
        "description": "流程定义：版本、差异、迁移；流程图的检查、发布、导出与绑定（部门流程管理员）",
    },
    {"name": "design", "description": "流程设计：任务表单与策略配置的查看和发布（部门流程管理员）"},
    {
        "name": "notices",
        "description": "督办文书（三书一函、挂牌督办文书）：列表、正文、签收、回复、办结、PDF",
    },
    {"name": "inspections", "description": "排查计划：主要负责人带队检查、网格化“四查”的排查任务与填报"},
    {"name": "meta", "description": "接口文档"},
]

#: reusable error responses, by status
ERROR_RESPONSES = {
    400: ("BadRequest", "请求体不是有效的 JSON、不是 JSON 对象，或缺少 CSRF 令牌（会话认证时）"),
    401: ("Unauthorized", "未认证，或令牌无效、过期、已吊销（`WWW-Authenticate` 说明原因）"),
    403: ("Forbidden", "可以查看，但无权执行此操作"),
    404: ("NotFound", "不存在，或不在调用者的可见范围内"),
    409: ("Conflict", "状态冲突：任务已办结、已被他人认领，或被并发修改"),
    413: ("PayloadTooLarge", "请求或上传文件超过大小上限"),
    415: ("UnsupportedMediaType", "内容类型不对（JSON 接口须为 application/json）"),
    422: ("UnprocessableEntity", "字段错误：类型、必填、枚举、未知字段、时间缺少时区等"),
    429: ("TooManyRequests", "登录失败次数过多，暂时锁定（见 `Retry-After`）"),
    503: (
        "ServiceUnavailable",
        "服务暂不可用（如 PDF 生成所需的 Chromium 未安装），稍后重试（见 `Retry-After`）",
    ),
}

docs_bp = Blueprint("api_docs", __name__)


def openapi_path(rule: Rule) -> str:
    """``/api/v1/tasks/<id:item_id>`` → ``/api/v1/tasks/{item_id}``."""
    return re.sub(r"<(?:[^<>:]+:)?(\w+)>", r"{\1}", rule.rule)


def _operation(endpoint: str, rule: Rule, record: Operation) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.removeprefix("api."),
        "summary": record.summary,
        "tags": [record.tag],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}] if record.auth else [],
    }
    if record.description:
        op["description"] = record.description
    path = record.path or {}
    id_schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": dict(path.get(name, id_schema))}
        for name in sorted(rule.arguments)
    ]
    if record.query is not None:
        parameters.append({"in": "query", "schema": record.query})
    if parameters:
        op["parameters"] = parameters
    if record.request_body is not None:
        op["requestBody"] = dict(record.request_body)
    elif record.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": record.body}}}
    success: dict[str, Any] = {
        "description": {200: "成功", 201: "已创建", 204: "已完成，无内容"}[record.status]
    }
    if record.produces is not None:
        success["content"] = {record.produces: {"schema": {"type": "string", "format": "binary"}}}
    elif record.response is not None:
        success["content"] = {"application/json": {"schema": record.response}}
    elif record.status != 204:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    if record.location:
        success["headers"] = {"Location": {"schema": {"type": "string"}, "description": "新资源的地址"}}
    responses: dict[str, Any] = {str(record.status): success}
    codes = set(record.errors) | ({401} if record.auth else set())
    for code in sorted(codes):
        responses[str(code)] = ERROR_RESPONSES[code][0]
    op["responses"] = responses
    return op


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s ``/api/v1`` routes.

    :raises LookupError: an ``api.*`` view without an :func:`web.api.operation` record.
    """
    spec = APISpec(
        title=API_TITLE,
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin()],
        info={"description": DESCRIPTION},
        tags=TAGS,
    )
    for name, schema in {**schemas.COMPONENTS, **inspections.COMPONENTS}.items():
        spec.components.schema(name, schema=schema)
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "`POST /api/v1/auth/token` 取得的令牌"},
    )
    spec.components.security_scheme(
        "sessionCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config.get("SESSION_COOKIE_NAME", "session"),
            "description": "浏览器登录会话；POST/DELETE 还须带 `X-CSRF-Token` 头",
        },
    )
    for code, (name, description) in ERROR_RESPONSES.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": schemas.ErrorSchema}},
        }
        if code in (401, 429, 503):
            header = "WWW-Authenticate" if code == 401 else "Retry-After"
            response["headers"] = {header: {"schema": {"type": "string"}}}
        spec.components.response(name, response)

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.endpoint.startswith(f"{bp.name}."):
            continue
        record = getattr(app.view_functions[rule.endpoint], OPERATION_ATTR, None)
        if record is None:
            raise LookupError(f"API view {rule.endpoint} has no @operation record")
        for method in sorted(m.lower() for m in rule.methods or () if m.lower() in _METHODS):
            paths.setdefault(openapi_path(rule), {})[method] = _operation(rule.endpoint, rule, record)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@bp.get("/openapi.json")
@operation(
    "OpenAPI 文档",
    tag="meta",
    description="本文档（OpenAPI 3.1）。无须认证。",
    auth=False,
)
def openapi_json() -> ResponseReturnValue:
    document = current_app.extensions.get(_CACHE_KEY)
    if document is None:
        document = current_app.extensions[_CACHE_KEY] = build_spec(current_app)
    return jsonify(document)


@docs_bp.get("/api/docs")
def docs() -> ResponseReturnValue:
    """Swagger UI over ``/api/v1/openapi.json``, from the local vendor files."""
    return render_template("api/docs.html")
