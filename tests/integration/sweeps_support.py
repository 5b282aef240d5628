"""Builders shared by the sweep tests: an aged fake Close, rule files, listing recorders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fakeclose import FakeClose
from service.adapters.close import CloseClient
from service.core.events import parse_close_time
from service.core.rules import RuleSet, load_rules_path
from service.processing.sweeps.progress import Progress
from service.processing.sweeps.run import Enqueue, Sweeper, run_sweep

MOMENT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)  # Monday 06:00 in New York
STALE_RULES = """\
timezone: America/New_York
rules:
  - name: stale-deals
    schedule: "0 6 * * 1-5"
    find: {status_type: active, date_updated: {older_than: 60d}}
    if:
      - confidence: {gt: 10}
    then:
      - set: {confidence: 10}
      - add: {custom.Segment: Stale}
"""


def write_rules(folder: Path, text: str, *, name: str = "sweeps.yaml") -> Path:
    """A rules folder holding one file with `text`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def sweep_rules(find: str, *, condition: str = "", then: str = "[{set: {confidence: 5}}]") -> str:
    """A file with one sweep rule `s` (06:00 New York on weekdays) listing `find`."""
    if_part = f"    if: {condition}\n" if condition else ""
    return (
        "timezone: America/New_York\nrules:\n  - name: s\n    schedule: '0 6 * * 1-5'\n"
        f"    find: {find}\n{if_part}    then: {then}\n"
    )


class ListingRecorder:
    """A JSONAPI that passes requests to the client and keeps the ids each page listed;
    `after_page` runs after each page (to change deals while the sweep goes on)."""

    def __init__(
        self, client: CloseClient, *, after_page: Callable[[int], None] = lambda _: None
    ) -> None:
        self.client = client
        self.after_page = after_page
        self.pages: list[list[str]] = []

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        page = self.client.request_json(method, path, params=params, body=body)
        if path == "opportunity/":
            self.pages.append([item["id"] for item in page.get("data") or ()])
            self.after_page(len(self.pages))
        return page

    @property
    def listed(self) -> list[str]:
        return [oppo_id for page in self.pages for oppo_id in page]


def list_sweep(
    fake: FakeClose,
    rules: RuleSet,
    *,
    name: str = "s",
    recorder: ListingRecorder | None = None,
    enqueue: Enqueue | None = None,
    page_limit: int = 200,
) -> tuple[Progress, ListingRecorder]:
    """Run the sweep's listing here (no jobs unless `enqueue`), through a recorder."""
    client = CloseClient(FakeClose.DEFAULT_API_KEY, base_url=fake.url)
    recorder = recorder or ListingRecorder(client)
    rule = rules.rule(name)
    assert rule is not None
    sweeper = Sweeper(
        rule,
        ruleset=rules,
        moment=MOMENT,
        client=recorder,
        metadata=None,
        enqueue=enqueue,
        page_limit=page_limit,
    )
    return run_sweep(sweeper, Progress()), recorder


def load(folder: Path) -> RuleSet:
    return load_rules_path(folder)


def moment_of(opportunity: Mapping[str, Any], field: str) -> datetime:
    return parse_close_time(opportunity[field], what=field)


def matching(fake: FakeClose, test: Callable[[Mapping[str, Any]], bool]) -> set[str]:
    """Ids of the fake's opportunities for which `test` holds, read from its store."""
    with fake.store.lock:
        return {o["id"] for o in fake.store.opportunities.values() if test(o)}
