"""Hot reload of rule files: edits are picked up, broken edits rejected whole, last good kept."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from service.adapters.rulefiles import RulesHolder
from service.config.errors import InvalidRulesError
from tests.edits import write

GOOD = "rules:\n  - name: first\n    then: [{set: {confidence: 1}}]\n"
BETTER = "rules:\n  - name: second\n    then: [{set: {confidence: 2}}]\n"
BROKEN = "rules:\n  - name: broken\n    thne: [{set: {confidence: 3}}]\n"
INTERVAL_SEC = 2.0


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "rules.yaml", GOOD, tick=1)
    return tmp_path


@pytest.fixture
def clock() -> Clock:
    return Clock()


def holder(folder: Path, clock: Clock) -> RulesHolder:
    return RulesHolder(folder, check_interval_sec=INTERVAL_SEC, clock=clock)


def names(rules: RulesHolder) -> list[str]:
    return [rule.name for rule in rules.current().rules]


def test_rulefiles_edit_is_picked_up_after_the_check_interval(folder: Path, clock: Clock) -> None:
    """An edited file is in force once the check interval has passed, without a restart."""
    rules = holder(folder, clock)
    write(folder / "rules.yaml", BETTER, tick=2)
    before = names(rules)

    clock.now += INTERVAL_SEC

    assert (["first"], ["second"]) == (before, names(rules))


def test_rulefiles_new_file_in_the_folder_is_picked_up(folder: Path, clock: Clock) -> None:
    """A rule file added to the folder joins the rules in force."""
    rules = holder(folder, clock)
    write(folder / "more.yaml", BETTER, tick=2)
    clock.now += INTERVAL_SEC

    assert ["second", "first"] == names(rules)


@pytest.mark.allow_error_logs
def test_rulefiles_broken_edit_keeps_the_last_good_rules(
    folder: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A file with a mistake is rejected whole; the last good rules stay in force."""
    rules = holder(folder, clock)
    digest = rules.current().digest
    write(folder / "rules.yaml", BROKEN, tick=2)
    clock.now += INTERVAL_SEC

    assert (["first"], digest) == (names(rules), rules.current().digest)
    assert [
        f"{folder}/rules.yaml:2:5: a rule needs the key 'then'; it is missing",
        f"{folder}/rules.yaml:3:5: unknown key 'thne'; did you mean 'then'? (expected one of "
        "name, description, trigger, on, timezone, enabled, dry_run, schedule, find, if, then)",
    ] == rules.problems


@pytest.mark.allow_error_logs
def test_rulefiles_rejection_is_logged_with_its_problems(
    folder: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """rules_rejected names the problems as file:line:column and the digest still in force."""
    rules = holder(folder, clock)
    digest = rules.current().digest
    write(folder / "rules.yaml", BROKEN, tick=2)
    clock.now += INTERVAL_SEC
    rules.current()

    rejected = [r for r in caplog.records if r.getMessage() == "rules_rejected"]

    assert 1 == len(rejected)
    assert (logging.ERROR, digest, rules.problems) == (
        rejected[0].levelno,
        rejected[0].kept,  # type: ignore[attr-defined]
        rejected[0].problems,  # type: ignore[attr-defined]
    )


@pytest.mark.allow_error_logs
def test_rulefiles_fixed_edit_after_a_broken_one_is_loaded(folder: Path, clock: Clock) -> None:
    """Once the mistake is fixed, the fixed rules load and the problems clear."""
    rules = holder(folder, clock)
    write(folder / "rules.yaml", BROKEN, tick=2)
    clock.now += INTERVAL_SEC
    rules.current()
    write(folder / "rules.yaml", BETTER, tick=3)
    clock.now += INTERVAL_SEC

    assert (["second"], []) == (names(rules), rules.problems)


def test_rulefiles_no_reread_before_the_interval(folder: Path, clock: Clock) -> None:
    """Within the check interval the files are not looked at again."""
    rules = holder(folder, clock)
    write(folder / "rules.yaml", BETTER, tick=2)
    clock.now += INTERVAL_SEC / 2

    assert ["first"] == names(rules)


@pytest.mark.allow_error_logs
def test_rulefiles_never_good_raises_the_problems(tmp_path: Path, clock: Clock) -> None:
    """With no good rules ever loaded, current() raises the rejection (readiness is 503)."""
    write(tmp_path / "rules.yaml", BROKEN, tick=1)
    rules = holder(tmp_path, clock)

    with pytest.raises(InvalidRulesError):
        rules.current()

    assert False is rules.is_ready
