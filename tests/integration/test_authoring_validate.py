"""`dealkeeper validate`: suggestions, warnings, --strict, and --online against the fake Close."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fakeclose import FakeClose
from service.commands.cli import cli

CONFLICTING = (
    "rules:\n"
    "  - name: big\n    if: [{value: {gte: 100}}]\n    then: [{set: {confidence: 90}}]\n"
    "  - name: small\n    if: [{value: {gte: 10}}]\n    then: [{set: {confidence: 10}}]\n"
)


def close_env(fake: FakeClose) -> dict[str, str]:
    return {"CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY, "CLOSE_API_URL": fake.url}


def rules_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def organization(fake_close: FakeClose) -> FakeClose:
    """A fake Close with the custom fields the rules below use."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )
    fake_close.add_custom_field("Source", type="text")
    return fake_close


def test_validate_suggests_the_intended_name(tmp_path: Path) -> None:
    """An unknown field, operator or key comes with a 'did you mean'."""
    path = rules_file(
        tmp_path,
        "rules:\n  - name: r\n    if: [{confidance: {lte: 5}}]\n    then: [{set: {a: 1}}]\n",
    )

    result = CliRunner().invoke(cli, ["validate", path])

    assert (
        1,
        [
            f"{path}:3:11: unknown field 'confidance'; did you mean 'confidence'? (expected a "
            "Close opportunity field such as value, status_type or date_won, or custom.NAME)",
            f"{path}:4:19: unknown field 'a'; expected a Close opportunity field such as value, "
            "status_type or date_won, or custom.NAME",
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_validate_explains_patterns_the_linear_time_matcher_refuses(tmp_path: Path) -> None:
    """A backreference or a lookaround in `matches` is reported where it is written, with why
    it is refused and what to write instead."""
    path = rules_file(
        tmp_path,
        "rules:\n"
        "  - name: r\n"
        "    if:\n"
        "      - note: {matches: '(a)\\1'}\n"
        "      - lead_name: {matches: '^Acme(?! Test)'}\n"
        "    then: [{set: {confidence: 1}}]\n",
    )

    result = CliRunner().invoke(cli, ["validate", path])

    assert (
        1,
        [
            f"{path}:4:25: pattern '(a)\\1' uses a backreference (\\1), which dealkeeper's "
            "linear-time matcher (RE2) does not support; write out the text the group would "
            "repeat instead",
            f"{path}:5:30: pattern '^Acme(?! Test)' uses a lookahead ((?!), which dealkeeper's "
            "linear-time matcher (RE2) does not support; test each part with a condition of its "
            "own (inside not: for a part that must not match)",
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_validate_prints_warnings_and_still_exits_0(tmp_path: Path) -> None:
    """Warnings name both rules and lines; without --strict the rules are still good."""
    path = rules_file(tmp_path, CONFLICTING)

    result = CliRunner().invoke(cli, ["validate", path])

    assert (
        0,
        [
            f"{path}:7:19: warning: rules 'big' ({path}:4) and 'small' both write confidence, "
            "with 90 and 10; when both fire, 'small' (the later one) wins",
            f"ok: 2 rules in 1 file ({path}); 1 warning",
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_validate_warns_of_a_field_no_documented_put_takes(tmp_path: Path) -> None:
    """date_lost and pipeline_id load (Close returns them) but no PUT of Close's documents
    takes them: each write is a warning where it is written; documented fields are not."""
    path = rules_file(
        tmp_path,
        "rules:\n"
        "  - name: lost\n"
        "    if: [{status_type: lost}]\n"
        "    then:\n"
        "      - set: {confidence: 0, date_lost: '2026-11-28T03:30:00+00:00'}\n"
        "      - unset: [pipeline_id]\n",
    )

    result = CliRunner().invoke(cli, ["validate", path])

    assert (
        0,
        [
            f"{path}:5:30: warning: rule 'lost' writes date_lost, which Close's documents do "
            "not list among the fields a PUT takes: Close may answer 200 and leave it as it "
            "was (dealkeeper then logs write_not_taken)",
            f"{path}:6:17: warning: rule 'lost' writes pipeline_id, which Close's documents "
            "do not list among the fields a PUT takes: Close may answer 200 and leave it as "
            "it was (dealkeeper then logs write_not_taken); set status or status_id (a status "
            "of that pipeline) instead",
            f"ok: 1 rule in 1 file ({path}); 2 warnings",
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_validate_strict_fails_on_warnings(tmp_path: Path) -> None:
    """--strict turns warnings into a failing exit status."""
    result = CliRunner().invoke(cli, ["validate", "--strict", rules_file(tmp_path, CONFLICTING)])

    assert 1 == result.exit_code


def test_validate_online_finds_what_the_organization_lacks(
    tmp_path: Path, organization: FakeClose
) -> None:
    """Custom fields, choices and status labels are checked against Close, with suggestions."""
    path = rules_file(
        tmp_path,
        "rules:\n  - name: r\n"
        "    if: [{custom.Segmnt: SMB}, {status: {changed_to: Wonn}}]\n"
        "    then: [{add: {custom.Source: web}}, {remove: {custom.Segment: Entreprise}}]\n",
    )

    result = CliRunner().invoke(cli, ["validate", "--online", path], env=close_env(organization))

    assert (
        1,
        [
            f"{path}:3:11: Close has no opportunity custom field named 'Segmnt'; did you mean "
            "'Segment'?",
            f"{path}:3:33: 'Wonn' is not a status label in Close; did you mean 'Won'?",
            f"{path}:4:19: custom field 'Source' holds one value, so add cannot be used; write "
            "set: {custom.Source: ...} instead",
            f"{path}:4:51: 'Entreprise' is not a choice of custom field 'Segment' in Close; did "
            "you mean 'Enterprise'?",
        ],
    ) == (result.exit_code, result.output.splitlines())


def test_validate_online_passes_rules_close_knows(tmp_path: Path, organization: FakeClose) -> None:
    """Rules naming what the organization has are ok, and say they were checked online."""
    path = rules_file(
        tmp_path,
        "rules:\n  - name: r\n    if: [{custom.Segment: SMB}, {status: Won}]\n"
        "    then: [{set: {custom.Source: web, status: Lost}}]\n",
    )

    result = CliRunner().invoke(cli, ["validate", "--online", path], env=close_env(organization))

    assert (0, f"ok: 1 rule in 1 file ({path}) and checked against Close\n") == (
        result.exit_code,
        result.output,
    )
    assert [] == organization.requests_matching("PUT")


def test_validate_online_without_a_key_says_what_to_set(tmp_path: Path) -> None:
    """--online with no CLOSE_API_KEY is a usage error naming the variable."""
    path = rules_file(tmp_path, CONFLICTING)

    result = CliRunner().invoke(cli, ["validate", "--online", path], env={"CLOSE_API_KEY": ""})

    assert 2 == result.exit_code
    assert "validate --online needs CLOSE_API_KEY" in result.output


def test_validate_warns_when_an_update_rule_waits_on_a_custom_field_change(
    tmp_path: Path,
) -> None:
    """Close documents opportunity.updated for basic fields only: a rule whose only change
    condition is on a custom field may never fire on an update, and validate says so."""
    path = rules_file(
        tmp_path,
        "rules:\n  - name: tag-enterprise\n    trigger: opportunity.updated\n"
        "    if: [{custom.Segment: {changed_to: Enterprise}}]\n"
        "    then: [{set: {confidence: 90}}]\n",
    )

    result = CliRunner().invoke(cli, ["validate", path])

    assert (
        0,
        [
            f"{path}:4:11: warning: rule 'tag-enterprise' fires on opportunity.updated only "
            "when Close reports a custom field as changed "
            '(custom.Segment changed_to "Enterprise"), but Close documents '
            "opportunity.updated for changes of an opportunity's basic "
            "fields (status, date_won, value, value_period, confidence), not its custom fields: "
            "it may never fire on an update. Test the field's value instead (without changed, "
            "changed_from or changed_to), or make it a sweep rule (schedule and find) that checks "
            "deals as they are",
            f"ok: 1 rule in 1 file ({path}); 1 warning",
        ],
    ) == (result.exit_code, result.output.splitlines())
