"""Trail answers built with the real core, as a version 2 service with the map of trail heads
(PROTOCOL §10, §11) answers ``GET /api/v1/suggestions/{code}/trail``: every receipt carries its
batch's cosigned checkpoint, and ``map`` holds batch 0's ``ledger.map_head`` receipt and the
subject's map proof. ``heads`` overrides what the map says (a lying map), ``after`` appends
records of the trail in batch 1, after the map head."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from hashlib import sha256
from typing import Any

from core.records import SealedRecord, build_record
from core.trailmap import MemoryMap
from tests.verifier.fakes import (
    LOOP,
    OTHER_SUBJECT,
    START,
    SUBJECT,
    SealedLog,
    TrailWriter,
    counter_salt,
    trail_entry,
    write_steps,
)
from tests.web.conftest import Keys

Heads = dict[str, tuple[int, bytes]]


def map_head_record(batch: int, index: int, root: bytes, trails: int) -> SealedRecord:
    return build_record(
        log="suggestions",
        type="ledger.map_head",
        subject="ledger/map",
        seq=0,
        prev=None,
        actor={"role": "system", "id": "sealer"},
        body={"batch": batch, "index": index, "map_root": root.hex(), "trails": trails},
        now=START + timedelta(days=1),
        salt=counter_salt(7000),
    )


def trail_answer(
    keys: Keys,
    *,
    records: int = 10,
    after: int = 0,
    heads: Callable[[Heads], Heads] | None = None,
    other_trails: int = 0,
) -> dict[str, Any]:
    """The trail answer of SUBJECT: ``records`` records before batch 0's map head, ``after``
    more in batch 1 (``records + after`` at most 12). ``other_trails`` adds that many heads of
    other subjects to the map (so that proofs have the depth of a big map; those subjects'
    records are not in the log, which no proof check can see)."""
    writer = TrailWriter(SUBJECT)
    writer.submitted()
    write_steps(writer, LOOP[: records + after - 1])
    other = TrailWriter(OTHER_SUBJECT, salt_from=9000)
    other.submitted()
    before = [other.records[0], *writer.records[:records]]
    found: Heads = {}
    for sealed in before:
        found[str(sealed.record["subject"])] = (int(sealed.record["seq"]), sealed.leaf_hash)
    for n in range(other_trails):
        found[f"SG-PAD-{n:07d}"] = (n % 7, sha256(b"pad %d" % n).digest())
    if heads is not None:
        found = heads(found)
    memory = MemoryMap()
    root = memory.set_heads((s, seq, leaf) for s, (seq, leaf) in found.items())
    head = map_head_record(0, len(before), root, len(found))
    later = writer.records[records:]
    sealed_log = SealedLog.of(
        [*before, head, *later], [len(before) + 1, *([len(later)] if later else [])]
    )
    checkpoints = {
        b: keys.cosigned(end, sealed_log.root(b)) for b, end in enumerate(sealed_log.ends)
    }

    def receipt(index: int) -> dict[str, Any]:
        r = sealed_log.receipt(index)
        r["checkpoint"] = checkpoints[r["proof"]["batch"]]
        return r

    entries = []
    for sealed in writer.records:
        index = next(i for i, r in enumerate(sealed_log.records) if r is sealed)
        entries.append(trail_entry(sealed, receipt(index)))
    return {
        "tracking_code": SUBJECT,
        "state": None,
        "records": entries,
        "map": {
            "batch": 0,
            "map_head": receipt(len(before)),
            "proof": memory.prove(SUBJECT).to_json(),
        },
    }


def with_checkpoints(value: Any, keys: Keys, sizes: dict[int, tuple[int, bytes]]) -> Any:
    """A copy of a receipt or trail listing (tests/assets) with each receipt carrying the
    cosigned checkpoint of its batch: ``sizes[batch] = (size, root)`` (the honest exports)."""
    value = copy.deepcopy(value)

    def add(receipt: Any) -> None:
        if isinstance(receipt, dict) and isinstance(receipt.get("proof"), dict):
            batch = receipt["proof"].get("batch")
            if batch in sizes:
                size, root = sizes[batch]
                receipt["checkpoint"] = keys.cosigned(size, root)

    if isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict):
                add(entry.get("receipt"))
    else:
        add(value)
    return value
