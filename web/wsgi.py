"""WSGI entry point: ``gunicorn web.wsgi:app`` (settings from HAZARDLOOP_* variables)."""

from __future__ import annotations

from . import create_app

app = create_app()
