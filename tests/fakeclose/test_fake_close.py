"""FakeClose answers opportunity writes and reads as Close does (close-api-notes.md 8-11, 13)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fakeclose import FakeClose, MissingObjectError, PatchError
from fakeclose.aged import seed_aged
from tests.fakeclose.conftest import Api


def _path(oppo: dict[str, Any]) -> str:
    return f"opportunity/{oppo['id']}/"


def test_fake_add_opportunity_fills_closes_defaults(fake: FakeClose) -> None:
    """A seeded opportunity sits in the default pipeline's Active status with empty values."""
    oppo = fake.add_opportunity()
    keys = ("status_label", "status_type", "pipeline_id", "confidence", "value", "value_period")
    expected = ("Active", "active", fake.default_pipeline_id, 0, None, "one_time")
    assert (expected, None, []) == (
        tuple(oppo[k] for k in keys),
        oppo["date_won"],
        [k for k in oppo if k.startswith("custom.")],
    )


def test_fake_put_is_a_patch(fake: FakeClose, api: Api) -> None:
    """Only the keys sent change, with the stamps and the values Close derives from them."""
    oppo = fake.add_opportunity(value=5000, note="keep me")
    answer = api.put(_path(oppo), {"confidence": 40}).json()
    changed = sorted(k for k in answer if answer[k] != oppo.get(k))
    expected = ["annualized_expected_value", "confidence", "date_updated", "expected_value"]
    expected += ["updated_by", "updated_by_name"]
    assert (expected, 2000, answer) == (
        changed,
        answer["expected_value"],
        fake.opportunity(oppo["id"]),
    )


def test_fake_put_status_id_sets_label_type_and_pipeline(fake: FakeClose, api: Api) -> None:
    """status_id brings its label, type, pipeline id and pipeline name along."""
    pipeline = fake.add_pipeline("Renewals", statuses=[("Open", "active"), ("Renewed", "won")])
    status = fake.status_id("Open", pipeline_id=pipeline)
    answer = api.put(_path(fake.add_opportunity()), {"status_id": status}).json()
    keys = ("status_id", "status_label", "status_type", "pipeline_id", "pipeline_name")
    assert (status, "Open", "active", pipeline, "Renewals") == tuple(answer[k] for k in keys)


def test_fake_put_deprecated_status_label_resolves_in_the_opportunitys_pipeline(
    fake: FakeClose, api: Api
) -> None:
    """`status: Won` picks the Won of the opportunity's own pipeline, not the first Won."""
    pipeline = fake.add_pipeline("Renewals")
    oppo = fake.add_opportunity(status_id=fake.status_id("Active", pipeline_id=pipeline))
    answer = api.put(_path(oppo), {"status": "Won"}).json()
    assert fake.status_id("Won", pipeline_id=pipeline) == answer["status_id"]


def test_fake_put_pipeline_id_alone_moves_to_its_first_status(fake: FakeClose, api: Api) -> None:
    """pipeline_id without status_id takes the pipeline's first status."""
    pipeline = fake.add_pipeline("Renewals", statuses=[("Open", "active")])
    answer = api.put(_path(fake.add_opportunity()), {"pipeline_id": pipeline}).json()
    assert fake.status_id("Open", pipeline_id=pipeline) == answer["status_id"]


def test_fake_put_user_id_of_an_added_rep_names_the_owner(fake: FakeClose, api: Api) -> None:
    """A rep added to the organization may own deals; Close names the owner in user_name."""
    rep = fake.add_user("Ana", "Silva")
    answer = api.put(_path(fake.add_opportunity()), {"user_id": rep}).json()
    assert (rep, "Ana Silva") == (answer["user_id"], answer["user_name"])


def test_fake_seed_aged_spreads_deals_over_reps_and_pipelines_by_status_type(
    fake: FakeClose,
) -> None:
    """Each rep gets deals in each pipeline; a deal keeps its type in a pipeline whose
    statuses are named otherwise."""
    reps = [fake.add_user("Ana", "Silva"), fake.add_user("Ben", "Okafor")]
    renewals = fake.add_pipeline(
        "Renewals", statuses=[("Up for renewal", "active"), ("Won", "won"), ("Lost", "lost")]
    )
    pipelines = [fake.default_pipeline_id, renewals]
    deals = [
        fake.opportunity(d)
        for d in seed_aged(fake, count=40, now=datetime.now(UTC), owners=reps, pipelines=pipelines)
    ]
    pairs = {(d["user_id"], d["pipeline_id"]) for d in deals}
    labels = {d["status_label"] for d in deals if d["pipeline_id"] == renewals}
    assert ({(r, p) for r in reps for p in pipelines}, {"Up for renewal", "Won", "Lost"}) == (
        pairs,
        labels,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status_id": "stat_nope"}, "status_id"),
        ({"status": "Nope"}, "status"),
        ({"pipeline_id": "pipe_nope"}, "pipeline_id"),
    ],
)
def test_fake_put_unknown_status_or_pipeline_is_a_field_error(
    fake: FakeClose, api: Api, body: dict[str, Any], field: str
) -> None:
    """Unknown ids and labels answer 400 with a field error for that key."""
    response = api.put(_path(fake.add_opportunity()), body)
    assert (400, [field]) == (response.status_code, list(response.json()["field-errors"]))


def test_fake_put_status_of_another_pipeline_with_pipeline_id_is_a_field_error(
    fake: FakeClose, api: Api
) -> None:
    """status_id must belong to the pipeline_id sent with it."""
    other = fake.add_pipeline("Renewals")
    body = {"pipeline_id": other, "status_id": fake.status_id("Won")}
    response = api.put(_path(fake.add_opportunity()), body)
    assert (400, ["status_id"]) == (response.status_code, list(response.json()["field-errors"]))


@pytest.mark.parametrize(
    ("now", "tz_offset", "expected"),
    [
        (datetime(2026, 11, 28, 3, 30, tzinfo=UTC), None, "2026-11-28"),
        (datetime(2026, 11, 28, 3, 30, tzinfo=UTC), "-5", "2026-11-27"),
        (datetime(2026, 11, 28, 5, 0, tzinfo=UTC), "-5", "2026-11-28"),
        (datetime(2026, 11, 27, 23, 59, tzinfo=UTC), None, "2026-11-27"),
        (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), "5.5", "2026-11-28"),
        (datetime(2026, 11, 28, 2, 0, tzinfo=UTC), "-2.5", "2026-11-27"),
    ],
)
def test_fake_move_to_won_fills_date_won_with_today_at_the_tz_offset(
    fake: FakeClose, api: Api, now: datetime, tz_offset: str | None, expected: str
) -> None:
    """Around midnight, "today" is the date at x-tz-offset, or in UTC without the header."""
    fake.now = now
    answer = api.put(
        _path(fake.add_opportunity()), {"status_id": fake.status_id("Won")}, tz_offset=tz_offset
    )
    assert expected == answer.json()["date_won"]


def test_fake_move_to_won_keeps_a_date_won_already_set(fake: FakeClose, api: Api) -> None:
    """date_won is only filled in when it is empty."""
    oppo = fake.add_opportunity(date_won="2026-01-02")
    answer = api.put(_path(oppo), {"status_id": fake.status_id("Won")}).json()
    assert "2026-01-02" == answer["date_won"]


def test_fake_move_to_won_uses_a_date_won_sent_with_it(fake: FakeClose, api: Api) -> None:
    """A date_won in the request wins over Close's "today", even null."""
    won = fake.status_id("Won")
    sent = api.put(_path(fake.add_opportunity()), {"status_id": won, "date_won": "2026-03-04"})
    cleared = api.put(_path(fake.add_opportunity()), {"status_id": won, "date_won": None})
    assert ("2026-03-04", None) == (sent.json()["date_won"], cleared.json()["date_won"])


def test_fake_move_away_from_won_keeps_date_won(fake: FakeClose, api: Api) -> None:
    """Leaving won (to active or lost) does not clear date_won."""
    fake.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    oppo = fake.add_opportunity()
    api.put(_path(oppo), {"status_id": fake.status_id("Won")})
    answer = api.put(_path(oppo), {"status_id": fake.status_id("Lost")}).json()
    assert ("lost", "2026-11-28") == (answer["status_type"], answer["date_won"])


def test_fake_custom_field_is_set_and_unset_with_null(fake: FakeClose, api: Api) -> None:
    """`custom.cf_X: value` sets the flat key; `null` removes it."""
    field = fake.add_custom_field("Source")
    oppo = fake.add_opportunity()
    was_set = api.put(_path(oppo), {f"custom.{field}": "web"}).json()
    unset = api.put(_path(oppo), {f"custom.{field}": None}).json()
    assert ("web", False) == (was_set[f"custom.{field}"], f"custom.{field}" in unset)


def test_fake_multi_value_field_adds_and_removes_single_values(fake: FakeClose, api: Api) -> None:
    """.add appends once, .remove takes out; an emptied list reads back as unset."""
    field = fake.add_custom_field(
        "Tags", type="choices", accepts_multiple_values=True, choices=["A", "B"]
    )
    oppo, key = fake.add_opportunity(), f"custom.{field}"
    seen = []
    for body in (
        {key + ".add": "A"},
        {key + ".add": "B"},
        {key + ".add": "A"},
        {key + ".remove": "A"},
    ):
        seen.append(api.put(_path(oppo), body).json()[key])
    emptied = api.put(_path(oppo), {key + ".remove": "B"}).json()
    assert ([["A"], ["A", "B"], ["A", "B"], ["B"]], False) == (seen, key in emptied)


def test_fake_multi_value_field_set_replaces_the_whole_list(fake: FakeClose, api: Api) -> None:
    """Sending the key itself replaces every value."""
    field = fake.add_custom_field(
        "Tags", type="choices", accepts_multiple_values=True, choices=["A", "B"]
    )
    oppo = fake.add_opportunity(**{f"custom.{field}": ["A"]})
    assert ["B"] == api.put(_path(oppo), {f"custom.{field}": ["B"]}).json()[f"custom.{field}"]


def test_fake_custom_field_by_name_is_accepted(fake: FakeClose, api: Api) -> None:
    """The deprecated `custom.<Field Name>` form writes the same flat `custom.cf_X` key."""
    field = fake.add_custom_field("Lead Source")
    answer = api.put(_path(fake.add_opportunity()), {"custom.Lead Source": "referral"}).json()
    assert "referral" == answer[f"custom.{field}"]


@pytest.mark.parametrize(
    ("field_kwargs", "suffix", "value"),
    [
        ({"type": "text"}, ".add", "x"),
        ({"type": "choices", "choices": ["A"]}, "", "Z"),
        ({"type": "choices", "choices": ["A"], "accepts_multiple_values": True}, ".add", "Z"),
        ({"type": "number"}, "", "ten"),
        ({"type": "date"}, "", "28/11/2026"),
        ({"type": "text"}, "", ["a", "b"]),
    ],
)
def test_fake_bad_custom_values_are_field_errors(
    fake: FakeClose, api: Api, field_kwargs: dict[str, Any], suffix: str, value: Any
) -> None:
    """.add on single-value fields, values outside choices and wrong types answer 400."""
    key = f"custom.{fake.add_custom_field('F', **field_kwargs)}{suffix}"
    response = api.put(_path(fake.add_opportunity()), {key: value})
    assert (400, [key]) == (response.status_code, list(response.json()["field-errors"]))


def test_fake_unknown_custom_field_is_a_field_error(fake: FakeClose, api: Api) -> None:
    """A custom key naming no field answers 400 rather than being dropped."""
    response = api.put(_path(fake.add_opportunity()), {"custom.cf_nope": 1})
    expected = {"errors": [], "field-errors": {"custom.cf_nope": "Unknown custom field."}}
    assert (400, expected) == (response.status_code, response.json())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("confidence", 101),
        ("confidence", "50"),
        ("confidence", True),
        ("value", "100"),
        ("value", 1.5),
        ("date_won", "2026-13-01"),
        ("date_won", "2026-11-28T00:00:00"),
        ("value_period", "weekly"),
        ("user_id", "user_nobody"),
    ],
)
def test_fake_bad_values_are_field_errors(fake: FakeClose, api: Api, key: str, value: Any) -> None:
    """Types and ranges are checked; the opportunity is left as it was."""
    oppo = fake.add_opportunity()
    response = api.put(_path(oppo), {key: value})
    assert (400, [key], oppo) == (
        response.status_code,
        list(response.json()["field-errors"]),
        fake.opportunity(oppo["id"]),
    )


def test_fake_reports_every_bad_field_at_once(fake: FakeClose, api: Api) -> None:
    """All field errors come in one answer."""
    body = {"confidence": -1, "value": "x", "custom.cf_nope": 1}
    response = api.put(_path(fake.add_opportunity()), body)
    assert ["confidence", "custom.cf_nope", "value"] == sorted(response.json()["field-errors"])


def test_fake_read_only_and_unknown_keys_are_ignored(fake: FakeClose, api: Api) -> None:
    """status_label, date_created, lead_name and unknown keys change nothing and emit nothing."""
    oppo = fake.add_opportunity()
    body = {"status_label": "Won", "date_created": "2000-01-01", "lead_name": "X", "colour": "red"}
    response = api.put(_path(oppo), body)
    assert (200, oppo, []) == (response.status_code, response.json(), fake.events)


def test_fake_date_lost_is_only_in_answers_a_put_of_it_is_ignored(
    fake: FakeClose, api: Api
) -> None:
    """date_lost is answered (null) but no PUT Close documents takes it: 200, unchanged."""
    oppo = fake.add_opportunity()
    response = api.put(_path(oppo), {"date_lost": "2026-11-28T03:30:00+00:00"})
    assert (200, None, []) == (response.status_code, response.json()["date_lost"], fake.events)


def test_fake_ignore_writes_to_drops_those_keys_of_api_writes_only(
    fake: FakeClose, api: Api
) -> None:
    """Ignored fields (a custom field's .add too) are answered 200 untaken beside the others
    taken; a person's edit in the UI still takes them; an empty set takes them again."""
    tags = fake.add_custom_field(
        "Tags", type="choices", accepts_multiple_values=True, choices=["A", "B"]
    )
    oppo = fake.add_opportunity(confidence=10)
    fake.ignore_writes_to({"confidence", f"custom.{tags}"})
    body = {"confidence": 90, f"custom.{tags}.add": "A", "value": 500}
    answer = api.put(_path(oppo), body).json()
    by_person = fake.user_update(oppo["id"], {"confidence": 20})
    fake.ignore_writes_to(())
    again = api.put(_path(oppo), {"confidence": 30}).json()
    assert ((10, None, 500), ["date_updated", "value"], 20, 30) == (
        (answer["confidence"], answer.get(f"custom.{tags}"), answer["value"]),
        fake.events[0]["changed_fields"],
        by_person and by_person["data"]["confidence"],
        again["confidence"],
    )


def test_fake_put_that_changes_nothing_answers_200_without_an_event(
    fake: FakeClose, api: Api
) -> None:
    """Sending the values already held is a no-op: 200, same date_updated, no event."""
    oppo = fake.add_opportunity(confidence=30)
    response = api.put(_path(oppo), {"confidence": 30})
    assert (200, oppo["date_updated"], []) == (
        response.status_code,
        response.json()["date_updated"],
        fake.events,
    )


def test_fake_missing_opportunity_is_404_with_closes_message(api: Api) -> None:
    """GET and PUT of an unknown id answer Close's 404."""
    expected = {"error": "Empty query: Opportunity matching query does not exist."}
    answers = [
        api.get("opportunity/oppo_nope/"),
        api.put("opportunity/oppo_nope/", {"confidence": 1}),
    ]
    assert [(404, expected)] * 2 == [(r.status_code, r.json()) for r in answers]


def test_fake_post_creates_in_the_default_status(fake: FakeClose, api: Api) -> None:
    """POST opportunity/ answers the new opportunity, owned by the key's user."""
    answer = api.request("POST", "opportunity/", json={"value": 100, "lead_id": "lead_1"}).json()
    assert ("Active", "lead_1", "user_dealkeeper", answer) == (
        answer["status_label"],
        answer["lead_id"],
        answer["created_by"],
        fake.opportunity(answer["id"]),
    )


def test_fake_delete_answers_empty_and_forgets(fake: FakeClose, api: Api) -> None:
    """DELETE answers {} with 200, and the opportunity is gone."""
    oppo = fake.add_opportunity()
    response = api.request("DELETE", _path(oppo))
    with pytest.raises(MissingObjectError):
        fake.opportunity(oppo["id"])
    assert (200, {}) == (response.status_code, response.json())


def test_fake_user_update_rejects_bad_values_like_the_api(fake: FakeClose) -> None:
    """A person's edit goes through the same checks; the error carries the field errors."""
    with pytest.raises(PatchError) as caught:
        fake.user_update(fake.add_opportunity()["id"], {"confidence": 500})
    assert ["confidence"] == list(caught.value.field_errors)


def test_fake_lists_opportunities_with_filters_order_and_paging(fake: FakeClose, api: Api) -> None:
    """Filters (also __in and date ranges), _order_by, _skip/_limit and _fields combine."""
    won, lost = fake.status_id("Won"), fake.status_id("Lost")
    fake.add_opportunity(value=1, status_id=won, date_won="2026-01-10")
    big = fake.add_opportunity(value=3, status_id=won, date_won="2026-02-10")
    mid = fake.add_opportunity(value=2, status_id=lost)
    fake.add_opportunity(value=9, value_period="monthly")
    page = api.get(
        "opportunity/", status_type__in="won,lost", _order_by="-value", _limit=2, _fields="id,value"
    ).json()
    dated = api.get("opportunity/", date_won__gte="2026-02-01").json()["data"]
    expected = ([{"id": big["id"], "value": 3}, {"id": mid["id"], "value": 2}], True, 3)
    assert (expected, [big["id"]]) == (
        (page["data"], page["has_more"], page["total_results"]),
        [o["id"] for o in dated],
    )


def test_fake_list_limit_over_200_is_a_400(api: Api) -> None:
    """Paging past the endpoint's maximum is refused, as Close does."""
    response = api.get("opportunity/", _limit=201)
    assert (400, "_limit must be between 0 and 200, got 201") == (
        response.status_code,
        response.json()["error"],
    )


def test_fake_metadata_endpoints_describe_the_organization(fake: FakeClose, api: Api) -> None:
    """Statuses carry `type`; pipelines list statuses in order; the schema lists fields."""
    field = fake.add_custom_field("Segment", type="choices", choices=["A"])
    statuses = api.get("status/opportunity/").json()
    pipeline = api.get("pipeline/").json()["data"][0]
    schema = api.get("custom_field_schema/opportunity/").json()
    assert (
        [("Active", "active"), ("Won", "won"), ("Lost", "lost")],
        False,
        ["Active", "Won", "Lost"],
        [(field, "Segment", "choices", ["A"], False)],
    ) == (
        [(s["label"], s["type"]) for s in statuses["data"]],
        statuses["has_more"],
        [s["label"] for s in pipeline["statuses"]],
        [
            (f["id"], f["name"], f["type"], f["choices"], f["accepts_multiple_values"])
            for f in schema["fields"]
        ],
    )


def test_fake_list_page_cap_serves_fewer_than_asked_and_has_more_tells_the_end(
    fake: FakeClose, api: Api
) -> None:
    """Capped at 40 a page, a list asking 200 gets 40 with has_more true until the last
    page, and paging by what was served reaches every deal once."""
    ids = {fake.add_opportunity()["id"] for _ in range(90)}
    fake.set_opportunity_listing(page_cap=40)
    pages = [api.get("opportunity/", _limit=200, _skip=skip).json() for skip in (0, 40, 80)]

    assert ([40, 40, 10], [True, True, False], 90) == (
        [len(p["data"]) for p in pages],
        [p["has_more"] for p in pages],
        pages[0]["total_results"],
    )
    assert ids == {o["id"] for p in pages for o in p["data"]}


def test_fake_list_without_custom_by_fields_lists_deals_without_custom_fields(
    fake: FakeClose, api: Api
) -> None:
    """With custom fields not reachable through `_fields`, both `custom.cf_X` and `custom`
    name nothing, so the listed deals come without their custom fields; a list without
    `_fields` still brings them whole."""
    field = fake.add_custom_field("Source")
    fake.add_opportunity(**{f"custom.{field}": "Web"})
    fake.set_opportunity_listing(custom_by_fields=False)
    one = api.get("opportunity/", _fields=f"id,custom.{field}").json()["data"][0]
    every = api.get("opportunity/", _fields="id,custom").json()["data"][0]
    whole = api.get("opportunity/").json()["data"][0]

    assert ([], [], "Web") == (
        [k for k in one if k.startswith("custom.")],
        [k for k in every if k.startswith("custom.")],
        whole[f"custom.{field}"],
    )


def test_fake_list_custom_by_fields_by_default(fake: FakeClose, api: Api) -> None:
    """By default `_fields` may name one custom field, or all of them with `custom`."""
    source, segment = fake.add_custom_field("Source"), fake.add_custom_field("Segment")
    fake.add_opportunity(**{f"custom.{source}": "Web", f"custom.{segment}": "SMB"})
    one = api.get("opportunity/", _fields=f"id,custom.{source}").json()["data"][0]
    every = api.get("opportunity/", _fields="id,custom").json()["data"][0]

    assert ([f"custom.{source}"], {f"custom.{source}", f"custom.{segment}"}) == (
        [k for k in one if k.startswith("custom.")],
        {k for k in every if k.startswith("custom.")},
    )
