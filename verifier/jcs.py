"""RFC 8785 (JCS) bytes of a record, fast: the C JSON encoder where it provably agrees.

``ledger.canonical.canonical_bytes`` (the ``rfc8785`` library, pure Python) is the reference
and takes most of a receipt's verification time. For the JSON that records are made of
(objects, arrays, strings, safe integers, booleans, null: no floats, PROTOCOL §1), Python's C
encoder with sorted keys, ``","``/``":"`` separators and ``ensure_ascii=False`` writes the same
bytes as RFC 8785:

* strings (§3.2.2.2): both escape exactly ``"``, ``\\``, ``\\b \\f \\n \\r \\t`` and the other
  controls below U+0020 as ``\\u00xx`` in lowercase hex, and write everything else as UTF-8;
* integers (§3.2.2.3): within ±(2^53 − 1) the shortest decimal form is ``str(int)``;
* object members (§3.2.3) are sorted by UTF-16 code units, and Python sorts by code points:
  the two orders differ only for characters beyond U+FFFF (their UTF-16 surrogates sort below
  U+E000..U+FFFF), so keys holding such characters take the reference path.

Anything else (floats, out-of-range integers, non-string keys, other container types, lone
surrogates) goes to the reference, which also raises its errors. ``tests/verifier/test_jcs.py``
checks the two agree, byte for byte, on generated JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes

_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False
).encode


def _plain_json(value: Any) -> bool:
    """True when ``value`` is JSON on which the C encoder and RFC 8785 agree (module doc)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) <= "\uffff"):
                return False
            if type(item) is not str and not _plain_json(item):  # most values are strings
                return False
        return True
    if kind is list:
        return all(_plain_json(item) for item in value)
    return False


def canonical_record_bytes(record: Mapping[str, Any]) -> bytes:
    """``canonical_bytes(record)``, computed by the C encoder when it agrees (module doc).

    Raises ``ledger.canonical.CanonicalizationError`` exactly where the reference does.
    """
    if _plain_json(record):
        try:
            return _encode(record).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the reference reports it
            pass
    return canonical_bytes(record)
