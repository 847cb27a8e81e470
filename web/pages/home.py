"""``/``: to the task list when logged in, else to the login form; ``/healthz`` for load balancers.

Until the task-list page (``/tasks``) exists, ``/`` shows a small dashboard of the user's inbox.
"""

from __future__ import annotations

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import url_for
from sqlalchemy import text
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from engine import inspections
from engine.tasklist import inbox

from ..auth import optional_actor
from ..session import engine_context
from ..session import read_session

bp = Blueprint("home", __name__)

TASKS_PATH = "/tasks"


def _has_page(path: str) -> bool:
    """Does some view answer GET ``path``?"""
    adapter = current_app.url_map.bind("localhost")
    try:
        adapter.match(path, method="GET")
    except RequestRedirect:
        return True  # e.g. /tasks -> /tasks/
    except (NotFound, MethodNotAllowed):
        return False
    return True


@bp.get("/")
def index() -> Response | str:
    actor = optional_actor()
    if actor is None:
        return redirect(url_for("auth.login"))
    if _has_page(TASKS_PATH):
        return redirect(TASKS_PATH)
    now = engine_context().clock.now()
    with read_session() as session:
        items = inbox(session, actor)
        counts = {
            "total": len(items),
            "mine": sum(1 for i in items if i.assignee_id == actor.user_id),
            "unclaimed": sum(1 for i in items if i.assignee_id is None),
            "overdue": sum(1 for i in items if i.hazard.overdue or (i.due_at is not None and i.due_at < now)),
            # scheduled inspections missed in the actor's scope (engine.inspections)
            "inspections_missed": inspections.counts(session, actor).missed,
        }
    return render_template("home/index.html", counts=counts)


@bp.get("/healthz")
def healthz() -> Response:
    """``{"status": "ok"}`` when the database answers (503 JSON/HTML otherwise)."""
    with read_session() as session:
        session.execute(text("SELECT 1"))
    return jsonify(status="ok")
