"""Demo organisations, users of every role, and hazards in every state (``hazardloop init --demo``).

The same world backs the test suite, so what a new user clicks through is what the tests prove.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import definitions
from .access import Actor
from .access import load_actor
from .models import Department
from .models import DepartmentSector
from .models import Enterprise
from .models import Hazard
from .models import Membership
from .models import Region
from .models import RegionLevel
from .models import Role
from .models import Sector
from .models import User
from .models import WorkItem
from .models import WorkItemState

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
    definitions.bind(session, grade="general", process_key="hazard_general")
    definitions.bind(session, grade="major", process_key="hazard_major")
    return deployed


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
