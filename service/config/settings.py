"""Settings from the environment, checked once, with every mistake reported at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from service.config import defaults
from service.config.errors import ConfigurationError
from service.config.tuning import Tuning

DEFAULT_CLOSE_API_URL = "https://api.close.com/api/v1/"
DEFAULT_WEBHOOK_TOLERANCE_SEC = defaults.WEBHOOK_TOLERANCE_SEC
DEFAULT_RULES_PATH = "rules"
DEFAULT_PORT = 8000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# REDIS_SSL_CERT_REQS: whether a rediss:// server's certificate must verify. Heroku Redis
# presents a self-signed one, so it needs "none" there; nowhere is it turned off unasked.
REDIS_CERT_REQS = ("required", "none")
# DEALKEEPER_PROXIES: proxies in front of the web process, each appending one
# X-Forwarded-For hop. Only that many hops, counted from the right, are believed; the rest
# anyone can write. Heroku's router is one; a container reached directly has none.
MAX_PROXIES = 5


@dataclass(frozen=True)
class Settings:
    """Everything dealkeeper reads from its environment."""

    close_api_key: str | None = field(default=None, repr=False)
    close_api_url: str = DEFAULT_CLOSE_API_URL
    webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    webhook_tolerance_sec: int = DEFAULT_WEBHOOK_TOLERANCE_SEC
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    rules_path: str = DEFAULT_RULES_PATH
    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    force_dry_run: bool = False
    redis_ssl_cert_reqs: str = "required"
    # DEALKEEPER_METRICS_TOKEN: when set, /metrics answers only `Authorization: Bearer <it>`.
    metrics_token: str | None = field(default=None, repr=False)
    proxies: int = 0
    # The ops console (service/console/): off unless a password is set. The first password
    # reads, the admin one may also act (retry, purge); the secret signs its sessions.
    console_password: str | None = field(default=None, repr=False)
    console_admin_password: str | None = field(default=None, repr=False)
    console_secret: str | None = field(default=None, repr=False)
    tuning: Tuning = field(default_factory=Tuning)

    @property
    def dry_run(self) -> bool:
        """No Close API key (or DEALKEEPER_DRY_RUN=1): log the calls instead of making them."""
        return self.force_dry_run or not self.close_api_key

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raise ConfigurationError listing all mistakes."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        values: dict[str, Any] = {
            "close_api_key": _blank_to_none(env.get("CLOSE_API_KEY")),
            "close_api_url": _api_url(env.get("CLOSE_API_URL"), problems),
            "webhook_secrets": _secrets(env.get("CLOSE_WEBHOOK_SECRET"), problems),
            "webhook_tolerance_sec": _tolerance(env, problems),
            "redis_url": _blank_to_none(env.get("REDIS_URL")),
            "rules_path": _blank_to_none(env.get("DEALKEEPER_RULES")) or DEFAULT_RULES_PATH,
            "port": _int(env, "PORT", DEFAULT_PORT, problems),
            "log_level": _log_level(env.get("LOG_LEVEL"), problems),
            "force_dry_run": _flag(env, "DEALKEEPER_DRY_RUN", problems),
            "redis_ssl_cert_reqs": _cert_reqs(env.get("REDIS_SSL_CERT_REQS"), problems),
            "metrics_token": _blank_to_none(env.get("DEALKEEPER_METRICS_TOKEN")),
            "proxies": _proxies(env, problems),
            "console_password": _blank_to_none(env.get("DEALKEEPER_CONSOLE_PASSWORD")),
            "console_admin_password": _blank_to_none(env.get("DEALKEEPER_CONSOLE_ADMIN_PASSWORD")),
            "console_secret": _blank_to_none(env.get("DEALKEEPER_CONSOLE_SECRET")),
            "tuning": Tuning.from_env(env, problems),
        }
        _check_console(values, problems)
        if problems:
            raise ConfigurationError(problems)
        return cls(**values)

    @property
    def redis_client_url(self) -> str | None:
        """REDIS_URL as every client must use it: for a rediss:// server with
        REDIS_SSL_CERT_REQS=none, carrying redis-py's `ssl_cert_reqs=none` query parameter, so
        ours and the ones RQ derives from ours (its scheduler's) all connect alike."""
        if not self.redis_url or self.redis_ssl_cert_reqs == "required":
            return self.redis_url
        parts = urlsplit(self.redis_url)
        if parts.scheme != "rediss":
            return self.redis_url
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "ssl_cert_reqs"]
        query.append(("ssl_cert_reqs", self.redis_ssl_cert_reqs))
        return urlunsplit(parts._replace(query=urlencode(query)))

    @property
    def console_on(self) -> bool:
        """The console answers only when a password lets someone in."""
        return bool(self.console_password or self.console_admin_password)

    @property
    def console_state(self) -> str:
        if not self.console_on:
            return "off"
        roles = [
            r
            for r, p in (("read", self.console_password), ("admin", self.console_admin_password))
            if p
        ]
        return "on (" + ", ".join(roles) + ")"

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with some values replaced (used by `dealkeeper run` and tests)."""
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """The effective settings, secrets masked, for the startup log line."""
        return {
            "close_api_key": "set" if self.close_api_key else "unset (dry-run)",
            "close_api_url": self.close_api_url,
            "webhook_secrets": f"{len(self.webhook_secrets)} key(s)",
            "webhook_tolerance_sec": self.webhook_tolerance_sec,
            "redis_url": _mask_url(self.redis_url) if self.redis_url else "embedded",
            "redis_ssl_cert_reqs": self.redis_ssl_cert_reqs,
            "rules_path": self.rules_path,
            "metrics": "token required" if self.metrics_token else "open",
            "proxies": self.proxies,
            "console": self.console_state,
            "dry_run": self.dry_run,
        }

    def secret_strings(self) -> tuple[str, ...]:
        """Every secret as text, so log redaction can find it."""
        found = [s.hex() for s in self.webhook_secrets]
        found += [
            s
            for s in (
                self.close_api_key,
                self.metrics_token,
                self.console_password,
                self.console_admin_password,
                self.console_secret,
            )
            if s
        ]
        redis_password = urlsplit(self.redis_url).password if self.redis_url else None
        if redis_password:
            found.append(redis_password)
        return tuple(found)


# A console password shorter than this is refused at start: the login is rate limited, but
# a short password still falls to a patient attacker.
MIN_CONSOLE_PASSWORD = 12


def _check_console(values: Mapping[str, Any], problems: list[str]) -> None:
    for name, key in (
        ("DEALKEEPER_CONSOLE_PASSWORD", "console_password"),
        ("DEALKEEPER_CONSOLE_ADMIN_PASSWORD", "console_admin_password"),
    ):
        password = values[key]
        if password is not None and len(password) < MIN_CONSOLE_PASSWORD:
            problems.append(
                f"{name} must be at least {MIN_CONSOLE_PASSWORD} characters "
                "(e.g. `openssl rand -base64 18`)"
            )
    same = (
        values["console_password"]
        and values["console_password"] == values["console_admin_password"]
    )
    if same:
        problems.append(
            "DEALKEEPER_CONSOLE_PASSWORD and DEALKEEPER_CONSOLE_ADMIN_PASSWORD must differ: "
            "the password given decides whether its holder may act"
        )


def _blank_to_none(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def _api_url(value: str | None, problems: list[str]) -> str:
    url = _blank_to_none(value) or DEFAULT_CLOSE_API_URL
    if not url.startswith(("http://", "https://")):
        problems.append(f"CLOSE_API_URL must start with http:// or https://, got {url!r}")
    return url if url.endswith("/") else url + "/"


def _secrets(value: str | None, problems: list[str]) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for position, part in enumerate((value or "").split(","), start=1):
        text = part.strip()
        if not text:
            continue
        try:
            keys.append(bytes.fromhex(text))
        except ValueError:
            # Never echo the value: it is a secret even when malformed.
            problems.append(
                f"CLOSE_WEBHOOK_SECRET key #{position} is not hex; use the signature_key "
                "Close returned when the webhook subscription was created"
            )
    return tuple(keys)


def _int(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    raw = _blank_to_none(env.get(name))
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        problems.append(f"{name} must be a whole number, got {raw!r}")
        return default
    if number < 0:
        problems.append(f"{name} must not be negative, got {raw!r}")
    return number


def _tolerance(env: Mapping[str, str], problems: list[str]) -> int:
    seconds = _int(env, "CLOSE_WEBHOOK_TOLERANCE", DEFAULT_WEBHOOK_TOLERANCE_SEC, problems)
    if seconds > defaults.DEDUPE_TTL_SEC:
        # Past the dedupe record's life, a replayed delivery would be processed again.
        problems.append(
            f"CLOSE_WEBHOOK_TOLERANCE must be at most {defaults.DEDUPE_TTL_SEC} (the 4 days "
            f"an event id is remembered), got {seconds}; the default "
            f"{DEFAULT_WEBHOOK_TOLERANCE_SEC} covers Close's 72 hours of retries"
        )
    return seconds


def _proxies(env: Mapping[str, str], problems: list[str]) -> int:
    count = _int(env, "DEALKEEPER_PROXIES", 0, problems)
    if count > MAX_PROXIES:
        problems.append(
            f"DEALKEEPER_PROXIES must be the number of proxies in front of the web process "
            f"(0 to {MAX_PROXIES}; 1 on Heroku), got {count}"
        )
    return count


def _log_level(value: str | None, problems: list[str]) -> str:
    level = (_blank_to_none(value) or "INFO").upper()
    if level not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
        return "INFO"
    return level


def _cert_reqs(value: str | None, problems: list[str]) -> str:
    chosen = (_blank_to_none(value) or "required").lower()
    if chosen not in REDIS_CERT_REQS:
        problems.append(
            f"REDIS_SSL_CERT_REQS must be required or none, got {value!r}; none accepts any "
            "certificate (Heroku Redis's self-signed one), so set it only for such a server"
        )
        return "required"
    return chosen


def _flag(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = (_blank_to_none(env.get(name)) or "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    problems.append(f"{name} must be 1 or 0, got {raw!r}")
    return False


def _mask_url(url: str) -> str:
    """redis://user:password@host -> redis://user:***@host"""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
