"""gunicorn's own lines (start-up, worker boots and deaths, errors, access) in dealkeeper's
format: JSON off a terminal, `key=value` on one, secrets masked, LOG_LEVEL honoured.

gunicorn.conf.py at the repository root names `Logger` as gunicorn's `logger_class`, so the
Procfile, the Dockerfile and `dealkeeper run` all get it. Access lines carry the method,
path, status and duration, never a header, a query string or a body (a webhook's signature
travels in its headers).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger

from service.config.errors import ConfigurationError
from service.config.settings import LOG_LEVELS, Settings
from service.observability import logs

# Probes and scrapes arrive every few seconds; their access lines are for debugging only.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def level_and_secrets(environ: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """LOG_LEVEL and the secrets to mask, even when the settings have mistakes (create_app
    reports those; the master must still start to say so)."""
    try:
        settings = Settings.from_env(environ)
    except ConfigurationError:
        level = environ.get("LOG_LEVEL", "").strip().upper()
        keys = environ.get("CLOSE_WEBHOOK_SECRET", "").split(",")
        secrets = tuple(s.strip() for s in [environ.get("CLOSE_API_KEY", ""), *keys] if s.strip())
        return (level if level in LOG_LEVELS else "INFO"), secrets
    return settings.log_level, settings.secret_strings()


class Logger(GunicornLogger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's logger, writing through the handler logs.py installs on the root."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        level, secrets = level_and_secrets(os.environ)
        logs.configure(level=level, secrets=secrets)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True  # to the root's handler
            logger.setLevel(logging.NOTSET)  # the root's level: LOG_LEVEL

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        # The request's fields (event id, job id) were bound for this line: the request ends
        # here, so they must not ride on the worker's next lines.
        try:
            self._access(resp, environ, request_time)
        finally:
            logs.clear()

    def _access(self, resp: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.cfg.accesslog:
            return
        path = environ.get("PATH_INFO", "")
        status = str(resp.status).split(None, 1)[0]
        fields = {
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": int(status) if status.isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "user_agent": environ.get("HTTP_USER_AGENT"),
        }
        level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
        self.access_log.log(level, "request_served", extra=fields)
