"""The review queue: 销号审核 and 监管审查 approved in one click or rejected with a reason; 延期申请."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import demo
from engine.demo import DemoWorld
from engine.models import Attachment
from engine.models import ExtensionRequest
from engine.models import Hazard
from engine.models import TaskSubmission
from engine.models import WorkItem
from engine.runtime import EngineContext
from web.session import app_state

Login = Callable[..., object]


@pytest.fixture
def seeder(committed: sessionmaker[Session], app: Flask, world: DemoWorld) -> demo._Seeder:
    return demo._Seeder(committed, app_state(app).ctx, world)


@pytest.fixture
def app_ctx(app: Flask) -> EngineContext:
    return app_state(app).ctx


def as_user(client: FlaskClient, login: Login, username: str) -> FlaskClient:
    assert login(client, username).status_code == 302  # type: ignore[attr-defined]
    return client


def csrf_of(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return str(sess["_csrf"])


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


def open_item(committed: sessionmaker[Session], hazard_id: int) -> WorkItem:
    with committed() as session:
        return session.scalars(
            select(WorkItem).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
        ).one()


def hazard(committed: sessionmaker[Session], hazard_id: int) -> Hazard:
    with committed() as session:
        return session.get_one(Hazard, hazard_id)


def last_submission(committed: sessionmaker[Session], hazard_id: int) -> TaskSubmission:
    with committed() as session:
        return session.scalars(
            select(TaskSubmission)
            .where(TaskSubmission.hazard_id == hazard_id)
            .order_by(TaskSubmission.id.desc())
        ).first()


def test_the_queue_is_for_reviewers(client: FlaskClient, login: Login) -> None:
    response = client.get("/reviews")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    for username in ("chen_safety", "admin", "zhou_inspector"):
        as_user(client, login, username)
        assert client.get("/reviews").status_code == 403
        assert (
            client.post("/reviews/1", data={"csrf_token": csrf_of(client), "decision": "pass"}).status_code
            == 403
        )
        client.post("/logout", data={"csrf_token": csrf_of(client)})


def test_queue_shows_the_reviews_in_scope_with_their_facts(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_closure_review(seeder)
    item = open_item(committed, hazard_id)
    as_user(client, login, "wu_reviewer")
    page = text(client.get("/reviews"))
    assert f'id="item-{item.id}"' in page and "甲类仓库防静电接地线断开" in page
    assert "销号审核" in page and "同意销号" in page and "驳回理由" in page
    assert "接地线已重新压接，实测接地电阻2.1Ω" in page  # the rectification, as facts
    assert "现场复核接地可靠，整改到位" in page  # the verification opinion
    assert "以 吴刚 的名义签署" in page
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    as_user(client, login, "ma_gd")  # 广德: neither to decide nor to see
    page = text(client.get("/reviews"))
    assert "甲类仓库防静电接地线断开" not in page and "暂无待审核的销号申请" in page
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    as_user(client, login, "he_office")  # 安委办: sees it waiting in the county, cannot decide it
    page = text(client.get("/reviews"))
    assert "辖区内待审核" in page and "甲类仓库防静电接地线断开" in page
    assert f'id="item-{item.id}"' not in page


def test_approve_closes_the_hazard_in_one_click(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_closure_review(seeder)
    item = open_item(committed, hazard_id)
    as_user(client, login, "wu_reviewer")
    response = client.post(f"/reviews/{item.id}", data={"csrf_token": csrf_of(client), "decision": "pass"})
    assert response.status_code == 302 and response.headers["Location"] == "/reviews"
    closed = hazard(committed, hazard_id)
    assert closed.status == "closed" and closed.closed_at is not None
    submission = last_submission(committed, hazard_id)
    assert submission.form_key == "closure_review"
    assert submission.data == {
        "decision": "pass",
        "opinion": "资料齐全，整改到位，同意销号",
        "reviewer_signature": "吴刚",
    }
    page = text(client.get("/reviews"))
    assert f"已同意 {closed.number} 销号" in page and "暂无待审核的销号申请" in page
    # a second click finds it decided
    response = client.post(f"/reviews/{item.id}", data={"csrf_token": csrf_of(client), "decision": "pass"})
    assert response.status_code == 409


def test_reject_needs_a_reason_and_sends_the_hazard_back(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_closure_review(seeder)
    item = open_item(committed, hazard_id)
    as_user(client, login, "wu_reviewer")
    response = client.post(
        f"/reviews/{item.id}", data={"csrf_token": csrf_of(client), "decision": "reject", "opinion": "  "}
    )
    assert response.status_code == 422
    assert "驳回必须填写理由" in text(response) and f'id="item-{item.id}"' in text(response)
    assert open_item(committed, hazard_id).id == item.id  # nothing happened

    reason = "接地电阻检测报告缺少检测单位盖章，请补充"
    response = client.post(
        f"/reviews/{item.id}", data={"csrf_token": csrf_of(client), "decision": "reject", "opinion": reason}
    )
    assert response.status_code == 302
    back = open_item(committed, hazard_id)
    assert back.task_key in ("rectify", "fix_on_spot") and back.id != item.id
    submission = last_submission(committed, hazard_id)
    assert submission.data["decision"] == "reject" and submission.data["opinion"] == reason
    assert "退回整改" in text(client.get("/reviews"))


def test_unknown_decision_is_422(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    item = open_item(committed, demo._at_closure_review(seeder))
    as_user(client, login, "wu_reviewer")
    response = client.post(f"/reviews/{item.id}", data={"csrf_token": csrf_of(client), "decision": "maybe"})
    assert response.status_code == 422 and "审核结论必须是" in text(response)


def test_regulator_review_approves_closure_with_a_document_number(
    client: FlaskClient,
    login: Login,
    seeder: demo._Seeder,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
) -> None:
    hazard_id = demo._major_at_review(seeder)
    item = open_item(committed, hazard_id)
    assert item.form_key == "regulator_review"
    as_user(client, login, "wu_reviewer")
    page = text(client.get("/reviews"))
    assert "监管部门现场审查" in page and "核销文号" in page and "审查合格，同意核销" in page
    response = client.post(
        f"/reviews/{item.id}",
        data={"csrf_token": csrf_of(client), "decision": "pass", "document_no": "郎应急核〔2026〕7号"},
    )
    assert response.status_code == 302
    assert hazard(committed, hazard_id).status == "closed"
    data = last_submission(committed, hazard_id).data
    today = app_ctx.clock.now().astimezone(app_ctx.tz).date().isoformat()
    assert data["document_no"] == "郎应急核〔2026〕7号" and data["reviewed_on"] == today
    assert data["reviewer_signature"] == "吴刚" and data["opinion"] == "现场审查合格，同意核销"


def test_decisions_outside_the_queue_are_404(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    review = open_item(committed, demo._at_closure_review(seeder))
    rectify = open_item(committed, demo._at_rectify(seeder))
    as_user(client, login, "wu_reviewer")
    token = csrf_of(client)
    assert (
        client.post(f"/reviews/{rectify.id}", data={"csrf_token": token, "decision": "pass"}).status_code
        == 404
    )
    assert client.post("/reviews/999999", data={"csrf_token": token, "decision": "pass"}).status_code == 404
    assert (
        client.post(
            "/reviews/extensions/999999", data={"csrf_token": token, "decision": "approve"}
        ).status_code
        == 404
    )
    client.post("/logout", data={"csrf_token": token})
    as_user(client, login, "ma_gd")  # another county's reviewer
    response = client.post(f"/reviews/{review.id}", data={"csrf_token": csrf_of(client), "decision": "pass"})
    assert response.status_code == 404
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    as_user(client, login, "xu_city")  # sees it (市 level, hazchem) but its department does not lead it
    response = client.post(f"/reviews/{review.id}", data={"csrf_token": csrf_of(client), "decision": "pass"})
    assert response.status_code == 403
    assert hazard(committed, review.hazard_id).status == "reviewing_closure"


def test_extension_requests_are_decided_in_the_queue(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._extension_pending(seeder)
    with committed() as session:
        request = session.scalars(
            select(ExtensionRequest).where(ExtensionRequest.hazard_id == hazard_id)
        ).one()
    as_user(client, login, "wu_reviewer")
    page = text(client.get("/reviews"))
    assert f'id="extension-{request.id}"' in page and "液位变送器需厂家定制" in page
    assert "消防水池液位远传显示失效" in page
    url = f"/reviews/extensions/{request.id}"
    response = client.post(url, data={"csrf_token": csrf_of(client), "decision": "deny", "opinion": ""})
    assert response.status_code == 422 and "不同意延期必须填写理由" in text(response)
    response = client.post(url, data={"csrf_token": csrf_of(client), "decision": "approve"})
    assert response.status_code == 302
    with committed() as session:
        decided = session.get_one(ExtensionRequest, request.id)
        assert decided.state == "approved" and decided.decision_note == "同意延期"
        assert session.get_one(Hazard, hazard_id).deadline == decided.new_deadline
    page = text(client.get("/reviews"))
    assert "已同意延期申请" in page and "暂无待审批的延期申请" in page
    response = client.post(url, data={"csrf_token": csrf_of(client), "decision": "approve"})
    assert response.status_code == 409


def test_extension_denied_with_a_reason(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._extension_pending(seeder)
    with committed() as session:
        request = session.scalars(
            select(ExtensionRequest).where(ExtensionRequest.hazard_id == hazard_id)
        ).one()
        old_deadline = session.get_one(Hazard, hazard_id).deadline
    as_user(client, login, "he_office")  # 安委办 may decide extensions too
    response = client.post(
        f"/reviews/extensions/{request.id}",
        data={"csrf_token": csrf_of(client), "decision": "deny", "opinion": "到货周期说明不足"},
    )
    assert response.status_code == 302
    with committed() as session:
        assert session.get_one(ExtensionRequest, request.id).state == "denied"
        assert session.get_one(Hazard, hazard_id).deadline == old_deadline
    assert isinstance(old_deadline, dt.datetime)


def test_review_cards_show_the_after_photos_and_the_summary(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_closure_review(seeder)
    item = open_item(committed, hazard_id)
    with committed() as session:
        photo = session.scalars(
            select(Attachment).where(Attachment.hazard_id == hazard_id, Attachment.phase == "after")
        ).one()
    as_user(client, login, "wu_reviewer")
    page = text(client.get("/reviews"))
    card = page.split(f'id="item-{item.id}"', 1)[1].split("</article>", 1)[0]
    assert "整改完成情况说明" in card and "接地线已重新压接，实测接地电阻2.1Ω" in card
    assert "整改后照片" in card
    assert f'src="/attachments/{photo.id}/thumb"' in card and f'href="/attachments/{photo.id}"' in card
    assert card.index("/thumb") < card.index("同意销号")  # the evidence comes before the buttons
