"""Drives a hazard's loop through engine.runtime, one unit of work per step (shared by scenario tests)."""

from __future__ import annotations

from sqlalchemy import select

from engine import definitions
from engine import runtime
from engine.demo import open_item
from engine.models import Event
from engine.models import Hazard
from engine.models import WorkItem
from tests.factories import make_hazard


class Driver:
    """Runs each step in its own unit of work; with ``round_trip`` every cache is dropped between steps."""

    def __init__(self, sessions, ctx, world, round_trip: bool) -> None:
        self.sessions, self.ctx, self.world, self.round_trip = sessions, ctx, world, round_trip

    def step(self, fn, *args, **kwargs):
        if self.round_trip:
            definitions._spec_cache.clear()
        with self.sessions.begin() as session:
            return fn(session, *args, **kwargs)

    def actor(self, username):
        with self.sessions() as session:
            return self.world.actor(session, username)

    def register(self, username="chen_safety", **overrides):
        actor = self.actor(username)
        return self.step(lambda s: make_hazard(s, self.ctx, self.world, actor, **overrides).id)

    def item(self, hazard_id, task_key=None):
        with self.sessions() as session:
            return open_item(session, session.get(Hazard, hazard_id), task_key)

    def complete(self, hazard_id, task_key, username, form):
        item = self.item(hazard_id, task_key)
        actor = self.actor(username)
        return self.step(
            lambda s: runtime.complete(s, self.ctx, work_item_id=item.id, actor=actor, form=form)
        )

    def hazard(self, hazard_id) -> Hazard:
        with self.sessions() as session:
            return session.get(Hazard, hazard_id)

    def open_keys(self, hazard_id):
        with self.sessions() as session:
            return sorted(
                session.scalars(
                    select(WorkItem.task_key).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
                )
            )

    def actions(self, hazard_id):
        with self.sessions() as session:
            return list(
                session.scalars(select(Event.action).where(Event.hazard_id == hazard_id).order_by(Event.id))
            )

    def upload(self, hazard_id, content, *, username="zhang_rectifier", phase="after", filename=None):
        """Store an attachment (photo by default) and return its id."""
        actor = self.actor(username)
        return self.step(
            lambda s: (
                runtime.add_attachment(
                    s,
                    self.ctx,
                    hazard_id=hazard_id,
                    actor=actor,
                    filename=filename or f"{phase}.jpg",
                    mime_type="image/jpeg" if filename is None else "application/octet-stream",
                    content=content,
                    phase=phase,
                ).id
            )
        )
