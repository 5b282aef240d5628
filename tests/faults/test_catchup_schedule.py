"""The automatic catch-up, end to end: a change that only Close's event log holds (its
webhook never came) is applied by a running worker on its own, once."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from service.core.events import parse_close_time
from tests.cluster import Cluster
from tests.faults.test_faults import writes_per_opportunity
from tests.waiting import wait_for

# A catch-up every 2 s: the test waits for the first runs, not for the 300 s default.
INTERVAL_SEC = "2"
# Generous for a busy 2-core machine: a run is due every 2 s.
APPLIED_WITHIN_SEC = 60.0


def test_a_change_only_in_the_event_log_is_applied_by_the_scheduled_catch_up(
    cluster: Cluster,
) -> None:
    cluster.env["DEALKEEPER_CATCHUP_INTERVAL"] = INTERVAL_SEC
    cluster.start_web()
    cluster.start_worker()  # webhooks are never delivered: cluster.deliver() is not called
    fake = cluster.fake
    oppo = fake.add_opportunity(confidence=60)
    raw = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won")})
    assert raw is not None
    new_york_date = parse_close_time(raw["date_created"], what="date_created").astimezone(
        ZoneInfo("America/New_York")
    ).date().isoformat()  # fmt: skip

    wait_for(lambda: fake.opportunity(oppo["id"])["confidence"] == 100,
             what="the catch-up to apply the event", timeout=APPLIED_WITHIN_SEC)  # fmt: skip
    wait_for(lambda: cluster.redis.exists("dk:catchup:checkpoint"), what="a checkpoint")

    assert new_york_date == fake.opportunity(oppo["id"])["date_won"]
    assert {oppo["id"]: 1} == writes_per_opportunity(cluster)
    assert [] == fake.deliveries
