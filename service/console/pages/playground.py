"""The rule playground: paste a rules file, see `dealkeeper validate`'s problems on their
lines, then a backtest over the last 7 days of Close's event log with the difference from
the rules in force (`dealkeeper backtest --diff`).

Nothing pasted is saved or applied: the text lives in this one request (no file, no Redis
key, no log line carries it); rules change in git. The backtest reads Close from the web
process within a budget of events and seconds (and the workers' shared rate limit), and
says when it stopped short of the week.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from service.adapters.close import CloseClient
from service.adapters.eventlog import read_events_bounded
from service.adapters.metadata import fetch_metadata
from service.adapters.ratelimit import SharedRateLimiter
from service.authoring.backtest import Backtest, RulesDiff, replay
from service.authoring.findings import counted, noted, warnings_of
from service.authoring.interactions import RuleWarning
from service.authoring.naming import field_names, readable_key
from service.config.errors import CloseRateLimitedError, DealkeeperError, InvalidRulesError, Problem
from service.console.context import console
from service.core.rules import RuleSet, load_rules, load_rules_path
from service.core.rules.evaluation.values import show

PASTED_FILE = "pasted.yaml"  # the name problems carry: file:line:col
MAX_PASTE_BYTES = 256 * 1024
BACKTEST_DAYS = 7
# A web request must answer: the backtest reads at most this many events, for at most this
# long, then judges what it read and says it stopped short.
BACKTEST_MAX_EVENTS = 3_000
BACKTEST_BUDGET_SEC = 20.0
# A rate-limit wait longer than this is reported, not waited out in the request.
MAX_INLINE_WAIT_SEC = 2.0
TOO_LARGE = (
    "The pasted text is {size} KB; the playground takes at most {limit} KB. Check a larger "
    "file with `dealkeeper validate` and `dealkeeper backtest --diff`."
)


@dataclass
class Line:
    """One line of the pasted text, with the problems and warnings found on it."""

    number: int
    text: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class BacktestView:
    """What the backtest found, or why there is none."""

    unavailable: str | None = None
    result: Backtest | None = None
    diff: RulesDiff | None = None
    since: datetime | None = None
    complete: bool = True
    read: int = 0
    in_force: str = ""
    samples: list[tuple[str, str]] = field(default_factory=list)  # (mark, text)
    rows: list[tuple[str, int, int, int]] = field(default_factory=list)


def add_routes(bp: Blueprint) -> None:
    bp.add_url_rule("/playground", "playground", _page, methods=["GET", "POST"])
    bp.register_error_handler(RequestEntityTooLarge, _too_large)


def _page() -> str | tuple[str, int]:
    if request.method == "GET":
        return _render()
    # Browsers send a textarea's lines with CRLF; positions are counted on LF lines.
    text = request.form.get("rules", "").replace("\r\n", "\n")
    size = len(text.encode("utf-8"))
    if size > MAX_PASTE_BYTES:
        return _render(too_large=_too_large_text(size)), 413
    problems: list[Problem] = []
    warnings: list[RuleWarning] = []
    ruleset: RuleSet | None = None
    try:
        ruleset = load_rules(text, PASTED_FILE)
    except InvalidRulesError as error:
        problems = list(error.problems)
    if ruleset is not None:
        warnings = warnings_of(ruleset)
    backtest = None
    if ruleset is not None and request.form.get("action") == "backtest":
        backtest = _backtest(ruleset)
    return _render(
        text=text,
        validated=True,
        summary=f"{counted(ruleset)}{noted(warnings)}" if ruleset else "",
        problems=[(p.line, str(p)) for p in problems],
        warnings=[str(w) for w in sorted(warnings, key=lambda w: (w.line, w.column))],
        lines=_lines(text, problems, warnings),
        unplaced=[str(p) for p in problems if not 1 <= p.line <= _line_count(text)],
        backtest=backtest,
    )


def _render(**values: Any) -> str:
    values.setdefault("text", "")
    return render_template(
        "console/playground.html",
        title="Rule playground",
        max_kb=MAX_PASTE_BYTES // 1024,
        days=BACKTEST_DAYS,
        max_events=BACKTEST_MAX_EVENTS,
        budget_sec=int(BACKTEST_BUDGET_SEC),
        has_key=bool(console().settings.close_api_key),
        **values,
    )


def _too_large(_: RequestEntityTooLarge) -> tuple[str, int]:
    """A body over the web process's limit is refused before it is read: say so as the
    playground, whatever the page (only the playground takes large forms)."""
    size = (request.content_length or 0) // 1024
    if request.endpoint != "console.playground":
        return "The request is too large.\n", 413
    return _render(too_large=_too_large_text(size * 1024)), 413


def _too_large_text(size: int) -> str:
    return TOO_LARGE.format(size=size // 1024, limit=MAX_PASTE_BYTES // 1024)


def _line_count(text: str) -> int:
    return len(text.split("\n"))


def _lines(text: str, problems: Sequence[Problem], warnings: Sequence[RuleWarning]) -> list[Line]:
    lines = [Line(i, t) for i, t in enumerate(text.split("\n"), start=1)]
    for problem in problems:
        if 1 <= problem.line <= len(lines):
            lines[problem.line - 1].problems.append(f"{problem.column}: {problem.message}")
    for warning in warnings:
        if 1 <= warning.line <= len(lines):
            lines[warning.line - 1].warnings.append(f"{warning.column}: {warning.message}")
    return lines


def _backtest(ruleset: RuleSet) -> BacktestView:
    """The pasted rules over the last days of the event log, against the rules in force."""
    the = console()
    settings = the.settings
    if not settings.close_api_key:
        return BacktestView(
            unavailable="CLOSE_API_KEY is not set: the backtest reads Close's event log, so "
            "it cannot run here. Validation above needs no key."
        )
    in_force: RuleSet | None = None
    try:
        in_force = load_rules_path(settings.rules_path)
        in_force_text = f"{settings.rules_path} (digest {in_force.digest[:12]})"
    except InvalidRulesError:
        in_force_text = f"{settings.rules_path}: rejected, so no difference"
    since = datetime.now(UTC) - timedelta(days=BACKTEST_DAYS)
    throttle = SharedRateLimiter(
        the.connection,
        rate_per_sec=settings.tuning.close_rate_limit_per_sec,
        max_inline_wait_sec=MAX_INLINE_WAIT_SEC,
    )
    try:
        with CloseClient.from_settings(
            settings, max_inline_wait_sec=MAX_INLINE_WAIT_SEC, throttle=throttle
        ) as client:
            metadata = fetch_metadata(client)
            read = read_events_bounded(
                client,
                since=since,
                max_events=BACKTEST_MAX_EVENTS,
                deadline=time.monotonic() + BACKTEST_BUDGET_SEC,
            )
    except CloseRateLimitedError as error:
        wait = f"{error.retry_after_sec:.0f}"
        return BacktestView(unavailable=f"Close's rate limit asks to wait {wait} s; try then.")
    except DealkeeperError as error:
        return BacktestView(unavailable=f"Close's event log could not be read: {error}")
    result, diff = replay(read.events, ruleset, metadata=metadata, baseline=in_force)
    names = field_names(metadata)
    view = BacktestView(
        result=result,
        diff=diff if in_force is not None else None,
        since=since,
        complete=read.complete,
        read=len(read.events),
        in_force=in_force_text,
        rows=[(t.name, t.seen, t.fired, t.writes) for t in result.rules.values()],
    )
    for mark, change in diff.samples:
        where = f"{change.when} {change.opportunity_id} ({change.event_id})"
        key = readable_key(change.key, names)
        before, after = show(change.before), show(change.after)
        told = {"+": f"{key} = {after}", "-": f"{key} = {before}"}
        view.samples.append((mark, f"{where}: {told.get(mark, f'{key} {before} -> {after}')}"))
    return view
