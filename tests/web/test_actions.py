"""Actions beside the happy path through their pages: 动态更新, 延期申请 and 延期审批, 认定拒不整改/
虚假整改, 作废 and 重开 — each shown only to those who may take it, each error answered clearly."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from engine.demo import DemoWorld
from engine.models import Attachment
from engine.models import ExtensionRequest
from tests.web.test_tasks import AsUser
from tests.web.test_tasks import Loop
from tests.web.test_tasks import image_bytes
from tests.web.test_tasks import post
from tests.web.test_tasks import text
from tests.web.test_tasks import user_switcher


def _pending(loop: Loop, hazard_id: int) -> ExtensionRequest | None:
    with loop.state.sessions() as session:
        row = session.scalars(
            select(ExtensionRequest).where(
                ExtensionRequest.hazard_id == hazard_id, ExtensionRequest.state == "pending"
            )
        ).first()
        if row is not None:
            session.expunge(row)
        return row


@pytest.fixture
def loop(app: Flask, world: DemoWorld) -> Loop:
    return Loop(app, world)


@pytest.fixture
def as_user(client: FlaskClient, login: Callable[..., TestResponse]) -> AsUser:
    return user_switcher(client, login)


def test_each_user_sees_only_the_actions_they_may_take(loop: Loop, as_user: AsUser) -> None:
    hazard_id = loop.planned()
    url = f"/hazards/{hazard_id}/actions"

    rectifier = text(as_user("zhang_rectifier").get(url))
    assert "动态更新" in rectifier and "延期申请" in rectifier
    assert "确认作废" not in rectifier and "认定拒不整改" not in rectifier and "确认重开" not in rectifier

    reviewer = text(as_user("wu_reviewer").get(url))
    assert "确认作废" in reviewer and "认定拒不整改" in reviewer
    assert "提交进展" not in reviewer and "提交申请" not in reviewer and "确认重开" not in reviewer

    inspector = text(as_user("zhou_inspector").get(url))
    assert "认定拒不整改" in inspector and "确认作废" not in inspector

    grid = as_user("sun_grid").get(url)
    assert grid.status_code == 200 and "没有可执行的操作" in text(grid)

    assert as_user("zhao_gd").get(url).status_code == 404
    assert as_user("zhao_gd").get("/hazards/999999/actions").status_code == 404
    anonymous = as_user("zhang_rectifier")
    post(anonymous, "/logout")
    assert anonymous.get(url).status_code == 302


def test_progress_update_with_photos(loop: Loop, as_user: AsUser) -> None:
    hazard_id = loop.planned()
    client = as_user("zhang_rectifier")
    bad = post(client, f"/hazards/{hazard_id}/progress", {"progress_percent": "150", "note": "已完成一半"})
    assert bad.status_code == 422
    assert "已完成一半" in text(bad) and 'value="150"' in text(bad) and "不能大于 100" in text(bad)

    photo = (io.BytesIO(image_bytes((30, 60, 90))), "现场.png")
    response = post(
        client,
        f"/hazards/{hazard_id}/progress",
        {"progress_percent": "60", "note": "探头已到货", "photos__files": photo},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/hazards/{hazard_id}") or response.headers[
        "Location"
    ].endswith(f"/hazards/{hazard_id}/actions")
    assert loop.hazard(hazard_id).progress_percent == 60
    with loop.state.sessions() as session:
        phases = session.scalars(select(Attachment.phase).where(Attachment.hazard_id == hazard_id)).all()
    assert phases == ["document"]
    assert (
        post(
            as_user("wu_reviewer"), f"/hazards/{hazard_id}/progress", {"progress_percent": "1", "note": "x"}
        ).status_code
        == 403
    )


def test_extension_request_and_decision(loop: Loop, as_user: AsUser) -> None:
    hazard_id = loop.planned(days=5, title="需要延期的隐患")
    old_deadline = loop.hazard(hazard_id).deadline
    rectifier = as_user("zhang_rectifier")

    too_early = post(
        rectifier,
        f"/hazards/{hazard_id}/extensions",
        {"requested_due_date": loop.today(1), "reason": "设备未到"},
    )
    assert (
        too_early.status_code == 422
        and "必须晚于当前期限" in text(too_early)
        and "设备未到" in text(too_early)
    )
    wanted = loop.today(30)
    response = post(
        rectifier, f"/hazards/{hazard_id}/extensions", {"requested_due_date": wanted, "reason": "设备未到货"}
    )
    assert response.status_code == 302
    request = _pending(loop, hazard_id)
    assert request is not None
    # one pending request at a time: the form is gone, and posting anyway is a conflict
    page = text(rectifier.get(f"/hazards/{hazard_id}/actions"))
    assert "提交申请" not in page and "等待负有监管职责的部门审批" in page
    again = post(
        rectifier, f"/hazards/{hazard_id}/extensions", {"requested_due_date": wanted, "reason": "再申请"}
    )
    assert again.status_code == 409 and "已有待审批的延期申请" in text(again)
    # the requester may look at it, but not decide it
    assert "提交审批" not in text(rectifier.get(f"/extensions/{request.id}"))
    assert (
        post(
            rectifier, f"/extensions/{request.id}/decide", {"decision": "approve", "opinion": "x"}
        ).status_code
        == 403
    )

    reviewer = as_user("wu_reviewer")
    inbox = text(reviewer.get("/tasks"))
    assert "待审批的延期申请" in inbox and "需要延期的隐患" in inbox and f"/extensions/{request.id}" in inbox
    decision_page = reviewer.get(f"/extensions/{request.id}")
    assert decision_page.status_code == 200 and "设备未到货" in text(decision_page)
    missing = post(reviewer, f"/extensions/{request.id}/decide", {"opinion": "同意延期"})
    assert missing.status_code == 422 and "同意延期" in text(missing)
    approved = post(reviewer, f"/extensions/{request.id}/decide", {"decision": "approve", "opinion": "同意"})
    assert approved.status_code == 302
    hazard = loop.hazard(hazard_id)
    assert hazard.deadline > old_deadline
    assert hazard.deadline.astimezone(loop.ctx.tz).date() == dt.date.fromisoformat(wanted)
    twice = post(reviewer, f"/extensions/{request.id}/decide", {"decision": "deny", "opinion": "再审"})
    assert twice.status_code == 409 and "已处理" in text(twice)
    assert "待审批的延期申请" not in text(reviewer.get("/tasks"))
    assert as_user("zhao_gd").get(f"/extensions/{request.id}").status_code == 404
    assert reviewer.get("/extensions/999999").status_code == 404


def test_record_a_refusal(loop: Loop, as_user: AsUser) -> None:
    hazard_id = loop.planned()
    inspector = as_user("zhou_inspector")
    empty = post(inspector, f"/hazards/{hazard_id}/violation", {"kind": "refusal", "note": "  "})
    assert empty.status_code == 422 and "必须说明情况" in text(empty)
    assert (
        post(inspector, f"/hazards/{hazard_id}/violation", {"kind": "nope", "note": "x"}).status_code == 422
    )
    done = post(
        inspector, f"/hazards/{hazard_id}/violation", {"kind": "fake_rectification", "note": "照片系翻拍"}
    )
    assert done.status_code == 302
    assert loop.hazard(hazard_id).escalation_level == 6
    refused = post(
        as_user("zhang_rectifier"), f"/hazards/{hazard_id}/violation", {"kind": "refusal", "note": "x"}
    )
    assert refused.status_code == 403


def test_void_and_reopen(loop: Loop, as_user: AsUser) -> None:
    hazard_id = loop.planned()
    assert (
        post(as_user("zhang_rectifier"), f"/hazards/{hazard_id}/void", {"reason": "重复"}).status_code == 403
    )
    reviewer = as_user("wu_reviewer")
    assert post(reviewer, f"/hazards/{hazard_id}/reopen", {"reason": "还没关"}).status_code == 409
    empty = post(reviewer, f"/hazards/{hazard_id}/void", {"reason": ""})
    assert empty.status_code == 422 and "作废必须填写原因" in text(empty)
    voided = post(reviewer, f"/hazards/{hazard_id}/void", {"reason": "与已登记隐患重复"})
    assert voided.status_code == 302
    assert loop.hazard(hazard_id).status == "voided"
    twice = post(reviewer, f"/hazards/{hazard_id}/void", {"reason": "再次作废"})
    assert twice.status_code == 409 and "已作废" in text(twice)
    page = text(reviewer.get(f"/hazards/{hazard_id}/actions"))
    assert "确认重开" in page and "确认作废" not in page
    assert post(reviewer, f"/hazards/{hazard_id}/reopen", {"reason": " "}).status_code == 422
    reopened = post(reviewer, f"/hazards/{hazard_id}/reopen", {"reason": "核实后仍存在"})
    assert reopened.status_code == 302
    assert loop.hazard(hazard_id).status == "planning"
    assert "assign_plan" in [loop.work_item(loop.item(hazard_id)).task_key]
