"""The audit's replay of the map of trail heads (PROTOCOL §10) from the entries of one log.

The records come in position order. Every record of a subject other than ``ledger/map`` moves
its trail's head to ``(seq, leaf hash)`` as stored; the heads that moved since the last
``ledger.map_head`` wait in ``changes`` and are applied to an in-memory map (``HeadMap``)
at the next ``ledger.map_head``, so the map is updated once per batch, with the trails that
batch moved. The map head's body must then say what the replay says: ``index`` its own
position, ``batch`` the batch that covers it, ``map_root`` the replayed root and ``trails``
the number of pairs. Any difference is the finding ``map_head_mismatch``,
naming the log, the batch and the map head record.

A map head whose content cannot be read (altered: already its own finding; or erased) is not
judged; the heads it would have covered are carried to the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.records import MAP_HEAD_TYPE, MAP_SUBJECT
from core.trailmap import key_of, value_of
from verifier.audit.findings import FindingKind, LogFindings
from verifier.audit.reading import StoredRecord
from verifier.headmap import HeadMap


class MapReplay:
    """The map of one log's trail heads, replayed from its records in position order."""

    def __init__(self, found: LogFindings) -> None:
        self.found = found
        self.map = HeadMap()
        self.changes: dict[bytes, bytes] = {}
        self.checked = 0  # map heads compared with the replay
        self.mismatched = 0

    def step(self, record: StoredRecord, content: Mapping[str, Any] | None) -> None:
        """The next record of the log, in position order."""
        if record.subject != MAP_SUBJECT:
            if 0 <= record.seq < 2**64 and len(record.leaf_hash) == 32:
                self.changes[key_of(record.subject)] = value_of(record.seq, record.leaf_hash)
            return
        if record.type == MAP_HEAD_TYPE and content is not None:
            self.check(record, content)

    def check(self, record: StoredRecord, content: Mapping[str, Any]) -> None:
        """The map head at ``record``: the map of every entry before it, replayed, against
        what its body says."""
        root = self.map.update(self.changes)
        self.changes = {}
        self.checked += 1
        body = content.get("body")
        body = body if isinstance(body, Mapping) else {}
        batch = self.found.batch_at(record.position)
        expected = {
            "map_root": root.hex(),
            "trails": self.map.trails,
            "index": record.position,
            "batch": batch,
        }
        wrong = [
            f"{name} is {body.get(name)!r}, the entries give {want!r}"
            for name, want in expected.items()
            if body.get(name) != want and not (name == "batch" and want is None)
        ]
        if not wrong:
            return
        self.mismatched += 1
        self.found.find(
            FindingKind.MAP_HEAD_MISMATCH,
            "the map head does not commit to the map of trail heads its entries give: "
            + "; ".join(wrong),
            position=record.position,
            batch=batch,
            subject=record.subject,
            seq=record.seq,
            record_hash=record.leaf_hash,
        )
