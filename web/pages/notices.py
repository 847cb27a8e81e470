"""督办文书: the escalation notices (``/notices``), one notice (``/notices/<id>``), its print page
(``/notices/<id>/print``) and PDF (``/notices/<id>.pdf``), and the status actions.

Everything is scoped by the hazard visibility matrix (DESIGN §3) in :mod:`engine.notices`: a
notice of a hazard outside the actor's scope is 404 everywhere. The actions are POST forms
(CSRF-checked by ``web.security``): 签收 and 书面回复 by the target enterprise, 办结 by the issuing
side. A refused value re-renders the page with 422, a status conflict with 409.

List filters (all optional): ``kind``, ``status``, ``issuer`` (issuer key), ``year``, ``hazard``
(number, or part of it), ``page``, ``per_page`` (20, 50, 100).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from engine import notices
from engine import policy
from engine.errors import Conflict
from engine.errors import InvalidInput
from engine.models import NoticeStatus
from engine.models.notice import NOTICE_STATUS_LABELS

from .. import pdf
from ..auth import current_actor
from ..auth import login_required
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions

bp = Blueprint("notices", __name__)

PER_PAGE_CHOICES = (20, 50, 100)
#: the print page carries its own styles inline (the same document becomes the PDF)
PRINT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
ACTION_LABELS = {"acknowledge": "签收", "respond": "书面回复", "close": "办结"}
STATUS_KINDS = {"issued": "warning", "acknowledged": "info", "responded": "info", "closed": "success"}


def _int_arg(args: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    raw = (args.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput({name: ["必须是正整数"]})
    return int(raw)


def _url_with(args: Mapping[str, str], **changes: object) -> str:
    merged = {**args, **{k: str(v) for k, v in changes.items() if v is not None}}
    merged = {k: v for k, v in merged.items() if v != ""}
    return url_for("notices.index") + ("?" + urlencode(merged) if merged else "")


def _labels() -> dict[str, Any]:
    return {
        "kinds": policy.NOTICE_KINDS,
        "statuses": {s.value: NOTICE_STATUS_LABELS[s] for s in NoticeStatus},
        "status_kinds": STATUS_KINDS,
        "actions": ACTION_LABELS,
    }


@bp.get("/notices")
@login_required
def index() -> str:
    args = request.args
    kind = (args.get("kind") or "").strip() or None
    status = (args.get("status") or "").strip() or None
    issuer = (args.get("issuer") or "").strip()[:64] or None
    hazard = (args.get("hazard") or "").strip()[:64] or None
    year = _int_arg(args, "year")
    per_page = _int_arg(args, "per_page", PER_PAGE_CHOICES[0]) or PER_PAGE_CHOICES[0]
    if per_page not in PER_PAGE_CHOICES:
        raise InvalidInput({"per_page": [f"每页条数必须是 {'、'.join(map(str, PER_PAGE_CHOICES))} 之一"]})
    page = max(1, _int_arg(args, "page", 1) or 1)
    kept = {k: v.strip() for k, v in args.items() if k != "page" and isinstance(v, str) and v.strip()}
    with read_session() as session:
        actor = current_actor()
        result = notices.list_notices(
            session,
            actor,
            kind=kind,
            status=status,
            issuer=issuer,
            year=year,
            hazard_number=hazard,
            page=page,
            per_page=per_page,
        )
        return render_template(
            "notices/index.html",
            result=result,
            args=kept,
            issuers=notices.issuer_choices(session, actor),
            per_page_choices=PER_PAGE_CHOICES,
            url_with=lambda **changes: _url_with(kept, **changes),
            labels=_labels(),
        )


def _render_detail(
    notice_id: int,
    *,
    errors: Mapping[str, Any] | None = None,
    values: Mapping[str, str] | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    with read_session() as session:
        actor = current_actor()
        notice = notices.get_notice(session, actor, notice_id)
        html = render_template(
            "notices/detail.html",
            notice=notice,
            hazard=notice.hazard,
            body=Markup(notice.body_html),  # rendered at issue in the sandbox, autoescaped
            allowed=notices.notice_actions(session, actor, notice, notice.hazard),
            pdf_available=pdf.available(),
            errors=errors or {},
            values=values or {},
            message=message,
            labels=_labels(),
        )
    return current_app.make_response((html, status))


@bp.get("/notices/<int:notice_id>")
@login_required
def detail(notice_id: int) -> Response:
    return _render_detail(notice_id)


def _act(notice_id: int, call: Any, done: str, values: Mapping[str, str]) -> Response:
    try:
        with sessions().begin() as session:
            notice = call(session)
            number = notice.document_number
    except InvalidInput as exc:
        errors = {k: v if isinstance(v, list) else [str(v)] for k, v in exc.messages.items()}
        return _render_detail(notice_id, errors=errors, values=values, status=422)
    except Conflict as exc:
        return _render_detail(notice_id, message=str(exc), values=values, status=409)
    flash(_(done, number=number), "success")
    return redirect(url_for("notices.detail", notice_id=notice_id))


@bp.post("/notices/<int:notice_id>/acknowledge")
@login_required
def acknowledge(notice_id: int) -> Response:
    actor, ctx = current_actor(), engine_context()
    return _act(
        notice_id,
        lambda session: notices.acknowledge(session, ctx, notice_id=notice_id, actor=actor),
        "已签收督办文书 {number}",
        {},
    )


@bp.post("/notices/<int:notice_id>/respond")
@login_required
def respond(notice_id: int) -> Response:
    actor, ctx = current_actor(), engine_context()
    text = request.form.get("text", "")
    return _act(
        notice_id,
        lambda session: notices.respond(session, ctx, notice_id=notice_id, actor=actor, text=text),
        "已书面回复督办文书 {number}",
        {"text": text},
    )


@bp.post("/notices/<int:notice_id>/close")
@login_required
def close(notice_id: int) -> Response:
    actor, ctx = current_actor(), engine_context()
    note = request.form.get("note", "")
    return _act(
        notice_id,
        lambda session: notices.close(session, ctx, notice_id=notice_id, actor=actor, note=note),
        "已办结督办文书 {number}",
        {"note": note},
    )


@bp.get("/notices/<int:notice_id>/print")
@login_required
def printable(notice_id: int) -> Response:
    """The A4 document as issued (the PDF prints exactly this page)."""
    with read_session() as session:
        html = notices.render_printable(notices.get_notice(session, current_actor(), notice_id))
    response = current_app.make_response(html)
    response.headers["Content-Security-Policy"] = PRINT_CSP
    return response


@bp.get("/notices/<int:notice_id>.pdf")
@login_required
def as_pdf(notice_id: int) -> Response:
    """The print page as a PDF named after its 文号 (503 when Chromium is not available)."""
    with read_session() as session:
        notice = notices.get_notice(session, current_actor(), notice_id)
        html, number = notices.render_printable(notice), notice.document_number
    return pdf.pdf_response(pdf.html_to_pdf(html), f"{number}.pdf")
