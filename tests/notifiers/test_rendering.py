"""Chinese templates per message kind, rendered in Jinja2's sandbox."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifiers.rendering import TEMPLATES_DIR
from notifiers.rendering import RenderError
from notifiers.rendering import render

FACTS = {
    "hazard_id": 17,
    "hazard_number": "YH-341821100001-2026-00001",
    "hazard_title": "储罐区可燃气体报警器失效",
    "enterprise_name": "郎溪县华宇化工有限公司",
    "location": "1号储罐区",
    "grade": "general",
    "deadline": "2026-11-30T15:59:59+00:00",
    "escalation_level": 0,
    "event_at": "2026-12-01T02:00:00+00:00",
    "task_key": "rectify",
    "task_title": "限期整改",
    "task_due_at": "2026-11-30T15:59:59+00:00",
    "recipient_name": "张强（整改责任人）",
}
KINDS = sorted(p.name for p in TEMPLATES_DIR.iterdir() if p.is_dir())


def test_every_event_that_notifies_has_templates():
    from engine.outbox import NOTIFYING_ACTIONS

    assert set(KINDS) == set(NOTIFYING_ACTIONS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_renders_chinese_text(kind, settings):
    facts = {**FACTS, "event": kind, "level": 2, "reason": "repeated_rejects", "kind": "rectify"}
    rendered = render(kind, facts, replace(settings, public_url="https://yh.example.gov.cn/"))
    assert rendered.subject.startswith("【") and "\n" not in rendered.subject
    assert "YH-341821100001-2026-00001" in rendered.subject
    assert rendered.body.startswith("张强（整改责任人），您好：")
    assert "隐患编号：YH-341821100001-2026-00001" in rendered.body
    assert "所属单位：郎溪县华宇化工有限公司" in rendered.body
    assert "https://yh.example.gov.cn/hazards/17" in rendered.body
    assert "\n\n\n" not in rendered.body and "{" not in rendered.body
    assert rendered.summary and "\n" not in rendered.summary and len(rendered.summary) <= 120


def test_times_are_business_local_and_labels_chinese(settings):
    rendered = render("overdue", {**FACTS, "kind": "rectify"}, settings)
    assert "原定期限：2026-11-30 23:59" in rendered.body  # 15:59:59 UTC is 23:59 in Shanghai
    assert "隐患等级：一般" in rendered.body
    assert "办理地址" not in rendered.body  # no public_url configured: no link
    escalated = render("escalated", {**FACTS, "level": 3, "reason": "repeated_rejects"}, settings)
    assert "约谈" in escalated.subject and "多次验收不通过" in escalated.body
    review = render("reminder", {**FACTS, "kind": "review"}, settings)
    assert "销号审核即将到期" in review.body


def test_a_missing_fact_or_kind_fails_loudly(settings):
    facts = dict(FACTS)
    del facts["hazard_title"]
    with pytest.raises(RenderError, match="渲染失败"):
        render("closed", facts, settings)
    with pytest.raises(RenderError, match="没有消息模板"):
        render("no_such_kind", FACTS, settings)


def test_templates_run_in_the_sandbox(settings, tmp_path):
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "subject.txt").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(RenderError, match="evil/subject.txt"):
        render("evil", FACTS, settings, templates_dir=tmp_path)
