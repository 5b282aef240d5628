"""The console's deal page: the real app and Flask's test client, real Redis, history written
by a real worker against the fake Close (or by History.record), searched as people do."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from flask.testing import FlaskClient
from rq import Queue

from fakeclose import FakeClose
from service.adapters.history import History, HistoryEntry
from service.adapters.queue import enqueue_event
from service.config.settings import Settings
from service.core.events import event_from_dict
from service.web import create_app
from tests.integration.console_login import (
    READ_PASSWORD,
    console_client,
    console_settings,
    csrf_token,
    park_a_refused_update,
    work,
)

__all__ = ["console_client"]  # the fixture, imported to be used here

WON_AT = datetime(2026, 11, 28, 3, 30, tzinfo=UTC)
DAY_SEC = 24 * 3600
_ROW = re.compile(r'<tr class="deal-event outcome-([a-z_]+)" id="event-([^"]+)">(.*?)</tr>', re.S)


def rows(page: str) -> list[tuple[str, str, str]]:
    """(outcome, event id, the row's HTML) of each event shown, in the page's order."""
    return _ROW.findall(page)


def deal_page(client: FlaskClient, q: str) -> str:
    answer = client.get("/console/deal", query_string={"q": q})
    assert 200 == answer.status_code
    return answer.text


def entry(opportunity: str, n: int, *, processed_at: float) -> HistoryEntry:
    return HistoryEntry(
        event_id=f"ev_{n}",
        opportunity_id=opportunity,
        event_type="opportunity.updated",
        event_time="2026-11-28T03:30:00+00:00",
        processed_at=processed_at,
        outcome="no_update",
    )


def test_a_pasted_close_address_shows_what_the_worker_did_newest_first(
    console_client: Callable[[str], FlaskClient],
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
) -> None:
    """Won, then edited: a real worker writes the first and finds nothing to do for the
    second. Pasted as Close's address of the deal, the page shows both, newest first, with
    the rules that fired, why the others did not, the update, Close's answer, and links
    back to the deal in Close."""
    oppo = fake_close.add_opportunity(confidence=60, value=1000)
    fake_close.now = WON_AT
    won = fake_close.user_update(oppo["id"], {"status_id": fake_close.status_id("Won")})
    assert won is not None
    enqueue_event(event_from_dict(won), queue=queue)
    work(settings)
    fake_close.now = WON_AT.replace(minute=40)
    edited = fake_close.user_update(oppo["id"], {"value": 2000})
    assert edited is not None
    enqueue_event(event_from_dict(edited), queue=queue)
    work(settings)
    fake_close.clear_requests()
    address = f"https://app.close.com/lead/{oppo['lead_id']}/opportunity/{oppo['id']}/#activity"

    page = deal_page(console_client(READ_PASSWORD), address)

    shown = rows(page)
    assert [("no_update", edited["id"]), ("applied", won["id"])] == [(o, e) for o, e, _ in shown]
    applied = shown[1][2]
    assert "✓ stamp-date-won fired" in applied
    assert "✓ full-confidence-when-won fired" in applied
    assert "✗ tag-big-deals: unknown custom field &#39;Segment&#39;" in applied
    assert "&#34;date_won&#34;: &#34;2026-11-27&#34;" in applied
    assert "200 OK" in applied
    assert "✗ stamp-date-won: status_type unchanged" in shown[0][2]
    assert f'href="https://app.close.com/opportunity/{oppo["id"]}/"' in page
    lead_page = f"https://app.close.com/lead/{oppo['lead_id']}/opportunity/{oppo['id']}/"
    assert f'id="deal-lead-link" href="{lead_page}"' in page
    assert [] == fake_close.requests  # a GET never calls Close


@pytest.mark.parametrize(
    "pasted",
    [
        "oppo_Abc123",
        "  oppo_Abc123\n",
        "https://app.close.com/opportunity/oppo_Abc123/",
        "https://app.close.com/lead/lead_Xyz9/opportunity/oppo_Abc123/#comments",
        "https%3A%2F%2Fapp.close.com%2Flead%2Flead_Xyz9%2Fopportunity%2Foppo_Abc123%2F",
        "can you look at oppo_Abc123? it was won yesterday",
    ],
)
def test_the_search_finds_the_opportunity_in_what_people_paste(
    console_client: Callable[[str], FlaskClient], redis_client: redis.Redis, pasted: str
) -> None:
    """An id, an address with or without a fragment, an encoded address, a sentence."""
    History(redis_client).record(entry("oppo_Abc123", 1, processed_at=time.time()))

    page = deal_page(console_client(READ_PASSWORD), pasted)

    assert '<code id="deal-id">oppo_Abc123</code>' in page
    assert ["ev_1"] == [e for _, e, _ in rows(page)]
    assert 'id="deal-problem"' not in page


@pytest.mark.parametrize(
    ("pasted", "said"),
    [
        ("https://app.close.com/lead/lead_Xyz9/", "That is a lead (lead_Xyz9), not an opportunity"),
        ("https://app.close.com/lead/lead_Xyz9/#opportunities", "That is a lead (lead_Xyz9)"),
        ("Acme Corp", "No opportunity id in that"),
        ("oppo_", "No opportunity id in that"),
    ],
)
def test_a_paste_without_an_opportunity_id_says_what_to_paste(
    console_client: Callable[[str], FlaskClient], pasted: str, said: str
) -> None:
    page = deal_page(console_client(READ_PASSWORD), pasted)

    assert said in page
    assert 'id="deal-problem"' in page
    assert 'id="deal-id"' not in page


def test_the_page_shows_thirty_days(
    console_client: Callable[[str], FlaskClient], redis_client: redis.Redis
) -> None:
    """Entries past 30 days, still in a deal's list written to since, are not shown."""
    now = time.time()
    history = History(redis_client)
    history.record(entry("oppo_1", 1, processed_at=now - 31 * DAY_SEC))
    history.record(entry("oppo_1", 2, processed_at=now - 29 * DAY_SEC))
    history.record(entry("oppo_1", 3, processed_at=now - 60))

    page = deal_page(console_client(READ_PASSWORD), "oppo_1")

    assert ["ev_3", "ev_2"] == [e for _, e, _ in rows(page)]


def test_a_deal_without_history_says_so(console_client: Callable[[str], FlaskClient]) -> None:
    page = deal_page(console_client(READ_PASSWORD), "oppo_none")

    assert "dealkeeper has seen no event of oppo_none in the last 30 days" in page
    assert "no event of this deal is waiting" in page


@pytest.mark.allow_error_logs
def test_the_page_says_when_an_event_of_the_deal_waits_or_is_parked(
    console_client: Callable[[str], FlaskClient],
    fake_close: FakeClose,
    queue: Queue,
    settings: Settings,
) -> None:
    """One event parked by a real worker (Close answered 400), then one queued and not yet
    taken: the page says both, and links to the deal's parked events."""
    parked = park_a_refused_update(fake_close, queue, settings)
    waiting = fake_close.user_update(parked, {"confidence": 10})
    assert waiting is not None
    enqueue_event(event_from_dict(waiting), queue=queue)

    page = deal_page(console_client(READ_PASSWORD), parked)

    assert '<span id="deal-now-failed">1 event parked</span>' in page
    assert '<span id="deal-now-queued">1 event waiting in the queue</span>' in page
    assert f'href="/console/parked?opportunity={parked}"' in page


def test_the_link_from_close_opens_the_deal_after_signing_in(
    settings: Settings, redis_url: str, fake_close: FakeClose, redis_client: redis.Redis
) -> None:
    """An integration link in Close opens /console/deal?q=oppo_…: without a session it
    asks for the password, then lands on that deal."""
    History(redis_client).record(entry("oppo_FromClose1", 1, processed_at=time.time()))
    app = create_app(console_settings(redis_url, fake_close, settings.rules_path))
    client = app.test_client()
    client.environ_base.update({"wsgi.url_scheme": "https", "HTTP_HOST": "console.test"})
    try:
        asked = client.get("/console/deal?q=oppo_FromClose1")
        assert 302 == asked.status_code
        login = client.get(asked.headers["Location"])
        signed = client.post(
            "/console/login",
            data={
                "csrf_token": csrf_token(login.text),
                "password": READ_PASSWORD,
                "next": re.search(r'name="next" value="([^"]+)"', login.text).group(1),  # type: ignore[union-attr]
            },
        )
        assert (302, "/console/deal?q=oppo_FromClose1") == (
            signed.status_code,
            signed.headers["Location"],
        )
        assert ["ev_1"] == [e for _, e, _ in rows(client.get(signed.headers["Location"]).text)]
    finally:
        app.extensions["dealkeeper"].connection.close()
