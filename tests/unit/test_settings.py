"""Settings come from the environment, checked once, with every mistake reported at once."""

from __future__ import annotations

import pytest

from service.config.errors import ConfigurationError
from service.config.settings import DEFAULT_CLOSE_API_URL, Settings
from tests.secrets import leaked

KEY_A = "ab" * 32
KEY_B = "cd" * 32


def test_settings_defaults_when_nothing_is_set() -> None:
    """An empty environment gives the documented defaults and dry-run."""
    settings = Settings.from_env({})

    assert DEFAULT_CLOSE_API_URL == settings.close_api_url
    assert (3 * 24 * 3600 + 12 * 3600, "rules", 8000, None) == (
        settings.webhook_tolerance_sec,
        settings.rules_path,
        settings.port,
        settings.redis_url,
    )
    assert settings.dry_run


def test_settings_reads_every_variable() -> None:
    """Each documented variable lands in its setting."""
    settings = Settings.from_env(
        {
            "CLOSE_API_KEY": "api_secret_value",
            "CLOSE_API_URL": "http://127.0.0.1:9999/api/v1",
            "CLOSE_WEBHOOK_SECRET": f"{KEY_A}, {KEY_B}",
            "CLOSE_WEBHOOK_TOLERANCE": "60",
            "REDIS_URL": "redis://example:6379/1",
            "DEALKEEPER_RULES": "my-rules",
            "PORT": "5000",
            "LOG_LEVEL": "debug",
        }
    )

    assert "http://127.0.0.1:9999/api/v1/" == settings.close_api_url
    assert (bytes.fromhex(KEY_A), bytes.fromhex(KEY_B)) == settings.webhook_secrets
    assert (60, "redis://example:6379/1", "my-rules", 5000, "DEBUG") == (
        settings.webhook_tolerance_sec,
        settings.redis_url,
        settings.rules_path,
        settings.port,
        settings.log_level,
    )
    assert not settings.dry_run


def test_settings_tolerance_may_not_outlive_the_dedupe_record() -> None:
    """A signature window past the 4 days an event id is remembered would let a replayed
    delivery be processed again: refused with the limit and the default named."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"CLOSE_WEBHOOK_TOLERANCE": str(5 * 24 * 3600)})

    assert "CLOSE_WEBHOOK_TOLERANCE must be at most 345600" in str(caught.value)
    assert (
        4 * 24 * 3600
        == Settings.from_env({"CLOSE_WEBHOOK_TOLERANCE": str(4 * 24 * 3600)}).webhook_tolerance_sec
    )


def test_settings_reports_every_bad_variable_at_once() -> None:
    """Three mistakes give three lines, and the bad secret is not echoed."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(
            {"CLOSE_WEBHOOK_SECRET": "not-hex-secret", "PORT": "eighty", "LOG_LEVEL": "loud"}
        )

    assert [
        "CLOSE_WEBHOOK_SECRET key #1 is not hex; use the signature_key Close returned when the "
        "webhook subscription was created",
        "PORT must be a whole number, got 'eighty'",
        "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'loud'",
    ] == caught.value.problems
    assert "not-hex-secret" not in str(caught.value)


def test_settings_repr_and_description_hide_secrets() -> None:
    """Neither repr() nor the startup description shows a secret."""
    settings = Settings.from_env(
        {
            "CLOSE_API_KEY": "api_secret_value",
            "CLOSE_WEBHOOK_SECRET": KEY_A,
            "REDIS_URL": "redis://user:hunter2@host:6379",
        }
    )

    shown = repr(settings) + repr(settings.describe()) + str(settings.describe())

    assert [] == leaked(shown, ("api_secret_value", KEY_A, "hunter2"))


def test_settings_dry_run_can_be_forced_with_a_key() -> None:
    """DEALKEEPER_DRY_RUN=1 keeps a configured key from being used."""
    settings = Settings.from_env({"CLOSE_API_KEY": "k" * 10, "DEALKEEPER_DRY_RUN": "1"})

    assert settings.dry_run


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("12.5", 12.5)])
def test_settings_close_rate_limit_is_a_ceiling_only_when_set(
    raw: str | None, expected: float | None
) -> None:
    """Unset, the pace follows Close's stated limit (None); set, it is a ceiling."""
    env = {} if raw is None else {"CLOSE_RATE_LIMIT": raw}

    assert expected == Settings.from_env(env).tuning.close_rate_limit_per_sec


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", 1),
        ("4", 4),
        ("32", 32),
        ("0", "DEALKEEPER_WORKER_PROCESSES must be at least 1, got '0'"),
        ("2.5", "DEALKEEPER_WORKER_PROCESSES must be a whole number from 1 to 32, got '2.5'"),
        ("100", "DEALKEEPER_WORKER_PROCESSES must be a whole number from 1 to 32, got '100'"),
        ("many", "DEALKEEPER_WORKER_PROCESSES must be a number, got 'many'"),
    ],
)
def test_settings_worker_processes(raw: str, expected: int | str) -> None:
    """How many worker processes `dealkeeper worker` keeps running: 1 to 32."""
    try:
        found: int | str = Settings.from_env(
            {"DEALKEEPER_WORKER_PROCESSES": raw}
        ).tuning.worker_processes
    except ConfigurationError as error:
        found = "; ".join(error.problems)
    assert expected == found


def test_settings_proxies_default_to_none_and_are_described() -> None:
    """No proxy is trusted unless DEALKEEPER_PROXIES says so; the startup line shows it."""
    assert (0, 1) == (
        Settings.from_env({}).proxies,
        Settings.from_env({"DEALKEEPER_PROXIES": "1"}).describe()["proxies"],
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("heroku", "DEALKEEPER_PROXIES must be a whole number, got 'heroku'"),
        ("-1", "DEALKEEPER_PROXIES must not be negative, got '-1'"),
        (
            "6",
            "DEALKEEPER_PROXIES must be the number of proxies in front of the web process "
            "(0 to 5; 1 on Heroku), got 6",
        ),
    ],
)
def test_settings_proxies_must_be_a_small_count(raw: str, problem: str) -> None:
    """DEALKEEPER_PROXIES is a count of proxies, not a list of addresses or a flag."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"DEALKEEPER_PROXIES": raw})

    assert [problem] == caught.value.problems
