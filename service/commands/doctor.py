"""`dealkeeper doctor`: prove a deployment against the real Close in seconds.

    dealkeeper doctor [--json] [--url URL] [--write-probe OPPORTUNITY_ID]

Asks Close (with CLOSE_API_KEY) and Redis what each check needs, hands the answers to the
pure judges (service/core/doctor/diagnosis.py, service/core/doctor/delivery.py) and prints one line
per check (service/core/doctor/results.py). Read-only unless --write-probe names a deal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import redis

from service.adapters import eventlog
from service.adapters import subscriptions as subs
from service.adapters.close import CloseClient, Exchange, role_path
from service.adapters.metadata import fetch_metadata
from service.adapters.queue import redis_url
from service.authoring.online import check_against_close
from service.config import defaults
from service.config.errors import (
    CloseAPIError,
    CloseServerError,
    ConfigurationError,
    InvalidRulesError,
)
from service.config.settings import Settings
from service.core.doctor import delivery, diagnosis
from service.core.doctor.results import (
    Check,
    all_passed,
    failed,
    in_order,
    not_checked,
    render_text,
    to_json,
)
from service.core.rules import RuleSet, load_rules_path
from service.core.rules.evaluation.dates import utc_offset_hours
from service.intake.signatures import FUTURE_SKEW_SEC
from service.processing.catchup import checkpoint, next_window_start

# Ten seconds for every check: a slow or rate-limited Close fails its check fast instead of
# holding the command (a worker waits longer; a person at a terminal should not).
DOCTOR_READ_TIMEOUT_SEC = 4.0
DOCTOR_MAX_ATTEMPTS = 2
DOCTOR_MAX_INLINE_WAIT_SEC = 1.0
REDIS_TIMEOUT_SEC = 3.0
# The promise: a verdict in ten seconds. Past this, no further request is sent to Close and
# the checks still waiting fail, saying so, instead of adding their timeouts up.
DOCTOR_BUDGET_SEC = 10.0
NEEDS_KEY = "the key does not work"
FIX_KEY_FIRST = "fix the key (above), then run this again"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@click.option(
    "--url",
    default=None,
    help="This deployment's webhook URL (https://HOST/webhooks/close) [default: the one "
    "subscription for opportunity events, as `dealkeeper subscription` finds it].",
)
@click.option(
    "--write-probe",
    "probe_id",
    metavar="OPPORTUNITY_ID",
    default=None,
    help="Also prove the key may write: set one field of this deal to the value it holds.",
)
def doctor(as_json: bool, url: str | None, probe_id: str | None) -> None:
    """Check this deployment against Close: the key and its organization, admin rights, the
    rules' names, the webhook subscription, the clock, the rate limits and the event log.

    One line per check, with the fix for each that fails; exit 1 when any fails. Read-only
    unless --write-probe names a deal, whose field is set to the value it already holds.
    """
    settings = Settings.from_env()
    if not settings.close_api_key:
        raise click.ClickException(
            "doctor checks this deployment against Close: set CLOSE_API_KEY (and "
            "CLOSE_API_URL, REDIS_URL, DEALKEEPER_RULES) as the service has them"
        )
    started = time.perf_counter()
    checks = in_order(run_checks(settings, url=url, probe_id=probe_id))
    took = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(to_json(checks, took_sec=took), indent=2))
    else:
        click.echo(render_text(checks, took_sec=took))
    if not all_passed(checks):
        raise SystemExit(1)


def run_checks(settings: Settings, *, url: str | None, probe_id: str | None) -> list[Check]:
    """Every check, in the order they run (the rate limit last: it reads every answer)."""
    seen: list[Exchange] = []
    with _client(settings, observer=seen.append) as client:
        me, key = _check_key(client)
        checks = [key, _check_clock(client, settings)]
        if me is None:
            return checks + _not_checked(probe_id)
        ruleset, rules = _check_rules(client, settings)
        checks += [_check_admin(client, me), rules]
        checks.append(_check_subscription(client, url=url, ruleset=ruleset))
        checks.append(_check_event_log(client, settings))
        if probe_id is not None:
            checks.append(_check_probe(client, probe_id, ruleset))
        _read_one_opportunity(client)
    answers = [_answer(e) for e in seen]
    return [*checks, diagnosis.rate_limit_check(answers)]


def _client(settings: Settings, *, observer: Callable[[Exchange], None]) -> CloseClient:
    return CloseClient.from_settings(
        settings,
        read_timeout_sec=DOCTOR_READ_TIMEOUT_SEC,
        max_attempts=DOCTOR_MAX_ATTEMPTS,
        max_inline_wait_sec=DOCTOR_MAX_INLINE_WAIT_SEC,
        observer=observer,
        throttle=Budget(DOCTOR_BUDGET_SEC),
    )


class Budget:
    """A Throttle that refuses every request once `seconds` have passed since it was made:
    a slow Close fails the checks left rather than holding the command."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def before(self, method: str, path: str) -> None:
        if time.monotonic() >= self._ends_at:
            raise CloseServerError(
                method=method,
                path=path,
                status=None,
                reason="not sent",
                detail=f"doctor's {self._seconds:g} s were spent (Close answered slowly)",
            )

    def after(self, exchange: Exchange) -> None:
        pass  # only time counts


def _not_checked(probe_id: str | None) -> list[Check]:
    names = ["admin", "rules", "subscription", "event log", "rate limit"]
    names += ["write probe"] if probe_id is not None else []
    return [not_checked(name, NEEDS_KEY, FIX_KEY_FIRST) for name in names]


def _check_key(client: CloseClient) -> tuple[dict[str, Any] | None, Check]:
    try:
        me = client.get_me()
    except CloseAPIError as error:
        return None, diagnosis.key_refused(str(error), status=error.status)
    return me, diagnosis.key_works(me)


def _check_clock(client: CloseClient, settings: Settings) -> Check:
    local = client.last_response_at
    if local is None:  # no answer at all: the key check says why
        return not_checked("clock", "Close did not answer", FIX_KEY_FIRST)
    return diagnosis.clock_check(
        local_sec=local,
        server_sec=diagnosis.server_time_sec(client.last_date_header),
        tolerance_sec=settings.webhook_tolerance_sec,
        future_sec=FUTURE_SKEW_SEC,
        catchup_overlap_sec=defaults.CATCHUP_OVERLAP_SEC,
    )


def _check_admin(client: CloseClient, me: dict[str, Any]) -> Check:
    roles: dict[str, dict[str, Any]] = {}
    for role_id in diagnosis.custom_role_ids(me):
        try:
            roles[role_id] = client.request_json("GET", role_path(role_id))
        except (CloseAPIError, ValueError):  # ValueError: an id that is no path segment
            continue  # not readable with this key: the check says it cannot tell
    return diagnosis.admin_check(me, roles)


def _check_rules(client: CloseClient, settings: Settings) -> tuple[RuleSet, Check]:
    try:
        ruleset = load_rules_path(settings.rules_path)
    except InvalidRulesError as error:
        fix = f"run `dealkeeper validate {settings.rules_path}` and correct each mistake"
        detail = f"{len(error.problems)} mistakes in {settings.rules_path}: {error.problems[0]}"
        return RuleSet(), failed("rules", detail, fix)
    try:
        problems = check_against_close(ruleset, fetch_metadata(client))
    except CloseAPIError as error:
        fix = "the key must read statuses and custom fields; see the key and admin checks"
        return ruleset, failed("rules", f"could not read Close's metadata: {error}", fix)
    return ruleset, delivery.rules_check(ruleset, problems)


def _check_subscription(client: CloseClient, *, url: str | None, ruleset: RuleSet) -> Check:
    try:
        every = subs.list_subscriptions(client)
    except CloseAPIError as error:
        fix = "an admin's key sees every subscription; a non-admin's only its user's own"
        return failed("subscription", f"could not list subscriptions: {error}", fix)
    found = subs.for_url(every, url) if url else subs.for_opportunities(every)
    elsewhere = sorted({str(s.get("url")) for s in every} - {str(s.get("url")) for s in found})
    triggers = delivery.triggers_of(ruleset)
    return delivery.subscription_check(found, url=url, triggers=triggers, elsewhere=elsewhere)


def _check_event_log(client: CloseClient, settings: Settings) -> Check:
    now = datetime.now(UTC)
    try:
        last, start = _catch_up_window(settings, now=now)
    except (ConfigurationError, redis.RedisError) as error:
        fix = "set REDIS_URL to the service's Redis (and REDIS_SSL_CERT_REQS for Heroku Redis)"
        return failed("event log", f"could not read the catch-up checkpoint: {error}", fix)
    if last is not None:
        overlap = timedelta(seconds=defaults.CATCHUP_OVERLAP_SEC)
        earliest = eventlog.earliest_available(now)
        beyond = delivery.checkpoint_beyond_log(start=last - overlap, earliest=earliest)
        if beyond is not None:
            return beyond
    try:
        events = eventlog.first_page(client, since=start, until=delivery.window_hour(start))
    except CloseAPIError as error:
        fix = "catch-up needs a key that may read Close's event log (an admin's)"
        return failed("event log", f"Close refused the event log: {error}", fix)
    return delivery.event_log_check(events, start=start, checkpoint=last)


def _catch_up_window(settings: Settings, *, now: datetime) -> tuple[datetime | None, datetime]:
    """The last catch-up's checkpoint (None before the first) and where the next one reads
    from, out of the service's Redis; a Redis that does not answer fails within seconds."""
    url = redis_url(settings)
    timeouts = {"socket_timeout": REDIS_TIMEOUT_SEC, "socket_connect_timeout": REDIS_TIMEOUT_SEC}
    with redis.Redis.from_url(url, **timeouts) as connection:
        return checkpoint(connection), next_window_start(connection, now=now)


def _check_probe(client: CloseClient, opportunity_id: str, ruleset: RuleSet) -> Check:
    try:
        before = client.get_opportunity(opportunity_id)
        field = delivery.probe_field(before)
        if field is None:
            detail = f"{opportunity_id} holds no value in {', '.join(delivery.PROBE_FIELDS)}"
            return failed("write probe", detail, "name a deal with a confidence set")
        update = {field: before[field]}
        client.update_opportunity(opportunity_id, update, tz_offset_hours=_tz_offset(ruleset))
        after = client.get_opportunity(opportunity_id)
    except CloseAPIError as error:
        return delivery.probe_refused(opportunity_id, str(error), status=error.status)
    except ValueError as error:  # an id that is no Close id ("..", "")
        return delivery.probe_refused(opportunity_id, str(error), status=404)
    return delivery.probe_check(opportunity_id, update=update, before=before, after=after)


def _tz_offset(ruleset: RuleSet) -> float:
    """x-tz-offset as a rule's write would carry it: its time zone's offset now."""
    zone = ruleset.rules[0].timezone if ruleset.rules else "UTC"
    return utc_offset_hours(datetime.now(UTC), zone)


def _read_one_opportunity(client: CloseClient) -> None:
    """One GET of opportunities, for that endpoint group's rate limit: a worker reads a deal
    before every write."""
    params = {"_limit": "1", "_fields": "id"}
    with suppress(CloseAPIError):  # the rate-limit check reads the answer either way
        client.request_json("GET", "opportunity/", params=params)


def _answer(exchange: Exchange) -> diagnosis.Answer:
    group = diagnosis.endpoint_group(exchange.method, exchange.path)
    return diagnosis.Answer(group, exchange.status, exchange.rate_limit, exchange.wait_sec)
