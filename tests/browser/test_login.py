"""Logging in through the real login form in Chromium (STYLE rule 18: at least once for real).

Other browser tests may inject a session cookie instead; this one types into the form.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import select

from engine import db as dbmod
from engine.config import Settings
from engine.demo import DEMO_PASSWORD
from engine.demo import USERS
from engine.demo import DemoWorld
from engine.models import User
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

USERNAME = "chen_safety"


@pytest.fixture
def demo_login(engine: Engine, world: DemoWorld, browser_settings: Settings) -> Iterator[str]:
    """Give one demo user the demo password (committed), and take it back afterwards."""
    del world
    from web.auth import hash_password
    from web.auth import make_hasher

    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        user = session.scalars(select(User).where(User.username == USERNAME)).one()
        previous = user.password_hash
        user.password_hash = hash_password(DEMO_PASSWORD, hasher=make_hasher(browser_settings))
    yield USERNAME
    with factory.begin() as session:
        session.scalars(select(User).where(User.username == USERNAME)).one().password_hash = previous


def test_login_through_the_form(page: Any, live_server: LiveServer, demo_login: str) -> None:
    page.goto(live_server.url("/"))
    page.wait_for_url("**/login**")
    page.fill('input[name="username"]', demo_login)
    page.fill('input[name="password"]', "wrong-password")
    page.click('form button[type="submit"]')
    assert page.locator('[role="alert"]').first.is_visible()
    assert "/login" in page.url
    page.fill('input[name="username"]', demo_login)
    page.fill('input[name="password"]', DEMO_PASSWORD)
    page.click('form button[type="submit"]')
    page.wait_for_load_state("load")
    assert "/login" not in page.url
    display_name = USERS[demo_login][0]
    assert page.get_by_text(display_name, exact=True).first.is_visible()
    assert page.evaluate("typeof window.htmx") == "object"  # vendored htmx loaded under the CSP
    screenshot(page, "login-home")
