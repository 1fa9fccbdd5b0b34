"""The one-pass canonical encoder behind audit hashing agrees with RFC 8785 on hard inputs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.canonical import jcs_bytes
from harness.integrity.chain import compute_entry_hash, leaf_data
from harness.integrity.merkle import (
    EMPTY_FRONTIER,
    CompactRange,
    ExtendedTree,
    consistency_proof,
    leaf_hash,
    prefix_roots,
)

pytestmark = pytest.mark.tier0


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1.5, "b": 1.0, "c": -0.0, "d": 1e21, "e": 1e-7},
        {"n": [9007199254740991, -9007199254740991, 1000000000000000]},
        {"at": "2024-06-01T00:00:00.000000Z", "s": ":1.5,", "t": "[1e5]", "u": ",12345678901234567}"},
        {"\ue000": 1, "\U0001f600": 2, "z": "\uffff"},
        {"esc": "\x00\x1f\x7f\"\\\u2028\u2029", "ü": "é"},
        {"deep": [[[[{"k": [True, False, None]}]]]]},
    ],
)
def test_hard_inputs_give_the_rfc8785_bytes(value: dict[str, Any]) -> None:
    assert leaf_data(value) == jcs_bytes(value)


@pytest.mark.parametrize("value", [{"n": 2**53}, {"n": -(2**60)}, {"s": "\ud800"}, {"x": float("nan")}])
def test_values_rfc8785_refuses_are_refused(value: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        jcs_bytes(value)
    with pytest.raises(ValueError):
        leaf_data(value)


def test_making_an_entry_refuses_non_string_keys() -> None:
    # The C encoder would write {10: .., 9: ..} as {"9":..,"10":..}, an order the stored
    # (string-keyed) copy would not reproduce.
    with pytest.raises(ValueError, match="keys must be strings"):
        compute_entry_hash({"payload": {10: 1, 9: 2}})


_numbers = st.integers(min_value=-(2**63), max_value=2**63) | st.floats(allow_nan=False, allow_infinity=False)
_text = st.text(alphabet=st.sampled_from(list(':,[]{}"\\.e0123456789-\ue000\U0001f600a \x01')), max_size=12)


@given(
    value=st.recursive(
        _numbers | _text | st.booleans() | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
        max_leaves=16,
    )
)
def test_number_lookalikes_and_key_order_agree(value: Any) -> None:
    """Strings built from JSON punctuation and digits cannot fool the number scan."""
    entry = {"payload": value}
    try:
        expected = jcs_bytes(entry)
    except ValueError:
        with pytest.raises(ValueError):
            leaf_data(entry)
        return
    assert leaf_data(entry) == expected


@given(count=st.integers(min_value=0, max_value=70), data=st.data())
def test_prefix_roots_match_the_compact_range_and_extension(count: int, data: st.DataObject) -> None:
    """The verifier's one-pass prefix roots, the compact range and the frontier extension agree."""
    leaves = [leaf_hash(bytes([i % 256, i // 256])) for i in range(count)]
    sizes = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=count), max_size=6)))
    tree = CompactRange()
    expected = []
    for size in sizes:
        while tree.size < size:
            tree.append(leaves[tree.size])
        expected.append(tree.root())
    assert prefix_roots(leaves, sizes) == expected
    if sizes:
        old = sizes[0]
        base = ExtendedTree(EMPTY_FRONTIER, leaves[:old]).frontier()
        extended = ExtendedTree(base, leaves[old:])
        assert extended.root() == (prefix_roots(leaves, [count])[0])
        assert extended.consistency_proof(old) == consistency_proof(leaves, old, count)
