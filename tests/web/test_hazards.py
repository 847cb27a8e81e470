"""Hazard pages: registration, the ledger and its Excel export, the hazard file (一患一档) and its diagram."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import demo
from engine import runtime
from engine.demo import DemoWorld
from engine.models import Attachment
from engine.models import Hazard
from engine.models import WorkItem
from engine.runtime import EngineContext
from tests.factories import hazard_data
from web.i18n import EN
from web.session import app_state

WEB = Path(__file__).resolve().parents[2] / "web"
LITERAL = re.compile(r"""_\(\s*(["'])(.+?)\1""")
PNG = demo._png("before-photo")

Login = Callable[..., object]


@pytest.fixture
def app_ctx(app: Flask) -> EngineContext:
    return app_state(app).ctx


@pytest.fixture
def seeder(committed: sessionmaker[Session], app_ctx: EngineContext, world: DemoWorld) -> demo._Seeder:
    """The demo scenarios, committing each step (as requests would)."""
    return demo._Seeder(committed, app_ctx, world)


def register(
    committed: sessionmaker[Session], ctx: EngineContext, world: DemoWorld, username: str, **overrides: object
) -> int:
    with committed.begin() as session:
        actor = world.actor(session, username)
        return runtime.register_hazard(session, ctx, actor=actor, data=hazard_data(world, **overrides)).id


def as_user(client: FlaskClient, login: Login, username: str) -> FlaskClient:
    response = login(client, username)
    assert response.status_code == 302, "login failed"  # type: ignore[attr-defined]
    return client


def csrf_of(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return str(sess["_csrf"])


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


@pytest.fixture
def two_counties(
    committed: sessionmaker[Session], app_ctx: EngineContext, world: DemoWorld
) -> dict[str, int]:
    """A 郎溪 hazard (化工, registered by its safety officer) and a 广德 one (by 广德's reviewer)."""
    return {
        "langxi": register(committed, app_ctx, world, "chen_safety", title="郎溪罐区报警器失效"),
        "guangde": register(
            committed,
            app_ctx,
            world,
            "ma_gd",
            title="广德甲醇罐区切断阀缺失",
            enterprise_id=world.enterprises["gd_chem"].id,
            source="inspection",
            grade="major",
        ),
    }


# --- the ledger ---------------------------------------------------------------------------------


def test_ledger_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/hazards")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert client.get("/hazards/export.xlsx").status_code == 302
    assert client.get("/hazards/new").status_code == 302


def test_ledger_is_scoped_by_the_visibility_matrix(
    client: FlaskClient, login: Login, two_counties: dict[str, int]
) -> None:
    as_user(client, login, "ma_gd")
    page = text(client.get("/hazards"))
    assert "广德甲醇罐区切断阀缺失" in page
    assert "郎溪罐区报警器失效" not in page
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    as_user(client, login, "wu_reviewer")
    page = text(client.get("/hazards"))
    assert "郎溪罐区报警器失效" in page
    assert "广德甲醇罐区切断阀缺失" not in page


def test_ledger_filters_sort_and_counts(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
    world: DemoWorld,
) -> None:
    old = register(
        committed,
        app_ctx,
        world,
        "chen_safety",
        title="旧的一般隐患",
        discovered_at=dt.datetime(2026, 3, 1, 2, 0, tzinfo=dt.UTC),
        deadline=dt.datetime(2026, 3, 10, 15, 59, 59, tzinfo=dt.UTC),
    )
    major = register(
        committed,
        app_ctx,
        world,
        "chen_safety",
        title="重大隐患_主",
        grade="major",
        discovered_at=dt.datetime(2026, 4, 1, 2, 0, tzinfo=dt.UTC),
    )
    fire = register(
        committed,
        app_ctx,
        world,
        "he_office",
        title="商场疏散通道堵塞",
        enterprise_id=world.enterprises["mall"].id,
        source="grid_patrol",
        discovered_at=dt.datetime(2026, 4, 2, 2, 0, tzinfo=dt.UTC),
    )
    with committed.begin() as session:
        session.execute(update(Hazard).where(Hazard.id == major).values(escalation_level=3))
    as_user(client, login, "he_office")  # 安委办: every hazard of 郎溪

    def titles(query: str) -> list[str]:
        response = client.get("/hazards" + query)
        assert response.status_code == 200, text(response)
        return re.findall(r'<td><a href="/hazards/\d+">([^<]+)</a>', text(response))

    assert set(titles("")) == {"旧的一般隐患", "重大隐患_主", "商场疏散通道堵塞"}
    assert titles("?grade=major") == ["重大隐患_主"]
    assert titles("?overdue=yes") == ["旧的一般隐患"]
    assert set(titles("?overdue=no")) == {"重大隐患_主", "商场疏散通道堵塞"}
    assert titles("?sector=fire") == ["商场疏散通道堵塞"]
    assert titles("?source=grid_patrol") == ["商场疏散通道堵塞"]
    assert titles("?status=reporting&level=2") == ["重大隐患_主"]
    assert titles("?region=341821100001") == ["重大隐患_主", "旧的一般隐患"]  # 东门村: the chem plant
    assert titles("?q=疏散") == ["商场疏散通道堵塞"]
    assert titles("?q=金桥") == ["商场疏散通道堵塞"]  # the enterprise's name
    assert titles("?q=100%25") == []  # LIKE wildcards are literal
    # discovered dates are business dates: 2026-04-01 10:00 Beijing is on 04-01
    assert titles("?from=2026-04-01&to=2026-04-01") == ["重大隐患_主"]
    assert titles("?to=2026-03-31") == ["旧的一般隐患"]
    assert titles("?sort=discovered_at&order=asc") == ["旧的一般隐患", "重大隐患_主", "商场疏散通道堵塞"]
    assert titles("?sort=escalation_level&order=desc")[0] == "重大隐患_主"
    page = text(client.get(f"/hazards?enterprise={world.enterprises['mall'].id}"))
    assert "商场疏散通道堵塞" in page and "旧的一般隐患" not in page
    # the counts cover the filtered ledger
    page = text(client.get("/hazards"))
    values = re.findall(r'<span class="stat-value">(\d+)</span><span class="stat-label">([^<]+)</span>', page)
    assert dict((label, int(n)) for n, label in values) == {
        "符合条件": 3,
        "已逾期": 1,
        "重大隐患": 1,
        "未销号": 3,
    }
    assert f'href="/hazards/{old}"' in page and f'href="/hazards/{fire}"' in page


@pytest.mark.parametrize(
    "query",
    [
        "grade=urgent",
        "status=lost",
        "source=rumour",
        "overdue=maybe",
        "level=9",
        "level=x",
        "from=2026-13-01",
        "per_page=7",
        "page=x",
        "sort=title",
        "order=up",
        "region=999999",
        "from=2026-05-02&to=2026-05-01",
    ],
)
def test_ledger_refuses_bad_filters_with_422(client: FlaskClient, login: Login, query: str) -> None:
    as_user(client, login, "wu_reviewer")
    assert client.get("/hazards?" + query).status_code == 422
    assert client.get("/hazards/export.xlsx?" + query).status_code == 422


def test_ledger_pages_through_many_hazards(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
    world: DemoWorld,
) -> None:
    with committed.begin() as session:
        actor = world.actor(session, "chen_safety")
        for n in range(23):
            data = hazard_data(
                world,
                title=f"批量隐患{n:02d}",
                discovered_at=dt.datetime(2026, 5, 1, tzinfo=dt.UTC) + dt.timedelta(hours=n),
            )
            runtime.register_hazard(session, app_ctx, actor=actor, data=data)
    as_user(client, login, "chen_safety")
    first = text(client.get("/hazards?sort=discovered_at&order=asc"))
    assert first.count('<td class="nowrap"><a href="/hazards/') == 20
    assert "批量隐患00" in first and "批量隐患19" in first and "批量隐患20" not in first
    assert "第 1/2 页，共 23 条" in first
    assert 'rel="next"' in first and "page=2" in first
    second = text(client.get("/hazards?sort=discovered_at&order=asc&page=2"))
    assert second.count('<td class="nowrap"><a href="/hazards/') == 3
    assert "批量隐患22" in second and 'rel="prev"' in second
    assert text(client.get("/hazards?per_page=50")).count('<td class="nowrap"><a href="/hazards/') == 23
    assert "没有符合条件的隐患" in text(client.get("/hazards?page=9"))


def test_ledger_in_english(client: FlaskClient, login: Login, two_counties: dict[str, int]) -> None:
    as_user(client, login, "wu_reviewer")
    client.get("/lang/en")
    page = text(client.get("/hazards"))
    assert "Hazard register" in page and "Export to Excel" in page and "Rectify by deadline" not in page


# --- the export ---------------------------------------------------------------------------------


def _workbook(response: object) -> list[list[object]]:
    wb = load_workbook(io.BytesIO(response.get_data()))  # type: ignore[attr-defined]
    return [list(row) for row in wb.active.iter_rows(values_only=True)]


def test_export_is_the_filtered_ledger_as_xlsx(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
    world: DemoWorld,
) -> None:
    hazard_id = register(
        committed,
        app_ctx,
        world,
        "chen_safety",
        title="导出用重大隐患",
        grade="major",
        discovered_at=dt.datetime(2026, 4, 1, 17, 30, tzinfo=dt.UTC),  # 04-02 01:30 Beijing
        interim_measures="设置警戒区",
        stop_production=True,
    )
    register(committed, app_ctx, world, "chen_safety", title="不导出的一般隐患")
    as_user(client, login, "wu_reviewer")
    response = client.get("/hazards/export.xlsx?grade=major&sort=number")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    encoded = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert (
        encoded
        and unquote(encoded.group(1)).startswith("隐患台账_")
        and unquote(encoded.group(1)).endswith(".xlsx")
    )
    assert response.headers["Cache-Control"] == "no-store"
    rows = _workbook(response)
    assert rows[0][0] == "隐患台账"
    assert "导出人：吴刚（县应急局审核）" in str(rows[1][0]) and "共 1 条" in str(rows[1][0])
    assert rows[2][0] == "筛选条件：等级：重大"
    header = rows[3]
    assert header[:4] == ["隐患编号", "隐患名称", "生产经营单位", "统一社会信用代码"]
    data = [dict(zip(header, row, strict=True)) for row in rows[4:]]
    assert len(data) == 1
    row = data[0]
    with committed() as session:
        number = session.get_one(Hazard, hazard_id).number
    assert row["隐患编号"] == number
    assert row["隐患名称"] == "导出用重大隐患"
    assert row["生产经营单位"] == "郎溪县华宇化工有限公司"
    assert row["属地"] == "东门村"
    assert row["行业"] == "危险化学品"
    assert row["牵头部门"] == "郎溪县应急管理局"
    assert row["等级"] == "重大" and row["状态"] == "双报告" and row["是否逾期"] == "否"
    assert row["发现时间"] == dt.datetime(2026, 4, 2, 1, 30)  # business time, as an Excel date
    assert row["整改期间防范措施"] == "设置警戒区" and row["停产停业"] == "是"


def test_export_respects_the_visibility_matrix(
    client: FlaskClient, login: Login, two_counties: dict[str, int]
) -> None:
    as_user(client, login, "ma_gd")
    rows = _workbook(client.get("/hazards/export.xlsx"))
    assert rows[2][0] == "筛选条件：无（全部可见隐患）"
    assert [r[1] for r in rows[4:]] == ["广德甲醇罐区切断阀缺失"]


def test_export_of_nothing_still_has_the_headers(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "gao_modeler")  # a process administrator sees no hazards
    rows = _workbook(client.get("/hazards/export.xlsx"))
    assert rows[3][0] == "隐患编号" and len(rows) == 4


# --- registration --------------------------------------------------------------------------------


def _form(world: DemoWorld, **overrides: str | list[str]) -> dict[str, object]:
    form: dict[str, object] = {
        "enterprise_id": str(world.enterprises["chem"].id),
        "sector_code": "",
        "title": "液氨储罐区喷淋设施失效",
        "location": "液氨储罐区",
        "source": "self_check",
        "description": "液氨储罐区喷淋水管路阀门锈死，无法开启。",
        "discovered_at": "2026-04-01T09:30",
        "discovered_by": "陈静",
        "grade": "general",
        "handling_type": "deadline",
        "determination_basis": "《危险化学品企业安全风险隐患排查治理导则》",
        "deadline": "",
        "listed_level": "",
        "interim_measures": "",
    }
    form.update(overrides)
    return form


def test_registration_form_offers_only_enterprises_in_scope(
    client: FlaskClient, login: Login, world: DemoWorld
) -> None:
    as_user(client, login, "chen_safety")
    page = text(client.get("/hazards/new"))
    assert "郎溪县华宇化工有限公司" in page
    assert "金桥商贸广场" not in page and "广德市恒通化工" not in page
    assert 'name="lead_department_id"' not in page  # enterprise staff do not name departments
    assert 'name="discovered_at"' in page and 'name="handling_type"' in page
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    as_user(client, login, "wu_reviewer")  # 县应急局 leads hazchem, industry and mines in 郎溪
    page = text(client.get("/hazards/new"))
    assert "郎溪县华宇化工有限公司" in page
    assert "金桥商贸广场" not in page and "广德市恒通化工" not in page
    assert (
        'name="lead_department_id"' in page and "宣城市应急管理局" in page and "广德市应急管理局" not in page
    )
    client.post("/logout", data={"csrf_token": csrf_of(client)})

    as_user(client, login, "he_office")  # 安委办: the whole county
    page = text(client.get("/hazards/new"))
    assert "郎溪县华宇化工有限公司" in page and "金桥商贸广场" in page and "广德市恒通化工" not in page


def test_register_a_hazard_and_land_on_its_page(
    client: FlaskClient, login: Login, world: DemoWorld, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "chen_safety")
    response = client.post(
        "/hazards/new",
        data={
            "csrf_token": csrf_of(client),
            **_form(world, stop_production="1", interim_measures="设置警戒"),
        },
    )
    assert response.status_code == 302, text(response)
    hazard_id = int(response.headers["Location"].rsplit("/", 1)[1])
    with committed() as session:
        hazard = session.get_one(Hazard, hazard_id)
        assert hazard.title == "液氨储罐区喷淋设施失效"
        assert hazard.discovered_at == dt.datetime(2026, 4, 1, 1, 30, tzinfo=dt.UTC)  # 09:30 Beijing
        assert hazard.sector_code == "hazchem"  # the enterprise's
        assert hazard.stop_production and hazard.interim_measures == "设置警戒"
        assert hazard.deadline is None and hazard.handling_type == "deadline"
        assert hazard.discovered_by == "陈静"
        number = hazard.number
    page = text(client.get(response.headers["Location"]))
    assert number in page and "已登记隐患" in page and "上传整改前照片" in page


def test_register_with_backfilled_deadline_listing_and_departments(
    client: FlaskClient, login: Login, world: DemoWorld, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "wu_reviewer")
    form = _form(
        world,
        grade="major",
        handling_type="immediate",  # ignored: only 一般 hazards are fixed on the spot
        source="inspection",
        deadline="2026-05-10",
        listed_level="3",
        lead_department_id=str(world.departments["lx_emergency"].id),
        co_department_ids=[str(world.departments["lx_fire"].id)],
    )
    response = client.post("/hazards/new", data={"csrf_token": csrf_of(client), **form})
    assert response.status_code == 302, text(response)
    with committed() as session:
        hazard = session.get_one(Hazard, int(response.headers["Location"].rsplit("/", 1)[1]))
        assert hazard.grade == "major" and hazard.handling_type == "deadline"
        assert hazard.deadline == dt.datetime(2026, 5, 10, 15, 59, 59, tzinfo=dt.UTC)  # end of day, Beijing
        assert hazard.listed_level == 3
        assert hazard.lead_department_id == world.departments["lx_emergency"].id
        assert [d.department_id for d in hazard.co_departments] == [world.departments["lx_fire"].id]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"title": ""}, "title", "必填"),
        ({"enterprise_id": ""}, "enterprise_id", "必须是企业编号"),
        ({"grade": "urgent"}, "grade", "必须是 general"),
        ({"discovered_at": ""}, "discovered_at", "必填"),
        ({"discovered_at": "yesterday"}, "discovered_at", "时间格式"),
        ({"discovered_at": "2099-01-01T08:00"}, "discovered_at", "不能晚于当前时间"),
        ({"deadline": "2026-02-30"}, "deadline", "日期格式"),
        ({"listed_level": "9"}, "listed_level", "挂牌级别必须是 1–4"),
        ({"sector_code": "space"}, "sector_code", "行业不存在"),
    ],
)
def test_registration_errors_are_422_and_keep_what_was_typed(
    client: FlaskClient,
    login: Login,
    world: DemoWorld,
    committed: sessionmaker[Session],
    overrides: dict[str, str],
    field: str,
    message: str,
) -> None:
    as_user(client, login, "chen_safety")
    form = _form(world, description="保留我输入的描述文字", **overrides)
    response = client.post("/hazards/new", data={"csrf_token": csrf_of(client), **form})
    assert response.status_code == 422
    page = text(response)
    assert f'id="{field}-error"' in page and message in page
    assert "保留我输入的描述文字" in page
    assert 'value="液氨储罐区"' in page
    with committed() as session:
        assert session.scalar(select(Hazard.id).where(Hazard.description == "保留我输入的描述文字")) is None


def test_registration_out_of_scope_is_403_with_the_form(
    client: FlaskClient, login: Login, world: DemoWorld
) -> None:
    as_user(client, login, "chen_safety")
    form = _form(world, enterprise_id=str(world.enterprises["gd_chem"].id))
    response = client.post("/hazards/new", data={"csrf_token": csrf_of(client), **form})
    assert response.status_code == 403
    assert "您无权为该企业登记隐患" in text(response) and "保留" not in text(response)
    assert 'value="液氨储罐区"' in text(response)
    # enterprise staff may not name departments, even by posting the field
    form = _form(world, lead_department_id=str(world.departments["lx_emergency"].id))
    response = client.post("/hazards/new", data={"csrf_token": csrf_of(client), **form})
    assert response.status_code == 403
    assert "只有负有监管职责的部门" in text(response)


def test_registration_needs_the_csrf_token(client: FlaskClient, login: Login, world: DemoWorld) -> None:
    as_user(client, login, "chen_safety")
    assert client.post("/hazards/new", data=_form(world)).status_code == 400


# --- the hazard file -----------------------------------------------------------------------------


def test_hazard_page_shows_record_tasks_timeline_submissions_and_attachments(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._rejected_once(seeder)  # planned, rectified, rejected at verification
    seeder.progress(hazard_id, "zhang_rectifier", 50, "重新送检中")
    as_user(client, login, "wu_reviewer")
    response = client.get(f"/hazards/{hazard_id}")
    assert response.status_code == 200
    page = text(response)
    with committed() as session:
        hazard = session.get_one(Hazard, hazard_id)
        rectify = session.scalars(
            select(WorkItem).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
        ).one()
        before = session.scalars(
            select(Attachment).where(Attachment.hazard_id == hazard_id, Attachment.phase == "before")
        ).first()
    # the record, 五落实 and the region chain
    assert hazard.number in page and "安全阀超期未校验" in page
    assert "91341821MA2N0CHEM1" in page and "安徽省 › 宣城市 › 郎溪县 › 建平镇 › 东门村" in page
    assert "拆下送检并重新安装" in page and "5,000.00 元" in page and "整改完成前设置警示标志" in page
    # open tasks link to the task pages
    assert f'href="/tasks/{rectify.id}"' in page and "限期整改" in page
    # the timeline in Chinese with names
    for label in ("登记", "生成待办", "办理", "更新整改进展"):
        assert f"<strong>{label}</strong>" in page
    assert "结论：不通过" in page and "陈静（安全管理员）" in page and "整改进度 50%" in page
    # submissions with the form's labels and choice labels
    assert "整改验收" in page and "验收结论" in page and "不通过" in page
    assert "校验报告未加盖检验机构印章" in page
    # attachments: thumbnails and links to the attachment views
    assert before is not None
    assert f'href="/attachments/{before.id}"' in page and f'src="/attachments/{before.id}/thumb"' in page
    assert "整改前" in page and "整改后" in page
    # the diagram with markers
    markers = json.loads(re.search(r"data-bpmn-markers='([^']+)'", page).group(1).replace("&#34;", '"'))
    assert markers == {"completed": ["assign_plan", "verify"], "active": ["rectify"], "overdue": []}
    assert f'data-bpmn-url="/hazards/{hazard_id}/diagram.bpmn"' in page
    assert "bpmn-navigated-viewer" in page and "js/diagram.js" in page


def test_markers_show_overdue_items_and_fired_timers(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_verify(seeder)
    with committed.begin() as session:
        session.execute(
            update(WorkItem)
            .where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
            .values(due_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        )
    as_user(client, login, "chen_safety")
    page = text(client.get(f"/hazards/{hazard_id}"))
    raw = re.search(r"data-bpmn-markers='([^']+)'", page).group(1)
    markers = json.loads(raw.replace("&#34;", '"'))
    assert markers["active"] == ["verify"] and markers["overdue"] == ["verify"]
    assert {"assign_plan", "rectify"} <= set(markers["completed"])
    assert "已逾期" in page


def test_hazard_page_of_a_closed_and_voided_hazard(
    client: FlaskClient, login: Login, seeder: demo._Seeder
) -> None:
    closed = demo._closed(seeder)
    as_user(client, login, "wu_reviewer")
    page = text(client.get(f"/hazards/{closed}"))
    assert "已销号" in page and "<strong>销号</strong>" in page and "当前没有待办任务" in page
    assert "上传整改前照片" not in page  # nothing more to attach
    seeder.numbers["at_rectify"] = "YH-TEST"
    voided = demo._voided(seeder)
    page = text(client.get(f"/hazards/{voided}"))
    assert "<strong>作废</strong>" in page and "与 YH-TEST 为同一隐患，重复登记" in page


def test_hazard_page_lists_its_notices(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    app_ctx: EngineContext,
    world: DemoWorld,
) -> None:
    from .test_notices_pages import issue

    hazard_id = register(committed, app_ctx, world, "chen_safety")
    as_user(client, login, "wu_reviewer")
    page = text(client.get(f"/hazards/{hazard_id}"))
    assert "尚未签发督办文书" in page[page.index('id="notices"') :]
    notice_id, number = issue(committed, app_ctx, hazard_id, "letter")
    page = text(client.get(f"/hazards/{hazard_id}"))
    section = page[page.index('id="notices"') : page.index('id="diagram"')]
    assert number in section and "督办函（函告）" in section and "已签发" in section
    assert f'href="/notices/{notice_id}"' in section and f'href="/notices/{notice_id}/print"' in section
    with committed.begin() as session:
        runtime.record_violation(
            session,
            app_ctx,
            hazard_id=hazard_id,
            actor=world.actor(session, "wu_reviewer"),
            kind="refusal",
            note="多次督促仍拒不整改",
        )
    page = text(client.get(f"/hazards/{hazard_id}"))
    timeline = page[page.index('id="timeline"') :]
    assert "认定违法行为" in timeline and "拒不整改：多次督促仍拒不整改" in timeline
    assert "L6 参照事故调查处理" in page


def test_hazard_page_and_diagram_are_404_out_of_scope(
    client: FlaskClient, login: Login, two_counties: dict[str, int]
) -> None:
    as_user(client, login, "ma_gd")
    assert client.get(f"/hazards/{two_counties['guangde']}").status_code == 200
    assert client.get(f"/hazards/{two_counties['langxi']}").status_code == 404
    assert client.get(f"/hazards/{two_counties['langxi']}/diagram.bpmn").status_code == 404
    assert client.get("/hazards/999999").status_code == 404
    response = client.post(
        f"/hazards/{two_counties['langxi']}/photos",
        data={"csrf_token": csrf_of(client), "photos": (io.BytesIO(PNG), "a.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 404


def test_diagram_serves_the_instance_definition(
    client: FlaskClient, login: Login, two_counties: dict[str, int]
) -> None:
    as_user(client, login, "ma_gd")
    response = client.get(f"/hazards/{two_counties['guangde']}/diagram.bpmn")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert 'id="hazard_major"' in text(response) and "bpmndi:BPMNDiagram" in text(response)


def test_upload_before_photos(
    client: FlaskClient, login: Login, two_counties: dict[str, int], committed: sessionmaker[Session]
) -> None:
    hazard_id = two_counties["langxi"]
    as_user(client, login, "chen_safety")
    response = client.post(
        f"/hazards/{hazard_id}/photos",
        data={
            "csrf_token": csrf_of(client),
            "photos": [(io.BytesIO(PNG), "现场.png"), (io.BytesIO(demo._png("2")), "b.png")],
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/hazards/{hazard_id}#attachments"
    with committed() as session:
        rows = session.scalars(select(Attachment).where(Attachment.hazard_id == hazard_id)).all()
        assert sorted((a.phase, a.mime_type) for a in rows) == [("before", "image/png")] * 2
        assert {a.filename for a in rows} == {"现场.png", "b.png"}
    assert "已上传 2 张整改前照片" in text(client.get(f"/hazards/{hazard_id}"))
    # not a photo, or nothing chosen: 422 on the page saying why
    response = client.post(
        f"/hazards/{hazard_id}/photos",
        data={"csrf_token": csrf_of(client), "photos": (io.BytesIO(b"<html>not an image</html>"), "x.png")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422 and "类型不受支持" in text(response)
    response = client.post(f"/hazards/{hazard_id}/photos", data={"csrf_token": csrf_of(client)})
    assert response.status_code == 422 and "请选择要上传的照片" in text(response)


# --- the message catalogue -----------------------------------------------------------------------

CHECKED = [
    *WEB.glob("templates/hazards/*.html"),
    *WEB.glob("templates/reviews/*.html"),
    *WEB.glob("templates/admin/*.html"),
    *(WEB / name for name in ("export.py", "pages/hazards.py", "pages/reviews.py", "pages/admin.py")),
]


def test_every_message_of_these_pages_has_an_english_entry() -> None:
    missing = set()
    for path in CHECKED:
        for _quote, message in LITERAL.findall(path.read_text(encoding="utf-8")):
            if re.search(r"[\u4e00-\u9fff]", message) and message not in EN:
                missing.add(f"{path.name}: {message}")
    from web.pages import hazards

    for labels in (hazards.EVENT_LABELS, hazards.SORT_LABELS, hazards.LISTED_LABELS, hazards.PHASE_LABELS):
        missing.update(v for v in labels.values() if v not in EN)
    assert not missing, f"add English entries to web.i18n.EN: {sorted(missing)}"


def test_timeline_words_decisions_as_their_forms_and_names_who_closed(
    client: FlaskClient, login: Login, seeder: demo._Seeder, committed: sessionmaker[Session]
) -> None:
    hazard_id = demo._at_closure_review(seeder)
    reason = "接地电阻检测报告缺少检测单位盖章，请补充"
    seeder.closure_review(hazard_id, "wu_reviewer", passed=False, opinion=reason)
    photo = seeder.upload(hazard_id, "liu_rectifier", "after")
    seeder.complete(
        hazard_id,
        "rectify",
        "liu_rectifier",
        {
            "summary": "补做检测",
            "after_photos": [photo],
            "actual_funds": "2300.00",
            "completed_on": seeder.day(0),
        },
    )
    seeder.verify(hazard_id, "chen_safety", passed=True, opinion="整改到位")
    seeder.closure_review(hazard_id, "wu_reviewer", passed=True, opinion="资料齐全，同意销号")
    as_user(client, login, "chen_safety")
    page = text(client.get(f"/hazards/{hazard_id}"))
    timeline = page.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    # the closure rejection in the form's own words, with its reason
    assert "结论：驳回" in timeline and f"意见：{reason}" in timeline
    assert "结论：同意销号" in timeline and "结论：通过" in timeline  # 验收: 通过
    assert "结论：不通过" not in timeline
    # 销号 names the reviewer who completed the closing task, not 系统
    closed = timeline.split("<strong>销号</strong>", 1)[1].split("</li>", 1)[0]
    assert "吴刚" in closed and "系统" not in closed
    # money labelled in 元 is not suffixed again
    assert "2300.00 元" not in page and "2300.00" in page
    # the end event is completed on the closed loop's diagram
    markers = json.loads(re.search(r"data-bpmn-markers='([^']+)'", page).group(1).replace("&#34;", '"'))
    assert "end_closed" in markers["completed"] and markers["active"] == []
    assert "rectify_remind_end" not in markers["completed"]


def test_the_major_loop_marks_its_end_event_when_closed(
    client: FlaskClient, login: Login, seeder: demo._Seeder
) -> None:
    hazard_id = demo._major_closed(seeder)
    as_user(client, login, "wu_reviewer")
    page = text(client.get(f"/hazards/{hazard_id}"))
    markers = json.loads(re.search(r"data-bpmn-markers='([^']+)'", page).group(1).replace("&#34;", '"'))
    assert "end_closed" in markers["completed"]
