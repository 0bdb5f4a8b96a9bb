"""Canonical bytes of a record: RFC 8785 (JSON Canonicalization Scheme), UTF-8.

PROTOCOL §2: ``canonical(record)`` is the JCS serialisation. Records carry no floats
(PROTOCOL §1), so we refuse them outright instead of relying on JCS number formatting,
and we refuse integers outside the interoperable range ±(2^53 − 1).
"""

from __future__ import annotations

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


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON object.

    Raises CanonicalizationError for anything PROTOCOL §1 forbids in a record.
    """
    plain = _plain(value, "$")
    try:
        return rfc8785.dumps(plain)
    # Lone surrogates: rfc8785 raises its own error for values, but the UTF-16 sort of
    # object keys lets UnicodeEncodeError escape.
    except (rfc8785.CanonicalizationError, UnicodeEncodeError) as exc:
        raise CanonicalizationError(f"$: {exc}") from exc
