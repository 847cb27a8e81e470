"""The working-day calendar as data: which years have an official schedule, and its exceptions.

Only exceptions to the Monday–Friday rule matter for arithmetic: holidays (法定节假日 and the
days of a 放假调休 break) and 调休 workdays (a Saturday or Sunday that is worked). Holidays that
fall on a weekend inside a break are stored too, because the State Council notice lists the
whole break (「2月15日至23日放假调休，共9天」) and ``calendar show`` repeats it.

A year without an official row is computed provisionally (see :mod:`engine.calendar`).
"""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from . import Base
from ._base import utcnow


class CalendarYearStatus(enum.StrEnum):
    OFFICIAL = "official"  # 国务院办公厅放假安排已录入
    PROVISIONAL = "provisional"  # 暂定: weekends + the usual pattern (engine.calendar.PROVISIONAL_RULES)


class CalendarDayKind(enum.StrEnum):
    HOLIDAY = "holiday"  # 放假
    WORKDAY = "workday"  # 调休上班 (always a Saturday or Sunday)


class CalendarYear(Base):
    """One year's holiday schedule: official once entered (or seeded), else provisional."""

    __tablename__ = "calendar_year"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(16), default=CalendarYearStatus.OFFICIAL.value)
    #: where the schedule comes from, e.g. "chinese-calendar 1.11.0" or the notice's 文号.
    source: Mapped[str] = mapped_column(String(300))
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    entered_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class CalendarDay(Base):
    """A holiday or a 调休 workday of one year's schedule (``year`` is the schedule's year).

    A notice may name days of the previous December (the 2019 notice: 「2018年12月30日至2019年
    1月1日放假调休，共3天。2018年12月29日（星期六）上班」), so ``year`` is not always ``day.year``.
    """

    __tablename__ = "calendar_day"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[datetime.date] = mapped_column(Date, unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    #: the festival, e.g. 春节, 国庆节 (for a workday: the break it makes up for).
    name: Mapped[str] = mapped_column(String(50))
    year: Mapped[int] = mapped_column(ForeignKey("calendar_year.year"), index=True)


class CalendarRevision(Base):
    """A single row (id 1) changed with every calendar change: processes reload on a new token.

    The token is random, not just the counter: a rolled-back change must not leave a process
    holding a calendar under a revision number that a later, different change reuses.
    """

    __tablename__ = "calendar_revision"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
