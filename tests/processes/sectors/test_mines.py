"""Scenario tests for processes/sectors/mines.bpmn (非煤矿山: 五落实 plan, 调查组 for every major hazard)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.models import Event
from engine.models import Hazard
from tests.processes.sectors.support import REGULATOR_REVIEW_PASS
from tests.processes.sectors.support import REGULATOR_REVIEW_REJECT
from tests.processes.sectors.support import SIGN_PASS
from tests.processes.sectors.support import SIGN_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import make_sector_org
from tests.processes.test_hazard_general import ladder_due

DUE = dt.date(2026, 12, 31)
DEADLINE = dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai


def five_plan(**overrides):
    form = {
        "responsible_org": "采矿车间",
        "responsible_person": "孙整改",
        "measures": "对采空区实施充填，完善地压监测系统",
        "funds": "860000.00",
        "due_date": DUE.isoformat(),
        "contingency_plan": "采空区冒顶片帮专项应急预案",
        "interim_measures": "采空区周边停止作业，设置警戒，每班巡查",
        "stop_production": "partial",
    }
    form.update(overrides)
    return form


def investigation(driver, hazard_id):
    report = driver.document(hazard_id, b"investigation-report", role="inspector")
    return {
        "team_leader": "郑执法",
        "team_members": "县应急局、自然资源局、矿山安全专家",
        "cause": "采空区未及时充填，地压监测系统失效",
        "responsibility": "企业主要负责人未落实隐患排查治理责任",
        "accountability": "约谈企业主要负责人，对安全矿长依法处罚",
        "recurrence": "no",
        "report": [report],
        "leader_signature": "郑执法",
    }


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with sessions.begin() as session:
        org = make_sector_org(session, world, "mines", department="lx_emergency")
    bind_variant(sessions, "mines")
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


def test_investigation_team_and_five_point_plan_then_closure(driver):
    hid = driver.register_in_sector("major", title="采空区未按设计充填", location="-120m中段")
    assert driver.definition(hid) == "hazard_major_mines"
    # 双报告 and the department's 调查组 run side by side; the plan waits for all three
    assert driver.open_keys(hid) == ["investigation", "report_congress", "report_regulator"]
    driver.report_both(hid)
    assert driver.open_keys(hid) == ["investigation"]
    with pytest.raises(Forbidden):
        driver.act(hid, "investigation", "safety_officer", investigation(driver, hid))
    driver.act(hid, "investigation", "inspector", investigation(driver, hid))
    assert driver.open_keys(hid) == ["governance_plan"]
    driver.act(hid, "governance_plan", "safety_officer", five_plan())
    hazard = driver.hazard(hid)
    assert hazard.deadline == DEADLINE and hazard.funds == Decimal("860000.00")
    assert hazard.responsible_person == "孙整改" and hazard.stop_production is True
    assert hazard.contingency_plan and hazard.interim_measures
    driver.act(hid, "principal_signoff", "principal", SIGN_REJECT)
    assert driver.open_keys(hid) == ["governance_plan"]
    driver.act(hid, "governance_plan", "safety_officer", five_plan())
    driver.act(hid, "principal_signoff", "principal", SIGN_PASS)
    assert driver.open_keys(hid) == ["govern"]
    assert driver.timer_jobs(hid) == ladder_due(DEADLINE, START, prefix="govern")

    driver.accept(hid, b"backfill-1")
    assert driver.open_keys(hid) == ["regulator_review"]
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["govern"]
    assert driver.hazard(hid).failed_verifications == 1
    assert driver.timer_jobs(hid) == ladder_due(DEADLINE, START, prefix="govern")
    driver.accept(hid, b"backfill-2")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_PASS)
    hazard = driver.hazard(hid)
    assert hazard.status == "closed" and driver.open_keys(hid) == []
    assert driver.forms(hid).count("mines_investigation") == 1
    assert driver.forms(hid).count("mines_five_plan") == 2


def test_the_five_point_gate_refuses_a_plan_that_lost_an_item(driver):
    hid = driver.register_in_sector("major")
    driver.report_both(hid)
    driver.act(hid, "investigation", "inspector", investigation(driver, hid))
    driver.act(hid, "governance_plan", "safety_officer", five_plan())
    with driver.sessions.begin() as session:
        session.get(Hazard, hid).contingency_plan = None
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "principal_signoff", "principal", SIGN_PASS)
    assert "应急预案" in err.value.messages["decision"][0]
    assert driver.open_keys(hid) == ["principal_signoff"]


def test_incomplete_five_point_plan_is_refused(driver):
    hid = driver.register_in_sector("major")
    driver.report_both(hid)
    driver.act(hid, "investigation", "inspector", investigation(driver, hid))
    incomplete = five_plan()
    for item in ("funds", "contingency_plan", "due_date"):
        del incomplete[item]
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "governance_plan", "safety_officer", incomplete)
    assert {"funds", "contingency_plan", "due_date"} <= set(err.value.messages)
    assert driver.open_keys(hid) == ["governance_plan"]


def test_investigation_needs_its_report(driver):
    hid = driver.register_in_sector("major")
    form = investigation(driver, hid)
    del form["report"]
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "investigation", "inspector", form)
    assert "report" in err.value.messages
    assert "investigation" in driver.open_keys(hid)


def test_third_failed_review_summons_the_principal(driver):
    hid = driver.register_in_sector("major")
    driver.report_both(hid)
    driver.act(hid, "investigation", "inspector", investigation(driver, hid))
    driver.plan_and_sign(hid, five_plan())
    for attempt in range(1, 4):
        driver.accept(hid, f"after-{attempt}".encode())
        driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_REJECT)
        assert driver.hazard(hid).failed_verifications == attempt
    notices = driver.notices(hid)
    assert [(n.rung, n.trigger) for n in notices] == [("interview", "failed_verifications")]
    with driver.sessions() as session:
        escalated = session.scalars(
            select(Event.task_key).where(Event.hazard_id == hid, Event.action == "escalated")
        ).all()
    assert escalated == ["escalate_rejects"]
    assert driver.open_keys(hid) == ["govern"]
