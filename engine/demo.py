"""Demo organisations, users of every role, and hazards in every state (``hazardloop init --demo``).

The same world backs the test suite, so what a new user clicks through is what the tests prove.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from . import calendar
from . import definitions
from . import form_versions
from . import inspections
from . import policy
from . import runtime
from .access import Actor
from .access import load_actor
from .clock import FixedClock
from .models import Department
from .models import DepartmentSector
from .models import Enterprise
from .models import Hazard
from .models import InspectionOccurrence
from .models import Membership
from .models import Region
from .models import RegionLevel
from .models import Role
from .models import Sector
from .models import User
from .models import WorkItem
from .models import WorkItemState
from .runtime import EngineContext

SECTORS = {
    "hazchem": "危险化学品",
    "fire": "消防安全",
    "construction": "房屋市政工程",
    "mines": "非煤矿山",
    "industry_trade": "工贸",
    "gas": "城镇燃气",
    "road": "道路运输",
}

#: (code, name, level, parent code, path segment)
REGIONS = [
    ("34", "安徽省", RegionLevel.PROVINCE, None),
    ("3418", "宣城市", RegionLevel.CITY, "34"),
    ("341821", "郎溪县", RegionLevel.COUNTY, "3418"),
    ("341821100", "建平镇", RegionLevel.TOWNSHIP, "341821"),
    ("341821100001", "东门村", RegionLevel.VILLAGE, "341821100"),
    ("341882", "广德市", RegionLevel.COUNTY, "3418"),
]

#: key -> (name, abbreviation, region code, led sectors, co-supervised sectors, is 安委办)
DEPARTMENTS = {
    "lx_emergency": (
        "郎溪县应急管理局",
        "郎应急",
        "341821",
        ["hazchem", "industry_trade", "mines"],
        [],
        False,
    ),
    "lx_fire": ("郎溪县消防救援大队", "郎消", "341821", ["fire"], ["hazchem"], False),
    "lx_housing": ("郎溪县住房和城乡建设局", "郎建", "341821", ["construction", "gas"], [], False),
    "lx_office": ("郎溪县安全生产委员会办公室", "郎安办", "341821", [], [], True),
    "xc_emergency": ("宣城市应急管理局", "宣应急", "3418", ["hazchem", "industry_trade", "mines"], [], False),
    "gd_emergency": (
        "广德市应急管理局",
        "广应急",
        "341882",
        ["hazchem", "industry_trade", "mines"],
        [],
        False,
    ),
}

#: key -> (name, credit code, region code, sector, principal, controller, high risk)
ENTERPRISES = {
    "chem": (
        "郎溪县华宇化工有限公司",
        "91341821MA2N0CHEM1",
        "341821100001",
        "hazchem",
        "王建国",
        "王氏控股",
        True,
    ),
    "mall": ("郎溪县金桥商贸广场", "91341821MA2N0MALL2", "341821100", "fire", "李秀英", None, False),
    "site": ("宣城城建第三工程有限公司", "91341821MA2N0SITE3", "341821", "construction", "张伟", None, True),
    "gd_chem": (
        "广德市恒通化工有限公司",
        "91341882MA2N0GDCH4",
        "341882",
        "hazchem",
        "赵磊",
        "赵氏集团",
        True,
    ),
}

#: username -> (display name, [(role, enterprise key | None, department key | None, region code | None)])
USERS: dict[str, tuple[str, list[tuple[Role, str | None, str | None, str | None]]]] = {
    "zhang_rectifier": ("张强（整改责任人）", [(Role.RECTIFIER, "chem", None, None)]),
    "liu_rectifier": ("刘洋（整改责任人）", [(Role.RECTIFIER, "chem", None, None)]),
    "chen_safety": ("陈静（安全管理员）", [(Role.SAFETY_OFFICER, "chem", None, None)]),
    "wang_principal": ("王建国（主要负责人）", [(Role.PRINCIPAL, "chem", None, None)]),
    "li_mall": (
        "李秀英（商场负责人）",
        [
            (Role.PRINCIPAL, "mall", None, None),
            (Role.SAFETY_OFFICER, "mall", None, None),
            (Role.RECTIFIER, "mall", None, None),
        ],
    ),
    "zhao_gd": (
        "赵磊（广德恒通）",
        [
            (Role.PRINCIPAL, "gd_chem", None, None),
            (Role.SAFETY_OFFICER, "gd_chem", None, None),
            (Role.RECTIFIER, "gd_chem", None, None),
        ],
    ),
    "sun_grid": ("孙丽（建平镇网格员）", [(Role.GRID_WORKER, None, None, "341821100")]),
    "zhou_inspector": ("周敏（县应急局执法）", [(Role.INSPECTOR, None, "lx_emergency", None)]),
    "wu_reviewer": ("吴刚（县应急局审核）", [(Role.DEPT_REVIEWER, None, "lx_emergency", None)]),
    "zheng_fire": (
        "郑华（县消防大队审核）",
        [(Role.DEPT_REVIEWER, None, "lx_fire", None), (Role.INSPECTOR, None, "lx_fire", None)],
    ),
    "feng_housing": ("冯军（县住建局审核）", [(Role.DEPT_REVIEWER, None, "lx_housing", None)]),
    "he_office": ("何平（县安委办）", [(Role.OFFICE_ADMIN, None, "lx_office", "341821")]),
    "xu_city": ("徐敏（市应急局审核）", [(Role.DEPT_REVIEWER, None, "xc_emergency", None)]),
    "ma_gd": ("马超（广德应急局审核）", [(Role.DEPT_REVIEWER, None, "gd_emergency", None)]),
    "qian_site": (
        "钱勇（工地项目安全员）",
        [(Role.SAFETY_OFFICER, "site", None, None), (Role.RECTIFIER, "site", None, None)],
    ),
    "lin_tips": ("林芳（举报受理）", [(Role.TIP_OFFICER, None, None, "341821")]),
    "gao_modeler": ("高远（县应急局流程管理员）", [(Role.PROCESS_ADMIN, None, "lx_emergency", None)]),
    "admin": ("系统管理员", [(Role.SYS_ADMIN, None, None, None)]),
}

DEMO_PASSWORD = "hazard-demo-2026"


@dataclass
class DemoWorld:
    regions: dict[str, Region] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)

    def actor(self, session: Session, username: str) -> Actor:
        return load_actor(session, self.users[username].id)


def seed_organisations(session: Session, *, password_hasher: Callable[[str], str] | None = None) -> DemoWorld:
    """Create the demo regions, sectors, departments, enterprises and users (idempotent)."""
    world = DemoWorld()
    for code, name in SECTORS.items():
        if session.get(Sector, code) is None:
            session.add(Sector(code=code, name=name))
    session.flush()
    for code, name, level, parent in REGIONS:
        region = session.scalars(select(Region).where(Region.code == code)).first()
        if region is None:
            parent_region = world.regions[parent] if parent else None
            path = (parent_region.path if parent_region else "/") + code + "/"
            region = Region(code=code, name=name, level=level, parent=parent_region, path=path)
            session.add(region)
            session.flush()
        world.regions[code] = region
    for key, (name, abbr, region_code, leads, co, office) in DEPARTMENTS.items():
        dept = session.scalars(select(Department).where(Department.name == name)).first()
        if dept is None:
            dept = Department(
                name=name,
                abbreviation=abbr,
                region_id=world.regions[region_code].id,
                is_safety_committee_office=office,
            )
            session.add(dept)
            session.flush()
            for sector in leads:
                session.add(DepartmentSector(department_id=dept.id, sector_code=sector, leads=True))
            for sector in co:
                session.add(DepartmentSector(department_id=dept.id, sector_code=sector, leads=False))
        world.departments[key] = dept
    for key, (name, code, region_code, sector, principal, controller, high_risk) in ENTERPRISES.items():
        ent = session.scalars(select(Enterprise).where(Enterprise.credit_code == code)).first()
        if ent is None:
            ent = Enterprise(
                name=name,
                credit_code=code,
                region_id=world.regions[region_code].id,
                sector_code=sector,
                principal_name=principal,
                actual_controller=controller,
                high_risk=high_risk,
            )
            session.add(ent)
            session.flush()
        world.enterprises[key] = ent
    password_hash = password_hasher(DEMO_PASSWORD) if password_hasher else None
    for username, (display, memberships) in USERS.items():
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            user = User(username=username, display_name=display, password_hash=password_hash)
            session.add(user)
            session.flush()
            for role, ent_key, dept_key, region_code in memberships:
                dept = world.departments[dept_key] if dept_key else None
                ent = world.enterprises[ent_key] if ent_key else None
                region_id = (
                    world.regions[region_code].id
                    if region_code
                    else dept.region_id
                    if dept
                    else ent.region_id
                    if ent
                    else None
                )
                session.add(
                    Membership(
                        user_id=user.id,
                        role=role,
                        region_id=region_id,
                        enterprise_id=ent.id if ent else None,
                        department_id=dept.id if dept else None,
                    )
                )
            session.flush()
            session.refresh(user)
        world.users[username] = user
    return world


def deploy_bundled(session: Session, processes_dir: Path, forms: object) -> list[str]:
    """Deploy every bundled BPMN file and bind the general and major loops; returns ``key@version``."""
    deployed = []
    for path in sorted(processes_dir.glob("*.bpmn")):
        result = definitions.deploy_file(session, path, forms)  # type: ignore[arg-type]
        deployed.extend(f"{v.process_key}@{v.version}" for v in result.versions)
    for grade, key in (
        ("general", "hazard_general"),
        ("major", "hazard_major"),
        ("supervision", "hazard_supervision"),
    ):
        # only where the grade has no default binding yet: re-running init must not undo a
        # department's rebinding or rollback (bind without a version follows the latest version)
        if definitions.find_binding(session, grade=grade) is None:
            definitions.bind(session, grade=grade, process_key=key)
    return deployed


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """What :func:`seed_calendar_and_policies` stored."""

    #: years of official holiday schedules seeded now (empty when they were there already)
    calendar_years: list[int]
    #: ``key@version`` of every bundled policy profile (new or unchanged)
    policies: list[str]
    #: shipped forms published now as national version 1 (0 when they were there already)
    forms: int = 0


def seed_calendar_and_policies(session: Session, processes_dir: Path) -> ReferenceData:
    """Seed the working-day calendar (chinese-calendar), import ``processes/policies/*.json`` and
    publish the shipped task forms (``processes/forms``) as their national version 1.

    Idempotent: stored years are kept, unchanged profiles keep their version, a form with a
    national version is left alone. Needs the sectors the profiles name (run
    :func:`seed_organisations` first).
    """
    years = calendar.seed_from_chinese_calendar(session)
    results = policy.import_policy_directory(session, processes_dir / "policies")
    forms = form_versions.seed_shipped_forms(session, processes_dir / "forms")
    return ReferenceData(years, [f"{r.profile.key}@{r.profile.version}" for r in results], forms)


def open_item(session: Session, hazard: Hazard, task_key: str | None = None) -> WorkItem:
    query = select(WorkItem).where(
        WorkItem.hazard_id == hazard.id, WorkItem.state == WorkItemState.OPEN.value
    )
    if task_key is not None:
        query = query.where(WorkItem.task_key == task_key)
    item = session.scalars(query.order_by(WorkItem.id)).first()
    if item is None:
        raise LookupError(f"no open work item {task_key or ''} for hazard {hazard.number}")
    return item


def discovered(days_ago: int, now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(days=days_ago)


# --- demo hazards ------------------------------------------------------------------------------------

#: ``progress(done, total, label)`` is called after each demo hazard.
ProgressCallback = Callable[[int, int, str], None]

#: 判定依据 of the 重大 demo hazards (the standard is named; article numbers are left out on purpose).
MAJOR_STANDARD = (
    "《化工和危险化学品生产经营单位重大生产安全事故隐患判定标准（试行）》（安监总管三〔2017〕121号）"
)
GENERAL_GUIDE = "《危险化学品企业安全风险隐患排查治理导则》"


@dataclass(frozen=True, slots=True)
class SeededHazard:
    """One demo hazard as left by :func:`seed_demo_hazards`."""

    id: int
    number: str
    title: str
    status: str
    #: the state the demo leaves it in, in words (e.g. "一般 · 限期整改：待验收")
    stage: str


def _png(seed: str) -> bytes:
    """A 16×16 single-colour PNG, its colour derived from ``seed`` (distinct bytes per photo)."""
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    size = 16
    raw = b"".join(b"\x00" + bytes((r, g, b)) * size for _ in range(size))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _person(username: str) -> str:
    """The bare name of a demo user (张强 from 张强（整改责任人）), used for signatures."""
    return USERS[username][0].split("（", 1)[0]


class _Seeder:
    """Drives demo hazards through :mod:`engine.runtime`, one unit of work per step.

    With a ``sessionmaker`` every step commits on its own (as a web request would); with a
    ``Session`` every step runs in the caller's transaction.
    """

    def __init__(self, target: sessionmaker[Session] | Session, ctx: EngineContext, world: DemoWorld) -> None:
        self.target = target
        self.ctx = ctx
        self.world = world
        self.today = ctx.clock.now().astimezone(ctx.tz).date()
        self.numbers: dict[str, str] = {}
        self._files = 0

    @contextmanager
    def unit(self) -> Iterator[Session]:
        if isinstance(self.target, Session):
            yield self.target
        else:
            with self.target.begin() as session:
                yield session

    def actor(self, session: Session, username: str) -> Actor:
        return load_actor(session, self.world.users[username].id)

    def day(self, offset: int) -> str:
        return (self.today + dt.timedelta(days=offset)).isoformat()

    # -- steps ---------------------------------------------------------------------------------------

    def register(
        self,
        username: str,
        enterprise: str,
        *,
        days_ago: int = 3,
        **data: object,
    ) -> int:
        payload: dict[str, object] = {
            "enterprise_id": self.world.enterprises[enterprise].id,
            "source": "self_check",
            "grade": "general",
            "handling_type": "deadline",
            "discovered_at": self.ctx.clock.now() - dt.timedelta(days=days_ago),
        }
        payload.update(data)
        with self.unit() as session:
            hazard = runtime.register_hazard(
                session, self.ctx, actor=self.actor(session, username), data=payload
            )
            hazard_id = hazard.id
        self.upload(hazard_id, username, "before")
        return hazard_id

    def upload(self, hazard_id: int, username: str, phase: str) -> int:
        self._files += 1
        if phase == "document":
            filename, mime = "评估报告.txt", "text/plain"
            content = (
                f"治理效果评估报告（演示）\n隐患 {hazard_id}，文件 {self._files}\n结论：见表单。\n".encode()
            )
        else:
            filename = {"before": "整改前照片.png", "after": "整改后照片.png"}.get(phase, "现场照片.png")
            mime, content = "image/png", _png(f"{hazard_id}-{phase}-{self._files}")
        with self.unit() as session:
            return runtime.add_attachment(
                session,
                self.ctx,
                hazard_id=hazard_id,
                actor=self.actor(session, username),
                filename=filename,
                mime_type=mime,
                content=content,
                phase=phase,
            ).id

    def complete(
        self,
        hazard_id: int,
        task_key: str,
        username: str,
        form: dict[str, object],
    ) -> None:
        with self.unit() as session:
            item = open_item(session, session.get_one(Hazard, hazard_id), task_key)
            actor = self.actor(session, username)
            runtime.complete(session, self.ctx, work_item_id=item.id, actor=actor, form=form)

    def claim(self, hazard_id: int, task_key: str, username: str) -> None:
        with self.unit() as session:
            item = open_item(session, session.get_one(Hazard, hazard_id), task_key)
            runtime.claim(session, self.ctx, work_item_id=item.id, actor=self.actor(session, username))

    def progress(self, hazard_id: int, username: str, percent: int, note: str) -> None:
        with self.unit() as session:
            runtime.update_progress(
                session,
                self.ctx,
                hazard_id=hazard_id,
                actor=self.actor(session, username),
                form={"progress_percent": percent, "note": note},
            )

    # -- the general loop --------------------------------------------------------------------------

    def plan(
        self,
        hazard_id: int,
        username: str,
        *,
        due_in_days: int,
        responsible: str,
        measures: str,
        funds: str = "5000.00",
    ) -> None:
        form: dict[str, object] = {
            "responsible_person": _person(responsible),
            "measures": measures,
            "funds": funds,
            "due_date": self.day(due_in_days),
            "contingency_plan": "本单位生产安全事故综合应急预案及相应现场处置方案",
            "interim_measures": "整改完成前设置警示标志，安排专人每班巡查",
        }
        self.complete(hazard_id, "assign_plan", username, form)

    def rectify(self, hazard_id: int, username: str, summary: str) -> None:
        photo = self.upload(hazard_id, username, "after")
        form = {"summary": summary, "after_photos": [photo], "completed_on": self.day(0)}
        self.complete(hazard_id, "rectify", username, form)

    def fix_on_spot(self, hazard_id: int, username: str, description: str) -> None:
        photo = self.upload(hazard_id, username, "after")
        form = {"description": description, "after_photos": [photo], "completed_on": self.day(0)}
        self.complete(hazard_id, "fix_on_spot", username, form)

    def verify(self, hazard_id: int, username: str, *, passed: bool, opinion: str) -> None:
        form = {
            "decision": "pass" if passed else "reject",
            "opinion": opinion,
            "verifier_signature": _person(username),
        }
        self.complete(hazard_id, "verify", username, form)

    def closure_review(self, hazard_id: int, username: str, *, passed: bool, opinion: str) -> None:
        form = {
            "decision": "pass" if passed else "reject",
            "opinion": opinion,
            "reviewer_signature": _person(username),
        }
        self.complete(hazard_id, "closure_review", username, form)

    # -- the major loop -----------------------------------------------------------------------------

    def reports(self, hazard_id: int, username: str, summary: str) -> None:
        year = self.today.year
        self.complete(
            hazard_id,
            "report_regulator",
            username,
            {
                "reported_on": self.day(0),
                "receipt_no": f"应急收〔{year}〕{hazard_id}号",
                "report_summary": summary,
            },
        )
        self.complete(
            hazard_id,
            "report_congress",
            username,
            {
                "reported_on": self.day(0),
                "meeting": f"{year}年职工代表大会专题会议",
                "summary": f"通报重大事故隐患情况及治理安排：{summary}",
            },
        )

    def governance_plan(
        self, hazard_id: int, username: str, *, due_in_days: int, methods: str, funds: str, interim: str
    ) -> None:
        form = {
            "objectives": "彻底消除重大事故隐患，经评估合格后申请核销并恢复生产",
            "methods": methods,
            "funds": funds,
            "materials": "改造所需设备、仪表及备品备件已列入采购计划",
            "responsible_org": "设备管理部",
            "responsible_person": _person("zhang_rectifier"),
            "due_date": self.day(due_in_days),
            "requirements": "委托有资质单位设计施工，动火、受限空间等特殊作业按规定审批",
            "safety_measures": "施工区域隔离，落实专人监护和可燃气体检测",
            "contingency_plan": "危险化学品泄漏专项应急预案",
            "interim_measures": interim,
            "stop_production": "partial",
        }
        self.complete(hazard_id, "governance_plan", username, form)

    def signoff(self, hazard_id: int) -> None:
        form = {
            "decision": "pass",
            "opinion": "同意按方案实施治理",
            "principal_signature": _person("wang_principal"),
        }
        self.complete(hazard_id, "principal_signoff", "wang_principal", form)

    def govern(self, hazard_id: int, summary: str) -> None:
        photo = self.upload(hazard_id, "zhang_rectifier", "after")
        form = {"summary": summary, "after_photos": [photo], "completed_on": self.day(0)}
        self.complete(hazard_id, "govern", "zhang_rectifier", form)

    def evaluate_and_apply(self, hazard_id: int) -> None:
        report = self.upload(hazard_id, "chen_safety", "document")
        form = {
            "evaluator_type": "agency",
            "evaluator_name": "宣城市某安全评价有限公司",
            "conclusion": "pass",
            "report": [report],
        }
        self.complete(hazard_id, "evaluate", "chen_safety", form)
        form = {"application": "治理已完成并经评估合格，申请核销并恢复生产", "applied_on": self.day(0)}
        self.complete(hazard_id, "apply_closure", "wang_principal", form)

    def regulator_review(self, hazard_id: int, username: str, document_no: str) -> None:
        form = {
            "decision": "pass",
            "reviewed_on": self.day(0),
            "opinion": "现场审查合格，同意核销",
            "reviewer_signature": _person(username),
            "document_no": document_no,
        }
        self.complete(hazard_id, "regulator_review", username, form)


# Each scenario leaves one hazard in one state; ``key`` lets later scenarios refer to it.
def _immediate_open(s: _Seeder) -> int:
    return s.register(
        "chen_safety",
        "chem",
        title="罐区防火堤雨水排放阀处于常开状态",
        description="2号罐区防火堤雨水排放阀未关闭，储罐一旦泄漏，物料将经雨排系统流出防火堤。",
        location="2号罐区防火堤",
        determination_basis=GENERAL_GUIDE,
        handling_type="immediate",
        days_ago=0,
    )


def _at_assign_plan(s: _Seeder) -> int:
    return s.register(
        "zhou_inspector",
        "chem",
        source="inspection",
        title="配电室门口未设置挡鼠板",
        description="10kV变配电室出入口未设置挡鼠板，电缆沟进线孔洞未封堵。",
        location="10kV变配电室",
        determination_basis="《低压配电设计规范》（GB 50054）",
        days_ago=1,
    )


def _at_rectify(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="储罐区可燃气体报警器失效",
        description="1号储罐区两台可燃气体检测报警器不能正常报警，报警信号未上传至中控室。",
        location="1号储罐区",
        determination_basis=GENERAL_GUIDE,
        days_ago=5,
    )
    s.plan(
        hid,
        "chen_safety",
        due_in_days=14,
        responsible="zhang_rectifier",
        measures="更换失效探头，恢复报警信号上传并进行联动测试",
        funds="12000.00",
    )
    s.claim(hid, "rectify", "zhang_rectifier")
    s.progress(hid, "zhang_rectifier", 40, "新探头已到货，等待厂家安装调试")
    return hid


def _at_verify(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="防爆区域使用非防爆照明灯具",
        description="甲类合成车间二层防爆区域内安装普通LED灯具2盏。",
        location="甲类合成车间二层",
        determination_basis="《爆炸危险环境电力装置设计规范》（GB 50058）",
        days_ago=6,
    )
    s.plan(hid, "chen_safety", due_in_days=10, responsible="liu_rectifier", measures="更换为防爆型灯具")
    s.rectify(hid, "liu_rectifier", "已拆除普通灯具，更换为隔爆型LED灯具2盏并通电检查")
    return hid


def _rejected_once(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="安全阀超期未校验",
        description="R-102反应釜安全阀校验有效期已过3个月，铅封不完整。",
        location="合成车间R-102反应釜",
        determination_basis="《安全阀安全技术监察规程》（TSG ZF001）",
        days_ago=8,
    )
    s.plan(hid, "chen_safety", due_in_days=7, responsible="zhang_rectifier", measures="拆下送检并重新安装")
    s.rectify(hid, "zhang_rectifier", "安全阀已送检合格并重新安装")
    s.verify(hid, "chen_safety", passed=False, opinion="校验报告未加盖检验机构印章，铅封缺失，退回重新整改")
    return hid


def _at_closure_review(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="甲类仓库防静电接地线断开",
        description="甲类仓库门口人体静电释放器接地线断开，接地电阻未检测。",
        location="甲类仓库",
        determination_basis=GENERAL_GUIDE,
        days_ago=9,
    )
    s.plan(
        hid,
        "chen_safety",
        due_in_days=5,
        responsible="liu_rectifier",
        measures="重新连接接地线并检测接地电阻",
    )
    s.rectify(hid, "liu_rectifier", "接地线已重新压接，实测接地电阻2.1Ω")
    s.verify(hid, "chen_safety", passed=True, opinion="现场复核接地可靠，整改到位")
    return hid


def _closed(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="装卸站台未设置人体静电释放装置",
        description="汽车装卸站台上下扶梯入口处未设置人体静电释放装置。",
        location="汽车装卸站台",
        determination_basis=GENERAL_GUIDE,
        days_ago=12,
    )
    s.plan(
        hid, "chen_safety", due_in_days=7, responsible="zhang_rectifier", measures="加装本安型人体静电释放器"
    )
    s.rectify(hid, "zhang_rectifier", "已在扶梯入口加装人体静电释放器并接地")
    s.verify(hid, "chen_safety", passed=True, opinion="整改到位")
    s.closure_review(hid, "wu_reviewer", passed=True, opinion="资料齐全，同意销号")
    return hid


def _overdue(s: _Seeder) -> int:
    # A back-filled 存量 hazard whose plan sets the deadline to today (a plan may not set a past
    # date, and SpiffWorkflow's timers run on the wall clock). Its 3-day reminder fires at once;
    # the overdue timer fires at 24:00 tonight (business time), when the worker marks it 逾期.
    hid = s.register(
        "chen_safety",
        "chem",
        days_ago=20,
        title="压力管道未按期进行定期检验",
        description="导热油炉出口压力管道定期检验超期，未出具检验报告。",
        location="导热油炉房",
        determination_basis="《压力管道定期检验规则——工业管道》（TSG D7005）",
    )
    s.plan(
        hid,
        "chen_safety",
        due_in_days=0,
        responsible="zhang_rectifier",
        measures="委托特种设备检验机构进行定期检验",
    )
    s.progress(hid, "zhang_rectifier", 60, "检验机构已受理，现场检验排期中")
    return hid


def _backfilled_overdue(s: _Seeder) -> int:
    # 存量补录: registered today with its original deadline 25 working days past, and planned with
    # that same deadline. The catch-up rule issues one notice at the highest rung due (约谈, 20
    # working days overdue); the lower rungs are recorded as skipped, not sent as a flood.
    due = calendar.current_calendar().add_working_days(s.today, -25)
    hid = s.register(
        "chen_safety",
        "chem",
        days_ago=90,
        title="液氨储罐区喷淋降温设施失效",
        description="液氨储罐区喷淋降温系统控制阀锈死，无法联动开启（存量隐患补录）。",
        location="液氨储罐区",
        determination_basis=GENERAL_GUIDE,
        deadline=s.ctx.end_of_business_day(due),
    )
    s.plan(
        hid,
        "chen_safety",
        due_in_days=(due - s.today).days,
        responsible="liu_rectifier",
        measures="更换喷淋控制阀并联动测试",
    )
    return hid


def _extension_pending(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="消防水池液位远传显示失效",
        description="消防水池液位变送器损坏，中控室无法显示消防水池实时水位。",
        location="消防泵房",
        determination_basis="《消防给水及消火栓系统技术规范》（GB 50974）",
        days_ago=4,
    )
    s.plan(
        hid, "chen_safety", due_in_days=10, responsible="liu_rectifier", measures="更换液位变送器并恢复远传"
    )
    with s.unit() as session:
        runtime.request_extension(
            session,
            s.ctx,
            hazard_id=hid,
            actor=s.actor(session, "chen_safety"),
            form={
                "requested_due_date": s.day(40),
                "reason": "液位变送器需厂家定制，到货周期约30天；期间每班人工测量水位并记录",
            },
        )
    return hid


def _voided(s: _Seeder) -> int:
    hid = s.register(
        "sun_grid",
        "chem",
        source="grid_patrol",
        title="储罐区可燃气体报警器不报警",
        description="网格巡查发现储罐区可燃气体报警器测试时不报警。",
        location="1号储罐区",
        days_ago=2,
    )
    with s.unit() as session:
        runtime.void(
            session,
            s.ctx,
            hazard_id=hid,
            actor=s.actor(session, "wu_reviewer"),
            reason=f"与 {s.numbers['at_rectify']} 为同一隐患，重复登记",
        )
    return hid


def _reopened(s: _Seeder) -> int:
    hid = s.register(
        "chen_safety",
        "chem",
        title="危化品仓库机械通风设施故障",
        description="危化品仓库事故排风机电机烧毁，仓库内无机械通风。",
        location="危化品仓库",
        determination_basis=GENERAL_GUIDE,
        handling_type="immediate",
        days_ago=15,
    )
    s.fix_on_spot(hid, "zhang_rectifier", "已更换排风机电机，试运行正常")
    s.verify(hid, "chen_safety", passed=True, opinion="排风机运行正常")
    s.closure_review(hid, "wu_reviewer", passed=True, opinion="同意销号")
    with s.unit() as session:
        runtime.reopen(
            session,
            s.ctx,
            hazard_id=hid,
            actor=s.actor(session, "wu_reviewer"),
            reason="回头看复查发现排风机再次停运，隐患复发",
        )
    return hid


def _major(s: _Seeder, username: str, **data: object) -> int:
    return s.register(username, "chem", grade="major", determination_basis=MAJOR_STANDARD, **data)


def _major_at_signoff(s: _Seeder) -> int:
    hid = _major(
        s,
        "zhou_inspector",
        source="inspection",
        title="涉及重点监管危险化工工艺的装置未实现自动化控制",
        description="氯化工艺装置未实现自动化控制，紧急停车系统未投入使用，仍依靠人工操作阀门。",
        location="氯化车间",
        stop_production=True,
        interim_measures="氯化工段停产，装置内物料退出并氮气置换",
        days_ago=6,
    )
    s.reports(hid, "chen_safety", "氯化工艺装置自动化控制和紧急停车系统缺失")
    s.governance_plan(
        hid,
        "chen_safety",
        due_in_days=60,
        methods="委托设计单位进行自动化控制改造，增设SIS紧急停车系统",
        funds="860000.00",
        interim="氯化工段停产，每日巡查装置状态",
    )
    return hid


def _major_at_govern(s: _Seeder) -> int:
    hid = _major(
        s,
        "chen_safety",
        title="液化烃充装未使用万向管道充装系统",
        description="液化石油气汽车槽车充装仍使用金属软管，未使用万向管道充装系统。",
        location="液化烃装卸站",
        stop_production=True,
        interim_measures="暂停液化烃充装作业",
        days_ago=10,
    )
    s.reports(hid, "chen_safety", "液化烃充装使用金属软管")
    s.governance_plan(
        hid,
        "chen_safety",
        due_in_days=45,
        methods="拆除金属软管，安装万向管道充装系统及拉断阀",
        funds="420000.00",
        interim="暂停充装作业，装卸站设置警戒",
    )
    s.signoff(hid)
    return hid


def _major_at_review(s: _Seeder) -> int:
    hid = _major(
        s,
        "chen_safety",
        title="全压力式液化烃储罐未按国家标准设置注水措施",
        description="液化烃球罐区3台全压力式储罐未设置注水设施。",
        location="液化烃球罐区",
        stop_production=True,
        interim_measures="球罐降液位运行，加强巡检",
        days_ago=30,
    )
    s.reports(hid, "chen_safety", "全压力式液化烃储罐缺少注水措施")
    s.governance_plan(
        hid,
        "chen_safety",
        due_in_days=20,
        methods="增设储罐注水管线及远程控制阀门",
        funds="260000.00",
        interim="球罐降液位运行，每两小时巡检",
    )
    s.signoff(hid)
    s.govern(hid, "注水管线及远程切断阀已安装完毕，经水压试验合格")
    s.evaluate_and_apply(hid)
    return hid


def _major_closed(s: _Seeder) -> int:
    hid = _major(
        s,
        "chen_safety",
        title="地区架空电力线路穿越生产区且不符合国家标准要求",
        description="厂区北侧35kV架空电力线路穿越甲类生产区，与装置防火间距不足。",
        location="厂区北侧35kV线路",
        stop_production=True,
        interim_measures="线路下方区域停止动火及装卸作业",
        days_ago=60,
    )
    s.reports(hid, "chen_safety", "架空电力线路穿越生产区")
    s.governance_plan(
        hid,
        "chen_safety",
        due_in_days=30,
        methods="会同供电公司将线路改为电缆入地敷设，绕开生产区",
        funds="1250000.00",
        interim="线路下方设置隔离带，禁止车辆停靠",
    )
    s.signoff(hid)
    s.govern(hid, "线路已改为电缆入地敷设，原架空线路已拆除")
    s.evaluate_and_apply(hid)
    s.regulator_review(hid, "wu_reviewer", f"郎应急核〔{s.today.year}〕{hid}号")
    return hid


def _gd_major_reporting(s: _Seeder) -> int:
    return s.register(
        "ma_gd",
        "gd_chem",
        source="inspection",
        grade="major",
        determination_basis=MAJOR_STANDARD,
        title="构成一级重大危险源的危险化学品罐区未实现紧急切断功能",
        description="甲醇储罐区构成一级重大危险源，储罐进出料管道未设置紧急切断阀。",
        location="甲醇储罐区",
        listed_level=3,
        stop_production=True,
        interim_measures="储罐区停止收发料作业，设置警戒区并安排专人24小时值守",
        days_ago=1,
    )


def _gd_at_rectify(s: _Seeder) -> int:
    hid = s.register(
        "zhao_gd",
        "gd_chem",
        title="液化气钢瓶未设置防倾倒措施",
        description="职工食堂液化石油气钢瓶直立放置，未设置防倾倒链条或支架。",
        location="职工食堂操作间",
        days_ago=2,
    )
    s.plan(
        hid, "zhao_gd", due_in_days=3, responsible="zhao_gd", measures="加装钢瓶防倾倒链条", funds="300.00"
    )
    return hid


def _mall_tip(s: _Seeder) -> int:
    hid = s.register(
        "lin_tips",
        "mall",
        source="public_tip",
        title="疏散通道堆放杂物",
        description="群众通过12345热线举报：商场二层东侧疏散通道堆放大量纸箱货物，通道净宽不足0.8米。",
        location="二层东侧疏散通道",
        determination_basis="《中华人民共和国消防法》",
        days_ago=1,
    )
    s.plan(hid, "li_mall", due_in_days=2, responsible="li_mall", measures="清理通道杂物，划定禁止堆放标线")
    return hid


def _mall_prominent(s: _Seeder) -> int:
    return s.register(
        "zheng_fire",
        "mall",
        source="inspection",
        grade="prominent",
        title="自动喷水灭火系统末端试水装置压力不足",
        description="负一层末端试水装置压力仅0.02MPa，低于0.05MPa要求；湿式报警阀组压力开关未联动启泵。",
        location="负一层地下车库",
        determination_basis="《自动喷水灭火系统设计规范》（GB 50084）",
        days_ago=2,
    )


def _site(s: _Seeder) -> int:
    hid = s.register(
        "feng_housing",
        "site",
        source="inspection",
        title="脚手架连墙件缺失",
        description="3号楼外脚手架12层至15层连墙件缺失6处，架体外倾。",
        location="3号楼外脚手架",
        determination_basis="《建筑施工扣件式钢管脚手架安全技术规范》（JGJ 130）",
        interim_measures="停止该段脚手架作业，设置警戒区",
        days_ago=1,
    )
    s.plan(hid, "qian_site", due_in_days=2, responsible="qian_site", measures="按方案补设刚性连墙件并验收")
    return hid


#: (key, the state the demo leaves the hazard in, scenario)
DEMO_SCENARIOS: list[tuple[str, str, Callable[[_Seeder], int]]] = [
    ("immediate", "一般 · 即查即改：待现场整改", _immediate_open),
    ("at_assign_plan", "一般 · 限期整改：待制定整改方案（执法检查发现）", _at_assign_plan),
    ("at_rectify", "一般 · 限期整改：整改中（已认领，进度40%）", _at_rectify),
    ("at_verify", "一般 · 限期整改：待验收", _at_verify),
    ("rejected_once", "一般 · 验收不通过一次，退回重新整改", _rejected_once),
    ("at_closure_review", "一般 · 待部门销号审核", _at_closure_review),
    ("closed", "一般 · 已销号", _closed),
    ("overdue", "一般 · 整改期限今天到期，已发临期提醒，今晚 24:00 转为逾期", _overdue),
    (
        "backfilled",
        "一般 · 存量补录：已逾期25个工作日，补发一份约谈通知书（催办措施不重复发送）",
        _backfilled_overdue,
    ),
    ("extension", "一般 · 延期申请待审批", _extension_pending),
    ("voided", "一般 · 已作废（网格员重复登记）", _voided),
    ("reopened", "一般 · 销号后回头看复发，已重开", _reopened),
    ("major_signoff", "重大 · 双报告完成，待主要负责人签批治理方案", _major_at_signoff),
    ("major_govern", "重大 · 治理中", _major_at_govern),
    ("major_review", "重大 · 已申请核销，待监管部门现场审查", _major_at_review),
    ("major_closed", "重大 · 已核销销号", _major_closed),
    ("gd_major", "重大 · 挂牌督办，待双报告（广德恒通）", _gd_major_reporting),
    ("gd_rectify", "一般 · 整改中（广德恒通）", _gd_at_rectify),
    ("mall_tip", "一般 · 群众举报查实，整改中（金桥商贸广场）", _mall_tip),
    ("mall_prominent", "突出 · 限期整改：待制定整改方案（金桥商贸广场）", _mall_prominent),
    ("site", "一般 · 整改中（建筑工地）", _site),
]


def seed_demo_hazards(
    target: sessionmaker[Session] | Session,
    ctx: EngineContext,
    world: DemoWorld,
    *,
    progress: ProgressCallback | None = None,
) -> list[SeededHazard]:
    """Create the demo hazards, one in every state, by driving :mod:`engine.runtime`.

    Does nothing (returns ``[]``) when any hazard exists, so ``init --demo`` may run twice.
    ``world`` must come from :func:`seed_organisations`, and the bundled processes be deployed.
    The 逾期 hazard is back-filled: it is registered and planned on a clock three weeks back.
    """
    seeder = _Seeder(target, ctx, world)
    with seeder.unit() as session:
        present = session.scalar(select(Hazard.id).limit(1)) is not None
    if present:
        seed_demo_inspections(target, ctx, world)
        return []
    seeded: list[SeededHazard] = []
    for done, (key, stage, scenario) in enumerate(DEMO_SCENARIOS, start=1):
        hazard_id = scenario(seeder)
        with seeder.unit() as session:
            hazard = session.get_one(Hazard, hazard_id)
            seeded.append(SeededHazard(hazard.id, hazard.number, hazard.title, hazard.status, stage))
        seeder.numbers[key] = hazard.number
        if progress is not None:
            progress(done, len(DEMO_SCENARIOS), f"{hazard.number} {hazard.title} — {stage}")
    seed_demo_inspections(target, ctx, world)
    return seeded


# --- demo inspections (排查计划) ------------------------------------------------------------------

#: days of inspection history the demo makes up (crosses a month end: last month's checks count)
DEMO_INSPECTION_DAYS = 32


def _demo_records(day: dt.date, first: dt.date) -> list[tuple[str, str, str, str, int]]:
    """What the demo users record on ``day``: (plan, subject key, username, note, hazards found).

    东门村's grid worker checks the village every day but Sunday and the township on Fridays;
    华宇化工's principal leads the month's check on the 10th (and on the first day of the
    history). Nobody records the other enterprises' or the counties' checks: those are missed.
    """
    records = []
    if day.weekday() != 6:
        records.append(
            ("grid_check", "341821100001", "sun_grid", "巡查东门村辖区企业和出租房，未发现隐患", 0)
        )
    if day.weekday() == 4:
        records.append(
            ("grid_check", "341821100", "sun_grid", "巡查建平镇商户和“九小场所”，督促整改通道堆物", 0)
        )
    if day.day == 10 or day == first:
        records.append(
            (
                "principal_self_inspection",
                "chem",
                "wang_principal",
                "带队检查罐区、装卸站台和中控室，发现可燃气体报警器失效1处，已登记隐患",
                1,
            )
        )
    return records


def seed_demo_inspections(
    target: sessionmaker[Session] | Session, ctx: EngineContext, world: DemoWorld
) -> inspections.GenerateResult:
    """Scheduled inspections with a history: recorded on time, missed, and one recorded late.

    The first time (no occurrence yet) the last :data:`DEMO_INSPECTION_DAYS` days are replayed:
    each morning a sweep, each afternoon the records of :func:`_demo_records`; then the sweep of
    now (what was not recorded becomes missed) and one missed Sunday check recorded late.
    Afterwards only the sweep of now (idempotent).
    """
    seeder = _Seeder(target, ctx, world)
    now = ctx.clock.now()
    today = now.astimezone(ctx.tz).date()
    with seeder.unit() as session:
        present = session.scalar(select(InspectionOccurrence.id).limit(1)) is not None
    if not present:
        first = today - dt.timedelta(days=DEMO_INSPECTION_DAYS)
        for offset in range(DEMO_INSPECTION_DAYS, 0, -1):
            day = today - dt.timedelta(days=offset)
            morning = dt.datetime.combine(day, dt.time(8, 30), ctx.tz)
            afternoon = replace(ctx, clock=FixedClock(morning + dt.timedelta(hours=8)))
            with seeder.unit() as session:
                inspections.generate_due(session, ctx, now=morning)
                for plan, key, username, note, found in _demo_records(day, first):
                    subject = world.enterprises[key].id if key in world.enterprises else world.regions[key].id
                    occurrence_id = _occurrence_on(session, plan, subject, day, state="open")
                    if occurrence_id is not None:
                        inspections.complete(
                            session,
                            afternoon,
                            occurrence_id=occurrence_id,
                            actor=seeder.actor(session, username),
                            note=note,
                            hazards_found=found,
                        )
    with seeder.unit() as session:
        result = inspections.generate_due(session, ctx, now=now)
    if not present:
        last_sunday = today - dt.timedelta(days=today.weekday() + 1)
        with seeder.unit() as session:
            missed = _occurrence_on(session, "grid_check", world.regions["341821100001"].id, last_sunday)
            if missed is not None:
                inspections.complete(
                    session,
                    ctx,
                    occurrence_id=missed,
                    actor=seeder.actor(session, "sun_grid"),
                    note=f"{last_sunday.month}月{last_sunday.day}日（周日）漏检，次日补查，未发现隐患",
                    hazards_found=0,
                )
    return result


def _occurrence_on(
    session: Session, plan: str, subject_id: int, day: dt.date, *, state: str | None = None
) -> int | None:
    query = select(InspectionOccurrence.id).where(
        InspectionOccurrence.plan_key == plan,
        InspectionOccurrence.subject_id == subject_id,
        InspectionOccurrence.period_start <= day,
        InspectionOccurrence.period_end >= day,
    )
    if state is not None:
        query = query.where(InspectionOccurrence.state == state)
    return session.scalar(query)
