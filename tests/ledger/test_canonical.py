"""Canonical bytes (PROTOCOL §2): RFC 8785 JCS, restricted to what PROTOCOL §1 allows."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from core.canonical import MAX_SAFE_INTEGER, CanonicalizationError, canonical_bytes

# Record-like JSON: no floats, integers within ±(2^53 − 1), any Unicode text except lone
# surrogates (hypothesis' default alphabet already leaves out category Cs).
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=8)


@settings(max_examples=150, deadline=None)
@given(value=json_objects)
def test_agrees_with_rfc8785_on_record_like_json(value: dict[str, Any]) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=100, deadline=None)
@given(value=json_objects)
def test_canonical_bytes_parse_back_and_are_a_fixed_point(value: dict[str, Any]) -> None:
    encoded = canonical_bytes(value)
    parsed = json.loads(encoded.decode("utf-8"))
    assert parsed == value
    assert canonical_bytes(parsed) == encoded


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    """cyberphone/json-canonicalization testdata/input/weird.json -> output/weird.json.

    The JCS author's vectors (https://github.com/cyberphone/json-canonicalization, testdata/),
    referenced by RFC 8785. The emoji U+1F602 is the surrogate pair D83D DE02 in UTF-16, so it
    sorts before U+FB33, although its code point is larger.
    """
    weird = json.loads(
        '{"\\u20ac": "Euro Sign", "1": "One", "\\u0080": "Control\\u007f",'
        ' "\\ud83d\\ude02": "Smiley", "\\u00f6": "Latin Small Letter O With Diaeresis",'
        ' "\\ufb33": "Hebrew Letter Dalet With Dagesh", "</script>": "Browser Challenge"}'
    )
    expected = (
        '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f602":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonical_bytes(weird) == expected


def test_non_bmp_key_sorts_before_private_use_character() -> None:
    # U+10000 is D800 DC00 in UTF-16: before U+E000, though later by code point.
    assert canonical_bytes({"\ue000": 1, "\U00010000": 2}) == '{"\U00010000":2,"\ue000":1}'.encode()


def test_nested_objects_sort_and_arrays_keep_their_order() -> None:
    """cyberphone testdata structures.json, with its one float (56.0) written as the integer 56."""
    value = {
        "1": {"f": {"f": "hi", "F": 5}, "\n": 56},
        "10": {},
        "": "empty",
        "a": {},
        "111": [{}],
        "A": {},
    }
    assert canonical_bytes(value) == (
        b'{"":"empty","1":{"\\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}'
    )
    assert canonical_bytes({"z": [3, 1, 2], "a": [{"b": 1, "a": 2}]}) == (
        b'{"a":[{"a":2,"b":1}],"z":[3,1,2]}'
    )


def test_string_escapes() -> None:
    """The "escaping" member of the JCS sample (cyberphone README; RFC 8785 §3.2.2.2 rules).

    Only '"', '\\' and controls below U+0020 are escaped; \\b \\t \\n \\f \\r have short forms,
    other controls are \\u00xx in lowercase hex; '/' and U+007F stay as they are.
    """
    value = json.loads('{"escaping": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/"}')
    assert canonical_bytes(value) == (b'{"escaping":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}')
    assert canonical_bytes({"c": "\b\t\n\f\r\x00\x1f\x7f"}) == (
        b'{"c":"\\b\\t\\n\\f\\r\\u0000\\u001f\x7f"}'
    )


def test_chinese_text_stays_utf8_and_is_not_normalised() -> None:
    assert canonical_bytes({"标题": "关于修缮幸福路人行道的建议"}) == (
        '{"标题":"关于修缮幸福路人行道的建议"}'.encode()
    )
    # cyberphone testdata unicode.json: JCS does no Unicode normalisation.
    assert canonical_bytes({"Unnormalized Unicode": "\u1e0d\u0307"}) == (
        b'{"Unnormalized Unicode":"\xe1\xb8\x8d\xcc\x87"}'
    )


def test_no_insignificant_whitespace_and_literals() -> None:
    value = {"b": [True, False, None], "a": 0, "c": -(2**53 - 1), "d": 2**53 - 1}
    assert canonical_bytes(value) == (
        b'{"a":0,"b":[true,false,null],"c":-9007199254740991,"d":9007199254740991}'
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"amount": 1.0}, r"\$\.amount: floating-point numbers are not allowed"),
        ({"amount": 0.5}, "floating-point"),
        ({"x": [1, {"y": float("nan")}]}, r"\$\.x\[1\]\.y: floating-point"),
        ({"x": float("inf")}, "floating-point"),
    ],
)
def test_floats_are_refused(value: dict[str, Any], message: str) -> None:
    with pytest.raises(CanonicalizationError, match=message):
        canonical_bytes(value)


@pytest.mark.parametrize("number", [2**53, -(2**53), 2**64, -(2**100)])
def test_integers_beyond_the_safe_range_are_refused(number: int) -> None:
    with pytest.raises(CanonicalizationError, match=r"\$\.n: integer .* is outside ±\(2\^53 − 1\)"):
        canonical_bytes({"n": number})


def test_bools_are_not_integers() -> None:
    assert canonical_bytes({"a": True}) == b'{"a":true}'
    assert canonical_bytes({"a": 1}) == b'{"a":1}'
    assert canonical_bytes({"a": True}) != canonical_bytes({"a": 1})
    assert canonical_bytes({"a": False}) != canonical_bytes({"a": 0})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, "object keys must be strings"),
        ({"x": b"bytes"}, r"\$\.x: bytes is not a JSON value"),
        ({"x": {1, 2}}, "set is not a JSON value"),
        ({"x": "\ud800"}, "non-UTF-8"),
        ({"\udc00": "lone surrogate key"}, "surrogates not allowed"),
    ],
)
def test_non_json_values_are_refused(value: dict[Any, Any], message: str) -> None:
    with pytest.raises(CanonicalizationError, match=message):
        canonical_bytes(value)


def test_read_only_mappings_and_tuples_are_plain_json() -> None:
    """SealedRecord.record is a MappingProxyType; its bytes are those of the equal dict."""
    frozen = MappingProxyType({"b": (1, 2), "a": MappingProxyType({"y": [], "x": None})})
    assert canonical_bytes(frozen) == b'{"a":{"x":null,"y":[]},"b":[1,2]}'
