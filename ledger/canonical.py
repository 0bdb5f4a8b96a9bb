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


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalizationError(f"{path}: integer {value} is outside ±(2^53 − 1)")
        return
    if isinstance(value, float):
        raise CanonicalizationError(f"{path}: floating-point numbers are not allowed in records")
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalizationError(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    raise CanonicalizationError(f"{path}: {type(value).__name__} is not a JSON value")


def canonical_bytes(value: Mapping[str, Any]) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON object.

    Raises CanonicalizationError for anything PROTOCOL §1 forbids in a record.
    """
    _check(value, "$")
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as exc:  # e.g. lone surrogates in a string
        raise CanonicalizationError(str(exc)) from exc
