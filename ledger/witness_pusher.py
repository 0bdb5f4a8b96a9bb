"""The witness pusher (PROTOCOL §9, C2SP tlog-witness): every anchored batch's checkpoint goes
to every witness of ``CIVIC_WITNESSES``, in batch order, and the cosignatures they answer are
verified and kept (``witness_cosignatures``). ``civic-ledger worker`` runs it in a thread of
its own, beside the anchoring.

For each log and witness the pusher knows the size the witness last cosigned for us
(``witness_state.size``, 0 at first) and sends ``add-checkpoint`` with that ``old`` size, the
RFC 9162 consistency proof from it (``ledger.tree``) and the next anchored batch's checkpoint:

* 200: the answer's lines by the witness's key must verify on the checkpoint
  (``core.note.open_note``); they are stored for (log, batch, witness) and the witness's size
  becomes the batch's end. Lines by other keys are ignored (tlog-witness); an answer without
  a line that verifies is an error.
* 409 ``text/x.tlog.size``: the witness last cosigned another size. When that size is the
  end of one of our anchored batches, the pusher takes it as ``old`` and goes on (batches
  before it can no longer be cosigned by this witness). Otherwise it records the conflict
  (a split view, a store restored from an old backup, another log under our origin) and does
  not push to that witness for that log again until the size it named becomes one of ours;
  an operator looks (``/healthz/detail``).
* 409 without a size: the witness holds another root at this size, a conflict as well.
* anything else (422 a proof it refused, 403 and 404 a key or origin it does not know, a
  5xx, a timeout, a refused connection): an error kept for /healthz; tried again after a
  delay that doubles from ``RETRY_FIRST`` to ``RETRY_MAX``.

Pushing is idempotent: two worker processes (active and standby) pushing at once only make a
witness answer 409 to one of them, which then takes the size named.

Witnesses are pushed to concurrently, each in a thread of its own (``run``: one loop per
witness; ``push_all``: one pass, every witness at once), and every request to a witness has
its own timeout (``timeout``, 10 s to answer, 5 s to connect): a witness that accepts the
connection and never answers costs its own thread that long, then its backoff, and delays
neither the other witnesses' cosignatures nor their next passes. A witness's state and
backoff are its own (``witness_state`` rows and ``_backoff`` entries are per witness), so the
threads share nothing but the HTTP client's connection pool and the session factory.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, utc_now
from core.note import NoteError, encode_base64, open_note
from ledger import repository as repo
from ledger import tree
from ledger.checkpoints import LogKeys
from ledger.models import BatchRow, WitnessCosignatureRow, WitnessState
from ledger.witnesses import Witness

log = logging.getLogger("civic.witnesses")

PUSH_EVERY = 2.0  # seconds between passes when nothing failed
RETRY_FIRST = 2.0
RETRY_MAX = 300.0
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # per request to one witness
BATCHES_PER_PASS = 100  # per witness and log, so one long backlog does not hold up the rest
SIZE_TYPE = "text/x.tlog.size"
MAX_ERROR = 500  # characters of an error kept


class PushFailed(Exception):
    """A push that did not give a cosignature: the detail kept for /healthz."""


class Conflict(PushFailed):
    """The witness holds a view of the log the pusher cannot continue from."""

    def __init__(self, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.size = size


@dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


@dataclass
class WitnessPusher:
    sessions: sessionmaker[Session]
    keys: LogKeys
    witnesses: list[Witness]
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=TIMEOUT))
    every: float = PUSH_EVERY
    clock: Clock = utc_now
    timeout: httpx.Timeout = field(default_factory=lambda: TIMEOUT)
    _backoff: dict[tuple[str, str], _Backoff] = field(default_factory=dict)

    def push_all(self) -> int:
        """One pass over every witness and log, the witnesses concurrently (a thread each);
        how many cosignatures were stored. Returns when the slowest witness is done, while
        each other witness's cosignatures are stored as soon as it answers."""
        if len(self.witnesses) < 2:
            return sum(self.push_witness(witness) for witness in self.witnesses)
        with ThreadPoolExecutor(len(self.witnesses), thread_name_prefix="witness") as pool:
            return sum(pool.map(self.push_witness, self.witnesses))

    def push_witness(self, witness: Witness) -> int:
        """One pass over every log for one witness, each log after its backoff; how many
        cosignatures were stored. A failure is logged and backs off that witness and log."""
        stored = 0
        for log_name in sorted(self.keys.signers):
            backoff = self._backoff.setdefault((witness.key, log_name), _Backoff())
            now = self.clock().timestamp()
            if now < backoff.not_before:
                continue
            try:
                stored += self.push(witness, log_name)
            except Exception as exc:  # one witness's failure, not the whole pass's
                backoff.failures += 1
                delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (backoff.failures - 1))
                backoff.not_before = now + delay
                log.warning(
                    "witness %s, log %s: %s (next try in %.0f s)",
                    witness.name,
                    log_name,
                    exc,
                    delay,
                    # a failure of the store (not kept for /healthz) with its traceback
                    exc_info=not isinstance(exc, PushFailed),
                )
            else:
                backoff.failures, backoff.not_before = 0, 0.0
        return stored

    def push(self, witness: Witness, log_name: str) -> int:
        """Push the log's anchored batches the witness has not cosigned, in order (at most
        ``BATCHES_PER_PASS``); how many cosignatures were stored. Raises PushFailed (kept in
        ``witness_state``) when one does not go through."""
        stored = 0
        with self.sessions.begin() as session:
            state = self._state(session, witness, log_name)
            if state.conflict is not None:
                if state.conflict_size is None or not self._anchored_end(
                    session, log_name, state.conflict_size
                ):
                    return 0
                # The size the witness named is one of ours now: continue from it.
                state.size, state.conflict, state.conflict_size = state.conflict_size, None, None
            old = state.size
        for _ in range(BATCHES_PER_PASS):
            with self.sessions.begin() as session:
                batch = self._next_batch(session, witness, log_name, old)
                if batch is None:
                    return stored
                end, number = batch.first_position + batch.size, batch.number
                note = self.keys.checkpoint(batch)
                proof = tree.consistency_proof(session, log_name, old, end) if 0 < old < end else []
            try:
                lines = self._add_checkpoint(witness, old, proof, note)
            except Conflict as conflict:
                with self.sessions.begin() as session:
                    named = conflict.size
                    if (
                        named is not None
                        and named != old
                        and self._anchored_end(session, log_name, named)
                    ):
                        state = self._state(session, witness, log_name)
                        state.size, state.updated_at = named, self.clock()
                        old = named
                        continue
                    self._record(session, witness, log_name, conflict=conflict)
                raise
            except PushFailed as failed:
                with self.sessions.begin() as session:
                    self._record(session, witness, log_name, error=failed)
                raise
            with self.sessions.begin() as session:
                now = self.clock()
                session.merge(
                    WitnessCosignatureRow(
                        log=log_name,
                        batch=number,
                        witness=witness.name,
                        key_id=witness.verifier.key_id,
                        lines=lines,
                        cosigned_at=now,
                    )
                )
                state = self._state(session, witness, log_name)
                state.size, state.updated_at = end, now
                state.last_error = state.conflict = None
                state.conflict_size = state.error_at = None
            stored += 1
            old = end
        return stored

    def _add_checkpoint(self, witness: Witness, old: int, proof: list[bytes], note: str) -> str:
        """POST add-checkpoint; the verified cosignature lines of the witness's key."""
        body = f"old {old}\n" + "".join(encode_base64(h) + "\n" for h in proof) + "\n" + note
        try:
            response = self.client.post(
                witness.add_checkpoint_url,
                content=body.encode("utf-8"),
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise PushFailed(f"{type(exc).__name__}: {exc}") from None
        if response.status_code == 409:
            if response.headers.get("content-type", "").split(";")[0].strip() == SIZE_TYPE:
                text = response.text
                if not text.endswith("\n") or not text[:-1].isdigit():
                    raise PushFailed(f"409 with a malformed size {text[:40]!r}")
                named = int(text[:-1])
                raise Conflict(
                    f"the witness last cosigned size {named}, which is not the end of an "
                    f"anchored batch of this log (we sent old {old})",
                    named,
                )
            raise Conflict(
                f"409: the witness holds another checkpoint at size {old} or refuses this one: "
                f"{response.text[:200]!r}"
            )
        if response.status_code != 200:
            raise PushFailed(f"HTTP {response.status_code}: {response.text[:200]!r}")
        try:
            opened = open_note(note + response.text, [witness.verifier])
        except NoteError as exc:
            raise PushFailed(f"the answer holds no valid cosignature of ours: {exc}") from None
        return "".join(line.line for line in opened.signatures)

    def _next_batch(
        self, session: Session, witness: Witness, log_name: str, old: int
    ) -> BatchRow | None:
        """The first anchored batch ending beyond ``old``; or the batch ending at ``old``
        when the witness's cosignature of it is not stored (a witness that named its size
        after a 409 cosigns that checkpoint again)."""
        at_old = repo.anchored_batch_ending_at(session, log_name, old)
        if at_old is not None and old > 0 and self._missing(session, witness, at_old):
            return at_old
        return session.scalars(
            select(BatchRow)
            .where(
                BatchRow.log == log_name,
                BatchRow.state == "anchored",
                BatchRow.first_position + BatchRow.size > old,
            )
            .order_by(BatchRow.number)
            .limit(1)
        ).first()

    @staticmethod
    def _missing(session: Session, witness: Witness, batch: BatchRow) -> bool:
        return (
            session.get(
                WitnessCosignatureRow,
                (batch.log, batch.number, witness.name, witness.verifier.key_id),
            )
            is None
        )

    @staticmethod
    def _anchored_end(session: Session, log_name: str, size: int) -> bool:
        """Whether ``size`` is the end of an anchored batch of the log (or 0)."""
        return size == 0 or repo.anchored_batch_ending_at(session, log_name, size) is not None

    def _state(self, session: Session, witness: Witness, log_name: str) -> WitnessState:
        key = (log_name, witness.name, witness.verifier.key_id)
        state = session.get(WitnessState, key)
        if state is None:
            state = WitnessState(
                log=log_name,
                witness=witness.name,
                key_id=witness.verifier.key_id,
                size=0,
                updated_at=self.clock(),
            )
            session.add(state)
        return state

    def _record(
        self,
        session: Session,
        witness: Witness,
        log_name: str,
        *,
        error: PushFailed | None = None,
        conflict: Conflict | None = None,
    ) -> None:
        state = self._state(session, witness, log_name)
        now: datetime = self.clock()
        failure = conflict or error
        state.last_error, state.error_at, state.updated_at = str(failure)[:MAX_ERROR], now, now
        if conflict is not None:
            state.conflict, state.conflict_size = str(conflict)[:MAX_ERROR], conflict.size

    def run(self, stop: threading.Event) -> None:
        """Push to every witness at once, then every ``every`` seconds, until ``stop`` is set:
        one loop per witness, each in its own thread, so that a slow witness never holds up
        another's next pass."""
        loops = [
            threading.Thread(
                target=self._run_witness,
                args=(witness, stop),
                name=f"witness {witness.name}",
                daemon=True,
            )
            for witness in self.witnesses
        ]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()
        self.client.close()

    def _run_witness(self, witness: Witness, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.push_witness(witness)
            except Exception:  # the database away: the next pass tries again
                log.warning("witness %s: push pass failed", witness.name, exc_info=True)
            stop.wait(self.every)

    def start(self, stop: threading.Event) -> threading.Thread:
        # httpx logs every request at INFO: one line per checkpoint and witness would drown
        # the worker's own log; failures are logged here, with the witness and the log.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        thread = threading.Thread(target=self.run, args=(stop,), name="witnesses", daemon=True)
        thread.start()
        return thread
