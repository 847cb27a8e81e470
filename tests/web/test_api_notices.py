"""``/api/v1/notices``: the scoped list with its filters, one notice, the status actions, the PDF."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine.demo import DemoWorld
from engine.runtime import EngineContext
from tests.conftest import is_postgres
from web import pdf
from web.session import app_state

from .conftest import LoginFn as Login
from .test_api_auth import assert_error
from .test_api_tasks import Api
from .test_hazards import as_user
from .test_hazards import register
from .test_notices_pages import issue


@pytest.fixture
def api(client: FlaskClient, api_token: Callable[..., str]) -> Api:
    return Api(client, api_token)


@pytest.fixture
def issued(committed: sessionmaker[Session], app: Flask, world: DemoWorld) -> dict[str, Any]:
    """A 郎溪 hazard with the lead department's 督办函 and the 安委办's 通报."""
    ctx: EngineContext = app_state(app).ctx
    hazard_id = register(committed, ctx, world, "chen_safety", title="郎溪罐区报警器失效")
    letter_id, letter_number = issue(committed, ctx, hazard_id, "letter")
    circular_id, circular_number = issue(committed, ctx, hazard_id, "circular")
    return {
        "hazard_id": hazard_id,
        "letter": letter_id,
        "letter_number": letter_number,
        "circular": circular_id,
        "circular_number": circular_number,
    }


def test_the_list_is_scoped_filtered_and_paged(api: Api, issued: dict[str, Any]) -> None:
    hazard_id = issued["hazard_id"]
    page = api.ok(api.get("chen_safety", f"/api/v1/notices?hazard_id={hazard_id}"))
    assert set(page) == {"items", "total", "page", "per_page", "pages"}
    assert page["total"] == 2 and page["page"] == 1 and page["per_page"] == 20 and page["pages"] == 1
    newest, oldest = page["items"]
    assert (newest["id"], oldest["id"]) == (issued["circular"], issued["letter"])
    assert oldest["document_number"] == issued["letter_number"]
    assert oldest["kind"] == "letter" and oldest["kind_label"] == "督办函（函告）"
    assert oldest["issuer_name"] == "郎溪县应急管理局" and oldest["status"] == "issued"
    assert oldest["hazard_number"].startswith("YH-") and oldest["issued_at"].endswith("+00:00")
    assert {r["key"] for r in oldest["recipients"]} == {"enterprise", "competent_department"}
    assert "body_html" not in oldest and "facts" not in oldest

    def total(query: str) -> int:
        return int(api.ok(api.get("chen_safety", f"/api/v1/notices?hazard_id={hazard_id}&{query}"))["total"])

    assert total("kind=circular") == 1 and total("kind=interview") == 0
    assert total("status=issued") == 2 and total("status=closed") == 0
    assert total(f"issuer={newest['issuer_key']}") == 1
    assert total(f"year={oldest['year']}") == 2 and total("year=2001") == 0
    assert total(f"hazard_number={oldest['hazard_number']}") == 2
    second = api.ok(api.get("chen_safety", f"/api/v1/notices?hazard_id={hazard_id}&per_page=1&page=2"))
    assert [n["id"] for n in second["items"]] == [issued["letter"]] and second["pages"] == 2
    # another county sees none of them
    assert api.ok(api.get("zhao_gd", f"/api/v1/notices?hazard_id={hazard_id}"))["total"] == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=overdue", "kind"),
        ("status=gone", "status"),
        ("year=abc", "year"),
        ("hazard_id=0", "hazard_id"),
        ("per_page=1000", "per_page"),
        ("action=reminder", "action"),
    ],
)
def test_the_list_validates_its_filters(api: Api, query: str, field: str) -> None:
    body = assert_error(api.get("chen_safety", f"/api/v1/notices?{query}"), 422, "invalid_input")
    assert field in body["errors"], body


def test_one_notice_with_its_text_and_the_callers_actions(api: Api, issued: dict[str, Any]) -> None:
    url = f"/api/v1/notices/{issued['letter']}"
    detail = api.ok(api.get("chen_safety", url))
    assert set(detail) == {"notice", "actions"}
    notice = detail["notice"]
    assert notice["document_number"] == issued["letter_number"]
    assert (
        notice["body_html"].startswith('<div class="notice-body')
        and "郎溪罐区报警器失效" in notice["body_html"]
    )
    assert notice["facts"]["document_number"] == issued["letter_number"]
    assert detail["actions"] == ["acknowledge"]
    assert api.ok(api.get("wu_reviewer", url))["actions"] == ["close"]
    assert api.ok(api.get("he_office", url))["actions"] == ["close"]
    assert_error(api.get("zhao_gd", url), 404, "not_found")
    assert_error(api.get("chen_safety", "/api/v1/notices/999999"), 404, "not_found")


def test_acknowledge_respond_close(api: Api, issued: dict[str, Any]) -> None:
    base = f"/api/v1/notices/{issued['letter']}"
    assert_error(api.post("chen_safety", f"{base}/respond", json={"text": "x"}), 409, "conflict")
    assert_error(api.post("wu_reviewer", f"{base}/acknowledge"), 403, "forbidden")
    assert_error(api.post("zhao_gd", f"{base}/acknowledge"), 404, "not_found")
    acknowledged = api.ok(api.post("chen_safety", f"{base}/acknowledge"))
    assert acknowledged["notice"]["status"] == "acknowledged" and acknowledged["actions"] == ["respond"]
    assert acknowledged["notice"]["acknowledged_at"] is not None
    assert_error(api.post("wang_principal", f"{base}/acknowledge"), 409, "conflict")
    body = assert_error(api.post("chen_safety", f"{base}/respond", json={}), 422, "invalid_input")
    assert "text" in body["errors"]
    assert_error(api.post("chen_safety", f"{base}/respond", json={"text": "x", "extra": 1}), 422)
    assert_error(api.post("chen_safety", f"{base}/respond", data="text", content_type="text/plain"), 415)
    responded = api.ok(api.post("wang_principal", f"{base}/respond", json={"text": "已整改，待验收"}))
    assert (
        responded["notice"]["status"] == "responded"
        and responded["notice"]["response_text"] == "已整改，待验收"
    )
    assert_error(api.post("chen_safety", f"{base}/close", json={"note": "x"}), 403, "forbidden")
    closed = api.ok(api.post("wu_reviewer", f"{base}/close"))  # answered: no note needed, no body
    assert closed["notice"]["status"] == "closed" and closed["actions"] == []
    assert_error(api.post("he_office", f"{base}/close", json={"note": "再次办结"}), 409, "conflict")


def test_closing_an_unanswered_notice_needs_a_note(api: Api, issued: dict[str, Any]) -> None:
    base = f"/api/v1/notices/{issued['circular']}"
    assert_error(api.post("wu_reviewer", f"{base}/close", json={"note": "x"}), 403)  # the 安委办's notice
    body = assert_error(api.post("he_office", f"{base}/close", json={}), 422, "invalid_input")
    assert "note" in body["errors"]
    closed = api.ok(api.post("he_office", f"{base}/close", json={"note": "隐患已销号"}))
    assert closed["notice"]["close_note"] == "隐患已销号"


def test_a_browser_session_needs_the_csrf_header(
    client: FlaskClient, login: Login, issued: dict[str, Any]
) -> None:
    as_user(client, login, "chen_safety")
    url = f"/api/v1/notices/{issued['letter']}/acknowledge"
    assert_error(client.post(url), 400, "csrf_failed")
    with client.session_transaction() as sess:
        token = str(sess["_csrf"])
    response = client.post(url, headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.get_json()["notice"]["status"] == "acknowledged"


def test_the_pdf(api: Api, issued: dict[str, Any]) -> None:
    url = f"/api/v1/notices/{issued['letter']}/pdf"
    assert_error(api.get("zhao_gd", url), 404, "not_found")
    if not pdf.available():
        pytest.skip(f"{pdf.CHROMIUM} or playwright is missing")
    if is_postgres():
        pytest.skip("launches Chromium: once per CI run, in the SQLite pass")
    response = api.get("chen_safety", url)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.get_data().startswith(b"%PDF-")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]


def test_without_chromium_the_pdf_is_503_json(
    api: Api, issued: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAZARDLOOP_CHROMIUM", "/nonexistent/chromium")
    body = assert_error(
        api.get("chen_safety", f"/api/v1/notices/{issued['letter']}/pdf"), 503, "pdf_unavailable"
    )
    assert "PDF 生成服务暂不可用" in body["message"]


def test_answers_match_the_openapi_document(client: FlaskClient, api: Api, issued: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/api/v1/openapi.json").get_json()

    def check(name: str, answer: Any) -> None:
        root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        jsonschema.Draft202012Validator(root).validate(answer)

    check("NoticePage", api.ok(api.get("chen_safety", f"/api/v1/notices?hazard_id={issued['hazard_id']}")))
    check("NoticeDetail", api.ok(api.get("chen_safety", f"/api/v1/notices/{issued['letter']}")))
    check("NoticeDetail", api.ok(api.post("chen_safety", f"/api/v1/notices/{issued['letter']}/acknowledge")))
    pdf_op = spec["paths"]["/api/v1/notices/{notice_id}/pdf"]["get"]
    assert pdf_op["responses"]["200"]["content"] == {
        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
    }
    assert {"404", "503"} <= set(pdf_op["responses"])
    close_op = spec["paths"]["/api/v1/notices/{notice_id}/close"]["post"]
    assert close_op["requestBody"]["required"] is False
    assert close_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/NoticeCloseRequest"
    }
