"""The dealkeeper command's rule tooling, through click's runner: output and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from service.commands.cli import cli
from tests.conftest import RULES_DIR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "rules" / "invalid"


def test_cli_validate_good_rules_exit_0() -> None:
    """The shipped rules validate; the summary counts rules and files."""
    result = CliRunner().invoke(cli, ["validate", str(RULES_DIR)])

    assert (0, f"ok: 3 rules in 1 file ({RULES_DIR})\n") == (result.exit_code, result.output)


def test_cli_validate_prints_every_mistake_and_exits_1() -> None:
    """A broken file gives one file:line:column: message per mistake, pinned by a golden file."""
    broken = FIXTURES / "five-mistakes.yaml"
    expected = (FIXTURES / "five-mistakes.expected.txt").read_text()

    result = CliRunner().invoke(cli, ["validate", str(broken)])

    assert 1 == result.exit_code
    assert expected.replace("rules/five-mistakes.yaml", str(broken)) == result.output


def test_cli_validate_reads_dealkeeper_rules_by_default(tmp_path: Path) -> None:
    """Without a PATH, DEALKEEPER_RULES names what to check."""
    (tmp_path / "r.yaml").write_text("rules:\n  - name: a\n    then: [{set: {confidence: 1}}]\n")

    result = CliRunner().invoke(cli, ["validate"], env={"DEALKEEPER_RULES": str(tmp_path)})

    assert (0, f"ok: 1 rule in 1 file ({tmp_path})\n") == (result.exit_code, result.output)


def test_cli_test_runs_the_rule_tests(tmp_path: Path) -> None:
    """`dealkeeper test` runs every case beside the rules and exits 0 when all pass."""
    result = CliRunner().invoke(cli, ["test", str(RULES_DIR)])

    assert 0 == result.exit_code
    assert result.output.endswith("12 passed, 0 failed (1 test files)\n")


def test_cli_test_shows_what_differs_and_exits_1(tmp_path: Path) -> None:
    """A failing case prints its position, name and the expected-versus-actual difference."""
    shutil.copy(RULES_DIR / "deal-hygiene.yaml", tmp_path)
    (tmp_path / "deal-hygiene.test.yaml").write_text(
        "tests:\n"
        "  - name: wrong date\n"
        "    event:\n"
        "      action: updated\n"
        '      date_created: "2026-11-28T03:30:00"\n'
        "      changed_fields: [status_type]\n"
        "      previous_data: {status_type: active}\n"
        "      data: {id: oppo_1, status_type: won, date_won: null, confidence: 100}\n"
        "    expect:\n"
        '      update: {date_won: "2026-11-28"}\n'
    )

    result = CliRunner().invoke(cli, ["test", str(tmp_path)])

    assert 1 == result.exit_code
    assert (
        f"FAIL {tmp_path}/deal-hygiene.test.yaml:2:5: wrong date\n"
        '       update: date_won expected "2026-11-28", got "2026-11-27"\n'
        "0 passed, 1 failed (1 test files)\n"
    ) == result.output


def test_cli_schema_prints_the_shipped_schema() -> None:
    """`dealkeeper schema` prints exactly the schema shipped in rules/."""
    result = CliRunner().invoke(cli, ["schema"])

    assert json.loads((RULES_DIR / "rules.schema.json").read_text()) == json.loads(result.output)
