"""``/api/v1``: checking, publishing, exporting and binding diagrams; task forms and policy profiles.

The same engine calls as the modeler, the versions page and the form and policy editors, so these
tests look at what the API adds: the JSON shapes, the status codes, the permission and the design
log. 高远 (gao_modeler) is the process administrator of 郎溪县应急管理局, which leads hazchem; a
process administrator of 消防 (``api_fire_modeler``, created here) leads no hazchem, 陈 (chen_safety)
is an enterprise's safety officer. The diagram is the shipped 一般隐患 loop renamed ``KEY``, published
for hazchem through the API; ``diagram`` removes everything published, drafted, bound or logged for
it afterwards (request it before ``client``: its teardown then runs after the hazards are deleted),
and ``forget_designs`` the form versions, policy profiles, drafts and design events a test made.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import db as dbmod
from engine import definitions
from engine import design
from engine import form_versions
from engine import policy
from engine.demo import DemoWorld
from engine.models import ApiToken
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import FormVersion
from engine.models import Membership
from engine.models import ProcessInstance
from engine.models import Role
from engine.models import User
from engine.runtime import EngineContext
from web.auth import issue_token
from web.session import app_state

from .test_api_auth import assert_error
from .test_api_auth import bearer
from .test_api_hazards import hazard_data

pytestmark = pytest.mark.usefixtures("forget_designs")

KEY = "hazard_general_apidesign"
FIRE_MODELER = "api_fire_modeler"
CHECK = "/api/v1/definitions/check"
PUBLISH = "/api/v1/definitions/publish"
BPMN = "/api/v1/definitions/bpmn"
BINDINGS = "/api/v1/definitions/bindings"
CIRCULAR = "escalation_circular_after_overdue"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SCRIPT_TASK = (
    '<bpmn:scriptTask id="evil_script" name="执行脚本"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>'
)

Headers = dict[str, str]


# --- fixtures -----------------------------------------------------------------------------------------


def _forget_diagram(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(DesignEvent).where(DesignEvent.key == KEY))
        conn.execute(delete(DesignDraft).where(DesignDraft.key == KEY))
        conn.execute(
            delete(DefinitionBindingHistory).where(
                or_(
                    DefinitionBindingHistory.process_key == KEY,
                    DefinitionBindingHistory.previous_process_key == KEY,
                )
            )
        )
        conn.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key == KEY))
        # the file's passenger (hazard_verification) got versions of its own from KEY's file
        conn.execute(delete(DefinitionVersion).where(DefinitionVersion.source_filename == f"{KEY}.bpmn"))


@pytest.fixture
def diagram(engine: Engine, world: DemoWorld, ctx: EngineContext) -> Iterator[str]:
    """The shipped general loop as ``KEY`` (not published); KEY's traces are removed afterwards."""
    del world
    _forget_diagram(engine)
    source = (ctx.settings.processes_dir / "hazard_general.bpmn").read_text(encoding="utf-8")
    yield source.replace('"hazard_general"', f'"{KEY}"')
    _forget_diagram(engine)


@pytest.fixture
def fire_modeler(engine: Engine, world: DemoWorld) -> Iterator[int]:
    """A process administrator of 郎溪县消防救援大队 (leads fire, not hazchem): the user's id."""
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        user = User(username=FIRE_MODELER, display_name="消防流程管理员（API 测试）", password_hash=None)
        session.add(user)
        session.flush()
        session.add(
            Membership(
                user_id=user.id, role=Role.PROCESS_ADMIN, department_id=world.departments["lx_fire"].id
            )
        )
        user_id = user.id
    yield user_id
    with factory.begin() as session:
        session.execute(delete(ApiToken).where(ApiToken.user_id == user_id))
        session.execute(delete(Membership).where(Membership.user_id == user_id))
        session.execute(delete(User).where(User.id == user_id))


@pytest.fixture
def gao(api_token: Callable[..., str]) -> Headers:
    return bearer(api_token("gao_modeler"))


@pytest.fixture
def chen(api_token: Callable[..., str]) -> Headers:
    return bearer(api_token("chen_safety"))


def _bearer_for(app: Flask, user_id: int) -> Headers:
    with app_state(app).sessions.begin() as session:
        token = issue_token(session, user_id, "test", dt.timedelta(hours=1), now=dt.datetime.now(dt.UTC))
    return bearer(token)


@pytest.fixture
def fire(app: Flask, fire_modeler: int) -> Headers:
    return _bearer_for(app, fire_modeler)


@pytest.fixture
def admin(app: Flask, world: DemoWorld) -> Headers:
    return _bearer_for(app, world.users["admin"].id)


def _read(app: Flask) -> Session:
    return app_state(app).sessions()


def versions_of(app: Flask, key: str = KEY) -> int:
    with _read(app) as session:
        return int(
            session.scalar(
                select(func.count(DefinitionVersion.id)).where(DefinitionVersion.process_key == key)
            )
            or 0
        )


def log_of(app: Flask, kind: str, key: str) -> list[DesignEvent]:
    with _read(app) as session:
        return design.design_log(session, kind=kind, key=key)


def with_script_task(xml: str) -> str:
    """``xml`` with a script task in the main process (the gate refuses scripts at the element)."""
    marker = f'<bpmn:process id="{KEY}"'
    start = xml.index(marker)
    end = xml.index(">", start) + 1
    return xml[:end] + SCRIPT_TASK + xml[end:]


def publish(client: FlaskClient, headers: Headers, xml: str, **extra: Any) -> Any:
    body = {"key": KEY, "sector": "hazchem", "bpmn": xml, "note": "API 发布", **extra}
    return client.post(PUBLISH, headers=headers, json=body)


# --- check --------------------------------------------------------------------------------------------


def test_check_names_the_offending_element_and_passes_a_shipped_diagram(
    diagram: str, client: FlaskClient, gao: Headers, app: Flask
) -> None:
    ok = client.post(CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": diagram})
    assert ok.status_code == 200, ok.get_json()
    body = ok.get_json()
    assert body["ok"] is True and body["errors"] == []
    assert all(set(w) == {"element_id", "element_name", "message", "severity"} for w in body["warnings"])

    bad = client.post(
        CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": with_script_task(diagram)}
    )
    assert bad.status_code == 200
    body = bad.get_json()
    assert body["ok"] is False
    [error] = body["errors"]
    assert (error["element_id"], error["element_name"], error["severity"]) == (
        "evil_script",
        "执行脚本",
        "error",
    )
    assert "脚本任务" in error["message"]

    # an unknown role on a user task: the task is named, with its name from the posted file
    wrong_role = diagram.replace('value="rectifier"', 'value="janitor"', 1)
    [error] = client.post(
        CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": wrong_role}
    ).get_json()["errors"]
    assert error["message"] == "未知的候选角色 'janitor'" and error["element_name"]
    # checking stores nothing
    assert versions_of(app) == 0 and log_of(app, "diagram", KEY) == []


def test_check_of_what_is_not_bpmn_answers_ok_false(diagram: str, client: FlaskClient, gao: Headers) -> None:
    del diagram
    for text in ("隐患流程图", "<bpmn:definitions", "<html><body>hello</body></html>"):
        response = client.post(CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": text})
        assert response.status_code == 200, (text, response.get_json())
        body = response.get_json()
        assert body["ok"] is False and body["errors"][0]["message"], text
    entity = (
        f'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><bpmn:definitions xmlns:bpmn="{BPMN_NS}">'
        "&e;</bpmn:definitions>"
    )
    body = client.post(CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": entity}).get_json()
    assert body["ok"] is False and "DOCTYPE" in body["errors"][0]["message"]


# --- publish and export -------------------------------------------------------------------------------


def test_publish_creates_the_next_version_and_export_returns_its_bytes(
    diagram: str, client: FlaskClient, gao: Headers, app: Flask, world: DemoWorld
) -> None:
    first = publish(client, gao, diagram, note="危化一般隐患闭环")
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert (body["key"], body["version"], body["created"], body["sector"]) == (KEY, 1, True, "hazchem")
    assert (body["deployed_by"], body["note"], body["binding"]) == ("gao_modeler", "危化一般隐患闭环", None)
    assert body["hash"] == hashlib.sha256(diagram.encode("utf-8")).hexdigest()
    assert body["deployed_at"].endswith("+00:00")
    assert first.headers["Location"].endswith(f"{BPMN}?key={KEY}&version=1")

    changed = diagram.replace('name="整改验收"', 'name="整改复核"')
    assert changed != diagram
    # the sector may be left out once the process is published: it is the process's
    second = client.post(PUBLISH, headers=gao, json={"key": KEY, "bpmn": changed, "note": "验收改称复核"})
    assert second.status_code == 201, second.get_json()
    body = second.get_json()
    assert (body["version"], body["created"], body["sector"]) == (2, True, "hazchem")
    assert body["hash"] == hashlib.sha256(changed.encode("utf-8")).hexdigest()
    with _read(app) as session:
        latest = definitions.latest_version(session, KEY)
        assert latest is not None and (latest.version, latest.sector_code) == (2, "hazchem")
        assert latest.deployed_by_id == world.users["gao_modeler"].id
        assert [e.action for e in design.design_log(session, kind="diagram", key=KEY)] == [
            "published",
            "published",
        ]

    exported = client.get(f"{BPMN}?key={KEY}&version=2", headers=gao)
    assert exported.status_code == 200
    assert exported.mimetype == "application/xml"
    assert exported.headers["Content-Disposition"] == f'attachment; filename="{KEY}-v2.bpmn"'
    assert exported.get_data() == changed.encode("utf-8")
    assert hashlib.sha256(exported.get_data()).hexdigest() == body["hash"]
    assert client.get(f"{BPMN}?key={KEY}&version=1", headers=gao).get_data() == diagram.encode("utf-8")
    latest_export = client.get(f"{BPMN}?key={KEY}", headers=gao)
    assert latest_export.headers["Content-Disposition"] == f'attachment; filename="{KEY}-v2.bpmn"'
    assert_error(client.get(f"{BPMN}?key={KEY}&version=3", headers=gao), 404, "not_found")
    assert_error(client.get(f"{BPMN}?key=no_such_process", headers=gao), 404, "not_found")
    assert_error(client.get(f"{BPMN}?key={KEY}&version=x", headers=gao), 422, "invalid_input")
    assert_error(client.get(BPMN), 401)

    # unchanged content: no new version, the one it equals is named
    again = client.post(PUBLISH, headers=gao, json={"key": KEY, "bpmn": changed, "note": "再发一次"})
    assert again.status_code == 201
    assert (again.get_json()["version"], again.get_json()["created"]) == (2, False)
    assert versions_of(app) == 2


def test_publish_refused_names_the_element_deploys_nothing_and_is_logged(
    diagram: str, client: FlaskClient, gao: Headers, app: Flask
) -> None:
    assert publish(client, gao, diagram).status_code == 201
    refused = publish(client, gao, with_script_task(diagram), note="加一个脚本")
    body = assert_error(refused, 422, "definition_invalid")
    assert body["message"] == "未通过发布检查，未发布"
    assert list(body["errors"]) == ["evil_script"] and "脚本任务" in body["errors"]["evil_script"][0]
    assert versions_of(app) == 1
    [event, _published] = log_of(app, "diagram", KEY)
    assert (event.action, event.sector_code, event.note) == ("refused", "hazchem", "加一个脚本")
    assert event.details is not None and [e["element"] for e in event.details["errors"]] == ["evil_script"]

    # not XML at all: refused the same way, and logged
    body = assert_error(publish(client, gao, "隐患流程图"), 422, "definition_invalid")
    assert "XML" in body["errors"]["_definition"][0]
    assert versions_of(app) == 1
    assert [e.action for e in log_of(app, "diagram", KEY)][:2] == ["refused", "refused"]


def test_only_the_lead_department_may_check_and_publish(
    diagram: str, client: FlaskClient, gao: Headers, chen: Headers, fire: Headers, app: Flask
) -> None:
    request = {"key": KEY, "sector": "hazchem", "bpmn": diagram, "note": "越权"}
    check = {k: request[k] for k in ("key", "sector", "bpmn")}
    for headers in (fire, chen):
        assert_error(client.post(CHECK, headers=headers, json=check), 403, "forbidden")
        assert_error(client.post(PUBLISH, headers=headers, json=request), 403, "forbidden")
        # the body is checked first: a check has no note
        assert_error(client.post(CHECK, headers=headers, json=request), 422)
    # once KEY is hazchem's, 消防 cannot take it over by naming its own sector, nor check it so
    assert publish(client, gao, diagram).status_code == 201
    body = assert_error(client.post(PUBLISH, headers=fire, json={**request, "sector": "fire"}), 403)
    assert body["message"].startswith(f"流程 {KEY} 属于「")
    assert_error(client.post(CHECK, headers=fire, json={**check, "sector": "fire"}), 403)
    assert_error(
        client.post(PUBLISH, headers=fire, json={k: v for k, v in request.items() if k != "sector"}), 403
    )
    # the national scope is for system administrators
    assert_error(client.post(PUBLISH, headers=gao, json={**request, "sector": None}), 403)
    # anonymous
    assert_error(client.post(PUBLISH, json=request), 401, "unauthenticated")
    assert_error(client.post(CHECK, json=request), 401)
    assert versions_of(app) == 1


MAX = definitions.MAX_BPMN_BYTES


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("not json", 400, None),
        ("json array", 400, None),
        ("text/plain", 415, None),
        ("unknown key", 422, "xml"),
        ("missing bpmn", 422, "bpmn"),
        ("empty bpmn", 422, "bpmn"),
        ("bpmn not text", 422, "bpmn"),
        ("bad key", 422, "key"),
        ("missing note", 422, "note"),
        ("bind not boolean", 422, "bind"),
        ("too large", 422, "bpmn"),
        ("too large in UTF-8", 422, "bpmn"),
        ("unknown sector", 404, None),
        ("unknown process", 404, None),
    ],
)
def test_malformed_publish_requests(
    diagram: str, client: FlaskClient, gao: Headers, app: Flask, case: str, status: int, field: str | None
) -> None:
    good: dict[str, Any] = {"key": KEY, "sector": "hazchem", "bpmn": diagram, "note": "x"}
    bodies: dict[str, Any] = {
        "unknown key": {**good, "xml": diagram},
        "missing bpmn": {k: v for k, v in good.items() if k != "bpmn"},
        "empty bpmn": {**good, "bpmn": ""},
        "bpmn not text": {**good, "bpmn": 42},
        "bad key": {**good, "key": "1 bad key"},
        "missing note": {k: v for k, v in good.items() if k != "note"},
        "bind not boolean": {**good, "bind": "maybe"},
        "too large": {**good, "bpmn": "<" + "x" * MAX},
        "too large in UTF-8": {**good, "bpmn": "隐" * (MAX // 3 + 1)},
        "unknown sector": {**good, "sector": "nowhere"},
        "unknown process": {k: v for k, v in good.items() if k != "sector"},
    }
    if case == "not json":
        response = client.post(PUBLISH, headers=gao, data="{not json", content_type="application/json")
    elif case == "json array":
        response = client.post(PUBLISH, headers=gao, data="[1, 2]", content_type="application/json")
    elif case == "text/plain":
        response = client.post(PUBLISH, headers=gao, data=json.dumps(good), content_type="text/plain")
    else:
        response = client.post(PUBLISH, headers=gao, json=bodies[case])
    body = assert_error(response, status)
    if field is not None:
        assert field in body["errors"], body
    if case == "too large in UTF-8":
        assert "MB" in body["errors"]["bpmn"][0]
    assert versions_of(app) == 0 and log_of(app, "diagram", KEY) == []
    if case in ("not json", "too large", "missing bpmn"):  # the same for a check
        check = {k: v for k, v in bodies.get(case, good).items() if k != "note"}
        data = "{not json" if case == "not json" else json.dumps(check)
        assert (
            client.post(CHECK, headers=gao, data=data, content_type="application/json").status_code == status
        )


def test_a_body_over_the_request_limit_is_413(
    diagram: str, make_app: Callable[..., Flask], api_token: Callable[..., str]
) -> None:
    del diagram
    client = make_app(max_content_length=64 * 1024).test_client()
    body = {"key": KEY, "sector": "hazchem", "bpmn": "x" * (100 * 1024)}
    response = client.post(CHECK, headers=bearer(api_token("gao_modeler")), json=body)
    assert_error(response, 413, "payload_too_large")


def test_a_shared_draft_is_replaced_only_when_its_revision_is_named(
    diagram: str, client: FlaskClient, gao: Headers, app: Flask, world: DemoWorld
) -> None:
    assert publish(client, gao, diagram).status_code == 201
    with app_state(app).sessions.begin() as session:
        draft = design.save_draft(
            session,
            world.actor(session, "gao_modeler"),
            kind="diagram",
            key=KEY,
            sector_code="hazchem",
            content=diagram.replace('name="整改验收"', 'name="草稿中"'),
            revision=None,
        )
        revision = draft.revision
    changed = diagram.replace('name="整改验收"', 'name="整改复核"')
    body = assert_error(publish(client, gao, changed), 409, "conflict")
    assert f"第 {revision} 次修改" in body["message"]
    assert_error(publish(client, gao, changed, revision=revision + 1), 409)
    published = publish(client, gao, changed, revision=revision)
    assert published.status_code == 201 and published.get_json()["version"] == 2
    with _read(app) as session:
        assert design.get_draft(session, "diagram", KEY, "hazchem") is None


def test_bind_on_the_first_publish(diagram: str, client: FlaskClient, gao: Headers, app: Flask) -> None:
    published = publish(client, gao, diagram, bind=True)
    assert published.status_code == 201, published.get_json()
    assert published.get_json()["binding"] == "general/hazchem"
    with _read(app) as session:
        chosen = definitions.resolve_definition(session, grade="general", sector_code="hazchem")
        assert (chosen.process_key, chosen.version) == (KEY, 1)
    # bound already: a later publish with bind=true binds nothing new
    again = publish(client, gao, diagram.replace('name="整改验收"', 'name="整改复核"'), bind=True)
    assert again.status_code == 201 and again.get_json()["binding"] is None


# --- bindings -----------------------------------------------------------------------------------------


def started_on(app: Flask, hazard_id: int) -> tuple[str, int]:
    with _read(app) as session:
        version = session.scalars(
            select(DefinitionVersion)
            .join(ProcessInstance, ProcessInstance.definition_version_id == DefinitionVersion.id)
            .where(ProcessInstance.hazard_id == hazard_id)
            .order_by(ProcessInstance.id)
        ).first()
        assert version is not None
        return version.process_key, version.version


def register(client: FlaskClient, chen: Headers, world: DemoWorld) -> int:
    response = client.post("/api/v1/hazards", headers=chen, json=hazard_data(world))
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["id"])


def test_bind_pin_and_rollback_decide_where_new_hazards_start(
    diagram: str, client: FlaskClient, gao: Headers, chen: Headers, app: Flask, world: DemoWorld
) -> None:
    assert publish(client, gao, diagram, bind=True).status_code == 201
    assert publish(client, gao, diagram.replace('name="整改验收"', 'name="整改复核"')).status_code == 201
    listing = client.get(f"{BINDINGS}?key={KEY}", headers=gao)
    assert listing.status_code == 200, listing.get_json()
    body = listing.get_json()
    assert (body["key"], body["sector"], body["editable"], body["total"]) == (KEY, "hazchem", True, 1)
    [item] = body["items"]
    assert (item["label"], item["version"], item["pinned"], item["can_rollback"]) == (
        "general/hazchem",
        2,
        False,
        True,
    )
    [created] = item["history"]
    assert (created["action"], created["before"], created["changed_by"]) == (
        "bind",
        None,
        "高远（县应急局流程管理员）",
    )
    assert created["after"] == {"process_key": KEY, "version": 1, "pinned": False}
    assert started_on(app, register(client, chen, world)) == (KEY, 2)

    # pin version 1
    pinned = client.post(
        BINDINGS, headers=gao, json={"key": KEY, "grade": "general", "version": 1, "note": "退回首版"}
    )
    assert pinned.status_code == 200, pinned.get_json()
    assert pinned.get_json() == {
        "label": "general/hazchem",
        "grade": "general",
        "sector": "hazchem",
        "region": None,
        "process_key": KEY,
        "version": 1,
        "pinned": True,
    }
    assert started_on(app, register(client, chen, world)) == (KEY, 1)

    # roll the pin back: new hazards start on what they started on before it (v2, now pinned)
    rolled = client.post(
        f"{BINDINGS}/rollback", headers=gao, json={"key": KEY, "grade": "general", "note": "撤回"}
    )
    assert rolled.status_code == 200, rolled.get_json()
    assert rolled.get_json()["label"] == "general/hazchem"
    assert (rolled.get_json()["binding"]["version"], rolled.get_json()["binding"]["pinned"]) == (2, True)
    assert started_on(app, register(client, chen, world)) == (KEY, 2)
    history = client.get(f"{BINDINGS}?key={KEY}", headers=gao).get_json()["items"][0]["history"]
    assert [(h["action"], h["note"]) for h in history] == [
        ("rollback", "撤回"),
        ("bind", "退回首版"),
        ("bind", "API 发布"),
    ]

    # the pin is undone already: the next rollback undoes the binding's creation (hazchem falls back
    # to the national loop), and then there is nothing left
    undone = client.post(
        f"{BINDINGS}/rollback", headers=gao, json={"key": KEY, "grade": "general", "note": "撤销绑定"}
    )
    assert undone.status_code == 200 and undone.get_json()["binding"] is None
    assert started_on(app, register(client, chen, world))[0] == "hazard_general"
    nothing = client.post(
        f"{BINDINGS}/rollback", headers=gao, json={"key": KEY, "grade": "general", "note": "没有了"}
    )
    assert "_schema" in assert_error(nothing, 422)["errors"]


def test_bindings_are_checked_like_the_versions_page(
    diagram: str,
    client: FlaskClient,
    gao: Headers,
    chen: Headers,
    fire: Headers,
    api_token: Callable[..., str],
) -> None:
    assert publish(client, gao, diagram, bind=True).status_code == 201
    bind = {"key": KEY, "grade": "general", "version": 1, "note": "试试"}
    cases = [
        ({"note": " "}, "note", "请填写说明"),
        ({"version": 9}, "version", "没有版本 v9"),
        ({"grade": "major"}, "version", "缺少法定环节"),
        ({"sector": "fire"}, "sector", "只能绑定本部门牵头的行业"),
        ({"sector": None}, "sector", "请选择本部门牵头的行业"),
        ({"region": "341882"}, "region", "请选择列表中的地区"),
    ]
    for change, field, message in cases:
        body = assert_error(client.post(BINDINGS, headers=gao, json={**bind, **change}), 422, "invalid_input")
        assert message in body["errors"][field][0], (change, body)
    prominent = assert_error(client.post(BINDINGS, headers=gao, json={**bind, "grade": "prominent"}), 422)
    assert "grade" in prominent["errors"]  # 突出 runs the general loop: bind general
    no_note = {k: v for k, v in bind.items() if k != "note"}
    assert "note" in assert_error(client.post(BINDINGS, headers=gao, json=no_note), 422)["errors"]
    assert_error(client.post(BINDINGS, headers=gao, json={**bind, "key": "no_such_process"}), 404)
    for headers in (chen, fire):
        assert_error(client.post(BINDINGS, headers=headers, json=bind), 403, "forbidden")
        rollback = {k: bind[k] for k in ("key", "grade", "note")}
        assert_error(client.post(f"{BINDINGS}/rollback", headers=headers, json=rollback), 403)
        assert_error(client.get(f"{BINDINGS}?key={KEY}", headers=headers), 403)
    assert_error(client.post(BINDINGS, json=bind), 401)
    # a 安委办 reads, read-only
    office = client.get(f"{BINDINGS}?key={KEY}", headers=bearer(api_token("he_office")))
    assert office.status_code == 200
    assert office.get_json()["editable"] is False and office.get_json()["items"][0]["can_rollback"] is False


# --- forms --------------------------------------------------------------------------------------------


def test_forms_list_read_and_publish(
    client: FlaskClient, gao: Headers, admin: Headers, app: Flask, world: DemoWorld
) -> None:
    listing = client.get("/api/v1/forms?sector=hazchem", headers=gao)
    assert listing.status_code == 200, listing.get_json()
    forms = {f["form_key"]: f for f in listing.get_json()["items"]}
    assert forms["verify"]["national_version"] == 1 and forms["verify"]["sector_version"] is None
    assert forms["verify"]["shipped"] is True

    current = client.get("/api/v1/forms/verify?sector=hazchem", headers=gao)
    assert current.status_code == 200
    body = current.get_json()
    assert (body["scope"], body["version"], body["draft_revision"]) == ("*", 1, None)
    definition = body["definition"]
    assert [f["name"] for f in definition["fields"]][:2] == ["decision", "opinion"]

    # add a field: the sector's version 1
    added = {
        **definition,
        "fields": [
            *definition["fields"],
            {"name": "site_check", "label": "现场核查情况", "type": "text", "required": False},
        ],
    }
    published = client.post(
        "/api/v1/forms/verify/publish",
        headers=gao,
        json={"sector": "hazchem", "definition": added, "note": "加现场核查"},
    )
    assert published.status_code == 201, published.get_json()
    body = published.get_json()
    assert (body["form_key"], body["scope"], body["version"], body["created"], body["note"]) == (
        "verify",
        "hazchem",
        1,
        True,
        "加现场核查",
    )
    assert published.headers["Location"].endswith("/api/v1/forms/verify?version=1&sector=hazchem")
    reread = client.get("/api/v1/forms/verify?sector=hazchem", headers=gao).get_json()
    assert (reread["version"], reread["scope"]) == (1, "hazchem")
    assert reread["created_by_id"] == world.users["gao_modeler"].id
    assert [f["name"] for f in reread["definition"]["fields"]][-1] == "site_check"
    assert (
        client.get("/api/v1/forms/verify?sector=hazchem&version=1", headers=gao).get_json()["definition"]
        == reread["definition"]
    )
    # the national version is unchanged
    assert client.get("/api/v1/forms/verify", headers=admin).get_json()["version"] == 1

    # drop the field the diagram routes on: refused at that field, logged, nothing published
    dropped = {**added, "fields": [f for f in added["fields"] if f["name"] != "decision"]}
    refused = client.post(
        "/api/v1/forms/verify/publish",
        headers=gao,
        json={"sector": "hazchem", "definition": dropped, "note": "去掉结论"},
    )
    body = assert_error(refused, 422, "invalid_input")
    assert list(body["errors"]) == ["fields.decision"] and "decision" in body["errors"]["fields.decision"][0]
    with _read(app) as session:
        assert [
            e.action for e in design.design_log(session, kind="form", key="verify", sector_code="hazchem")
        ][:2] == ["refused", "published"]
        assert form_versions.latest_form_version(session, "verify", "hazchem").version == 1  # type: ignore[union-attr]

    assert_error(client.get("/api/v1/forms/verify?sector=hazchem&version=7", headers=gao), 404)
    assert_error(client.get("/api/v1/forms/no_such_form?sector=hazchem", headers=gao), 404)
    assert_error(client.get("/api/v1/forms?sector=nowhere", headers=gao), 404)


def test_forms_are_for_the_scope_editors(
    client: FlaskClient, gao: Headers, chen: Headers, fire: Headers, app: Flask
) -> None:
    document = {"title": "整改验收", "fields": [{"name": "x", "label": "x", "type": "text"}]}
    for headers in (chen, fire):
        assert_error(client.get("/api/v1/forms?sector=hazchem", headers=headers), 403)
        assert_error(client.get("/api/v1/forms/verify?sector=hazchem", headers=headers), 403)
        assert_error(
            client.post(
                "/api/v1/forms/verify/publish",
                headers=headers,
                json={"sector": "hazchem", "definition": document, "note": "x"},
            ),
            403,
        )
    # the national forms: system administrators only
    assert_error(client.get("/api/v1/forms", headers=gao), 403)
    assert_error(
        client.post("/api/v1/forms/verify/publish", headers=gao, json={"definition": document, "note": "x"}),
        403,
    )
    # strict bodies
    body = assert_error(
        client.post(
            "/api/v1/forms/verify/publish",
            headers=gao,
            json={"sector": "hazchem", "definition": [], "note": "x"},
        ),
        422,
    )
    assert "definition" in body["errors"]
    body = assert_error(
        client.post(
            "/api/v1/forms/verify/publish",
            headers=gao,
            json={"sector": "hazchem", "definition": document, "note": "x", "draft": 1},
        ),
        422,
    )
    assert "draft" in body["errors"]
    assert_error(client.get("/api/v1/forms"), 401)
    with _read(app) as session:
        assert session.scalars(select(FormVersion).where(FormVersion.scope == "hazchem")).first() is None


# --- policies -----------------------------------------------------------------------------------------


def test_policy_publish_changes_a_value_and_get_shows_it(
    client: FlaskClient, gao: Headers, chen: Headers, admin: Headers, app: Flask, world: DemoWorld
) -> None:
    before = client.get("/api/v1/policies/hazchem", headers=gao)
    assert before.status_code == 200, before.get_json()
    body = before.get_json()
    assert (body["sector"], body["key"], body["version"]) == ("hazchem", "hazchem", None)
    assert body["effective"]["values"][CIRCULAR]["value"] == 10
    assert CIRCULAR in body["effective"]["inherited"]

    document = {
        **body["document"],
        "title": "危险化学品策略配置",
        "values": {
            CIRCULAR: {
                "value": 5,
                "unit": "working_days",
                "label": "逾期后通报（L2）",
                "source": "市安委办要求",
            }
        },
    }
    published = client.post(
        "/api/v1/policies/hazchem/publish",
        headers=gao,
        json={"document": document, "note": "逾期5个工作日即通报"},
    )
    assert published.status_code == 201, published.get_json()
    assert {k: published.get_json()[k] for k in ("sector", "key", "version", "created")} == {
        "sector": "hazchem",
        "key": "hazchem",
        "version": 1,
        "created": True,
    }
    after = client.get("/api/v1/policies/hazchem", headers=gao).get_json()
    assert after["version"] == 1 and after["created_by_id"] == world.users["gao_modeler"].id
    assert after["effective"]["values"][CIRCULAR]["value"] == 5
    assert after["effective"]["overrides"] == [CIRCULAR]
    assert after["document"]["values"] == {CIRCULAR: document["values"][CIRCULAR]}
    with _read(app) as session:
        profile = policy.resolve_policy(session, "hazchem", world.regions["341821100001"].path)
        assert (profile.key, profile.version) == ("hazchem", 1)
        assert policy.policy_value(profile, CIRCULAR).value == 5
        event = design.design_log(session, kind="policy", key="hazchem")[0]
        assert (event.action, event.note) == ("published", "逾期5个工作日即通报")

    # a bad value: refused at it, logged, nothing published
    bad = {**document, "values": {CIRCULAR: {"value": -3, "unit": "fortnights", "label": "x", "source": "x"}}}
    refused = client.post(
        "/api/v1/policies/hazchem/publish", headers=gao, json={"document": bad, "note": "写错了"}
    )
    body = assert_error(refused, 422, "invalid_input")
    assert any(CIRCULAR in key for key in body["errors"]), body
    with _read(app) as session:
        assert design.design_log(session, kind="policy", key="hazchem")[0].action == "refused"
    assert client.get("/api/v1/policies/hazchem", headers=gao).get_json()["version"] == 1

    # who may
    assert_error(client.get("/api/v1/policies/hazchem", headers=chen), 403)
    assert_error(client.get("/api/v1/policies/national", headers=gao), 403)
    assert_error(
        client.post("/api/v1/policies/national/publish", headers=gao, json={"document": {}, "note": "x"}), 403
    )
    assert_error(client.get("/api/v1/policies/nowhere", headers=gao), 404)
    national = client.get("/api/v1/policies/national", headers=admin)
    assert national.status_code == 200 and national.get_json()["sector"] is None
    assert national.get_json()["effective"]["values"][CIRCULAR]["value"] == 10


# --- the answers match the OpenAPI document -------------------------------------------------------------


def test_answers_match_their_documented_schemas(
    diagram: str, client: FlaskClient, gao: Headers, admin: Headers
) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    spec = client.get("/api/v1/openapi.json").get_json()

    def valid(name: str, response: Any, status: int = 200) -> None:
        assert response.status_code == status, (name, response.get_json())
        root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
        jsonschema.Draft202012Validator(root).validate(response.get_json())

    valid(
        "DiagramCheck",
        client.post(CHECK, headers=gao, json={"key": KEY, "sector": "hazchem", "bpmn": diagram}),
    )
    valid("DiagramPublished", publish(client, gao, diagram, bind=True), 201)
    valid("BindingList", client.get(f"{BINDINGS}?key={KEY}", headers=gao))
    valid(
        "Binding",
        client.post(
            BINDINGS, headers=gao, json={"key": KEY, "grade": "general", "version": 1, "note": "固定"}
        ),
    )
    rollback = {"key": KEY, "grade": "general", "note": "撤回"}
    valid("RollbackResult", client.post(f"{BINDINGS}/rollback", headers=gao, json=rollback))
    valid("RollbackResult", client.post(f"{BINDINGS}/rollback", headers=gao, json=rollback))  # binding: null
    valid("FormList", client.get("/api/v1/forms?sector=hazchem", headers=gao))
    form = client.get("/api/v1/forms/verify?sector=hazchem", headers=gao)
    valid("FormDocument", form)
    definition = {**form.get_json()["definition"], "title": "整改验收（危化）"}
    publish_form = {"sector": "hazchem", "definition": definition, "note": "改标题"}
    valid("FormPublished", client.post("/api/v1/forms/verify/publish", headers=gao, json=publish_form), 201)
    valid("FormDocument", client.get("/api/v1/forms/progress_update", headers=admin))
    policy_now = client.get("/api/v1/policies/hazchem", headers=gao)
    valid("Policy", policy_now)
    document = {**policy_now.get_json()["document"], "title": "危化策略配置"}
    valid(
        "PolicyPublished",
        client.post(
            "/api/v1/policies/hazchem/publish", headers=gao, json={"document": document, "note": "标题"}
        ),
        201,
    )
    valid("Policy", client.get("/api/v1/policies/national", headers=admin))
    valid("Error", publish(client, gao, with_script_task(diagram)), 422)
