"""/design version pages of task forms and policy profiles: one version read-only, two compared.

Versions are published through the editors the way a browser does (the helpers of
test_design_forms_policies.py); ``forget_designs`` removes them afterwards.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.web.test_admin import as_user
from tests.web.test_admin import text
from tests.web.test_design_forms_policies import CIRCULAR
from tests.web.test_design_forms_policies import PLAN
from tests.web.test_design_forms_policies import POLICY
from tests.web.test_design_forms_policies import block
from tests.web.test_design_forms_policies import form_data
from tests.web.test_design_forms_policies import replace
from tests.web.test_design_forms_policies import row_ids
from tests.web.test_design_forms_policies import row_with
from tests.web.test_design_forms_policies import submit
from web.i18n import EN

Login = Callable[..., object]
pytestmark = pytest.mark.usefixtures("forget_designs")

FORM_DIFF = "/design/forms/rectification_plan/diff?sector=hazchem"
POLICY_DIFF = "/design/policy/diff?sector=hazchem"


@pytest.fixture
def gao(client: FlaskClient, login: Login) -> FlaskClient:
    return as_user(client, login, "gao_modeler")


def links(page: str, contains: str) -> list[str]:
    return [
        html_lib.unescape(h) for h in re.findall(r'href="([^"]+)"', page) if contains in html_lib.unescape(h)
    ]


def publish_form(client: FlaskClient, note: str, **changes: str) -> None:
    data = replace(form_data(text(client.get(PLAN)), "design-form-editor"), note=note, **changes)
    response = submit(client, PLAN, data, "publish")
    assert response.status_code == 302, text(response)


@pytest.fixture
def two_forms(forget_designs: None, gao: FlaskClient) -> tuple[str, str]:
    """hazchem v1: the national plan as it is; v2: a label changed and a photo field added.
    Returns the changed label (old, new)."""
    data = form_data(text(gao.get(PLAN)), "design-form-editor")
    measures = row_with(data, "measures")
    old_label = data[f"fields-{measures}-label"]
    publish_form(gao, "本行业第一版")
    data = form_data(text(gao.get(PLAN)), "design-form-editor")
    measures = row_with(data, "measures")
    data.add("row", "90")
    replace(
        data,
        **{f"fields__{measures}__label": "整改措施及方法"},
        fields__90__name="before_photos",
        fields__90__label="整改前照片",
        fields__90__type="photo",
        fields__90__phase="before",
        note="增加整改前照片",
    )
    assert len(row_ids(data)) == 7
    response = submit(gao, PLAN, data, "publish")
    assert response.status_code == 302, text(response)
    return old_label, "整改措施及方法"


@pytest.fixture
def two_policies(forget_designs: None, gao: FlaskClient) -> None:
    """hazchem v1: 通报 5 working days after the deadline; v2: 3."""
    for days, note in (("5", "逾期5个工作日通报"), ("3", "逾期3个工作日通报")):
        data = replace(form_data(text(gao.get(POLICY)), "design-policy"), rung__circular__offset_value=days)
        response = submit(gao, POLICY, replace(data, note=note), "publish")
        assert response.status_code == 302, text(response)


# --- forms ---------------------------------------------------------------------------------------------


def test_form_diff_shows_the_added_field_and_the_changed_label(
    gao: FlaskClient, two_forms: tuple[str, str]
) -> None:
    old_label, new_label = two_forms
    response = gao.get(FORM_DIFF)  # defaults: the latest and the one before
    assert response.status_code == 200
    page = text(response)
    assert "危险化学品 第 1 版" in page and "危险化学品 第 2 版" in page
    added = block(page, "field-added-before_photos")
    assert "整改前照片" in added and "新增" in added and "照片" in added and "整改前" in added
    changed = block(page, "field-changed-measures")
    assert f"<del>{old_label}</del> → <ins>{new_label}</ins>" in changed and "标签" in changed
    assert "field-removed-" not in page
    assert "新增 1" in page and "删除 0" in page and "改变 1" in page


def test_the_version_list_links_each_version_and_its_diff(
    gao: FlaskClient, two_forms: tuple[str, str]
) -> None:
    old_label, new_label = two_forms
    page = text(gao.get(PLAN))
    views = links(page, "/design/forms/rectification_plan/versions/")
    assert any("versions/1?" in v and "scope=hazchem" in v for v in views)
    assert any("versions/1?" in v and "scope=*" in v for v in views)  # the national version, listed too
    diffs = links(page, "/design/forms/rectification_plan/diff")
    assert len(diffs) == 2  # hazchem v2 (with v1) and v1 (with the national version); not national v1

    hazchem_v2 = next(d for d in diffs if "to=2" in d)
    assert f"<ins>{new_label}</ins>" in text(gao.get(hazchem_v2))
    hazchem_v1 = next(d for d in diffs if "to=1" in d)
    assert "from_scope=*" in hazchem_v1
    page = text(gao.get(hazchem_v1))
    assert "全国 第 1 版" in page and "危险化学品 第 1 版" in page
    assert "两个版本的内容相同" in page  # published unchanged

    national = text(gao.get(next(v for v in views if "scope=*" in v)))
    assert "全国" in national and "before_photos" not in national


def test_an_old_version_shows_its_own_content(gao: FlaskClient, two_forms: tuple[str, str]) -> None:
    old_label, new_label = two_forms
    response = gao.get("/design/forms/rectification_plan/versions/1?sector=hazchem")
    assert response.status_code == 200
    page = text(response)
    assert old_label in page and new_label not in page and "整改前照片" not in page
    assert "本行业第一版" in page and "高" in page  # note and author
    assert re.search(r"[0-9a-f]{64}", page)  # sha256
    assert '<fieldset class="form task-form" disabled>' in page and 'id="f-responsible_person"' in page
    assert "与上一版比较" in page
    page = text(gao.get("/design/forms/rectification_plan/versions/2?sector=hazchem"))
    assert new_label in page and 'id="f-before_photos"' in page and "增加整改前照片" in page


def test_comparing_a_version_with_itself(gao: FlaskClient, two_forms: tuple[str, str]) -> None:
    response = gao.get(FORM_DIFF + "&from=2&to=2")
    assert response.status_code == 200
    page = text(response)
    assert "两个版本相同" in page and "diff-added" not in page and "diff-changed" not in page


def test_the_pair_form_keeps_the_sector(gao: FlaskClient, two_forms: tuple[str, str]) -> None:
    page = text(gao.get(FORM_DIFF + "&from=2&to=1"))
    assert 'name="sector" value="hazchem"' in page
    assert 'id="field-removed-before_photos"' in page  # backwards: the field goes


def test_a_form_without_a_previous_version(gao: FlaskClient) -> None:
    page = text(gao.get(FORM_DIFF))  # hazchem has none of its own: the national versions
    assert "第 1 版是第一个版本" in page


# --- policies ------------------------------------------------------------------------------------------


def test_policy_diff_shows_the_changed_offset(gao: FlaskClient, two_policies: None) -> None:
    response = gao.get(POLICY_DIFF)
    assert response.status_code == 200
    page = text(response)
    rung = block(page, "rung-changed-circular")
    assert "通报" in rung and "时间点期限" in rung
    assert "<del>5 个工作日</del> → <ins>3 个工作日</ins>" in rung
    value = block(page, f"value-changed-{CIRCULAR}")
    assert "<del>5</del> → <ins>3</ins>" in value and "数值" in value
    assert "逾期5个工作日通报" in page and "逾期3个工作日通报" in page  # the notes

    editor = text(gao.get(POLICY))
    assert links(editor, "/design/policy/versions/1?")
    [diff] = links(editor, "/design/policy/diff")
    assert "from=1" in diff and "to=2" in diff
    assert "<ins>3 个工作日</ins>" in text(gao.get(diff))


def test_an_old_policy_version(gao: FlaskClient, two_policies: None) -> None:
    response = gao.get("/design/policy/versions/1?sector=hazchem")
    assert response.status_code == 200
    page = text(response)
    value = block(page, f"value-{CIRCULAR}")
    assert "5 个工作日" in value and "本行业设置" in value
    assert "5 个工作日" in block(page, "rung-circular")
    assert "沿用全国" in block(page, "value-escalation_letter_after_overdue")
    assert "national v1" in page and "逾期5个工作日通报" in page
    assert "3 个工作日" in block(
        text(gao.get("/design/policy/versions/2?sector=hazchem")), f"value-{CIRCULAR}"
    )


def test_comparing_a_policy_version_with_itself(gao: FlaskClient, two_policies: None) -> None:
    page = text(gao.get(POLICY_DIFF + "&from=1&to=1"))
    assert "两个版本相同" in page and "diff-changed" not in page


# --- who may look, and bad addresses -------------------------------------------------------------------


@pytest.mark.usefixtures("two_forms", "two_policies")
@pytest.mark.parametrize(
    "url",
    [
        "/design/forms/rectification_plan/versions/1?sector=hazchem",
        FORM_DIFF,
        "/design/policy/versions/1?sector=hazchem",
        POLICY_DIFF,
    ],
)
def test_who_may_look(client: FlaskClient, login: Login, url: str) -> None:
    as_user(client, login, "gao_modeler")
    assert client.get(url).status_code == 200
    as_user(client, login, "admin")
    assert client.get(url).status_code == 200
    as_user(client, login, "chen_safety")  # no process administrator
    assert client.get(url).status_code == 403
    as_user(client, login, "gao_modeler")
    assert client.get(url.replace("sector=hazchem", "sector=fire")).status_code == 403  # not its sector


@pytest.mark.usefixtures("two_forms", "two_policies")
@pytest.mark.parametrize(
    "url",
    [
        "/design/forms/no_such_form/versions/1?sector=hazchem",
        "/design/forms/no_such_form/diff?sector=hazchem",
        "/design/forms/rectification_plan/versions/9?sector=hazchem",
        "/design/forms/rectification_plan/versions/1?sector=no_such_sector",
        "/design/forms/rectification_plan/versions/1?sector=hazchem&scope=fire",
        "/design/forms/rectification_plan/versions/1",
        FORM_DIFF + "&from=9",
        "/design/policy/versions/9?sector=hazchem",
        "/design/policy/versions/1?sector=no_such_sector",
        POLICY_DIFF + "&to=9",
        "/design/policy/diff?sector=mines",  # no profile of its own
    ],
)
def test_unknown_things_are_404(gao: FlaskClient, url: str) -> None:
    assert gao.get(url).status_code == 404


@pytest.mark.usefixtures("two_forms", "two_policies")
@pytest.mark.parametrize(
    "url", [FORM_DIFF + "&from=abc&to=2", POLICY_DIFF + "&from=1&to=-2", POLICY_DIFF + "&to=x"]
)
def test_version_numbers_that_are_not_numbers_are_422(gao: FlaskClient, url: str) -> None:
    response = gao.get(url)
    assert response.status_code == 422
    assert "版本号必须是正整数" in text(response)


# --- the message catalogue -----------------------------------------------------------------------------

WEB = Path(__file__).resolve().parents[2] / "web"
CHECKED = [
    *WEB.glob("templates/design_history/*.html"),
    WEB / "templates/design/form_edit.html",
    WEB / "templates/design/policy.html",
    WEB / "pages/design_history.py",
]
LITERAL = re.compile(r"""_\(\s*(["'])(.+?)\1""")


def test_every_message_of_these_pages_has_an_english_entry() -> None:
    from web.pages import design_history

    missing = set()
    for path in CHECKED:
        for _quote, message in LITERAL.findall(path.read_text(encoding="utf-8")):
            if re.search(r"[\u4e00-\u9fff]", message) and message not in EN:
                missing.add(f"{path.name}: {message}")
    for labels in (design_history.FORM_LABELS, design_history.POLICY_LABELS, design_history.ROLE_LABELS):
        missing.update(v for v in labels.values() if v not in EN)
    assert not missing, f"add English entries to web.i18n.EN: {sorted(missing)}"
