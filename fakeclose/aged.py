"""Demo data with a past, for sweeps: deals created over the last year, some left alone
for months, won deals without date_won, lost deals still showing confidence.

    with FakeClose() as fake:
        seed_aged(fake, count=2400, now=datetime.now(UTC))
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from fakeclose.server import FakeClose

SEGMENTS = ("Enterprise", "Mid-Market", "SMB", "Stale")
KINDS = ("Active", "Won", "Lost")
KIND_WEIGHTS = (60, 25, 15)


def seed_aged(
    fake: FakeClose,
    *,
    count: int,
    now: datetime,
    seed: int = 0,
    days: int = 365,
    weights: tuple[int, int, int] = KIND_WEIGHTS,
    owners: Sequence[str] = (),
    pipelines: Sequence[str] = (),
) -> list[str]:
    """Add the Segment field (if missing) and `count` deals created over the `days` before
    `now`, active, won and lost by `weights`; their ids. Deals go to `owners` (user ids)
    and `pipelines` (pipeline ids, each with an active, a won and a lost status) in turn; without
    them, to the fake's human user and default pipeline.

    The same arguments give the same deals (ids stay random, as Close's are)."""
    if not any(f["name"] == "Segment" for f in fake.store.custom_fields.values()):
        fake.add_custom_field(
            "Segment", type="choices", accepts_multiple_values=True, choices=list(SEGMENTS)
        )
    rng = random.Random(seed)
    ids = []
    for number in range(count):
        fields = aged_fields(fake, rng, now=now, days=days, weights=weights)
        if owners:
            fields["user_id"] = owners[number % len(owners)]
        if pipelines:
            # Turned by a different count than owners, so each owner has deals in each.
            pipeline = pipelines[(number // max(len(owners), 1)) % len(pipelines)]
            fields["status_id"] = _same_type(fake, fields["status_id"], pipeline)
        ids.append(fake.add_opportunity(**fields)["id"])
    return ids


def _same_type(fake: FakeClose, status_id: str, pipeline_id: str) -> str:
    """The first status of `pipeline_id` whose type (active, won, lost) is `status_id`'s."""
    statuses = fake.store.statuses
    kind = statuses[status_id]["type"]
    return next(
        str(s)
        for s in fake.store.pipelines[pipeline_id]["status_ids"]
        if statuses[s]["type"] == kind
    )


def aged_fields(
    fake: FakeClose,
    rng: random.Random,
    *,
    now: datetime,
    days: int = 365,
    weights: tuple[int, int, int] = KIND_WEIGHTS,
) -> dict[str, Any]:
    """One deal's fields: created in the `days` before `now`, last changed since then."""
    created = now - timedelta(days=rng.uniform(1, days))
    updated = created + (now - created) * rng.random()
    kind = rng.choices(KINDS, weights=weights)[0]
    fields: dict[str, Any] = {
        "status_id": fake.status_id(kind),
        "value": rng.randrange(10, 5000) * 1000,
        "confidence": rng.choice((10, 25, 50, 75, 90)),
        "date_created": created.isoformat(timespec="microseconds"),
        "date_updated": updated.isoformat(timespec="microseconds"),
        "custom.Segment": [rng.choice(SEGMENTS[:3])],
    }
    if kind == "Won":
        fields["confidence"] = 100
        fields["date_won"] = None if rng.random() < 0.2 else updated.date().isoformat()
    if kind == "Lost":
        fields["confidence"] = rng.choice((0, 0, 10, 25))
    return fields
