"""Laws of threat detection: operator keys and excessive nesting are always found, plain text never
is, and a document's string values are data (one rule set with the feed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import ThreatDetected
from domain.parsing import refuse_threats
from domain.threats import MAX_DEPTH, NESTED_TOO_DEEPLY, ThreatKind, operator_keys, scan_query
from entrypoints.http.dependencies import parse_json_body

# Plain text: letters, digits, spaces and everyday punctuation (no '$', no braces).
plain_text = st.text(
    alphabet=st.characters(categories=["L", "N", "Zs"], include_characters="-_'.,;:!?()&/%+"), max_size=40
)
plain_keys = plain_text.filter(lambda k: "." not in k and not k.startswith("$"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | plain_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(plain_keys, children, max_size=4),
    max_leaves=20,
)
operator_key = st.sampled_from(["$gt", "$ne", "$where", "$regex", "a.b", "$", "profile.admin", "$expr"])


@st.composite
def with_operator_key(draw: st.DrawFn) -> tuple[Any, str]:
    """A plain document with one operator key planted at a random depth."""
    key = draw(operator_key)
    planted: Any = {key: draw(json_values)}
    for _ in range(draw(st.integers(0, 5))):
        planted = [draw(json_values), planted] if draw(st.booleans()) else {draw(plain_keys): planted}
    return planted, key


JS_MARKERS = st.sampled_from(["$where: 1", "function() { return 1 }", "FUNCTION (a){", "$accumulator", "$where"])


@given(json_values)
def test_plain_documents_are_never_flagged(document: Any) -> None:
    assert operator_keys(document) == []


@given(plain_keys, JS_MARKERS, plain_text)
def test_string_values_are_data_whatever_they_spell(key: str, marker: str, text: str) -> None:
    """A value is never a threat in itself: the feed stores ``$where`` as a colour name, so the API must
    take it back (FEED.md: one rule set); only keys and nesting make a document a threat."""
    assert operator_keys({key: f"{text}{marker}", "variants": [{"color_name": marker}]}) == []


@given(with_operator_key())
def test_operator_keys_are_found_at_any_depth(case: tuple[Any, str]) -> None:
    document, key = case
    threats = operator_keys(document)
    assert any(t.field is not None and t.field.endswith(key) for t in threats)


def nested(depth: int, kind: str) -> str:
    """A JSON document ``depth`` levels deep: arrays, objects, or both in turn."""
    opens = "".join("[" if kind == "array" or (kind == "mixed" and n % 2) else '{"k":' for n in range(depth))
    closes = "".join("]" if kind == "array" or (kind == "mixed" and n % 2) else "}" for n in reversed(range(depth)))
    return opens + "1" + closes


@given(st.integers(0, 5000), st.sampled_from(["array", "object", "mixed"]))
@example(MAX_DEPTH, "array").via("the deepest accepted")
@example(MAX_DEPTH, "object").via("the deepest accepted")
@example(MAX_DEPTH + 1, "array").via("the shallowest refused")
@example(MAX_DEPTH + 1, "object").via("the shallowest refused")
@example(100_000, "array").via("past the decoder's recursion limit")
def test_a_body_of_any_depth_is_a_document_or_a_nesting_threat(depth: int, kind: str) -> None:
    """Decoding (``parse_json_body``) then the domain's threat rule: a body is accepted up to
    ``MAX_DEPTH`` levels and refused as too deep past it, at any depth (past the decoder's own
    recursion limit too), never with another error."""
    raw = nested(depth, kind).encode()
    if depth <= MAX_DEPTH:
        assert parse_json_body(raw) == json.loads(raw)
        refuse_threats(parse_json_body(raw))
        return
    with pytest.raises(ThreatDetected) as refused:
        refuse_threats(parse_json_body(raw))
    assert [error.message for error in refused.value.errors] == [NESTED_TOO_DEEPLY]


@given(st.lists(st.tuples(plain_keys.filter(bool), plain_text), max_size=6))
def test_plain_query_strings_are_never_flagged(items: list[tuple[str, str]]) -> None:
    assert scan_query(items) == []


@given(plain_keys.filter(bool), st.sampled_from(["[$ne]", "[$gt]", "[ $where ]"]), plain_text)
def test_bracketed_operators_in_query_keys_are_found(name: str, operator: str, value: str) -> None:
    assert scan_query([(name + operator, value)])[0].kind is ThreatKind.OPERATOR_INJECTION


@given(plain_keys.filter(bool), plain_text, JS_MARKERS)
def test_server_side_javascript_in_a_query_value_is_found(name: str, prefix: str, marker: str) -> None:
    """Query values become filters: a marker counts there, as a token of its own (after a separator)."""
    assert [t.kind for t in scan_query([(name, f"{prefix} {marker}")])] == [ThreatKind.SERVER_SIDE_JS]
