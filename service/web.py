"""`gunicorn "service.web:create_app()"`: the name deployments use (Procfile, Dockerfile,
DESIGN's contract). The webhook intake (service/intake/app.py) with the ops console
(service/console/) mounted beside it."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from service.config.settings import Settings
from service.console.app import register_console
from service.intake.app import create_app as create_intake_app

__all__ = ["create_app"]


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> Flask:
    """The web process's app; gunicorn calls this once per worker process."""
    settings = settings or Settings.from_env()
    app = create_intake_app(settings, clock=clock)
    intake = app.extensions["dealkeeper"]
    register_console(app, settings, intake.connection, intake.rules, clock=clock)
    return app
