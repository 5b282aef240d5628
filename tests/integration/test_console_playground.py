"""The console's rule playground (/console/playground) with the real app, a real Redis and
the fake Close: a pasted file's problems on their lines, a backtest of the last 7 days with
its difference from the rules in force, the size cap, and nothing pasted kept anywhere."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from fakeclose import FakeClose
from service.adapters.rulefiles import RulesHolder
from service.config.errors import InvalidRulesError
from service.config.settings import Settings
from service.console.pages import playground
from service.core.rules import load_rules
from tests.conftest import RULES_DIR
from tests.consoleclient import console_client, console_settings, sign_in
from tests.integration.test_authoring_replay import won_event

SHIPPED = (RULES_DIR / "deal-hygiene.yaml").read_text(encoding="utf-8")
MARKER = "pasted-marker-5b8e0c"
BROKEN = """\
timezone: America/New_York
rules:
  - name: stamp-date-won
    trigger: opportunity.updated
    if:
      - status_type: {changed_to: won}
      - value: {gtee: 100}
    then:
      - set: {date_won: today}
"""


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rules: the rules in force."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "deal-hygiene.yaml").write_text(SHIPPED, encoding="utf-8")
    return folder


@pytest.fixture
def organization(fake_close: FakeClose) -> FakeClose:
    fake_close.add_custom_field(
        "Segment", type="choices", accepts_multiple_values=True, choices=["SMB", "Enterprise"]
    )
    return fake_close


@pytest.fixture
def settings(redis_url: str, organization: FakeClose, rules_dir: Path) -> Settings:
    return console_settings(
        redis_url,
        rules_dir,
        close_api_key=FakeClose.DEFAULT_API_KEY,
        close_api_url=organization.url,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[tuple[FlaskClient, str]]:
    made = console_client(settings)
    csrf = sign_in(made)
    yield made, csrf
    made.application.extensions["dealkeeper"].connection.close()


def post(
    signed: tuple[FlaskClient, str], text: str, *, action: str = "validate"
) -> tuple[int, str]:
    made, csrf = signed
    answer = made.post(
        "/console/playground", data={"csrf_token": csrf, "rules": text, "action": action}
    )
    return answer.status_code, answer.get_data(as_text=True)


def row(page: str, line: int) -> str:
    """The rendered row of one pasted line."""
    start = page.index(f'<tr id="line-{line}"')
    return page[start : page.index("</tr>", start)]


def test_a_broken_file_shows_its_problem_on_its_line(client: tuple[FlaskClient, str]) -> None:
    """`gtee` on line 7: the message with line:col beside line 7, no other line marked, and
    the file:line:col list as `dealkeeper validate` prints it."""
    with pytest.raises(InvalidRulesError) as rejected:
        load_rules(BROKEN, "pasted.yaml")
    (problem,) = rejected.value.problems
    assert 7 == problem.line

    status, page = post(client, BROKEN.replace("\n", "\r\n"))  # as a browser sends it

    assert 200 == status
    assert str(problem) in html.unescape(page)
    marked = row(page, 7)
    assert 'class="line has-problem"' in marked
    assert f"7:{problem.column}: {problem.message}" in html.unescape(marked)
    assert "{gtee: 100}" in html.unescape(marked)
    assert [7] == [n for n in range(1, 10) if "has-problem" in row(page, n)]


def test_a_good_file_validates(client: tuple[FlaskClient, str]) -> None:
    status, page = post(client, SHIPPED)

    assert 200 == status
    assert 'id="validation-ok"' in page and "ok: 3 rules" in page
    assert "has-problem" not in page


def test_a_good_file_is_summed_up_as_validate_sums_it_up(
    client: tuple[FlaskClient, str],
) -> None:
    """Two rules writing one field (a warning) and a report check: counted as the CLI counts."""
    text = (
        "rules:\n"
        "  - name: big\n    if: [{value: {gte: 100}}]\n    then: [{set: {confidence: 90}}]\n"
        "  - name: small\n    if: [{value: {gte: 10}}]\n    then: [{set: {confidence: 10}}]\n"
        "report:\n"
        "  - name: quiet\n    find: {status_type: active}\n    if: [{value: {gte: 100}}]\n"
    )
    status, page = post(client, text)

    assert 200 == status
    assert "ok: 2 rules and 1 report check; 1 warning." in page


def test_the_backtest_diffs_the_pasted_rules_against_the_rules_in_force(
    client: tuple[FlaskClient, str], organization: FakeClose
) -> None:
    """One deal won an hour ago: the rules in force raise its confidence to 100; pasted
    rules that do so only below 50 no longer would (one write no longer done); no write."""
    won_event(organization, at=datetime.now(UTC) - timedelta(hours=1))
    changed = SHIPPED.replace("{lt: 100}", "{lt: 50}")

    status, page = post(client, changed, action="backtest")

    assert 200 == status, page
    assert 'id="diff-removed">1<' in page
    assert 'id="diff-added">0<' in page
    assert 'id="diff-events">1 of 2<' in page
    assert "- " in page and "confidence = 100" in page
    assert "backtest-truncated" not in page
    assert [] == organization.requests_matching("PUT")


def test_the_backtest_stops_at_its_budget_and_says_so(
    client: tuple[FlaskClient, str], organization: FakeClose, monkeypatch: pytest.MonkeyPatch
) -> None:
    for hours in range(1, 5):
        won_event(organization, at=datetime.now(UTC) - timedelta(hours=hours))
    monkeypatch.setattr(playground, "BACKTEST_MAX_EVENTS", 3)  # one event per action

    _, page = post(client, SHIPPED, action="backtest")

    assert 'id="backtest-truncated"' in page
    assert "2 read." in page  # one created, one updated (no deletion in the log)


def test_without_a_close_key_the_backtest_says_why(settings: Settings) -> None:
    made = console_client(settings.with_changes(close_api_key=None))
    csrf = sign_in(made)

    _, page = post((made, csrf), SHIPPED, action="backtest")

    assert 'id="backtest-unavailable"' in page and "CLOSE_API_KEY is not set" in page
    assert 'id="validation-ok"' in page  # validation needs no key
    made.application.extensions["dealkeeper"].connection.close()


def test_too_large_a_paste_is_refused_with_the_limit(client: tuple[FlaskClient, str]) -> None:
    over = "# " + "x" * (playground.MAX_PASTE_BYTES) + "\n"
    huge = "# " + "x" * (2 * 1024 * 1024) + "\n"  # over the web process's body limit too

    status, page = post(client, over)
    huge_status, huge_page = post(client, huge)

    assert 413 == status and 'id="playground-too-large"' in page
    assert "at most 256 KB" in page and "validation" not in page.split("</form>")[1]
    assert 413 == huge_status and "at most 256 KB" in huge_page


def test_nothing_pasted_is_saved_or_applied(
    client: tuple[FlaskClient, str],
    rules_dir: Path,
    redis_client: redis.Redis,
    organization: FakeClose,
) -> None:
    """The rules file, the rules workers load and the web's rules in force stay as they
    were, and the pasted text is in no Redis key or value."""
    won_event(organization, at=datetime.now(UTC) - timedelta(hours=1))
    on_disk = (rules_dir / "deal-hygiene.yaml").read_bytes()
    before = RulesHolder(str(rules_dir), check_interval_sec=0).current().digest
    pasted = SHIPPED.replace(
        "description: A deal moved to won", f"description: {MARKER} A deal moved to won"
    ).replace("{lt: 100}", "{lt: 50}")
    assert MARKER in pasted

    for action in ("validate", "backtest"):
        status, page = post(client, pasted, action=action)
        assert 200 == status and MARKER in page

    assert on_disk == (rules_dir / "deal-hygiene.yaml").read_bytes()
    assert ["deal-hygiene.yaml"] == sorted(p.name for p in rules_dir.iterdir())
    assert before == RulesHolder(str(rules_dir), check_interval_sec=0).current().digest
    web_rules = client[0].application.extensions["dealkeeper"].rules
    assert before == web_rules.current().digest
    assert [] == [key for key in redis_client.scan_iter() if MARKER in dump(redis_client, key)]


def dump(connection: redis.Redis, key: bytes) -> str:
    """Everything a key holds, as text, whatever its type."""
    readers: dict[Any, Callable[[bytes], Any]] = {
        b"string": connection.get,
        b"hash": connection.hgetall,
        b"list": lambda k: connection.lrange(k, 0, -1),
        b"set": connection.smembers,
        b"zset": lambda k: connection.zrange(k, 0, -1),
        b"stream": connection.xrange,
    }
    reader = readers.get(connection.type(key))
    return repr(key) + (repr(reader(key)) if reader else "")


def test_the_pasted_text_is_shown_escaped(client: tuple[FlaskClient, str]) -> None:
    """What is pasted comes back in the textarea and on the numbered lines as text, never
    as markup (a paste from somewhere else must not run in the console's page)."""
    pasted = "rules:\n  - name: x</textarea><script>alert(1)</script>\n"

    _, page = post(client, pasted)

    assert "<script>" not in page and "</textarea><script>" not in page
    assert "x&lt;/textarea&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
