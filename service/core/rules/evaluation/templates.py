"""`{{ ... }}` values: Jinja2 templates over the opportunity and the event, in a sandbox.

    note: "Won on {{ today }} by {{ opportunity.user_name }}"

Templates are checked when rules load (syntax, names, filters, forbidden constructs) and
rendered per event from data alone: `today` and `now` come from the event, never the clock.
Jinja2's immutable sandbox refuses `_`-prefixed attributes and Python internals, and this
module takes away the rest of what a template could reach: no globals (range, lipsum,
cycler, joiner, namespace, dict), no includes, imports, macros, blocks or loops, no `self`,
a short list of filters, and caps on repetition, number and output size. The event's texts
are read as conditions read them: their first texts.MAX_TEXT_CHARS characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.filters import do_replace
from jinja2.nodes import EvalContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from service.core.events import Event
from service.core.rules import spec
from service.core.rules.evaluation.dates import local_date, utc_iso
from service.core.rules.evaluation.texts import cap_text
from service.core.rules.model import TemplateExpr
from service.core.rules.suggest import closest

NAMES = ("opportunity", "event", "today", "now")
EVENT_KEYS = ("id", "action", "date_created", "changed_fields", "previous_data")
MAX_OUTPUT_CHARS = 10_000
MAX_POWER_EXPONENT = 64
MAX_INT_BITS = 256
_TOO_LONG = f"a template value may hold at most {MAX_OUTPUT_CHARS} characters"
_TOO_BIG = f"numbers in templates may have at most {MAX_INT_BITS} bits"
SAFE_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "first", "float", "int", "join", "last",
    "length", "list", "lower", "max", "min", "replace", "round", "sort", "string", "sum",
    "title", "trim", "truncate", "unique", "upper", "wordcount",
)  # fmt: skip
_FORBIDDEN_NODES: Mapping[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.Block: "block",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.For: "for",  # nested loops are the one way left to burn CPU; filters do the rest
}
_OPPORTUNITY_ATTRIBUTES = frozenset({*spec.OPPORTUNITY_FIELDS, "get", "items", "keys", "values"})


class TemplateRenderError(ValueError):
    """A template could not be rendered for this event; the message says why."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, with `*`, `**` and `%` watched so no value can explode."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError("text formatting with % is not available in templates")
        # Checked before computing: 'a' * 10**9 or 9 ** 99999999 would hold the worker.
        if operator_name == "*":
            _check_product(left, right)
        if operator_name == "**":
            _check_power(left, right)
        result = super().call_binop(context, operator_name, left, right)
        _check_size(result)
        return result


def _check_product(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if (
            isinstance(seq, str | list | tuple)
            and _is_int(times)
            and len(seq) * times > MAX_OUTPUT_CHARS
        ):
            raise SecurityError(_TOO_LONG)
    if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
        raise SecurityError(_TOO_BIG)


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int | float) and abs(exponent) > MAX_POWER_EXPONENT:
        raise SecurityError(f"exponents above {MAX_POWER_EXPONENT} are not allowed")
    if _is_int(base) and _is_int(exponent) and base.bit_length() * exponent > MAX_INT_BITS:
        raise SecurityError(_TOO_BIG)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_size(value: Any) -> None:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise SecurityError(_TOO_LONG)
    if _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(_TOO_BIG)


@pass_eval_context
def _capped_replace(
    eval_ctx: EvalContext, text: Any, old: str, new: str, count: int | None = None
) -> Any:
    # Replacing is the one kept filter that can multiply text; nested, or over a long text
    # typed in Close, it would explode. So its size is worked out before it is made.
    source, removed, added = str(text), str(old), str(new)
    times = source.count(removed) if removed else len(source) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    if len(source) + times * (len(added) - len(removed)) > MAX_OUTPUT_CHARS:
        raise SecurityError(_TOO_LONG)
    result = do_replace(eval_ctx, text, old, new, count)
    _check_size(result)
    return result


def _environment() -> _Sandbox:
    env = _Sandbox(autoescape=False, finalize=_blank_none)
    env.globals.clear()
    env.filters = {name: env.filters[name] for name in SAFE_FILTERS}
    env.filters["replace"] = _capped_replace
    return env


def _blank_none(value: Any) -> Any:
    """A null field renders as nothing, not as the word None."""
    return "" if value is None else value


_ENV = _environment()  # configuration only: compiled templates keep no per-event state


def is_template(text: str) -> bool:
    """True for text holding a Jinja2 expression, statement or comment."""
    return any(mark in text for mark in ("{{", "{%", "{#"))


def compile_template(text: str) -> tuple[TemplateExpr | None, list[str]]:
    """The compiled template, or the mistakes found in it (each a sentence)."""
    try:
        tree = _ENV.parse(text)
        problems = list(_check_tree(tree))
        compiled = None if problems else _ENV.from_string(tree)
    except TemplateSyntaxError as e:  # also a filter that is not on the list
        return None, [_syntax_message(e)]
    if compiled is None:
        return None, problems
    return TemplateExpr(text, compiled), []


def render_template(expr: TemplateExpr, *, event: Event, timezone: str) -> str:
    """The template's text for this event; TemplateRenderError when it cannot be made."""
    try:
        text = str(expr.compiled.render(template_context(event, timezone=timezone)))
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as e:
        raise TemplateRenderError(f"template {expr.text!r} failed: {e}") from e
    if len(text) > MAX_OUTPUT_CHARS:
        raise TemplateRenderError(f"template {expr.text!r} made more than {MAX_OUTPUT_CHARS} chars")
    return text


def template_context(event: Event, *, timezone: str) -> dict[str, Any]:
    """What templates see: plain copies of the event's data, dates as ISO text."""
    return {
        "opportunity": _plain(event.state),
        "event": {
            "id": event.id,
            "action": event.action,
            "date_created": utc_iso(event.date_created),
            "changed_fields": list(event.changed_fields),
            "previous_data": _plain(event.previous_data),
        },
        "today": local_date(event.date_created, timezone).isoformat(),
        "now": utc_iso(event.date_created),
    }


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    # Copies, so nothing a template does can reach the event the engine goes on using.
    return {str(key): _plain_value(value) for key, value in data.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _plain(value)
    if isinstance(value, list | tuple):
        return [_plain_value(item) for item in value]
    return cap_text(value)  # a text as conditions read it


def _syntax_message(error: TemplateSyntaxError) -> str:
    where = f" (template line {error.lineno})" if error.lineno and error.lineno > 1 else ""
    return f"invalid template: {error.message}{where}"


def _check_tree(tree: nodes.Template) -> Iterator[str]:
    for name in sorted(meta.find_undeclared_variables(tree) - set(NAMES)):
        yield _unknown("name", name, NAMES, listing=True)
    for node in tree.find_all(nodes.Node):
        yield from _check_node(node)


def _check_node(node: nodes.Node) -> Iterator[str]:
    kind = _FORBIDDEN_NODES.get(type(node))
    if kind is not None:
        yield f"'{kind}' is not available in templates"
    elif isinstance(node, nodes.Name) and node.name == "self":
        yield "'self' is not available in templates"
    elif isinstance(node, nodes.Getattr):
        yield from _check_attribute(node.node, node.attr)
    elif isinstance(node, nodes.Getitem) and _is_private(node.arg):
        assert isinstance(node.arg, nodes.Const)
        yield f"'{node.arg.value}': names starting with _ are not available in templates"


def _check_attribute(target: nodes.Node, attr: str) -> Iterator[str]:
    if attr.startswith("_"):
        yield f"'{attr}': names starting with _ are not available in templates"
    elif _is_name(target, "event") and attr not in EVENT_KEYS:
        yield _unknown("event attribute", attr, EVENT_KEYS, listing=True)
    elif _is_name(target, "opportunity") and attr not in _OPPORTUNITY_ATTRIBUTES:
        hint = 'write opportunity["custom.cf_..."] for a custom field'
        known = spec.OPPORTUNITY_FIELDS
        yield f"{_unknown('opportunity field', attr, known, listing=False)}; {hint}"


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _is_private(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and str(node.value).startswith("_")


def _unknown(what: str, name: str, known: Iterable[str], *, listing: bool) -> str:
    guess = closest(name, known)
    message = f"unknown {what} '{name}' in template"
    if guess is not None:
        message += f"; did you mean '{guess}'?"
    return f"{message} (known: {', '.join(known)})" if listing else message
