"""What the audit reports: the kinds of finding, the findings themselves, the erased and
re-anchored records it lists (which are not findings), each log's summary and the report.

``Findings`` keeps one finding per thing found, in the order found; ``LogFindings`` is how the
checks of one log report, naming the batch that covers a position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from verifier.audit.reading import StoredRecord


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
    # PROTOCOL §10: a ledger.map_head record whose map_root, trails, index or batch is not
    # what the map of trail heads replayed from the entries before it gives.
    MAP_HEAD_MISMATCH = "map_head_mismatch"


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
    map_heads: int = 0  # ledger.map_head records compared with the map replayed (§10)
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
            "map_heads": self.map_heads,
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


class Findings:
    """The findings so far, one per thing found, in the order found."""

    def __init__(self) -> None:
        self.found: list[Finding] = []
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
            self._seen[key] = len(self.found)
            self.found.append(finding)
            return
        first = self.found[index]
        self.found[index] = replace(
            first,
            batch=first.batch if first.batch is not None else finding.batch,
            seq=first.seq if first.seq is not None else finding.seq,
            record_hash=first.record_hash or finding.record_hash,
        )

    def count(self, log: str) -> int:
        return sum(1 for finding in self.found if finding.log == log)

    def in_report_order(self) -> list[Finding]:
        """By log, then batch, then position (those without come first)."""
        return sorted(self.found, key=_report_order)


def _report_order(finding: Finding) -> tuple[str, int, int, str]:
    batch = -1 if finding.batch is None else finding.batch
    position = -1 if finding.position is None else finding.position
    return (finding.log, batch, position, finding.kind.value)


class LogFindings:
    """How the checks of one log report: each finding names the log and, for a position, the
    batch (stored, or known only from the chain) that covers it."""

    def __init__(self, log: str, findings: Findings, batch_at: Callable[[int], int | None]) -> None:
        self.log = log
        self.findings = findings
        self.batch_at = batch_at

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
        self.findings.add(
            Finding(kind, self.log, detail, batch, position, subject, seq, record_hash)
        )

    def find_record(self, kind: FindingKind, record: StoredRecord, detail: str) -> None:
        self.find(
            kind,
            detail,
            position=record.position,
            subject=record.subject,
            seq=record.seq,
            record_hash=record.leaf_hash,
        )


def duration(delta: timedelta) -> str:
    """A waiting time as findings word it: ``2 h 5 min``."""
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def reanchor_notes(events: Sequence[ReanchorEvent]) -> list[str]:
    """The report's note on what re-anchoring means for receipts handed out before it."""
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
