"""督办文书 pages: the list, one notice with its actions (CSRF forms), the print page and the PDF.

Notices are issued with ``engine.notices.issue_notice`` on committed hazards (the runtime's
escalation path calls the same function); the app under test sees them through its own engine.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import notices
from engine import policy
from engine.demo import DemoWorld
from engine.models import Hazard
from engine.models import ProcessInstance
from engine.runtime import EngineContext
from tests.conftest import is_postgres
from web import pdf
from web.session import app_state

from .conftest import LoginFn as Login
from .test_hazards import as_user
from .test_hazards import csrf_of
from .test_hazards import register
from .test_hazards import text


@pytest.fixture
def app_ctx(app: Flask) -> EngineContext:
    return app_state(app).ctx


def issue(
    committed: sessionmaker[Session], ctx: EngineContext, hazard_id: int, rung_key: str = "letter"
) -> tuple[int, str]:
    """Issue ``rung_key``'s notice for a committed hazard, under its instance lock; (id, 文号)."""
    with committed.begin() as session:
        instance_id = session.scalar(
            select(func.max(ProcessInstance.id)).where(ProcessInstance.hazard_id == hazard_id)
        )
        session.scalars(
            select(ProcessInstance)
            .where(ProcessInstance.id == instance_id)
            .with_for_update(of=ProcessInstance)
        ).one()
        hazard = session.get_one(Hazard, hazard_id)
        profile = policy.resolve_policy(session, hazard.sector_code, hazard.region_path)
        notice = notices.issue_notice(
            session,
            ctx,
            hazard=hazard,
            instance_id=int(instance_id or 0),
            rung=policy.ladder_of(profile).rung(rung_key),
            trigger="overdue",
            dedupe_key=f"test:{instance_id}:{rung_key}",
            due_at=None,
            profile=profile,
        )
        assert notice is not None
        return notice.id, notice.document_number


@pytest.fixture
def letter(
    committed: sessionmaker[Session], app_ctx: EngineContext, world: DemoWorld
) -> tuple[int, str, int]:
    """A 督办函 of the lead department (郎溪县应急管理局) on a 郎溪 hazard: (notice id, 文号, hazard id)."""
    hazard_id = register(committed, app_ctx, world, "chen_safety", title="郎溪罐区报警器失效")
    notice_id, number = issue(committed, app_ctx, hazard_id, "letter")
    return notice_id, number, hazard_id


def test_notice_pages_need_a_login(client: FlaskClient, letter: tuple[int, str, int]) -> None:
    notice_id = letter[0]
    for url in (
        "/notices",
        f"/notices/{notice_id}",
        f"/notices/{notice_id}/print",
        f"/notices/{notice_id}.pdf",
    ):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_the_list_is_scoped_and_filtered(
    client: FlaskClient, login: Login, letter: tuple[int, str, int]
) -> None:
    notice_id, number, _hazard_id = letter
    as_user(client, login, "chen_safety")
    page = text(client.get("/notices"))
    assert 'href="/notices"' in page and "督办文书" in page  # the navigation link
    assert number in page and f'href="/notices/{notice_id}"' in page and "郎溪县应急管理局" in page
    assert number in text(client.get("/notices?kind=letter&status=issued&year=2026"))
    assert number in text(client.get("/notices?hazard=YH-"))
    assert number not in text(client.get("/notices?kind=circular"))
    assert number not in text(client.get("/notices?status=closed"))
    for query in ("kind=overdue", "status=gone", "year=abc", "per_page=7", "page=-1"):
        assert client.get(f"/notices?{query}").status_code == 422, query


def test_another_county_sees_nothing(client: FlaskClient, login: Login, letter: tuple[int, str, int]) -> None:
    notice_id, number, _hazard_id = letter
    as_user(client, login, "zhao_gd")
    assert number not in text(client.get("/notices"))
    for url in (f"/notices/{notice_id}", f"/notices/{notice_id}/print", f"/notices/{notice_id}.pdf"):
        assert client.get(url).status_code == 404, url
    response = client.post(f"/notices/{notice_id}/acknowledge", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 404
    assert client.get("/notices/999999").status_code == 404


def test_the_detail_page_shows_the_text_and_the_actions_of_each_side(
    client: FlaskClient, login: Login, app: Flask, letter: tuple[int, str, int]
) -> None:
    notice_id, number, hazard_id = letter
    as_user(client, login, "chen_safety")
    page = text(client.get(f"/notices/{notice_id}"))
    assert number in page and "关于郎溪县华宇化工有限公司事故隐患逾期未整改的督办函" in page
    assert '<table class="notice-facts">' in page  # the body as issued, not escaped
    assert "郎溪罐区报警器失效" in page and f'href="/hazards/{hazard_id}"' in page
    assert f'action="/notices/{notice_id}/acknowledge"' in page
    assert f'action="/notices/{notice_id}/close"' not in page
    assert f'href="/notices/{notice_id}/print"' in page
    other = app.test_client()
    as_user(other, login, "wu_reviewer")
    page = text(other.get(f"/notices/{notice_id}"))
    assert f'action="/notices/{notice_id}/close"' in page
    assert f'action="/notices/{notice_id}/acknowledge"' not in page


def test_acknowledge_respond_and_close_through_the_forms(
    client: FlaskClient, login: Login, app: Flask, letter: tuple[int, str, int]
) -> None:
    notice_id, number, _hazard_id = letter
    as_user(client, login, "chen_safety")
    # no CSRF token: refused before anything happens
    assert client.post(f"/notices/{notice_id}/acknowledge").status_code == 400
    assert "已签发" in text(client.get(f"/notices/{notice_id}"))
    # answering before signing for it is a conflict, shown on the page
    response = client.post(f"/notices/{notice_id}/respond", data={"csrf_token": csrf_of(client), "text": "x"})
    assert response.status_code == 409 and "请先签收" in text(response)
    response = client.post(f"/notices/{notice_id}/acknowledge", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 302 and response.headers["Location"] == f"/notices/{notice_id}"
    page = text(client.get(f"/notices/{notice_id}"))
    assert f"已签收督办文书 {number}" in page and "已签收" in page
    assert f'action="/notices/{notice_id}/respond"' in page
    response = client.post(f"/notices/{notice_id}/acknowledge", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 409 and "已签收" in text(response)
    response = client.post(
        f"/notices/{notice_id}/respond", data={"csrf_token": csrf_of(client), "text": "  "}
    )
    assert response.status_code == 422 and "请填写回复内容" in text(response)
    answer = "已更换报警器探头，12月20日前完成验收"
    response = client.post(
        f"/notices/{notice_id}/respond", data={"csrf_token": csrf_of(client), "text": answer}
    )
    assert response.status_code == 302
    assert answer in text(client.get(f"/notices/{notice_id}"))
    # the enterprise does not close; the issuing department's reviewer does
    response = client.post(f"/notices/{notice_id}/close", data={"csrf_token": csrf_of(client), "note": "x"})
    assert response.status_code == 403
    reviewer = app.test_client()
    as_user(reviewer, login, "wu_reviewer")
    response = reviewer.post(f"/notices/{notice_id}/close", data={"csrf_token": csrf_of(reviewer)})
    assert response.status_code == 302
    page = text(reviewer.get(f"/notices/{notice_id}"))
    assert "已办结" in page and f'action="/notices/{notice_id}/close"' not in page


def test_closing_an_unanswered_notice_needs_a_reason(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
    world: DemoWorld,
) -> None:
    hazard_id = register(committed, app_ctx, world, "chen_safety")
    notice_id, _number = issue(committed, app_ctx, hazard_id, "circular")  # the 安委办's 通报
    as_user(client, login, "he_office")
    response = client.post(f"/notices/{notice_id}/close", data={"csrf_token": csrf_of(client), "note": ""})
    assert response.status_code == 422 and "须说明理由" in text(response)
    response = client.post(
        f"/notices/{notice_id}/close", data={"csrf_token": csrf_of(client), "note": "已约谈"}
    )
    assert response.status_code == 302


def test_the_print_page_is_the_a4_document(
    client: FlaskClient, login: Login, letter: tuple[int, str, int]
) -> None:
    notice_id, number, _hazard_id = letter
    as_user(client, login, "chen_safety")
    response = client.get(f"/notices/{notice_id}/print")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = text(response)
    assert html.startswith("<!doctype html>") and "size: A4" in html
    assert (
        f'<p class="doc-number">{number}</p>' in html
        and '<header class="red-head">郎溪县应急管理局</header>' in html
    )
    csp = response.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "script-src" not in csp and "default-src 'none'" in csp
    assert "<script" not in html


@pytest.fixture
def chromium() -> None:
    if not pdf.available():
        pytest.skip(f"{pdf.CHROMIUM} or playwright is missing: apt-get install chromium fonts-wqy-microhei")
    if is_postgres():
        pytest.skip("launches Chromium: once per CI run, in the SQLite pass (like the browser tests)")


def test_the_pdf_is_named_after_its_number(
    client: FlaskClient, login: Login, letter: tuple[int, str, int], chromium: None
) -> None:
    notice_id, number, _hazard_id = letter
    as_user(client, login, "chen_safety")
    response = client.get(f"/notices/{notice_id}.pdf")
    assert response.status_code == 200, text(response)
    assert response.mimetype == "application/pdf"
    body = response.get_data()
    assert body.startswith(b"%PDF-") and len(body) > 1000
    disposition = response.headers["Content-Disposition"]
    assert f"filename*=UTF-8''{quote(number + '.pdf', safe='')}" in disposition
    assert re.search(r'filename="[\x20-\x7e]+\.pdf"', disposition)


def test_without_chromium_the_pdf_is_a_clear_503(
    client: FlaskClient, login: Login, letter: tuple[int, str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAZARDLOOP_CHROMIUM", "/nonexistent/chromium")
    notice_id = letter[0]
    as_user(client, login, "chen_safety")
    response = client.get(f"/notices/{notice_id}.pdf")
    assert response.status_code == 503
    assert "PDF 生成服务暂不可用" in text(response) and "Traceback" not in text(response)
    page = text(client.get(f"/notices/{notice_id}"))
    assert f'href="/notices/{notice_id}.pdf"' not in page  # not offered
