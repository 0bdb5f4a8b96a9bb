"""The verify page's step-by-step Merkle path agrees with the ledger's own tree and proofs."""

from __future__ import annotations

import hashlib

from api.portal.proof import path_steps
from core.merkle import inclusion_path, leaf_hash, merkle_root


def test_every_leaf_of_trees_up_to_33_walks_to_the_root() -> None:
    for size in range(1, 34):
        leaves = [leaf_hash(hashlib.sha256(bytes([size, i])).digest()) for i in range(size)]
        root = merkle_root(leaves)
        for index in range(size):
            path = inclusion_path(leaves, index)
            steps = path_steps(leaves[index], index, size, path)
            assert steps is not None and len(steps) == len(path)
            assert (steps[-1].result if steps else leaves[index].hex()) == root.hex()
            assert [s.sibling for s in steps] == [p.hex() for p in path]


def test_a_path_that_does_not_fit_gives_no_steps() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    path = inclusion_path(leaves, 2)
    assert path_steps(leaves[2], 2, 5, path[:-1]) is None  # too short
    assert path_steps(leaves[2], 2, 5, [*path, path[0]]) is None  # too long
    assert path_steps(leaves[2], 5, 5, path) is None  # index outside the tree
    assert path_steps(leaves[2], 2, 5, [b"short"]) is None
