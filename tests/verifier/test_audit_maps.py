"""The in-memory map of trail heads the audit and the monitor replay (``verifier.headmap``) gives the map
root of PROTOCOL §10 exactly as ``core.trailmap`` defines it, batch after batch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.trailmap import EMPTY, MemoryMap, key_of, map_root, value_of
from verifier.headmap import HeadMap

heads = st.tuples(
    st.text(min_size=1, max_size=12), st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32)
)
# keys that share long prefixes: subjects drawn from few, and raw keys differing in low bits
near_keys = st.builds(
    lambda high, low: (high * 2**200 + low).to_bytes(32, "big"),
    st.integers(0, 3),
    st.integers(0, 2**8),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(heads, max_size=10), min_size=1, max_size=8))
def test_every_batchs_root_is_the_map_root_of_the_heads_so_far(
    batches: list[list[tuple[str, int, bytes]]],
) -> None:
    replay, reference, pairs = HeadMap(), MemoryMap(), {}
    assert replay.root == EMPTY
    for batch in batches:
        changes = {key_of(s): value_of(seq, leaf) for s, seq, leaf in batch}
        pairs.update(changes)
        root = replay.update(changes)
        assert root == map_root(pairs) == reference.update(changes)
        assert replay.trails == len(pairs)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(near_keys, st.binary(min_size=40, max_size=40)), max_size=8))
def test_keys_with_long_shared_prefixes(batches: list[dict[bytes, bytes]]) -> None:
    replay, pairs = HeadMap(), {}
    for changes in batches:
        pairs.update(changes)
        assert replay.update(changes) == map_root(pairs)
        assert replay.trails == len(pairs)
