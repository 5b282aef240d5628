"""Baselines run on the very stack dealkeeper runs on: gunicorn, Flask, RQ's worker class.

    gunicorn "bench.bareapp:create_app()"

- POST /webhooks/close reads the body and answers 202: the intake baseline.
- POST /webhooks/durable also appends the body to a Redis list first: the least any intake
  that answers only once the event is safe in Redis does (one round trip).
- POST /relay reads the body, queues one RQ job that makes one PUT to the fake Close, and
  answers 202: the latency baseline (the least any webhook-to-PUT path on this stack does).
- GET /page renders a 50-row table with Jinja2: the console benchmark's baseline page.
- `noop` is the job of the worker baseline; `relay_put` the job /relay queues;
  `get_and_put` the worker's second baseline: the GET and the PUT an event needs (the same
  urllib3 pool dealkeeper sends through), with nothing around them.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
import requests
import urllib3
from flask import Flask, render_template_string, request
from rq import Queue
from rq.serializers import JSONSerializer

from service.config import defaults

BARE_PAGE = (
    "<!doctype html><title>bare</title><table>"
    "{% for row in rows %}<tr><td>{{ row }}</td><td>oppo_{{ row }}</td></tr>{% endfor %}"
    "</table>"
)
_session = requests.Session()
_pool = urllib3.PoolManager(retries=False)


def create_app() -> Flask:
    """The bare app; REDIS_URL and CLOSE_API_URL are only needed by /relay."""
    app = Flask("bareapp")
    url = os.environ.get("REDIS_URL")
    queue = (
        Queue(defaults.QUEUE_NAME, connection=redis.Redis.from_url(url), serializer=JSONSerializer)
        if url
        else None
    )

    @app.post("/webhooks/close")
    def receive() -> tuple[str, int]:
        request.get_data()
        return "", 202

    durable = redis.Redis.from_url(url) if url else None

    @app.post("/webhooks/durable")
    def receive_durably() -> tuple[str, int]:
        assert durable is not None, "REDIS_URL is not set"
        durable.rpush("bench:durable", request.get_data())
        return "", 202

    @app.post("/relay")
    def relay() -> tuple[str, int]:
        body = json.loads(request.get_data())
        assert queue is not None, "REDIS_URL is not set"
        queue.enqueue_call(
            relay_put, args=(os.environ["CLOSE_API_URL"], body["event"]["object_id"])
        )
        return "", 202

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    @app.get("/page")
    def page() -> str:
        """The console's baseline: a Jinja2 page of a 50-row table, from no data at all."""
        return render_template_string(BARE_PAGE, rows=range(50))

    return app


def noop() -> None:
    """The worker baseline's job: nothing."""


def relay_put(base_url: str, opportunity_id: str) -> dict[str, Any]:
    """One PUT, the one write an event needs, with nothing around it."""
    response = _session.put(
        f"{base_url}opportunity/{opportunity_id}/",
        json={"confidence": 100},
        auth=(os.environ.get("CLOSE_API_KEY", ""), ""),
        timeout=10,
    )
    response.raise_for_status()
    return {"status": response.status_code}


def get_and_put(base_url: str, opportunity_id: str) -> int:
    """Read the opportunity, then write the one field: the least an event's job does."""
    url = f"{base_url}opportunity/{opportunity_id}/"
    headers = urllib3.make_headers(basic_auth=f"{os.environ.get('CLOSE_API_KEY', '')}:")
    current = json.loads(_pool.request("GET", url, headers=headers).data)
    body = json.dumps({"confidence": 100}).encode()
    answer = _pool.request(
        "PUT", url, body=body, headers={**headers, "content-type": "application/json"}
    )
    if answer.status != 200 or "id" not in current:
        raise RuntimeError(f"the fake answered {answer.status}")
    return answer.status
