"""The Merkle path of a receipt, step by step, for people to follow on the verify page.

The walk is ``core.merkle.inclusion_steps`` (RFC 9162 §2.1.3.2), the one the verifier's
root recomputation takes: each step says which side the path hash joins on and the node hash
it gives. The verdict itself comes
from the verifier library; this only explains it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.merkle import InvalidProof, inclusion_steps


@dataclass(frozen=True)
class PathStep:
    level: int
    sibling: str  # hex
    side: str  # "left": the sibling is hashed to the left of the running hash
    result: str  # hex of the node hash after this step


def path_steps(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> list[PathStep] | None:
    """Each step from ``leaf`` to the root; None when the path cannot fit (index, size)."""
    try:
        steps = inclusion_steps(leaf, index, size, path)
    except InvalidProof:
        return None
    return [
        PathStep(level, sibling.hex(), "left" if on_left else "right", node.hex())
        for level, (sibling, (on_left, node)) in enumerate(zip(path, steps, strict=True), start=1)
    ]
