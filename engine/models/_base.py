"""Column helpers shared by the model modules."""

from __future__ import annotations

import datetime
import enum

from sqlalchemy import Enum


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def str_enum(enum_cls: type[enum.Enum]) -> Enum:
    """Enums are stored as their string values in a VARCHAR(32) (no native enum types)."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=32,
        values_callable=lambda cls: [str(m.value) for m in cls],
        validate_strings=True,
        create_constraint=False,
    )
