"""Explaining a batch whose records do not give its anchored root (PROTOCOL §3, §8).

Version 2 anchors the whole log's root at each batch's end. The diagnosis starts from the
log's tree before the batch as anchored (``before``: its frontier, recomputed from the earlier
batches once they were verified or explained) and appends the batch's records to it. When
they do not give the root the chain (or, unanchored, the store) holds, ``diagnose_batch``
looks among the records around it for the one change that explains it and names its record:
a record slipped in with the later ones moved up (``inserted``), a record whose leaf hash was
rewritten where its trail remembers the old one (``altered``), records out of acceptance order
(``reordered``), a record taken out with the later ones moved down (``missing``), or the batch
intact but moved by such a change just before it; else the batch is ``altered``. A change
moves the records of the batches after it: the diagnosis carries that ``shift`` from one
batch to the next, and the tree at the batch's end as anchored (``after``), from which the
next batch is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from verifier.audit.findings import Finding, FindingKind
from verifier.audit.reading import StoredBatch, StoredRecord
from verifier.audit.tree import Frontier

# How far (in positions) the diagnosis of a batch whose records do not give its root looks for
# records moved in from its neighbours.
WINDOW = 8


@dataclass(slots=True)
class Diagnosis:
    """What explains a batch whose records do not give its root, and the shift it leaves.

    ``after`` is the log's tree at the batch's end as anchored (None when nothing explains the
    batch: its entries are unknown). ``gone`` is the leaf hash of a record found taken out (no
    longer evidence for later batches)."""

    shift: int
    findings: list[Finding]
    after: Frontier | None = None
    gone: bytes | None = None


def diagnosis_window(first: int, count: int, shift: int) -> tuple[int, int]:
    """The positions ``[start, stop)`` whose records the diagnosis of the batch of ``count``
    entries anchored from entry ``first`` looks at."""
    return max(0, first + shift - WINDOW), first + shift + count + WINDOW


def diagnose_batch(
    log: str,
    batch: StoredBatch,
    before: Frontier,
    target: bytes,
    size: int,
    shift: int,
    window: Sequence[StoredRecord],
    *,
    remembered: Mapping[int, bytes],
    gone: Set[bytes],
) -> Diagnosis:
    """Judge the records of ``batch`` against ``target``, the root of the log's tree of
    ``size`` entries anchored for it, appended to ``before``, the anchored tree before it;
    when they do not give it, find the one change that does and name its record. ``shift`` is
    how far earlier changes moved records; ``window`` the records at ``diagnosis_window``;
    ``remembered`` the leaf hashes trails remember by position, ``gone`` those of records taken
    out (``TrailChecks``). A batch its records give comes back with no finding."""
    first = before.size  # the anchored position of the batch's first entry
    count = size - first
    at = {record.position: i for i, record in enumerate(window)}
    found: list[Frontier] = []

    def run(start: int, length: int) -> list[StoredRecord] | None:
        i = at.get(start)
        if i is None or length < 1 or i + length > len(window):
            return None
        taken = list(window[i : i + length])
        return taken if taken[-1].position - start == length - 1 else None

    def gives(leaves: Iterable[bytes]) -> bool:
        """Whether these leaves, appended to the tree before the batch, give the target; the
        tree they give is kept (``found``) for the next batch."""
        after = before.extended(leaves)
        if after.root() != target:
            return False
        found.append(after)
        return True

    def root_of(records: Iterable[StoredRecord]) -> bool:
        return gives(record.leaf_hash for record in records)

    def diagnosis(shift: int, findings: list[Finding], gone: bytes | None = None) -> Diagnosis:
        return Diagnosis(shift, findings, found[-1], gone)

    def finding(kind: FindingKind, record: StoredRecord | None, detail: str) -> Finding:
        return Finding(
            kind,
            log,
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
    records = run(start, count)
    if records is not None and root_of(records):
        return diagnosis(shift, [])
    # One record slipped in, the later ones moved up.
    wider = run(start, count + 1)
    if wider is not None:
        for i, forged in enumerate(wider):
            if root_of(wider[:i] + wider[i + 1 :]):
                return diagnosis(
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
            old = remembered.get(record.position)
            if old is None:
                continue
            leaves = [r.leaf_hash for r in records]
            leaves[i] = old
            if gives(leaves):
                return diagnosis(
                    shift,
                    [
                        finding(
                            FindingKind.ALTERED,
                            record,
                            f"the anchored batch and its trail hold this record as "
                            f"{old.hex()}: its content and record hash were rewritten",
                        )
                    ],
                )
        # Records out of acceptance order.
        i0 = at[start]
        ordered = sorted(window, key=lambda r: (r.accepted_at, r.position))
        slot = ordered[i0 : i0 + count]
        if len(slot) == count and root_of(slot):
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
            return diagnosis(shift, moved)
    # One record taken out, the later ones moved down: its leaf hash is known from the prev
    # of the record after it.
    fewer = run(start, count - 1)
    if fewer is not None and gone:
        leaves = [r.leaf_hash for r in fewer]
        for taken in sorted(gone):
            for j in range(count):
                if gives([*leaves[:j], taken, *leaves[j:]]):
                    return diagnosis(
                        shift - 1,
                        [
                            Finding(
                                FindingKind.MISSING,
                                log,
                                f"record {taken.hex()} was taken out of position {first + j} "
                                "and the records after it moved one position down",
                                batch.number,
                                first + j,
                                None,
                                None,
                                taken.hex(),
                            )
                        ],
                        gone=taken,
                    )
    # Intact but moved by records slipped in or taken out just before it.
    for other in range(-WINDOW, WINDOW + 1):
        if other == shift:
            continue
        moved_run = run(first + other, count)
        if moved_run is not None and root_of(moved_run):
            if other > shift:
                between = run(first + shift, other - shift) or []
                return diagnosis(
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
            return diagnosis(
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
    return Diagnosis(
        shift,
        [
            finding(
                FindingKind.ALTERED,
                None,
                f"the records at positions {start} to {start + count - 1} do not give the "
                f"anchored root {target.hex()} (the log's first {size} entries), and no single "
                "insertion, removal, rewrite or reordering explains it",
            )
        ],
    )
