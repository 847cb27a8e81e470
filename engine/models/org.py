"""Organisations and people: regions, sectors, departments, enterprises, users, memberships."""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import str_enum
from ._base import utcnow


class RegionLevel(enum.StrEnum):
    """行政层级: 省 / 市 / 县 / 乡镇 / 村(网格)."""

    PROVINCE = "province"
    CITY = "city"
    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


REGION_LEVEL_LABELS = {
    RegionLevel.PROVINCE: "省",
    RegionLevel.CITY: "市",
    RegionLevel.COUNTY: "县",
    RegionLevel.TOWNSHIP: "乡镇",
    RegionLevel.VILLAGE: "村(网格)",
}


class Role(enum.StrEnum):
    """Roles a membership grants; the scope comes from the membership's organisation."""

    RECTIFIER = "rectifier"  # 整改责任人
    SAFETY_OFFICER = "safety_officer"  # 安全管理人员
    PRINCIPAL = "principal"  # 主要负责人
    GRID_WORKER = "grid_worker"  # 网格员 / 乡镇工作人员
    INSPECTOR = "inspector"  # 执法检查人员
    DEPT_REVIEWER = "dept_reviewer"  # 部门审核人员
    PROCESS_ADMIN = "process_admin"  # 部门流程管理员
    OFFICE_ADMIN = "office_admin"  # 安委办
    TIP_OFFICER = "tip_officer"  # 举报受理人员
    SYS_ADMIN = "sys_admin"  # 系统管理员


ROLE_LABELS = {
    Role.RECTIFIER: "整改责任人",
    Role.SAFETY_OFFICER: "安全管理人员",
    Role.PRINCIPAL: "主要负责人",
    Role.GRID_WORKER: "网格员",
    Role.INSPECTOR: "执法检查人员",
    Role.DEPT_REVIEWER: "部门审核人员",
    Role.PROCESS_ADMIN: "部门流程管理员",
    Role.OFFICE_ADMIN: "安委办管理员",
    Role.TIP_OFFICER: "举报受理人员",
    Role.SYS_ADMIN: "系统管理员",
}

ENTERPRISE_ROLES = frozenset({Role.RECTIFIER, Role.SAFETY_OFFICER, Role.PRINCIPAL})
DEPARTMENT_ROLES = frozenset({Role.INSPECTOR, Role.DEPT_REVIEWER, Role.PROCESS_ADMIN})


class Region(Base):
    """行政区划 with a materialised path (``/34/3418/341821/``): a subtree is one prefix match."""

    __tablename__ = "region"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(24), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[RegionLevel] = mapped_column(str_enum(RegionLevel))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    path: Mapped[str] = mapped_column(String(255), index=True)

    parent: Mapped[Region | None] = relationship(remote_side=[id])


class Sector(Base):
    """行业领域 (fire, mines, hazardous chemicals …)."""

    __tablename__ = "sector"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class Department(Base):
    """负有安全监管职责的部门 at one region (e.g. 郎溪县应急管理局)."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    #: issuer abbreviation used in document numbers (文号), e.g. 郎应急.
    abbreviation: Mapped[str] = mapped_column(String(32))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    #: 安委办 is modelled as a department with this flag.
    is_safety_committee_office: Mapped[bool] = mapped_column(Boolean, default=False)

    region: Mapped[Region] = relationship()
    sectors: Mapped[list[DepartmentSector]] = relationship(
        back_populates="department", order_by="DepartmentSector.sector_code"
    )


class DepartmentSector(Base):
    """Which sectors a department leads (谁主管谁牵头) or co-supervises."""

    __tablename__ = "department_sector"
    __table_args__ = (UniqueConstraint("department_id", "sector_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    sector_code: Mapped[str] = mapped_column(ForeignKey("sector.code"), index=True)
    leads: Mapped[bool] = mapped_column(Boolean, default=True)

    department: Mapped[Department] = relationship(back_populates="sectors")


class Enterprise(Base):
    """生产经营单位."""

    __tablename__ = "enterprise"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: 统一社会信用代码 (18 characters).
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"), index=True)
    sector_code: Mapped[str] = mapped_column(ForeignKey("sector.code"), index=True)
    principal_name: Mapped[str] = mapped_column(String(100))  # 主要负责人
    actual_controller: Mapped[str | None] = mapped_column(String(100))  # 实际控制人
    high_risk: Mapped[bool] = mapped_column(Boolean, default=False)

    region: Mapped[Region] = relationship()


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", lazy="selectin", order_by="Membership.id"
    )


class Membership(Base):
    """A role within an organisation scope: an enterprise, a department, or a region subtree."""

    __tablename__ = "membership"
    __table_args__ = (Index("ix_membership_role_region", "role", "region_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    role: Mapped[Role] = mapped_column(str_enum(Role))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("region.id"))
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))

    user: Mapped[User] = relationship(back_populates="memberships")
    region: Mapped[Region | None] = relationship(lazy="joined")
