"""Property tests of core.trailmap (PROTOCOL §10): the map of trail heads, its root, its
incremental update and its proofs of membership and absence."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.trailmap import (
    EMPTY,
    MapProof,
    MapProofError,
    MemoryMap,
    Terminal,
    bit,
    key_of,
    map_root,
    parse_proof,
    split_value,
    value_of,
    verify,
)

subjects = st.text(min_size=1, max_size=24)
heads = st.tuples(subjects, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32))
# batches of head moves: each batch a list of (subject, seq, leaf hash)
batches = st.lists(st.lists(heads, max_size=12), min_size=1, max_size=6)
some_heads = st.lists(st.lists(heads, min_size=1, max_size=12), min_size=1, max_size=6)


def _filled(moves: list[list[tuple[str, int, bytes]]]) -> tuple[MemoryMap, dict[str, bytes]]:
    """A map fed batch by batch, and what each subject's head is at the end."""
    tree = MemoryMap()
    last: dict[str, bytes] = {}
    for batch in moves:
        tree.set_heads(batch)
        for subject, seq, leaf in batch:
            last[subject] = value_of(seq, leaf)
    return tree, last


@settings(max_examples=150, deadline=None)
@given(batches)
def test_incremental_updates_give_the_root_of_the_whole_map(
    moves: list[list[tuple[str, int, bytes]]],
) -> None:
    tree = MemoryMap()
    last: dict[bytes, bytes] = {}
    for batch in moves:
        root = tree.set_heads(batch)
        for subject, seq, leaf in batch:
            last[key_of(subject)] = value_of(seq, leaf)
        assert root == map_root(last)  # after every batch, not only at the end
        assert len(tree) == len(last)
    assert tree.root == map_root(tree.pairs)


@settings(max_examples=150, deadline=None)
@given(batches)
def test_every_keys_proof_verifies_to_its_value(moves: list[list[tuple[str, int, bytes]]]) -> None:
    tree, last = _filled(moves)
    for subject, value in last.items():
        proof = tree.prove(subject)
        assert proof.terminal is not None and proof.terminal.key == key_of(subject)
        assert verify(tree.root, subject, proof) == split_value(value)
        # and through its JSON form, as a verifier receives it
        assert verify(tree.root, subject, parse_proof(proof.to_json())) == split_value(value)


@settings(max_examples=150, deadline=None)
@given(batches, st.lists(subjects, min_size=1, max_size=8))
def test_absent_keys_verify_as_absent(
    moves: list[list[tuple[str, int, bytes]]], others: list[str]
) -> None:
    tree, last = _filled(moves)
    for subject in others:
        if subject in last:
            continue
        proof = tree.prove(subject)
        assert verify(tree.root, subject, proof) is None
        if proof.terminal is not None:  # another key on the way, sharing the prefix
            assert proof.terminal.key != key_of(subject)


def test_the_empty_map() -> None:
    tree = MemoryMap()
    assert tree.root == EMPTY == map_root({})
    proof = tree.prove("SG-7K2M-9QXD-4HTB")
    assert proof.siblings == () and proof.terminal is None
    assert verify(EMPTY, "SG-7K2M-9QXD-4HTB", proof) is None
    one = {key_of("a"): value_of(3, b"\x01" * 32)}
    assert (
        map_root(one) == hashlib.sha256(b"\x02" + key_of("a") + value_of(3, b"\x01" * 32)).digest()
    )


def _changed(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at % len(data)] ^= 1 << (at % 8)
    return bytes(flipped)


@settings(max_examples=150, deadline=None)
@given(some_heads, st.integers(0, 2**16), st.data())
def test_a_changed_sibling_or_terminal_is_a_map_proof_error(
    moves: list[list[tuple[str, int, bytes]]], at: int, data: st.DataObject
) -> None:
    tree, last = _filled(moves)
    subject = data.draw(st.sampled_from(sorted(last)), label="subject")
    proof = tree.prove(subject)
    assert proof.terminal is not None
    changes = [
        MapProof(
            proof.key,
            proof.siblings,
            Terminal(proof.terminal.key, _changed(proof.terminal.value, at)),
        ),
        MapProof(
            proof.key,
            proof.siblings,
            Terminal(_changed(proof.terminal.key, at), proof.terminal.value),
        ),
        MapProof(proof.key, proof.siblings, None),
    ]
    if proof.siblings:
        i = at % len(proof.siblings)
        siblings = list(proof.siblings)
        siblings[i] = _changed(siblings[i], at)
        changes.append(MapProof(proof.key, tuple(siblings), proof.terminal))
        changes.append(MapProof(proof.key, proof.siblings[:-1], proof.terminal))  # one dropped
    for changed in changes:
        with pytest.raises(MapProofError):
            verify(tree.root, subject, changed)


@settings(max_examples=100, deadline=None)
@given(some_heads, subjects, st.data())
def test_a_proof_for_another_subject_is_a_map_proof_error(
    moves: list[list[tuple[str, int, bytes]]], other: str, data: st.DataObject
) -> None:
    tree, last = _filled(moves)
    subject = data.draw(st.sampled_from(sorted(last)), label="subject")
    if other == subject:
        return
    with pytest.raises(MapProofError, match="SHA-256 of the subject"):
        verify(tree.root, other, tree.prove(subject))


def test_a_terminal_off_the_keys_path_does_not_prove_absence() -> None:
    tree = MemoryMap()
    tree.set_heads([(f"SG-{i}", i, bytes([i]) * 32) for i in range(40)])
    absent = "SG-absent"
    proof = tree.prove(absent)
    key = key_of(absent)
    # a terminal elsewhere in the map whose key parts from ours within the siblings' depth
    for subject in (f"SG-{i}" for i in range(40)):
        other = key_of(subject)
        depth = len(proof.siblings)
        if any(bit(other, d) != bit(key, d) for d in range(depth)):
            forged = MapProof(key, proof.siblings, Terminal(other, tree.pairs[other]))
            with pytest.raises(MapProofError):
                verify(tree.root, absent, forged)
            break
    else:
        pytest.fail("no terminal off the path to try")


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"key": "00" * 32, "siblings": []},
        {"key": "00" * 31, "siblings": [], "terminal": None},
        {"key": "AA" * 32, "siblings": [], "terminal": None},
        {"key": "00" * 32, "siblings": ["00" * 32] * 257, "terminal": None},
        {"key": "00" * 32, "siblings": [], "terminal": {"key": "00" * 32}},
        {"key": "00" * 32, "siblings": [], "terminal": {"key": "00" * 32, "value": "00" * 39}},
    ],
)
def test_malformed_proofs_are_map_proof_errors(data: object) -> None:
    with pytest.raises(MapProofError):
        parse_proof(data)
