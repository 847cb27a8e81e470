"""``/api/v1/definitions`` and ``/api/v1/notices``."""

from __future__ import annotations

import io
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from engine.demo import DemoWorld

from .test_api_auth import assert_error
from .test_api_auth import bearer
from .test_api_hazards import hazard_data
from .test_api_tasks import Api
from .test_api_tasks import at_rectify
from .test_api_tasks import png


def test_definitions_list_versions_hashes_and_bound_grades(
    client: FlaskClient, api_token: Callable[..., str]
) -> None:
    body = client.get("/api/v1/definitions", headers=bearer(api_token("gao_modeler"))).get_json()
    assert body["total"] == len(body["items"]) >= 2
    by_key = {d["key"]: d for d in body["items"] if d["latest"]}
    general, major = by_key["hazard_general"], by_key["hazard_major"]
    assert general["bound_grades"] == ["general"]
    assert major["bound_grades"] == ["major"]
    assert len(general["hash"]) == 64 and int(general["hash"], 16) >= 0
    assert general["version"] >= 1
    assert general["deployed_at"].endswith("+00:00")
    assert general["bindings"][0] == {"grade": "general", "sector_code": None, "pinned": False}
    assert "bpmn_xml" not in general


def test_definitions_need_a_token(client: FlaskClient) -> None:
    assert_error(client.get("/api/v1/definitions"), 401)


def test_notices_are_escalation_events_in_scope(
    client: FlaskClient, app: Flask, world: DemoWorld, api_token: Callable[..., str]
) -> None:
    api = Api(client, api_token)
    hazard_id, task_id = at_rectify(api, app, world)
    # a plan due today leaves the 3-day reminder in the past: the next step fires it
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/claim"))
    api.post(
        "zhang_rectifier",
        f"/api/v1/tasks/{task_id}/attachments",
        data={"phase": "after", "file": (io.BytesIO(png()), "a.png")},
        content_type="multipart/form-data",
    )
    page = api.ok(api.get("chen_safety", "/api/v1/notices"))
    assert page["total"] >= 1
    notice = page["items"][0]
    assert notice["hazard_id"] == hazard_id
    assert notice["action"] == "reminder"
    assert notice["hazard_number"].startswith("YH-")
    assert notice["level"] is None
    assert notice["task_key"] == "rectify_remind_notice"
    filtered = api.ok(api.get("chen_safety", "/api/v1/notices?action=escalated"))
    assert filtered["total"] == 0
    assert api.ok(api.get("zhao_gd", "/api/v1/notices"))["total"] == 0
    since = api.ok(api.get("chen_safety", "/api/v1/notices", query_string={"since": "2099-01-01T00:00:00Z"}))
    assert since["items"] == []


def test_notices_validate_their_filters(client: FlaskClient, api_token: Callable[..., str]) -> None:
    headers = bearer(api_token("chen_safety"))
    for query, field in (
        ("action=registered", "action"),
        ("since=2024-01-01T00:00:00", "since"),
        ("hazard_id=0", "hazard_id"),
        ("per_page=1000", "per_page"),
        ("kind=overdue", "kind"),
    ):
        body = assert_error(client.get(f"/api/v1/notices?{query}", headers=headers), 422, "invalid_input")
        assert field in body["errors"], body


def test_hazard_data_helper_is_valid(
    client: FlaskClient, world: DemoWorld, api_token: Callable[..., str]
) -> None:
    # guards the helper the other API tests build on
    response = client.post("/api/v1/hazards", headers=bearer(api_token("sun_grid")), json=hazard_data(world))
    assert response.status_code == 201, response.get_json()
