"""Time as the core takes it: a clock is a parameter, never read implicitly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A source of the current time (timezone-aware). Services take one; tests pass fixed ones."""


def utc_now() -> datetime:
    """The wall clock in UTC: the default ``Clock`` of the services."""
    return datetime.now(UTC)
