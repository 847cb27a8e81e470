"""The BPMN modeler page (/design/diagrams/<key>/edit, js/modeler.js) in Chromium.

高远 (gao_modeler), process administrator of the department that leads hazchem, logs in through
the real login form and edits his sector's copy of the 一般隐患 loop (``hazard_general_hazchem``,
made with :func:`engine.design.copy_process_for_sector` on the live server's committed database):

1. the properties panel changes 限期整改's candidate role through its select; undo and redo work;
   保存草稿 (Ctrl+S) stores revision 2; after a reload the change is there;
2. 检查 on a diagram made invalid (销号审核 done by the enterprise, set through the panel) puts an
   error badge and marker on 销号审核 and lists the problem under the canvas; the list entry
   selects the element; deleting the task names the whole process instead; an unsafe condition
   typed on a flow is refused at the flow; a name typed in the panel is the label on the canvas;
3. 导出 .bpmn downloads XML with our spiffworkflow:property elements; importing a broken file
   keeps the diagram; a shipped two-process file (processes/sectors/hazchem.bpmn) imported and
   exported keeps every user task's properties (our moddle descriptor round-trips them);
4. 发布 with a note publishes version 1 and links to the versions page;
5. when another administrator has started a draft meanwhile, 保存草稿 is refused (409) with a
   message to reload, and the other draft is left as it was.

The bpmn.io logo stays visible throughout (bpmn-js licence). Screenshots: test-artifacts/browser/
modeler-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from lxml import etree
from sqlalchemy import delete
from sqlalchemy import select

from engine import design
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import USERS
from engine.demo import DemoWorld
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import DesignDraft
from engine.models import DesignEvent
from engine.models import User
from tests.browser.conftest import ROOT
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot
from web.session import app_state

pytestmark = pytest.mark.browser

MODELER = "gao_modeler"
KEY = "hazard_general_hazchem"
CANVAS = "#hl-modeler [data-modeler-canvas]"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}


def expect(target: Any) -> Any:
    """Playwright's ``expect``, imported late: without Playwright the ``browser`` fixture skips."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def _forget(app: Flask) -> None:
    with app_state(app).sessions.begin() as session:
        for model, column in (
            (DefinitionBindingHistory, DefinitionBindingHistory.process_key),
            (DefinitionBinding, DefinitionBinding.process_key),
            (DesignEvent, DesignEvent.key),
            (DesignDraft, DesignDraft.key),
            (DefinitionVersion, DefinitionVersion.process_key),
        ):
            session.execute(delete(model).where(column == KEY))


@pytest.fixture
def hazchem_copy(app: Flask, world: DemoWorld, browser_settings: Settings) -> Iterator[str]:
    """gao_modeler with the demo password and his draft copy of hazard_general for hazchem."""
    from web.auth import hash_password
    from web.auth import make_hasher

    factory = app_state(app).sessions
    _forget(app)
    with factory.begin() as session:
        user = session.scalars(select(User).where(User.username == MODELER)).one()
        previous = user.password_hash
        user.password_hash = hash_password(DEMO_PASSWORD, hasher=make_hasher(browser_settings))
        design.copy_process_for_sector(
            session, world.actor(session, MODELER), source_key="hazard_general", sector_code="hazchem"
        )
    yield KEY
    _forget(app)
    with factory.begin() as session:
        session.scalars(select(User).where(User.username == MODELER)).one().password_hash = previous


def log_in(page: Any, live_server: LiveServer, next_path: str) -> None:
    page.goto(live_server.url(next_path))
    page.wait_for_url("**/login**")
    page.fill('input[name="username"]', MODELER)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click('form button[type="submit"]')
    page.wait_for_url(live_server.url(next_path))
    expect(page.locator("details.user-menu summary")).to_have_text(USERS[MODELER][0])


def wait_ready(page: Any) -> None:
    page.wait_for_selector('#hl-modeler[data-state="ready"]')


def shape(page: Any, element_id: str) -> Any:
    return page.locator(f'{CANVAS} g.djs-element[data-element-id="{element_id}"]').first


def select_element(page: Any, element_id: str) -> None:
    page.evaluate(
        """(id) => {
            const modeler = document.getElementById('hl-modeler').hlModeler;
            modeler.get('selection').select(modeler.get('elementRegistry').get(id));
        }""",
        element_id,
    )
    expect(page.locator(f'.hl-panel-body[data-element="{element_id}"]')).to_be_visible()


def panel_select(page: Any, name: str) -> Any:
    return page.locator(f'#hl-modeler [data-modeler-panel] select[data-property="{name}"]')


def assert_logo_visible(page: Any) -> None:
    logo = page.locator(f"{CANVAS} .bjs-powered-by")
    assert logo.count() == 1
    logo.scroll_into_view_if_needed()
    assert logo.is_visible()
    assert logo.get_attribute("href").rstrip("/") in ("http://bpmn.io", "https://bpmn.io")
    box = logo.bounding_box()
    assert box and box["width"] >= 20 and box["height"] >= 20
    container = page.locator(CANVAS).bounding_box()
    assert container["x"] <= box["x"] and box["x"] + box["width"] <= container["x"] + container["width"]
    assert container["y"] <= box["y"] and box["y"] + box["height"] <= container["y"] + container["height"]
    on_top = page.evaluate(
        """([x, y]) => {
            const hit = document.elementFromPoint(x, y);
            return !!(hit && hit.closest('.bjs-powered-by'));
        }""",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "the bpmn.io logo is covered (bpmn-js licence)"


def task_properties(xml: bytes) -> dict[str, dict[str, str]]:
    root = etree.fromstring(xml)
    return {
        task.get("id"): {
            p.get("name"): p.get("value") for p in task.iterfind(".//spiffworkflow:property", NS)
        }
        for task in root.iter(f"{{{NS['bpmn']}}}userTask")
    }


def test_edit_check_export_import_publish(
    page: Any,
    live_server: LiveServer,
    hazchem_copy: str,
    tmp_path: Path,
    app: Flask,
    world: DemoWorld,
    js_errors: list[str],
) -> None:
    edit_path = f"/design/diagrams/{hazchem_copy}/edit"
    log_in(page, live_server, edit_path)
    wait_ready(page)
    expect(page.locator("h1")).to_have_text("一般隐患排查治理闭环（危险化学品）")
    expect(page.locator("[data-modeler-status]")).to_contain_text("草稿第 1 版")
    assert page.locator(f"{CANVAS} g.djs-shape").count() > 30
    joined = "".join(page.locator(f"{CANVAS} .djs-visual text").all_text_contents())
    assert "限期整改" in joined and "销号审核" in joined
    assert_logo_visible(page)
    # nothing selected: the process's own properties
    expect(page.locator(".hl-panel-type")).to_have_text("流程")
    expect(panel_select(page, "policy_profile")).to_have_value("")
    screenshot(page, "modeler-01-opened")

    # 1. the candidate role of 限期整改 through the panel, with undo/redo
    shape(page, "rectify").click()
    expect(page.locator('.hl-panel-body[data-element="rectify"]')).to_be_visible()
    expect(page.locator(".hl-panel-type")).to_have_text("用户任务")
    role = panel_select(page, "candidate_role")
    expect(role).to_have_value("rectifier")
    expect(panel_select(page, "form_key")).to_have_value("rectify")
    expect(panel_select(page, "due_variable")).to_have_value("deadline_at")
    labels = role.locator("option").all_text_contents()
    assert "安全管理人员" in labels and "系统管理员" not in labels
    role.select_option("safety_officer")
    expect(page.locator("#hl-modeler")).to_have_attribute("data-dirty", "true")
    expect(page.locator("[data-modeler-status]")).to_contain_text("有未保存的修改")
    screenshot(page, "modeler-02-panel")
    page.click('[data-action="undo"]')
    expect(panel_select(page, "candidate_role")).to_have_value("rectifier")
    page.click('[data-action="redo"]')
    expect(panel_select(page, "candidate_role")).to_have_value("safety_officer")
    page.keyboard.press("Control+s")
    expect(page.locator("[data-modeler-status]")).to_contain_text("草稿第 2 版，保存于")
    expect(page.locator("#hl-modeler")).to_have_attribute("data-dirty", "false")
    expect(page.locator(".hl-modeler-message")).to_have_text("草稿已保存（第 2 版）。")
    page.reload()
    wait_ready(page)
    expect(page.locator("[data-modeler-status]")).to_contain_text("草稿第 2 版，保存于")
    select_element(page, "rectify")
    expect(panel_select(page, "candidate_role")).to_have_value("safety_officer")

    # 2. 检查: 销号审核 done by the enterprise is refused at the task
    select_element(page, "closure_review")
    panel_select(page, "org_scope").select_option("enterprise")
    page.click('[data-action="check"]')
    badge = page.locator(
        f'{CANVAS} .djs-overlays[data-container-id="closure_review"] .hl-problem-badge-error'
    )
    expect(badge).to_be_visible()
    assert "hl-problem-error" in (shape(page, "closure_review").get_attribute("class") or "").split()
    expect(page.locator(".hl-modeler-message")).to_contain_text("检查发现 1 个错误")
    entry = page.locator(".hl-problem-list .hl-problem-error")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text("销号审核（closure_review）")
    expect(entry).to_contain_text("部门")
    expect(page.locator(".hl-panel-problems")).to_contain_text("部门")  # the selected task's problem
    badge.hover()
    expect(badge.locator(".hl-problem-text")).to_be_visible()
    screenshot(page, "modeler-03-check-error")
    assert_logo_visible(page)
    # the list entry selects the element
    select_element(page, "rectify")
    entry.locator("button.hl-problem-link").click()
    expect(page.locator('.hl-panel-body[data-element="closure_review"]')).to_be_visible()
    # put it back; then delete the task: the process itself lacks the statutory step
    panel_select(page, "org_scope").select_option("department")
    page.evaluate(
        """() => {
            const modeler = document.getElementById('hl-modeler').hlModeler;
            const registry = modeler.get('elementRegistry');
            modeler.get('modeling').removeElements([registry.get('closure_review')]);
        }"""
    )
    page.click('[data-action="check"]')
    expect(page.locator(".hl-problem-list .hl-problem-error")).to_contain_text(f"整个流程（{KEY}）")
    expect(page.locator(".hl-problem-list .hl-problem-error")).to_contain_text("缺少法定环节")
    expect(page.locator(f"{CANVAS} .hl-problem-badge-error")).to_have_count(0)
    page.click('[data-action="undo"]')  # the task is back
    expect(page.locator(".hl-problems-stale")).to_contain_text("请重新检查")
    # a flow's condition is typed, and checked by the safe-expression gate
    select_element(page, "flow_verify_pass")
    expect(page.locator(".hl-panel-type")).to_have_text("顺序流")
    condition = page.locator('#hl-modeler [data-modeler-panel] textarea[data-property="conditionExpression"]')
    expect(condition).to_have_value('decision == "pass"')
    condition.fill("__import__('os').system('id')")
    condition.press("Tab")  # committed on change
    page.click('[data-action="check"]')
    flow_badge = page.locator(
        f'{CANVAS} .djs-overlays[data-container-id="flow_verify_pass"] .hl-problem-badge-error'
    )
    expect(flow_badge).to_be_visible()
    expect(page.locator(".hl-problem-list .hl-problem-error")).to_contain_text("条件表达式不安全")
    screenshot(page, "modeler-03b-unsafe-condition")
    page.click('[data-action="undo"]')
    expect(condition).to_have_value('decision == "pass"')
    # the name of a task, typed in the panel, is the label on the canvas
    select_element(page, "verify")
    name = page.locator('#hl-modeler [data-modeler-panel] input[data-property="name"]')
    name.fill("整改验收（企业自验）")
    name.press("Enter")
    expect(shape(page, "verify").locator(".djs-visual text")).to_have_text("整改验收（企业自验）")
    expect(page.locator(".hl-panel-head h2")).to_have_text("整改验收（企业自验）")
    page.click('[data-action="undo"]')
    expect(shape(page, "verify").locator(".djs-visual text")).to_have_text("整改验收")
    page.click('[data-action="check"]')
    expect(page.locator(".hl-modeler-message")).to_contain_text("检查通过")
    expect(page.locator(f"{CANVAS} .hl-problem-badge-error")).to_have_count(0)

    # 3. export, a broken import, a shipped file's round trip
    with page.expect_download() as download_info:
        page.click('[data-action="export"]')
    download = download_info.value
    assert download.suggested_filename == f"{KEY}.bpmn"
    exported = Path(download.path()).read_bytes()
    assert b"spiffworkflow:property" in exported
    assert task_properties(exported)["rectify"]["candidate_role"] == "safety_officer"
    assert task_properties(exported)["closure_review"]["org_scope"] == "department"

    broken = tmp_path / "broken.bpmn"
    broken.write_text("<bpmn:definitions 这不是流程图", encoding="utf-8")
    page.set_input_files("#hl-modeler [data-modeler-file]", str(broken))
    expect(page.locator(".hl-modeler-message")).to_contain_text("无法导入「broken.bpmn」")
    expect(page.locator(".hl-modeler-message")).to_contain_text("当前流程图保持不变")
    expect(shape(page, "rectify")).to_be_visible()

    shipped = ROOT / "processes" / "sectors" / "hazchem.bpmn"
    page.set_input_files("#hl-modeler [data-modeler-file]", str(shipped))
    expect(page.locator(".hl-modeler-message")).to_contain_text("已导入「hazchem.bpmn」")
    expect(page.locator(".hl-modeler-message")).to_contain_text("与本流程 hazard_general_hazchem 不同")
    expect(shape(page, "determination")).to_be_visible()
    switch = page.locator("#hl-diagram-switch")
    expect(switch.locator("option")).to_have_count(2)
    with page.expect_download() as download_info:
        page.click('[data-action="export"]')
    round_trip = Path(download_info.value.path()).read_bytes()
    original = task_properties(shipped.read_bytes())
    assert task_properties(round_trip) == original
    assert len(original) >= 8
    assert round_trip.count(b"<spiffworkflow:serviceTaskOperator") == shipped.read_bytes().count(
        b"<spiffworkflow:serviceTaskOperator"
    )
    # the second diagram of the file (the shared verification process) opens from the switch
    switch.select_option(index=1)
    expect(shape(page, "v_start")).to_be_visible()
    screenshot(page, "modeler-04-imported-hazchem")

    # 4. back to the saved draft, and publish it
    # the imported file is not saved: leaving asks first (beforeunload); leave anyway
    expect(page.locator("#hl-modeler")).to_have_attribute("data-dirty", "true")
    dialogs: list[str] = []

    def leave(dialog: Any) -> None:
        dialogs.append(dialog.type)
        dialog.accept()

    page.once("dialog", leave)
    page.reload()
    wait_ready(page)
    assert dialogs == ["beforeunload"]
    expect(shape(page, "rectify")).to_be_visible()
    page.click('[data-action="publish"]')
    dialog = page.locator("[data-modeler-publish-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("textarea").fill("限期整改改由安全管理人员办理")
    # binding on publish is offered for the sector's unbound copy; this test publishes only
    bind = dialog.locator('input[name="bind"]')
    expect(bind).to_be_checked()
    bind.uncheck()
    dialog.get_by_role("button", name="确认发布").click()
    message = page.locator(".hl-modeler-message")
    expect(message).to_contain_text("已发布为第 1 版")
    expect(message.locator("a")).to_have_attribute("href", f"/design/diagrams/{KEY}/versions")
    expect(page.locator("[data-modeler-status]")).to_contain_text("已发布第 1 版，尚无草稿")
    assert_logo_visible(page)
    screenshot(page, "modeler-05-published")

    # 5. another administrator starts a draft meanwhile: saving is refused, nothing is overwritten
    with app_state(app).sessions.begin() as session:
        xml, _revision, _version = design.diagram_source(session, KEY, "hazchem")
        other = design.save_draft(
            session,
            world.actor(session, "admin"),
            kind="diagram",
            key=KEY,
            sector_code="hazchem",
            content=xml,
            revision=None,
        )
        assert other.revision == 1
    select_element(page, "verify")
    panel_select(page, "candidate_role").select_option("principal")
    page.keyboard.press("Control+s")
    message = page.locator(".hl-modeler-message-error")
    expect(message).to_contain_text("请重新加载")
    expect(message).to_contain_text("本页不会再保存")
    expect(page.locator("#hl-modeler")).to_have_attribute("data-dirty", "true")
    with app_state(app).sessions() as session:
        stored = design.get_draft(session, "diagram", KEY, "hazchem")
        assert stored is not None and stored.revision == 1
        assert task_properties(stored.content.encode())["verify"]["candidate_role"] == "safety_officer"
    screenshot(page, "modeler-06-conflict")
    # The browser itself logs the 409; that one is expected, nothing else is.
    expected = [e for e in js_errors if "409" in e and f"/design/diagrams/{KEY}/draft" in e]
    assert len(expected) == 1, js_errors
    js_errors[:] = [e for e in js_errors if e not in expected]
