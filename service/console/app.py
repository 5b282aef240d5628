"""The console's blueprint: mounted under /console/ by service/web.py, guarded by auth.py.

Every page needs a login; every POST needs the session's CSRF token; actions need the
admin role. Off (404 with a hint) unless a console password is set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from service.adapters.logins import LoginThrottle, shared_session_key
from service.adapters.rulefiles import RulesHolder
from service.authoring.findings import many
from service.config.settings import Settings
from service.console import auth, pages
from service.console.context import Console, console, is_admin, signed_in, where

PREFIX = "/console"
OFF_TEXT = (
    "The ops console is off. Set DEALKEEPER_CONSOLE_PASSWORD (read only) and "
    "DEALKEEPER_CONSOLE_ADMIN_PASSWORD (may retry and purge) to turn it on: "
    "docs/console.md.\n"
)
# Pages name only this host's own files: no inline script, no other origin, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
OPEN_ENDPOINTS = frozenset({"console.login", "console.static"})


def register_console(
    app: Flask,
    settings: Settings,
    connection: redis.Redis,
    rules: RulesHolder,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Mount the console on `app`, or a 404 that says how to turn it on."""
    if not settings.console_on:
        _mount_off(app)
        return
    app.extensions["dealkeeper_console"] = Console(
        settings=settings,
        connection=connection,
        passwords=auth.Passwords.of(settings),
        throttle=LoginThrottle(connection),
        rules=rules,
        clock=clock,
    )
    app.secret_key = (
        settings.console_secret.encode()
        if settings.console_secret
        else shared_session_key(connection)
    )
    app.config.update(
        SESSION_COOKIE_NAME="dk_console",
        SESSION_COOKIE_PATH=PREFIX + "/",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Strict would drop it on the link from Close
        PERMANENT_SESSION_LIFETIME=timedelta(hours=auth.SESSION_HOURS),
    )
    app.register_blueprint(_blueprint())


def _mount_off(app: Flask) -> None:
    def off(rest: str = "") -> tuple[str, int, dict[str, str]]:
        return OFF_TEXT, 404, {"Content-Type": "text/plain; charset=utf-8"}

    app.add_url_rule(PREFIX + "/", "console_off", off)
    app.add_url_rule(PREFIX + "/<path:rest>", "console_off_path", off)


def _blueprint() -> Blueprint:
    bp = Blueprint(
        "console",
        __name__,
        url_prefix=PREFIX,
        template_folder="templates",
        static_folder="static",
    )
    bp.before_request(_guard)
    bp.after_request(_secure)
    bp.context_processor(_template_globals)
    bp.add_url_rule("/login", "login", _login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", _logout, methods=["POST"])
    pages.add_routes(bp)
    return bp


def _guard() -> BaseResponse | tuple[str, int] | None:
    if request.endpoint in OPEN_ENDPOINTS:
        return _csrf_guard() if request.endpoint == "console.login" else None
    if not signed_in():
        if request.method == "GET":
            return redirect(url_for("console.login", next=request.full_path))
        return "Sign in first.\n", 401
    return _csrf_guard()


def _csrf_guard() -> tuple[str, int] | None:
    if "csrf" not in session:
        session["csrf"] = auth.new_csrf_token()
    if request.method == "POST" and not auth.csrf_matches(
        session.get("csrf"), request.form.get("csrf_token")
    ):
        return "This form is stale or was not sent by the console (CSRF token). Reload.\n", 403
    return None


def _secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _template_globals() -> dict[str, Any]:
    return {
        "csrf_token": session.get("csrf", ""),
        "role": session.get("role"),
        "is_admin": is_admin(),
        "dry_run": console().settings.dry_run,
        "navigation": pages.NAVIGATION,
        "where": where,
        "many": many,
    }


def _login() -> BaseResponse | tuple[str, int] | tuple[str, int, dict[str, str]]:
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/login.html", next=target, problem=None), 200
    the = console()
    client = request.remote_addr or "unknown"
    wait = the.throttle.blocked_for(client)
    if wait:
        text = render_template(
            "console/login.html",
            next=target,
            problem=f"Too many wrong passwords: try again in {wait} s.",
        )
        return text, 429, {"Retry-After": str(wait)}
    role = the.passwords.role_for(request.form.get("password", ""))
    if role is None:
        the.throttle.failed(client)
        page = render_template("console/login.html", next=target, problem="Wrong password.")
        return page, 401
    the.throttle.succeeded(client)
    session.clear()
    session.permanent = True
    session.update(role=role, pv=the.passwords.version(), csrf=auth.new_csrf_token())
    return redirect(target)


def _logout() -> BaseResponse:
    session.clear()
    return redirect(url_for("console.login"))


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never another host (an open redirect)."""
    if value:
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc and parts.path.startswith(PREFIX + "/"):
            return value
    return PREFIX + "/"
