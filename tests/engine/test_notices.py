"""Escalation notices (engine/notices.py): issuer, recipients, 文号, rendering, dedupe, lifecycle.

Each rung comes from the bundled national profile (``policy.ladder_of``), issued on hazards made
with ``tests.factories.make_hazard`` (the runtime's escalation path calls the same function).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import notices
from engine import outbox
from engine import policy
from engine import runtime
from engine.demo import DemoWorld
from engine.errors import Conflict
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.events import append_event
from engine.events import verify_chain
from engine.models import Event
from engine.models import Hazard
from engine.models import Notice
from engine.models import NumberSequence
from engine.models import OutboxMessage
from engine.models import PolicyProfile
from engine.models import ProcessInstance
from engine.notices import NoticeTemplateError
from engine.runtime import EngineContext
from tests.factories import make_hazard

#: Tuesday 15 December 2026, 10:00 in Shanghai; the hazard's deadline passed on 30 November
NOW = dt.datetime(2026, 12, 15, 2, 0, tzinfo=dt.UTC)
DEADLINE = dt.datetime(2026, 11, 30, 15, 59, 59, tzinfo=dt.UTC)
NUMBER = re.compile(
    r"^(?P<abbr>.+?)(?P<short>督促|函|通|约谈|曝|督告|督|摘告|摘|请督|移)〔(?P<year>\d{4})〕(?P<seq>\d+)号$"
)


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def _hazard(session: Session, ctx: EngineContext, world: DemoWorld, **overrides: object) -> Hazard:
    data = {"deadline": DEADLINE, "discovered_at": dt.datetime(2026, 11, 20, 1, 0, tzinfo=dt.UTC)}
    data.update(overrides)
    return make_hazard(session, ctx, world, world.actor(session, "chen_safety"), **data)


def _instance_id(session: Session, hazard: Hazard) -> int:
    return int(
        session.scalar(select(func.max(ProcessInstance.id)).where(ProcessInstance.hazard_id == hazard.id))
    )


def _profile(session: Session, hazard: Hazard) -> PolicyProfile:
    return policy.resolve_policy(session, hazard.sector_code, hazard.region_path)


def _issue(
    session: Session,
    ctx: EngineContext,
    hazard: Hazard,
    rung_key: str = "letter",
    *,
    rung: policy.LadderRung | None = None,
    dedupe: str | None = None,
    trigger: str = "overdue",
) -> Notice | None:
    profile = _profile(session, hazard)
    rung = rung or policy.ladder_of(profile).rung(rung_key)
    instance_id = _instance_id(session, hazard)
    return notices.issue_notice(
        session,
        ctx,
        hazard=hazard,
        instance_id=instance_id,
        rung=rung,
        trigger=trigger,
        dedupe_key=dedupe or f"instance:{instance_id}:{rung.key}:{rung.kind}",
        due_at=DEADLINE + dt.timedelta(days=3),
        profile=profile,
    )


# --- issuing each rung --------------------------------------------------------------------------------

#: rung -> (issuer key prefix, issuer name, abbreviation, kind short form)
EXPECTED = {
    "urge_before": ("dept:", "郎溪县应急管理局", "郎应急", "督促"),
    "urge_due": ("dept:", "郎溪县应急管理局", "郎应急", "督促"),
    "urge_no_progress": ("dept:", "郎溪县应急管理局", "郎应急", "督促"),
    "letter": ("dept:", "郎溪县应急管理局", "郎应急", "函"),
    "circular": ("office:region:", "郎溪县安全生产委员会办公室", "郎安办", "通"),
    "interview": ("committee:region:", "郎溪县安全生产委员会", "郎溪安委", "约谈"),
    "exposure": ("committee:region:", "郎溪县安全生产委员会", "郎溪安委", "曝"),
    "listing": ("government:region:", "郎溪县人民政府", "郎溪政", "督"),
    "referral": ("committee:region:", "郎溪县安全生产委员会", "郎溪安委", "移"),
}


def test_the_national_ladder_has_the_rungs_this_test_covers(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        ladder = policy.ladder_of(policy.get_profile(session, "national"))
        assert set(ladder.rungs) == set(EXPECTED) == set(policy.RUNG_KEYS)


@pytest.mark.parametrize("rung_key", sorted(EXPECTED))
def test_each_rung_issues_a_numbered_rendered_notice(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld, rung_key: str
) -> None:
    prefix, issuer_name, abbreviation, short = EXPECTED[rung_key]
    county = world.regions["341821"]
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        rung = policy.ladder_of(_profile(session, hazard)).rung(rung_key)
        notice = _issue(session, ctx, hazard, rung_key)
        assert notice is not None and notice.id is not None
        expected_key = (
            f"dept:{world.departments['lx_emergency'].id}" if prefix == "dept:" else f"{prefix}{county.id}"
        )
        assert (notice.issuer_key, notice.issuer_name, notice.issuer_abbreviation) == (
            expected_key,
            issuer_name,
            abbreviation,
        )
        match = NUMBER.match(notice.document_number)
        assert match, notice.document_number
        assert (match["abbr"], match["short"], match["year"]) == (abbreviation, short, "2026")
        assert int(match["seq"]) == notice.sequence >= 1 and notice.year == 2026
        assert notice.document_number == f"{abbreviation}{short}〔2026〕{notice.sequence}号"
        assert (notice.rung, notice.kind, notice.level, notice.trigger) == (
            rung_key,
            rung.kind,
            rung.level,
            "overdue",
        )
        assert notice.status == "issued" and notice.issued_at == NOW
        assert notice.due_at == DEADLINE + dt.timedelta(days=3)
        assert notice.enterprise_id == world.enterprises["chem"].id
        assert notice.target_departments[0] == "郎溪县应急管理局"
        assert [r["key"] for r in notice.recipients] == list(rung.recipients)
        assert all(r["label"] == policy.RECIPIENTS[r["key"]] and r["name"] for r in notice.recipients)
        # the text: title, addressees, the hazard's facts, 依据, deadline, 落款 and date
        assert notice.title and "<" not in notice.title and "郎溪县华宇化工有限公司" in notice.title
        body = notice.body_html
        for text in (
            hazard.number,
            hazard.title,
            "郎溪县华宇化工有限公司",
            "1号储罐区",
            "一般隐患",
            "2026年11月30日",
            "《危险化学品企业重大隐患判定标准》第十条",
            "全国默认策略配置",
            issuer_name,
            "2026年12月15日",
        ):
            assert text in body, (rung_key, text)
        assert "已逾期 11 个工作日" in body  # 1–15 December 2026: 11 working days
        assert notice.facts["document_number"] == notice.document_number
        assert notice.facts["overdue_working_days"] == 11
        if rung.response:
            assert notice.response_due_at is not None and notice.response_due_at > NOW
            due = notice.response_due_at.astimezone(ctx.tz)
            assert f"{due.year}年{due.month}月{due.day}日" in body
        else:
            assert notice.response_due_at is None


def test_recipients_are_named_from_the_hazard(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        names = {}
        for rung in ("interview", "circular", "referral", "listing"):
            notice = _issue(session, ctx, hazard, rung)
            assert notice is not None
            names[rung] = {r["key"]: r["name"] for r in notice.recipients}
    assert names["interview"] == {
        "principal": "郎溪县华宇化工有限公司主要负责人王建国",
        "actual_controller": "郎溪县华宇化工有限公司实际控制人王氏控股",
        "competent_department": "郎溪县应急管理局",
    }
    assert names["circular"]["member_units"] == "郎溪县安全生产委员会各成员单位"
    assert names["referral"]["discipline"] == "郎溪县纪委监委"
    assert names["listing"]["office"] == "郎溪县安全生产委员会办公室"
    assert names["listing"]["enterprise"] == "郎溪县华宇化工有限公司"


def test_an_interview_names_its_time_and_place(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        notice = _issue(session, ctx, hazard, "interview")
        assert notice is not None
        # 3 working days after Tuesday 15 December: Friday 18 December, 09:00 in Shanghai
        assert notice.meeting_at == dt.datetime(2026, 12, 18, 1, 0, tzinfo=dt.UTC)
        assert notice.response_due_at == dt.datetime(2026, 12, 18, 15, 59, 59, tzinfo=dt.UTC)
        assert notice.place == "县安全生产委员会办公室会议室"
        assert "2026年12月18日9时" in notice.body_html and "县安全生产委员会办公室会议室" in notice.body_html
        assert "王建国" in notice.body_html and "王氏控股" in notice.body_html


def test_a_listing_notice_names_its_level_and_deadline(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        notice = _issue(session, ctx, hazard, "listing")
        assert notice is not None
        assert "县级挂牌督办" in notice.body_html and "县级挂牌督办" in notice.title
        # listing_max_duration: 12 months from the issue date (the rectification deadline has passed)
        assert "2027年12月15日" in notice.body_html
        assert notice.facts["listing_level"] == 3


def test_every_notice_kind_has_a_template(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        base = policy.ladder_of(_profile(session, hazard)).rung("listing")
        numbers = set()
        for kind in policy.NOTICE_KINDS:
            rung = replace(base, kind=kind, template=kind)
            notice = _issue(session, ctx, hazard, rung=rung, dedupe=f"test:{hazard.id}:{kind}")
            assert notice is not None, kind
            assert notice.title and hazard.number in notice.body_html, kind
            assert notice.body_html.lstrip().startswith('<div class="notice-body'), kind
            assert "郎溪县人民政府" in notice.body_html and "2026年12月15日" in notice.body_html, kind
            numbers.add(notice.document_number)
        assert len(numbers) == len(policy.NOTICE_KINDS)
        assert (Path(ctx.settings.processes_dir) / "notices" / "_base.html.j2").is_file()
        assert set(notices.KIND_SHORT_FORMS) == set(policy.NOTICE_KINDS)
        assert len(set(notices.KIND_SHORT_FORMS.values())) == len(notices.KIND_SHORT_FORMS)


def test_a_hazard_without_a_lead_department_is_written_to_by_the_county_office(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        hazard.lead_department_id = None
        session.flush()
        session.refresh(hazard)
        notice = _issue(session, ctx, hazard, "letter")
        assert notice is not None
        assert notice.issuer_key == f"office:region:{world.regions['341821'].id}"
        assert notice.document_number.startswith("郎安办函〔2026〕")


def test_region_short_names() -> None:
    assert notices.region_short_name("郎溪县") == "郎溪"
    assert notices.region_short_name("宣城市") == "宣城"
    assert notices.region_short_name("安徽省") == "安徽"
    assert notices.region_short_name("建平镇") == "建平"
    assert notices.region_short_name("广西壮族自治区") == "广西"
    assert notices.region_short_name("内蒙古自治区") == "内蒙古"
    assert notices.region_short_name("县") == "县"


# --- 文号 per issuer, kind and year ----------------------------------------------------------------------


def test_numbers_count_per_issuer_and_kind(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        first, second = _hazard(session, ctx, world), _hazard(session, ctx, world)
        a = _issue(session, ctx, first, "letter")
        b = _issue(session, ctx, second, "letter")
        urge = _issue(session, ctx, second, "urge_due")
        assert a is not None and b is not None and urge is not None
        assert b.sequence == a.sequence + 1
        assert b.document_number == f"郎应急函〔2026〕{a.sequence + 1}号"
        assert urge.document_number.startswith("郎应急督促〔2026〕")  # another kind: its own count


def test_the_year_rolls_over_at_midnight_in_shanghai(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        # 31 December 2026 23:59 in Shanghai is still 2026 …
        with time_machine.travel(dt.datetime(2026, 12, 31, 15, 59, tzinfo=dt.UTC), tick=False):
            late = _issue(session, ctx, hazard, "letter", dedupe="test:late")
        # … one minute later it is 2027 in Shanghai (still 31 December in UTC): a new count
        with time_machine.travel(dt.datetime(2026, 12, 31, 16, 0, tzinfo=dt.UTC), tick=False):
            early = _issue(session, ctx, hazard, "letter", dedupe="test:early")
            again = _issue(session, ctx, hazard, "letter", dedupe="test:again")
        assert late is not None and early is not None and again is not None
        assert late.year == 2026 and "〔2026〕" in late.document_number
        assert early.year == 2027 and early.document_number == "郎应急函〔2027〕1号"
        assert again.document_number == "郎应急函〔2027〕2号"
        assert "2027年1月1日" in early.body_html


# --- dedupe and integrity -----------------------------------------------------------------------------


def _copy(notice: Notice, **changes: object) -> Notice:
    columns = {c.key: getattr(notice, c.key) for c in Notice.__table__.columns if c.key != "id"}
    columns.update(changes)
    return Notice(**columns)


def test_a_dedupe_key_issues_once(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        first = _issue(session, ctx, hazard, "circular", dedupe="instance:1:circular")
        assert first is not None
        sequence = session.scalar(
            select(NumberSequence.value).where(NumberSequence.scope == f"notice:{first.issuer_key}:circular")
        )
        assert _issue(session, ctx, hazard, "circular", dedupe="instance:1:circular") is None
        assert session.scalar(select(func.count(Notice.id)).where(Notice.hazard_id == hazard.id)) == 1
        # nothing was numbered for the refused duplicate
        assert (
            session.scalar(
                select(NumberSequence.value).where(
                    NumberSequence.scope == f"notice:{first.issuer_key}:circular"
                )
            )
            == sequence
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"document_number": "其他〔2026〕999号", "sequence": 999},  # same dedupe key
        {"dedupe_key": "other", "sequence": 998},  # same 文号
        {"dedupe_key": "other", "document_number": "其他〔2026〕997号"},  # same issuer, year, kind, sequence
    ],
)
def test_the_database_refuses_a_duplicate(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld, changes: dict[str, object]
) -> None:
    with sessions.begin() as session:
        notice = _issue(session, ctx, _hazard(session, ctx, world), "letter")
        assert notice is not None
        with pytest.raises(IntegrityError), session.begin_nested():
            session.add(_copy(notice, **changes))
            session.flush()


def test_the_issued_document_is_immutable(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        notice = _issue(session, ctx, _hazard(session, ctx, world), "letter")
        assert notice is not None
        notice_id = notice.id
    with pytest.raises(ValueError, match="不可修改"), sessions.begin() as session:
        session.get_one(Notice, notice_id).body_html = "<p>改过的</p>"
        session.flush()
    with sessions.begin() as session:  # its status may change
        session.get_one(Notice, notice_id).status = "acknowledged"
        session.flush()


# --- the sandbox --------------------------------------------------------------------------------------


@pytest.fixture
def template_ctx(ctx: EngineContext, tmp_path: Path) -> EngineContext:
    """An engine context whose processes directory has the shipped notice templates plus test ones."""
    shutil.copytree(Path(ctx.settings.processes_dir) / "notices", tmp_path / "notices")
    return EngineContext(
        settings=replace(ctx.settings, processes_dir=tmp_path), forms=ctx.forms, _audit_key=ctx.audit_key
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "沙箱"),
        ("{{ hazard_title.__class__ }}", "沙箱"),
        ("{{ recipients.append(1) }}", "沙箱"),
        ("{{ 'x' * 10000000 }}", "沙箱"),
        ("{{ no_such_fact }}", "不存在的变量"),
        ("{% if %}", "语法错误"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ],
)
def test_templates_run_in_the_sandbox(
    sessions: sessionmaker[Session], template_ctx: EngineContext, world: DemoWorld, source: str, message: str
) -> None:
    notices_dir = Path(template_ctx.settings.processes_dir) / "notices"
    (notices_dir / "evil.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block title %}标题{% endblock %}{% block opening %}'
        + source
        + "{% endblock %}",
        encoding="utf-8",
    )
    with sessions.begin() as session:
        hazard = _hazard(session, template_ctx, world)
        rung = replace(policy.ladder_of(_profile(session, hazard)).rung("letter"), template="evil")
        with pytest.raises(NoticeTemplateError, match=message) as raised:
            _issue(session, template_ctx, hazard, rung=rung)
        assert "evil.html.j2" in str(raised.value)
        assert session.scalar(select(func.count(Notice.id)).where(Notice.hazard_id == hazard.id)) == 0
        # the failed attempt took no number: the next letter continues the count without a gap
        before = session.scalar(
            select(NumberSequence.value).where(
                NumberSequence.scope == f"notice:dept:{world.departments['lx_emergency'].id}:letter"
            )
        )
        good = _issue(session, template_ctx, hazard, "letter")
        assert good is not None and good.sequence == (before or 0) + 1


def test_a_missing_template_is_a_clear_error(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        rung = replace(
            policy.ladder_of(_profile(session, hazard)).rung("letter"), template="no_such_template"
        )
        with pytest.raises(NoticeTemplateError, match="no_such_template.html.j2.*模板文件不存在"):
            _issue(session, ctx, hazard, rung=rung)


def test_facts_are_escaped(sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world, title="<script>alert(1)</script>报警器失效")
        notice = _issue(session, ctx, hazard, "letter")
        assert notice is not None
        assert "<script>" not in notice.body_html and "&lt;script&gt;" in notice.body_html
        assert notice.title.startswith("关于郎溪县华宇化工有限公司")
        printable = notices.render_printable(notice)
        assert "<script>" not in printable


def test_the_printable_document(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        notice = _issue(session, ctx, _hazard(session, ctx, world), "interview")
        assert notice is not None
        html = notices.render_printable(notice)
    assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
    assert "size: A4" in html and '"WenQuanYi Micro Hei"' in html
    assert re.search(r'font-family: "FangSong".*"WenQuanYi Micro Hei";', html)
    assert f'<p class="doc-number">{notice.document_number}</p>' in html
    assert '<header class="red-head">郎溪县安全生产委员会</header>' in html
    assert notice.body_html.strip() in html
    assert "<script" not in html and "http" not in html  # self-contained


# --- lifecycle ----------------------------------------------------------------------------------------


def test_the_enterprise_acknowledges_and_responds_and_the_issuer_closes(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        notice = _issue(session, ctx, hazard, "letter")
        assert notice is not None
        notice_id, instance_id = notice.id, notice.instance_id
        actor = world.actor(session, "chen_safety")
        assert notices.notice_actions(session, actor, notice) == ["acknowledge"]
        assert notices.notice_actions(session, world.actor(session, "wu_reviewer"), notice) == ["close"]

    with sessions.begin() as session:
        with pytest.raises(Conflict, match="请先签收"):
            notices.respond(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "chen_safety"), text="x"
            )
    with sessions.begin() as session:
        with pytest.raises(Forbidden, match="被督办企业"):
            notices.acknowledge(session, ctx, notice_id=notice_id, actor=world.actor(session, "wu_reviewer"))
    with sessions.begin() as session:
        with pytest.raises(NotFound):
            notices.acknowledge(session, ctx, notice_id=notice_id, actor=world.actor(session, "zhao_gd"))

    with sessions.begin() as session:
        done = notices.acknowledge(
            session, ctx, notice_id=notice_id, actor=world.actor(session, "chen_safety")
        )
        assert done.status == "acknowledged" and done.acknowledged_at == NOW
        assert done.acknowledged_by_id == world.users["chen_safety"].id
    with sessions.begin() as session:
        with pytest.raises(Conflict, match="已签收"):
            notices.acknowledge(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "wang_principal")
            )
    with sessions.begin() as session:
        with pytest.raises(InvalidInput) as raised:
            notices.respond(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "wang_principal"), text="  "
            )
        assert "text" in raised.value.messages
    with sessions.begin() as session:
        with pytest.raises(Forbidden, match="签发机关"):
            notices.close(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "chen_safety"), note="x"
            )
    with sessions.begin() as session:
        answered = notices.respond(
            session,
            ctx,
            notice_id=notice_id,
            actor=world.actor(session, "wang_principal"),
            text="已更换探头，12月20日前验收",
        )
        assert answered.status == "responded" and answered.response_text == "已更换探头，12月20日前验收"
    with sessions.begin() as session:
        with pytest.raises(Conflict, match="已回复"):
            notices.respond(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "chen_safety"), text="again"
            )
    with sessions.begin() as session:
        closed = notices.close(session, ctx, notice_id=notice_id, actor=world.actor(session, "wu_reviewer"))
        assert closed.status == "closed" and closed.closed_by_id == world.users["wu_reviewer"].id
        assert closed.close_note is None
    with sessions.begin() as session:
        with pytest.raises(Conflict, match="已办结"):
            notices.close(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "he_office"), note="x"
            )
        assert (
            notices.notice_actions(
                session,
                world.actor(session, "wu_reviewer"),
                notices.get_notice(session, world.actor(session, "wu_reviewer"), notice_id),
            )
            == []
        )

    with sessions.begin() as session:
        chain = session.scalars(
            select(Event).where(Event.instance_id == instance_id).order_by(Event.seq)
        ).all()
        recorded = [(e.action, e.actor_id, e.payload) for e in chain if e.action.startswith("notice_")]
        number = session.get_one(Notice, notice_id).document_number
        payload = {"notice_id": notice_id, "number": number}
        assert recorded == [
            ("notice_acknowledged", world.users["chen_safety"].id, payload),
            ("notice_responded", world.users["wang_principal"].id, payload),
            ("notice_closed", world.users["wu_reviewer"].id, payload),
        ]
        assert verify_chain(session, key=ctx.audit_key, instance_id=instance_id) == []


def test_closing_a_committee_notice_is_for_the_office(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        notice = _issue(session, ctx, _hazard(session, ctx, world), "interview")
        assert notice is not None
        notice_id = notice.id
    with sessions.begin() as session:
        with pytest.raises(Forbidden):  # a department reviewer does not close the committee's notice
            notices.close(
                session, ctx, notice_id=notice_id, actor=world.actor(session, "wu_reviewer"), note="x"
            )
    with sessions.begin() as session:
        with pytest.raises(InvalidInput) as raised:  # not answered: a reason is required
            notices.close(session, ctx, notice_id=notice_id, actor=world.actor(session, "he_office"))
        assert "note" in raised.value.messages
    with sessions.begin() as session:
        closed = notices.close(
            session, ctx, notice_id=notice_id, actor=world.actor(session, "he_office"), note="隐患已销号"
        )
        assert closed.status == "closed" and closed.close_note == "隐患已销号"
        assert verify_chain(session, key=ctx.audit_key, instance_id=closed.instance_id) == []


# --- queries ------------------------------------------------------------------------------------------


def test_lists_are_scoped_and_filtered(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        letter = _issue(session, ctx, hazard, "letter")
        circular = _issue(session, ctx, hazard, "circular")
        assert letter is not None and circular is not None
        chen = world.actor(session, "chen_safety")
        page = notices.list_notices(session, chen, hazard_id=hazard.id)
        assert [n.id for n in page.items] == [circular.id, letter.id] and page.total == 2
        assert [
            n.id for n in notices.list_notices(session, chen, hazard_id=hazard.id, kind="letter").items
        ] == [letter.id]
        assert notices.list_notices(session, chen, hazard_id=hazard.id, status="closed").total == 0
        assert notices.list_notices(session, chen, issuer=circular.issuer_key, hazard_id=hazard.id).total == 1
        assert notices.list_notices(session, chen, year=2025, hazard_id=hazard.id).total == 0
        assert notices.list_notices(session, chen, hazard_number=hazard.number).total == 2
        assert (
            notices.list_notices(session, chen, hazard_id=hazard.id, per_page=1, page=2).items[0].id
            == letter.id
        )
        assert [n.id for n in notices.hazard_notices(session, chen, hazard.id)] == [letter.id, circular.id]
        assert (circular.issuer_key, "郎溪县安全生产委员会办公室") in notices.issuer_choices(session, chen)
        other = world.actor(session, "zhao_gd")
        assert notices.list_notices(session, other, hazard_id=hazard.id).total == 0
        assert notices.hazard_notices(session, other, hazard.id) == []
        with pytest.raises(NotFound):
            notices.get_notice(session, other, letter.id)
        assert notices.get_notice(session, chen, letter.id) is letter
        with pytest.raises(InvalidInput):
            notices.list_notices(session, chen, kind="overdue")
        with pytest.raises(InvalidInput):
            notices.list_notices(session, chen, per_page=0)


# --- notifications ------------------------------------------------------------------------------------


def test_notice_issued_notifies_the_enterprise_and_the_lead_department(
    sessions: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    """What the runtime does after issue_notice: append ``notice_issued`` and call the outbox."""
    with sessions.begin() as session:
        hazard = _hazard(session, ctx, world)
        notice = _issue(session, ctx, hazard, "letter")
        assert notice is not None
        instance = session.get_one(ProcessInstance, notice.instance_id)
        event = append_event(
            session,
            instance,
            key=ctx.audit_key,
            action="notice_issued",
            at=NOW,
            payload={
                "notice_id": notice.id,
                "number": notice.document_number,
                "kind": notice.kind,
                "title": notice.title,
            },
        )
        loaded = runtime._Loaded(instance, hazard, None, NOW)
        assert outbox.on_event(session, ctx, loaded, event) >= 5
        session.flush()
        rows = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.hazard_id == hazard.id, OutboxMessage.kind == "notice_issued"
            )
        ).all()
        users = {r.recipient_user_id for r in rows}
        expected = {
            world.users[u].id
            for u in ("zhang_rectifier", "liu_rectifier", "chen_safety", "wang_principal", "wu_reviewer")
        }
        assert users == expected
        assert {r.payload["notice_number"] for r in rows} == {notice.document_number}
        assert {r.payload["notice_title"] for r in rows} == {notice.title}
        assert {r.payload["kind"] for r in rows} == {"letter"}


# --- PostgreSQL: numbering under concurrency -----------------------------------------------------------

THREADS = 8


def test_concurrent_issues_under_one_issuer_get_distinct_gap_free_numbers(
    committed: sessionmaker[Session], ctx: EngineContext, world: DemoWorld
) -> None:
    if committed.kw["bind"].dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=postgresql+psycopg://…)")
    scope = f"notice:dept:{world.departments['lx_emergency'].id}:letter"
    with committed.begin() as session:
        session.execute(
            delete(NumberSequence).where(NumberSequence.scope == scope, NumberSequence.year == 2026)
        )
        hazard_ids = [_hazard(session, ctx, world).id for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS, timeout=60)
    numbers: list[tuple[str, int]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def issue(hazard_id: int) -> None:
        try:
            with committed.begin() as session:
                hazard = session.get_one(Hazard, hazard_id)
                session.scalars(
                    select(ProcessInstance)
                    .where(ProcessInstance.hazard_id == hazard_id)
                    .with_for_update(of=ProcessInstance)
                ).all()
                barrier.wait()
                notice = _issue(session, ctx, hazard, "letter")
                assert notice is not None
                with lock:
                    numbers.append((notice.document_number, notice.sequence))
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=issue, args=(hazard_id,)) for hazard_id in hazard_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(seq for _, seq in numbers) == list(range(1, THREADS + 1))
    assert len({number for number, _ in numbers}) == THREADS
    with committed.begin() as session:
        stored = session.scalars(
            select(Notice.document_number).where(Notice.hazard_id.in_(hazard_ids)).order_by(Notice.sequence)
        ).all()
        assert stored == [f"郎应急函〔2026〕{n}号" for n in range(1, THREADS + 1)]
        session.execute(
            delete(NumberSequence).where(NumberSequence.scope == scope, NumberSequence.year == 2026)
        )
