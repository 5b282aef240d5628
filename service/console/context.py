"""The console's per-process state and the session's role, for every page module."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from flask import abort, current_app, session

from service.adapters.logins import LoginThrottle
from service.adapters.rulefiles import RulesHolder
from service.config.settings import Settings
from service.console import auth
from service.core.rules.model import Position


@dataclass
class Console:
    """What the console's pages read, built once per web process."""

    settings: Settings
    connection: redis.Redis
    passwords: auth.Passwords
    throttle: LoginThrottle
    rules: RulesHolder  # the web process's own: loaded and watched once, shared with intake
    clock: Callable[[], float] = time.time
    extras: dict[str, Any] = field(default_factory=dict)  # per-page caches


def console() -> Console:
    found: Console = current_app.extensions["dealkeeper_console"]
    return found


def signed_in() -> bool:
    return (
        session.get("role") in (auth.READ, auth.ADMIN)
        and session.get("pv") == console().passwords.version()
    )


def is_admin() -> bool:
    return signed_in() and session.get("role") == auth.ADMIN


def require_admin() -> None:
    """Abort with 403 unless the session holds the admin role."""
    if not is_admin():
        abort(403, "This needs the admin password (DEALKEEPER_CONSOLE_ADMIN_PASSWORD).")


def where(position: Position) -> str:
    """`file:line` with the file named within the rules path (which each page shows once):
    a full path on every row pushes the table's other columns off a laptop's screen."""
    file, root = Path(position.file), Path(console().settings.rules_path)
    if file == root:
        shown = file.name
    elif file.is_relative_to(root):
        shown = str(file.relative_to(root))
    else:
        shown = position.file
    return f"{shown}:{position.line}"
