"""Task forms as data: whitelisted field definitions compiled to marshmallow schemas.

A form definition is plain JSON (``processes/forms/<key>.json``) so a department can adapt a
form (五落实 / 五到位 / 四落实 …, DOMAIN §1.4) without a programmer::

    {"key": "verify", "title": "整改验收", "version": 1,
     "fields": [{"name": "decision", "label": "验收结论", "type": "choice", "required": true,
                 "options": [{"value": "pass", "label": "通过"}, {"value": "reject", "label": "不通过"}]}],
     "routing": {"decision": "decision"}}

``parse_form_definition`` checks the definition itself and raises ``DefinitionInvalid`` naming the
form (``key``) or the field (``key.field``). ``FormDefinition.validate`` checks a submission and
raises ``InvalidInput`` keyed by field name; it returns JSON-ready data (dates as ``YYYY-MM-DD``,
money as ``"12000.00"``). Form content is stored in our own tables; only the fields named in
``routing`` are copied into the workflow, and only to the variables in ``ROUTABLE_VARIABLES`` —
so a form can never overwrite ``deadline_at``, ``grade`` or any other engine-owned variable
(DESIGN §2).

Optional fields are omitted, not sent as ``null``: ``null`` is rejected like any wrong type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
import re
import types
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Final

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields as ma
from marshmallow import post_load

from .errors import DefinitionInvalid
from .errors import InvalidInput

__all__ = [
    "FIELD_TYPES",
    "FORMS_DIR",
    "PLAN_FIELDS",
    "RESERVED_VARIABLES",
    "ROUTABLE_VARIABLES",
    "FieldDefinition",
    "FormDefinition",
    "Option",
    "load_form_directory",
    "load_shipped_forms",
    "parse_form_definition",
]

#: The shipped form definitions.
FORMS_DIR: Final = Path(__file__).resolve().parent.parent / "processes" / "forms"

#: The whitelisted field types, in the order the documentation lists them.
FIELD_TYPES: Final = (
    "text",
    "number",
    "money",
    "date",
    "choice",
    "person",
    "photo",
    "file",
    "signature",
    "checklist",
)

#: Hazard columns a plan form fills when its task completes (form field name -> hazard attribute);
#: the runtime copies them, and the form editor keeps a plan form covering the same columns.
PLAN_FIELDS: Final[Mapping[str, str]] = {
    "responsible_person": "responsible_person",
    "measures": "measures",
    "methods": "measures",
    "funds": "funds",
    "contingency_plan": "contingency_plan",
    "interim_measures": "interim_measures",
}

#: The only workflow variables a form may set (through ``routing``).
ROUTABLE_VARIABLES: Final = frozenset({"decision", "verified"})

#: Engine-owned workflow variables: never a routing target and never a field name.
RESERVED_VARIABLES: Final = frozenset(
    {
        "deadline",
        "deadline_at",
        "remind_at",
        "review_due_at",
        "grade",
        "handling",
        "failed_verifications",
        "max_rejects",
    }
)

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,62}")
_OPTION_VALUE_RE: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,62}")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NUMBER_RE: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MONEY_PATTERN: Final = r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$"

_LABEL_MAX: Final = 200
_HELP_MAX: Final = 2000
_TEXT_MAX_DEFAULT: Final = 10_000
_TEXT_MAX_LIMIT: Final = 100_000
_PERSON_MAX: Final = 100
_SIGNATURE_MAX: Final = 200
_ATTACHMENTS_MAX_DEFAULT: Final = 50
_ATTACHMENTS_MAX_LIMIT: Final = 500
_OPTIONS_MAX: Final = 200
_CENT: Final = decimal.Decimal("0.01")
_MONEY_LIMIT: Final = decimal.Decimal("999999999999.99")
_NUMBER_LIMIT: Final = 1e15

_FORM_KEYS: Final = frozenset({"key", "title", "version", "description", "fields", "routing"})
_COMMON_ATTRS: Final = frozenset({"name", "label", "type", "required", "help"})
_TYPE_ATTRS: Final[Mapping[str, frozenset[str]]] = {
    "text": frozenset({"max_length", "min_length", "multiline"}),
    "number": frozenset({"min", "max", "integer"}),
    "money": frozenset({"min", "max"}),
    "date": frozenset({"role"}),
    "choice": frozenset({"options", "multiple"}),
    "person": frozenset(),
    "photo": frozenset({"phase", "min_count", "max_count"}),
    "file": frozenset({"min_count", "max_count"}),
    "signature": frozenset(),
    "checklist": frozenset({"items", "all_required"}),
}
_ROLES: Final = frozenset({"deadline"})
_PHASES: Final = ("before", "after")


# --------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True, slots=True)
class Option:
    """One option of a ``choice`` field or one item of a ``checklist``."""

    value: str
    label: str

    def to_dict(self) -> dict[str, str]:
        """The option as it appears in a definition file."""
        return {"value": self.value, "label": self.label}


@dataclass(frozen=True, slots=True)
class FieldDefinition:
    """One field of a form. Attributes that do not apply to ``type`` keep their defaults.

    ``min_value``/``max_value`` are the definition's ``min``/``max``: ``Decimal`` (two places)
    for money, ``int``/``float`` for number.
    """

    name: str
    label: str
    type: str
    required: bool = False
    help: str | None = None
    # text
    max_length: int | None = None
    min_length: int | None = None
    multiline: bool = False
    # number, money
    min_value: int | float | decimal.Decimal | None = None
    max_value: int | float | decimal.Decimal | None = None
    integer: bool = False
    # date
    role: str | None = None
    # choice
    options: tuple[Option, ...] = ()
    multiple: bool = False
    # photo, file
    phase: str | None = None
    min_count: int | None = None
    max_count: int | None = None
    # checklist
    items: tuple[Option, ...] = ()
    all_required: bool = False

    @property
    def is_deadline(self) -> bool:
        """Whether this date field's value becomes the hazard deadline."""
        return self.role == "deadline"

    def to_dict(self) -> dict[str, object]:
        """The field as it appears in a definition file (only the attributes that are set)."""
        out: dict[str, object] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "required": self.required,
        }
        if self.help is not None:
            out["help"] = self.help
        if self.max_length is not None:
            out["max_length"] = self.max_length
        if self.min_length is not None:
            out["min_length"] = self.min_length
        if self.multiline:
            out["multiline"] = True
        for attr, value in (("min", self.min_value), ("max", self.max_value)):
            if value is not None:
                out[attr] = _money_str(value) if isinstance(value, decimal.Decimal) else value
        if self.integer:
            out["integer"] = True
        if self.role is not None:
            out["role"] = self.role
        if self.options:
            out["options"] = [option.to_dict() for option in self.options]
        if self.multiple:
            out["multiple"] = True
        if self.phase is not None:
            out["phase"] = self.phase
        if self.min_count is not None:
            out["min_count"] = self.min_count
        if self.max_count is not None:
            out["max_count"] = self.max_count
        if self.items:
            out["items"] = [item.to_dict() for item in self.items]
        if self.all_required:
            out["all_required"] = True
        return out


@dataclass(frozen=True, slots=True)
class FormDefinition:
    """A parsed, valid form definition. Build it with ``parse_form_definition``.

    Compiled marshmallow schemas and the content hash are cached on the instance.
    """

    key: str
    title: str
    version: int
    fields: tuple[FieldDefinition, ...]
    #: form field name -> workflow variable name (read-only mapping)
    routing: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    description: str | None = None
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        return hash(self.content_hash)

    # -- lookup ---------------------------------------------------------------------------

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in definition order."""
        return tuple(f.name for f in self.fields)

    def get_field(self, name: str) -> FieldDefinition:
        """The field called ``name``; ``KeyError`` if there is none."""
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    @property
    def deadline_field(self) -> str | None:
        """Name of the date field whose value becomes the hazard deadline, or ``None``."""
        for candidate in self.fields:
            if candidate.is_deadline:
                return candidate.name
        return None

    def deadline_value(self, validated: Mapping[str, object]) -> dt.date | None:
        """The deadline date in validated data, or ``None`` if the form has no deadline field."""
        name = self.deadline_field
        if name is None:
            return None
        value = validated.get(name)
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        return None

    # -- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """The definition as JSON-ready data; ``parse_form_definition`` reads it back unchanged."""
        out: dict[str, object] = {"key": self.key, "title": self.title, "version": self.version}
        if self.description is not None:
            out["description"] = self.description
        out["fields"] = [f.to_dict() for f in self.fields]
        out["routing"] = dict(self.routing)
        return out

    @property
    def content_hash(self) -> str:
        """Hex sha256 of the canonical JSON of ``to_dict()`` (sorted keys, UTF-8, no spaces)."""
        cached = self._cache.get("content_hash")
        if cached is None:
            canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
            cached = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
            self._cache["content_hash"] = cached
        return cached

    # -- validation -----------------------------------------------------------------------

    def marshmallow_schema(self, *, draft: bool = False) -> Schema:
        """The compiled schema (cached). ``draft=True`` drops required and completeness checks."""
        cache_key = "schema_draft" if draft else "schema"
        schema = self._cache.get(cache_key)
        if schema is None:
            schema = _compile(self, draft=draft)
            self._cache[cache_key] = schema
        return schema

    def validate(self, data: Mapping[str, object]) -> dict[str, object]:
        """Validate a complete submission; return JSON-ready data or raise ``InvalidInput``."""
        return self._load(data, draft=False)

    def validate_partial(self, data: Mapping[str, object]) -> dict[str, object]:
        """Validate a draft: types, formats, options and upper bounds, but no required checks.

        Not checked for drafts: required fields, blank required text, ``min_length``,
        ``min_count`` and ``all_required``. Unknown keys are still refused.
        """
        return self._load(data, draft=True)

    def _load(self, data: object, *, draft: bool) -> dict[str, object]:
        if not isinstance(data, Mapping):
            raise InvalidInput({"_schema": ["表单数据必须是 JSON 对象"]})
        try:
            loaded = self.marshmallow_schema(draft=draft).load(data)
        except ValidationError as err:
            messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
            raise InvalidInput(messages) from err
        return dict(loaded)

    def routing_values(self, validated: Mapping[str, object]) -> dict[str, object]:
        """The workflow variables to set from validated data (``{variable: value}``).

        Every routed field must be present with one of its options: a missing decision would
        leave the previous round's value in the workflow, so it is an error, not a no-op.
        """
        out: dict[str, object] = {}
        errors: dict[str, list[str]] = {}
        for field_name, variable in self.routing.items():
            spec = self.get_field(field_name)
            if field_name not in validated:
                errors[field_name] = ["此项为必填项"]
                continue
            value = validated[field_name]
            allowed = [option.value for option in spec.options]
            if value not in allowed:
                errors[field_name] = [f"不是有效选项，可选值：{'、'.join(allowed)}"]
                continue
            out[variable] = value
        if errors:
            raise InvalidInput(errors)
        return out

    # -- JSON Schema ----------------------------------------------------------------------

    def json_schema(self) -> dict[str, object]:
        """The form as a JSON Schema (draft 2020-12) for clients; a fresh dict on every call."""
        schema: dict[str, object] = {
            "$schema": JSON_SCHEMA_DIALECT,
            "$id": f"urn:hazardloop:form:{self.key}:{self.version}",
            "title": self.title,
            "type": "object",
            "properties": {f.name: _field_json_schema(f) for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
            "x-form-key": self.key,
            "x-form-version": self.version,
        }
        if self.description is not None:
            schema["description"] = self.description
        if self.routing:
            schema["x-routing"] = dict(self.routing)
        return schema


# --------------------------------------------------------------------------------------------
# Parsing definitions


def parse_form_definition(data: Mapping[str, object]) -> FormDefinition:
    """Check a form definition and build it; raise ``DefinitionInvalid`` naming the element.

    ``element_id`` is the form key for form-level problems and ``"<key>.<field>"`` for a field
    (``"<key>.fields[<i>]"`` while the field has no valid name yet).
    """
    if not isinstance(data, Mapping):
        raise DefinitionInvalid(None, "表单定义必须是 JSON 对象")
    key = data.get("key")
    if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
        raise DefinitionInvalid(
            key if isinstance(key, str) and key else None,
            f"表单标识 key 必须由小写字母开头、只含小写字母/数字/下划线（最长 63 个字符），实际为 {key!r}",
        )
    unknown = sorted(str(k) for k in data if k not in _FORM_KEYS)
    if unknown:
        raise DefinitionInvalid(key, f"表单定义含有未知属性：{'、'.join(unknown)}")
    title = _read_label(data, "title", key, what="表单标题 title")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DefinitionInvalid(key, f"表单版本 version 必须是正整数，实际为 {version!r}")
    description = _read_optional_text(data, "description", key, limit=_HELP_MAX)

    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise DefinitionInvalid(key, "表单必须有字段列表 fields，且至少包含一个字段")
    parsed: list[FieldDefinition] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_fields):
        spec = _parse_field(key, index, raw)
        if spec.name in seen:
            raise DefinitionInvalid(f"{key}.{spec.name}", f"字段名 {spec.name} 重复")
        seen.add(spec.name)
        parsed.append(spec)

    deadlines = [f.name for f in parsed if f.is_deadline]
    if len(deadlines) > 1:
        raise DefinitionInvalid(
            f"{key}.{deadlines[1]}", f"一个表单只能有一个期限字段（role: deadline），已有 {deadlines[0]}"
        )

    routing = _parse_routing(key, data.get("routing", {}), {f.name: f for f in parsed})
    return FormDefinition(
        key=key,
        title=title,
        version=version,
        fields=tuple(parsed),
        routing=types.MappingProxyType(routing),
        description=description,
    )


def load_form_directory(path: Path) -> dict[str, FormDefinition]:
    """Parse every ``*.json`` in ``path`` (UTF-8); each file's ``key`` must equal its stem."""
    folder = Path(path)
    if not folder.is_dir():
        raise DefinitionInvalid(None, f"表单目录 {folder} 不存在")
    forms: dict[str, FormDefinition] = {}
    for file in sorted(folder.glob("*.json")):
        stem = file.stem
        try:
            raw = json.loads(
                file.read_text(encoding="utf-8"),
                object_pairs_hook=_reject_duplicate_keys,
                parse_constant=_reject_constant,
            )
        except UnicodeDecodeError as exc:
            raise DefinitionInvalid(stem, f"表单文件 {file.name} 不是 UTF-8 编码") from exc
        except json.JSONDecodeError as exc:
            raise DefinitionInvalid(
                stem, f"表单文件 {file.name} 不是合法 JSON：第 {exc.lineno} 行第 {exc.colno} 列，{exc.msg}"
            ) from exc
        except ValueError as exc:
            raise DefinitionInvalid(stem, f"表单文件 {file.name} 不是合法 JSON：{exc}") from exc
        form = parse_form_definition(raw)
        if form.key != stem:
            raise DefinitionInvalid(stem, f"表单标识 key（{form.key}）必须与文件名（{stem}.json）一致")
        forms[form.key] = form
    return forms


def load_shipped_forms() -> dict[str, FormDefinition]:
    """The forms shipped in ``processes/forms``."""
    return load_form_directory(FORMS_DIR)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"重复的键 {k!r}")
        out[k] = v
    return out


def _reject_constant(name: str) -> object:
    raise ValueError(f"不允许 {name}")


def _parse_field(key: str, index: int, raw: object) -> FieldDefinition:
    where = f"{key}.fields[{index}]"
    if not isinstance(raw, Mapping):
        raise DefinitionInvalid(where, "字段定义必须是 JSON 对象")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DefinitionInvalid(
            where,
            f"字段名 name 必须由小写字母开头、只含小写字母/数字/下划线（最长 63 个字符），实际为 {name!r}",
        )
    where = f"{key}.{name}"
    if name in RESERVED_VARIABLES:
        raise DefinitionInvalid(where, f"字段名 {name} 是引擎保留的流程变量名，表单不能使用")
    ftype = raw.get("type")
    if ftype not in _TYPE_ATTRS:
        raise DefinitionInvalid(where, f"未知的字段类型 {ftype!r}，允许的类型：{'、'.join(FIELD_TYPES)}")
    ftype = str(ftype)
    allowed = _COMMON_ATTRS | _TYPE_ATTRS[ftype]
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        raise DefinitionInvalid(where, f"{ftype} 类型的字段不支持属性：{'、'.join(unknown)}")

    label = _read_label(raw, "label", where, what="字段标签 label")
    required = _read_bool(raw, "required", where)
    help_text = _read_optional_text(raw, "help", where, limit=_HELP_MAX)
    attrs: dict[str, Any] = {}

    if ftype == "text":
        max_length = _read_count(raw, "max_length", where, minimum=1, maximum=_TEXT_MAX_LIMIT)
        min_length = _read_count(raw, "min_length", where, minimum=0, maximum=_TEXT_MAX_LIMIT)
        if min_length is not None and min_length > (max_length or _TEXT_MAX_DEFAULT):
            raise DefinitionInvalid(where, "最小长度 min_length 不能大于最大长度 max_length")
        attrs.update(
            max_length=max_length, min_length=min_length, multiline=_read_bool(raw, "multiline", where)
        )
    elif ftype == "number":
        integer = _read_bool(raw, "integer", where)
        low = _read_number(raw, "min", where, integer=integer)
        high = _read_number(raw, "max", where, integer=integer)
        _check_bounds(low, high, where)
        attrs.update(min_value=low, max_value=high, integer=integer)
    elif ftype == "money":
        low_money = _read_money(raw, "min", where)
        high_money = _read_money(raw, "max", where)
        _check_bounds(low_money, high_money, where)
        attrs.update(min_value=low_money, max_value=high_money)
    elif ftype == "date":
        role = raw.get("role")
        if role is not None:
            if role not in _ROLES:
                raise DefinitionInvalid(where, f"未知的字段角色 role {role!r}，只允许 deadline")
            if not required:
                raise DefinitionInvalid(where, "期限字段（role: deadline）必须是必填项")
        attrs.update(role=role)
    elif ftype == "choice":
        attrs.update(
            options=_read_options(raw, "options", where, what="选项 options"),
            multiple=_read_bool(raw, "multiple", where),
        )
    elif ftype in ("photo", "file"):
        if ftype == "photo":
            phase = raw.get("phase")
            if phase is not None and phase not in _PHASES:
                raise DefinitionInvalid(
                    where, f"照片阶段 phase 只能是 before（整改前）或 after（整改后），实际为 {phase!r}"
                )
            attrs.update(phase=phase)
        min_count = _read_count(raw, "min_count", where, minimum=0, maximum=_ATTACHMENTS_MAX_LIMIT)
        max_count = _read_count(raw, "max_count", where, minimum=1, maximum=_ATTACHMENTS_MAX_LIMIT)
        if min_count is not None and min_count > (max_count or _ATTACHMENTS_MAX_DEFAULT):
            raise DefinitionInvalid(where, "最少数量 min_count 不能大于最多数量 max_count")
        attrs.update(min_count=min_count, max_count=max_count)
    elif ftype == "checklist":
        attrs.update(
            items=_read_options(raw, "items", where, what="检查项 items"),
            all_required=_read_bool(raw, "all_required", where),
        )
    return FieldDefinition(name=name, label=label, type=ftype, required=required, help=help_text, **attrs)


def _parse_routing(key: str, raw: object, by_name: Mapping[str, FieldDefinition]) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise DefinitionInvalid(key, "路由 routing 必须是 JSON 对象（字段名 → 流程变量名）")
    routing: dict[str, str] = {}
    targets: dict[str, str] = {}
    for field_name, variable in raw.items():
        where = f"{key}.{field_name}"
        if not isinstance(variable, str):
            raise DefinitionInvalid(where, f"路由目标必须是流程变量名，实际为 {variable!r}")
        if variable in RESERVED_VARIABLES:
            raise DefinitionInvalid(
                where, f"路由目标 {variable} 是引擎保留的流程变量（期限、等级等只能由引擎设置），表单不能写入"
            )
        if variable not in ROUTABLE_VARIABLES:
            raise DefinitionInvalid(
                where,
                f"路由目标 {variable!r} 不是允许的流程变量，只允许：{'、'.join(sorted(ROUTABLE_VARIABLES))}",
            )
        spec = by_name.get(field_name)
        if spec is None:
            raise DefinitionInvalid(where, f"路由引用了不存在的字段 {field_name!r}")
        if spec.type != "choice" or spec.multiple:
            raise DefinitionInvalid(where, "只有单选（choice，非 multiple）字段可以路由到流程变量")
        if not spec.required:
            raise DefinitionInvalid(where, "路由到流程变量的字段必须是必填项")
        if variable in targets:
            raise DefinitionInvalid(
                where, f"流程变量 {variable} 已由字段 {targets[variable]} 设置，不能重复路由"
            )
        targets[variable] = field_name
        routing[field_name] = variable
    return routing


def _read_label(raw: Mapping[str, object], attr: str, where: str, *, what: str) -> str:
    value = raw.get(attr)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionInvalid(where, f"{what} 必须是非空文本")
    if len(value) > _LABEL_MAX:
        raise DefinitionInvalid(where, f"{what} 不能超过 {_LABEL_MAX} 个字符")
    return value


def _read_optional_text(raw: Mapping[str, object], attr: str, where: str, *, limit: int) -> str | None:
    value = raw.get(attr)
    if value is None:
        return None
    if not isinstance(value, str):
        raise DefinitionInvalid(where, f"{attr} 必须是文本")
    if len(value) > limit:
        raise DefinitionInvalid(where, f"{attr} 不能超过 {limit} 个字符")
    return value


def _read_bool(raw: Mapping[str, object], attr: str, where: str) -> bool:
    value = raw.get(attr, False)
    if not isinstance(value, bool):
        raise DefinitionInvalid(where, f"{attr} 必须是 true 或 false，实际为 {value!r}")
    return value


def _read_count(
    raw: Mapping[str, object], attr: str, where: str, *, minimum: int, maximum: int
) -> int | None:
    value = raw.get(attr)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise DefinitionInvalid(where, f"{attr} 必须是 {minimum} 到 {maximum} 之间的整数，实际为 {value!r}")
    return value


def _read_number(raw: Mapping[str, object], attr: str, where: str, *, integer: bool) -> int | float | None:
    value = raw.get(attr)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DefinitionInvalid(where, f"{attr} 必须是数字，实际为 {value!r}")
    if integer and not float(value).is_integer():
        raise DefinitionInvalid(where, f"整数字段的 {attr} 必须是整数，实际为 {value!r}")
    return value


def _read_money(raw: Mapping[str, object], attr: str, where: str) -> decimal.Decimal | None:
    value = raw.get(attr)
    if value is None:
        return None
    try:
        return _to_money(value)
    except ValueError as exc:
        raise DefinitionInvalid(where, f"{attr} 必须是金额（最多两位小数），{exc}") from None


def _check_bounds(low: object, high: object, where: str) -> None:
    if low is not None and high is not None and low > high:  # type: ignore[operator]
        raise DefinitionInvalid(where, f"最小值 min（{low}）不能大于最大值 max（{high}）")


def _read_options(raw: Mapping[str, object], attr: str, where: str, *, what: str) -> tuple[Option, ...]:
    value = raw.get(attr)
    if not isinstance(value, list) or not value:
        raise DefinitionInvalid(where, f"{what} 必须是非空列表")
    if len(value) > _OPTIONS_MAX:
        raise DefinitionInvalid(where, f"{what} 不能超过 {_OPTIONS_MAX} 项")
    options: list[Option] = []
    seen: set[str] = set()
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping) or set(entry) != {"value", "label"}:
            raise DefinitionInvalid(where, f"{what} 第 {index + 1} 项必须是恰好含 value 和 label 的对象")
        option_value, option_label = entry["value"], entry["label"]
        if not isinstance(option_value, str) or not _OPTION_VALUE_RE.fullmatch(option_value):
            raise DefinitionInvalid(
                where, f"{what} 第 {index + 1} 项的 value 只能含小写字母/数字/下划线，实际为 {option_value!r}"
            )
        if not isinstance(option_label, str) or not option_label.strip() or len(option_label) > _LABEL_MAX:
            raise DefinitionInvalid(where, f"{what} 第 {index + 1} 项的 label 必须是非空文本")
        if option_value in seen:
            raise DefinitionInvalid(where, f"{what} 的 value {option_value} 重复")
        seen.add(option_value)
        options.append(Option(option_value, option_label))
    return tuple(options)


# --------------------------------------------------------------------------------------------
# Values


def _to_money(value: object) -> decimal.Decimal:
    """Parse a money amount (int, finite float, Decimal or decimal string); at most two places."""
    if isinstance(value, bool):
        raise ValueError("应为金额数字")
    if isinstance(value, int):
        amount = decimal.Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("应为有限的数字")
        amount = decimal.Decimal(repr(value))
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError("应为有限的数字")
        amount = value
    elif isinstance(value, str) and _NUMBER_RE.fullmatch(value):
        amount = decimal.Decimal(value)
    else:
        raise ValueError("应为金额数字，例如 12000.00")
    if abs(amount) > _MONEY_LIMIT:
        raise ValueError(f"金额不能超过 {_MONEY_LIMIT}")
    quantized = amount.quantize(_CENT)
    if quantized != amount:
        raise ValueError("金额最多保留两位小数")
    return quantized


def _money_str(value: decimal.Decimal) -> str:
    return format(value.quantize(_CENT), "f")


# --------------------------------------------------------------------------------------------
# Compiling to marshmallow

_COMMON_MESSAGES: Final = {
    "required": "此项为必填项",
    "null": "此项不能为空（可选项请直接省略）",
    "validator_failed": "取值无效",
}


class _FormSchema(Schema):
    """Base of every compiled form schema: Chinese schema-level messages, JSON-ready output."""

    error_messages = {"unknown": "未知字段，表单中没有此项", "type": "表单数据必须是 JSON 对象"}

    @post_load
    def _plain(self, data: dict[str, Any], **kwargs: object) -> dict[str, Any]:
        return {name: _plain_value(value) for name, value in data.items()}


def _plain_value(value: object) -> object:
    if isinstance(value, decimal.Decimal):
        return _money_str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class _Text(ma.String):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "应为文本", "invalid_utf8": "应为 UTF-8 文本"}


class _Number(ma.Field):
    default_error_messages = {
        **_COMMON_MESSAGES,
        "invalid": "应为数字",
        "not_integer": "应为整数",
        "too_large": "数值过大",
    }

    def __init__(self, *, integer: bool, **kwargs: Any) -> None:
        self.integer = integer
        super().__init__(**kwargs)

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> int | float:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number: int | float
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise self.make_error("invalid")
            number = value
        elif isinstance(value, str) and _NUMBER_RE.fullmatch(value):
            number = int(value) if "." not in value else float(value)
        else:
            raise self.make_error("invalid")
        if abs(number) > _NUMBER_LIMIT:
            raise self.make_error("too_large")
        if self.integer:
            if isinstance(number, float):
                if not number.is_integer():
                    raise self.make_error("not_integer")
                number = int(number)
            return number
        return number


class _Money(ma.Field):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "{reason}"}

    def _deserialize(
        self, value: object, attr: str | None, data: object, **kwargs: object
    ) -> decimal.Decimal:
        try:
            return _to_money(value)
        except ValueError as exc:
            raise self.make_error("invalid", reason=str(exc)) from None


class _Date(ma.Field):
    default_error_messages = {
        **_COMMON_MESSAGES,
        "invalid": "应为 YYYY-MM-DD 格式的日期",
        "impossible": "日期不存在：{input}",
    }

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self.make_error("invalid")
        if isinstance(value, dt.date):
            return value
        if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
            raise self.make_error("invalid")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise self.make_error("impossible", input=value) from None


class _AttachmentId(ma.Field):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "附件编号应为正整数"}

    def _deserialize(self, value: object, attr: str | None, data: object, **kwargs: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.make_error("invalid")
        return value


class _List(ma.List):
    default_error_messages = {**_COMMON_MESSAGES, "invalid": "应为列表"}


Validator = Callable[[Any], None]


def _fail(message: str) -> ValidationError:
    return ValidationError(message)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise _fail("此项不能为空白")


def _length(low: int | None, high: int | None) -> Validator:
    def check(value: str) -> None:
        if low is not None and len(value) < low:
            raise _fail(f"至少 {low} 个字符")
        if high is not None and len(value) > high:
            raise _fail(f"不能超过 {high} 个字符")

    return check


def _range(low: object, high: object) -> Validator:
    def check(value: Any) -> None:
        if low is not None and value < low:
            raise _fail(f"不能小于 {_show(low)}")
        if high is not None and value > high:
            raise _fail(f"不能大于 {_show(high)}")

    return check


def _show(bound: object) -> str:
    return _money_str(bound) if isinstance(bound, decimal.Decimal) else str(bound)


def _one_of(options: Iterable[Option]) -> Validator:
    allowed = [option.value for option in options]

    def check(value: str) -> None:
        if value not in allowed:
            raise _fail(f"不是有效选项，可选值：{'、'.join(allowed)}")

    return check


def _unique(value: list[Any]) -> None:
    if len(set(value)) != len(value):
        raise _fail("不能有重复项")


def _count(low: int, high: int) -> Validator:
    def check(value: list[Any]) -> None:
        if len(value) < low:
            raise _fail(f"至少需要 {low} 项")
        if len(value) > high:
            raise _fail(f"最多 {high} 项")

    return check


def _all_of(items: Iterable[Option]) -> Validator:
    expected = {item.value: item.label for item in items}

    def check(value: list[str]) -> None:
        missing = [label for key, label in expected.items() if key not in value]
        if missing:
            raise _fail(f"以下检查项必须全部勾选：{'、'.join(missing)}")

    return check


def _compile(form: FormDefinition, *, draft: bool) -> Schema:
    declared = {spec.name: _make_field(spec, draft=draft) for spec in form.fields}
    suffix = "Draft" if draft else ""
    schema_class = _FormSchema.from_dict(declared, name=f"Form_{form.key}_v{form.version}{suffix}")
    return schema_class()


def _make_field(spec: FieldDefinition, *, draft: bool) -> ma.Field:
    """One marshmallow field; ``draft`` keeps type/option/upper-bound checks only."""
    required = spec.required and not draft
    validators: list[Validator] = []
    metadata = {"label": spec.label, "field_type": spec.type}
    kwargs: dict[str, Any] = {"required": required, "metadata": metadata}

    if spec.type == "text":
        if required:
            validators.append(_not_blank)
        validators.append(_length(None if draft else spec.min_length, spec.max_length or _TEXT_MAX_DEFAULT))
        return _Text(validate=validators, **kwargs)
    if spec.type in ("person", "signature"):
        limit = _PERSON_MAX if spec.type == "person" else _SIGNATURE_MAX
        return _Text(validate=[_not_blank, _length(None, limit)], **kwargs)
    if spec.type == "number":
        validators.append(_range(spec.min_value, spec.max_value))
        return _Number(integer=spec.integer, validate=validators, **kwargs)
    if spec.type == "money":
        low = spec.min_value if spec.min_value is not None else decimal.Decimal("0.00")
        validators.append(_range(low, spec.max_value))
        return _Money(validate=validators, **kwargs)
    if spec.type == "date":
        return _Date(**kwargs)
    if spec.type == "choice":
        if not spec.multiple:
            return _Text(validate=[_one_of(spec.options)], **kwargs)
        inner = _Text(validate=[_one_of(spec.options)])
        low_count = 1 if required else 0
        return _List(inner, validate=[_unique, _count(low_count, len(spec.options))], **kwargs)
    if spec.type in ("photo", "file"):
        low_count = 0 if draft else max(spec.min_count or 0, 1 if required else 0)
        high_count = spec.max_count or _ATTACHMENTS_MAX_DEFAULT
        return _List(_AttachmentId(), validate=[_unique, _count(low_count, high_count)], **kwargs)
    if spec.type == "checklist":
        inner = _Text(validate=[_one_of(spec.items)])
        validators = [_unique]
        if not draft:
            if spec.all_required:
                validators.append(_all_of(spec.items))
            elif required:
                validators.append(_count(1, len(spec.items)))
        return _List(inner, validate=validators, **kwargs)
    raise AssertionError(f"unhandled field type {spec.type}")  # parse_form_definition forbids it


# --------------------------------------------------------------------------------------------
# JSON Schema


def _field_json_schema(spec: FieldDefinition) -> dict[str, object]:
    out: dict[str, object] = {"title": spec.label}
    if spec.help is not None:
        out["description"] = spec.help
    non_blank = {"pattern": r"\S"}

    if spec.type == "text":
        out["type"] = "string"
        out["maxLength"] = spec.max_length or _TEXT_MAX_DEFAULT
        low = max(spec.min_length or 0, 1 if spec.required else 0)
        if low:
            out["minLength"] = low
        if spec.required:
            out.update(non_blank)
        if spec.multiline:
            out["x-multiline"] = True
    elif spec.type in ("person", "signature"):
        out.update(
            type="string", minLength=1, maxLength=_PERSON_MAX if spec.type == "person" else _SIGNATURE_MAX
        )
        out.update(non_blank)
    elif spec.type == "number":
        out["type"] = "integer" if spec.integer else "number"
        if spec.min_value is not None:
            out["minimum"] = spec.min_value
        if spec.max_value is not None:
            out["maximum"] = spec.max_value
    elif spec.type == "money":
        # A number or a decimal string; ``pattern`` applies to strings, ``minimum`` to numbers.
        low = spec.min_value if spec.min_value is not None else decimal.Decimal("0.00")
        out.update(type=["string", "number"], pattern=_MONEY_PATTERN, minimum=_json_number(low))
        if spec.max_value is not None:
            out["maximum"] = _json_number(spec.max_value)
        out["x-decimal-places"] = 2
    elif spec.type == "date":
        out.update(type="string", format="date")
        if spec.role is not None:
            out["x-role"] = spec.role
    elif spec.type == "choice":
        values = [option.value for option in spec.options]
        labelled = [option.to_dict() for option in spec.options]
        if spec.multiple:
            out.update(type="array", items={"type": "string", "enum": values}, uniqueItems=True)
            if spec.required:
                out["minItems"] = 1
        else:
            out.update(type="string", enum=values)
        out["x-options"] = labelled
    elif spec.type in ("photo", "file"):
        out.update(type="array", items={"type": "integer", "minimum": 1}, uniqueItems=True)
        low_count = max(spec.min_count or 0, 1 if spec.required else 0)
        if low_count:
            out["minItems"] = low_count
        out["maxItems"] = spec.max_count or _ATTACHMENTS_MAX_DEFAULT
        if spec.phase is not None:
            out["x-phase"] = spec.phase
    elif spec.type == "checklist":
        values = [item.value for item in spec.items]
        out.update(type="array", items={"type": "string", "enum": values}, uniqueItems=True)
        if spec.all_required:
            out["minItems"] = len(values)
            out["x-all-required"] = True
        elif spec.required:
            out["minItems"] = 1
        out["x-items"] = [item.to_dict() for item in spec.items]
    out["x-field-type"] = spec.type
    return out


def _json_number(value: int | float | decimal.Decimal) -> int | float:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
