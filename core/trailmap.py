"""The map of trail heads (PROTOCOL §10): a binary Merkle trie from SHA-256(subject) to the
trail's head ``uint64_be(seq) || leaf_hash``, its root, and proofs of membership and absence.

The map hash of a set of pairs at depth d is 32 zero bytes when the set is empty,
``SHA-256(0x02 || k || v)`` when it holds one pair, and otherwise
``SHA-256(0x03 || MH(S0, d+1) || MH(S1, d+1))`` split on bit d of the keys (bit 0 is the most
significant bit of the key's first byte). A subtree that holds one pair is therefore a
terminal at the depth where its key parts from every other key, and everything below a
terminal or an empty subtree is empty: that is what is stored.

A node is named by its position ``(depth, prefix)``: the first ``depth`` bits of the keys under
it, as an integer. Stored nodes are ``Terminal`` (one pair) or ``Inner`` (a hash); a node
that is not stored is empty. ``update`` changes a map through a ``NodeReader`` (so the store
and the in-memory ``MemoryMap`` share one algorithm) and reads one level of the trie per call;
``prove`` walks one key down; ``verify`` is all a verifier needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KEY_SIZE = 32
VALUE_SIZE = 40
EMPTY = bytes(32)
_TERMINAL = b"\x02"
_INNER = b"\x03"

Position = tuple[int, int]  # (depth, prefix: the key's first `depth` bits)


class MapProofError(ValueError):
    """A map proof that is malformed or does not reach the map root (verdict ``altered``)."""


@dataclass(frozen=True, slots=True)
class Terminal:
    key: bytes
    value: bytes

    @property
    def hash(self) -> bytes:
        return terminal_hash(self.key, self.value)


@dataclass(frozen=True, slots=True)
class Inner:
    hash: bytes


Node = Terminal | Inner
NodeReader = Callable[[Sequence[Position]], Mapping[Position, Node]]
"""Reads the stored nodes at the positions asked for; a position absent from the answer is empty."""


def key_of(subject: str) -> bytes:
    """The map key of a subject: SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(subject.encode("utf-8")).digest()


def value_of(seq: int, leaf_hash: bytes) -> bytes:
    """The map value of a trail's head: its seq (8 bytes, big-endian) and its leaf hash."""
    if not 0 <= seq < 2**64 or len(leaf_hash) != 32:
        raise ValueError("a map value is a seq below 2^64 and a 32-byte leaf hash")
    return seq.to_bytes(8, "big") + leaf_hash


def split_value(value: bytes) -> tuple[int, bytes]:
    """``(seq, leaf_hash)`` of a map value."""
    if len(value) != VALUE_SIZE:
        raise ValueError(f"a map value is {VALUE_SIZE} bytes")
    return int.from_bytes(value[:8], "big"), value[8:]


def terminal_hash(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(_TERMINAL + key + value).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_INNER + left + right).digest()


def bit(key: bytes, depth: int) -> int:
    """Bit ``depth`` of a key, counted from the most significant bit of its first byte."""
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def position_of(key: bytes, depth: int) -> Position:
    """The position at ``depth`` on the way to ``key``."""
    return depth, int.from_bytes(key, "big") >> (8 * KEY_SIZE - depth)


def children(position: Position) -> tuple[Position, Position]:
    depth, prefix = position
    return (depth + 1, prefix << 1), (depth + 1, (prefix << 1) | 1)


def subtree_hash(pairs: Sequence[tuple[bytes, bytes]], depth: int) -> bytes:
    """MH of ``pairs`` (distinct keys sharing their first ``depth`` bits) at ``depth``."""
    if not pairs:
        return EMPTY
    if len(pairs) == 1:
        return terminal_hash(*pairs[0])
    left = [pair for pair in pairs if not bit(pair[0], depth)]
    right = [pair for pair in pairs if bit(pair[0], depth)]
    return inner_hash(subtree_hash(left, depth + 1), subtree_hash(right, depth + 1))


def map_root(pairs: Mapping[bytes, bytes]) -> bytes:
    """The map root of a whole set of pairs, from scratch (the definition, for tests and
    for checking a rebuilt map)."""
    return subtree_hash(list(pairs.items()), 0)


def _build(
    pairs: list[tuple[bytes, bytes]], position: Position, out: dict[Position, Node]
) -> bytes:
    """Store the subtree of ``pairs`` at ``position`` (below it everything was empty) in
    ``out`` and return its hash."""
    if not pairs:
        return EMPTY
    if len(pairs) == 1:
        node: Node = Terminal(*pairs[0])
    else:
        depth = position[0]
        left_position, right_position = children(position)
        left = _build([p for p in pairs if not bit(p[0], depth)], left_position, out)
        right = _build([p for p in pairs if bit(p[0], depth)], right_position, out)
        node = Inner(inner_hash(left, right))
    out[position] = node
    return node.hash


def update(read: NodeReader, changes: Mapping[bytes, bytes]) -> tuple[bytes, dict[Position, Node]]:
    """Set the pairs in ``changes`` (new keys or new values of known keys; keys are never
    removed) in the map that ``read`` serves. Returns the new root and every node written
    (to store over the old ones); nothing else changes. Reads one level per call."""
    for key, value in changes.items():
        if len(key) != KEY_SIZE or len(value) != VALUE_SIZE:
            raise ValueError("map keys are 32 bytes and values 40 bytes")
    if not changes:
        found = read([(0, 0)]).get((0, 0))
        return (found.hash if found else EMPTY), {}
    written: dict[Position, Node] = {}
    # Top down, one level at a time: the stored node at each position some change goes
    # through, and beside it the sibling whose hash the parent needs.
    pending: dict[Position, list[tuple[bytes, bytes]]] = {(0, 0): sorted(changes.items())}
    stored: dict[Position, Node] = dict(read([(0, 0)]))
    order: list[Position] = []  # inner positions to rehash, parents before children
    while pending:
        following: dict[Position, list[tuple[bytes, bytes]]] = {}
        for position, pairs in pending.items():
            node = stored.get(position)
            if isinstance(node, Inner):
                order.append(position)
                depth = position[0]
                left_position, right_position = children(position)
                left = [p for p in pairs if not bit(p[0], depth)]
                right = [p for p in pairs if bit(p[0], depth)]
                if left:
                    following[left_position] = left
                if right:
                    following[right_position] = right
                continue
            if isinstance(node, Terminal) and all(node.key != key for key, _ in pairs):
                pairs = sorted([*pairs, (node.key, node.value)])
            _build(pairs, position, written)  # empty or a terminal: a fresh subtree
        if following:
            # with the siblings of the positions we descend into, for the parents' hashes
            wanted = set(following) | {(depth, prefix ^ 1) for depth, prefix in following}
            stored.update(read(sorted(wanted)))
        pending = following
    for position in reversed(order):
        left_position, right_position = children(position)
        hashes = []
        for child in (left_position, right_position):
            node = written.get(child) or stored.get(child)
            hashes.append(node.hash if node else EMPTY)
        written[position] = Inner(inner_hash(*hashes))
    return written[(0, 0)].hash, written


@dataclass(frozen=True, slots=True)
class MapProof:
    key: bytes
    siblings: tuple[bytes, ...]
    terminal: Terminal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key.hex(),
            "siblings": [sibling.hex() for sibling in self.siblings],
            "terminal": None
            if self.terminal is None
            else {"key": self.terminal.key.hex(), "value": self.terminal.value.hex()},
        }


def prove(read: NodeReader, key: bytes) -> MapProof:
    """The proof for ``key``: the siblings down to the terminal position on its way (a
    terminal, or an empty subtree), with what is there."""
    siblings: list[bytes] = []
    position: Position = (0, 0)
    node = read([position]).get(position)
    while isinstance(node, Inner):
        depth = position[0]
        here = position_of(key, depth + 1)
        there = (depth + 1, here[1] ^ 1)
        found = read([here, there])
        sibling = found.get(there)
        siblings.append(sibling.hash if sibling else EMPTY)
        position, node = here, found.get(here)
    return MapProof(key, tuple(siblings), node if isinstance(node, Terminal) else None)


def _hex(value: Any, size: int, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * size:
        raise MapProofError(f"{what} must be {2 * size} lowercase hex characters")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise MapProofError(f"{what} must be {2 * size} lowercase hex characters") from None
    if raw.hex() != value:
        raise MapProofError(f"{what} must be lowercase hex")
    return raw


def parse_proof(data: Any) -> MapProof:
    """A map proof from its JSON form (§10); MapProofError when it is not one."""
    if not isinstance(data, dict) or set(data) != {"key", "siblings", "terminal"}:
        raise MapProofError("a map proof is an object with key, siblings and terminal")
    key = _hex(data["key"], KEY_SIZE, "proof.key")
    if not isinstance(data["siblings"], list) or len(data["siblings"]) > 8 * KEY_SIZE:
        raise MapProofError("proof.siblings must be a list of at most 256 hashes")
    siblings = tuple(_hex(s, 32, "a sibling") for s in data["siblings"])
    terminal = data["terminal"]
    if terminal is not None:
        if not isinstance(terminal, dict) or set(terminal) != {"key", "value"}:
            raise MapProofError("proof.terminal is null or an object with key and value")
        terminal = Terminal(
            _hex(terminal["key"], KEY_SIZE, "terminal.key"),
            _hex(terminal["value"], VALUE_SIZE, "terminal.value"),
        )
    return MapProof(key, siblings, terminal)


def proof_root(proof: MapProof) -> bytes:
    """The map root a proof leads to (§10: from the terminal up, the last sibling first)."""
    h = EMPTY if proof.terminal is None else proof.terminal.hash
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        h = inner_hash(h, sibling) if not bit(proof.key, depth) else inner_hash(sibling, h)
    return h


def verify(root: bytes, subject: str, proof: MapProof) -> tuple[int, bytes] | None:
    """Check a map proof for ``subject`` against a map root: the proven head ``(seq,
    leaf_hash)``, or None when the proof shows the subject has no trail. MapProofError when
    the proof's key is not the subject's or the proof does not reach ``root``."""
    if proof.key != key_of(subject):
        raise MapProofError("the proof's key is not SHA-256 of the subject")
    if proof_root(proof) != root:
        raise MapProofError("the map proof does not reach the map root")
    terminal = proof.terminal
    if terminal is None:
        return None
    if terminal.key == proof.key:
        return split_value(terminal.value)
    depth = len(proof.siblings)
    if any(bit(terminal.key, d) != bit(proof.key, d) for d in range(depth)):
        raise MapProofError("the terminal does not lie on the key's path")
    return None


class MemoryMap:
    """A whole map in memory, updated incrementally (verifiers replaying a log, tests)."""

    def __init__(self) -> None:
        self.nodes: dict[Position, Node] = {}
        self.pairs: dict[bytes, bytes] = {}
        self.root = EMPTY

    def read(self, positions: Sequence[Position]) -> dict[Position, Node]:
        nodes = self.nodes
        return {p: nodes[p] for p in positions if p in nodes}

    def update(self, changes: Mapping[bytes, bytes]) -> bytes:
        self.root, written = update(self.read, changes)
        self.nodes.update(written)
        self.pairs.update(changes)
        return self.root

    def set_heads(self, heads: Iterable[tuple[str, int, bytes]]) -> bytes:
        """Set the heads ``(subject, seq, leaf_hash)`` (the last one of each subject wins)."""
        return self.update({key_of(s): value_of(seq, leaf) for s, seq, leaf in heads})

    def prove(self, subject: str) -> MapProof:
        return prove(self.read, key_of(subject))

    def __len__(self) -> int:
        return len(self.pairs)
