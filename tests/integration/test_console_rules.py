"""The console's rules page and its explain, through the real app, Redis and the fake Close."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from fakeclose import FakeClose
from service.adapters.activity import Activity
from service.adapters.queue import enqueue_event, make_queue
from service.config.settings import Settings
from service.core.events import Event, event_from_dict
from service.core.rules import Plan
from tests.integration.console_rules_support import console_app, signed_in
from tests.waiting import wait_for

RULES = """\
timezone: America/New_York
rules:
  - name: stamp-date-won
    trigger: [opportunity.created, opportunity.updated]
    if:
      - status_type: {changed_to: won}
    then:
      - set: {date_won: today}
  - name: quiet-one
    enabled: false
    trigger: opportunity.updated
    then:
      - set: {confidence: 5}
  - name: try-out
    dry_run: true
    if:
      - confidence: {lt: 10}
    then:
      - set: {confidence: 10}
  - name: stale-deals
    schedule: "0 6 * * 1-5"
    find: {status_type: active, date_updated: {older_than: 60d}}
    then:
      - set: {confidence: 10}
report:
  - name: big-quiet
    find: {status_type: active, date_updated: {older_than: 30d}}
    if:
      - value: {gte: 1000000}
"""
# 10:00:30 UTC: the current hour began 30 s ago.
NOW = datetime(2026, 12, 6, 10, 0, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "main.yaml").write_text(RULES, encoding="utf-8")
    return folder


@pytest.fixture
def rules_settings(settings: Settings, rules_dir: Path) -> Settings:
    return replace(settings, rules_path=str(rules_dir))


def fired(redis_client: redis.Redis, rule: str, oppo: str, *, at: float, event_id: str) -> None:
    """A finished job at `at` whose plan fired `rule`, written as the worker writes it: on
    the job's final pipeline."""
    event = event_from_dict(
        {
            "id": event_id,
            "object_type": "opportunity",
            "action": "updated",
            "object_id": oppo,
            "date_created": "2026-12-01T00:00:00Z",
            "date_updated": "2026-12-01T00:00:00Z",
            "data": {"id": oppo},
        }
    )
    plan = Plan(event_id=event.id, opportunity_id=oppo, fired=(rule,))
    with redis_client.pipeline() as pipe:
        Activity(redis_client, clock=lambda: at).record_finished(
            pipe, event, plan, {"outcome": "applied"}
        )
        pipe.execute()


def row_of(page: str, rule: str) -> str:
    found = re.search(
        rf'<tr id="rule-\d+" class="rule-row" data-rule="{rule}">(.*?)</tr>', page, re.S
    )
    assert found is not None, page
    return found.group(1)


def counts_of(row: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td class="num fired-count">(\d+)</td>', row)]


def test_rules_list_their_place_trigger_state_counts_and_last_firing(
    rules_settings: Settings, redis_client: redis.Redis
) -> None:
    hour = 3600
    # Across the hour that began at 10:00: 10:00:00 is this hour, 09:59:59 the one before.
    fired(redis_client, "stamp-date-won", "oppo_a", at=NOW - 30, event_id="ev_a1")
    fired(redis_client, "stamp-date-won", "oppo_b", at=NOW - 31, event_id="ev_b1")
    fired(redis_client, "stamp-date-won", "oppo_c", at=NOW - 23 * hour - 30, event_id="ev_c1")
    fired(redis_client, "stamp-date-won", "oppo_d", at=NOW - 24 * hour - 30, event_id="ev_d1")
    fired(redis_client, "stamp-date-won", "oppo_e", at=NOW - 6 * 24 * hour, event_id="ev_e1")
    fired(redis_client, "stamp-date-won", "oppo_f", at=NOW - 7 * 24 * hour - 30, event_id="ev_f1")
    fired(redis_client, "stamp-date-won", "oppo_g", at=NOW - 167 * hour - 30, event_id="ev_g1")
    # The last firing is the newest written, here 10:00:00 on oppo_a (written first, so
    # write the latest last).
    fired(redis_client, "stamp-date-won", "oppo_a", at=NOW - 30, event_id="ev_a1")
    fired(redis_client, "try-out", "oppo_z", at=NOW - 2 * hour, event_id="ev_z1")

    app = console_app(rules_settings, clock=lambda: NOW)
    client, _ = signed_in(app, admin=False)
    answer = client.get("/console/rules")
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)

    stamp = row_of(page, "stamp-date-won")
    # The file as named within the rules path the page names above the table.
    assert '<code class="where">main.yaml:3</code>' in stamp
    assert "opportunity.created, opportunity.updated" in stamp
    assert "on a change of status_type" in stamp
    assert "enabled" in stamp and "dry run" not in stamp
    # 1 h: the hour begun at 10:00:00 (twice at 10:00:00, not 09:59:59); 24 h: the 24 hours
    # begun at 11:00 yesterday (09:59:59 and 11:00:00 yesterday in, 10:00:00 yesterday out);
    # 7 d: the 168 hours begun at 11:00 7 days ago (10:00:00 yesterday, 6 days ago and
    # 11:00:00 7 days ago in; 10:00:00 7 days ago out).
    assert counts_of(stamp) == [2, 4, 7]
    assert 'href="/console/deal?q=oppo_a"' in stamp
    assert "30s ago on" in stamp

    assert counts_of(row_of(page, "try-out")) == [0, 1, 1]
    assert "dry run" in row_of(page, "try-out")
    assert "disabled" in row_of(page, "quiet-one")
    sweep = row_of(page, "stale-deals")
    assert "schedule 0 6 * * 1-5 (America/New_York)" in sweep
    assert "date_updated older_than 60d" in sweep
    assert "not in the last 8 days" in sweep
    assert 'data-check="big-quiet"' in page and "main.yaml:" in page


@pytest.mark.parametrize(
    ("rules_path", "shown"),
    [("rules/main.yaml", "main.yaml:3"), ("rules", "main.yaml:3")],
)
def test_a_rules_place_is_named_within_the_rules_path(
    settings: Settings, rules_dir: Path, rules_path: str, shown: str
) -> None:
    """The path heads the page once; each row names the file within it (a full path on
    every row pushed the counts off a laptop's screen)."""
    the_path = rules_dir.parent / rules_path
    app = console_app(replace(settings, rules_path=str(the_path)), clock=lambda: NOW)
    client, _ = signed_in(app, admin=False)
    page = client.get("/console/rules").get_data(as_text=True)
    assert f'id="rules-source"><code>{the_path}</code>: 4 rules in 1 file,' in page
    assert f'<code class="where">{shown}</code>' in row_of(page, "stamp-date-won")


def test_explain_tells_what_the_cli_tells_and_writes_nothing(
    rules_settings: Settings, fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """An event of Close's log, judged rule by rule; the fake sees no PUT."""
    at = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
    fake_close.now = at - timedelta(minutes=1)
    oppo = fake_close.user_create({"value": 500000, "confidence": 50})
    fake_close.now = at
    event = fake_close.user_update(
        str(oppo["object_id"]), {"status_id": fake_close.status_id("Won")}
    )
    assert event is not None
    fake_close.clear_requests()

    app = console_app(rules_settings, clock=lambda: NOW)
    client, _ = signed_in(app, admin=False)
    page = client.get(f"/console/rules/explain?event={event['id']}").get_data(as_text=True)

    output = html.unescape(page)
    assert "Event read from Close's event log" in output
    assert "FIRED      stamp-date-won" in output
    assert "not fired  quiet-one" in output
    assert "date_won = " in output
    assert "explain only reads" in output
    assert [] == [r for r in fake_close.requests if r.method != "GET"]


def test_explain_without_a_key_reads_a_job_dealkeeper_holds_and_says_why_not_close(
    rules_settings: Settings, redis_client: redis.Redis
) -> None:
    offline = replace(rules_settings, close_api_key=None)
    event = Event(
        id="ev_kept1",
        object_type="opportunity",
        action="updated",
        object_id="oppo_k",
        date_created=datetime(2026, 12, 1, tzinfo=UTC),
        date_updated=datetime(2026, 12, 1, tzinfo=UTC),
        data={"id": "oppo_k", "status_type": "won", "confidence": 5},
        changed_fields=("status_type",),
        previous_data={"status_type": "active"},
    )
    enqueue_event(event, queue=make_queue(redis_client), job_timeout_sec=60)
    app = console_app(offline, clock=lambda: NOW)
    client, _ = signed_in(app, admin=False)

    held = html.unescape(client.get("/console/rules/explain?event=ev_kept1").get_data(as_text=True))
    assert "Event read from a job dealkeeper holds in Redis" in held
    assert "FIRED      stamp-date-won" in held
    assert "CLOSE_API_KEY is not set" in held  # the page says what it cannot do

    gone = html.unescape(client.get("/console/rules/explain?event=ev_gone").get_data(as_text=True))
    assert 'id="explain-problem"' in gone
    assert "CLOSE_API_KEY is not set" in gone and "no job in dealkeeper's Redis holds it" in gone

    bad = html.unescape(client.get("/console/rules/explain?event=oppo_x").get_data(as_text=True))
    assert "is not an event id" in bad


def test_rules_page_needs_a_session(rules_settings: Settings) -> None:
    app = console_app(rules_settings, clock=lambda: NOW)
    answer = app.test_client().get("/console/rules/explain?event=ev_1")
    assert answer.status_code == 302 and "/console/login" in answer.headers["Location"]


@pytest.mark.allow_error_logs  # rules_rejected: the holder logs a rejected file at ERROR
def test_a_rejected_newer_file_is_shown_and_the_last_good_rules_stay_listed(
    rules_settings: Settings, rules_dir: Path
) -> None:
    app = console_app(rules_settings, clock=lambda: NOW)
    client, _ = signed_in(app, admin=False)
    assert 'data-rule="quiet-one"' in client.get("/console/rules").get_data(as_text=True)

    (rules_dir / "main.yaml").write_text(RULES.replace("  - name: quiet-one\n", "  - nme: x\n"))

    def page() -> str:
        return html.unescape(client.get("/console/rules").get_data(as_text=True))

    # The holder looks at the files every 2 s, as the workers' does.
    wait_for(lambda: 'id="rules-problems"' in page(), what="the rejected file shown")
    shown = page()
    assert re.search(r"main\.yaml:\d+:\d+: ", shown)
    assert 'data-rule="quiet-one"' in shown  # the last good rules are still the ones in force
