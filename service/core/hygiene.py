"""The deal-hygiene report's arithmetic: judged deals in, counts and value at stake out.

For each check (a sweep rule: the deals it would change; a report check: the deals its
find and if hold for) the report says how many listed deals fail it, and how much `value`
(cents, as Close holds it) they carry, in total, per owner, per pipeline and per owner and
pipeline. Judging is the engine's (service/processing/hygiene.py asks it); this module only
counts, so it reads no clock and does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CheckKind = Literal["sweep rule", "report check"]
NO_OWNER = "(no owner)"
NO_PIPELINE = "(no pipeline)"


@dataclass(frozen=True)
class JudgedDeal:
    """One listed deal, where it sits, and whether it fails the check."""

    owner: str
    pipeline: str
    value: int  # cents; a deal without a value counts 0
    fails: bool

    @classmethod
    def of(cls, deal: Mapping[str, Any], *, fails: bool) -> JudgedDeal:
        """The deal as Close listed it: owner by name (by id when Close gave no name)."""
        return cls(
            owner=_text(deal.get("user_name")) or _text(deal.get("user_id")) or NO_OWNER,
            pipeline=_text(deal.get("pipeline_name"))
            or _text(deal.get("pipeline_id"))
            or NO_PIPELINE,
            value=_cents(deal.get("value")),
            fails=fails,
        )


@dataclass
class Stake:
    """Failing deals and the value they carry."""

    deals: int = 0
    value: int = 0

    def add(self, deal: JudgedDeal) -> None:
        """Count one failing deal."""
        self.deals += 1
        self.value += deal.value


@dataclass
class CheckCount:
    """The report of one check."""

    name: str
    kind: CheckKind
    description: str = ""
    listed: int = 0  # deals its find listed
    failing: Stake = field(default_factory=Stake)
    by_owner_pipeline: dict[tuple[str, str], Stake] = field(default_factory=dict)

    def add(self, deal: JudgedDeal) -> None:
        """Count one listed deal."""
        self.listed += 1
        if not deal.fails:
            return
        self.failing.add(deal)
        self.by_owner_pipeline.setdefault((deal.owner, deal.pipeline), Stake()).add(deal)

    @property
    def by_owner(self) -> dict[str, Stake]:
        """Failing deals per owner, summed over pipelines."""
        return _summed(self.by_owner_pipeline, lambda owner, _: owner)

    @property
    def by_pipeline(self) -> dict[str, Stake]:
        """Failing deals per pipeline, summed over owners."""
        return _summed(self.by_owner_pipeline, lambda _, pipeline: pipeline)


def count_check(
    name: str, kind: CheckKind, deals: Iterable[JudgedDeal], *, description: str = ""
) -> CheckCount:
    """The counts of one check over its judged deals."""
    counted = CheckCount(name, kind, description)
    for deal in deals:
        counted.add(deal)
    return counted


def ranked(groups: Mapping[Any, Stake]) -> list[tuple[Any, Stake]]:
    """Groups with most value at stake first, then most deals, then by name: the rep to talk
    to first heads the table."""
    return sorted(groups.items(), key=lambda kv: (-kv[1].value, -kv[1].deals, str(kv[0])))


def _summed(
    groups: Mapping[tuple[str, str], Stake], key: Callable[[str, str], str]
) -> dict[str, Stake]:
    summed: dict[str, Stake] = {}
    for (owner, pipeline), stake in groups.items():
        total = summed.setdefault(key(owner, pipeline), Stake())
        total.deals += stake.deals
        total.value += stake.value
    return summed


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _cents(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(value)
