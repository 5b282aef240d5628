"""`dealkeeper doctor`'s judgments of the key, the clock and the rate limits, pure.

What Close answered comes in as data; each function returns one Check (results.py)
saying what holds, or what is wrong and what to do next. The subscription, the event log and
the write probe are judged in service/core/doctor/delivery.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from service.config import defaults
from service.core.doctor.results import Check, failed, passed
from service.core.retry import RateLimitInfo

KEYS_PAGE = "Close > Settings > Developer > API Keys"
# Close's predefined roles (Memberships API: `role_id` is one of these or a custom `role_`
# id). Only an admin's key sees event data over an hour old and manages every subscription.
ADMIN_ROLE = "admin"
OTHER_PREDEFINED_ROLES = frozenset({"superuser", "user", "restricteduser"})
# The permission Close's Admin role holds and no membership created through the API may
# (Memberships API); we read it as "admin".
ADMIN_PERMISSION = "manage_organization"


def identity(me: Mapping[str, Any]) -> str:
    """`First Last <email> (user_id), organization Name (orga_id)` from GET /me/."""
    name = " ".join(str(me.get(k) or "") for k in ("first_name", "last_name")).strip()
    user = f"{name or 'user'} <{me.get('email')}> ({me.get('id')})"
    organizations = [o for o in me.get("organizations") or [] if isinstance(o, Mapping)]
    shown = ", ".join(f"{o.get('name')} ({o.get('id')})" for o in organizations)
    return f"{user}, organization {shown or 'not listed'}"


def key_works(me: Mapping[str, Any]) -> Check:
    """GET /me/ answered: whose key it is."""
    return passed("key", identity(me))


def key_refused(error: str, *, status: int | None) -> Check:
    """GET /me/ failed: a refused key, or no Close at that address."""
    if status in (401, 403):
        fix = (
            f"set CLOSE_API_KEY to a working key of your organization ({KEYS_PAGE}); a "
            "deleted key, or one whose user left the organization, is refused"
        )
        return failed("key", f"Close refused CLOSE_API_KEY: {error}", fix)
    fix = (
        "check CLOSE_API_URL (default https://api.close.com/api/v1/), the network and any "
        "HTTPS_PROXY between here and Close, then run this again"
    )
    return failed("key", f"GET me/ failed: {error}", fix)


def custom_role_ids(me: Mapping[str, Any]) -> list[str]:
    """The custom roles (`role_` ids) /me/'s memberships name whose admin-ness /me/ alone
    does not tell: the caller reads them with GET role/<id>/."""
    return sorted(
        {
            str(m.get("role_id"))
            for m in _memberships(me)
            if _admin_by_membership(m) is None and str(m.get("role_id")).startswith("role_")
        }
    )


def admin_check(me: Mapping[str, Any], roles: Mapping[str, Mapping[str, Any]]) -> Check:
    """Whether the key's user is an admin, from /me/'s memberships and the custom roles
    read (`roles`: role id -> GET role/<id>/)."""
    memberships = _memberships(me)
    verdicts = [(m, _is_admin(m, roles.get(str(m.get("role_id"))))) for m in memberships]
    shown = ", ".join(f"role {m.get('role_id')} in {m.get('organization_id')}" for m in memberships)
    if any(verdict for _, verdict in verdicts):
        return passed("admin", f"an admin's key ({shown})")
    fix = (
        f"use an API key created by an admin of the organization ({KEYS_PAGE}): "
        "`dealkeeper subscribe` needs one to manage the webhook subscription, and catch-up "
        "needs one to read events older than an hour with their data"
    )
    if not memberships or any(verdict is None for _, verdict in verdicts):
        unknown = shown or "GET me/ lists no membership"
        return failed("admin", f"cannot tell whether the key is an admin's ({unknown})", fix)
    return failed("admin", f"not an admin's key ({shown})", fix)


def _memberships(me: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m for m in me.get("memberships") or [] if isinstance(m, Mapping)]


def _admin_by_membership(membership: Mapping[str, Any]) -> bool | None:
    role_id = membership.get("role_id")
    granted = membership.get("permissions_granted") or []
    if role_id == ADMIN_ROLE or ADMIN_PERMISSION in granted:
        return True
    if role_id in OTHER_PREDEFINED_ROLES:
        return False
    return None


def _is_admin(membership: Mapping[str, Any], role: Mapping[str, Any] | None) -> bool | None:
    found = _admin_by_membership(membership)
    if found is not None or role is None:
        return found
    return ADMIN_PERMISSION in (role.get("permissions") or [])


def server_time_sec(date_header: str | None) -> float | None:
    """The Unix time of an HTTP `Date` header (whole seconds), None when absent or unreadable."""
    if not date_header:
        return None
    try:
        moment = parsedate_to_datetime(date_header.strip())
    except (TypeError, ValueError):
        return None
    return None if moment.tzinfo is None else moment.timestamp()


def clock_check(
    *,
    local_sec: float,
    server_sec: float | None,
    tolerance_sec: int,
    future_sec: int,
    catchup_overlap_sec: int,
) -> Check:
    """This machine's clock against Close's `Date` header (`local_sec`: when the answer came).

    Close signs a webhook with its own time. Ours ahead by more than CLOSE_WEBHOOK_TOLERANCE
    makes every signature stale; behind by more than `future_sec` (or the tolerance, when
    smaller) makes them look from the future; both are refused. Ahead by more than catch-up's
    overlap makes catch-up skip events near each checkpoint.
    """
    if server_sec is None:
        fix = "a proxy between here and Close may strip the Date header; check HTTPS_PROXY"
        return failed("clock", "Close's answer carried no readable Date header", fix)
    # A Date header has whole seconds: Close's time was somewhere in the second it names.
    ahead = local_sec - (server_sec + 0.5)
    shown = f"this machine is {abs(ahead):.1f} s {'ahead of' if ahead >= 0 else 'behind'} Close"
    behind_allowed = min(tolerance_sec, future_sec)
    fix = "synchronise this machine's clock (NTP: timedatectl set-ntp true, or chrony)"
    if ahead > tolerance_sec:
        why = f"webhooks signed more than CLOSE_WEBHOOK_TOLERANCE={tolerance_sec} s ago are refused"
        return failed("clock", f"{shown}: {why}", fix)
    if -ahead > behind_allowed:
        why = f"webhooks signed more than {behind_allowed} s ahead are refused"
        return failed("clock", f"{shown}: {why}", fix)
    if ahead > catchup_overlap_sec:
        why = f"catch-up re-reads only {catchup_overlap_sec} s before each checkpoint"
        return failed("clock", f"{shown}: {why}", fix)
    return passed("clock", f"{shown} (±1 s; webhooks allow {behind_allowed} s behind)")


@dataclass(frozen=True)
class Answer:
    """One answer of Close as the rate-limit check reads it."""

    group: str  # "GET event/", "PUT opportunity/": the endpoint as dealkeeper uses it
    status: int | None
    rate_limit: RateLimitInfo | None
    wait_sec: float | None = None  # what a 429 asked for


def endpoint_group(method: str, path: str) -> str:
    """`GET opportunity/` for `opportunity/oppo_1/` and `opportunity/`: Close limits per
    endpoint group, and does not list which paths share one, so each resource is shown."""
    head = path.strip("/").split("/", 1)[0]
    return f"{method.upper()} {head}/"


def rate_limit_check(answers: Sequence[Answer]) -> Check:
    """Close's last `ratelimit` header per endpoint group; fails when a group has nothing
    left or answered 429."""
    last: dict[str, RateLimitInfo] = {}
    refused: dict[str, float | None] = {}
    for answer in answers:
        if answer.rate_limit is not None:
            last[answer.group] = answer.rate_limit
        if answer.status == 429:
            refused[answer.group] = answer.wait_sec
    empty = sorted(g for g, info in last.items() if info.remaining == 0)
    shown = "; ".join(f"{g} {_headroom(info)}" for g, info in sorted(last.items()))
    if refused or empty:
        groups = sorted(set(refused) | set(empty))
        waits = [w for w in [*refused.values(), *(last[g].reset_sec for g in empty)] if w]
        reset = f"Close resets it in {max(waits):.0f} s. " if waits else ""
        fix = (
            f"{reset}If it runs out again, something else spends this key's allowance (Close "
            "limits each key, and each organization at 3 times that): give dealkeeper a key "
            "of its own, or slow the other user down"
        )
        return failed("rate limit", f"nothing left for {', '.join(groups)} ({shown})", fix)
    if not last:
        pace = f"{defaults.CLOSE_RATE_LIMIT_PER_SEC:g}/s"
        return passed("rate limit", f"Close stated no limit (dealkeeper paces at {pace})")
    return passed("rate limit", shown)


def _headroom(info: RateLimitInfo) -> str:
    reset = f", window ends in {info.reset_sec:.1f} s" if info.reset_sec is not None else ""
    return f"{info.remaining} of {info.limit} left{reset}"
