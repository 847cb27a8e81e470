"""``/design/diagrams/<key>/versions``: versions, diff, bindings, rollback, migration, heatmap.

The app sees committed data only, so the ``variant`` fixture publishes two versions of a process
of its own (``hazard_general_c3test``, a copy of the shipped general loop owned by 危化) and binds
危化 general hazards to version 1; two hazards start on it, one in 限期整改 (waiting in
``assign_plan``, movable) and one in 即查即改 (waiting in ``fix_on_spot``, which version 2 renames:
not movable). Version 2 also renames ``verify`` (changed). A process administrator of 消防
(``c3_fire_modeler``, a department that co-supervises 危化 but does not lead it) is created for
the permission tests. Everything is removed after the conftest ``committed`` fixture deleted the
hazards (request ``variant`` before ``client``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update

from engine import db as dbmod
from engine import definitions
from engine.demo import DEMO_PASSWORD
from engine.demo import DemoWorld
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import Event
from engine.models import Membership
from engine.models import ProcessInstance
from engine.models import Role
from engine.models import User
from engine.models import WorkItem
from engine.runtime import EngineContext
from tests.factories import make_hazard
from web.auth import hash_password
from web.auth import make_hasher

from .test_admin import as_user
from .test_admin import csrf_of
from .test_admin import text

Login = Callable[..., object]
KEY = "hazard_general_c3test"
BASE = f"/design/diagrams/{KEY}/versions"
FIRE_MODELER = "c3_fire_modeler"


def _rename(xml: str, old: str, new: str) -> str:
    renamed = re.sub(rf'(id|sourceRef|targetRef|bpmnElement)="{old}"', rf'\1="{new}"', xml)
    assert renamed != xml
    return renamed


@pytest.fixture
def variant(
    engine: Engine, world: DemoWorld, ctx: EngineContext, web_settings: Any
) -> Iterator[dict[str, Any]]:
    source = (ctx.settings.processes_dir / "hazard_general.bpmn").read_text(encoding="utf-8")
    v1 = source.replace('"hazard_general"', f'"{KEY}"')
    v2 = _rename(v1, "fix_on_spot", "on_spot_fix").replace(
        '<bpmn:userTask id="verify" name="整改验收">', '<bpmn:userTask id="verify" name="整改复核">'
    )
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        gao = world.users["gao_modeler"].id
        for xml, note in ((v1, "首版"), (v2, "即查即改改名、验收改称复核")):
            result = definitions.deploy(
                session,
                bpmn_xml=xml.encode(),
                filename=f"{KEY}.bpmn",
                forms=ctx.forms,
                deployed_by_id=gao,
                note=note,
            )
            for version in result.versions:
                version.sector_code = "hazchem"
        definitions.bind(
            session, grade="general", process_key=KEY, sector_code="hazchem", version=1, note="测试绑定"
        )
        fire = User(
            username=FIRE_MODELER,
            display_name="消防流程管理员",
            password_hash=hash_password(DEMO_PASSWORD, hasher=make_hasher(web_settings)),
        )
        session.add(fire)
        session.flush()
        session.add(
            Membership(
                user_id=fire.id, role=Role.PROCESS_ADMIN, department_id=world.departments["lx_fire"].id
            )
        )
    with factory.begin() as session:
        actor = world.actor(session, "chen_safety")
        planned = make_hazard(session, ctx, world, actor, title="限期整改的隐患")
        on_spot = make_hazard(session, ctx, world, actor, title="即查即改的隐患", handling_type="immediate")
        instances = dict(
            session.execute(
                select(ProcessInstance.hazard_id, ProcessInstance.id).where(
                    ProcessInstance.hazard_id.in_([planned.id, on_spot.id])
                )
            ).all()
        )
        numbers = {"planned": planned.number, "on_spot": on_spot.number}
    yield {
        "planned": instances[planned.id],
        "on_spot": instances[on_spot.id],
        "planned_hazard": planned.id,
        "numbers": numbers,
    }
    with factory.begin() as session:
        session.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key == KEY))
        session.execute(
            delete(DefinitionBindingHistory).where(
                or_(
                    DefinitionBindingHistory.process_key == KEY,
                    DefinitionBindingHistory.previous_process_key == KEY,
                )
            )
        )
        session.execute(delete(DefinitionVersion).where(DefinitionVersion.process_key == KEY))
        fire_id = session.scalars(select(User.id).where(User.username == FIRE_MODELER)).one()
        session.execute(delete(Membership).where(Membership.user_id == fire_id))
        session.execute(delete(User).where(User.id == fire_id))


def post(client: FlaskClient, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data={"csrf_token": csrf_of(client), **data})


def markers_of(html: str, url_part: str) -> dict[str, Any]:
    match = re.search(rf"data-bpmn-url=\"[^\"]*{re.escape(url_part)}\" data-bpmn-markers='([^']*)'", html)
    assert match, f"no diagram for {url_part}"
    return json.loads(match.group(1).replace("&#34;", '"').replace("&quot;", '"'))


def resolved(engine: Engine) -> tuple[str, int]:
    with dbmod.make_sessionmaker(engine)() as session:
        version = definitions.resolve_definition(session, grade="general", sector_code="hazchem")
        return version.process_key, version.version


# --- the versions page ------------------------------------------------------------------------------


def test_versions_page_lists_versions_with_author_note_hash_and_bindings(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    html = text(as_user(client, login, "gao_modeler").get(BASE))
    assert "v2" in html and "v1" in html
    assert html.index('id="version-2"') < html.index('id="version-1"')  # newest first
    v1_row = html[html.index('id="version-1"') : html.index("</tr>", html.index('id="version-1"'))]
    assert "高远（县应急局流程管理员）" in v1_row and "首版" in v1_row and "general/hazchem" in v1_row
    assert re.search(r">2<", v1_row)  # two running instances
    with dbmod.make_sessionmaker(engine)() as session:
        content_hash = definitions.get_version(session, KEY, 1).content_hash
    assert content_hash[:12] in v1_row
    assert f"{BASE}/1/heatmap" in v1_row and f"{BASE}/1.bpmn?download=1" in v1_row
    assert f"/design/diagrams/{KEY}/edit" in html
    assert "即查即改改名、验收改称复核" in html
    # the bind form offers only the sectors 县应急局 leads (no national default)
    form = html[
        html.index('<select name="sector"') : html.index("</select>", html.index('<select name="sector"'))
    ]
    assert 'value="hazchem"' in form and 'value="fire"' not in form and 'value=""' not in form
    assert "已迁移实例保留原有的绝对期限和历史" in html


def test_version_page_and_xml(variant: dict[str, Any], client: FlaskClient, login: Login) -> None:
    as_user(client, login, "gao_modeler")
    page = client.get(f"{BASE}/2")
    assert page.status_code == 200
    assert f"{BASE}/2.bpmn" in text(page)
    xml = client.get(f"{BASE}/2.bpmn")
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert 'id="on_spot_fix"' in text(xml) and "Content-Disposition" not in xml.headers
    download = client.get(f"{BASE}/1.bpmn?download=1")
    assert download.headers["Content-Disposition"] == f'attachment; filename="{KEY}_v1.bpmn"'
    assert 'id="fix_on_spot"' in text(download)
    assert client.get(f"{BASE}/9.bpmn").status_code == 404
    assert client.get(f"{BASE}/9").status_code == 404
    assert client.get("/design/diagrams/no_such_process/versions").status_code == 404


# --- differences ------------------------------------------------------------------------------------


def test_diff_lists_and_draws_added_removed_and_changed_elements(
    variant: dict[str, Any], client: FlaskClient, login: Login
) -> None:
    as_user(client, login, "gao_modeler")
    response = client.get(f"{BASE}/diff?from=1&to=2")
    assert response.status_code == 200
    html = text(response)
    assert 'id="added-on_spot_fix"' in html and 'id="removed-fix_on_spot"' in html
    changed = html[html.index('id="changed-verify"') : html.index("</tr>", html.index('id="changed-verify"'))]
    assert "名称" in changed and "<del>整改验收</del>" in changed and "<ins>整改复核</ins>" in changed
    new = markers_of(html, f"{BASE}/2.bpmn")
    assert "on_spot_fix" in new["added"] and "verify" in new["changed"]
    assert markers_of(html, f"{BASE}/1.bpmn") == {"removed": ["fix_on_spot"]}
    same = client.get(f"{BASE}/diff?from=2&to=2")
    assert same.status_code == 422 and "请选择两个不同的版本" in text(same)
    bad = client.get(f"{BASE}/diff?from=abc&to=2")
    assert bad.status_code == 422 and "请选择版本" in text(bad)
    assert client.get(f"{BASE}/diff?from=1&to=9").status_code == 404
    form_only = client.get(f"{BASE}/diff")  # the tab: just the form
    assert form_only.status_code == 200 and "field-error" not in text(form_only)


# --- bindings ----------------------------------------------------------------------------------------


def test_bind_and_rollback_through_the_form(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    as_user(client, login, "gao_modeler")
    assert resolved(engine) == (KEY, 1)
    form = {"grade": "general", "sector": "hazchem", "region": "", "version": "2", "note": "改用 v2"}
    response = post(client, f"/design/diagrams/{KEY}/bindings", form)
    assert response.status_code == 302, text(response)
    assert resolved(engine) == (KEY, 2)
    html = text(client.get(response.headers["Location"]))
    assert "已绑定 general/hazchem" in html and "改用 v2" in html
    assert f"{KEY} v1（固定版本） → {KEY} v2（固定版本）" in html

    # "always latest", then roll back twice: v2 pinned, then v1 pinned
    response = post(
        client, f"/design/diagrams/{KEY}/bindings", {**form, "version": "latest", "note": "跟随最新"}
    )
    assert response.status_code == 302
    with dbmod.make_sessionmaker(engine)() as session:
        binding = definitions.find_binding(session, grade="general", sector_code="hazchem")
        assert binding is not None and binding.definition_version_id is None
    rollback = {"grade": "general", "sector": "hazchem", "region": "", "note": "撤回跟随最新"}
    assert post(client, f"/design/diagrams/{KEY}/bindings/rollback", rollback).status_code == 302
    assert resolved(engine) == (KEY, 2)
    assert (
        post(
            client, f"/design/diagrams/{KEY}/bindings/rollback", {**rollback, "note": "退回首版"}
        ).status_code
        == 302
    )
    assert resolved(engine) == (KEY, 1)
    with dbmod.make_sessionmaker(engine)() as session:
        history = definitions.binding_history(session, grade="general", sector_code="hazchem")
        assert [(h.action, h.note) for h in history[:2]] == [
            ("rollback", "退回首版"),
            ("rollback", "撤回跟随最新"),
        ]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"note": ""}, "note", "请填写说明"),
        ({"version": "9"}, "version", "没有版本 v9"),
        ({"version": "x"}, "version", "请选择版本"),
        ({"grade": "prominent"}, "grade", "请选择隐患等级"),
        ({"sector": "fire"}, "sector", "只能绑定本部门牵头的行业"),
        ({"sector": ""}, "sector", "请选择本部门牵头的行业"),
        ({"region": "341882"}, "region", "请选择列表中的地区"),  # 广德: outside 郎溪's subtree
        ({"grade": "major"}, "version", "缺少法定环节"),  # the general loop has no 双报告
    ],
)
def test_bind_refuses_bad_values_with_422(
    variant: dict[str, Any],
    client: FlaskClient,
    login: Login,
    engine: Engine,
    change: dict[str, str],
    field: str,
    message: str,
) -> None:
    as_user(client, login, "gao_modeler")
    form = {
        "grade": "general",
        "sector": "hazchem",
        "region": "341821",
        "version": "2",
        "note": "试试",
        **change,
    }
    response = post(client, f"/design/diagrams/{KEY}/bindings", form)
    assert response.status_code == 422
    html = text(response)
    assert message in html
    assert f'id="{field}-error"' in html
    if change.get("note") is None:  # what was typed is kept
        assert 'value="试试"' in html
    assert resolved(engine) == (KEY, 1)


def test_rollback_needs_a_note(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    as_user(client, login, "gao_modeler")
    response = post(
        client,
        f"/design/diagrams/{KEY}/bindings/rollback",
        {"grade": "general", "sector": "hazchem", "region": "", "note": " "},
    )
    assert response.status_code == 422 and "请填写说明" in text(response)
    assert resolved(engine) == (KEY, 1)


# --- migration ---------------------------------------------------------------------------------------


def test_migration_preview_then_confirm(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    as_user(client, login, "gao_modeler")
    preview = client.get(f"{BASE}/migrate?from=1&to=2")
    assert preview.status_code == 200
    html = text(preview)
    planned = html[html.index(f'id="instance-{variant["planned"]}"') :]
    planned = planned[: planned.index("</tr>")]
    on_spot = html[html.index(f'id="instance-{variant["on_spot"]}"') :]
    on_spot = on_spot[: on_spot.index("</tr>")]
    assert f'name="instance" value="{variant["planned"]}"' in planned and "可以" in planned
    assert "制定整改方案并交办" in planned
    assert 'name="instance"' not in on_spot and "不能" in on_spot and "fix_on_spot" in on_spot
    assert "可以迁移 1 个" in html and "不能迁移 1 个" in html
    assert "已迁移实例保留原有的绝对期限和历史" in html

    nothing = post(client, f"{BASE}/migrate", {"from": "1", "to": "2"})
    assert nothing.status_code == 422 and "请至少选择一个可以迁移的实例" in text(nothing)

    done = post(client, f"{BASE}/migrate", {"from": "1", "to": "2", "instance": str(variant["planned"])})
    assert done.status_code == 200
    result = text(done)
    assert "已迁移 1 个" in result and variant["numbers"]["planned"] in result
    with dbmod.make_sessionmaker(engine)() as session:
        instance = session.get_one(ProcessInstance, variant["planned"])
        assert instance.definition_version.version == 2
        assert session.get_one(ProcessInstance, variant["on_spot"]).definition_version.version == 1
        actions = session.scalars(
            select(Event.action).where(Event.hazard_id == variant["planned_hazard"]).order_by(Event.id)
        ).all()
        assert actions[-1] == "migrated"
    again = text(client.get(f"{BASE}/migrate?from=1&to=2"))
    assert f'id="instance-{variant["planned"]}"' not in again


def test_migration_refuses_bad_versions(variant: dict[str, Any], client: FlaskClient, login: Login) -> None:
    as_user(client, login, "gao_modeler")
    assert client.get(f"{BASE}/migrate?from=1&to=1").status_code == 422
    assert client.get(f"{BASE}/migrate?from=1&to=x").status_code == 422
    assert client.get(f"{BASE}/migrate?from=1&to=7").status_code == 404
    bad = post(client, f"{BASE}/migrate", {"from": "1", "to": "2", "instance": "abc"})
    assert bad.status_code == 422
    nothing = post(client, f"{BASE}/migrate", {"instance": "1"})
    assert nothing.status_code == 422 and "请选择版本" in text(nothing)
    form_only = client.get(f"{BASE}/migrate")  # the tab: just the form
    assert form_only.status_code == 200 and "field-error" not in text(form_only)


# --- heatmap -------------------------------------------------------------------------------------------


def test_heatmap_counts_open_and_overdue_items(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    as_user(client, login, "gao_modeler")
    response = client.get(f"{BASE}/1/heatmap")
    assert response.status_code == 200
    html = text(response)
    markers = markers_of(html, f"{BASE}/1.bpmn")
    assert markers["counts"]["assign_plan"] == {"open": 1, "overdue": 0}
    assert markers["counts"]["fix_on_spot"]["open"] == 1
    assert "assign_plan" in markers["active"] and "assign_plan" not in markers["overdue"]
    assert "在办事项 2 件" in html

    with dbmod.make_sessionmaker(engine).begin() as session:
        session.execute(
            update(WorkItem)
            .where(WorkItem.instance_id == variant["planned"], WorkItem.task_key == "assign_plan")
            .values(due_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        )
    html = text(client.get(f"{BASE}/1/heatmap"))
    markers = markers_of(html, f"{BASE}/1.bpmn")
    assert markers["counts"]["assign_plan"] == {"open": 1, "overdue": 1}
    assert markers["overdue"] == ["assign_plan"]
    row = html[html.index('id="heat-assign_plan"') : html.index("</tr>", html.index('id="heat-assign_plan"'))]
    assert "制定整改方案并交办" in row and 'class="row-overdue"' in row
    assert "其中逾期 1 件" in html

    switch = client.get(f"{BASE}/1/heatmap?version=2")
    assert switch.status_code == 302 and switch.headers["Location"].endswith(f"{BASE}/2/heatmap")
    empty = text(client.get(f"{BASE}/2/heatmap"))
    assert "在办事项 0 件" in empty
    assert client.get(f"{BASE}/1/heatmap?version=x").status_code == 422
    assert client.get(f"{BASE}/9/heatmap").status_code == 404


# --- who may do what ------------------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["wu_reviewer", FIRE_MODELER])
def test_others_are_refused(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine, username: str
) -> None:
    as_user(client, login, username)
    for url in (
        BASE,
        f"{BASE}/1/heatmap",
        f"{BASE}/1.bpmn",
        f"{BASE}/diff?from=1&to=2",
        f"{BASE}/migrate?from=1&to=2",
    ):
        assert client.get(url).status_code == 403, url
    form = {"grade": "general", "sector": "hazchem", "region": "", "version": "2", "note": "越权"}
    assert post(client, f"/design/diagrams/{KEY}/bindings", form).status_code == 403
    assert post(client, f"/design/diagrams/{KEY}/bindings/rollback", form).status_code == 403
    migrate = {"from": "1", "to": "2", "instance": str(variant["planned"])}
    assert post(client, f"{BASE}/migrate", migrate).status_code == 403
    assert resolved(engine) == (KEY, 1)


def test_office_admin_reads_without_forms(variant: dict[str, Any], client: FlaskClient, login: Login) -> None:
    as_user(client, login, "he_office")
    html = text(client.get(BASE))
    assert "只读" in html and "general/hazchem" in html
    assert 'name="note"' not in html and "迁移运行中的实例" not in html
    assert client.get(f"{BASE}/1/heatmap").status_code == 200
    assert client.get(f"{BASE}/migrate?from=1&to=2").status_code == 403
    form = {"grade": "general", "sector": "hazchem", "region": "", "version": "2", "note": "越权"}
    assert post(client, f"/design/diagrams/{KEY}/bindings", form).status_code == 403


def test_system_administrator_may_bind_every_sector(
    variant: dict[str, Any], client: FlaskClient, login: Login, engine: Engine
) -> None:
    as_user(client, login, "admin")
    html = text(client.get(BASE))
    form = html[
        html.index('<select name="sector"') : html.index("</select>", html.index('<select name="sector"'))
    ]
    assert 'value=""' in form and 'value="fire"' in form
    response = post(
        client,
        f"/design/diagrams/{KEY}/bindings",
        {"grade": "general", "sector": "hazchem", "region": "341821", "version": "2", "note": "郎溪试点"},
    )
    assert response.status_code == 302, text(response)
    with dbmod.make_sessionmaker(engine)() as session:
        version = definitions.resolve_definition(
            session, grade="general", sector_code="hazchem", region_path="/34/3418/341821/341821100/"
        )
        assert (version.process_key, version.version) == (KEY, 2)
    assert resolved(engine) == (KEY, 1)  # outside 郎溪 the sector binding still applies
