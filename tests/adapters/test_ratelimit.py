"""The shared rate limiter, on a real Redis: one pace and one pause for every process."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from fakeclose import FakeClose
from service.adapters.close import CloseClient, Exchange
from service.adapters.ratelimit import SharedRateLimiter, endpoint_group, pause_for
from service.config.errors import CloseRateLimitedError
from service.core.retry import RateLimitInfo
from tests.adapters.conftest import API_KEY


class Sleeps:
    """A sleep that records what it was asked, and refuses to be asked twice."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        if len(self.asked) > 1:
            raise AssertionError("slept twice")
        time.sleep(seconds)


# Redis's clock counts in whole milliseconds for the pacer.
CLOCK_MS = 0.002


def assert_waited(waited: float, interval: float, *, since: float) -> None:
    """`waited` is what was left of `interval` once the time since `since` (when the slot
    before was taken) had passed: a busy machine makes the wait shorter, never longer."""
    elapsed = time.monotonic() - since
    assert interval - elapsed - CLOCK_MS <= waited <= interval + CLOCK_MS


def assert_paced(asked: list[float], interval: float, *, since: float) -> None:
    """One wait of what was left of `interval`; or, when the machine was so busy that the
    interval had passed before the second request, none."""
    if not asked:
        assert time.monotonic() - since >= interval - CLOCK_MS
        return
    (waited,) = asked
    assert_waited(waited, interval, since=since)


def limiter(client: redis.Redis, *, rate: float = 10.0, inline: float = 5.0) -> SharedRateLimiter:
    return SharedRateLimiter(client, rate_per_sec=rate, max_inline_wait_sec=inline, sleep=Sleeps())


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("PUT", "opportunity/oppo_1/", "write:opportunity"),
        ("GET", "opportunity/oppo_1/", "read:opportunity"),
        ("GET", "event/", "read:event"),
        ("POST", "webhook/", "write:webhook"),
    ],
)
def test_ratelimit_endpoint_groups(method: str, path: str, group: str) -> None:
    """Reads and writes of one resource are separate groups."""
    assert group == endpoint_group(method, path)


def test_ratelimit_second_request_waits_for_its_slot(redis_client: redis.Redis) -> None:
    """At 10/s the request right after another waits what is left of 100 ms, once."""
    first = limiter(redis_client, rate=10.0)
    since = time.monotonic()

    first.before("PUT", "opportunity/a/")
    first.before("PUT", "opportunity/b/")

    assert_paced(first.sleep.asked, 0.1, since=since)  # type: ignore[attr-defined]


def test_ratelimit_slot_taken_ahead_serves_its_request_once(redis_client: redis.Redis) -> None:
    """A slot taken on a job's pipeline is its request's: `before` then asks nothing, and
    the next request of the group waits its turn after it as usual."""
    ahead = limiter(redis_client, rate=1.0, inline=0.01)
    with redis_client.pipeline() as pipe:
        ahead.take_on(pipe, "PUT", "opportunity/a/")
        (reply,) = pipe.execute()
    ahead.took("PUT", "opportunity/a/", reply)

    ahead.before("PUT", "opportunity/a/")  # the slot taken ahead: no wait, no error
    with pytest.raises(CloseRateLimitedError):
        ahead.before("PUT", "opportunity/a/")  # used once only: this one waits a second


def test_ratelimit_slot_not_granted_ahead_is_taken_as_usual(redis_client: redis.Redis) -> None:
    """A wait answered to `take_on` (or a slot kept too long) leaves `before` to pace."""
    ahead = limiter(redis_client, rate=1.0, inline=0.01)
    ahead.before("PUT", "opportunity/a/")
    with redis_client.pipeline() as pipe:
        ahead.take_on(pipe, "PUT", "opportunity/b/")
        (reply,) = pipe.execute()
    ahead.took("PUT", "opportunity/b/", reply)

    with pytest.raises(CloseRateLimitedError):
        ahead.before("PUT", "opportunity/b/")
    assert 0 < reply[0]


def test_ratelimit_pace_is_shared_between_processes(redis_client: redis.Redis) -> None:
    """Two limiters on one Redis (two workers) share the pace of a group."""
    one, other = limiter(redis_client, rate=1.0, inline=0.01), limiter(redis_client, rate=1.0)
    since = time.monotonic()

    one.before("PUT", "opportunity/a/")
    with pytest.raises(CloseRateLimitedError) as caught:
        SharedRateLimiter(redis_client, rate_per_sec=1.0, max_inline_wait_sec=0.01).before(
            "PUT", "opportunity/b/"
        )
    other.before("GET", "opportunity/a/")  # another group is not held back

    assert_waited(caught.value.retry_after_sec, 1.0, since=since)
    assert [] == other.sleep.asked  # type: ignore[attr-defined]


def test_ratelimit_429_pauses_the_group_for_everyone(redis_client: redis.Redis) -> None:
    """A 429 seen by one worker holds every worker's calls to that group until the reset;
    a long wait is not slept but raised, so the job can be rescheduled."""
    seen_by = limiter(redis_client)
    elsewhere = limiter(redis_client, inline=5.0)
    since = time.monotonic()
    seen_by.after(Exchange("PUT", "opportunity/a/", 429, 0.01, None, wait_sec=30.0))

    with pytest.raises(CloseRateLimitedError) as caught:
        elsewhere.before("PUT", "opportunity/b/")

    assert_waited(caught.value.retry_after_sec, 30.0, since=since)
    elsewhere.before("GET", "opportunity/b/")


def test_ratelimit_nothing_remaining_pauses_until_the_reset(redis_client: redis.Redis) -> None:
    """`ratelimit: remaining=0, reset=0.3` pauses the group 0.3 s before anyone asks again."""
    paced = limiter(redis_client, rate=1000.0)
    since = time.monotonic()
    paced.after(Exchange("PUT", "opportunity/a/", 200, 0.01, RateLimitInfo(20, 0, 0.3)))

    paced.before("PUT", "opportunity/b/")

    assert_paced(paced.sleep.asked, 0.3, since=since)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("exchange", "pause"),
    [
        (Exchange("PUT", "o/", 429, 0, RateLimitInfo(20, 0, 2.5), wait_sec=2.5), 2.5),
        (Exchange("PUT", "o/", 429, 0, None, wait_sec=None), 1.0),
        (Exchange("PUT", "o/", 200, 0, RateLimitInfo(20, 0, 0.7)), 0.7),
        (Exchange("PUT", "o/", 200, 0, RateLimitInfo(20, 5, 0.7)), None),
        (Exchange("PUT", "o/", None, 0, None), None),
    ],
)
def test_ratelimit_pause_for(exchange: Exchange, pause: float | None) -> None:
    """Which answers pause the group, and for how long."""
    assert pause == pause_for(exchange)


def stated(limit: int) -> Exchange:
    return Exchange("PUT", "opportunity/a/", 200, 0.01, RateLimitInfo(limit, limit - 1, 0.9))


def answer(remaining: int, reset_sec: float, *, limit: int = 20, path: str = "a") -> Exchange:
    """Close's answer to a PUT, stating `ratelimit: limit=, remaining=, reset=`."""
    info = RateLimitInfo(limit, remaining, reset_sec)
    return Exchange("PUT", f"opportunity/{path}/", 200, 0.01, info)


def test_ratelimit_spreads_what_remains_over_what_is_left_of_the_window(
    redis_client: redis.Redis,
) -> None:
    """`limit=20, remaining=10, reset=5`: the 10 left are spread over the 5 s left (at 97%),
    about 515 ms apart, not sent 20 a second as if `limit` counted per second."""
    paced = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=0.1)
    since = time.monotonic()
    paced.before("PUT", "opportunity/a/")
    paced.after(answer(10, 5.0))

    with pytest.raises(CloseRateLimitedError) as caught:
        paced.before("PUT", "opportunity/b/")

    assert_waited(caught.value.retry_after_sec, 5.0 / (10 * 0.97), since=since)


def test_ratelimit_counts_requests_in_flight_against_what_remains(
    redis_client: redis.Redis,
) -> None:
    """Close said 2 remain after the first request, but two other processes have sent one
    each since: nothing is left for anyone until the window's end, 5 s after that first
    request's slot."""
    one = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=0.1)
    other = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=1.0)
    third = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=1.0)
    since = time.monotonic()
    one.before("PUT", "opportunity/a/")
    other.before("PUT", "opportunity/b/")
    third.before("PUT", "opportunity/c/")
    one.after(answer(2, 5.0))

    with pytest.raises(CloseRateLimitedError) as caught:
        one.before("PUT", "opportunity/d/")

    assert_waited(caught.value.retry_after_sec, 5.0, since=since)


def test_ratelimit_between_windows_paces_at_the_limit_over_the_learned_window(
    redis_client: redis.Redis,
) -> None:
    """Once a window has ended, and before Close speaks of the next, the pace is `limit` per
    window, the window being the longest `reset` Close stated (2 s): 20 in 2 s, at 97%."""
    seen_by = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=5.0)
    seen_by.after(answer(19, 2.0))
    seen_by.after(answer(5, 0.0))  # that window is over
    paced = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=0.05)
    since = time.monotonic()
    paced.before("PUT", "opportunity/a/")

    with pytest.raises(CloseRateLimitedError) as caught:
        paced.before("PUT", "opportunity/b/")

    assert_waited(caught.value.retry_after_sec, 2.0 / (0.97 * 20), since=since)


def test_ratelimit_configured_ceiling_wins_over_a_higher_stated_limit(
    redis_client: redis.Redis,
) -> None:
    """CLOSE_RATE_LIMIT=10 keeps 100 ms between requests even when Close allows 20/s."""
    paced = limiter(redis_client, rate=10.0)
    paced.after(stated(20))
    since = time.monotonic()

    paced.before("PUT", "opportunity/a/")
    paced.before("PUT", "opportunity/b/")

    assert_paced(paced.sleep.asked, 0.1, since=since)  # type: ignore[attr-defined]


def test_ratelimit_answer_is_written_only_when_it_tells_the_pacer_more(
    redis_client: redis.Redis,
) -> None:
    """An answer that leaves at least what the pacer already counted on costs no Redis
    write; one that leaves less (another integration spends the same limit) is written."""
    paced = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=5.0)
    paced.before("PUT", "opportunity/a/")
    paced.after(answer(10, 5.0))
    key = "dk:ratelimit:window:write:opportunity"
    paced.before("PUT", "opportunity/b/")  # 9 left after it, as far as the pacer knows
    redis_client.hset(key, "limit", "marker")

    paced.after(answer(9, 4.5, path="b"))
    unchanged = redis_client.hget(key, "limit")
    paced.before("PUT", "opportunity/c/")
    paced.after(answer(3, 4.0, path="c"))

    assert (b"marker", b"3") == (unchanged, redis_client.hget(key, "left"))


def most_within(times: list[float], span_sec: float) -> int:
    """The most of `times` that fall within any `span_sec`."""
    ordered = sorted(times)
    return max(
        sum(1 for later in ordered[i:] if later - start < span_sec)
        for i, start in enumerate(ordered)
    )


def test_ratelimit_spreads_a_five_second_window_across_processes(
    redis_client: redis.Redis, fake_close: FakeClose
) -> None:
    """Three worker processes (each its own client and limiter, one Redis) making 12
    writes against Close's 20 per 5 s window: none refused, and never more than about
    the window's share of a second (4, here 8 at most) within any one second, where
    reading `limit=20` as 20 a second sends all 12 within some 0.6 s."""
    fake_close.set_rate_limit(20, window_sec=5.0, group="write")
    ids = [fake_close.add_opportunity()["id"] for _ in range(12)]

    def process(share: list[str]) -> None:
        limiter = SharedRateLimiter(redis_client, rate_per_sec=None, max_inline_wait_sec=5.0)
        with CloseClient(API_KEY, base_url=fake_close.url, throttle=limiter) as client:
            for oppo_id in share:
                client.update_opportunity(oppo_id, {"confidence": 1}, tz_offset_hours=None)

    threads = [threading.Thread(target=process, args=(ids[n::3],)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    puts = fake_close.requests_matching("PUT", "opportunity/")
    most = most_within([r.received_at for r in puts], 1.0)

    assert {("PUT", 200): 12} == {k: n for k, n in fake_close.answers.items() if k[0] == "PUT"}
    assert most <= 8, f"{most} writes within one second"
