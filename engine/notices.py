"""Escalation notices (督办文书): issue, number, render, track and print them (DESIGN §6, DOMAIN §4).

Every rung of the escalation ladder (:mod:`engine.policy`: ``LadderRung``) issues one
:class:`~engine.models.Notice`:

* **who issues it** — ``lead_department``: the hazard's lead department (else the 安委办 of the
  hazard's county); ``office``: the 安委办 at ``issuer_level`` above the hazard; ``committee`` /
  ``government``: the 安全生产委员会 / 人民政府 of that region, named after it (郎溪县安全生产委员会);
* **its document number** (文号): issuer abbreviation + the kind's short form + 〔year〕 +
  sequence + 号, e.g. ``郎应急函〔2026〕3号``, ``郎安办通〔2026〕1号``, ``郎溪政督〔2026〕1号``. The
  sequence is gap-free per (issuer, kind, business-time year), taken under a row lock of
  ``number_sequence`` (scope ``notice:<issuer_key>:<kind>``) that every notice of the issuer,
  kind and year shares until its transaction ends — so it is taken as late as possible;
* **its text** — ``processes/notices/<rung.template>.html.j2`` rendered once, at issue, in
  Jinja2's immutable sandbox (autoescape, strict undefined) from a JSON snapshot of the facts,
  which is stored beside the text (``Notice.facts``);
* **its deadline** — the rung's ``response`` policy value from the issue time (约谈: the
  meeting day, 09:00 business time, at ``rung.place``).

:func:`issue_notice` is called under the hazard's instance lock (the caller appends the
``notice_issued`` event itself); it is :func:`prepare_notice` (every read, no write) then
:func:`issue_prepared` (the 文号, the text, the row). The runtime's escalations call the two apart:
they prepare the notice during the step and number it when the step is written, just before it
commits (``engine.runtime._issue_deferred_notices``).

The status then moves issued → acknowledged (签收) → responded (书面回复) → closed (办结)
through :func:`acknowledge`, :func:`respond` and :func:`close`, each checked against the actor
and recorded on the hazard's audit chain. :func:`render_printable` is the one A4 HTML document
behind both the print page and the PDF.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup
from sqlalchemy import ColumnElement
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import inspect
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import contains_eager
from sqlalchemy.orm import joinedload
from sqlalchemy.orm import lazyload
from sqlalchemy.orm import make_transient_to_detached

from . import calendar as working_calendar
from . import events
from . import policy
from .access import Actor
from .access import can_act_as
from .access import can_act_as_any
from .access import can_see
from .access import hazard_visibility
from .db import is_sqlite
from .errors import Conflict
from .errors import EngineError
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .models import Department
from .models import Enterprise
from .models import Hazard
from .models import HazardDepartment
from .models import Notice
from .models import NoticeStatus
from .models import NumberSequence
from .models import PolicyProfile
from .models import ProcessInstance
from .models import Region
from .models import RegionLevel
from .models import Role
from .models.hazard import GRADE_LABELS
from .models.notice import NOTICE_STATUS_LABELS

if TYPE_CHECKING:
    from .runtime import EngineContext

__all__ = [
    "ENTERPRISE_SIDE_ROLES",
    "ISSUER_SHORT_FORMS",
    "KIND_SHORT_FORMS",
    "NOTICE_ACTIONS",
    "NOTICE_STATUS_LABELS",
    "Issuer",
    "NoticePage",
    "NoticeTemplateError",
    "PreparedNotice",
    "acknowledge",
    "close",
    "document_number",
    "get_notice",
    "hazard_notices",
    "issue_notice",
    "issue_prepared",
    "issuer_choices",
    "list_notices",
    "notice_actions",
    "prepare_notice",
    "region_short_name",
    "render_printable",
    "respond",
    "resolve_issuer",
]

#: the short form of each kind in the 文号 (distinct, so one issuer's numbers never collide)
KIND_SHORT_FORMS: dict[str, str] = {
    "urge_letter": "督促",
    "letter": "函",
    "circular": "通",
    "interview": "约谈",
    "exposure": "曝",
    "listing_notice": "督",
    "listing_announcement": "督告",
    "delisting_notice": "摘",
    "delisting_announcement": "摘告",
    "higher_referral": "请督",
    "referral": "移",
}
#: what follows the region's short name in the abbreviation of a body named after its region
ISSUER_SHORT_FORMS: dict[str, str] = {"office": "安办", "committee": "安委", "government": "政"}
#: roles of the target enterprise that sign for (acknowledge) and answer (respond) a notice
ENTERPRISE_SIDE_ROLES = (Role.PRINCIPAL, Role.SAFETY_OFFICER, Role.RECTIFIER)
#: what a viewer may do with a notice (``notice_actions``)
NOTICE_ACTIONS = ("acknowledge", "respond", "close")
MAX_TEXT = 5000
MAX_PER_PAGE = 200
#: 挂牌督办 level by the issuing body's region level (Hazard.listed_level: 1 省级 … 4 乡镇级)
LISTING_LEVELS = {"province": 1, "city": 2, "county": 3, "township": 4}
LISTING_LEVEL_LABELS = {1: "省级", 2: "市级", 3: "县级", 4: "乡镇级"}
_LEVEL_RANK = {level.value: rank for rank, level in enumerate(RegionLevel)}


class NoticeTemplateError(EngineError):
    """A notice template is missing, refers to a fact that is not there, or broke the sandbox."""

    code = "notice_template_error"

    def __init__(self, template: str, reason: str) -> None:
        self.template = template
        self.reason = reason
        super().__init__(f"督办文书模板 {template} 无法生成文书: {reason}")


# --- the issuing body ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issuer:
    """The body that issues (and numbers) a notice."""

    #: ``dept:7``, ``office:region:5``, ``committee:region:5``, ``government:region:5``
    key: str
    name: str
    abbreviation: str
    #: the ``ISSUER_BODIES`` key it stands for (a lead department that is the 安委办 counts as office)
    body: str
    #: the region the body belongs to
    region: Region
    department: Department | None = None


_AUTONOMOUS = re.compile(r"^(内蒙古|[\u4e00-\u9fff]{2}?)[\u4e00-\u9fff]*?自治(区|州|县|旗)$")
_SUFFIXES = (
    "特别行政区",
    "街道办事处",
    "街道",
    "地区",
    "林区",
    "新区",
    "省",
    "市",
    "县",
    "区",
    "旗",
    "盟",
    "镇",
    "乡",
)


def region_short_name(name: str) -> str:
    """The region's name without its administrative suffix: 郎溪县 → 郎溪, 宣城市 → 宣城,
    安徽省 → 安徽, 广西壮族自治区 → 广西, 内蒙古自治区 → 内蒙古 (a bare suffix stays as it is)."""
    name = name.strip()
    match = _AUTONOMOUS.match(name)
    if match:
        return match.group(1)
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _region_chain(region: Region) -> list[Region]:
    """``region`` and its ancestors, nearest first."""
    chain: list[Region] = []
    current: Region | None = region
    while current is not None and len(chain) < 16:
        chain.append(current)
        current = current.parent
    return chain


def _region_at(region: Region, level: str) -> Region:
    """The ancestor of ``region`` (or itself) at ``level``; when the region sits above that level
    (a hazard registered at a city, say), the nearest region at a higher level."""
    chain = _region_chain(region)
    for candidate in chain:
        if candidate.level == level:
            return candidate
    wanted = _LEVEL_RANK[level]
    for candidate in chain:
        if _LEVEL_RANK[str(candidate.level)] <= wanted:
            return candidate
    return chain[-1]


#: the 安委办 department of a region (None: it has none), looked up once per notice
_Offices = dict[int, Department | None]


def _office_department(
    session: Session, region: Region, offices: _Offices | None = None
) -> Department | None:
    if offices is not None and region.id in offices:
        return offices[region.id]
    office = session.scalars(
        select(Department)
        .where(Department.region_id == region.id, Department.is_safety_committee_office.is_(True))
        .order_by(Department.id)
    ).first()
    if offices is not None:
        offices[region.id] = office
    return office


def _office_issuer(session: Session, region: Region, offices: _Offices | None = None) -> Issuer:
    office = _office_department(session, region, offices)
    if office is not None:
        return Issuer(
            f"office:region:{region.id}", office.name, office.abbreviation, "office", region, office
        )
    return Issuer(
        f"office:region:{region.id}",
        f"{region.name}安全生产委员会办公室",
        region_short_name(region.name) + ISSUER_SHORT_FORMS["office"],
        "office",
        region,
    )


def _department_issuer(session: Session, department: Department, offices: _Offices | None = None) -> Issuer:
    if department.is_safety_committee_office:
        return _office_issuer(session, department.region, offices)
    return Issuer(
        f"dept:{department.id}",
        department.name,
        department.abbreviation,
        "lead_department",
        department.region,
        department,
    )


def resolve_issuer(
    session: Session, hazard: Hazard, rung: policy.LadderRung, *, offices: _Offices | None = None
) -> Issuer:
    """Who issues ``rung``'s notice for ``hazard`` (see the module docstring).

    ``offices``: 安委办 departments looked up already, by region id (filled in here).
    """
    if rung.issuer == "lead_department":
        if hazard.lead_department is not None:
            return _department_issuer(session, hazard.lead_department, offices)
        return _office_issuer(session, _region_at(hazard.region, RegionLevel.COUNTY.value), offices)
    region = _region_at(hazard.region, rung.issuer_level or RegionLevel.COUNTY.value)
    if rung.issuer == "office":
        return _office_issuer(session, region, offices)
    short = region_short_name(region.name) + ISSUER_SHORT_FORMS[rung.issuer]
    if rung.issuer == "committee":
        return Issuer(
            f"committee:region:{region.id}", f"{region.name}安全生产委员会", short, "committee", region
        )
    if rung.issuer == "government":
        return Issuer(f"government:region:{region.id}", f"{region.name}人民政府", short, "government", region)
    raise InvalidInput({"issuer": [f"未知的签发机关 {rung.issuer!r}"]})


def document_number(abbreviation: str, kind: str, year: int, sequence: int) -> str:
    """文号: ``郎应急`` + ``函`` + ``〔2026〕`` + ``3号``."""
    return f"{abbreviation}{KIND_SHORT_FORMS[kind]}〔{year}〕{sequence}号"


_SEQUENCES = NumberSequence.__table__


def _next_number(session: Session, scope: str, year: int) -> int:
    """Increment a per-scope, per-year counter under its row lock (gap-free, concurrency-safe).

    The same protocol as the hazard numbers (``engine.runtime._next_number``): one
    ``UPDATE … RETURNING`` takes the row lock until the transaction ends; the first number of a
    scope and year inserts the row in a savepoint and retries the UPDATE if another transaction
    inserted it first. Core statements on the session's connection: nothing else of the unit of
    work is flushed here.
    """
    connection = session.connection()
    for _ in range(3):
        value = connection.execute(_step_statement(1), {"the_scope": scope, "the_year": year}).scalar()
        if value is not None:
            return int(value)
        try:
            with connection.begin_nested():
                connection.execute(insert(_SEQUENCES).values(scope=scope, year=year, value=1))
            return 1
        except IntegrityError:
            continue
    raise Conflict("文号分配冲突，请重试")


def _give_back_number(session: Session, scope: str, year: int) -> None:
    """Undo :func:`_next_number` (its row is still locked by this transaction, so no later number
    was taken): the count goes on without a gap."""
    session.connection().execute(_step_statement(-1), {"the_scope": scope, "the_year": year})


@functools.cache
def _step_statement(step: int) -> Any:
    """``UPDATE number_sequence SET value = value + step … RETURNING value`` for a scope and year."""
    return (
        update(_SEQUENCES)
        .where(_SEQUENCES.c.scope == bindparam("the_scope"), _SEQUENCES.c.year == bindparam("the_year"))
        .values(value=_SEQUENCES.c.value + step)
        .returning(_SEQUENCES.c.value)
    )


def _path_prefixes(path: str) -> list[str]:
    """``/34/3418/341821/`` → ``/34/``, ``/34/3418/``, ``/34/3418/341821/`` (every ancestor's path)."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


_NOTICES = Notice.__table__
#: the columns an issued notice starts without (status answers, closing)
_NOTICE_COLUMNS = (
    "acknowledged_at",
    "acknowledged_by_id",
    "response_text",
    "responded_at",
    "responded_by_id",
    "closed_at",
    "closed_by_id",
    "close_note",
)


@functools.lru_cache(maxsize=2)
def _insert_notice(on_sqlite: bool) -> Any:
    """``INSERT … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`` (None: the key exists)."""
    upsert = sqlite.insert if on_sqlite else postgresql.insert
    return (
        upsert(_NOTICES)
        .on_conflict_do_nothing(index_elements=[_NOTICES.c.dedupe_key])
        .returning(_NOTICES.c.id)
    )


def _load_organisations(session: Session, hazard: Hazard) -> list[Any]:
    """Read what issuing needs about the hazard's organisations in one statement: its region and
    every ancestor (a lookup of the materialised path's prefixes, instead of a query per parent),
    each with its enterprise and lead department.

    They land in the session's identity map, so ``hazard.region``, ``region.parent``,
    ``hazard.enterprise``, ``hazard.lead_department`` and ``department.region`` are read without
    further queries (whatever is not found here is still loaded on access). The caller keeps
    the returned rows while it reads them: the identity map holds its objects only weakly.
    """
    params = {
        "prefixes": _path_prefixes(hazard.region_path or ""),
        "enterprise_id": hazard.enterprise_id,
        "department_id": hazard.lead_department_id,  # None: no department (= NULL matches nothing)
    }
    return list(session.execute(_organisations_statement(), params).all())


@functools.cache
def _organisations_statement() -> Any:
    return (
        select(Region, Enterprise, Department)
        .select_from(Region)
        .join(Enterprise, Enterprise.id == bindparam("enterprise_id"))
        .outerjoin(Department, Department.id == bindparam("department_id"))
        .where(Region.path.in_(bindparam("prefixes", expanding=True)))
    )


# --- recipients ---------------------------------------------------------------------------------------


def _recipient(key: str, name: str) -> dict[str, str]:
    return {"key": key, "label": policy.RECIPIENTS[key], "name": name}


def _resolve_recipients(
    session: Session,
    hazard: Hazard,
    rung: policy.LadderRung,
    issuer: Issuer,
    offices: _Offices | None = None,
) -> list[dict[str, str]]:
    """The rung's ``recipients`` keys as names (an unregistered actual controller is left out)."""
    enterprise = hazard.enterprise
    county = _region_at(hazard.region, RegionLevel.COUNTY.value)
    seat = issuer.region if issuer.body != "lead_department" else county
    out: list[dict[str, str]] = []
    for key in rung.recipients:
        if key == "enterprise":
            out.append(_recipient(key, enterprise.name))
        elif key == "principal":
            out.append(_recipient(key, f"{enterprise.name}主要负责人{enterprise.principal_name}"))
        elif key == "actual_controller":
            if enterprise.actual_controller:
                out.append(_recipient(key, f"{enterprise.name}实际控制人{enterprise.actual_controller}"))
        elif key == "competent_department":
            lead = hazard.lead_department
            out.append(
                _recipient(
                    key, lead.name if lead is not None else _office_issuer(session, county, offices).name
                )
            )
        elif key == "office":
            out.append(_recipient(key, _office_issuer(session, seat, offices).name))
        elif key == "member_units":
            out.append(_recipient(key, f"{seat.name}安全生产委员会各成员单位"))
        elif key == "public":
            out.append(_recipient(key, "社会公众"))
        elif key == "higher_government":
            parent = seat.parent
            out.append(_recipient(key, f"{parent.name}人民政府" if parent is not None else "上一级人民政府"))
        elif key == "discipline":
            out.append(_recipient(key, f"{seat.name}纪委监委"))
    return out


# --- rendering ----------------------------------------------------------------------------------------

#: output limits inside the sandbox (a template is data a department edits, not trusted code)
MAX_REPEAT = 100_000
MAX_POWER = 1_000


class _NoticeSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on ``*`` and ``**`` (no gigabyte strings, no huge powers)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_POWER:
            raise jinja2.sandbox.SecurityError("指数过大")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > MAX_REPEAT
                ):
                    raise jinja2.sandbox.SecurityError("重复次数过大")
        return super().call_binop(context, operator, left, right)


def _parse_instant(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _cn_date(value: object, tz: str, default: str = "") -> str:
    """``2026年12月15日`` (business time) from an ISO instant; ``default`` when empty."""
    when = _parse_instant(value)
    if when is None:
        return default
    local = when.astimezone(ZoneInfo(tz))
    return f"{local.year}年{local.month}月{local.day}日"


def _cn_datetime(value: object, tz: str, default: str = "") -> str:
    """``2026年12月15日9时30分`` (business time)."""
    when = _parse_instant(value)
    if when is None:
        return default
    local = when.astimezone(ZoneInfo(tz))
    minute = f"{local.minute}分" if local.minute else ""
    return f"{local.year}年{local.month}月{local.day}日{local.hour}时{minute}"


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: str, tz: str) -> _NoticeSandbox:
    env = _NoticeSandbox(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["cn_date"] = functools.partial(_cn_date, tz=tz)
    env.filters["cn_datetime"] = functools.partial(_cn_datetime, tz=tz)
    return env


def templates_dir(ctx: EngineContext) -> Path:
    return Path(ctx.settings.processes_dir) / "notices"


def render_notice(ctx: EngineContext, template: str, facts: Mapping[str, Any]) -> tuple[str, str]:
    """``(title, body_html)`` of ``processes/notices/<template>.html.j2`` rendered from ``facts``.

    The template's ``title`` block is the title (plain text); the whole template is the body.

    :raises NoticeTemplateError: no such template, a missing fact, a sandbox violation, any error.
    """
    name = f"{template}.html.j2"
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", template):
        raise NoticeTemplateError(name, "模板名只能由小写字母、数字和下划线组成")
    env = _environment(str(templates_dir(ctx)), ctx.settings.business_timezone)
    try:
        compiled = env.get_template(name)
        body = compiled.render(dict(facts))
        block = compiled.blocks.get("title")
        if block is None:
            raise NoticeTemplateError(name, "模板缺少 {% block title %}")
        title_markup = Markup("".join(block(compiled.new_context(dict(facts)))))
    except NoticeTemplateError:
        raise
    except jinja2.TemplateNotFound:
        raise NoticeTemplateError(name, "模板文件不存在") from None
    except jinja2.TemplateSyntaxError as exc:
        raise NoticeTemplateError(name, f"第 {exc.lineno} 行语法错误: {exc.message}") from None
    except jinja2.sandbox.SecurityError as exc:
        raise NoticeTemplateError(name, f"模板访问了不允许的内容（沙箱拒绝）: {exc}") from None
    except jinja2.UndefinedError as exc:
        raise NoticeTemplateError(name, f"引用了不存在的变量: {exc.message}") from None
    except Exception as exc:  # a template is data: whatever it does wrong is its error, not a 500
        raise NoticeTemplateError(name, f"{type(exc).__name__}: {exc}") from None
    title = " ".join(title_markup.striptags().split())
    if not title:
        raise NoticeTemplateError(name, "标题为空")
    return title[:300], body.strip() + "\n"


# --- facts --------------------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _overdue_working_days(
    calendar: working_calendar.WorkingCalendar, deadline: dt.datetime | None, now: dt.datetime
) -> int | None:
    if deadline is None or now <= deadline:
        return None
    try:
        return calendar.working_days_between(calendar.local_date(deadline), calendar.local_date(now))
    except working_calendar.CalendarOutOfRange:
        return None


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(dict(data), ensure_ascii=False, default=str))
    return loaded


# --- issuing ------------------------------------------------------------------------------------------


@dataclass
class PreparedNotice:
    """A notice with everything but its 文号: what :func:`issue_prepared` numbers, renders and inserts."""

    #: the notice's columns, but ``sequence``, ``document_number``, ``title`` and ``body_html``
    row: dict[str, Any]
    #: the facts it is rendered from, but ``document_number`` and ``sequence``
    snapshot: dict[str, Any]
    template: str
    #: ``notice:<issuer_key>:<kind>``: the number_sequence scope of its 文号
    scope: str


def issue_notice(
    session: Session,
    ctx: EngineContext,
    *,
    hazard: Hazard,
    instance_id: int,
    rung: policy.LadderRung,
    trigger: str,
    dedupe_key: str,
    due_at: dt.datetime | None,
    profile: PolicyProfile,
    facts: Mapping[str, Any] | None = None,
) -> Notice | None:
    """Issue ``rung``'s notice for ``hazard``; None (nothing issued) if ``dedupe_key`` exists.

    The caller holds the hazard's instance lock (so the check below is exact; the unique
    constraint on ``dedupe_key`` is the backstop) and appends the ``notice_issued`` event itself
    (``notice_id``, ``number``, ``kind``, ``title``). ``facts`` are merged over the computed
    facts (JSON values). :func:`prepare_notice` (every read) then :func:`issue_prepared` (the
    文号, the text, the row).

    :raises NoticeTemplateError: the template is missing or fails (nothing is issued, no number
        is used up).
    :raises NotFound: the rung's ``response`` names a value the profile lacks.
    :raises Conflict: the 文号 exists already (see :func:`issue_prepared`).
    """
    prepared = prepare_notice(
        session,
        ctx,
        hazard=hazard,
        instance_id=instance_id,
        rung=rung,
        trigger=trigger,
        dedupe_key=dedupe_key,
        due_at=due_at,
        profile=profile,
        facts=facts,
    )
    return issue_prepared(session, ctx, prepared) if prepared is not None else None


def prepare_notice(
    session: Session,
    ctx: EngineContext,
    *,
    hazard: Hazard,
    instance_id: int,
    rung: policy.LadderRung,
    trigger: str,
    dedupe_key: str,
    due_at: dt.datetime | None,
    profile: PolicyProfile,
    facts: Mapping[str, Any] | None = None,
    dedupe_checked: bool = False,
) -> PreparedNotice | None:
    """Everything :func:`issue_notice` reads and computes (issuer, recipients, deadlines, facts),
    without the 文号; None if ``dedupe_key`` exists.

    ``dedupe_checked``: the caller has made that check itself, under the instance lock (the
    runtime reads it with the instance's issued rungs). Nothing is written.

    :raises NotFound: the rung's ``response`` names a value the profile lacks.
    """
    if not dedupe_checked and (
        session.scalar(select(Notice.id).where(Notice.dedupe_key == dedupe_key)) is not None
    ):
        return None
    if rung.kind not in policy.NOTICE_KINDS:
        raise InvalidInput({"kind": [f"未知的文书种类 {rung.kind!r}"]})
    now = ctx.clock.now()
    calendar = working_calendar.current_calendar()
    organisations = _load_organisations(session, hazard)  # noqa: F841  (kept alive until the end)
    offices: _Offices = {}
    issuer = resolve_issuer(session, hazard, rung, offices=offices)
    recipients = _resolve_recipients(session, hazard, rung, issuer, offices)
    year = now.astimezone(ctx.tz).year

    response_due_at: dt.datetime | None = None
    response_period: str | None = None
    response_label: str | None = None
    meeting_at: dt.datetime | None = None
    place: str | None = None
    if rung.response:
        value = policy.policy_value(profile, rung.response)
        deadline = policy.deadline_for(calendar, value, now)
        response_due_at, response_period, response_label = deadline.at, value.describe(), value.label
        if rung.kind == "interview":
            # a meeting is held during the day: 09:00 on the deadline's day (exact for hours/minutes)
            meeting_at = (
                deadline.at
                if value.unit in ("hours", "minutes")
                else dt.datetime.combine(deadline.day, dt.time(9, 0), ctx.tz).astimezone(dt.UTC)
            )
            place = rung.place or f"{issuer.name}会议室"
    elif rung.kind == "interview":
        place = rung.place or f"{issuer.name}会议室"
    listing_deadline: dt.datetime | None = None
    if rung.kind in ("listing_notice", "listing_announcement"):
        limit_value = policy.policy_values(profile).get("listing_max_duration")
        limit = policy.deadline_for(calendar, limit_value, now).at if limit_value is not None else None
        current = hazard.deadline if hazard.deadline is not None and hazard.deadline > now else None
        listing_deadline = min(d for d in (current, limit) if d is not None) if (current or limit) else None
    offset_value = policy.policy_values(profile).get(rung.offset) if rung.offset else None

    enterprise = hazard.enterprise
    co_departments: Sequence[str] = []
    if "co_departments" in inspect(hazard).unloaded or hazard.co_departments:
        co_departments = session.scalars(
            select(Department.name)
            .join(HazardDepartment, HazardDepartment.department_id == Department.id)
            .where(HazardDepartment.hazard_id == hazard.id)
            .order_by(Department.id)
        ).all()
    lead_name = hazard.lead_department.name if hazard.lead_department is not None else None
    target_departments = [n for n in dict.fromkeys([lead_name, *co_departments]) if n]
    listing_level = LISTING_LEVELS.get(str(issuer.region.level))
    computed: dict[str, Any] = {
        "kind": rung.kind,
        "kind_label": policy.NOTICE_KINDS[rung.kind],
        "rung": rung.key,
        "rung_label": rung.label,
        "level": rung.level,
        "trigger": trigger,
        "trigger_label": policy.TRIGGERS.get(trigger, trigger),
        "issuer_key": issuer.key,
        "issuer_name": issuer.name,
        "issuer_abbreviation": issuer.abbreviation,
        "issuer_body": policy.ISSUER_BODIES.get(issuer.body, issuer.body),
        "issuer_region": issuer.region.name,
        "hazard_id": hazard.id,
        "hazard_number": hazard.number,
        "hazard_title": hazard.title,
        "hazard_description": hazard.description,
        "location": hazard.location,
        "grade": hazard.grade,
        "grade_label": GRADE_LABELS.get(hazard.grade, hazard.grade),  # type: ignore[call-overload]
        "enterprise_name": enterprise.name,
        "enterprise_credit_code": enterprise.credit_code,
        "principal_name": enterprise.principal_name,
        "actual_controller": enterprise.actual_controller,
        "region_name": hazard.region.name,
        "lead_department": lead_name,
        "co_departments": list(co_departments),
        "target_departments": target_departments,
        "determination_basis": hazard.determination_basis,
        "deadline": _iso(hazard.deadline),
        "overdue_working_days": _overdue_working_days(calendar, hazard.deadline, now),
        "escalation_offset": offset_value.describe() if offset_value is not None else None,
        "policy_basis": (
            f"{profile.content.get('title') or profile.key}（{profile.key} 第{profile.version}版）"
            + (f"：{offset_value.label}，{offset_value.describe()}" if offset_value is not None else "")
        ),
        "policy_source": offset_value.source if offset_value is not None else None,
        "due_at": _iso(due_at),
        "issued_at": _iso(now),
        "response_due_at": _iso(response_due_at),
        "response_period": response_period,
        "response_label": response_label,
        "meeting_at": _iso(meeting_at),
        "place": place,
        "listing_level": listing_level,
        "listing_level_label": LISTING_LEVEL_LABELS.get(listing_level or 0, ""),
        "listing_deadline": _iso(listing_deadline),
        "recipients": recipients,
        # 主送: the recipients, less the issuing body itself (a lead department writing to itself)
        "addressees": [r["name"] for r in recipients if r["name"] != issuer.name] or [enterprise.name],
        "copy_to": [n for n in target_departments if n not in {r["name"] for r in recipients}],
        "year": year,
    }
    snapshot = _jsonable({**computed, **(facts or {})})

    row = {
        "hazard_id": hazard.id,
        "instance_id": instance_id,
        "rung": rung.key,
        "kind": rung.kind,
        "level": rung.level,
        "trigger": trigger,
        "dedupe_key": dedupe_key,
        "issuer_key": issuer.key,
        "issuer_name": issuer.name,
        "issuer_abbreviation": issuer.abbreviation,
        "year": year,
        "enterprise_id": hazard.enterprise_id,
        "target_departments": target_departments,
        "recipients": recipients,
        "facts": snapshot,
        "due_at": due_at,
        "issued_at": now,
        "response_due_at": response_due_at,
        "meeting_at": meeting_at,
        "place": place,
        "status": NoticeStatus.ISSUED.value,
    }
    return PreparedNotice(row, snapshot, rung.template, f"notice:{issuer.key}:{rung.kind}")


def issue_prepared(session: Session, ctx: EngineContext, prepared: PreparedNotice) -> Notice | None:
    """Number, render and insert a prepared notice; None if its ``dedupe_key`` exists already.

    The 文号 is taken here, after every read: its row lock (shared by every notice of the issuer,
    kind and year) is held from here to the end of the transaction, so the caller takes it as late
    as it can (the runtime: when the step is written). The notice is inserted at once (``INSERT …
    ON CONFLICT (dedupe_key) DO NOTHING RETURNING``); nothing else of the caller's unit of work is
    flushed here. A failure leaves no gap in the sequence: a template that fails gives the number
    back (the row is still locked by this transaction, so no later number was taken), as does a
    notice the dedupe backstop refused.

    :raises NoticeTemplateError: the template is missing or fails (nothing is issued).
    :raises Conflict: the 文号 exists already (the numbering was tampered with); on PostgreSQL the
        transaction is then aborted and must be rolled back.
    """
    row, snapshot, scope = dict(prepared.row), prepared.snapshot, prepared.scope
    year, kind = row["year"], row["kind"]
    sequence = _next_number(session, scope, year)
    try:
        number = document_number(row["issuer_abbreviation"], kind, year, sequence)
        snapshot["document_number"] = number
        snapshot["sequence"] = sequence
        title, body_html = render_notice(ctx, prepared.template, snapshot)
    except Exception:
        _give_back_number(session, scope, year)
        raise
    row.update(sequence=sequence, document_number=number, title=title, body_html=body_html)
    try:
        notice_id = session.connection().execute(_insert_notice(is_sqlite(session)), row).scalar()
    except IntegrityError:
        # the same 文号 exists: the sequence row was reset or a notice was numbered by hand
        if is_sqlite(session):  # the statement failed, not the transaction: keep the count exact
            _give_back_number(session, scope, year)
        raise Conflict("文号分配冲突，请重试") from None
    if notice_id is None:  # another transaction issued it first (unique dedupe_key)
        _give_back_number(session, scope, year)
        return None
    # the row as written, in the session as a persistent object (no read back)
    notice = Notice(**{column: None for column in _NOTICE_COLUMNS}, **row, id=notice_id)
    make_transient_to_detached(notice)
    session.add(notice)
    return notice


# --- status -------------------------------------------------------------------------------------------


def _load_for_update(
    session: Session, notice_id: int, actor: Actor
) -> tuple[Notice, ProcessInstance, Hazard]:
    """Lock the notice's process instance (serialising every change on that hazard), then read
    the notice and its hazard fresh.

    :raises NotFound: no such notice, or the actor may not see its hazard.
    """
    instance_id = session.scalar(select(Notice.instance_id).where(Notice.id == notice_id))
    if instance_id is None:
        raise NotFound("督办文书", notice_id)
    instance = session.scalars(
        select(ProcessInstance)
        .where(ProcessInstance.id == instance_id)
        .options(lazyload(ProcessInstance.definition_version))  # no outer join under FOR UPDATE
        .with_for_update(of=ProcessInstance)
        .execution_options(populate_existing=True)
    ).one()
    notice = session.get_one(Notice, notice_id, populate_existing=True)
    hazard = session.get_one(
        Hazard, notice.hazard_id, options=[joinedload(Hazard.co_departments)], populate_existing=True
    )
    if not can_see(actor, hazard):
        raise NotFound("督办文书", notice_id)
    return notice, instance, hazard


def _issuer_region_path(session: Session, notice: Notice) -> str | None:
    kind, _, rest = notice.issuer_key.partition(":")
    if kind == "dept":
        return session.scalar(
            select(Region.path)
            .join(Department, Department.region_id == Region.id)
            .where(Department.id == int(rest))
        )
    region_id = rest.rpartition(":")[2]
    return (
        session.scalar(select(Region.path).where(Region.id == int(region_id)))
        if region_id.isdigit()
        else None
    )


def _may_answer(actor: Actor, hazard: Hazard) -> bool:
    """The target enterprise's principal, safety officer or rectifier."""
    return can_act_as_any(actor, ENTERPRISE_SIDE_ROLES, hazard)


def _may_close(session: Session, actor: Actor, notice: Notice, hazard: Hazard) -> bool:
    """The issuing side: reviewers of the issuing department, or a 安委办 covering the issuer."""
    kind, _, rest = notice.issuer_key.partition(":")
    if kind == "dept" and rest.isdigit():
        for scope in actor.scopes_for([Role.DEPT_REVIEWER]):
            if scope.department_id == int(rest) and can_see(actor, hazard):
                return True
    if not can_act_as(actor, Role.OFFICE_ADMIN, hazard):
        return False
    issuer_path = _issuer_region_path(session, notice) or hazard.region_path
    return any(
        s.region_path is not None and issuer_path.startswith(s.region_path)
        for s in actor.scopes_for([Role.OFFICE_ADMIN])
    )


def notice_actions(session: Session, actor: Actor, notice: Notice, hazard: Hazard | None = None) -> list[str]:
    """What ``actor`` may do with ``notice`` now (pages and the API offer these; the engine checks again)."""
    hazard = hazard or session.get_one(Hazard, notice.hazard_id, options=[joinedload(Hazard.co_departments)])
    allowed: list[str] = []
    status = notice.status
    if _may_answer(actor, hazard):
        if status == NoticeStatus.ISSUED.value:
            allowed.append("acknowledge")
        if status == NoticeStatus.ACKNOWLEDGED.value:
            allowed.append("respond")
    if status != NoticeStatus.CLOSED.value and _may_close(session, actor, notice, hazard):
        allowed.append("close")
    return allowed


def _record(
    session: Session,
    ctx: EngineContext,
    instance: ProcessInstance,
    notice: Notice,
    action: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    events.append_event(
        session,
        instance,
        key=ctx.audit_key,
        action=action,
        at=now,
        actor_id=actor.user_id or None,
        payload={"notice_id": notice.id, "number": notice.document_number},
    )


_STATUS_CONFLICTS = {
    NoticeStatus.ACKNOWLEDGED.value: "该督办文书已签收，无需重复签收",
    NoticeStatus.RESPONDED.value: "该督办文书已回复",
    NoticeStatus.CLOSED.value: "该督办文书已办结，不能再办理",
}


def acknowledge(session: Session, ctx: EngineContext, *, notice_id: int, actor: Actor) -> Notice:
    """签收: the target enterprise confirms receipt (issued → acknowledged).

    :raises NotFound: unknown or not visible. :raises Forbidden: not the target enterprise's side.
    :raises Conflict: not in ``issued``.
    """
    notice, instance, hazard = _load_for_update(session, notice_id, actor)
    if not _may_answer(actor, hazard):
        raise Forbidden("只有被督办企业的主要负责人、安全管理人员或整改责任人可以签收督办文书")
    if notice.status != NoticeStatus.ISSUED.value:
        raise Conflict(_STATUS_CONFLICTS.get(notice.status, "督办文书状态已变化，请刷新后重试"))
    now = ctx.clock.now()
    notice.status = NoticeStatus.ACKNOWLEDGED.value
    notice.acknowledged_at = now
    notice.acknowledged_by_id = actor.user_id or None
    _record(session, ctx, instance, notice, "notice_acknowledged", actor, now)
    session.flush()
    return notice


def _text(value: str | None, field: str, message: str, *, required: bool = True) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise InvalidInput({field: [message]})
        return None
    if len(text) > MAX_TEXT:
        raise InvalidInput({field: [f"不能超过 {MAX_TEXT} 个字符"]})
    return text


def respond(session: Session, ctx: EngineContext, *, notice_id: int, actor: Actor, text: str) -> Notice:
    """书面回复: the target enterprise answers a signed-for notice (acknowledged → responded).

    :raises InvalidInput: empty or too long. :raises Forbidden: not the enterprise's side.
    :raises Conflict: not signed for yet, answered already, or closed.
    """
    notice, instance, hazard = _load_for_update(session, notice_id, actor)
    if not _may_answer(actor, hazard):
        raise Forbidden("只有被督办企业的主要负责人、安全管理人员或整改责任人可以回复督办文书")
    if notice.status == NoticeStatus.ISSUED.value:
        raise Conflict("请先签收该督办文书，再书面回复")
    if notice.status != NoticeStatus.ACKNOWLEDGED.value:
        raise Conflict(_STATUS_CONFLICTS.get(notice.status, "督办文书状态已变化，请刷新后重试"))
    answer = _text(text, "text", "请填写回复内容（整改措施、进展和完成时间）")
    now = ctx.clock.now()
    notice.status = NoticeStatus.RESPONDED.value
    notice.response_text = answer
    notice.responded_at = now
    notice.responded_by_id = actor.user_id or None
    _record(session, ctx, instance, notice, "notice_responded", actor, now)
    session.flush()
    return notice


def close(
    session: Session, ctx: EngineContext, *, notice_id: int, actor: Actor, note: str | None = None
) -> Notice:
    """办结: the issuing side closes the notice (from any open status; a note is required when the
    enterprise has not answered it).

    :raises Forbidden: not the issuing department's reviewers or a 安委办 covering the issuer.
    :raises Conflict: closed already. :raises InvalidInput: no note for an unanswered notice.
    """
    notice, instance, hazard = _load_for_update(session, notice_id, actor)
    if not _may_close(session, actor, notice, hazard):
        raise Forbidden("只有签发机关的审核人员或安委办可以办结督办文书")
    if notice.status == NoticeStatus.CLOSED.value:
        raise Conflict(_STATUS_CONFLICTS[NoticeStatus.CLOSED.value])
    answered = notice.status == NoticeStatus.RESPONDED.value
    text = _text(note, "note", "企业尚未书面回复，办结须说明理由", required=not answered)
    now = ctx.clock.now()
    notice.status = NoticeStatus.CLOSED.value
    notice.close_note = text
    notice.closed_at = now
    notice.closed_by_id = actor.user_id or None
    _record(session, ctx, instance, notice, "notice_closed", actor, now)
    session.flush()
    return notice


# --- queries ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticePage:
    items: Sequence[Notice]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def hazard_notices(session: Session, actor: Actor, hazard_id: int) -> list[Notice]:
    """The notices of one hazard, oldest first (empty when the actor may not see it)."""
    return list(
        session.scalars(
            select(Notice)
            .join(Hazard, Hazard.id == Notice.hazard_id)
            .where(Notice.hazard_id == hazard_id, hazard_visibility(actor))
            .order_by(Notice.issued_at, Notice.id)
        )
    )


def list_notices(
    session: Session,
    actor: Actor,
    *,
    kind: str | None = None,
    status: str | None = None,
    issuer: str | None = None,
    year: int | None = None,
    hazard_number: str | None = None,
    hazard_id: int | None = None,
    page: int = 1,
    per_page: int = 20,
) -> NoticePage:
    """Notices of the hazards the actor may see, newest first, filtered and paged.

    :raises InvalidInput: an unknown kind or status, or bad paging.
    """
    errors: dict[str, list[str]] = {}
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        errors["page"] = [f"页码从 1 开始，每页 1–{MAX_PER_PAGE} 条"]
    if kind is not None and kind not in policy.NOTICE_KINDS:
        errors["kind"] = [f"必须是 {', '.join(policy.NOTICE_KINDS)} 之一"]
    if status is not None and status not in {s.value for s in NoticeStatus}:
        errors["status"] = [f"必须是 {', '.join(s.value for s in NoticeStatus)} 之一"]
    if errors:
        raise InvalidInput(errors)
    where: list[ColumnElement[bool]] = [hazard_visibility(actor)]
    if kind:
        where.append(Notice.kind == kind)
    if status:
        where.append(Notice.status == status)
    if issuer:
        where.append(Notice.issuer_key == issuer)
    if year is not None:
        where.append(Notice.year == year)
    if hazard_number:
        where.append(Hazard.number.contains(hazard_number.strip(), autoescape=True))
    if hazard_id is not None:
        where.append(Notice.hazard_id == hazard_id)
    total = session.scalar(
        select(func.count(Notice.id)).join(Hazard, Hazard.id == Notice.hazard_id).where(*where)
    )
    items = session.scalars(
        select(Notice)
        .join(Hazard, Hazard.id == Notice.hazard_id)
        .options(contains_eager(Notice.hazard))
        .where(*where)
        .order_by(Notice.issued_at.desc(), Notice.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return NoticePage(items, int(total or 0), page, per_page)


def issuer_choices(session: Session, actor: Actor) -> list[tuple[str, str]]:
    """``(issuer_key, issuer_name)`` of the notices the actor may see (for a filter)."""
    rows = session.execute(
        select(Notice.issuer_key, func.max(Notice.issuer_name))
        .join(Hazard, Hazard.id == Notice.hazard_id)
        .where(hazard_visibility(actor))
        .group_by(Notice.issuer_key)
        .order_by(Notice.issuer_key)
    ).all()
    return [(key, name) for key, name in rows]


def get_notice(session: Session, actor: Actor, notice_id: int) -> Notice:
    """One notice with its hazard and enterprise.

    :raises NotFound: unknown, or its hazard is outside the actor's scope.
    """
    notice = session.get(
        Notice, notice_id, options=[joinedload(Notice.hazard).joinedload(Hazard.co_departments)]
    )
    if notice is None or not can_see(actor, notice.hazard):
        raise NotFound("督办文书", notice_id)
    return notice


# --- the printable document ---------------------------------------------------------------------------

#: 仿宋/宋体 first (GB/T 9704 body text), ending in the font Debian's fonts-wqy-microhei installs
FONT_STACK = (
    '"FangSong", "仿宋", "FangSong_GB2312", "仿宋_GB2312", "STFangsong", "SimSun", "宋体", '
    '"Songti SC", "Noto Serif CJK SC", "Source Han Serif SC", "AR PL UMing CN", "WenQuanYi Micro Hei"'
)
HEAD_FONT_STACK = (
    '"FZXiaoBiaoSong-B05S", "方正小标宋简体", "SimSun", "宋体", "Songti SC", "Noto Serif CJK SC", '
    '"AR PL UMing CN", "WenQuanYi Micro Hei"'
)

_PRINTABLE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{{ number }} {{ title }}</title>
<link rel="icon" href="data:,">
<style>
@page { size: A4; margin: 37mm 26mm 35mm 28mm; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 156mm; font-family: {{ font }}; font-size: 16pt;
       line-height: 1.75; color: #000; background: #fff; }
.red-head { color: #c00; text-align: center; font-family: {{ head_font }}; font-size: 26pt;
            font-weight: bold; letter-spacing: 0.1em; margin: 0 0 6mm; }
.doc-number { text-align: right; margin: 0; font-size: 16pt; }
.red-line { border: 0; border-top: 2px solid #c00; margin: 2mm 0 8mm; }
h1.title { font-family: {{ head_font }}; font-size: 22pt; font-weight: bold; text-align: center;
           line-height: 1.5; margin: 0 0 8mm; }
.notice-body p { margin: 0; text-indent: 2em; }
.notice-body p.notice-addressee, .notice-body p.notice-copy-to { text-indent: 0; }
.notice-body h2 { font-size: 16pt; font-weight: bold; margin: 4mm 0 0; }
.notice-body ol, .notice-body ul { margin: 0; padding-left: 2em; }
table.notice-facts { width: 100%; border-collapse: collapse; margin: 4mm 0; font-size: 14pt;
                     line-height: 1.5; }
table.notice-facts th, table.notice-facts td { border: 1px solid #000; padding: 1mm 2mm; text-align: left;
                                               vertical-align: top; }
table.notice-facts th { width: 28%; font-weight: normal; white-space: nowrap; }
.notice-signature { margin: 12mm 0 0 auto; width: 60%; text-align: center; }
.notice-signature p { text-indent: 0; }
.notice-copy-to { margin-top: 10mm; border-top: 1px solid #000; border-bottom: 1px solid #000;
                  font-size: 14pt; padding: 1mm 0; }
.print-footer { margin-top: 8mm; font-size: 10pt; color: #555; text-align: right; }
</style>
</head>
<body>
<header class="red-head">{{ issuer }}</header>
<p class="doc-number">{{ number }}</p>
<hr class="red-line">
<h1 class="title">{{ title }}</h1>
{{ body }}
<p class="print-footer">{{ number }} · 隐患 {{ hazard_number }}</p>
</body>
</html>
"""


@functools.lru_cache(maxsize=1)
def _printable_template() -> jinja2.Template:
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(_PRINTABLE)


def render_printable(notice: Notice) -> str:
    """The notice as a complete A4 HTML document (print page and PDF): red 文头 with the issuing
    body, 文号 on the right, a red rule, the title, then the body as issued (with its 落款 and date).

    Self-contained: inline CSS, no scripts, no external resources.
    """
    return _printable_template().render(
        issuer=notice.issuer_name,
        number=notice.document_number,
        title=notice.title,
        # rendered at issue by the sandbox with autoescape on: trusted markup, stored immutable
        body=Markup(notice.body_html),
        hazard_number=(notice.facts or {}).get("hazard_number", ""),
        font=Markup(FONT_STACK),
        head_font=Markup(HEAD_FONT_STACK),
    )
