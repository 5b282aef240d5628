"""The console's protections, each shown to hold and to fail when removed: off without a
password, every page behind the login, CSRF on every POST, the login throttle, the cookie's
flags, signed sessions ended by a password change, no secret on any page, no open redirect."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from service.adapters.logins import LOGIN_ATTEMPTS
from tests.consoleclient import (
    ADMIN_PASSWORD,
    READ_PASSWORD,
    console_client,
    console_settings,
    csrf_of,
    sign_in,
)

RULES = Path(__file__).resolve().parents[2] / "rules"
API_KEY = "api_key_console_secret_1b9e77"
WEBHOOK_KEY = bytes.fromhex("9f" * 32)
METRICS_TOKEN = "metrics-token-console-0c4d"
REDIS_PASSWORD = "redis-pw-console-77aa"


@pytest.fixture
def make(redis_url: str) -> Callable[..., FlaskClient]:
    def build(**changes: Any) -> FlaskClient:
        return console_client(console_settings(redis_url, RULES, **changes))

    return build


@pytest.fixture
def client(make: Callable[..., FlaskClient]) -> FlaskClient:
    return make()


def console_pages(client: FlaskClient) -> list[str]:
    """Every GET page of the console that takes no path argument (the static files aside)."""
    rules = client.application.url_map.iter_rules()
    return sorted(
        r.rule
        for r in rules
        if r.rule.startswith("/console/")
        and "GET" in (r.methods or ())
        and not r.arguments
        and r.endpoint not in ("console.login", "console.static")
    )


def console_posts(client: FlaskClient) -> list[str]:
    rules = client.application.url_map.iter_rules()
    return sorted(
        r.rule
        for r in rules
        if r.rule.startswith("/console/") and "POST" in (r.methods or ()) and not r.arguments
    )


def test_the_console_is_off_without_a_password(redis_url: str) -> None:
    client = console_client(
        console_settings(redis_url, RULES, console_password=None, console_admin_password=None)
    )
    for path in ("/console/", "/console/login", "/console/parked"):
        answer = client.get(path)
        assert 404 == answer.status_code
        assert "DEALKEEPER_CONSOLE_PASSWORD" in answer.text
        assert "Set-Cookie" not in answer.headers


def test_there_are_pages_to_guard(client: FlaskClient) -> None:
    """The lists the tests below walk are not empty (a guard over nothing proves nothing)."""
    assert {"/console/", "/console/deal", "/console/parked"} <= set(console_pages(client))
    assert "/console/logout" in console_posts(client)


def test_no_page_is_reachable_without_signing_in(client: FlaskClient) -> None:
    for path in console_pages(client):
        answer = client.get(path)
        assert 302 == answer.status_code, path
        assert answer.headers["Location"].startswith("/console/login"), path
        assert "csrf_token" not in answer.text
    for path in console_posts(client):
        assert client.post(path, data={}).status_code in (401, 403), path


def test_a_post_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    token = sign_in(client, ADMIN_PASSWORD)
    for path in console_posts(client):
        assert 403 == client.post(path, data={}).status_code, path
        assert 403 == client.post(path, data={"csrf_token": token + "x"}).status_code, path
    assert client.get("/console/").status_code == 200  # still signed in: nothing was done
    # And the login form itself: a token another page was not given is refused.
    fresh = console_client(client.application.extensions["dealkeeper_console"].settings)
    answer = fresh.post("/console/login", data={"password": READ_PASSWORD})
    assert 403 == answer.status_code


def test_signing_out_needs_the_token_and_ends_the_session(client: FlaskClient) -> None:
    token = sign_in(client)
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302


def test_a_wrong_password_is_refused_and_counted(client: FlaskClient) -> None:
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={"password": "guess", "csrf_token": token})
    assert 401 == answer.status_code
    assert "Wrong password" in answer.text
    assert client.get("/console/").status_code == 302


def test_logins_are_throttled_per_address(make: Callable[..., FlaskClient]) -> None:
    attacker = make()
    token = csrf_of(attacker.get("/console/login").text)
    for _ in range(LOGIN_ATTEMPTS):
        attacker.post("/console/login", data={"password": "guess", "csrf_token": token})
    answer = attacker.post("/console/login", data={"password": READ_PASSWORD, "csrf_token": token})
    assert 429 == answer.status_code
    assert int(answer.headers["Retry-After"]) > 0
    # Another address is not held back by the attacker's failures.
    other = make()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    sign_in(other)
    assert other.get("/console/").status_code == 200


def test_the_session_cookie_is_secure_httponly_and_samesite(client: FlaskClient) -> None:
    token = csrf_of(client.get("/console/login").text)
    answer = client.post("/console/login", data={"password": READ_PASSWORD, "csrf_token": token})
    cookie = answer.headers["Set-Cookie"]
    flags = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "secure" in flags
    assert "httponly" in flags
    assert flags["samesite"].strip().lower() == "samesite=lax"
    assert flags["path"].strip() == "Path=/console/"


def test_a_tampered_session_is_not_signed_in(client: FlaskClient) -> None:
    sign_in(client)
    cookie = client.get_cookie("dk_console", path="/console/")
    assert cookie is not None
    payload, _, signed = cookie.value.partition(".")
    session = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert session["role"] == "read"
    session["role"] = "admin"
    raised = base64.urlsafe_b64encode(json.dumps(session).encode()).decode().rstrip("=")
    forged = raised + "." + signed
    client.set_cookie("dk_console", forged, path="/console/")
    assert client.get("/console/").status_code == 302


def test_a_changed_password_ends_every_session(
    make: Callable[..., FlaskClient], redis_url: str
) -> None:
    old = make(console_secret="a-fixed-console-secret-1234")
    sign_in(old)
    cookie = old.get_cookie("dk_console", path="/console/")
    assert cookie is not None
    changed = make(
        console_secret="a-fixed-console-secret-1234", console_password="new-read-pw-0000"
    )
    changed.set_cookie("dk_console", cookie.value, path="/console/")
    assert changed.get("/console/").status_code == 302
    same = make(console_secret="a-fixed-console-secret-1234")
    same.set_cookie("dk_console", cookie.value, path="/console/")
    assert same.get("/console/").status_code == 200


def test_the_read_password_does_not_open_the_admin_role(client: FlaskClient) -> None:
    sign_in(client, READ_PASSWORD)
    assert "read only" in client.get("/console/").text
    admin = console_client(client.application.extensions["dealkeeper_console"].settings)
    sign_in(admin, ADMIN_PASSWORD)
    assert ">admin" in admin.get("/console/").text


def test_no_page_shows_a_secret(make: Callable[..., FlaskClient], redis_server: Any) -> None:
    secret_url = redis_server.url.replace("redis://", f"redis://:{REDIS_PASSWORD}@", 1)
    settings_changes = {
        "close_api_key": API_KEY,
        "webhook_secrets": (WEBHOOK_KEY,),
        "metrics_token": METRICS_TOKEN,
        "force_dry_run": True,
    }
    client = make(**settings_changes)
    client.application.extensions["dealkeeper_console"].settings = client.application.extensions[
        "dealkeeper_console"
    ].settings.with_changes(redis_url=secret_url)
    secrets = (
        API_KEY,
        WEBHOOK_KEY.hex(),
        METRICS_TOKEN,
        READ_PASSWORD,
        ADMIN_PASSWORD,
        REDIS_PASSWORD,
    )
    sign_in(client, ADMIN_PASSWORD)
    pages = console_pages(client)
    for path in pages:
        text = client.get(path).get_data(as_text=True)
        for secret in secrets:
            assert secret not in text, (path, secret[:4])


def test_pages_forbid_framing_and_other_origins(client: FlaskClient) -> None:
    sign_in(client)
    answer = client.get("/console/")
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/console/", "/webhooks/close"]
)
def test_signing_in_never_redirects_off_the_console(client: FlaskClient, target: str) -> None:
    token = csrf_of(client.get("/console/login").text)
    answer = client.post(
        "/console/login", data={"password": READ_PASSWORD, "csrf_token": token, "next": target}
    )
    assert answer.headers["Location"] == "/console/"


def test_every_web_process_signs_alike_with_a_key_no_password_gives(
    make: Callable[..., FlaskClient], redis_client: Any
) -> None:
    first = make()
    sign_in(first)
    cookie = first.get_cookie("dk_console", path="/console/")
    assert cookie is not None
    second = make()  # another gunicorn process: the same Redis, the same key
    second.set_cookie("dk_console", cookie.value, path="/console/")
    assert second.get("/console/").status_code == 200
    key = redis_client.get("dk:console:session_key")
    assert key is not None and len(key) == 64
    assert READ_PASSWORD.encode() not in key and ADMIN_PASSWORD.encode() not in key
    redis_client.delete("dk:console:session_key")  # a new Redis: a new key
    third = make()
    third.set_cookie("dk_console", cookie.value, path="/console/")
    assert third.get("/console/").status_code == 302
