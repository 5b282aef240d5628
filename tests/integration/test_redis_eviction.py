"""Redis's maxmemory-policy, as the worker, `dealkeeper status` and /readyz report it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import redis
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from service.adapters.eviction import PolicyWatch, read_policy
from service.commands.cli import cli
from service.config.settings import Settings
from service.intake.app import create_app
from tests.conftest import REPO, RULES_DIR
from tests.ownredis import locked_down_redis, own_redis, url_of

__all__ = ["locked_down_redis", "own_redis"]  # fixtures: pytest finds them here
# A worker process imports RQ, Flask's siblings and the rules: seconds on a busy 2-core
# machine, far less than this.
WORKER_DEADLINE_SEC = 60
KEY = bytes.fromhex("11" * 32)


def status(client: redis.Redis, *args: str) -> Result:
    env = {"REDIS_URL": url_of(client), "DEALKEEPER_RULES": str(RULES_DIR)}
    return CliRunner().invoke(cli, ["status", *args], env=env)


def web_client(client: redis.Redis) -> FlaskClient:
    settings = Settings(webhook_secrets=(KEY,), redis_url=url_of(client), rules_path=str(RULES_DIR))
    return create_app(settings).test_client()


def test_worker_on_an_evicting_redis_logs_an_error_at_start(own_redis: redis.Redis) -> None:
    """`dealkeeper worker` logs ERROR `redis_may_evict` with the policy and the fix."""
    own_redis.config_set("maxmemory-policy", "volatile-lru")
    env = {**os.environ, "REDIS_URL": url_of(own_redis), "DEALKEEPER_RULES": str(RULES_DIR)}
    env.pop("CLOSE_API_KEY", None)

    done = subprocess.run(
        [sys.executable, "-m", "service", "worker", "--burst"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=WORKER_DEADLINE_SEC,
    )  # fmt: skip

    lines = [json.loads(x) for x in (done.stdout + done.stderr).splitlines() if x.startswith("{")]
    [logged] = [x for x in lines if x.get("event") == "redis_may_evict"]
    assert 0 == done.returncode, done.stderr
    assert ("error", "volatile-lru") == (logged["level"], logged["policy"])
    assert "heroku redis:maxmemory REDIS_URL --policy noeviction" in logged["hint"]


def test_status_shows_an_evicting_policy_as_a_danger(own_redis: redis.Redis) -> None:
    """The table's last line names the policy and the fix; --json carries it too."""
    own_redis.config_set("maxmemory-policy", "allkeys-lru")

    table, as_json = status(own_redis), status(own_redis, "--json")

    last = table.output.splitlines()[-1]
    found = json.loads(as_json.output)["redis"]
    assert last.startswith("Redis policy      DANGER: Redis maxmemory-policy is allkeys-lru: ")
    assert ("allkeys-lru", True) == (found["maxmemory_policy"], found["may_evict"])
    assert "CONFIG SET maxmemory-policy noeviction" in found["problem"]


def test_status_shows_noeviction_as_it_is(own_redis: redis.Redis) -> None:
    """noeviction, Redis's default: a plain line, no problem in --json."""
    table, as_json = status(own_redis), status(own_redis, "--json")

    assert "Redis policy      noeviction" == table.output.splitlines()[-1]
    assert {"maxmemory_policy": "noeviction", "may_evict": False, "problem": None} == (
        json.loads(as_json.output)["redis"]
    )


def test_policy_of_a_redis_refusing_info_and_config_is_unknown(
    locked_down_redis: redis.Redis,
) -> None:
    """Neither INFO nor CONFIG answers (a locked-down managed Redis): the policy is unknown."""
    policy = read_policy(locked_down_redis)

    assert (None, False) == (policy.name, policy.may_evict)


def test_readyz_does_not_hold_an_unknown_policy_against_readiness(
    locked_down_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """A policy Redis will not tell leaves /readyz at 200 (documented in docs/deploy.md); the web
    process warns at start."""
    response = web_client(locked_down_redis).get("/readyz")

    warned = [r for r in caplog.records if r.getMessage() == "redis_policy_unknown"]
    assert 200 == response.status_code, response.get_json()
    assert [logging.WARNING] == [r.levelno for r in warned]


def test_readyz_reads_the_policy_once_a_minute_not_per_probe(own_redis: redis.Redis) -> None:
    """Probes within a minute reuse the policy read at start: no INFO per probe."""
    client = web_client(own_redis)
    before = own_redis.info("commandstats").get("cmdstat_info", {}).get("calls", 0)

    for _ in range(3):
        client.get("/readyz")

    after = own_redis.info("commandstats").get("cmdstat_info", {}).get("calls", 0)
    assert 1 == after - before  # this test's own INFO, and nothing from the probes


def test_readyz_policy_follows_a_change_within_its_minute(own_redis: redis.Redis) -> None:
    """The policy /readyz reports is read again once its minute is up: an operator's fix
    (or a provider's change to an evicting policy) shows without a restart."""
    now = [0.0]
    own_redis.config_set("maxmemory-policy", "allkeys-lru")
    watch = PolicyWatch(own_redis, ttl_sec=60, clock=lambda: now[0])
    seen = [watch.current().shown]

    own_redis.config_set("maxmemory-policy", "noeviction")
    now[0] = 59.0
    seen.append(watch.current().shown)
    now[0] = 60.0
    seen.append(watch.current().shown)

    assert ["allkeys-lru", "allkeys-lru", "noeviction"] == seen
