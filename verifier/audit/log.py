"""The audit of one log: what it reads, in which order, and which checks judge it.

The log's batches are read from the store and, when a registry is known, from the chain; then
its records are read once, in position order and in chunks (a million records never sit in
memory at once), and each goes through the checks of its position, the log's tree (its root
compared with each batch's anchored root as the scan passes the batch's end, PROTOCOL §8), its
own content and its trail. What needs the whole log comes after: the trail heads, each batch
against the chain, the batches from the first whose root the records do not give (diagnosed,
from the anchored tree before each), the missing positions, the records past the head or
waiting too long.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.merkle import empty_root
from core.records import REANCHORED_TYPE
from verifier.audit.batches import (
    BatchLayout,
    anchored_targets,
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
from verifier.audit.maps import MapReplay
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
from verifier.audit.tree import Frontier, Target, TreeScan
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
        targets = anchored_targets(self.batches, chain_batches)
        tree = TreeScan(targets, self.batches)
        positions = PositionChecks(self.head, layout.sealed_end)
        self.scan(found, positions, tree, trails, MapReplay(found))
        self.summary.pending_records = max(0, self.head - layout.sealed_end)
        trails.close(audit.reader.trail_heads(log))
        shift = self.judge_batches(chain_batches, targets, tree, trails)
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
        tree: TreeScan,
        trails: TrailChecks,
        heads: MapReplay,
    ) -> None:
        """Every record in position order: its position, the log's tree, its content, its
        trail, the map of trail heads."""
        audit, log = self.audit, self.log
        redactions = audit.redactions
        count = 0
        for chunk in audit.reader.record_chunks(log):
            for record in chunk:
                repeated = positions.see(record)
                if repeated is not None:
                    found.find_record(FindingKind.INSERTED, record, repeated)
                    tree.spoil()
                tree.take(record.position, record.leaf_hash)
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
                heads.step(record, checked.content)
            count += len(chunk)
            audit.advance(len(chunk))
        tree.finish()
        positions.finish()
        self.summary.records = count
        self.summary.trails = len(trails.trails)
        self.summary.map_heads = heads.checked

    def judge_batches(
        self,
        chain_batches: Mapping[int, ChainBatch],
        targets: Mapping[int, Target],
        tree: TreeScan,
        trails: TrailChecks,
    ) -> int:
        """Each batch against the chain; and, from the first batch whose anchored root the
        records do not give, each batch's records appended to the anchored tree before it,
        diagnosed when they do not give its root. Returns how far the diagnoses found the
        records at the end of the log moved."""
        audit = self.audit
        shift = 0
        after: Frontier | None = None  # the anchored tree at the end of the batch just judged
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
            target = targets.get(batch.number)
            if batch.number in tree.verified and shift == 0:
                after = None  # the scan holds the tree here, should the next batch need it
                continue
            if target is None:
                after = None
                audit.notes.append(
                    f"{self.log}: batch {batch.number} was not recomputed: the store keeps no "
                    "log root for it and the chain holds none"
                )
                continue
            if batch.number not in tree.complete:
                after = None  # positions are missing or repeated: already found
                continue
            before = self.tree_before(batch, targets, tree, after)
            root, size = target
            if before is None or size <= before.size:
                after = None
                audit.notes.append(
                    f"{self.log}: batch {batch.number} was not recomputed: the log's tree "
                    "before it could not be rebuilt from the records, nor taken from the store "
                    "as anchored"
                    if before is None
                    else f"{self.log}: batch {batch.number} was not recomputed: its anchored "
                    f"size {size} does not grow from the {before.size} entries before it"
                )
                continue
            start, stop = diagnosis_window(before.size, size - before.size, shift)
            diagnosis = diagnose_batch(
                self.log,
                batch,
                before,
                root,
                size,
                shift,
                read_window(audit.reader, self.log, start, stop),
                remembered=trails.remembered,
                gone=trails.gone,
            )
            if diagnosis.gone is not None:
                trails.gone.discard(diagnosis.gone)
            shift, after = diagnosis.shift, diagnosis.after
            for finding in diagnosis.findings:
                audit.findings.add(finding)
        return shift

    def tree_before(
        self,
        batch: StoredBatch,
        targets: Mapping[int, Target],
        tree: TreeScan,
        after: Frontier | None,
    ) -> Frontier | None:
        """The log's tree before ``batch`` as anchored: the diagnosis's of the batch before,
        the scan's where it stopped, or the frontier the store keeps for the batch when it
        folds to the root anchored for the batch before (a root commits to its subtrees); None
        when none of them is known to be the anchored tree."""
        number = batch.number
        previous = targets.get(number - 1) if number else (empty_root(), 0)
        if previous is None:
            return None
        root, size = previous
        for known in (after, tree.last_good):
            if known is not None and known.size == size:
                return known
        if batch.frontier is None:
            return None
        stored = Frontier.stored(size, batch.frontier)
        if stored is None or stored.root() != root:
            return None
        return stored
