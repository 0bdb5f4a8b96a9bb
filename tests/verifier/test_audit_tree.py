"""The audit's recomputation of a log's tree and its diagnosis of batches under version 2
anchors (PROTOCOL §8), on plain values: the whole log's root at each batch's end, recomputed
once over the records; a batch the records do not give judged from the anchored tree before it.
The end-to-end audit against a real store and chain is tests/verifier/test_audit.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import tlog
from core.merkle import merkle_root
from tests.verifier.fakes import SealedLog, suggestion_batch
from verifier.audit.diagnosis import Diagnosis, diagnose_batch, diagnosis_window
from verifier.audit.findings import FindingKind
from verifier.audit.reading import StoredBatch, StoredRecord
from verifier.audit.tree import Frontier, TreeScan

LOG = "suggestions"
SIZES = (5, 5, 5, 3)  # ends 5, 10, 15, 18
START = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def sealed() -> SealedLog:
    return SealedLog.of(suggestion_batch(sum(SIZES)), SIZES)


def leaves_of(sealed: SealedLog) -> list[bytes]:
    return [r.leaf_hash for r in sealed.records]


def stored_records(sealed: SealedLog) -> list[StoredRecord]:
    return [
        StoredRecord(
            position,
            str(r.record["subject"]),
            int(r.record["seq"]),
            str(r.record["type"]),
            r.leaf_hash,
            r.canonical,
            START + timedelta(seconds=position),
        )
        for position, r in enumerate(sealed.records)
    ]


def stored_batches(sealed: SealedLog) -> list[StoredBatch]:
    return [
        StoredBatch(
            LOG,
            b,
            sealed.first(b),
            sealed.ends[b] - sealed.first(b),
            merkle_root(leaves_of(sealed)[sealed.first(b) : sealed.ends[b]]),
            "anchored",
            None,
            None,
            None,
            None,
            START,
            None,
            None,
            sealed.root(b),
            b"".join(sealed.read(tlog.frontier(sealed.first(b)))),
        )
        for b in range(len(sealed.ends))
    ]


def targets_of(sealed: SealedLog) -> dict[int, tuple[bytes, int]]:
    return {b: (sealed.root(b), end) for b, end in enumerate(sealed.ends)}


def anchored_frontier(sealed: SealedLog, size: int) -> Frontier:
    return Frontier(size, sealed.read(tlog.frontier(size)))


# -- the frontier -------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(size=st.integers(0, 70), more=st.integers(0, 20))
def test_a_frontier_is_the_right_edge_of_the_tree(size: int, more: int) -> None:
    leaves = [bytes([n % 256, n // 256]) * 16 for n in range(size + more)]
    nodes = dict(tlog.append_leaves(0, leaves, lambda wanted: []).nodes)
    frontier = Frontier()
    for leaf in leaves[:size]:
        frontier.append(leaf)
    assert frontier.size == size
    assert frontier.hashes == [nodes[n] for n in tlog.frontier(size)]
    assert frontier.root() == merkle_root(leaves[:size])
    rebuilt = Frontier(size, frontier.hashes)
    extended = rebuilt.extended(leaves[size:])
    assert extended.root() == merkle_root(leaves)
    assert rebuilt.size == size and rebuilt.root() == frontier.root()  # the copy is its own
    assert Frontier.stored(size, b"".join(frontier.hashes)) is not None


def test_a_stored_frontier_that_cannot_be_one_is_none() -> None:
    assert Frontier.stored(6, b"\x01" * 31) is None
    assert Frontier.stored(6, b"\x01" * 32) is None  # 6 entries: two complete subtrees
    with pytest.raises(ValueError, match="has 2 complete subtree"):
        Frontier(6, [b"\x01" * 32])


# -- the scan -----------------------------------------------------------------------------------


def scan(sealed: SealedLog, records: list[StoredRecord]) -> TreeScan:
    tree = TreeScan(targets_of(sealed), stored_batches(sealed))
    seen: set[int] = set()
    for record in records:
        if record.position in seen:
            tree.spoil()
        seen.add(record.position)
        tree.take(record.position, record.leaf_hash)
    tree.finish()
    return tree


def test_an_honest_log_verifies_every_batch(sealed: SealedLog) -> None:
    tree = scan(sealed, stored_records(sealed))
    assert tree.verified == {0, 1, 2, 3} and tree.departed is None
    assert tree.complete == {0, 1, 2, 3}
    assert tree.last_good.size == 18 and tree.last_good.root() == sealed.root(3)


def test_the_scan_stops_at_the_first_batch_the_records_do_not_give(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    records[12] = records[12]._replace(leaf_hash=bytes(32))
    tree = scan(sealed, records)
    assert tree.verified == {0, 1} and tree.departed == 2
    assert tree.last_good.hashes == anchored_frontier(sealed, 10).hashes
    assert tree.complete == {0, 1, 2, 3}  # every position holds one record


def test_a_hole_stops_the_scan_and_leaves_its_batch_incomplete(sealed: SealedLog) -> None:
    records = [r for r in stored_records(sealed) if r.position != 7]
    tree = scan(sealed, records)
    assert tree.verified == {0} and tree.departed is None
    assert tree.complete == {0, 2, 3}


def test_a_repeated_position_stops_the_scan(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    records.insert(8, records[7])
    tree = scan(sealed, records)
    assert tree.verified == {0} and tree.complete == {0, 2, 3}


# -- the diagnosis from the anchored tree before the batch --------------------------------------


def diagnose(
    sealed: SealedLog,
    records: list[StoredRecord],
    batch: int,
    *,
    shift: int = 0,
    remembered: dict[int, bytes] | None = None,
    gone: set[bytes] | None = None,
) -> Diagnosis:
    before = anchored_frontier(sealed, sealed.first(batch))
    size = sealed.ends[batch]
    start, stop = diagnosis_window(before.size, size - before.size, shift)
    window = [r for r in records if start <= r.position < stop]
    return diagnose_batch(
        LOG,
        stored_batches(sealed)[batch],
        before,
        sealed.root(batch),
        size,
        shift,
        window,
        remembered=remembered or {},
        gone=gone or set(),
    )


def test_an_intact_batch_gives_the_anchored_tree_at_its_end(sealed: SealedLog) -> None:
    found = diagnose(sealed, stored_records(sealed), 2)
    assert found.findings == [] and found.shift == 0
    assert found.after is not None
    assert found.after.hashes == anchored_frontier(sealed, 15).hashes


def test_a_record_slipped_into_a_batch_is_inserted(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    forged = records[0]._replace(subject="SG-FAKE", leaf_hash=b"\x07" * 32)
    moved = [*records[:12], forged, *records[12:]]
    moved = [r._replace(position=p) for p, r in enumerate(moved)]
    found = diagnose(sealed, moved, 2)
    [finding] = found.findings
    assert (finding.kind, finding.position, finding.subject) == (
        FindingKind.INSERTED,
        12,
        "SG-FAKE",
    )
    assert found.shift == 1
    assert found.after is not None and found.after.root() == sealed.root(2)
    # The next batch is judged from there, its records one position later.
    after = diagnose(sealed, moved, 3, shift=1)
    assert after.findings == [] and after.shift == 1


def test_a_rewritten_record_the_trail_remembers_is_altered(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    old = records[11].leaf_hash
    records[11] = records[11]._replace(leaf_hash=b"\x09" * 32)
    found = diagnose(sealed, records, 2, remembered={11: old})
    [finding] = found.findings
    assert (finding.kind, finding.position) == (FindingKind.ALTERED, 11)
    assert found.after is not None and found.after.root() == sealed.root(2)


def test_records_out_of_acceptance_order_are_reordered(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    a, b = records[11], records[13]
    records[11] = b._replace(position=11)
    records[13] = a._replace(position=13)
    found = diagnose(sealed, records, 2)
    assert sorted(f.position for f in found.findings) == [11, 13]
    assert {f.kind for f in found.findings} == {FindingKind.REORDERED}


def test_a_record_taken_out_is_missing(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    taken = records[12].leaf_hash
    fewer = [r._replace(position=p) for p, r in enumerate(records[:12] + records[13:])]
    found = diagnose(sealed, fewer, 2, gone={taken})
    [finding] = found.findings
    assert (finding.kind, finding.position) == (FindingKind.MISSING, 12)
    assert found.shift == -1 and found.gone == taken


def test_a_batch_nothing_explains_is_altered_and_leaves_no_tree(sealed: SealedLog) -> None:
    records = stored_records(sealed)
    records[11] = records[11]._replace(leaf_hash=b"\x09" * 32)
    records[13] = records[13]._replace(leaf_hash=b"\x0a" * 32)
    found = diagnose(sealed, records, 2)
    [finding] = found.findings
    assert finding.kind is FindingKind.ALTERED and finding.position is None
    assert "(the log's first 15 entries)" in finding.detail
    assert found.after is None
