"""The message catalogue: Chinese by default, English on request, labels from engine.models."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from flask import Flask

from engine.models import Grade
from engine.models import HazardStatus
from engine.models import Role
from engine.models.hazard import GRADE_LABELS
from engine.models.hazard import SOURCE_LABELS
from engine.models.hazard import STATUS_LABELS
from engine.models.org import REGION_LEVEL_LABELS
from engine.models.org import ROLE_LABELS
from web.errors import HTTP_MESSAGES
from web.errors import TITLES
from web.errors import InvalidToken
from web.i18n import EN
from web.i18n import HANDLING_LABELS
from web.i18n import WORK_ITEM_STATE_LABELS
from web.i18n import _
from web.i18n import grade_label
from web.i18n import role_label
from web.i18n import status_label
from web.i18n import translate
from web.pages import NAV

WEB = Path(__file__).resolve().parents[2] / "web"
#: the foundation's own files; other page modules keep their own catalogue checks
CHECKED = [
    *WEB.glob("templates/base.html"),
    *WEB.glob("templates/auth/*.html"),
    *WEB.glob("templates/errors/*.html"),
    *WEB.glob("templates/home/*.html"),
    *(WEB / name for name in ("auth.py", "errors.py", "security.py", "pages/__init__.py", "pages/home.py")),
]
LITERAL = re.compile(r"""_\(\s*(["'])(.+?)\1""")


def test_every_message_of_the_foundation_has_an_english_entry() -> None:
    missing = set()
    for path in CHECKED:
        for _quote, text in LITERAL.findall(path.read_text(encoding="utf-8")):
            if re.search(r"[\u4e00-\u9fff]", text) and text not in EN:
                missing.add(f"{path.name}: {text}")
    for text in [*HTTP_MESSAGES.values(), *TITLES.values(), *InvalidToken.MESSAGES.values()]:
        if text not in EN:
            missing.add(text)
    missing.update(item.label for item in NAV if item.label not in EN)
    assert not missing, f"add English entries to web.i18n.EN: {sorted(missing)}"


@pytest.mark.parametrize(
    "labels",
    [
        ROLE_LABELS,
        STATUS_LABELS,
        GRADE_LABELS,
        SOURCE_LABELS,
        REGION_LEVEL_LABELS,
        HANDLING_LABELS,
        WORK_ITEM_STATE_LABELS,
    ],
)
def test_every_label_has_an_english_entry(labels: dict[object, str]) -> None:
    assert [text for text in labels.values() if text not in EN] == []


def test_translate_falls_back_to_chinese_and_fills_placeholders() -> None:
    assert translate("我的待办", "en") == "My tasks"
    assert translate("我的待办", "zh") == "我的待办"
    assert translate("没有英文的句子", "en") == "没有英文的句子"
    assert translate("欢迎，{name}", "en", name="张强") == "Welcome, 张强"
    assert _("我的待办") == "我的待办"  # outside a request: Chinese


def test_labels_follow_the_request_locale(app: Flask) -> None:
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        assert role_label(Role.RECTIFIER) == "整改责任人"
        assert status_label("closed") == "已销号"
        assert grade_label(Grade.MAJOR) == "重大"
        assert role_label("no_such_role") == "no_such_role"
        assert status_label(None) == ""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert role_label("rectifier") == "Rectifier"
        assert status_label(HazardStatus.VERIFYING) == "Awaiting verification"


def test_localtime_shows_business_time(app: Flask) -> None:
    with app.test_request_context():
        rendered = app.jinja_env.from_string("{{ t|localtime }}").render(
            t=dt.datetime(2026, 3, 1, 16, 30, tzinfo=dt.UTC)
        )
    assert rendered == "2026-03-02 00:30"
