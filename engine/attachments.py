"""Evidence attachments of form fields: which phase a field's files are, who may add and see them.

The bytes and the row are written by :func:`engine.runtime.add_attachment` (sha256 storage, the
"after identical to before" refusal); this module adds the checks that depend on the task or
form a file is uploaded for, and the visibility check for serving a file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session
from sqlalchemy.orm import joinedload

from . import form_versions
from . import runtime
from .access import Actor
from .access import can_see
from .errors import Conflict
from .errors import Forbidden
from .errors import InvalidInput
from .errors import NotFound
from .forms import FormDefinition
from .models import Attachment
from .models import Hazard
from .models import WorkItem
from .models import WorkItemState
from .runtime import EngineContext
from .tasklist import may_act_on

#: field types whose values are attachment ids
ATTACHMENT_FIELD_TYPES = frozenset({"photo", "file"})


def field_phase(definition: FormDefinition, field_name: str) -> str:
    """The attachment phase of a photo/file field: its ``phase`` (before/after), else ``document``.

    :raises InvalidInput: the form has no photo or file field of that name.
    """
    try:
        spec = definition.get_field(field_name)
    except KeyError:
        spec = None
    if spec is None or spec.type not in ATTACHMENT_FIELD_TYPES:
        raise InvalidInput({"field": [f"表单「{definition.title}」没有名为 {field_name} 的附件字段"]})
    return spec.phase or "document"


def visible_attachment(session: Session, actor: Actor, attachment_id: int) -> Attachment:
    """An attachment whose hazard the actor may see.

    :raises NotFound: unknown, or its hazard is outside the actor's scope.
    """
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise NotFound("附件", attachment_id)
    hazard = session.get_one(Hazard, attachment.hazard_id, options=[joinedload(Hazard.co_departments)])
    if not can_see(actor, hazard):
        raise NotFound("附件", attachment_id)
    return attachment


def add_task_attachment(
    session: Session,
    ctx: EngineContext,
    *,
    work_item_id: int,
    actor: Actor,
    field: str,
    filename: str,
    mime_type: str,
    content: bytes,
    exif_taken_at: dt.datetime | None = None,
    gps_lat: float | None = None,
    gps_lon: float | None = None,
) -> Attachment:
    """Store a file for a photo/file field of an open task the actor may do.

    :raises NotFound: unknown task, or outside the actor's scope.
    :raises Conflict: the task is no longer open, or someone else claimed it.
    :raises Forbidden: the actor may not do this task.
    :raises InvalidInput: no such attachment field, or the file was refused (see ``add_attachment``).
    """
    item = session.get(WorkItem, work_item_id)
    if item is None:
        raise NotFound("任务", work_item_id)
    hazard = session.get_one(Hazard, item.hazard_id, options=[joinedload(Hazard.co_departments)])
    if not can_see(actor, hazard):
        raise NotFound("任务", work_item_id)
    if item.state != WorkItemState.OPEN.value:
        raise Conflict(f"任务「{item.title}」已办结，不能再上传附件")
    if item.assignee_id not in (None, actor.user_id):
        raise Conflict(f"任务「{item.title}」已被他人认领")
    if not may_act_on(session, actor, item, hazard):
        raise Forbidden(f"您没有办理任务「{item.title}」的权限")
    phase = field_phase(form_versions.form_for_item(session, ctx, item), field)
    return runtime.add_attachment(
        session,
        ctx,
        hazard_id=hazard.id,
        actor=actor,
        filename=filename,
        mime_type=mime_type,
        content=content,
        phase=phase,
        work_item_id=item.id,
        exif_taken_at=exif_taken_at,
        gps_lat=gps_lat,
        gps_lon=gps_lon,
    )


def add_form_attachment(
    session: Session,
    ctx: EngineContext,
    *,
    hazard_id: int,
    actor: Actor,
    form_key: str,
    field: str,
    filename: str,
    mime_type: str,
    content: bytes,
    exif_taken_at: dt.datetime | None = None,
    gps_lat: float | None = None,
    gps_lon: float | None = None,
) -> Attachment:
    """Store a file for a photo/file field of a side-action form (e.g. progress-update photos).

    The action itself re-checks who may take it; the file only needs a hazard the actor sees.

    :raises NotFound: unknown hazard or form, or the hazard is outside the actor's scope.
    :raises InvalidInput: no such attachment field, or the file was refused.
    """
    phase = field_phase(form_versions.form_for_hazard(session, ctx, hazard_id, form_key), field)
    return runtime.add_attachment(
        session,
        ctx,
        hazard_id=hazard_id,
        actor=actor,
        filename=filename,
        mime_type=mime_type,
        content=content,
        phase=phase,
        exif_taken_at=exif_taken_at,
        gps_lat=gps_lat,
        gps_lon=gps_lon,
    )
