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
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import make_transient_to_detached

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
    "ISSUER_BODIES",
    "NATIONAL_KEY",
    "NOTICE_KINDS",
    "RECIPIENTS",
    "RUNG_KEYS",
    "TRIGGERS",
    "Ladder",
    "LadderRung",
    "UNITS",
    "ImportResult",
    "PolicyValue",
    "clear_pinned_cache",
    "deadline_for",
    "get_profile",
    "import_policy",
    "import_policy_directory",
    "import_policy_file",
    "ladder_of",
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
_DOCUMENT_FIELDS = frozenset({"key", "title", "sector", "region", "extends", "note", "values", "ladder"})
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


# --- the escalation ladder (DOMAIN §4.3) ---------------------------------------------------------------

NOTICE_KINDS: dict[str, str] = {
    "urge_letter": "提醒敦促函",
    "letter": "督办函（函告）",
    "circular": "通报",
    "interview": "约谈通知书",
    "exposure": "曝光公告",
    "listing_notice": "挂牌督办通知书",
    "listing_announcement": "挂牌督办公告",
    "delisting_notice": "摘牌通知书",
    "delisting_announcement": "摘牌公告",
    "higher_referral": "提请上级政府督办函",
    "referral": "移送追责函（参照事故调查处理）",
}
"""Notice kinds (三书一函 and the 挂牌督办 documents) and their Chinese titles."""

RUNG_KEYS: dict[str, str] = {
    "urge_before": "提醒敦促函（整改期限届满前）",
    "urge_due": "提醒敦促函（整改期限届满）",
    "urge_no_progress": "提醒敦促函（长期未更新整改进展）",
    "letter": "函告",
    "circular": "通报",
    "interview": "约谈",
    "exposure": "曝光",
    "listing": "挂牌督办",
    "referral": "参照事故调查处理（移送追责）",
}
"""The ladder's rungs. Diagrams name these in ``escalate(rung=…)``; a profile gives each its
level, offset, issuing body, recipients and template."""

TRIGGERS: dict[str, str] = {
    "deadline": "整改期限临近或届满",
    "overdue": "逾期（按工作日计）",
    "no_progress": "长期未更新整改进展",
    "failed_verifications": "验收/审查多次不通过",
    "recurrence": "同一企业同一部位的已销号隐患再次发生",
    "refusal": "拒不整改",
    "fake_rectification": "虚假整改",
}
"""What can set a rung off; ``ladder.triggers`` maps the non-timer ones to a rung."""
_TIMED = frozenset({"deadline", "overdue"})

ISSUER_BODIES: dict[str, str] = {
    "lead_department": "负有安全监管职责的牵头部门",
    "office": "安全生产委员会办公室（安委办）",
    "committee": "安全生产委员会（安委会）",
    "government": "人民政府",
}
"""Who issues a rung's notice; all but ``lead_department`` sit at ``issuer_level`` above the hazard."""

RECIPIENTS: dict[str, str] = {
    "enterprise": "隐患所在生产经营单位",
    "principal": "生产经营单位主要负责人",
    "actual_controller": "生产经营单位实际控制人",
    "competent_department": "行业主管（牵头）部门",
    "office": "安委办",
    "member_units": "安委会各成员单位",
    "public": "社会公众",
    "higher_government": "上一级人民政府",
    "discipline": "纪检监察机关",
}
"""Who a rung's notice goes to."""

ISSUER_LEVELS = ("province", "city", "county", "township")
_RUNG_FIELDS = frozenset(
    {
        "level",
        "kind",
        "label",
        "offset",
        "issuer",
        "issuer_level",
        "recipients",
        "response",
        "template",
        "place",
    }
)


@dataclass(frozen=True, slots=True)
class LadderRung:
    """One rung of the escalation ladder, as pinned with the instance's policy version."""

    key: str
    #: 0 (提醒) … 6 (参照事故调查处理); hazard.escalation_level only ever rises to it
    level: int
    #: a key of NOTICE_KINDS: the notice this rung issues
    kind: str
    label: str
    #: name of the policy value that places the rung in time (None: trigger-only, e.g. referral)
    offset: str | None
    #: a key of ISSUER_BODIES
    issuer: str
    #: the region level of the issuing body (None for the lead department)
    issuer_level: str | None
    #: keys of RECIPIENTS
    recipients: tuple[str, ...]
    #: name of the policy value giving the response or publication deadline (None: no deadline)
    response: str | None
    #: the notice template (``processes/notices/<template>.html.j2``), default the kind
    template: str
    #: 约谈 place (a rung that summons someone); None otherwise
    place: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "kind": self.kind,
            "label": self.label,
            "offset": self.offset,
            "issuer": self.issuer,
            "issuer_level": self.issuer_level,
            "recipients": list(self.recipients),
            "response": self.response,
            "template": self.template,
            "place": self.place,
        }


@dataclass(frozen=True, slots=True)
class Ladder:
    """A profile's ladder: rungs by key, and which rung each non-timer trigger sets off."""

    rungs: Mapping[str, LadderRung]
    triggers: Mapping[str, str]

    def rung(self, key: str) -> LadderRung:
        """:raises NotFound: the profile has no such rung."""
        found = self.rungs.get(key)
        if found is None:
            raise NotFound("督办升级梯度", key)
        return found

    def for_trigger(self, trigger: str) -> LadderRung | None:
        key = self.triggers.get(trigger)
        return self.rungs.get(key) if key else None


def _parse_rung(key: str, spec: object, errors: dict[str, list[str]]) -> LadderRung | None:
    where = f"ladder.rungs.{key}"
    if key not in RUNG_KEYS:
        errors[where] = [f"未知梯度，必须是 {', '.join(RUNG_KEYS)} 之一"]
        return None
    if not isinstance(spec, Mapping):
        errors[where] = [
            "必须是对象 {level, kind, label, offset, issuer, issuer_level, recipients, response}"
        ]
        return None
    problems: list[str] = []
    extra = set(spec) - _RUNG_FIELDS
    if extra:
        problems.append(f"未知字段 {', '.join(sorted(extra))}")
    level = spec.get("level")
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 6:
        problems.append("level 必须是 0 到 6 的整数")
    kind = spec.get("kind")
    if kind not in NOTICE_KINDS:
        problems.append(f"kind 必须是 {', '.join(NOTICE_KINDS)} 之一")
    label = spec.get("label")
    if not isinstance(label, str) or not label.strip():
        problems.append("label 必填（中文说明）")
    for field in ("offset", "response", "place"):
        if spec.get(field) is not None and not isinstance(spec.get(field), str):
            problems.append(f"{field} 必须是字符串或 null")
    issuer = spec.get("issuer")
    if issuer not in ISSUER_BODIES:
        problems.append(f"issuer 必须是 {', '.join(ISSUER_BODIES)} 之一")
    issuer_level = spec.get("issuer_level")
    if issuer == "lead_department":
        if issuer_level is not None:
            problems.append("牵头部门签发时 issuer_level 必须为 null")
    elif issuer_level not in ISSUER_LEVELS:
        problems.append(f"issuer_level 必须是 {', '.join(ISSUER_LEVELS)} 之一")
    recipients = spec.get("recipients")
    if (
        not isinstance(recipients, list)
        or not recipients
        or any(r not in RECIPIENTS for r in recipients)
        or len(set(recipients)) != len(recipients)
    ):
        problems.append(f"recipients 必须是不重复的非空列表，元素取自 {', '.join(RECIPIENTS)}")
    template = spec.get("template", kind)
    if not isinstance(template, str) or not _NAME.match(template):
        problems.append("template 必须是模板名（小写字母、数字和下划线）")
    if problems:
        errors[where] = problems
        return None
    assert isinstance(level, int) and isinstance(kind, str) and isinstance(issuer, str)
    return LadderRung(
        key=key,
        level=level,
        kind=kind,
        label=str(label).strip(),
        offset=spec.get("offset"),
        issuer=issuer,
        issuer_level=issuer_level,
        recipients=tuple(recipients),  # type: ignore[arg-type]
        response=spec.get("response"),
        template=str(template),
        place=spec.get("place"),
    )


def _parse_ladder(spec: object, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    """``{"rungs": {key: rung}, "triggers": {trigger: rung key}}`` → plain dicts (validated)."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping) or set(spec) - {"rungs", "triggers"}:
        errors["ladder"] = ['必须是 {"rungs": {…}, "triggers": {…}}']
        return None
    rungs: dict[str, Any] = {}
    raw_rungs = spec.get("rungs", {})
    if not isinstance(raw_rungs, Mapping):
        errors["ladder.rungs"] = ["必须是对象 {梯度: {…}}"]
    else:
        for key, rung_spec in raw_rungs.items():
            parsed = _parse_rung(str(key), rung_spec, errors)
            if parsed is not None:
                rungs[parsed.key] = parsed.as_dict()
    triggers: dict[str, str] = {}
    raw_triggers = spec.get("triggers", {})
    if not isinstance(raw_triggers, Mapping):
        errors["ladder.triggers"] = ["必须是对象 {触发条件: 梯度}"]
    else:
        for trigger, rung_key in raw_triggers.items():
            if trigger not in TRIGGERS or trigger in _TIMED:
                errors[f"ladder.triggers.{trigger}"] = [
                    f"未知触发条件，必须是 {', '.join(t for t in TRIGGERS if t not in _TIMED)} 之一"
                ]
            elif rung_key not in RUNG_KEYS:
                errors[f"ladder.triggers.{trigger}"] = [f"未知梯度 {rung_key!r}"]
            else:
                triggers[str(trigger)] = str(rung_key)
    return {"rungs": rungs, "triggers": triggers}


def _check_ladder_references(ladder: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every rung's offset/response names a value of the merged profile; triggers name a rung."""
    errors: dict[str, list[str]] = {}
    for key, rung in ladder.get("rungs", {}).items():
        for field in ("offset", "response"):
            name = rung.get(field)
            if name is not None and name not in values:
                errors.setdefault(f"ladder.rungs.{key}", []).append(f"{field} 引用的策略值 {name} 不存在")
            elif name is not None and values[name]["unit"] == "count":
                errors.setdefault(f"ladder.rungs.{key}", []).append(
                    f"{field} 引用的策略值 {name} 是次数，不是期限"
                )
    for trigger, key in ladder.get("triggers", {}).items():
        if key not in ladder.get("rungs", {}):
            errors[f"ladder.triggers.{trigger}"] = [f"梯度 {key} 未配置"]
    return errors


def ladder_of(profile: PolicyProfile) -> Ladder:
    """The ladder of a stored profile version (empty when the profile has none)."""
    spec = profile.content.get("ladder") or {}
    rungs = {}
    for key, rung in spec.get("rungs", {}).items():
        rungs[key] = LadderRung(
            key=key,
            level=rung["level"],
            kind=rung["kind"],
            label=rung["label"],
            offset=rung.get("offset"),
            issuer=rung["issuer"],
            issuer_level=rung.get("issuer_level"),
            recipients=tuple(rung["recipients"]),
            response=rung.get("response"),
            template=rung.get("template") or rung["kind"],
            place=rung.get("place"),
        )
    return Ladder(rungs, dict(spec.get("triggers", {})))


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
    ladder = _parse_ladder(document.get("ladder"), errors)
    if errors:
        raise InvalidInput(errors, "策略配置格式有误")
    return {
        "ladder": ladder,
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
    base_ladder = base.content.get("ladder") or {} if base is not None else {}
    ladder_rungs = dict(base_ladder.get("rungs", {}))
    ladder_triggers = dict(base_ladder.get("triggers", {}))
    if doc["ladder"] is not None:
        ladder_rungs.update(doc["ladder"]["rungs"])
        ladder_triggers.update(doc["ladder"]["triggers"])
    ladder = {"rungs": dict(sorted(ladder_rungs.items())), "triggers": dict(sorted(ladder_triggers.items()))}
    ladder_errors = _check_ladder_references(ladder, values)
    if ladder_errors:
        raise InvalidInput(ladder_errors, "策略配置的督办升级梯度有误")
    content = {
        "title": doc["title"],
        "extends": {"key": base.key, "version": base.version} if base is not None else None,
        "overrides": sorted(doc["values"]),
        "values": dict(sorted(values.items())),
        "ladder": ladder,
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


# Pinned profile versions, cached in-process: a stored version never changes (``import_policy``
# only adds versions), so a version read once need not be read again by every escalation. An entry
# is keyed by the database and the version's id; it enters the cache only when the transaction
# that read it commits (a version read in a transaction that rolled back, e.g. one imported by that
# very transaction, is never cached), and any write of a profile row through this process clears
# the cache (a database whose ids were reused after a rollback cannot serve a stale version).
_PINNED: dict[tuple[str, int], PolicyProfile] = {}
_PINNED_LOCK = threading.Lock()
#: ``session.info`` key: versions read in the session's transaction, cached if it commits
_PINNED_READ = "hazardloop.pinned_policies"


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


def _detached_copy(profile: PolicyProfile) -> PolicyProfile:
    """A copy of ``profile``'s columns, detached (shared by sessions only through ``merge``)."""
    copy = PolicyProfile()
    for attr in inspect(PolicyProfile).column_attrs:
        setattr(copy, attr.key, getattr(profile, attr.key))
    make_transient_to_detached(copy)
    return copy


def pinned_policy(session: Session, data: Mapping[str, Any]) -> PolicyProfile:
    """The profile version pinned by :func:`pin_policy` (from an instance's task data).

    A version read before (by a committed transaction of this process) is not read again: the
    cached copy is merged into ``session`` without a query.

    :raises NotFound: nothing pinned, or the pinned version is gone.
    """
    profile_id = data.get("policy_profile_id")
    if not isinstance(profile_id, int):
        raise NotFound("固定的策略配置", profile_id)
    key = (_database(session), profile_id)
    cached = _PINNED.get(key)
    if cached is not None:
        return session.merge(cached, load=False)
    found = session.get(PolicyProfile, profile_id)
    if found is None:
        raise NotFound("固定的策略配置", profile_id)
    session.info.setdefault(_PINNED_READ, {})[key] = _detached_copy(found)
    return found


def clear_pinned_cache() -> None:
    """Forget the cached profile versions (any profile row written through this process does)."""
    with _PINNED_LOCK:
        _PINNED.clear()


@sa_event.listens_for(Session, "after_commit")
def _cache_pinned_policies(session: Session) -> None:
    read = session.info.pop(_PINNED_READ, None)
    if read:
        with _PINNED_LOCK:
            _PINNED.update(read)


@sa_event.listens_for(Session, "after_soft_rollback")
def _drop_pinned_policies(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PINNED_READ, None)


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_pinned_policies(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # closed without a commit: not known to be committed
        session.info.pop(_PINNED_READ, None)


@sa_event.listens_for(PolicyProfile, "after_insert")
@sa_event.listens_for(PolicyProfile, "after_update")
@sa_event.listens_for(PolicyProfile, "after_delete")
def _profile_written(_mapper: Any, _connection: Any, _target: PolicyProfile) -> None:
    clear_pinned_cache()


def deadline_for(calendar: WorkingCalendar, value: PolicyValue, start: dt.datetime) -> Deadline:
    """The deadline a policy value sets from ``start`` (through :meth:`WorkingCalendar.deadline_after`).

    :raises ValueError: a ``count`` value (a number of times, not a duration).
    """
    if value.unit == "count":
        raise ValueError(f"策略值 {value.name} 是次数（count），不是期限")
    return calendar.deadline_after(start, value.value, value.unit)
