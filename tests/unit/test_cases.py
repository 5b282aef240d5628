"""Rule tests (*.test.yaml): loading, running, reporting, and finding them on disk."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.config.errors import InvalidRulesError
from service.core.events import Event
from service.core.rules import load_rules, load_rules_path
from service.core.rules.language.cases import Case, Expect, discover, load_cases, run_case, run_path
from service.core.rules.model import CustomField, Metadata, Position, Status

TEST_FILE = "rules/x.test.yaml"
RULES = load_rules(
    "timezone: America/New_York\n"
    "rules:\n"
    "  - name: stamp-date-won\n"
    "    if: [{status_type: {changed_to: won}}]\n"
    "    then: [{set: {date_won: today}}]\n"
    "  - name: tag\n"
    "    trigger: opportunity.updated\n"
    "    if: [{value: {gte: 100}}]\n"
    "    then: [{add: {custom.Segment: Enterprise}}]\n"
    "  - name: trial\n"
    "    dry_run: true\n"
    "    then: [{set: {note: tried}}]\n",
    "rules/x.yaml",
)

DESIGN_TEST = """\
tests:
  - name: won late in the evening gets New York's date
    event:
      action: updated
      date_created: "2026-11-28T03:30:00"   # 22:30 on the 27th in New York
      changed_fields: [status_id, status_label, status_type]
      previous_data: {status_type: active, status_label: Active}
      data: {id: oppo_1, status_type: won, status_label: Won, date_won: "2026-11-28", \
value: 5000, confidence: 100}
    expect:
      fired: [stamp-date-won]
      update: {date_won: "2026-11-27"}
"""


def problems_of(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(InvalidRulesError) as caught:
        load_cases(text, TEST_FILE, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in caught.value.problems]


def one_case(expect: str, *, data: str = "{id: oppo_1, status_type: won, value: 5}") -> Case:
    """A won event (update at 15:00 UTC) with the given flow-style expectations."""
    text = (
        "tests:\n  - name: t\n    event:\n      action: updated\n"
        '      date_created: "2026-11-27T15:00:00Z"\n'
        "      changed_fields: [status_type]\n"
        "      previous_data: {status_type: active}\n"
        f"      data: {data}\n"
        f"    expect: {expect}\n"
    )
    return load_cases(text, TEST_FILE)[0]


def test_cases_load_the_design_example() -> None:
    """The design's test file loads as one case with defaults for omitted event keys."""
    expected = Case(
        name="won late in the evening gets New York's date",
        event=Event(
            id="ev_test",
            object_type="opportunity",
            action="updated",
            object_id="oppo_1",
            date_created=datetime(2026, 11, 28, 3, 30, tzinfo=UTC),
            date_updated=datetime(2026, 11, 28, 3, 30, tzinfo=UTC),
            data={
                "id": "oppo_1",
                "status_type": "won",
                "status_label": "Won",
                "date_won": "2026-11-28",
                "value": 5000,
                "confidence": 100,
            },
            previous_data={"status_type": "active", "status_label": "Active"},
            changed_fields=("status_id", "status_label", "status_type"),
        ),
        expect=Expect(fired=("stamp-date-won",), update={"date_won": "2026-11-27"}),
        position=Position(TEST_FILE, 2, 5),
    )

    assert [expected] == load_cases(DESIGN_TEST, TEST_FILE)


def test_cases_design_example_passes() -> None:
    """Run against its rules, the design's example case passes."""
    rules = load_rules_path(Path(__file__).parent.parent.parent / "rules" / "deal-hygiene.yaml")

    result = run_case(rules, load_cases(DESIGN_TEST, TEST_FILE)[0])

    assert (True, []) == (result.ok, result.failures)


def test_cases_object_id_defaults_without_data_id() -> None:
    """An event without data.id is about opportunity oppo_test."""
    text = 'tests:\n  - name: t\n    event: {action: created, date_created: "2026-01-01"}\n'
    text += "    expect: {no_update: true}\n"

    assert "oppo_test" == load_cases(text, TEST_FILE)[0].event.object_id


def test_cases_metadata_applies_and_expected_keys_resolve_to_ids() -> None:
    """With metadata, expected keys may name custom fields as written."""
    text = (
        "metadata:\n"
        "  statuses: [{id: stat_w, label: Won, type: won, pipeline_id: pipe_1}]\n"
        "  custom_fields:\n"
        "    - {id: cf_seg, name: Segment, type: choices, accepts_multiple_values: true,"
        " choices: [SMB, Enterprise]}\n"
        "tests:\n"
        "  - name: big deal\n"
        '    event: {action: updated, date_created: "2026-01-01T00:00:00Z", data: {value: 500}}\n'
        "    expect: {fired: [tag, trial], update: {custom.Segment.add: Enterprise}}\n"
    )
    case = load_cases(text, TEST_FILE)[0]

    assert (
        Metadata(
            statuses=(Status("stat_w", "Won", "won", "pipe_1"),),
            custom_fields=(
                CustomField("cf_seg", "Segment", "choices", True, ("SMB", "Enterprise")),
            ),
        ),
        {"custom.cf_seg.add": "Enterprise"},
        True,
    ) == (case.metadata, case.expect.update, run_case(RULES, case).ok)


def test_a_cases_own_metadata_stands_in_for_the_files() -> None:
    """A case's `metadata:` (as `test --add-case` writes it) is the one it runs with and
    resolves its expected keys by; the file's stays with the other cases."""
    text = (
        "metadata:\n"
        "  custom_fields: [{id: cf_other, name: Segment, type: choices}]\n"
        "tests:\n"
        "  - name: own\n"
        '    event: {action: updated, date_created: "2026-01-01T00:00:00Z", data: {value: 500}}\n'
        "    expect: {update: {custom.Segment.add: Enterprise}}\n"
        "    metadata:\n"
        "      custom_fields:\n"
        "        - {id: cf_seg, name: Segment, type: choices, accepts_multiple_values: true}\n"
        "  - name: file's\n"
        '    event: {action: updated, date_created: "2026-01-01T00:00:00Z", data: {value: 5}}\n'
        "    expect: {no_update: true}\n"
    )
    own, files = load_cases(text, TEST_FILE)

    assert (["cf_seg"], {"custom.cf_seg.add": "Enterprise"}, ["cf_other"]) == (
        [f.id for f in own.metadata.custom_fields] if own.metadata else None,
        own.expect.update,
        [f.id for f in files.metadata.custom_fields] if files.metadata else None,
    )
    assert run_case(RULES, own).ok


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "",
            [
                "rules/x.test.yaml:1:1: a test file must be a mapping with key tests; found an "
                "empty file"
            ],
        ),
        (
            "tests: [\n",
            [
                "rules/x.test.yaml:2:1: invalid YAML: while parsing a flow node, expected the "
                "node content,"
                " but found '<stream end>'"
            ],
        ),
        ("tests: 5\n", ["rules/x.test.yaml:1:8: tests needs a list of test cases; found 5"]),
        (
            "test: []\n",
            [
                "rules/x.test.yaml:1:1: a test file needs the key 'tests'; it is missing",
                "rules/x.test.yaml:1:1: unknown key 'test'; did you mean 'tests'? (expected one of "
                "metadata, tests)",
            ],
        ),
        (
            "tests: [5]\n",
            [
                "rules/x.test.yaml:1:9: a test case must be a mapping with keys name, event, "
                "event_file,"
                " expect, metadata; found 5"
            ],
        ),
        (
            "tests:\n  - name: a\n    evnt: {}\n    expect: {fired: []}\n",
            [
                "rules/x.test.yaml:2:5: a test case needs exactly one of event and event_file",
                "rules/x.test.yaml:3:5: unknown key 'evnt'; did you mean 'event'? (expected one "
                "of name, event, event_file, expect, metadata)",
            ],
        ),
        (
            'tests:\n  - name: a\n    event: {action: updated, date_created: "2026-01-01"}\n',
            [
                "rules/x.test.yaml:2:5: a test case needs the key 'expect'; it is missing",
            ],
        ),
        (
            "tests:\n  - name: a\n    event: {action: updated}\n    expect: {fired: []}\n",
            [
                "rules/x.test.yaml:3:12: invalid event: event.date_created must be an ISO 8601 "
                "timestamp,"
                " got None",
            ],
        ),
        (
            'tests:\n  - name: a\n    event: {action: updated, date_created: "2026-01-01", '
            "chnaged_fields: []}\n"
            "    expect: {fird: []}\n",
            [
                "rules/x.test.yaml:3:58: unknown key 'chnaged_fields'; did you mean "
                "'changed_fields'? (expected one of id, object_type, action, object_id, "
                "date_created, date_updated, changed_fields, previous_data, data, api_key_id, "
                "user_id, lead_id, request_id, sweep)",
                "rules/x.test.yaml:4:13: expect needs at least one of fired, not_fired, update, "
                "no_update,"
                " dry_run_update, tz_offset_hours",
                "rules/x.test.yaml:4:14: unknown key 'fird'; did you mean 'fired'? (expected one "
                "of fired, not_fired, update, no_update, dry_run_update, tz_offset_hours)",
            ],
        ),
        (
            'tests:\n  - name: a\n    event: {action: updated, date_created: "2026-01-01"}\n'
            "    expect: {fired: a}\n",
            [
                "rules/x.test.yaml:4:21: expect.fired needs a list of rule names; found 'a'",
            ],
        ),
        (
            'tests:\n  - name: a\n    event: {action: updated, date_created: "2026-01-01"}\n'
            "    expect: {no_update: yes}\n",
            [
                "rules/x.test.yaml:4:25: expect.no_update needs true or false; found 'yes'",
            ],
        ),
        (
            'tests:\n  - name: ""\n    event: {action: updated, date_created: "2026-01-01"}\n'
            "    expect: {no_update: true}\n",
            [
                "rules/x.test.yaml:2:11: name must be non-empty text; found ''",
            ],
        ),
        (
            "metadata:\n  statuses: [{id: s, label: Won}]\n  custom_fields: 5\ntests: []\n",
            [
                "rules/x.test.yaml:2:14: a status needs the key 'type'; it is missing",
                "rules/x.test.yaml:3:18: custom_fields needs a list of mappings with keys id, "
                "name, type,"
                " accepts_multiple_values, choices; found 5",
            ],
        ),
    ],
)
def test_cases_load_reports_mistakes_with_positions(text: str, expected: list[str]) -> None:
    """Test files are checked as strictly as rule files, every mistake with its position."""
    assert expected == problems_of(text)


def test_cases_load_refuses_yaml_tags_and_alias_loops() -> None:
    """A test file is read like a rules file: a tag is reported at the tag, an alias loop at
    its anchor, instead of an object built or a recursion without end."""
    text = (
        "tests:\n  - name: t\n    event:\n      action: updated\n"
        "      data: !!python/object/apply:os.system ['x']\n"
        "      previous_data: &p {note: *p}\n"
        "    expect: {fired: []}\n"
    )

    assert [
        f"{TEST_FILE}:5:13: YAML tags are not allowed; found !!python/object/apply:os.system "
        "(write the value without it)",
        f"{TEST_FILE}:6:22: this node holds an alias of itself (*), a loop no rule can be read "
        "from; an alias may only repeat a node outside it",
    ] == problems_of(text)


def test_cases_load_reports_duplicate_test_names() -> None:
    """Two cases of one name in a file are a mistake."""
    case = '  - name: b\n    event: {action: updated, date_created: "2026-01-01"}\n'
    case += "    expect: {no_update: true}\n"

    assert ["rules/x.test.yaml:5:5: duplicate test name 'b'"] == problems_of(
        "tests:\n" + case + case
    )


def test_cases_event_file_reads_an_envelope_or_an_event() -> None:
    """event_file may hold a webhook envelope or a bare event, read relative to the test file."""
    event = {
        "id": "ev_f",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": "oppo_f",
        "date_created": "2026-01-01T00:00:00",
        "data": {"value": 7},
    }
    files = {"bare.json": json.dumps(event), "wrapped.json": json.dumps({"event": event})}
    text = (
        "tests:\n"
        "  - {name: bare, event_file: bare.json, expect: {no_update: true}}\n"
        "  - {name: wrapped, event_file: wrapped.json, expect: {no_update: true}}\n"
    )

    cases = load_cases(text, TEST_FILE, read_event_file=files.__getitem__)

    assert [("ev_f", {"value": 7}), ("ev_f", {"value": 7})] == [
        (c.event.id, dict(c.event.data)) for c in cases
    ]


def test_cases_event_file_problems_are_reported() -> None:
    """Missing files, bad JSON, bad events and offline loading each give a clear problem."""

    def read(name: str) -> str:
        if name == "missing.json":
            raise FileNotFoundError(2, "No such file or directory")
        return {"bad.json": "{", "odd.json": '{"action": "updated"}'}[name]

    text = "tests:\n" + "".join(
        f"  - {{name: {n}, event_file: {n}.json, expect: {{no_update: true}}}}\n"
        for n in ("missing", "bad", "odd")
    )

    assert [
        "rules/x.test.yaml:2:33: cannot read event file 'missing.json': [Errno 2] No such file or"
        " directory",
        "rules/x.test.yaml:3:29: cannot read event file 'bad.json': Expecting property name "
        "enclosed"
        " in double quotes: line 1 column 2 (char 1)",
        "rules/x.test.yaml:4:29: invalid event: event.date_created must be an ISO 8601 timestamp,"
        " got None",
    ] == problems_of(text, read_event_file=read)
    assert [
        "rules/x.test.yaml:2:33: event_file needs tests read from disk; found 'missing.json'"
    ] == problems_of(text.split("\n")[0] + "\n" + text.split("\n")[1] + "\n")


def test_cases_run_reports_fired_mismatch_with_reasons() -> None:
    """A rule expected to fire that did not is named, with the reason it did not."""
    result = run_case(RULES, one_case("{fired: [tag]}"))

    assert (
        False,
        [
            "fired: expected [tag], got [stamp-date-won, trial]",
            "rule 'tag' did not fire: value 5 gte 100 is false (rules/x.yaml:8:11)",
        ],
    ) == (result.ok, result.failures)


def test_cases_run_reports_update_differences() -> None:
    """Update mismatches list each differing, missing and unexpected key."""
    result = run_case(
        RULES,
        one_case('{update: {date_won: "2026-11-26", value: 1}}', data="{status_type: won, x: 1}"),
    )

    assert [
        'update: date_won expected "2026-11-26", got "2026-11-27"',
        "update: expected value = 1, got nothing",
    ] == result.failures


def test_cases_run_reports_unexpected_update_keys() -> None:
    """Keys the case did not expect are failures too."""
    result = run_case(RULES, one_case("{update: {}}"))

    assert ['update: unexpected date_won = "2026-11-27"'] == result.failures


def test_cases_run_checks_no_update_not_fired_and_tz() -> None:
    """no_update, not_fired and tz_offset_hours are compared with the plan."""
    result = run_case(
        RULES, one_case("{no_update: true, not_fired: [stamp-date-won], tz_offset_hours: 5.5}")
    )

    assert [
        "not_fired: rule 'stamp-date-won' fired",
        'no_update: expected no update, got {"date_won": "2026-11-27"}',
        "tz_offset_hours: expected 5.5, got -5.0",
    ] == result.failures


def test_cases_run_checks_dry_run_update() -> None:
    """A dry_run rule's update is checked under dry_run_update."""
    result = run_case(RULES, one_case("{dry_run_update: {note: tried}, tz_offset_hours: -5}"))

    assert (True, {"note": "tried"}) == (result.ok, dict(result.plan.dry_run_update))


def test_cases_run_reports_unknown_rule_names() -> None:
    """An expectation naming a rule that does not exist is a failure, not a silent pass."""
    result = run_case(RULES, one_case("{not_fired: [stamp-date-wno]}"))

    assert ["no rule is named 'stamp-date-wno'"] == result.failures


def test_cases_run_expecting_an_update_that_is_missing() -> None:
    """no_update: false demands an update."""
    result = run_case(
        RULES, one_case("{no_update: false}", data="{status_type: won, date_won: '2026-11-27'}")
    )

    assert ["no_update: expected an update, got none"] == result.failures


RULE = "rules:\n  - name: {name}\n    then: [{{set: {{confidence: 1}}}}]\n"
CASE = (
    "tests:\n  - name: {name}\n"
    '    event: {{action: updated, date_created: "2026-01-01", data: {{confidence: {a}}}}}\n'
    "    expect: {{no_update: true}}\n"
)


def write_folder(folder: Path) -> None:
    (folder / "a.yaml").write_text(RULE.format(name="ra"), encoding="utf-8")
    (folder / "b.yml").write_text(RULE.format(name="rb"), encoding="utf-8")
    (folder / "a.test.yaml").write_text(CASE.format(name="holds", a=1), encoding="utf-8")
    (folder / "b.test.yml").write_text(CASE.format(name="differs", a=0), encoding="utf-8")
    (folder / "notes.txt").write_text("not rules", encoding="utf-8")


def test_cases_discover_a_folder(tmp_path: Path) -> None:
    """A folder stands for its rule files and its test files."""
    write_folder(tmp_path)
    rules = [os.path.join(str(tmp_path), name) for name in ("a.yaml", "b.yml")]
    tests = [os.path.join(str(tmp_path), name) for name in ("a.test.yaml", "b.test.yml")]

    assert (rules, tests) == discover(str(tmp_path))


def test_cases_discover_a_rules_file_and_its_tests(tmp_path: Path) -> None:
    """A rules file stands for itself and its sibling test file."""
    write_folder(tmp_path)
    rules = str(tmp_path / "a.yaml")

    assert ([rules], [str(tmp_path / "a.test.yaml")]) == discover(rules)


def test_cases_discover_a_test_file_with_its_folders_rules(tmp_path: Path) -> None:
    """A test file runs against every rule file of its folder."""
    write_folder(tmp_path)
    test = str(tmp_path / "b.test.yml")

    assert ([str(tmp_path / "a.yaml"), str(tmp_path / "b.yml")], [test]) == discover(test)


def test_cases_discover_a_missing_path(tmp_path: Path) -> None:
    """A missing path is a problem, not an empty run."""
    with pytest.raises(InvalidRulesError):
        discover(tmp_path / "nope")


def test_cases_run_path_runs_every_case(tmp_path: Path) -> None:
    """run_path loads the rules and runs all cases, listing failures with their positions."""
    write_folder(tmp_path)

    report = run_path(tmp_path)

    assert (
        False,
        [
            f"{tmp_path / 'b.test.yml'}:2:5: differs: no_update: expected no update, "
            'got {"confidence": 1}'
        ],
    ) == (report.ok, report.failures())


def test_cases_run_path_reads_event_files_beside_the_test(tmp_path: Path) -> None:
    """event_file paths are relative to the test file."""
    (tmp_path / "r.yaml").write_text(RULE.format(name="r"), encoding="utf-8")
    (tmp_path / "events").mkdir()
    event = {
        "id": "e",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": "o",
        "date_created": "2026-01-01",
        "data": {"confidence": 1},
    }
    (tmp_path / "events" / "e.json").write_text(json.dumps({"event": event}), encoding="utf-8")
    (tmp_path / "r.test.yaml").write_text(
        "tests: [{name: t, event_file: events/e.json, expect: {fired: [r], no_update: true}}]\n",
        encoding="utf-8",
    )

    assert True is run_path(tmp_path / "r.yaml").ok


def test_cases_run_path_reports_rule_and_test_problems_together(tmp_path: Path) -> None:
    """Broken rules and broken tests are reported in one go."""
    (tmp_path / "r.yaml").write_text("rules: 5\n", encoding="utf-8")
    (tmp_path / "r.test.yaml").write_text("tests: 5\n", encoding="utf-8")
    with pytest.raises(InvalidRulesError) as caught:
        run_path(tmp_path)

    assert [
        f"{tmp_path / 'r.test.yaml'}:1:8: tests needs a list of test cases; found 5",
        f"{tmp_path / 'r.yaml'}:1:8: rules must be a list of rules; found 5",
    ] == [str(p) for p in caught.value.problems]


def test_cases_event_file_without_its_data_is_refused() -> None:
    """An event saved from Close's log without its data (a non-admin key, over an hour
    later) is reported, not run against the rules as an empty opportunity."""
    event = {
        "id": "ev_f",
        "object_type": "opportunity",
        "action": "updated",
        "object_id": "oppo_f",
        "date_created": "2026-01-01T00:00:00",
        "data": None,
        "previous_data": None,
    }
    text = "tests:\n  - {name: hidden, event_file: hidden.json, expect: {no_update: true}}\n"

    assert [
        "rules/x.test.yaml:2:32: invalid event: event ev_f came without its data (Close's event "
        "log shows it to a non-admin API key only for an hour); rules cannot judge an "
        "opportunity that was not sent"
    ] == problems_of(text, read_event_file={"hidden.json": json.dumps(event)}.__getitem__)
