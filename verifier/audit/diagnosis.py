"""Explaining a batch whose records do not give its anchored root (PROTOCOL §3).

When the leaf hashes at a batch's positions do not give the root the chain (or, unanchored,
the store) holds, ``diagnose_batch`` looks among the records around it for the one change that
explains it and names its record: a record slipped in with the later ones moved up
(``inserted``), a record whose leaf hash was rewritten where its trail remembers the old one
(``altered``), records out of acceptance order (``reordered``), a record taken out with the
later ones moved down (``missing``), or the batch intact but moved by such a change just before
it; else the batch is ``altered``. A change moves the records of the batches after it: the
diagnosis carries that ``shift`` from one batch to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass

from core.merkle import merkle_root
from verifier.audit.findings import Finding, FindingKind
from verifier.audit.reading import StoredBatch, StoredRecord

# How far (in positions) the diagnosis of a batch whose records do not give its root looks for
# records moved in from its neighbours.
WINDOW = 8


@dataclass(slots=True)
class Diagnosis:
    """What explains a batch whose records do not give its root, and the shift it leaves.

    ``gone`` is the leaf hash of a record found taken out (no longer evidence for later
    batches)."""

    shift: int
    findings: list[Finding]
    gone: bytes | None = None


def diagnosis_window(batch: StoredBatch, size: int, shift: int) -> tuple[int, int]:
    """The positions ``[start, stop)`` whose records the diagnosis of ``batch`` looks at."""
    first = batch.first_position
    return max(0, first + shift - WINDOW), first + shift + size + WINDOW


def diagnose_batch(
    log: str,
    batch: StoredBatch,
    target: bytes,
    size: int,
    shift: int,
    window: Sequence[StoredRecord],
    *,
    remembered: Mapping[int, bytes],
    gone: Set[bytes],
) -> Diagnosis:
    """The records at the batch's positions do not give ``target`` (of ``size`` leaves): find
    the one change that does, and name its record. ``shift`` is how far earlier changes moved
    records; ``window`` the records at ``diagnosis_window``; ``remembered`` the leaf hashes
    trails remember by position, ``gone`` those of records taken out (``TrailChecks``)."""
    first = batch.first_position
    at = {record.position: i for i, record in enumerate(window)}

    def run(start: int, count: int) -> list[StoredRecord] | None:
        i = at.get(start)
        if i is None or count < 1 or i + count > len(window):
            return None
        found = list(window[i : i + count])
        return found if found[-1].position - start == count - 1 else None

    def root(records: Iterable[StoredRecord]) -> bytes:
        return merkle_root([record.leaf_hash for record in records])

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
    records = run(start, size)
    if records is not None and root(records) == target:
        return Diagnosis(shift, [])
    # One record slipped in, the later ones moved up.
    wider = run(start, size + 1)
    if wider is not None:
        for i, forged in enumerate(wider):
            if root(wider[:i] + wider[i + 1 :]) == target:
                return Diagnosis(
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
            if merkle_root(leaves) == target:
                return Diagnosis(
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
            return Diagnosis(shift, moved)
    # One record taken out, the later ones moved down: its leaf hash is known from the prev
    # of the record after it.
    fewer = run(start, size - 1)
    if fewer is not None and gone:
        leaves = [r.leaf_hash for r in fewer]
        for taken in sorted(gone):
            for j in range(size):
                if merkle_root([*leaves[:j], taken, *leaves[j:]]) == target:
                    return Diagnosis(
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
        moved_run = run(first + other, size)
        if moved_run is not None and root(moved_run) == target:
            if other > shift:
                between = run(first + shift, other - shift) or []
                return Diagnosis(
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
            return Diagnosis(
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
                f"the records at positions {start} to {start + size - 1} do not give the "
                f"anchored root {target.hex()}, and no single insertion, removal, rewrite "
                "or reordering explains it",
            )
        ],
    )
