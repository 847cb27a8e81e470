"""System administration: users, memberships (role + scope), organisations, and incidents.

Every change an administrator makes goes through a function here, which checks its input and
raises :class:`~engine.errors.InvalidInput` keyed by form field (``username``, ``role`` …) with
a message a person can act on. Passwords arrive in clear only to be checked and handed to the
caller's ``hash_password`` (the web layer's argon2 hasher): the engine never stores or logs one.

Incidents are raised when the scheduler gives up on a timer job (``dead`` after its last attempt,
DESIGN §6); :func:`retry_incident` puts the job back in the queue for the next worker tick.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import selectinload

from . import scheduler
from .errors import InvalidInput
from .errors import NotFound
from .models import Department
from .models import DepartmentSector
from .models import Enterprise
from .models import Incident
from .models import IncidentState
from .models import Membership
from .models import Region
from .models import RegionLevel
from .models import Role
from .models import Sector
from .models import User
from .models.org import DEPARTMENT_ROLES
from .models.org import ENTERPRISE_ROLES
from .scheduler import IncidentRow

USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}")
MIN_PASSWORD_LENGTH = 10
#: 统一社会信用代码: 18 characters of digits and capital letters (I, O, S, V, Z excluded)
CREDIT_CODE_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
REGION_CODE_RE = re.compile(r"[0-9]{2,24}")
SECTOR_CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
LEVEL_ORDER = list(RegionLevel)
#: roles scoped by a region subtree alone (or, for 安委办, its office department)
REGION_ROLES = frozenset({Role.GRID_WORKER, Role.TIP_OFFICER, Role.OFFICE_ADMIN})


def _required(errors: dict[str, list[str]], name: str, value: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        errors[name] = ["必填"]
    elif len(value) > limit:
        errors[name] = [f"不能超过 {limit} 个字符"]
    return value


def _raise(errors: dict[str, list[str]]) -> None:
    if errors:
        raise InvalidInput(errors)


# --- users -----------------------------------------------------------------------------------------


def list_users(session: Session, *, text: str = "", limit: int = 500) -> Sequence[User]:
    """Users (with their memberships), active first, by username; ``text`` matches name or username."""
    query = select(User).options(selectinload(User.memberships))
    if text.strip():
        pattern = f"%{text.strip()}%"
        query = query.where(or_(User.username.ilike(pattern), User.display_name.ilike(pattern)))
    return session.scalars(query.order_by(User.active.desc(), User.username).limit(limit)).all()


def get_user(session: Session, user_id: int) -> User:
    """:raises NotFound: no such user."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户", user_id)
    return user


def check_password(password: str) -> None:
    """:raises InvalidInput: ``password`` is too short or all one kind of character."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput({"password": [f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"]})
    if password.isdigit() or password.isalpha():
        raise InvalidInput({"password": ["密码不能只由数字或只由字母组成"]})


def create_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    password: str,
    hash_password: Callable[[str], str],
) -> User:
    """Create an active user with a password (no memberships yet: add them next).

    :raises InvalidInput: bad or taken username, missing display name, weak password.
    """
    errors: dict[str, list[str]] = {}
    username = (username or "").strip()
    if not USERNAME_RE.fullmatch(username):
        errors["username"] = ["用户名为 2–64 位字母、数字、下划线、点或连字符，且以字母或数字开头"]
    elif session.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None:
        errors["username"] = ["该用户名已被使用"]
    display_name = _required(errors, "display_name", display_name, 100)
    try:
        check_password(password)
    except InvalidInput as exc:
        errors.update(exc.messages)  # type: ignore[arg-type]
    _raise(errors)
    user = User(username=username, display_name=display_name, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def set_active(session: Session, *, user_id: int, active: bool, by_user_id: int) -> User:
    """Activate or deactivate a user; deactivated users cannot log in and their sessions end.

    :raises NotFound: no such user.
    :raises InvalidInput: an administrator deactivating their own account.
    """
    user = get_user(session, user_id)
    if not active and user.id == by_user_id:
        raise InvalidInput({"active": ["不能停用自己的账号"]})
    user.active = active
    return user


def set_password(
    session: Session, *, user_id: int, password: str, hash_password: Callable[[str], str]
) -> User:
    """Reset a user's password (their other sessions end: the session keeps a hash fingerprint).

    :raises NotFound: no such user.
    :raises InvalidInput: weak password.
    """
    user = get_user(session, user_id)
    check_password(password)
    user.password_hash = hash_password(password)
    return user


# --- memberships -----------------------------------------------------------------------------------


def add_membership(
    session: Session,
    *,
    user_id: int,
    role: str,
    enterprise_id: int | None = None,
    department_id: int | None = None,
    region_id: int | None = None,
) -> Membership:
    """Give a user a role within a scope; which scope depends on the role.

    - 整改责任人, 安全管理人员, 主要负责人: an enterprise (its region is stored with it);
    - 执法检查人员, 部门审核人员, 部门流程管理员: a department (its region likewise);
    - 网格员, 举报受理人员: a region subtree; 安委办: a 安委办 department and/or a region;
    - 系统管理员: no scope.

    :raises NotFound: no such user.
    :raises InvalidInput: unknown role, missing or unsuitable scope, or a duplicate membership.
    """
    user = get_user(session, user_id)
    try:
        wanted = Role(role)
    except ValueError:
        raise InvalidInput({"role": ["未知的角色"]}) from None
    enterprise = session.get(Enterprise, enterprise_id) if enterprise_id else None
    department = session.get(Department, department_id) if department_id else None
    region = session.get(Region, region_id) if region_id else None
    errors: dict[str, list[str]] = {}
    for name, ident, found in (
        ("enterprise_id", enterprise_id, enterprise),
        ("department_id", department_id, department),
        ("region_id", region_id, region),
    ):
        if ident and found is None:
            errors[name] = ["不存在"]
    _raise(errors)
    if wanted in ENTERPRISE_ROLES:
        if enterprise is None:
            raise InvalidInput({"enterprise_id": ["企业人员角色必须选择所属企业"]})
        department, region = None, enterprise.region
    elif wanted in DEPARTMENT_ROLES:
        if department is None:
            raise InvalidInput({"department_id": ["部门人员角色必须选择所属部门"]})
        enterprise, region = None, department.region
    elif wanted == Role.OFFICE_ADMIN:
        if department is not None and not department.is_safety_committee_office:
            raise InvalidInput({"department_id": [f"{department.name} 不是安委办"]})
        if department is None and region is None:
            raise InvalidInput({"region_id": ["安委办角色必须选择安委办或所辖地区"]})
        enterprise = None
        region = region or (department.region if department is not None else None)
    elif wanted in REGION_ROLES:
        if region is None:
            raise InvalidInput({"region_id": ["该角色必须选择所辖地区"]})
        enterprise, department = None, None
    else:  # system administrator: no scope
        enterprise, department, region = None, None, None
    for m in user.memberships:
        if (m.role, m.enterprise_id, m.department_id, m.region_id) == (
            wanted,
            enterprise.id if enterprise else None,
            department.id if department else None,
            region.id if region else None,
        ):
            raise InvalidInput({"role": ["该用户已有此角色和范围"]})
    membership = Membership(
        user_id=user.id,
        role=wanted,
        enterprise_id=enterprise.id if enterprise else None,
        department_id=department.id if department else None,
        region_id=region.id if region else None,
    )
    session.add(membership)
    session.flush()
    session.refresh(user)
    return membership


def remove_membership(session: Session, *, membership_id: int, by_user_id: int) -> Membership:
    """Take a role away.

    :raises NotFound: no such membership.
    :raises InvalidInput: an administrator removing their own 系统管理员 role (nobody could add it back).
    """
    membership = session.get(Membership, membership_id)
    if membership is None:
        raise NotFound("角色", membership_id)
    if membership.user_id == by_user_id and membership.role == Role.SYS_ADMIN:
        raise InvalidInput({"membership": ["不能移除自己的系统管理员角色"]})
    session.delete(membership)
    session.flush()
    return membership


def membership_owner(session: Session, membership_id: int) -> int:
    """The user id of a membership.

    :raises NotFound: no such membership.
    """
    user_id = session.scalar(select(Membership.user_id).where(Membership.id == membership_id))
    if user_id is None:
        raise NotFound("角色", membership_id)
    return int(user_id)


def membership_scope_names(session: Session, memberships: Iterable[Membership]) -> dict[int, str]:
    """Membership id -> the name of its scope (enterprise, department or region)."""
    members = list(memberships)
    ent_ids = {m.enterprise_id for m in members if m.enterprise_id}
    dept_ids = {m.department_id for m in members if m.department_id}
    enterprises = (
        dict(session.execute(select(Enterprise.id, Enterprise.name).where(Enterprise.id.in_(ent_ids))).all())
        if ent_ids
        else {}
    )
    departments = (
        dict(session.execute(select(Department.id, Department.name).where(Department.id.in_(dept_ids))).all())
        if dept_ids
        else {}
    )
    names = {}
    for m in members:
        if m.enterprise_id:
            names[m.id] = enterprises.get(m.enterprise_id, "")
        elif m.department_id:
            names[m.id] = departments.get(m.department_id, "")
        elif m.region is not None:
            names[m.id] = m.region.name
        else:
            names[m.id] = ""
    return names


# --- organisations ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Directory:
    """The organisations an administrator manages (or a 安委办 views), each list in tree order."""

    regions: Sequence[Region]
    sectors: Sequence[Sector]
    departments: Sequence[Department]
    enterprises: Sequence[Enterprise]


def directory(session: Session, *, region_paths: Sequence[str] | None = None) -> Directory:
    """Regions, sectors, departments (with their sectors) and enterprises.

    ``region_paths``: only these subtrees (and, for regions and departments, the regions above
    them); ``None``: everything.
    """
    region_where: list[ColumnElement[bool]] = []
    enterprise_where: list[ColumnElement[bool]] = []
    if region_paths is not None:
        inside = [Region.path.startswith(p, autoescape=True) for p in region_paths]
        above = {"/".join(p.split("/")[:i]) + "/" for p in region_paths for i in range(2, p.count("/"))}
        region_where.append(or_(*inside, Region.path.in_(sorted(above))) if inside else false())
        enterprise_where.append(or_(*inside) if inside else false())
    regions = session.scalars(select(Region).where(*region_where).order_by(Region.path)).all()
    departments = session.scalars(
        select(Department)
        .join(Region, Region.id == Department.region_id)
        .options(selectinload(Department.sectors))
        .where(*region_where)
        .order_by(Region.path, Department.name)
    ).all()
    enterprises = session.scalars(
        select(Enterprise)
        .join(Region, Region.id == Enterprise.region_id)
        .where(*enterprise_where)
        .order_by(Region.path, Enterprise.name)
    ).all()
    sectors = session.scalars(select(Sector).order_by(Sector.code)).all()
    return Directory(regions, sectors, departments, enterprises)


def create_region(session: Session, *, code: str, name: str, level: str, parent_id: int | None) -> Region:
    """Add a region under ``parent_id`` (a province needs none); its path is derived.

    :raises InvalidInput: bad or taken code, missing name, unknown level, or a level that is not
        below its parent's.
    """
    errors: dict[str, list[str]] = {}
    code = (code or "").strip()
    if not REGION_CODE_RE.fullmatch(code):
        errors["code"] = ["区划代码为 2–24 位数字"]
    elif session.scalar(select(Region.id).where(Region.code == code)) is not None:
        errors["code"] = ["该区划代码已存在"]
    name = _required(errors, "name", name, 100)
    try:
        region_level = RegionLevel(level)
    except ValueError:
        errors["level"] = ["未知的行政层级"]
        region_level = None
    parent = session.get(Region, parent_id) if parent_id else None
    if parent_id and parent is None:
        errors["parent_id"] = ["上级地区不存在"]
    elif region_level is not None:
        if parent is None and region_level != RegionLevel.PROVINCE:
            errors["parent_id"] = ["除省级外必须选择上级地区"]
        elif parent is not None and LEVEL_ORDER.index(region_level) <= LEVEL_ORDER.index(parent.level):
            errors["level"] = ["行政层级必须低于上级地区"]
    _raise(errors)
    assert region_level is not None
    path = (parent.path if parent else "/") + code + "/"
    region = Region(code=code, name=name, level=region_level, parent=parent, path=path)
    session.add(region)
    session.flush()
    return region


def create_sector(session: Session, *, code: str, name: str) -> Sector:
    """Add a sector (行业领域).

    :raises InvalidInput: bad or taken code, missing name.
    """
    errors: dict[str, list[str]] = {}
    code = (code or "").strip()
    if not SECTOR_CODE_RE.fullmatch(code):
        errors["code"] = ["行业代码为小写字母开头的 1–32 位小写字母、数字或下划线"]
    elif session.get(Sector, code) is not None:
        errors["code"] = ["该行业代码已存在"]
    name = _required(errors, "name", name, 100)
    _raise(errors)
    sector = Sector(code=code, name=name)
    session.add(sector)
    session.flush()
    return sector


def _sectors(
    session: Session, codes: Iterable[str], field_name: str, errors: dict[str, list[str]]
) -> list[str]:
    wanted = sorted({c for c in codes if c})
    known = set(session.scalars(select(Sector.code).where(Sector.code.in_(wanted)))) if wanted else set()
    unknown = [c for c in wanted if c not in known]
    if unknown:
        errors[field_name] = [f"未知的行业: {'、'.join(unknown)}"]
    return wanted


def create_department(
    session: Session,
    *,
    name: str,
    abbreviation: str,
    region_id: int | None,
    lead_sectors: Iterable[str] = (),
    co_sectors: Iterable[str] = (),
    is_safety_committee_office: bool = False,
) -> Department:
    """Add a department with the sectors it leads (谁主管谁牵头) and co-supervises.

    :raises InvalidInput: missing name, abbreviation or region, unknown sectors, a sector both led
        and co-supervised, or a name already used in that region.
    """
    errors: dict[str, list[str]] = {}
    name = _required(errors, "name", name, 100)
    abbreviation = _required(errors, "abbreviation", abbreviation, 32)
    region = session.get(Region, region_id) if region_id else None
    if region is None:
        errors["region_id"] = ["必须选择所在地区"]
    leads = _sectors(session, lead_sectors, "lead_sectors", errors)
    co = _sectors(session, co_sectors, "co_sectors", errors)
    both = sorted(set(leads) & set(co))
    if both:
        errors["co_sectors"] = [f"行业不能既牵头又协同: {'、'.join(both)}"]
    if region is not None and name:
        taken = session.scalar(
            select(Department.id).where(Department.region_id == region.id, Department.name == name)
        )
        if taken is not None:
            errors["name"] = ["该地区已有同名部门"]
    _raise(errors)
    assert region is not None
    department = Department(
        name=name,
        abbreviation=abbreviation,
        region_id=region.id,
        is_safety_committee_office=is_safety_committee_office,
    )
    session.add(department)
    session.flush()
    for code in leads:
        session.add(DepartmentSector(department_id=department.id, sector_code=code, leads=True))
    for code in co:
        session.add(DepartmentSector(department_id=department.id, sector_code=code, leads=False))
    session.flush()
    session.refresh(department)
    return department


def create_enterprise(
    session: Session,
    *,
    name: str,
    credit_code: str,
    region_id: int | None,
    sector_code: str,
    principal_name: str,
    actual_controller: str = "",
    high_risk: bool = False,
) -> Enterprise:
    """Add an enterprise (生产经营单位).

    :raises InvalidInput: missing fields, a malformed or taken 统一社会信用代码, unknown region or sector.
    """
    errors: dict[str, list[str]] = {}
    name = _required(errors, "name", name, 200)
    credit_code = (credit_code or "").strip().upper()
    if not CREDIT_CODE_RE.fullmatch(credit_code):
        errors["credit_code"] = ["统一社会信用代码为 18 位数字或大写字母"]
    elif session.scalar(select(Enterprise.id).where(Enterprise.credit_code == credit_code)) is not None:
        errors["credit_code"] = ["该统一社会信用代码已登记"]
    region = session.get(Region, region_id) if region_id else None
    if region is None:
        errors["region_id"] = ["必须选择所在地区"]
    if not sector_code or session.get(Sector, sector_code) is None:
        errors["sector_code"] = ["必须选择所属行业"]
    principal_name = _required(errors, "principal_name", principal_name, 100)
    controller = (actual_controller or "").strip()
    if len(controller) > 100:
        errors["actual_controller"] = ["不能超过 100 个字符"]
    _raise(errors)
    assert region is not None
    enterprise = Enterprise(
        name=name,
        credit_code=credit_code,
        region_id=region.id,
        sector_code=sector_code,
        principal_name=principal_name,
        actual_controller=controller or None,
        high_risk=high_risk,
    )
    session.add(enterprise)
    session.flush()
    return enterprise


# --- incidents ---------------------------------------------------------------------------------------
# The web page and ``hazardloop incidents`` both go through these (implemented by engine.scheduler).


def incidents(
    session: Session, *, state: str | None = IncidentState.OPEN.value, limit: int = 500
) -> list[IncidentRow]:
    """Incidents (timer jobs the worker gave up on after their last attempt), newest first.

    ``state``: ``open`` (default: the job is still dead), ``retried``, or None for all.
    """
    return scheduler.list_incidents(session, state=state, limit=limit)


def count_incidents(session: Session) -> int:
    """Open incidents (their job is still dead)."""
    return scheduler.count_open_incidents(session)


def retry_incident(
    session: Session, *, incident_id: int, now: dt.datetime, by_user_id: int | None = None
) -> Incident:
    """Put an incident's dead timer job back in the queue, claimable now; the incident is retried.

    :raises NotFound: no such incident.
    :raises Conflict: it was retried already.
    """
    return scheduler.retry_incident(session, incident_id=incident_id, now=now, by_user_id=by_user_id)
