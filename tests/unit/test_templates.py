"""Templates in rule values: rendered from the event alone, checked at load, and sandboxed."""

from __future__ import annotations

import tracemalloc

import pytest

from service.config.errors import InvalidRulesError
from service.core.rules import load_rules, make_plan
from service.core.rules.evaluation.templates import (
    MAX_INT_BITS,
    MAX_OUTPUT_CHARS,
    MAX_POWER_EXPONENT,
    TemplateRenderError,
    compile_template,
    is_template,
    render_template,
)
from service.core.rules.model import TemplateExpr
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


# -- the limits at their edges, and the messages a rule author reads ------------------------


def render_or_error(text: str) -> str:
    compiled, problems = compile_template(text)
    assert [] == problems, problems
    assert compiled is not None
    try:
        return render_template(compiled, event=WON, timezone="UTC")
    except TemplateRenderError as error:
        return f"error: {error}"


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        (f"{{{{ 'a' * {MAX_OUTPUT_CHARS} }}}}", True),
        (f"{{{{ 'a' * {MAX_OUTPUT_CHARS + 1} }}}}", False),
        (f"{{{{ {MAX_OUTPUT_CHARS + 1} * 'a' }}}}", False),  # either side may be the text
        (f"{{{{ ['a'] * {MAX_OUTPUT_CHARS + 1} }}}}", False),
        ("{{ 'ab' * 3 }}", True),
        ("{{ 6 * 7 }}", True),
        (f"{{{{ 2 ** {MAX_POWER_EXPONENT} }}}}", True),
        (f"{{{{ 2 ** {MAX_POWER_EXPONENT + 1} }}}}", False),
        (f"{{{{ 2 ** -{MAX_POWER_EXPONENT + 1} }}}}", False),
        ("{{ 2.5 ** 2 }}", True),
        ("{{ (2 ** 64) * (2 ** 64) * (2 ** 64) * (2 ** 64) }}", False),
        ("{{ (2 ** 60) * (2 ** 60) }}", True),
        ("{{ (2 ** 64) ** 4 }}", False),
        ("{{ (2 ** 8) ** 8 }}", True),
        ("{{ 'ab'|replace('a', 'aaaa') }}", True),
        (f"{{{{ 'ab'|replace('a', 'b' * {MAX_OUTPUT_CHARS - 1}) }}}}", True),
        (f"{{{{ 'ab'|replace('a', 'b' * {MAX_OUTPUT_CHARS}) }}}}", False),
        (f"{{{{ 'aa'|replace('a', 'b' * {MAX_OUTPUT_CHARS}, 1) }}}}", False),
        (f"{{{{ 'aa'|replace('a', 'b' * {MAX_OUTPUT_CHARS - 1}, 1) }}}}", True),
        (f"{{{{ 'ab'|replace('', 'b' * {MAX_OUTPUT_CHARS // 3 - 1}) }}}}", True),
        ("{{ 10 % 3 }}", True),
    ],
)
def test_templates_limits_hold_exactly_at_their_edges(text: str, allowed: bool) -> None:
    rendered = render_or_error(text)

    assert allowed == (not rendered.startswith("error:")), rendered


def test_templates_limit_messages_say_what_the_limit_is() -> None:
    assert f"at most {MAX_OUTPUT_CHARS} characters" in render_or_error("{{ 'a' * 20000 }}")
    assert f"at most {MAX_INT_BITS} bits" in render_or_error(
        "{{ (2**64)*(2**64)*(2**64)*(2**64)*2 }}"
    )
    assert f"exponents above {MAX_POWER_EXPONENT}" in render_or_error("{{ 2 ** 65 }}")
    assert "text formatting with % is not available in templates" in render_or_error(
        "{{ '%s' % 1 }}"
    )


def test_templates_replace_is_refused_before_its_text_is_made() -> None:
    """A replace that would pass the output cap is refused from the sizes alone: replacing
    each letter of a long note with a longer text cannot make the worker build 100 MB
    first (or gigabytes, with a longer replacement)."""
    compiled, _ = compile_template("{{ opportunity.note|replace('a', 'b' * 1000) }}")
    assert compiled is not None
    event = make_event(data={"note": "a" * 100_000})

    tracemalloc.start()
    try:
        with pytest.raises(TemplateRenderError):
            render_template(compiled, event=event, timezone="UTC")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 10_000_000


def test_templates_render_the_event_fields_they_are_given() -> None:
    assert "2026-11-28T03:30:00+00:00 old" == render(
        "{{ event.date_created }} {{ event.previous_data.note }}"
    )


def test_templates_copy_nested_values_so_the_event_cannot_be_reached() -> None:
    event = make_event(data={"id": "oppo_1", "custom.cf_x": [["a"], {"k": ["v"]}]})
    compiled, _ = compile_template(
        "{{ opportunity['custom.cf_x'][0][0] }}{{ opportunity['custom.cf_x'][1].k[0] }}"
    )
    assert compiled is not None

    assert "av" == render_template(compiled, event=event, timezone="UTC")


def test_templates_comments_and_statements_make_a_value_a_template() -> None:
    assert (True, True, True, False) == (
        is_template("{{ today }}"), is_template("{% if x %}{% endif %}"),
        is_template("{# a note #}"), is_template("plain { text }"),
    )  # fmt: skip


def test_templates_name_the_line_of_a_syntax_error_after_the_first() -> None:
    assert ["invalid template: unexpected '}'"] == problems_of("{{ today }")
    assert ["invalid template: unexpected '}' (template line 2)"] == problems_of(
        "first\n{{ today }"
    )


def test_templates_unknown_names_are_explained_with_what_is_known() -> None:
    event_attr = problems_of("{{ event.idd }}")
    field = problems_of("{{ opportunity.valeu }}")
    name = problems_of("{{ todya }}")

    assert [
        "unknown event attribute 'idd' in template; did you mean 'id'? (known: id, action, "
        "date_created, changed_fields, previous_data)"
    ] == event_attr
    assert [
        "unknown opportunity field 'valeu' in template; did you mean 'value'?; "
        'write opportunity["custom.cf_..."] for a custom field'
    ] == field
    assert ["unknown name 'todya' in template; did you mean 'today'? (known: opportunity, "
            "event, today, now)"] == name  # fmt: skip
    assert ["'self' is not available in templates"] == problems_of("{{ self }}")
