"""Signing in to the console with Flask's test client, as a browser would."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

READ_PASSWORD = "read-password-for-tests"
ADMIN_PASSWORD = "admin-password-for-tests"
# The session cookie is Secure: the test client sends it only over https.
HTTPS = {"base_url": "https://localhost"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(page)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client: FlaskClient, password: str = READ_PASSWORD) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    form = client.get("/console/login", **HTTPS).get_data(as_text=True)
    answer = client.post(
        "/console/login", data={"csrf_token": csrf_of(form), "password": password}, **HTTPS
    )
    assert 302 == answer.status_code, answer.get_data(as_text=True)
    page = client.get("/console/", **HTTPS).get_data(as_text=True)
    return csrf_of(page)
