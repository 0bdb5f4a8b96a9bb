"""The fast RFC 8785 path of core.canonical writes exactly the reference bytes (core.canonical), and
raises exactly where the reference raises."""

from __future__ import annotations

import json
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import CanonicalizationError, canonical_bytes, reference_canonical_bytes
from tests.verifier.fakes import suggestion_batch

ASSETS = Path(__file__).resolve().parents[1] / "assets"
SAFE = 2**53 - 1

# Every code point, surrogates included, with the awkward ones made likely.
characters = st.one_of(
    st.characters(codec=None, categories=None),
    st.sampled_from(list('\x00\x1f\x7f\b\f\n\r\t"\\/\u2028\u2029\ue000\uffff\U0001f600\U00010000')),
    st.sampled_from(["\ud800", "\udfff"]),
)
text = st.text(characters, max_size=12)
integers = st.one_of(
    st.integers(-SAFE, SAFE), st.integers(), st.sampled_from([SAFE, -SAFE, SAFE + 1])
)
scalars = st.one_of(st.none(), st.booleans(), integers, text, st.floats(allow_nan=True))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=5)),
    max_leaves=25,
)


def both(value: Any) -> tuple[str, Any]:
    try:
        expected: Any = ("bytes", reference_canonical_bytes(value))
    except CanonicalizationError:
        expected = ("error", None)
    try:
        got: Any = ("bytes", canonical_bytes(value))
    except CanonicalizationError:
        got = ("error", None)
    assert got == expected
    return got


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(text, json_values, max_size=6))
def test_fast_path_agrees_with_the_reference(value: dict[str, Any]) -> None:
    both(value)


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2},  # UTF-16 order puts the emoji first, code points last
        {"b": {"\uffff": [1, {"\U00010000": None}]}, "a": True},
        {"a": "\ud800"},
        {"\udfff": 1},
        {"a": 1.0},
        {"a": 2**53},
        {1: "a"},
        {"a": (1, 2)},
        {"a": MappingProxyType({"b": 1})},
        {"": "", "é": "\x00\x1f\x7f", "z": -0},
        {},
    ],
)
def test_edges(value: dict[Any, Any]) -> None:
    both(value)


def test_records_and_the_reference_vector() -> None:
    for sealed in suggestion_batch(20):
        assert canonical_bytes(dict(sealed.record)) == sealed.canonical
        assert canonical_bytes(sealed.record) == sealed.canonical  # a mapping proxy
    record = json.loads((ASSETS / "record-submitted.json").read_text(encoding="utf-8"))
    assert canonical_bytes(record) == (ASSETS / "record-submitted.canonical").read_bytes()
