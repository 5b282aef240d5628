"""The bound on refused webhooks: per client, for everyone, per minute."""

from __future__ import annotations

from service.intake.budget import RejectionBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_a_client_is_cut_off_after_its_share() -> None:
    """The third refusal of a client with a budget of two finds it exhausted; others are not."""
    budget = RejectionBudget(per_client=2, total=100, clock=Clock())
    budget.spend("a")
    budget.spend("a")

    assert (True, False) == (budget.exhausted("a"), budget.exhausted("b"))


def test_budget_everyone_is_cut_off_after_the_total() -> None:
    """Many clients together cannot exceed the total."""
    budget = RejectionBudget(per_client=100, total=3, clock=Clock())
    for client in ("a", "b", "c"):
        budget.spend(client)

    assert budget.exhausted("d")


def test_budget_renews_each_window() -> None:
    """A minute later the budget is whole again."""
    clock = Clock()
    budget = RejectionBudget(per_client=1, total=100, window_sec=60, clock=clock)
    budget.spend("a")
    clock.now += 20

    assert budget.exhausted("a")
    clock.now += 40
    assert not budget.exhausted("a")


def test_budget_spend_says_whether_to_record_and_counts_the_rest() -> None:
    """Refusals within the share are worth recording; past it they are only counted as
    muted, and the count starts again with the window."""
    clock = Clock()
    budget = RejectionBudget(per_client=2, total=100, window_sec=60, clock=clock)

    assert [True, True, False, False] == [budget.spend("a") for _ in range(4)]
    assert 2 == budget.muted
    clock.now += 60
    assert (True, 0) == (budget.spend("a"), budget.muted)


def test_budget_memory_is_bounded() -> None:
    """Past the total, new clients are not tracked (the total alone holds them back)."""
    budget = RejectionBudget(per_client=5, total=10, clock=Clock())
    for n in range(50):
        budget.spend(f"client-{n}")

    assert 10 == len(budget._by_client)
