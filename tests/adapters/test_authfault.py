"""KeyGate against a real Redis and the fake Close: which refusals blame the key, what is
shared in Redis (never the key), and who probes when."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from fakeclose import FakeClose
from service.adapters.authfault import (
    AUTH_FAULT_KEY,
    AUTH_FAULT_TTL_SEC,
    PROBE_CAP_SEC,
    PROBE_FIRST_SEC,
    PROBE_KEY,
    KeyGate,
    read_refusal,
)
from service.adapters.close import CloseClient
from service.config.errors import CloseClientError
from tests.adapters.conftest import API_KEY, API_KEY_ID


def refusal_of(client: CloseClient, path: str = "opportunity/oppo_1/") -> CloseClientError:
    with pytest.raises(CloseClientError) as caught:
        client.request_json("GET", path)
    return caught.value


@pytest.mark.allow_error_logs  # close_key_refused is an ERROR line by design
def test_a_401_is_shared_without_the_key_and_expires(
    redis_client: redis.Redis, make_client: Callable[..., CloseClient]
) -> None:
    client = make_client(api_key="sk-dealkeeper-wrong-0a7c")
    gate = KeyGate(redis_client, client, api_key="sk-dealkeeper-wrong-0a7c")
    refused = gate.judge(refusal_of(client))
    assert refused is not None and refused.status == 401
    stored = redis_client.hgetall(AUTH_FAULT_KEY)
    assert not any(b"sk-dealkeeper-wrong" in v for v in stored.values())
    assert 0 < redis_client.ttl(AUTH_FAULT_KEY) <= AUTH_FAULT_TTL_SEC
    found = read_refusal(redis_client)
    assert found is not None and found.status == 401 and "401 Unauthorized" in found.reason
    assert gate.refused()


def test_a_403_while_me_answers_is_the_events_own(
    redis_client: redis.Redis, fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    client = make_client()
    fake_close.fail_next(1, status=403, method="GET", path_prefix="opportunity/")
    gate = KeyGate(redis_client, client, api_key=API_KEY)
    error = refusal_of(client)
    assert gate.judge(error) is None
    assert read_refusal(redis_client) is None
    asked = len(fake_close.requests_matching(method="GET", path_prefix="me/"))
    assert gate.judge(error) is None  # the worker judging the job's error again
    assert asked == len(fake_close.requests_matching(method="GET", path_prefix="me/")) == 1


@pytest.mark.allow_error_logs
def test_a_403_that_me_confirms_blames_the_key(
    redis_client: redis.Redis, fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    """A suspended organization: Close refuses every call, /me/ included."""
    client = make_client()
    fake_close.fail_next(2, status=403, method="GET", body={"error": "Organization suspended"})
    gate = KeyGate(redis_client, client, api_key=API_KEY)
    refused = gate.judge(refusal_of(client))
    assert refused is not None and refused.status == 403
    assert "Organization suspended" in str(refused)


@pytest.mark.allow_error_logs
def test_a_worker_with_another_key_probes_at_once_and_clears_the_refusal(
    redis_client: redis.Redis, fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    old = make_client(api_key="sk-dealkeeper-old-3e9d")
    KeyGate(redis_client, old, api_key="sk-dealkeeper-old-3e9d").judge(refusal_of(old))
    redis_client.set(PROBE_KEY, "1", px=60_000)  # the old key's paced probe is not due
    assert KeyGate(redis_client, old, api_key="sk-dealkeeper-old-3e9d").refused()
    fresh = KeyGate(redis_client, make_client(), api_key=API_KEY)
    assert not fresh.refused()
    assert read_refusal(redis_client) is None


@pytest.mark.allow_error_logs
def test_the_key_fixed_at_close_is_noticed_by_the_next_due_probe(
    redis_client: redis.Redis, fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    fake_close.set_api_keys({})
    gate = KeyGate(redis_client, make_client(), api_key=API_KEY)
    assert gate.judge(refusal_of(make_client())) is not None
    assert gate.refused()  # probed (the first probe is due at once): still refused
    redis_client.delete(PROBE_KEY)  # the backoff's pause has passed
    fake_close.set_api_keys({API_KEY: API_KEY_ID})
    assert not gate.refused()
    assert read_refusal(redis_client) is None


@pytest.mark.allow_error_logs
def test_probes_of_a_refused_key_back_off_to_a_cap_shared_by_every_worker(
    redis_client: redis.Redis, fake_close: FakeClose, make_client: Callable[..., CloseClient]
) -> None:
    """Each failed probe doubles the pause before the next (1, 2, 4, 8 s) up to 10 s, kept
    as the probe key's expiry, so a key fixed at Close is seen within 10 s while a refused
    one costs a GET every 10 s at most; while a pause lasts no worker asks /me/."""
    fake_close.set_api_keys({})
    gate = KeyGate(redis_client, make_client(), api_key=API_KEY)
    other_worker = KeyGate(redis_client, make_client(), api_key=API_KEY)
    assert gate.judge(refusal_of(make_client())) is not None

    def probes() -> int:
        return len(fake_close.requests_matching(method="GET", path_prefix="me/"))

    pauses_ms = []
    for _ in range(7):
        redis_client.delete(PROBE_KEY)  # the pause before this probe has passed
        asked = probes()
        assert gate.refused()
        pauses_ms.append(redis_client.pttl(PROBE_KEY))
        assert other_worker.refused() and gate.refused()  # within the pause: not asked
        assert probes() == asked + 1

    expected_ms = [min(PROBE_CAP_SEC, PROBE_FIRST_SEC * 2**n) * 1000 for n in range(7)]
    assert [1000, 2000, 4000, 8000, 10_000, 10_000, 10_000] == expected_ms
    # pttl counts down from the pause just set: to the nearest second, it is that pause.
    assert expected_ms == [round(p, -3) for p in pauses_ms]
