"""The OpenAPI document: valid, complete (every ``/api/v1`` route), honest (answers match it),
and the Swagger UI page served from local files under the app's CSP."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from engine.demo import DemoWorld
from web.api import schemas
from web.api.openapi import openapi_path

from .test_api_auth import bearer
from .test_api_hazards import hazard_data

SPEC_URL = "/api/v1/openapi.json"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get(SPEC_URL)  # no token needed
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def test_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)
    assert spec["openapi"].startswith("3.1")


def test_document_lists_every_api_route_and_nothing_else(app: Flask, spec: dict[str, Any]) -> None:
    routes = {
        (openapi_path(rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods or ()
        if method.lower() in METHODS
    }
    documented = {
        (path, method) for path, ops in spec["paths"].items() for method in ops if method in METHODS
    }
    assert routes == documented
    assert len(routes) >= 13


def test_every_operation_documents_security_and_errors(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    operation_ids = set()
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            operation_ids.add(op["operationId"])
            assert op["summary"] and op["tags"], (path, method)
            codes = set(op["responses"])
            assert any(c.startswith("2") for c in codes), (path, method)
            public = path in ("/api/v1/openapi.json", "/api/v1/auth/token")
            if public:
                assert op["security"] == []
            else:
                assert {"bearerAuth": []} in op["security"], (path, method)
                assert "401" in codes, (path, method)
            if "{" in path:
                assert "404" in codes, (path, method)
            if "requestBody" in op and "application/json" in op["requestBody"]["content"]:
                assert {"400", "415", "422"} <= codes, (path, method)
            for code, response in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert response["$ref"].startswith("#/components/responses/"), (path, method, code)
    assert len(operation_ids) == sum(len(ops) for ops in spec["paths"].values())
    for response in spec["components"]["responses"].values():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_every_schema_is_a_component(spec: dict[str, Any]) -> None:
    assert set(schemas.COMPONENTS) <= set(spec["components"]["schemas"])
    error = spec["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "errors"}
    hazard_create = spec["components"]["schemas"]["HazardCreateRequest"]
    assert hazard_create["additionalProperties"] is False
    assert hazard_create["properties"]["discovered_at"]["format"] == "date-time"
    assert hazard_create["properties"]["grade"]["enum"] == ["general", "prominent", "major"]


def test_query_parameters_are_documented(spec: dict[str, Any]) -> None:
    params = {p["name"]: p for p in spec["paths"]["/api/v1/hazards"]["get"]["parameters"]}
    assert {"page", "per_page", "grade", "status", "region_code", "overdue", "text", "sort"} <= set(params)
    assert params["per_page"]["schema"]["maximum"] == 200
    tasks = {p["name"]: p for p in spec["paths"]["/api/v1/tasks"]["get"]["parameters"]}
    assert tasks["scope"]["schema"]["enum"] == ["mine", "group"]


def _validator(spec: dict[str, Any], name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    return jsonschema.Draft202012Validator(root)


def test_answers_match_their_documented_schemas(
    client: FlaskClient, spec: dict[str, Any], world: DemoWorld, api_token: Callable[..., str]
) -> None:
    chen = bearer(api_token("chen_safety"))
    created = client.post("/api/v1/hazards", headers=chen, json=hazard_data(world, deadline=None))
    _validator(spec, "Hazard").validate(created.get_json())
    hazard_id = created.get_json()["id"]
    answers = {
        "HazardDetail": client.get(f"/api/v1/hazards/{hazard_id}", headers=chen),
        "HazardPage": client.get("/api/v1/hazards", headers=chen),
        "TaskPage": client.get("/api/v1/tasks?scope=group", headers=chen),
        "DefinitionList": client.get("/api/v1/definitions", headers=chen),
        "NoticePage": client.get("/api/v1/notices", headers=chen),
        "Error": client.get("/api/v1/hazards/999999", headers=chen),
    }
    task_id = answers["TaskPage"].get_json()["items"][0]["id"]
    answers["TaskDetail"] = client.get(f"/api/v1/tasks/{task_id}", headers=chen)
    answers["Task"] = client.post(f"/api/v1/tasks/{task_id}/claim", headers=chen)
    token = client.post(
        "/api/v1/auth/token", json={"username": "chen_safety", "password": "hazard-demo-2026"}
    )
    answers["Token"] = token
    for name, response in answers.items():
        assert response.status_code < 500, (name, response.get_data(as_text=True))
        _validator(spec, name).validate(response.get_json())


def test_document_is_cached_per_app(client: FlaskClient) -> None:
    assert client.get(SPEC_URL).get_data() == client.get(SPEC_URL).get_data()


# --- the docs page ----------------------------------------------------------------------------------


def test_docs_page_uses_local_swagger_ui_under_the_csp(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in html  # no inline script: everything from /static
    assert SPEC_URL in html
    sources = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
    assert all(s.startswith("/static/") for s in sources), sources
    assert any("vendor/swagger-ui-dist/swagger-ui-bundle.js" in s for s in sources)
    assert any("js/api-docs.js" in s for s in sources)
    vendor = Path(app.static_folder or "") / "vendor" / "swagger-ui-dist" / "swagger-ui-bundle.js"
    assert vendor.exists(), "run scripts/build_assets.py (./bin/test does)"
    for src in sources:
        static = client.get(src)
        static.close()  # a file response: close it, or the file stays open
        assert static.status_code == 200, src


def test_docs_page_and_api_messages_are_translated(client: FlaskClient) -> None:
    english = {"Accept-Language": "en"}
    assert "API documentation" in client.get("/api/docs", headers=english).get_data(as_text=True)
    response = client.post("/api/v1/auth/token", json=[], headers=english)
    assert response.get_json()["message"] == "The request body must be a JSON object"
