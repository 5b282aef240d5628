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
from werkzeug.middleware.proxy_fix import ProxyFix

from service.adapters.authfault import read_refusal
from service.adapters.eviction import PolicyWatch, log_at_start
from service.adapters.organization import KnownOrganizations, refusal
from service.adapters.queue import connect, enqueue_event, make_queue, redis_url
from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import Stats
from service.adapters.unknownfields import read_unknown_fields
from service.config import defaults
from service.config.errors import (
    InvalidRulesError,
    QueueUnavailableError,
    RedisFullError,
    WebhookRejectedError,
)
from service.config.settings import Settings
from service.core.events import EnvelopeError, Event, event_from_delivery
from service.core.status import KEY_REFUSED_HINT
from service.intake import jsonbody, signatures
from service.intake.budget import RejectionBudget
from service.observability import logs, metrics

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
    eviction: PolicyWatch
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
        eviction=PolicyWatch(connection),
        clock=clock,
    )
    app = Flask("service")
    app.config["MAX_CONTENT_LENGTH"] = defaults.MAX_WEBHOOK_BYTES
    _trust_proxies(app, settings.proxies)
    app.extensions["dealkeeper"] = intake
    _add_routes(app, intake)
    _add_error_handlers(app, intake)
    if not settings.webhook_secrets:
        log.error("webhook_secret_missing", extra={"hint": "set CLOSE_WEBHOOK_SECRET"})
    _check_eviction_at_start(intake)
    log.info("web_started", extra={"settings": settings.describe()})
    return app


def _check_eviction_at_start(intake: Intake) -> None:
    policy = log_at_start(intake.connection, log)
    if policy is not None:
        intake.eviction.remember(policy)


def _add_routes(app: Flask, intake: Intake) -> None:
    @app.post("/webhooks/close")
    def receive_webhook() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        logs.clear()
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


def _trust_proxies(app: Flask, proxies: int) -> None:
    """Believe as many X-Forwarded-For hops as DEALKEEPER_PROXIES says proxies append
    (Heroku's router appends one); hops beyond them are whatever the sender wrote."""
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]


def client_key() -> str:
    """Who is sending: the connection's address, or with DEALKEEPER_PROXIES set the address
    the outermost trusted proxy saw (ProxyFix puts it in remote_addr)."""
    return request.remote_addr or "unknown"


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
        return event_from_delivery(payload)
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
        problems += _eviction_problems(intake)
    except redis.RedisError as error:
        problems.append(f"redis: {error}")
    ruleset = None
    try:
        ruleset = intake.rules.current()
    except InvalidRulesError as error:
        problems.append(f"rules: {error}")
    problems.extend(_key_problems(intake.connection))
    unknown = _unknown_fields(intake.connection)
    if problems:
        return jsonify(status="not ready", problems=problems, rule_fields_unknown=unknown), 503
    assert ruleset is not None
    # Ready all the same: events are still queued, and every other rule still runs.
    return jsonify(
        status="ready",
        rules=len(ruleset.rules),
        rules_digest=ruleset.digest,
        rule_fields_unknown=unknown,
    ), 200


def _unknown_fields(connection: redis.Redis) -> list[dict[str, str]]:
    """Names rules use that Close no longer knows, as the workers last found them."""
    try:
        return [entry.to_dict() for entry in read_unknown_fields(connection)]
    except redis.RedisError:
        return []  # the ping reports Redis


def _eviction_problems(intake: Intake) -> list[str]:
    problem = intake.eviction.current().problem()
    return [] if problem is None else [f"redis: {problem}"]


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


def _worth_recording(intake: Intake) -> bool:
    """Whether this refusal gets its log line and counter. Past the budget a flood of bad
    requests costs no more than reading and checking them; one line says that began."""
    if intake.budget.spend(client_key()):
        return True
    if intake.budget.muted == 1:
        log.warning(
            "webhook_rejections_muted",
            extra={"client": client_key(), "window_sec": intake.budget.window_sec},
        )
    return False


def _add_error_handlers(app: Flask, intake: Intake) -> None:
    @app.errorhandler(WebhookRejectedError)
    def rejected(error: WebhookRejectedError) -> tuple[Response, int, dict[str, str]]:
        if _worth_recording(intake):
            _count(intake, f"rejected_{error.status}")
            log.warning("webhook_rejected", extra={"status": error.status, "reason": str(error)})
        # After a 408 the rest of the body may still come; it must not be read as a request.
        close = {"Connection": "close"} if error.status == 408 else {}
        return jsonify(error=str(error)), error.status, close

    @app.errorhandler(QueueUnavailableError)
    def unavailable(error: QueueUnavailableError) -> tuple[Response, int, dict[str, str]]:
        log.error("webhook_not_queued", extra={"reason": str(error)})
        # The sender learns why, not Redis's own words (those are in the log line).
        why = "Redis is full" if isinstance(error, RedisFullError) else "queue unavailable"
        return jsonify(error=f"{why}; deliver again later"), 503, {"Retry-After": "30"}

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response, int]:
        status = error.code or 500
        if request.path == "/webhooks/close" and _worth_recording(intake):
            _count(intake, f"rejected_{status}")
        return jsonify(error=error.name.lower()), status

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[Response, int]:
        log.error("request_failed", exc_info=error)
        return jsonify(error="internal error"), 500
