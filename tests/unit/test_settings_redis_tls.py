"""REDIS_SSL_CERT_REQS: verification of a rediss:// server stays on unless it is turned off."""

from __future__ import annotations

import pytest

from service.config.errors import ConfigurationError
from service.config.settings import Settings

HEROKU_URL = "rediss://:p4ssw0rd@ec2-1-2-3-4.compute-1.amazonaws.com:12345"


def test_settings_redis_tls_verified_by_default() -> None:
    """Without the variable the URL is used as given and certificates must verify."""
    settings = Settings.from_env({"REDIS_URL": HEROKU_URL})

    assert ("required", HEROKU_URL) == (settings.redis_ssl_cert_reqs, settings.redis_client_url)


def test_settings_redis_tls_none_goes_into_the_url() -> None:
    """none becomes redis-py's ssl_cert_reqs=none query parameter, the password kept."""
    settings = Settings.from_env({"REDIS_URL": HEROKU_URL, "REDIS_SSL_CERT_REQS": "None"})

    assert f"{HEROKU_URL}?ssl_cert_reqs=none" == settings.redis_client_url
    assert "none" == settings.describe()["redis_ssl_cert_reqs"]


def test_settings_redis_tls_replaces_a_parameter_already_there() -> None:
    """A URL's own ssl_cert_reqs is replaced, other parameters kept."""
    settings = Settings(
        redis_url="rediss://h:1/0?ssl_cert_reqs=required&health_check_interval=5",
        redis_ssl_cert_reqs="none",
    )

    assert "rediss://h:1/0?health_check_interval=5&ssl_cert_reqs=none" == settings.redis_client_url


def test_settings_redis_tls_leaves_plain_redis_alone() -> None:
    """A redis:// URL has no TLS to relax: it is used as given."""
    settings = Settings(redis_url="redis://localhost:6379/0", redis_ssl_cert_reqs="none")

    assert "redis://localhost:6379/0" == settings.redis_client_url


def test_settings_redis_tls_rejects_other_values() -> None:
    """Anything but required or none is reported with what it does."""
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"REDIS_SSL_CERT_REQS": "off"})

    assert [
        "REDIS_SSL_CERT_REQS must be required or none, got 'off'; none accepts any certificate "
        "(Heroku Redis's self-signed one), so set it only for such a server"
    ] == caught.value.problems
