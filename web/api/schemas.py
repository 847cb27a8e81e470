"""Request and response shapes of ``/api/v1`` (marshmallow 4; STYLE rule 11).

Request schemas (``*Request``, ``*Query``) reject unknown keys (marshmallow's default), check types
strictly (``"5"`` is not an integer in a JSON body; in a query string it is) and load plain data
for the engine. Response schemas only dump. Field messages are Chinese, like the engine's.
Schemas never query the database.

Datetimes are ISO 8601 with an offset (``2023-05-01T09:30:00+08:00``); a naive datetime is 422.
Responses give them in UTC (``…+00:00``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields
from marshmallow import validate

from engine.definitions import MAX_BPMN_BYTES
from engine.design import BINDABLE_GRADES
from engine.design import MAX_DRAFT_BYTES
from engine.ledger import MAX_PER_PAGE
from engine.ledger import SORTS
from engine.models import Grade
from engine.models import HandlingType
from engine.models import HazardSource
from engine.models import HazardStatus
from engine.models import NoticeStatus
from engine.models import Role
from engine.models import WorkItemState
from engine.notices import NOTICE_ACTIONS
from engine.policy import NOTICE_KINDS
from engine.policy import RECIPIENTS
from engine.tasklist import TASK_SCOPES

from . import MAX_ID

#: datetimes outside these years are refused (they cannot be a hazard's dates, and near the
#: ends of ``datetime``'s range converting the offset to UTC overflows)
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200
MAX_PAGE = 100_000
PHASES = ("before", "after", "document")
#: what a caller may do with a task right now (``GET /tasks/{id}``: ``actions``)
TASK_ACTIONS = ("claim", "release", "complete", "attach")

_COMMON = {
    "required": "此项为必填项",
    "null": "此项不能为 null",
    "validator_failed": "取值无效",
}


def _one_of(choices: Any) -> validate.OneOf:
    values = [str(c) for c in choices]
    return validate.OneOf(values, error=f"必须是 {', '.join(values)} 之一")


def _length(low: int | None, high: int) -> validate.Length:
    if low:
        return validate.Length(min=low, max=high, error=f"长度必须在 {low}–{high} 个字符之间")
    return validate.Length(max=high, error=f"不能超过 {high} 个字符")


def _range(low: int, high: int) -> validate.Range:
    return validate.Range(min=low, max=high, error=f"必须在 {low}–{high} 之间")


class _Text(fields.String):
    default_error_messages = {**_COMMON, "invalid": "应为文本", "invalid_utf8": "应为 UTF-8 文本"}


class _Int(fields.Integer):
    """JSON bodies: strict (``"5"`` and ``5.0`` are refused); query strings: ``strict=False``."""

    default_error_messages = {**_COMMON, "invalid": "应为整数", "too_large": "数值过大"}

    def __init__(self, *, strict: bool = True, **kwargs: Any) -> None:
        super().__init__(strict=strict, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), 3.5 is not.
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        result: int = super()._deserialize(value, attr, data, **kwargs)
        return result


class _Bool(fields.Boolean):
    default_error_messages = {**_COMMON, "invalid": "应为布尔值（true 或 false）"}


class _When(fields.AwareDateTime):
    """An aware ISO 8601 datetime; naive input is refused, never guessed."""

    default_error_messages = {
        **_COMMON,
        "invalid": "应为 ISO 8601 时间，例如 2023-05-01T09:30:00+08:00",
        "invalid_awareness": "必须带时区偏移，例如 2023-05-01T09:30:00+08:00",
        "format": "无法格式化为时间",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"] = {"example": "2023-05-01T09:30:00+08:00", **kwargs["metadata"]}
        super().__init__(format="iso", default_timezone=None, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        parsed: dt.datetime = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
            raise ValidationError(f"年份必须在 {EARLIEST_YEAR}–{LATEST_YEAR} 之间")
        return parsed


class _Instant(fields.DateTime):
    """A response datetime, always given in UTC (``…+00:00``) whatever zone the object holds."""

    def _serialize(self, value: dt.datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        result: str | None = super()._serialize(value, attr, obj, **kwargs)
        return result


class _List(fields.List):
    default_error_messages = {**_COMMON, "invalid": "应为列表"}


class _Object(fields.Dict):
    """A JSON object passed on whole (a form or policy document), at most ``max_bytes`` as UTF-8 JSON."""

    default_error_messages = {**_COMMON, "invalid": "应为 JSON 对象"}

    def __init__(self, *, max_bytes: int, **kwargs: Any) -> None:
        super().__init__(keys=fields.String(), **kwargs)
        self.max_bytes = max_bytes

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        result: dict[str, Any] = super()._deserialize(value, attr, data, **kwargs)
        size = len(json.dumps(result, ensure_ascii=False).encode("utf-8"))
        if size > self.max_bytes:
            raise ValidationError(f"内容过大（{size} 字节，上限 {self.max_bytes}）")
        return result


class _Utf8Size(validate.Validator):
    """Text no longer than ``limit`` bytes once encoded as UTF-8 (what is stored and hashed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, value: str) -> str:
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > self.limit:
            raise ValidationError(f"超过 {self.limit // (1024 * 1024)} MB 上限（{size} 字节）")
        return value


def _id(**kwargs: Any) -> _Int:
    return _Int(validate=_range(1, MAX_ID), **kwargs)


class ApiSchema(Schema):
    """Base of request schemas: Chinese schema-level messages; unknown keys are refused."""

    error_messages = {"unknown": "未知字段", "type": "应为 JSON 对象"}


class _PageQuery(ApiSchema):
    page = _Int(strict=False, load_default=1, validate=_range(1, MAX_PAGE), metadata={"description": "页码"})
    per_page = _Int(
        strict=False,
        load_default=20,
        validate=_range(1, MAX_PER_PAGE),
        metadata={"description": f"每页条数（最多 {MAX_PER_PAGE}）"},
    )


# --- errors -----------------------------------------------------------------------------------------


class ErrorSchema(Schema):
    code = fields.String(
        required=True,
        metadata={"description": "机器可读的错误码，如 not_found、invalid_input", "example": "invalid_input"},
    )
    message = fields.String(required=True, metadata={"description": "给人看的说明（中文或英文）"})
    errors = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={"description": "字段错误：字段名（嵌套用 . 连接）→ 消息列表；没有时为空对象"},
    )


# --- tokens -----------------------------------------------------------------------------------------


class TokenRequestSchema(ApiSchema):
    username = _Text(required=True, validate=_length(1, 64))
    password = _Text(required=True, validate=_length(1, 1024), metadata={"format": "password"})
    name = _Text(load_default="api", validate=_length(1, 100), metadata={"description": "令牌用途，便于识别"})
    ttl_hours = _Int(
        load_default=24, validate=_range(1, 24 * 90), metadata={"description": "有效期（小时，1–2160）"}
    )


class TokenSchema(Schema):
    id = fields.Integer(metadata={"description": "令牌编号（吊销时使用）"})
    token = fields.String(metadata={"description": "令牌本身，只显示这一次"})
    token_type = fields.String(metadata={"example": "Bearer"})
    name = fields.String()
    expires_at = _Instant()


# --- hazards ----------------------------------------------------------------------------------------


class HazardCreateRequestSchema(ApiSchema):
    """登记隐患. Past ``discovered_at`` and ``deadline`` are accepted (存量隐患补录)."""

    title = _Text(required=True, validate=_length(1, 200))
    description = _Text(required=True, validate=_length(1, 10000))
    location = _Text(required=True, validate=_length(1, 300), metadata={"description": "场所/部位"})
    enterprise_id = _id(required=True)
    sector_code = _Text(validate=_length(1, 32), metadata={"description": "行业，默认取企业所属行业"})
    lead_department_id = _id(metadata={"description": "牵头部门（仅监管部门/安委办可指定）"})
    co_department_ids = _List(_id(), validate=validate.Length(max=20, error="最多 20 个部门"))
    source = _Text(required=True, validate=_one_of(HazardSource))
    grade = _Text(required=True, validate=_one_of(Grade))
    determination_basis = _Text(validate=_length(None, 2000), metadata={"description": "判定依据"})
    handling_type = _Text(
        validate=_one_of(HandlingType), metadata={"description": "处置方式；突出、重大隐患总是 deadline"}
    )
    discovered_at = _When(required=True, metadata={"description": "发现时间（可早于今天，用于存量补录）"})
    discovered_by = _Text(validate=_length(1, 100))
    deadline = _When(allow_none=True, metadata={"description": "整改期限（可早于今天，用于存量补录）"})
    stop_production = _Bool()
    interim_measures = _Text(validate=_length(None, 10000), metadata={"description": "整改期间防范措施"})
    listed_level = _Int(validate=_range(1, 4), metadata={"description": "挂牌督办级别"})
    suppress_escalation_until = _When(
        allow_none=True, metadata={"description": "补录的存量隐患：在此时间之前暂缓发出督办文书（升级措施）"}
    )


class HazardQuerySchema(_PageQuery):
    """The ledger filters (``engine.ledger.LedgerFilter``) and paging."""

    region_code = _Text(validate=_length(1, 32), metadata={"description": "地区代码（含下级地区）"})
    sector_code = _Text(validate=_length(1, 32))
    grade = _Text(validate=_one_of(Grade))
    status = _Text(validate=_one_of(HazardStatus))
    source = _Text(validate=_one_of(HazardSource))
    overdue = _Bool()
    escalation_level_min = _Int(strict=False, validate=_range(0, 6))
    enterprise_id = _id(strict=False)
    discovered_from = _When()
    discovered_to = _When()
    text = _Text(validate=_length(1, 100), metadata={"description": "在标题、编号、部位中查找"})
    sort = _Text(load_default="discovered_at", validate=_one_of(SORTS))
    descending = _Bool(load_default=True)


def _name_of(attr: str) -> Any:
    def get(obj: Any) -> str | None:
        related = getattr(obj, attr)
        return related.name if related is not None else None

    return get


class HazardSummarySchema(Schema):
    id = fields.Integer()
    number = fields.String(metadata={"description": "隐患编号"})
    title = fields.String()
    location = fields.String()
    enterprise_id = fields.Integer()
    enterprise_name = fields.Function(_name_of("enterprise"), metadata={"type": "string"})
    region_code = fields.Function(lambda h: h.region.code, metadata={"type": "string"})
    region_name = fields.Function(_name_of("region"), metadata={"type": "string"})
    sector_code = fields.String()
    lead_department_id = fields.Integer(allow_none=True)
    lead_department_name = fields.Function(
        _name_of("lead_department"), allow_none=True, metadata={"type": "string"}
    )
    source = fields.String(validate=_one_of(HazardSource))
    grade = fields.String(validate=_one_of(Grade))
    handling_type = fields.String(validate=_one_of(HandlingType))
    status = fields.String(validate=_one_of(HazardStatus))
    deadline = _Instant(allow_none=True)
    overdue = fields.Boolean()
    escalation_level = fields.Integer()
    listed_level = fields.Integer(allow_none=True)
    discovered_at = _Instant()
    created_at = _Instant()
    closed_at = _Instant(allow_none=True)


class HazardSchema(HazardSummarySchema):
    description = fields.String()
    determination_basis = fields.String(allow_none=True)
    discovered_by = fields.String(allow_none=True)
    responsible_person = fields.String(allow_none=True)
    measures = fields.String(allow_none=True)
    funds = fields.Decimal(as_string=True, allow_none=True, metadata={"type": "string", "format": "decimal"})
    contingency_plan = fields.String(allow_none=True)
    interim_measures = fields.String(allow_none=True)
    stop_production = fields.Boolean()
    failed_verifications = fields.Integer()
    rectified_late = fields.Boolean()
    progress_percent = fields.Integer(allow_none=True)
    last_progress_at = _Instant(allow_none=True)
    updated_at = _Instant()
    voided_at = _Instant(allow_none=True)
    void_reason = fields.String(allow_none=True)


class HazardPageSchema(Schema):
    items = fields.List(fields.Nested(HazardSummarySchema))
    total = fields.Integer(metadata={"description": "符合条件的总数"})
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class TimelineEventSchema(Schema):
    id = fields.Integer()
    seq = fields.Integer(metadata={"description": "流程实例内的序号"})
    action = fields.String(metadata={"example": "task_completed"})
    at = _Instant()
    actor_id = fields.Integer(allow_none=True)
    task_key = fields.String(allow_none=True)
    payload = fields.Dict()


class AttachmentSchema(Schema):
    id = fields.Integer(metadata={"description": "在任务表单的照片/文件字段中引用此编号"})
    hazard_id = fields.Integer()
    work_item_id = fields.Integer(allow_none=True)
    phase = fields.String(validate=_one_of(PHASES))
    filename = fields.String()
    mime_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    uploaded_by_id = fields.Integer(allow_none=True)
    uploaded_at = _Instant()
    exif_taken_at = _Instant(allow_none=True, metadata={"description": "照片 EXIF 中的拍摄时间"})
    gps_lat = fields.Float(allow_none=True, metadata={"description": "照片 EXIF 中的纬度"})
    gps_lon = fields.Float(allow_none=True, metadata={"description": "照片 EXIF 中的经度"})


# --- tasks ------------------------------------------------------------------------------------------


class TaskSchema(Schema):
    id = fields.Integer()
    hazard_id = fields.Integer()
    hazard_number = fields.Function(lambda w: w.hazard.number, metadata={"type": "string"})
    hazard_title = fields.Function(lambda w: w.hazard.title, metadata={"type": "string"})
    hazard_status = fields.Function(
        lambda w: w.hazard.status, metadata={"type": "string", "enum": [s.value for s in HazardStatus]}
    )
    task_key = fields.String(metadata={"description": "BPMN 任务标识", "example": "rectify"})
    title = fields.String()
    candidate_role = fields.String(validate=_one_of(Role))
    org_scope = fields.String(metadata={"example": "enterprise"})
    form_key = fields.String()
    state = fields.String(validate=_one_of(WorkItemState))
    delegable = fields.Boolean()
    assignee_id = fields.Integer(allow_none=True)
    claimed_at = _Instant(allow_none=True)
    due_at = _Instant(allow_none=True)
    created_at = _Instant()
    completed_at = _Instant(allow_none=True)
    completed_by_id = fields.Integer(allow_none=True)
    completed_late = fields.Boolean()


class TaskQuerySchema(_PageQuery):
    scope = _Text(
        load_default="mine",
        validate=_one_of(TASK_SCOPES),
        metadata={"description": "mine：我已认领的；group：我所在岗位可认领的（未认领）"},
    )


class TaskPageSchema(Schema):
    items = fields.List(fields.Nested(TaskSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


def _task_actions(detail: Any) -> list[str]:
    """From ``engine.tasklist.TaskDetail``: what the viewer may do (the engine checks again)."""
    flags = {
        "claim": detail.can_claim,
        "release": detail.can_release,
        "complete": detail.can_complete,
        "attach": detail.can_complete,
    }
    return [name for name in TASK_ACTIONS if flags[name]]


def _task_data(detail: Any) -> dict[str, Any]:
    submission = detail.submission or detail.draft
    return dict(submission.data) if submission is not None else {}


class TaskDetailSchema(Schema):
    """Dumped from ``{"detail": engine.tasklist.TaskDetail, "form": <JSON Schema>}``."""

    task = fields.Nested(TaskSchema, attribute="detail.item")
    form = fields.Dict(
        metadata={"description": "表单的 JSON Schema（draft 2020-12）；办结（complete）的请求体按它填写"}
    )
    data = fields.Function(
        lambda d: _task_data(d["detail"]),
        metadata={"type": "object", "description": "已办结的表单数据，或调用者自己的草稿；没有时为空对象"},
    )
    draft = fields.Function(
        lambda d: d["detail"].submission is None and d["detail"].draft is not None,
        metadata={"type": "boolean", "description": "data 是否为草稿"},
    )
    actions = fields.Function(
        lambda d: _task_actions(d["detail"]),
        metadata={
            "type": "array",
            "items": {"type": "string", "enum": list(TASK_ACTIONS)},
            "description": "调用者现在可以执行的操作：claim、release、complete、attach（上传附件）",
        },
    )


class AttachmentUploadSchema(ApiSchema):
    """The non-file fields of ``POST /tasks/{id}/attachments`` (multipart/form-data)."""

    phase = _Text(
        required=True,
        validate=_one_of(PHASES),
        metadata={"description": "before：整改前；after：整改后；document：文件资料"},
    )


class HazardDetailSchema(HazardSchema):
    timeline = fields.List(
        fields.Nested(TimelineEventSchema), metadata={"description": "事件记录（按时间顺序）"}
    )
    tasks = fields.List(fields.Nested(TaskSchema), metadata={"description": "当前待办任务"})
    attachments = fields.List(fields.Nested(AttachmentSchema))


# --- definitions ------------------------------------------------------------------------------------


class DefinitionBindingSchema(Schema):
    grade = fields.String(
        validate=_one_of([*Grade, "supervision"]),
        metadata={"description": "隐患等级；supervision 为挂牌督办流程（processes/supervision.bpmn）"},
    )
    sector_code = fields.String(allow_none=True, metadata={"description": "为空表示该等级的默认流程"})
    pinned = fields.Function(
        lambda b: b.definition_version_id is not None,
        metadata={"type": "boolean", "description": "是否固定到此版本（否则随最新版本）"},
    )


class DefinitionSchema(Schema):
    id = fields.Integer(attribute="version.id")
    key = fields.String(attribute="version.process_key", metadata={"example": "hazard_general"})
    name = fields.String(attribute="version.name")
    version = fields.Integer(attribute="version.version")
    hash = fields.String(attribute="version.content_hash", metadata={"description": "BPMN 文件的 sha256"})
    source_filename = fields.String(attribute="version.source_filename")
    deployed_at = _Instant(attribute="version.deployed_at")
    note = fields.String(attribute="version.note", allow_none=True)
    latest = fields.Boolean(metadata={"description": "是否为该流程的最新版本"})
    bound_grades = fields.Function(
        lambda d: sorted({b.grade for b in d.bindings}),
        metadata={
            "type": "array",
            "items": {"type": "string"},
            "description": "新登记的这些等级的隐患使用此版本",
        },
    )
    bindings = fields.List(fields.Nested(DefinitionBindingSchema))


class DefinitionListSchema(Schema):
    items = fields.List(fields.Nested(DefinitionSchema))
    total = fields.Integer()


class VersionQuerySchema(ApiSchema):
    key = _Text(
        required=True,
        validate=_length(1, 100),
        metadata={"description": "流程标识", "example": "hazard_general"},
    )


class VersionPairQuerySchema(VersionQuerySchema):
    from_version = _Int(
        strict=False,
        required=True,
        data_key="from",
        validate=_range(1, MAX_ID),
        metadata={"description": "源版本号"},
    )
    to_version = _Int(
        strict=False,
        required=True,
        data_key="to",
        validate=_range(1, MAX_ID),
        metadata={"description": "目标版本号"},
    )


class VersionSchema(Schema):
    id = fields.Integer()
    key = fields.String(attribute="process_key")
    name = fields.String()
    version = fields.Integer()
    hash = fields.String(attribute="content_hash", metadata={"description": "BPMN 文件的 sha256"})
    source_filename = fields.String()
    deployed_at = _Instant()
    deployed_by = fields.String(allow_none=True, metadata={"description": "发布人用户名"})
    note = fields.String(allow_none=True, metadata={"description": "版本说明"})
    running = fields.Integer(metadata={"description": "仍在此版本上运行的实例数"})
    bound_as = fields.List(
        fields.String(),
        metadata={"description": "以此版本开始新隐患的绑定：等级[/行业][@地区代码]"},
    )


class VersionListSchema(Schema):
    items = fields.List(fields.Nested(VersionSchema))
    total = fields.Integer()


class DiffElementSchema(Schema):
    element_id = fields.String()
    type = fields.String(metadata={"description": "BPMN 元素类型（事件带事件定义，如 boundaryEvent:timer）"})
    name = fields.String(allow_none=True)


class ElementChangeSchema(DiffElementSchema):
    fields_ = fields.Function(
        lambda change: {key: {"old": old, "new": new} for key, (old, new) in change.fields.items()},
        data_key="fields",
        metadata={
            "type": "object",
            "additionalProperties": {"type": "object", "properties": {"old": {}, "new": {}}},
            "description": "改变的属性：name、type、properties、timer、condition、handler、source、target 等",
        },
    )


class VersionDiffSchema(Schema):
    key = fields.String(attribute="process_key")
    from_version = fields.Integer(data_key="from")
    to_version = fields.Integer(data_key="to")
    added = fields.List(fields.Nested(DiffElementSchema))
    removed = fields.List(fields.Nested(DiffElementSchema))
    changed = fields.List(fields.Nested(ElementChangeSchema))


class InstanceCheckSchema(Schema):
    instance_id = fields.Integer()
    hazard_id = fields.Integer()
    hazard_number = fields.String()
    hazard_title = fields.String()
    kind = fields.String(metadata={"description": "loop 闭环 / supervision 挂牌督办"})
    active = fields.List(fields.String(), metadata={"description": "当前待办环节（BPMN 元素标识）"})
    waiting = fields.List(fields.String(), metadata={"description": "等待中的事件（定时器等）"})
    movable = fields.Boolean()
    reasons = fields.List(fields.String(), metadata={"description": "不能迁移的原因（元素: 原因）"})
    notes = fields.List(fields.String(), metadata={"description": "迁移会带来的变化（新增边界事件等）"})


class MigrationPreviewSchema(Schema):
    key = fields.String()
    from_version = fields.Integer(data_key="from")
    to_version = fields.Integer(data_key="to")
    items = fields.List(fields.Nested(InstanceCheckSchema))
    movable = fields.Integer(metadata={"description": "可迁移的实例数"})
    blocked = fields.Integer(metadata={"description": "不能迁移的实例数"})


class MigrateRequestSchema(Schema):
    key = _Text(required=True, validate=_length(1, 100), metadata={"description": "流程标识"})
    from_version = _Int(
        required=True, data_key="from", validate=_range(1, MAX_ID), metadata={"description": "源版本号"}
    )
    to_version = _Int(
        required=True, data_key="to", validate=_range(1, MAX_ID), metadata={"description": "目标版本号"}
    )
    instance_ids = fields.List(
        _Int(validate=_range(1, MAX_ID)),
        load_default=None,
        validate=validate.Length(max=10_000, error="一次最多迁移 10000 个实例"),
        metadata={"description": "只迁移这些实例；省略则迁移源版本上调用者可管理的全部运行中实例"},
    )


class MigrationResultSchema(Schema):
    instance_id = fields.Integer()
    hazard_id = fields.Integer()
    hazard_number = fields.String()
    migrated = fields.Boolean()
    reasons = fields.List(fields.String(), metadata={"description": "未迁移的原因"})


class MigrationResultListSchema(Schema):
    items = fields.List(fields.Nested(MigrationResultSchema))
    migrated = fields.Integer()
    failed = fields.Integer()


# --- definitions: check, publish, export and bind diagrams -------------------------------------------

#: a process key as the modeler and :mod:`engine.design` accept it
PROCESS_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"
#: a task form key (:mod:`engine.design`)
FORM_KEY_PATTERN = r"^[a-z][a-z0-9_]{0,99}$"
#: the longest note kept with a version or a binding change
MAX_NOTE = 500
SEVERITIES = ("error", "warning")


def _process_key(**kwargs: Any) -> _Text:
    return _Text(
        validate=validate.Regexp(
            PROCESS_KEY_PATTERN,
            error="流程标识须以字母或下划线开头，由字母、数字、下划线、点和连字符组成，最多 100 个字符",
        ),
        metadata={"description": "流程标识（文件中主流程的 id）", "example": "hazard_general_hazchem"},
        **kwargs,
    )


def _sector(description: str, **kwargs: Any) -> _Text:
    return _Text(allow_none=True, validate=_length(1, 32), metadata={"description": description}, **kwargs)


def _note(description: str) -> _Text:
    return _Text(required=True, validate=_length(1, MAX_NOTE), metadata={"description": description})


def _revision() -> _Int:
    return _Int(
        allow_none=True,
        load_default=None,
        validate=_range(1, MAX_ID),
        metadata={
            "description": "共享草稿的修改次数：有未发布的草稿时必须给出，表示确认用本次内容取代它"
            "（发布后草稿删除）；省略而有草稿时 409，其说明中有当前的次数"
            "（表单和策略的 GET 返回 draft_revision）"
        },
    )


class DiagramCheckRequestSchema(ApiSchema):
    key = _process_key(required=True)
    sector = _sector("行业代码；省略：流程所属的行业（新流程必须给出）；null：全国通用（仅系统管理员）")
    bpmn = _Text(
        required=True,
        validate=[_length(1, MAX_BPMN_BYTES), _Utf8Size(MAX_BPMN_BYTES)],
        metadata={
            "description": f"BPMN 2.0 XML 全文（UTF-8 编码后不超过 {MAX_BPMN_BYTES // (1024 * 1024)} MB）"
        },
    )


class DiagramPublishRequestSchema(DiagramCheckRequestSchema):
    note = _note("版本说明")
    bind = _Bool(
        load_default=False,
        metadata={
            "description": "行业流程尚未绑定任何等级时，发布后让该行业对应等级的新隐患使用它（与建模器的"
            "“发布后绑定”相同）；已有绑定时不改变"
        },
    )
    revision = _revision()


class GateProblemSchema(Schema):
    element_id = fields.String(
        allow_none=True, metadata={"description": "出问题的 BPMN 元素（或表单字段）标识"}
    )
    element_name = fields.String(allow_none=True, metadata={"description": "元素名称（提交的文件中有时）"})
    message = fields.String()
    severity = fields.String(validate=_one_of(SEVERITIES))


class DiagramCheckSchema(Schema):
    ok = fields.Boolean(metadata={"description": "没有错误（可以发布）"})
    errors = fields.List(fields.Nested(GateProblemSchema), metadata={"description": "阻止发布的问题"})
    warnings = fields.List(fields.Nested(GateProblemSchema), metadata={"description": "不阻止发布的提醒"})


class DiagramPublishedSchema(VersionSchema):
    sector = fields.String(allow_none=True, metadata={"description": "流程所属行业（null：全国通用）"})
    created = fields.Boolean(metadata={"description": "false：内容与已有版本相同，未生成新版本"})
    binding = fields.String(
        allow_none=True, metadata={"description": "本次发布建立的绑定（等级/行业），没有时为 null"}
    )
    warnings = fields.List(fields.Nested(GateProblemSchema))


class BpmnQuerySchema(VersionQuerySchema):
    version = _Int(
        strict=False, validate=_range(1, MAX_ID), metadata={"description": "版本号；省略：最新版本"}
    )


class BindingTargetSchema(Schema):
    process_key = fields.String()
    version = fields.Integer(allow_none=True, metadata={"description": "新隐患当时使用的版本号"})
    pinned = fields.Boolean(metadata={"description": "固定版本（否则跟随最新版本）"})


class BindingChangeSchema(Schema):
    id = fields.Integer(attribute="entry.id")
    action = fields.String(attribute="entry.action", metadata={"description": "bind 绑定 / rollback 回退"})
    changed_at = _Instant(attribute="entry.changed_at")
    changed_by = fields.String(attribute="by", metadata={"description": "修改人（姓名）"})
    note = fields.String(attribute="entry.note", allow_none=True)
    before = fields.Nested(BindingTargetSchema, attribute="before_target", allow_none=True)
    after = fields.Nested(BindingTargetSchema, attribute="after_target", allow_none=True)


class BindingSchema(Schema):
    label = fields.String(metadata={"description": "等级[/行业][@地区代码]", "example": "general/hazchem"})
    grade = fields.String(validate=_one_of(BINDABLE_GRADES))
    sector = fields.String(allow_none=True, metadata={"description": "null：所有行业"})
    region = fields.String(
        allow_none=True, metadata={"description": "地区代码（含下级地区）；null：所有地区"}
    )
    process_key = fields.String()
    version = fields.Integer(allow_none=True, metadata={"description": "新登记的隐患现在使用的版本号"})
    pinned = fields.Boolean(metadata={"description": "固定版本（否则跟随最新版本）"})


class BindingDetailSchema(BindingSchema):
    can_rollback = fields.Boolean(metadata={"description": "调用者可以回退该绑定的上一次变更"})
    history = fields.List(
        fields.Nested(BindingChangeSchema), metadata={"description": "变更历史（新的在前）"}
    )


class BindingListSchema(Schema):
    key = fields.String()
    sector = fields.String(allow_none=True, metadata={"description": "流程所属行业"})
    editable = fields.Boolean(metadata={"description": "调用者可以绑定和回退（否则只读，如安委办）"})
    items = fields.List(fields.Nested(BindingDetailSchema))
    total = fields.Integer()


class BindRequestSchema(ApiSchema):
    key = _process_key(required=True)
    grade = _Text(
        required=True,
        validate=_one_of(BINDABLE_GRADES),
        metadata={"description": "general 一般（含突出）/ major 重大 / supervision 挂牌督办"},
    )
    sector = _sector("行业代码；省略：流程所属的行业；null：所有行业（仅系统管理员）")
    region = _sector(
        "地区代码（含下级地区，须在调用者的管辖范围内）；省略或 null：所有地区", load_default=None
    )
    version = _Int(
        allow_none=True,
        load_default=None,
        validate=_range(1, MAX_ID),
        metadata={"description": "固定到此版本；省略或 null：始终使用最新版本"},
    )
    note = _note("说明（记录在绑定历史中）")


class RollbackRequestSchema(ApiSchema):
    key = _process_key(required=True)
    grade = _Text(required=True, validate=_one_of(BINDABLE_GRADES))
    sector = _sector("绑定的行业；省略：流程所属的行业；null：所有行业")
    region = _sector("绑定的地区代码；省略或 null：所有地区", load_default=None)
    note = _note("说明（记录在绑定历史中）")


class RollbackResultSchema(Schema):
    label = fields.String(metadata={"description": "回退的绑定"})
    binding = fields.Nested(
        BindingSchema,
        allow_none=True,
        metadata={"description": "回退后的绑定；null：该绑定已撤销，改用更上一级的绑定"},
    )


# --- design: task forms and policy profiles ------------------------------------------------------------


class FormScopeQuerySchema(ApiSchema):
    sector = _Text(
        validate=_length(1, 32), metadata={"description": "行业代码；省略：全国通用（仅系统管理员）"}
    )


class FormQuerySchema(FormScopeQuerySchema):
    version = _Int(
        strict=False,
        validate=_range(1, MAX_ID),
        metadata={
            "description": "该范围内的版本号；省略：该行业新隐患现在使用的表单（本行业最新版本，否则全国的）"
        },
    )


class FormSummarySchema(Schema):
    form_key = fields.String()
    title = fields.String()
    national_version = fields.Integer(allow_none=True, metadata={"description": "全国最新版本"})
    sector_version = fields.Integer(allow_none=True, metadata={"description": "本行业最新版本"})
    shipped = fields.Boolean(metadata={"description": "随系统提供的表单（processes/forms）"})
    has_draft = fields.Boolean()
    draft_revision = fields.Integer(allow_none=True)


class FormListSchema(Schema):
    sector = fields.String(allow_none=True)
    items = fields.List(fields.Nested(FormSummarySchema))
    total = fields.Integer()


class FormVersionSchema(Schema):
    form_key = fields.String()
    sector = fields.String(allow_none=True, metadata={"description": "请求的范围（null：全国）"})
    scope = fields.String(
        allow_none=True,
        metadata={"description": "该版本所属范围：行业代码，* 为全国；null：随系统提供的文件"},
    )
    version = fields.Integer(
        allow_none=True, metadata={"description": "null：随系统提供的文件，尚无发布版本"}
    )
    title = fields.String()
    content_hash = fields.String(
        allow_none=True, metadata={"description": "表单内容的 sha256（规范化 JSON）"}
    )
    created_at = _Instant(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)


class FormDocumentSchema(FormVersionSchema):
    draft_revision = fields.Integer(allow_none=True, metadata={"description": "本范围未发布草稿的修改次数"})
    definition = fields.Dict(metadata={"description": "表单定义（key、title、fields、routing …）"})


class FormPublishRequestSchema(ApiSchema):
    sector = _sector("行业代码；省略或 null：全国通用（仅系统管理员）", load_default=None)
    definition = _Object(
        required=True,
        max_bytes=MAX_DRAFT_BYTES,
        metadata={"description": "表单定义：title、fields、routing 等；key 可省略（取路径中的标识）"},
    )
    note = _note("版本说明")
    revision = _revision()


class FormPublishedSchema(FormVersionSchema):
    created = fields.Boolean(metadata={"description": "false：内容与最新版本相同，未生成新版本"})


class PolicySchema(Schema):
    sector = fields.String(allow_none=True, metadata={"description": "null：全国"})
    key = fields.String(metadata={"description": "策略配置标识"})
    version = fields.Integer(allow_none=True, metadata={"description": "已发布的版本；null：本行业尚未发布"})
    created_at = _Instant(allow_none=True)
    created_by_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    draft_revision = fields.Integer(allow_none=True, metadata={"description": "未发布草稿的修改次数"})
    document = fields.Dict(
        metadata={
            "description": "已发布的配置文档：行业的只含覆盖全国的部分（values、ladder）；"
            "发布时提交同样的结构"
        }
    )
    effective = fields.Dict(
        metadata={"description": "继承后生效的数值与督办梯度，以及覆盖（overrides）和继承（inherited）的名称"}
    )


class PolicyPublishRequestSchema(ApiSchema):
    document = _Object(
        required=True,
        max_bytes=MAX_DRAFT_BYTES,
        metadata={
            "description": "策略配置文档（title、extends、values、ladder …）；"
            "key、sector、region 取路径中的范围"
        },
    )
    note = _note("版本说明（记录在设计日志中）")
    revision = _revision()


class PolicyPublishedSchema(Schema):
    sector = fields.String(allow_none=True)
    key = fields.String()
    version = fields.Integer()
    created = fields.Boolean(metadata={"description": "false：内容与最新版本相同，未生成新版本"})
    warnings = fields.List(fields.Nested(GateProblemSchema))


# --- notices ----------------------------------------------------------------------------------------


class NoticeQuerySchema(_PageQuery):
    kind = _Text(validate=_one_of(NOTICE_KINDS), metadata={"description": "文书种类"})
    status = _Text(validate=_one_of(NoticeStatus), metadata={"description": "状态"})
    issuer = _Text(
        validate=_length(1, 64),
        metadata={"description": "签发机关标识，如 dept:7、office:region:5", "example": "dept:7"},
    )
    year = _Int(
        strict=False, validate=_range(EARLIEST_YEAR, LATEST_YEAR), metadata={"description": "文号年度"}
    )
    hazard_number = _Text(validate=_length(1, 64), metadata={"description": "隐患编号（可只填一部分）"})
    hazard_id = _id(strict=False)


class NoticeRecipientSchema(Schema):
    key = fields.String(validate=_one_of(RECIPIENTS), metadata={"description": "主送对象类别"})
    label = fields.String()
    name = fields.String()


class NoticeSchema(Schema):
    """A notice (督办文书) as listed: everything but the text and its facts."""

    id = fields.Integer()
    hazard_id = fields.Integer()
    hazard_number = fields.Function(lambda n: n.hazard.number, metadata={"type": "string"})
    instance_id = fields.Integer()
    rung = fields.String(allow_none=True, metadata={"description": "督办梯度，如 letter、circular"})
    kind = fields.String(validate=_one_of(NOTICE_KINDS), metadata={"description": "文书种类"})
    kind_label = fields.Function(lambda n: NOTICE_KINDS.get(n.kind, n.kind), metadata={"type": "string"})
    level = fields.Integer(metadata={"description": "升级级别 0–6"})
    trigger = fields.String(metadata={"example": "overdue"})
    document_number = fields.String(metadata={"description": "文号", "example": "郎应急函〔2026〕3号"})
    issuer_key = fields.String(metadata={"example": "dept:7"})
    issuer_name = fields.String()
    issuer_abbreviation = fields.String()
    year = fields.Integer()
    sequence = fields.Integer()
    enterprise_id = fields.Integer()
    target_departments = fields.List(fields.String())
    recipients = fields.List(fields.Nested(NoticeRecipientSchema))
    title = fields.String()
    due_at = _Instant(allow_none=True, metadata={"description": "应发时间（该梯度到期的时间）"})
    issued_at = _Instant(metadata={"description": "签发时间"})
    response_due_at = _Instant(allow_none=True, metadata={"description": "回复或公布期限"})
    meeting_at = _Instant(allow_none=True, metadata={"description": "约谈时间"})
    place = fields.String(allow_none=True, metadata={"description": "约谈地点"})
    status = fields.String(validate=_one_of(NoticeStatus))
    acknowledged_at = _Instant(allow_none=True)
    acknowledged_by_id = fields.Integer(allow_none=True)
    response_text = fields.String(allow_none=True)
    responded_at = _Instant(allow_none=True)
    responded_by_id = fields.Integer(allow_none=True)
    closed_at = _Instant(allow_none=True)
    closed_by_id = fields.Integer(allow_none=True)
    close_note = fields.String(allow_none=True)


class NoticeFullSchema(NoticeSchema):
    body_html = fields.String(metadata={"description": "签发时生成的正文（HTML 片段，不再改变）"})
    facts = fields.Dict(metadata={"description": "生成正文所用的事实快照"})


class NoticePageSchema(Schema):
    items = fields.List(fields.Nested(NoticeSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class NoticeDetailSchema(Schema):
    """Dumped from ``{"notice": Notice, "actions": [...]}``."""

    notice = fields.Nested(NoticeFullSchema)
    actions = fields.List(
        fields.String(validate=_one_of(NOTICE_ACTIONS)),
        metadata={
            "description": "调用者现在可以执行的操作：acknowledge（签收）、respond（书面回复）、close（办结）"
        },
    )


class NoticeRespondRequestSchema(ApiSchema):
    text = _Text(
        required=True,
        validate=_length(1, 5000),
        metadata={"description": "书面回复：整改措施、进展和完成时间"},
    )


class NoticeCloseRequestSchema(ApiSchema):
    note = _Text(validate=_length(None, 5000), metadata={"description": "办结说明（企业未回复时必填）"})


#: every schema with its component name in the OpenAPI document; nested schemas come before the
#: schemas that nest them (apispec names a nested schema itself when it meets it first)
COMPONENTS: dict[str, type[Schema]] = {
    "Error": ErrorSchema,
    "TokenRequest": TokenRequestSchema,
    "Token": TokenSchema,
    "HazardCreateRequest": HazardCreateRequestSchema,
    "HazardQuery": HazardQuerySchema,
    "HazardSummary": HazardSummarySchema,
    "Hazard": HazardSchema,
    "HazardPage": HazardPageSchema,
    "TimelineEvent": TimelineEventSchema,
    "Attachment": AttachmentSchema,
    "AttachmentUpload": AttachmentUploadSchema,
    "Task": TaskSchema,
    "HazardDetail": HazardDetailSchema,
    "TaskQuery": TaskQuerySchema,
    "TaskPage": TaskPageSchema,
    "TaskDetail": TaskDetailSchema,
    "DefinitionBinding": DefinitionBindingSchema,
    "Definition": DefinitionSchema,
    "DefinitionList": DefinitionListSchema,
    "VersionQuery": VersionQuerySchema,
    "VersionPairQuery": VersionPairQuerySchema,
    "Version": VersionSchema,
    "VersionList": VersionListSchema,
    "DiffElement": DiffElementSchema,
    "ElementChange": ElementChangeSchema,
    "VersionDiff": VersionDiffSchema,
    "InstanceCheck": InstanceCheckSchema,
    "MigrationPreview": MigrationPreviewSchema,
    "MigrateRequest": MigrateRequestSchema,
    "MigrationResult": MigrationResultSchema,
    "MigrationResultList": MigrationResultListSchema,
    "DiagramCheckRequest": DiagramCheckRequestSchema,
    "DiagramPublishRequest": DiagramPublishRequestSchema,
    "GateProblem": GateProblemSchema,
    "DiagramCheck": DiagramCheckSchema,
    "DiagramPublished": DiagramPublishedSchema,
    "BpmnQuery": BpmnQuerySchema,
    "BindingTarget": BindingTargetSchema,
    "BindingChange": BindingChangeSchema,
    "Binding": BindingSchema,
    "BindingDetail": BindingDetailSchema,
    "BindingList": BindingListSchema,
    "BindRequest": BindRequestSchema,
    "RollbackRequest": RollbackRequestSchema,
    "RollbackResult": RollbackResultSchema,
    "FormScopeQuery": FormScopeQuerySchema,
    "FormQuery": FormQuerySchema,
    "FormSummary": FormSummarySchema,
    "FormList": FormListSchema,
    "FormVersion": FormVersionSchema,
    "FormDocument": FormDocumentSchema,
    "FormPublishRequest": FormPublishRequestSchema,
    "FormPublished": FormPublishedSchema,
    "Policy": PolicySchema,
    "PolicyPublishRequest": PolicyPublishRequestSchema,
    "PolicyPublished": PolicyPublishedSchema,
    "NoticeQuery": NoticeQuerySchema,
    "NoticeRecipient": NoticeRecipientSchema,
    "Notice": NoticeSchema,
    "NoticeFull": NoticeFullSchema,
    "NoticePage": NoticePageSchema,
    "NoticeDetail": NoticeDetailSchema,
    "NoticeRespondRequest": NoticeRespondRequestSchema,
    "NoticeCloseRequest": NoticeCloseRequestSchema,
}
