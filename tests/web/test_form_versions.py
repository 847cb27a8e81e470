"""A form version published for a sector: the task page, the API and the hazard page of a hazard
started afterwards show it; a hazard started before keeps the version it was pinned to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.test import TestResponse

from engine.demo import DemoWorld
from engine.form_versions import publish_form_version
from engine.forms import load_shipped_forms
from engine.models import FormVersion
from engine.models import WorkItem
from tests.factories import plan_form
from tests.web.test_tasks import Loop
from tests.web.test_tasks import post
from tests.web.test_tasks import text
from tests.web.test_tasks import user_switcher
from web.session import app_state

TITLE = "整改方案（五落实 + 风险评估）"


@pytest.fixture
def loop(app: Flask, world: DemoWorld) -> Loop:
    return Loop(app, world)


@pytest.fixture
def as_user(client: FlaskClient, login: Callable[..., TestResponse]) -> Callable[[str], FlaskClient]:
    return user_switcher(client, login)


@pytest.fixture
def publish_plan(app: Flask) -> Iterator[Callable[[], int]]:
    """``publish_plan()``: publish (committed) a 危险化学品 整改方案 with a required 风险评估 field."""
    state = app_state(app)
    published: list[int] = []

    def publish() -> int:
        document = load_shipped_forms()["rectification_plan"].to_dict()
        document["title"] = TITLE
        document["fields"] = [  # type: ignore[misc]
            *document["fields"],  # type: ignore[misc]
            {"name": "risk_assessment", "label": "风险评估结论", "type": "text", "required": True},
        ]
        with state.sessions.begin() as session:
            version, created = publish_form_version(
                session, form_key="rectification_plan", sector_code="hazchem", document=document
            )
            assert created
            published.append(version.id)
            return version.id

    yield publish
    with state.sessions.begin() as session:  # before the hazards' work items are deleted
        for version_id in published:
            session.execute(
                update(WorkItem).where(WorkItem.form_version_id == version_id).values(form_version_id=None)
            )
            session.delete(session.get_one(FormVersion, version_id))


def test_the_task_page_renders_the_pinned_form(
    loop: Loop,
    as_user: Callable[[str], FlaskClient],
    publish_plan: Callable[[], int],
    api_token: Callable[..., str],
) -> None:
    before = loop.register(title="储罐区可燃气体报警器失效")
    version_id = publish_plan()
    after = loop.register(title="罐区防火堤破损", location="2号储罐区")
    old_item, new_item = loop.item(before, "assign_plan"), loop.item(after, "assign_plan")
    assert loop.work_item(new_item).form_version_id == version_id

    client = as_user("chen_safety")
    old_page, new_page = text(client.get(f"/tasks/{old_item}")), text(client.get(f"/tasks/{new_item}"))
    assert 'name="risk_assessment"' not in old_page and TITLE not in old_page
    assert 'name="risk_assessment"' in new_page and "风险评估结论" in new_page

    # the API gives the same form as JSON Schema
    headers = {"Authorization": f"Bearer {api_token('chen_safety')}"}
    schema = client.get(f"/api/v1/tasks/{new_item}", headers=headers).get_json()["form"]
    assert "risk_assessment" in schema["properties"] and "risk_assessment" in schema["required"]

    # and validates with it: required on the new hazard, unknown on the old one
    plan = plan_form(dt.date.fromisoformat(loop.today(14)))
    assert post(client, f"/tasks/{new_item}", plan).status_code == 422
    assert post(client, f"/tasks/{new_item}", {**plan, "risk_assessment": "低风险"}).status_code == 302
    assert post(client, f"/tasks/{old_item}", plan).status_code == 302
    assert loop.hazard(after).deadline is not None and loop.hazard(before).deadline is not None

    # the hazard page says what the hazard is pinned to
    page = text(client.get(f"/hazards/{after}"))
    assert "流程版本" in page and f"{TITLE} v1（行业）" in page and "hazard_general v" in page
    assert "策略配置 national v" in page
    assert f"{TITLE} v1" not in text(client.get(f"/hazards/{before}"))
