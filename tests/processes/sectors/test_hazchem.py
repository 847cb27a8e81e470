"""Scenario tests for processes/sectors/hazchem.bpmn (危险化学品: 静态/动态判定, 重大危险源包保).

Runs on the demo enterprise 郎溪县华宇化工有限公司 and its demo users.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.models import Role
from tests.processes.sectors.support import REGULATOR_REVIEW_PASS
from tests.processes.sectors.support import REGULATOR_REVIEW_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import add_user
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import demo_org
from tests.processes.sectors.support import governance_plan
from tests.processes.test_hazard_general import ladder_keys

DUE = dt.date(2026, 12, 31)
CHEM_USERS = {
    "rectifier": "zhang_rectifier",
    "safety_officer": "chen_safety",
    "principal": "wang_principal",
    "dept_reviewer": "wu_reviewer",
    "inspector": "zhou_inspector",
}
DETERMINATION = {
    "standard_clause": "《化工和危险化学品生产经营单位重大生产安全事故隐患判定标准（试行）》第十条",
    "nature": "static",
    "major_hazard_source": "yes",
    "hazard_source": "1号罐区（二级重大危险源）",
    "principal_in_charge": "王建国",
    "technical_in_charge": "李技术",
    "operation_in_charge": "赵操作",
    "opinion": "储罐区可燃气体检测报警系统失效，判定为静态重大事故隐患",
    "determiner_signature": "周敏",
}


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    bind_variant(sessions, "hazchem")
    org = demo_org(world, "chem", "lx_emergency", CHEM_USERS)
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


def test_determined_static_hazard_is_governed_and_written_off(driver):
    hid = driver.register_in_sector("major", title="储罐区可燃气体报警器失效", location="1号储罐区")
    assert driver.definition(hid) == "hazard_major_hazchem"
    assert driver.open_keys(hid) == ["determination"]
    assert driver.hazard(hid).status == "registered"
    # the supervising department determines it (静态/动态, 重大危险源 and its three 包保 persons)
    with pytest.raises(Forbidden):
        driver.act(hid, "determination", "safety_officer", DETERMINATION)
    driver.act(hid, "determination", "inspector", DETERMINATION)
    assert driver.open_keys(hid) == ["report_congress", "report_regulator"]
    driver.report_both(hid)
    driver.plan_and_sign(hid, governance_plan(DUE))
    assert driver.open_keys(hid) == ["govern"]
    assert set(driver.timer_jobs(hid)) == ladder_keys("govern")

    driver.govern(hid, b"detectors-1")
    driver.evaluate(hid, "reject")  # 评估不合格: back to govern, not a failed verification
    assert driver.open_keys(hid) == ["govern"] and driver.hazard(hid).failed_verifications == 0
    driver.accept(hid, b"detectors-2")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["govern"] and driver.hazard(hid).failed_verifications == 1
    driver.accept(hid, b"detectors-3")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_PASS)
    hazard = driver.hazard(hid)
    assert hazard.status == "closed"
    assert driver.forms(hid)[:4] == [
        "hazchem_determination",
        "report_regulator",
        "report_congress",
        "governance_plan",
    ]


def test_determination_needs_the_nature_and_the_standard(driver):
    hid = driver.register_in_sector("major")
    form = {k: v for k, v in DETERMINATION.items() if k not in ("nature", "standard_clause")}
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "determination", "inspector", form)
    assert {"nature", "standard_clause"} <= set(err.value.messages)
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "determination", "inspector", {**DETERMINATION, "nature": "unknown"})
    assert "nature" in err.value.messages
    assert driver.open_keys(hid) == ["determination"]


def test_the_evaluator_must_not_be_the_one_who_governed(driver):
    chem = driver.world.enterprises["chem"]
    with driver.sessions.begin() as session:
        scope = {"enterprise_id": chem.id, "region_id": chem.region_id}
        add_user(session, "both_chem", [(Role.RECTIFIER, scope), (Role.SAFETY_OFFICER, scope)])
    hid = driver.register_in_sector("major")
    driver.act(hid, "determination", "inspector", DETERMINATION)
    driver.report_both(hid)
    driver.plan_and_sign(hid, governance_plan(DUE))
    driver.org.users["rectifier"] = driver.org.users["safety_officer"] = "both_chem"
    driver.govern(hid, b"by-both")
    # the shared verification's 治理效果评估 is separated from govern (separate_from)
    with pytest.raises(Forbidden, match="验收人不得为整改人"):
        driver.evaluate(hid, "pass")
    driver.org.users["safety_officer"] = "chen_safety"
    driver.evaluate(hid, "pass")
    assert driver.open_keys(hid) == ["apply_closure"]


def test_general_hazchem_hazards_keep_the_default_loop(driver):
    hid = driver.register_in_sector("general")
    assert driver.definition(hid) == "hazard_general"
    assert driver.open_keys(hid) == ["assign_plan"]
