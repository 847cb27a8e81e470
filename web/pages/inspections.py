"""``/inspections`` (排查计划): my scheduled inspections, recording one, and the missed ones.

Tabs: ``mine`` (the open and missed inspections I may record, each with its form: 检查情况 and
发现隐患数), ``missed`` (逾期未检查 among all I may see, with counts per region and enterprise)
and ``done`` (recorded ones, newest first). ``GET /inspections/<id>/hazard`` opens the hazard
registration form pre-filled for the inspected enterprise (and the source that fits the role);
it posts to ``/hazards/new`` like the form of the ledger.

The engine (:mod:`engine.inspections`) checks who may record what; 403/404/409 are the error
pages, field errors re-render the list with 422 and what was typed.
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

from engine import inspections
from engine import ledger
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.models import HazardSource
from engine.models import Role
from engine.models.inspection import INSPECTION_STATE_LABELS
from engine.models.org import ENTERPRISE_ROLES

from ..auth import current_actor
from ..auth import login_required
from ..i18n import _
from ..security import safe_next
from ..session import engine_context
from ..session import read_session
from ..session import sessions
from . import hazards as hazard_pages

bp = Blueprint("inspections", __name__)

TAB_LABELS = {"mine": "我的排查任务", "missed": "逾期未检查", "done": "已完成"}
PER_PAGE = 20
#: ids in paths beyond this are 404 before any query (the column is a 32-bit integer)
MAX_ID = 2**31 - 1


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 100_000 else 1


def _supervises(roles: frozenset[Role]) -> bool:
    """Region-wide roles see the missed counts per region and enterprise."""
    return bool(roles - ENTERPRISE_ROLES)


def _render(
    *,
    errors: Mapping[int, Mapping[str, Any]] | None = None,
    values: Mapping[int, Mapping[str, str]] | None = None,
    status: int = 200,
) -> Response:
    actor = current_actor()
    tab = request.args.get("tab", "mine")
    if tab not in TAB_LABELS:
        tab = "mine"
    page = _page_arg()
    with read_session() as session:
        if tab == "mine":
            listing = inspections.occurrence_page(session, actor, scope="mine", page=page, per_page=PER_PAGE)
        else:
            state = "missed" if tab == "missed" else "done"
            listing = inspections.occurrence_page(
                session, actor, scope="visible", state=state, page=page, per_page=PER_PAGE
            )
        mine = inspections.counts(session, actor, scope="mine")
        visible = inspections.counts(session, actor, scope="visible")
        supervises = _supervises(actor.roles)
        html = render_template(
            "inspections/index.html",
            tab=tab,
            tab_labels=TAB_LABELS,
            tab_counts={"mine": mine.open + mine.missed, "missed": visible.missed, "done": visible.done},
            listing=listing,
            recordable={
                o.id for o in listing.items if o.state != "done" and inspections.can_complete(actor, o)
            },
            plans=inspections.PLANS,
            state_labels={s.value: label for s, label in INSPECTION_STATE_LABELS.items()},
            by_region=inspections.missed_counts(session, actor, by="region", limit=10) if supervises else [],
            by_enterprise=(
                inspections.missed_counts(session, actor, by="enterprise", limit=10) if supervises else []
            ),
            errors=errors or {},
            values=values or {},
        )
    return current_app.make_response((html, status))


@bp.get("/inspections")
@login_required
def index() -> Response:
    return _render()


def _parse_record(form: Mapping[str, str]) -> tuple[str, int | None, dict[str, list[str]]]:
    note = form.get("note", "")
    raw = form.get("hazards_found", "").strip() or "0"
    if raw.isdigit() and len(raw) <= 6:
        return note, int(raw), {}
    return note, None, {"hazards_found": ["发现隐患数必须是 0 或正整数"]}


@bp.post("/inspections/<int:occurrence_id>/complete")
@login_required
def complete(occurrence_id: int) -> Response:
    """Record an inspection; field errors re-render the list (422) with what was typed."""
    if occurrence_id > MAX_ID:
        raise NotFound("排查任务", occurrence_id)
    note, count, errors = _parse_record(request.form)
    typed = {"note": note, "hazards_found": request.form.get("hazards_found", "")}
    if errors:
        return _render(errors={occurrence_id: errors}, values={occurrence_id: typed}, status=422)
    try:
        with sessions().begin() as session:
            occ = inspections.complete(
                session,
                engine_context(),
                occurrence_id=occurrence_id,
                actor=current_actor(),
                note=note,
                hazards_found=count or 0,
            )
            title, late = occ.title, occ.completed_late
    except InvalidInput as exc:
        return _render(errors={occurrence_id: exc.messages}, values={occurrence_id: typed}, status=422)
    message = _("已填报：{title}", title=title)
    flash(f"{message}（{_('逾期补报')}）" if late else message, "warning" if late else "success")
    return redirect(safe_next(request.form.get("next"), url_for("inspections.index")))


@bp.get("/inspections/<int:occurrence_id>/hazard")
@login_required
def register_hazard(occurrence_id: int) -> Response:
    """The hazard registration form, pre-filled with the inspected enterprise and a fitting source."""
    if occurrence_id > MAX_ID:
        raise NotFound("排查任务", occurrence_id)
    actor = current_actor()
    with read_session() as session:
        occ = inspections.get_occurrence(session, actor, occurrence_id)
        values = hazard_pages._default_values(actor, ledger.enterprise_choices(session, actor))
        if occ.enterprise_id is not None:
            values["enterprise_id"] = str(occ.enterprise_id)
            values["source"] = HazardSource.SELF_CHECK.value
        elif Role.GRID_WORKER in actor.roles:
            values["source"] = HazardSource.GRID_PATROL.value
        values["description"] = f"{occ.title}发现："
    return hazard_pages._render_new(values, {})
