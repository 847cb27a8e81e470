"""Errors become HTTP answers in one place: ``register_error_handlers(app)``.

Views do not catch engine errors to build responses; they let them propagate (the
``with sessions().begin()`` block has already rolled back) and this module answers:

=========================================  ======  =============================================
raised                                     status  ``code``
=========================================  ======  =============================================
``engine.errors.NotFound``                 404     ``not_found``
``engine.errors.Forbidden``                403     ``forbidden``
``engine.errors.Conflict``                 409     ``conflict``
``engine.errors.InvalidInput``             422     ``invalid_input`` (``errors`` = field messages)
``marshmallow.ValidationError``            422     ``invalid_input``
``engine.errors.DefinitionInvalid``        422     ``definition_invalid`` (``errors`` by element)
``engine.design.GateRefused``              422     ``definition_invalid`` (every error, by element)
``UnsafeExpression`` / ``ExpressionError`` 422     ``unsafe_expression`` / ``expression_error``
``Unauthenticated`` / ``InvalidToken``     401     ``unauthenticated`` / ``invalid_token``
``CsrfFailed``                             400     ``csrf_failed``
``TooManyAttempts``                        429     ``too_many_requests`` (``Retry-After`` header)
``werkzeug`` HTTP errors (``abort(404)``)  theirs  ``bad_request``, ``malformed_json``, …
``sqlalchemy.exc.OperationalError``        503     ``service_unavailable`` (logged)
``sqlalchemy.exc.IntegrityError``          409     ``conflict`` (a concurrent write won the race)
anything else                              500     ``internal_error`` (logged by Flask)
=========================================  ======  =============================================

The answer is JSON ``{"code": …, "message": …, "errors": {…}}`` for paths under ``/api/`` and
for requests whose ``Accept`` prefers ``application/json`` (:func:`wants_json`), otherwise the
Chinese (or English) page ``errors/error.html``. A view that wants to show field errors inside
its own form catches ``InvalidInput`` itself and re-renders the form with status 422.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Response

from engine.design import GateRefused
from engine.errors import Conflict
from engine.errors import DefinitionInvalid
from engine.errors import EngineError
from engine.errors import ExpressionError
from engine.errors import Forbidden
from engine.errors import HandlerError
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.errors import UnsafeExpression

from .i18n import _

logger = logging.getLogger(__name__)


# --- errors raised by the web layer -------------------------------------------------------------


class WebError(Exception):
    """An error the web layer raises on purpose; ``message`` is Chinese source text for ``_()``."""

    status = 400
    code = "bad_request"
    message = "请求无效"

    def __init__(self, message: str | None = None, **params: object) -> None:
        if message is not None:
            self.message = message
        self.params = params
        super().__init__(self.message.format(**params) if params else self.message)

    def headers(self) -> dict[str, str]:
        return {}


class Unauthenticated(WebError):
    """No logged-in user (pages redirect to the login form instead; see ``login_required``)."""

    status = 401
    code = "unauthenticated"
    message = "请先登录"


class InvalidToken(Unauthenticated):
    """A bearer token that is missing, malformed, unknown, expired or revoked.

    ``reason`` is one of ``missing``, ``invalid``, ``expired``, ``revoked`` (the JSON ``code``
    stays ``invalid_token`` for all but ``missing``, which is ``unauthenticated``).
    """

    MESSAGES = {
        "missing": "需要有效的 API 令牌",
        "invalid": "API 令牌无效",
        "expired": "API 令牌已过期",
        "revoked": "API 令牌已被吊销",
    }

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.code = "unauthenticated" if reason == "missing" else "invalid_token"
        super().__init__(self.MESSAGES.get(reason, self.MESSAGES["invalid"]))

    def headers(self) -> dict[str, str]:
        if self.reason == "missing":
            return {"WWW-Authenticate": 'Bearer realm="hazardloop"'}
        challenge = f'Bearer realm="hazardloop", error="invalid_token", error_description="{self.reason}"'
        return {"WWW-Authenticate": challenge}


class CsrfFailed(WebError):
    """A form or cookie-authenticated POST without the session's CSRF token."""

    status = 400
    code = "csrf_failed"
    message = "页面已过期或请求来源无效，请刷新页面后重试。"


class TooManyAttempts(WebError):
    """A rate limit was hit; ``retry_after`` is in seconds."""

    status = 429
    code = "too_many_requests"
    message = "请求过于频繁，请稍后再试。"

    def __init__(self, retry_after: int, message: str | None = None, **params: object) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(message, **params)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


# --- choosing the format ------------------------------------------------------------------------


def wants_json() -> bool:
    """JSON for ``/api/`` paths and for clients whose ``Accept`` prefers JSON over HTML."""
    if request.path == "/api" or request.path.startswith("/api/"):
        return True
    accept = request.accept_mimetypes
    return accept["application/json"] > accept["text/html"]


TITLES = {
    400: "请求无效",
    401: "需要登录",
    403: "无权访问",
    404: "页面不存在",
    405: "不支持该请求方法",
    409: "操作冲突",
    413: "上传内容过大",
    415: "请求格式不受支持",
    422: "提交内容有误",
    429: "请求过于频繁",
    500: "服务器内部错误",
    503: "服务暂不可用",
}
#: messages for HTTP errors raised by werkzeug/``abort()`` (their own texts are English)
HTTP_MESSAGES = {
    400: "请求无效",
    401: "请先登录后再访问该页面。",
    403: "您没有权限执行该操作。",
    404: "您访问的页面或记录不存在，或您无权查看。",
    405: "该地址不支持此请求方法。",
    415: "请求格式不受支持",
    422: "请检查标注的字段后重新提交。",
    429: "请求过于频繁，请稍后再试。",
    500: "服务器出现错误，已记录。请稍后重试，或联系系统管理员。",
    503: "数据库暂时不可用，请稍后重试。",
}
#: JSON ``code`` of HTTP errors (others: werkzeug's name in snake case)
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}
#: headers of werkzeug's own error responses worth keeping
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


def error_response(
    status: int,
    code: str,
    message: str,
    errors: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON or HTML answer for an error (``message`` already translated)."""
    errors = dict(errors or {})
    if wants_json():
        response = jsonify(code=code, message=message, errors=errors)
    else:
        html = render_template(
            "errors/error.html",
            status=status,
            title=_(TITLES.get(status, "错误")),
            code=code,
            message=message,
            errors=errors,
        )
        response = current_app.make_response(html)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(messages: object) -> dict[str, Any]:
    """marshmallow/engine messages as a dict (a bare list becomes ``{"_schema": [...]}``)."""
    if isinstance(messages, Mapping):
        return dict(messages)
    if isinstance(messages, list | tuple):
        return {"_schema": list(messages)}
    return {"_schema": [str(messages)]}


# --- handlers -----------------------------------------------------------------------------------


def _engine_error(exc: EngineError) -> Response:
    if isinstance(exc, NotFound):
        return error_response(404, exc.code, str(exc))
    if isinstance(exc, Forbidden):
        return error_response(403, exc.code, str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, InvalidInput):
        return error_response(422, exc.code, _("请检查标注的字段后重新提交。"), _field_errors(exc.messages))
    if isinstance(exc, GateRefused):
        refused: dict[str, list[str]] = {}
        for problem in exc.errors:
            refused.setdefault(problem.element or "_definition", []).append(problem.message)
        return error_response(422, exc.code, _("未通过发布检查，未发布"), refused)
    if isinstance(exc, DefinitionInvalid):
        return error_response(422, exc.code, str(exc), {exc.element_id or "_definition": [exc.reason]})
    if isinstance(exc, UnsafeExpression | ExpressionError):
        return error_response(422, exc.code, str(exc), {"expression": [exc.reason]})
    if isinstance(exc, HandlerError):
        # A service-task handler broke: a server-side failure, not the user's input.
        logger.error("service task handler failed: %s", exc, exc_info=exc)
        return error_response(500, exc.code, _(HTTP_MESSAGES[500]))
    return error_response(400, exc.code, str(exc))


def _web_error(exc: WebError) -> Response:
    return error_response(exc.status, exc.code, _(exc.message, **exc.params), headers=exc.headers())


def _validation_error(exc: ValidationError) -> Response:
    return error_response(
        422, "invalid_input", _("请检查标注的字段后重新提交。"), _field_errors(exc.messages)
    )


def _is_json_decode_error(exc: BaseException | None) -> bool:
    """Raised by ``request.get_json()`` on a body that is not JSON (Flask re-raises it bare)."""
    while exc is not None:
        if isinstance(exc, HTTPException) and (exc.description or "").startswith("Failed to decode JSON"):
            return True
        exc = exc.__cause__
    return False


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    message = _(HTTP_MESSAGES.get(status, TITLES.get(status, "错误")))
    if status == 400 and _is_json_decode_error(exc):
        code, message = "malformed_json", _("请求内容不是有效的 JSON")
    elif status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        message = _("请求内容超过 {mb} MB 上限。", mb=f"{limit / 1024 / 1024:g}")
    headers = {name: value for name, value in exc.get_headers() if name in KEPT_HEADERS}
    return error_response(status, code, message, headers=headers)


def _database_unavailable(exc: OperationalError) -> Response:
    logger.error("database unavailable: %s", exc, exc_info=exc)
    return error_response(503, "service_unavailable", _(HTTP_MESSAGES[503]), headers={"Retry-After": "5"})


def _concurrent_write(exc: IntegrityError) -> Response:
    # A unique key taken by a concurrent request between our read and our write (two people
    # publishing version n+1 at once, say): the transaction rolled back, nothing was written.
    logger.warning("integrity error answered as a conflict: %s", exc.orig)
    return error_response(409, "conflict", _("数据刚被他人同时修改，本次操作未保存，请重新加载后再试。"))


def register_error_handlers(app: Flask) -> None:
    """Map engine, web, validation, HTTP and database errors to JSON or HTML answers (see above)."""
    app.register_error_handler(EngineError, _engine_error)
    app.register_error_handler(WebError, _web_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(IntegrityError, _concurrent_write)
    app.register_error_handler(HTTPException, _http_error)
    # Unhandled exceptions reach this as InternalServerError (Flask has logged them already).
    app.register_error_handler(InternalServerError, _http_error)
