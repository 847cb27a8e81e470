"""``/inspections`` and ``/api/v1/inspections``: my scheduled inspections, recording one (on time and
late), the missed counts, permissions (403/404/409), CSRF, the hazard link, and the JSON API.

The occurrences are generated through the engine on committed data (the app under test runs on
its own engine) and deleted after each test.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from flask import render_template
from flask.testing import FlaskClient
from sqlalchemy import delete
from sqlalchemy import select

from engine import inspections
from engine.demo import DemoWorld
from engine.models import InspectionOccurrence
from web.session import app_state

from .test_api_auth import assert_error
from .test_api_auth import bearer

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEDNESDAY = dt.datetime(2026, 5, 20, 10, 0, tzinfo=SHANGHAI)
THURSDAY = WEDNESDAY + dt.timedelta(days=1)
SELF = "principal_self_inspection"
GRID = "grid_check"


class Plans:
    """Occurrences generated on the app's database; lookups by plan, subject and day."""

    def __init__(self, app: Flask, world: DemoWorld) -> None:
        self.state = app_state(app)
        self.world = world

    def sweep(self, when: dt.datetime) -> inspections.GenerateResult:
        with self.state.sessions.begin() as session:
            return inspections.generate_due(session, self.state.ctx, now=when)

    def id_of(self, plan: str, key: str, day: dt.date) -> int:
        subject = self.world.enterprises[key].id if plan == SELF else self.world.regions[key].id
        with self.state.sessions() as session:
            found = session.scalars(
                select(InspectionOccurrence.id).where(
                    InspectionOccurrence.plan_key == plan,
                    InspectionOccurrence.subject_id == subject,
                    InspectionOccurrence.period_start <= day,
                    InspectionOccurrence.period_end >= day,
                )
            ).one()
        return int(found)

    def get(self, occurrence_id: int) -> InspectionOccurrence:
        with self.state.sessions() as session:
            return session.get_one(InspectionOccurrence, occurrence_id)


@pytest.fixture
def plans(app: Flask, world: DemoWorld) -> Iterator[Plans]:
    """Wednesday's and Thursday's sweeps done (Wednesday's village check is missed); now Thursday."""
    made = Plans(app, world)
    with made.state.sessions.begin() as session:  # occurrences another test left (e.g. the demo's)
        session.execute(delete(InspectionOccurrence))
    with time_machine.travel(THURSDAY, tick=False):
        made.sweep(WEDNESDAY)
        made.sweep(THURSDAY)
        yield made
    with made.state.sessions.begin() as session:
        session.execute(delete(InspectionOccurrence))


def page_text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


VILLAGE = "341821100001"


# --- the page ----------------------------------------------------------------------------------------


def test_the_page_lists_what_i_may_record_missed_first(client: FlaskClient, login, plans: Plans) -> None:
    login(client, "sun_grid")
    response = client.get("/inspections")
    assert response.status_code == 200
    text = page_text(response)
    missed = plans.id_of(GRID, VILLAGE, WEDNESDAY.date())
    today = plans.id_of(GRID, VILLAGE, THURSDAY.date())
    assert text.index(f'id="inspection-{missed}"') < text.index(f'id="inspection-{today}"')
    assert "东门村 村级网格排查（2026年5月20日）" in text and "逾期未检查" in text
    assert "建平镇 乡级网格巡查" in text
    assert f'action="/inspections/{missed}/complete"' in text
    assert f'href="/inspections/{missed}/hazard"' in text
    # not the county's or the enterprises' inspections
    assert "郎溪县 县级网格排查" not in text and "华宇化工" not in text
    assert 'href="/inspections"' in text and "排查计划" in text  # the navigation link


def test_recording_on_time_and_late(client: FlaskClient, login, csrf, plans: Plans) -> None:
    login(client, "sun_grid")
    today = plans.id_of(GRID, VILLAGE, THURSDAY.date())
    missed = plans.id_of(GRID, VILLAGE, WEDNESDAY.date())
    with time_machine.travel(THURSDAY + dt.timedelta(hours=2), tick=False):
        response = client.post(
            f"/inspections/{today}/complete",
            data={"csrf_token": csrf(client), "note": "巡查东门村企业3家，未发现隐患", "hazards_found": "0"},
        )
        assert response.status_code == 302 and response.headers["Location"] == "/inspections"
        flashed = page_text(client.get("/inspections"))
        assert "已填报：东门村 村级网格排查（2026年5月21日）" in flashed
        response = client.post(
            f"/inspections/{missed}/complete",
            data={"csrf_token": csrf(client), "note": "周三漏检，周四补查", "hazards_found": "1"},
        )
        assert response.status_code == 302
        done = page_text(client.get("/inspections?tab=done"))
    on_time, late = plans.get(today), plans.get(missed)
    assert (on_time.state, on_time.completed_late, on_time.hazards_found) == ("done", False, 0)
    assert (late.state, late.completed_late, late.hazards_found) == ("done", True, 1)
    assert late.completed_by_id == plans.world.users["sun_grid"].id
    assert "周三漏检，周四补查" in done and "逾期补报" in done


def test_field_errors_come_back_with_what_was_typed(client: FlaskClient, login, csrf, plans: Plans) -> None:
    login(client, "sun_grid")
    target = plans.id_of(GRID, VILLAGE, THURSDAY.date())
    response = client.post(
        f"/inspections/{target}/complete",
        data={"csrf_token": csrf(client), "note": "  ", "hazards_found": "2"},
    )
    assert response.status_code == 422
    text = page_text(response)
    assert "请填写检查情况" in text and 'name="hazards_found" min="0" max="10000" step="1" value="2"' in text
    response = client.post(
        f"/inspections/{target}/complete",
        data={"csrf_token": csrf(client), "note": "已巡查", "hazards_found": "-1"},
    )
    assert response.status_code == 422
    assert "发现隐患数必须是 0 或正整数" in page_text(response)
    assert plans.get(target).state == "open"


def test_who_may_record_which(client: FlaskClient, login, csrf, plans: Plans) -> None:
    chem = plans.id_of(SELF, "chem", THURSDAY.date())
    login(client, "zhang_rectifier")  # sees the enterprise's inspection, may not record it
    response = client.post(f"/inspections/{chem}/complete", data={"csrf_token": csrf(client), "note": "检查"})
    assert response.status_code == 403
    assert "只能由安全管理人员、主要负责人填报" in page_text(response)
    login(client, "li_mall")  # another enterprise
    response = client.post(f"/inspections/{chem}/complete", data={"csrf_token": csrf(client), "note": "检查"})
    assert response.status_code == 404
    assert client.get(f"/inspections/{chem}/hazard").status_code == 404
    assert (
        client.post("/inspections/99999999999/complete", data={"csrf_token": csrf(client)}).status_code == 404
    )
    login(client, "wang_principal")
    response = client.post(
        f"/inspections/{chem}/complete", data={"csrf_token": csrf(client), "note": "带队检查"}
    )
    assert response.status_code == 302
    again = client.post(f"/inspections/{chem}/complete", data={"csrf_token": csrf(client), "note": "再次"})
    assert again.status_code == 409 and "不能重复填报" in page_text(again)


def test_a_form_without_the_csrf_token_is_refused(client: FlaskClient, login, plans: Plans) -> None:
    login(client, "sun_grid")
    target = plans.id_of(GRID, VILLAGE, THURSDAY.date())
    response = client.post(f"/inspections/{target}/complete", data={"note": "已巡查", "hazards_found": "0"})
    assert response.status_code == 400
    response = client.post(
        f"/inspections/{target}/complete",
        data={"csrf_token": "forged", "note": "已巡查", "hazards_found": "0"},
    )
    assert response.status_code == 400
    assert plans.get(target).state == "open"


def test_anonymous_users_are_sent_to_the_login_form(client: FlaskClient) -> None:
    response = client.get("/inspections")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_hazard_link_opens_registration_for_the_inspected_enterprise(
    client: FlaskClient, login, plans: Plans, world: DemoWorld
) -> None:
    login(client, "wang_principal")
    chem = plans.id_of(SELF, "chem", THURSDAY.date())
    response = client.get(f"/inspections/{chem}/hazard")
    assert response.status_code == 200
    text = page_text(response)
    assert 'action="/hazards/new"' in text
    assert re.search(rf'<option value="{world.enterprises["chem"].id}" selected>', text)
    assert re.search(r'<option value="self_check"[^>]*selected', text)
    assert "主要负责人带队检查（高危行业领域）（2026年5月）发现：" in text


def test_supervisors_see_the_missed_counts(client: FlaskClient, login, plans: Plans) -> None:
    login(client, "he_office")
    text = page_text(client.get("/inspections?tab=missed"))
    assert "各地区逾期未检查" in text
    assert re.search(r"东门村 <span class=\"tag tag-danger\">1</span>", text)
    assert "东门村 村级网格排查（2026年5月20日）" in text
    login(client, "wang_principal")
    text = page_text(client.get("/inspections?tab=missed"))
    assert "各地区逾期未检查" not in text and "没有逾期未检查的排查任务" in text


def test_the_dashboard_template_shows_the_missed_count(app: Flask) -> None:
    counts = {"total": 0, "mine": 0, "unclaimed": 0, "overdue": 0, "inspections_missed": 3}
    with app.test_request_context("/"):
        rendered = render_template("home/index.html", counts=counts)
    assert re.search(r'href="/inspections\?tab=missed"><span class="stat-value">3</span>', rendered)
    assert "排查任务逾期未检查" in rendered


# --- the API -----------------------------------------------------------------------------------------


@pytest.fixture
def api(client: FlaskClient, api_token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    tokens: dict[str, dict[str, str]] = {}

    def headers(user: str) -> dict[str, str]:
        if user not in tokens:
            tokens[user] = bearer(api_token(user))
        return tokens[user]

    return headers


def test_the_api_lists_mine_and_visible(client: FlaskClient, api, plans: Plans) -> None:
    response = client.get("/api/v1/inspections", headers=api("sun_grid"))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["total"] == len(body["items"]) == 3  # 20 and 21 May in the village, the township's week
    first = body["items"][0]
    assert first["id"] == plans.id_of(GRID, VILLAGE, WEDNESDAY.date())
    assert (
        first["state"] == "missed" and first["region_name"] == "东门村" and first["enterprise_name"] is None
    )
    assert (first["period_start"], first["period_end"]) == ("2026-05-20", "2026-05-20")
    assert first["due_at"] == "2026-05-20T15:59:59+00:00"
    assert (first["cadence_value"], first["cadence_unit"], first["policy_key"]) == (
        1,
        "calendar_days",
        "national",
    )

    office = client.get("/api/v1/inspections?scope=visible&state=missed", headers=api("he_office")).get_json()
    assert [i["title"] for i in office["items"]] == ["东门村 村级网格排查（2026年5月20日）"]
    principal = client.get("/api/v1/inspections?scope=visible", headers=api("wang_principal")).get_json()
    assert {i["plan_key"] for i in principal["items"]} == {SELF}
    assert {i["enterprise_name"] for i in principal["items"]} == {"郎溪县华宇化工有限公司"}

    assert_error(client.get("/api/v1/inspections?state=late", headers=api("sun_grid")), 422, "invalid_input")
    assert_error(client.get("/api/v1/inspections?scope=all", headers=api("sun_grid")), 422)
    assert_error(client.get("/api/v1/inspections"), 401)


def test_the_api_records_an_inspection(client: FlaskClient, api, plans: Plans) -> None:
    missed = plans.id_of(GRID, VILLAGE, WEDNESDAY.date())
    url = f"/api/v1/inspections/{missed}/complete"
    with time_machine.travel(THURSDAY + dt.timedelta(hours=1), tick=False):
        assert_error(client.post(url, json={"note": "补查"}, headers=api("sun_grid")), 422)  # hazards_found
        assert_error(
            client.post(url, json={"note": "补查", "hazards_found": 0, "extra": 1}, headers=api("sun_grid")),
            422,
        )
        assert_error(client.post(url, data="note", headers=api("sun_grid")), 415)
        assert_error(
            client.post(url, json={"note": "补查", "hazards_found": 0}, headers=api("wu_reviewer")),
            403,
            "forbidden",
        )
        assert_error(
            client.post(url, json={"note": "补查", "hazards_found": 0}, headers=api("wang_principal")),
            404,
            "not_found",
        )
        response = client.post(
            url, json={"note": "周三漏检，周四补查", "hazards_found": 0}, headers=api("sun_grid")
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert (body["state"], body["completed_late"], body["note"]) == ("done", True, "周三漏检，周四补查")
        assert body["completed_at"] == "2026-05-21T03:00:00+00:00"
        assert body["missed_at"] is not None and body["hazard_ids"] is None
        assert_error(
            client.post(url, json={"note": "再次", "hazards_found": 0}, headers=api("sun_grid")),
            409,
            "conflict",
        )
        assert_error(
            client.post(
                "/api/v1/inspections/2147483647/complete",
                json={"note": "x", "hazards_found": 0},
                headers=api("sun_grid"),
            ),
            404,
        )


def test_the_api_needs_the_csrf_header_with_a_session(client: FlaskClient, login, csrf, plans: Plans) -> None:
    login(client, "sun_grid")
    target = plans.id_of(GRID, VILLAGE, THURSDAY.date())
    url = f"/api/v1/inspections/{target}/complete"
    assert_error(client.post(url, json={"note": "已巡查", "hazards_found": 0}), 400, "csrf_failed")
    response = client.post(
        url, json={"note": "已巡查", "hazards_found": 0}, headers={"X-CSRF-Token": csrf(client)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def test_the_document_describes_the_inspection_endpoints(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert {"get"} <= set(spec["paths"]["/api/v1/inspections"])
    complete = spec["paths"]["/api/v1/inspections/{occurrence_id}/complete"]["post"]
    assert complete["tags"] == ["inspections"]
    assert {"400", "401", "403", "404", "409", "415", "422"} <= set(complete["responses"])
    assert {"Inspection", "InspectionPage", "InspectionCompleteRequest"} <= set(spec["components"]["schemas"])
