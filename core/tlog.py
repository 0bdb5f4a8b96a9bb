"""One growing RFC 9162 tree per log, stored as the hashes of its complete subtrees.

PROTOCOL §8: a log's tree of size N is the RFC 9162 §2.1.1 Merkle Tree Hash over its first N
entries, and a store must serve inclusion proofs (§2.1.3) of any entry and consistency proofs
(§2.1.4) between any two sizes in O(log n) reads, while appending stays cheap. ``core.merkle``
builds whole trees in memory; this module works from stored nodes instead.

Node addressing
    A :class:`Node` ``(level, index)`` is the complete (perfect) subtree of ``2**level`` leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Level 0 nodes are the leaf hashes. Such a
    node never changes once all its leaves exist, so a store keeps one row per node, keyed by
    ``(level, index)``, written once. A tree of n leaves has ``2n - popcount(n)`` of them.

    Every hash a proof or a root needs is the RFC 9162 hash of some subtree ``D[lo:hi]`` of the
    recursion (its size need not be a power of two). Such a subtree is the concatenation of at
    most log2(n) complete subtrees, one per set bit of ``hi - lo``, largest first; its hash
    folds their hashes from the right (:func:`subtree_nodes`, :func:`fold_subtree`). So every
    proof is a function of O(log n) stored nodes.

What a store calls
    * on append: :func:`append_leaves` with the hashes of :func:`frontier` of the current size
      (at most log2(n) nodes, one read); it returns the nodes to insert (two per leaf,
      amortised: the leaf and, on average, one parent) and the new root.
    * for a proof or a root: :func:`inclusion_proof_nodes`, :func:`consistency_proof_nodes`
      or :func:`frontier` name every node needed, so the store fetches them in one query;
      :func:`inclusion_proof`, :func:`consistency_proof` and :func:`tree_root` take a
      :data:`HashReader` and call it exactly once with that same list.

Proofs come out in RFC 9162 order (the sibling nearest the leaf first) and are the same bytes
as ``core.merkle.inclusion_path`` and as any RFC 6962 / RFC 9162 implementation; inclusion
proofs are checked with ``core.merkle.verify_inclusion``, consistency proofs with
:func:`verify_consistency` here (§2.1.4.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from core.merkle import HASH_SIZE, InvalidProof, empty_root, node_hash

__all__ = [
    "Appended",
    "Frontier",
    "HashReader",
    "InvalidProof",
    "Node",
    "append_leaves",
    "consistency_proof",
    "consistency_proof_nodes",
    "fold_subtree",
    "frontier",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "stored_node_count",
    "subtree_nodes",
    "tree_root",
    "verify_consistency",
]


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """The complete subtree of ``2**level`` leaves starting at leaf ``index * 2**level``."""

    level: int
    index: int

    @property
    def start(self) -> int:
        """The first leaf the node covers."""
        return self.index << self.level

    @property
    def end(self) -> int:
        """One past the last leaf the node covers."""
        return (self.index + 1) << self.level


HashReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Given nodes, returns their stored hashes in the same order (one query against a node table).

A dictionary serves as one: ``lambda nodes: [table[n] for n in nodes]``.
"""


@dataclass(frozen=True, slots=True)
class Appended:
    """What appending leaves gives: the new size and root, and the nodes to store.

    ``nodes`` holds every complete subtree that the new leaves complete, each exactly once, in
    the order they were completed (a leaf, then the parents it completes). Nothing stored
    before changes.
    """

    size: int
    root: bytes
    nodes: tuple[tuple[Node, bytes], ...]


def _split(size: int) -> int:
    """RFC 9162 §2.1.1's k: the largest power of two smaller than ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def _check_subtree(start: int, end: int) -> None:
    if not 0 <= start < end:
        raise ValueError(f"[{start}, {end}) is not a non-empty range of leaves")
    width = 1 << (end - start - 1).bit_length()  # the power of two the recursion rounds up to
    if start % width:
        raise ValueError(f"[{start}, {end}) is not a subtree of the RFC 9162 recursion")


def subtree_nodes(start: int, end: int) -> list[Node]:
    """The complete subtrees that make up ``D[start:end]``, left to right, largest first.

    ``[start, end)`` must be a subtree the RFC 9162 recursion can reach: ``start`` a multiple of
    the smallest power of two ≥ ``end - start`` (as ``[0, n)`` and every proof's subtrees are).
    There is one node per set bit of ``end - start``. Raises ValueError otherwise.
    """
    _check_subtree(start, end)
    nodes: list[Node] = []
    position = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            nodes.append(Node(level, position >> level))
            position += 1 << level
    return nodes


def fold_subtree(hashes: Sequence[bytes]) -> bytes:
    """The RFC 9162 hash of a subtree from the hashes of its :func:`subtree_nodes`.

    MTH splits at the largest power of two, which is the first complete subtree, so the hash is
    ``node_hash(h0, node_hash(h1, … node_hash(h[-2], h[-1])))``.
    """
    if not hashes:
        raise ValueError("a subtree has at least one node")
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def frontier(size: int) -> list[Node]:
    """The complete subtrees that make up the whole tree of ``size`` leaves, largest first.

    Their hashes give the root (:func:`tree_root`) and are all :func:`append_leaves` needs to
    carry on; at most log2(size) + 1 nodes, none for the empty tree.
    """
    if size < 0:
        raise ValueError(f"a tree size is not negative, got {size}")
    return subtree_nodes(0, size) if size else []


def stored_node_count(size: int) -> int:
    """How many complete subtrees a tree of ``size`` leaves has: ``2·size − popcount(size)``."""
    if size < 0:
        raise ValueError(f"a tree size is not negative, got {size}")
    return 2 * size - size.bit_count()


def _read(read: HashReader, nodes: Sequence[Node]) -> list[bytes]:
    """Call the reader once and check that it answered one 32-byte hash per node."""
    if not nodes:
        return []
    hashes = list(read(nodes))
    if len(hashes) != len(nodes):
        raise ValueError(f"the hash reader returned {len(hashes)} hashes for {len(nodes)} nodes")
    for node, value in zip(nodes, hashes, strict=True):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ValueError(f"the hash reader returned no 32-byte hash for {node}")
    return hashes


def _hashes_of_ranges(ranges: Sequence[tuple[int, int]], read: HashReader) -> list[bytes]:
    """One read for every node of every range, then one hash per range."""
    per_range = [subtree_nodes(lo, hi) for lo, hi in ranges]
    hashes = _read(read, [node for nodes in per_range for node in nodes])
    out: list[bytes] = []
    at = 0
    for nodes in per_range:
        out.append(fold_subtree(hashes[at : at + len(nodes)]))
        at += len(nodes)
    return out


def tree_root(size: int, read: HashReader) -> bytes:
    """RFC 9162 §2.1.1 MTH of the first ``size`` leaves, from the nodes of :func:`frontier`.

    The empty tree's root is SHA-256 of nothing (no read).
    """
    nodes = frontier(size)
    if not nodes:
        return empty_root()
    return fold_subtree(_read(read, nodes))


# ---------------------------------------------------------------------------------------------
# Appending
# ---------------------------------------------------------------------------------------------


def append_leaves(size: int, leaf_hashes: Sequence[bytes], read: HashReader) -> Appended:
    """Append leaves to the tree of ``size`` leaves: the new root and the nodes to store.

    ``read`` is called once, for the :func:`frontier` of ``size`` (not at all when the tree is
    empty). Each new leaf is stored as a level 0 node; whenever a node completes its parent
    (it is a right child), the parent is computed and stored too. The work is O(log n) reads
    and two node writes per leaf, amortised.
    """
    if size < 0:
        raise ValueError(f"a tree size is not negative, got {size}")
    for leaf in leaf_hashes:
        if not isinstance(leaf, bytes) or len(leaf) != HASH_SIZE:
            raise ValueError("every leaf hash must be 32 bytes")
    start_nodes = frontier(size)
    # The right edge of the tree: complete subtrees, strictly decreasing in level.
    edge = list(zip(start_nodes, _read(read, start_nodes), strict=True))
    new: list[tuple[Node, bytes]] = []
    for offset, leaf in enumerate(leaf_hashes):
        node, value = Node(0, size + offset), leaf
        new.append((node, value))
        while edge and edge[-1][0].level == node.level:
            left, left_value = edge.pop()
            node, value = Node(node.level + 1, left.index >> 1), node_hash(left_value, value)
            new.append((node, value))
        edge.append((node, value))
    new_size = size + len(leaf_hashes)
    root = fold_subtree([value for _, value in edge]) if edge else empty_root()
    return Appended(size=new_size, root=root, nodes=tuple(new))


# ---------------------------------------------------------------------------------------------
# Inclusion proofs, RFC 9162 §2.1.3.1
# ---------------------------------------------------------------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes make PATH(index, D[size]), nearest the leaf first.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) when m < k, else
    PATH(m - k, D[k:n]) : MTH(D[0:k]); the recursion appends the hash nearest the root last.
    """
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def inclusion_proof_nodes(index: int, size: int) -> list[Node]:
    """Every stored node :func:`inclusion_proof` reads for leaf ``index`` in a tree of ``size``.

    At most 2·log2(size) nodes: the siblings on the path, complete but for the one subtree at
    the tree's right edge, which comes in at most log2(size) pieces.
    """
    return [node for lo, hi in _inclusion_ranges(index, size) for node in subtree_nodes(lo, hi)]


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]) from stored nodes, nearest sibling first.

    ``read`` is called once, with :func:`inclusion_proof_nodes` ``(index, size)``. The proof
    verifies with ``core.merkle.verify_inclusion`` against the root of size ``size``.
    """
    return _hashes_of_ranges(_inclusion_ranges(index, size), read)


# ---------------------------------------------------------------------------------------------
# Consistency proofs, RFC 9162 §2.1.4
# ---------------------------------------------------------------------------------------------


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes make PROOF(old_size, D[new_size]), in proof order.

    SUBPROOF(m, D[n], b): when m = n, nothing if b else MTH(D[n]); otherwise, with k the
    largest power of two below n, SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) when m ≤ k, else
    SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k]). PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []  # the empty tree, and a tree itself, are consistent with it: nothing to prove
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, new_size
    whole_old_tree = True  # b: D[lo:hi] still starts the old tree, whose root the verifier has
    while old_size != hi:
        k = _split(hi - lo)
        if old_size <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def consistency_proof_nodes(old_size: int, new_size: int) -> list[Node]:
    """Every stored node :func:`consistency_proof` reads between these two sizes.

    At most 2·log2(new_size) nodes; none when ``old_size`` is 0 or equals ``new_size``.
    """
    return [
        node for lo, hi in _consistency_ranges(old_size, new_size) for node in subtree_nodes(lo, hi)
    ]


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(old_size, D[new_size]) from stored nodes.

    ``read`` is called once, with :func:`consistency_proof_nodes` ``(old_size, new_size)``.
    The proof is empty when ``old_size`` is 0 (the empty tree is consistent with every tree,
    as C2SP tlog-witness requires) or equals ``new_size``. Raises ValueError when
    ``old_size`` is negative or larger than ``new_size``.
    """
    return _hashes_of_ranges(_consistency_ranges(old_size, new_size), read)


def _consistency_roots(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2: the old and new roots a consistency proof implies (0 < old < new).

    Raises InvalidProof when the proof has the wrong number of hashes for these sizes.
    """
    path = list(proof)
    if not path:
        raise InvalidProof("a consistency proof between two different sizes is never empty")
    # 2. When the old tree is a complete subtree its root is the first hash of the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.–4. Walk from the last leaf of the old tree; skip the levels where it is a right
    # child, which the old root already covers.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.–6. fr rebuilds the old root, sr the new one.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise InvalidProof("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # 7. sn must have reached the root.
    if sn != 0:
        raise InvalidProof("the consistency proof is shorter than the tree is deep")
    return fr, sr


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True when ``proof`` shows the tree of ``new_size`` leaves extends the one of ``old_size``.

    RFC 9162 §2.1.4.2 for 0 < old_size < new_size. The cases the RFC leaves to the caller:
    equal sizes are consistent when the proof is empty and the roots are equal; size 0 (whose
    root must be the empty tree's, SHA-256 of nothing) is consistent with any tree when the
    proof is empty (C2SP tlog-witness). A shrinking tree, a hash that is not 32 bytes or a
    proof of the wrong length is not consistent.
    """
    hashes = [old_root, new_root, *proof]
    if any(not isinstance(h, bytes) or len(h) != HASH_SIZE for h in hashes):
        return False
    if not 0 <= old_size <= new_size:
        return False
    if old_size == 0:
        return not proof and old_root == empty_root()
    if old_size == new_size:
        return not proof and old_root == new_root
    try:
        old, new = _consistency_roots(old_size, new_size, old_root, proof)
    except InvalidProof:
        return False
    return old == old_root and new == new_root


# ---------------------------------------------------------------------------------------------
# Recomputing a log in order
# ---------------------------------------------------------------------------------------------


class Frontier:
    """The right edge of a log's tree of ``size`` entries: the hashes of
    ``core.frontier(size)``, largest first, each with its level."""

    __slots__ = ("_edge", "size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        nodes = frontier(size)
        if len(hashes) != len(nodes):
            raise ValueError(
                f"a tree of {size} entries has {len(nodes)} complete subtree(s), not {len(hashes)}"
            )
        self.size = size
        self._edge: list[tuple[int, bytes]] = [
            (node.level, value) for node, value in zip(nodes, hashes, strict=True)
        ]

    @classmethod
    def stored(cls, size: int, concatenated: bytes) -> Frontier | None:
        """The frontier a store keeps as its hashes concatenated; None when it cannot be one."""
        if len(concatenated) % HASH_SIZE:
            return None
        hashes = [concatenated[i : i + HASH_SIZE] for i in range(0, len(concatenated), HASH_SIZE)]
        try:
            return cls(size, hashes)
        except ValueError:
            return None

    @property
    def hashes(self) -> list[bytes]:
        return [value for _level, value in self._edge]

    def copy(self) -> Frontier:
        twin = Frontier.__new__(Frontier)
        twin.size = self.size
        twin._edge = list(self._edge)
        return twin

    def append(self, leaf: bytes) -> None:
        """Append one entry by its leaf hash (RFC 9162 §2.1.1: it completes its parents)."""
        edge = self._edge
        level, value = 0, leaf
        sha256 = hashlib.sha256  # node_hash, inlined: this runs once per entry of a log
        while edge and edge[-1][0] == level:
            left = edge.pop()[1]
            value = sha256(b"\x01" + left + value).digest()
            level += 1
        edge.append((level, value))
        self.size += 1

    def extended(self, leaves: Iterable[bytes]) -> Frontier:
        """A copy with ``leaves`` appended."""
        twin = self.copy()
        for leaf in leaves:
            twin.append(leaf)
        return twin

    def root(self) -> bytes:
        """The root of the tree of ``size`` entries (the empty tree's when there are none)."""
        return fold_subtree(self.hashes) if self._edge else empty_root()
