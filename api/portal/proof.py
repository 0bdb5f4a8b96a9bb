"""The Merkle path of a receipt, step by step, for people to follow on the verify page.

The same walk as ``ledger.merkle.root_from_inclusion_path`` (RFC 9162 §2.1.3.2), keeping each
step: which side the path hash joins on and the node hash it gives. The verdict itself comes
from the verifier library; this only explains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger.merkle import node_hash


@dataclass(frozen=True)
class PathStep:
    level: int
    sibling: str  # hex
    side: str  # "left": the sibling is hashed to the left of the running hash
    result: str  # hex of the node hash after this step


def path_steps(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> list[PathStep] | None:
    """Each step from ``leaf`` to the root; None when the path cannot fit (index, size)."""
    if not 0 <= index < size or len(leaf) != 32 or any(len(p) != 32 for p in path):
        return None
    fn, sn = index, size - 1
    running = leaf
    steps: list[PathStep] = []
    for level, sibling in enumerate(path, start=1):
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            running = node_hash(sibling, running)
            side = "left"
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            running = node_hash(running, sibling)
            side = "right"
        fn >>= 1
        sn >>= 1
        steps.append(PathStep(level, sibling.hex(), side, running.hex()))
    if sn != 0:
        return None
    return steps
