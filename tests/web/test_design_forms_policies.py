"""/design: the overview, the form editor and the policy editor of a sector's process administrator.

Pages are read and posted the way a browser does: ``form_data`` collects the named controls of a
page's form (checked boxes, selected options, textareas; not the ``<template>`` row), a test
changes a few and posts them back. Everything is committed (the app runs on its own engine):
``forget_designs`` removes the drafts, form versions, policy profiles and design events a test
made.
"""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine import design
from engine import form_versions
from engine import policy
from engine.demo import DemoWorld
from engine.models import PolicyProfile
from engine.models.design import FormVersion
from tests.web.test_admin import as_user
from tests.web.test_admin import csrf_of
from tests.web.test_admin import text

Login = Callable[..., object]
pytestmark = pytest.mark.usefixtures("forget_designs")

PLAN = "/design/forms/rectification_plan?sector=hazchem"
POLICY = "/design/policy?sector=hazchem"
CIRCULAR = "escalation_circular_after_overdue"


# --- reading a page's form like a browser -----------------------------------------------------------


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.in_template = 0
        self.pairs: list[tuple[str, str]] = []
        self.select: dict[str, str | None] | None = None
        self.textarea: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self.in_template += 1
        if self.in_template:
            return
        if tag == "option" and self.select is not None:
            value = a.get("value") or ""
            if self.select["first"] is None:
                self.select["first"] = value
            if "selected" in a:
                self.select["chosen"] = value
            return
        if "disabled" in a or not a.get("name"):
            return
        name = str(a["name"])
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            self.pairs.append((name, a.get("value") or ("on" if kind in ("checkbox", "radio") else "")))
        elif tag == "select":
            self.select = {"name": name, "first": None, "chosen": None}
        elif tag == "textarea":
            self.textarea = [name, ""]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "template" and self.in_template:
            self.in_template -= 1
        elif tag == "form":
            self.inside = False
        elif tag == "select" and self.select is not None:
            value = self.select["chosen"] if self.select["chosen"] is not None else self.select["first"]
            self.pairs.append((str(self.select["name"]), value or ""))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            name, value = self.textarea
            self.pairs.append((name, value[1:] if value.startswith("\n") else value))
            self.textarea = None


def form_data(html: str, form_id: str) -> MultiDict[str, str]:
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.pairs, f"no form #{form_id} in the page"
    return MultiDict(reader.pairs)


def replace(data: MultiDict[str, str], **values: str | list[str]) -> MultiDict[str, str]:
    """``data`` with ``name=value`` replaced (``-`` in names written as ``__``)."""
    for name, value in values.items():
        key = name.replace("__", "-")
        data.setlist(key, value if isinstance(value, list) else [value])
    return data


def submit(client: FlaskClient, url: str, data: MultiDict[str, str], action: str) -> TestResponse:
    data = MultiDict(data)
    data.setlist("action", [action])
    data.setlist("csrf_token", [csrf_of(client)])
    return client.post(url, data=data)


def row_ids(data: MultiDict[str, str]) -> list[str]:
    return data.getlist("row")


def row_with(data: MultiDict[str, str], name: str) -> str:
    return next(r for r in row_ids(data) if data.get(f"fields-{r}-name") == name)


def block(html: str, element_id: str) -> str:
    """The markup of the element with ``id`` up to the next field row, rung or table row."""
    start = html.index(f'id="{element_id}"')
    ends = ('<li class="design-field', '<li class="design-rung', "<tr")
    following = [i for i in (html.find(end, start + 1) for end in ends) if i > 0]
    return html[start : min(following) if following else len(html)]


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def gao(client: FlaskClient, login: Login) -> FlaskClient:
    """郎溪县应急管理局's process administrator: the lead department of hazchem, industry_trade, mines."""
    return as_user(client, login, "gao_modeler")


def chem_path(world: DemoWorld) -> str:
    return world.regions["341821100001"].path


# --- who may come in ------------------------------------------------------------------------------------


def test_overview_lists_the_sectors_of_the_lead_department(gao: FlaskClient) -> None:
    response = gao.get("/design")
    assert response.status_code == 200
    html = text(response)
    for name in ("危险化学品", "工贸", "非煤矿山"):
        assert name in html
    assert "消防安全" not in html and "全国默认" not in html
    assert 'href="/design/forms?sector=hazchem"' in html
    assert 'href="/design/policy?sector=hazchem"' in html
    assert 'action="/design/diagrams/new"' in html
    assert '<option value="hazard_general">' in html and '<option value="hazard_major">' in html
    assert "设计日志" in html


@pytest.mark.parametrize(
    ("username", "url", "status"),
    [
        ("gao_modeler", "/design/forms?sector=fire", 403),  # lx_emergency does not lead fire
        ("gao_modeler", "/design/forms/rectification_plan?sector=fire", 403),
        ("gao_modeler", "/design/policy?sector=fire", 403),
        ("gao_modeler", "/design/policy?sector=*", 403),  # national: system administrators only
        ("gao_modeler", "/design/forms?sector=*", 403),
        ("wu_reviewer", "/design", 403),
        ("wu_reviewer", "/design/forms?sector=hazchem", 403),
        ("wu_reviewer", "/design/policy?sector=hazchem", 403),
        ("gao_modeler", "/design/forms?sector=hazchem", 200),
        ("gao_modeler", PLAN, 200),
        ("gao_modeler", POLICY, 200),
        ("admin", "/design", 200),
        ("admin", "/design/forms?sector=*", 200),
        ("admin", "/design/forms/rectification_plan?sector=*", 200),
        ("admin", "/design/policy?sector=*", 200),
        ("admin", "/design/policy?sector=fire", 200),
    ],
)
def test_who_may_edit(client: FlaskClient, login: Login, username: str, url: str, status: int) -> None:
    as_user(client, login, username)
    assert client.get(url).status_code == status


def test_a_non_lead_department_cannot_post(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    response = gao.post(
        "/design/forms/rectification_plan?sector=fire",
        data={"csrf_token": csrf_of(gao), "action": "save", "title": "x", "row": "0", "fields-0-name": "a"},
    )
    assert response.status_code == 403
    response = gao.post("/design/policy?sector=fire", data={"csrf_token": csrf_of(gao), "action": "publish"})
    assert response.status_code == 403
    with committed() as session:
        assert design.get_draft(session, "form", "rectification_plan", "fire") is None


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    response = client.get(POLICY)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_system_administrator_sees_the_national_scope(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    html = text(client.get("/design"))
    assert "全国默认" in html and 'href="/design/policy?sector=*"' in html
    page = text(client.get("/design/policy?sector=*"))
    assert "全国默认策略配置" in page and "覆盖" not in page.split("策略值", 1)[1].split("</thead>", 1)[0]


# --- the form editor ----------------------------------------------------------------------------------


def test_form_editor_round_trip(gao: FlaskClient, committed: sessionmaker[Session], world: DemoWorld) -> None:
    page = text(gao.get(PLAN))
    assert "整改方案（五落实）" in page and 'value="responsible_person"' in page
    data = form_data(page, "design-form-editor")
    assert len(row_ids(data)) == 6 and data["revision"] == ""

    # 添加字段 without script: the server adds a blank row
    added = submit(gao, PLAN, data, "add")
    assert added.status_code == 200
    data = form_data(text(added), "design-form-editor")
    new = row_ids(data)[-1]
    assert len(row_ids(data)) == 7 and data[f"fields-{new}-name"] == ""
    replace(data, **{f"fields__{new}__name": "before_photos", f"fields__{new}__label": "整改前照片"})
    replace(data, **{f"fields__{new}__type": "photo", f"fields__{new}__phase": "before"})
    replace(data, **{f"fields__{new}__max_count": "5", f"fields__{new}__required": "1"})

    saved = submit(gao, PLAN, data, "save")
    assert saved.status_code == 302, text(saved)
    page = text(gao.get(PLAN))
    assert "有草稿" in page and 'value="before_photos"' in page and 'value="整改前照片"' in page
    data = form_data(page, "design-form-editor")
    assert data["revision"] == "1"
    assert data[f"fields-{row_with(data, 'before_photos')}-type"] == "photo"
    with committed() as session:
        assert session.scalars(select(FormVersion).where(FormVersion.scope == "hazchem")).first() is None

    replace(data, note="增加整改前照片")
    published = submit(gao, PLAN, data, "publish")
    assert published.status_code == 302, text(published)
    page = text(gao.get(PLAN))
    assert "无草稿" in page and "增加整改前照片" in page
    with committed() as session:
        version = session.scalars(
            select(FormVersion).where(
                FormVersion.form_key == "rectification_plan", FormVersion.scope == "hazchem"
            )
        ).one()
        assert version.version == 1 and version.sector_code == "hazchem"
        assert version.created_by_id == world.users["gao_modeler"].id and version.note == "增加整改前照片"
        photo = next(f for f in version.content["fields"] if f["name"] == "before_photos")
        assert photo == {
            "name": "before_photos",
            "label": "整改前照片",
            "type": "photo",
            "required": True,
            "phase": "before",
            "max_count": 5,
        }
        assert [f["name"] for f in version.content["fields"]][:6] == [
            "responsible_person",
            "measures",
            "funds",
            "due_date",
            "contingency_plan",
            "interim_measures",
        ]
        assert design.get_draft(session, "form", "rectification_plan", "hazchem") is None
        latest = form_versions.latest_form_version(session, "rectification_plan", "hazchem")
        assert latest is not None and latest.id == version.id
        national = form_versions.latest_form_version(session, "rectification_plan", "mines")
        assert national is not None and national.scope == "*"
        actions = [
            e.action
            for e in design.design_log(session, kind="form", key="rectification_plan", sector_code="hazchem")
        ]
        assert actions == ["published", "draft_saved"]


def test_rows_move_and_go_without_script(gao: FlaskClient) -> None:
    data = form_data(text(gao.get(PLAN)), "design-form-editor")
    first, second = row_ids(data)[:2]
    moved = form_data(text(submit(gao, PLAN, data, f"down:{first}")), "design-form-editor")
    assert row_ids(moved)[:2] == [second, first]
    removed = form_data(text(submit(gao, PLAN, moved, f"remove:{first}")), "design-form-editor")
    assert first not in row_ids(removed) and len(row_ids(removed)) == 5


def test_bad_fields_are_refused_on_their_rows(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    data = form_data(text(gao.get(PLAN)), "design-form-editor")
    rows = row_ids(data)
    measures, funds = row_with(data, "measures"), row_with(data, "funds")
    replace(data, **{f"fields__{funds}__name": "measures"})  # duplicate of the row above
    replace(data, **{f"fields__{rows[-1]}__name": "Bad Name", f"fields__{rows[-1]}__label": "我输入的标签"})
    data.add("row", "90")
    replace(data, fields__90__name="stop_production", fields__90__label="停产情况", fields__90__type="choice")

    for action in ("publish", "preview"):
        response = submit(gao, PLAN, data, action)
        assert response.status_code == 422, action
        html = text(response)
        assert "字段名 measures 重复" in block(html, f"field-{funds}")
        assert "字段名 measures 重复" not in block(html, f"field-{measures}")
        assert "字段名 name 必须由小写字母开头" in block(html, f"field-{rows[-1]}")
        assert "选项 options 必须是非空列表" in block(html, "field-90")
        assert 'value="Bad Name"' in html and 'value="我输入的标签"' in html and 'value="停产情况"' in html
    with committed() as session:
        assert session.scalars(select(FormVersion).where(FormVersion.scope == "hazchem")).first() is None
        assert design.get_draft(session, "form", "rectification_plan", "hazchem") is None


def test_a_routed_field_cannot_go(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    url = "/design/forms/verify?sector=hazchem"
    page = text(gao.get(url))
    assert "流程路由" in page
    data = form_data(page, "design-form-editor")
    decision = row_with(data, "decision")
    replace(data, **{f"fields__{decision}__options": "pass=通过\nredo=重做"})
    response = submit(gao, url, data, "publish")
    assert response.status_code == 422
    assert "选项值必须保持为" in block(text(response), f"field-{decision}")
    with committed() as session:
        assert session.scalars(select(FormVersion).where(FormVersion.scope == "hazchem")).first() is None
        refused = design.design_log(session, kind="form", key="verify", sector_code="hazchem")
        assert [e.action for e in refused] == ["refused"]


def test_preview_renders_the_form_as_the_rectifier_sees_it(gao: FlaskClient) -> None:
    data = form_data(text(gao.get(PLAN)), "design-form-editor")
    response = submit(gao, PLAN, data, "preview")
    assert response.status_code == 200
    preview = text(response).split('id="preview"', 1)[1]
    assert 'id="f-responsible_person"' in preview and 'type="date" id="f-due_date"' in preview


def test_preset_loads_into_the_editor(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    page = text(gao.get(PLAN))
    for label in design.PLAN_PRESET_LABELS.values():
        assert label in page
    data = replace(form_data(page, "design-form-editor"), preset="five_in_place")
    response = submit(gao, PLAN, data, "preset")
    assert response.status_code == 200
    html = text(response)
    assert (
        "已套用模板" in html
        and 'value="责任到位：整改责任人"' in html
        and 'value="整改方案（五到位）"' in html
    )
    with committed() as session:
        assert design.get_draft(session, "form", "rectification_plan", "hazchem") is None
    assert submit(gao, PLAN, form_data(html, "design-form-editor"), "save").status_code == 302
    with committed() as session:
        document, revision, _version = design.form_document(session, "rectification_plan", "hazchem")
        assert revision == 1 and document["title"] == "整改方案（五到位）"
        assert [f["label"] for f in document["fields"]][0] == "责任到位：整改责任人"
    # forms other than plans offer no presets
    assert "套用模板" not in text(gao.get("/design/forms/verify?sector=hazchem"))


def test_stale_draft_is_a_conflict_and_keeps_what_was_typed(
    gao: FlaskClient, client: FlaskClient, committed: sessionmaker[Session]
) -> None:
    stale = form_data(text(gao.get(PLAN)), "design-form-editor")  # loaded before anyone saved
    fresh = replace(MultiDict(stale), title="整改方案（第一位管理员）")
    assert submit(gao, PLAN, fresh, "save").status_code == 302

    replace(stale, title="整改方案（第二位管理员）")
    for action in ("save", "publish"):
        response = submit(gao, PLAN, stale, action)
        assert response.status_code == 409, action
        html = text(response)
        assert "保存冲突" in html and "请重新加载" in html
        assert 'value="整改方案（第二位管理员）"' in html
    with committed() as session:
        document, revision, _version = design.form_document(session, "rectification_plan", "hazchem")
        assert document["title"] == "整改方案（第一位管理员）" and revision == 1
        assert session.scalars(select(FormVersion).where(FormVersion.scope == "hazchem")).first() is None


def test_discard_draft(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    data = replace(form_data(text(gao.get(PLAN)), "design-form-editor"), title="临时修改")
    assert submit(gao, PLAN, data, "save").status_code == 302
    page = text(gao.get(PLAN))
    assert "放弃草稿" in page
    assert submit(gao, PLAN, form_data(page, "design-form-editor"), "discard").status_code == 302
    page = text(gao.get(PLAN))
    assert 'value="整改方案（五落实）"' in page and "无草稿" in page
    with committed() as session:
        assert design.get_draft(session, "form", "rectification_plan", "hazchem") is None


# --- the policy editor --------------------------------------------------------------------------------


def test_policy_circular_offset_for_one_sector(
    gao: FlaskClient, committed: sessionmaker[Session], world: DemoWorld
) -> None:
    page = text(gao.get(POLICY))
    assert "督办升级梯度" in page and "通报" in page
    data = form_data(page, "design-policy")
    assert data["rung-circular-offset"] == CIRCULAR
    assert (data["rung-circular-offset_value"], data["rung-circular-offset_unit"]) == ("10", "working_days")
    assert f"value-{CIRCULAR}-override" not in data  # inherited from the national profile
    replace(data, rung__circular__offset_value="5", note="市安委办要求逾期5个工作日即通报")

    response = submit(gao, POLICY, data, "publish")
    assert response.status_code == 302, text(response)
    with committed() as session:
        profile = policy.resolve_policy(session, "hazchem", chem_path(world))
        assert profile.key == "hazchem" and profile.version == 1 and profile.sector_code == "hazchem"
        assert policy.policy_value(profile, CIRCULAR).describe() == "5 个工作日"
        assert profile.content["overrides"] == [CIRCULAR]
        assert policy.ladder_of(profile).rung("circular").offset == CIRCULAR
        assert profile.created_by_id == world.users["gao_modeler"].id
        national = policy.resolve_policy(session, "mines", chem_path(world))
        assert national.key == "national" and policy.policy_value(national, CIRCULAR).value == 10
        event = design.design_log(session, kind="policy", key="hazchem")[0]
        assert event.action == "published" and event.note == "市安委办要求逾期5个工作日即通报"
    page = text(gao.get(POLICY))
    data = form_data(page, "design-policy")
    assert data[f"value-{CIRCULAR}-override"] == "1" and data[f"value-{CIRCULAR}-value"] == "5"
    assert data["rung-circular-offset_value"] == "5"
    assert "市安委办要求逾期5个工作日即通报" in page  # the version list


def test_policy_values_table_rung_and_trigger(
    gao: FlaskClient, committed: sessionmaker[Session], world: DemoWorld
) -> None:
    data = form_data(text(gao.get(POLICY)), "design-policy")
    letter = "escalation_letter_after_overdue"
    replace(data, **{f"value__{letter}__value": "2", f"value__{letter}__override": "1"})
    replace(
        data,
        rung__interview__place="县应急管理局三楼会议室",
        rung__circular__recipients=["enterprise", "public"],
    )
    replace(data, **{"trigger__failed_verifications": "circular"})
    data.setlist("new-0-name", ["hazchem_tank_check_interval"])
    replace(
        data,
        new__0__label="储罐区专项检查周期",
        new__0__value="1",
        new__0__unit="months",
        new__0__source="本地规定",
    )
    response = submit(gao, POLICY, data, "publish")
    assert response.status_code == 302, text(response)
    with committed() as session:
        profile = policy.resolve_policy(session, "hazchem", chem_path(world))
        assert sorted(profile.content["overrides"]) == [
            "escalation_letter_after_overdue",
            "hazchem_tank_check_interval",
        ]
        assert policy.policy_value(profile, letter).value == 2
        ladder = policy.ladder_of(profile)
        assert ladder.rung("interview").place == "县应急管理局三楼会议室"
        assert ladder.rung("circular").recipients == ("enterprise", "public")
        assert ladder.rung("letter").recipients == ("enterprise", "competent_department")  # inherited
        assert ladder.triggers["failed_verifications"] == "circular"
        assert ladder.triggers["refusal"] == "referral"


@pytest.mark.parametrize(
    ("changes", "row", "message"),
    [
        (
            {f"value__{CIRCULAR}__value": "-5", f"value__{CIRCULAR}__override": "1"},
            f"values-{CIRCULAR}",
            "数值 必须在 0 到",
        ),
        (
            {f"value__{CIRCULAR}__value": "十", f"value__{CIRCULAR}__override": "1"},
            f"values-{CIRCULAR}",
            "数值 必须是整数",
        ),
        (
            {f"value__{CIRCULAR}__unit": "fortnights", f"value__{CIRCULAR}__override": "1"},
            f"values-{CIRCULAR}",
            "单位 必须是",
        ),
        ({"rung__circular__offset_value": "-1"}, f"values-{CIRCULAR}", "数值 必须在 0 到"),
        (
            {"rung__circular__issuer_level": ""},
            "ladder-rungs-circular",
            "签发层级 必须是 省级, 市级, 县级, 乡镇级 之一",
        ),
        ({"rung__circular__recipients": []}, "ladder-rungs-circular", "送达对象 必须是"),
        (
            {"rung__circular__offset": "max_failed_verifications"},
            "ladder-rungs-circular",
            "时间点 引用的策略值 max_failed_verifications 是次数，不是期限",
        ),
        ({"new__0__name": "Bad-Name", "new__0__value": "3"}, "new-0", "名称只能由小写字母"),
    ],
)
def test_bad_policy_input_is_refused_at_its_row(
    gao: FlaskClient, committed: sessionmaker[Session], changes: dict[str, str], row: str, message: str
) -> None:
    data = replace(form_data(text(gao.get(POLICY)), "design-policy"), **changes)
    response = submit(gao, POLICY, data, "publish")
    assert response.status_code == 422
    html = text(response)
    assert message in block(html, row)
    typed = {k.replace("__", "-"): v for k, v in changes.items() if isinstance(v, str) and v}
    for name, value in typed.items():
        assert form_data(html, "design-policy").get(name) == value, name  # kept as typed
    with committed() as session:
        assert session.scalars(select(PolicyProfile).where(PolicyProfile.key == "hazchem")).first() is None


def test_policy_draft_save_and_conflict(gao: FlaskClient, committed: sessionmaker[Session]) -> None:
    stale = form_data(text(gao.get(POLICY)), "design-policy")
    first = replace(MultiDict(stale), rung__circular__offset_value="7")
    assert submit(gao, POLICY, first, "save").status_code == 302
    page = text(gao.get(POLICY))
    assert "有草稿" in page
    data = form_data(page, "design-policy")
    assert data["revision"] == "1" and data["rung-circular-offset_value"] == "7"
    with committed() as session:
        document, revision, _version = design.policy_document(session, "hazchem")
        assert revision == 1 and document["values"][CIRCULAR]["value"] == 7
        assert session.scalars(select(PolicyProfile).where(PolicyProfile.key == "hazchem")).first() is None

    replace(stale, rung__circular__offset_value="8")
    response = submit(gao, POLICY, stale, "save")
    assert response.status_code == 409
    html = text(response)
    assert "保存冲突" in html and form_data(html, "design-policy")["rung-circular-offset_value"] == "8"

    assert submit(gao, POLICY, data, "discard").status_code == 302
    with committed() as session:
        assert design.get_draft(session, "policy", "hazchem", "hazchem") is None


def test_system_administrator_drafts_the_national_policy(
    client: FlaskClient, login: Login, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "admin")
    url = "/design/policy?sector=*"
    data = replace(form_data(text(client.get(url)), "design-policy"), rung__circular__offset_value="12")
    assert data[f"value-{CIRCULAR}-value"] == "10"
    assert submit(client, url, data, "save").status_code == 302
    with committed() as session:
        document, revision, _version = design.policy_document(session, None)
        assert revision == 1 and document["key"] == "national" and document["values"][CIRCULAR]["value"] == 12
        assert len(document["values"]) > 40 and len(document["ladder"]["rungs"]) == 9
    page = text(client.get(url))
    assert submit(client, url, form_data(page, "design-policy"), "discard").status_code == 302
