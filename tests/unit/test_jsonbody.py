"""Untrusted JSON: how deep it may nest, which constants it may not use, what it is told."""

from __future__ import annotations

import json

import pytest

from service.intake.jsonbody import MAX_DEPTH, JsonRefusedError, loads, nesting_exceeds


def nested(depth: int, inner: str = "1") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


@pytest.mark.parametrize("depth", [1, 5, MAX_DEPTH])
def test_json_as_deep_as_the_bound_is_read(depth: int) -> None:
    assert json.loads(nested(depth)) == loads(nested(depth))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_json_deeper_than_the_bound_is_refused_with_the_reason(depth: int) -> None:
    with pytest.raises(JsonRefusedError, match=f"^JSON nested deeper than {MAX_DEPTH} levels$"):
        loads(nested(depth))


def test_objects_and_arrays_count_alike_however_they_alternate() -> None:
    """One pass must remove exactly one level, whichever kinds of brackets alternate."""
    alternating = b'{"a": ' * 2 + b"[[" + b"1" + b"]]" + b"}" * 2

    assert (False, True) == (nesting_exceeds(alternating, 4), nesting_exceeds(alternating, 3))


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"note": "[" * 200 + '"\\' + "{" * 200}).encode()

    assert {"note": "[" * 200 + '"\\' + "{" * 200} == loads(text)


def test_a_deep_body_that_never_closes_is_refused_as_too_deep() -> None:
    """Unbalanced brackets past the bound would still make the parser recurse."""
    with pytest.raises(JsonRefusedError, match="nested deeper"):
        loads(b"[" * 1_000_000)


def test_a_shallow_body_that_never_closes_is_not_valid_json() -> None:
    with pytest.raises(JsonRefusedError, match=r"^body is not valid JSON$"):
        loads(b"[" * 40 + b"]" * 30)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(constant: str) -> None:
    with pytest.raises(JsonRefusedError, match=f"^JSON does not allow {constant}$"):
        loads(f'{{"value": {constant}}}'.encode())


def test_the_words_as_strings_are_plain_text() -> None:
    assert {"value": "NaN"} == loads(b'{"value": "NaN"}')


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
def test_what_is_not_json_is_told_so(body: bytes) -> None:
    with pytest.raises(JsonRefusedError, match=r"^body is not valid JSON$"):
        loads(body)
