"""`gunicorn "service.web:create_app()"`: the name deployments use (Procfile, Dockerfile,
DESIGN's contract), kept for them; the app lives in service/intake/app.py."""

from service.intake.app import create_app

__all__ = ["create_app"]
