"""The anchoring worker: seals pending records into batches and anchors batch roots on chain.

Crash safety rests on three facts:

1. A batch is stored (``sealed``) before anything is sent, and sealing is one transaction
   that also advances the log's ``sealed_until``: a record is in exactly one batch.
2. The signed transaction is stored (``sent``) before it is broadcast. After a crash the
   worker rebroadcasts the very same bytes (same nonce, same hash), so at most one anchor
   transaction per batch can ever be mined from this worker.
3. The contract refuses any batch number but ``nextBatch(log)``, so even a second worker
   or an operator's mistake cannot anchor a batch twice; the worker reconciles with what
   the chain says (``batchOf``) before sending and after any doubt.

Exactly one worker is active per log: a PostgreSQL advisory lock, or a file lock beside
the SQLite database. A worker that does not hold a log's lock stays on standby for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import filelock
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, utc_now
from core.merkle import merkle_root
from core.records import LOGS
from ledger import repository as repo
from ledger import trailmap, tree
from ledger.chain import (
    AnchorReceipt,
    ChainClient,
    ChainError,
    ChainUnavailable,
    ContractMissing,
    SignedAnchor,
)
from ledger.db import sqlite_path
from ledger.models import BatchRow

log = logging.getLogger("civic.worker")


class LogLock:
    """Non-blocking, process-exclusive lock on one log for the anchoring worker."""

    def __init__(self, engine: Engine, log_name: str) -> None:
        self.engine = engine
        self.log_name = log_name
        self._conn: Connection | None = None
        self._file: filelock.BaseFileLock | None = None
        path = sqlite_path(str(engine.url))
        if engine.dialect.name == "sqlite":
            base = path if path is not None else Path(os.getcwd()) / "memory.db"
            self._file = filelock.FileLock(f"{base}.worker-{log_name}.lock", timeout=0)
        self._key: int | None = None

    def acquire(self) -> bool:
        if self._file is not None:
            try:
                self._file.acquire()
            except filelock.Timeout:
                return False
            return True
        conn = self.engine.connect()
        try:
            if self._key is None:
                # Advisory locks are per database; the schema joins the key so that two stores
                # in one database (one per schema) do not lock each other out.
                schema = conn.execute(text("SELECT current_schema()")).scalar()
                name = f"civic-ledger/anchoring-worker/{schema}/{self.log_name}"
                self._key = int.from_bytes(
                    hashlib.sha256(name.encode()).digest()[:8], "big", signed=True
                )
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
            conn.commit()
        except Exception:
            conn.invalidate()  # the database went away mid-way: never reuse this connection
            conn.close()
            raise
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        if self._file is not None:
            return self._file.is_locked
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:  # the lock went with the connection
            self._conn = None
            return False

    def release(self) -> None:
        if self._file is not None and self._file.is_locked:
            self._file.release()
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._conn.commit()
                self._conn.close()
            except Exception:  # noqa: S110 - closing the connection releases it anyway
                pass
            self._conn = None


@dataclass
class LogState:
    name: str
    lock: LogLock
    held: bool = False
    state: str = "standby"
    detail: str | None = None
    retry_at: float = 0.0
    backoff: float = 0.0
    last_heartbeat: float = 0.0


@dataclass
class WorkerConfig:
    contract: str
    anchor_interval: float = 2.0
    batch_max: int = 1000  # seal once this many records wait (a batch takes all that wait)
    receipt_timeout: float = 30.0
    heartbeat_every: float = 1.0
    # Retrying costs one RPC; a long cap would add up to that much anchoring lag after the
    # chain comes back (scripts/chaos chain-down: up to 30 s with 30.0).
    max_backoff: float = 5.0
    logs: Iterable[str] = field(default_factory=lambda: sorted(LOGS))


class AnchoringWorker:
    def __init__(
        self,
        *,
        engine: Engine,
        session_factory: sessionmaker[Session],
        chain: ChainClient,
        config: WorkerConfig,
        clock: Clock = utc_now,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = session_factory
        self.chain = chain
        self.config = config
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.logs = [LogState(name, LogLock(engine, name)) for name in config.logs]

    # -- the loop -----------------------------------------------------------------------

    def run(self, stop: threading.Event, poll: float = 0.1) -> None:
        """Work until ``stop`` is set; then release the locks."""
        log.info(
            "anchoring worker %s starting for logs %s", self.worker_id, [s.name for s in self.logs]
        )
        try:
            while not stop.is_set():
                busy = self.step()
                if not busy:
                    stop.wait(poll)
        finally:
            for state in self.logs:
                state.lock.release()
            log.info("anchoring worker %s stopped", self.worker_id)

    def step(self) -> bool:
        """One pass over every log; True when a batch was sealed or anchored."""
        busy = False
        for state in self.logs:
            try:
                held = self._hold(state)
            except Exception as exc:  # the database is away (restart, failover): next pass
                if state.state != "database_unavailable":  # once, not every pass
                    log.warning("log %s: cannot take the worker lock: %s", state.name, exc)
                state.held, state.state, state.detail = False, "database_unavailable", str(exc)
                continue
            if not held:
                continue
            if time.monotonic() < state.retry_at:
                self._heartbeat(state)
                continue
            try:
                busy |= self._work_on(state)
                state.backoff = 0.0
            except ChainUnavailable as exc:
                self._back_off(state, "chain_unreachable", f"chain unreachable: {exc}")
            except ContractMissing as exc:
                self._back_off(state, "contract_missing", str(exc))
            except ChainError as exc:
                self._back_off(state, "chain_error", f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # a database hiccup must not kill the worker
                log.exception("log %s: unexpected error", state.name)
                self._back_off(state, "error", f"{type(exc).__name__}: {exc}")
            self._heartbeat(state)
        return busy

    def _hold(self, state: LogState) -> bool:
        if state.held and not state.lock.still_held():
            log.warning("log %s: lost the worker lock", state.name)
            state.held = False
        if not state.held and state.lock.acquire():
            log.info("log %s: this worker is now the active anchorer", state.name)
            state.held, state.state, state.detail = True, "idle", None
        return state.held

    def _back_off(self, state: LogState, kind: str, detail: str) -> None:
        state.backoff = min(self.config.max_backoff, max(0.5, state.backoff * 2))
        state.retry_at = time.monotonic() + state.backoff
        state.state, state.detail = kind, f"{detail} (retrying in {state.backoff:.1f}s)"
        log.warning("log %s: %s", state.name, state.detail)

    def _heartbeat(self, state: LogState, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - state.last_heartbeat < self.config.heartbeat_every:
            return
        try:
            with self.sessions.begin() as session:
                repo.upsert_worker_status(
                    session, state.name, self.worker_id, state.state, state.detail, self.clock()
                )
            state.last_heartbeat = now
        except Exception:  # heartbeats are best effort
            log.debug("heartbeat failed", exc_info=True)

    def _work_on(self, state: LogState) -> bool:
        with self.sessions() as session:
            outstanding = repo.oldest_unanchored_batch(session, state.name)
        if outstanding is not None and outstanding.log_root is None:
            # Sealed before the log trees existed: its version 2 anchor needs the log's root.
            with self.sessions.begin() as session:
                tree.backfill(session, repo.lock_log_head(session, state.name))
            with self.sessions() as session:
                outstanding = repo.oldest_unanchored_batch(session, state.name)
        if outstanding is None:
            outstanding = self.seal(state.name)
            if outstanding is None:
                state.state, state.detail = "idle", None
                return False
        state.state, state.detail = "anchoring", f"batch {outstanding.number}"
        self.anchor(outstanding)
        state.state, state.detail = "idle", None
        return True

    # -- sealing ------------------------------------------------------------------------

    def seal(self, log_name: str, force: bool = False) -> BatchRow | None:
        """Seal the log's pending records into the next batch, if it is time to.

        It is time when ``batch_max`` records wait, or the oldest has waited
        ``anchor_interval`` seconds (or ``force``). The batch takes every waiting record (its
        last entry, the map head of PROTOCOL §10, can only follow the last of them, whose
        positions are already given out), so ``batch_max`` is when to seal, not a cap.
        """
        with self.sessions.begin() as session:
            head = repo.lock_log_head(session, log_name)
            pending = head.next_position - head.sealed_until
            if pending <= 0:
                return None
            if pending < self.config.batch_max and not force:
                oldest = repo.oldest_record_time_from(session, log_name, head.sealed_until)
                waited = self.clock() - oldest if oldest else timedelta(0)
                if waited.total_seconds() < self.config.anchor_interval:
                    return None
            last = repo.last_batch(session, log_name)
            number = last.number + 1 if last else 0
            # Every waiting record, then the map of trail heads after them (PROTOCOL §10):
            # the batch's last entry, so the anchored root commits to the map.
            trailmap.seal(session, head, number, self.clock)
            size = pending + 1
            leaves = repo.leaf_hashes_in_range(session, log_name, head.sealed_until, size)
            # The whole log's tree grows with the batch (PROTOCOL §8), in this transaction.
            log_root, frontier = tree.seal(session, head, head.sealed_until, leaves)
            batch = BatchRow(
                log=log_name,
                number=number,
                first_position=head.sealed_until,
                size=size,
                root=merkle_root(leaves),
                log_root=log_root,
                frontier=frontier,
                state="sealed",
                sealed_at=self.clock(),
            )
            session.add(batch)
            head.sealed_until += size
        log.info("log %s: sealed batch %d with %d records", log_name, batch.number, size)
        return batch

    # -- anchoring ----------------------------------------------------------------------

    def anchor(self, batch: BatchRow) -> None:
        """Bring one stored batch to ``anchored``, whatever state a crash left it in."""
        if batch.state == "sent" and batch.tx_hash and batch.raw_tx:
            receipt = self.chain.get_receipt(batch.tx_hash)
            if receipt is None and self._reconcile(batch):
                return
            if receipt is None:
                log.info(
                    "log %s: rebroadcasting batch %d (%s)", batch.log, batch.number, batch.tx_hash
                )
                try:
                    self.chain.send_raw(batch.raw_tx)
                except ChainUnavailable:
                    raise
                except ChainError as exc:
                    # Our stored transaction can no longer be mined (its nonce was used):
                    # forget it and sign afresh; the contract still guards the batch number.
                    self._forget_transaction(batch, f"rebroadcast refused: {exc}")
                    return
                receipt = self.chain.wait_for_receipt(batch.tx_hash, self.config.receipt_timeout)
            if receipt is not None:
                self._settle(batch, receipt)
            return

        signed = self.prepare(batch)
        if signed is None:
            return
        self.chain.send_raw(signed.raw)
        receipt = self.chain.wait_for_receipt(signed.tx_hash, self.config.receipt_timeout)
        if receipt is not None:
            self._settle(batch, receipt)

    def prepare(self, batch: BatchRow) -> SignedAnchor | None:
        """Sign the anchor transaction of a ``sealed`` batch and store it (state ``sent``)
        before anything is broadcast. None when the chain already holds the batch."""
        if self._reconcile(batch):
            return None
        contract = self.config.contract
        expected = self.chain.next_batch(contract, batch.log)
        if expected != batch.number:
            raise ChainError(
                f"the chain expects batch {expected} of log {batch.log} but the store's next "
                f"unanchored batch is {batch.number}: the chain and the store disagree"
            )
        signed = self.chain.sign_anchor(
            contract, batch.log, batch.number, batch.anchored_root, batch.end
        )
        self._update(
            batch,
            state="sent",
            tx_hash=signed.tx_hash,
            raw_tx=signed.raw,
            nonce=signed.nonce,
            chain_id=self.chain.chain_id,
            contract=contract,
            sent_at=self.clock(),
            last_error=None,
        )
        return signed

    def _reconcile(self, batch: BatchRow) -> bool:
        """If the chain already holds this batch, record that; True when it does."""
        on_chain = self.chain.batch_of(self.config.contract, batch.log, batch.number)
        if on_chain is None:
            return False
        if on_chain.root != batch.anchored_root or on_chain.size != batch.end:
            raise ChainError(
                f"batch {batch.number} of log {batch.log} is anchored on chain with root "
                f"{on_chain.root.hex()} size {on_chain.size}, but the store sealed the log's "
                f"root {batch.anchored_root.hex()} size {batch.end}: refusing to continue this log"
            )
        found = self.chain.find_anchor(self.config.contract, batch.log, batch.number)
        if found is None:
            raise ChainError(
                f"batch {batch.number} of log {batch.log} is anchored on chain but its Anchored "
                f"event is not in block {on_chain.block_number}; cannot name the transaction"
            )
        tx_hash, block = found
        self._update(
            batch,
            state="anchored",
            tx_hash=tx_hash,
            block_number=block,
            chain_id=self.chain.chain_id,
            contract=self.config.contract,
            anchored_at=self.clock(),
            last_error=None,
        )
        log.info(
            "log %s: batch %d found anchored on chain (tx %s)", batch.log, batch.number, tx_hash
        )
        return True

    def _settle(self, batch: BatchRow, receipt: AnchorReceipt) -> None:
        if receipt.status == 1:
            self._update(
                batch,
                state="anchored",
                block_number=receipt.block_number,
                gas_used=receipt.gas_used,
                anchored_at=self.clock(),
                last_error=None,
            )
            log.info(
                "log %s: anchored batch %d (%d records) in block %d, %d gas",
                batch.log,
                batch.number,
                batch.size,
                receipt.block_number,
                receipt.gas_used,
            )
            return
        if not self._reconcile(batch):
            self._forget_transaction(batch, f"anchor transaction {receipt.tx_hash} reverted")
            raise ChainError(
                f"anchor transaction {receipt.tx_hash} for batch {batch.number} reverted"
            )

    def _forget_transaction(self, batch: BatchRow, reason: str) -> None:
        """Back to ``sealed``: the next pass asks the chain again and signs afresh."""
        self._update(
            batch, state="sealed", tx_hash=None, raw_tx=None, nonce=None, last_error=reason
        )

    def _update(self, batch: BatchRow, **values: object) -> None:
        with self.sessions.begin() as session:
            row = repo.batch(session, batch.log, batch.number)
            assert row is not None
            for key, value in values.items():
                setattr(row, key, value)
                setattr(batch, key, value)
