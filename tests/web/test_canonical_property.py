"""The JavaScript RFC 8785 bytes equal core.canonical.canonical_bytes on the same values
(issue 17 item 4): Hypothesis generates records' JSON (all of Unicode but lone surrogates,
astral characters included, nested objects and arrays, safe integers, booleans, null), one
long-lived node process answers them all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import MAX_SAFE_INTEGER, CanonicalizationError, canonical_bytes
from tests.web.conftest import Oracle

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.integers(-1000, 1000)
    | text
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(text, inner, max_size=5),
    max_leaves=25,
)
objects = st.dictionaries(text, values, max_size=8)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(objects)
def test_js_canonical_bytes_equal_python(js: Oracle, value: dict[str, Any]) -> None:
    answer = js.ask({"op": "canonical", "text": json.dumps(value)})
    assert answer == {"hex": canonical_bytes(value).hex()}


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1.0}',
        '{"a": 1e3}',
        '{"a": 9007199254740992}',
        '{"a": -9007199254740992}',
        '{"a": "\\ud800"}',
        '{"\\udc00": 1}',
    ],
)
def test_what_python_refuses_js_refuses(js: Oracle, text: str) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes(json.loads(text))
    assert "error" in js.ask({"op": "canonical", "text": text})


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.integers(-(2**60), 2**60))
def test_integers_at_the_edges(js: Oracle, n: int) -> None:
    answer = js.ask({"op": "canonical", "text": json.dumps({"n": n})})
    if abs(n) <= MAX_SAFE_INTEGER:
        assert answer == {"hex": canonical_bytes({"n": n}).hex()}
    else:
        assert "error" in answer
