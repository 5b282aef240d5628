"""The wire to Close: one pooled HTTP/1.1 connection manager from urllib3, and its replies.

Every request dealkeeper makes goes to one base URL with the same headers, so requests'
per-call work (merging session settings, hooks, cookies, a PreparedRequest, redirect
handling) bought nothing and cost about 0.45 ms a call here, two calls a job (bench worker).
urllib3 is what requests itself sends through; the environment (proxies, NO_PROXY, the CA
bundle) is still read by requests' own rules, once, when the transport is made.

Redirects are not followed: Close's API does not redirect, and following one could carry
the Authorization header somewhere else; a 3xx reaches the caller as an answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import HTTPError, NewConnectionError, TimeoutError

from service.config.errors import ConfigurationError

# Long listings (the event log, sweeps) come compressed; urllib3 decodes them.
_ALWAYS = {"accept-encoding": "gzip, deflate"}


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, read whole."""

    status: int
    reason: str
    headers: Mapping[str, str]  # case-insensitive
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (Close answers UTF-8); undecodable bytes replaced."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.content)


class NoReplyError(Exception):
    """No usable answer: a timeout, a refused or broken connection, a TLS failure."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


class Transport:
    """Sends requests to URLs under one base URL through a shared connection pool."""

    def __init__(self, base_url: str, *, connect_sec: float, read_sec: float) -> None:
        self._timeout = urllib3.Timeout(connect=connect_sec, read=read_sec)
        self._manager = _manager_for(*environment_settings(base_url))

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Reply:
        """One attempt, no retries (the caller decides those); NoReplyError when none came."""
        if params:
            url = f"{url}?{urlencode(params)}"
        body = None
        if json_body is not None:
            body = json.dumps(json_body, allow_nan=False).encode()
            headers = {**headers, "content-type": "application/json"}
        headers = {**headers, **_ALWAYS}
        try:
            answer = self._manager.urlopen(
                method,
                url,
                body=body,
                headers=headers,
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except HTTPError as exc:
            # A refused connection is a NewConnectionError, which urllib3 files under timeouts.
            timeout = isinstance(exc, TimeoutError) and not isinstance(exc, NewConnectionError)
            raise NoReplyError(_describe(exc), timeout=timeout) from exc
        return Reply(answer.status, answer.reason or "", answer.headers, answer.data)

    def close(self) -> None:
        """Close every pooled connection."""
        self._manager.clear()


def environment_settings(base_url: str) -> tuple[str | None, str | bool]:
    """(proxy URL or None, CA bundle path or True for the default one, False for none),
    read from the environment as requests reads it: HTTPS_PROXY, NO_PROXY,
    REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE."""
    found = requests.Session().merge_environment_settings(base_url, {}, None, None, None)
    proxies: Mapping[str, str] = found["proxies"]
    scheme = urlsplit(base_url).scheme
    proxy = proxies.get(scheme) or proxies.get("all")
    verify: str | bool | None = found["verify"]
    return proxy, True if verify is None else verify


def _manager_for(proxy: str | None, ca_bundle: str | bool) -> urllib3.PoolManager:
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED" if ca_bundle else "CERT_NONE"}
    if ca_bundle:
        path = DEFAULT_CA_BUNDLE_PATH if ca_bundle is True else ca_bundle
        tls["ca_cert_dir" if os.path.isdir(path) else "ca_certs"] = path
    if proxy is None:
        return urllib3.PoolManager(**tls)
    if proxy.startswith("socks"):
        shown = _without_credentials(proxy)
        raise ConfigurationError(
            [
                f"a SOCKS proxy ({shown}) cannot reach Close's API: set HTTPS_PROXY to an "
                "HTTP(S) proxy, or add Close's host to NO_PROXY"
            ]
        )
    user, password = requests.utils.get_auth_from_url(proxy)
    credentials = f"{user}:{password}" if user else None
    headers = urllib3.util.make_headers(proxy_basic_auth=credentials) if credentials else None
    return urllib3.ProxyManager(proxy, proxy_headers=headers, **tls)


def _describe(exc: HTTPError) -> str:
    # urllib3's messages name the pool and URL but never headers, so no credentials.
    return f"{type(exc).__name__}: {exc}"


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
