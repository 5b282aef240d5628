"""The deployment files say what the service needs: Procfile, app.json, compose.yaml, the
Dockerfile, and a configuration reference (docs/configuration.md) that names every variable
the settings read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from service.config.settings import Settings
from tests.conftest import REPO

# Set by the platform or gunicorn, not read through Settings.from_env.
PLATFORM_VARIABLES = {"WEB_CONCURRENCY"}
# Heroku provides these: the Redis add-on sets REDIS_URL, the router PORT.
SET_BY_HEROKU = {"REDIS_URL", "PORT"}


class Recording(dict[str, str]):
    """An empty environment that remembers which names were asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.asked.add(str(key))
        return super().__contains__(key)


def settings_variables() -> set[str]:
    environ = Recording()
    Settings.from_env(environ)
    return environ.asked


def documented_variables() -> set[str]:
    """The variables of the table in docs/configuration.md, one per row."""
    text = (REPO / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `([A-Z_]+)` \|", text, flags=re.MULTILINE))


def test_deploy_configuration_documents_every_variable() -> None:
    """Every variable the settings read is in docs/configuration.md's table."""
    assert set() == (settings_variables() | PLATFORM_VARIABLES) - documented_variables()


def test_deploy_app_json_describes_every_variable() -> None:
    """app.json describes every variable Heroku does not set itself, and says if it is
    required."""
    env = json.loads((REPO / "app.json").read_text())["env"]

    assert set() == settings_variables() - SET_BY_HEROKU - set(env)
    assert all(v["description"] and isinstance(v["required"], bool) for v in env.values())


def test_deploy_app_json_brings_redis_and_both_processes() -> None:
    """Heroku Redis of the plan docs/redis.md sizes for the documented volume, one web and
    one worker dyno, and TLS to Redis that works with it."""
    app = json.loads((REPO / "app.json").read_text())
    sizing = (REPO / "docs" / "redis.md").read_text()

    assert ["heroku-redis:premium-2"] == [a["plan"] for a in app["addons"]]
    assert "| 10,000 | 149 MB | premium-2 (250 MB): what `app.json` provisions |" in sizing
    assert {"web": 1, "worker": 1} == {k: v["quantity"] for k, v in app["formation"].items()}
    assert "none" == app["env"]["REDIS_SSL_CERT_REQS"]["value"]


def test_deploy_x_forwarded_for_is_believed_behind_herokus_router_only() -> None:
    """Heroku's router appends one X-Forwarded-For hop: app.json and deploy.md's
    `heroku config:set` trust exactly that one. A container is reached directly: compose
    and the image leave DEALKEEPER_PROXIES at its default, 0, and the header is ignored."""
    app = json.loads((REPO / "app.json").read_text())
    deploy = (REPO / "docs" / "deploy.md").read_text()
    heroku_set = [line for line in deploy.splitlines() if line.startswith("heroku config:set")]

    assert 0 == Settings.from_env({}).proxies
    assert "1" == app["env"]["DEALKEEPER_PROXIES"]["value"]
    assert "DEALKEEPER_PROXIES=1" in heroku_set[0].split()
    for name, service in compose_services():
        assert "DEALKEEPER_PROXIES" not in (service.get("environment") or {}), name
    assert "DEALKEEPER_PROXIES" not in (REPO / "Dockerfile").read_text()


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict((k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in lines))


def test_deploy_procfile_validates_before_release() -> None:
    """release validates the rules; web binds $PORT and leaves workers to WEB_CONCURRENCY."""
    processes = procfile()

    assert ["release", "web", "worker"] == sorted(processes)
    assert "dealkeeper validate" == processes["release"]
    assert "dealkeeper worker" == processes["worker"]
    assert processes["web"].startswith("gunicorn --bind 0.0.0.0:${PORT:-8000} ")
    assert "--workers" not in processes["web"] and "-w " not in processes["web"]


def compose_services() -> Iterator[tuple[str, dict[str, Any]]]:
    yield from yaml.safe_load((REPO / "compose.yaml").read_text())["services"].items()


def seconds(value: str) -> int:
    match = re.fullmatch(r"(\d+)(s|m)", value)
    assert match, value
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_deploy_compose_stops_gracefully_and_checks_health() -> None:
    """redis, web and worker each have a healthcheck and at least 30 s to stop."""
    services = dict(compose_services())

    assert ["redis", "web", "worker"] == sorted(services)
    for name, service in services.items():
        assert seconds(service["stop_grace_period"]) >= 30, name
        assert isinstance(service["healthcheck"]["test"], list), name


def test_deploy_compose_worker_runs_in_exec_form() -> None:
    """The worker's command is a list (exec form), so it is the process SIGTERM reaches."""
    services = dict(compose_services())

    assert (["dealkeeper", "worker"], True) == (
        services["worker"]["command"],
        services["worker"]["init"],
    )


def dockerfile_stages() -> list[list[str]]:
    """Each stage's instructions, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    stages: list[list[str]] = []
    for line in joined.splitlines():
        if line.startswith("FROM "):
            stages.append([])
        if stages and line.strip():
            stages[-1].append(" ".join(line.split()))
    return stages


def test_deploy_dockerfile_runtime_is_slim_non_root_and_exec_form() -> None:
    """The last stage is slim, runs as a numeric non-root user, checks /healthz, and starts
    gunicorn in exec form."""
    runtime = dockerfile_stages()[-1]
    instruction = {line.split()[0]: line for line in runtime}

    assert re.match(r"FROM python:\$\{PYTHON_VERSION\}-slim$", runtime[0])
    assert re.fullmatch(r"USER [1-9]\d*:[1-9]\d*", instruction["USER"])
    assert "/healthz" in "".join(runtime[runtime.index(instruction["HEALTHCHECK"]) :])
    assert ["gunicorn", "service.web:create_app()"] == json.loads(instruction["CMD"][4:])


def test_deploy_dockerfile_installs_dependencies_before_the_code() -> None:
    """pyproject.toml is copied and its dependencies built before service/ is copied."""
    build = dockerfile_stages()[0]
    copied = [line for line in build if line.startswith(("COPY", "RUN"))]

    assert copied[0] == "COPY pyproject.toml ./"
    assert "pip wheel" in copied[1]
    assert copied.index("COPY service ./service") > 1
