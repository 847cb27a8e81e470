"""Administration: users, roles (memberships), organisations, incidents (dead timer jobs) and their retry."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import db as dbmod
from engine import runtime
from engine.demo import DemoWorld
from engine.models import Department
from engine.models import DepartmentSector
from engine.models import Enterprise
from engine.models import Incident
from engine.models import LoginAttempt
from engine.models import Membership
from engine.models import Region
from engine.models import Sector
from engine.models import TimerJob
from engine.models import User
from engine.models import WorkItem
from engine.timers import MAX_ATTEMPTS
from tests.factories import hazard_data
from tests.factories import plan_form
from web.auth import verify_password
from web.session import app_state

Login = Callable[..., object]
PREFIX = "t_adm_"
NEW_PASSWORD = "Sichuan-2026-new"


@pytest.fixture
def cleanup(engine: Engine) -> Iterator[None]:
    """Delete the users and organisations the tests create (all named with PREFIX / test codes)."""
    yield
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        users = select(User.id).where(User.username.like(PREFIX + "%"))
        session.execute(delete(Membership).where(Membership.user_id.in_(users)))
        session.execute(delete(User).where(User.username.like(PREFIX + "%")))
        session.execute(delete(LoginAttempt).where(LoginAttempt.username.like(PREFIX + "%")))
        session.execute(delete(Enterprise).where(Enterprise.name.like("测试%")))
        depts = select(Department.id).where(Department.name.like("测试%"))
        session.execute(delete(DepartmentSector).where(DepartmentSector.department_id.in_(depts)))
        session.execute(delete(Department).where(Department.name.like("测试%")))
        session.execute(delete(Region).where(Region.name.like("测试%")))
        session.execute(delete(Sector).where(Sector.code == "t_water"))


def as_user(client: FlaskClient, login: Login, username: str, password: str | None = None) -> FlaskClient:
    response = login(client, username) if password is None else login(client, username, password)
    assert response.status_code == 302, response.get_data(as_text=True)  # type: ignore[attr-defined]
    return client


def csrf_of(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return str(sess["_csrf"])


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


def post(client: FlaskClient, url: str, **data: object) -> object:
    return client.post(url, data={"csrf_token": csrf_of(client), **data})


def user_id(committed: sessionmaker[Session], username: str) -> int:
    with committed() as session:
        return session.scalars(select(User.id).where(User.username == username)).one()


# --- who may come in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/admin", "/admin/users", "/admin/users/1", "/admin/incidents", "/admin/orgs"],
)
def test_admin_pages_are_403_for_other_roles(client: FlaskClient, login: Login, path: str) -> None:
    assert client.get(path).status_code == 302  # anonymous: to the login form
    as_user(client, login, "wu_reviewer")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/admin/users",
        "/admin/users/1/active",
        "/admin/users/1/password",
        "/admin/users/1/memberships",
        "/admin/memberships/1/delete",
        "/admin/regions",
        "/admin/sectors",
        "/admin/departments",
        "/admin/enterprises",
        "/admin/incidents/1/retry",
    ],
)
def test_admin_changes_are_403_for_other_roles(client: FlaskClient, login: Login, path: str) -> None:
    as_user(client, login, "he_office")  # 安委办 may look at the organisations, not change them
    assert post(client, path, name="x").status_code == 403  # type: ignore[attr-defined]


def test_the_office_views_its_region_organisations(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "he_office")
    response = client.get("/admin")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/orgs"
    page = text(client.get("/admin/orgs"))
    assert "郎溪县应急管理局" in page and "郎溪县华宇化工有限公司" in page and "宣城市应急管理局" in page
    assert "广德市恒通化工有限公司" not in page and "广德市应急管理局" not in page
    assert "新增企业" not in page
    assert 'href="/admin/users"' not in page


def test_admin_overview(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin"))
    assert "系统管理" in page and "用户与角色" in page and "故障事件" in page
    assert 'href="/admin"' in page  # the navigation link is visible


# --- users and roles --------------------------------------------------------------------------------


def test_create_a_user_give_a_role_and_log_in(
    client: FlaskClient, login: Login, committed: sessionmaker[Session], world: DemoWorld, cleanup: None
) -> None:
    as_user(client, login, "admin")
    response = post(
        client, "/admin/users", username=PREFIX + "liu", display_name="刘新（整改责任人）", password=""
    )
    assert response.status_code == 200  # type: ignore[attr-defined]
    page = text(response)
    generated = re.search(r'<code class="mono">([^<]+)</code>', page)
    assert generated, "the generated password is shown once"
    assert "已创建用户" in page and "该用户还没有角色" in page
    new_id = user_id(committed, PREFIX + "liu")
    with committed() as session:
        user = session.get_one(User, new_id)
        assert user.password_hash.startswith("$argon2id$") and user.active
        assert verify_password(
            user.password_hash, generated.group(1), hasher=app_state(client.application).hasher
        )

    response = post(
        client,
        f"/admin/users/{new_id}/memberships",
        role="rectifier",
        enterprise_id=world.enterprises["chem"].id,
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    page = text(client.get(f"/admin/users/{new_id}"))
    assert "整改责任人" in page and "郎溪县华宇化工有限公司" in page
    with committed() as session:
        (membership,) = session.scalars(select(Membership).where(Membership.user_id == new_id))
        assert (
            membership.region_id == world.enterprises["chem"].region_id
        )  # stored with the enterprise's region

    # the new user logs in and sees their enterprise's ledger
    other = client.application.test_client()
    as_user(other, login, PREFIX + "liu", generated.group(1))
    assert other.get("/hazards").status_code == 200

    # deactivated: the session ends and logging in fails
    assert post(client, f"/admin/users/{new_id}/active", active="0").status_code == 302  # type: ignore[attr-defined]
    assert other.get("/hazards").status_code == 302
    assert login(other, PREFIX + "liu", generated.group(1)).status_code == 200  # type: ignore[attr-defined]
    assert post(client, f"/admin/users/{new_id}/active", active="1").status_code == 302  # type: ignore[attr-defined]

    # a password chosen by the administrator
    response = post(client, f"/admin/users/{new_id}/password", password=NEW_PASSWORD)
    assert response.status_code == 302  # type: ignore[attr-defined]
    as_user(other, login, PREFIX + "liu", NEW_PASSWORD)
    response = post(client, f"/admin/users/{new_id}/password", password="")
    assert response.status_code == 200 and '<code class="mono">' in text(response)  # type: ignore[attr-defined]

    # and the role removed again
    assert post(client, f"/admin/memberships/{membership.id}/delete").status_code == 302  # type: ignore[attr-defined]
    with committed() as session:
        assert session.scalars(select(Membership).where(Membership.user_id == new_id)).first() is None


@pytest.mark.parametrize(
    ("form", "field_message"),
    [
        ({"username": "wu_reviewer", "display_name": "重复", "password": NEW_PASSWORD}, "该用户名已被使用"),
        ({"username": "坏 名字", "display_name": "x", "password": NEW_PASSWORD}, "用户名为 2–64 位"),
        ({"username": PREFIX + "a", "display_name": "", "password": NEW_PASSWORD}, "必填"),
        ({"username": PREFIX + "b", "display_name": "短密码", "password": "short1"}, "密码至少 10 个字符"),
        ({"username": PREFIX + "c", "display_name": "纯数字", "password": "1234567890"}, "不能只由数字"),
    ],
)
def test_create_user_errors_are_422_keeping_values(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    cleanup: None,
    form: dict[str, str],
    field_message: str,
) -> None:
    as_user(client, login, "admin")
    response = post(client, "/admin/users", **form)
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = text(response)
    assert field_message in page
    if form["display_name"]:
        assert f'value="{form["display_name"]}"' in page
    with committed() as session:
        assert session.scalar(select(User.id).where(User.username.like(PREFIX + "%"))) is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"role": "rectifier"}, "企业人员角色必须选择所属企业"),
        ({"role": "dept_reviewer"}, "部门人员角色必须选择所属部门"),
        ({"role": "grid_worker"}, "该角色必须选择所辖地区"),
        ({"role": "office_admin", "department_id": "lx_emergency"}, "不是安委办"),
        ({"role": "emperor"}, "未知的角色"),
        ({"role": "rectifier", "enterprise_id": "999999"}, "不存在"),
    ],
)
def test_membership_errors_are_422(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    world: DemoWorld,
    form: dict[str, str],
    message: str,
) -> None:
    if form.get("department_id") in world.departments:
        form = {**form, "department_id": str(world.departments[form["department_id"]].id)}
    target = user_id(committed, "sun_grid")
    as_user(client, login, "admin")
    response = post(client, f"/admin/users/{target}/memberships", **form)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in text(response)


def test_duplicate_membership_and_own_account_are_refused(
    client: FlaskClient, login: Login, committed: sessionmaker[Session], world: DemoWorld
) -> None:
    as_user(client, login, "admin")
    grid = user_id(committed, "sun_grid")
    response = post(
        client,
        f"/admin/users/{grid}/memberships",
        role="grid_worker",
        region_id=world.regions["341821100"].id,
    )
    assert response.status_code == 422 and "该用户已有此角色和范围" in text(response)  # type: ignore[attr-defined]
    me = user_id(committed, "admin")
    response = post(client, f"/admin/users/{me}/active", active="0")
    assert response.status_code == 422 and "不能停用自己的账号" in text(response)  # type: ignore[attr-defined]
    with committed() as session:
        mine = session.scalars(select(Membership.id).where(Membership.user_id == me)).one()
    response = post(client, f"/admin/memberships/{mine}/delete")
    assert response.status_code == 422 and "不能移除自己的系统管理员角色" in text(response)  # type: ignore[attr-defined]
    assert client.get("/admin/users/999999").status_code == 404
    assert post(client, "/admin/memberships/999999/delete").status_code == 404  # type: ignore[attr-defined]
    response = post(client, f"/admin/users/{grid}/password", password="abc")
    assert response.status_code == 422 and "密码至少" in text(response)  # type: ignore[attr-defined]


def test_user_list_and_search(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin/users"))
    assert "wu_reviewer" in page and "吴刚（县应急局审核）" in page and "部门审核人员" in page
    page = text(client.get("/admin/users?q=吴刚"))
    assert "wu_reviewer" in page and "zhang_rectifier" not in page


# --- organisations ---------------------------------------------------------------------------------


def test_create_region_sector_department_and_enterprise(
    client: FlaskClient, login: Login, committed: sessionmaker[Session], world: DemoWorld, cleanup: None
) -> None:
    as_user(client, login, "admin")
    response = post(
        client,
        "/admin/regions",
        code="341821101",
        name="测试十字镇",
        level="township",
        parent_id=world.regions["341821"].id,
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    with committed() as session:
        region = session.scalars(select(Region).where(Region.code == "341821101")).one()
        assert region.path == "/34/3418/341821/341821101/"
    assert post(client, "/admin/sectors", code="t_water", name="水利工程").status_code == 302  # type: ignore[attr-defined]
    response = client.post(
        "/admin/departments",
        data={
            "csrf_token": csrf_of(client),
            "name": "测试县水利局",
            "abbreviation": "郎水",
            "region_id": world.regions["341821"].id,
            "lead_sectors": ["t_water"],
            "co_sectors": ["construction"],
        },
    )
    assert response.status_code == 302
    with committed() as session:
        dept = session.scalars(select(Department).where(Department.name == "测试县水利局")).one()
        assert sorted((s.sector_code, s.leads) for s in dept.sectors) == [
            ("construction", False),
            ("t_water", True),
        ]
    response = post(
        client,
        "/admin/enterprises",
        name="测试十字镇水厂",
        credit_code="91341821ma2n0wtr5x",
        region_id=region.id,
        sector_code="t_water",
        principal_name="周海",
        actual_controller="",
        high_risk="1",
    )
    assert response.status_code == 302  # type: ignore[attr-defined]
    with committed() as session:
        ent = session.scalars(select(Enterprise).where(Enterprise.name == "测试十字镇水厂")).one()
        assert ent.credit_code == "91341821MA2N0WTR5X" and ent.high_risk and ent.actual_controller is None
    page = text(client.get("/admin/orgs"))
    for shown in ("测试十字镇", "水利工程", "测试县水利局", "测试十字镇水厂", "91341821MA2N0WTR5X"):
        assert shown in page


@pytest.mark.parametrize(
    ("url", "form", "message"),
    [
        ("/admin/regions", {"code": "34", "name": "测试重复", "level": "province"}, "该区划代码已存在"),
        ("/admin/regions", {"code": "abc", "name": "测试", "level": "county"}, "区划代码为 2–24 位数字"),
        (
            "/admin/regions",
            {"code": "341899", "name": "测试县", "level": "county"},
            "除省级外必须选择上级地区",
        ),
        (
            "/admin/regions",
            {"code": "341898", "name": "测试村", "level": "city", "parent_id": "@341821"},
            "行政层级必须低于上级地区",
        ),
        ("/admin/sectors", {"code": "Fire!", "name": "测试"}, "行业代码为"),
        ("/admin/sectors", {"code": "fire", "name": "测试"}, "该行业代码已存在"),
        ("/admin/departments", {"name": "测试局", "abbreviation": "", "region_id": ""}, "必须选择所在地区"),
        (
            "/admin/departments",
            {"name": "郎溪县应急管理局", "abbreviation": "x", "region_id": "@341821"},
            "该地区已有同名部门",
        ),
        (
            "/admin/enterprises",
            {"name": "测试厂", "credit_code": "123", "principal_name": "x"},
            "统一社会信用代码为 18 位",
        ),
        (
            "/admin/enterprises",
            {"name": "测试厂", "credit_code": "91341821MA2N0CHEM1", "principal_name": "x"},
            "已登记",
        ),
    ],
)
def test_organisation_errors_are_422_keeping_values(
    client: FlaskClient,
    login: Login,
    world: DemoWorld,
    cleanup: None,
    url: str,
    form: dict[str, str],
    message: str,
) -> None:
    form = {k: str(world.regions[v[1:]].id) if v.startswith("@") else v for k, v in form.items()}
    as_user(client, login, "admin")
    response = post(client, url, **form)
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = text(response)
    assert message in page
    assert f'value="{form["name"]}"' in page  # what was typed is kept, and its form is open


# --- incidents -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadJob:
    job_id: int
    incident_id: int


@pytest.fixture
def dead_job(app: Flask, committed: sessionmaker[Session], world: DemoWorld) -> DeadJob:
    """A hazard whose plan set a deadline; its reminder timer job dead with an incident, as the
    scheduler leaves it after the last attempt (engine/scheduler.py ``_bury``)."""
    ctx = app_state(app).ctx
    with committed.begin() as session:
        actor = world.actor(session, "chen_safety")
        hazard = runtime.register_hazard(session, ctx, actor=actor, data=hazard_data(world))
        hazard_id = hazard.id
    with committed.begin() as session:
        item_id = session.scalars(
            select(WorkItem.id).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
        ).one()
        today = ctx.clock.now().astimezone(ctx.tz).date()
        runtime.complete(
            session,
            ctx,
            work_item_id=item_id,
            actor=world.actor(session, "chen_safety"),
            form=plan_form(today + dt.timedelta(days=20)),
        )
    with committed.begin() as session:
        job = session.scalars(
            select(TimerJob)
            .where(TimerJob.hazard_id == hazard_id, TimerJob.state == "waiting")
            .order_by(TimerJob.id)
        ).first()
        assert job is not None
        error = "HandlerError: 服务任务处理器 remind 失败: SMTP 连接被拒绝"
        job.state = "dead"
        job.attempts = MAX_ATTEMPTS
        job.last_error = error
        incident = Incident(
            timer_job_id=job.id,
            instance_id=job.instance_id,
            hazard_id=hazard_id,
            error=error,
            attempts=MAX_ATTEMPTS,
            created_at=ctx.clock.now(),
        )
        session.add(incident)
        session.flush()
        return DeadJob(job.id, incident.id)


def test_incidents_list_and_retry(
    client: FlaskClient, login: Login, committed: sessionmaker[Session], dead_job: DeadJob, app: Flask
) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin"))
    assert re.search(r'<span class="stat-value">1</span><span class="stat-label">待处理故障事件', page)
    page = text(client.get("/admin/incidents"))
    assert "SMTP 连接被拒绝" in page and "储罐区可燃气体报警器失效" in page
    assert f'action="/admin/incidents/{dead_job.incident_id}/retry"' in page
    before = app_state(app).ctx.clock.now()
    response = post(client, f"/admin/incidents/{dead_job.incident_id}/retry")
    assert response.status_code == 302  # type: ignore[attr-defined]
    with committed() as session:
        job = session.get_one(TimerJob, dead_job.job_id)
        assert job.state == "waiting" and job.attempts == 0 and job.lock_owner is None
        assert job.available_at is not None
        assert before <= job.available_at <= app_state(app).ctx.clock.now()
        assert job.last_error  # kept for the record until the job runs
        incident = session.get_one(Incident, dead_job.incident_id)
        assert incident.state == "retried" and incident.resolved_at is not None
        assert (
            incident.resolved_by_id == session.scalars(select(User.id).where(User.username == "admin")).one()
        )
    page = text(client.get("/admin/incidents"))
    assert f"已重新排队定时任务 {dead_job.job_id}（rectify_remind）" in page and "没有故障事件" in page
    assert "最近已重试" in page  # the retried incident stays listed, without a retry button
    assert f'action="/admin/incidents/{dead_job.incident_id}/retry"' not in page
    # retrying again: it is no longer an open incident
    assert post(client, f"/admin/incidents/{dead_job.incident_id}/retry").status_code == 409  # type: ignore[attr-defined]
    assert post(client, "/admin/incidents/999999/retry").status_code == 404  # type: ignore[attr-defined]


def test_a_retried_job_fires_at_the_next_run(
    app: Flask, committed: sessionmaker[Session], dead_job: DeadJob
) -> None:
    from engine import admin
    from engine.timers import run_due

    ctx = app_state(app).ctx
    with committed.begin() as session:
        admin.retry_incident(session, incident_id=dead_job.incident_id, now=ctx.clock.now())
    run_due(committed, ctx)
    with committed() as session:
        job = session.get_one(TimerJob, dead_job.job_id)
        # the reminder is not due yet: the job waits for its own time, and nobody claimed it
        assert job.state == "waiting" and job.due_at > ctx.clock.now() and job.lock_owner is None


def test_incidents_need_the_admin(
    client: FlaskClient, login: Login, dead_job: DeadJob, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "wu_reviewer")
    assert client.get("/admin/incidents").status_code == 403
    assert post(client, f"/admin/incidents/{dead_job.incident_id}/retry").status_code == 403  # type: ignore[attr-defined]
    with committed() as session:
        assert session.get_one(TimerJob, dead_job.job_id).state == "dead"
        assert session.get_one(Incident, dead_job.incident_id).state == "open"


def test_nav_shows_administration_to_admins_only(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "zhang_rectifier")
    assert 'href="/admin"' not in text(client.get("/hazards"))
