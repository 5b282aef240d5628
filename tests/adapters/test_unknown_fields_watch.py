"""UnknownFieldsWatch checks the rules again whenever the metadata is a new one, on real
Redis: a refresh must never be taken for the metadata already checked."""

from __future__ import annotations

import redis

from service.adapters.unknownfields import UnknownFieldsWatch, read_unknown_fields
from service.core.rules import CustomField, Metadata, load_rules

RULES = """\
rules:
  - name: tag-enterprise
    if:
      - value: {gte: 1000000}
    then:
      - set: {custom.Segment: Enterprise}
"""


def metadata(*names: str) -> Metadata:
    return Metadata(custom_fields=tuple(CustomField(f"cf_{n}", n, "text") for n in names))


def test_each_new_metadata_is_checked_even_where_a_freed_one_lay(
    redis_client: redis.Redis,
) -> None:
    """Each round's metadata is freed once checked, so the next is often made at its
    address: the watch must tell them apart by more than id()."""
    watch = UnknownFieldsWatch(redis_client)
    ruleset = load_rules(RULES, "rules.yaml")
    recorded = []

    for round_ in range(20):
        watch.check(ruleset, metadata("Segment") if round_ % 2 else metadata("Other"))
        recorded.append(len(read_unknown_fields(redis_client)))

    assert [1, 0] * 10 == recorded
