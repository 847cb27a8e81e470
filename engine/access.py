"""Who sees and does what: the visibility matrix of DESIGN §3, as SQL clauses and Python checks.

Every query, page and API call goes through :func:`hazard_visibility` (SQL) or :func:`can_see`
(Python, for an already-loaded hazard); both are generated from the same per-role rules and the
tests check that they agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import NotFound
from .models import Department
from .models import DepartmentSector
from .models import Hazard
from .models import HazardDepartment
from .models import HazardSource
from .models import Role
from .models import User
from .models.org import ENTERPRISE_ROLES

DEPARTMENT_SCOPED = frozenset({Role.INSPECTOR, Role.DEPT_REVIEWER})
REGION_SCOPED = frozenset({Role.GRID_WORKER, Role.OFFICE_ADMIN})


@dataclass(frozen=True, slots=True)
class Scope:
    """One membership, resolved: a role within an enterprise, a department or a region subtree."""

    role: Role
    region_path: str | None = None
    enterprise_id: int | None = None
    department_id: int | None = None
    #: sectors the department leads (谁主管谁牵头) and all it supervises (leads or co-supervises).
    lead_sectors: frozenset[str] = frozenset()
    sectors: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int
    username: str
    display_name: str
    scopes: tuple[Scope, ...]

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(s.role for s in self.scopes)

    def scopes_for(self, roles: Iterable[Role | str]) -> list[Scope]:
        wanted = {Role(r) for r in roles}
        return [s for s in self.scopes if s.role in wanted]


SYSTEM_ACTOR = Actor(user_id=0, username="system", display_name="系统", scopes=())


def load_actor(session: Session, user_id: int | None = None, *, username: str | None = None) -> Actor:
    """Resolve a user and their memberships into an :class:`Actor`.

    :raises NotFound: unknown or inactive user.
    """
    query = select(User)
    query = query.where(User.id == user_id) if user_id is not None else query.where(User.username == username)
    user = session.scalars(query).first()
    if user is None or not user.active:
        raise NotFound("用户", user_id if user_id is not None else username)
    dept_ids = {m.department_id for m in user.memberships if m.department_id is not None}
    sectors: dict[int, tuple[set[str], set[str]]] = {d: (set(), set()) for d in dept_ids}
    if dept_ids:
        for ds in session.scalars(
            select(DepartmentSector).where(DepartmentSector.department_id.in_(dept_ids))
        ):
            lead, every = sectors[ds.department_id]
            every.add(ds.sector_code)
            if ds.leads:
                lead.add(ds.sector_code)
    dept_regions = {}
    if dept_ids:
        for dept in session.scalars(select(Department).where(Department.id.in_(dept_ids))):
            dept_regions[dept.id] = dept.region.path
    scopes = []
    for m in user.memberships:
        lead, every = sectors.get(m.department_id or -1, (set(), set()))
        region_path = m.region.path if m.region is not None else dept_regions.get(m.department_id or -1)
        scopes.append(
            Scope(
                role=Role(m.role),
                region_path=region_path,
                enterprise_id=m.enterprise_id,
                department_id=m.department_id,
                lead_sectors=frozenset(lead),
                sectors=frozenset(every),
            )
        )
    return Actor(user.id, user.username, user.display_name, tuple(scopes))


def membership_for(scope: Scope) -> dict[str, Any]:
    return {
        "role": scope.role.value,
        "department_id": scope.department_id,
        "enterprise_id": scope.enterprise_id,
    }


# --- SQL -----------------------------------------------------------------------------------------


def _scope_clause(scope: Scope, *, acting_for_department: bool = False) -> ColumnElement[bool]:
    role = scope.role
    if role in ENTERPRISE_ROLES:
        return Hazard.enterprise_id == scope.enterprise_id if scope.enterprise_id else false()
    if scope.region_path is None:
        return false()
    in_region = Hazard.region_path.startswith(scope.region_path, autoescape=True)
    if role in DEPARTMENT_SCOPED:
        if acting_for_department:
            return and_(
                in_region,
                or_(
                    Hazard.lead_department_id == scope.department_id,
                    and_(
                        Hazard.lead_department_id.is_(None),
                        Hazard.sector_code.in_(sorted(scope.lead_sectors)),
                    ),
                ),
            )
        named = exists().where(
            HazardDepartment.hazard_id == Hazard.id, HazardDepartment.department_id == scope.department_id
        )
        return and_(
            in_region,
            or_(
                Hazard.sector_code.in_(sorted(scope.sectors)),
                Hazard.lead_department_id == scope.department_id,
                named,
            ),
        )
    if role in REGION_SCOPED:
        return in_region
    if role == Role.TIP_OFFICER:
        return and_(in_region, Hazard.source == HazardSource.PUBLIC_TIP.value)
    return false()  # process administrators and system administrators see no hazards


def hazard_visibility(actor: Actor) -> ColumnElement[bool]:
    """A WHERE clause over ``Hazard``: the hazards this actor may see."""
    clauses = [_scope_clause(s) for s in actor.scopes]
    return or_(*clauses) if clauses else false()


def actable_clause(actor: Actor, role_column: Any, scope_column: Any) -> ColumnElement[bool]:
    """A WHERE clause over work items joined to hazards: open tasks this actor may act on by role."""
    clauses = []
    for scope in actor.scopes:
        clauses.append(
            and_(
                role_column == scope.role.value,
                _scope_clause(scope, acting_for_department=True)
                if scope.role in DEPARTMENT_SCOPED
                else _scope_clause(scope),
            )
        )
        if scope.role in DEPARTMENT_SCOPED:
            clauses[-1] = and_(clauses[-1], scope_column == "department")
    return or_(*clauses) if clauses else false()


# --- Python ----------------------------------------------------------------------------------------


def _scope_allows(scope: Scope, hazard: Hazard, co_departments: frozenset[int], acting: bool) -> bool:
    role = scope.role
    if role in ENTERPRISE_ROLES:
        return scope.enterprise_id is not None and hazard.enterprise_id == scope.enterprise_id
    if scope.region_path is None or not hazard.region_path.startswith(scope.region_path):
        return False
    if role in DEPARTMENT_SCOPED:
        if acting:
            return hazard.lead_department_id == scope.department_id or (
                hazard.lead_department_id is None and hazard.sector_code in scope.lead_sectors
            )
        return (
            hazard.sector_code in scope.sectors
            or hazard.lead_department_id == scope.department_id
            or scope.department_id in co_departments
        )
    if role in REGION_SCOPED:
        return True
    if role == Role.TIP_OFFICER:
        return hazard.source == HazardSource.PUBLIC_TIP.value
    return False


def _co_departments(hazard: Hazard) -> frozenset[int]:
    return frozenset(d.department_id for d in hazard.co_departments)


def can_see(actor: Actor, hazard: Hazard) -> bool:
    co = _co_departments(hazard)
    return any(_scope_allows(s, hazard, co, acting=False) for s in actor.scopes)


def can_act_as(actor: Actor, role: Role | str, hazard: Hazard, *, org_scope: str = "enterprise") -> bool:
    """May the actor act on this hazard in ``role`` (the candidate role of a task or action)?"""
    role = Role(role)
    co = _co_departments(hazard)
    for scope in actor.scopes_for([role]):
        if role in DEPARTMENT_SCOPED and org_scope != "department":
            continue
        if _scope_allows(scope, hazard, co, acting=role in DEPARTMENT_SCOPED):
            return True
    return False


def can_act_as_any(actor: Actor, roles: Iterable[Role | str], hazard: Hazard) -> bool:
    return any(can_act_as(actor, r, hazard, org_scope="department") for r in roles)
