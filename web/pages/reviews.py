"""``/reviews``: the department reviewers' queue — 销号审核, 监管审查 and 延期申请 — decided in one click.

Approve is one click (the opinion is optional and defaults to a standard wording); reject needs a
reason. The reviewer signs with their own name (:func:`engine.reviews.signature`). A rejection
without a reason re-renders the queue with the error at that item (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response

from engine import form_versions
from engine import reviews
from engine.errors import InvalidInput
from engine.models import Role

from ..auth import current_actor
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from .hazards import EXTENSION_STATE_LABELS
from .hazards import submission_view

bp = Blueprint("reviews", __name__)

REVIEW_ROLES = (Role.DEPT_REVIEWER, Role.OFFICE_ADMIN)


def _render(
    errors: Mapping[str, Any] | None = None, values: Mapping[str, str] | None = None, status: int = 200
) -> Response:
    actor = current_actor()
    ctx = engine_context()
    now = ctx.clock.now()
    with read_session() as session:
        queue = reviews.review_queue(session, actor)
        forms = form_versions.submission_forms(
            session, ctx, [sub for by_form in queue.facts.values() for sub in by_form.values()]
        )
        facts = {
            hazard_id: [submission_view(forms[sub.id], sub, queue.attachments) for sub in by_form.values()]
            for hazard_id, by_form in queue.facts.items()
        }
        html = render_template(
            "reviews/index.html",
            queue=queue,
            facts=facts,
            now=now,
            errors=errors or {},
            values=values or {},
            overdue=reviews.review_due,
            extension_states=EXTENSION_STATE_LABELS,
            signature=reviews.signature(actor),
        )
    return current_app.make_response((html, status))


@bp.get("/reviews")
@login_required
@roles_required(*REVIEW_ROLES)
def index() -> Response:
    return _render()


@bp.post("/reviews/<int:item_id>")
@login_required
@roles_required(*REVIEW_ROLES)
def decide(item_id: int) -> Response:
    """``decision=pass|reject``, ``opinion`` (required to reject), ``document_no`` (监管审查, optional)."""
    decision = request.form.get("decision", "")
    try:
        with sessions().begin() as session:
            item = reviews.decide(
                session,
                engine_context(),
                work_item_id=item_id,
                actor=current_actor(),
                decision=decision,
                opinion=request.form.get("opinion", ""),
                document_no=request.form.get("document_no", ""),
            )
            number = item.hazard.number
    except InvalidInput as exc:
        return _render(
            {f"item-{item_id}": exc.messages}, {f"item-{item_id}": request.form.get("opinion", "")}, 422
        )
    if decision == "pass":
        flash(_("已同意 {number} 销号", number=number), "success")
    else:
        flash(_("已驳回 {number}，退回整改", number=number), "warning")
    return redirect(url_for("reviews.index"))


@bp.post("/reviews/extensions/<int:request_id>")
@login_required
@roles_required(*REVIEW_ROLES)
def decide_extension(request_id: int) -> Response:
    """``decision=approve|deny``, ``opinion`` (required to deny)."""
    decision = request.form.get("decision", "")
    try:
        with sessions().begin() as session:
            reviews.decide_extension(
                session,
                engine_context(),
                request_id=request_id,
                actor=current_actor(),
                decision=decision,
                opinion=request.form.get("opinion", ""),
            )
    except InvalidInput as exc:
        key = f"extension-{request_id}"
        return _render({key: exc.messages}, {key: request.form.get("opinion", "")}, 422)
    message = _("已同意延期申请，整改期限已变更") if decision == "approve" else _("已驳回延期申请")
    flash(message, "success" if decision == "approve" else "warning")
    return redirect(url_for("reviews.index"))
