"""``/api/v1/tasks``: task lists, one task with its form, claim/release/complete, attachments."""

from __future__ import annotations

import os
from typing import Any

from flask import request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.exceptions import UnsupportedMediaType

from engine import form_versions
from engine import runtime
from engine import tasklist
from engine.errors import Conflict
from engine.errors import Forbidden
from engine.errors import InvalidInput

from .. import uploads
from ..auth import api_auth_required
from ..auth import current_actor
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import bp
from . import form_fields
from . import operation
from . import query_args
from . import raw_json_object
from . import schemas

#: what each phase accepts (``web.uploads``: checked by content, images decoded, EXIF read)
FIELD_TYPES = {"before": "photo", "after": "photo", "document": "file"}


def _uploaded_file() -> FileStorage:
    """The one ``file`` part of a multipart request, its name cleaned, its size checked.

    :raises RequestEntityTooLarge: over the per-file limit (the request as a whole was checked
        against ``Settings.max_content_length`` before anything read it).
    :raises InvalidInput: no file, or more than one.
    """
    files = request.files.getlist("file")
    if len(files) != 1:
        raise InvalidInput({"file": ["必须上传且只能上传一个文件（字段名 file）"]})
    upload = files[0]
    upload.stream.seek(0, os.SEEK_END)
    size = upload.stream.tell()
    upload.stream.seek(0)
    if size > uploads.max_file_bytes():
        raise RequestEntityTooLarge()
    # no control characters in a stored name (PostgreSQL refuses NUL)
    upload.filename = "".join(ch for ch in upload.filename or "" if ch.isprintable()) or "file"
    return upload


@bp.get("/tasks")
@operation(
    "任务列表",
    tag="tasks",
    description="`scope=mine`：我已认领的待办；`scope=group`：我的岗位在管辖范围内可认领的待办（未认领）。",
    query=schemas.TaskQuerySchema,
    response=schemas.TaskPageSchema,
    errors=(422,),
)
@api_auth_required
def list_tasks() -> ResponseReturnValue:
    args = query_args(schemas.TaskQuerySchema())
    with read_session() as session:
        page = tasklist.task_page(session, current_actor(), **args)
        return schemas.TaskPageSchema().dump(page)


@bp.get("/tasks/<id:item_id>")
@operation(
    "任务详情",
    tag="tasks",
    description=(
        "任务本身、表单的 JSON Schema、当前表单数据（已办结的提交，或调用者自己的草稿），"
        "以及调用者现在可以执行的操作。无权查看其隐患的任务与不存在的一样返回 404。"
    ),
    response=schemas.TaskDetailSchema,
    errors=(404,),
)
@api_auth_required
def get_task(item_id: int) -> ResponseReturnValue:
    with read_session() as session:
        detail = tasklist.task_detail(session, current_actor(), item_id)
        form = form_versions.form_for_item(session, engine_context(), detail.item).json_schema()
        return schemas.TaskDetailSchema().dump({"detail": detail, "form": form})


@bp.post("/tasks/<id:item_id>/claim")
@operation(
    "认领任务",
    tag="tasks",
    description="把岗位任务认领为自己的。他人已认领或任务已结束：409；没有该岗位的权限：403。",
    response=schemas.TaskSchema,
    errors=(400, 403, 404, 409),
)
@api_auth_required
def claim_task(item_id: int) -> ResponseReturnValue:
    with sessions().begin() as session:
        item = runtime.claim(session, engine_context(), work_item_id=item_id, actor=current_actor())
        return schemas.TaskSchema().dump(item)


@bp.post("/tasks/<id:item_id>/release")
@operation(
    "释放任务",
    tag="tasks",
    description="把自己认领的任务交回岗位。不是自己认领的或已结束：409。",
    response=schemas.TaskSchema,
    errors=(400, 403, 404, 409),
)
@api_auth_required
def release_task(item_id: int) -> ResponseReturnValue:
    with sessions().begin() as session:
        item = runtime.release(session, engine_context(), work_item_id=item_id, actor=current_actor())
        return schemas.TaskSchema().dump(item)


@bp.post("/tasks/<id:item_id>/complete")
@operation(
    "办结任务",
    tag="tasks",
    description=(
        "请求体是表单数据（JSON 对象），按 `GET /tasks/{id}` 返回的 `form`（JSON Schema）填写；"
        "照片和文件字段填写先上传得到的附件编号。字段错误：422（`errors` 按字段名）；"
        "任务已办结或被他人认领：409；没有权限（含验收人不得为整改人）：403。"
    ),
    request_body={
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "表单数据；每个任务的字段见其 form（JSON Schema）",
                    "additionalProperties": True,
                },
                "example": {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"},
            }
        },
    },
    response=schemas.TaskSchema,
    errors=(400, 403, 404, 409, 415, 422),
)
@api_auth_required
def complete_task(item_id: int) -> ResponseReturnValue:
    form: dict[str, Any] = raw_json_object()
    with sessions().begin() as session:
        item = runtime.complete(
            session, engine_context(), work_item_id=item_id, actor=current_actor(), form=form
        )
        return schemas.TaskSchema().dump(item)


@bp.post("/tasks/<id:item_id>/attachments")
@operation(
    "上传附件",
    tag="tasks",
    description=(
        "multipart/form-data：`file`（一个文件）和 `phase`（before/after/document）。"
        "整改前后照片只接受 JPEG、PNG、WebP 图片（须能解码；读取 EXIF 拍摄时间和 GPS）；"
        "document 还接受 PDF。类型按文件内容判断，不看文件名。"
        f"单个文件最大 {runtime.MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB（超出：413）；类型不符：422。"
        "返回的 `id` 填入任务表单的照片/文件字段。只有可办理该任务的人可以上传。"
    ),
    request_body={
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "phase"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "phase": {"type": "string", "enum": list(schemas.PHASES)},
                    },
                    "additionalProperties": False,
                }
            }
        },
    },
    response=schemas.AttachmentSchema,
    status=201,
    errors=(400, 403, 404, 409, 413, 415, 422),
)
@api_auth_required
def upload_attachment(item_id: int) -> ResponseReturnValue:
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType()
    phase = form_fields(schemas.AttachmentUploadSchema())["phase"]
    ctx = engine_context()
    checked = uploads.check_upload(_uploaded_file(), field="file", field_type=FIELD_TYPES[phase], tz=ctx.tz)
    actor = current_actor()
    with sessions().begin() as session:
        detail = tasklist.task_detail(session, actor, item_id)
        if not detail.can_complete:
            if not detail.is_open:
                raise Conflict(f"任务「{detail.item.title}」已结束，不能再上传附件")
            if detail.claimed_by_other:
                raise Conflict(f"任务「{detail.item.title}」已被他人认领")
            raise Forbidden(f"您不能为任务「{detail.item.title}」上传附件")
        attachment = runtime.add_attachment(
            session,
            ctx,
            hazard_id=detail.item.hazard_id,
            actor=actor,
            filename=checked.filename,
            mime_type=checked.mime_type,
            content=checked.content,
            phase=phase,
            work_item_id=detail.item.id,
            exif_taken_at=checked.exif_taken_at,
            gps_lat=checked.gps_lat,
            gps_lon=checked.gps_lon,
        )
        return schemas.AttachmentSchema().dump(attachment), 201
