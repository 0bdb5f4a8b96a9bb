"""The audit's checks of a log's batches against the chain (PROTOCOL §3, §8).

* **Numbering** (``check_numbering``): batches 0, 1, 2 … covering consecutive positions; a batch
  the chain holds and the store lacks is ``missing_batch`` (unless the worker, still running,
  sealed and anchored it after the store was read).
* **Anchors** (``check_anchor``): the stored batch against ``batchOf(logId, n)``: the chain and
  contract it names (``wrong_chain``), anchored as the store says (``not_anchored``), the same
  root and size as the store keeps for it, the whole log's root at the batch's end and that end
  (``root_mismatch``), not left unanchored past the deadline (``unanchored``).
* **Targets** (``anchored_targets``): the root and size each batch's records must give, the
  chain's when it holds the batch, else the store's.

Whether the records give those roots is ``verifier.audit.tree``, and if not what explains it,
``verifier.audit.diagnosis``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from core.merkle import ZERO_ROOT
from verifier.audit.findings import Finding, FindingKind, duration
from verifier.audit.reading import ChainBatch, StoredBatch
from verifier.audit.tree import Target

# A batch the chain holds beyond the store's sealed positions, anchored this recently, was
# most likely sealed after the audit's snapshot was taken.
RACE = timedelta(minutes=5)


def named_contract(batches: Sequence[StoredBatch]) -> str | None:
    """The contract the store's batches name (as most of them spell it); None when none does.
    One store, one registry: batches naming another are findings (``check_anchor``)."""
    named = Counter(b.contract.lower() for b in batches if b.contract)
    if not named:
        return None
    common = named.most_common(1)[0][0]
    return next(b.contract for b in batches if b.contract and b.contract.lower() == common)


class BatchLayout:
    """Which batch covers which positions: the stored batches, and those known only from the
    chain. ``sealed_end`` is the end of the stored batches' positions."""

    def __init__(self, ranges: list[tuple[int, int, int]], sealed_end: int) -> None:
        self.ranges = sorted(ranges)  # (first position, end, batch number)
        self.starts = [first for first, _end, _number in self.ranges]
        self.sealed_end = sealed_end

    def batch_at(self, position: int) -> int | None:
        """The number of the batch covering ``position``, if any."""
        i = bisect.bisect_right(self.starts, position) - 1
        if i >= 0 and self.ranges[i][0] <= position < self.ranges[i][1]:
            return self.ranges[i][2]
        return None

    def end_of(self, number: int) -> int:
        """The first position after batch ``number``."""
        return next(end for _first, end, n in self.ranges if n == number)

    def starts_after(self, position: int) -> list[int]:
        """The first positions of the batches that start after ``position``."""
        return [first for first in self.starts if first > position]


def check_numbering(
    log: str,
    batches: Sequence[StoredBatch],
    chain_batches: Mapping[int, ChainBatch],
    *,
    sealed_until: int,
    now: datetime,
    worker_stopped: bool,
) -> tuple[BatchLayout, list[Finding], list[str]]:
    """Numbers 0, 1, 2 … covering consecutive positions; what the chain holds beyond them.

    Returns the layout of the positions, the findings, and notes on batches not judged.
    """
    findings: list[Finding] = []
    notes: list[str] = []
    by_number = {batch.number: batch for batch in batches}
    known = max(
        [*by_number, *[n for n, a in chain_batches.items() if a[0] != ZERO_ROOT]],
        default=-1,
    )
    cursor = 0
    ranges: list[tuple[int, int, int]] = []
    for number in range(known + 1):
        batch = by_number.get(number)
        answer = chain_batches.get(number)
        if batch is None:
            if answer is not None and answer[0] != ZERO_ROOT:
                anchored = datetime.fromtimestamp(answer[2], UTC)
                racing = cursor >= sealed_until and anchored > now - RACE
                if racing and not worker_stopped:
                    # Sealed after the store's snapshot was taken, and anchored since: the
                    # worker at work, not a batch taken out of the store. (With the worker
                    # stopped, e.g. after a restore, nothing can race: judge it.)
                    notes.append(
                        f"{log}: batch {number} was anchored while the audit began "
                        "(the worker is running); not judged"
                    )
                    continue
                # Version 2: the anchored size is the log's size after the batch (§8).
                end = max(cursor, answer[1])
                findings.append(
                    Finding(
                        FindingKind.MISSING_BATCH,
                        log,
                        f"batch {number} is anchored on chain (root {answer[0].hex()}, "
                        f"{end - cursor} records: the log's first {answer[1]} entries, block "
                        f"{answer[3]}), but the store has no such batch",
                        batch=number,
                    )
                )
                ranges.append((cursor, end, number))
                cursor = end
            else:
                findings.append(
                    Finding(
                        FindingKind.MISSING_BATCH,
                        log,
                        f"the store's batch numbers skip {number}",
                        batch=number,
                    )
                )
            continue
        if batch.first_position != cursor:
            findings.append(
                Finding(
                    FindingKind.ALTERED,
                    log,
                    f"batch {number} covers positions from {batch.first_position}, but the "
                    f"batch before it ends at {cursor}: batches must cover consecutive positions",
                    batch=number,
                )
            )
        ranges.append((batch.first_position, batch.first_position + batch.size, number))
        cursor = batch.first_position + batch.size
    return BatchLayout(ranges, cursor if batches else 0), findings, notes


def check_anchor(
    log: str,
    batch: StoredBatch,
    answer: ChainBatch | None,
    *,
    chain_read: bool,
    chain_id: int | None,
    contract: str | None,
    now: datetime,
    deadline: timedelta,
) -> list[Finding]:
    """The stored ``batch`` against the chain's ``batchOf`` ``answer`` (None when the chain was
    not asked; ``chain_read`` says whether it was)."""
    findings: list[Finding] = []
    number = batch.number

    def find(kind: FindingKind, detail: str) -> None:
        findings.append(Finding(kind, log, detail, batch=number))

    on_chain = answer is not None and answer[0] != ZERO_ROOT
    anchored = batch.state == "anchored"
    if chain_read and batch.chain_id not in (None, chain_id):
        find(
            FindingKind.WRONG_CHAIN,
            f"the store says batch {number} is anchored on chain {batch.chain_id}, but the "
            f"endpoint is chain {chain_id}",
        )
    if (
        contract is not None
        and batch.contract is not None
        and batch.contract.lower() != contract.lower()
    ):
        find(
            FindingKind.WRONG_CHAIN,
            f"batch {number} names contract {batch.contract}, but the store's batches are "
            f"anchored by {contract}: one store, one registry",
        )
    if anchored and chain_read and not on_chain:
        find(
            FindingKind.NOT_ANCHORED,
            f"the store says batch {number} is anchored (tx {batch.tx_hash}, block "
            f"{batch.block_number}), but batchOf on {contract} holds nothing",
        )
    if not anchored and not on_chain:
        waited = now - batch.sealed_at
        if waited > deadline:
            find(
                FindingKind.UNANCHORED,
                f"batch {number} ({batch.size} records) has been {batch.state} for "
                f"{duration(waited)}, longer than the {duration(deadline)} allowed",
            )
    if answer is not None and on_chain and (answer[0], answer[1]) != (batch.log_root, batch.end):
        kept = (
            f"log root {batch.log_root.hex()}"
            if batch.log_root is not None
            else "no log root (a batch sealed under version 1, never carried over)"
        )
        find(
            FindingKind.ROOT_MISMATCH,
            f"the store sealed batch {number} (positions {batch.first_position} to "
            f"{batch.end - 1}) with {kept} for the log's first {batch.end} entries; the chain "
            f"holds root {answer[0].hex()} for the log's first {answer[1]} entries",
        )
    return findings


def anchored_targets(
    batches: Sequence[StoredBatch], chain_batches: Mapping[int, ChainBatch]
) -> dict[int, Target]:
    """The root and size the records must give at each batch's end (PROTOCOL §8: the whole
    log's root and size): the chain's for every batch it holds (the store's batches and those
    it lacks), else, for a stored batch not yet anchored, the store's log root and end. A
    stored batch with neither has no target."""
    targets: dict[int, Target] = {
        number: (answer[0], answer[1])
        for number, answer in chain_batches.items()
        if answer[0] != ZERO_ROOT
    }
    for batch in batches:
        if batch.number not in targets and batch.log_root is not None:
            targets[batch.number] = (batch.log_root, batch.end)
    return targets
