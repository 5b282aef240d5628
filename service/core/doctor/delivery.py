"""`dealkeeper doctor`'s judgments of what reaches dealkeeper and what it may do, pure: the
rules' names in Close, the webhook subscription, the event log back to the catch-up
checkpoint, and the no-op write of --write-probe. Each returns one Check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from service.config.errors import Problem
from service.core.doctor.results import Check, failed, passed
from service.core.events import EnvelopeError, event_from_dict
from service.core.rules.model import RuleSet

WEBHOOK_PATH = "/webhooks/close"
SHOWN_PROBLEMS = 3
# Fields a no-op write sets to the value they hold, in this order: writable by every PUT
# Close documents (UpdateOpportunity), and none of them moves a deal.
PROBE_FIELDS = ("confidence", "value_period", "note")
# Close stamps these on a write; the probe reports them, it does not count them as changes.
STAMPED_FIELDS = frozenset({"date_updated", "updated_by", "updated_by_name"})


def rules_check(ruleset: RuleSet, problems: Sequence[Problem]) -> Check:
    """The names and values the rules use against Close's metadata (validate --online)."""
    if not problems:
        count = f"{_count(len(ruleset.rules), 'rule')} in {_count(len(ruleset.files), 'file')}"
        return passed("rules", f"{count}: every status, custom field and choice resolves")
    shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
    more = f" and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    fix = (
        "correct the rules (`dealkeeper validate --online` lists every problem), or create "
        "what they name in Close's settings"
    )
    unknown = _count(len(problems), "name")
    return failed("rules", f"{unknown} Close does not know: {shown}{more}", fix)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def triggers_of(ruleset: RuleSet) -> set[str]:
    """The events (`opportunity.updated`, ...) the enabled event rules fire on."""
    event_rules = [rule for rule in ruleset.rules if rule.enabled and not rule.is_sweep]
    return {trigger for rule in event_rules for trigger in rule.triggers}


def subscription_check(
    found: Sequence[Mapping[str, Any]],
    *,
    url: str | None,
    triggers: Iterable[str],
    elsewhere: Sequence[str] = (),
) -> Check:
    """The subscription delivering to `url` (or the only one for opportunity events when no
    URL is given): there, active, carrying every trigger, and delivering without failing now.
    `elsewhere`: the URLs of the organization's other subscriptions."""
    if not found or (url is None and len(found) > 1):
        return _no_single_subscription(found, url=url, elsewhere=elsewhere)
    subscription = found[0]
    target = str(subscription.get("url"))
    problems, fixes = _subscription_problems(subscription, target, set(triggers))
    detail = f"{subscription.get('id')} delivers to {target}"
    if len(found) > 1:
        others = ", ".join(str(s.get("id")) for s in found[1:])
        problems.append(f"{others} delivers there too (each event would come twice)")
        fixes.append(f"delete {others} in Close")
    if problems:
        return failed("subscription", f"{detail}, but {'; '.join(problems)}", "; ".join(fixes))
    events = ", ".join(sorted(_events_of(subscription)))
    return passed("subscription", f"{detail}: active, {events}; {_delivery_health(subscription)}")


def _no_single_subscription(
    found: Sequence[Mapping[str, Any]], *, url: str | None, elsewhere: Sequence[str]
) -> Check:
    if found:  # several for opportunities and no --url to choose
        urls = ", ".join(str(s.get("url")) for s in found)
        detail = f"{len(found)} subscriptions deliver opportunity events ({urls})"
        fix = f"name this deployment's with `dealkeeper doctor --url https://<host>{WEBHOOK_PATH}`"
        return failed("subscription", detail, fix)
    where = f"for {url}" if url else "for opportunity events"
    others = f" (it has some for {', '.join(elsewhere)})" if elsewhere else ""
    target = url or f"https://<this deployment's host>{WEBHOOK_PATH}"
    fix = f"create it with `dealkeeper subscribe --url {target}`"
    return failed("subscription", f"Close has no webhook subscription {where}{others}", fix)


def _subscription_problems(
    subscription: Mapping[str, Any], url: str, triggers: set[str]
) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    fixes: list[str] = []
    if subscription.get("status") != "active":
        reason = subscription.get("pause_reason") or "no reason given"
        problems.append(f"it is {subscription.get('status')} ({reason})")
        fixes.append(
            f"`dealkeeper subscription --url {url} --resume`, then `dealkeeper catch-up "
            "--since <when it paused>` (Close cleared its queue when it paused it)"
        )
    missing = sorted(triggers - _events_of(subscription))
    if missing:
        problems.append(f"it does not carry {', '.join(missing)}, which the rules fire on")
        fixes.append(f"`dealkeeper subscribe --url {url}` brings its events in line")
    if (subscription.get("recent_consecutive_fail_buckets_cnt") or 0) > 0:
        latest = subscription.get("latest_error") or "no error text"
        problems.append(f"Close's deliveries to it are failing now ({latest})")
        fixes.append(
            f"check that it answers (`dealkeeper send-test-event --url {url}`) and that "
            "CLOSE_WEBHOOK_SECRET holds its signature_key"
        )
    return problems, fixes


def _events_of(subscription: Mapping[str, Any]) -> set[str]:
    events = [e for e in subscription.get("events") or [] if isinstance(e, Mapping)]
    return {f"{e.get('object_type')}.{e.get('action')}" for e in events}


def _delivery_health(subscription: Mapping[str, Any]) -> str:
    errors = (subscription.get("history") or {}).get("errors") or []
    if not errors and not subscription.get("latest_error"):
        return "no recent delivery errors"
    latest = subscription.get("latest_error") or "see `dealkeeper subscription`"
    return f"{_count(len(errors), 'recent delivery error')}, none now (latest: {latest})"


def checkpoint_beyond_log(*, start: datetime, earliest: datetime) -> Check | None:
    """A catch-up window that starts before the oldest event Close keeps, else None."""
    if start >= earliest:
        return None
    detail = (
        f"catch-up would read from {start:%Y-%m-%d %H:%M} UTC, but Close keeps events only "
        f"from {earliest:%Y-%m-%d %H:%M} UTC: changes in between cannot be caught up"
    )
    fix = "run a sweep (`dealkeeper sweep`) to bring deals in line; the next catch-up moves on"
    return failed("event log", detail, fix)


def event_log_check(
    events: Sequence[Mapping[str, Any]], *, start: datetime, checkpoint: datetime | None
) -> Check:
    """The first page of events of the catch-up window's oldest hour: readable, with data."""
    since = f"from {start:%Y-%m-%d %H:%M:%S} UTC"
    where = (
        f"the catch-up checkpoint ({checkpoint:%Y-%m-%d %H:%M:%S} UTC, less 5 min)"
        if checkpoint is not None
        else "where the first catch-up starts (no catch-up has run yet)"
    )
    missing = sum(_without_data(e) for e in events)
    if missing:
        detail = (
            f"{missing} of {len(events)} events {since} came without their data: Close shows "
            "a non-admin's key event data for an hour only, so catch-up leaves them"
        )
        fix = "use an admin's API key as CLOSE_API_KEY; after longer outages, run a sweep"
        return failed("event log", detail, fix)
    return passed("event log", f"readable back to {where}: {_count(len(events), 'event')} {since}")


def _without_data(raw: Mapping[str, Any]) -> bool:
    try:
        return event_from_dict(raw).payload_missing
    except EnvelopeError:
        return False  # not an event dealkeeper reads: catch-up skips it either way


def probe_field(opportunity: Mapping[str, Any]) -> str | None:
    """The field the write probe sets to the value it holds; None when none has a value."""
    return next((f for f in PROBE_FIELDS if opportunity.get(f) is not None), None)


def probe_check(
    opportunity_id: str,
    *,
    update: Mapping[str, Any],
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> Check:
    """The deal before the no-op write and read again after it: nothing but Close's stamps
    may differ."""
    compared = (before.keys() | after.keys()) - STAMPED_FIELDS
    changed = sorted(k for k in compared if _differs(k, before, after))
    sent = ", ".join(f"{k}={v!r}" for k, v in update.items())
    if changed:
        detail = f"the no-op write ({sent}) to {opportunity_id} changed {', '.join(changed)}"
        fix = "look at the deal's history in Close and set those fields back by hand"
        return failed("write probe", detail, fix)
    stamped = [k for k in sorted(STAMPED_FIELDS) if _differs(k, before, after)]
    note = f"; Close stamped {', '.join(stamped)}" if stamped else ", not even date_updated"
    return passed("write probe", f"{opportunity_id}: Close took {sent} and changed nothing{note}")


def _differs(key: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    return (key in before) != (key in after) or before.get(key) != after.get(key)


def probe_refused(opportunity_id: str, error: str, *, status: int | None) -> Check:
    """The probe's read or write failed."""
    if status == 404:
        fix = "pass the id of an existing deal (oppo_..., from its URL in Close)"
    elif status in (401, 403):
        fix = (
            "use a key of a user whose role may edit every deal (Close > Settings > Roles): "
            "dealkeeper writes deals it does not own"
        )
    else:
        fix = "read Close's answer above; run this again once it is fixed"
    return failed("write probe", f"{opportunity_id}: {error}", fix)


def window_hour(start: datetime) -> datetime:
    """The end of the hour the event log check reads from `start`."""
    return start + timedelta(hours=1)
