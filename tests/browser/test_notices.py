"""The print page of a 督办文书 in Chromium: the 文号, the red 文头 and Chinese text drawn with a CJK font."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import DemoWorld
from engine.models import User
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot
from tests.browser.test_loop import assert_cjk_glyphs
from tests.browser.test_loop import expect
from tests.web.test_hazards import register
from tests.web.test_notices_pages import issue
from web.session import app_state

pytestmark = pytest.mark.browser

USERNAME = "chen_safety"


@pytest.fixture
def password(app: Flask, browser_settings: Settings) -> Iterator[None]:
    """Give the safety officer the demo password (committed); take it back afterwards."""
    from web.auth import hash_password
    from web.auth import make_hasher

    factory = app_state(app).sessions
    with factory.begin() as session:
        user = session.scalars(select(User).where(User.username == USERNAME)).one()
        previous = user.password_hash
        user.password_hash = hash_password(DEMO_PASSWORD, hasher=make_hasher(browser_settings))
    yield
    with factory.begin() as session:
        session.scalars(select(User).where(User.username == USERNAME)).one().password_hash = previous


@pytest.fixture
def notice(app: Flask, world: DemoWorld, committed: sessionmaker[Session]) -> tuple[int, str]:
    """A 约谈通知书 of 郎溪县安全生产委员会 on a committed 郎溪 hazard (deleted by ``committed``)."""
    ctx = app_state(app).ctx
    hazard_id = register(committed, ctx, world, USERNAME, title="储罐区可燃气体报警器失效（打印测试）")
    return issue(committed, ctx, hazard_id, "interview")


def test_the_print_page_renders_the_document_in_chinese(
    page: Any, live_server: LiveServer, password: None, notice: tuple[int, str]
) -> None:
    notice_id, number = notice
    page.goto(live_server.url(f"/notices/{notice_id}/print"))
    page.wait_for_url("**/login**")  # the real login form, then back to the print page
    page.fill('input[name="username"]', USERNAME)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click('form button[type="submit"]')
    page.wait_for_url(live_server.url(f"/notices/{notice_id}/print"))
    expect(page.locator("p.doc-number")).to_have_text(number)
    expect(page.locator("header.red-head")).to_have_text("郎溪县安全生产委员会")
    expect(page.locator("h1.title")).to_have_text("关于约谈郎溪县华宇化工有限公司主要负责人的通知")
    expect(page.locator("table.notice-facts")).to_contain_text("储罐区可燃气体报警器失效（打印测试）")
    expect(page.locator(".notice-signature")).to_contain_text("郎溪县安全生产委员会")
    for selector in ("p.doc-number", "header.red-head", "h1.title", "p.notice-addressee", ".notice-date"):
        assert_cjk_glyphs(page, selector)
    red = page.evaluate("getComputedStyle(document.querySelector('header.red-head')).color")
    assert red == "rgb(204, 0, 0)"
    family = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert family.startswith("FangSong") and family.endswith('"WenQuanYi Micro Hei"'), family
    align = page.evaluate("getComputedStyle(document.querySelector('p.doc-number')).textAlign")
    assert align == "right"
    screenshot(page, "notice-print")
