"""Laws of threat detection: operator keys are always found, plain text never is."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.threats import ThreatKind, scan_document, scan_query

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


@given(json_values)
def test_plain_documents_are_never_flagged(document: Any) -> None:
    assert scan_document(document) == []


@given(with_operator_key())
def test_operator_keys_are_found_at_any_depth(case: tuple[Any, str]) -> None:
    document, key = case
    threats = scan_document(document)
    assert any(
        t.kind is ThreatKind.OPERATOR_INJECTION and t.field is not None and t.field.endswith(key) for t in threats
    )


@given(st.lists(st.tuples(plain_keys.filter(bool), plain_text), max_size=6))
def test_plain_query_strings_are_never_flagged(items: list[tuple[str, str]]) -> None:
    assert scan_query(items) == []


@given(plain_keys.filter(bool), st.sampled_from(["[$ne]", "[$gt]", "[ $where ]"]), plain_text)
def test_bracketed_operators_in_query_keys_are_found(name: str, operator: str, value: str) -> None:
    assert scan_query([(name + operator, value)])[0].kind is ThreatKind.OPERATOR_INJECTION


@given(plain_text, st.sampled_from(["$where: 1", "function() { return 1 }", "FUNCTION (a){", "$accumulator"]))
def test_server_side_javascript_in_any_string_is_found(prefix: str, marker: str) -> None:
    """A marker counts as a token of its own: after a separator, not glued to a word."""
    assert [t.kind for t in scan_document({"name": f"{prefix} {marker}"})] == [ThreatKind.SERVER_SIDE_JS]
