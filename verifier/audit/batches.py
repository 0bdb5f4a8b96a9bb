"""The audit's checks of a log's batches against the chain (PROTOCOL §3).

* **Numbering** (``check_numbering``): batches 0, 1, 2 … covering consecutive positions; a batch
  the chain holds and the store lacks is ``missing_batch`` (unless the worker, still running,
  sealed and anchored it after the store was read).
* **Leaves** (``BatchLeaves``): each batch's root recomputed from the leaf hashes at its
  positions, collected as the records go by.
* **Anchors** (``check_anchor``): the stored batch against ``batchOf(logId, n)``: the chain and
  contract it names (``wrong_chain``), anchored as the store says (``not_anchored``), the same
  root and size (``root_mismatch``), not left unanchored past the deadline (``unanchored``).

Whether the recomputed root is the anchored one, and if not what explains it, is
``verifier.audit.diagnosis``.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from core.merkle import ZERO_ROOT, merkle_root
from verifier.audit.findings import Finding, FindingKind, duration
from verifier.audit.reading import ChainBatch, StoredBatch

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
                findings.append(
                    Finding(
                        FindingKind.MISSING_BATCH,
                        log,
                        f"batch {number} is anchored on chain (root {answer[0].hex()}, "
                        f"{answer[1]} records, block {answer[3]}), but the store has no such "
                        f"batch",
                        batch=number,
                    )
                )
                ranges.append((cursor, cursor + answer[1], number))
                cursor += answer[1]
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


class BatchLeaves:
    """The leaf hashes at each stored batch's positions, taken in position order, and the root
    recomputed from them (RFC 9162 §2.1.1) for each batch whose every leaf is there."""

    def __init__(self, batches: Sequence[StoredBatch]) -> None:
        self.batches = sorted(batches, key=lambda b: b.first_position)
        self.recomputed: dict[int, bytes] = {}
        self._next = 0
        self._current: StoredBatch | None = None
        self._end = -1
        self._leaves: list[bytes] = []
        self._advance()

    def _advance(self) -> None:
        self._current = self.batches[self._next] if self._next < len(self.batches) else None
        self._end = self._current.first_position + self._current.size if self._current else -1
        self._next += 1

    def _close(self, batch: StoredBatch) -> None:
        """All positions of ``batch`` read: recompute its root when every leaf is there."""
        leaves = self._leaves
        if len(leaves) == batch.size and all(leaves):
            self.recomputed[batch.number] = merkle_root(leaves)
        self._leaves = []

    def spoil(self) -> None:
        """A second record at a position: the current batch's leaf count is wrong, no root."""
        self._leaves.append(b"")

    def take(self, position: int, leaf: bytes) -> None:
        """The leaf hash of the record at ``position`` (positions ascending)."""
        while self._current is not None and position >= self._end:
            self._close(self._current)
            self._advance()
        if self._current is not None and position >= self._current.first_position:
            self._leaves.append(leaf)

    def finish(self) -> None:
        """Every record taken: close the batches still open."""
        while self._current is not None:
            self._close(self._current)
            self._advance()


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
    if answer is not None and on_chain and (answer[0], answer[1]) != (batch.root, batch.size):
        find(
            FindingKind.ROOT_MISMATCH,
            f"the store sealed batch {number} with root {batch.root.hex()} ({batch.size} "
            f"records); the chain holds root {answer[0].hex()} ({answer[1]} records)",
        )
    return findings


def anchored_root(batch: StoredBatch, answer: ChainBatch | None) -> tuple[bytes, int]:
    """The root and size the batch's records must give: the chain's when it holds the batch,
    else the store's."""
    if answer is not None and answer[0] != ZERO_ROOT:
        return answer[0], answer[1]
    return batch.root, batch.size
