"""What dealkeeper's client sends is what Close documents: read off the fake's traffic.

Sources: the Opportunities page ("Update an opportunity": a JSON patch, `custom.FIELD_ID`,
`.add`/`.remove`, `x-tz-offset`), Authentication with API keys ("the API key acts as the
username and the password is always empty"), the Events page (`_cursor` with the filters
repeated "except for date_updated", `_limit` capped at 50), Pagination (`_skip`/`_limit`).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.adapters.eventlog import iter_events
from service.adapters.metadata import fetch_metadata
from service.core.events import event_from_dict
from service.core.rules import load_rules, make_plan
from service.processing.sweeps.paging import Cursor, page_params

# GET /opportunity/'s parameters as the Opportunities page lists them, with Pagination's.
OPPORTUNITY_LIST_PARAMS = frozenset(
    {"lead_id", "user_id", "status_id", "status_label", "status_type", "value_period", "query"}
    | {
        f"{d}__{op}"
        for d in ("date_created", "date_updated", "date_won")
        for op in ("lt", "gt", "lte", "gte")
    }
    | {"_order_by", "_group_by", "_fields", "lead_saved_search_id", "_limit", "_skip"}
)
ORDER_BY_ALLOWED = frozenset(
    {"date_won", "date_updated", "date_created", "confidence", "user_name", "value"}
    | {"annualized_value", "annualized_expected_value"}
)
EVENT_LIMIT_MAX = 50

TAG_RULES = """
rules:
  - name: tag-big-deals
    trigger: opportunity.updated
    if:
      - value: {gte: 1000000}
    then:
      - add: {custom.Segment: Enterprise}
      - remove: {custom.Regions: EU}
"""


def test_a_put_is_a_json_patch_with_basic_auth_and_x_tz_offset(
    fake_close: FakeClose, client: CloseClient
) -> None:
    deal = fake_close.add_opportunity(value=5000)

    client.update_opportunity(deal["id"], {"confidence": 50}, tz_offset_hours=-2.5)

    (put,) = fake_close.requests_matching("PUT", "opportunity/")
    assert put.path == f"opportunity/{deal['id']}/"
    assert put.json == {"confidence": 50}  # only the fields that change: "every PUT is a patch"
    assert put.headers["content-type"] == "application/json"
    assert put.headers["x-tz-offset"] == "-2.5"  # the Timezone Offsets page's own NDT example
    scheme, _, encoded = put.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == (
        "Basic",
        f"{FakeClose.DEFAULT_API_KEY}:",
    )


def test_reads_carry_no_body_and_no_tz_offset(fake_close: FakeClose, client: CloseClient) -> None:
    deal = fake_close.add_opportunity(value=5000)

    client.get_opportunity(deal["id"])

    (get,) = fake_close.requests_matching("GET", "opportunity/")
    assert get.json is None
    assert "x-tz-offset" not in get.headers
    assert "content-type" not in get.headers
    assert get.headers["authorization"].startswith("Basic ")


def test_a_multi_value_field_is_written_with_add_and_remove(
    fake_close: FakeClose, client: CloseClient
) -> None:
    segment, regions = (
        fake_close.add_custom_field(name, type="choices", accepts_multiple_values=True, choices=c)
        for name, c in (("Segment", ["SMB", "Enterprise"]), ("Regions", ["EU", "US"]))
    )
    seeded = {f"custom.{segment}": ["SMB"], f"custom.{regions}": ["EU", "US"]}
    deal = fake_close.add_opportunity(value=2_000_000, **seeded)
    event = fake_close.user_update(deal["id"], {"confidence": 10})
    assert event is not None
    plan = make_plan(
        load_rules(TAG_RULES, "tags.yaml"),
        event_from_dict(event),
        metadata=fetch_metadata(client),
    )

    client.update_opportunity(deal["id"], plan.update, tz_offset_hours=plan.tz_offset_hours)

    (put,) = fake_close.requests_matching("PUT", "opportunity/")
    # The Opportunities page: `"custom.FIELD_ID.add": value` adds one value of a list
    # (`.remove` takes one out); the key is the field's id, never its name.
    assert put.json == {f"custom.{segment}.add": "Enterprise", f"custom.{regions}.remove": "EU"}
    after = fake_close.opportunity(deal["id"])
    assert (after[f"custom.{segment}"], after[f"custom.{regions}"]) == (
        ["SMB", "Enterprise"],
        ["US"],
    )


def test_statuses_are_paged_with_skip_and_limit(fake_close: FakeClose, client: CloseClient) -> None:
    client.list_opportunity_statuses()

    (get,) = fake_close.requests_matching("GET", "status/opportunity/")
    assert get.query == {"_skip": "0", "_limit": "100"}


def test_the_event_log_repeats_its_filters_with_the_cursor_but_not_date_updated(
    fake_close: FakeClose, client: CloseClient
) -> None:
    for value in range(EVENT_LIMIT_MAX + 1):  # one more than a page
        fake_close.user_create({"value": value})
    since = fake_close.now - timedelta(minutes=5)

    events = list(iter_events(client, since=since, action="created"))

    first, second = fake_close.requests_matching("GET", "event/")
    assert len(events) == EVENT_LIMIT_MAX + 1
    assert first.query["object_type"] == "opportunity" == second.query["object_type"]
    assert first.query["action"] == "created" == second.query["action"]
    assert int(first.query["_limit"]) <= EVENT_LIMIT_MAX
    # ISO 8601 (the Events page); without an offset it is UTC, as Close's event times are.
    sent = datetime.fromisoformat(first.query["date_updated__gte"])
    assert (sent if sent.tzinfo else sent.replace(tzinfo=UTC)) == since.astimezone(UTC)
    assert "_cursor" not in first.query and second.query["_cursor"]
    assert not any(name.startswith("date_updated") for name in second.query)


def test_a_sweep_asks_only_for_documented_parameters() -> None:
    filters = {"status_type": "won", "date_updated__lt": "2026-01-01"}
    cursor = Cursor("2026-06-19T11:04:54+00:00", tuple(f"oppo_{i}" for i in range(120)))

    params = page_params(filters, cursor=cursor, limit=200, fields="id,date_created,status_type")

    assert set(params) <= OPPORTUNITY_LIST_PARAMS
    assert params["_order_by"].removeprefix("-") in ORDER_BY_ALLOWED
    assert {"_limit", "_skip", "_fields"} <= set(params)
