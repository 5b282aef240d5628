"""Templates in rule values: rendered from the event alone, checked at load, and sandboxed."""

from __future__ import annotations

import pytest

from service.errors import InvalidRulesError
from service.rules import load_rules, make_plan
from service.rules.model import TemplateExpr
from service.rules.templates import (
    MAX_OUTPUT_CHARS,
    TemplateRenderError,
    compile_template,
    render_template,
)
from tests.unit.rules_support import make_event

WON = make_event(
    date_created="2026-11-28T03:30:00Z",  # 22:30 on the 27th in New York
    changed_fields=["status_type"],
    previous_data={"status_type": "active", "note": "old"},
    data={"id": "oppo_1", "status_type": "won", "user_name": "Ann Smith", "value": 5000},
)


def render(text: str, *, timezone: str = "America/New_York") -> str:
    compiled, problems = compile_template(text)
    assert [] == problems
    assert compiled is not None
    return render_template(compiled, event=WON, timezone=timezone)


def problems_of(text: str) -> list[str]:
    return compile_template(text)[1]


def rule_with_note(value: str) -> str:
    return f"rules:\n  - name: r\n    then:\n      - set: {{note: {value}}}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Won on {{ today }} by {{ opportunity.user_name }}", "Won on 2026-11-27 by Ann Smith"),
        ("{{ now }}", "2026-11-28T03:30:00+00:00"),
        (
            "{{ event.id }} {{ event.action }} {{ event.changed_fields|join(',') }}",
            "ev_1 updated status_type",
        ),
        ("was {{ event.previous_data.note }}", "was old"),
        ("[{{ opportunity.contact_name }}]", "[]"),
        ("{{ opportunity.value // 100 }} dollars", "50 dollars"),
        ("{{ opportunity['custom.cf_x'] | default('none') }}", "none"),
        ("{{ opportunity.user_name|upper }}", "ANN SMITH"),
    ],
)
def test_templates_render_from_the_event(text: str, expected: str) -> None:
    """Opportunity fields, event fields, today (rule zone) and now render; null is blank."""
    assert expected == render(text)


def test_templates_today_follows_the_rules_timezone() -> None:
    """today is the event's date in the rule's zone, not UTC's."""
    assert ("2026-11-27", "2026-11-28") == (
        render("{{ today }}", timezone="America/New_York"),
        render("{{ today }}", timezone="Europe/Berlin"),
    )


def test_templates_render_the_same_for_the_same_event() -> None:
    """Rendering reads no clock: the same event gives the same text, every time."""
    assert render("{{ now }} {{ today }}") == render("{{ now }} {{ today }}")


def test_templates_cannot_change_the_event() -> None:
    """A template gets copies: the event the engine goes on using is untouched."""
    compiled, _ = compile_template("{{ event.previous_data.update({'note': 'new'}) }}")
    assert compiled is not None
    with pytest.raises(TemplateRenderError):
        render_template(compiled, event=WON, timezone="UTC")

    assert "old" == WON.previous_data["note"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__mro__': names starting with _ are not available"),
        ("{{ cycler.__init__.__globals__ }}", "unknown name 'cycler' in template"),
        ("{{ config }}", "unknown name 'config' in template"),
        ("{{ self }}", "'self' is not available in templates"),
        ("{{ lipsum() }}", "unknown name 'lipsum' in template"),
        ("{{ range(10**9)|list }}", "unknown name 'range' in template"),
        ("{{ namespace() }}", "unknown name 'namespace' in template"),
        ("{{ opportunity._secret }}", "'_secret': names starting with _ are not available"),
        ("{{ opportunity['__class__'] }}", "'__class__': names starting with _ are not available"),
        ("{{ 1|attr('__class__') }}", "invalid template: No filter named 'attr'."),
        ("{{ 'x'|center(1000000000) }}", "invalid template: No filter named 'center'."),
        ("{{ [1]|random }}", "invalid template: No filter named 'random'."),
        ("{% include 'other' %}", "'include' is not available in templates"),
        ("{% import 'x' as y %}", "'import' is not available in templates"),
        ("{% macro m() %}{% endmacro %}", "'macro' is not available in templates"),
        ("{% for x in event.changed_fields %}{% endfor %}", "'for' is not available in templates"),
        ("{{ event.body }}", "unknown event attribute 'body' in template"),
        ("{{ opportunity.user_nam }}", "did you mean 'user_name'?"),
        ("{{ opportunity.user_name ", "invalid template: unexpected end of template"),
    ],
)
def test_templates_refuse_escapes_at_load_time(text: str, expected: str) -> None:
    """Internals, globals, files, loops and unknown names are refused before a rule loads."""
    assert any(expected in problem for problem in problems_of(text)), problems_of(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ 'a' * 1000000000 }}", f"at most {MAX_OUTPUT_CHARS} characters"),
        ("{{ 9 ** 9 ** 9 }}", "numbers in templates may have at most"),
        ("{{ 2 ** 1000000 }}", "exponents above"),
        ("{{ '%999999999d' % 1 }}", "text formatting with % is not available"),
        (
            "{{ 'ab'|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa')"
            "|replace('a', 'aaaaaaaaaa')|replace('a', 'aaaaaaaaaa') }}",
            "at most",
        ),
        ("{{ event.changed_fields.append('x') }}", "unsafe"),
        ("{{ opportunity.get.__self__ }}", None),
    ],
)
def test_templates_refuse_explosions_and_unsafe_calls_when_rendering(
    text: str, expected: str | None
) -> None:
    """What only shows at render time fails the render, with a reason, and leaks nothing."""
    compiled, problems = compile_template(text)
    if compiled is None:  # refused even earlier, at load time
        assert [] != problems
        return
    with pytest.raises(TemplateRenderError) as caught:
        render_template(compiled, event=WON, timezone="UTC")

    assert expected is None or expected in str(caught.value)


def test_templates_str_format_cannot_reach_attributes() -> None:
    """str.format goes through the sandbox: `{0.__class__}` renders to nothing, not a class."""
    assert "" == render("{{ '{0.__class__}'.format(opportunity) }}")


def test_templates_load_into_a_rule_as_template_values() -> None:
    """A set value with {{ }} becomes a TemplateExpr; plain text stays text."""
    rules = load_rules(rule_with_note('"by {{ opportunity.user_name }}"'), "rules/t.yaml")

    assert TemplateExpr("by {{ opportunity.user_name }}") == rules.rules[0].actions[0].value


def test_templates_problems_carry_the_values_position() -> None:
    """A bad template is reported as file:line:column of the value, and the file is rejected."""
    with pytest.raises(InvalidRulesError) as caught:
        load_rules(rule_with_note('"{{ configg }}"'), "rules/t.yaml")

    assert [
        "rules/t.yaml:4:21: unknown name 'configg' in template (known: opportunity, event, "
        "today, now)"
    ] == [str(p) for p in caught.value.problems]


def test_templates_render_in_the_plan() -> None:
    """A fired rule's template is rendered into the update from the event."""
    rules = load_rules(
        "timezone: America/New_York\n"
        + rule_with_note('"Won on {{ today }} by {{ opportunity.user_name }}"'),
        "rules/t.yaml",
    )

    assert {"note": "Won on 2026-11-27 by Ann Smith"} == make_plan(rules, WON, metadata=None).update


def test_templates_a_failed_render_keeps_the_rule_from_firing() -> None:
    """A render failure is the rule's reason for not firing; nothing half-rendered is sent."""
    rules = load_rules(rule_with_note("\"{{ 'a' * 100000 }}\""), "rules/t.yaml")

    plan = make_plan(rules, WON, metadata=None)

    assert ((), {}) == (plan.fired, plan.update)
    assert "a template value may hold at most 10000 characters" in plan.reasons_not_fired["r"]
