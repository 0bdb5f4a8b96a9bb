"""The reference files of tests/assets/: found by name, read as committed, and bound to the
chain a test anchored their batches on.

The assets name one fixed anchor per batch (chain id 1337, registry
0x5FbDB2315678afecb367f032d93F642f64180aa3, a transaction hash and a block; see
tests/assets/make_assets.py). A fresh registry on the test's node has another address, and
its anchoring transactions other hashes and blocks, so ``rebind`` rewrites those four members,
and only where an asset holds exactly the value its batch's honest export (``batch-N.json``)
gives. Whatever a tampered copy changed (receipt-wrong_chain.json's chain id, a record, a
path, a root, a leaf hash) is never rewritten: ``rebound_paths`` names what was, and the
tests check that it is disjoint from what each tampered copy changed.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parents[1] / "assets"
ANCHOR_MEMBERS = ("chain_id", "contract", "tx", "block")
_HONEST_EXPORT = re.compile(r"batch-(\d+)\.json")

Anchors = Mapping[int, Mapping[str, Any]]


def asset(name: str) -> Path:
    """The path of ``tests/assets/<name>``; FileNotFoundError when there is no such asset."""
    path = ASSETS / name
    if not path.is_file():
        raise FileNotFoundError(f"no asset {name!r} in {ASSETS}")
    return path


def load(name: str) -> Any:
    """The asset's JSON, parsed as committed."""
    return json.loads(asset(name).read_bytes())


def asset_names() -> list[str]:
    """Every receipt, trail listing and batch export in tests/assets/."""
    return sorted(
        path.name
        for pattern in ("receipt*.json", "trail*.json", "batch*.json")
        for path in ASSETS.glob(pattern)
    )


def honest_batches() -> list[int]:
    """The numbers of the batches the assets come from: one honest export ``batch-N.json`` each."""
    numbers = [
        int(match.group(1))
        for name in asset_names()
        if (match := _HONEST_EXPORT.fullmatch(name)) is not None
    ]
    return sorted(numbers)


@cache
def asset_anchors() -> dict[int, dict[str, Any]]:
    """Per batch number, the anchor the assets name, as its honest export gives it."""
    anchors = {}
    for number in honest_batches():
        export = load(f"batch-{number}.json")
        anchors[number] = {member: export[member] for member in ANCHOR_MEMBERS}
    return anchors


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b  # JSON true is not 1


def _swap(target: Any, batch: Any, deployed: Anchors) -> None:
    if not isinstance(target, dict) or not isinstance(batch, int) or isinstance(batch, bool):
        return
    named, bound = asset_anchors().get(batch), deployed.get(batch)
    if named is None or bound is None:
        return
    for member in ANCHOR_MEMBERS:
        if member in target and _same(target[member], named[member]):
            target[member] = bound[member]


def _rebind_receipt(receipt: Any, deployed: Anchors) -> None:
    if isinstance(receipt, dict) and isinstance(receipt.get("proof"), dict):
        _swap(receipt.get("anchor"), receipt["proof"].get("batch"), deployed)


def rebind(value: Any, deployed: Anchors) -> Any:
    """A copy of a receipt, trail listing or batch export that names ``deployed[batch]``
    (``chain_id``, ``contract``, ``tx``, ``block``) where it named the assets' own anchor of
    that batch. Nothing else changes."""
    value = copy.deepcopy(value)
    if not isinstance(value, dict):
        return value
    if "leaf_hashes" in value:  # a batch export
        _swap(value, value.get("batch"), deployed)
    elif isinstance(value.get("records"), list):  # a trail listing
        for entry in value["records"]:
            if isinstance(entry, dict):
                _rebind_receipt(entry.get("receipt"), deployed)
    else:
        _rebind_receipt(value, deployed)
    return value


def differences(a: Any, b: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths (keys and indexes) at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys(), key=str):
            if key not in a or key not in b:
                yield (*at, key)
            else:
                yield from differences(a[key], b[key], (*at, key))
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, (*at, index))
    elif not _same(a, b):
        yield at


def rebound_paths(value: Any, deployed: Anchors) -> set[tuple[Any, ...]]:
    """Where ``rebind`` changes ``value``."""
    return set(differences(value, rebind(value, deployed)))
