"""/design/diagrams: the modeler page and its JSON endpoints (web/pages/design_diagrams.py).

高远 (gao_modeler) is the process administrator of 郎溪县应急管理局, which leads hazchem,
industry_trade and mines. Each test starts from his sector's copy of the 一般隐患 loop,
``hazard_general_hazchem``, made through :func:`engine.design.copy_process_for_sector` and committed
(the app runs on its own engine); ``copy`` deletes its drafts, design log rows and published
versions afterwards. Only editors of the owning sector may use any route: a 部门审核人员 and the
process administrator of a department that does not lead the sector get 403 everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from werkzeug.test import TestResponse

from engine import db as dbmod
from engine import definitions
from engine import design
from engine.demo import DemoWorld
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import Department
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import Membership
from engine.models import Role
from engine.models import User
from web.session import app_state

MODELER = "gao_modeler"
KEY = "hazard_general_hazchem"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
FIRE_ADMIN = "fire_modeler_test"
JSON = {"Accept": "application/json"}


def _forget(engine: Engine, keys: tuple[str, ...]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(DesignEvent).where(DesignEvent.key.in_(keys)))
        conn.execute(delete(DesignDraft).where(DesignDraft.key.in_(keys)))
        conn.execute(delete(DefinitionBindingHistory).where(DefinitionBindingHistory.process_key.in_(keys)))
        conn.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key.in_(keys)))
        conn.execute(delete(DefinitionVersion).where(DefinitionVersion.process_key.in_(keys)))


@pytest.fixture
def copy(app: Flask, world: DemoWorld, engine: Engine) -> Iterator[str]:
    """gao_modeler's draft copy of hazard_general for hazchem (committed; removed afterwards)."""
    keys = (KEY, "hazard_major_mines")
    _forget(engine, keys)
    with app_state(app).sessions.begin() as session:
        actor = world.actor(session, MODELER)
        design.copy_process_for_sector(session, actor, source_key="hazard_general", sector_code="hazchem")
    yield KEY
    _forget(engine, keys)


@pytest.fixture
def fire_admin(engine: Engine, world: DemoWorld, demo_passwords: str) -> Iterator[str]:
    """A process administrator of 郎溪县消防救援大队 (leads fire, only co-supervises hazchem)."""
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        department = session.scalars(select(Department).where(Department.name == "郎溪县消防救援大队")).one()
        user = User(username=FIRE_ADMIN, display_name="消防流程管理员（测试）", password_hash=None)
        session.add(user)
        session.flush()
        user.password_hash = session.scalars(select(User.password_hash).where(User.username == MODELER)).one()
        session.add(Membership(user_id=user.id, role=Role.PROCESS_ADMIN, department_id=department.id))
    yield FIRE_ADMIN
    with factory.begin() as session:
        user = session.scalars(select(User).where(User.username == FIRE_ADMIN)).one()
        session.execute(delete(Membership).where(Membership.user_id == user.id))
        session.delete(user)
    del demo_passwords


def post_json(client: FlaskClient, url: str, payload: Any, token: str) -> TestResponse:
    return client.post(
        url,
        data=payload if isinstance(payload, str | bytes) else json.dumps(payload),
        content_type="application/json",
        headers={"X-CSRF-Token": token, **JSON},
    )


def source_xml(client: FlaskClient, key: str = KEY) -> str:
    response = client.get(f"/design/diagrams/{key}/source.bpmn")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def edited(xml: str, change: Callable[[Any], None]) -> str:
    root = etree.fromstring(xml.encode("utf-8"))
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode("utf-8")


def task(root: Any, ident: str) -> Any:
    return root.find(f".//bpmn:userTask[@id='{ident}']", NS)


def set_property(root: Any, ident: str, name: str, value: str) -> None:
    for prop in task(root, ident).iterfind(".//spiffworkflow:property", NS):
        if prop.get("name") == name:
            prop.set("value", value)
            return
    raise AssertionError(f"{ident} has no property {name}")


def draft_row(app: Flask) -> DesignDraft | None:
    with app_state(app).sessions() as session:
        return design.get_draft(session, "diagram", KEY, "hazchem")


def events(app: Flask, action: str | None = None) -> int:
    query = select(func.count(DesignEvent.id)).where(DesignEvent.key == KEY)
    if action:
        query = query.where(DesignEvent.action == action)
    with app_state(app).sessions() as session:
        return int(session.scalar(query) or 0)


# --- the page ---------------------------------------------------------------------------------------


def test_editor_page_for_the_lead_department(
    client: FlaskClient, login: Callable[..., Any], copy: str
) -> None:
    login(client, MODELER)
    response = client.get(f"/design/diagrams/{copy}/edit")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="hl-modeler"' in html
    assert f'data-key="{KEY}"' in html
    assert 'data-draft-revision="1"' in html
    assert 'data-published-version=""' in html
    assert "一般隐患排查治理闭环（危险化学品）" in html
    for label in ("保存草稿", "检查", "发布", "导入 .bpmn", "导出 .bpmn", "放弃草稿"):
        assert label in html
    # the modeler bundle: vendored bpmn-js, then our script; the moddle descriptor by URL
    assert re.search(r'src="/static/vendor/bpmn-js/bpmn-modeler\.production\.min\.js\?v=\w+"', html)
    assert re.search(r'src="/static/js/modeler\.js\?v=\w+"', html)
    assert re.search(r'href="/static/css/modeler\.css\?v=\w+"', html)
    assert re.search(r'data-moddle-url="/static/js/spiffworkflow-moddle\.json\?v=\w+"', html)
    assert 'data-vocabulary-url="/design/vocabulary.json?sector=hazchem"' in html
    assert "<script>" not in html  # the CSP forbids inline script


def test_source_and_export(client: FlaskClient, login: Callable[..., Any], copy: str) -> None:
    login(client, MODELER)
    response = client.get(f"/design/diagrams/{copy}/source.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert response.headers["X-Draft-Revision"] == "1"
    root = etree.fromstring(response.get_data())
    assert [p.get("id") for p in root.iterfind("bpmn:process", NS)] == [KEY]
    exported = client.get(f"/design/diagrams/{copy}/export.bpmn")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"] == f'attachment; filename="{KEY}.bpmn"'
    assert exported.get_data() == response.get_data()
    assert client.get("/design/diagrams/no_such_process/edit").status_code == 404


def test_published_process_opens_on_its_latest_version(
    client: FlaskClient, login: Callable[..., Any], copy: str, csrf: Callable[[FlaskClient], str]
) -> None:
    login(client, MODELER)
    xml = source_xml(client)
    published = post_json(
        client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": 1}, csrf(client)
    )
    assert published.status_code == 200, published.get_json()
    html = client.get(f"/design/diagrams/{copy}/edit").get_data(as_text=True)
    assert 'data-draft-revision=""' in html
    assert 'data-published-version="1"' in html
    assert client.get(f"/design/diagrams/{copy}/source.bpmn").headers["X-Draft-Revision"] == ""


# --- permissions ------------------------------------------------------------------------------------

ROUTES = (
    ("GET", "/design/diagrams/{key}/edit"),
    ("GET", "/design/diagrams/{key}/source.bpmn"),
    ("GET", "/design/diagrams/{key}/export.bpmn"),
    ("POST", "/design/diagrams/{key}/draft"),
    ("POST", "/design/diagrams/{key}/draft/discard"),
    ("POST", "/design/diagrams/{key}/check"),
    ("POST", "/design/diagrams/{key}/publish"),
    ("GET", "/design/vocabulary.json?sector=hazchem"),
)


def _call(client: FlaskClient, method: str, url: str, token: str, xml: str) -> TestResponse:
    if method == "GET":
        return client.get(url)
    return post_json(client, url, {"xml": xml, "revision": 1, "note": "x"}, token)


@pytest.mark.parametrize("username", ["wu_reviewer", FIRE_ADMIN])
def test_only_the_lead_department_may_edit(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf: Callable[[FlaskClient], str],
    copy: str,
    fire_admin: str,
    app: Flask,
    username: str,
) -> None:
    # a 部门审核人员 of the lead department, and the process administrator of 消防 (which only
    # co-supervises hazchem): 403 on every route, the page included, and nothing changes
    del fire_admin
    login(client, MODELER)
    xml = source_xml(client)
    client.post("/logout", data={"csrf_token": csrf(client)})
    assert login(client, username).status_code == 302
    token = csrf(client)
    before = events(app)
    for method, pattern in ROUTES:
        response = _call(client, method, pattern.format(key=copy), token, xml)
        assert response.status_code == 403, (username, method, pattern, response.status_code)
    assert events(app) == before
    draft = draft_row(app)
    assert draft is not None and draft.revision == 1


def test_national_process_is_for_system_administrators(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], world: DemoWorld
) -> None:
    del world
    login(client, MODELER)
    assert client.get("/design/diagrams/hazard_general/edit").status_code == 403
    assert client.get("/design/vocabulary.json").status_code == 403
    assert client.get("/design/vocabulary.json?sector=fire").status_code == 403
    client.post("/logout", data={"csrf_token": csrf(client)})
    login(client, "admin")
    page = client.get("/design/diagrams/hazard_general/edit")
    assert page.status_code == 200
    assert "全国通用" in page.get_data(as_text=True)
    assert 'data-vocabulary-url="/design/vocabulary.json"' in page.get_data(as_text=True)
    assert client.get("/design/vocabulary.json").status_code == 200


def test_anonymous_and_csrf(client: FlaskClient, login: Callable[..., Any], copy: str) -> None:
    response = client.get(f"/design/diagrams/{copy}/edit")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get(f"/design/diagrams/{copy}/source.bpmn", headers=JSON).status_code == 401
    login(client, MODELER)
    response = client.post(
        f"/design/diagrams/{copy}/draft", data=json.dumps({"xml": "<x/>"}), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.get_json(silent=True) is None or response.get_json()["code"] == "csrf_failed"


# --- drafts -----------------------------------------------------------------------------------------


def test_save_draft_and_conflict(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str, app: Flask
) -> None:
    login(client, MODELER)
    token = csrf(client)
    xml = edited(
        source_xml(client), lambda root: set_property(root, "rectify", "candidate_role", "safety_officer")
    )
    saved = post_json(client, f"/design/diagrams/{copy}/draft", {"xml": xml, "revision": 1}, token)
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["revision"] == 2
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", body["saved_at_text"])
    assert body["saved_by"] == "高远（县应急局流程管理员）"
    assert 'value="safety_officer"' in source_xml(client)
    # a second administrator still on revision 1: refused, nothing overwritten
    stale = edited(xml, lambda root: set_property(root, "rectify", "candidate_role", "principal"))
    conflict = post_json(client, f"/design/diagrams/{copy}/draft", {"xml": stale, "revision": 1}, token)
    assert conflict.status_code == 409
    assert "请重新加载" in conflict.get_json()["message"]
    draft = draft_row(app)
    assert draft is not None and draft.revision == 2
    assert 'value="principal"' not in draft.content
    # and a "new draft" while one exists is a conflict too
    assert post_json(client, f"/design/diagrams/{copy}/draft", {"xml": xml}, token).status_code == 409
    assert events(app, "draft_saved") == 2  # the copy, and revision 2


BIG = '<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="{}"><!-- {} --></bpmn:definitions>'.format(
    NS["bpmn"], "x" * (definitions.MAX_BPMN_BYTES + 1)
)
BAD_BODIES = {
    "not json": "this is not json",
    "json array": "[1, 2]",
    "no xml": {"revision": 1},
    "xml not text": {"xml": 42, "revision": 1},
    "not xml": {"xml": "隐患流程图", "revision": 1},
    "not bpmn": {"xml": "<html><body>hello</body></html>", "revision": 1},
    "entity": {
        "xml": '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]>'
        f'<bpmn:definitions xmlns:bpmn="{NS["bpmn"]}">&e;</bpmn:definitions>',
        "revision": 1,
    },
    "too large": {"xml": BIG, "revision": 1},
    "bad revision": {"xml": f'<bpmn:definitions xmlns:bpmn="{NS["bpmn"]}"/>', "revision": "one"},
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_bodies_are_refused_with_422(
    client: FlaskClient,
    login: Callable[..., Any],
    csrf: Callable[[FlaskClient], str],
    copy: str,
    app: Flask,
    case: str,
) -> None:
    login(client, MODELER)
    token = csrf(client)
    before = events(app)
    endpoints = ("draft", "publish") if case == "bad revision" else ("draft", "check", "publish")
    for endpoint in endpoints:
        response = post_json(client, f"/design/diagrams/{copy}/{endpoint}", BAD_BODIES[case], token)
        assert response.status_code == 422, (endpoint, response.status_code)
        message = response.get_json()["message"]
        assert re.search(r"[\u4e00-\u9fff]", message), message  # a Chinese message
    assert events(app) == before
    draft = draft_row(app)
    assert draft is not None and draft.revision == 1
    with app_state(app).sessions() as session:
        assert definitions.latest_version(session, KEY) is None


def test_oversized_message_names_the_limit(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str
) -> None:
    login(client, MODELER)
    response = post_json(client, f"/design/diagrams/{copy}/draft", BAD_BODIES["too large"], csrf(client))
    assert response.get_json()["message"] == "流程图文件超过 2 MB 上限"


def test_discard(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str, app: Flask
) -> None:
    login(client, MODELER)
    token = csrf(client)
    stale = post_json(client, f"/design/diagrams/{copy}/draft/discard", {"revision": 7}, token)
    assert stale.status_code == 409
    assert draft_row(app) is not None
    response = post_json(client, f"/design/diagrams/{copy}/draft/discard", {"revision": 1}, token)
    assert response.status_code == 200
    # never published: nothing is left to edit, back to the overview
    assert response.get_json() == {"discarded": True, "redirect": "/design"}
    assert draft_row(app) is None
    assert events(app, "draft_discarded") == 1
    assert client.get(f"/design/diagrams/{copy}/edit").status_code == 404


def test_discard_after_publishing_returns_to_the_editor(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str
) -> None:
    login(client, MODELER)
    token = csrf(client)
    xml = source_xml(client)
    assert (
        post_json(client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": 1}, token).status_code
        == 200
    )
    changed = edited(xml, lambda root: set_property(root, "verify", "candidate_role", "principal"))
    assert (
        post_json(client, f"/design/diagrams/{copy}/draft", {"xml": changed}, token).get_json()["revision"]
        == 1
    )
    # the no-script form post works too
    response = client.post(
        f"/design/diagrams/{copy}/draft/discard", data={"csrf_token": token, "revision": "1"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/design/diagrams/{copy}/edit")
    assert 'value="principal"' not in source_xml(client)


# --- check and publish --------------------------------------------------------------------------------


def test_check_reports_the_offending_element(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str, app: Flask
) -> None:
    login(client, MODELER)
    token = csrf(client)
    xml = source_xml(client)
    ok = post_json(client, f"/design/diagrams/{copy}/check", {"xml": xml}, token)
    assert ok.status_code == 200
    assert ok.get_json()["errors"] == []
    # the 审核把关销号 done by the enterprise: refused at the task
    wrong = edited(xml, lambda root: set_property(root, "closure_review", "org_scope", "enterprise"))
    body = post_json(client, f"/design/diagrams/{copy}/check", {"xml": wrong}, token).get_json()
    assert [e["element"] for e in body["errors"]] == ["closure_review"]
    assert "部门" in body["errors"][0]["message"]
    # an unknown role
    role = edited(xml, lambda root: set_property(root, "rectify", "candidate_role", "janitor"))
    body = post_json(client, f"/design/diagrams/{copy}/check", {"xml": role}, token).get_json()
    assert body["errors"] == [{"element": "rectify", "message": "未知的候选角色 'janitor'"}]
    # an unsafe condition on a flow
    unsafe = edited(
        xml,
        lambda root: root.find(".//bpmn:conditionExpression", NS).__setattr__("text", "__import__('os')"),
    )
    body = post_json(client, f"/design/diagrams/{copy}/check", {"xml": unsafe}, token).get_json()
    assert body["errors"][0]["element"].startswith("flow_")
    assert "不安全" in body["errors"][0]["message"]
    # checking writes nothing
    assert events(app) == 1


def test_publish_refused_then_published(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str, app: Flask
) -> None:
    login(client, MODELER)
    token = csrf(client)
    xml = source_xml(client)

    def drop_closure_review(root: Any) -> None:
        node = task(root, "closure_review")
        node.getparent().remove(node)

    broken = edited(xml, drop_closure_review)
    refused = post_json(
        client,
        f"/design/diagrams/{copy}/publish",
        {"xml": broken, "note": "去掉销号审核", "revision": 1},
        token,
    )
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["message"] == "未通过发布检查，未发布"
    assert body["errors"] and all(e["message"] for e in body["errors"])
    assert events(app, "refused") == 1
    with app_state(app).sessions() as session:
        assert definitions.latest_version(session, KEY) is None
        refusal = session.scalars(
            select(DesignEvent).where(DesignEvent.key == KEY, DesignEvent.action == "refused")
        ).one()
        assert refusal.details and refusal.details["errors"]
    assert draft_row(app) is not None  # the draft stays

    # a stale revision: 409, nothing published
    stale = post_json(client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": 5}, token)
    assert stale.status_code == 409

    published = post_json(
        client,
        f"/design/diagrams/{copy}/publish",
        {"xml": xml, "note": "危化行业一般隐患闭环", "revision": 1},
        token,
    )
    assert published.status_code == 200, published.get_json()
    body = published.get_json()
    assert body["version"] == 1 and body["created"] is True
    assert body["versions_url"] == f"/design/diagrams/{KEY}/versions"
    assert draft_row(app) is None
    with app_state(app).sessions() as session:
        version = definitions.latest_version(session, KEY)
        assert version is not None
        assert (version.sector_code, version.note) == ("hazchem", "危化行业一般隐患闭环")
    # unchanged content: the same version
    again = post_json(client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": None}, token)
    assert again.status_code == 200
    assert again.get_json()["version"] == 1 and again.get_json()["created"] is False


# --- a sector's copy ----------------------------------------------------------------------------------


def test_new_copy_form(
    client: FlaskClient, login: Callable[..., Any], csrf: Callable[[FlaskClient], str], copy: str, app: Flask
) -> None:
    login(client, MODELER)
    page = client.get("/design/diagrams/new?sector=mines&source_key=hazard_major")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<option value="mines" selected>' in html
    assert '<option value="fire"' not in html  # not his sector
    token = csrf(client)
    response = client.post(
        "/design/diagrams/new", data={"csrf_token": token, "source_key": "hazard_major", "sector": "mines"}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/design/diagrams/hazard_major_mines/edit")
    assert 'data-key="hazard_major_mines"' in client.get("/design/diagrams/hazard_major_mines/edit").get_data(
        as_text=True
    )
    # the copy exists already: back to the form with the message
    again = client.post(
        "/design/diagrams/new",
        data={"csrf_token": token, "source_key": "hazard_general", "sector": "hazchem"},
        follow_redirects=True,
    )
    assert "已存在" in again.get_data(as_text=True)
    # posted from the design overview (helper C2's copy form): back there
    overview = client.post(
        "/design/diagrams/new",
        data={"csrf_token": token, "source_key": "hazard_general", "sector": "hazchem"},
        headers={"Referer": "http://localhost/design"},
    )
    assert overview.status_code == 302 and overview.headers["Location"] == "/design"
    # a sector he does not lead
    forbidden = client.post(
        "/design/diagrams/new", data={"csrf_token": token, "source_key": "hazard_general", "sector": "fire"}
    )
    assert forbidden.status_code == 403
    del app, copy


# --- the panel's vocabulary -----------------------------------------------------------------------------


def test_vocabulary(client: FlaskClient, login: Callable[..., Any], world: DemoWorld) -> None:
    del world
    login(client, MODELER)
    response = client.get("/design/vocabulary.json?sector=hazchem")
    assert response.status_code == 200
    vocab = response.get_json()
    roles = {r["value"]: r["label"] for r in vocab["roles"]}
    assert roles["rectifier"] == "整改责任人"
    assert roles["dept_reviewer"] == "部门审核人员"
    assert "process_admin" not in roles and "sys_admin" not in roles
    assert vocab["org_scopes"] == [
        {"value": "enterprise", "label": "企业"},
        {"value": "department", "label": "部门"},
        {"value": "region", "label": "属地"},
    ]
    forms = {f["value"]: f["label"] for f in vocab["forms"]}
    assert forms["rectify"] == "整改完成情况"
    assert "closure_review" in forms
    assert "progress_update" not in forms  # an action form, not a task form
    statuses = {s["value"]: s["label"] for s in vocab["statuses"]}
    assert statuses["rectifying"] == "整改中"
    assert "closed" not in statuses
    assert "listing" in statuses  # used by the 挂牌督办 track
    due = {d["value"]: d["label"] for d in vocab["due_variables"]}
    assert due["deadline_at"] == "整改期限"
    assert due["review_due_at"] == "审核期限"
    assert set(due) >= {"filing_due_at", "delist_due_at", "announce_due_at", "acceptance_due_at"}
    profiles = {p["value"]: p for p in vocab["policy_profiles"]}
    assert "national" in profiles and "fire" not in profiles  # the fire profile is another sector's
    assert profiles["national"]["label"]
    assert {s["value"] for s in vocab["statutory"]} == set(definitions.STATUTORY_FORMS)
    handlers = {h["value"]: h for h in vocab["handlers"]}
    assert "escalate" in handlers and "compute_deadline" in handlers
    assert vocab["required"] == list(definitions.REQUIRED_USER_TASK_PROPERTIES)
    assert client.get("/design/vocabulary.json?sector=nowhere").status_code == 404


# --- binding on the first publish -------------------------------------------------------------------


def test_first_publish_of_a_sector_copy_can_bind_it(
    client: FlaskClient, login: Callable[..., Any], copy: str, csrf: Callable[[FlaskClient], str], app: Flask
) -> None:
    login(client, MODELER)
    page = client.get(f"/design/diagrams/{copy}/edit").get_data(as_text=True)
    assert 'name="bind"' in page  # offered: the hazchem copy of the general loop is bound nowhere
    token = csrf(client)
    xml = source_xml(client)
    refused = post_json(
        client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": 1, "bind": "yes"}, token
    )
    assert refused.status_code == 422
    assert "bind" in refused.get_json()["message"]
    published = post_json(
        client, f"/design/diagrams/{copy}/publish", {"xml": xml, "revision": 1, "bind": True}, token
    )
    assert published.status_code == 200, published.get_json()
    with app_state(app).sessions() as session:
        chosen = definitions.resolve_definition(session, grade="general", sector_code="hazchem")
        assert (chosen.process_key, chosen.version) == (copy, 1)
        assert definitions.resolve_definition(session, grade="general", sector_code="fire").process_key == (
            "hazard_general"
        )
    # once bound, the offer is gone
    assert 'name="bind"' not in client.get(f"/design/diagrams/{copy}/edit").get_data(as_text=True)
