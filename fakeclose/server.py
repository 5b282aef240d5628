"""FakeClose: the fake Close API on loopback, with seeding, inspection and fault injection.

with FakeClose() as fake:
    oppo = fake.add_opportunity(value=5000)
    client = CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake.url)
    client.update_opportunity(oppo["id"], {"confidence": 50}, tz_offset_hours=-5)
    assert fake.requests_matching("PUT", "opportunity/")[0].json == {"confidence": 50}
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from fakeclose.app import Backend, OpportunityListing, create_app
from fakeclose.keepalive import KeepAliveServer
from fakeclose.store import DEFAULT_STATUSES, HUMAN_USER_ID, Actor, Store, new_id
from fakeclose.subscriptions import Subscriptions, subscriptions_of
from fakeclose.traffic import Delay, Fault, Group, RecordedRequest, Traffic, is_match
from fakeclose.webhooks import Delivery, WebhookDeliverer


@dataclass(frozen=True)
class Hold:
    """A request the fake holds: `held` is set once it arrived, `release()` lets it go on."""

    held: threading.Event
    _release: threading.Event

    def wait_held(self, timeout: float) -> bool:
        """True once the request is being held (False after `timeout` seconds)."""
        return self.held.wait(timeout)

    def release(self) -> None:
        self._release.set()


# How often the server loop looks for a stop request; werkzeug's 0.5 s would add up to
# half a second to every test's teardown.
POLL_INTERVAL_SEC = 0.02


class FakeClose:
    """A small real HTTP server that answers as Close's API does (see package docs)."""

    DEFAULT_API_KEY = "test-key"
    DEFAULT_API_KEY_ID = "api_testkey"

    def __init__(
        self,
        *,
        api_keys: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        admin: bool = True,
    ) -> None:
        """`admin=False` makes the API keys a non-admin's: the event log then hides the data
        of events an hour old or more (by the fake's clock), as Close does."""
        keys = {self.DEFAULT_API_KEY: self.DEFAULT_API_KEY_ID} if api_keys is None else api_keys
        self.store = Store()
        self.traffic = Traffic()
        self._stopping = threading.Event()
        self._listing = OpportunityListing()
        self._api_keys = dict(keys)  # shared with the routes: set_api_keys changes it live
        backend = Backend(
            self.store, self.traffic, self._api_keys, self._stopping, admin, self._listing
        )
        self._backend = backend
        # HTTP/1.1 with keep-alive, as Close's API: clients' connection pools are used.
        self._server = KeepAliveServer(host, port, create_app(backend))
        self._thread: threading.Thread | None = None
        self._deliverer: WebhookDeliverer | None = None
        self.store.listeners.append(self._deliver)

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The API base URL, e.g. http://127.0.0.1:54321/api/v1/."""
        return f"http://{self._server.host}:{self._server.server_port}/api/v1/"

    def start(self) -> FakeClose:
        """Serve from a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": POLL_INTERVAL_SEC},
                name="fakeclose-http",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut injected delays short and stop webhook delivery."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self._server.close_connections()
        if self._deliverer is not None:
            self._deliverer.stop()

    def __enter__(self) -> FakeClose:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the clock -----------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The fake clock: the moment set, else the real UTC time."""
        return self.store.now()

    @now.setter
    def now(self, moment: datetime | None) -> None:
        # A naive moment is UTC, like the timestamps Close writes in its events.
        if moment is not None:
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        self.store.fixed_now = moment

    @property
    def clock_skew_sec(self) -> float:
        """Seconds the `Date` header of every answer is ahead of the real clock (negative:
        behind): a Close whose clock differs from this machine's. The fake clock (`now`)
        is not affected."""
        return self._server.clock_skew_sec

    @clock_skew_sec.setter
    def clock_skew_sec(self, seconds: float) -> None:
        self._server.clock_skew_sec = seconds

    def give_custom_role(self, name: str, *, permissions: Sequence[str] = ()) -> str:
        """The keys' user holds a new custom role (its `role_` id in /me/'s membership, the
        role at GET role/<id>/, as Close's Roles API shows one); returns its id. Whether
        the keys are an admin's is then up to `permissions` (`manage_organization`), though
        the event log still follows `admin`."""
        role_id = new_id("role")
        self._backend.roles[role_id] = {
            "id": role_id,
            "name": name,
            "editable": True,
            "permissions": list(permissions),
            "visibility_user_lcf_behavior": None,
            "visibility_user_lcf_ids": None,
        }
        self._backend.membership_role["role_id"] = role_id
        return role_id

    # -- seeding ---------------------------------------------------------------------------

    @property
    def default_pipeline_id(self) -> str:
        """The pipeline created with the fake: Active/active, Won/won, Lost/lost."""
        return self.store.default_pipeline_id

    def add_pipeline(
        self, name: str, *, statuses: Sequence[tuple[str, str]] = DEFAULT_STATUSES
    ) -> str:
        """A pipeline with statuses [(label, type), ...] in order; returns its `pipe_` id."""
        return self.store.add_pipeline(name, statuses)

    def status_id(self, label: str, *, pipeline_id: str | None = None) -> str:
        """The `stat_` id of a label (in the default pipeline unless told)."""
        return self.store.status_id(label, pipeline_id=pipeline_id)

    def add_user(self, first: str, last: str) -> str:
        """A member of the organization (a sales rep) who may own deals: `user_id` on a
        deal; Close then names it in `user_name`. Returns the `user_` id."""
        return self.store.add_user(first, last)

    def add_custom_field(
        self,
        name: str,
        *,
        type: str = "text",  # Close's own name for it
        accepts_multiple_values: bool = False,
        choices: Sequence[str] | None = None,
        description: str = "",
    ) -> str:
        """An opportunity custom field; returns its `cf_` id."""
        return self.store.add_custom_field(
            name,
            type=type,
            accepts_multiple_values=accepts_multiple_values,
            choices=choices,
            description=description,
        )

    def rename_custom_field(self, field_id: str, name: str) -> None:
        """A person renames a custom field in Close's settings (its id and values stay)."""
        with self.store.lock:
            self.store.custom_fields[field_id]["name"] = name

    def delete_custom_field(self, field_id: str) -> None:
        """A person deletes a custom field: Close removes its values from every deal too."""
        with self.store.lock:
            del self.store.custom_fields[field_id]
            for opportunity in self.store.opportunities.values():
                opportunity.pop(f"custom.{field_id}", None)

    def rename_status(self, status_id: str, label: str) -> None:
        """A person renames a status (`PUT /status/opportunity/{id}/` changes only `label`)."""
        with self.store.lock:
            self.store.statuses[status_id]["label"] = label
            for opportunity in self.store.opportunities.values():
                if opportunity.get("status_id") == status_id:
                    opportunity["status_label"] = opportunity["status_display_name"] = label

    def add_opportunity(self, **fields: Any) -> dict[str, Any]:
        """An opportunity, without an event. Writable fields (status_id, value, custom.X, ...)
        are checked as in a POST; others (date_created, lead_name, ...) are stored as given."""
        return self.store.seed(fields)

    # -- people editing in Close's UI ------------------------------------------------------

    def user_create(
        self,
        fields: Mapping[str, Any] | None = None,
        *,
        user_id: str = HUMAN_USER_ID,
        tz_offset_hours: float | None = None,
    ) -> dict[str, Any]:
        """A person creates an opportunity; returns the `created` event."""
        return self.store.create(fields or {}, self._ui_actor("POST", "", user_id, tz_offset_hours))

    def user_update(
        self,
        opportunity_id: str,
        changes: Mapping[str, Any],
        *,
        user_id: str = HUMAN_USER_ID,
        tz_offset_hours: float | None = None,
    ) -> dict[str, Any] | None:
        """A person edits an opportunity; returns the `updated` event (None: nothing changed).
        Bad values raise PatchError, carrying the field errors Close would show."""
        actor = self._ui_actor("PUT", opportunity_id, user_id, tz_offset_hours)
        return self.store.update(opportunity_id, changes, actor)[1]

    def user_delete(self, opportunity_id: str, *, user_id: str = HUMAN_USER_ID) -> dict[str, Any]:
        """A person deletes an opportunity; returns the `deleted` event."""
        return self.store.delete(opportunity_id, self._ui_actor("DELETE", opportunity_id, user_id))

    def _ui_actor(
        self, method: str, opportunity_id: str, user_id: str, tz_offset_hours: float | None = None
    ) -> Actor:
        path = (
            f"/api/v1/opportunity/{opportunity_id}/" if opportunity_id else "/api/v1/opportunity/"
        )
        return Actor(user_id, None, new_id("req"), method, path, tz_offset_hours)

    # -- inspection ------------------------------------------------------------------------

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The opportunity as it is now (MissingObjectError, a LookupError, when absent)."""
        return self.store.opportunity(opportunity_id)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted, oldest first."""
        with self.store.lock:
            return copy.deepcopy(self.store.events)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (including refused ones), oldest first."""
        return self.traffic.requests()

    def requests_matching(
        self, method: str | None = None, path_prefix: str | None = None
    ) -> list[RecordedRequest]:
        """The requests with this method under this path prefix (None matches anything)."""
        return [
            r
            for r in self.traffic.requests()
            if is_match(r.method, r.path, method_filter=method, path_prefix=path_prefix)
        ]

    @property
    def answers(self) -> dict[tuple[str, int], int]:
        """How many answers of each (method, status) the fake gave, e.g. ("PUT", 429)."""
        return self.traffic.answers()

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        self.traffic.clear()

    # -- fault injection ---------------------------------------------------------------------

    def set_api_keys(self, api_keys: Mapping[str, str]) -> None:
        """Accept exactly these keys (API key -> api_key_id) from now on: a key left out
        is revoked (401 on every request, /me/ too), one added starts working at once."""
        for key in [k for k in self._api_keys if k not in api_keys]:
            del self._api_keys[key]
        self._api_keys.update(api_keys)

    def fail_next(
        self,
        count: int,
        *,
        status: int = 503,
        method: str | None = None,
        path_prefix: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        after_serving: bool = False,
    ) -> None:
        """Answer the next `count` matching (authenticated) requests with `status`
        (`after_serving`: serve them first, then answer with `status`: a write that landed
        and whose answer was lost)."""
        fault = Fault(count, status, method, path_prefix, body, dict(headers or {}), after_serving)
        self.traffic.add_fault(fault)

    def clear_faults(self) -> None:
        """Answer normally again: faults not yet spent are dropped (a standing one, such as
        a suspended organization's 403 on every request, lifted)."""
        self.traffic.clear_faults()

    def delay_next(
        self,
        count: int,
        seconds: float,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        ahead: bool = False,
        after_serving: bool = False,
    ) -> None:
        """Hold the next `count` matching requests `seconds` before answering them (`ahead`:
        these first, before delays asked for earlier, such as a standing latency;
        `after_serving`: serve them at once and hold only the answer)."""
        delay = Delay(count, seconds, method, path_prefix, after_serving=after_serving)
        self.traffic.add_delay(delay, ahead=ahead)

    def hold_next(
        self,
        *,
        method: str | None = None,
        path_prefix: str | None = None,
        max_seconds: float = 60.0,
    ) -> Hold:
        """Hold the next matching request, unanswered and not yet applied, until the returned
        Hold is released (or `max_seconds` pass): a request in flight, for as long as a test
        needs one."""
        release = threading.Event()
        delay = Delay(1, max_seconds, method, path_prefix, release=release)
        self.traffic.add_delay(delay)
        return Hold(delay.held, release)

    def ignore_writes_to(self, fields: Iterable[str]) -> None:
        """Answer API writes (POST, PUT) of these fields 200 without taking them, as Close
        does with keys its validation does not know (`custom.cf_X` covers its `.add` and
        `.remove`); an empty set takes every writable field again. People's edits in the
        UI (user_update) still take them."""
        self.store.ignored_writes = frozenset(fields)

    def set_rate_limit(
        self, limit: int, *, window_sec: float = 1.0, group: Group = "write"
    ) -> None:
        """Allow `limit` requests per `window_sec` per API key in `group` (write: PUT, POST,
        DELETE; read: GET); more are answered 429."""
        self.traffic.rate_limiter.set_limit(limit, window_sec=window_sec, group=group)

    def set_opportunity_listing(
        self, *, page_cap: int | None = None, custom_by_fields: bool = True
    ) -> None:
        """Serve GET opportunity/ as Close's documents allow it to: at most `page_cap`
        deals a page whatever `_limit` asks (`has_more` still true while more follow), and,
        with `custom_by_fields` False, deals without custom fields when `_fields` names them
        (`custom`, `custom.cf_X`). The defaults are the fake's usual answers."""
        self._listing.page_cap = page_cap
        self._listing.custom_by_fields = custom_by_fields

    # -- webhooks ------------------------------------------------------------------------------

    @property
    def webhook_subscriptions(self) -> Subscriptions:
        """The subscriptions made through /webhook/; tests set Close's health fields here."""
        return subscriptions_of(self._server.app)

    def deliver_webhooks_to(
        self,
        url: str,
        *,
        signature_key_hex: str,
        subscription_id: str = "whsub_fake",
        max_attempts: int = 5,
        retry_delay_sec: float = 0.2,
    ) -> None:
        """POST every event emitted from now on to `url`, signed as Close signs them."""
        if self._deliverer is not None:
            self._deliverer.stop()
        self._deliverer = WebhookDeliverer(
            url,
            signature_key_hex=signature_key_hex,
            subscription_id=subscription_id,
            max_attempts=max_attempts,
            retry_delay_sec=retry_delay_sec,
        )
        self._deliverer.start()

    @property
    def deliveries(self) -> list[Delivery]:
        """How each webhook delivery ended, in delivery order."""
        return [] if self._deliverer is None else list(self._deliverer.deliveries)

    def wait_for_deliveries(self, timeout: float = 5.0) -> None:
        """Block until no webhook is pending; TimeoutError after `timeout` seconds."""
        if self._deliverer is not None:
            self._deliverer.wait(timeout)

    def _deliver(self, event: dict[str, Any]) -> None:
        if self._deliverer is not None:
            self._deliverer.submit(event)
