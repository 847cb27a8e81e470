"""``/api/v1/hazards``: registration (back-filled 存量 included), the ledger filters, the hazard file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.demo import DemoWorld

from .test_api_auth import assert_error
from .test_api_auth import bearer

URL = "/api/v1/hazards"


def hazard_data(world: DemoWorld, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "enterprise_id": world.enterprises["chem"].id,
        "title": "储罐区可燃气体报警器失效",
        "description": "1号储罐区两台可燃气体检测报警器不能正常报警。",
        "location": "1号储罐区",
        "source": "self_check",
        "grade": "general",
        "discovered_at": "2021-03-15T09:30:00+08:00",
    }
    data.update(overrides)
    return data


@pytest.fixture
def chen(api_token: Callable[..., str]) -> dict[str, str]:
    return bearer(api_token("chen_safety"))


def test_register_back_filled_stock_with_past_dates(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str]
) -> None:
    data = hazard_data(world, deadline="2021-06-30T23:59:59+08:00", handling_type="deadline")
    response = client.post(URL, headers=chen, json=data)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{URL}/{body['id']}")
    # stored as given, answered in UTC
    assert body["discovered_at"] == "2021-03-15T01:30:00+00:00"
    assert body["deadline"] == "2021-06-30T15:59:59+00:00"
    assert body["status"] == "planning"
    assert body["number"].startswith("YH-")
    assert body["enterprise_name"] == world.enterprises["chem"].name
    assert body["lead_department_name"] == "郎溪县应急管理局"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"discovered_at": "2021-03-15T09:30:00"}, "discovered_at"),  # naive: no offset
        ({"deadline": "2021-06-30 23:59"}, "deadline"),
        ({"discovered_at": "0001-01-01T00:00:00+14:00"}, "discovered_at"),  # would overflow in UTC
        ({"grade": "serious"}, "grade"),  # bad enum
        ({"source": None}, "source"),
        ({"enterprise_id": "1"}, "enterprise_id"),  # wrong type: strings are not integers in JSON
        ({"enterprise_id": True}, "enterprise_id"),
        ({"enterprise_id": 2**40}, "enterprise_id"),
        ({"listed_level": 9}, "listed_level"),
        ({"co_department_ids": [1, "x"]}, "co_department_ids"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"priority": "high"}, "priority"),  # unknown key, named
        ({"title": "bad\u0000title"}, "title"),
    ],
)
def test_register_refuses_bad_fields_with_422(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str], overrides: dict[str, Any], field: str
) -> None:
    response = client.post(URL, headers=chen, json=hazard_data(world, **overrides))
    body = assert_error(response, 422, "invalid_input")
    assert field in body["errors"], body


def test_register_reports_every_missing_field(client: FlaskClient, chen: dict[str, str]) -> None:
    body = assert_error(client.post(URL, headers=chen, json={}), 422)
    assert set(body["errors"]) == {
        "title",
        "description",
        "location",
        "enterprise_id",
        "source",
        "grade",
        "discovered_at",
    }


def test_register_engine_errors_keep_the_format(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str], api_token: Callable[..., str]
) -> None:
    unknown = client.post(URL, headers=chen, json=hazard_data(world, enterprise_id=999999))
    assert "enterprise_id" in assert_error(unknown, 422)["errors"]
    # an enterprise outside the registrant's scope
    other = client.post(
        URL, headers=chen, json=hazard_data(world, enterprise_id=world.enterprises["gd_chem"].id)
    )
    assert_error(other, 403, "forbidden")
    # process administrators see no hazards, so may register none
    modeler = bearer(api_token("gao_modeler"))
    assert_error(client.post(URL, headers=modeler, json=hazard_data(world)), 403)


def test_register_body_must_be_a_json_object(client: FlaskClient, chen: dict[str, str]) -> None:
    assert_error(
        client.post(URL, headers=chen, data="{", content_type="application/json"), 400, "malformed_json"
    )
    assert_error(client.post(URL, headers=chen, json="a string"), 400, "invalid_body")
    assert_error(client.post(URL, headers=chen, json=[1, 2]), 400, "invalid_body")
    deep = "[" * 100000 + "]" * 100000
    assert_error(client.post(URL, headers=chen, data=deep, content_type="application/json"), 400)
    assert_error(client.post(URL, headers=chen, data="a=b"), 415)


def test_ledger_filters_paginates_and_counts(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str]
) -> None:
    for i in range(3):
        client.post(URL, headers=chen, json=hazard_data(world, title=f"存量隐患{i}", grade="general"))
    client.post(URL, headers=chen, json=hazard_data(world, title="突出隐患", grade="prominent"))
    first = client.get(f"{URL}?grade=general&per_page=2", headers=chen).get_json()
    assert first["total"] == 3
    assert first["pages"] == 2
    assert len(first["items"]) == 2
    second = client.get(f"{URL}?grade=general&per_page=2&page=2", headers=chen).get_json()
    assert len(second["items"]) == 1
    ids = {h["id"] for h in first["items"] + second["items"]}
    assert len(ids) == 3
    text = client.get(URL, headers=chen, query_string={"text": "突出"}).get_json()
    assert [h["title"] for h in text["items"]] == ["突出隐患"]
    dated = client.get(
        URL,
        headers=chen,
        query_string={"discovered_from": "2021-03-01T00:00:00+08:00", "overdue": "false", "sort": "number"},
    ).get_json()
    assert dated["total"] == 4
    assert client.get(f"{URL}?per_page=200", headers=chen).status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("per_page=201", "per_page"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("grade=serious", "grade"),
        ("sort=title", "sort"),
        ("overdue=maybe", "overdue"),
        ("discovered_from=2021-03-01T00:00:00", "discovered_from"),
        ("enterprise_id=99999999999999999999", "enterprise_id"),
        ("colour=red", "colour"),
        ("grade=general&grade=major", "grade"),
        ("text=%00", "text"),
    ],
)
def test_ledger_refuses_bad_query_parameters(
    client: FlaskClient, chen: dict[str, str], query: str, field: str
) -> None:
    body = assert_error(client.get(f"{URL}?{query}", headers=chen), 422, "invalid_input")
    assert field in body["errors"], body


def test_ledger_shows_only_hazards_in_scope(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str], api_token: Callable[..., str]
) -> None:
    client.post(URL, headers=chen, json=hazard_data(world))
    outsider = bearer(api_token("zhao_gd"))
    assert client.get(URL, headers=outsider).get_json()["total"] == 0
    reviewer = bearer(api_token("wu_reviewer"))
    assert client.get(URL, headers=reviewer).get_json()["total"] == 1


def test_hazard_file_has_timeline_tasks_and_attachments(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str]
) -> None:
    created = client.post(URL, headers=chen, json=hazard_data(world)).get_json()
    response = client.get(f"{URL}/{created['id']}", headers=chen)
    assert response.status_code == 200
    body = response.get_json()
    assert body["number"] == created["number"]
    assert body["description"] == created["description"]
    actions = [e["action"] for e in body["timeline"]]
    assert actions[0] == "registered"
    assert "task_created" in actions
    assert [t["task_key"] for t in body["tasks"]] == ["assign_plan"]
    assert body["tasks"][0]["candidate_role"] == "safety_officer"
    assert body["attachments"] == []


def test_unknown_and_out_of_scope_hazards_are_404(
    client: FlaskClient, world: DemoWorld, chen: dict[str, str], api_token: Callable[..., str]
) -> None:
    created = client.post(URL, headers=chen, json=hazard_data(world)).get_json()
    assert_error(client.get(f"{URL}/999999", headers=chen), 404, "not_found")
    assert_error(client.get(f"{URL}/99999999999999999999", headers=chen), 404)
    assert_error(client.get(f"{URL}/abc", headers=chen), 404)
    outsider = bearer(api_token("zhao_gd"))
    hidden = assert_error(client.get(f"{URL}/{created['id']}", headers=outsider), 404, "not_found")
    unknown = client.get(f"{URL}/999999", headers=outsider).get_json()
    assert hidden["code"] == unknown["code"]


def test_hazards_need_a_token(client: FlaskClient) -> None:
    assert_error(client.get(URL), 401)
    assert_error(client.get(f"{URL}/1"), 401)
    assert_error(client.post(URL, json={}), 401)


def test_unknown_routes_and_methods_answer_json(client: FlaskClient, chen: dict[str, str]) -> None:
    assert_error(client.get("/api/v1/nothing-here", headers=chen), 404, "not_found")
    assert_error(client.put(URL, headers=chen, json={}), 405, "method_not_allowed")
