"""``/admin``: users, their roles (memberships), organisations, and incidents (dead timer jobs).

Only system administrators manage anything here; a 安委办 may view the organisations of its
region (``/admin/orgs``). Every change goes through :mod:`engine.admin`, whose ``InvalidInput``
re-renders the form with the field errors (422). A generated password is shown once, on the page
answering the POST (never put in a flash message: the session cookie is signed, not encrypted).
"""

from __future__ import annotations

import secrets
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

from engine import admin
from engine.errors import InvalidInput
from engine.models import RegionLevel
from engine.models import Role
from engine.models import TimerJob
from engine.models.org import DEPARTMENT_ROLES
from engine.models.org import ENTERPRISE_ROLES
from engine.models.org import REGION_LEVEL_LABELS
from engine.models.org import ROLE_LABELS

from ..auth import current_actor
from ..auth import hash_password
from ..auth import login_required
from ..auth import roles_required
from ..i18n import _
from ..session import engine_context
from ..session import read_session
from ..session import sessions

bp = Blueprint("admin", __name__)

#: how a membership of each role is scoped (the add-role form shows the matching chooser)
ROLE_SCOPES = {
    **{role: "enterprise" for role in ENTERPRISE_ROLES},
    **{role: "department" for role in DEPARTMENT_ROLES},
    Role.GRID_WORKER: "region",
    Role.TIP_OFFICER: "region",
    Role.OFFICE_ADMIN: "office",
    Role.SYS_ADMIN: "none",
}


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _values(form: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in form.items() if k != "csrf_token"}


def _generated_password() -> str:
    while True:
        password = secrets.token_urlsafe(9) + str(secrets.randbelow(90) + 10)
        try:
            admin.check_password(password)
        except InvalidInput:
            continue
        return password


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return current_app.make_response((render_template(template, **context), status))


# --- overview -------------------------------------------------------------------------------------


@bp.get("/admin")
@login_required
@roles_required(Role.SYS_ADMIN, Role.OFFICE_ADMIN)
def index() -> Response:
    if Role.SYS_ADMIN not in current_actor().roles:
        return redirect(url_for("admin.orgs"))
    with read_session() as session:
        return _page(
            "admin/index.html",
            users=len(admin.list_users(session)),
            incidents=admin.count_incidents(session),
        )


# --- users ----------------------------------------------------------------------------------------


def _render_users(
    errors: Mapping[str, Any] | None = None, values: Mapping[str, str] | None = None, status: int = 200
) -> Response:
    text = request.args.get("q", "")
    with read_session() as session:
        users = admin.list_users(session, text=text)
        return _page(
            "admin/users.html", status, users=users, q=text, errors=errors or {}, values=values or {}
        )


@bp.get("/admin/users")
@login_required
@roles_required(Role.SYS_ADMIN)
def users() -> Response:
    return _render_users()


@bp.post("/admin/users")
@login_required
@roles_required(Role.SYS_ADMIN)
def create_user() -> Response:
    """``username``, ``display_name``, ``password`` (blank: a generated one, shown once)."""
    password = request.form.get("password", "")
    generated = not password
    if generated:
        password = _generated_password()
    try:
        with sessions().begin() as session:
            user = admin.create_user(
                session,
                username=request.form.get("username", ""),
                display_name=request.form.get("display_name", ""),
                password=password,
                hash_password=hash_password,
            )
            user_id = user.id
    except InvalidInput as exc:
        return _render_users(exc.messages, _values(request.form), 422)
    flash(
        _("已创建用户 {username}，请为其添加角色。", username=request.form.get("username", "").strip()),
        "success",
    )
    return _render_user(user_id, new_password=password if generated else None)


def _render_user(
    user_id: int,
    *,
    errors: Mapping[str, Any] | None = None,
    values: Mapping[str, str] | None = None,
    new_password: str | None = None,
    status: int = 200,
) -> Response:
    with read_session() as session:
        user = admin.get_user(session, user_id)
        org = admin.directory(session)
        return _page(
            "admin/user.html",
            status,
            user=user,
            scopes=admin.membership_scope_names(session, user.memberships),
            org=org,
            roles=[(r.value, ROLE_LABELS[r], ROLE_SCOPES[r]) for r in Role],
            errors=errors or {},
            values=values or {},
            new_password=new_password,
            is_self=user.id == current_actor().user_id,
        )


@bp.get("/admin/users/<int:user_id>")
@login_required
@roles_required(Role.SYS_ADMIN)
def user(user_id: int) -> Response:
    return _render_user(user_id)


@bp.post("/admin/users/<int:user_id>/active")
@login_required
@roles_required(Role.SYS_ADMIN)
def set_active(user_id: int) -> Response:
    """``active=1`` activates, anything else deactivates."""
    active = request.form.get("active") == "1"
    try:
        with sessions().begin() as session:
            user = admin.set_active(
                session, user_id=user_id, active=active, by_user_id=current_actor().user_id
            )
            name = user.username
    except InvalidInput as exc:
        return _render_user(user_id, errors=exc.messages, status=422)
    flash(
        _("已启用 {username}", username=name) if active else _("已停用 {username}", username=name), "success"
    )
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/admin/users/<int:user_id>/password")
@login_required
@roles_required(Role.SYS_ADMIN)
def reset_password(user_id: int) -> Response:
    """``password`` (blank: a generated one, shown once); the user's sessions end."""
    password = request.form.get("password", "")
    generated = not password
    if generated:
        password = _generated_password()
    try:
        with sessions().begin() as session:
            admin.set_password(session, user_id=user_id, password=password, hash_password=hash_password)
    except InvalidInput as exc:
        return _render_user(user_id, errors=exc.messages, status=422)
    flash(_("密码已重置，该用户需用新密码重新登录。"), "success")
    if generated:
        return _render_user(user_id, new_password=password)
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/admin/users/<int:user_id>/memberships")
@login_required
@roles_required(Role.SYS_ADMIN)
def add_membership(user_id: int) -> Response:
    """``role`` and its scope: ``enterprise_id``, ``department_id`` and/or ``region_id``."""
    form = request.form
    try:
        with sessions().begin() as session:
            admin.add_membership(
                session,
                user_id=user_id,
                role=form.get("role", ""),
                enterprise_id=_int(form.get("enterprise_id")),
                department_id=_int(form.get("department_id")),
                region_id=_int(form.get("region_id")),
            )
    except InvalidInput as exc:
        return _render_user(user_id, errors=exc.messages, values=_values(form), status=422)
    flash(_("已添加角色"), "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/admin/memberships/<int:membership_id>/delete")
@login_required
@roles_required(Role.SYS_ADMIN)
def remove_membership(membership_id: int) -> Response:
    try:
        with sessions().begin() as session:
            membership = admin.remove_membership(
                session, membership_id=membership_id, by_user_id=current_actor().user_id
            )
            user_id = membership.user_id
    except InvalidInput as exc:
        with read_session() as session:
            owner = admin.membership_owner(session, membership_id)
        return _render_user(owner, errors=exc.messages, status=422)
    flash(_("已移除角色"), "success")
    return redirect(url_for("admin.user", user_id=user_id))


# --- organisations ----------------------------------------------------------------------------------


def _render_orgs(
    errors: Mapping[str, Any] | None = None,
    values: Mapping[str, str] | None = None,
    form_name: str = "",
    status: int = 200,
) -> Response:
    actor = current_actor()
    can_edit = Role.SYS_ADMIN in actor.roles
    paths = (
        None
        if can_edit
        else sorted({s.region_path for s in actor.scopes_for([Role.OFFICE_ADMIN]) if s.region_path})
    )
    with read_session() as session:
        org = admin.directory(session, region_paths=paths)
        return _page(
            "admin/orgs.html",
            status,
            org=org,
            can_edit=can_edit,
            sector_names={s.code: s.name for s in org.sectors},
            levels=[(lvl.value, REGION_LEVEL_LABELS[lvl]) for lvl in RegionLevel],
            errors=errors or {},
            values=values or {},
            form_name=form_name,
        )


@bp.get("/admin/orgs")
@login_required
@roles_required(Role.SYS_ADMIN, Role.OFFICE_ADMIN)
def orgs() -> Response:
    return _render_orgs()


@bp.post("/admin/regions")
@login_required
@roles_required(Role.SYS_ADMIN)
def create_region() -> Response:
    form = request.form
    try:
        with sessions().begin() as session:
            region = admin.create_region(
                session,
                code=form.get("code", ""),
                name=form.get("name", ""),
                level=form.get("level", ""),
                parent_id=_int(form.get("parent_id")),
            )
            name = region.name
    except InvalidInput as exc:
        return _render_orgs(exc.messages, _values(form), "region", 422)
    flash(_("已添加地区 {name}", name=name), "success")
    return redirect(url_for("admin.orgs") + "#regions")


@bp.post("/admin/sectors")
@login_required
@roles_required(Role.SYS_ADMIN)
def create_sector() -> Response:
    form = request.form
    try:
        with sessions().begin() as session:
            sector = admin.create_sector(session, code=form.get("code", ""), name=form.get("name", ""))
            name = sector.name
    except InvalidInput as exc:
        return _render_orgs(exc.messages, _values(form), "sector", 422)
    flash(_("已添加行业 {name}", name=name), "success")
    return redirect(url_for("admin.orgs") + "#sectors")


@bp.post("/admin/departments")
@login_required
@roles_required(Role.SYS_ADMIN)
def create_department() -> Response:
    form = request.form
    try:
        with sessions().begin() as session:
            department = admin.create_department(
                session,
                name=form.get("name", ""),
                abbreviation=form.get("abbreviation", ""),
                region_id=_int(form.get("region_id")),
                lead_sectors=form.getlist("lead_sectors"),
                co_sectors=form.getlist("co_sectors"),
                is_safety_committee_office=form.get("is_safety_committee_office") == "1",
            )
            name = department.name
    except InvalidInput as exc:
        values: dict[str, Any] = _values(form)
        values["lead_sectors"] = form.getlist("lead_sectors")
        values["co_sectors"] = form.getlist("co_sectors")
        return _render_orgs(exc.messages, values, "department", 422)
    flash(_("已添加部门 {name}", name=name), "success")
    return redirect(url_for("admin.orgs") + "#departments")


@bp.post("/admin/enterprises")
@login_required
@roles_required(Role.SYS_ADMIN)
def create_enterprise() -> Response:
    form = request.form
    try:
        with sessions().begin() as session:
            enterprise = admin.create_enterprise(
                session,
                name=form.get("name", ""),
                credit_code=form.get("credit_code", ""),
                region_id=_int(form.get("region_id")),
                sector_code=form.get("sector_code", ""),
                principal_name=form.get("principal_name", ""),
                actual_controller=form.get("actual_controller", ""),
                high_risk=form.get("high_risk") == "1",
            )
            name = enterprise.name
    except InvalidInput as exc:
        return _render_orgs(exc.messages, _values(form), "enterprise", 422)
    flash(_("已添加企业 {name}", name=name), "success")
    return redirect(url_for("admin.orgs") + "#enterprises")


# --- incidents --------------------------------------------------------------------------------------


@bp.get("/admin/incidents")
@login_required
@roles_required(Role.SYS_ADMIN)
def incidents() -> Response:
    """Open incidents (dead timer jobs) with their retry buttons, and the recently retried ones."""
    with read_session() as session:
        return _page(
            "admin/incidents.html",
            incidents=admin.incidents(session),
            retried=admin.incidents(session, state="retried", limit=50),
        )


@bp.post("/admin/incidents/<int:incident_id>/retry")
@login_required
@roles_required(Role.SYS_ADMIN)
def retry(incident_id: int) -> Response:
    """Put an incident's dead timer job back in the queue (the worker fires it at its next tick).

    The same engine function as ``hazardloop incidents retry``; unknown: 404, retried already: 409.
    """
    with sessions().begin() as session:
        incident = admin.retry_incident(
            session,
            incident_id=incident_id,
            now=engine_context().clock.now(),
            by_user_id=current_actor().user_id,
        )
        job = session.get_one(TimerJob, incident.timer_job_id)
        job_id, key = job.id, job.timer_key
    flash(_("已重新排队定时任务 {id}（{key}），将由后台任务在下一轮执行。", id=job_id, key=key), "success")
    return redirect(url_for("admin.incidents"))
