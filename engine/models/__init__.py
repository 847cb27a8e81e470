"""SQLAlchemy 2.0 typed models: one place for the schema."""

from __future__ import annotations

import datetime
import enum
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """Aware UTC datetimes on every database.

    SQLite drops the offset of ``DateTime(timezone=True)`` (08:00+08:00 would come back as naive
    08:00), so values are normalised to UTC before they are stored and marked UTC when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} refused: pass an aware datetime")
        value = value.astimezone(datetime.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime.datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


def enum_values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in enum_cls]


from .attachment import Attachment  # noqa: E402
from .auth import ApiToken  # noqa: E402
from .auth import LoginAttempt  # noqa: E402
from .calendar import CalendarDay  # noqa: E402
from .calendar import CalendarDayKind  # noqa: E402
from .calendar import CalendarRevision  # noqa: E402
from .calendar import CalendarYear  # noqa: E402
from .calendar import CalendarYearStatus  # noqa: E402
from .definition import DefinitionBinding  # noqa: E402
from .definition import DefinitionBindingHistory  # noqa: E402
from .definition import DefinitionVersion  # noqa: E402
from .design import DesignDraft  # noqa: E402
from .design import DesignEvent  # noqa: E402
from .design import FormVersion  # noqa: E402
from .event import Event  # noqa: E402
from .hazard import Grade  # noqa: E402
from .hazard import HandlingType  # noqa: E402
from .hazard import Hazard  # noqa: E402
from .hazard import HazardDepartment  # noqa: E402
from .hazard import HazardSource  # noqa: E402
from .hazard import HazardStatus  # noqa: E402
from .hazard import NumberSequence  # noqa: E402
from .incident import Incident  # noqa: E402
from .incident import IncidentState  # noqa: E402
from .inspection import InspectionOccurrence  # noqa: E402
from .inspection import InspectionState  # noqa: E402
from .instance import InstanceKind  # noqa: E402
from .instance import InstanceStatus  # noqa: E402
from .instance import ProcessInstance  # noqa: E402
from .notice import Notice  # noqa: E402
from .notice import NoticeStatus  # noqa: E402
from .org import Department  # noqa: E402
from .org import DepartmentSector  # noqa: E402
from .org import Enterprise  # noqa: E402
from .org import Membership  # noqa: E402
from .org import Region  # noqa: E402
from .org import RegionLevel  # noqa: E402
from .org import Role  # noqa: E402
from .org import Sector  # noqa: E402
from .org import User  # noqa: E402
from .outbox import InAppNotification  # noqa: E402
from .outbox import OutboxMessage  # noqa: E402
from .outbox import OutboxState  # noqa: E402
from .outbox import UserContact  # noqa: E402
from .policy import PolicyProfile  # noqa: E402
from .submission import ExtensionRequest  # noqa: E402
from .submission import ExtensionState  # noqa: E402
from .submission import TaskSubmission  # noqa: E402
from .timer_job import TimerJob  # noqa: E402
from .timer_job import TimerJobState  # noqa: E402
from .work_item import WorkItem  # noqa: E402
from .work_item import WorkItemState  # noqa: E402

__all__ = [
    "ApiToken",
    "Attachment",
    "Base",
    "CalendarDay",
    "CalendarDayKind",
    "CalendarRevision",
    "CalendarYear",
    "CalendarYearStatus",
    "DefinitionBinding",
    "DefinitionBindingHistory",
    "DefinitionVersion",
    "Department",
    "DesignDraft",
    "DesignEvent",
    "DepartmentSector",
    "Enterprise",
    "Event",
    "ExtensionRequest",
    "ExtensionState",
    "FormVersion",
    "Grade",
    "HandlingType",
    "Hazard",
    "HazardDepartment",
    "HazardSource",
    "HazardStatus",
    "InAppNotification",
    "Incident",
    "IncidentState",
    "InspectionOccurrence",
    "InspectionState",
    "InstanceKind",
    "InstanceStatus",
    "LoginAttempt",
    "Membership",
    "Notice",
    "NoticeStatus",
    "NumberSequence",
    "OutboxMessage",
    "OutboxState",
    "PolicyProfile",
    "ProcessInstance",
    "Region",
    "RegionLevel",
    "Role",
    "Sector",
    "TaskSubmission",
    "TimerJob",
    "TimerJobState",
    "User",
    "UserContact",
    "UTCDateTime",
    "WorkItem",
    "WorkItemState",
]
