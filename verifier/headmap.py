"""An in-memory map of trail heads (PROTOCOL §10) for verifiers that replay a whole log from
its entries: the inspectors' audit (``verifier.audit.maps``) and the monitor
(``verifier.monitor``). Its roots are ``core.trailmap``'s (tests/verifier/test_audit_maps.py);
it is faster at replaying because it updates its nodes in place, in one recursive pass."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

from core.trailmap import EMPTY, inner_hash, terminal_hash

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
