"""Per-address limits on anonymous writes, counted once for the whole service.

A limit allows at most ``limit`` hits in any ``window`` seconds (a sliding log: the times of
the accepted hits are kept, not an estimate). The hits live in the shared database
(``rate_windows``, one row per scope and address), so every API process, every host and the
portal count the same hits: N processes no longer let a client through N times as often. The
API sends the check to the writer (``api.writes.RateCheckRequest``), where it shares the
group's transaction and COMMIT; a route that has a unit of work of its own checks in it.

A refused hit is not counted, as before: a client that keeps asking is let through again as
soon as its oldest hit leaves the window.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ledger import repository as repo
from ledger.errors import CivicError
from ledger.settings import Settings

#: The longest window a limit may have; windows untouched for longer are forgotten.
MAX_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` hits per client address in any ``window`` seconds, counted under
    ``scope``. ``limit`` 0 means no limit."""

    scope: str
    limit: int
    window: float
    what: str  # for the refusal: "submissions", "uploads"

    def describe(self) -> str:
        if self.window == 60:
            return f"at most {self.limit} {self.what} a minute"
        if self.window == 3600:
            return f"at most {self.limit} {self.what} an hour"
        return f"at most {self.limit} {self.what} in {self.window:g} s"


class RateLimited(CivicError):
    """429: too many anonymous writes from one address; ``Retry-After`` says when to retry."""

    status_code = 429

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def refusal(client: str, limits: Sequence[RateLimit], wait: float) -> RateLimited:
    """The RateLimited error for ``client``, who may try again in ``wait`` seconds."""
    said = "; ".join(limit.describe() for limit in limits if limit.limit > 0)
    return RateLimited(
        f"too many requests from {client}: {said} per address; try again in {retry_after(wait)} s",
        retry_after(wait),
    )


def hit(session: Session, client: str, limits: Sequence[RateLimit], now: datetime) -> float:
    """Count one hit of ``client`` under every limit of ``limits``: 0.0 when each allows it
    (it is then counted under each), else the seconds until all would (nothing is counted).

    Runs in the caller's transaction; the rows it reads stay locked until that ends."""
    at = now.timestamp()
    updates: list[tuple[RateLimit, list[float]]] = []
    wait = 0.0
    for limit in limits:
        if limit.limit <= 0:
            continue
        if limit.window > MAX_WINDOW.total_seconds():
            raise ValueError(f"a rate window is at most {MAX_WINDOW}; got {limit.window} s")
        stored = json.loads(repo.lock_rate_window(session, limit.scope, client, now))
        hits = [float(t) for t in stored if float(t) > at - limit.window]
        if len(hits) >= limit.limit:
            # The hit that makes room is the one ``limit`` places before the newest.
            wait = max(wait, hits[len(hits) - limit.limit] + limit.window - at, 0.001)
            continue
        updates.append((limit, hits))
    if wait:
        return wait
    for limit, hits in updates:
        hits.append(round(at, 3))
        repo.store_rate_hits(session, limit.scope, client, json.dumps(hits), now)
    return 0.0


def forget_idle(session: Session, now: datetime) -> int:
    """Delete the windows of addresses not seen for ``MAX_WINDOW``; how many."""
    return repo.forget_rate_windows(session, now - MAX_WINDOW)


def submission_limit(settings: Settings) -> RateLimit:
    """Anonymous submissions (the API's and the portal form's): CIVIC_SUBMIT_RATE a minute."""
    return RateLimit("submit", settings.submit_rate, 60.0, "anonymous submissions")


def upload_limit(settings: Settings) -> RateLimit:
    """Anonymous uploads, besides counting as submissions: CIVIC_UPLOAD_RATE an hour."""
    return RateLimit("upload", settings.upload_rate, 3600.0, "anonymous uploads")
