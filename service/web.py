"""The web process: receive Close's webhooks, queue them, answer fast. Nothing is evaluated here.

gunicorn "service.web:create_app()"
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field

import gevent
import redis
from flask import Flask, Response, jsonify, request
from rq import Queue
from werkzeug.exceptions import ClientDisconnected, HTTPException

from service import defaults, jsonbody, logs, metrics, signatures
from service.adapters.authfault import read_refusal
from service.adapters.organization import KnownOrganizations, refusal
from service.adapters.queue import connect, enqueue_event, make_queue, redis_url
from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import Stats
from service.budget import RejectionBudget
from service.errors import InvalidRulesError, QueueUnavailableError, WebhookRejectedError
from service.events import EnvelopeError, Event, event_from_envelope
from service.settings import Settings
from service.status import KEY_REFUSED_HINT

log = logging.getLogger("dealkeeper.web")


@dataclass
class Intake:
    """What the webhook endpoint needs, built once per process."""

    settings: Settings
    connection: redis.Redis
    queue: Queue
    stats: Stats
    rules: RulesHolder
    organizations: KnownOrganizations
    clock: Callable[[], float] = time.time
    budget: RejectionBudget = field(default_factory=RejectionBudget)


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> Flask:
    """The Flask app; gunicorn calls this once per worker process."""
    settings = settings or Settings.from_env()
    logs.configure_for(settings)
    connection = connect(redis_url(settings), role="web")
    intake = Intake(
        settings=settings,
        connection=connection,
        queue=make_queue(connection),
        stats=Stats(connection),
        rules=RulesHolder(
            settings.rules_path, check_interval_sec=defaults.RULES_CHECK_INTERVAL_SEC
        ),
        organizations=KnownOrganizations(connection),
        clock=clock,
    )
    app = Flask("service")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_WEBHOOK_BYTES
    app.extensions["dealkeeper"] = intake
    _add_routes(app, intake)
    _add_error_handlers(app, intake)
    if not settings.webhook_secrets:
        log.error("webhook_secret_missing", extra={"hint": "set CLOSE_WEBHOOK_SECRET"})
    log.info("web_started", extra={"settings": settings.describe()})
    return app


def _add_routes(app: Flask, intake: Intake) -> None:
    @app.post("/webhooks/close")
    def receive_webhook() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        logs.clear()
        if intake.budget.exhausted(client_key()):
            retry_after = {"Retry-After": str(intake.budget.retry_after_sec())}
            return jsonify(error="too many refused webhooks; deliver again later"), 429, retry_after
        body = _read_body(defaults.WEBHOOK_BODY_READ_SEC)
        _verify(body, intake)
        event = _parse(body)
        logs.bind(event_id=event.id, object_id=event.object_id, action=event.action)
        _check_organization(event, intake)
        return _accept(event, intake)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        return _readiness(intake)

    @app.get("/metrics")
    def metrics_text() -> Response | tuple[Response, int, dict[str, str]]:
        if not _may_scrape(intake.settings.metrics_token):
            challenge = {"WWW-Authenticate": 'Bearer realm="dealkeeper metrics"'}
            return (
                jsonify(error="metrics need DEALKEEPER_METRICS_TOKEN as a bearer token"),
                401,
                challenge,
            )
        text = metrics.render(intake.stats, intake.queue, rules=intake.rules)
        return Response(text, content_type=metrics.CONTENT_TYPE)


def _may_scrape(token: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time, as bytes: a timing difference would leak the token.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def client_key() -> str:
    """Who is sending: the address the nearest proxy saw (Heroku's router appends it to
    X-Forwarded-For), else the connection's own address."""
    forwarded = request.headers.get("X-Forwarded-For", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else (request.remote_addr or "unknown")


def _read_body(limit_sec: float) -> bytes:
    """The request body, read within `limit_sec` in all, or a 408 that closes the connection.

    gunicorn hands its client socket over as `gunicorn.socket`: its timeout bounds each read
    under any worker class, and gevent's timer the whole body under the gevent workers
    gunicorn.conf.py chooses, so a client trickling a byte at a time is cut off as well."""
    client = request.environ.get("gunicorn.socket")
    if client is None:  # not under gunicorn (Flask's test client): nothing to wait for
        return request.get_data(cache=False)
    client.settimeout(limit_sec)
    try:
        with gevent.Timeout(limit_sec, TimeoutError):
            return request.get_data(cache=False)
    except (ClientDisconnected, TimeoutError) as error:
        if not isinstance(error, TimeoutError) and not isinstance(error.__context__, TimeoutError):
            raise  # the client went away: nothing to answer
        raise WebhookRejectedError(
            f"the body did not arrive within {limit_sec:g} s of the headers", status=408
        ) from None


def _verify(body: bytes, intake: Intake) -> None:
    signatures.verify(
        body,
        signature=request.headers.get(signatures.HASH_HEADER),
        timestamp=request.headers.get(signatures.TIMESTAMP_HEADER),
        keys=intake.settings.webhook_secrets,
        now=intake.clock(),
        tolerance_sec=intake.settings.webhook_tolerance_sec,
    )


def _parse(body: bytes) -> Event:
    try:
        payload = jsonbody.loads(body)
    except jsonbody.JsonRefusedError as error:
        raise WebhookRejectedError(str(error), status=400) from None
    try:
        return event_from_envelope(payload)
    except EnvelopeError as error:
        raise WebhookRejectedError(f"not a Close event: {error}", status=400) from None


def _check_organization(event: Event, intake: Intake) -> None:
    """403 for an event of an organization CLOSE_API_KEY does not belong to: it is signed
    with one of our keys, so it is no forgery (not 401) and its body is sound (not 400),
    but this service does not serve that organization. Close retries it like any refusal,
    and pauses a subscription whose deliveries all fail for three days."""
    reason = refusal(event, intake.organizations.current())
    if reason is not None:
        raise WebhookRejectedError(reason, status=403)


def _accept(event: Event, intake: Intake) -> tuple[Response, int]:
    if event.object_type != "opportunity":
        _count(intake, "ignored")
        log.info("webhook_ignored", extra={"object_type": event.object_type})
        return jsonify(status="ignored", reason="not an opportunity event"), 200
    if event.payload_missing:
        # Close's webhooks carry the object (even a non-admin's subscription's): one that
        # does not cannot be judged, and queued it would turn away a delivery that does.
        key = event.payload_key
        raise WebhookRejectedError(
            f"not a Close event: event.{key} is null or missing; {event.name} carries the "
            "opportunity",
            status=400,
        )
    queued = enqueue_event(
        event,
        queue=intake.queue,
        stats=intake.stats,
        job_timeout_sec=intake.settings.tuning.job_timeout_sec,
    )
    # The request's one INFO line is gunicorn's `request_served`, which carries the bound
    # fields; a second line per webhook cost about 7% of the intake's time.
    logs.bind(job_id=queued.job_id, queued=not queued.duplicate)
    if queued.duplicate:
        _count(intake, "duplicate")
        log.debug("webhook_duplicate")
        return jsonify(status="duplicate", job_id=queued.job_id), 200
    log.debug("webhook_received")
    return jsonify(status="queued", job_id=queued.job_id), 202


def _readiness(intake: Intake) -> tuple[Response, int]:
    problems: list[str] = []
    try:
        intake.connection.ping()
    except redis.RedisError as error:
        problems.append(f"redis: {error}")
    ruleset = None
    try:
        ruleset = intake.rules.current()
    except InvalidRulesError as error:
        problems.append(f"rules: {error}")
    problems.extend(_key_problems(intake.connection))
    if problems:
        return jsonify(status="not ready", problems=problems), 503
    assert ruleset is not None
    return jsonify(status="ready", rules=len(ruleset.rules), rules_digest=ruleset.digest), 200


def _key_problems(connection: redis.Redis) -> list[str]:
    """Close refusing CLOSE_API_KEY (workers recorded it): the web still queues every
    event, but none is applied until the key works (service/adapters/authfault.py)."""
    try:
        refused = read_refusal(connection)
    except redis.RedisError:
        return []  # the ping above reports Redis
    if refused is None:
        return []
    return [f"close api key: refused by Close ({refused.reason}); {KEY_REFUSED_HINT}"]


def _count(intake: Intake, outcome: str) -> None:
    with suppress(redis.RedisError):  # a counter is not worth failing the answer for
        intake.stats.record_webhook(None, outcome=outcome)


def _add_error_handlers(app: Flask, intake: Intake) -> None:
    @app.errorhandler(WebhookRejectedError)
    def rejected(error: WebhookRejectedError) -> tuple[Response, int, dict[str, str]]:
        if error.status == 401:
            intake.budget.spend(client_key())
        _count(intake, f"rejected_{error.status}")
        log.warning("webhook_rejected", extra={"status": error.status, "reason": str(error)})
        # After a 408 the rest of the body may still come; it must not be read as a request.
        close = {"Connection": "close"} if error.status == 408 else {}
        return jsonify(error=str(error)), error.status, close

    @app.errorhandler(QueueUnavailableError)
    def unavailable(error: QueueUnavailableError) -> tuple[Response, int, dict[str, str]]:
        log.error("webhook_not_queued", extra={"reason": str(error)})
        return jsonify(error="queue unavailable; deliver again later"), 503, {"Retry-After": "30"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        if request.path == "/webhooks/close":
            _count(intake, f"rejected_{status}")
        return jsonify(error=error.name.lower()), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.error("request_failed", exc_info=error)
        return jsonify(error="internal error"), 500
