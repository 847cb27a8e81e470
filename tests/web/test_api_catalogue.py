"""``/api/v1/definitions`` (``/api/v1/notices``: tests/web/test_api_notices.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from engine.demo import DemoWorld

from .test_api_auth import assert_error
from .test_api_auth import bearer
from .test_api_hazards import hazard_data


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


def test_hazard_data_helper_is_valid(
    client: FlaskClient, world: DemoWorld, api_token: Callable[..., str]
) -> None:
    # guards the helper the other API tests build on
    response = client.post("/api/v1/hazards", headers=bearer(api_token("sun_grid")), json=hazard_data(world))
    assert response.status_code == 201, response.get_json()
