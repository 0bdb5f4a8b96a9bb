"""Group commit: the write jobs of many requests run in one transaction, and one COMMIT
(one fsync) acknowledges all of them. ``run_group`` is the rule; the writer process
(api.writer) applies it to what the API processes sent, ``GroupCommitter`` (a writer thread)
to the jobs of one process.

Appends to a log are serialised (dense positions in commit order, PROTOCOL §3), so the lock
they take is held from a transaction's first statement to its commit, fsync included. One
transaction per request made every writer queue for that lock and pay its own fsync
(scripts/load: about 3.7 ms of lock per write on SQLite, 6 ms on PostgreSQL, so about 270
writes a second at most, with waiters polling in SQLite's busy handler). Here the writer
thread takes what has queued up while the previous group ran, so the lock and the fsync are
paid once per group. Jobs must be rerunnable: database work only, nothing outside the session.

The jobs run without savepoints first (they cost the writer about a tenth of its time); when
one raises, the transaction is rolled back and the group runs again with a SAVEPOINT per
job. Nothing is relaxed:

* a job's caller hears of its outcome only after the group's COMMIT returned (an
  acknowledged record is on disk: SQLite ``synchronous=FULL``, PostgreSQL
  ``synchronous_commit=on``);
* a job that raises is undone alone (in the rerun, by its savepoint); the other jobs of the
  group are unaffected, and the caller gets the exception as if it had run alone;
* when the transaction itself fails (a lost connection, a PostgreSQL deadlock between two
  processes' groups, a failed COMMIT), no job of the group was acknowledged, and each job runs
  again alone in a transaction of its own, so one job's trouble never becomes another's
  error.

On SQLite, several processes' writer threads also queue on an exclusive ``flock`` before
``BEGIN IMMEDIATE``: the kernel hands the lock over at once, where SQLite's busy handler
would sleep up to 100 ms between attempts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ledger.db import defer_writes, flush, stop_deferring

log = logging.getLogger(__name__)

Job = Callable[[Session], Any]
# Called in the writer thread once the job's outcome is final: (result, None) after the
# commit, or (None, the exception).
Done = Callable[[Any, BaseException | None], None]
Outcome = tuple[Any, BaseException | None]

MAX_GROUP = 64


@dataclass(frozen=True)
class _Item:
    job: Job
    done: Done


@dataclass
class GroupStats:
    groups: int = 0
    jobs: int = 0
    largest: int = 0
    rerun_with_savepoints: int = 0
    retried_alone: int = 0


class WriterClosed(RuntimeError):
    """The writer has stopped (the process is shutting down); nothing was written."""


class _Refused(Exception):
    """A job raised in a group run without savepoints: the group is rolled back."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(f"job {index} raised {type(error).__name__}")
        self.index = index
        self.error = error


def run_group(
    sessions: sessionmaker[Session],
    jobs: Sequence[Job],
    exclusive: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    stats: GroupStats | None = None,
) -> list[Outcome]:
    """Run ``jobs`` in one transaction and commit once. One outcome per job, in order:
    (result, None) once committed, or (None, exception) with nothing of that job written.

    Optimistic: the jobs first run without savepoints (a SAVEPOINT and its RELEASE cost the
    writer about a tenth of its time). When one raises, that transaction is rolled back and
    the group runs again with a savepoint per job, so only the refused job is undone. When
    the transaction itself fails, each job runs again alone."""
    try:
        try:
            outcomes = _attempt(sessions, jobs, exclusive, savepoints=False)
        except _Refused as refused:
            if len(jobs) == 1:
                outcomes = [(None, refused.error)]
            else:
                if stats is not None:
                    stats.rerun_with_savepoints += 1
                outcomes = _attempt(sessions, jobs, exclusive, savepoints=True)
    except Exception as exc:
        if len(jobs) == 1:
            outcomes = [(None, exc)]
        else:
            log.warning(
                "a group of %d writes failed (%s: %s); each runs again alone",
                len(jobs),
                type(exc).__name__,
                exc,
            )
            if stats is not None:
                stats.retried_alone += len(jobs)
            outcomes = [_alone(sessions, job, exclusive) for job in jobs]
    if stats is not None:
        stats.groups += 1
        stats.jobs += len(jobs)
        stats.largest = max(stats.largest, len(jobs))
    return outcomes


def _alone(
    sessions: sessionmaker[Session],
    job: Job,
    exclusive: Callable[[], contextlib.AbstractContextManager[None]],
) -> Outcome:
    try:
        return _attempt(sessions, [job], exclusive, savepoints=False)[0]
    except _Refused as refused:
        return None, refused.error
    except Exception as exc:
        return None, exc


def _attempt(
    sessions: sessionmaker[Session],
    jobs: Sequence[Job],
    exclusive: Callable[[], contextlib.AbstractContextManager[None]],
    *,
    savepoints: bool,
) -> list[Outcome]:
    """The jobs in one transaction, then one COMMIT; raises (with nothing committed) when
    the transaction fails, or, without ``savepoints``, when a job raises (``_Refused``).
    With ``savepoints`` each job runs under its own, and a job that raises is undone alone."""
    outcomes: list[Outcome] = []
    with exclusive(), sessions() as session:
        writes = defer_writes(session)
        try:
            for index, job in enumerate(jobs):
                if not savepoints:
                    try:
                        outcomes.append((job(session), None))
                    except Exception as exc:
                        raise _Refused(index, exc) from exc
                    continue
                mark = writes.mark()
                try:
                    with session.begin_nested():
                        result = job(session)
                        flush(session)  # a deferred write that fails, fails its own job
                except Exception as exc:
                    writes.restore(mark)
                    outcomes.append((None, exc))
                else:
                    outcomes.append((result, None))
            try:
                flush(session)
            except Exception as exc:
                # Without savepoints, a deferred write of some job failed at the end: the
                # rerun with savepoints tells which.
                raise _Refused(len(jobs) - 1, exc) from exc
            stop_deferring(writes)
            session.commit()
        except BaseException:
            stop_deferring(writes)
            session.rollback()
            raise
    return outcomes


class GroupCommitter:
    """The process's writer thread. ``submit(job, done)`` queues ``job(session)``; ``done``
    is called with its outcome after the commit (or the failure)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        lock_file: Path | None = None,
        max_group: int = MAX_GROUP,
        name: str = "civic-writer",
    ) -> None:
        self._sessions = sessions
        self._lock_file = lock_file
        self._lock_fd: int | None = None
        self.max_group = max_group
        self.stats = GroupStats()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> GroupCommitter:
        if self._lock_file is not None:
            self._lock_file.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self._lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        self._thread.start()
        return self

    def submit(self, job: Job, done: Done) -> None:
        with self._close_lock:
            if self._closed:
                raise WriterClosed("the service is shutting down; nothing was written")
            self._queue.put(_Item(job, done))

    def close(self, timeout: float = 30.0) -> None:
        """Finish every queued job, then stop the thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                group.append(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Item]) -> None:
        try:
            outcomes = run_group(
                self._sessions, [item.job for item in group], self._exclusive, self.stats
            )
        except BaseException as exc:  # never leave a caller waiting, even on the way out
            for item in group:
                self._settle(item, (None, exc))
            raise
        for item, outcome in zip(group, outcomes, strict=True):
            self._settle(item, outcome)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _settle(item: _Item, outcome: Outcome) -> None:
        try:
            item.done(*outcome)
        except Exception:  # a caller's callback must not stop the writer
            log.exception("a write's completion callback failed")
