"""``/api/v1/definitions``: the deployed process definitions, their versions and differences, and
moving running instances between versions (process administrators); checking, publishing and
exporting a diagram, and the bindings that pick the version new hazards start on.

Checking and publishing are the modeler's (``web/pages/design_diagrams.py``): the same gate
(:func:`engine.design.check_diagram`), the same publication (:func:`engine.design.publish_diagram`,
its refusal written to the design log) and the same permission (:func:`engine.design.require_editor`
for the process's sector). Binding and rolling back are the versions page's
(:func:`web.pages.design_versions.bind_version` / :func:`~web.pages.design_versions.rollback_version`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from flask import current_app
from flask import url_for
from flask.typing import ResponseReturnValue
from lxml import etree
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from engine import definitions
from engine import design
from engine import ledger
from engine import migration
from engine.access import Actor
from engine.errors import NotFound
from engine.models import DefinitionBinding
from engine.models import DefinitionVersion

from ..auth import api_auth_required
from ..auth import current_actor
from ..pages import design_versions
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import json_body
from . import operation
from . import query_args
from . import schemas
from .design import check_draft
from .design import known_sector
from .design import problem_data
from .design import record_refusal

BPMN_MIMETYPE = "application/xml"


@bp.get("/definitions")
@operation(
    "已部署的流程定义",
    tag="definitions",
    description=(
        "每个已部署的流程版本：标识、版本号、BPMN 文件的 sha256、部署时间，以及新登记隐患时"
        "绑定到它的等级（未固定版本的绑定算作该流程的最新版本）。"
    ),
    response=schemas.DefinitionListSchema,
)
@api_auth_required
def list_definitions() -> ResponseReturnValue:
    with read_session() as session:
        items = ledger.deployed_definitions(session)
        return schemas.DefinitionListSchema().dump({"items": items, "total": len(items)})


@bp.get("/definitions/versions")
@operation(
    "流程的全部版本",
    tag="definitions",
    description="一个流程的每个发布版本（新的在前）：发布人、说明、sha256、仍在运行的实例数、绑定。",
    query=schemas.VersionQuerySchema,
    response=schemas.VersionListSchema,
    errors=(404, 422),
)
@api_auth_required
def list_versions() -> ResponseReturnValue:
    args = query_args(schemas.VersionQuerySchema())
    with read_session() as session:
        items = definitions.list_versions(session, args["key"])
        return schemas.VersionListSchema().dump({"items": items, "total": len(items)})


@bp.get("/definitions/diff")
@operation(
    "比较两个版本",
    tag="definitions",
    description=(
        "按 BPMN 元素标识比较两个版本：新增、删除、改变的元素（名称、类型、属性、定时器表达式、"
        "条件、处理器及参数、连线的起止）。图形布局不算改变。"
    ),
    query=schemas.VersionPairQuerySchema,
    response=schemas.VersionDiffSchema,
    errors=(404, 422),
)
@api_auth_required
def diff_versions() -> ResponseReturnValue:
    args = query_args(schemas.VersionPairQuerySchema())
    with read_session() as session:
        diff = definitions.diff_versions(
            definitions.get_version(session, args["key"], args["from_version"]),
            definitions.get_version(session, args["key"], args["to_version"]),
        )
        return schemas.VersionDiffSchema().dump(diff)


@bp.get("/definitions/migration")
@operation(
    "实例迁移预览",
    tag="definitions",
    description=(
        "源版本上调用者可管理的每个运行中实例能否迁移到目标版本，不能的说明原因（所在环节在新版本中"
        "不存在或类型改变、等待中的定时器到期时间会改变等）。只读。仅部门流程管理员和系统管理员。"
    ),
    query=schemas.VersionPairQuerySchema,
    response=schemas.MigrationPreviewSchema,
    errors=(403, 404, 422),
)
@api_auth_required
def preview_migration() -> ResponseReturnValue:
    args = query_args(schemas.VersionPairQuerySchema())
    actor = current_actor()
    migration.require_process_admin(actor)
    with read_session() as session:
        old = definitions.get_version(session, args["key"], args["from_version"])
        new = definitions.get_version(session, args["key"], args["to_version"])
        items = migration.preview_migration(
            session, from_version_id=old.id, to_version_id=new.id, actor=actor
        )
        movable = sum(1 for c in items if c.movable)
        return schemas.MigrationPreviewSchema().dump(
            {
                "key": args["key"],
                "from_version": old.version,
                "to_version": new.version,
                "items": items,
                "movable": movable,
                "blocked": len(items) - movable,
            }
        )


@bp.post("/definitions/migrate")
@operation(
    "迁移运行中的实例",
    tag="definitions",
    description=(
        "把源版本上的运行中实例迁移到目标版本（各自加锁、各自回滚）：保留任务、数据和定时器的到期时间，"
        "审计链记录 migrated 事件。不能迁移的实例原样保留并说明原因。仅部门流程管理员和系统管理员。"
    ),
    body=schemas.MigrateRequestSchema,
    response=schemas.MigrationResultListSchema,
    errors=(400, 403, 404, 415, 422),
)
@api_auth_required
def migrate_instances() -> ResponseReturnValue:
    data = json_body(schemas.MigrateRequestSchema())
    actor = current_actor()
    with sessions().begin() as session:
        old = definitions.get_version(session, data["key"], data["from_version"])
        new = definitions.get_version(session, data["key"], data["to_version"])
        results = migration.migrate_instances(
            session,
            engine_context(),
            from_version_id=old.id,
            to_version_id=new.id,
            instance_ids=data["instance_ids"],
            actor=actor,
        )
        migrated = sum(1 for r in results if r.migrated)
        return schemas.MigrationResultListSchema().dump(
            {"items": results, "migrated": migrated, "failed": len(results) - migrated}
        )


# --- checking, publishing and exporting a diagram ------------------------------------------------------


def _diagram_sector(session: Session, actor: Actor, key: str, data: Mapping[str, Any]) -> str | None:
    """The sector a check or publication is for: the body's (``null``: national), else the
    process's (:func:`engine.design.process_sector`), which ``actor`` must edit and own.

    :raises NotFound: an unknown sector, or no sector given for an unknown process.
    :raises Forbidden: not an editor of the sector, or the process belongs to another one.
    """
    if "sector" in data:
        sector = known_sector(session, data["sector"])
    else:
        sector = design.process_sector(session, key)
    design.require_editor(session, actor, sector)
    design.check_owner(session, key, sector, actor)
    return sector


def _element_names(xml: str) -> dict[str, str]:
    """``{id: name}`` of the named elements of a posted diagram (none when it does not parse)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser=parser)
    except etree.XMLSyntaxError:
        return {}
    return {str(e.get("id")): str(e.get("name")) for e in root.iter() if e.get("id") and e.get("name")}


def _problems(problems: list[design.GateProblem], xml: str) -> dict[str, list[dict[str, Any]]]:
    names = _element_names(xml)
    return {
        "errors": [problem_data(p, names) for p in problems if p.severity == "error"],
        "warnings": [problem_data(p, names) for p in problems if p.severity != "error"],
    }


@bp.post("/definitions/check")
@operation(
    "检查流程图",
    tag="definitions",
    description=(
        "对 BPMN 文件运行发布检查（与建模器的“检查”相同），不保存任何内容：ok 为 true 表示可以发布；"
        "errors 和 warnings 逐条指出元素（element_id、element_name）和原因。不是 XML 或不是 BPMN 的文件"
        "也是 200，ok 为 false。仅该行业牵头部门的流程管理员和系统管理员（全国流程）。"
    ),
    body=schemas.DiagramCheckRequestSchema,
    response=schemas.DiagramCheckSchema,
    errors=(400, 403, 404, 415, 422),
)
@api_auth_required
def check_diagram() -> ResponseReturnValue:
    data = json_body(schemas.DiagramCheckRequestSchema())
    key, xml = data["key"], data["bpmn"]
    with read_session() as session:
        sector = _diagram_sector(session, current_actor(), key, data)
        problems = design.check_diagram(
            session,
            key=key,
            sector_code=sector,
            xml=xml.encode("utf-8"),
            forms=engine_context().forms,
            processes_dir=engine_context().settings.processes_dir,
        )
    found = _problems(problems, xml)
    return schemas.DiagramCheckSchema().dump({"ok": not found["errors"], **found})


@bp.post("/definitions/publish")
@operation(
    "发布流程图",
    tag="definitions",
    description=(
        "把 BPMN 文件发布为该流程的下一个版本（与建模器的“发布”相同）：作者、说明、sha256。内容与已有版本"
        "相同时不生成新版本（created 为 false）。未通过发布检查时 422，errors 按元素标识列出每个问题，"
        "拒绝记入设计日志，不发布任何内容。bind 为 true 且该行业流程尚未绑定时，同时绑定到对应等级。"
        "有未发布的共享草稿时须给出其 revision（否则 409），发布后草稿删除。两人同时发布 409。"
    ),
    body=schemas.DiagramPublishRequestSchema,
    response=schemas.DiagramPublishedSchema,
    status=201,
    errors=(400, 403, 404, 409, 415, 422),
    location=True,
)
@api_auth_required
def publish_diagram() -> ResponseReturnValue:
    data = json_body(schemas.DiagramPublishRequestSchema())
    key, text, note, revision = data["key"], data["bpmn"], data["note"], data["revision"]
    xml = text.encode("utf-8")
    actor = current_actor()
    ctx = engine_context()
    sector: str | None = None
    try:
        with sessions().begin() as session:
            sector = _diagram_sector(session, actor, key, data)
            check_draft(session, "diagram", key, sector, revision)
            bind_grade = design.suggested_binding(session, key, sector, xml) if data["bind"] else None
            result = design.publish_diagram(
                session,
                actor,
                key=key,
                sector_code=sector,
                xml=xml,
                note=note,
                bind_grade=bind_grade,
                revision=revision,
                clock=ctx.clock,
                forms=ctx.forms,
                processes_dir=ctx.settings.processes_dir,
            )
            binding = None
            if bind_grade is not None:
                found = definitions.find_binding(session, grade=bind_grade, sector_code=sector)
                if found is not None and found.process_key == key:
                    binding = definitions.binding_label(found)
            summary = next(v for v in definitions.list_versions(session, key) if v.version == result.version)
            body = schemas.DiagramPublishedSchema().dump(
                {
                    **dataclasses.asdict(summary),
                    "sector": sector,
                    "created": result.created,
                    "binding": binding,
                    "warnings": _problems(result.warnings, text)["warnings"],
                }
            )
    except design.GateRefused as exc:
        record_refusal("diagram", key, sector, exc.problems, note)
        raise
    return body, 201, {"Location": url_for("api.export_bpmn", key=key, version=result.version)}


@bp.get("/definitions/bpmn")
@operation(
    "导出流程图",
    tag="definitions",
    description=(
        "某个版本（省略 version：最新版本）发布时的 BPMN XML 原文，作为附件 <key>-v<n>.bpmn 下载；"
        "其 sha256 即版本的 hash。"
    ),
    query=schemas.BpmnQuerySchema,
    errors=(404, 422),
    produces=BPMN_MIMETYPE,
)
@api_auth_required
def export_bpmn() -> ResponseReturnValue:
    args = query_args(schemas.BpmnQuerySchema())
    key = args["key"]
    with read_session() as session:
        if "version" in args:
            version = definitions.get_version(session, key, args["version"])
        else:
            latest = definitions.latest_version(session, key)
            if latest is None:
                raise NotFound("流程定义", key)
            version = latest
        text, number = version.bpmn_xml, version.version
    response: Response = current_app.response_class(text.encode("utf-8"), mimetype=BPMN_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{key}-v{number}.bpmn"'
    return response


# --- bindings -------------------------------------------------------------------------------------------


def _binding(session: Session, binding: DefinitionBinding) -> dict[str, Any]:
    pinned = binding.definition_version_id
    target = (
        session.get(DefinitionVersion, pinned)
        if pinned is not None
        else definitions.latest_version(session, binding.process_key)
    )
    return {
        "label": definitions.binding_label(binding),
        "grade": binding.grade,
        "sector": binding.sector_code,
        "region": binding.region.code if binding.region is not None else None,
        "process_key": binding.process_key,
        "version": target.version if target is not None else None,
        "pinned": pinned is not None,
    }


def _sector_or_owner(session: Session, key: str, data: Mapping[str, Any]) -> str | None:
    return data["sector"] if "sector" in data else design.process_sector(session, key)


@bp.get("/definitions/bindings")
@operation(
    "流程的绑定",
    tag="definitions",
    description=(
        "让新登记的隐患使用该流程某个版本的绑定（等级、行业、地区；固定版本或跟随最新版本），及每个绑定的"
        "变更历史（谁、何时、从什么改为什么、说明）。与版本页面相同：该行业牵头部门的流程管理员、系统管理员，"
        "以及安委办（只读）。"
    ),
    query=schemas.VersionQuerySchema,
    response=schemas.BindingListSchema,
    errors=(403, 404, 422),
)
@api_auth_required
def list_bindings() -> ResponseReturnValue:
    key = query_args(schemas.VersionQuerySchema())["key"]
    with read_session() as session:
        access = design_versions.process_access(session, key)
        items = [
            {
                **_binding(session, row.binding),
                "version": row.version,
                "can_rollback": row.can_rollback,
                "history": row.history,
            }
            for row in design_versions.binding_rows(session, access, key)
        ]
        listing = {"key": key, "sector": access.sector_code, "editable": access.editor}
        return schemas.BindingListSchema().dump({**listing, "items": items, "total": len(items)})


@bp.post("/definitions/bindings")
@operation(
    "绑定流程版本",
    tag="definitions",
    description=(
        "让新登记的某等级（可限行业、地区）隐患使用该流程的某个版本（固定），或始终使用最新版本；运行中的实例"
        "保留原版本。变更记入绑定历史。与版本页面相同的检查：重大隐患的绑定须有法定环节，行业和地区须在"
        "调用者的管辖范围内（所有行业的绑定仅系统管理员）。"
    ),
    body=schemas.BindRequestSchema,
    response=schemas.BindingSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def bind() -> ResponseReturnValue:
    data = json_body(schemas.BindRequestSchema())
    key = data["key"]
    with sessions().begin() as session:
        binding = design_versions.bind_version(
            session,
            key,
            grade=data["grade"],
            sector=_sector_or_owner(session, key, data),
            region_code=data["region"],
            version=data["version"],
            note=data["note"],
        )
        return schemas.BindingSchema().dump(_binding(session, binding))


@bp.post("/definitions/bindings/rollback")
@operation(
    "回退绑定",
    tag="definitions",
    description=(
        "撤销一个绑定（等级、行业、地区）最近一次未被撤销的变更：恢复为之前新隐患使用的流程版本（固定），"
        "或撤销新建的绑定（改用更上一级的绑定）。记入绑定历史；运行中的实例不受影响。"
    ),
    body=schemas.RollbackRequestSchema,
    response=schemas.RollbackResultSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def rollback_binding() -> ResponseReturnValue:
    data = json_body(schemas.RollbackRequestSchema())
    key, grade, region = data["key"], data["grade"], data["region"]
    with sessions().begin() as session:
        sector = _sector_or_owner(session, key, data)
        restored = design_versions.rollback_version(
            session, key, grade=grade, sector=sector, region_code=region, note=data["note"]
        )
        return schemas.RollbackResultSchema().dump(
            {
                "label": definitions.binding_key_label(grade, sector, region),
                "binding": _binding(session, restored) if restored is not None else None,
            }
        )
