"""`dealkeeper test --add-case EVENT_ID`: a real event, read from the fake Close's event log
(real HTTP) or from a job in a real Redis, appended to a rule test file as a case that
passes at once, with its personal data replaced. Never a write to Close."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from fakeclose import FakeClose
from service.adapters.queue import enqueue_event, make_queue
from service.commands.cli import cli
from service.core.events import event_from_dict
from tests.conftest import RULES_DIR

# Personal data the deal carries; none of it may reach the test file.
LEAD = "Müller & Söhne GmbH"
CONTACT = "Jane Roe"
EMAIL = "jane.roe@mueller.example"
PHONE = "+49 30 1234567"
NOTE = f"Call {CONTACT} at {PHONE} or {EMAIL}\nabout the renewal"
DESCRIPTION = "prefers calls after 5pm"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """A copy of the shipped rules folder, to append to."""
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder, ignore=shutil.ignore_patterns("examples"))
    return folder


@pytest.fixture
def organization(fake_close: FakeClose) -> FakeClose:
    """The fake Close with the Segment field the shipped rules use and a free-text field."""
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )
    fake_close.add_custom_field("Buying notes", type="text")
    return fake_close


def env(fake: FakeClose, **more: str) -> dict[str, str]:
    return {"CLOSE_API_KEY": FakeClose.DEFAULT_API_KEY, "CLOSE_API_URL": fake.url, **more}


def run(args: list[str], environment: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=environment)
    return result.exit_code, result.output


def won_event(
    fake: FakeClose, *, value: int = 500000, hours_ago: float = 0, **also: Any
) -> dict[str, Any]:
    """A person moves a deal full of personal data to Won (and writes `also`); returns the
    event."""
    oppo = fake.add_opportunity(
        value=value,
        confidence=50,
        note=NOTE,
        lead_name=LEAD,
        contact_name=CONTACT,
        **{"custom.Buying notes": DESCRIPTION, "custom.Segment": ["SMB"]},
    )
    fake.now = datetime.now(UTC) - timedelta(hours=hours_ago)
    event = fake.user_update(oppo["id"], {"status_id": fake.status_id("Won"), **also})
    fake.now = None
    assert event is not None
    return event


def test_a_real_event_becomes_a_passing_case_beside_its_rules(
    organization: FakeClose, rules: Path
) -> None:
    """The case goes after the last one of deal-hygiene.test.yaml (whose rules fired),
    everything before it byte for byte; it expects today's update and passes at once."""
    event = won_event(organization)
    test_file = rules / "deal-hygiene.test.yaml"
    before = test_file.read_text(encoding="utf-8")
    cases = int(_summary(run(["test", str(rules)], {}))[1].split()[0])

    code, output = run(["test", str(rules), "--add-case", event["id"]], env(organization))

    after = test_file.read_text(encoding="utf-8")
    assert 0 == code, output
    assert after.startswith(before)
    assert f"added '{event['id']}: opportunity.updated of {event['object_id']}" in output
    assert "ok: the case passes with today's rules" in output
    added = after[len(before) :]
    assert "fired: [stamp-date-won, full-confidence-when-won]" in added
    assert "confidence: 100" in added and "date_won:" in added
    summary = f"{cases + 1} passed, 0 failed (1 test files)"
    assert (0, summary) == _summary(run(["test", str(rules)], {}))
    assert [] == organization.requests_matching("PUT")


def test_personal_data_is_replaced_and_ids_are_kept(organization: FakeClose, rules: Path) -> None:
    """Names, emails, phone numbers, notes and free-text custom fields become placeholders;
    ids, statuses, choices and numbers stay."""
    event = won_event(organization)

    code, output = run(["test", str(rules), "--add-case", event["id"]], env(organization))

    text = (rules / "deal-hygiene.test.yaml").read_text(encoding="utf-8")
    assert 0 == code, output
    leaked = [s for s in (LEAD, CONTACT, EMAIL, PHONE, "Roe", "renewal", DESCRIPTION) if s in text]
    assert [] == leaked
    kept = [event["id"], event["object_id"], event["lead_id"], "Won", "SMB", "500000"]
    assert [] == [s for s in kept if s not in text]
    assert "lead_name 1" in text and "Buying notes" in text
    assert "personal data replaced by placeholders in:" in output
    assert FakeClose.DEFAULT_API_KEY not in output + text  # the key is no case's business


def test_the_same_event_twice_is_a_name_collision(organization: FakeClose, rules: Path) -> None:
    """Adding an event the file already has says so and leaves the file as it is."""
    event = won_event(organization)
    args = ["test", str(rules), "--add-case", event["id"]]
    assert 0 == run(args, env(organization))[0]
    test_file = rules / "deal-hygiene.test.yaml"
    before = test_file.read_text(encoding="utf-8")

    code, output = run(args, env(organization))

    assert 1 == code
    assert "already has a case named" in output and "give another name with --name" in output
    assert before == test_file.read_text(encoding="utf-8")
    assert 0 == run([*args, "--name", "won again"], env(organization))[0]


def test_an_event_no_rule_triggers_on_is_refused(organization: FakeClose, rules: Path) -> None:
    """A deletion, which no shipped rule triggers on, would make a case testing nothing."""
    oppo = organization.add_opportunity(value=100)
    event = organization.user_delete(oppo["id"])
    files = sorted(p.name for p in rules.iterdir())

    code, output = run(["test", str(rules), "--add-case", event["id"]], env(organization))

    assert 1 == code
    assert "no rule triggers on opportunity.deleted" in output
    assert files == sorted(p.name for p in rules.iterdir())


@pytest.mark.parametrize(
    ("expect", "code", "shown"),
    [
        ("update: {confidence: 100}", 1, "update: unexpected date_won"),
        ("no-update", 1, "no_update: expected no update"),
        ("fired: [stamp-date-won, full-confidence-when-won]", 0, "ok: the case passes"),
    ],
)
def test_expect_pins_what_the_user_says(
    organization: FakeClose, rules: Path, expect: str, code: int, shown: str
) -> None:
    """--expect replaces today's plan as the expectation; a case it makes fail is written
    and reported as failing (exit 1), as `dealkeeper test` will. The deal's date_won is a
    past day, so stamp-date-won always writes one. Left to the fake, date_won is UTC's
    today, which is New York's too except from 00:00 to 05:00 UTC: the update then had no
    date_won, and the test passed only in those hours."""
    event = won_event(organization, date_won="2020-01-02")
    args = ["test", str(rules), "--add-case", event["id"], "--to", str(rules / "pinned.test.yaml")]

    status, output = run([*args, "--expect", expect], env(organization))

    assert (code, True) == (status, shown in output), output
    assert (rules / "pinned.test.yaml").is_file()


def test_a_bad_expect_is_explained_before_anything_is_read(
    organization: FakeClose, rules: Path
) -> None:
    code, output = run(
        ["test", str(rules), "--add-case", "ev_x", "--expect", "updates: {a: 1}"],
        env(organization),
    )

    assert 1 == code
    assert "--expect needs no-update or a YAML mapping of fired, not_fired, update" in output
    assert "unknown key 'updates'; did you mean 'update'?" in output
    assert [] == organization.requests


def test_appending_keeps_comments_and_refuses_a_file_it_cannot_append_to(
    organization: FakeClose, rules: Path
) -> None:
    """A file whose tests list is not its last key is left alone with a clear message."""
    event = won_event(organization)
    odd = rules / "odd.test.yaml"
    odd.write_text(
        "tests:\n  - name: a\n    event: {action: created, date_created: '2026-01-01T00:00:00Z'}\n"
        "    expect: {no_update: true}\n# trailing comment\nmetadata: {statuses: []}\n",
        encoding="utf-8",
    )
    before = odd.read_text(encoding="utf-8")
    args = ["test", str(rules), "--add-case", event["id"], "--to", str(odd)]

    code, output = run(args, env(organization))

    assert 1 == code
    assert "cannot append to" in output and "Make `tests:` the file's last key" in output
    assert before == odd.read_text(encoding="utf-8")


def test_without_the_events_data_it_is_read_from_a_job_in_redis(
    redis_client: redis.Redis, redis_url: str, rules: Path
) -> None:
    """A non-admin key reads an event older than an hour without its deal: the job
    dealkeeper still holds (here, queued) has it whole."""
    with FakeClose(admin=False) as fake:
        fake.add_custom_field(
            "Segment", type="choices", accepts_multiple_values=True, choices=["SMB"]
        )
        fake.add_custom_field("Buying notes", type="text")
        event = won_event(fake, hours_ago=2)
        environment = env(fake, REDIS_URL=redis_url)
        args = ["test", str(rules), "--add-case", event["id"]]

        missing_code, missing = run(args, environment)
        enqueue_event(event_from_dict(event), queue=make_queue(redis_client))
        code, output = run(args, environment)

    assert 1 == missing_code
    assert f"cannot read event {event['id']}: it came without its deal" in missing
    assert "use an admin's CLOSE_API_KEY" in missing
    assert 0 == code, output
    assert "from a job dealkeeper holds in Redis" in (rules / "deal-hygiene.test.yaml").read_text(
        encoding="utf-8"
    )


def _summary(result: tuple[int, str]) -> tuple[int, str]:
    code, output = result
    return code, output.strip().splitlines()[-1]


def test_an_event_neither_close_nor_redis_has_is_a_clear_error(
    organization: FakeClose, redis_url: str, rules: Path
) -> None:
    environment = env(organization, REDIS_URL=redis_url)

    code, output = run(["test", str(rules), "--add-case", "ev_nope"], environment)

    assert 1 == code
    assert (
        "Error: cannot read event ev_nope: Close has no such event (the event log keeps 30 "
        "days), and no job in dealkeeper's Redis holds it."
    ) in output.replace("\n", " ")
