"""``/api/v1/definitions``: the deployed process definitions, their versions and differences, and
moving running instances between versions (process administrators)."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from engine import definitions
from engine import ledger
from engine import migration

from ..auth import api_auth_required
from ..auth import current_actor
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import json_body
from . import operation
from . import query_args
from . import schemas


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
