"""Server-rendered pages: one blueprint per area, and the navigation bar of ``base.html``.

Adding an area is one line in :data:`PAGE_MODULES`: the module ``web/pages/<name>.py`` exposes a
``bp = Blueprint("<name>", __name__)`` whose views render templates under
``web/templates/<name>/``, each extending ``base.html``::

    bp = Blueprint("tasks", __name__)

    @bp.get("/tasks")
    @login_required
    def index() -> str:
        with read_session() as session:
            items = tasklist.inbox(session, current_actor())
            return render_template("tasks/index.html", items=items)

The navigation links are :data:`NAV`: a link shows only to actors holding one of its roles
(``roles=None``: every logged-in user). Labels are Chinese source text, translated when shown.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask import request

from engine.access import Actor
from engine.models import Role

from ..auth import cached_actor

#: page modules under web/pages/, each with a ``bp`` blueprint — one line per area
PAGE_MODULES: tuple[str, ...] = (
    "home",
    "tasks",
    "actions",
    "hazards",
    "reviews",
    "notices",
    "inspections",
    "admin",
    "admin_calendar",
    "design",
    "design_diagrams",
    "design_versions",
    "design_history",
)

#: roles that work with hazards (process and system administrators see none: DESIGN §3)
HAZARD_ROLES = frozenset(Role) - {Role.PROCESS_ADMIN, Role.SYS_ADMIN}


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    roles: frozenset[Role] | None = None

    def visible_to(self, actor: Actor) -> bool:
        return self.roles is None or bool(actor.roles & self.roles)


NAV: tuple[NavItem, ...] = (
    NavItem("/tasks", "我的待办"),
    NavItem("/hazards", "隐患台账", HAZARD_ROLES),
    NavItem("/hazards/new", "登记隐患", HAZARD_ROLES),
    NavItem("/reviews", "销号审核", frozenset({Role.DEPT_REVIEWER, Role.OFFICE_ADMIN})),
    NavItem("/notices", "督办文书", HAZARD_ROLES),
    NavItem("/inspections", "排查计划", HAZARD_ROLES - {Role.TIP_OFFICER}),
    NavItem("/design", "流程设计", frozenset({Role.PROCESS_ADMIN, Role.SYS_ADMIN})),
    NavItem("/admin", "管理", frozenset({Role.SYS_ADMIN, Role.OFFICE_ADMIN})),
)


def nav_items(actor: Actor | None, path: str) -> list[tuple[NavItem, bool]]:
    """The links ``actor`` may see, each with whether it is the current page (longest match)."""
    if actor is None:
        return []
    items = [item for item in NAV if item.visible_to(actor)]
    matches = [i for i in items if path == i.path or path.startswith(i.path.rstrip("/") + "/")]
    current = max(matches, key=lambda i: len(i.path), default=None)
    return [(item, item is current) for item in items]


def _nav_context() -> dict[str, Any]:
    return {"nav_items": nav_items(cached_actor(), request.path)}


def register_pages(app: Flask, modules: Sequence[str] = PAGE_MODULES) -> None:
    """Register the blueprint ``bp`` of every page module, and the navigation context."""
    for name in modules:
        app.register_blueprint(importlib.import_module(f"{__name__}.{name}").bp)
    app.context_processor(_nav_context)
