"""Scheduled inspections (排查计划): one row per plan, subject and period (DOMAIN §2.3).

:mod:`engine.inspections` generates the rows from policy values (the enterprise principal's
self-inspection quarterly, monthly when high-risk; the grid's 市级季检查、县级月排查、乡级周巡查、
村级日排查) and marks the open ones of a past period as missed. ``(plan_key, subject_id,
period_start)`` is unique, so two sweeps (two workers, a re-run) never create a period twice:
generation inserts with ``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``.
"""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import Boolean
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from . import Base
from ._base import utcnow
from .org import Enterprise
from .org import Region
from .org import User


class InspectionState(enum.StrEnum):
    OPEN = "open"  # 待检查: the period is running (or has not been swept since it ended)
    DONE = "done"  # 已完成 (``completed_late`` when after the period or after it was missed)
    MISSED = "missed"  # 逾期未检查: the period ended without a record


INSPECTION_STATE_LABELS = {
    InspectionState.OPEN: "待检查",
    InspectionState.DONE: "已完成",
    InspectionState.MISSED: "逾期未检查",
}


class InspectionOccurrence(Base):
    """One period of one inspection plan for one enterprise or region.

    ``subject_id`` is the enterprise id for enterprise plans and the region id for region plans
    (the plan says which); ``region_id``/``region_path`` are the region the subject lies in, so a
    region scope is one prefix match, as for hazards. ``period_end`` is the last day of the
    period (business time) and ``due_at`` the end of that day.
    """

    __tablename__ = "inspection_occurrence"
    __table_args__ = (
        UniqueConstraint("plan_key", "subject_id", "period_start"),
        # the sweep: open occurrences whose period has ended
        Index("ix_inspection_occurrence_state_period_end", "state", "period_end"),
        # the latest period per subject of a plan (generation), and per-enterprise lists
        Index("ix_inspection_occurrence_plan_period_end", "plan_key", "period_end"),
        Index("ix_inspection_occurrence_enterprise_state", "enterprise_id", "state"),
        # region scopes (grid workers, 安委办, departments): LIKE '/34/3418/%' under any collation
        Index(
            "ix_inspection_occurrence_scope",
            "region_path",
            "state",
            postgresql_ops={"region_path": "varchar_pattern_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: a key of ``engine.inspections.PLANS`` (``principal_self_inspection``, ``grid_check``)
    plan_key: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[int] = mapped_column(Integer)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprise.id"))
    region_id: Mapped[int] = mapped_column(ForeignKey("region.id"))
    region_path: Mapped[str] = mapped_column(String(255))
    #: the enterprise's sector (departments see the self-inspections of the sectors they supervise)
    sector_code: Mapped[str | None] = mapped_column(String(32))
    #: the role the occurrence is addressed to, and whether its scope is the enterprise or the region
    assignee_role: Mapped[str] = mapped_column(String(32))
    assignee_scope: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[datetime.date] = mapped_column(Date)
    period_end: Mapped[datetime.date] = mapped_column(Date)
    due_at: Mapped[datetime.datetime]
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=InspectionState.OPEN.value)
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
    #: when a sweep found the period over without a record
    missed_at: Mapped[datetime.datetime | None]
    completed_at: Mapped[datetime.datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    #: recorded after the period ended (whether or not a sweep had marked it missed)
    completed_late: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    hazards_found: Mapped[int] = mapped_column(Integer, default=0)
    #: ids of hazards registered from this inspection (optional)
    hazard_ids: Mapped[list[Any] | None]
    #: the cadence the period was cut with (e.g. 3 months) and the policy version it came from
    cadence_value: Mapped[int] = mapped_column(Integer)
    cadence_unit: Mapped[str] = mapped_column(String(32))
    policy_profile_id: Mapped[int | None] = mapped_column(ForeignKey("policy_profile.id"))
    policy_key: Mapped[str | None] = mapped_column(String(64))
    policy_version: Mapped[int | None] = mapped_column(Integer)

    enterprise: Mapped[Enterprise | None] = relationship()
    region: Mapped[Region] = relationship()
    completed_by: Mapped[User | None] = relationship()
