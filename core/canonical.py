"""Canonical bytes of a record: RFC 8785 (JSON Canonicalization Scheme), UTF-8.

PROTOCOL §2: ``canonical(record)`` is the JCS serialisation. Records carry no floats
(PROTOCOL §1), so we refuse them outright instead of relying on JCS number formatting,
and we refuse integers outside the interoperable range ±(2^53 − 1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1


class CanonicalizationError(ValueError):
    """The value cannot be part of a record (float, out-of-range integer, non-string key...)."""


def _plain(value: Any, path: str) -> Any:
    """Refuse what PROTOCOL §1 forbids and return ``value`` as plain dicts and lists.

    rfc8785 serialises only ``dict``, ``list`` and ``tuple`` containers, so other mappings
    (``SealedRecord.record`` is a read-only MappingProxyType) are copied into dicts here.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(f"{path}: integer {value} is outside ±(2^53 − 1)")
        return value
    if isinstance(value, float):
        raise CanonicalizationError(f"{path}: floating-point numbers are not allowed in records")
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(f"{path}: object keys must be strings, got {key!r}")
            plain[key] = _plain(item, f"{path}.{key}")
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise CanonicalizationError(f"{path}: {type(value).__name__} is not a JSON value")


_encode = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False
).encode


def _plain_json(value: Any) -> bool:
    """True when ``value`` is JSON on which the C encoder and RFC 8785 agree.

    For records (objects, arrays, strings, safe integers, booleans, null; no floats),
    ``json`` with sorted keys, ``,``/``:`` separators and ``ensure_ascii=False`` writes the
    same bytes as RFC 8785: both escape exactly ``"``, ``\\``, ``\\b \\f \\n \\r \\t`` and other
    controls as lowercase ``\\u00xx`` (§3.2.2.2); a safe integer's shortest form is ``str``
    (§3.2.2.3); members sort by UTF-16 code units (§3.2.3) and Python sorts by code points,
    which differ only for keys with characters beyond U+FFFF — those take the reference path.
    """
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


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON object.

    Plain records go through the C JSON encoder where it provably writes the same bytes
    (see ``_plain_json``; property tests compare it with ``rfc8785`` on generated JSON);
    everything else through the ``rfc8785`` reference, which also reports the errors.
    Raises CanonicalizationError for anything PROTOCOL §1 forbids in a record.
    """
    if _plain_json(value):
        try:
            return _encode(value).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the reference path reports it
            pass
    return reference_canonical_bytes(value)


def reference_canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes through the ``rfc8785`` library only (the reference the fast path is
    tested against)."""
    plain = _plain(value, "$")
    try:
        return rfc8785.dumps(plain)
    # Lone surrogates: rfc8785 raises its own error for values, but the UTF-16 sort of
    # object keys lets UnicodeEncodeError escape.
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise CanonicalizationError(f"$: {exc}") from exc
