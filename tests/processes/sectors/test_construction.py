"""Scenario tests for processes/sectors/construction_general.bpmn (定人、定时间、定措施) and
construction_major.bpmn (监理停工令 on a major hazard, 复工 after the write-off)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from engine.errors import Forbidden
from engine.errors import InvalidInput
from tests.processes.sectors.support import CLOSURE_REVIEW_PASS
from tests.processes.sectors.support import CLOSURE_REVIEW_REJECT
from tests.processes.sectors.support import REGULATOR_REVIEW_PASS
from tests.processes.sectors.support import REGULATOR_REVIEW_REJECT
from tests.processes.sectors.support import START
from tests.processes.sectors.support import VERIFY_PASS
from tests.processes.sectors.support import VERIFY_REJECT
from tests.processes.sectors.support import SectorDriver
from tests.processes.sectors.support import bind_variant
from tests.processes.sectors.support import governance_plan
from tests.processes.sectors.support import make_sector_org
from tests.processes.sectors.support import rectify_form
from tests.processes.test_hazard_general import ladder_due
from tests.processes.test_hazard_general import ladder_keys

DUE = dt.date(2026, 12, 10)
DEADLINE = dt.datetime(2026, 12, 10, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai


def three_fixed(**overrides):
    """定人、定时间、定措施."""
    form = {
        "responsible_person": "孙整改",
        "due_date": DUE.isoformat(),
        "measures": "补设临边防护栏杆和安全网",
    }
    form.update(overrides)
    return form


def stop_work(driver, hazard_id):
    order = driver.document(hazard_id, b"stop-work-order")
    return {
        "supervising_company": "宣城建设监理有限公司",
        "supervising_engineer": "冯总监",
        "order_no": "监停〔2026〕07号",
        "ordered_on": "2026-11-23",
        "scope": "3号楼高支模区域",
        "safety_measures": "作业人员全部撤离，设置警戒区",
        "owner_notified": "yes",
        "order": [order],
    }


def resume_work(driver, hazard_id):
    order = driver.document(hazard_id, b"resume-order")
    return {
        "supervising_engineer": "冯总监",
        "resumed_on": "2026-12-05",
        "conditions": "高支模体系经专家论证并验收合格",
        "order": [order],
        "project_signature": "周安全",
    }


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with sessions.begin() as session:
        org = make_sector_org(session, world, "construction", department="lx_housing")
    bind_variant(sessions, "construction_general")
    bind_variant(sessions, "construction_major")
    with time_machine.travel(START, tick=False):
        yield SectorDriver(sessions, ctx, world, request.param, org)


# --- 一般隐患: 定人、定时间、定措施 ------------------------------------------------------------------


def test_three_fixed_plan_rectification_and_review(driver):
    hid = driver.register_in_sector("general", title="临边防护缺失", location="3号楼5层")
    assert driver.definition(hid) == "hazard_general_construction"
    assert driver.open_keys(hid) == ["construction_plan"]
    driver.act(hid, "construction_plan", "safety_officer", three_fixed())
    hazard = driver.hazard(hid)
    assert hazard.deadline == DEADLINE and hazard.responsible_person == "孙整改"
    assert hazard.measures == "补设临边防护栏杆和安全网"
    assert driver.open_keys(hid) == ["rectify"]
    assert driver.timer_jobs(hid) == ladder_due(DEADLINE, START)

    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"rail-1"))
    assert driver.open_keys(hid) == ["verify"]
    driver.act(hid, "verify", "safety_officer", VERIFY_REJECT)
    assert driver.open_keys(hid) == ["rectify"] and driver.hazard(hid).failed_verifications == 1
    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"rail-2"))
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    assert driver.open_keys(hid) == ["closure_review"]
    assert set(driver.timer_jobs(hid)) == {"review_remind", "review_overdue"}
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["rectify"] and driver.hazard(hid).failed_verifications == 2
    driver.act(hid, "rectify", "rectifier", rectify_form(driver, hid, b"rail-3"))
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"
    assert driver.forms(hid)[0] == "construction_plan"


def test_three_fixed_plan_needs_person_time_and_measures(driver):
    hid = driver.register_in_sector("general")
    with pytest.raises(InvalidInput) as err:
        driver.act(hid, "construction_plan", "safety_officer", {"measures": "整改"})
    assert {"responsible_person", "due_date"} <= set(err.value.messages)
    assert driver.open_keys(hid) == ["construction_plan"]


def test_fix_on_the_spot(driver):
    hid = driver.register_in_sector("general", handling_type="immediate")
    assert driver.open_keys(hid) == ["fix_on_spot"]
    photo = driver.photo(hid, b"fixed")
    driver.act(hid, "fix_on_spot", "rectifier", {"description": "现场已恢复防护", "after_photos": [photo]})
    driver.act(hid, "verify", "safety_officer", VERIFY_REJECT)
    assert driver.open_keys(hid) == ["fix_on_spot"]  # 即查即改 again
    photo = driver.photo(hid, b"fixed-again")
    driver.act(hid, "fix_on_spot", "rectifier", {"description": "已加固", "after_photos": [photo]})
    driver.act(hid, "verify", "safety_officer", VERIFY_PASS)
    driver.act(hid, "closure_review", "dept_reviewer", CLOSURE_REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"


def test_prominent_hazards_run_the_general_variant(driver):
    hid = driver.register_in_sector("prominent")
    assert driver.definition(hid) == "hazard_general_construction"
    assert driver.open_keys(hid) == ["construction_plan"]


# --- 重大事故隐患: 监理停工令, 复工 -------------------------------------------------------------------


def test_stop_work_order_rectification_and_resumption(driver):
    hid = driver.register_in_sector("major", title="高支模立杆间距超标", location="3号楼屋面")
    assert driver.definition(hid) == "hazard_major_construction"
    # 重患必停: the supervising engineer's stop-work order comes first
    assert driver.open_keys(hid) == ["stop_work"]
    with pytest.raises(InvalidInput) as err:
        form = stop_work(driver, hid)
        del form["order"]
        driver.act(hid, "stop_work", "safety_officer", form)
    assert "order" in err.value.messages
    driver.act(hid, "stop_work", "safety_officer", stop_work(driver, hid))
    assert driver.open_keys(hid) == ["report_congress", "report_regulator"]
    driver.report_both(hid)
    driver.plan_and_sign(hid, governance_plan(dt.date(2026, 12, 31)))
    assert set(driver.timer_jobs(hid)) == ladder_keys("govern")
    driver.accept(hid, b"formwork-1")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_REJECT)
    assert driver.open_keys(hid) == ["govern"] and driver.hazard(hid).failed_verifications == 1
    driver.accept(hid, b"formwork-2")
    driver.act(hid, "regulator_review", "dept_reviewer", REGULATOR_REVIEW_PASS)
    # written off, but work resumes only once the supervisor confirms it
    assert driver.open_keys(hid) == ["resume_work"]
    assert driver.hazard(hid).status == "reviewing_closure"
    with pytest.raises(Forbidden):
        driver.act(hid, "resume_work", "dept_reviewer", resume_work(driver, hid))
    driver.act(hid, "resume_work", "safety_officer", resume_work(driver, hid))
    assert driver.hazard(hid).status == "closed"
    forms = driver.forms(hid)
    assert forms[0] == "construction_stop_work" and forms[-1] == "construction_resume"
