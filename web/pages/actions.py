"""Actions beside the happy path, under ``/hazards/<id>/…``: 动态更新, 延期申请 and 延期审批,
认定拒不整改/虚假整改, 作废 and 重开.

``GET /hazards/<id>/actions`` shows the forms of the actions this user may take (from
:func:`engine.tasklist.hazard_actions`; the engine checks again). Each POST makes one engine call,
then flashes and redirects to the hazard page (``/hazards/<id>`` once that page exists, else
back here). Field errors re-render the form with 422 and what was typed; a conflict (say, a
request already pending) re-renders it with 409 and the reason; 403/404 are the error pages.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from sqlalchemy.orm import Session
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as HttpNotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from engine import attachments
from engine import form_versions
from engine import runtime
from engine import tasklist
from engine.errors import Conflict
from engine.errors import InvalidInput
from engine.forms import FormDefinition
from engine.models import Attachment

from .. import uploads
from ..auth import current_actor
from ..auth import login_required
from ..i18n import _
from ..security import safe_next
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from .tasks import FILES_SUFFIX
from .tasks import Store
from .tasks import flat_errors
from .tasks import form_payload
from .tasks import form_values
from .tasks import store_uploads

bp = Blueprint("actions", __name__)

#: 认定 kinds (engine.runtime.VIOLATIONS) in the order the form offers them
VIOLATION_KINDS = tuple(runtime.VIOLATIONS.items())


@bp.app_template_global("hazard_url")
def hazard_url(hazard_id: int) -> str:
    """The hazard's page (``/hazards/<id>``) when the app has one, else its actions page."""
    path = f"/hazards/{hazard_id}"
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except RequestRedirect:
        return path
    except (HttpNotFound, MethodNotAllowed):
        return url_for("actions.index", hazard_id=hazard_id)
    return path


def _back(hazard_id: int) -> Response:
    return redirect(safe_next(request.form.get("next"), hazard_url(hazard_id)))


def _render(
    hazard_id: int,
    *,
    section: str | None = None,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    message: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    ctx = engine_context()
    with read_session() as session:
        found = tasklist.hazard_actions(session, current_actor(), hazard_id)
        html = render_template(
            "actions/index.html",
            actions=found,
            hazard=found.hazard,
            section=section,
            values=values or {},
            errors=errors or {},
            message=message,
            progress_form=form_versions.form_for_hazard(session, ctx, found.hazard, "progress_update"),
            extension_form=form_versions.form_for_hazard(session, ctx, found.hazard, "extension_request"),
            decision_form=form_versions.form_for_hazard(session, ctx, found.hazard, "extension_decision"),
            violation_kinds=VIOLATION_KINDS,
            accept=uploads.ACCEPT_ATTR,
            files_suffix=FILES_SUFFIX,
        )
    return html, status


def _attempt(
    hazard_id: int,
    section: str,
    values: Mapping[str, Any],
    call: Callable[[Session], str],
    *,
    render: Callable[..., tuple[str, int]] | None = None,
) -> Response | tuple[str, int]:
    """Run one engine call in a unit of work; flash its message and go back, or re-render the form."""
    render = render or (lambda **kw: _render(hazard_id, section=section, **kw))
    try:
        with sessions().begin() as session:
            message = call(session)
    except InvalidInput as exc:
        return render(values=values, errors=flat_errors(exc.messages), status=422)
    except Conflict as exc:
        return render(values=values, message=str(exc), status=409)
    flash(message, "success")
    return _back(hazard_id)


@bp.get("/hazards/<int:hazard_id>/actions")
@login_required
def index(hazard_id: int) -> tuple[str, int]:
    return _render(hazard_id)


def _hazard_form(hazard_id: int, form_key: str) -> FormDefinition:
    """A side-action form as the hazard's loop pins it (the engine checks who may act)."""
    with read_session() as session:
        return form_versions.form_for_hazard(session, engine_context(), hazard_id, form_key)


def _extension_form(request_id: int) -> FormDefinition:
    """The 延期审批 form of the request's hazard.

    :raises NotFound: unknown request, or its hazard is outside the actor's scope.
    """
    with read_session() as session:
        extension, _found = tasklist.extension_detail(session, current_actor(), request_id)
        return form_versions.form_for_hazard(
            session, engine_context(), extension.hazard_id, "extension_decision"
        )


def _hazard_store(hazard_id: int, form_key: str) -> Store:
    def store(session: Session, field: str, checked: uploads.CheckedUpload) -> Attachment:
        return attachments.add_form_attachment(
            session,
            engine_context(),
            hazard_id=hazard_id,
            actor=current_actor(),
            form_key=form_key,
            field=field,
            filename=checked.filename,
            mime_type=checked.mime_type,
            content=checked.content,
            exif_taken_at=checked.exif_taken_at,
            gps_lat=checked.gps_lat,
            gps_lon=checked.gps_lon,
        )

    return store


def _form_action(
    hazard_id: int, section: str, definition: FormDefinition, call: Callable[..., object], message: str
) -> Response | tuple[str, int]:
    """Store the form's files, then run ``call`` (one engine call taking ``form=``) and go back."""
    values = form_values(definition, request.form)
    errors = store_uploads(definition, values, _hazard_store(hazard_id, definition.key))
    if errors:
        return _render(hazard_id, section=section, values=values, errors=errors, status=422)

    def run(session: Session) -> str:
        call(
            session,
            engine_context(),
            hazard_id=hazard_id,
            actor=current_actor(),
            form=form_payload(definition, values),
        )
        return message

    return _attempt(hazard_id, section, values, run)


@bp.post("/hazards/<int:hazard_id>/progress")
@login_required
def progress(hazard_id: int) -> Response | tuple[str, int]:
    """动态更新: progress percent, a note and optional photos."""
    definition = _hazard_form(hazard_id, "progress_update")
    return _form_action(hazard_id, "progress", definition, runtime.update_progress, _("整改进展已更新"))


@bp.post("/hazards/<int:hazard_id>/extensions")
@login_required
def request_extension(hazard_id: int) -> Response | tuple[str, int]:
    """延期申请: a later deadline and the reason; a department decides."""
    definition = _hazard_form(hazard_id, "extension_request")
    return _form_action(
        hazard_id, "extension", definition, runtime.request_extension, _("延期申请已提交，等待审批")
    )


@bp.post("/hazards/<int:hazard_id>/violation")
@login_required
def violation(hazard_id: int) -> Response | tuple[str, int]:
    """认定拒不整改/虚假整改 (escalates to referral for accountability)."""
    values = {"kind": request.form.get("kind", ""), "note": request.form.get("note", "")}

    def run(session: Session) -> str:
        runtime.record_violation(
            session,
            engine_context(),
            hazard_id=hazard_id,
            actor=current_actor(),
            kind=values["kind"],
            note=values["note"],
        )
        return _("已认定{label}，该隐患已升级至移交追责", label=runtime.VIOLATIONS[values["kind"]])

    return _attempt(hazard_id, "violation", values, run)


@bp.post("/hazards/<int:hazard_id>/void")
@login_required
def void(hazard_id: int) -> Response | tuple[str, int]:
    """作废 with a reason: cancels the loop, keeps every record."""
    values = {"reason": request.form.get("reason", "")}

    def run(session: Session) -> str:
        hazard = runtime.void(
            session, engine_context(), hazard_id=hazard_id, actor=current_actor(), reason=values["reason"]
        )
        return _("已作废 {number}", number=hazard.number)

    return _attempt(hazard_id, "void", values, run)


@bp.post("/hazards/<int:hazard_id>/reopen")
@login_required
def reopen(hazard_id: int) -> Response | tuple[str, int]:
    """重开 with a reason: a closed or voided hazard starts a new loop."""
    values = {"reason": request.form.get("reason", "")}

    def run(session: Session) -> str:
        hazard = runtime.reopen(
            session, engine_context(), hazard_id=hazard_id, actor=current_actor(), reason=values["reason"]
        )
        return _("已重开 {number}，重新进入整改流程", number=hazard.number)

    return _attempt(hazard_id, "reopen", values, run)


# --- 延期审批 ---------------------------------------------------------------------------------------


def _render_extension(
    request_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    errors: Mapping[str, list[str]] | None = None,
    message: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with read_session() as session:
        extension, found = tasklist.extension_detail(session, current_actor(), request_id)
        html = render_template(
            "actions/extension.html",
            extension=extension,
            actions=found,
            hazard=found.hazard,
            decision_form=form_versions.form_for_hazard(
                session, engine_context(), extension.hazard_id, "extension_decision"
            ),
            values=values or {},
            errors=errors or {},
            message=message,
        )
    return html, status


@bp.get("/extensions/<int:request_id>")
@login_required
def extension(request_id: int) -> tuple[str, int]:
    """An extension request and, for a department that may decide it, the decision form."""
    return _render_extension(request_id)


@bp.post("/extensions/<int:request_id>/decide")
@login_required
def decide_extension(request_id: int) -> Response | tuple[str, int]:
    """延期审批: approve (the deadline and its timers move) or deny, with an opinion."""
    definition = _extension_form(request_id)
    values = form_values(definition, request.form)
    try:
        with sessions().begin() as session:
            decided = runtime.decide_extension(
                session,
                engine_context(),
                request_id=request_id,
                actor=current_actor(),
                form=form_payload(definition, values),
            )
            approved = decided.state == "approved"
            hazard_id = decided.hazard_id
    except InvalidInput as exc:
        return _render_extension(request_id, values=values, errors=flat_errors(exc.messages), status=422)
    except Conflict as exc:
        return _render_extension(request_id, values=values, message=str(exc), status=409)
    flash(_("已同意延期申请，整改期限已变更") if approved else _("已驳回延期申请"), "success")
    return redirect(safe_next(request.form.get("next"), hazard_url(hazard_id)))
