"""RFC 9162 (RFC 6962) Merkle trees: published vectors, and properties against the spec text."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.merkle import (
    InvalidProof,
    all_inclusion_paths,
    empty_root,
    inclusion_path,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion_path,
    tree_levels,
    verify_inclusion,
)

# ---------------------------------------------------------------------------------------------
# Published test vectors.
#
# Leaves, roots and complete-subtree hashes: transparency-dev/merkle, testonly/constants.go
#   (LeafInputs, RootHashes, NodeHashes)
#   https://github.com/transparency-dev/merkle/blob/main/testonly/constants.go
# Inclusion proofs and the corruptions that must fail: transparency-dev/merkle,
#   proof/verify_test.go (inclusionProofs, corruptInclusionProof; its leaf numbers are 1-based)
#   https://github.com/transparency-dev/merkle/blob/main/proof/verify_test.go
# These are the Certificate Transparency reference vectors (RFC 6962 hashing, SHA-256), carried
# over from the certificate-transparency C++/Go code bases into Trillian and transparency-dev.
# ---------------------------------------------------------------------------------------------

LEAF_INPUTS = [
    bytes.fromhex(h)
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

# MTH(D[n]) for n = 0 .. 8.
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# Every complete subtree of the 8-leaf tree, level by level, leaf hashes first.
NODE_HASHES = [
    [
        bytes.fromhex(h)
        for h in (
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        )
    ],
    [
        bytes.fromhex(h)
        for h in (
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        )
    ],
    [
        bytes.fromhex(h)
        for h in (
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        )
    ],
    [bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# (0-based leaf index, tree size, published path).
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")

VECTOR_LEAVES = [leaf_hash(entry) for entry in LEAF_INPUTS]


def test_empty_tree_is_sha256_of_nothing() -> None:
    assert merkle_root([]) == empty_root() == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_published_root_of_every_prefix(size: int) -> None:
    assert merkle_root(VECTOR_LEAVES[:size]) == ROOTS[size]


def test_published_leaf_and_node_hashes() -> None:
    assert NODE_HASHES[0] == VECTOR_LEAVES
    assert tree_levels(VECTOR_LEAVES) == NODE_HASHES
    assert node_hash(NODE_HASHES[0][0], NODE_HASHES[0][1]) == NODE_HASHES[1][0]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_published_inclusion_proofs(index: int, size: int, path: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in path]
    leaves = VECTOR_LEAVES[:size]
    assert inclusion_path(leaves, index) == expected
    assert all_inclusion_paths(leaves)[1][index] == expected
    assert root_from_inclusion_path(leaves[index], index, size, expected) == ROOTS[size]
    assert verify_inclusion(leaves[index], index, size, expected, ROOTS[size])


def _corruptions(
    index: int, size: int, path: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    """The probes of corruptInclusionProof in transparency-dev/merkle proof/verify_test.go."""
    probes = [
        ("index - 1", index - 1, size, path, root, leaf),
        ("index + 1", index + 1, size, path, root, leaf),
        ("index ^ 2", index ^ 2, size, path, root, leaf),
        ("size * 2", index, size * 2, path, root, leaf),
        ("size // 2", index, size // 2, path, root, leaf),
        ("wrong leaf", index, size, path, root, b"WrongLeaf"),
        ("empty root", index, size, path, ROOTS[0], leaf),
        ("random root", index, size, path, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*path, b""], root, leaf),
        ("trailing root", index, size, [*path, root], root, leaf),
        ("preceding garbage", index, size, [b"", *path], root, leaf),
        ("preceding root", index, size, [root, *path], root, leaf),
    ]
    for i in range(len(path)):
        wrong = list(path)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((f"proof[{i}] bit 3", index, size, wrong, root, leaf))
    if path:
        probes.append(("removed component", index, size, path[:-1], root, leaf))
    if len(path) > 1:
        probes.append(
            ("inserted component", index, size, [path[0], SOME_HASH, *path[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_PROOFS)
def test_published_inclusion_proofs_reject_corruptions(
    index: int, size: int, path: list[str]
) -> None:
    good = [bytes.fromhex(h) for h in path]
    probes = _corruptions(index, size, good, ROOTS[size], VECTOR_LEAVES[index])
    accepted = [
        desc
        for desc, wrong_index, wrong_size, wrong_path, wrong_root, wrong_leaf in probes
        if verify_inclusion(wrong_leaf, wrong_index, wrong_size, wrong_path, wrong_root)
    ]
    assert accepted == []


# ---------------------------------------------------------------------------------------------
# The spec, literally: RFC 9162 §2.1.1 MTH and §2.1.3.1 PATH, recursive, over the entries.
# ---------------------------------------------------------------------------------------------


def spec_split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def spec_mth(d: list[bytes]) -> bytes:
    n = len(d)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = spec_split(n)
    return hashlib.sha256(b"\x01" + spec_mth(d[:k]) + spec_mth(d[k:])).digest()


def spec_path(m: int, d: list[bytes]) -> list[bytes]:
    n = len(d)
    if n == 1:
        return []
    k = spec_split(n)
    if m < k:
        return [*spec_path(m, d[:k]), spec_mth(d[k:])]
    return [*spec_path(m - k, d[k:]), spec_mth(d[:k])]


def entries(seed: int, n: int) -> list[bytes]:
    return [seed.to_bytes(4, "big") + i.to_bytes(2, "big") for i in range(n)]


def test_spec_functions_reproduce_the_published_vectors() -> None:
    """Checks the checker: the literal spec code agrees with the published values."""
    for size in range(9):
        assert spec_mth(LEAF_INPUTS[:size]) == ROOTS[size]
    for index, size, path in INCLUSION_PROOFS:
        assert spec_path(index, LEAF_INPUTS[:size]) == [bytes.fromhex(h) for h in path]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 300), data=st.data())
def test_root_and_path_agree_with_the_spec(seed: int, size: int, data: st.DataObject) -> None:
    d = entries(seed, size)
    leaves = [leaf_hash(e) for e in d]
    root = merkle_root(leaves)
    assert root == spec_mth(d)
    index = data.draw(st.integers(0, size - 1), label="index")
    path = inclusion_path(leaves, index)
    assert path == spec_path(index, d)
    assert root_from_inclusion_path(leaves[index], index, size, path) == root


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 70))
def test_every_proof_of_a_tree_agrees_with_the_spec_and_verifies(seed: int, size: int) -> None:
    d = entries(seed, size)
    leaves = [leaf_hash(e) for e in d]
    root, paths = all_inclusion_paths(leaves)
    assert root == spec_mth(d)
    for index, path in enumerate(paths):
        assert path == spec_path(index, d)
        assert verify_inclusion(leaves[index], index, size, path, root)


def _flip_bit(value: bytes, bit: int) -> bytes:
    buf = bytearray(value)
    buf[bit // 8] ^= 1 << (bit % 8)
    return bytes(buf)


@st.composite
def proven_leaves(draw: st.DrawFn, max_size: int = 300) -> tuple[list[bytes], int, list[bytes]]:
    """A tree's leaf hashes, one index in it, and that index's path."""
    size = draw(st.integers(1, max_size), label="size")
    leaves = [leaf_hash(e) for e in entries(draw(st.integers(0, 2**32 - 1)), size)]
    index = draw(st.integers(0, size - 1), label="index")
    return leaves, index, inclusion_path(leaves, index)


@settings(max_examples=80, deadline=None)
@given(proof=proven_leaves(), bit=st.integers(0, 255), data=st.data())
def test_any_flipped_bit_fails(
    proof: tuple[list[bytes], int, list[bytes]], bit: int, data: st.DataObject
) -> None:
    leaves, index, path = proof
    size, leaf, root = len(leaves), leaves[index], merkle_root(leaves)
    assert not verify_inclusion(_flip_bit(leaf, bit), index, size, path, root)
    assert not verify_inclusion(leaf, index, size, path, _flip_bit(root, bit))
    if path:
        i = data.draw(st.integers(0, len(path) - 1), label="path element")
        tampered = [*path[:i], _flip_bit(path[i], bit), *path[i + 1 :]]
        assert not verify_inclusion(leaf, index, size, tampered, root)


@settings(max_examples=80, deadline=None)
@given(proof=proven_leaves(), data=st.data())
def test_a_wrong_index_fails(
    proof: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    leaves, index, path = proof
    size = len(leaves)
    other = data.draw(st.integers(-2, size + 2).filter(lambda i: i != index), label="other index")
    assert not verify_inclusion(leaves[index], other, size, path, merkle_root(leaves))


@settings(max_examples=80, deadline=None)
@given(proof=proven_leaves(), data=st.data())
def test_a_path_never_proves_the_leaf_in_a_tree_of_another_size(
    proof: tuple[list[bytes], int, list[bytes]], data: st.DataObject
) -> None:
    leaves, index, path = proof
    size = len(leaves)
    other = data.draw(st.integers(0, 310).filter(lambda n: n != size), label="other size")
    extended = leaves + [leaf_hash(b"more %d" % i) for i in range(max(0, other - size))]
    assert not verify_inclusion(leaves[index], index, other, path, merkle_root(extended[:other]))


def test_the_size_is_bound_by_the_root_not_by_the_path() -> None:
    """Why PROTOCOL §5 step 4 compares the size on chain, not only the root.

    Leaf 4's path in an 8-leaf tree walks the same way in a 7-leaf tree, so it recomputes the
    8-leaf root for either claimed size; likewise leaf 2 of 3 and leaf 1 of 2. Only the
    (root, size) pair anchored together pins the tree and with it the leaf's position.
    """
    leaves = VECTOR_LEAVES
    assert verify_inclusion(leaves[4], 4, 7, inclusion_path(leaves, 4), ROOTS[8])
    assert verify_inclusion(leaves[2], 1, 2, inclusion_path(leaves[:3], 2), ROOTS[3])


@settings(max_examples=80, deadline=None)
@given(proof=proven_leaves(), extra=st.binary(min_size=32, max_size=32), front=st.booleans())
def test_a_truncated_or_extended_path_fails(
    proof: tuple[list[bytes], int, list[bytes]], extra: bytes, front: bool
) -> None:
    leaves, index, path = proof
    size, root = len(leaves), merkle_root(leaves)
    longer = [extra, *path] if front else [*path, extra]
    assert not verify_inclusion(leaves[index], index, size, longer, root)
    if path:
        shorter = path[1:] if front else path[:-1]
        assert not verify_inclusion(leaves[index], index, size, shorter, root)


@pytest.mark.parametrize(
    ("index", "size", "path", "message"),
    [
        (0, 0, [], "index 0 is outside a tree of size 0"),
        (3, 3, [SOME_HASH], "index 3 is outside a tree of size 3"),
        (-1, 3, [SOME_HASH], "index -1 is outside"),
        (0, 2, [SOME_HASH[:31]], "every hash must be 32 bytes"),
        (0, 2, [SOME_HASH, SOME_HASH], "longer than the tree is deep"),
        (0, 3, [SOME_HASH], "shorter than the tree is deep"),
    ],
)
def test_root_from_inclusion_path_names_the_shape_error(
    index: int, size: int, path: list[bytes], message: str
) -> None:
    with pytest.raises(InvalidProof, match=message):
        root_from_inclusion_path(VECTOR_LEAVES[0], index, size, path)


def test_a_short_leaf_hash_is_refused() -> None:
    with pytest.raises(InvalidProof, match="32 bytes"):
        root_from_inclusion_path(b"\x00" * 31, 0, 1, [])


def test_out_of_range_index_and_empty_tree_are_refused() -> None:
    with pytest.raises(IndexError, match="leaf index 8 is outside a tree of size 8"):
        inclusion_path(VECTOR_LEAVES, 8)
    with pytest.raises(ValueError, match="at least one leaf"):
        tree_levels([])
