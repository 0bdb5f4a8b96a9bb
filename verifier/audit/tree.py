"""The log's tree recomputed from its records, for the audit's batch checks (PROTOCOL §8).

Version 2 anchors, for batch b, the root of the whole log's tree of ``end(b)`` entries. The
audit recomputes that tree once, in position order, keeping only its right edge (``core.tlog.Frontier``:
the complete subtrees of ``core.tlog.frontier``, at most log2(n) hashes; one node hash per
record, amortised), and compares its root with each batch's anchored root as the scan passes
the batch's end (``TreeScan``). A root commits to every entry under it, so while the roots
agree every record so far is exactly the anchored entry, and the trees anchored so far extend
one another: consistency (§8) is checked by the recomputation itself. The first batch whose
root differs is where the store departs from the chain; the scan stops there (every later root
would differ too), and the diagnosis (``verifier.audit.diagnosis``) takes over from the
frontier at that batch's start, carrying the anchored frontier on from batch to batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.tlog import Frontier
from verifier.audit.reading import StoredBatch

__all__ = ["Frontier", "Target", "TreeScan"]


# The root and size anchored for a batch (the chain's, or the store's while it is unanchored).
Target = tuple[bytes, int]


class TreeScan:
    """The log's tree over the records as they come in position order, checked against the
    anchored roots (``targets``: batch number → anchored root and size) as each size is
    reached; and which stored batches hold exactly one record at each of their positions.

    After the scan: ``verified`` holds the batches whose anchored root the records give (with
    every batch before them); ``last_good`` is the frontier at the largest anchored size
    verified (the empty tree when none), from which the diagnosis of the next batch starts;
    ``departed`` is the first batch whose root the records do not give, if the scan reached
    one; ``complete`` the stored batches with no missing or repeated position.
    """

    def __init__(self, targets: Mapping[int, Target], batches: Sequence[StoredBatch]) -> None:
        self.frontier = Frontier()
        self.last_good = Frontier()
        self.verified: set[int] = set()
        self.departed: int | None = None
        self._targets = sorted((size, number, root) for number, (root, size) in targets.items())
        self._next_target = 0
        self._stopped = not self._targets
        # Completeness of the stored batches' positions, as BatchLayout orders them.
        self.complete: set[int] = set()
        self._ranges = sorted((b.first_position, b.end, b.number) for b in batches)
        self._next_range = 0
        self._current: tuple[int, int, int] | None = None
        self._seen = 0
        self._spoiled = False
        self._advance()

    # -- completeness of the stored batches ---------------------------------------------------

    def _advance(self) -> None:
        ranges = self._ranges
        self._current = ranges[self._next_range] if self._next_range < len(ranges) else None
        self._next_range += 1
        self._seen = 0
        self._spoiled = False

    def _close(self) -> None:
        assert self._current is not None
        first, end, number = self._current
        if self._seen == end - first and not self._spoiled:
            self.complete.add(number)

    def spoil(self) -> None:
        """A second record at a position: the current batch is not complete, and the tree over
        the records is no longer the log's."""
        self._spoiled = True
        self._stopped = True

    # -- the tree -------------------------------------------------------------------------------

    def take(self, position: int, leaf: bytes) -> None:
        """The leaf hash of the record at ``position`` (positions ascending)."""
        while self._current is not None and position >= self._current[1]:
            self._close()
            self._advance()
        if self._current is not None and position >= self._current[0]:
            self._seen += 1
        if self._stopped:
            return
        frontier = self.frontier
        if position != frontier.size:  # a hole: the records no longer give the log's tree
            self._stopped = True
            return
        frontier.append(leaf)
        targets = self._targets
        while self._next_target < len(targets) and targets[self._next_target][0] <= frontier.size:
            size, number, root = targets[self._next_target]
            self._next_target += 1
            if size < frontier.size:
                continue  # a size no position reaches in order (already passed): not judged here
            if frontier.root() != root:
                self.departed = number
                self._stopped = True
                return
            self.verified.add(number)
            self.last_good = frontier.copy()
        if self._next_target == len(targets):
            self._stopped = True  # nothing left to compare with: the rest need not be hashed

    def finish(self) -> None:
        """Every record taken: close the batches still open."""
        while self._current is not None:
            self._close()
            self._advance()
