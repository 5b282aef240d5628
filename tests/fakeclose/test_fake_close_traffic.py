"""FakeClose's edge: auth, the request record, rate limits, injected faults and delays, the CLI."""

from __future__ import annotations

import base64
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from email.utils import parsedate_to_datetime

import pytest
import requests

from fakeclose import FakeClose
from service.core.retry import RateLimitInfo, parse_rate_limit
from tests.fakeclose.conftest import Api

# Generous: the fake starts a Python process, which takes seconds on a busy two-core machine.
DEADLINE_SEC = 30.0
BASIC_AUTH = "Basic " + base64.b64encode(f"{FakeClose.DEFAULT_API_KEY}:".encode()).decode()


@pytest.mark.parametrize(
    "auth",
    [None, ("wrong-key", ""), (FakeClose.DEFAULT_API_KEY, "a-password")],
)
def test_fake_refuses_requests_without_a_known_key_and_empty_password(
    fake: FakeClose, auth: tuple[str, str] | None
) -> None:
    """Close's Basic auth is the key as user and an empty password; anything else is 401."""
    response = requests.get(fake.url + "me/", auth=auth, timeout=5)
    assert (401, {"error": "Unauthorized"}) == (response.status_code, response.json())


def test_fake_records_every_request(fake: FakeClose, api: Api) -> None:
    """Method, path relative to /api/v1/, query, JSON body and lower-cased headers are kept."""
    oppo = fake.add_opportunity()
    api.get("opportunity/", _limit="5")
    api.put(f"opportunity/{oppo['id']}/", {"confidence": 5}, tz_offset="-5")
    get, put = fake.requests
    assert (
        ("GET", "opportunity/", {"_limit": "5"}, None),
        ("PUT", f"opportunity/{oppo['id']}/", {}, {"confidence": 5}, "-5"),
        [put],
    ) == (
        (get.method, get.path, get.query, get.json),
        (put.method, put.path, put.query, put.json, put.headers["x-tz-offset"]),
        fake.requests_matching("PUT", "opportunity/"),
    )


def test_fake_clear_requests_forgets_the_record(fake: FakeClose, api: Api) -> None:
    """After clear_requests only later requests are listed."""
    api.get("me/")
    fake.clear_requests()
    api.get("pipeline/")
    assert ["pipeline/"] == [r.path for r in fake.requests]


def test_fake_every_response_carries_a_ratelimit_header(fake: FakeClose, api: Api) -> None:
    """`ratelimit: limit=N, remaining=M, reset=R` counts down within the window."""
    fake.set_rate_limit(10, window_sec=60.0, group="read")
    infos = [parse_rate_limit(api.get("me/").headers) for _ in range(3)]
    assert [(10, 9), (10, 8), (10, 7)] == [(i.limit, i.remaining) if i else None for i in infos]


def test_fake_answers_429_past_the_write_limit(fake: FakeClose, api: Api) -> None:
    """Over the limit: 429 with ratelimit (remaining 0), whole-second retry-after, rate_reset."""
    oppo = fake.add_opportunity()
    fake.set_rate_limit(2, window_sec=30.0, group="write")
    answers = [api.put(f"opportunity/{oppo['id']}/", {"confidence": n}) for n in (1, 2, 3)]
    refused = answers[-1]
    info, body = parse_rate_limit(refused.headers), refused.json()
    assert ([200, 200, 429], 0, "30", True, True, 200) == (
        [a.status_code for a in answers],
        info.remaining if info else None,
        refused.headers["retry-after"],
        29.0 < body["error"]["rate_reset"] <= 30.0,
        body["error"]["message"].startswith("API call count exceeded"),
        api.get("me/").status_code,  # reads are another endpoint group
    )


def test_fake_rate_limits_each_api_key_on_its_own() -> None:
    """One key's spent window does not refuse another key."""
    keys = {"key-a": "api_a", "key-b": "api_b"}
    with FakeClose(api_keys=keys) as two_keys:
        two_keys.set_rate_limit(1, window_sec=60.0, group="read")
        first, second = Api(two_keys, key="key-a"), Api(two_keys, key="key-b")
        statuses = [first.get("me/"), first.get("me/"), second.get("me/")]
        first.session.close()
        second.session.close()
    assert [200, 429, 200] == [r.status_code for r in statuses]


def test_fake_rate_limit_window_opens_again_after_reset(fake: FakeClose, api: Api) -> None:
    """Once the window has passed, requests are served again (on a pinned clock: however
    slow the machine, the window passes only when the test says so)."""
    now = [100.0]
    fake.traffic.rate_limiter._clock = lambda: now[0]
    fake.set_rate_limit(1, window_sec=0.2, group="read")
    refused = [api.get("me/").status_code, api.get("me/").status_code]
    now[0] += 0.2
    assert ([200, 429], 200) == (refused, api.get("me/").status_code)


def test_fake_rate_limit_window_can_be_longer_than_a_second(fake: FakeClose, api: Api) -> None:
    """`limit=2` per 5 s window, as Close states a count per window of unstated length:
    `reset` counts down to the window's end, the third request waits for it (429,
    retry-after rounded up), and the count starts again only once it has passed (on a
    pinned clock)."""
    now = [100.0]
    fake.traffic.rate_limiter._clock = lambda: now[0]
    fake.set_rate_limit(2, window_sec=5.0, group="read")
    first = api.get("me/")
    now[0] = 103.5
    second, refused = api.get("me/"), api.get("me/")
    now[0] = 105.0
    again = api.get("me/")
    seen = [(r.status_code, parse_rate_limit(r.headers)) for r in (first, second, refused, again)]

    assert [
        (200, RateLimitInfo(2, 1, 5.0)),
        (200, RateLimitInfo(2, 0, 1.5)),
        (429, RateLimitInfo(2, 0, 1.5)),
        (200, RateLimitInfo(2, 1, 5.0)),
    ] == seen
    assert "2" == refused.headers["retry-after"]


def test_fake_fail_next_answers_the_injected_status_then_serves(fake: FakeClose, api: Api) -> None:
    """Faults hit only matching requests, `count` times, with their body and headers."""
    fake.fail_next(
        2, status=503, method="GET", path_prefix="me/", body={"error": "down"}, headers={"x-a": "1"}
    )
    other = api.get("pipeline/")
    faulted = [api.get("me/"), api.get("me/")]
    served = api.get("me/")
    assert (200, [(503, {"error": "down"}, "1")] * 2, 200) == (
        other.status_code,
        [(r.status_code, r.json(), r.headers["x-a"]) for r in faulted],
        served.status_code,
    )


def test_fake_fail_after_serving_applies_the_write_and_loses_its_answer(
    fake: FakeClose, api: Api
) -> None:
    """`after_serving`: the request is served (the write lands), then answered with the
    fault's status, as a gateway that times out after Close took the write."""
    tags = fake.add_custom_field(
        "Tags", type="choices", accepts_multiple_values=True, choices=["a"]
    )
    oppo = fake.add_opportunity()
    fake.fail_next(1, status=504, method="PUT", after_serving=True)

    answer = api.put(f"opportunity/{oppo['id']}/", {f"custom.{tags}.add": "a"})

    assert (504, {"error": "Injected fault"}, ["a"]) == (
        answer.status_code,
        answer.json(),
        fake.opportunity(oppo["id"])[f"custom.{tags}"],
    )


def test_fake_delay_after_serving_applies_the_write_before_holding_the_answer(
    fake: FakeClose,
) -> None:
    """`after_serving`: the write lands at once and only its answer is held, so a client's
    read timeout ends a request Close has already taken."""
    oppo = fake.add_opportunity(confidence=10)
    fake.delay_next(1, 5.0, method="PUT", after_serving=True)

    with pytest.raises(requests.ReadTimeout):
        requests.put(
            f"{fake.url}opportunity/{oppo['id']}/",
            json={"confidence": 20},
            auth=(FakeClose.DEFAULT_API_KEY, ""),
            timeout=(5, 0.5),
        )

    assert 20 == fake.opportunity(oppo["id"])["confidence"]


def test_fake_delay_next_holds_the_response(fake: FakeClose, api: Api) -> None:
    """A delayed request is answered no sooner than the delay, then normally."""
    fake.delay_next(1, 0.3, path_prefix="me/")
    started = time.monotonic()
    status = api.get("me/").status_code
    assert (200, True) == (status, time.monotonic() - started >= 0.3)


def test_fake_module_runs_standalone_and_prints_its_url() -> None:
    """`python -m fakeclose` prints the base URL and serves seeded data with the key."""
    command = [
        sys.executable,
        "-m",
        "fakeclose",
        "--port",
        "0",
        "--api-key",
        "demo",
        "--seed",
        "3",
    ]
    env = {
        k: v for k, v in os.environ.items() if k not in ("CLOSE_API_KEY", "CLOSE_WEBHOOK_SECRET")
    }
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        listed = requests.get(url + "opportunity/", auth=("demo", ""), timeout=DEADLINE_SEC).json()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=DEADLINE_SEC)
    assert (True, 3, 0) == (
        re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1/", url) is not None,
        listed["total_results"],
        returncode,
    )


def test_fake_keeps_connections_alive(fake: FakeClose) -> None:
    """Like Close's API, the fake answers HTTP/1.1 and keeps the connection open, so a
    client's pool is used and benchmarks measure the client, not reconnects."""
    host, port = fake.url.split("/")[2].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    answers = []
    for _ in range(2):
        connection.request("GET", "/api/v1/me/", headers={"Authorization": BASIC_AUTH})
        response = connection.getresponse()
        response.read()
        answers.append((response.status, response.version, response.will_close))
    connection.close()

    assert [(200, 11, False), (200, 11, False)] == answers


def test_fake_stop_ends_kept_alive_connections() -> None:
    """A pooled connection does not outlive the fake: after stop() it is refused or reset."""
    fake = FakeClose().start()
    session = requests.Session()
    auth = (FakeClose.DEFAULT_API_KEY, "")
    session.get(fake.url + "me/", auth=auth, timeout=5)
    fake.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(fake.url + "me/", auth=auth, timeout=5)


def test_fake_counts_answers_by_method_and_status(fake: FakeClose, api: Api) -> None:
    """`answers` counts what the fake said, 429s and 401s included."""
    fake.set_rate_limit(1, group="write")
    oppo = fake.add_opportunity()
    api.put(f"opportunity/{oppo['id']}/", {"confidence": 5})
    api.put(f"opportunity/{oppo['id']}/", {"confidence": 6})
    requests.get(fake.url + "me/", timeout=5)

    assert {("PUT", 200): 1, ("PUT", 429): 1, ("GET", 401): 1} == fake.answers


@pytest.mark.parametrize(("admin", "role"), [(True, "admin"), (False, "user")])
def test_fake_me_names_the_membership_role(admin: bool, role: str) -> None:
    """GET me/ lists the user's membership of the organization with its predefined role, as
    Close's example does: `admin` for an admin's key, `user` otherwise."""
    with FakeClose(admin=admin) as fake:
        me = Api(fake).get("me/").json()
    [membership] = me["memberships"]
    assert ("orga_fake", me["id"], role) == (
        membership["organization_id"],
        membership["user_id"],
        membership["role_id"],
    )


@pytest.mark.parametrize("skew_sec", [0.0, 3600.0, -600.0])
def test_fake_date_header_follows_the_skew(fake: FakeClose, api: Api, skew_sec: float) -> None:
    """Every answer's Date header is the real time moved by clock_skew_sec (whole seconds, so
    within a second and a bit, generous for a loaded machine), refused answers too."""
    fake.clock_skew_sec = skew_sec
    before = time.time()
    answers = [api.get("me/"), requests.get(fake.url + "me/", timeout=5)]
    after = time.time()
    for answer in answers:
        moment = parsedate_to_datetime(answer.headers["date"]).timestamp() - skew_sec
        assert before - 2 <= moment <= after + 1


def test_fake_custom_role_in_me_and_at_role(fake: FakeClose, api: Api) -> None:
    """A custom role given to the keys' user is /me/'s role_id and is served at role/<id>/
    with its permissions; an unknown role id is 404."""
    role_id = fake.give_custom_role("Ops", permissions=["export", "manage_organization"])

    [membership] = api.get("me/").json()["memberships"]
    role = api.get(f"role/{role_id}/").json()
    assert (role_id, "Ops", ["export", "manage_organization"]) == (
        membership["role_id"],
        role["name"],
        role["permissions"],
    )
    assert 404 == api.get("role/role_nothere/").status_code
