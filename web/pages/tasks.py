"""``/tasks``: the inbox (mine / my groups' / overdue), claim, release, delegate, and the task page.

The task page renders the work item's form from its :class:`~engine.forms.FormDefinition` with
the macros of ``templates/forms/fields.html`` and completes it with
:func:`engine.drafts.complete`. Photos and files are uploaded first (``POST
/tasks/<id>/attachments``, JSON for the script in ``static/js/tasks.js``, or the whole form
re-rendered without script) or with the form itself; either way each file is committed on its
own before the form is submitted, so a refused form never loses its uploads.

Answers: field errors re-render the form with 422 and what was typed; a lost race (409: someone
else claimed or completed the task, or the instance changed) saves what was typed as the user's
draft and says so; the draft is re-loaded whenever the task page opens.

The helpers under "form data" (:func:`form_values`, :func:`form_payload`, :func:`store_uploads`,
:func:`flat_errors`) are shared with ``web.pages.actions``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from engine import attachments
from engine import drafts
from engine import form_versions
from engine import runtime
from engine import tasklist
from engine.errors import Conflict
from engine.errors import InvalidInput
from engine.forms import FormDefinition
from engine.models import Attachment
from engine.models import Grade
from engine.models import HazardStatus

from .. import uploads
from ..auth import current_actor
from ..auth import login_required
from ..i18n import _
from ..i18n import localtime
from ..security import safe_next
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from ..session import settings

bp = Blueprint("tasks", __name__)

#: a due time this close is "即将到期"
DUE_SOON = dt.timedelta(days=3)
TAB_LABELS = {"mine": "我的待办", "group": "组待办", "overdue": "逾期"}
SORT_LABELS = {"due": "按到期时间", "created": "按创建时间（新的在前）", "number": "按隐患编号"}
#: field types whose form value is a list
LIST_TYPES = frozenset({"photo", "file", "checklist"})
#: suffix of the file inputs of a photo/file field (``after_photos__files``)
FILES_SUFFIX = "__files"


# --- due badges -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueBadge:
    #: ``overdue`` or ``soon``
    kind: str
    #: whole days overdue (at least 1), or days left (0 = today)
    days: int


def due_badge(due_at: dt.datetime | None, now: dt.datetime | None = None) -> DueBadge | None:
    """已逾期 N 天 / 即将到期 (within :data:`DUE_SOON`), counted in business-time calendar days."""
    if due_at is None:
        return None
    ctx = engine_context()
    now = now or ctx.clock.now()
    days = (due_at.astimezone(ctx.tz).date() - now.astimezone(ctx.tz).date()).days
    if due_at < now:
        return DueBadge("overdue", max(1, -days))
    if due_at - now <= DUE_SOON:
        return DueBadge("soon", max(0, days))
    return None


@bp.app_template_global("due_badge")
def _due_badge_global(due_at: dt.datetime | None) -> DueBadge | None:
    return due_badge(due_at)


# --- form data (shared with web.pages.actions) ---------------------------------------------------------


def form_values(definition: FormDefinition, form: MultiDict[str, str]) -> dict[str, Any]:
    """What was typed, per field, as the form sent it: a string, or a list of strings."""
    values: dict[str, Any] = {}
    for spec in definition.fields:
        if spec.type in LIST_TYPES or (spec.type == "choice" and spec.multiple):
            values[spec.name] = [v for v in form.getlist(spec.name) if v != ""]
        elif spec.name in form:
            values[spec.name] = form.get(spec.name, "")
    return values


def _attachment_id(raw: str) -> int | str:
    raw = raw.strip()
    return int(raw) if raw.isdigit() else raw


def form_payload(definition: FormDefinition, values: Mapping[str, Any]) -> dict[str, Any]:
    """The submission for :meth:`FormDefinition.validate`: blanks omitted, attachment ids as ints."""
    payload: dict[str, Any] = {}
    for spec in definition.fields:
        value = values.get(spec.name)
        if value is None:
            continue
        if isinstance(value, list):
            if value:
                payload[spec.name] = (
                    [_attachment_id(v) for v in value] if spec.type in ("photo", "file") else list(value)
                )
            continue
        text = str(value)
        if not text.strip():
            continue  # optional fields are omitted; a required one then says 此项为必填项
        if spec.type in ("number", "money"):
            text = text.strip().replace(",", "").replace("，", "")
        elif spec.type in ("date", "choice", "person", "signature"):
            text = text.strip()
        payload[spec.name] = text
    return payload


def values_from_data(definition: FormDefinition, data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored form data (a draft or a completed submission) as form values."""
    values: dict[str, Any] = {}
    for spec in definition.fields:
        if spec.name not in data:
            continue
        value = data[spec.name]
        values[spec.name] = [str(v) for v in value] if isinstance(value, list) else str(value)
    return values


def _messages(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, Mapping):
        return [m for child in node.values() for m in _messages(child)]
    if isinstance(node, list | tuple):
        return [m for child in node for m in _messages(child)]
    return [str(node)]


def flat_errors(messages: Mapping[str, Any]) -> dict[str, list[str]]:
    """Field errors as ``{field: [message, …]}`` (marshmallow nests list items by index)."""
    return {str(key): _messages(value) for key, value in messages.items()}


#: stores one checked upload for a field; returns the new attachment (committed)
Store = Callable[[Any, str, uploads.CheckedUpload], Attachment]


def store_uploads(
    definition: FormDefinition,
    values: dict[str, Any],
    store: Store,
    *,
    files: MultiDict[str, Any] | None = None,
) -> dict[str, list[str]]:
    """Check and store the files sent for each photo/file field; add their ids to ``values``.

    Each file is committed on its own (``store`` runs in its own transaction), so files already
    stored survive a refused form. Returns field errors for the files that were refused.
    """
    files = request.files if files is None else files
    ctx = engine_context()
    errors: dict[str, list[str]] = {}
    for spec in definition.fields:
        if spec.type not in ("photo", "file"):
            continue
        for storage in files.getlist(spec.name + FILES_SUFFIX):
            if not storage or not storage.filename:
                continue  # an empty <input type=file> sends a nameless part
            try:
                checked = uploads.check_upload(storage, field=spec.name, field_type=spec.type, tz=ctx.tz)
                with sessions().begin() as session:
                    attachment = store(session, spec.name, checked)
                    attachment_id = attachment.id
                    uploads.make_thumbnail(settings(), attachment, checked.content)
            except InvalidInput as exc:
                for field_errors in flat_errors(exc.messages).values():
                    errors.setdefault(spec.name, []).extend(field_errors)
                continue
            values.setdefault(spec.name, []).append(str(attachment_id))
    return errors


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "mime_type": attachment.mime_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "phase": attachment.phase,
        "url": url_for("tasks.attachment", attachment_id=attachment.id),
        "thumb_url": url_for("tasks.thumbnail", attachment_id=attachment.id)
        if attachment.mime_type in uploads.IMAGE_TYPES
        else None,
        "exif_taken_at": attachment.exif_taken_at.isoformat() if attachment.exif_taken_at else None,
        "gps_lat": attachment.gps_lat,
        "gps_lon": attachment.gps_lon,
        "meta": attachment_meta(attachment),
    }


def attachment_meta(attachment: Attachment) -> str:
    """拍摄于 <business time> · <lat>, <lon>: the tile caption ``forms.attachment_tile`` renders too."""
    parts = []
    if attachment.exif_taken_at is not None:
        parts.append(_("拍摄于 {at}", at=localtime(attachment.exif_taken_at)))
    if attachment.gps_lat is not None and attachment.gps_lon is not None:
        parts.append(f"{attachment.gps_lat:.5f}, {attachment.gps_lon:.5f}")
    return " · ".join(parts)


# --- the inbox ------------------------------------------------------------------------------------------


@bp.get("/tasks")
@login_required
def index() -> str:
    """Tabs 我的待办 / 组待办 / 逾期 with counts; ``?tab=&sort=&grade=&status=&q=``."""
    args = request.args
    filters = tasklist.TaskFilter(
        grade=args.get("grade") or None,
        status=args.get("status") or None,
        text=(args.get("q") or "").strip() or None,
        sort=args.get("sort") or "due",
    )
    tab = args.get("tab") or None
    with read_session() as session:
        inbox = tasklist.task_inbox(
            session, current_actor(), tab=tab, filters=filters, now=engine_context().clock.now()
        )
        return render_template(
            "tasks/index.html",
            inbox=inbox,
            filters=filters,
            tab_labels=TAB_LABELS,
            sort_labels=SORT_LABELS,
            grades=list(Grade),
            statuses=list(HazardStatus),
        )


@bp.post("/tasks/<int:item_id>/claim")
@login_required
def claim(item_id: int) -> Response:
    with sessions().begin() as session:
        title = runtime.claim(session, engine_context(), work_item_id=item_id, actor=current_actor()).title
    flash(_("已认领「{title}」", title=title), "success")
    return redirect(safe_next(request.form.get("next"), url_for("tasks.detail", item_id=item_id)))


@bp.post("/tasks/<int:item_id>/release")
@login_required
def release(item_id: int) -> Response:
    with sessions().begin() as session:
        title = runtime.release(session, engine_context(), work_item_id=item_id, actor=current_actor()).title
    flash(_("已释放「{title}」，任务回到组待办", title=title), "success")
    return redirect(safe_next(request.form.get("next"), url_for("tasks.index", tab="group")))


@bp.post("/tasks/<int:item_id>/delegate")
@login_required
def delegate(item_id: int) -> Response:
    raw = request.form.get("to_user_id", "").strip()
    if not raw.isdigit():
        raise InvalidInput({"to_user_id": [_("请选择转办对象")]})
    with sessions().begin() as session:
        item = runtime.delegate(
            session, engine_context(), work_item_id=item_id, actor=current_actor(), to_user_id=int(raw)
        )
        title = item.title
    flash(_("已将「{title}」转办", title=title), "success")
    return redirect(url_for("tasks.index"))


# --- the task page -------------------------------------------------------------------------------------


def _render_task(
    item_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    status: int = 200,
    conflict: str | None = None,
) -> tuple[str, int]:
    actor = current_actor()
    with read_session() as session:
        detail = tasklist.task_detail(session, actor, item_id)
        definition = form_versions.form_for_item(session, engine_context(), detail.item)
        candidates = tasklist.candidates_for(session, detail.item) if detail.can_delegate else []
        loaded_draft = values is None and detail.draft is not None
        if values is None:
            values = values_from_data(definition, detail.draft.data) if detail.draft is not None else {}
        shown = values_from_data(definition, detail.submission.data) if detail.submission is not None else {}
        evidence = tasklist.evidence_for(session, detail.item)
        html = render_template(
            "tasks/detail.html",
            detail=detail,
            definition=definition,
            values=values,
            errors=errors or {},
            submitted_values=shown,
            evidence=evidence,
            evidence_views=evidence_views(session, evidence),
            candidates=[c for c in candidates if c.id != actor.user_id],
            loaded_draft=loaded_draft,
            conflict=conflict,
            accept=uploads.ACCEPT_ATTR,
            files_suffix=FILES_SUFFIX,
        )
    return html, status


def evidence_views(session: Session, evidence: tasklist.Evidence) -> list[dict[str, Any]]:
    """The work under review as the read-only forms of ``forms.readonly``, each on the form version
    it was submitted on (unknown forms left out)."""
    forms = form_versions.submission_forms(
        session, engine_context(), [e.submission for e in evidence.entries]
    )
    views = []
    for entry in evidence.entries:
        definition = forms.get(entry.submission.id)
        if definition is None:
            continue
        views.append(
            {
                "entry": entry,
                "definition": definition,
                "values": values_from_data(definition, entry.submission.data or {}),
            }
        )
    return views


def _definition_of(item_id: int) -> FormDefinition:
    """The form the task shows and validates (the version pinned to it)."""
    with read_session() as session:
        item = tasklist.task_detail(session, current_actor(), item_id).item
        return form_versions.form_for_item(session, engine_context(), item)


def _task_store(item_id: int) -> Store:
    def store(session: Any, field: str, checked: uploads.CheckedUpload) -> Attachment:
        return attachments.add_task_attachment(
            session,
            engine_context(),
            work_item_id=item_id,
            actor=current_actor(),
            field=field,
            filename=checked.filename,
            mime_type=checked.mime_type,
            content=checked.content,
            exif_taken_at=checked.exif_taken_at,
            gps_lat=checked.gps_lat,
            gps_lon=checked.gps_lon,
        )

    return store


def _keep_as_draft(item_id: int, definition: FormDefinition, values: Mapping[str, Any], exc: Conflict) -> str:
    """After a lost race: save what was typed as the user's draft; the message to show."""
    with sessions().begin() as session:
        drafts.save_draft(
            session,
            engine_context(),
            work_item_id=item_id,
            actor=current_actor(),
            form=form_payload(definition, values),
            drop_invalid=True,
        )
    return _("{reason}。您填写的内容已保存为草稿，不会丢失。", reason=str(exc).rstrip("。"))


@bp.get("/tasks/<int:item_id>")
@login_required
def detail(item_id: int) -> tuple[str, int]:
    return _render_task(item_id)


@bp.post("/tasks/<int:item_id>")
@login_required
def complete(item_id: int) -> Response | tuple[str, int]:
    """Store the files sent with the form, then complete the task (one engine call)."""
    definition = _definition_of(item_id)
    values = form_values(definition, request.form)
    try:
        errors = store_uploads(definition, values, _task_store(item_id))
        if errors:
            return _render_task(item_id, values=values, errors=errors, status=422)
        with sessions().begin() as session:
            item = drafts.complete(
                session,
                engine_context(),
                work_item_id=item_id,
                actor=current_actor(),
                form=form_payload(definition, values),
            )
            title = item.title
    except InvalidInput as exc:
        return _render_task(item_id, values=values, errors=flat_errors(exc.messages), status=422)
    except Conflict as exc:
        message = _keep_as_draft(item_id, definition, values, exc)
        return _render_task(item_id, values=values, status=409, conflict=message)
    flash(_("已提交「{title}」", title=title), "success")
    return redirect(url_for("tasks.index"))


@bp.post("/tasks/<int:item_id>/draft")
@login_required
def save_draft(item_id: int) -> Response | tuple[str, int]:
    """保存草稿: what was typed (and any files sent with it), checked only for types and formats."""
    definition = _definition_of(item_id)
    values = form_values(definition, request.form)
    try:
        errors = store_uploads(definition, values, _task_store(item_id))
        with sessions().begin() as session:
            drafts.save_draft(
                session,
                engine_context(),
                work_item_id=item_id,
                actor=current_actor(),
                form=form_payload(definition, values),
            )
    except InvalidInput as exc:
        return _render_task(item_id, values=values, errors=flat_errors(exc.messages), status=422)
    except Conflict as exc:
        message = _keep_as_draft(item_id, definition, values, exc)
        return _render_task(item_id, values=values, status=409, conflict=message)
    if errors:
        return _render_task(item_id, values=values, errors=errors, status=422)
    flash(_("草稿已保存"), "success")
    return redirect(url_for("tasks.detail", item_id=item_id))


@bp.post("/tasks/<int:item_id>/attachments")
@login_required
def upload(item_id: int) -> Response | tuple[str, int] | tuple[Response, int]:
    """Upload photos/files for a task's field.

    Script: ``field`` + one or more ``file`` parts → 201 JSON ``{"attachments": [...]}`` (422
    JSON on a refused file). Without script the whole task form is posted here (the 上传 button):
    its files are stored and the page re-rendered with them attached and what was typed kept.
    """
    definition = _definition_of(item_id)
    field = request.form.get("field")
    if field is not None:
        values: dict[str, Any] = {}
        files = MultiDict([(field + FILES_SUFFIX, f) for f in request.files.getlist("file")])
        attachments.field_phase(definition, field)  # 422 for an unknown field
        if not files:
            raise InvalidInput({field: [_("请选择要上传的文件")]})
        errors = store_uploads(definition, values, _task_store(item_id), files=files)
        if errors:
            raise InvalidInput(errors)
        ids = [int(v) for v in values.get(field, [])]
        with read_session() as session:
            detail = tasklist.task_detail(session, current_actor(), item_id)
            payload = [attachment_json(detail.attachments[i]) for i in ids]
        return jsonify(attachments=payload), 201
    values = form_values(definition, request.form)
    errors = store_uploads(definition, values, _task_store(item_id))
    if errors:
        return _render_task(item_id, values=values, errors=errors, status=422)
    return _render_task(item_id, values=values)


# --- serving attachments ---------------------------------------------------------------------------------


@bp.get("/attachments/<int:attachment_id>")
@login_required
def attachment(attachment_id: int) -> Response:
    """The original file, to users who may see its hazard (404 otherwise)."""
    with read_session() as session:  # rolling back expires the row: answer inside
        found = attachments.visible_attachment(session, current_actor(), attachment_id)
        return uploads.send_attachment(settings(), found)


@bp.get("/attachments/<int:attachment_id>/thumb")
@login_required
def thumbnail(attachment_id: int) -> Response:
    """A photo's JPEG thumbnail (404 for documents), to users who may see its hazard."""
    with read_session() as session:
        found = attachments.visible_attachment(session, current_actor(), attachment_id)
        return uploads.send_attachment(settings(), found, thumbnail=True)
