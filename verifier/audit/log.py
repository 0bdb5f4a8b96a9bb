"""The audit of one log: what it reads, in which order, and which checks judge it.

The log's batches are read from the store and, when a registry is known, from the chain; then
its records are read once, in position order and in chunks (a million records never sit in
memory at once), and each goes through the checks of its position, its batch's leaves, its own
content and its trail. What needs the whole log comes after: the trail heads, each batch's
root against the chain (diagnosed when it differs), the missing positions, the records past
the head or waiting too long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.records import REANCHORED_TYPE
from verifier.audit.batches import (
    BatchLayout,
    BatchLeaves,
    anchored_root,
    check_anchor,
    check_numbering,
)
from verifier.audit.diagnosis import diagnose_batch, diagnosis_window
from verifier.audit.findings import (
    FindingKind,
    Findings,
    LogFindings,
    LogSummary,
    ReanchorEvent,
    RedactedRecord,
)
from verifier.audit.positions import PositionChecks
from verifier.audit.reading import (
    ChainBatch,
    StoredBatch,
    StoredLogHead,
    StoredRedaction,
    StoreReader,
    read_anchored_batches,
    read_window,
)
from verifier.audit.records import check_record, reanchor_event, redacted_record
from verifier.audit.trails import TrailChecks
from verifier.chain import ChainReader


@dataclass(slots=True)
class AuditRun:
    """What the audits of the logs share: the store and the registry they read, the moment and
    the deadline they judge by, and what they report.

    ``chain`` is set only when the registry's batches are read from it (a contract with code
    on the endpoint); ``contract`` may be known without it.
    """

    reader: StoreReader
    now: datetime
    deadline: timedelta
    worker_stopped: bool
    redactions: Mapping[bytes, StoredRedaction]
    advance: Callable[[int], None]
    chain: ChainReader | None = None
    contract: str | None = None
    chain_id: int | None = None
    findings: Findings = field(default_factory=Findings)
    notes: list[str] = field(default_factory=list)
    redacted: list[RedactedRecord] = field(default_factory=list)
    reanchored: list[ReanchorEvent] = field(default_factory=list)


class LogAudit:
    """The audit of one log (see the module doc); ``run`` returns what it saw."""

    def __init__(self, audit: AuditRun, log: str, head: StoredLogHead | None) -> None:
        self.audit = audit
        self.log = log
        self.head = head.next_position if head else 0
        self.sealed_until = head.sealed_until if head else 0
        self.summary = LogSummary(log, next_position=self.head)
        self.batches: list[StoredBatch] = audit.reader.batches(log)

    def run(self) -> LogSummary:
        audit, log = self.audit, self.log
        chain_batches = self.read_chain()
        layout = self.check_numbering(chain_batches)
        found = LogFindings(log, audit.findings, layout.batch_at)
        trails = TrailChecks(log, found)
        leaves = BatchLeaves(self.batches)
        positions = PositionChecks(self.head, layout.sealed_end)
        self.scan(found, positions, leaves, trails)
        self.summary.pending_records = max(0, self.head - layout.sealed_end)
        trails.close(audit.reader.trail_heads(log))
        shift = self.judge_batches(chain_batches, leaves, trails)
        positions.report_holes(found, layout, shift)
        positions.report_late(found, shift, now=audit.now, deadline=audit.deadline)
        self.summary.findings = audit.findings.count(log)
        return self.summary

    def read_chain(self) -> dict[int, ChainBatch]:
        """The chain's answer for every stored batch, and for anchored batches beyond them."""
        audit = self.audit
        if audit.chain is None or audit.contract is None:
            return {}
        stored = {batch.number for batch in self.batches}
        answers, self.summary.chain_batches = read_anchored_batches(
            audit.chain, audit.contract, self.log, stored
        )
        return answers

    def check_numbering(self, chain_batches: Mapping[int, ChainBatch]) -> BatchLayout:
        """Batches 0, 1, 2 … covering consecutive positions; what the chain holds beyond."""
        audit = self.audit
        layout, findings, notes = check_numbering(
            self.log,
            self.batches,
            chain_batches,
            sealed_until=self.sealed_until,
            now=audit.now,
            worker_stopped=audit.worker_stopped,
        )
        audit.notes += notes
        for finding in findings:
            audit.findings.add(finding)
        summary = self.summary
        summary.batches = len(self.batches)
        summary.anchored_batches = sum(1 for b in self.batches if b.state == "anchored")
        summary.unanchored_batches = len(self.batches) - summary.anchored_batches
        return layout

    def scan(
        self,
        found: LogFindings,
        positions: PositionChecks,
        leaves: BatchLeaves,
        trails: TrailChecks,
    ) -> None:
        """Every record in position order: its position, its batch's leaves, its content, its
        trail."""
        audit, log = self.audit, self.log
        redactions = audit.redactions
        count = 0
        for chunk in audit.reader.record_chunks(log):
            for record in chunk:
                repeated = positions.see(record)
                if repeated is not None:
                    found.find_record(FindingKind.INSERTED, record, repeated)
                    leaves.spoil()
                leaves.take(record.position, record.leaf_hash)
                checked = check_record(log, record, redactions)
                if checked.altered is not None:
                    found.find_record(FindingKind.ALTERED, record, checked.altered)
                elif checked.erased is not None:
                    audit.redacted.append(redacted_record(log, record, checked.erased))
                    self.summary.redacted += 1
                elif record.type == REANCHORED_TYPE:
                    assert checked.content is not None
                    audit.reanchored.append(reanchor_event(log, record, checked.content))
                trails.step(record, checked.content)
            count += len(chunk)
            audit.advance(len(chunk))
        leaves.finish()
        positions.finish()
        self.summary.records = count
        self.summary.trails = len(trails.trails)

    def judge_batches(
        self, chain_batches: Mapping[int, ChainBatch], leaves: BatchLeaves, trails: TrailChecks
    ) -> int:
        """Each batch against the chain, and its recomputed root against the anchored one,
        diagnosed when they differ. Returns how far the diagnoses found the records at the end
        of the log moved."""
        audit = self.audit
        shift = 0
        for batch in self.batches:
            answer = chain_batches.get(batch.number)
            for finding in check_anchor(
                self.log,
                batch,
                answer,
                chain_read=audit.chain is not None,
                chain_id=audit.chain_id,
                contract=audit.contract,
                now=audit.now,
                deadline=audit.deadline,
            ):
                audit.findings.add(finding)
            target, size = anchored_root(batch, answer)
            recomputed = leaves.recomputed.get(batch.number)
            if recomputed is None:
                continue  # positions are missing: already found
            if shift == 0 and size == batch.size and recomputed == target:
                continue
            start, stop = diagnosis_window(batch, size, shift)
            diagnosis = diagnose_batch(
                self.log,
                batch,
                target,
                size,
                shift,
                read_window(audit.reader, self.log, start, stop),
                remembered=trails.remembered,
                gone=trails.gone,
            )
            if diagnosis.gone is not None:
                trails.gone.discard(diagnosis.gone)
            shift = diagnosis.shift
            for finding in diagnosis.findings:
                audit.findings.add(finding)
        return shift
