"""The hazard record (一患一档): DOMAIN.md §1.4 and §9.1."""

from __future__ import annotations

import datetime
import decimal
import enum

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .org import Department
from .org import Enterprise
from .org import Region


class Grade(enum.StrEnum):
    """隐患等级 (DOMAIN §2.1): 一般立即整改、突出限期整改、重大挂账整改."""

    GENERAL = "general"  # 一般
    PROMINENT = "prominent"  # 突出
    MAJOR = "major"  # 重大


GRADE_LABELS = {Grade.GENERAL: "一般", Grade.PROMINENT: "突出", Grade.MAJOR: "重大"}


class HazardSource(enum.StrEnum):
    """来源渠道 (DOMAIN §3.1)."""

    SELF_CHECK = "self_check"  # 企业自查上报
    INSPECTION = "inspection"  # 督导检查发现
    PUBLIC_TIP = "public_tip"  # 群众举报查实
    EMPLOYEE_REPORT = "employee_report"  # 从业人员报告
    TRANSFER = "transfer"  # 部门移交/抄告
    MONITORING = "monitoring"  # 监测预警
    ACCIDENT_INVESTIGATION = "accident_investigation"  # 事故调查
    HIGHER_INSPECTION = "higher_inspection"  # 上级检查发现
    GRID_PATROL = "grid_patrol"  # 网格巡查
    EXPERT = "expert"  # 第三方/专家诊查


SOURCE_LABELS = {
    HazardSource.SELF_CHECK: "企业自查上报",
    HazardSource.INSPECTION: "督导检查发现",
    HazardSource.PUBLIC_TIP: "群众举报查实",
    HazardSource.EMPLOYEE_REPORT: "从业人员报告",
    HazardSource.TRANSFER: "部门移交",
    HazardSource.MONITORING: "监测预警",
    HazardSource.ACCIDENT_INVESTIGATION: "事故调查发现",
    HazardSource.HIGHER_INSPECTION: "上级检查发现",
    HazardSource.GRID_PATROL: "网格巡查",
    HazardSource.EXPERT: "专家诊查",
}


class HandlingType(enum.StrEnum):
    IMMEDIATE = "immediate"  # 即查即改
    DEADLINE = "deadline"  # 限期整改


class HazardStatus(enum.StrEnum):
    """Projected from the open user task's ``status`` property; overdue is derived, never stored."""

    REGISTERED = "registered"  # 已登记
    REPORTING = "reporting"  # 双报告
    PLANNING = "planning"  # 方案制定
    RECTIFYING = "rectifying"  # 整改中
    VERIFYING = "verifying"  # 待验收
    EVALUATING = "evaluating"  # 评估中
    APPLYING = "applying"  # 申请核销
    REVIEWING_CLOSURE = "reviewing_closure"  # 审核把关
    CLOSED = "closed"  # 已销号
    VOIDED = "voided"  # 已作废
    REFERRED = "referred"  # 参照事故调查处理


STATUS_LABELS = {
    HazardStatus.REGISTERED: "已登记",
    HazardStatus.REPORTING: "双报告",
    HazardStatus.PLANNING: "方案制定",
    HazardStatus.RECTIFYING: "整改中",
    HazardStatus.VERIFYING: "待验收",
    HazardStatus.EVALUATING: "评估中",
    HazardStatus.APPLYING: "申请核销",
    HazardStatus.REVIEWING_CLOSURE: "审核销号",
    HazardStatus.CLOSED: "已销号",
    HazardStatus.VOIDED: "已作废",
    HazardStatus.REFERRED: "移交追责",
}


class Hazard(Base):
    __tablename__ = "hazard"
    __table_args__ = (
        Index("ix_hazard_region_path_status", "region_path", "status"),
        Index("ix_hazard_status_deadline", "status", "deadline"),
        # The task lists' scope filters (region subtree, sector, lead department) as an
        # index-only scan; pattern ops so PostgreSQL can use it for LIKE '/34/3418/%' under any
        # collation (migration 0005, measured by bench/http_inbox.py).
        Index(
            "ix_hazard_scope",
            "region_path",
            "sector_code",
            "lead_department_id",
            "id",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: 隐患编号, stable and human-readable: YH-<region code>-<year>-<sequence>.
    number: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    location: Mapped[str] = mapped_column(String(300))  # 场所/部位
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("enterprise.id"), index=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    #: copy of the region's materialised path, so visibility is one indexed prefix match.
    region_path: Mapped[str] = mapped_column(String(255))
    sector_code: Mapped[str] = mapped_column(ForeignKey("sector.code"), index=True)
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    grade: Mapped[str] = mapped_column(String(32))
    determination_basis: Mapped[str | None] = mapped_column(Text)  # 判定依据
    handling_type: Mapped[str] = mapped_column(String(32))
    # 五落实 (responsibility, measures, funds, deadline, contingency plan)
    responsible_person: Mapped[str | None] = mapped_column(String(100))
    measures: Mapped[str | None] = mapped_column(Text)
    funds: Mapped[decimal.Decimal | None] = mapped_column(Numeric(14, 2))
    contingency_plan: Mapped[str | None] = mapped_column(Text)
    interim_measures: Mapped[str | None] = mapped_column(Text)  # 整改期间防范措施
    stop_production: Mapped[bool] = mapped_column(Boolean, default=False)  # 重患必停
    #: rectification deadline: end of the deadline day in business time, stored UTC.
    deadline: Mapped[datetime.datetime | None]
    status: Mapped[str] = mapped_column(String(32), default=HazardStatus.REGISTERED.value)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    #: 挂牌督办 level (e.g. 1=省级 … 3=县级) when listed; None when not listed.
    listed_level: Mapped[int | None] = mapped_column(Integer)
    #: imported hazards with past deadlines: no escalation notice before this instant (DESIGN §6)
    escalation_suppressed_until: Mapped[datetime.datetime | None]
    failed_verifications: Mapped[int] = mapped_column(Integer, default=0)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    rectified_late: Mapped[bool] = mapped_column(Boolean, default=False)
    discovered_at: Mapped[datetime.datetime]
    discovered_by: Mapped[str | None] = mapped_column(String(100))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime.datetime | None]
    voided_at: Mapped[datetime.datetime | None]
    void_reason: Mapped[str | None] = mapped_column(Text)
    progress_percent: Mapped[int | None] = mapped_column(Integer)
    last_progress_at: Mapped[datetime.datetime | None]

    enterprise: Mapped[Enterprise] = relationship()
    region: Mapped[Region] = relationship()
    lead_department: Mapped[Department | None] = relationship()
    co_departments: Mapped[list[HazardDepartment]] = relationship(
        back_populates="hazard", cascade="all, delete-orphan"
    )


class HazardDepartment(Base):
    """Co-responsible departments of a hazard (一件事, 齐抓共管)."""

    __tablename__ = "hazard_department"
    __table_args__ = (UniqueConstraint("hazard_id", "department_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazard.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)

    hazard: Mapped[Hazard] = relationship(back_populates="co_departments")


class NumberSequence(Base):
    """Gap-free counters per scope and year (隐患编号, later 文号); incremented under a row lock."""

    __tablename__ = "number_sequence"
    __table_args__ = (UniqueConstraint("scope", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    year: Mapped[int]
    value: Mapped[int] = mapped_column(Integer, default=0)
