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

from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from core.records import MAP_HEAD_TYPE, MAP_SUBJECT
from core.trailmap import EMPTY, inner_hash, key_of, terminal_hash, value_of
from verifier.audit.findings import FindingKind, LogFindings
from verifier.audit.reading import StoredRecord

_TOP = 8 * 32 - 1  # bit d of a 256-bit key k is (k >> (_TOP - d)) & 1


class HeadMap:
    """The map of trail heads in memory, for replaying a whole log: the map hash of PROTOCOL
    §10 (as ``core.trailmap``, which the tests hold it to), updated in place one batch of
    changes at a time.

    A node is stored by its heap number ``(1 << depth) | prefix`` (the root is 1, the children
    of n are 2n and 2n + 1): an inner node as its hash, a terminal as (hash, key as an
    integer, value); a node not stored is empty. Keys are sorted once per batch and split at
    each depth by bisection, so a batch costs a hash per node on the changed keys' paths."""

    __slots__ = ("nodes", "root", "trails")

    def __init__(self) -> None:
        self.nodes: dict[int, bytes | tuple[bytes, int, bytes]] = {}
        self.root = EMPTY
        self.trails = 0

    def update(self, changes: Mapping[bytes, bytes]) -> bytes:
        """Set the pairs (key, value) in ``changes`` (new keys or new values); the new root."""
        if changes:
            ordered = sorted((int.from_bytes(key, "big"), value) for key, value in changes.items())
            keys = [key for key, _ in ordered]
            values = [value for _, value in ordered]
            self.root = self._put(1, 0, keys, values, 0, len(keys))
        return self.root

    def _hash(self, node: int) -> bytes:
        found = self.nodes.get(node)
        if found is None:
            return EMPTY
        return found if isinstance(found, bytes) else found[0]

    def _put(
        self, node: int, depth: int, keys: list[int], values: list[bytes], lo: int, hi: int
    ) -> bytes:
        """Set keys[lo:hi] (sharing the node's prefix) under ``node`` at ``depth``."""
        found = self.nodes.get(node)
        if found is None:  # empty: every key is new
            self.trails += hi - lo
            return self._build(node, depth, keys, values, lo, hi)
        if isinstance(found, tuple):  # a terminal: rebuild the subtree with it among the keys
            _, key, value = found
            at = bisect_left(keys, key, lo, hi)
            if at < hi and keys[at] == key:  # its key moves: it is replaced
                self.trails += hi - lo - 1
                return self._build(node, depth, keys, values, lo, hi)
            self.trails += hi - lo
            merged_keys = [*keys[lo:at], key, *keys[at:hi]]
            merged_values = [*values[lo:at], value, *values[at:hi]]
            return self._build(node, depth, merged_keys, merged_values, 0, len(merged_keys))
        mid = bisect_left(keys, (2 * node + 1 - (2 << depth)) << (_TOP - depth), lo, hi)
        left = (
            self._put(2 * node, depth + 1, keys, values, lo, mid)
            if mid > lo
            else self._hash(2 * node)
        )
        right = (
            self._put(2 * node + 1, depth + 1, keys, values, mid, hi)
            if hi > mid
            else self._hash(2 * node + 1)
        )
        hashed = inner_hash(left, right)
        self.nodes[node] = hashed
        return hashed

    def _build(
        self, node: int, depth: int, keys: list[int], values: list[bytes], lo: int, hi: int
    ) -> bytes:
        """Store the subtree of keys[lo:hi] at ``node`` (everything below it was empty)."""
        if hi - lo == 1:
            key = keys[lo]
            hashed = terminal_hash(key.to_bytes(32, "big"), values[lo])
            self.nodes[node] = (hashed, key, values[lo])
            return hashed
        mid = bisect_left(keys, (2 * node + 1 - (2 << depth)) << (_TOP - depth), lo, hi)
        left = self._build(2 * node, depth + 1, keys, values, lo, mid) if mid > lo else EMPTY
        right = self._build(2 * node + 1, depth + 1, keys, values, mid, hi) if hi > mid else EMPTY
        hashed = inner_hash(left, right)
        self.nodes[node] = hashed
        return hashed


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
