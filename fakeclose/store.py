"""The fake organization as data: users, pipelines, custom fields, opportunities, events.

Every write goes through one lock and emits its event under it, so the event log and the
webhook queue see changes in the order they happened.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from fakeclose.eventlog import make_event
from fakeclose.patch import (
    MULTI_VALUE_TYPES,
    STATUS_KEYS,
    Catalog,
    apply_patch,
    derive,
    is_writable,
)
from fakeclose.queries import offset_zone

ORGANIZATION_ID = "orga_fake"
ORGANIZATION_NAME = "Fake Organization"
DEALKEEPER_USER_ID = "user_dealkeeper"  # the user every API key belongs to
HUMAN_USER_ID = "user_human"  # who edits "in the UI"
USERS = {
    DEALKEEPER_USER_ID: ("Deal", "Keeper", "dealkeeper@example.com"),
    HUMAN_USER_ID: ("Human", "User", "human@example.com"),
}
DEFAULT_STATUSES = (("Active", "active"), ("Won", "won"), ("Lost", "lost"))
STATUS_TYPES = ("active", "won", "lost")
FIELD_TYPES = frozenset(
    {"text", "number", "date", "datetime", "choices", "user", "contact", "hidden", "custom_object"}
)
# Values Close derives or stamps; a change to them alone is not a change worth an event.
UNTRACKED_FIELDS = frozenset(
    {
        "date_updated",
        "updated_by",
        "updated_by_name",
        "user_name",
        "value_formatted",
        "expected_value",
        "annualized_value",
        "annualized_expected_value",
        "status_display_name",
    }
)


class MissingObjectError(LookupError):
    """No such object: the API answers 404."""


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and through which request."""

    user_id: str
    api_key_id: str | None
    request_id: str
    request_method: str
    request_path: str  # as Close reports it: "/api/v1/opportunity/oppo_.../"
    tz_offset_hours: float | None = None


_Data = TypeVar("_Data")


def clone(value: _Data) -> _Data:
    """A deep copy of JSON-like data (dicts, lists and immutable scalars). copy.deepcopy,
    which every request to the fake paid several times, took a quarter of its time."""
    if isinstance(value, dict):
        return cast(_Data, {key: clone(item) for key, item in value.items()})
    if isinstance(value, list):
        return cast(_Data, [clone(item) for item in value])
    return value


def new_id(prefix: str) -> str:
    """A Close-style id such as `oppo_...`: a prefix and random letters and digits."""
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


class Store:
    """One organization's data (thread-safe; every public method takes the lock)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.fixed_now: datetime | None = None
        self.user_names = {uid: f"{first} {last}" for uid, (first, last, _) in USERS.items()}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.custom_fields: dict[str, dict[str, Any]] = {}
        self.opportunities: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # Fields API writes are answered 200 without taking (FakeClose.ignore_writes_to).
        self.ignored_writes: frozenset[str] = frozenset()
        self.default_pipeline_id = self.add_pipeline("Sales", DEFAULT_STATUSES)

    def now(self) -> datetime:
        """The fake clock: the fixed moment when one is set, else the real UTC time."""
        return self.fixed_now or datetime.now(UTC)

    def today(self, tz_offset_hours: float | None) -> date:
        """Today's date at this UTC offset (UTC without one), as Close computes date_won."""
        return self.now().astimezone(offset_zone(tz_offset_hours)).date()

    def add_pipeline(self, name: str, statuses: Sequence[tuple[str, str]]) -> str:
        """A pipeline with statuses (label, type) in order; returns its id."""
        if not statuses or any(kind not in STATUS_TYPES for _, kind in statuses):
            raise ValueError(f"a pipeline needs statuses typed {STATUS_TYPES}, got {statuses!r}")
        with self.lock:
            pipeline_id = new_id("pipe")
            status_ids = [self._add_status(label, kind, pipeline_id) for label, kind in statuses]
            # The real Close stamps a pipeline without an offset, and made the default one
            # itself (created_by null): its GET pipeline/ answer of 2026-06-19.
            stamp = self.now().astimezone(UTC).replace(tzinfo=None).isoformat()
            self.pipelines[pipeline_id] = {
                "id": pipeline_id,
                "name": name,
                "status_ids": status_ids,
                "created_by": None,
                "updated_by": None,
                "date_created": stamp,
                "date_updated": stamp,
            }
            return pipeline_id

    def status_id(self, label: str, *, pipeline_id: str | None = None) -> str:
        """The id of the status with this label (in the default pipeline unless told)."""
        with self.lock:
            status = self.catalog().status_by_label(label, pipeline_id or self.default_pipeline_id)
            if status is None:
                raise KeyError(f"no status labelled {label!r} in pipeline {pipeline_id!r}")
            return str(status["id"])

    def add_user(self, first: str, last: str) -> str:
        """A member of the organization who may own deals; returns its `user_` id."""
        with self.lock:
            user_id = new_id("user")
            self.user_names[user_id] = f"{first} {last}"
            return user_id

    def add_custom_field(
        self,
        name: str,
        *,
        type: str,  # Close's own name for it, as in the public add_custom_field
        accepts_multiple_values: bool,
        choices: Sequence[str] | None,
        description: str,
    ) -> str:
        """An opportunity custom field; returns its `cf_...` id."""
        _check_field_definition(name, type, accepts_multiple_values, choices)
        with self.lock:
            if any(f["name"] == name for f in self.custom_fields.values()):
                raise ValueError(f"a custom field named {name!r} exists already")
            field_id = new_id("cf")
            stamp = self._stamp()
            self.custom_fields[field_id] = {
                "id": field_id,
                "name": name,
                "description": description,
                "type": type,
                "choices": list(choices) if choices is not None else None,
                "accepts_multiple_values": accepts_multiple_values,
                "editable_with_roles": [],
                "organization_id": ORGANIZATION_ID,
                "created_by": HUMAN_USER_ID,
                "updated_by": HUMAN_USER_ID,
                "date_created": stamp,
                "date_updated": stamp,
            }
            return field_id

    def catalog(self) -> Catalog:
        """A view of what patches need (live dicts: use under the lock)."""
        return Catalog(self.statuses, self.pipelines, self.custom_fields, self.user_names)

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """A copy of the opportunity; MissingObjectError when there is none."""
        with self.lock:
            return clone(self._existing(opportunity_id))

    def seed(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """An opportunity made without an event: writable keys are validated as in a POST,
        any other key (date_created, lead_name, ...) is stored as given."""
        with self.lock:
            writable = {k: v for k, v in fields.items() if is_writable(k) or k == "lead_id"}
            opportunity = self._build(writable, user_id=HUMAN_USER_ID, today=self.today(None))
            opportunity.update({k: v for k, v in fields.items() if k not in writable})
            self.opportunities[opportunity["id"]] = derive(opportunity)
            return clone(opportunity)

    def create(self, body: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        """POST opportunity/: returns the `created` event (its data is the new opportunity)."""
        with self.lock:
            today = self.today(actor.tz_offset_hours)
            opportunity = self._build(body, user_id=actor.user_id, today=today)
            self.opportunities[opportunity["id"]] = opportunity
            return self._emit("created", opportunity, actor, previous={}, changed=())

    def update(
        self, opportunity_id: str, body: Mapping[str, Any], actor: Actor
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """PUT opportunity/<id>/: the opportunity after it, and the event (None: no change)."""
        with self.lock:
            before = self._existing(opportunity_id)
            today = self.today(actor.tz_offset_hours)
            after = apply_patch(before, body, catalog=self.catalog(), today=today)
            changed = sorted(
                k
                for k in (before.keys() | after.keys()) - UNTRACKED_FIELDS
                if before.get(k) != after.get(k) or (k in before) != (k in after)
            )
            if not changed:
                return clone(before), None
            after.update(
                date_updated=self._stamp(),
                updated_by=actor.user_id,
                updated_by_name=self.user_names.get(actor.user_id),
            )
            self.opportunities[opportunity_id] = after
            changed.append("date_updated")
            previous = {k: before.get(k) for k in changed}
            event = self._emit("updated", after, actor, previous=previous, changed=sorted(changed))
            return clone(after), event

    def delete(self, opportunity_id: str, actor: Actor) -> dict[str, Any]:
        """DELETE opportunity/<id>/: returns the `deleted` event."""
        with self.lock:
            before = self._existing(opportunity_id)
            del self.opportunities[opportunity_id]
            return self._emit(
                "deleted", before, actor, previous=before, changed=(), with_data=False
            )

    def _existing(self, opportunity_id: str) -> dict[str, Any]:
        found = self.opportunities.get(opportunity_id)
        if found is None:
            raise MissingObjectError(opportunity_id)
        return found

    def _add_status(self, label: str, kind: str, pipeline_id: str) -> str:
        status_id = new_id("stat")
        self.statuses[status_id] = {
            "id": status_id,
            "label": label,
            "type": kind,
            "pipeline_id": pipeline_id,
            "organization_id": ORGANIZATION_ID,
        }
        return status_id

    def _build(self, body: Mapping[str, Any], *, user_id: str, today: date) -> dict[str, Any]:
        if not any(key in body for key in STATUS_KEYS):
            first_status = self.pipelines[self.default_pipeline_id]["status_ids"][0]
            body = {"status_id": first_status, **body}
        blank = self._blank(user_id=user_id, lead_id=str(body.get("lead_id") or new_id("lead")))
        return apply_patch(blank, body, catalog=self.catalog(), today=today)

    def _blank(self, *, user_id: str, lead_id: str) -> dict[str, Any]:
        stamp, name = self._stamp(), self.user_names.get(user_id)
        return {
            "id": new_id("oppo"),
            "organization_id": ORGANIZATION_ID,
            "lead_id": lead_id,
            "lead_name": f"Lead {lead_id[-6:]}",
            "contact_id": None,
            "contact_name": None,  # the fake has no contacts to name
            "user_id": user_id,
            "user_name": name,
            "value": None,
            "value_period": "one_time",
            "value_currency": "USD",
            "confidence": 0,
            "date_won": None,
            "date_lost": None,
            "note": "",
            "attachments": [],
            "integration_links": [],
            "date_created": stamp,
            "date_updated": stamp,
            "created_by": user_id,
            "created_by_name": name,
            "updated_by": user_id,
            "updated_by_name": name,
        }

    def _stamp(self) -> str:
        return self.now().astimezone(UTC).isoformat(timespec="microseconds")

    def _emit(
        self,
        action: str,
        opportunity: Mapping[str, Any],
        actor: Actor,
        *,
        previous: Mapping[str, Any],
        changed: Sequence[str],
        with_data: bool = True,
    ) -> dict[str, Any]:
        event = make_event(
            event_id=new_id("ev"),
            when=self.now().astimezone(UTC),
            organization_id=ORGANIZATION_ID,
            actor=asdict(actor),
            action=action,
            object_id=opportunity["id"],
            lead_id=opportunity.get("lead_id"),
            data=clone(opportunity) if with_data else None,
            previous_data=clone(dict(previous)),
            changed_fields=changed,
        )
        self.events.append(event)
        for listener in self.listeners:
            listener(clone(event))
        return clone(event)


def _check_field_definition(
    name: str, kind: str, multiple: bool, choices: Sequence[str] | None
) -> None:
    if not name or kind not in FIELD_TYPES:
        raise ValueError(
            f"a custom field needs a name and a type in {sorted(FIELD_TYPES)}, got {kind!r}"
        )
    if multiple and kind not in MULTI_VALUE_TYPES:
        raise ValueError(f"only {MULTI_VALUE_TYPES} fields accept multiple values, not {kind!r}")
    if (kind == "choices") != (choices is not None):
        raise ValueError("choices go with, and only with, a field of type 'choices'")
