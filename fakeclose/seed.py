"""Demo data for a standalone fake: a few custom fields and N varied opportunities."""

from __future__ import annotations

import random

from fakeclose.server import FakeClose

SEGMENTS = ("Enterprise", "Mid-Market", "SMB")


def seed_demo(fake: FakeClose, *, count: int, seed: int = 0) -> list[str]:
    """Add the demo custom fields and `count` opportunities; returns their ids.

    The same `seed` gives the same values (ids stay random, as Close's are).
    """
    rng = random.Random(seed)
    fake.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=list(SEGMENTS)
    )
    fake.add_custom_field("Source", type="text")
    statuses = [fake.status_id(label) for label in ("Active", "Active", "Active", "Won", "Lost")]
    ids = []
    for _ in range(count):
        opportunity = fake.add_opportunity(
            status_id=rng.choice(statuses),
            value=rng.randrange(10, 5000) * 1000,
            confidence=rng.choice((10, 25, 50, 75, 90)),
            **{"custom.Segment": [rng.choice(SEGMENTS)], "custom.Source": "demo"},
        )
        ids.append(opportunity["id"])
    return ids
