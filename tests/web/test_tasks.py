"""The inbox and the task page: tabs, counts, sort and filter, claim/release/delegate, the form
rendered from its definition, 401/403/404/409/422 answers, drafts, and the general loop end to end.

:class:`Loop` (also used by ``test_actions`` and ``test_uploads``) sets up hazards through the
engine on committed data; everything a user does goes through the pages.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine import demo
from engine import runtime
from engine import tasklist
from engine.demo import DemoWorld
from engine.demo import open_item
from engine.forms import parse_form_definition
from engine.models import Attachment
from engine.models import Hazard
from engine.models import TaskSubmission
from engine.models import WorkItem
from tests.factories import hazard_data
from tests.factories import plan_form
from web.i18n import EN
from web.pages.tasks import form_payload
from web.pages.tasks import form_values
from web.session import app_state

WEB = Path(__file__).resolve().parents[2] / "web"


def image_bytes(color: tuple[int, int, int], kind: str = "PNG", size: tuple[int, int] = (40, 30)) -> bytes:
    """A small photo of one colour (distinct colours give distinct bytes)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, kind)
    return buffer.getvalue()


class Loop:
    """Hazards in a given state, set up through the engine on committed data (not through pages)."""

    def __init__(self, app: Flask, world: DemoWorld) -> None:
        self.app, self.world = app, world
        self.state = app_state(app)

    @property
    def ctx(self) -> runtime.EngineContext:
        return self.state.ctx

    def date(self, days: int = 0) -> dt.date:
        """The business date (Asia/Shanghai) ``days`` from today: not the machine's (UTC) date,
        which is a day behind from 16:00 UTC."""
        return self.ctx.clock.now().astimezone(self.ctx.tz).date() + dt.timedelta(days=days)

    def today(self, days: int = 0) -> str:
        return self.date(days).isoformat()

    def register(self, username: str = "zhou_inspector", **overrides: Any) -> int:
        """A general hazard of 华宇化工 at 制定整改方案 (assign_plan, a safety officer's task)."""
        overrides.setdefault("source", "inspection")
        with self.state.sessions.begin() as session:
            actor = self.world.actor(session, username)
            return runtime.register_hazard(
                session, self.ctx, actor=actor, data=hazard_data(self.world, **overrides)
            ).id

    def item(self, hazard_id: int, task_key: str | None = None) -> int:
        with self.state.sessions() as session:
            return open_item(session, session.get_one(Hazard, hazard_id), task_key).id

    def complete(self, hazard_id: int, task_key: str, username: str, form: dict[str, Any]) -> None:
        item_id = self.item(hazard_id, task_key)
        with self.state.sessions.begin() as session:
            actor = self.world.actor(session, username)
            runtime.complete(session, self.ctx, work_item_id=item_id, actor=actor, form=form)

    def claim(self, hazard_id: int, task_key: str, username: str) -> None:
        item_id = self.item(hazard_id, task_key)
        with self.state.sessions.begin() as session:
            runtime.claim(session, self.ctx, work_item_id=item_id, actor=self.world.actor(session, username))

    def planned(self, days: int = 14, **overrides: Any) -> int:
        """A hazard at 限期整改 (rectify), due in ``days`` days."""
        hazard_id = self.register(**overrides)
        due = dt.date.fromisoformat(self.today(days))
        self.complete(hazard_id, "assign_plan", "chen_safety", plan_form(due))
        return hazard_id

    def upload(self, hazard_id: int, content: bytes, *, phase: str, username: str = "chen_safety") -> int:
        with self.state.sessions.begin() as session:
            return runtime.add_attachment(
                session,
                self.ctx,
                hazard_id=hazard_id,
                actor=self.world.actor(session, username),
                filename=f"{phase}.png",
                mime_type="image/png",
                content=content,
                phase=phase,
            ).id

    def hazard(self, hazard_id: int) -> Hazard:
        with self.state.sessions() as session:
            hazard = session.get_one(Hazard, hazard_id)
            session.expunge(hazard)
            return hazard

    def work_item(self, item_id: int) -> WorkItem:
        with self.state.sessions() as session:
            item = session.get_one(WorkItem, item_id)
            session.expunge(item)
            return item

    def drafts(self, item_id: int) -> list[TaskSubmission]:
        with self.state.sessions() as session:
            rows = list(
                session.scalars(
                    select(TaskSubmission).where(
                        TaskSubmission.work_item_id == item_id, TaskSubmission.is_draft.is_(True)
                    )
                )
            )
            for row in rows:
                session.expunge(row)
            return rows

    def attachment(self, attachment_id: int) -> Attachment:
        with self.state.sessions() as session:
            row = session.get_one(Attachment, attachment_id)
            session.expunge(row)
            return row


@pytest.fixture
def loop(app: Flask, world: DemoWorld) -> Loop:
    return Loop(app, world)


AsUser = Callable[[str], FlaskClient]


def user_switcher(client: FlaskClient, login: Callable[..., TestResponse]) -> AsUser:
    """``as_user("chen_safety")``: the client, logged in through the login form as that user."""

    def log_in(username: str) -> FlaskClient:
        client.post("/logout", data={"csrf_token": _token(client)})
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return log_in


@pytest.fixture
def as_user(client: FlaskClient, login: Callable[..., TestResponse]) -> AsUser:
    return user_switcher(client, login)


def _token(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return str(sess.get("_csrf", ""))


def post(client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
    """A form POST carrying the session's CSRF token, as the pages' forms do."""
    return client.post(url, data={"csrf_token": _token(client), **(data or {})}, **kwargs)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


# --- the inbox ---------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_the_login_form(client: FlaskClient) -> None:
    for path in ("/tasks", "/tasks/1", "/attachments/1", "/attachments/1/thumb"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login?next=" in response.headers["Location"]
    assert client.get("/tasks", headers={"Accept": "application/json"}).status_code == 401


def test_tabs_count_claim_and_release(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    hazard_id = loop.register(title="配电室门口未设置挡鼠板")
    item_id = loop.item(hazard_id, "assign_plan")
    client = as_user("chen_safety")

    group = client.get("/tasks?tab=group")
    assert group.status_code == 200
    html = text(group)
    assert "配电室门口未设置挡鼠板" in html and f"/tasks/{item_id}/claim" in html
    assert re.search(r"组待办\s*<span class=\"count\">(\d+)</span>", html)

    claimed = post(client, f"/tasks/{item_id}/claim")
    assert claimed.status_code == 302 and claimed.headers["Location"].endswith(f"/tasks/{item_id}")
    assert loop.work_item(item_id).assignee_id == loop.world.users["chen_safety"].id
    mine = text(client.get("/tasks"))
    assert "配电室门口未设置挡鼠板" in mine and f"/tasks/{item_id}/release" in mine
    assert f"/tasks/{item_id}/claim" not in text(client.get("/tasks?tab=group"))

    released = post(client, f"/tasks/{item_id}/release")
    assert released.status_code == 302
    assert loop.work_item(item_id).assignee_id is None
    # claiming a task someone else holds is a conflict
    loop.claim(hazard_id, "assign_plan", "chen_safety")
    other = as_user("wang_principal")
    assert post(other, f"/tasks/{item_id}/claim").status_code == 403  # not a safety officer
    assert post(as_user("chen_safety"), f"/tasks/{item_id}/release").status_code == 302


def test_claiming_what_another_user_holds_is_409(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    hazard_id = loop.planned()
    item_id = loop.item(hazard_id, "rectify")
    loop.claim(hazard_id, "rectify", "liu_rectifier")
    response = post(as_user("zhang_rectifier"), f"/tasks/{item_id}/claim")
    assert response.status_code == 409
    assert "已被他人认领" in text(response)


def test_filters_sort_and_bad_values(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    first = loop.register(title="甲类仓库防爆灯损坏")
    second = loop.register(title="乙类仓库通道堵塞", grade="prominent")
    client = as_user("chen_safety")
    numbers = {h: loop.hazard(h).number for h in (first, second)}

    by_text = text(client.get("/tasks?tab=group&q=甲类仓库"))
    assert "甲类仓库防爆灯损坏" in by_text and "乙类仓库通道堵塞" not in by_text
    by_number = text(client.get(f"/tasks?tab=group&q={numbers[second]}"))
    assert "乙类仓库通道堵塞" in by_number and "甲类仓库防爆灯损坏" not in by_number
    by_grade = text(client.get("/tasks?tab=group&grade=prominent"))
    assert "乙类仓库通道堵塞" in by_grade and "甲类仓库防爆灯损坏" not in by_grade
    assert "乙类仓库" not in text(client.get("/tasks?tab=group&status=verifying&q=仓库"))
    ordered = text(client.get("/tasks?tab=group&sort=number&q=仓库"))
    assert ordered.index(numbers[first]) < ordered.index(numbers[second])
    newest = text(client.get("/tasks?tab=group&sort=created&q=仓库"))
    assert newest.index(numbers[second]) < newest.index(numbers[first])
    # the filters stay in the tab links and the form
    assert "grade=prominent" in by_grade and 'value="prominent" selected' in by_grade

    for query in ("tab=nope", "sort=nope", "grade=nope", "status=nope"):
        assert client.get(f"/tasks?{query}").status_code == 422


def test_due_badges_and_the_overdue_tab(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    soon = loop.planned(days=1, title="即将到期的隐患")
    later = loop.planned(days=20, title="期限还早的隐患")
    loop.claim(soon, "rectify", "zhang_rectifier")
    loop.claim(later, "rectify", "zhang_rectifier")
    client = as_user("zhang_rectifier")

    html = text(client.get("/tasks"))
    row = html[html.index("即将到期的隐患") :]
    assert "即将到期" in row[:800]
    later_row = html[html.index("期限还早的隐患") :]
    assert "已逾期" not in later_row[:800] and "即将到期</span>" not in later_row[:800]

    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=5), tick=False):
        overdue = text(as_user("zhang_rectifier").get("/tasks?tab=overdue"))
    assert "即将到期的隐患" in overdue and "期限还早的隐患" not in overdue
    days = re.search(r"已逾期 (\d+) 天", overdue)
    assert days is not None and 3 <= int(days.group(1)) <= 5
    assert re.search(r'逾期\s*<span class="count count-alert">[1-9]', overdue)


# --- the task page ------------------------------------------------------------------------------------


def test_task_page_renders_the_form_from_its_definition(
    loop: Loop, as_user: Callable[[str], FlaskClient]
) -> None:
    hazard_id = loop.register(title="储罐区可燃气体报警器失效")
    item_id = loop.item(hazard_id, "assign_plan")
    response = as_user("chen_safety").get(f"/tasks/{item_id}")
    assert response.status_code == 200
    html = text(response)
    number = loop.hazard(hazard_id).number
    assert number in html and "储罐区可燃气体报警器失效" in html
    assert f'href="/hazards/{hazard_id}' in html or f"/hazards/{hazard_id}/actions" in html
    # one input per field type of 整改方案（五落实）
    assert 'name="responsible_person"' in html and 'autocomplete="name"' in html  # person
    assert '<textarea id="f-measures" name="measures"' in html  # multiline text
    assert 'name="funds"' in html and 'inputmode="decimal"' in html  # money
    assert 'type="date" id="f-due_date" name="due_date"' in html  # date
    assert "保存草稿" in html and "认领" in html


def test_unknown_and_out_of_scope_tasks_are_404(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("zhao_gd")  # another county's enterprise
    assert client.get(f"/tasks/{item_id}").status_code == 404
    assert post(client, f"/tasks/{item_id}/claim").status_code == 404
    assert post(client, f"/tasks/{item_id}", {"measures": "x"}).status_code == 404
    assert client.get("/tasks/999999").status_code == 404


def test_seeing_is_not_doing_403(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("sun_grid")  # the grid worker sees the hazard, holds no enterprise role
    page = text(client.get(f"/tasks/{item_id}"))
    assert "不能办理" in page and 'name="measures"' not in page
    assert post(client, f"/tasks/{item_id}", plan_form(loop.date())).status_code == 403
    assert post(client, f"/tasks/{item_id}/claim").status_code == 403


def test_field_errors_are_422_and_keep_what_was_typed(
    loop: Loop, as_user: Callable[[str], FlaskClient]
) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("chen_safety")
    typed = {"responsible_person": "张强", "funds": "12,000.50", "contingency_plan": "现场处置方案<b>"}
    response = post(client, f"/tasks/{item_id}", {**typed, "due_date": "2020-01-01"})
    assert response.status_code == 422
    html = text(response)
    assert 'value="张强"' in html and 'value="12,000.50"' in html and "现场处置方案&lt;b&gt;" in html
    assert 'value="2020-01-01"' in html
    assert "此项为必填项" in html  # measures
    assert 'href="#f-measures"' in html  # the summary links to the field
    # the engine's own rule (a deadline in the past) comes back the same way
    complete = {**plan_form(loop.date()), "due_date": "2020-01-01"}
    response = post(client, f"/tasks/{item_id}", complete)
    assert response.status_code == 422 and "整改期限不能早于今天" in text(response)
    assert loop.work_item(item_id).state == "open"


def test_a_lost_race_keeps_the_submission_as_a_draft(
    loop: Loop, as_user: Callable[[str], FlaskClient]
) -> None:
    hazard_id = loop.planned()
    item_id = loop.item(hazard_id, "rectify")
    client = as_user("zhang_rectifier")
    page = text(client.get(f"/tasks/{item_id}"))
    assert 'name="summary"' in page
    loop.claim(hazard_id, "rectify", "liu_rectifier")  # meanwhile, a colleague takes it

    typed = {"summary": "已更换两台报警器探头", "completed_on": "2026-99-01", "actual_funds": "800"}
    response = post(client, f"/tasks/{item_id}", typed)
    assert response.status_code == 409
    html = text(response)
    assert "已保存为草稿" in html and "已更换两台报警器探头" in html
    drafts = loop.drafts(item_id)
    assert len(drafts) == 1 and drafts[0].submitted_by_id == loop.world.users["zhang_rectifier"].id
    # the impossible date is left out; everything else is kept
    assert drafts[0].data == {"summary": "已更换两台报警器探头", "actual_funds": "800.00"}
    again = text(client.get(f"/tasks/{item_id}"))
    assert "已更换两台报警器探头" in again and "您保存的内容" in again
    # the colleague never sees it
    assert "已更换两台报警器探头" not in text(as_user("liu_rectifier").get(f"/tasks/{item_id}"))


def test_a_task_completed_elsewhere_is_409_with_the_draft_kept(
    loop: Loop, as_user: Callable[[str], FlaskClient]
) -> None:
    hazard_id = loop.register()
    item_id = loop.item(hazard_id, "assign_plan")
    client = as_user("chen_safety")
    loop.complete(hazard_id, "assign_plan", "chen_safety", plan_form(loop.date()))
    response = post(client, f"/tasks/{item_id}", {"measures": "加装挡鼠板"})
    assert response.status_code == 409 and "已保存为草稿" in text(response)
    assert [d.data for d in loop.drafts(item_id)] == [{"measures": "加装挡鼠板"}]
    done = text(client.get(f"/tasks/{item_id}"))
    assert "办结" in done and "加装挡鼠板" in done and "更换报警器探头并联动测试" in done


def test_save_draft_and_reload_it(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("chen_safety")
    saved = post(client, f"/tasks/{item_id}/draft", {"measures": "先写一半", "funds": "3000"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith(f"/tasks/{item_id}")
    page = text(client.get(f"/tasks/{item_id}"))
    assert "已载入您于" in page and "先写一半" in page and 'value="3000.00"' in page
    # a draft is checked for formats, not for completeness
    bad = post(client, f"/tasks/{item_id}/draft", {"funds": "很多", "measures": "改过"})
    assert bad.status_code == 422 and "改过" in text(bad)
    assert [d.data for d in loop.drafts(item_id)] == [{"measures": "先写一半", "funds": "3000.00"}]
    # completing removes the draft
    assert post(client, f"/tasks/{item_id}", plan_form(loop.date())).status_code == 302
    assert loop.drafts(item_id) == []


def test_delegate_to_a_colleague_who_may_do_it(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    hazard_id = loop.planned()
    item_id = loop.item(hazard_id, "rectify")
    client = as_user("zhang_rectifier")
    page = text(client.get(f"/tasks/{item_id}"))
    liu = loop.world.users["liu_rectifier"]
    assert f'<option value="{liu.id}">' in page
    assert f'<option value="{loop.world.users["zhang_rectifier"].id}">' not in page  # not oneself
    assert f'<option value="{loop.world.users["chen_safety"].id}">' not in page  # not a rectifier

    grid = loop.world.users["sun_grid"]
    assert post(client, f"/tasks/{item_id}/delegate", {"to_user_id": grid.id}).status_code == 403
    assert post(client, f"/tasks/{item_id}/delegate", {"to_user_id": "x"}).status_code == 422
    response = post(client, f"/tasks/{item_id}/delegate", {"to_user_id": liu.id})
    assert response.status_code == 302
    assert loop.work_item(item_id).assignee_id == liu.id
    assert loop.hazard(hazard_id).title in text(as_user("liu_rectifier").get("/tasks"))


def test_csrf_is_required_on_every_post(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("chen_safety")
    for url in (f"/tasks/{item_id}/claim", f"/tasks/{item_id}", f"/tasks/{item_id}/draft"):
        assert client.post(url, data={}).status_code == 400


def test_the_general_loop_through_the_pages(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    """assign plan → rectify with a photo → verify reject → rectify → verify → closure review."""
    hazard_id = loop.register(title="端到端：罐区阀门未关闭")
    loop.upload(hazard_id, image_bytes((10, 10, 10)), phase="before", username="zhou_inspector")

    safety = as_user("chen_safety")
    plan_id = loop.item(hazard_id, "assign_plan")
    assert post(safety, f"/tasks/{plan_id}", plan_form(loop.date(7))).status_code == 302

    def rectify(color: tuple[int, int, int], summary: str) -> None:
        rectifier = as_user("zhang_rectifier")
        item_id = loop.item(hazard_id, "rectify")
        assert post(rectifier, f"/tasks/{item_id}/claim").status_code == 302
        photo = (io.BytesIO(image_bytes(color, "JPEG")), "after.jpg")
        form = {"summary": summary, "completed_on": loop.today(), "after_photos__files": photo}
        response = post(rectifier, f"/tasks/{item_id}", form, content_type="multipart/form-data")
        assert response.status_code == 302, text(response)

    def decide(task_key: str, username: str, decision: str, signature_field: str) -> None:
        client = as_user(username)
        item_id = loop.item(hazard_id, task_key)
        form = {"decision": decision, "opinion": f"{task_key} {decision}", signature_field: "签字人"}
        response = post(client, f"/tasks/{item_id}", form)
        assert response.status_code == 302, text(response)

    rectify((200, 0, 0), "第一次整改")
    decide("verify", "chen_safety", "reject", "verifier_signature")
    assert loop.hazard(hazard_id).failed_verifications == 1
    rectify((0, 200, 0), "第二次整改：更换阀门")
    decide("verify", "chen_safety", "pass", "verifier_signature")
    reviewer = as_user("wu_reviewer")
    review_id = loop.item(hazard_id, "closure_review")
    assert "端到端：罐区阀门未关闭" in text(reviewer.get("/tasks?tab=group"))
    review_page = text(reviewer.get(f"/tasks/{review_id}"))
    assert "审核结论" in review_page and "整改前照片" in review_page
    decide("closure_review", "wu_reviewer", "pass", "reviewer_signature")

    hazard = loop.hazard(hazard_id)
    assert hazard.status == "closed" and hazard.closed_at is not None
    with loop.state.sessions() as session:
        after = session.scalars(
            select(Attachment).where(Attachment.hazard_id == hazard_id, Attachment.phase == "after")
        ).all()
        assert len(after) == 2 and all(a.mime_type == "image/jpeg" for a in after)
    done = text(as_user("zhang_rectifier").get(f"/tasks/{review_id}"))
    assert "办结" in done and "同意销号" in done


def test_every_message_of_these_pages_has_an_english_entry() -> None:
    files = [
        *WEB.glob("templates/tasks/*.html"),
        *WEB.glob("templates/actions/*.html"),
        *WEB.glob("templates/forms/*.html"),
        WEB / "pages" / "tasks.py",
        WEB / "pages" / "actions.py",
        WEB / "uploads.py",
    ]
    literal = re.compile(r"""_\(\s*(["'])(.+?)\1""")
    missing = {
        f"{path.name}: {found}"
        for path in files
        for _quote, found in literal.findall(path.read_text(encoding="utf-8"))
        if re.search(r"[\u4e00-\u9fff]", found) and found not in EN
    }
    assert not missing, f"add English entries to web.i18n.EN: {sorted(missing)}"


def test_pages_in_english(loop: Loop, as_user: Callable[[str], FlaskClient]) -> None:
    item_id = loop.item(loop.register(), "assign_plan")
    client = as_user("chen_safety")
    client.get("/lang/en")
    assert "My tasks" in text(client.get("/tasks?tab=group"))
    assert "Save draft" in text(client.get(f"/tasks/{item_id}"))


def test_every_field_type_renders_and_round_trips(app: Flask) -> None:
    """The macros render each whitelisted type; what a browser sends back validates."""
    options = [{"value": f"o{i}", "label": f"选项{i}"} for i in range(6)]
    definition = parse_form_definition(
        {
            "key": "every_type",
            "title": "全部字段类型",
            "version": 1,
            "fields": [
                {"name": "line", "label": "单行", "type": "text", "required": True, "max_length": 20},
                {"name": "para", "label": "多行", "type": "text", "multiline": True},
                {"name": "count", "label": "数量", "type": "number", "integer": True, "min": 0, "max": 9},
                {"name": "cost", "label": "金额", "type": "money"},
                {"name": "day", "label": "日期", "type": "date"},
                {"name": "pick", "label": "单选", "type": "choice", "options": options[:3]},
                {"name": "drop", "label": "下拉", "type": "choice", "options": options},
                {"name": "many", "label": "多选", "type": "choice", "multiple": True, "options": options[:3]},
                {"name": "who", "label": "人员", "type": "person"},
                {"name": "sign", "label": "签字", "type": "signature"},
                {
                    "name": "checks",
                    "label": "检查项",
                    "type": "checklist",
                    "items": options[:2],
                    "all_required": True,
                },
                {"name": "pics", "label": "照片", "type": "photo", "phase": "after"},
                {"name": "docs", "label": "文件", "type": "file", "max_count": 3},
            ],
        }
    )
    sent = MultiDict(
        [
            ("line", "  一行  "),
            ("para", "第一段\n第二段"),
            ("count", "3"),
            ("cost", "1,234.5"),
            ("day", "2026-12-01"),
            ("pick", "o1"),
            ("drop", "o5"),
            ("many", "o0"),
            ("many", "o2"),
            ("who", "张强"),
            ("sign", "李四"),
            ("checks", "o0"),
            ("checks", "o1"),
            ("pics", "7"),
            ("docs", ""),
        ]
    )
    values = form_values(definition, sent)
    assert values["many"] == ["o0", "o2"] and values["docs"] == []
    validated = definition.validate(form_payload(definition, values))
    assert validated["cost"] == "1234.50" and validated["pics"] == [7] and "docs" not in validated
    assert validated["line"] == "  一行  "  # text is kept as typed

    with app.test_request_context("/"):
        macros = app.jinja_env.get_template("forms/fields.html").make_module({})
        html = str(
            macros.fields(definition, values, {"count": ["不能大于 9"]}, {}, accept={"photo": "image/*"})
        )
    assert 'id="f-line" name="line" value="  一行  " maxlength="20" required' in html
    assert "<textarea" in html and "第一段\n第二段</textarea>" in html
    assert 'type="number" id="f-count" name="count" value="3"' in html and 'aria-invalid="true"' in html
    assert 'name="cost" value="1,234.5" inputmode="decimal"' in html
    assert 'type="date" id="f-day" name="day" value="2026-12-01"' in html
    assert 'type="radio" name="pick" value="o1" checked' in html  # few options: radios
    assert '<option value="o5" selected>' in html  # many options: a select
    assert 'type="checkbox" name="many" value="o2" checked' in html
    assert 'name="who" value="张强"' in html and 'name="sign" value="李四"' in html
    assert 'type="checkbox" name="checks" value="o1" checked' in html and "须全部勾选" in html
    assert 'name="pics__files" multiple accept="image/*"' in html and 'name="docs__files" multiple' in html
    assert '<input type="hidden" name="pics" value="7">' in html  # an id not among the attachments
    assert "不能大于 9" in html


# --- the work under review, and why a task came back ------------------------------------------------


@pytest.fixture
def seeder(committed: sessionmaker[Session], app: Flask, world: DemoWorld) -> demo._Seeder:
    return demo._Seeder(committed, app_state(app).ctx, world)


def _open_id(committed: sessionmaker[Session], hazard_id: int, task_key: str) -> int:
    with committed() as session:
        return open_item(session, session.get_one(Hazard, hazard_id), task_key).id


def _rectified(seeder: demo._Seeder, committed: sessionmaker[Session], summary: str) -> tuple[int, int]:
    """A general hazard rectified by 刘 with a geotagged after photo; (hazard id, photo id)."""
    hazard_id = seeder.register(
        "chen_safety",
        "chem",
        title="甲类仓库防静电接地线断开（证据）",
        description="甲类仓库门口人体静电释放器接地线断开。",
        location="甲类仓库",
    )
    seeder.plan(
        hazard_id, "chen_safety", due_in_days=5, responsible="liu_rectifier", measures="重新连接接地线"
    )
    photo = seeder.upload(hazard_id, "liu_rectifier", "after")
    with committed.begin() as session:
        row = session.get_one(Attachment, photo)
        row.exif_taken_at = dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.UTC)  # 09:30 business time
        row.gps_lat, row.gps_lon = 31.125, 119.17
    form = {
        "summary": summary,
        "after_photos": [photo],
        "actual_funds": "11800.00",
        "completed_on": seeder.day(0),
    }
    seeder.complete(hazard_id, "rectify", "liu_rectifier", form)
    return hazard_id, photo


def test_verify_page_shows_the_rectification_under_review(
    seeder: demo._Seeder, committed: sessionmaker[Session], as_user: AsUser
) -> None:
    hazard_id, photo = _rectified(seeder, committed, "接地线已重新压接，实测接地电阻2.1Ω")
    item_id = _open_id(committed, hazard_id, "verify")
    html = text(as_user("chen_safety").get(f"/tasks/{item_id}"))
    evidence = html.split('aria-labelledby="evidence-h"', 1)[1].split("</section>", 1)[0]
    assert "待审核的办理情况" in html
    assert 'data-task-key="rectify"' in evidence and "限期整改" in evidence
    assert "接地线已重新压接，实测接地电阻2.1Ω" in evidence and seeder.day(0) in evidence
    assert "刘" in evidence  # who rectified
    assert "实际投入资金（元）" in evidence and "11800.00" in evidence and "11800.00 元" not in evidence
    assert f'src="/attachments/{photo}/thumb"' in evidence and f'href="/attachments/{photo}"' in evidence
    assert "拍摄于 2026-03-02 09:30" in evidence and "31.12500, 119.17000" in evidence
    assert 'data-task-key="assign_plan"' in evidence  # the plan of this first round, too
    assert "已被退回" not in html  # nothing came back


def test_reworked_rectify_says_why_it_was_sent_back_and_the_next_round_shows_the_new_work(
    seeder: demo._Seeder, committed: sessionmaker[Session], as_user: AsUser
) -> None:
    hazard_id, _photo = _rectified(seeder, committed, "第一次整改")
    first = _open_id(committed, hazard_id, "verify")
    seeder.verify(hazard_id, "chen_safety", passed=True, opinion="整改到位")
    reason = "接地电阻检测报告缺少检测单位盖章，请补充"
    seeder.closure_review(hazard_id, "wu_reviewer", passed=False, opinion=reason)
    rework = _open_id(committed, hazard_id, "rectify")
    html = text(as_user("liu_rectifier").get(f"/tasks/{rework}"))
    notice = html.split('class="flash flash-warning sent-back"', 1)[1].split("</div>", 1)[0]
    assert "已被退回" in notice and reason in notice
    assert "吴刚" in notice and "销号审核" in notice and re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", notice)
    assert "待审核的办理情况" not in html  # not a decision task

    second_photo = seeder.upload(hazard_id, "liu_rectifier", "after")
    seeder.complete(
        hazard_id,
        "rectify",
        "liu_rectifier",
        {"summary": "第二次整改：补做检测", "after_photos": [second_photo], "completed_on": seeder.day(0)},
    )
    verify = _open_id(committed, hazard_id, "verify")
    assert verify != first
    html = text(as_user("chen_safety").get(f"/tasks/{verify}"))
    evidence = html.split('aria-labelledby="evidence-h"', 1)[1].split("</section>", 1)[0]
    # this round: the new rectification and the rejection that caused it, not the first round's work
    assert "第二次整改：补做检测" in evidence and "第一次整改" not in evidence
    assert reason in evidence and 'data-task-key="assign_plan"' not in evidence
    assert evidence.index("第二次整改") < evidence.index(reason)  # newest first
    assert f"/attachments/{second_photo}/thumb" in evidence
    assert "已被退回" not in html  # the rejection is among the evidence, not a notice to the verifier
    with committed() as session:
        found = tasklist.evidence_for(session, session.get_one(WorkItem, verify))
        assert [e.item.task_key for e in found.entries] == ["rectify", "closure_review"]
        assert found.rejection is None
        back = tasklist.evidence_for(session, session.get_one(WorkItem, rework))
        assert back.entries == () or list(back.entries) == []
        assert back.rejection is not None and back.rejection.reason == reason


def test_signoff_page_shows_the_governance_plan(
    seeder: demo._Seeder, committed: sessionmaker[Session], as_user: AsUser
) -> None:
    hazard_id = demo._major_at_signoff(seeder)
    item_id = _open_id(committed, hazard_id, "principal_signoff")
    html = text(as_user("wang_principal").get(f"/tasks/{item_id}"))
    evidence = html.split('aria-labelledby="evidence-h"', 1)[1].split("</section>", 1)[0]
    assert 'data-task-key="governance_plan"' in evidence
    assert "委托设计单位进行自动化控制改造，增设SIS紧急停车系统" in evidence
    assert "860000.00" in evidence and "860000.00 元" not in evidence  # 经费落实（元）
