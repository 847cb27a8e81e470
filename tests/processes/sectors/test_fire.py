"""Scenario tests for processes/sectors/fire.bpmn (重大火灾隐患: 政府挂牌督办, 督改, 销案)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from sqlalchemy import select

from engine import policy
from engine.errors import Forbidden
from engine.models import Event
from tests.processes.sectors.support import CLOSURE_APPLICATION
from tests.processes.sectors.support import SIGN_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import governance_plan
from tests.processes.sectors.support import make_sector_org
from tests.processes.sectors.support import nine_am
from tests.processes.test_hazard_general import ladder_keys

DUE = dt.date(2026, 12, 31)
LISTING = {
    "fire_report_no": "郎消〔2026〕报 5 号",
    "listed_on": "2026-11-23",
    "supervising_leader": "分管副县长",
    "requirements": "限期整改，整改期间落实安全管控措施，疏散通道保持畅通",
}
CASE_PASS = {
    "decision": "pass",
    "reviewed_on": "2026-12-01",
    "opinion": "复查合格，同意销案",
    "reviewer_signature": "吴审核",
    "document_no": "郎消销〔2026〕2号",
}
CASE_REJECT = {
    "decision": "reject",
    "reviewed_on": "2026-12-01",
    "opinion": "自动喷水灭火系统仍未联动，退回整改",
    "reviewer_signature": "吴审核",
}


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with sessions.begin() as session:
        org = make_sector_org(session, world, "fire", department="lx_fire")
    bind_variant(sessions, "fire")
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


def listed(driver: SectorDriver) -> int:
    """A 重大火灾隐患 reported twice and listed by the government: the plan is open."""
    hid = driver.register_in_sector("major", title="商场自动喷水灭火系统瘫痪", location="地下一层")
    driver.report_both(hid)
    driver.act(hid, "government_listing", "office_admin", LISTING)
    return hid


def test_listed_rectified_and_closed_as_a_case(driver):
    hid = driver.register_in_sector("major", title="商场自动喷水灭火系统瘫痪", location="地下一层")
    assert driver.definition(hid) == "hazard_major_fire"
    # 双报告, in parallel
    assert driver.open_keys(hid) == ["report_congress", "report_regulator"]
    assert driver.hazard(hid).status == "reporting"
    driver.report_both(hid)
    assert driver.open_keys(hid) == ["government_listing"]
    # the government (its 安委会办公室) lists the hazard: a 挂牌督办通知书 with its 文号
    with pytest.raises(Forbidden):
        driver.act(hid, "government_listing", "dept_reviewer", LISTING)
    driver.act(hid, "government_listing", "office_admin", LISTING)
    hazard = driver.hazard(hid)
    assert hazard.listed_level == 3 and hazard.escalation_level == 5
    notices = driver.notices(hid)
    assert [n.kind for n in notices] == ["listing_notice"]
    assert "listed" in driver.actions(hid)
    assert driver.open_keys(hid) == ["governance_plan"]

    # 五落实 plan, sent back once by the principal
    driver.act(hid, "governance_plan", "safety_officer", governance_plan(DUE, funds="50000.00"))
    driver.act(hid, "principal_signoff", "principal", SIGN_REJECT)
    assert driver.open_keys(hid) == ["governance_plan"]
    driver.plan_and_sign(hid, governance_plan(DUE))
    assert driver.open_keys(hid) == ["govern"]
    assert driver.hazard(hid).status == "rectifying"
    jobs = driver.timer_jobs(hid)
    assert set(jobs) == ladder_keys("govern") | {"govern_unresolved"}
    # 挂牌满6个月: 09:00 on 23 May 2027, six months after the listing day
    assert jobs["govern_unresolved"] == nine_am(dt.date(2027, 5, 23))

    # 督改: an evaluation that fails goes back without counting as a failed verification
    driver.govern(hid, b"sprinkler-1")
    assert driver.open_keys(hid) == ["evaluate"]
    driver.evaluate(hid, "reject")
    assert driver.open_keys(hid) == ["govern"]
    assert driver.hazard(hid).failed_verifications == 0
    driver.accept(hid, b"sprinkler-2")
    assert driver.open_keys(hid) == ["case_review"]
    assert driver.hazard(hid).status == "reviewing_closure"
    assert set(driver.timer_jobs(hid)) == {"review_remind", "review_overdue"}

    # 销案审核 rejects: back to 督改, counted
    driver.act(hid, "case_review", "dept_reviewer", CASE_REJECT)
    assert driver.open_keys(hid) == ["govern"]
    assert driver.hazard(hid).failed_verifications == 1
    assert set(driver.timer_jobs(hid)) == ladder_keys("govern") | {"govern_unresolved"}
    driver.accept(hid, b"sprinkler-3")
    driver.act(hid, "case_review", "dept_reviewer", CASE_PASS)

    hazard = driver.hazard(hid)
    assert hazard.status == "closed" and hazard.closed_at is not None
    assert hazard.listed_level is None  # 摘牌 with the 销案
    assert [n.kind for n in driver.notices(hid)] == ["listing_notice", "delisting_notice"]
    actions = driver.actions(hid)
    assert actions[-1] == "closed" and "delisted" in actions
    assert driver.open_keys(hid) == [] and driver.timer_jobs(hid) == {}
    assert driver.forms(hid) == [
        "report_regulator",
        "report_congress",
        "fire_listing",
        "governance_plan",
        "principal_signoff",
        "governance_plan",
        "principal_signoff",
        "govern",
        "acceptance_evaluation",
        "govern",
        "acceptance_evaluation",
        "closure_application",
        "fire_case_closure",
        "govern",
        "acceptance_evaluation",
        "closure_application",
        "fire_case_closure",
    ]


def test_unresolved_six_months_after_listing_goes_to_the_next_higher_government(driver):
    hid = listed(driver)
    driver.plan_and_sign(hid, governance_plan(DUE))
    due = nine_am(dt.date(2027, 5, 23))
    driver.run_timers_at(due - dt.timedelta(minutes=1))
    assert [n.kind for n in driver.notices(hid)] == ["listing_notice"]
    driver.run_timers_at(due + dt.timedelta(minutes=1))
    driver.run_timers_at(due + dt.timedelta(minutes=2))  # a second sweep adds nothing
    referrals = [n for n in driver.notices(hid) if n.kind == "higher_referral"]
    assert len(referrals) == 1
    assert "higher_government" in {r["key"] for r in referrals[0].recipients}
    hazard = driver.hazard(hid)
    assert hazard.overdue  # long past the plan's deadline as well
    # listed (level 5) already: the ladder's rungs up to 挂牌督办 are superseded, not issued
    assert {n.kind for n in driver.notices(hid)} == {"listing_notice", "higher_referral"}
    with driver.sessions() as session:
        skipped = session.scalars(
            select(Event.payload).where(Event.hazard_id == hid, Event.action == "escalation_skipped")
        ).all()
    assert skipped and {e["reason"] for e in skipped} == {"superseded"}
    assert driver.open_keys(hid) == ["govern"]  # the task stays open (non-interrupting)
    # the hazard can still be closed as a case afterwards
    with time_machine.travel(due + dt.timedelta(days=1), tick=False):
        driver.accept(hid, b"late")
        driver.act(hid, "case_review", "dept_reviewer", CASE_PASS)
    assert driver.hazard(hid).status == "closed"
    assert [n.kind for n in driver.notices(hid)].count("higher_referral") == 1


def test_closure_application_belongs_to_the_principal(driver):
    hid = listed(driver)
    driver.plan_and_sign(hid, governance_plan(DUE))
    driver.govern(hid, b"after")
    driver.evaluate(hid, "pass")
    with pytest.raises(Forbidden):
        driver.act(hid, "apply_closure", "safety_officer", CLOSURE_APPLICATION)
    assert driver.open_keys(hid) == ["apply_closure"]


def test_the_unresolved_period_follows_the_sector_profile(driver):
    """The fire department shortens 挂牌满6个月 to 3 months in its profile (the policy editor's
    publish): hazards started afterwards pin the new value, and their 督改 timer follows it."""
    path = driver.ctx.settings.processes_dir / "policies" / "fire.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["values"]["major_fire_unresolved_escalation"]["value"] = 3
    with driver.sessions.begin() as session:
        assert policy.import_policy(session, document).created
    hid = listed(driver)
    driver.plan_and_sign(hid, governance_plan(DUE))
    assert driver.open_keys(hid) == ["govern"]
    # 09:00 on 23 February 2027, three months after the listing day
    assert driver.timer_jobs(hid)["govern_unresolved"] == nine_am(dt.date(2027, 2, 23))
