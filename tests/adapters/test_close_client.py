"""CloseClient against the real FakeClose over HTTP: auth, headers, errors, retries, waits."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

import pytest

from fakeclose import FakeClose
from service.adapters.close import (
    CloseClient,
    DryRunClose,
    close_api_for,
    format_tz_offset,
    opportunity_path,
    path_segment,
    role_path,
)
from service.adapters.eventlog import event_path, get_event
from service.adapters.subscriptions import subscription_path
from service.config.errors import (
    CloseAPIError,
    CloseClientError,
    CloseNotFoundError,
    CloseRateLimitedError,
    CloseServerError,
    CloseUnavailableError,
)
from service.config.settings import Settings
from service.core.retry import RATE_LIMIT_JITTER_SEC
from tests.adapters.conftest import API_KEY, RecordingSleep

JITTER = 0.5 * RATE_LIMIT_JITTER_SEC  # the fixtures fix rand at 0.5


def _retries(caplog: pytest.LogCaptureFixture) -> list[tuple[object, ...]]:
    fields = ("method", "path", "status", "attempt", "wait_sec")
    return [
        (r.levelname, *(r.__dict__[name] for name in fields))
        for r in caplog.records
        if r.getMessage() == "close_request_retried"
    ]


def test_client_update_sends_a_patch_with_tz_offset_basic_auth_and_user_agent(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """The PUT carries the body, x-tz-offset, Basic auth (key, empty password) and our agent."""
    oppo = fake_close.add_opportunity()
    after = client.update_opportunity(oppo["id"], {"confidence": 50}, tz_offset_hours=-5.0)
    [put] = fake_close.requests_matching("PUT")
    basic = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
    expected = (f"opportunity/{oppo['id']}/", {"confidence": 50}, "-5", basic, "dealkeeper/0.1.0")
    headers = put.headers
    actual = (
        put.path,
        put.json,
        headers["x-tz-offset"],
        headers["authorization"],
        headers["user-agent"],
    )
    assert (expected, 50) == (actual, after["confidence"])


def test_client_update_without_tz_offset_sends_no_header(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """With no offset Close computes "today" in UTC, so no header is sent."""
    oppo = fake_close.add_opportunity()
    client.update_opportunity(oppo["id"], {"note": "hi"}, tz_offset_hours=None)
    [put] = fake_close.requests_matching("PUT")
    assert "x-tz-offset" not in put.headers


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (-5.0, "-5"),
        (-4, "-4"),
        (5.5, "5.5"),
        (-2.5, "-2.5"),
        (0.0, "0"),
        (-0.0, "0"),
        (5.75, "5.75"),
    ],
)
def test_format_tz_offset_is_minimal(hours: float, expected: str) -> None:
    """Whole hours lose the decimal point; halves and quarters keep it; -0 is 0."""
    assert expected == format_tz_offset(hours)


def test_format_tz_offset_rejects_impossible_offsets() -> None:
    """An offset of a day or more is a bug upstream, not something to send Close."""
    with pytest.raises(ValueError, match="between -24 and 24"):
        format_tz_offset(30)


@pytest.mark.parametrize("opportunity_id", ["", ".", ".."])
def test_opportunity_path_refuses_ids_that_collapse(opportunity_id: str) -> None:
    """`.` and `..` need no quoting yet would turn `opportunity/<id>/` into another path
    (`..`: the API root), so they are refused rather than sent."""
    with pytest.raises(ValueError, match="cannot be a path segment"):
        opportunity_path(opportunity_id)


def test_opportunity_path_keeps_any_id_inside_its_segment() -> None:
    """Slashes and dots inside an id are quoted, so it cannot climb out of its segment."""
    assert "opportunity/oppo_x%2F..%2Fy/" == opportunity_path("oppo_x/../y")


def test_client_get_me_reads_the_user(client: CloseClient) -> None:
    """GET me/ returns Close's user object."""
    me = client.get_me()
    assert ("user_dealkeeper", "orga_fake") == (me["id"], me["organizations"][0]["id"])


def test_client_400_with_field_errors_is_permanent_and_not_retried(
    fake_close: FakeClose, client: CloseClient, sleeps: RecordingSleep
) -> None:
    """A validation error raises CloseClientError with field_errors after exactly one request."""
    oppo = fake_close.add_opportunity()
    with pytest.raises(CloseClientError) as caught:
        client.update_opportunity(oppo["id"], {"confidence": 500}, tz_offset_hours=None)
    message = (
        f"400 Bad Request for PUT opportunity/{oppo['id']}/: confidence: Must be an integer 0-100."
    )
    field_errors = {"confidence": "Must be an integer 0-100."}
    actual = (str(caught.value), caught.value.field_errors, len(fake_close.requests))
    assert ((message, field_errors, 1), []) == (actual, sleeps.calls)


@pytest.mark.parametrize(
    ("status", "body", "detail"),
    [
        (403, {"error": {"message": "Insufficient permissions"}}, "Insufficient permissions"),
        (402, {"error": "Plan limit reached"}, "Plan limit reached"),
        (409, {"errors": ["Conflict"], "field-errors": {}}, "Conflict"),
    ],
)
def test_client_other_4xx_are_permanent_with_closes_message(
    fake_close: FakeClose,
    client: CloseClient,
    status: int,
    body: dict[str, object],
    detail: str,
) -> None:
    """Close's message comes from `error` (text or object) or `errors`; one request only."""
    fake_close.fail_next(1, status=status, body=body)
    with pytest.raises(CloseClientError) as caught:
        client.get_me()
    assert (status, detail, 1) == (
        caught.value.status,
        caught.value.detail,
        len(fake_close.requests),
    )


def test_client_401_is_permanent_and_not_retried(
    fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    """A wrong key is not retried and the message is Close's."""
    with pytest.raises(CloseClientError) as caught:
        make_client(api_key="wrong-key").get_me()
    assert ("401 Unauthorized for GET me/: Unauthorized", 1) == (
        str(caught.value),
        len(fake_close.requests),
    )


def test_client_404_raises_not_found(fake_close: FakeClose, client: CloseClient) -> None:
    """A missing opportunity raises CloseNotFoundError after one request."""
    with pytest.raises(CloseNotFoundError) as caught:
        client.get_opportunity("oppo_missing")
    expected = "Empty query: Opportunity matching query does not exist."
    assert (404, expected, 1) == (
        caught.value.status,
        caught.value.detail,
        len(fake_close.requests),
    )


def test_client_long_raw_error_text_is_truncated(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """A body that is not Close's error JSON is quoted raw, cut to 300 characters."""
    fake_close.fail_next(1, status=400, body="x" * 1000)
    with pytest.raises(CloseClientError) as caught:
        client.get_me()
    assert (300, "…") == (len(caught.value.detail), caught.value.detail[-1])


def test_client_429_waits_the_decimal_ratelimit_reset_then_succeeds(
    fake_close: FakeClose, client: CloseClient, sleeps: RecordingSleep
) -> None:
    """The decimal `reset` wins over retry-after; the wait is it plus a little jitter."""
    headers = {"ratelimit": "limit=10, remaining=0, reset=0.35", "retry-after": "1"}
    fake_close.fail_next(1, status=429, headers=headers, body={"error": {"rate_reset": 0.35}})
    assert ("user_dealkeeper", [0.35 + JITTER], 2) == (
        client.get_me()["id"],
        sleeps.calls,
        len(fake_close.requests),
    )


def test_client_429_with_only_retry_after_waits_that(
    fake_close: FakeClose, client: CloseClient, sleeps: RecordingSleep
) -> None:
    """Without a ratelimit header, Retry-After (whole seconds) is the wait."""
    fake_close.fail_next(1, status=429, headers={"retry-after": "2"}, body={"error": "Slow down"})
    client.get_me()
    assert [2.0 + JITTER] == sleeps.calls


def test_client_429_longer_than_the_inline_limit_raises_rate_limited(
    fake_close: FakeClose, client: CloseClient, sleeps: RecordingSleep
) -> None:
    """A long wait goes back to the job queue: CloseRateLimitedError, one request, no sleep."""
    fake_close.fail_next(1, status=429, headers={"ratelimit": "limit=10, remaining=0, reset=30.5"})
    with pytest.raises(CloseRateLimitedError) as caught:
        client.get_me()
    assert (30.5, 1, []) == (caught.value.retry_after_sec, len(fake_close.requests), sleeps.calls)


def test_client_429_from_the_fakes_rate_limit_reports_the_window(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """Past the per-key write limit, the fake's real 429 becomes CloseRateLimitedError."""
    oppo = fake_close.add_opportunity()
    fake_close.set_rate_limit(1, window_sec=60.0, group="write")
    client.update_opportunity(oppo["id"], {"confidence": 1}, tz_offset_hours=None)
    with pytest.raises(CloseRateLimitedError) as caught:
        client.update_opportunity(oppo["id"], {"confidence": 2}, tz_offset_hours=None)
    assert (True, 429) == (59.0 < caught.value.retry_after_sec <= 60.0, caught.value.status)


def test_client_503_twice_then_success_retries_with_backoff_and_logs(
    fake_close: FakeClose,
    client: CloseClient,
    sleeps: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two 503s are retried (backoff 0.25 s, 0.5 s) and logged; the third request succeeds."""
    fake_close.fail_next(2, status=503, method="GET")
    client.get_me()
    expected_logs = [
        ("WARNING", "GET", "me/", 503, 1, 0.25),
        ("WARNING", "GET", "me/", 503, 2, 0.5),
    ]
    assert (3, [0.25, 0.5], expected_logs) == (
        len(fake_close.requests),
        sleeps.calls,
        _retries(caplog),
    )


@pytest.mark.parametrize("status", [502, 504])
def test_client_502_and_504_exhausted_raise_server_error(
    fake_close: FakeClose, client: CloseClient, sleeps: RecordingSleep, status: int
) -> None:
    """Gateway errors are retried up to max_attempts, then CloseServerError."""
    fake_close.fail_next(10, status=status)
    with pytest.raises(CloseServerError) as caught:
        client.get_me()
    assert (status, 4, 3) == (caught.value.status, len(fake_close.requests), len(sleeps.calls))


def test_client_500_is_transient_without_an_inline_retry(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """A 500 raises CloseServerError at once: the job queue retries it later."""
    fake_close.fail_next(1, status=500)
    with pytest.raises(CloseServerError):
        client.get_me()
    assert 1 == len(fake_close.requests)


def test_client_read_timeout_is_retried_then_succeeds(
    fake_close: FakeClose,
    make_client: Callable[..., CloseClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request held past the read timeout is retried (status None in the log). The read
    timeout leaves the retry's answer 2 s, however busy the machine."""
    fake_close.delay_next(1, 10.0)
    make_client(read_timeout_sec=2.0).get_me()
    assert (2, [("WARNING", "GET", "me/", None, 1, 0.25)]) == (
        len(fake_close.requests),
        _retries(caplog),
    )


def test_client_timeouts_exhausted_raise_server_error_with_reason_timeout(
    fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    """When every attempt times out the error says so, with no status."""
    fake_close.delay_next(2, 2.0)
    with pytest.raises(CloseServerError) as caught:
        make_client(read_timeout_sec=0.1, max_attempts=2).get_me()
    assert "timeout for GET me/: no response after 2 attempt(s)" == str(caught.value)


def test_client_refused_connection_raises_server_error_with_reason_connection_error(
    make_client: Callable[..., CloseClient], sleeps: RecordingSleep
) -> None:
    """Nothing listening: retried, then CloseServerError(status=None, reason connection error)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}/api/v1/", max_attempts=2)
    with pytest.raises(CloseServerError) as caught:
        client.get_me()
    assert (None, "connection error", 1) == (
        caught.value.status,
        caught.value.reason,
        len(sleeps.calls),
    )


def test_client_never_puts_the_api_key_in_errors_or_logs(
    fake_close: FakeClose,
    make_client: Callable[..., CloseClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Across retries and every error class, no message or log record holds the key."""
    caplog.set_level(logging.DEBUG)
    client = make_client(read_timeout_sec=0.1, max_attempts=2)
    fake_close.fail_next(1, status=503)
    fake_close.fail_next(1, status=400, body={"error": f"bad key {API_KEY}"})
    fake_close.fail_next(1, status=429, headers={"retry-after": "60"})
    fake_close.delay_next(2, 2.0, path_prefix="status/")
    errors: list[CloseAPIError] = []
    for call in (client.get_me, client.get_me, client.list_opportunity_statuses):
        with pytest.raises(CloseAPIError) as caught:
            call()
        errors.append(caught.value)
    texts = [str(e) + repr(e) + repr(e.__dict__) for e in errors] + [repr(client)]
    texts += [repr(record.__dict__) + record.getMessage() for record in caplog.records]
    encoded = base64.b64encode(f"{API_KEY}:".encode()).decode()
    assert [] == [t for t in texts if API_KEY in t or encoded in t]


def test_client_records_the_last_rate_limit_and_response_time(
    make_client: Callable[..., CloseClient],
) -> None:
    """Each response leaves its ratelimit header and the clock's time on the client."""
    client = make_client(clock=lambda: 1234.5)
    client.get_me()
    info = client.last_rate_limit
    assert info is not None
    assert (1000, 999, 1234.5) == (info.limit, info.remaining, client.last_response_at)


def test_client_lists_statuses_across_pages(fake_close: FakeClose, client: CloseClient) -> None:
    """More statuses than one page holds are fetched with _skip/_limit until has_more is false."""
    for number in range(40):
        fake_close.add_pipeline(f"Pipeline {number}")
    statuses = client.list_opportunity_statuses()
    pages = [r.query for r in fake_close.requests_matching("GET", "status/opportunity/")]
    expected_pages = [{"_skip": "0", "_limit": "100"}, {"_skip": "100", "_limit": "100"}]
    assert (123, expected_pages) == (len({s["id"] for s in statuses}), pages)


def test_client_reads_custom_fields_from_the_schema_endpoint(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """The schema endpoint's `fields` are the custom fields."""
    field_id = fake_close.add_custom_field("Segment", type="choices", choices=["A", "B"])
    assert [(field_id, "Segment", ["A", "B"])] == [
        (f["id"], f["name"], f["choices"]) for f in client.get_opportunity_custom_fields()
    ]


def test_client_falls_back_to_custom_field_list_when_the_schema_is_missing(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """A 404 from custom_field_schema/ sends the client to the paginated custom_field/ list."""
    field_id = fake_close.add_custom_field("Source")
    fake_close.fail_next(1, status=404, path_prefix="custom_field_schema/")
    fields = client.get_opportunity_custom_fields()
    paths = [r.path for r in fake_close.requests]
    expected_paths = ["custom_field_schema/opportunity/", "custom_field/opportunity/"]
    assert ([field_id], expected_paths) == ([f["id"] for f in fields], paths)


def test_dry_run_update_logs_the_call_and_sends_nothing(
    fake_close: FakeClose, client: CloseClient, caplog: pytest.LogCaptureFixture
) -> None:
    """close_call_skipped carries method, path, update and offset; no PUT reaches Close."""
    caplog.set_level(logging.INFO, logger="dealkeeper.close")
    oppo = fake_close.add_opportunity()
    result = DryRunClose(reader=client).update_opportunity(
        oppo["id"], {"confidence": 100}, tz_offset_hours=-5.0
    )
    [record] = [r for r in caplog.records if r.getMessage() == "close_call_skipped"]
    logged = tuple(record.__dict__[name] for name in ("method", "path", "update", "tz_offset"))
    expected = ("PUT", f"opportunity/{oppo['id']}/", {"confidence": 100}, "-5")
    assert ({}, expected, []) == (result, logged, fake_close.requests_matching("PUT"))


def test_dry_run_reads_through_its_reader(fake_close: FakeClose, client: CloseClient) -> None:
    """With a key (forced dry run) reads are real."""
    oppo = fake_close.add_opportunity(confidence=40)
    assert 40 == DryRunClose(reader=client).get_opportunity(oppo["id"])["confidence"]


def test_dry_run_without_a_reader_refuses_to_read() -> None:
    """Without a key there is nothing to read from: CloseUnavailableError, not made-up data."""
    with pytest.raises(CloseUnavailableError):
        DryRunClose().get_opportunity("oppo_1")


def test_close_api_for_picks_the_client_the_settings_ask_for() -> None:
    """No key: offline dry run; key + DEALKEEPER_DRY_RUN: dry run over a real reader; key: real."""
    offline = close_api_for(Settings())
    forced = close_api_for(Settings(close_api_key="k", force_dry_run=True))
    real = close_api_for(Settings(close_api_key="k", close_api_url="http://127.0.0.1:9/api/v1/"))
    assert (DryRunClose, DryRunClose, CloseClient) == (type(offline), type(forced), type(real))
    assert isinstance(real, CloseClient)
    real.close()


def _list_edits(fake: FakeClose) -> list[tuple[str, object]]:
    """Method and body of every request, so a repeated `.add`/`.remove` shows."""
    return [(r.method, r.json) for r in fake.requests]


def _tags(fake: FakeClose) -> str:
    return fake.add_custom_field(
        "Tags", type="choices", accepts_multiple_values=True, choices=["Big deal", "Stale"]
    )


@pytest.mark.parametrize(
    "lose_the_answer",
    [
        lambda fake: fake.fail_next(1, status=504, method="PUT", after_serving=True),
        lambda fake: fake.fail_next(1, status=502, method="PUT", after_serving=True),
        lambda fake: fake.delay_next(1, 10.0, method="PUT", after_serving=True),
    ],
    ids=["504", "502", "read-timeout"],
)
def test_client_add_whose_answer_is_lost_is_not_sent_again(
    fake_close: FakeClose,
    make_client: Callable[..., CloseClient],
    lose_the_answer: Callable[[FakeClose], None],
) -> None:
    """Close took the `.add` but its answer was lost: the deal is read again, shows the
    value, and the `.add` is not repeated (Close does not say what a second one does); the
    deal as read is the answer."""
    tags = _tags(fake_close)
    oppo = fake_close.add_opportunity()
    lose_the_answer(fake_close)
    body = {f"custom.{tags}.add": "Big deal"}

    after = make_client(read_timeout_sec=1.0).update_opportunity(
        oppo["id"], body, tz_offset_hours=None
    )

    assert ([("PUT", body), ("GET", None)], ["Big deal"], ["Big deal"]) == (
        _list_edits(fake_close),
        fake_close.opportunity(oppo["id"])[f"custom.{tags}"],
        after[f"custom.{tags}"],
    )


def test_client_remove_whose_answer_is_lost_is_not_sent_again(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """A `.remove` Close took (the value is gone when read again) is not repeated."""
    tags = _tags(fake_close)
    oppo = fake_close.add_opportunity(**{f"custom.{tags}": ["Big deal", "Stale"]})
    fake_close.fail_next(1, status=504, method="PUT", after_serving=True)
    body = {f"custom.{tags}.remove": "Stale"}

    client.update_opportunity(oppo["id"], body, tz_offset_hours=None)

    assert ([("PUT", body), ("GET", None)], ["Big deal"]) == (
        _list_edits(fake_close),
        fake_close.opportunity(oppo["id"])[f"custom.{tags}"],
    )


def test_client_add_not_taken_is_sent_again_with_the_sets_beside_it(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """A 504 before Close took anything: the deal read again lacks the value, so the whole
    body goes again, once."""
    tags = _tags(fake_close)
    oppo = fake_close.add_opportunity(confidence=10)
    fake_close.fail_next(1, status=504, method="PUT")
    body = {f"custom.{tags}.add": "Big deal", "confidence": 90}

    client.update_opportunity(oppo["id"], body, tz_offset_hours=None)

    state = fake_close.opportunity(oppo["id"])
    assert ([("PUT", body), ("GET", None), ("PUT", body)], ["Big deal"], 90) == (
        _list_edits(fake_close),
        state[f"custom.{tags}"],
        state["confidence"],
    )


def test_client_set_whose_answer_is_lost_is_sent_again_as_is(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """Setting fields to values is idempotent: repeated without reading the deal first."""
    oppo = fake_close.add_opportunity(confidence=10)
    fake_close.fail_next(1, status=504, method="PUT", after_serving=True)
    body = {"confidence": 90}

    client.update_opportunity(oppo["id"], body, tz_offset_hours=None)

    assert [("PUT", body), ("PUT", body)] == _list_edits(fake_close)


def test_client_put_found_taken_sends_nothing_again(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """When the deal read again shows the `.add`, Close took the PUT whole: the value set
    beside it is not sent again either (it could undo a change made since)."""
    tags = _tags(fake_close)
    oppo = fake_close.add_opportunity(confidence=10)
    fake_close.fail_next(1, status=504, method="PUT", after_serving=True)
    body = {f"custom.{tags}.add": "Big deal", "confidence": 90}

    after = client.update_opportunity(oppo["id"], body, tz_offset_hours=None)

    assert ([("PUT", body), ("GET", None)], 90) == (_list_edits(fake_close), after["confidence"])


def test_client_keeps_the_date_header_of_the_last_answer(
    fake_close: FakeClose, client: CloseClient
) -> None:
    """The last answer's Date header (Close's clock, for `dealkeeper doctor`) is kept, a
    refused answer's too."""
    fake_close.clock_skew_sec = 7200
    client.get_me()
    kept = client.last_date_header
    fake_close.fail_next(1, status=404, path_prefix="me/")
    with pytest.raises(CloseNotFoundError):
        client.get_me()

    for header in (kept, client.last_date_header):
        assert header is not None
        assert 7190 < parsedate_to_datetime(header).timestamp() - time.time() < 7210


@pytest.mark.parametrize("value", ["", ".", ".."])
def test_path_segment_refuses_what_would_collapse(value: str) -> None:
    """An empty id, `.` and `..` need no quoting yet change the path they sit in."""
    with pytest.raises(ValueError, match="cannot be a path segment"):
        path_segment(value)


@pytest.mark.parametrize(
    "build",
    [opportunity_path, subscription_path, event_path, role_path],
    ids=["opportunity", "subscription", "event", "role"],
)
def test_every_close_url_keeps_its_id_inside_one_segment(build: Callable[[str], str]) -> None:
    """Whatever the id, the path is the collection, one quoted segment, and `/`: the
    opportunity, a subscription, an event of the log (an id typed at --add-case) and a
    role (an id Close's /me/ gives) alike."""
    collection = build("x_1").removesuffix("x_1/")
    for value in ["oppo_x/../y", "../lead_1", "a?b#c", "a%2F..", "x_1"]:
        path = build(value)
        assert path.startswith(collection) and path.endswith("/")
        inner = path[len(collection) : -1]
        assert "/" not in inner and "?" not in inner and "#" not in inner
        assert unquote(inner) == value
    for value in [".", ".."]:
        with pytest.raises(ValueError, match="cannot be a path segment"):
            build(value)


def test_get_event_of_an_id_that_is_no_segment_is_not_found(
    client: CloseClient, fake_close: FakeClose
) -> None:
    """`dealkeeper test --add-case ..` asks Close nothing: no event has that id."""
    with pytest.raises(CloseNotFoundError):
        get_event(client, "..")
    assert [] == fake_close.requests_matching()
