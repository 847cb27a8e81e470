"""Scenario tests for processes/sectors/road.bpmn (道路运输: 上门约谈, 10日内消除隐患).

「属地公安交管部门上门约谈,10日内消除隐患」 (S001 公安 L213; national.json vehicle_hazard_elimination).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from engine.errors import Forbidden
from tests.processes.sectors.support import CLOSURE_REVIEW_PASS
from tests.processes.sectors.support import CLOSURE_REVIEW_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import VERIFY_PASS
from tests.processes.sectors.support import VERIFY_REJECT
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import make_sector_org
from tests.processes.sectors.support import rectify_form
from tests.processes.test_hazard_general import ladder_keys

INTERVIEW = {
    "interviewed_on": "2026-11-23",
    "place": "企业调度室",
    "attendees": "主要负责人钱进、实际控制人",
    "vehicles": "皖P·12345 逾期未检验；皖P·67890 逾期未报废",
    "requirements": "10日内完成检验或报废注销，逾期依法处理",
    "interviewer_signature": "郑执法",
}


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with sessions.begin() as session:
        org = make_sector_org(
            session, world, "road", department_name="郎溪县公安局交通管理大队", abbreviation="郎交"
        )
    bind_variant(sessions, "road")
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


def register(driver):
    return driver.register_in_sector("general", title="营运车辆逾期未检验", location="企业停车场")


def test_interview_sets_a_ten_day_elimination_deadline(driver):
    hid = register(driver)
    assert driver.definition(hid) == "hazard_general_road"
    assert driver.open_keys(hid) == ["interview"]
    with pytest.raises(Forbidden):
        driver.act(hid, "interview", "safety_officer", INTERVIEW)
    interviewed_at = START + dt.timedelta(hours=2)
    with time_machine.travel(interviewed_at, tick=False):
        driver.act(hid, "interview", "inspector", INTERVIEW)
    due = interviewed_at + dt.timedelta(days=10)
    assert driver.item(hid, "rectify").due_at == due
    assert driver.hazard(hid).deadline == due  # the computed deadline is the hazard's deadline
    jobs = driver.timer_jobs(hid)
    assert set(jobs) == ladder_keys("rectify")
    assert jobs["rectify_overdue"] == due
    assert "deadline_computed" in driver.actions(hid)

    # day 10 passes: the hazard is overdue and the ladder's 提醒敦促函 are out
    driver.run_timers_at(due + dt.timedelta(minutes=1))
    hazard = driver.hazard(hid)
    assert hazard.overdue
    assert "overdue" in driver.actions(hid)
    assert {n.rung for n in driver.notices(hid)} <= {"urge_before", "urge_due"}
    assert driver.notices(hid)

    with time_machine.travel(due + dt.timedelta(days=1), tick=False):
        driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"inspected"))
        assert driver.hazard(hid).rectified_late
        driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
        driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"


def test_rejections_go_back_to_the_same_ten_day_limit(driver):
    hid = register(driver)
    driver.act(hid, "interview", "inspector", INTERVIEW)
    due = START + dt.timedelta(days=10)
    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"a-1"))
    driver.act(hid, "verify", "safety_officer", VERIFY_REJECT)
    assert driver.open_keys(hid) == ["rectify"] and driver.hazard(hid).failed_verifications == 1
    assert driver.item(hid, "rectify").due_at == due  # rework does not restart the 10 days
    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"a-2"))
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["rectify"] and driver.hazard(hid).failed_verifications == 2
    assert driver.timer_jobs(hid)["rectify_overdue"] == due
    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"a-3"))
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"
    assert driver.forms(hid).count("road_interview") == 1


def test_fix_on_the_spot_needs_no_interview(driver):
    hid = driver.register_in_sector("general", handling_type="immediate")
    assert driver.open_keys(hid) == ["fix_on_spot"]
    photo = driver.photo(hid, b"fixed")
    driver.act(hid, "fix_on_spot", "rectifier", {"description": "灭火器已更换", "after_photos": [photo]})
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"
    assert "road_interview" not in driver.forms(hid)
