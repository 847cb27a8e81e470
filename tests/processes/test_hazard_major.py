"""Scenario tests for processes/hazard_major.bpmn (重大事故隐患), driven through engine.runtime."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from sqlalchemy import select

from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.models import Hazard
from engine.models import TaskSubmission
from engine.models import TimerJob
from engine.models import WorkItem
from tests.driver import Driver
from tests.processes.test_hazard_general import ladder_due
from tests.processes.test_hazard_general import ladder_keys

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
GOVERN_DUE = dt.date(2026, 12, 31)
GOVERN_DEADLINE = dt.datetime(2026, 12, 31, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 Shanghai


class MajorDriver(Driver):
    """The general-loop driver plus the uploads and forms of the 重大 loop."""

    def register_major(self, username="chen_safety", **overrides):
        return self.register(username, grade="major", **overrides)

    def timer_jobs(self, hazard_id, state="waiting"):
        with self.sessions() as session:
            return {
                j.timer_key: j.due_at
                for j in session.scalars(
                    select(TimerJob).where(TimerJob.hazard_id == hazard_id, TimerJob.state == state)
                )
            }

    def open_item_due(self, hazard_id, task_key):
        return self.item(hazard_id, task_key).due_at

    def report_both(self, hazard_id, username="chen_safety"):
        self.complete(hazard_id, "report_regulator", username, REPORT_REGULATOR)
        self.complete(hazard_id, "report_congress", username, REPORT_CONGRESS)

    def govern(self, hazard_id, username="zhang_rectifier", content=b"govern-after"):
        photo = self.upload(hazard_id, content, username=username)
        form = {"summary": "已完成储罐区报警系统改造", "after_photos": [photo], "completed_on": "2026-11-30"}
        return self.complete(hazard_id, "govern", username, form)

    def evaluate(self, hazard_id, conclusion, username="chen_safety"):
        report = self.upload(
            hazard_id, b"evaluation-report", username=username, phase="document", filename="report.pdf"
        )
        form = {
            "evaluator_type": "agency",
            "evaluator_name": "安徽某安全评价有限公司",
            "conclusion": conclusion,
            "report": [report],
        }
        return self.complete(hazard_id, "evaluate", username, form)


@pytest.fixture(params=[False, True], ids=["direct", "round_trip"])
def driver(request, sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield MajorDriver(sessions, ctx, world, request.param)


REPORT_REGULATOR = {
    "reported_on": "2026-11-23",
    "receipt_no": "郎应急〔2026〕收 17 号",
    "report_summary": "储罐区可燃气体报警系统失效，已判定为重大事故隐患",
}
REPORT_CONGRESS = {
    "reported_on": "2026-11-23",
    "meeting": "第三届职代会第二次会议",
    "summary": "通报隐患及治理安排",
}
SIGN_PASS = {"decision": "pass", "opinion": "同意实施", "principal_signature": "王建国"}
SIGN_REJECT = {"decision": "reject", "opinion": "资金安排不明确，退回修改", "principal_signature": "王建国"}
CLOSURE_APPLICATION = {"application": "治理完成，评估合格，申请核销并恢复生产", "applied_on": "2026-11-23"}
REVIEW_PASS = {
    "decision": "pass",
    "reviewed_on": "2026-11-24",
    "opinion": "现场审查合格，同意核销",
    "reviewer_signature": "吴刚",
    "document_no": "郎应急核〔2026〕3号",
}
REVIEW_REJECT = {
    "decision": "reject",
    "reviewed_on": "2026-11-24",
    "opinion": "联锁未投用，挂账继续整改",
    "reviewer_signature": "吴刚",
}


def governance_plan(**overrides):
    form = {
        "objectives": "恢复储罐区可燃气体检测报警功能并实现联锁",
        "methods": "更换全部探头，新增SIS联锁",
        "funds": "380000.00",
        "materials": "探头 24 套，控制柜 1 台",
        "responsible_org": "设备部",
        "responsible_person": "张强",
        "due_date": GOVERN_DUE.isoformat(),
        "requirements": "施工期间动火作业按特殊作业管理",
        "safety_measures": "施工区域隔离，专人监护",
        "contingency_plan": "储罐区泄漏专项应急预案",
        "interim_measures": "每小时便携式检测仪巡检，储罐区停止装卸",
        "stop_production": "partial",
    }
    form.update(overrides)
    return form


def test_major_loop_end_to_end(driver):
    hid = driver.register_major()
    hazard = driver.hazard(hid)
    assert hazard.grade == "major" and hazard.handling_type == "deadline"
    # 双报告: both reports are open at once, in parallel
    assert driver.open_keys(hid) == ["report_congress", "report_regulator"]
    assert hazard.status == "reporting"
    driver.complete(hid, "report_congress", "chen_safety", REPORT_CONGRESS)
    assert driver.open_keys(hid) == ["report_regulator"]  # the join waits for the other report
    driver.complete(hid, "report_regulator", "chen_safety", REPORT_REGULATOR)
    assert driver.open_keys(hid) == ["governance_plan"]
    assert driver.hazard(hid).status == "planning"

    driver.complete(hid, "governance_plan", "chen_safety", governance_plan(funds="300000.00"))
    assert driver.open_keys(hid) == ["principal_signoff"]
    hazard = driver.hazard(hid)
    assert hazard.deadline == GOVERN_DEADLINE
    assert hazard.measures == "更换全部探头，新增SIS联锁" and hazard.stop_production is True
    # the principal sends the plan back: a second governance_plan round
    driver.complete(hid, "principal_signoff", "wang_principal", SIGN_REJECT)
    assert driver.open_keys(hid) == ["governance_plan"]
    driver.complete(hid, "governance_plan", "chen_safety", governance_plan())
    assert str(driver.hazard(hid).funds) == "380000.00"
    driver.complete(hid, "principal_signoff", "wang_principal", SIGN_PASS)
    assert driver.open_keys(hid) == ["govern"]
    assert driver.hazard(hid).status == "rectifying"
    assert driver.open_item_due(hid, "govern") == GOVERN_DEADLINE
    # the escalation ladder's rungs ride on govern, as on the general loop's rectify
    assert driver.timer_jobs(hid) == ladder_due(GOVERN_DEADLINE, START, prefix="govern")

    driver.govern(hid, content=b"after-1")
    assert driver.open_keys(hid) == ["evaluate"]
    assert driver.hazard(hid).status == "evaluating"
    assert driver.timer_jobs(hid) == {}  # leaving govern cancels its timers
    assert set(driver.timer_jobs(hid, "cancelled")) == ladder_keys("govern")
    driver.evaluate(hid, "fail")
    assert driver.open_keys(hid) == ["govern"]  # 评估不合格: govern again
    driver.govern(hid, content=b"after-2")
    driver.evaluate(hid, "pass")
    assert driver.open_keys(hid) == ["apply_closure"]
    assert driver.hazard(hid).status == "applying"

    # 申请核销 → the regulator has 10 days for the on-site review
    applied_at = START + dt.timedelta(days=1)
    with time_machine.travel(applied_at, tick=False):
        driver.complete(hid, "apply_closure", "wang_principal", CLOSURE_APPLICATION)
    review_due = applied_at + dt.timedelta(days=10)
    assert driver.open_keys(hid) == ["regulator_review"]
    assert driver.hazard(hid).status == "reviewing_closure"
    assert driver.open_item_due(hid, "regulator_review") == review_due
    assert driver.timer_jobs(hid) == {
        "review_remind": review_due - dt.timedelta(days=2),
        "review_overdue": review_due,
    }
    assert "deadline_computed" in driver.actions(hid)

    # 不合格: 挂账 back to govern, counted as a failed verification
    driver.complete(hid, "regulator_review", "wu_reviewer", REVIEW_REJECT)
    assert driver.open_keys(hid) == ["govern"]
    hazard = driver.hazard(hid)
    assert hazard.status == "rectifying" and hazard.failed_verifications == 1
    assert driver.open_item_due(hid, "govern") == GOVERN_DEADLINE
    assert driver.timer_jobs(hid) == ladder_due(GOVERN_DEADLINE, START, prefix="govern")
    driver.govern(hid, content=b"after-3")
    driver.evaluate(hid, "pass")
    second_application = START + dt.timedelta(days=3)
    with time_machine.travel(second_application, tick=False):
        driver.complete(hid, "apply_closure", "wang_principal", CLOSURE_APPLICATION)
    assert driver.open_item_due(hid, "regulator_review") == second_application + dt.timedelta(days=10)
    assert driver.timer_jobs(hid)["review_overdue"] == second_application + dt.timedelta(days=10)
    driver.complete(hid, "regulator_review", "wu_reviewer", REVIEW_PASS)

    hazard = driver.hazard(hid)
    assert hazard.status == "closed" and hazard.closed_at is not None
    assert driver.open_keys(hid) == []
    assert driver.timer_jobs(hid) == {}
    actions = driver.actions(hid)
    assert actions[0] == "registered" and actions[-1] == "closed"
    assert "overdue" not in actions and "reminder" not in actions and "escalated" not in actions
    with driver.sessions() as s:
        forms = list(
            s.scalars(
                select(TaskSubmission.form_key)
                .where(TaskSubmission.hazard_id == hid)
                .order_by(TaskSubmission.id)
            )
        )
    assert forms == [
        "report_congress",
        "report_regulator",
        "governance_plan",
        "principal_signoff",
        "governance_plan",
        "principal_signoff",
        "govern",
        "evaluation",
        "govern",
        "evaluation",
        "closure_application",
        "regulator_review",
        "govern",
        "evaluation",
        "closure_application",
        "regulator_review",
    ]


def test_incomplete_governance_plan_is_refused_with_field_errors(driver):
    hid = driver.register_major()
    driver.report_both(hid)
    incomplete = governance_plan()
    for missing in ("funds", "contingency_plan", "interim_measures"):
        del incomplete[missing]
    with pytest.raises(InvalidInput) as err:
        driver.complete(hid, "governance_plan", "chen_safety", incomplete)
    assert {"funds", "contingency_plan", "interim_measures"} <= set(err.value.messages)
    with pytest.raises(InvalidInput) as err:
        driver.complete(hid, "governance_plan", "chen_safety", governance_plan(responsible_person="  "))
    assert "responsible_person" in err.value.messages
    assert driver.open_keys(hid) == ["governance_plan"]
    hazard = driver.hazard(hid)
    assert hazard.responsible_person is None and hazard.deadline is None


def test_signoff_gate_refuses_an_incomplete_plan(driver):
    hid = driver.register_major()
    driver.report_both(hid)
    driver.complete(hid, "governance_plan", "chen_safety", governance_plan())
    # the plan lost an item after it was submitted (e.g. edited out in the ledger)
    with driver.sessions.begin() as session:
        session.get(Hazard, hid).interim_measures = None
    with pytest.raises(InvalidInput) as err:
        driver.complete(hid, "principal_signoff", "wang_principal", SIGN_PASS)
    assert list(err.value.messages) == ["decision"]
    assert "整改期间防范措施" in err.value.messages["decision"][0]
    assert driver.open_keys(hid) == ["principal_signoff"]
    # sending it back is always possible; a complete plan then passes
    driver.complete(hid, "principal_signoff", "wang_principal", SIGN_REJECT)
    driver.complete(hid, "governance_plan", "chen_safety", governance_plan())
    driver.complete(hid, "principal_signoff", "wang_principal", SIGN_PASS)
    assert driver.open_keys(hid) == ["govern"]


def test_signoff_belongs_to_the_principal(driver):
    hid = driver.register_major()
    driver.report_both(hid)
    driver.complete(hid, "governance_plan", "chen_safety", governance_plan())
    with pytest.raises(Forbidden):
        driver.complete(hid, "principal_signoff", "chen_safety", SIGN_PASS)
    with driver.sessions() as session:
        item = session.scalars(
            select(WorkItem).where(WorkItem.hazard_id == hid, WorkItem.task_key == "principal_signoff")
        ).one()
        assert item.state == "open" and item.delegable is False
    assert driver.open_keys(hid) == ["principal_signoff"]


def test_evaluator_must_not_be_the_governor(driver):
    # li_mall holds every enterprise role at the mall, so one person could govern and evaluate
    hid = driver.register_major("li_mall", enterprise_id=driver.world.enterprises["mall"].id)
    driver.report_both(hid, "li_mall")
    driver.complete(hid, "governance_plan", "li_mall", governance_plan())
    driver.complete(hid, "principal_signoff", "li_mall", SIGN_PASS)
    driver.govern(hid, "li_mall", b"mall-after")
    with pytest.raises(Forbidden, match="验收人不得为整改人"):
        driver.evaluate(hid, "pass", "li_mall")
    assert driver.open_keys(hid) == ["evaluate"]
