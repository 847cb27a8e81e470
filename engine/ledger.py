"""The hazard ledger (台账): filtered, paginated, scoped by the visibility matrix; the hazard file.

Pages, the JSON API and the Excel export all call :func:`search`; nobody writes their own query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy import Select
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from .access import Actor
from .access import can_see
from .access import hazard_visibility
from .errors import InvalidInput
from .errors import NotFound
from .models import Attachment
from .models import Event
from .models import ExtensionRequest
from .models import Grade
from .models import Hazard
from .models import HazardSource
from .models import HazardStatus
from .models import Region
from .models import TaskSubmission
from .models import WorkItem
from .models import WorkItemState

MAX_PER_PAGE = 200
SORTS = {
    "discovered_at": Hazard.discovered_at,
    "deadline": Hazard.deadline,
    "created_at": Hazard.created_at,
    "number": Hazard.number,
    "escalation_level": Hazard.escalation_level,
}


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Ledger filters (every one optional); dates are business-time calendar dates, inclusive."""

    region_code: str | None = None
    sector_code: str | None = None
    grade: str | None = None
    status: str | None = None
    source: str | None = None
    overdue: bool | None = None
    escalation_level_min: int | None = None
    enterprise_id: int | None = None
    discovered_from: dt.datetime | None = None
    discovered_to: dt.datetime | None = None
    text: str | None = None
    sort: str = "discovered_at"
    descending: bool = True

    def validate(self) -> None:
        """:raises InvalidInput: a filter value outside its enumeration."""
        errors: dict[str, list[str]] = {}
        if self.grade is not None and self.grade not in {g.value for g in Grade}:
            errors["grade"] = ["未知的隐患等级"]
        if self.status is not None and self.status not in {s.value for s in HazardStatus}:
            errors["status"] = ["未知的状态"]
        if self.source is not None and self.source not in {s.value for s in HazardSource}:
            errors["source"] = ["未知的来源"]
        if self.sort not in SORTS:
            errors["sort"] = [f"排序字段必须是 {', '.join(SORTS)} 之一"]
        if self.escalation_level_min is not None and not 0 <= self.escalation_level_min <= 6:
            errors["escalation_level_min"] = ["升级级别必须是 0–6"]
        if self.discovered_from and self.discovered_to and self.discovered_from > self.discovered_to:
            errors["discovered_to"] = ["结束日期不能早于开始日期"]
        if errors:
            raise InvalidInput(errors)


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Hazard]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _filtered(
    session: Session, actor: Actor, filters: LedgerFilter, now: dt.datetime
) -> Select[tuple[Hazard]]:
    filters.validate()
    query = select(Hazard).where(hazard_visibility(actor))
    if filters.region_code:
        path = session.scalar(select(Region.path).where(Region.code == filters.region_code))
        if path is None:
            raise InvalidInput({"region_code": ["地区不存在"]})
        query = query.where(Hazard.region_path.startswith(path, autoescape=True))
    if filters.sector_code:
        query = query.where(Hazard.sector_code == filters.sector_code)
    if filters.grade:
        query = query.where(Hazard.grade == filters.grade)
    if filters.status:
        query = query.where(Hazard.status == filters.status)
    if filters.source:
        query = query.where(Hazard.source == filters.source)
    if filters.enterprise_id is not None:
        query = query.where(Hazard.enterprise_id == filters.enterprise_id)
    if filters.escalation_level_min is not None:
        query = query.where(Hazard.escalation_level >= filters.escalation_level_min)
    if filters.discovered_from is not None:
        query = query.where(Hazard.discovered_at >= filters.discovered_from)
    if filters.discovered_to is not None:
        query = query.where(Hazard.discovered_at <= filters.discovered_to)
    if filters.overdue is not None:
        closed = (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value)
        is_overdue = (Hazard.deadline < now) & Hazard.status.not_in(closed)
        query = query.where(or_(is_overdue, Hazard.overdue.is_(True)) if filters.overdue else ~is_overdue)
    if filters.text:
        pattern = f"%{filters.text.strip()}%"
        query = query.where(
            or_(
                Hazard.title.ilike(pattern),
                Hazard.number.ilike(pattern),
                Hazard.location.ilike(pattern),
            )
        )
    return query


def search(
    session: Session,
    actor: Actor,
    filters: LedgerFilter,
    *,
    now: dt.datetime,
    page: int = 1,
    per_page: int = 20,
) -> Page:
    """One page of the hazards the actor may see, filtered and sorted.

    :raises InvalidInput: bad filters or paging.
    """
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise InvalidInput({"page": [f"页码从 1 开始，每页 1–{MAX_PER_PAGE} 条"]})
    query = _filtered(session, actor, filters, now)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    column = SORTS[filters.sort]
    ordered = query.order_by(column.desc() if filters.descending else column.asc(), Hazard.id.desc())
    items = session.scalars(
        ordered.options(
            joinedload(Hazard.enterprise), joinedload(Hazard.region), joinedload(Hazard.lead_department)
        )
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(items, total, page, per_page)


def export_rows(
    session: Session, actor: Actor, filters: LedgerFilter, *, now: dt.datetime, limit: int = 50000
) -> Sequence[Hazard]:
    """Every hazard matching the filters (for the Excel export), capped at ``limit``."""
    column = SORTS[filters.sort]
    query = _filtered(session, actor, filters, now).order_by(
        column.desc() if filters.descending else column.asc(), Hazard.id.desc()
    )
    return session.scalars(
        query.options(
            joinedload(Hazard.enterprise), joinedload(Hazard.region), joinedload(Hazard.lead_department)
        ).limit(limit)
    ).all()


@dataclass(frozen=True, slots=True)
class HazardFile:
    """一患一档: the record and everything recorded about it, as the actor may see it."""

    hazard: Hazard
    events: Sequence[Event]
    open_items: Sequence[WorkItem]
    submissions: Sequence[TaskSubmission]
    attachments: Sequence[Attachment]
    extensions: Sequence[ExtensionRequest]
    completed_task_keys: frozenset[str] = field(default_factory=frozenset)


def hazard_file(session: Session, actor: Actor, hazard_id: int) -> HazardFile:
    """Load one hazard with its timeline, tasks, submissions, attachments and extension requests.

    :raises NotFound: unknown, or outside the actor's scope.
    """
    hazard = session.get(Hazard, hazard_id)
    if hazard is None or not can_see(actor, hazard):
        raise NotFound("隐患", hazard_id)
    events = session.scalars(select(Event).where(Event.hazard_id == hazard_id).order_by(Event.id)).all()
    items = session.scalars(
        select(WorkItem).where(WorkItem.hazard_id == hazard_id).order_by(WorkItem.id)
    ).all()
    return HazardFile(
        hazard=hazard,
        events=events,
        open_items=[w for w in items if w.state == WorkItemState.OPEN.value],
        submissions=session.scalars(
            select(TaskSubmission).where(TaskSubmission.hazard_id == hazard_id).order_by(TaskSubmission.id)
        ).all(),
        attachments=session.scalars(
            select(Attachment).where(Attachment.hazard_id == hazard_id).order_by(Attachment.id)
        ).all(),
        extensions=session.scalars(
            select(ExtensionRequest)
            .where(ExtensionRequest.hazard_id == hazard_id)
            .order_by(ExtensionRequest.id)
        ).all(),
        completed_task_keys=frozenset(w.task_key for w in items if w.state == WorkItemState.COMPLETED.value),
    )
