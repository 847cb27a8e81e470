"""The 一般隐患 closed loop clicked through in Chromium, as the people who run it do.

A hazard whose plan is assigned (限期整改 open) is set up through the engine on the committed
database the live server uses. Then, in the browser, with logins typed into the real login form:

1. 张强 (zhang_rectifier) opens his inbox, opens the rectify task, looks at the hazard file (the
   diagram highlights 限期整改), fills the form and uploads a real JPEG (Pillow, with EXIF time
   and GPS) through the file input, and submits;
2. 陈静 (chen_safety) verifies: 通过;
3. 吴刚 (wu_reviewer, the county emergency bureau) rejects the closure on /reviews with a reason;
4. 张强 sees 限期整改 active again on the diagram and rectifies again with another photo;
5. 陈静 verifies again, 吴刚 approves 同意销号, and the hazard file shows 已销号.

Every step leaves a screenshot in test-artifacts/browser/ (loop-NN-*.png). Console errors and
page errors fail the test (the ``page`` fixture).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from PIL import ExifTags
from PIL import Image
from PIL import ImageDraw
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import runtime
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import USERS
from engine.demo import DemoWorld
from engine.demo import open_item
from engine.models import Attachment
from engine.models import Event
from engine.models import Hazard
from engine.models import User
from tests.browser.conftest import ARTIFACTS
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot
from tests.factories import hazard_data
from tests.factories import plan_form
from web.session import app_state

pytestmark = pytest.mark.browser

RECTIFIER = "zhang_rectifier"
VERIFIER = "chen_safety"
REVIEWER = "wu_reviewer"
FIRST_SUMMARY = "已更换1号储罐区两台可燃气体检测报警器探头，报警信号恢复上传中控室"
SECOND_SUMMARY = "已补做报警器与中控室联动测试，报警信号上传正常，测试记录见照片"
REJECT_REASON = "整改后照片未体现报警信号已上传中控室，请补充联动测试记录后重新整改"
#: font families with Chinese glyphs (.ci/run installs fonts-wqy-microhei)
CJK_FONT = re.compile(
    r"WenQuanYi|CJK|Source Han|Noto (Sans|Serif) SC|Droid Sans Fallback|YaHei|PingFang|SimSun|SimHei|UMing",
    re.IGNORECASE,
)


def expect(target: Any) -> Any:
    """Playwright's ``expect``, imported late: without Playwright the ``browser`` fixture skips."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@dataclass(frozen=True)
class LoopHazard:
    id: int
    number: str
    title: str


@pytest.fixture
def demo_logins(app: Flask, browser_settings: Settings) -> Iterator[None]:
    """Give the three people of the loop the demo password (committed); take it back afterwards."""
    from web.auth import hash_password
    from web.auth import make_hasher

    names = (RECTIFIER, VERIFIER, REVIEWER)
    hashed = hash_password(DEMO_PASSWORD, hasher=make_hasher(browser_settings))
    factory = app_state(app).sessions
    with factory.begin() as session:
        users = session.scalars(select(User).where(User.username.in_(names))).all()
        previous = {u.username: u.password_hash for u in users}
        for user in users:
            user.password_hash = hashed
    yield
    with factory.begin() as session:
        for user in session.scalars(select(User).where(User.username.in_(names))):
            user.password_hash = previous[user.username]


@pytest.fixture
def hazard(app: Flask, world: DemoWorld, committed: sessionmaker[Session]) -> LoopHazard:
    """A general 限期整改 hazard of 华宇化工 whose plan is assigned: ``rectify`` is open.

    ``committed`` deletes the hazards after the test.
    """
    del committed
    state = app_state(app)
    ctx = state.ctx
    now = ctx.clock.now()
    due = now.astimezone(ctx.tz).date() + dt.timedelta(days=14)
    with state.sessions.begin() as session:
        actor = world.actor(session, VERIFIER)
        data = hazard_data(
            world,
            title="储罐区可燃气体报警器失效（浏览器测试）",
            discovered_at=now - dt.timedelta(days=1),
        )
        registered = runtime.register_hazard(session, ctx, actor=actor, data=data)
        hazard_id = registered.id
    with state.sessions.begin() as session:
        item = open_item(session, session.get_one(Hazard, hazard_id), "assign_plan")
        actor = world.actor(session, VERIFIER)
        runtime.complete(session, ctx, work_item_id=item.id, actor=actor, form=plan_form(due))
    with state.sessions() as session:
        row = session.get_one(Hazard, hazard_id)
        assert row.status == "rectifying"
        return LoopHazard(row.id, row.number, row.title)


def exif_jpeg(path: Path, *, color: tuple[int, int, int], caption: str, taken: dt.datetime) -> Path:
    """A real 800×600 JPEG photo with EXIF DateTimeOriginal/OffsetTimeOriginal and GPS (郎溪县)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "hazardloop-browser-test"
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub[ExifTags.Base.DateTimeOriginal] = taken.strftime("%Y:%m:%d %H:%M:%S")
    sub[ExifTags.Base.OffsetTimeOriginal] = "+08:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 7.0, 30.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (119.0, 10.0, 12.0)
    image = Image.new("RGB", (800, 600), color)
    draw = ImageDraw.Draw(image)
    draw.rectangle((200, 150, 600, 450), outline=(255, 255, 255), width=12)
    draw.text((230, 180), caption, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=85)
    path.write_bytes(buffer.getvalue())
    return path


# --- steps ------------------------------------------------------------------------------------------


def log_in(page: Any, username: str) -> None:
    """Type into the real login form (the page is on /login) and press 登录."""
    expect(page.locator("h1")).to_have_text("用户登录")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click('form button[type="submit"]')
    page.wait_for_url(lambda url: "/login" not in url)
    expect(page.locator("details.user-menu summary")).to_have_text(USERS[username][0])


def log_out(page: Any) -> None:
    page.click("details.user-menu summary")
    page.click('details.user-menu form button[type="submit"]')
    page.wait_for_url("**/login")
    expect(page.locator(".flash")).to_contain_text("您已退出登录")


def open_task(page: Any, live_server: LiveServer, hazard: LoopHazard, title: str) -> None:
    """From the inbox's 组待办 tab, open the hazard's open task (unclaimed: the group's)."""
    if "/tasks" not in page.url:
        page.click('nav.nav a[href="/tasks"]')
    page.click('nav.tabs a[href*="tab=group"]')
    row = page.locator("tr.task-row", has_text=hazard.number)
    expect(row).to_have_count(1)
    expect(row.locator("td.task-title")).to_have_text(title)
    row.locator("td.task-title a").click()
    page.wait_for_url(live_server.url("/tasks/") + "*")
    expect(page.locator("h1")).to_have_text(title)


def submit_task(page: Any, hazard: LoopHazard, title: str) -> None:
    page.get_by_role("button", name="提交", exact=True).click()
    page.wait_for_url("**/tasks")
    expect(page.locator(".flash-success")).to_have_text(f"已提交「{title}」")
    expect(page.locator("tr.task-row", has_text=hazard.number)).to_have_count(0)


def rectify(
    page: Any, live_server: LiveServer, hazard: LoopHazard, photo: Path, summary: str, day: str, step: str
) -> None:
    open_task(page, live_server, hazard, "限期整改")
    expect(page.locator(".task-form")).to_be_visible()
    page.fill("#f-summary", summary)
    # tasks.js uploads the photo as soon as it is chosen, and shows it as a kept tile
    page.set_input_files("#f-after_photos-files", str(photo))
    tile = page.locator("#f-after_photos li.attachment-tile")
    expect(tile).to_have_count(1)
    expect(tile.locator(".attachment-name")).to_have_text(photo.name)
    expect(tile.locator('input[type="checkbox"][name="after_photos"]')).to_be_checked()
    # the tile tasks.js adds says when and where it was taken, like the server-rendered ones
    expect(tile.locator(".attachment-meta")).to_contain_text("拍摄于")
    expect(tile.locator(".attachment-meta")).to_contain_text("31.12500, 119.17000")
    page.wait_for_function(
        "() => { const i = document.querySelector('#f-after_photos li.attachment-tile img');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("#f-after_photos .upload-error")).to_be_hidden()
    page.fill("#f-actual_funds", "11800.00")
    page.fill("#f-completed_on", day)
    screenshot(page, f"loop-{step}-rectify-form")
    submit_task(page, hazard, "限期整改")


def verify_pass(page: Any, live_server: LiveServer, hazard: LoopHazard, step: str, summary: str) -> None:
    open_task(page, live_server, hazard, "整改验收")
    # the rectification under review, with its photo, before the decision
    evidence = page.locator("section.evidence")
    expect(evidence).to_be_visible()
    rectified = evidence.locator('.evidence-entry[data-task-key="rectify"]')
    expect(rectified).to_contain_text(summary)
    expect(rectified).to_contain_text("11800.00")
    expect(rectified).not_to_contain_text("11800.00 元")
    expect(rectified.locator("li.attachment-tile img")).to_have_count(1)
    expect(rectified.locator(".attachment-meta")).to_contain_text("拍摄于")
    page.wait_for_function(
        "() => { const i = document.querySelector('section.evidence li.attachment-tile img');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )
    page.check('input[name="decision"][value="pass"]')
    page.fill("#f-opinion", "现场复核：报警器探头已更换，联动测试正常，整改到位")
    page.fill("#f-verifier_signature", "陈静")
    screenshot(page, f"loop-{step}-verify-form")
    submit_task(page, hazard, "整改验收")


def review_card(page: Any, live_server: LiveServer, hazard: LoopHazard) -> Any:
    page.click('nav.nav a[href="/reviews"]')
    page.wait_for_url(live_server.url("/reviews"))
    card = page.locator("article.review-card", has_text=hazard.number)
    expect(card).to_have_count(1)
    # the facts behind the decision: the latest rectification and verification
    expect(card.locator("details.submission")).to_have_count(2)
    expect(card).to_contain_text("整改完成情况")
    # … with the after photo as a thumbnail linking to the original
    expect(card.locator("li.attachment-tile img")).to_have_count(1)
    expect(card.locator("li.attachment-tile a")).to_have_attribute("href", re.compile(r"^/attachments/\d+$"))
    return card


def open_hazard(page: Any, live_server: LiveServer, hazard: LoopHazard) -> Any:
    """The hazard file (from the ledger, 隐患台账) with its diagram rendered; returns the diagram."""
    url = live_server.url(f"/hazards/{hazard.id}")
    if page.url != url:
        page.click('nav.nav a[href="/hazards"]')
        page.locator(f'table a[href="/hazards/{hazard.id}"]', has_text=hazard.number).click()
        page.wait_for_url(url)
    expect(page.locator("h1")).to_have_text(hazard.title)
    diagram = page.locator("#diagram .hl-diagram")
    expect(diagram).to_have_attribute("data-bpmn-state", "ready")
    # tall enough to read at 1280×900
    box = diagram.bounding_box()
    assert box is not None and box["height"] >= 480, box
    return diagram


def assert_cjk_glyphs(page: Any, selector: str) -> None:
    """The text of ``selector`` is drawn with a font that has Chinese glyphs (not as empty boxes).

    Chromium reports, per node, the platform fonts its glyphs came from (DevTools protocol): a
    character no font has is drawn as the primary font's missing-glyph box (Liberation Sans, say).
    """
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        assert node, f"nothing matches {selector}"
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    assert fonts, f"no text drawn for {selector}"
    assert all(CJK_FONT.search(f["familyName"]) for f in fonts), f"{selector}: {fonts}"


def classes(diagram: Any, element_id: str) -> set[str]:
    shape = diagram.locator(f'g.djs-element[data-element-id="{element_id}"]')
    expect(shape).to_have_count(1)
    return set((shape.get_attribute("class") or "").split())


def assert_rectify_highlighted(diagram: Any, completed: tuple[str, ...]) -> None:
    assert diagram.locator("svg").count() >= 1
    assert diagram.locator("g.djs-shape").count() > 20
    rectify_classes = classes(diagram, "rectify")
    assert "hl-active" in rectify_classes and "hl-completed" not in rectify_classes
    for element_id in completed:
        assert "hl-completed" in classes(diagram, element_id), element_id
    assert diagram.locator(".hl-active").count() == 1
    assert diagram.locator(".hl-overdue").count() == 0
    # the active task is drawn blue (diagram.css), its Chinese label rendered as SVG text
    stroke = diagram.evaluate(
        """(el) => getComputedStyle(el.querySelector(
            'g.djs-element[data-element-id="rectify"] .djs-visual > :first-child')).stroke"""
    )
    assert stroke == "rgb(21, 101, 192)"
    labels = "".join(diagram.locator(".djs-visual text").all_text_contents())
    for name in ("隐患登记", "限期整改", "整改验收"):
        assert name in labels, f"label {name} not rendered"
    assert diagram.locator(".bjs-powered-by").is_visible()
    page = diagram.page
    assert_cjk_glyphs(page, "h1")
    assert_cjk_glyphs(page, '#diagram g.djs-element[data-element-id="rectify"] .djs-visual text tspan')


def assert_focused_on(diagram: Any, element_id: str) -> None:
    """Zoomed to a readable scale (labels not ~6 px) with ``element_id`` inside the container."""
    expect(diagram).to_have_attribute("data-bpmn-zoom", "focus")
    scale = diagram.evaluate("(el) => el.hlViewer.get('canvas').viewbox().scale")
    assert scale >= 0.8, scale
    shape = diagram.locator(f'g.djs-element[data-element-id="{element_id}"]').bounding_box()
    box = diagram.bounding_box()
    assert shape and box
    assert box["x"] <= shape["x"] and shape["x"] + shape["width"] <= box["x"] + box["width"]
    assert box["y"] <= shape["y"] and shape["y"] + shape["height"] <= box["y"] + box["height"]
    assert diagram.locator(".bjs-powered-by").is_visible()


def diagram_screenshot(diagram: Any, name: str) -> None:
    """The diagram alone (test-artifacts/browser/<name>.png), to look at its markers and labels."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    diagram.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def hazard_row(app: Flask, hazard: LoopHazard) -> Hazard:
    with app_state(app).sessions() as session:
        return session.get_one(Hazard, hazard.id)


# --- the loop -------------------------------------------------------------------------------------------


def test_rectify_reject_fix_and_close_in_the_browser(
    page: Any,
    live_server: LiveServer,
    app: Flask,
    demo_logins: None,
    hazard: LoopHazard,
    tmp_path: Path,
) -> None:
    del demo_logins
    ctx = app_state(app).ctx
    now = ctx.clock.now().astimezone(ctx.tz).replace(microsecond=0)
    today = now.date().isoformat()
    first_photo = exif_jpeg(
        tmp_path / "储罐区报警器-整改后.jpg",
        color=(40, 110, 60),
        caption="after #1",
        taken=now - dt.timedelta(hours=2),
    )
    second_photo = exif_jpeg(
        tmp_path / "联动测试-整改后.jpg",
        color=(30, 70, 140),
        caption="after #2",
        taken=now - dt.timedelta(minutes=20),
    )

    # 1. 张强 logs in (the inbox sends him to the form and back), opens the rectify task
    page.goto(live_server.url("/tasks"))
    page.wait_for_url("**/login**")
    assert_cjk_glyphs(page, "h1")  # 用户登录
    screenshot(page, "loop-01-login-form")
    log_in(page, RECTIFIER)
    assert page.url.startswith(live_server.url("/tasks"))
    expect(page.locator("h1")).to_have_text("我的待办")
    screenshot(page, "loop-02-rectifier-inbox")

    # … and, before rectifying, the hazard file: the diagram highlights 限期整改
    open_task(page, live_server, hazard, "限期整改")
    page.click("text=查看隐患档案")
    page.wait_for_url(live_server.url(f"/hazards/{hazard.id}"))
    diagram = open_hazard(page, live_server, hazard)
    assert_rectify_highlighted(diagram, completed=("assign_plan",))
    assert_focused_on(diagram, "rectify")
    expect(page.locator(".tag.status-rectifying")).to_have_text("整改中")
    diagram.scroll_into_view_if_needed()
    screenshot(page, "loop-03-hazard-diagram-rectify-active")
    diagram_screenshot(diagram, "loop-03-diagram")

    rectify(
        page,
        live_server,
        hazard,
        first_photo,
        FIRST_SUMMARY,
        today,
        "04",
    )
    with app_state(app).sessions() as session:
        photos = session.scalars(
            select(Attachment).where(Attachment.hazard_id == hazard.id, Attachment.phase == "after")
        ).all()
        assert [p.filename for p in photos] == [first_photo.name]
        # EXIF read from the real JPEG: 拍摄时间 (+08:00) and GPS
        assert photos[0].exif_taken_at == (now - dt.timedelta(hours=2)).astimezone(dt.UTC)
        assert photos[0].gps_lat == pytest.approx(31.125, abs=1e-6)
        assert photos[0].gps_lon == pytest.approx(119.17, abs=1e-6)
    assert hazard_row(app, hazard).status == "verifying"
    log_out(page)

    # 2. 陈静 verifies: 通过
    log_in(page, VERIFIER)
    verify_pass(page, live_server, hazard, "05", FIRST_SUMMARY)
    assert hazard_row(app, hazard).status == "reviewing_closure"
    log_out(page)

    # 3. 吴刚 rejects the closure on /reviews, with a reason
    log_in(page, REVIEWER)
    card = review_card(page, live_server, hazard)
    screenshot(page, "loop-06-review-queue")
    card.locator("form.reject-form textarea[name='opinion']").fill(REJECT_REASON)
    card.get_by_role("button", name="驳回", exact=True).click()
    page.wait_for_url(live_server.url("/reviews"))
    expect(page.locator(".flash-warning")).to_have_text(f"已驳回 {hazard.number}，退回整改")
    expect(page.locator("article.review-card", has_text=hazard.number)).to_have_count(0)
    screenshot(page, "loop-07-review-rejected")
    row = hazard_row(app, hazard)
    assert row.status == "rectifying" and row.failed_verifications == 1
    log_out(page)

    # 4. 张强 sees 限期整改 active again, and rectifies with another photo
    log_in(page, RECTIFIER)
    diagram = open_hazard(page, live_server, hazard)
    assert_rectify_highlighted(diagram, completed=("assign_plan", "verify", "closure_review"))
    assert_focused_on(diagram, "rectify")
    # the timeline words the rejection as the form does, with its reason
    rejected = page.locator("#timeline li.timeline-item", has_text="结论：驳回")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text(REJECT_REASON)
    # the reason is on file: the latest form (shown open) is the rejected 销号审核
    latest = page.locator("#submissions details.submission").first
    expect(latest).to_contain_text("驳回")
    expect(latest).to_contain_text(REJECT_REASON)
    diagram.scroll_into_view_if_needed()
    screenshot(page, "loop-08-hazard-diagram-rework")
    diagram_screenshot(diagram, "loop-08-diagram")
    # the reworked task says it was sent back, why, by whom and when
    open_task(page, live_server, hazard, "限期整改")
    notice = page.locator(".sent-back")
    expect(notice).to_contain_text("已被退回")
    expect(notice).to_contain_text(REJECT_REASON)
    expect(notice).to_contain_text(USERS[REVIEWER][0])
    screenshot(page, "loop-08b-rework-notice")
    page.click('nav.nav a[href="/tasks"]')
    rectify(
        page,
        live_server,
        hazard,
        second_photo,
        SECOND_SUMMARY,
        today,
        "09",
    )
    log_out(page)

    # 5. 陈静 verifies again, 吴刚 approves 销号
    log_in(page, VERIFIER)
    verify_pass(page, live_server, hazard, "10", SECOND_SUMMARY)
    log_out(page)
    log_in(page, REVIEWER)
    card = review_card(page, live_server, hazard)
    expect(card).to_contain_text("验收不通过 1 次")
    card.get_by_role("button", name="同意销号", exact=True).click()
    page.wait_for_url(live_server.url("/reviews"))
    expect(page.locator(".flash-success")).to_have_text(f"已同意 {hazard.number} 销号")
    screenshot(page, "loop-11-review-approved")

    # the hazard file: 已销号, nothing open, the whole loop in the diagram and the record
    diagram = open_hazard(page, live_server, hazard)
    expect(page.locator(".tag.status-closed")).to_have_text("已销号")
    expect(page.locator("#tasks")).to_contain_text("当前没有待办任务。")
    assert diagram.locator(".hl-active").count() == 0
    for element_id in ("assign_plan", "rectify", "verify", "closure_review", "end_closed"):
        assert "hl-completed" in classes(diagram, element_id), element_id
    # 销号 names the reviewer who approved it
    closed_event = page.locator("#timeline li.timeline-item", has_text="销号").first
    expect(closed_event).to_contain_text(USERS[REVIEWER][0])
    expect(closed_event).not_to_contain_text("系统")
    expect(page.locator("#attachments img")).to_have_count(2)
    screenshot(page, "loop-12-hazard-closed")
    diagram_screenshot(diagram, "loop-12-diagram")

    row = hazard_row(app, hazard)
    assert row.status == "closed" and row.closed_at is not None
    with app_state(app).sessions() as session:
        actions = list(
            session.scalars(select(Event.action).where(Event.hazard_id == hazard.id).order_by(Event.id))
        )
    assert actions[0] == "registered" and actions[-1] == "closed"
