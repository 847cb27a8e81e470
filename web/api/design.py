"""``/api/v1/forms`` and ``/api/v1/policies``: a sector's task forms and policy profile, read and
published without the browser (the ``/design`` pages' engine calls, :mod:`engine.design`).

Who may: :func:`engine.design.require_editor` for the scope, as on the pages (a process
administrator of a department leading the sector; system administrators, and they alone for the
national scope). A publication goes through :func:`engine.design.publish_form` /
:func:`engine.design.publish_policy`; a refused one is written to the design log
(:func:`engine.design.record_refusal`, in a transaction of its own) and answered 422 with the
messages by field. A scope's unpublished shared draft is replaced only when the request names its
``revision`` (else 409), as the pages refuse to publish over a draft they did not load.

The helpers :func:`known_sector`, :func:`check_draft` and :func:`record_refusal` serve the diagram
endpoints of :mod:`web.api.definitions` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from flask import url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from engine import design
from engine import form_versions
from engine import policy
from engine.errors import Conflict
from engine.errors import DefinitionInvalid
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.models import FormVersion
from engine.models import Sector

from ..auth import api_auth_required
from ..auth import current_actor
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import json_body
from . import operation
from . import query_args
from . import schemas

#: the scope of ``/policies/<scope>`` that names the national profile
NATIONAL = policy.NATIONAL_KEY
FORM_KEY_PARAM = {
    "form_key": {
        "type": "string",
        "pattern": schemas.FORM_KEY_PATTERN,
        "description": "表单标识",
        "example": "rectification_plan",
    }
}
SCOPE_PARAM = {
    "scope": {
        "type": "string",
        "minLength": 1,
        "maxLength": 32,
        "description": f"行业代码，或 {NATIONAL}（全国）",
        "example": "hazchem",
    }
}


# --- shared with the diagram endpoints ---------------------------------------------------------------


def known_sector(session: Session, sector_code: str | None) -> str | None:
    """``sector_code`` itself. :raises NotFound: no such sector."""
    if sector_code is not None and session.get(Sector, sector_code) is None:
        raise NotFound("行业", sector_code)
    return sector_code


def check_draft(session: Session, kind: str, key: str, sector_code: str | None, revision: int | None) -> None:
    """A publication replaces the scope's shared draft only when it names the draft's revision
    (the engine checks that it still is the draft's).

    :raises Conflict: a draft exists and ``revision`` is None.
    """
    draft = design.get_draft(session, kind, key, sector_code)
    if draft is not None and revision is None:
        raise Conflict(
            _(
                "存在未发布的共享草稿（第 {n} 次修改）：发布会取代它。请在请求中给出 revision 确认，"
                "或先在流程设计页面处理该草稿。",
                n=draft.revision,
            )
        )


def record_refusal(
    kind: str,
    key: str,
    sector_code: str | None,
    problems: Sequence[design.GateProblem] | Exception,
    note: str | None,
) -> None:
    """The refused publication in the design log (its own transaction: the publication rolled back)."""
    with sessions().begin() as session:
        design.record_refusal(
            session,
            current_actor(),
            kind,
            key,
            sector_code,
            problems,
            note=note,
            clock=engine_context().clock,
        )


# --- forms --------------------------------------------------------------------------------------------


def _version_data(row: FormVersion, sector_code: str | None) -> dict[str, Any]:
    return {
        "form_key": row.form_key,
        "sector": sector_code,
        "scope": row.scope,
        "version": row.version,
        "title": row.title,
        "content_hash": row.content_hash,
        "created_at": row.created_at,
        "created_by_id": row.created_by_id,
        "note": row.note,
    }


@bp.get("/forms")
@operation(
    "任务表单列表",
    tag="design",
    description=(
        "一个范围（行业，省略为全国）可编辑的任务表单：随系统提供的、已发布的（全国和本行业的最新版本）"
        "和有草稿的。仅该行业牵头部门的流程管理员和系统管理员。"
    ),
    query=schemas.FormScopeQuerySchema,
    response=schemas.FormListSchema,
    errors=(403, 404, 422),
)
@api_auth_required
def list_forms() -> ResponseReturnValue:
    sector = query_args(schemas.FormScopeQuerySchema()).get("sector")
    with read_session() as session:
        known_sector(session, sector)
        design.require_editor(session, current_actor(), sector)
        items = design.form_keys(session, sector, processes_dir=engine_context().settings.processes_dir)
        return schemas.FormListSchema().dump({"sector": sector, "items": items, "total": len(items)})


@bp.get("/forms/<form_key>")
@operation(
    "任务表单",
    tag="design",
    description=(
        "表单定义（字段 JSON）及其版本信息：省略 version 时为该行业新登记的隐患现在使用的表单"
        "（本行业最新版本，否则全国最新版本，否则随系统提供的文件）；给出 version 时为该范围内的那个版本。"
        "draft_revision 是本范围未发布草稿的修改次数（发布时用于确认取代草稿）。"
    ),
    query=schemas.FormQuerySchema,
    response=schemas.FormDocumentSchema,
    errors=(403, 404, 422),
    path=FORM_KEY_PARAM,
)
@api_auth_required
def get_form(form_key: str) -> ResponseReturnValue:
    args = query_args(schemas.FormQuerySchema())
    sector = args.get("sector")
    with read_session() as session:
        known_sector(session, sector)
        design.require_editor(session, current_actor(), sector)
        if "version" in args:
            row = form_versions.get_form_version(session, form_key, sector, args["version"])
        else:
            row = form_versions.latest_form_version(session, form_key, sector)
        if row is not None:
            data = {**_version_data(row, sector), "definition": row.content}
        else:
            shipped = (engine_context().forms or {}).get(form_key)
            if shipped is None:
                raise NotFound("表单", form_key)
            data = {
                "form_key": form_key,
                "sector": sector,
                "scope": None,
                "version": None,
                "title": shipped.title,
                "content_hash": None,
                "created_at": None,
                "created_by_id": None,
                "note": None,
                "definition": shipped.to_dict(),
            }
        draft = design.get_draft(session, "form", form_key, sector)
        data["draft_revision"] = draft.revision if draft is not None else None
        return schemas.FormDocumentSchema().dump(data)


@bp.post("/forms/<form_key>/publish")
@operation(
    "发布任务表单",
    tag="design",
    description=(
        "把表单定义发布为该范围的下一个版本：此后新登记的该行业隐患使用它，运行中的保留原版本。"
        "删除流程图据以分支的字段、改变其选项值、删除期限字段或系统按名读取的字段会被拒绝（422，"
        "errors 按字段 fields.<字段名>），拒绝记入设计日志。"
        "内容与最新版本相同时不生成新版本（created 为 false）。"
    ),
    body=schemas.FormPublishRequestSchema,
    response=schemas.FormPublishedSchema,
    status=201,
    errors=(400, 403, 404, 409, 415, 422),
    location=True,
    path=FORM_KEY_PARAM,
)
@api_auth_required
def publish_form(form_key: str) -> ResponseReturnValue:
    data = json_body(schemas.FormPublishRequestSchema())
    sector, note, revision = data["sector"], data["note"], data["revision"]
    actor = current_actor()
    ctx = engine_context()
    try:
        with sessions().begin() as session:
            known_sector(session, sector)
            design.require_editor(session, actor, sector)
            check_draft(session, "form", form_key, sector, revision)
            result = design.publish_form(
                session,
                actor,
                form_key=form_key,
                sector_code=sector,
                document=data["definition"],
                note=note,
                revision=revision,
                clock=ctx.clock,
                processes_dir=ctx.settings.processes_dir,
            )
            row = form_versions.get_form_version(session, form_key, sector, result.version)
            published = {**_version_data(row, sector), "created": result.created}
            body = schemas.FormPublishedSchema().dump(published)
    except (InvalidInput, DefinitionInvalid) as exc:
        record_refusal("form", form_key, sector, exc, note)
        raise
    location = url_for("api.get_form", form_key=form_key, version=result.version, **_scope_args(sector))
    return body, 201, {"Location": location}


def _scope_args(sector_code: str | None) -> Mapping[str, str]:
    return {"sector": sector_code} if sector_code is not None else {}


# --- policy profiles ----------------------------------------------------------------------------------


def _policy_scope(scope: str) -> str | None:
    return None if scope == NATIONAL else scope


@bp.get("/policies/<scope>")
@operation(
    "策略配置",
    tag="design",
    description=(
        f"一个范围（行业代码，或 {NATIONAL} 为全国）已发布的策略配置：document 是配置文档（行业的只含"
        "覆盖全国的数值和督办梯度），effective 是继承后生效的全部数值与梯度。行业尚未发布时 version 为 null，"
        "document 为继承全国配置的空白文档。"
    ),
    response=schemas.PolicySchema,
    errors=(403, 404),
    path=SCOPE_PARAM,
)
@api_auth_required
def get_policy(scope: str) -> ResponseReturnValue:
    sector = _policy_scope(scope)
    with read_session() as session:
        known_sector(session, sector)
        design.require_editor(session, current_actor(), sector)
        document, _revision, version = design.policy_document(session, sector, include_draft=False)
        key = design.policy_key(session, sector)
        profile = policy.get_profile(session, key, version) if version is not None else None
        draft = design.get_draft(session, "policy", key, sector)
        return schemas.PolicySchema().dump(
            {
                "sector": sector,
                "key": key,
                "version": version,
                "created_at": profile.created_at if profile is not None else None,
                "created_by_id": profile.created_by_id if profile is not None else None,
                "note": profile.note if profile is not None else None,
                "draft_revision": draft.revision if draft is not None else None,
                "document": document,
                "effective": design.effective_policy(session, sector, document),
            }
        )


@bp.post("/policies/<scope>/publish")
@operation(
    "发布策略配置",
    tag="design",
    description=(
        "把策略配置文档（期限、督办数值及单位和出处，督办梯度）发布为该范围的下一个版本：此后新登记的"
        "该行业隐患使用它，运行中的保留原版本。文档的 key、sector、region 取路径中的范围。被拒绝的文档"
        "（422，errors 按 values.<名称>、ladder.rungs.<梯度> 等）记入设计日志。"
    ),
    body=schemas.PolicyPublishRequestSchema,
    response=schemas.PolicyPublishedSchema,
    status=201,
    errors=(400, 403, 404, 409, 415, 422),
    location=True,
    path=SCOPE_PARAM,
)
@api_auth_required
def publish_policy(scope: str) -> ResponseReturnValue:
    data = json_body(schemas.PolicyPublishRequestSchema())
    sector, note, revision = _policy_scope(scope), data["note"], data["revision"]
    actor = current_actor()
    key = scope
    try:
        with sessions().begin() as session:
            known_sector(session, sector)
            design.require_editor(session, actor, sector)
            key = design.policy_key(session, sector)
            check_draft(session, "policy", key, sector, revision)
            result = design.publish_policy(
                session,
                actor,
                sector_code=sector,
                document=data["document"],
                note=note,
                revision=revision,
                clock=engine_context().clock,
            )
    except InvalidInput as exc:
        record_refusal("policy", key, sector, exc, note)
        raise
    body = schemas.PolicyPublishedSchema().dump(
        {
            "sector": sector,
            "key": result.key,
            "version": result.version,
            "created": result.created,
            "warnings": [problem_data(p) for p in result.warnings],
        }
    )
    return body, 201, {"Location": url_for("api.get_policy", scope=sector or NATIONAL)}


def problem_data(problem: design.GateProblem, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A gate problem as :class:`web.api.schemas.GateProblemSchema` dumps it (``names``: element names)."""
    return {
        "element_id": problem.element,
        "element_name": (names or {}).get(problem.element or ""),
        "message": problem.message,
        "severity": problem.severity,
    }
