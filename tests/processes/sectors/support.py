"""What the sector-variant scenario tests share: organisations per sector, a driver, forms."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import sectors
from engine import timers
from engine.access import load_actor
from engine.demo import DemoWorld
from engine.models import Department
from engine.models import DepartmentSector
from engine.models import Enterprise
from engine.models import Membership
from engine.models import Notice
from engine.models import Role
from engine.models import TaskSubmission
from engine.models import TimerJob
from engine.models import User
from tests.driver import Driver

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
COUNTY = "341821"  # 郎溪县


@dataclass
class SectorOrg:
    """An enterprise of one sector, its people, and the department supervising the sector."""

    sector: str
    enterprise_id: int
    department_id: int
    #: role -> username
    users: dict[str, str] = field(default_factory=dict)


def _user(session: Session, username: str, display: str, role: Role, **scope: int | None) -> None:
    user = User(username=username, display_name=display)
    session.add(user)
    session.flush()
    session.add(Membership(user_id=user.id, role=role, **scope))
    session.flush()


def make_sector_org(
    session: Session,
    world: DemoWorld,
    sector: str,
    *,
    department: str | None = None,
    department_name: str | None = None,
    abbreviation: str = "郎测",
) -> SectorOrg:
    """A 郎溪县 enterprise of ``sector`` with a rectifier, a safety officer and a principal (three
    people, so the 验收人 ≠ 整改人 rule can be met), and a department that leads the sector:
    the demo department ``department`` (given a reviewer and an inspector of its own), or a new
    one called ``department_name``."""
    region = world.regions[COUNTY]
    if department is not None:
        dept = world.departments[department]
    else:
        dept = Department(
            name=department_name or f"郎溪县{sector}监管部门", abbreviation=abbreviation, region_id=region.id
        )
        session.add(dept)
        session.flush()
        session.add(DepartmentSector(department_id=dept.id, sector_code=sector, leads=True))
    enterprise = Enterprise(
        name=f"郎溪县{sector}测试有限公司",
        credit_code=f"91341821SECT{sector[:6].upper():0>6}"[:18],
        region_id=region.id,
        sector_code=sector,
        principal_name="钱进",
        actual_controller="钱氏实业",
        high_risk=True,
    )
    session.add(enterprise)
    session.flush()
    org = SectorOrg(sector, enterprise.id, dept.id)
    people = [
        (Role.RECTIFIER, "孙整改", {"enterprise_id": enterprise.id, "region_id": region.id}),
        (Role.SAFETY_OFFICER, "周安全", {"enterprise_id": enterprise.id, "region_id": region.id}),
        (Role.PRINCIPAL, "钱进", {"enterprise_id": enterprise.id, "region_id": region.id}),
        (Role.DEPT_REVIEWER, "吴审核", {"department_id": dept.id, "region_id": dept.region_id}),
        (Role.INSPECTOR, "郑执法", {"department_id": dept.id, "region_id": dept.region_id}),
    ]
    for role, display, scope in people:
        username = f"{sector}_{role.value}"
        _user(session, username, f"{display}（{sector}）", role, **scope)
        org.users[role.value] = username
    org.users["office_admin"] = "he_office"
    return org


def demo_org(world: DemoWorld, enterprise: str, department: str, users: dict[str, str]) -> SectorOrg:
    """The org of a demo enterprise, with the demo users holding each role."""
    ent = world.enterprises[enterprise]
    return SectorOrg(ent.sector_code, ent.id, world.departments[department].id, dict(users))


def add_user(session: Session, username: str, roles: list[tuple[Role, dict[str, int | None]]]) -> None:
    """One more user holding several roles (to show the 验收人 ≠ 整改人 rule)."""
    user = User(username=username, display_name=username)
    session.add(user)
    session.flush()
    for role, scope in roles:
        session.add(Membership(user_id=user.id, role=role, **scope))
    session.flush()


class SectorDriver(Driver):
    """The scenario driver for a sector variant: binds the variant, knows the sector's people."""

    def __init__(self, sessions, ctx, world, round_trip: bool, org: SectorOrg) -> None:
        super().__init__(sessions, ctx, world, round_trip)
        self.org = org

    def actor(self, username):
        with self.sessions() as session:
            return load_actor(session, username=username)

    def who(self, role: str) -> str:
        return self.org.users[role]

    def register_in_sector(self, grade: str, **overrides):
        data = {
            "enterprise_id": self.org.enterprise_id,
            "grade": grade,
            "title": overrides.pop("title", "隐患"),
            "description": overrides.pop("description", "隐患描述"),
            "location": overrides.pop("location", "现场"),
        }
        data.update(overrides)
        return self.register(self.who("safety_officer"), **data)

    def act(self, hazard_id, task_key, role, form):
        return self.complete(hazard_id, task_key, self.who(role), form)

    def photo(self, hazard_id, content: bytes, role="rectifier", phase="after"):
        return self.upload(hazard_id, content, username=self.who(role), phase=phase)

    def document(self, hazard_id, content: bytes, role="safety_officer"):
        return self.upload(
            hazard_id, content, username=self.who(role), phase="document", filename="document.pdf"
        )

    def timer_jobs(self, hazard_id, state="waiting") -> dict[str, dt.datetime]:
        with self.sessions() as session:
            return {
                j.timer_key: j.due_at
                for j in session.scalars(
                    select(TimerJob).where(TimerJob.hazard_id == hazard_id, TimerJob.state == state)
                )
            }

    def notices(self, hazard_id) -> list[Notice]:
        with self.sessions() as session:
            return list(
                session.scalars(select(Notice).where(Notice.hazard_id == hazard_id).order_by(Notice.id))
            )

    def forms(self, hazard_id) -> list[str]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(TaskSubmission.form_key)
                    .where(TaskSubmission.hazard_id == hazard_id)
                    .order_by(TaskSubmission.id)
                )
            )

    def definition(self, hazard_id) -> str:
        with self.sessions() as session:
            from engine.models import ProcessInstance

            instance = session.scalars(
                select(ProcessInstance)
                .where(ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == "loop")
                .order_by(ProcessInstance.id.desc())
            ).first()
            return instance.definition_version.process_key

    # -- the steps every 重大 variant shares ------------------------------------------------------

    def report_both(self, hazard_id):
        self.act(hazard_id, "report_regulator", "safety_officer", REPORT_REGULATOR)
        self.act(hazard_id, "report_congress", "safety_officer", REPORT_CONGRESS)

    def plan_and_sign(self, hazard_id, form):
        self.act(hazard_id, "governance_plan", "safety_officer", form)
        self.act(hazard_id, "principal_signoff", "principal", SIGN_PASS)

    def govern(self, hazard_id, content: bytes):
        self.act(hazard_id, "govern", "rectifier", govern_form(self, hazard_id, content))

    def evaluate(self, hazard_id, conclusion: str):
        self.act(hazard_id, "evaluate", "safety_officer", evaluation_form(self, hazard_id, conclusion))

    def accept(self, hazard_id, content: bytes):
        """治理 → 治理效果评估（合格）→ 申请核销: the shared verification's 重大 path, up to the review."""
        self.govern(hazard_id, content)
        self.evaluate(hazard_id, "pass")
        self.act(hazard_id, "apply_closure", "principal", CLOSURE_APPLICATION)

    def run_timers_at(self, when: dt.datetime):
        import time_machine

        with time_machine.travel(when, tick=False):
            return timers.run_due(self.sessions, self.ctx)


def bind_variant(sessions, key: str) -> None:
    """Deploy and bind one shipped variant inside the test's transaction (rolled back after it)."""
    with sessions.begin() as session:
        sectors.bind_sector_variants(session, only=[key])


# --- forms --------------------------------------------------------------------------------------

VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "周安全"}
VERIFY_REJECT = {"decision": "reject", "opinion": "整改不到位", "verifier_signature": "周安全"}
CLOSURE_REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴审核"}
CLOSURE_REVIEW_REJECT = {
    "decision": "reject",
    "opinion": "整改不到位，退回整改",
    "reviewer_signature": "吴审核",
}
REGULATOR_REVIEW_PASS = {
    "decision": "pass",
    "reviewed_on": "2026-11-30",
    "opinion": "现场审查合格，同意核销",
    "reviewer_signature": "吴审核",
    "document_no": "郎核〔2026〕1号",
}
REGULATOR_REVIEW_REJECT = {
    "decision": "reject",
    "reviewed_on": "2026-11-30",
    "opinion": "现场审查不合格，挂账继续整改",
    "reviewer_signature": "吴审核",
}
REPORT_REGULATOR = {
    "reported_on": "2026-11-23",
    "receipt_no": "收〔2026〕8号",
    "report_summary": "隐患现状、原因、危害程度及治理方案",
}
REPORT_CONGRESS = {
    "reported_on": "2026-11-23",
    "meeting": "职工代表大会",
    "summary": "通报重大事故隐患及治理安排",
}
SIGN_PASS = {"decision": "pass", "opinion": "同意实施", "principal_signature": "钱进"}
SIGN_REJECT = {"decision": "reject", "opinion": "资金未落实，退回修改", "principal_signature": "钱进"}
CLOSURE_APPLICATION = {"application": "治理完成，评估合格，申请核销", "applied_on": "2026-11-30"}


def rectify_form(driver: SectorDriver, hazard_id: int, content: bytes) -> dict:
    photo = driver.photo(hazard_id, content)
    return {"summary": "隐患已消除", "after_photos": [photo], "completed_on": "2026-11-30"}


def govern_form(driver: SectorDriver, hazard_id: int, content: bytes) -> dict:
    photo = driver.photo(hazard_id, content)
    return {"summary": "治理完成", "after_photos": [photo], "completed_on": "2026-11-30"}


def evaluation_form(driver: SectorDriver, hazard_id: int, conclusion: str) -> dict:
    """The acceptance_evaluation form (``conclusion`` ``pass``/``reject``, routed to ``decision``)."""
    report = driver.document(hazard_id, f"evaluation-{conclusion}-{hazard_id}".encode())
    return {
        "evaluator_type": "agency",
        "evaluator_name": "安徽某安全评价有限公司",
        "conclusion": conclusion,
        "report": [report],
    }


def governance_plan(due: dt.date, **overrides) -> dict:
    form = {
        "objectives": "彻底消除重大事故隐患",
        "methods": "按方案实施工程治理",
        "funds": "200000.00",
        "materials": "按清单采购",
        "responsible_org": "安全部",
        "responsible_person": "孙整改",
        "due_date": due.isoformat(),
        "requirements": "治理期间严格执行特殊作业管理",
        "safety_measures": "设置警戒区域，专人监护",
        "contingency_plan": "专项应急预案",
        "interim_measures": "停止相关作业，每日巡查",
        "stop_production": "partial",
    }
    form.update(overrides)
    return form


def nine_am(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9, 0), tzinfo=SHANGHAI).astimezone(dt.UTC)
