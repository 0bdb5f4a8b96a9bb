"""A per-address sliding-window limit for anonymous submissions (CIVIC_SUBMIT_RATE a minute).

In-process: one API process holds the counts. Behind several API processes, put the limit
in the reverse proxy instead (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque


class SlidingWindowLimiter:
    def __init__(self, per_minute: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> float:
        """Count one hit for ``key``; 0 when allowed, else seconds until the next is allowed."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._evict(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(0.001, hits[0] + self.window - now)
            hits.append(now)
            return 0.0

    def _evict(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
