"""Firing due timers: the names ``hazardloop timers run-due``, the worker and the tests have used.

The work is done by :mod:`engine.scheduler` (leased claims, backoff, incidents). Each due
``timer_job`` is only a trigger: firing runs the per-instance protocol, where SpiffWorkflow decides
under the instance lock whether the timer fires, so a timer fires once however many callers race.
"""

from __future__ import annotations

from .config import Settings
from .scheduler import RunResult
from .scheduler import run_due

#: the default number of attempts before a job is dead (``Settings.timer_max_attempts``)
MAX_ATTEMPTS = Settings().timer_max_attempts

__all__ = ["MAX_ATTEMPTS", "RunResult", "run_due"]
