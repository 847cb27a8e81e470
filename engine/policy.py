"""Policy profiles: deadline rules and escalation offsets as versioned data (DESIGN §6, DOMAIN §9.3).

A profile is a set of named values, each with its unit and its source::

    "closure_review": {"value": 10, "unit": "calendar_days",
                       "source": "湖北 办法第十条 [V]; 16号令 [R] (DOMAIN §9.3)",
                       "label": "监管部门收到核销申请后现场审查期限"}

Profiles apply to a sector, a region subtree, both, or neither (the national default, key
``national``); :func:`resolve_policy` picks the most specific one for a hazard. A profile file
may ``extend`` another: its values are merged over the base's latest version when it is
imported, so every stored version is self-contained and immutable. Importing changed content
makes version n+1; unchanged content keeps the version. A running instance pins the version it
started with (:func:`pin_policy`), so a change applies to new hazards only.

Files live in ``processes/policies/*.json`` and are imported with ``hazardloop policy import``;
nothing here needs Python to change a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from .calendar import Deadline
from .calendar import WorkingCalendar
from .clock import Clock
from .clock import SystemClock
from .errors import InvalidInput
from .errors import NotFound
from .models import PolicyProfile
from .models import Region
from .models import Sector

__all__ = [
    "NATIONAL_KEY",
    "UNITS",
    "ImportResult",
    "PolicyValue",
    "deadline_for",
    "get_profile",
    "import_policy",
    "import_policy_directory",
    "import_policy_file",
    "latest_profiles",
    "pin_policy",
    "pinned_policy",
    "policy_value",
    "policy_values",
    "resolve_for_region_code",
    "resolve_policy",
]

NATIONAL_KEY = "national"

UNITS: dict[str, str] = {
    "working_days": "个工作日",
    "calendar_days": "日",
    "hours": "小时",
    "minutes": "分钟",
    "months": "个月",
    "count": "次",
}
"""Allowed units and how they read in Chinese."""

_VALUE_FIELDS = frozenset({"value", "unit", "source", "label", "note"})
_DOCUMENT_FIELDS = frozenset({"key", "title", "sector", "region", "extends", "note", "values"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_VALUE = 100_000


@dataclass(frozen=True, slots=True)
class PolicyValue:
    """One policy value with its unit, source and Chinese label."""

    name: str
    value: int
    unit: str
    source: str
    label: str
    note: str | None = None

    def describe(self) -> str:
        """``10 个工作日``, ``6 个月``, ``3 次``."""
        return f"{self.value} {UNITS[self.unit]}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "label": self.label,
        }
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The stored version, whether it is new, and profiles built on an older version of it."""

    profile: PolicyProfile
    created: bool
    #: keys of profiles that extend this key but were imported against an older version
    stale_dependents: list[str]


# --- validation ---------------------------------------------------------------------------------------


def _parse_value(name: str, spec: object, errors: dict[str, list[str]]) -> PolicyValue | None:
    where = f"values.{name}"
    if not _NAME.match(name):
        errors[where] = ["名称只能由小写字母、数字和下划线组成，并以字母开头"]
        return None
    if not isinstance(spec, Mapping):
        errors[where] = ['必须是 {"value", "unit", "source", "label"}']
        return None
    problems: list[str] = []
    extra = set(spec) - _VALUE_FIELDS
    if extra:
        problems.append(f"未知字段 {', '.join(sorted(extra))}")
    value = spec.get("value")
    unit = spec.get("unit")
    if unit not in UNITS:
        problems.append(f"unit 必须是 {', '.join(UNITS)} 之一（得到 {unit!r}）")
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"value 必须是整数（得到 {value!r}；半小时请写 30 minutes）")
    elif not 0 <= value <= _MAX_VALUE:
        problems.append(f"value 必须在 0 到 {_MAX_VALUE} 之间")
    for field in ("source", "label"):
        text = spec.get(field)
        if not isinstance(text, str) or not text.strip():
            problems.append(
                f"{field} 必填（{'出处，例如 青岛 [V] (DOMAIN §9.3)' if field == 'source' else '中文说明'}）"
            )
    note = spec.get("note")
    if note is not None and not isinstance(note, str):
        problems.append("note 必须是字符串")
    if problems:
        errors[where] = problems
        return None
    assert isinstance(value, int) and isinstance(unit, str)
    return PolicyValue(
        name,
        value,
        unit,
        str(spec["source"]).strip(),
        str(spec["label"]).strip(),
        note.strip() if isinstance(note, str) and note.strip() else None,
    )


def _validate_document(document: object) -> dict[str, Any]:
    """Check a profile document's shape; returns it normalised (values as :class:`PolicyValue`).

    :raises InvalidInput: field errors keyed by path (``values.closure_review``, ``sector`` …).
    """
    if not isinstance(document, Mapping):
        raise InvalidInput({"document": ["策略配置必须是 JSON 对象"]}, "策略配置格式有误")
    errors: dict[str, list[str]] = {}
    for key in sorted(set(document) - _DOCUMENT_FIELDS):
        errors[key] = ["未知字段"]
    key = document.get("key")
    if not isinstance(key, str) or not _NAME.match(key):
        errors["key"] = ["必填：小写字母、数字和下划线，以字母开头（例如 national、fire）"]
    title = document.get("title")
    if not isinstance(title, str) or not title.strip():
        errors["title"] = ["必填（中文名称）"]
    for field in ("sector", "region", "extends", "note"):
        if document.get(field) is not None and not isinstance(document.get(field), str):
            errors[field] = ["必须是字符串或 null"]
    if document.get("extends") is not None and document.get("extends") == key:
        errors["extends"] = ["不能继承自身"]
    scoped = document.get("sector") is not None or document.get("region") is not None
    if key == NATIONAL_KEY and scoped:
        errors["key"] = ["national 是全国默认配置，不能指定行业或地区"]
    elif isinstance(key, str) and key != NATIONAL_KEY and not scoped:
        errors["key"] = ["只有全国默认配置（key 为 national）可以不指定行业和地区"]
    raw_values = document.get("values")
    values: dict[str, PolicyValue] = {}
    if not isinstance(raw_values, Mapping) or (not raw_values and document.get("extends") is None):
        errors["values"] = ["必须是非空对象：{名称: {value, unit, source, label}}"]
    else:
        for name, spec in raw_values.items():
            parsed = _parse_value(str(name), spec, errors)
            if parsed is not None:
                values[parsed.name] = parsed
    if errors:
        raise InvalidInput(errors, "策略配置格式有误")
    return {
        "key": key,
        "title": str(title).strip(),
        "sector": document.get("sector"),
        "region": document.get("region"),
        "extends": document.get("extends"),
        "note": document.get("note"),
        "values": values,
    }


def _canonical_hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --- queries ------------------------------------------------------------------------------------------


def latest_profiles(session: Session) -> list[PolicyProfile]:
    """The latest version of every profile key, ordered by key."""
    newest = (
        select(PolicyProfile.key, func.max(PolicyProfile.version).label("version"))
        .group_by(PolicyProfile.key)
        .subquery()
    )
    return list(
        session.scalars(
            select(PolicyProfile)
            .join(newest, and_(PolicyProfile.key == newest.c.key, PolicyProfile.version == newest.c.version))
            .order_by(PolicyProfile.key)
        ).unique()
    )


def get_profile(session: Session, key: str, version: int | None = None) -> PolicyProfile:
    """A profile version (the latest when ``version`` is None).

    :raises NotFound: no such key or version.
    """
    query = select(PolicyProfile).where(PolicyProfile.key == key)
    query = (
        query.where(PolicyProfile.version == version)
        if version is not None
        else query.order_by(PolicyProfile.version.desc())
    )
    found = session.scalars(query.limit(1)).first()
    if found is None:
        raise NotFound("策略配置", f"{key}@{version}" if version is not None else key)
    return found


def resolve_policy(session: Session, sector_code: str | None, region_path: str | None) -> PolicyProfile:
    """The most specific latest profile for a hazard's sector and region.

    Order: sector and region (the nearest region up the hazard's path), then sector only, then
    region only (nearest first), then the national default.

    :raises NotFound: no profile applies (not even ``national``: run ``hazardloop policy import``).
    """
    best: tuple[tuple[bool, int], PolicyProfile] | None = None
    for candidate in latest_profiles(session):
        if candidate.sector_code is not None and candidate.sector_code != sector_code:
            continue
        depth = 0
        if candidate.region is not None:
            if not region_path or not region_path.startswith(candidate.region.path):
                continue
            depth = len(candidate.region.path)
        rank = (candidate.sector_code is not None, depth)
        if best is None or rank > best[0]:
            best = (rank, candidate)
    if best is None:
        raise NotFound("适用的策略配置", f"{sector_code or '-'} {region_path or '/'}")
    return best[1]


def resolve_for_region_code(
    session: Session, sector_code: str | None, region_code: str | None
) -> PolicyProfile:
    """:func:`resolve_policy` for a region given by its code (``hazardloop policy show``).

    :raises NotFound: unknown region, or no profile applies.
    """
    path = None
    if region_code is not None:
        region = session.scalars(select(Region).where(Region.code == region_code)).first()
        if region is None:
            raise NotFound("地区", region_code)
        path = region.path
    return resolve_policy(session, sector_code, path)


def policy_values(profile: PolicyProfile) -> dict[str, PolicyValue]:
    """Every value of a stored profile version."""
    values = profile.content.get("values", {})
    return {
        name: PolicyValue(
            name,
            spec["value"],
            spec["unit"],
            spec["source"],
            spec["label"],
            spec.get("note"),
        )
        for name, spec in values.items()
    }


def policy_value(profile: PolicyProfile, name: str) -> PolicyValue:
    """One value of a stored profile version.

    :raises NotFound: the profile has no such value.
    """
    spec = profile.content.get("values", {}).get(name)
    if spec is None:
        raise NotFound("策略值", f"{profile.key}@{profile.version}:{name}")
    return PolicyValue(name, spec["value"], spec["unit"], spec["source"], spec["label"], spec.get("note"))


# --- import -------------------------------------------------------------------------------------------


def import_policy(
    session: Session,
    document: Mapping[str, Any],
    *,
    created_by_id: int | None = None,
    clock: Clock | None = None,
) -> ImportResult:
    """Store a profile document as a new version, or return the latest one if unchanged.

    :raises InvalidInput: a malformed document, an unknown sector/region/base profile, or a
        scope (sector, region) that another key already covers.
    """
    doc = _validate_document(document)
    errors: dict[str, list[str]] = {}
    sector_code = doc["sector"]
    if sector_code is not None and session.get(Sector, sector_code) is None:
        errors["sector"] = [f"行业 {sector_code} 不存在"]
    region: Region | None = None
    if doc["region"] is not None:
        region = session.scalars(select(Region).where(Region.code == doc["region"])).first()
        if region is None:
            errors["region"] = [f"地区 {doc['region']} 不存在"]
    base: PolicyProfile | None = None
    if doc["extends"] is not None:
        try:
            base = get_profile(session, doc["extends"])
        except NotFound:
            errors["extends"] = [f"被继承的策略配置 {doc['extends']} 尚未导入"]
    if errors:
        raise InvalidInput(errors, "策略配置无法导入")
    region_id = region.id if region is not None else None
    for other in latest_profiles(session):
        if other.key != doc["key"] and other.sector_code == sector_code and other.region_id == region_id:
            raise InvalidInput({"key": [f"该行业/地区已由策略配置 {other.key} 覆盖，请修改它而不是新建"]})
    values: dict[str, dict[str, Any]] = dict(base.content.get("values", {})) if base is not None else {}
    values.update({name: value.as_dict() for name, value in doc["values"].items()})
    content = {
        "title": doc["title"],
        "extends": {"key": base.key, "version": base.version} if base is not None else None,
        "overrides": sorted(doc["values"]),
        "values": dict(sorted(values.items())),
    }
    content_hash = _canonical_hash({"sector": sector_code, "region": doc["region"], "content": content})
    latest = session.scalars(
        select(PolicyProfile)
        .where(PolicyProfile.key == doc["key"])
        .order_by(PolicyProfile.version.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.content_hash == content_hash:
        return ImportResult(latest, False, [])
    created = PolicyProfile(
        key=doc["key"],
        sector_code=sector_code,
        region_id=region_id,
        version=(latest.version + 1) if latest is not None else 1,
        content=content,
        content_hash=content_hash,
        created_at=(clock or SystemClock()).now(),
        created_by_id=created_by_id,
        note=doc["note"],
    )
    session.add(created)
    session.flush()
    stale = [
        p.key
        for p in latest_profiles(session)
        if (p.content.get("extends") or {}).get("key") == created.key
        and (p.content.get("extends") or {}).get("version") != created.version
    ]
    return ImportResult(created, True, stale)


def _read_document(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput({"file": [f"无法读取 {path}: {exc.strerror}"]}) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput({"file": [f"{path.name} 不是合法的 JSON: 第 {exc.lineno} 行 {exc.msg}"]}) from exc


def import_policy_file(session: Session, path: Path, **kwargs: Any) -> ImportResult:
    """:func:`import_policy` of a JSON file.

    :raises InvalidInput: unreadable file, invalid JSON, or an invalid document.
    """
    return import_policy(session, _read_document(path), **kwargs)


def import_policy_directory(session: Session, directory: Path, **kwargs: Any) -> list[ImportResult]:
    """Import every ``*.json`` in ``directory``, bases before the profiles that extend them.

    :raises InvalidInput: the first file that cannot be imported (its name is in the message).
    """
    pending = [(path, _read_document(path)) for path in sorted(directory.glob("*.json"))]
    results: list[ImportResult] = []
    while pending:
        waiting_keys = {doc.get("key") for _path, doc in pending if isinstance(doc, Mapping)}
        ready = [
            (path, doc)
            for path, doc in pending
            if not isinstance(doc, Mapping) or doc.get("extends") not in waiting_keys
        ]
        for item in ready or pending[:1]:  # nothing ready: a cycle, reported by the import
            pending.remove(item)
            path, doc = item
            try:
                results.append(import_policy(session, doc, **kwargs))
            except InvalidInput as exc:
                raise InvalidInput(exc.messages, f"{path.name} 无法导入") from exc
    return results


# --- using a profile ----------------------------------------------------------------------------------


def pin_policy(data: MutableMapping[str, Any], profile: PolicyProfile, *, expose: Iterable[str] = ()) -> None:
    """Pin ``profile`` to a new instance by writing its id into the start task's data.

    For the runtime's ``_start_instance``::

        chosen = policy.resolve_policy(session, hazard.sector_code, hazard.region_path)
        policy.pin_policy(start.data, chosen, expose=("closure_review",))

    writes ``policy_profile_id``, ``policy_key``, ``policy_version`` and, for each exposed
    name, ``policy_<name>`` (the number) and ``policy_<name>_unit`` — routing variables a
    diagram may pass to ``compute_deadline`` (``days="policy_closure_review"``).

    :raises NotFound: an exposed name the profile does not have.
    """
    data["policy_profile_id"] = profile.id
    data["policy_key"] = profile.key
    data["policy_version"] = profile.version
    for name in expose:
        value = policy_value(profile, name)
        data[f"policy_{name}"] = value.value
        data[f"policy_{name}_unit"] = value.unit


def pinned_policy(session: Session, data: Mapping[str, Any]) -> PolicyProfile:
    """The profile version pinned by :func:`pin_policy` (from an instance's task data).

    :raises NotFound: nothing pinned, or the pinned version is gone.
    """
    profile_id = data.get("policy_profile_id")
    found = session.get(PolicyProfile, profile_id) if isinstance(profile_id, int) else None
    if found is None:
        raise NotFound("固定的策略配置", profile_id)
    return found


def deadline_for(calendar: WorkingCalendar, value: PolicyValue, start: dt.datetime) -> Deadline:
    """The deadline a policy value sets from ``start`` (through :meth:`WorkingCalendar.deadline_after`).

    :raises ValueError: a ``count`` value (a number of times, not a duration).
    """
    if value.unit == "count":
        raise ValueError(f"策略值 {value.name} 是次数（count），不是期限")
    return calendar.deadline_after(start, value.value, value.unit)
