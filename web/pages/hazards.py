"""Hazards: registration (``/hazards/new``), the ledger (``/hazards``, ``/hazards/export.xlsx``) and
the hazard file 一患一档 (``/hazards/<id>``, its diagram and before photos).

Everything is scoped by the visibility matrix (DESIGN §3) inside :mod:`engine.ledger`: a hazard
outside the actor's scope is 404 on every page, and never in the ledger or the export.
Query parameters of the ledger and the export (all optional)::

    region=<code>  sector=<code>  grade=general|prominent|major  status=<HazardStatus>
    source=<HazardSource>  overdue=yes|no  level=<0–6, escalation level at least>
    enterprise=<id>  from=YYYY-MM-DD  to=YYYY-MM-DD (discovered, business dates, inclusive)
    q=<text: number, title, location, enterprise>  sort=<ledger.SORTS>  order=asc|desc
    page=<n>  per_page=20|50|100
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine import form_versions
from engine import ledger
from engine import notices
from engine import policy
from engine import runtime
from engine.access import Actor
from engine.errors import Forbidden
from engine.errors import InvalidInput
from engine.forms import FormDefinition
from engine.ledger import HazardFile
from engine.ledger import LedgerFilter
from engine.models import Attachment
from engine.models import Event
from engine.models import Grade
from engine.models import HandlingType
from engine.models import HazardSource
from engine.models import HazardStatus
from engine.models import Region
from engine.models import Role
from engine.models import TaskSubmission
from engine.models.hazard import GRADE_LABELS
from engine.models.hazard import SOURCE_LABELS
from engine.models.hazard import STATUS_LABELS
from engine.models.notice import NOTICE_STATUS_LABELS
from engine.runtime import SUPERVISING_OR_INSPECTING
from notifiers.rendering import LEVEL_LABELS
from notifiers.rendering import REASON_LABELS

from .. import export
from .. import uploads
from ..auth import current_actor
from ..auth import login_required
from ..i18n import _
from ..i18n import grade_label
from ..i18n import handling_label
from ..i18n import localtime
from ..i18n import source_label
from ..i18n import status_label
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from ..session import settings

bp = Blueprint("hazards", __name__)

PER_PAGE_CHOICES = (20, 50, 100)
SORT_LABELS = {
    "discovered_at": "发现时间",
    "deadline": "整改期限",
    "created_at": "登记时间",
    "number": "隐患编号",
    "escalation_level": "升级级别",
}
#: 挂牌督办 levels (Hazard.listed_level)
LISTED_LABELS = {1: "省级挂牌", 2: "市级挂牌", 3: "县级挂牌", 4: "乡镇级挂牌"}
PHASE_LABELS = {"before": "整改前", "after": "整改后", "document": "文件资料"}
MAX_PHOTOS_PER_UPLOAD = 10

#: event action -> Chinese label of the timeline (unknown actions show as recorded)
EVENT_LABELS = {
    "registered": "登记",
    "reopened": "重开",
    "reopen_reason": "重开原因",
    "task_created": "生成待办",
    "task_completed": "办理",
    "task_cancelled": "待办取消",
    "claimed": "认领",
    "released": "释放",
    "delegated": "转办",
    "reminder": "到期提醒",
    "overdue": "逾期",
    "escalated": "升级督办",
    "deadline_computed": "计算期限",
    "deadline_recomputed": "期限重算",
    "deadline_confirmed": "期限确认",
    "timer_fired": "定时触发",
    "closed": "销号",
    "voided": "作废",
    "progress_updated": "更新整改进展",
    "extension_requested": "申请延期",
    "extension_approved": "同意延期",
    "extension_denied": "不同意延期",
    "violation_recorded": "认定违法行为",
    "notice_issued": "签发督办文书",
    "notice_acknowledged": "签收督办文书",
    "notice_responded": "书面回复督办文书",
    "notice_closed": "办结督办文书",
    "escalation_skipped": "督办梯度未发文（补发时只发最高一级等）",
    "recurrence_detected": "同一部位隐患复发",
    "supervision_started": "启动挂牌督办流程",
    "supervision_completed": "挂牌督办流程结束",
    "listed": "挂牌督办",
    "delisted": "摘牌",
    "deadline_set": "挂牌督办期限同步",
}
#: timeline entries drawn in a warning or danger colour
EVENT_KINDS = {
    "reminder": "warning",
    "overdue": "danger",
    "escalated": "danger",
    "violation_recorded": "danger",
    "voided": "muted",
    "task_cancelled": "muted",
    "timer_fired": "muted",
    "closed": "success",
    "extension_approved": "success",
}
DECISION_LABELS = {
    "pass": "通过",
    "reject": "不通过",
    "approve": "同意",
    "deny": "不同意",
}
EXTENSION_STATE_LABELS = {"pending": "待审批", "approved": "已同意", "denied": "不同意"}


# --- the ledger ----------------------------------------------------------------------------------


def _int_arg(args: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput({name: ["必须是整数"]}) from None


def _date_arg(args: Mapping[str, str], name: str) -> dt.date | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput({name: ["日期格式应为 YYYY-MM-DD"]}) from None


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    """The ledger's query parameters, parsed: the engine filter and the paging."""

    filters: LedgerFilter
    page: int
    per_page: int
    #: the non-empty parameters as given (for links that keep the filters)
    args: dict[str, str]


def parse_ledger_args(args: Mapping[str, str]) -> LedgerQuery:
    """The ledger filter of a request's query string.

    :raises InvalidInput: a malformed number or date, or a page size that is not offered.
    """
    tz = engine_context().tz
    overdue_raw = (args.get("overdue") or "").strip()
    if overdue_raw not in ("", "yes", "no"):
        raise InvalidInput({"overdue": ["必须是 yes 或 no"]})
    order = (args.get("order") or "desc").strip()
    if order not in ("asc", "desc"):
        raise InvalidInput({"order": ["必须是 asc 或 desc"]})
    start, end = _date_arg(args, "from"), _date_arg(args, "to")
    per_page = _int_arg(args, "per_page", PER_PAGE_CHOICES[0]) or PER_PAGE_CHOICES[0]
    if per_page not in PER_PAGE_CHOICES:
        raise InvalidInput({"per_page": [f"每页条数必须是 {'、'.join(map(str, PER_PAGE_CHOICES))} 之一"]})
    filters = LedgerFilter(
        region_code=(args.get("region") or "").strip() or None,
        sector_code=(args.get("sector") or "").strip() or None,
        grade=(args.get("grade") or "").strip() or None,
        status=(args.get("status") or "").strip() or None,
        source=(args.get("source") or "").strip() or None,
        overdue={"yes": True, "no": False}.get(overdue_raw),
        escalation_level_min=_int_arg(args, "level"),
        enterprise_id=_int_arg(args, "enterprise"),
        discovered_from=dt.datetime.combine(start, dt.time.min, tz).astimezone(dt.UTC) if start else None,
        discovered_to=(
            (
                dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tz)
                - dt.timedelta(microseconds=1)
            ).astimezone(dt.UTC)
            if end
            else None
        ),
        text=(args.get("q") or "").strip()[:100] or None,
        sort=(args.get("sort") or "discovered_at").strip(),
        descending=order == "desc",
    )
    kept = {k: v.strip() for k, v in args.items() if k != "page" and isinstance(v, str) and v.strip()}
    return LedgerQuery(filters, max(1, _int_arg(args, "page", 1) or 1), per_page, kept)


def describe_filters(query: LedgerQuery, regions: Sequence[Region], sectors: Mapping[str, str]) -> list[str]:
    """The filters in use, in words (the export's header row and the ledger's caption)."""
    f, args = query.filters, query.args
    names = {r.code: r.name for r in regions}
    out = []
    if f.region_code:
        out.append(_("地区") + "：" + names.get(f.region_code, f.region_code))
    if f.sector_code:
        out.append(_("行业") + "：" + _(sectors.get(f.sector_code, f.sector_code)))
    if f.grade:
        out.append(_("等级") + "：" + grade_label(f.grade))
    if f.status:
        out.append(_("状态") + "：" + status_label(f.status))
    if f.source:
        out.append(_("来源") + "：" + source_label(f.source))
    if f.overdue is not None:
        out.append(_("逾期") + "：" + (_("是") if f.overdue else _("否")))
    if f.escalation_level_min is not None:
        out.append(_("升级级别不低于") + f" L{f.escalation_level_min}")
    if f.enterprise_id is not None:
        out.append(_("企业编号") + f"：{f.enterprise_id}")
    if args.get("from") or args.get("to"):
        out.append(_("发现日期") + f"：{args.get('from', '…')} ~ {args.get('to', '…')}")
    if f.text:
        out.append(_("关键词") + f"：{f.text}")
    return out


def _url_with(base: str, args: Mapping[str, str], **changes: object) -> str:
    merged = {**args, **{k: str(v) for k, v in changes.items() if v is not None}}
    merged = {k: v for k, v in merged.items() if v != ""}
    return base + ("?" + urlencode(merged) if merged else "")


@bp.get("/hazards")
@login_required
def index() -> str:
    actor = current_actor()
    query = parse_ledger_args(request.args)
    now = engine_context().clock.now()
    with read_session() as session:
        result = ledger.search(
            session, actor, query.filters, now=now, page=query.page, per_page=query.per_page
        )
        counts = ledger.summary(session, actor, query.filters, now=now)
        regions = ledger.region_choices(session, actor)
        sectors = ledger.sector_names(session)
        return render_template(
            "hazards/index.html",
            result=result,
            counts=counts,
            query=query,
            regions=regions,
            sectors=sectors,
            described=describe_filters(query, regions, sectors),
            now=now,
            is_overdue=ledger.is_overdue,
            url_with=lambda **changes: _url_with(url_for("hazards.index"), query.args, **changes),
            export_url=_url_with(url_for("hazards.export_xlsx"), query.args),
            choices=_filter_choices(),
        )


def _filter_choices() -> dict[str, Any]:
    return {
        "grades": [(g.value, GRADE_LABELS[g]) for g in Grade],
        "statuses": [(s.value, STATUS_LABELS[s]) for s in HazardStatus],
        "sources": [(s.value, SOURCE_LABELS[s]) for s in HazardSource],
        "levels": [(n, f"L{n} {LEVEL_LABELS[n]}") for n in sorted(LEVEL_LABELS)],
        "sorts": list(SORT_LABELS.items()),
        "per_page": PER_PAGE_CHOICES,
    }


@bp.get("/hazards/export.xlsx")
@login_required
def export_xlsx() -> Response:
    """The filtered ledger (every page, up to the export limit) as an Excel workbook."""
    actor = current_actor()
    query = parse_ledger_args(request.args)
    ctx = engine_context()
    now = ctx.clock.now()
    with read_session() as session:
        rows = ledger.export_rows(session, actor, query.filters, now=now)
        regions = ledger.region_choices(session, actor)
        sectors = ledger.sector_names(session)
        workbook = export.ledger_workbook(
            rows,
            filters=describe_filters(query, regions, sectors),
            sectors=sectors,
            generated_at=now,
            generated_by=actor.display_name,
            tz=ctx.tz,
        )
    return export.xlsx_response(workbook, _("隐患台账"), now.astimezone(ctx.tz))


# --- registration --------------------------------------------------------------------------------

REGISTRATION_TEXT_FIELDS = (
    "title",
    "description",
    "location",
    "determination_basis",
    "discovered_by",
    "interim_measures",
)


def _may_name_departments(actor: Actor) -> bool:
    return bool(actor.roles & SUPERVISING_OR_INSPECTING)


def _default_values(actor: Actor, enterprises: Sequence[Any]) -> dict[str, Any]:
    now = engine_context().clock.now().astimezone(engine_context().tz)
    return {
        "enterprise_id": str(enterprises[0].id) if len(enterprises) == 1 else "",
        "grade": Grade.GENERAL.value,
        "handling_type": HandlingType.DEADLINE.value,
        "source": HazardSource.PUBLIC_TIP.value
        if actor.roles == {Role.TIP_OFFICER}
        else HazardSource.SELF_CHECK.value
        if actor.roles <= {Role.RECTIFIER, Role.SAFETY_OFFICER, Role.PRINCIPAL}
        else HazardSource.INSPECTION.value,
        "discovered_at": now.strftime("%Y-%m-%dT%H:%M"),
        "discovered_by": actor.display_name.split("（", 1)[0],
        "co_department_ids": [],
    }


def _render_new(values: Mapping[str, Any], errors: Mapping[str, Any], status: int = 200) -> Response:
    actor = current_actor()
    with read_session() as session:
        enterprises = ledger.enterprise_choices(session, actor)
        may_name = _may_name_departments(actor)
        html = render_template(
            "hazards/new.html",
            values=values or _default_values(actor, enterprises),
            errors=errors,
            enterprises=enterprises,
            sectors=ledger.sector_choices(session),
            sector_names=ledger.sector_names(session),
            departments=ledger.department_choices(session, actor) if may_name else [],
            may_name_departments=may_name,
            choices=_filter_choices(),
            listed_levels=sorted(LISTED_LABELS.items()),
        )
    return current_app.make_response((html, status))


def parse_registration(form: MultiDict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``register_hazard`` data from the form, and the errors of values that do not parse.

    Times are business time (``datetime-local``), made aware and converted to UTC; a deadline is
    the end of its business day.
    """
    ctx = engine_context()
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {}
    for name in REGISTRATION_TEXT_FIELDS:
        value = form.get(name, "").strip()
        if value or name in ("title", "description", "location"):
            data[name] = value
    for name in ("source", "grade"):
        data[name] = form.get(name, "").strip()
    if form.get("grade", "") == Grade.GENERAL.value:
        data["handling_type"] = form.get("handling_type", HandlingType.DEADLINE.value).strip()
    enterprise = form.get("enterprise_id", "").strip()
    data["enterprise_id"] = int(enterprise) if enterprise.isdigit() else enterprise or None
    if form.get("sector_code", "").strip():
        data["sector_code"] = form["sector_code"].strip()
    raw = form.get("discovered_at", "").strip()
    data["discovered_at"] = None
    if raw:
        try:
            local = dt.datetime.fromisoformat(raw)
        except ValueError:
            errors["discovered_at"] = ["时间格式应为 YYYY-MM-DD HH:MM"]
        else:
            when = local.replace(tzinfo=ctx.tz) if local.tzinfo is None else local
            if when > ctx.clock.now() + dt.timedelta(minutes=5):
                errors["discovered_at"] = ["发现时间不能晚于当前时间"]
            data["discovered_at"] = when.astimezone(dt.UTC)
    raw = form.get("deadline", "").strip()
    if raw:
        try:
            data["deadline"] = ctx.end_of_business_day(dt.date.fromisoformat(raw))
        except ValueError:
            errors["deadline"] = ["日期格式应为 YYYY-MM-DD"]
    raw = form.get("suppress_escalation_until", "").strip()
    if raw:
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            errors["suppress_escalation_until"] = ["日期格式应为 YYYY-MM-DD"]
        else:
            data["suppress_escalation_until"] = dt.datetime.combine(day, dt.time(0, 0), tzinfo=ctx.tz)
    data["stop_production"] = form.get("stop_production") in ("1", "on", "true")
    raw = form.get("listed_level", "").strip()
    if raw:
        if raw.isdigit():
            data["listed_level"] = int(raw)
        else:
            errors["listed_level"] = ["挂牌级别必须是 1–4"]
    raw = form.get("lead_department_id", "").strip()
    if raw:
        if raw.isdigit():
            data["lead_department_id"] = int(raw)
        else:
            errors["lead_department_id"] = ["必须是部门编号"]
    co = [v.strip() for v in form.getlist("co_department_ids") if v.strip()]
    if co:
        if all(v.isdigit() for v in co):
            data["co_department_ids"] = [int(v) for v in co]
        else:
            errors["co_department_ids"] = ["必须是部门编号列表"]
    return data, errors


def _form_values(form: MultiDict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token"}
    values["co_department_ids"] = form.getlist("co_department_ids")
    return values


@bp.get("/hazards/new")
@login_required
def new() -> Response:
    return _render_new({}, {})


@bp.post("/hazards/new")
@login_required
def create() -> Response:
    """Register a hazard; field errors re-render the form (422, 403 out of scope) keeping the values."""
    actor = current_actor()
    data, errors = parse_registration(request.form)
    if errors:
        return _render_new(_form_values(request.form), errors, 422)
    try:
        with sessions().begin() as session:
            hazard = runtime.register_hazard(session, engine_context(), actor=actor, data=data)
            hazard_id, number = hazard.id, hazard.number
    except InvalidInput as exc:
        return _render_new(_form_values(request.form), exc.messages, 422)
    except Forbidden as exc:
        return _render_new(_form_values(request.form), {"_schema": [str(exc)]}, 403)
    flash(_("已登记隐患 {number}，请上传整改前照片。", number=number), "success")
    return redirect(url_for("hazards.detail", hazard_id=hazard_id))


# --- the hazard file -----------------------------------------------------------------------------


def _iso_local(value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return localtime(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))


def _decision_label(definition: FormDefinition | None, decision: str) -> str:
    """The decision as its form words it (销号审核: 驳回; 验收: 不通过), else the generic label."""
    if definition is not None:
        for spec in definition.fields:
            if spec.name == "decision" and spec.type == "choice":
                for option in spec.options:
                    if option.value == decision:
                        return str(option.label)
    return _(DECISION_LABELS.get(decision, decision))


def _event_detail(
    event: Event,
    file: HazardFile,
    definition: FormDefinition | None = None,
    submission: TaskSubmission | None = None,
) -> str:
    p = event.payload or {}
    action = event.action
    parts: list[str] = []
    if action in ("registered", "reopened"):
        if p.get("number"):
            parts.append(_("编号") + f" {p['number']}")
        if p.get("grade"):
            parts.append(grade_label(p["grade"]))
        if p.get("handling"):
            parts.append(handling_label(p["handling"]))
    elif action == "task_completed":
        decision = p.get("decision")
        if decision in DECISION_LABELS:
            parts.append(_("结论") + "：" + _decision_label(definition, decision))
            opinion = str((submission.data or {}).get("opinion") or "").strip() if submission else ""
            if opinion:
                parts.append(_("意见") + "：" + opinion)
        if p.get("late"):
            parts.append(_("逾期办理"))
    elif action == "delegated":
        parts.append(_("转办给 {name}", name=file.user_names.get(p.get("to_user_id"), "?")))
    elif action == "escalated":
        level = p.get("level")
        if isinstance(level, int):
            parts.append(f"L{level} " + _(LEVEL_LABELS.get(level, "")))
        if p.get("label"):
            parts.append(str(p["label"]))
        if p.get("number"):
            parts.append(str(p["number"]))
        if p.get("reason"):
            parts.append(_("原因") + "：" + _(REASON_LABELS.get(p["reason"], p["reason"])))
    elif action == "escalation_skipped":
        parts.append(str(p.get("rung") or p.get("trigger") or ""))
        if p.get("label"):
            parts.append(str(p["label"]))
    elif action == "recurrence_detected":
        parts.append(_("前次隐患") + f" {p.get('number', '')}")
    elif action in ("listed", "delisted") and p.get("number"):
        parts.append(str(p["number"]))
    elif action in ("voided", "reopen_reason"):
        parts.append(str(p.get("reason", "")))
    elif action == "progress_updated":
        parts.append(_("整改进度 {percent}%", percent=p.get("percent", "?")))
    elif action in ("extension_requested", "extension_approved"):
        parts.append(_("新期限") + " " + _iso_local(p.get("new_deadline")))
    elif action == "violation_recorded":
        parts.append(f"{p.get('label', '')}：{p.get('note', '')}")
    elif action.startswith("notice_") and p.get("number"):
        parts.append(str(p["number"]))
        if action == "notice_issued" and p.get("title"):
            parts.append(str(p["title"]))
    elif action in ("deadline_computed", "deadline_recomputed", "deadline_confirmed"):
        if p.get("due_at"):
            parts.append(_("期限") + " " + _iso_local(p["due_at"]))
        if p.get("provisional"):
            parts.append(_("临时期限（待官方节假日安排确认）"))
    elif action == "timer_fired" and p.get("due_at"):
        parts.append(_("到期时间") + " " + _iso_local(p["due_at"]))
    return "；".join(x for x in parts if x)


def _to_ms(at: dt.datetime) -> dt.datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def timeline(file: HazardFile, forms: Mapping[int, FormDefinition | None]) -> list[dict[str, Any]]:
    """The event log in words: when, what, which task, who, details.

    A decision shows its form's own wording (``forms``: the form of each submission, by its id,
    from :func:`engine.form_versions.submission_forms`) and the opinion of the submission it
    recorded; 销号 (recorded by the engine, without an actor) shows who completed the task that
    closed the loop.
    """
    # the event of a completion is stamped with its submission's time, to the millisecond
    submitted = {(s.form_key, _to_ms(s.submitted_at)): s for s in file.submissions}
    rows = []
    last_completed_by: int | None = None
    for event in file.events:
        task = ""
        if event.task_key:
            task = file.element_names.get(event.task_key) or str(event.payload.get("title") or event.task_key)
        actor_id = event.actor_id
        if event.action == "task_completed":
            last_completed_by = event.actor_id
        elif event.action == "closed" and actor_id is None:
            actor_id = last_completed_by
        submission = (
            submitted.get((event.payload.get("form_key"), _to_ms(event.at)))
            if event.action == "task_completed"
            else None
        )
        rows.append(
            {
                "at": event.at,
                "label": _(EVENT_LABELS.get(event.action, event.action)),
                "action": event.action,
                "kind": EVENT_KINDS.get(event.action, ""),
                "task": task,
                "actor": file.user_names.get(actor_id, "") if actor_id else _("系统"),
                "detail": _event_detail(
                    event, file, forms.get(submission.id) if submission is not None else None, submission
                ),
            }
        )
    return rows


def _field_value(definition_field: Any, value: Any, attachments: Mapping[int, Attachment]) -> dict[str, Any]:
    kind = definition_field.type if definition_field is not None else "text"
    if kind in ("photo", "file"):
        ids = value if isinstance(value, list) else [value]
        return {"kind": "attachments", "items": [attachments[i] for i in ids if i in attachments]}
    if kind == "choice":
        labels = {o.value: o.label for o in definition_field.options}
        values = value if isinstance(value, list) else [value]
        return {"kind": "text", "text": "、".join(labels.get(v, str(v)) for v in values)}
    if kind == "checklist":
        labels = {o.value: o.label for o in definition_field.items}
        values = value if isinstance(value, list) else [value]
        return {"kind": "list", "items": [labels.get(v, str(v)) for v in values]}
    if kind == "money":
        # a label that names its unit (实际投入资金（元）) needs no suffix
        unit = "" if "元" in (definition_field.label or "") else " " + _("元")
        return {"kind": "text", "text": f"{value}{unit}"}
    multiline = bool(definition_field is not None and definition_field.multiline)
    return {"kind": "multiline" if multiline else "text", "text": str(value)}


def submission_view(
    definition: FormDefinition | None, submission: TaskSubmission, attachments: Mapping[int, Attachment]
) -> dict[str, Any]:
    """A submitted form with the labels of the form ``definition`` it was made on (``None``: the
    form is gone, field names are shown): ``title`` and ``rows`` of (label, value)."""
    data = submission.data or {}
    rows = []
    fields = {f.name: f for f in definition.fields} if definition is not None else {}
    order = [*fields, *(k for k in data if k not in fields)]
    for name in order:
        value = data.get(name)
        if value is None or value == "" or value == []:
            continue
        field_def = fields.get(name)
        rows.append(
            {"label": field_def.label if field_def else name, **_field_value(field_def, value, attachments)}
        )
    return {
        "submission": submission,
        "title": definition.title if definition is not None else submission.form_key,
        "rows": rows,
    }


#: the actions that start an instance: their event records the policy profile pinned to it
_START_ACTIONS = frozenset({"registered", "reopened", "supervision_started"})


def pinned_runs(session: Session, file: HazardFile) -> list[dict[str, Any]]:
    """What the hazard's instances (loop, 挂牌督办 track) are pinned to: process version, policy
    profile version (from their start event) and published form versions."""
    runs = []
    for label, run in ((_("整改流程"), file.instance), (_("挂牌督办"), file.supervision)):
        if run is None:
            continue
        start = next((e for e in file.events if e.instance_id == run.id and e.action in _START_ACTIONS), None)
        forms = [
            {
                "title": v.title,
                "form_key": v.form_key,
                "version": v.version,
                "scope": _("全国") if v.sector_code is None else _("行业"),
            }
            for v in form_versions.pinned_versions(session, run.form_pins)
        ]
        runs.append(
            {
                "label": label,
                "process_key": run.definition_version.process_key,
                "version": run.definition_version.version,
                "policy": (start.payload or {}).get("policy") if start is not None else None,
                "forms": forms,
            }
        )
    return runs


def _render_detail(hazard_id: int, *, upload_errors: Sequence[str] = (), status: int = 200) -> Response:
    actor = current_actor()
    ctx = engine_context()
    now = ctx.clock.now()
    with read_session() as session:
        file = ledger.hazard_file(session, actor, hazard_id)
        attachments = {a.id: a for a in file.attachments}
        forms = form_versions.submission_forms(session, ctx, file.submissions)
        events = timeline(file, forms)
        html = render_template(
            "hazards/detail.html",
            file=file,
            hazard=file.hazard,
            now=now,
            overdue=ledger.is_overdue(file.hazard, now),
            timeline=events,
            submissions=[submission_view(forms[s.id], s, attachments) for s in reversed(file.submissions)],
            pins=pinned_runs(session, file),
            notices=notices.hazard_notices(session, actor, hazard_id),
            notice_kinds=policy.NOTICE_KINDS,
            notice_statuses=NOTICE_STATUS_LABELS,
            markers=file.markers(now),
            supervision_markers=file.markers(now, file.supervision) if file.supervision else None,
            phases=PHASE_LABELS,
            listed_labels=LISTED_LABELS,
            level_labels=LEVEL_LABELS,
            extension_states=EXTENSION_STATE_LABELS,
            finished=file.hazard.status in (HazardStatus.CLOSED.value, HazardStatus.VOIDED.value),
            max_photos=MAX_PHOTOS_PER_UPLOAD,
            accept=", ".join(uploads.IMAGE_TYPES),
            upload_errors=upload_errors,
        )
    return current_app.make_response((html, status))


@bp.get("/hazards/<int:hazard_id>")
@login_required
def detail(hazard_id: int) -> Response:
    return _render_detail(hazard_id)


@bp.get("/hazards/<int:hazard_id>/diagram.bpmn")
@login_required
def diagram(hazard_id: int) -> Response:
    """The BPMN XML the hazard's current loop runs on (for the bpmn-js viewer; scoped)."""
    with read_session() as session:
        xml = ledger.diagram_xml(session, current_actor(), hazard_id)
    response = current_app.make_response(xml)
    response.mimetype = "application/xml"
    return response


@bp.get("/hazards/<int:hazard_id>/supervision.bpmn")
@login_required
def supervision_diagram(hazard_id: int) -> Response:
    """The BPMN XML of the hazard's 挂牌督办 track (processes/supervision.bpmn; scoped)."""
    with read_session() as session:
        xml = ledger.diagram_xml(session, current_actor(), hazard_id, kind="supervision")
    response = current_app.make_response(xml)
    response.mimetype = "application/xml"
    return response


@bp.post("/hazards/<int:hazard_id>/photos")
@login_required
def upload_photos(hazard_id: int) -> Response:
    """整改前照片: attach photos (JPEG, PNG, WebP; checked by web.uploads) to the hazard, phase ``before``.

    Each photo is committed on its own, so the good ones of a batch are kept; refused files
    re-render the page (422) saying why.
    """
    actor = current_actor()
    ctx = engine_context()
    files = [f for f in request.files.getlist("photos") if f and f.filename]
    if not files:
        return _render_detail(hazard_id, upload_errors=[_("请选择要上传的照片")], status=422)
    if len(files) > MAX_PHOTOS_PER_UPLOAD:
        message = _("一次最多上传 {n} 张照片", n=MAX_PHOTOS_PER_UPLOAD)
        return _render_detail(hazard_id, upload_errors=[message], status=422)
    errors: list[str] = []
    stored = 0
    for storage in files:
        try:
            checked = uploads.check_upload(storage, field="photos", field_type="photo", tz=ctx.tz)
            with sessions().begin() as session:
                attachment = runtime.add_attachment(
                    session,
                    ctx,
                    hazard_id=hazard_id,
                    actor=actor,
                    filename=checked.filename,
                    mime_type=checked.mime_type,
                    content=checked.content,
                    phase="before",
                    exif_taken_at=checked.exif_taken_at,
                    gps_lat=checked.gps_lat,
                    gps_lon=checked.gps_lon,
                )
                uploads.make_thumbnail(settings(), attachment, checked.content)
            stored += 1
        except InvalidInput as exc:
            for messages in exc.messages.values():
                errors.extend(messages if isinstance(messages, list) else [str(messages)])
    if errors:
        if stored:
            flash(_("已上传 {n} 张整改前照片", n=stored), "success")
        return _render_detail(hazard_id, upload_errors=errors, status=422)
    flash(_("已上传 {n} 张整改前照片", n=stored), "success")
    return redirect(url_for("hazards.detail", hazard_id=hazard_id) + "#attachments")
