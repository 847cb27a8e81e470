"""Errors become one JSON shape under /api/ (or Accept: JSON) and a Chinese page otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Blueprint
from flask import Flask
from flask import abort
from flask import request
from flask.testing import FlaskClient
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError

from engine.errors import Conflict
from engine.errors import DefinitionInvalid
from engine.errors import ExpressionError
from engine.errors import Forbidden
from engine.errors import HandlerError
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.errors import UnsafeExpression
from web.auth import api_auth_required
from web.errors import TooManyAttempts

#: kind -> what the probe view raises (an int: ``abort(status)``)
RAISERS: dict[str, Exception | int] = {
    "not_found": NotFound("隐患", 42),
    "forbidden": Forbidden("您无权作废该隐患"),
    "conflict": Conflict("任务已被他人认领"),
    "invalid_input": InvalidInput({"title": ["必填"]}),
    "definition_invalid": DefinitionInvalid("Task_1", "缺少候选角色"),
    "unsafe_expression": UnsafeExpression("__import__('os')", "不允许"),
    "expression_error": ExpressionError("1/0", "除以零"),
    "marshmallow": ValidationError({"grade": ["无效的等级"]}),
    "unauthorized": 401,
    "bad_request": 400,
    "too_many": TooManyAttempts(90),
    "database": OperationalError("SELECT 1", {}, Exception("down")),
    "race": IntegrityError("INSERT INTO definition_version …", {}, Exception("duplicate key")),
    "handler": HandlerError("issue_notice", "模板缺失"),
    "crash": RuntimeError("boom: secret detail"),
}

#: kind -> (status, JSON code, a phrase of the Chinese page)
EXPECTED = {
    "not_found": (404, "not_found", "页面不存在"),
    "forbidden": (403, "forbidden", "您无权作废该隐患"),
    "conflict": (409, "conflict", "任务已被他人认领"),
    "invalid_input": (422, "invalid_input", "必填"),
    "definition_invalid": (422, "definition_invalid", "缺少候选角色"),
    "unsafe_expression": (422, "unsafe_expression", "不允许"),
    "expression_error": (422, "expression_error", "除以零"),
    "marshmallow": (422, "invalid_input", "无效的等级"),
    "unauthorized": (401, "unauthenticated", "需要登录"),
    "bad_request": (400, "bad_request", "请求无效"),
    "too_many": (429, "too_many_requests", "请求过于频繁"),
    "database": (503, "service_unavailable", "数据库暂时不可用"),
    "race": (409, "conflict", "数据刚被他人同时修改"),
    "handler": (500, "handler_error", "服务器内部错误"),
    "crash": (500, "internal_error", "服务器内部错误"),
}


def _probe(app: Flask) -> None:
    """A test-only blueprint at /probe/… and /api/probe/… that raises on request."""
    for prefix, name in (("/probe", "probe"), ("/api/probe", "api_probe")):
        bp = Blueprint(name, __name__, url_prefix=prefix)

        @bp.get("/raise/<kind>")
        def raise_(kind: str) -> str:
            error = RAISERS[kind]
            if isinstance(error, int):
                abort(error)
            raise error

        @bp.post("/echo")
        @api_auth_required
        def echo() -> dict[str, object]:
            return {"got": request.get_json()}

        app.register_blueprint(bp)
    # Unhandled exceptions must reach the 500 handler instead of the test (TESTING propagates).
    app.config["PROPAGATE_EXCEPTIONS"] = False


@pytest.fixture
def probed(app: Flask) -> FlaskClient:
    _probe(app)
    return app.test_client()


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_api_errors_are_json(probed: FlaskClient, kind: str) -> None:
    status, code, _phrase = EXPECTED[kind]
    response = probed.get(f"/api/probe/raise/{kind}")
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "message", "errors"}
    assert body["code"] == code
    assert body["message"]
    assert "secret detail" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_page_errors_are_chinese_html(probed: FlaskClient, kind: str) -> None:
    status, _code, phrase = EXPECTED[kind]
    response = probed.get(f"/probe/raise/{kind}")
    assert response.status_code == status
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert phrase in page
    assert "隐患排查治理闭环系统" in page
    assert "secret detail" not in page


@pytest.mark.parametrize("kind", ["not_found", "invalid_input", "crash"])
def test_accept_json_gets_json_on_page_paths(probed: FlaskClient, kind: str) -> None:
    status, code, _phrase = EXPECTED[kind]
    response = probed.get(f"/probe/raise/{kind}", headers={"Accept": "application/json"})
    assert response.status_code == status
    assert response.get_json()["code"] == code


def test_field_errors_are_returned(probed: FlaskClient) -> None:
    body = probed.get("/api/probe/raise/invalid_input").get_json()
    assert body["errors"] == {"title": ["必填"]}
    body = probed.get("/api/probe/raise/definition_invalid").get_json()
    assert body["errors"] == {"Task_1": ["缺少候选角色"]}
    page = probed.get("/probe/raise/invalid_input").get_data(as_text=True)
    assert "title" in page and "必填" in page


def test_rate_limit_and_auth_errors_carry_their_headers(probed: FlaskClient) -> None:
    assert probed.get("/api/probe/raise/too_many").headers["Retry-After"] == "90"
    assert probed.get("/api/probe/raise/database").headers["Retry-After"]
    assert "Bearer" in probed.post("/api/probe/echo", json={}).headers["WWW-Authenticate"]


def test_unknown_routes_are_404_in_both_formats(client: FlaskClient) -> None:
    api = client.get("/api/v0/nothing-here")
    assert api.status_code == 404
    assert api.get_json()["code"] == "not_found"
    page = client.get("/nothing-here")
    assert page.status_code == 404
    assert "页面不存在" in page.get_data(as_text=True)


def test_wrong_method_is_405_with_allow(probed: FlaskClient) -> None:
    # No CSRF token either: the 405 must win (no view would run).
    api = probed.post("/api/probe/raise/conflict")
    assert api.status_code == 405
    assert api.get_json()["code"] == "method_not_allowed"
    assert "GET" in api.headers["Allow"]
    page = probed.delete("/probe/raise/conflict")
    assert page.status_code == 405
    assert "不支持该请求方法" in page.get_data(as_text=True)


def test_malformed_json_is_400_json(probed: FlaskClient, api_token: Callable[..., str]) -> None:
    headers = {"Authorization": f"Bearer {api_token('chen_safety')}"}
    ok = probed.post("/api/probe/echo", json={"a": 1}, headers=headers)
    assert ok.status_code == 200
    assert ok.get_json() == {"got": {"a": 1}}
    bad = probed.post("/api/probe/echo", data="{not json", content_type="application/json", headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["code"] == "malformed_json"
    assert bad.get_json()["message"] == "请求内容不是有效的 JSON"
    wrong_type = probed.post("/api/probe/echo", data="a=1", headers=headers)
    assert wrong_type.status_code == 415
    assert wrong_type.get_json()["code"] == "unsupported_media_type"


def test_oversize_body_is_413(make_app: Callable[..., Flask], login: Callable[..., object]) -> None:
    app = make_app(max_content_length=1024)
    client = app.test_client()
    api = client.post("/api/anything", data=b"x" * 2048, content_type="application/octet-stream")
    assert api.status_code == 413
    assert api.get_json()["code"] == "payload_too_large"
    page = client.post("/login", data={"username": "a", "password": "b", "blob": "x" * 4096})
    assert page.status_code == 413
    assert "上传内容过大" in page.get_data(as_text=True)
    small = client.get("/login")
    assert small.status_code == 200


def test_error_pages_follow_the_language(probed: FlaskClient) -> None:
    probed.get("/lang/en")
    page = probed.get("/probe/raise/not_found").get_data(as_text=True)
    assert "Not found" in page
    assert '<html lang="en">' in page
    english = probed.get("/api/probe/raise/crash").get_json()
    assert english["message"].startswith("The server hit an error")
