"""Identifiers people read out and type: Crockford base32 (no I, L, O, U).

``SG-XXXX-XXXX-XXXX`` tracking codes carry 60 random bits, ``SIM-XXXXXXXX`` simulation ids
40. The random choice is a parameter (``secrets.choice`` in the service)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GROUP = "[0-9A-HJKMNP-TV-Z]{4}"
TRACKING_CODE_PATTERN = f"^SG-{_GROUP}-{_GROUP}-{_GROUP}$"
"""A suggestion's tracking code, as the API's path and body validation take it."""


def crockford(length: int, choose: Callable[[Sequence[str]], str]) -> str:
    """``length`` characters of the Crockford alphabet, each picked by ``choose``."""
    return "".join(choose(CROCKFORD) for _ in range(length))


def tracking_code(choose: Callable[[Sequence[str]], str]) -> str:
    """``SG-XXXX-XXXX-XXXX``: 60 random bits, easy to read out on a phone."""
    chars = crockford(12, choose)
    return f"SG-{chars[:4]}-{chars[4:8]}-{chars[8:]}"
