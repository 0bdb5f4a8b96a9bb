"""RFC 9162 (RFC 6962) Merkle trees over record hashes. Standard library only.

* leaf hash  = SHA-256(0x00 || entry)                      RFC 9162 §2.1.1
* node hash  = SHA-256(0x01 || left || right)              RFC 9162 §2.1.1
* tree hash  = MTH(D[n]) with the split at the largest power of two smaller than n
* inclusion path: RFC 9162 §2.1.3.1, nearest sibling first; verified by §2.1.3.2

The tree is built level by level, carrying a lone last node up unchanged. That gives the
same hashes as the recursive definition of §2.1.1 (the split point k is exactly where a
left-filled binary tree puts its largest complete left subtree), and lets us produce every
inclusion path of a batch from one pass in O(n) hashing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
# What the registry answers for a batch it never anchored (PROTOCOL §3: batchOf of an empty slot).
ZERO_ROOT = bytes(HASH_SIZE)
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class InvalidProof(ValueError):
    """An inclusion proof whose shape does not fit its index and tree size."""


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1 hash of one leaf: SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """MTH of the empty list: SHA-256 of the empty string."""
    return hashlib.sha256(b"").digest()


def tree_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first, root level (one hash) last.

    A level of odd length passes its last node up unchanged, which is what the
    largest-power-of-two split of RFC 9162 §2.1.1 amounts to.
    """
    if not leaf_hashes:
        raise ValueError("a Merkle tree needs at least one leaf")
    sha256 = hashlib.sha256
    level = list(leaf_hashes)
    levels = [level]
    while len(level) > 1:
        paired = len(level) & ~1
        nxt = [sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, paired, 2)]
        if paired != len(level):
            nxt.append(level[-1])
        levels.append(nxt)
        level = nxt
    return levels


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash of a list given by its leaf hashes."""
    if not leaf_hashes:
        return empty_root()
    return tree_levels(leaf_hashes)[-1][0]


def path_from_levels(levels: Sequence[Sequence[bytes]], index: int) -> list[bytes]:
    """Inclusion path of leaf ``index`` read off prebuilt levels (see ``tree_levels``)."""
    size = len(levels[0])
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    i = index
    for level in levels[:-1]:
        sibling = i ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        i >>= 1
    return path


def inclusion_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 inclusion proof PATH(index, D[n]), nearest sibling first."""
    return path_from_levels(tree_levels(leaf_hashes), index)


def all_inclusion_paths(leaf_hashes: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and the inclusion path of every leaf, from one build of the tree."""
    levels = tree_levels(leaf_hashes)
    return levels[-1][0], [path_from_levels(levels, i) for i in range(len(leaf_hashes))]


def inclusion_steps(
    leaf: bytes, index: int, size: int, path: Sequence[bytes]
) -> list[tuple[bool, bytes]]:
    """Walk an inclusion path from a leaf hash to the root (RFC 9162 §2.1.3.2), one step per
    path hash: whether that hash joins on the left, and the node hash the step gives. The last
    node is the root (the leaf itself when the path is empty).

    Raises InvalidProof when the path cannot belong to a leaf at ``index`` in a tree of
    ``size`` leaves (wrong length, index out of range, malformed hashes).
    """
    if not 0 <= index < size:
        raise InvalidProof(f"index {index} is outside a tree of size {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in path):
        raise InvalidProof("every hash must be 32 bytes")
    fn, sn = index, size - 1
    r = leaf
    steps: list[tuple[bool, bytes]] = []
    for p in path:
        if sn == 0:
            raise InvalidProof("the path is longer than the tree is deep")
        on_left = bool(fn & 1 or fn == sn)
        if on_left:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
        steps.append((on_left, r))
    if sn != 0:
        raise InvalidProof("the path is shorter than the tree is deep")
    return steps


def root_from_inclusion_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute a root from a leaf hash and its inclusion path (RFC 9162 §2.1.3.2).

    Raises InvalidProof when the path cannot belong to a leaf at ``index`` in a tree of
    ``size`` leaves (wrong length, index out of range, malformed hashes).
    """
    steps = inclusion_steps(leaf, index, size, path)
    return steps[-1][1] if steps else leaf


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """True when ``path`` proves ``leaf`` at ``index`` of a ``size``-leaf tree with ``root``."""
    try:
        return root_from_inclusion_path(leaf, index, size, path) == root
    except InvalidProof:
        return False
