"""``/api/v1/tasks``: lists, one task with its form and actions, claim/release/complete, uploads,
and a whole general loop driven only through the API."""

from __future__ import annotations

import datetime as dt
import io
import os
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from engine.demo import DemoWorld
from web.session import app_state

from .test_api_auth import assert_error
from .test_api_auth import bearer
from .test_api_hazards import hazard_data

PNG = b"\x89PNG\r\n\x1a\n"


def image(kind: str = "PNG") -> bytes:
    """A real 8×8 image, different every time (the engine compares after/before digests)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (8, 8), os.urandom(8 * 8 * 3)).save(out, kind)
    return out.getvalue()


def png() -> bytes:
    return image("PNG")


class Api:
    """The test client with one bearer token per demo user."""

    def __init__(self, client: FlaskClient, api_token: Callable[..., str]) -> None:
        self.client = client
        self._make = api_token
        self._tokens: dict[str, dict[str, str]] = {}

    def headers(self, user: str) -> dict[str, str]:
        if user not in self._tokens:
            self._tokens[user] = bearer(self._make(user))
        return self._tokens[user]

    def get(self, user: str, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers(user), **kwargs)

    def post(self, user: str, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers(user), **kwargs)

    def ok(self, response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def open_task(self, user: str, hazard_id: int, task_key: str) -> dict[str, Any]:
        tasks = self.ok(self.get(user, f"/api/v1/hazards/{hazard_id}"))["tasks"]
        matching = [t for t in tasks if t["task_key"] == task_key]
        assert matching, tasks
        return dict(matching[0])

    def upload(self, user: str, task_id: int, phase: str, content: bytes, name: str = "照片.png") -> Any:
        return self.post(
            user,
            f"/api/v1/tasks/{task_id}/attachments",
            data={"phase": phase, "file": (io.BytesIO(content), name)},
            content_type="multipart/form-data",
        )


@pytest.fixture
def api(client: FlaskClient, api_token: Callable[..., str]) -> Api:
    return Api(client, api_token)


def today(app: Flask) -> str:
    ctx = app_state(app).ctx
    return ctx.clock.now().astimezone(ctx.tz).date().isoformat()


def register(api: Api, world: DemoWorld, **overrides: Any) -> int:
    data = hazard_data(world, **overrides)
    return int(api.ok(api.post("chen_safety", "/api/v1/hazards", json=data), 201)["id"])


def plan_form(app: Flask) -> dict[str, Any]:
    return {
        "responsible_person": "张强",
        "measures": "更换失效探头，恢复报警信号上传",
        "funds": "12000.00",
        "due_date": today(app),
        "contingency_plan": "综合应急预案",
    }


def at_rectify(api: Api, app: Flask, world: DemoWorld) -> tuple[int, int]:
    """A hazard whose plan is done: (hazard id, the open rectify task id)."""
    hazard_id = register(api, world)
    plan = api.open_task("chen_safety", hazard_id, "assign_plan")
    api.ok(api.post("chen_safety", f"/api/v1/tasks/{plan['id']}/complete", json=plan_form(app)))
    return hazard_id, api.open_task("zhang_rectifier", hazard_id, "rectify")["id"]


def test_general_loop_over_the_api(api: Api, app: Flask, world: DemoWorld) -> None:
    # 存量: discovered in 2021 with a 2021 deadline, registered today
    data = hazard_data(
        world,
        discovered_at="2021-03-15T09:30:00+08:00",
        deadline="2021-06-30T23:59:59+08:00",
        handling_type="deadline",
    )
    hazard = api.ok(api.post("chen_safety", "/api/v1/hazards", json=data), 201)
    hazard_id = hazard["id"]
    assert hazard["deadline"] == "2021-06-30T15:59:59+00:00"

    # the safety officer finds the plan task in the group queue, claims it, uploads a before photo
    group = api.ok(api.get("chen_safety", "/api/v1/tasks?scope=group"))
    plan = next(t for t in group["items"] if t["hazard_id"] == hazard_id)
    assert plan["task_key"] == "assign_plan"
    detail = api.ok(api.get("chen_safety", f"/api/v1/tasks/{plan['id']}"))
    assert detail["actions"] == ["claim", "complete", "attach"]
    assert detail["form"]["x-form-key"] == "rectification_plan"
    assert "due_date" in detail["form"]["required"]
    claimed = api.ok(api.post("chen_safety", f"/api/v1/tasks/{plan['id']}/claim"))
    assert claimed["assignee_id"] == world.users["chen_safety"].id
    mine = api.ok(api.get("chen_safety", "/api/v1/tasks?scope=mine"))
    assert [t["id"] for t in mine["items"]] == [plan["id"]]
    before = api.ok(api.upload("chen_safety", plan["id"], "before", png()), 201)
    assert before["phase"] == "before"
    assert before["mime_type"] == "image/png"
    api.ok(api.post("chen_safety", f"/api/v1/tasks/{plan['id']}/complete", json=plan_form(app)))

    # the rectifier claims, uploads the after photo, completes with its id
    rectify = api.open_task("zhang_rectifier", hazard_id, "rectify")
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{rectify['id']}/claim"))
    after = api.ok(api.upload("zhang_rectifier", rectify["id"], "after", png(), "整改后.png"), 201)
    form = {"summary": "已更换探头并联动测试", "after_photos": [after["id"]], "completed_on": today(app)}
    done = api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{rectify['id']}/complete", json=form))
    assert done["state"] == "completed"
    assert done["hazard_status"] == "verifying"
    shown = api.ok(api.get("zhang_rectifier", f"/api/v1/tasks/{rectify['id']}"))
    assert shown["data"]["after_photos"] == [after["id"]]
    assert shown["actions"] == []

    # the safety officer verifies (a different person from the rectifier) …
    verify = api.open_task("chen_safety", hazard_id, "verify")
    decision = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
    api.ok(api.post("chen_safety", f"/api/v1/tasks/{verify['id']}/complete", json=decision))

    # … and the supervising department reviews and closes it
    review = api.open_task("wu_reviewer", hazard_id, "closure_review")
    assert review["due_at"] is not None
    closing = {"decision": "pass", "opinion": "资料齐全，同意销号", "reviewer_signature": "吴刚"}
    closed = api.ok(api.post("wu_reviewer", f"/api/v1/tasks/{review['id']}/complete", json=closing))
    assert closed["hazard_status"] == "closed"

    final = api.ok(api.get("chen_safety", f"/api/v1/hazards/{hazard_id}"))
    assert final["status"] == "closed"
    assert final["closed_at"] is not None
    assert final["tasks"] == []
    assert final["timeline"][-1]["action"] == "closed"
    assert {a["phase"] for a in final["attachments"]} == {"before", "after"}
    # the escalation ladder caught up with the long-past deadline: its notice is listed for the hazard
    found = api.ok(api.get("chen_safety", f"/api/v1/notices?hazard_id={hazard_id}"))
    assert found["total"] >= 1 and {n["hazard_id"] for n in found["items"]} == {hazard_id}
    assert all(n["document_number"].endswith("号") for n in found["items"])


def test_release_hands_the_task_back(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/claim"))
    assert api.ok(api.get("zhang_rectifier", f"/api/v1/tasks/{task_id}"))["actions"] == [
        "release",
        "complete",
        "attach",
    ]
    # another rectifier sees it claimed: nothing to do
    assert api.ok(api.get("liu_rectifier", f"/api/v1/tasks/{task_id}"))["actions"] == []
    released = api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/release"))
    assert released["assignee_id"] is None
    assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/release"), 409, "conflict")
    group = api.ok(api.get("liu_rectifier", "/api/v1/tasks", query_string={"scope": "group"}))
    assert task_id in [t["id"] for t in group["items"]]


def test_claiming_a_claimed_task_is_409(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/claim"))
    assert_error(api.post("liu_rectifier", f"/api/v1/tasks/{task_id}/claim"), 409, "conflict")
    photo = api.ok(api.upload("zhang_rectifier", task_id, "after", png()), 201)
    form = {"summary": "已整改", "after_photos": [photo["id"]], "completed_on": today(app)}
    assert_error(api.post("liu_rectifier", f"/api/v1/tasks/{task_id}/complete", json=form), 409)
    assert_error(api.upload("liu_rectifier", task_id, "after", png()), 409)


def test_completing_a_completed_task_is_409(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    photo = api.ok(api.upload("zhang_rectifier", task_id, "after", png()), 201)
    form = {"summary": "已整改", "after_photos": [photo["id"]], "completed_on": today(app)}
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/complete", json=form))
    assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/complete", json=form), 409, "conflict")
    assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/claim"), 409)
    assert_error(api.upload("zhang_rectifier", task_id, "after", png()), 409)


def test_acting_without_the_role_is_403(api: Api, app: Flask, world: DemoWorld) -> None:
    hazard_id, task_id = at_rectify(api, app, world)
    photo = api.ok(api.upload("zhang_rectifier", task_id, "after", png()), 201)
    form = {"summary": "已整改", "after_photos": [photo["id"]], "completed_on": today(app)}
    api.ok(api.post("zhang_rectifier", f"/api/v1/tasks/{task_id}/complete", json=form))
    verify = api.open_task("zhang_rectifier", hazard_id, "verify")  # in scope: the rectifier sees it
    assert api.ok(api.get("zhang_rectifier", f"/api/v1/tasks/{verify['id']}"))["actions"] == []
    assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/{verify['id']}/claim"), 403, "forbidden")
    decision = {"decision": "pass", "opinion": "自己验收", "verifier_signature": "张强"}
    assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/{verify['id']}/complete", json=decision), 403)
    assert_error(api.upload("zhang_rectifier", verify["id"], "after", png()), 403, "forbidden")


def test_unknown_and_out_of_scope_tasks_are_404(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    for url in (f"/api/v1/tasks/{task_id}", "/api/v1/tasks/999999"):
        assert_error(api.get("zhao_gd", url), 404, "not_found")
    for action in ("claim", "release"):
        assert_error(api.post("zhao_gd", f"/api/v1/tasks/{task_id}/{action}"), 404, "not_found")
        assert_error(api.post("zhang_rectifier", f"/api/v1/tasks/999999/{action}"), 404)
    assert_error(api.post("zhao_gd", f"/api/v1/tasks/{task_id}/complete", json={}), 404)
    assert_error(api.upload("zhao_gd", task_id, "after", png()), 404)
    assert_error(api.get("zhang_rectifier", "/api/v1/tasks/3000000000"), 404)
    assert api.ok(api.get("zhao_gd", "/api/v1/tasks?scope=group"))["total"] == 0


def test_complete_validates_the_form(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    url = f"/api/v1/tasks/{task_id}/complete"
    missing = assert_error(api.post("zhang_rectifier", url, json={"summary": "x"}), 422, "invalid_input")
    assert {"after_photos", "completed_on"} <= set(missing["errors"])
    unknown = api.post("zhang_rectifier", url, json={"summary": "x", "colour": "red"})
    assert "colour" in assert_error(unknown, 422)["errors"]
    typed = api.post("zhang_rectifier", url, json={"summary": 5, "after_photos": "1", "completed_on": "soon"})
    assert {"summary", "after_photos", "completed_on"} <= set(assert_error(typed, 422)["errors"])
    foreign = {"summary": "x", "after_photos": [999999], "completed_on": today(app)}
    assert "after_photos" in assert_error(api.post("zhang_rectifier", url, json=foreign), 422)["errors"]
    huge = {"summary": "x", "after_photos": [10**30], "completed_on": today(app)}
    assert "after_photos.0" in assert_error(api.post("zhang_rectifier", url, json=huge), 422)["errors"]
    assert_error(
        api.post("zhang_rectifier", url, data="{", content_type="application/json"), 400, "malformed_json"
    )
    assert_error(api.post("zhang_rectifier", url, json=[]), 400, "invalid_body")


def test_uploads_are_checked_by_content(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    script = api.upload("zhang_rectifier", task_id, "after", b"<script>alert(1)</script>", "photo.png")
    assert "file" in assert_error(script, 422, "invalid_input")["errors"]
    fake = api.upload("zhang_rectifier", task_id, "after", PNG + os.urandom(64), "photo.png")
    assert "file" in assert_error(fake, 422)["errors"]  # PNG magic, but not an image
    pdf_as_photo = api.upload("zhang_rectifier", task_id, "after", b"%PDF-1.7\n...", "scan.pdf")
    assert_error(pdf_as_photo, 422)
    document = api.upload("zhang_rectifier", task_id, "document", b"%PDF-1.7\n...", "scan.pdf")
    assert api.ok(document, 201)["mime_type"] == "application/pdf"
    text = api.upload("zhang_rectifier", task_id, "document", "整改说明".encode(), "说明.txt")
    assert_error(text, 422)
    jpeg = api.upload("zhang_rectifier", task_id, "after", image("JPEG"), "a.png")
    assert api.ok(jpeg, 201)["mime_type"] == "image/jpeg"  # by content, not by name


def test_upload_form_errors(api: Api, app: Flask, world: DemoWorld) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    url = f"/api/v1/tasks/{task_id}/attachments"
    bad_phase = api.upload("zhang_rectifier", task_id, "during", png())
    assert "phase" in assert_error(bad_phase, 422)["errors"]
    no_file = api.post("zhang_rectifier", url, data={"phase": "after"}, content_type="multipart/form-data")
    assert "file" in assert_error(no_file, 422)["errors"]
    empty = api.upload("zhang_rectifier", task_id, "after", b"")
    assert "file" in assert_error(empty, 422)["errors"]
    extra = api.post(
        "zhang_rectifier",
        url,
        data={"phase": "after", "note": "x", "file": (io.BytesIO(png()), "a.png")},
        content_type="multipart/form-data",
    )
    assert "note" in assert_error(extra, 422)["errors"]
    as_json = api.post("zhang_rectifier", url, json={"phase": "after"})
    assert_error(as_json, 415, "unsupported_media_type")
    odd_name = api.upload("zhang_rectifier", task_id, "after", png(), "a\x00b\x07.png")
    assert "\x00" not in api.ok(odd_name, 201)["filename"]


def test_oversize_uploads_are_413(
    api: Api, app: Flask, world: DemoWorld, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hazard_id, task_id = at_rectify(api, app, world)
    # a file over the engine's per-file limit
    monkeypatch.setattr("engine.runtime.MAX_ATTACHMENT_BYTES", 1024)
    big = api.upload("zhang_rectifier", task_id, "after", PNG + b"\x00" * 2048)
    assert_error(big, 413, "payload_too_large")
    monkeypatch.undo()
    # a request over the app's size limit is refused before anything reads it
    small = Api(make_app(max_content_length=4096).test_client(), api._make)
    body = small.upload("zhang_rectifier", task_id, "after", PNG + b"\x00" * 8192)
    assert_error(body, 413, "payload_too_large")


def test_task_lists_paginate_and_validate(api: Api, app: Flask, world: DemoWorld) -> None:
    for _ in range(3):
        register(api, world)
    page = api.ok(api.get("chen_safety", "/api/v1/tasks?scope=group&per_page=2"))
    assert page["total"] == 3
    assert page["pages"] == 2
    assert len(page["items"]) == 2
    assert api.ok(api.get("chen_safety", "/api/v1/tasks"))["total"] == 0  # default scope: mine
    for query, field in (("scope=all", "scope"), ("per_page=500", "per_page"), ("tab=mine", "tab")):
        assert field in assert_error(api.get("chen_safety", f"/api/v1/tasks?{query}"), 422)["errors"]


def test_task_detail_gives_the_form_as_json_schema(api: Api, app: Flask, world: DemoWorld) -> None:
    hazard_id, task_id = at_rectify(api, app, world)
    detail = api.ok(api.get("zhang_rectifier", f"/api/v1/tasks/{task_id}"))
    assert detail["task"]["id"] == task_id
    assert detail["task"]["hazard_id"] == hazard_id
    assert detail["task"]["due_at"] is not None
    form = detail["form"]
    assert form["type"] == "object"
    assert form["additionalProperties"] is False
    assert form["properties"]["after_photos"]["x-phase"] == "after"
    assert detail["data"] == {}
    assert detail["draft"] is False
    # tasks are due in business time; the API answers in UTC
    due = dt.datetime.fromisoformat(detail["task"]["due_at"])
    assert due.utcoffset() == dt.timedelta(0)
