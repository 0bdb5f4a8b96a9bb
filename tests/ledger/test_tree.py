"""Each log's growing tree in the store (ledger.tree, PROTOCOL §8): the roots, inclusion proofs
and consistency proofs it serves from the node table are those of RFC 9162 over the log's
entries, at every size the tree covers; a store older than the tree catches up."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import tlog
from core.merkle import inclusion_path, merkle_root, verify_inclusion
from ledger import repository as repo
from ledger import tree
from ledger.models import RecordRow, TreeNode
from ledger.service import BatchTree
from tests.fixtures.db import Database, append_one


def _append(database: Database, count: int) -> list[bytes]:
    with database.sessions.begin() as session:
        for i in range(count):
            append_one(session, f"SG-T{i % 5}", i)
    with database.sessions() as session:
        return list(session.scalars(select(RecordRow.leaf_hash).order_by(RecordRow.position)))


def _extend(session: Session, end: int) -> bytes:
    head = repo.lock_log_head(session, "suggestions")
    return tree.extend(session, head, end)


def test_the_tree_grows_batch_by_batch_and_serves_rfc9162_roots_and_proofs(
    database: Database,
) -> None:
    leaves = _append(database, 37)
    ends = [1, 2, 5, 8, 13, 16, 17, 30, 37]  # batches of uneven sizes
    for end in ends:
        with database.sessions.begin() as session:
            assert _extend(session, end) == merkle_root(leaves[:end])
    with database.sessions() as session:
        # Level 1 and up only: the leaves are the records' own hashes.
        stored = session.scalar(select(func.count()).select_from(TreeNode))
        assert stored == tlog.stored_node_count(37) - 37
        for size in range(1, 38):
            root = tree.root(session, "suggestions", size)
            assert root == merkle_root(leaves[:size])
            for index in range(size):
                proof = tree.inclusion_proof(session, "suggestions", index, size)
                assert proof == inclusion_path(leaves[:size], index)
                assert verify_inclusion(leaves[index], index, size, proof, root)
        for old in ends:
            for new in ends:
                if old > new:
                    continue
                proof = tree.consistency_proof(session, "suggestions", old, new)
                assert tlog.verify_consistency(
                    old, new, merkle_root(leaves[:old]), merkle_root(leaves[:new]), proof
                )
                if old < new:  # and it proves nothing for another tree
                    assert not tlog.verify_consistency(
                        old, new, merkle_root(leaves[1 : old + 1]), merkle_root(leaves[:new]), proof
                    )


def test_a_store_older_than_the_tree_catches_up_at_its_next_seal(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = _append(database, 23)
    monkeypatch.setattr(tree, "CATCH_UP_STEP", 4)  # several steps
    with database.sessions.begin() as session:
        assert _extend(session, 23) == merkle_root(leaves)
    with database.sessions() as session:
        assert tree.root(session, "suggestions", 11) == merkle_root(leaves[:11])


def test_sizes_beyond_the_tree_and_impossible_proofs_are_refused(database: Database) -> None:
    _append(database, 6)
    with database.sessions.begin() as session:
        _extend(session, 4)
    with database.sessions() as session:
        with pytest.raises(tree.TreeUnavailable, match="covers 4"):
            tree.root(session, "suggestions", 5)
        with pytest.raises(tree.TreeUnavailable):
            tree.consistency_proof(session, "suggestions", 2, 6)
        with pytest.raises(ValueError, match="not in a tree"):
            tree.inclusion_proof(session, "suggestions", 4, 4)
        with pytest.raises(ValueError, match="need 0 < from <= to"):
            tree.consistency_proof(session, "suggestions", 3, 2)
    with database.sessions.begin() as session, pytest.raises(ValueError, match="already covers"):
        _extend(session, 3)


@pytest.mark.parametrize("first", [0, 1, 3, 4, 7, 8, 13, 16, 31])
@pytest.mark.parametrize("size", [1, 2, 5, 8, 17])
def test_a_batch_builds_every_receipt_of_the_whole_log_from_its_frontier_and_leaves(
    first: int, size: int
) -> None:
    """ledger.service.BatchTree: the tree before the batch (its frontier) and the batch's
    own leaves give the whole log's root and RFC 9162 inclusion path of each of its entries."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(first + size)]
    table = {tlog.Node(0, i): leaf for i, leaf in enumerate(leaves[:first])}
    before = tlog.append_leaves(0, leaves[:first], lambda nodes: [table[n] for n in nodes])
    table.update(dict(before.nodes))
    frontier = b"".join(table[node] for node in tlog.frontier(first))
    view = BatchTree(first, frontier, leaves[first:])
    assert view.root == merkle_root(leaves) and view.end == first + size
    for position in range(first, first + size):
        assert view.inclusion_path(position) == inclusion_path(leaves, position)
