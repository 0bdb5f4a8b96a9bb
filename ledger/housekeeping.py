"""Housekeeping of the store, beside the anchoring worker (``civic-ledger worker`` runs it in
a thread of its own): uploads no record cites are removed after the grace period
(``CIVIC_ATTACHMENT_GRACE_HOURS``, ``ledger.attachments.remove_uncited``), and the rate
windows of addresses not seen for a day are forgotten (``ledger.ratelimit.forget_idle``).

It runs in every worker process, active or standby: each host removes the files of its own
data directory, and the row deletions are idempotent. A failed sweep is logged and tried
again at the next one; nothing here is urgent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, utc_now
from ledger import attachments, ratelimit

log = logging.getLogger("civic.housekeeping")

SWEEP_EVERY = 600.0  # seconds between sweeps


@dataclass(frozen=True)
class Swept:
    attachment_rows: int
    attachment_files: int
    rate_windows: int


@dataclass
class Housekeeper:
    sessions: sessionmaker[Session]
    attachments_dir: Path
    attachment_grace_seconds: float
    every: float = SWEEP_EVERY
    clock: Clock = utc_now

    def sweep(self) -> Swept:
        """One pass: uncited uploads past the grace period, idle rate windows."""
        now = self.clock()
        removed = attachments.remove_uncited(
            self.sessions,
            self.attachments_dir,
            grace_seconds=self.attachment_grace_seconds,
            now=now,
        )
        with self.sessions.begin() as session:
            forgotten = ratelimit.forget_idle(session, now)
        return Swept(len(removed.rows), len(removed.files), forgotten)

    def run(self, stop: threading.Event) -> None:
        """Sweep at once, then every ``every`` seconds, until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.sweep()
            except Exception:  # the database away, a file busy: the next sweep tries again
                log.warning("housekeeping sweep failed", exc_info=True)
            stop.wait(self.every)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="housekeeping", daemon=True)
        thread.start()
        return thread
