"""The digest table behaves like a Python set (and, with values, like a dict) for any operations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application.digest_table import DigestTable

M64 = (1 << 64) - 1
#: Few distinct keys, so that adds and lookups meet: 0 (the empty marker), the largest key, keys
#: that share their low bits (one slot without mixing), and any others.
KEYS = st.one_of(
    st.sampled_from([0, 1, 2, M64, M64 - 1, 1 << 63]),
    st.integers(0, 40).map(lambda n: n << 32),
    st.integers(0, 200),
    st.integers(0, M64),
)
VALUES = st.integers(0, M64)
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["add", "contains", "get", "put", "setdefault"]), KEYS, VALUES), max_size=400
)


@settings(max_examples=300, deadline=None)
@given(operations=OPERATIONS)
def test_a_digest_set_behaves_like_a_set(operations: list[tuple[str, int, int]]) -> None:
    table, model = DigestTable(), set[int]()
    for operation, key, _ in operations:
        if operation in ("add", "put", "setdefault"):
            table.add(key)
            model.add(key)
        else:
            assert (key in table) == (key in model)
            assert table.get(key) == (0 if key in model else None)
        assert len(table) == len(model)
    assert all(key in table for key in model)
    assert sorted(table.values()) == [0] * len(model)


@settings(max_examples=300, deadline=None)
@given(operations=OPERATIONS)
def test_a_digest_map_behaves_like_a_dict(operations: list[tuple[str, int, int]]) -> None:
    table, model = DigestTable(values=True), dict[int, int]()
    for operation, key, value in operations:
        if operation == "add":
            table.add(key)
            model[key] = 0
        elif operation == "put":
            table.put(key, value)
            model[key] = value
        elif operation == "setdefault":
            assert table.setdefault(key, value) == model.setdefault(key, value)
        elif operation == "contains":
            assert (key in table) == (key in model)
        else:
            assert table.get(key) == model.get(key)
        assert len(table) == len(model)
    assert {key: table.get(key) for key in model} == model
    assert sorted(table.values()) == sorted(model.values())


@given(key=st.one_of(st.integers(max_value=-1), st.integers(min_value=M64 + 1)))
def test_keys_outside_64_bits_are_refused(key: int) -> None:
    table = DigestTable()
    with pytest.raises(OverflowError):
        table.add(key)
    assert len(table) == 0


def test_many_keys_grow_the_table_and_stay_compact() -> None:
    table = DigestTable()
    keys = [(n * 0x9E3779B97F4A7C15 + 12345) & M64 for n in range(100_000)]
    for key in keys:
        table.add(key)
    assert len(table) == len(keys)
    assert all(key in table for key in keys[::97])
    assert table._keys.itemsize * len(table._keys) <= 24 * len(keys)
