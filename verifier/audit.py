"""The inspectors' audit of a whole store against the chain (``civic-verify audit``).

A receipt proves one record; a trail verification proves the records a service chose to
show. Neither can see what was left out, put in or moved. The audit reads every record of
every log through the one read-only reader of the store (``ledger.reader``) and checks, per log:

1. **Positions.** Records occupy positions 0, 1, 2, … with no hole (``missing``, naming the
   position and the batch that covers it) and nothing beyond the log's head (``inserted``).
2. **Records.** Each record's leaf hash is SHA-256(0x00 ‖ canonical) (PROTOCOL §2; else
   ``altered``); its canonical bytes are RFC 8785 of a §1 record (``check_record_shape``) whose
   log, subject, seq and type are those of its row (else ``altered``). A record with empty
   content and a redaction row is erased under §7 and listed as ``redacted``, which is not a
   finding; empty content without a redaction row is ``altered``.
3. **Batches.** Each batch's root is recomputed from the leaf hashes at its positions and must
   equal the stored root and the chain's ``batchOf(logId, n)`` root and size (``root_mismatch``
   when the stored batch and the chain disagree; ``not_anchored`` when the store says anchored
   and the chain holds nothing). When the records do not give the anchored root, the audit
   looks for the one change that explains it and names the record: a record slipped in with the
   later ones moved up (``inserted``), records out of acceptance order (``reordered``), a
   record whose leaf hash was rewritten where its trail remembers the old one (``altered``), a
   record taken out with the later ones moved down (``missing``); else the batch is ``altered``.
   Batches the chain holds and the store lacks are ``missing_batch``; batches (and records)
   still unanchored past the deadline are ``unanchored``.
4. **Trails.** Records grouped by (log, subject), walked in position order with the checks of
   ``verifier.trail`` (PROTOCOL §5): seq 0, 1, … (``gap`` when a seq is nowhere, ``broken_link``
   when it comes later or twice), every ``prev`` the leaf hash of the record before
   (``broken_link``), times never backwards (``time_reversed``), and in the suggestions log the
   published state machine (``illegal_transition``); one finding per trail, naming its first
   bad record. The service's trail heads must agree with the records (a trail cut short at its
   end is ``missing``: only an audit can see that).

Every finding names its log and, where known, the batch, position, subject, seq and record hash.
The store is ``clean`` when there is no finding.

The audit never writes: the reader's connection is read-only at the database level.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from core.canonical import CanonicalizationError, canonical_bytes
from core.merkle import ZERO_ROOT, merkle_root
from core.records import (
    CHAIN_SUBJECT,
    LOGS,
    REANCHORED_TYPE,
    RecordShapeError,
    check_record_shape,
)
from ledger.reader import (
    StoredBatch,
    StoredRecord,
    StoredRedaction,
    StoreReader,
    StoreUnavailable,
)
from verifier.chain import ChainReader, log_id
from verifier.errors import ContractMismatch, VerificationError
from verifier.trail import SUGGESTIONS_LOG, StateMachine

DEFAULT_DEADLINE = timedelta(minutes=10)
MAX_SAFE_INTEGER = 2**53 - 1
# How far (in positions) the diagnosis of a batch whose records do not give its root looks for
# records moved in from its neighbours.
WINDOW = 8
# A batch the chain holds beyond the store's sealed positions, anchored this recently, was
# most likely sealed after the audit's snapshot was taken.
RACE = timedelta(minutes=5)

ProgressCallback = Callable[[int, int], None]
StoreFactory = Callable[[str], StoreReader]


class AuditUnavailable(VerificationError):
    """The store could not be opened or read: no audit was made."""


class FindingKind(StrEnum):
    """What the audit found wrong. Trail words are PROTOCOL §5's; the rest are the audit's."""

    ALTERED = "altered"
    MISSING = "missing"
    INSERTED = "inserted"
    REORDERED = "reordered"
    ROOT_MISMATCH = "root_mismatch"
    NOT_ANCHORED = "not_anchored"
    MISSING_BATCH = "missing_batch"
    UNANCHORED = "unanchored"
    WRONG_CHAIN = "wrong_chain"
    GAP = "gap"
    BROKEN_LINK = "broken_link"
    TIME_REVERSED = "time_reversed"
    ILLEGAL_TRANSITION = "illegal_transition"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with the store, naming what it can: batch, position, trail, record."""

    kind: FindingKind
    log: str
    detail: str
    batch: int | None = None
    position: int | None = None
    subject: str | None = None
    seq: int | None = None
    record_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "log": self.log,
            "batch": self.batch,
            "position": self.position,
            "subject": self.subject,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class RedactedRecord:
    """A record erased under PROTOCOL §7: its leaf hash stays proven; not a finding."""

    log: str
    position: int
    subject: str
    seq: int
    record_hash: str
    at: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "position": self.position,
            "subject": self.subject,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "at": self.at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class ReanchorEvent:
    """A ``ledger.reanchored`` record: the chain lost the anchors and the operator anchored
    every sealed batch again on a new registry (``civic-ledger reanchor``). Not a finding: the
    batches are judged against the registry they are anchored on now; listed so that inspectors
    see it, and know that receipts handed out before it name the old registry."""

    log: str
    position: int
    seq: int
    record_hash: str
    at: str
    old_contract: str | None
    new_contract: str | None
    chain_id: int | None
    batches: int | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "position": self.position,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "at": self.at,
            "old_contract": self.old_contract,
            "new_contract": self.new_contract,
            "chain_id": self.chain_id,
            "batches": self.batches,
            "reason": self.reason,
        }


@dataclass(slots=True)
class LogSummary:
    """What the audit saw of one log."""

    log: str
    records: int = 0
    next_position: int = 0
    batches: int = 0
    anchored_batches: int = 0
    unanchored_batches: int = 0
    pending_records: int = 0
    chain_batches: int | None = None
    trails: int = 0
    redacted: int = 0
    findings: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "records": self.records,
            "next_position": self.next_position,
            "batches": self.batches,
            "anchored_batches": self.anchored_batches,
            "unanchored_batches": self.unanchored_batches,
            "pending_records": self.pending_records,
            "chain_batches": self.chain_batches,
            "trails": self.trails,
            "redacted": self.redacted,
            "findings": self.findings,
        }


@dataclass(slots=True)
class AuditReport:
    """The audit's answer: ``clean`` when there are no findings."""

    findings: list[Finding]
    redacted: list[RedactedRecord]
    logs: list[LogSummary]
    contract: str | None
    chain_id: int | None
    audited_at: datetime
    seconds: float
    notes: list[str] = field(default_factory=list)
    reanchored: list[ReanchorEvent] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings

    @property
    def records(self) -> int:
        return sum(summary.records for summary in self.logs)

    def to_dict(self) -> dict[str, Any]:
        counts = Counter(finding.kind.value for finding in self.findings)
        return {
            "clean": self.clean,
            "audited_at": self.audited_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "records": self.records,
            "contract": self.contract,
            "chain_id": self.chain_id,
            "counts": dict(sorted(counts.items())),
            "logs": [summary.to_dict() for summary in self.logs],
            "findings": [finding.to_dict() for finding in self.findings],
            "redacted": [record.to_dict() for record in self.redacted],
            "reanchored": [event.to_dict() for event in self.reanchored],
            "notes": list(self.notes),
        }


def open_store(url: str) -> StoreReader:
    """The read-only reader of the store at ``url``; AuditUnavailable when it cannot be opened."""
    try:
        return StoreReader(url)
    except StoreUnavailable as exc:
        raise AuditUnavailable(str(exc)) from exc


# -- the records' own checks ----------------------------------------------------------------


class _NotARecord(ValueError):
    """The canonical bytes are not RFC 8785 of a §1 record; the message says why."""


def _refuse_float(text: str) -> Any:
    raise _NotARecord(f"floating-point number {text} (PROTOCOL §1 allows none)")


def _refuse_constant(text: str) -> Any:
    raise _NotARecord(f"{text} is not JSON")


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise _NotARecord(f"integer {text} is outside ±(2^53 − 1)")
    return value


_DECODER = json.JSONDecoder(
    parse_float=_refuse_float, parse_int=_safe_int, parse_constant=_refuse_constant
)


def _parse_record(canonical: bytes) -> dict[str, Any]:
    """The record in ``canonical``, which must be exactly its RFC 8785 bytes (PROTOCOL §2):
    strict JSON (no floats, NaN or unsafe integers), re-serialised by ``canonical_bytes``
    to the very same bytes (a duplicate key, a space, an escape RFC 8785 does not make, a
    member out of order: all change them)."""
    try:
        record = _DECODER.decode(canonical.decode("utf-8"))
    except _NotARecord:
        raise
    except (ValueError, RecursionError) as exc:
        raise _NotARecord(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise _NotARecord("not a JSON object")
    try:
        same = canonical_bytes(record) == canonical
    except CanonicalizationError as exc:
        raise _NotARecord(str(exc)) from exc
    if not same:
        raise _NotARecord("its bytes are not the RFC 8785 serialisation of the record")
    return record


# -- the trail walk -------------------------------------------------------------------------


class _Trail:
    """What the walk of one trail (log, subject) carries from one record to the next."""

    __slots__ = (
        "awaiting",
        "bad",
        "count",
        "first_hash",
        "first_position",
        "last_at",
        "last_hash",
        "last_position",
        "last_seq",
        "machine",
        "suspect",
    )

    def __init__(self, machine: StateMachine | None) -> None:
        self.machine = machine
        self.last_seq = -1
        self.last_hash = b""
        self.last_position = -1
        self.last_at: str | None = None
        self.count = 0
        self.first_position = -1
        self.first_hash = b""
        # The first bad record: once found, the trail is judged (one finding per trail).
        self.bad = False
        # A record whose seq skipped ahead: `gap` unless the skipped seq turns up later.
        self.awaiting: int | None = None
        self.suspect: tuple[int, int, bytes, bytes | None] | None = None  # pos, seq, hash, prev


@dataclass(slots=True)
class _Diagnosis:
    """What explains a batch whose records do not give its root, and the shift it leaves."""

    shift: int
    findings: list[Finding]


class _LogAudit:
    """The audit of one log: one pass over its records in position order, then its batches."""

    def __init__(
        self,
        audit: _Audit,
        log: str,
        next_position: int,
        sealed_until: int,
    ) -> None:
        self.audit = audit
        self.reader = audit.reader
        self.log = log
        self.head = next_position
        self.sealed_until = sealed_until
        self.summary = LogSummary(log, next_position=next_position)
        self.batches: list[StoredBatch] = self.reader.batches(log)
        self.chain_batches: dict[int, tuple[bytes, int, int, int]] = {}
        self.recomputed: dict[int, bytes] = {}
        self.trails: dict[str, _Trail] = {}
        # Evidence for the diagnosis of batches: the leaf hash a trail remembers for the record
        # at a position (the next record's prev, the trail head), and leaf hashes of records
        # that are gone (the prev of the record after a gap).
        self.remembered: dict[int, bytes] = {}
        self.gone: set[bytes] = set()
        self.beyond_head: list[StoredRecord] = []
        self.holes: list[tuple[int, int]] = []
        self.first_pending: StoredRecord | None = None
        self.ranges: list[tuple[int, int, int]] = []  # (first position, end, batch number)
        self.range_starts: list[int] = []
        self.sealed_end = 0
        self.shift_at_end = 0

    # -- findings -------------------------------------------------------------------------

    def batch_at(self, position: int) -> int | None:
        """The number of the batch (stored, or known only from the chain) covering ``position``."""
        i = bisect.bisect_right(self.range_starts, position) - 1
        if i >= 0 and self.ranges[i][0] <= position < self.ranges[i][1]:
            return self.ranges[i][2]
        return None

    def find(
        self,
        kind: FindingKind,
        detail: str,
        *,
        position: int | None = None,
        batch: int | None = None,
        subject: str | None = None,
        seq: int | None = None,
        record_hash: bytes | str | None = None,
    ) -> None:
        if batch is None and position is not None:
            batch = self.batch_at(position)
        if isinstance(record_hash, bytes):
            record_hash = record_hash.hex()
        self.audit.add(Finding(kind, self.log, detail, batch, position, subject, seq, record_hash))

    def find_record(self, kind: FindingKind, record: StoredRecord, detail: str) -> None:
        self.find(
            kind,
            detail,
            position=record.position,
            subject=record.subject,
            seq=record.seq,
            record_hash=record.leaf_hash,
        )

    # -- 0. batches as stored, and as the chain holds them --------------------------------

    def read_chain(self) -> None:
        """Ask the chain for every stored batch, and for anchored batches beyond them."""
        audit = self.audit
        if not audit.chain_read:
            return
        ident = log_id(self.log)
        stored = {batch.number for batch in self.batches}
        top = max(stored) + 1 if stored else 0
        for number in range(top):
            self.chain_batches[number] = audit.batch_of(ident, number)
        number = top
        while True:  # PROTOCOL §3 numbers batches 0, 1, 2 …: the first empty one ends the log
            answer = audit.batch_of(ident, number)
            if answer[0] == ZERO_ROOT:
                break
            self.chain_batches[number] = answer
            number += 1
        self.summary.chain_batches = number

    def check_batches(self) -> None:
        """Numbers 0, 1, 2 … covering consecutive positions; what the chain holds beyond."""
        audit = self.audit
        by_number = {batch.number: batch for batch in self.batches}
        known = max(
            [*by_number, *[n for n, a in self.chain_batches.items() if a[0] != ZERO_ROOT]],
            default=-1,
        )
        cursor = 0
        ranges: list[tuple[int, int, int]] = []
        for number in range(known + 1):
            batch = by_number.get(number)
            answer = self.chain_batches.get(number)
            if batch is None:
                on_chain = answer is not None and answer[0] != ZERO_ROOT
                if on_chain:
                    assert answer is not None
                    anchored = datetime.fromtimestamp(answer[2], UTC)
                    racing = cursor >= self.sealed_until and anchored > audit.now - RACE
                    if racing and not audit.worker_stopped:
                        # Sealed after the store's snapshot was taken, and anchored since:
                        # the worker at work, not a batch taken out of the store. (With the
                        # worker stopped, e.g. after a restore, nothing can race: judge it.)
                        audit.notes.append(
                            f"{self.log}: batch {number} was anchored while the audit began "
                            "(the worker is running); not judged"
                        )
                        continue
                    self.find(
                        FindingKind.MISSING_BATCH,
                        f"batch {number} is anchored on chain (root {answer[0].hex()}, "
                        f"{answer[1]} records, block {answer[3]}), but the store has no such "
                        f"batch",
                        batch=number,
                    )
                    ranges.append((cursor, cursor + answer[1], number))
                    cursor += answer[1]
                else:
                    self.find(
                        FindingKind.MISSING_BATCH,
                        f"the store's batch numbers skip {number}",
                        batch=number,
                    )
                continue
            if batch.first_position != cursor:
                self.find(
                    FindingKind.ALTERED,
                    f"batch {number} covers positions from {batch.first_position}, but the "
                    f"batch before it ends at {cursor}: batches must cover consecutive positions",
                    batch=number,
                )
            ranges.append((batch.first_position, batch.first_position + batch.size, number))
            cursor = batch.first_position + batch.size
        self.ranges = sorted(ranges)
        self.range_starts = [first for first, _end, _number in self.ranges]
        self.sealed_end = cursor if self.batches else 0
        self.summary.batches = len(self.batches)
        self.summary.anchored_batches = sum(1 for b in self.batches if b.state == "anchored")
        self.summary.unanchored_batches = len(self.batches) - self.summary.anchored_batches

    # -- 1, 2, 4. one pass over the records ------------------------------------------------

    def scan(self) -> None:
        """Every record in position order: positions, hashes, content, batch leaves, trails."""
        audit = self.audit
        redactions = audit.redactions
        sha256 = hashlib.sha256
        log = self.log
        machine_for = StateMachine if log == SUGGESTIONS_LOG else None
        trails = self.trails
        batches = sorted(self.batches, key=lambda b: b.first_position)
        bi = 0
        current: StoredBatch | None = batches[0] if batches else None
        current_end = current.first_position + current.size if current else -1
        leaves: list[bytes] = []
        expected = 0
        pending_from = self.sealed_end
        count = 0
        for chunk in self.reader.record_chunks(self.log):
            for record in chunk:
                position, subject, seq, kind, leaf, canonical, _at = record
                # 1. positions: dense from 0, none beyond the head.
                if position != expected:
                    if position > expected:
                        self.hole(expected, position)
                    else:
                        self.find_record(
                            FindingKind.INSERTED,
                            record,
                            f"a second record at position {position}",
                        )
                        leaves.append(b"")  # makes its batch's leaf count wrong: no root
                if position >= expected:
                    expected = position + 1
                if position >= self.head:
                    self.beyond_head.append(record)
                elif position >= pending_from and self.first_pending is None:
                    self.first_pending = record

                # 3. the batch's leaves, in position order.
                while current is not None and position >= current_end:
                    self.close_batch(current, leaves)
                    bi += 1
                    current = batches[bi] if bi < len(batches) else None
                    current_end = current.first_position + current.size if current else -1
                    leaves = []
                if current is not None and position >= current.first_position:
                    leaves.append(leaf)

                # 2. the record itself.
                content: dict[str, Any] | None = None
                if not canonical:
                    redaction = redactions.get(leaf)
                    if redaction is None:
                        self.find_record(
                            FindingKind.ALTERED,
                            record,
                            "its content is erased, but no redaction (PROTOCOL §7) records that",
                        )
                    else:
                        self.redacted(record, redaction)
                elif sha256(b"\x00" + canonical).digest() != leaf:
                    digest = sha256(b"\x00" + canonical).hexdigest()
                    self.find_record(
                        FindingKind.ALTERED,
                        record,
                        f"its content hashes to {digest}, not to its record hash",
                    )
                else:
                    try:
                        content = _parse_record(canonical)
                        check_record_shape(content)
                    except (_NotARecord, RecordShapeError) as exc:
                        self.find_record(
                            FindingKind.ALTERED, record, f"its content is not a record: {exc}"
                        )
                        content = None
                    else:
                        if (
                            content["seq"] != seq
                            or content["subject"] != subject
                            or content["type"] != kind
                            or content["log"] != log
                        ):
                            self.disagrees(record, content)
                            content = None
                        elif kind == REANCHORED_TYPE:
                            self.reanchored(record, content)

                # 4. its trail.
                trail = trails.get(subject)
                if trail is None:
                    # The chain's own trail (re-anchoring events) is no suggestion: no state
                    # machine for it.
                    machine = machine_for() if machine_for and subject != CHAIN_SUBJECT else None
                    trail = trails[subject] = _Trail(machine)
                    trail.first_position = position
                    trail.first_hash = leaf
                self.walk(trail, record, content)
            count += len(chunk)
            audit.advance(len(chunk))
        while current is not None:
            self.close_batch(current, leaves)
            leaves = []
            bi += 1
            current = batches[bi] if bi < len(batches) else None
        if expected < self.head:
            self.hole(expected, self.head)
        self.summary.records = count
        self.summary.trails = len(trails)
        self.summary.pending_records = max(0, self.head - self.sealed_end)

    def hole(self, first: int, end: int) -> None:
        """Positions ``[first, end)`` hold no record: those below the head are missing."""
        end = min(end, self.head)
        if first < end:
            self.holes.append((first, end))

    def report_holes(self) -> None:
        """One ``missing`` per run of missing positions within one batch (or beyond them)."""
        limit = self.head + min(0, self.shift_at_end)
        for first, end in self.holes:
            end = min(end, limit)
            position = first
            while position < end:
                batch = self.batch_at(position)
                stop = end
                if batch is not None:
                    stop = min(end, next(e for f, e, n in self.ranges if n == batch))
                else:
                    later = [f for f, _e, _n in self.ranges if f > position]
                    stop = min([end, *later])
                where = f"in batch {batch}" if batch is not None else "not yet sealed"
                if stop - position == 1:
                    detail = f"position {position} ({where}) holds no record"
                else:
                    detail = (
                        f"positions {position} to {stop - 1} ({stop - position} records, "
                        f"{where}) hold no record"
                    )
                self.find(FindingKind.MISSING, detail, position=position, batch=batch)
                position = stop

    def disagrees(self, record: StoredRecord, content: Mapping[str, Any]) -> None:
        """The record's own log, subject, seq or type is not what its row says."""
        differs = [
            f"{name} {content[name]!r} (its row: {column!r})"
            for name, column in (
                ("log", self.log),
                ("subject", record.subject),
                ("seq", record.seq),
                ("type", record.type),
            )
            if content[name] != column
        ]
        self.find_record(FindingKind.ALTERED, record, f"its record says {', '.join(differs)}")

    def redacted(self, record: StoredRecord, redaction: StoredRedaction) -> None:
        self.audit.redacted.append(
            RedactedRecord(
                self.log,
                record.position,
                record.subject,
                record.seq,
                record.leaf_hash.hex(),
                redaction.at,
                redaction.reason,
            )
        )
        self.summary.redacted += 1

    def reanchored(self, record: StoredRecord, content: Mapping[str, Any]) -> None:
        body = content["body"]

        def text(name: str) -> str | None:
            value = body.get(name)
            return value if isinstance(value, str) else None

        def number(name: str) -> int | None:
            value = body.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        self.audit.reanchored.append(
            ReanchorEvent(
                self.log,
                record.position,
                record.seq,
                record.leaf_hash.hex(),
                content["at"],
                text("old_contract"),
                text("new_contract"),
                number("chain_id"),
                number("batches"),
                text("reason"),
            )
        )

    def close_batch(self, batch: StoredBatch, leaves: list[bytes]) -> None:
        """All positions of ``batch`` read: recompute its root when every leaf is there."""
        if len(leaves) == batch.size and all(leaves):
            self.recomputed[batch.number] = merkle_root(leaves)

    def walk(self, trail: _Trail, record: StoredRecord, content: Mapping[str, Any] | None) -> None:
        """PROTOCOL §5 trail checks (as ``verifier.trail`` makes them), in position order.

        ``content`` is None when it cannot be judged (erased under §7, or altered): then, as
        for an erased record in ``verify_trail``, its own prev, time and transition are not
        checked, the state machine widens, and the next record must link to its leaf hash.
        """
        seq = record.seq
        trail.count += 1
        if trail.bad:
            if trail.awaiting is not None and seq == trail.awaiting:
                self.out_of_order(trail, record)
            return
        expected = trail.last_seq + 1
        problem: tuple[FindingKind, str] | None = None
        if seq != expected:
            if seq < expected:
                problem = (
                    FindingKind.BROKEN_LINK,
                    f"a second record with seq {seq} in this trail: the trail forks",
                )
            else:  # gap, unless seq `expected` comes later in the trail (out of order)
                trail.bad = True
                trail.awaiting = expected
                prev = content.get("prev") if content is not None else None
                trail.suspect = (
                    record.position,
                    seq,
                    record.leaf_hash,
                    bytes.fromhex(prev) if isinstance(prev, str) else None,
                )
                return
        elif content is not None:
            prev = content["prev"]
            if seq > 0 and prev != trail.last_hash.hex():
                problem = (
                    FindingKind.BROKEN_LINK,
                    f"prev is {prev}, but the record before it in the trail (position "
                    f"{trail.last_position}, seq {trail.last_seq}) has leaf hash "
                    f"{trail.last_hash.hex()}",
                )
                self.remembered.setdefault(trail.last_position, bytes.fromhex(prev))
            elif trail.last_at is not None and content["at"] < trail.last_at:
                # §1's fixed format makes text order time order.
                problem = (
                    FindingKind.TIME_REVERSED,
                    f"at {content['at']} is earlier than {trail.last_at}, the time of the "
                    "record before it",
                )
            elif trail.machine is not None:
                move = trail.machine.visible(content)
                if move.problem:
                    problem = (FindingKind.ILLEGAL_TRANSITION, move.problem)
            trail.last_at = content["at"]
        elif trail.machine is not None:
            trail.machine.unseen()
        if problem is not None:
            trail.bad = True
            self.find_record(problem[0], record, problem[1])
        trail.last_seq = seq
        trail.last_hash = record.leaf_hash
        trail.last_position = record.position

    def out_of_order(self, trail: _Trail, record: StoredRecord) -> None:
        """The seq a trail skipped turned up later: its records are out of order."""
        assert trail.suspect is not None
        position, seq, leaf, _prev = trail.suspect
        self.find(
            FindingKind.BROKEN_LINK,
            f"out of order: seq {seq} stands where seq {record.seq} belongs (seq {record.seq} "
            f"is at position {record.position})",
            position=position,
            subject=record.subject,
            seq=seq,
            record_hash=leaf,
        )
        trail.awaiting = None

    def close_trails(self) -> None:
        """Trails whose skipped seq never came have a gap; trail heads must match the records."""
        for subject, trail in self.trails.items():
            if trail.awaiting is not None and trail.suspect is not None:
                position, seq, leaf, prev = trail.suspect
                if prev is not None and seq == trail.awaiting + 1:
                    self.gone.add(prev)
                self.find(
                    FindingKind.GAP,
                    f"no record with seq {trail.awaiting}: position {position} holds seq {seq}",
                    position=position,
                    subject=subject,
                    seq=seq,
                    record_hash=leaf,
                )
        heads = set()
        for head in self.reader.trail_heads(self.log):
            heads.add(head.subject)
            found = self.trails.get(head.subject)
            if found is None:
                self.find(
                    FindingKind.MISSING,
                    f"the trail head records {head.next_seq} records of this trail (the last "
                    f"with record hash {head.last_leaf_hash.hex()}), but the store has none",
                    subject=head.subject,
                    seq=0,
                    record_hash=head.last_leaf_hash,
                )
                continue
            trail = found
            if trail.bad:
                continue
            last = trail.last_seq
            if last + 1 < head.next_seq:
                first_gone = last + 1
                self.find(
                    FindingKind.MISSING,
                    f"the trail ends at seq {last}, but its head records {head.next_seq} "
                    f"records: seq {first_gone} to {head.next_seq - 1} are gone (the last had "
                    f"record hash {head.last_leaf_hash.hex()})",
                    subject=head.subject,
                    seq=first_gone,
                    record_hash=head.last_leaf_hash,
                )
            elif last + 1 > head.next_seq:
                self.find(
                    FindingKind.INSERTED,
                    f"the trail's head records {head.next_seq} records, but the trail goes on "
                    f"to seq {last}: no append wrote the records after seq "
                    f"{head.next_seq - 1}",
                    position=trail.last_position,
                    subject=head.subject,
                    seq=last,
                    record_hash=trail.last_hash,
                )
            elif head.last_leaf_hash != trail.last_hash:
                self.remembered.setdefault(trail.last_position, head.last_leaf_hash)
                self.find(
                    FindingKind.ALTERED,
                    f"the trail head remembers its last record as "
                    f"{head.last_leaf_hash.hex()}, but the record at seq {last} has record "
                    f"hash {trail.last_hash.hex()}",
                    position=trail.last_position,
                    subject=head.subject,
                    seq=last,
                    record_hash=trail.last_hash,
                )
        for subject, trail in self.trails.items():
            if subject not in heads:
                self.find(
                    FindingKind.INSERTED,
                    "no append wrote this trail: the service keeps no head for it",
                    position=trail.first_position,
                    subject=subject,
                    record_hash=trail.first_hash,
                )

    # -- 3. batch roots against the chain -------------------------------------------------

    def judge_batches(self) -> None:
        audit = self.audit
        shift = 0
        for batch in self.batches:
            answer = self.chain_batches.get(batch.number)
            on_chain = answer is not None and answer[0] != ZERO_ROOT
            anchored = batch.state == "anchored"
            if audit.chain_read and batch.chain_id not in (None, audit.chain_id):
                self.find(
                    FindingKind.WRONG_CHAIN,
                    f"the store says batch {batch.number} is anchored on chain "
                    f"{batch.chain_id}, but the endpoint is chain {audit.chain_id}",
                    batch=batch.number,
                )
            if (
                audit.contract is not None
                and batch.contract is not None
                and batch.contract.lower() != audit.contract.lower()
            ):
                self.find(
                    FindingKind.WRONG_CHAIN,
                    f"batch {batch.number} names contract {batch.contract}, but the store's "
                    f"batches are anchored by {audit.contract}: one store, one registry",
                    batch=batch.number,
                )
            if anchored and audit.chain_read and not on_chain:
                self.find(
                    FindingKind.NOT_ANCHORED,
                    f"the store says batch {batch.number} is anchored (tx {batch.tx_hash}, "
                    f"block {batch.block_number}), but batchOf on {audit.contract} holds nothing",
                    batch=batch.number,
                )
            if not anchored and not on_chain:
                waited = audit.now - batch.sealed_at
                if waited > audit.deadline:
                    self.find(
                        FindingKind.UNANCHORED,
                        f"batch {batch.number} ({batch.size} records) has been {batch.state} "
                        f"for {_duration(waited)}, longer than the {_duration(audit.deadline)} "
                        "allowed",
                        batch=batch.number,
                    )
            target, size = batch.root, batch.size
            if on_chain:
                assert answer is not None
                if (answer[0], answer[1]) != (batch.root, batch.size):
                    self.find(
                        FindingKind.ROOT_MISMATCH,
                        f"the store sealed batch {batch.number} with root {batch.root.hex()} "
                        f"({batch.size} records); the chain holds root {answer[0].hex()} "
                        f"({answer[1]} records)",
                        batch=batch.number,
                    )
                target, size = answer[0], answer[1]
            recomputed = self.recomputed.get(batch.number)
            if recomputed is None:
                continue  # positions are missing: already found
            if shift == 0 and size == batch.size and recomputed == target:
                continue
            diagnosis = self.diagnose(batch, target, size, shift)
            shift = diagnosis.shift
            for finding in diagnosis.findings:
                audit.add(finding)
        self.shift_at_end = shift

    def diagnose(self, batch: StoredBatch, target: bytes, size: int, shift: int) -> _Diagnosis:
        """The records at the batch's positions do not give ``target``: find the one change
        that does, and name its record. ``shift`` is how far earlier changes moved records."""
        first = batch.first_position
        low = max(0, first + shift - WINDOW)
        window = list(self.reader.records(self.log, start=low, stop=first + shift + size + WINDOW))
        at = {record.position: i for i, record in enumerate(window)}

        def run(start: int, count: int) -> list[StoredRecord] | None:
            i = at.get(start)
            if i is None or count < 1 or i + count > len(window):
                return None
            found = window[i : i + count]
            return found if found[-1].position - start == count - 1 else None

        def root(records: Iterable[StoredRecord]) -> bytes:
            return merkle_root([record.leaf_hash for record in records])

        def finding(kind: FindingKind, record: StoredRecord | None, detail: str) -> Finding:
            return Finding(
                kind,
                self.log,
                detail,
                batch.number,
                record.position if record else None,
                record.subject if record else None,
                record.seq if record else None,
                record.leaf_hash.hex() if record else None,
            )

        start = first + shift
        later = "the records after it sit one position later than anchored"
        # Intact, only moved by an earlier insertion or removal.
        records = run(start, size)
        if records is not None and root(records) == target:
            return _Diagnosis(shift, [])
        # One record slipped in, the later ones moved up.
        wider = run(start, size + 1)
        if wider is not None:
            for i, forged in enumerate(wider):
                if root(wider[:i] + wider[i + 1 :]) == target:
                    return _Diagnosis(
                        shift + 1,
                        [
                            finding(
                                FindingKind.INSERTED,
                                forged,
                                f"this record is not in anchored batch {batch.number}: without "
                                f"it the batch's positions give the anchored root; {later}",
                            )
                        ],
                    )
        if records is not None:
            # A record's leaf hash rewritten where its trail remembers the old one.
            for i, record in enumerate(records):
                remembered = self.remembered.get(record.position)
                if remembered is None:
                    continue
                leaves = [r.leaf_hash for r in records]
                leaves[i] = remembered
                if merkle_root(leaves) == target:
                    return _Diagnosis(
                        shift,
                        [
                            finding(
                                FindingKind.ALTERED,
                                record,
                                f"the anchored batch and its trail hold this record as "
                                f"{remembered.hex()}: its content and record hash were "
                                "rewritten",
                            )
                        ],
                    )
            # Records out of acceptance order.
            i0 = at[start]
            ordered = sorted(window, key=lambda r: (r.accepted_at, r.position))
            slot = ordered[i0 : i0 + size]
            if len(slot) == size and root(slot) == target:
                moved = [
                    finding(
                        FindingKind.REORDERED,
                        stored,
                        f"it stands at position {stored.position}, but anchored batch "
                        f"{batch.number} has it at position {first + j}",
                    )
                    for j, stored in enumerate(slot)
                    if stored.position != start + j
                ]
                kept = {stored.position for stored in slot}
                moved += [
                    finding(
                        FindingKind.REORDERED,
                        stored,
                        f"it stands at position {stored.position}, inside anchored batch "
                        f"{batch.number}, which does not hold it",
                    )
                    for stored in records
                    if stored.position not in kept
                ]
                return _Diagnosis(shift, moved)
        # One record taken out, the later ones moved down: its leaf hash is known from the
        # prev of the record after it.
        fewer = run(start, size - 1)
        if fewer is not None and self.gone:
            leaves = [r.leaf_hash for r in fewer]
            for gone in sorted(self.gone):
                for j in range(size):
                    if merkle_root([*leaves[:j], gone, *leaves[j:]]) == target:
                        self.gone.discard(gone)
                        return _Diagnosis(
                            shift - 1,
                            [
                                Finding(
                                    FindingKind.MISSING,
                                    self.log,
                                    f"record {gone.hex()} was taken out of position {first + j} "
                                    "and the records after it moved one position down",
                                    batch.number,
                                    first + j,
                                    None,
                                    None,
                                    gone.hex(),
                                )
                            ],
                        )
        # Intact but moved by records slipped in or taken out just before it.
        for other in range(-WINDOW, WINDOW + 1):
            if other == shift:
                continue
            moved_run = run(first + other, size)
            if moved_run is not None and root(moved_run) == target:
                if other > shift:
                    between = run(first + shift, other - shift) or []
                    return _Diagnosis(
                        other,
                        [
                            finding(
                                FindingKind.INSERTED,
                                record,
                                f"this record is in no anchored batch: it stands between "
                                f"batch {batch.number - 1} and batch {batch.number}, whose "
                                f"records sit {other - shift} position(s) later than anchored",
                            )
                            for record in between
                        ],
                    )
                return _Diagnosis(
                    other,
                    [
                        finding(
                            FindingKind.MISSING,
                            None,
                            f"batch {batch.number}'s records sit {shift - other} position(s) "
                            f"earlier than anchored: records before it were taken out",
                        )
                    ],
                )
        return _Diagnosis(
            shift,
            [
                finding(
                    FindingKind.ALTERED,
                    None,
                    f"the records at positions {start} to {start + size - 1} do not give the "
                    f"anchored root {target.hex()}, and no single insertion, removal, rewrite "
                    "or reordering explains it",
                )
            ],
        )

    def report_positions(self) -> None:
        """Records beyond the head, and records waiting too long to be sealed."""
        allowed = self.head + max(0, self.shift_at_end)
        for record in self.beyond_head:
            if record.position >= allowed:
                self.find_record(
                    FindingKind.INSERTED,
                    record,
                    f"position {record.position} is beyond the log's head (next position "
                    f"{self.head}): no append wrote it",
                )
        first = self.first_pending
        if first is not None:
            waited = self.audit.now - first.accepted_at
            if waited > self.audit.deadline:
                self.find_record(
                    FindingKind.UNANCHORED,
                    first,
                    f"records from position {first.position} on have waited {_duration(waited)} "
                    f"to be sealed, longer than the {_duration(self.audit.deadline)} allowed",
                )

    def run(self) -> LogSummary:
        self.read_chain()
        self.check_batches()
        self.scan()
        self.close_trails()
        self.judge_batches()
        self.report_holes()
        self.report_positions()
        self.summary.findings = sum(1 for f in self.audit.findings if f.log == self.log)
        return self.summary


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


class _Audit:
    """State shared by the logs' audits: the chain, the clock, the findings."""

    def __init__(
        self,
        reader: StoreReader,
        chain: ChainReader | None,
        *,
        contract: str | None,
        deadline: timedelta,
        now: datetime,
        progress: ProgressCallback | None,
    ) -> None:
        self.reader = reader
        self.chain = chain
        self.contract = contract
        self.deadline = deadline
        self.now = now
        self.progress = progress
        self.findings: list[Finding] = []
        self.redacted: list[RedactedRecord] = []
        self.reanchored: list[ReanchorEvent] = []
        self.notes: list[str] = []
        self.worker_stopped = False
        self.redactions: dict[bytes, StoredRedaction] = {}
        self.chain_id: int | None = None
        self.chain_read = False
        self.done = 0
        self.total = 0
        self._seen: dict[tuple[Any, ...], int] = {}

    def add(self, finding: Finding) -> None:
        """Record a finding once: two checks may see the same thing (a forged record is beyond
        the log's head and beyond its trail's head). The second sighting fills in what the
        first could not name."""
        key: tuple[Any, ...] = (
            finding.kind,
            finding.log,
            finding.position,
            finding.batch,
            finding.subject,
        )
        if finding.position is None and finding.subject is None:
            key = (*key, finding.detail)
        index = self._seen.get(key)
        if index is None:
            self._seen[key] = len(self.findings)
            self.findings.append(finding)
            return
        first = self.findings[index]
        self.findings[index] = replace(
            first,
            batch=first.batch if first.batch is not None else finding.batch,
            seq=first.seq if first.seq is not None else finding.seq,
            record_hash=first.record_hash or finding.record_hash,
        )

    def advance(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def batch_of(self, ident: bytes, number: int) -> tuple[bytes, int, int, int]:
        assert self.chain is not None and self.contract is not None
        return self.chain.batch_of(self.contract, ident, number)

    def choose_contract(self, batches: Sequence[StoredBatch]) -> None:
        """``--contract``, else the one contract the anchored batches name (they must agree)."""
        named = Counter(b.contract.lower() for b in batches if b.contract)
        if self.contract is None and named:
            # Batches naming another contract are findings (``judge_batches``).
            common = named.most_common(1)[0][0]
            self.contract = next(
                b.contract for b in batches if b.contract and b.contract.lower() == common
            )
        if self.contract is None:
            if batches:
                self.notes.append(
                    "no batch names its contract and none was given (--contract): the chain "
                    "was not consulted"
                )
            return
        if self.chain is None:
            self.notes.append("no chain endpoint: batches were not compared with the chain")
            return
        self.chain_id = self.chain.chain_id()
        if not self.chain.has_code(self.contract):
            self.add(
                Finding(
                    FindingKind.WRONG_CHAIN,
                    "*",
                    f"there is no contract at {self.contract} on chain {self.chain_id}: "
                    "the batches cannot be compared with the chain",
                )
            )
            self.contract = None
            return
        self.chain_read = True


def _finding_order(finding: Finding) -> tuple[str, int, int, str]:
    """Findings by log, then batch, then position (those without come first)."""
    batch = -1 if finding.batch is None else finding.batch
    position = -1 if finding.position is None else finding.position
    return (finding.log, batch, position, finding.kind.value)


def audit_store(
    reader: StoreReader,
    chain: ChainReader | None,
    *,
    contract: str | None = None,
    unanchored_deadline: timedelta = DEFAULT_DEADLINE,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    worker_stopped: bool = False,
) -> AuditReport:
    """Audit every log of the store behind ``reader`` against ``chain`` (see the module doc).

    ``contract`` is the AnchorRegistry's address; by default the one the batches name.
    ``now`` is when the audit counts deadlines from (default: the current time).
    ``worker_stopped`` says no anchoring worker runs (a restore drill, a store copied aside):
    then a batch anchored on chain in the last minutes that the store lacks is a finding too,
    not a note about a worker that may have sealed it after the store was read.
    ``progress(done, total)`` is called as records are read. Raises AuditUnavailable when the
    store cannot be read and ChainUnreachable/ChainError when the chain cannot be asked.
    """
    started = time.perf_counter()
    moment = now if now is not None else datetime.now(UTC)
    audit = _Audit(
        reader,
        chain,
        contract=contract,
        deadline=unanchored_deadline,
        now=moment,
        progress=progress,
    )
    audit.worker_stopped = worker_stopped
    summaries: list[LogSummary] = []
    try:
        heads = {head.log: head for head in reader.log_heads()}
        audit.redactions = {r.leaf_hash: r for r in reader.redactions()}
        names = sorted(LOGS | set(heads))
        audit.total = reader.count_records()
        all_batches = [batch for name in names for batch in reader.batches(name)]
        try:
            audit.choose_contract(all_batches)
            for name in names:
                head = heads.get(name)
                log_audit = _LogAudit(
                    audit,
                    name,
                    head.next_position if head else 0,
                    head.sealed_until if head else 0,
                )
                summaries.append(log_audit.run())
        except ContractMismatch as exc:
            audit.add(
                Finding(
                    FindingKind.WRONG_CHAIN,
                    "*",
                    f"{audit.contract} does not answer as an AnchorRegistry: {exc}",
                )
            )
    except StoreUnavailable as exc:
        raise AuditUnavailable(str(exc)) from exc
    return AuditReport(
        findings=sorted(audit.findings, key=_finding_order),
        redacted=audit.redacted,
        logs=summaries,
        contract=audit.contract,
        chain_id=audit.chain_id,
        audited_at=moment,
        seconds=time.perf_counter() - started,
        notes=[*audit.notes, *_reanchor_notes(audit.reanchored)],
        reanchored=sorted(audit.reanchored, key=lambda e: (e.at, e.log)),
    )


def _reanchor_notes(events: Sequence[ReanchorEvent]) -> list[str]:
    """What re-anchoring means for receipts handed out before it."""
    if not events:
        return []
    latest = max(events, key=lambda e: e.at)
    moved = latest.old_contract != latest.new_contract
    return [
        f"the chain was reset and every sealed batch anchored again ({len(events)} "
        f"ledger.reanchored record(s), the latest at {latest.at}: registry "
        f"{latest.old_contract} -> {latest.new_contract} on chain {latest.chain_id}). Receipts "
        "handed out before it name the old anchor transactions"
        + (
            f" and the old registry {latest.old_contract}, which the chain no longer holds: they "
            "verify as wrong_chain; ask the service for a new receipt (same record, batch and "
            "root)"
            if moved
            else "; the registry address is the same, so they still verify"
        )
    ]


# -- the report for people -----------------------------------------------------------------


def _where(finding: Finding) -> str:
    parts = [finding.log]
    if finding.batch is not None:
        parts.append(f"batch {finding.batch}")
    if finding.position is not None:
        parts.append(f"position {finding.position}")
    if finding.subject is not None:
        parts.append(finding.subject)
    if finding.seq is not None:
        parts.append(f"seq {finding.seq}")
    if finding.record_hash is not None:
        parts.append(f"record {finding.record_hash}")
    return ", ".join(parts)


def format_audit(report: AuditReport, *, store: str | None = None) -> str:
    """The human report: one line per log, then the findings grouped by kind, each naming
    its record, then the erased records (which are not findings)."""
    lines = []
    chain = (
        f"chain {report.chain_id}, contract {report.contract}" if report.contract else "no chain"
    )
    lines.append(
        f"audit of {store or 'the store'} against {chain}: {report.records:,} records in "
        f"{report.seconds:.1f} s"
    )
    for s in report.logs:
        on_chain = f", {s.chain_batches} on chain" if s.chain_batches is not None else ""
        lines.append(
            f"  {s.log:<12} {s.records:>10,} records, {s.trails:,} trails, {s.batches:,} batches "
            f"({s.anchored_batches:,} anchored{on_chain}), {s.pending_records:,} waiting to be "
            f"sealed, {s.redacted:,} erased: {s.findings:,} finding{'s' if s.findings != 1 else ''}"
        )
    for note in report.notes:
        lines.append(f"  note: {note}")
    if report.clean:
        lines.append(
            "CLEAN: every record hashes to its record hash, every batch root is recomputed and "
            "matches the chain, every trail is whole"
        )
    else:
        lines.append(f"NOT CLEAN: {len(report.findings)} finding(s)")
        grouped: dict[FindingKind, list[Finding]] = {}
        for finding in report.findings:
            grouped.setdefault(finding.kind, []).append(finding)
        for kind in FindingKind:
            found = grouped.get(kind)
            if not found:
                continue
            lines.append(f"{kind.value} ({len(found)}):")
            for finding in found:
                lines.append(f"  {_where(finding)}")
                lines.append(f"      {finding.detail}")
    if report.reanchored:
        lines.append(f"re-anchored after a chain reset ({len(report.reanchored)}, not findings):")
        for event in report.reanchored:
            lines.append(
                f"  {event.log}, position {event.position}, record {event.record_hash}: at "
                f"{event.at}, {event.batches} batch(es) from registry {event.old_contract} to "
                f"{event.new_contract} on chain {event.chain_id} ({event.reason})"
            )
    if report.redacted:
        lines.append(f"erased under PROTOCOL §7 ({len(report.redacted)}, not findings):")
        for erased in report.redacted:
            lines.append(
                f"  {erased.log}, position {erased.position}, {erased.subject}, seq {erased.seq}, "
                f"record {erased.record_hash}: erased {erased.at} ({erased.reason})"
            )
    return "\n".join(lines) + "\n"
