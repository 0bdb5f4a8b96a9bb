"""core.tlog: proofs and roots from stored complete-subtree nodes, against the RFC 9162 text.

The reference below is the recursive definition of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and
§2.1.4.1 (PROOF / SUBPROOF), written as literally as Python allows and sharing no code with
``core.tlog``. The published vectors are the Certificate Transparency ones (transparency-dev/merkle
proof/verify_test.go, ``consistencyProofs``; the leaves are those of tests/ledger/test_merkle.py).
Go's independent implementation checks the same proofs in test_go_interop.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.merkle import empty_root, leaf_hash, merkle_root, verify_inclusion
from core.tlog import (
    Node,
    append_leaves,
    consistency_proof,
    consistency_proof_nodes,
    fold_subtree,
    frontier,
    inclusion_proof,
    inclusion_proof_nodes,
    stored_node_count,
    subtree_nodes,
    tree_root,
    verify_consistency,
)

# ---------------------------------------------------------------------------------------------
# The RFC 9162 reference, recursive, over leaf hashes.
# ---------------------------------------------------------------------------------------------


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _k(len(leaves))
    return hashlib.sha256(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:])).digest()


def ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [ref_mth(leaves)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], b), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_proof(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, leaves, True)


# ---------------------------------------------------------------------------------------------
# A node table as a store would keep it, filled only through append_leaves.
# ---------------------------------------------------------------------------------------------


class NodeTable:
    """A dictionary of stored nodes that counts the reader's calls and the nodes asked for."""

    def __init__(self) -> None:
        self.nodes: dict[Node, bytes] = {}
        self.size = 0
        self.calls: list[list[Node]] = []

    def read(self, wanted: Sequence[Node]) -> list[bytes]:
        self.calls.append(list(wanted))
        return [self.nodes[node] for node in wanted]

    def append(self, leaves: Sequence[bytes]) -> bytes:
        done = append_leaves(self.size, leaves, self.read)
        for node, value in done.nodes:
            assert node not in self.nodes, f"{node} stored twice"
            self.nodes[node] = value
        self.size = done.size
        return done.root


def leaves_for(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


def table_of(leaves: Sequence[bytes], batches: Sequence[int] = ()) -> NodeTable:
    """A table built by appending ``leaves`` in batches of the given sizes, then the rest."""
    table = NodeTable()
    at = 0
    for count in batches:
        table.append(leaves[at : at + count])
        at += count
    table.append(leaves[at:])
    return table


# ---------------------------------------------------------------------------------------------
# Published vectors
# ---------------------------------------------------------------------------------------------

CT_LEAVES = [
    leaf_hash(bytes.fromhex(h))
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_CONSISTENCY = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


@pytest.mark.parametrize(("old", "new", "published"), CT_CONSISTENCY)
def test_published_consistency_proofs(old: int, new: int, published: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in published]
    table = table_of(CT_LEAVES[:new])
    proof = consistency_proof(old, new, table.read)
    assert proof == expected
    old_root, new_root = merkle_root(CT_LEAVES[:old]), merkle_root(CT_LEAVES[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)
    assert not verify_consistency(old, new, new_root, old_root, proof)


# ---------------------------------------------------------------------------------------------
# Node addressing
# ---------------------------------------------------------------------------------------------


def test_node_covers_its_leaves() -> None:
    assert (Node(0, 5).start, Node(0, 5).end) == (5, 6)
    assert (Node(3, 2).start, Node(3, 2).end) == (16, 24)


def test_subtree_nodes_one_per_set_bit_largest_first() -> None:
    assert subtree_nodes(0, 13) == [Node(3, 0), Node(2, 2), Node(0, 12)]
    assert subtree_nodes(8, 13) == [Node(2, 2), Node(0, 12)]
    assert subtree_nodes(16, 32) == [Node(4, 1)]
    assert frontier(0) == []
    assert frontier(7) == [Node(2, 0), Node(1, 2), Node(0, 6)]


@pytest.mark.parametrize(("start", "end"), [(1, 3), (4, 9), (2, 2), (3, 1), (-1, 0)])
def test_subtree_nodes_refuses_what_the_recursion_never_reaches(start: int, end: int) -> None:
    with pytest.raises(ValueError, match=r"subtree|range"):
        subtree_nodes(start, end)


@given(st.integers(min_value=1, max_value=2**40))
def test_stored_node_count(size: int) -> None:
    assert stored_node_count(size) == 2 * size - bin(size).count("1")


def test_stored_node_count_matches_what_appending_stores() -> None:
    for n in range(0, 70):
        assert len(table_of(leaves_for(n)).nodes) == stored_node_count(n)


# ---------------------------------------------------------------------------------------------
# Appending
# ---------------------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=0, max_value=200),
    st.lists(st.integers(min_value=0, max_value=40), max_size=8),
)
def test_appending_in_any_batches_stores_every_complete_subtree_once(
    n: int, batches: list[int]
) -> None:
    leaves = leaves_for(n)
    table = table_of(leaves, [b for b in batches if b <= n])
    assert table.size == n
    # Exactly the complete subtrees of the tree of size n, each with its RFC 9162 hash.
    expected = {
        Node(level, index) for level in range(n.bit_length()) for index in range(n >> level)
    }
    assert set(table.nodes) == expected
    for node, value in table.nodes.items():
        assert value == ref_mth(leaves[node.start : node.end])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=10))
def test_append_returns_the_root_of_every_size_it_reaches(batches: list[int]) -> None:
    leaves = leaves_for(sum(batches))
    table = NodeTable()
    for count in batches:
        root = table.append(leaves[table.size : table.size + count])
        assert root == ref_mth(leaves[: table.size])
        assert tree_root(table.size, table.read) == root


def test_append_reads_only_the_frontier_once() -> None:
    table = table_of(leaves_for(1000))
    table.calls.clear()
    table.append(leaves_for(5, salt=b"more"))
    assert table.calls == [frontier(1000)]
    assert len(frontier(1000)) == bin(1000).count("1")


def test_append_to_an_empty_tree_reads_nothing() -> None:
    table = NodeTable()
    assert table.append([]) == empty_root()
    table.append(leaves_for(3))
    assert table.calls == []


def test_append_refuses_what_is_not_a_leaf_hash() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        append_leaves(0, [b"short"], NodeTable().read)


# ---------------------------------------------------------------------------------------------
# Inclusion proofs
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_proof_is_rfc_path(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=300), label="size")
    grown_to = data.draw(st.integers(min_value=n, max_value=n + 40), label="stored size")
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    leaves = leaves_for(grown_to)
    # The table has grown past n: a proof at an older size comes from the same nodes.
    table = table_of(leaves, [n])
    table.calls.clear()
    proof = inclusion_proof(index, n, table.read)
    assert proof == ref_path(index, leaves[:n])
    wanted = inclusion_proof_nodes(index, n)
    assert table.calls == ([wanted] if wanted else [])  # one query, none for a lone leaf
    assert verify_inclusion(leaves[index], index, n, proof, ref_mth(leaves[:n]))


@given(st.integers(min_value=1, max_value=2**48), st.data())
def test_inclusion_proof_reads_at_most_two_nodes_per_level(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    nodes = inclusion_proof_nodes(index, size)
    depth = (size - 1).bit_length()
    assert len(nodes) <= 2 * depth
    assert len(set(nodes)) == len(nodes)
    assert all(node.end <= size for node in nodes)


def test_inclusion_proof_index_out_of_range() -> None:
    with pytest.raises(IndexError):
        inclusion_proof_nodes(5, 5)
    with pytest.raises(IndexError):
        inclusion_proof_nodes(0, 0)


# ---------------------------------------------------------------------------------------------
# Consistency proofs
# ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_proof_is_rfc_proof(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=1, max_value=300), label="new size")
    old = data.draw(st.integers(min_value=1, max_value=new), label="old size")
    leaves = leaves_for(new + 7)
    table = table_of(leaves, [old, new - old])
    table.calls.clear()
    proof = consistency_proof(old, new, table.read)
    expected = ref_proof(old, leaves[:new]) if old < new else []
    assert proof == expected
    assert table.calls == ([consistency_proof_nodes(old, new)] if proof else [])
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves[:new])
    assert verify_consistency(old, new, old_root, new_root, proof)


@given(st.integers(min_value=2, max_value=2**48), st.data())
def test_consistency_proof_reads_logarithmically_many_nodes(new: int, data: st.DataObject) -> None:
    old = data.draw(st.integers(min_value=1, max_value=new - 1))
    nodes = consistency_proof_nodes(old, new)
    assert len(nodes) <= 2 * (new - 1).bit_length()
    assert all(node.end <= new for node in nodes)


def _tamperings(proof: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 1]) + wrong[i][1:]
        out.append(wrong)
    out.append(proof[:-1])
    out.append([*proof, proof[-1]])
    out.append([hashlib.sha256(b"x").digest(), *proof])
    return out


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_consistency_rejects_every_tampering(data: st.DataObject) -> None:
    new = data.draw(st.integers(min_value=2, max_value=200), label="new size")
    old = data.draw(st.integers(min_value=1, max_value=new - 1), label="old size")
    leaves = leaves_for(new)
    proof = ref_proof(old, leaves)
    old_root, new_root = ref_mth(leaves[:old]), ref_mth(leaves)
    for wrong in _tamperings(proof):
        assert not verify_consistency(old, new, old_root, new_root, wrong), wrong
    other = ref_mth(leaves_for(new, salt=b"fork"))
    assert not verify_consistency(old, new, old_root, other, proof)
    assert not verify_consistency(old, new, other, new_root, proof)


def test_consistency_edge_cases() -> None:
    leaves = leaves_for(9)
    root = ref_mth(leaves)
    empty = empty_root()
    assert consistency_proof(0, 9, NodeTable().read) == []
    assert consistency_proof(9, 9, NodeTable().read) == []
    # From the empty tree: always consistent, with an empty proof and the empty root.
    assert verify_consistency(0, 9, empty, root, [])
    assert not verify_consistency(0, 9, empty, root, [root])
    assert not verify_consistency(0, 9, root, root, [])
    # Equal sizes: equal roots and an empty proof.
    assert verify_consistency(9, 9, root, root, [])
    assert not verify_consistency(9, 9, root, empty, [])
    assert not verify_consistency(9, 9, root, root, [root])
    # A tree never shrinks, and hashes are 32 bytes.
    assert not verify_consistency(9, 8, root, root, [])
    assert not verify_consistency(1, 2, leaves[0], root[:31], [leaves[1]])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(9, 8, NodeTable().read)


# ---------------------------------------------------------------------------------------------
# Roots and the reader contract
# ---------------------------------------------------------------------------------------------


def test_tree_root_at_every_older_size_from_one_table() -> None:
    leaves = leaves_for(130)
    table = table_of(leaves)
    for n in range(0, 131):
        assert tree_root(n, table.read) == ref_mth(leaves[:n]) == merkle_root(leaves[:n])


def test_fold_subtree_matches_the_recursion() -> None:
    leaves = leaves_for(13)
    table = table_of(leaves)
    for start, end in [(0, 13), (8, 13), (12, 13), (0, 8)]:
        hashes = table.read(subtree_nodes(start, end))
        assert fold_subtree(hashes) == ref_mth(leaves[start:end])


def test_a_reader_that_answers_wrong_is_refused() -> None:
    table = table_of(leaves_for(10))
    with pytest.raises(ValueError, match="returned 1 hashes for 2 nodes"):
        tree_root(10, lambda nodes: [b"\x00" * 32])
    with pytest.raises(ValueError, match="no 32-byte hash"):
        inclusion_proof(3, 10, lambda nodes: [b"short"] * len(nodes))
    assert inclusion_proof(3, 10, table.read) == ref_path(3, leaves_for(10))
