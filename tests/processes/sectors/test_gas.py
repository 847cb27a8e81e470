"""Scenario tests for processes/sectors/gas.bpmn (城镇燃气: 该停则停, 恢复供气 after the write-off)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from engine.errors import InvalidInput
from tests.processes.sectors.support import REGULATOR_REVIEW_PASS
from tests.processes.sectors.support import REGULATOR_REVIEW_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import governance_plan
from tests.processes.sectors.support import make_sector_org
from tests.processes.test_hazard_general import ladder_keys

STOP = {
    "scope": "城东片区中压管网3号调压箱下游",
    "stopped_on": "2026-11-23",
    "users_notified": "短信及张贴通知，涉及居民用户 420 户",
    "safety_measures": "关闭上游阀门，放散置换，现场警戒",
    "operator_signature": "周安全",
}


def restore(driver, hazard_id):
    photo = driver.photo(hazard_id, b"restore-check", role="safety_officer")
    return {
        "inspection": "管道气密性试验合格，调压箱更换完成",
        "restored_on": "2026-12-05",
        "photos": [photo],
        "operator_signature": "周安全",
    }


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with sessions.begin() as session:
        org = make_sector_org(session, world, "gas", department="lx_housing")
    bind_variant(sessions, "gas")
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


def test_stop_supply_govern_write_off_and_restore(driver):
    hid = driver.register_in_sector("major", title="调压箱严重锈蚀泄漏", location="城东3号调压箱")
    assert driver.definition(hid) == "hazard_major_gas"
    driver.report_both(hid)
    # 涉气违规该停则停
    assert driver.open_keys(hid) == ["stop_supply"]
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "stop_supply", "safety_officer", {k: v for k, v in STOP.items() if k != "scope"})
    assert "scope" in err.value.messages
    driver.act(hid, "stop_supply", "safety_officer", STOP)
    assert driver.open_keys(hid) == ["governance_plan"]
    driver.plan_and_sign(hid, governance_plan(dt.date(2026, 12, 31)))
    assert set(driver.timer_jobs(hid)) == ladder_keys("govern")
    driver.accept(hid, b"regulator-1")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["govern"] and driver.hazard(hid).failed_verifications == 1
    driver.govern(hid, b"regulator-2")
    driver.evaluate(hid, "reject")
    assert driver.open_keys(hid) == ["govern"] and driver.hazard(hid).failed_verifications == 1
    driver.accept(hid, b"regulator-3")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_PASS)
    assert driver.open_keys(hid) == ["restore_supply"]
    driver.act(hid, "restore_supply", "safety_officer", restore(driver, hid))
    hazard = driver.hazard(hid)
    assert hazard.status == "closed" and driver.open_keys(hid) == []
    forms = driver.forms(hid)
    assert forms.index("gas_stop_supply") < forms.index("governance_plan")
    assert forms[-1] == "gas_restore_supply"
