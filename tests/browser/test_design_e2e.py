"""A department changes its sector's loop in the browser; new hazards follow, old ones stay (issue 5).

Setting (engine, committed database of the live server): 郎溪县应急管理局 leads 工贸 (industry_trade);
its process administrator 高远 has published version 1 of a 工贸 copy of the 一般隐患 loop, bound
to general hazards of the sector. 永安机械 (a 工贸 enterprise) registers hazard A on it: A runs
diagram v1, the national policy profile and the national plan form.

Then, in Chromium, 高远 (typing into the real pages):

1. **policy editor**: changes the 通报 offset from 10 to 5 working days and publishes the sector's
   profile;
2. **form editor**: adds a field 安全管理机构复核意见 to the plan form (整改方案) and publishes;
3. **modeler**: drops a task from the palette onto the flow after 限期整改, turns it into a user
   task, names it 主要负责人复核 and sets role, scope, form and status from the panel's lists, and
   publishes version 2.

Hazard B registered afterwards runs v2 with the sector's profile and form; A stays on v1 with the
national ones: B's plan task page shows the new field and A's does not; B's 通报 timer falls 5
working days after its deadline and A's 10; after 限期整改, B stops at the new review step and A
goes straight to 整改验收. The heatmaps of v1 and v2 each show their hazard's open work item.
Screenshots: test-artifacts/browser/design-e2e-*.png.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import design
from engine import policy
from engine import runtime
from engine.access import load_actor
from engine.calendar import load_calendar
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import DemoWorld
from engine.demo import open_item
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import Enterprise
from engine.models import Event
from engine.models import FormVersion
from engine.models import Hazard
from engine.models import Membership
from engine.models import PolicyProfile
from engine.models import ProcessInstance
from engine.models import Role
from engine.models import TimerJob
from engine.models import User
from engine.models import WorkItem
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot
from tests.conftest import delete_hazards
from tests.factories import hazard_data
from tests.factories import plan_form
from web.session import app_state

pytestmark = pytest.mark.browser

MODELER = "gao_modeler"
ENTERPRISE_USER = "e2e_yongan"
SECTOR = "industry_trade"
KEY = "hazard_general_industry_trade"
NEW_FIELD = "safety_dept_review"
NEW_FIELD_LABEL = "安全管理机构复核意见"
REVIEW_NAME = "主要负责人复核"
CANVAS = "#hl-modeler [data-modeler-canvas]"


def expect(target: Any) -> Any:
    """Playwright's ``expect``, imported late: without Playwright the ``browser`` fixture skips."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass(frozen=True)
class Setting:
    old_hazard_id: int
    enterprise_id: int
    due: dt.date


def _register(session: Session, ctx: Any, world: DemoWorld, enterprise_id: int, title: str) -> int:
    user = session.scalars(select(User).where(User.username == ENTERPRISE_USER)).one()
    data = hazard_data(
        world,
        title=title,
        enterprise_id=enterprise_id,
        location="2号厂房冲压车间",
        determination_basis="《工贸企业重大事故隐患判定标准》",
        discovered_at=ctx.clock.now() - dt.timedelta(hours=2),
    )
    return runtime.register_hazard(session, ctx, actor=load_actor(session, user.id), data=data).id


@pytest.fixture
def setting(
    app: Flask, world: DemoWorld, browser_settings: Settings, committed: sessionmaker[Session]
) -> Iterator[Setting]:
    del committed  # deletes the hazards afterwards
    from web.auth import hash_password
    from web.auth import make_hasher

    state = app_state(app)
    ctx = state.ctx
    hashed = hash_password(DEMO_PASSWORD, hasher=make_hasher(browser_settings))
    with state.sessions.begin() as session:
        modeler = session.scalars(select(User).where(User.username == MODELER)).one()
        previous = modeler.password_hash
        modeler.password_hash = hashed
        enterprise = session.scalars(
            select(Enterprise).where(Enterprise.credit_code == "91341821MA2N0YONG5")
        ).first()
        if enterprise is None:
            enterprise = Enterprise(
                name="郎溪县永安机械制造有限公司",
                credit_code="91341821MA2N0YONG5",
                region_id=world.regions["341821100"].id,
                sector_code=SECTOR,
                principal_name="孙永安",
            )
            session.add(enterprise)
            session.flush()
            user = User(username=ENTERPRISE_USER, display_name="孙永安（永安机械）", password_hash=hashed)
            session.add(user)
            session.flush()
            for role in (Role.PRINCIPAL, Role.SAFETY_OFFICER, Role.RECTIFIER):
                session.add(Membership(user_id=user.id, role=role, enterprise_id=enterprise.id))
        enterprise_id = enterprise.id
        actor = world.actor(session, MODELER)
        design.copy_process_for_sector(session, actor, source_key="hazard_general", sector_code=SECTOR)
        xml, _revision, _version = design.diagram_source(session, KEY, SECTOR)
        published = design.publish_diagram(
            session,
            actor,
            key=KEY,
            sector_code=SECTOR,
            xml=xml.encode(),
            note="工贸行业首版",
            bind_grade="general",
        )
        assert published.version == 1
    with state.sessions.begin() as session:
        old_id = _register(session, ctx, world, enterprise_id, "冲压机光电保护装置失效（变更前登记）")
    yield Setting(old_id, enterprise_id, ctx.clock.now().astimezone(ctx.tz).date() + dt.timedelta(days=30))
    with state.sessions.begin() as session:
        session.scalars(select(User).where(User.username == MODELER)).one().password_hash = previous
        _forget_sector_designs(session, enterprise_id)


def _forget_sector_designs(session: Session, enterprise_id: int) -> None:
    """Leave the session database as the other tests expect it: no 工贸 designs, enterprise or user.

    The hazards go first (``committed`` would delete them only after this fixture), since their
    instances and work items pin the versions deleted here.
    """
    delete_hazards(session)
    session.execute(
        delete(DefinitionBindingHistory).where(
            or_(DefinitionBindingHistory.process_key == KEY, DefinitionBindingHistory.sector_code == SECTOR)
        )
    )
    session.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key == KEY))
    session.execute(delete(DefinitionVersion).where(DefinitionVersion.process_key == KEY))
    for model in (FormVersion, PolicyProfile, DesignDraft, DesignEvent):
        session.execute(delete(model).where(model.sector_code == SECTOR))
    user_id = session.scalar(select(User.id).where(User.username == ENTERPRISE_USER))
    session.execute(delete(Membership).where(Membership.user_id == user_id))
    session.execute(delete(User).where(User.id == user_id))
    session.execute(delete(Enterprise).where(Enterprise.id == enterprise_id))


def log_in(page: Any, live_server: LiveServer, username: str, next_path: str) -> None:
    page.context.clear_cookies()
    page.goto(live_server.url(next_path))
    page.wait_for_url("**/login**")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click('form button[type="submit"]')
    page.wait_for_url(live_server.url(next_path))


def modeler(page: Any, script: str, arg: Any = None) -> Any:
    """Run ``script`` (a function of the bpmn-js modeler and ``arg``) in the page."""
    return page.evaluate(
        "([script, arg]) => (new Function('modeler', 'arg', script))("
        "document.getElementById('hl-modeler').hlModeler, arg)",
        [script, arg],
    )


def change_policy(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url(f"/design/policy?sector={SECTOR}"))
    rung = page.locator('[data-rung="circular"]')
    offset = rung.locator("[data-offset-value]")
    expect(offset).to_have_value("10")
    offset.fill("5")
    page.fill('input[name="note"]', "按县安委办通知，逾期5个工作日即通报")
    screenshot(page, "design-e2e-01-policy")
    page.click('button[name="action"][value="publish"]')
    expect(page.locator(".flash-success").first).to_contain_text("发布")
    expect(page.locator('[data-rung="circular"] [data-offset-value]')).to_have_value("5")


def add_plan_field(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url(f"/design/forms/rectification_plan?sector={SECTOR}"))
    rows = page.locator("[data-field-row]")
    before = rows.count()
    page.click("[data-add-field]")
    expect(rows).to_have_count(before + 1)
    row = rows.nth(before)
    row.locator('input[name$="-name"]').fill(NEW_FIELD)
    row.locator('input[name$="-label"]').fill(NEW_FIELD_LABEL)
    row.locator('select[name$="-type"]').select_option("text")
    row.locator('input[name$="-required"]').check()
    page.fill('input[name="note"]', "整改方案增加安全管理机构复核意见")
    screenshot(page, "design-e2e-02-form")
    page.click('button[name="action"][value="publish"]')
    expect(page.locator(".flash-success").first).to_contain_text("发布")


def add_review_step(page: Any, live_server: LiveServer) -> str:
    page.goto(live_server.url(f"/design/diagrams/{KEY}/edit"))
    page.wait_for_selector('#hl-modeler[data-state="ready"]')
    # Where the flow after 限期整改 is on the screen (its middle waypoint segment).
    point = modeler(
        page,
        """
        const flow = modeler.get('elementRegistry').get('flow_rectified');
        const canvas = modeler.get('canvas');
        canvas.scrollToElement(flow);
        const [a, b] = flow.waypoints.slice(-2);
        const vb = canvas.viewbox();
        const box = canvas._container.getBoundingClientRect();
        const x = (a.x + b.x) / 2, y = (a.y + b.y) / 2;
        return {x: box.left + (x - vb.x) * vb.scale, y: box.top + (y - vb.y) * vb.scale};
        """,
    )
    before = set(modeler(page, "return modeler.get('elementRegistry').getAll().map(e => e.id);"))
    page.click('.djs-palette [data-action="create.task"]')
    page.mouse.move(point["x"] - 5, point["y"])
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    added = [
        e
        for e in modeler(
            page, "return modeler.get('elementRegistry').getAll().map(e => ({id: e.id, type: e.type}));"
        )
        if e["id"] not in before and e["type"] == "bpmn:Task"
    ]
    assert len(added) == 1, added
    task_id = added[0]["id"]
    # the task was dropped onto the flow: 限期整改 now leads into it
    incoming = modeler(
        page,
        "return modeler.get('elementRegistry').get(arg).incoming.map(f => f.source.id);",
        task_id,
    )
    assert incoming == ["rectify"]
    # turn it into a user task through the context pad's replace menu
    page.click('.djs-context-pad [data-action="replace"]')
    page.click('.djs-popup [data-id="replace-with-user-task"]')
    review_id = modeler(
        page,
        """
        const tasks = modeler.get('elementRegistry').filter(e => e.type === 'bpmn:UserTask');
        const src = modeler.get('elementRegistry').get('rectify');
        return src.outgoing.map(f => f.target).find(t => t.type === 'bpmn:UserTask').id;
        """,
    )
    panel = page.locator("#hl-modeler [data-modeler-panel]")
    expect(panel.locator(f'.hl-panel-body[data-element="{review_id}"]')).to_be_visible()
    name = panel.locator('[data-property="name"]')
    name.fill(REVIEW_NAME)
    name.press("Tab")
    panel.locator('select[data-property="candidate_role"]').select_option("principal")
    panel.locator('select[data-property="org_scope"]').select_option("enterprise")
    panel.locator('select[data-property="form_key"]').select_option("principal_signoff")
    panel.locator('select[data-property="status"]').select_option("rectifying")
    screenshot(page, "design-e2e-03-modeler")
    page.click('[data-action="publish"]')
    dialog = page.locator("[data-modeler-publish-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("增加主要负责人复核环节")
    dialog.get_by_role("button", name="确认发布").click()
    expect(page.locator(".hl-modeler-message")).to_contain_text("已发布为第 2 版")
    screenshot(page, "design-e2e-04-published")
    return review_id


def plan_page_fields(page: Any, live_server: LiveServer, item_id: int) -> list[str]:
    page.goto(live_server.url(f"/tasks/{item_id}"))
    return page.locator("form [name]").evaluate_all("els => els.map(e => e.name)")


def test_department_changes_reach_new_hazards_only(
    page: Any, live_server: LiveServer, app: Flask, world: DemoWorld, setting: Setting
) -> None:
    state = app_state(app)
    ctx = state.ctx

    log_in(page, live_server, MODELER, "/design")
    change_policy(page, live_server)
    add_plan_field(page, live_server)
    review_id = add_review_step(page, live_server)

    with state.sessions.begin() as session:
        new_id = _register(session, ctx, world, setting.enterprise_id, "冲压机双手按钮失效（变更后登记）")

    # --- what each hazard is pinned to ---------------------------------------------------------
    with state.sessions() as session:
        pins = {}
        for hazard_id in (setting.old_hazard_id, new_id):
            instance = session.scalars(
                select(ProcessInstance).where(
                    ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == "loop"
                )
            ).one()
            started = session.scalars(
                select(Event).where(Event.instance_id == instance.id).order_by(Event.seq).limit(1)
            ).one()
            key, _, number = started.payload["policy"].partition("@")
            profile = policy.get_profile(session, key, int(number))
            form = session.get(FormVersion, (instance.form_pins or {}).get("rectification_plan"))
            pins[hazard_id] = (
                instance.definition_version.process_key,
                instance.definition_version.version,
                profile,
                form,
            )
        old_key, old_version, old_profile, old_form = pins[setting.old_hazard_id]
        new_key, new_version, new_profile, new_form = pins[new_id]
        assert (old_key, old_version) == (KEY, 1)
        assert (new_key, new_version) == (KEY, 2)
        assert old_profile.key == "national"
        assert new_profile.sector_code == SECTOR
        assert policy.policy_value(old_profile, "escalation_circular_after_overdue").value == 10
        assert policy.policy_value(new_profile, "escalation_circular_after_overdue").value == 5
        assert old_form is not None and old_form.scope == "*"
        assert new_form is not None and new_form.sector_code == SECTOR
        assert NEW_FIELD in {f["name"] for f in new_form.content["fields"]}
        assert (
            session.scalar(select(PolicyProfile.id).where(PolicyProfile.sector_code == SECTOR))
            == new_profile.id
        )

    # --- the plan task pages: the new field only on the new hazard ------------------------------
    with state.sessions() as session:
        old_plan = open_item(session, session.get_one(Hazard, setting.old_hazard_id), "assign_plan").id
        new_plan = open_item(session, session.get_one(Hazard, new_id), "assign_plan").id
    log_in(page, live_server, ENTERPRISE_USER, "/tasks")
    new_fields = plan_page_fields(page, live_server, new_plan)
    expect(page.get_by_text(NEW_FIELD_LABEL).first).to_be_visible()
    screenshot(page, "design-e2e-05-new-plan")
    old_fields = plan_page_fields(page, live_server, old_plan)
    assert NEW_FIELD in new_fields
    assert NEW_FIELD not in old_fields
    expect(page.get_by_text(NEW_FIELD_LABEL)).to_have_count(0)

    # --- plans assigned with the same deadline: 通报 5 vs 10 working days after it ---------------
    due = setting.due
    with state.sessions.begin() as session:
        actor = load_actor(
            session, session.scalars(select(User).where(User.username == ENTERPRISE_USER)).one().id
        )
        runtime.complete(session, ctx, work_item_id=old_plan, actor=actor, form=plan_form(due))
        runtime.complete(
            session,
            ctx,
            work_item_id=new_plan,
            actor=actor,
            form=plan_form(due, **{NEW_FIELD: "同意该整改方案"}),
        )
    with state.sessions() as session:
        circular = {
            job.hazard_id: job.due_at
            for job in session.scalars(select(TimerJob).where(TimerJob.timer_key == "rectify_circular"))
            if job.hazard_id in (setting.old_hazard_id, new_id)
        }
        calendar = load_calendar(session)
        local = {k: v.astimezone(ctx.tz).date() for k, v in circular.items()}
        assert local[new_id] == calendar.add_working_days(due, 5)
        assert local[setting.old_hazard_id] == calendar.add_working_days(due, 10)

    # --- after 限期整改: the new hazard meets the new review step, the old one does not ----------
    with state.sessions.begin() as session:
        actor = load_actor(
            session, session.scalars(select(User).where(User.username == ENTERPRISE_USER)).one().id
        )
        for hazard_id in (setting.old_hazard_id, new_id):
            item = open_item(session, session.get_one(Hazard, hazard_id), "rectify")
            runtime.complete(
                session, ctx, work_item_id=item.id, actor=actor, form=_rectify_form(session, ctx, item, actor)
            )
    with state.sessions() as session:
        open_keys = {
            hazard_id: sorted(
                session.scalars(
                    select(WorkItem.task_key).where(
                        WorkItem.hazard_id == hazard_id, WorkItem.state.in_(("open", "claimed"))
                    )
                )
            )
            for hazard_id in (setting.old_hazard_id, new_id)
        }
    assert open_keys[new_id] == [review_id]
    assert open_keys[setting.old_hazard_id] == ["verify"]

    # --- the heatmaps of both versions ------------------------------------------------------------
    log_in(page, live_server, MODELER, f"/design/diagrams/{KEY}/versions/1/heatmap")
    _expect_badge(page, "verify")
    screenshot(page, "design-e2e-06-heatmap-v1")
    page.goto(live_server.url(f"/design/diagrams/{KEY}/versions/2/heatmap"))
    _expect_badge(page, review_id)
    screenshot(page, "design-e2e-07-heatmap-v2")


def _expect_badge(page: Any, element_id: str) -> None:
    page.wait_for_selector('.hl-diagram[data-bpmn-state="ready"]')
    overlay = page.locator(f'.djs-overlays[data-container-id="{element_id}"] .hl-badge-open')
    expect(overlay).to_have_text("1")
    assert page.locator(".djs-overlays .hl-badge-open").count() == 1


def _rectify_form(session: Session, ctx: Any, item: WorkItem, actor: Any) -> dict[str, Any]:
    """A valid 限期整改 submission with an after-photo stored through the engine."""
    photo = runtime.add_attachment(
        session,
        ctx,
        hazard_id=item.hazard_id,
        actor=actor,
        filename="after.jpg",
        mime_type="image/jpeg",
        content=f"after-photo-{item.hazard_id}".encode(),
        phase="after",
    ).id
    today = ctx.clock.now().astimezone(ctx.tz).date().isoformat()
    return {"summary": "已修复光电保护装置并试机", "after_photos": [photo], "completed_on": today}
