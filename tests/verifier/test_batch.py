"""verify_batch_export against PROTOCOL §8: a version 2 export (the whole log's root at the
batch's end, the frontier of the tree before it, the batch's own leaves) gets exactly its
verdict per fault, against an in-memory chain; version 1 exports are still checked."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from core import tlog
from core.merkle import merkle_root
from tests.verifier.fakes import CONTRACT, Batch, FakeChain, SealedLog, suggestion_batch
from verifier.batch import BatchVerdict, extend_frontier, verify_batch_export

LOG = "suggestions"
SIZES = (5, 3, 6, 1, 7)  # ends 5, 8, 14, 15, 22: frontiers of 1, 1, 3, 4 subtrees


@pytest.fixture(scope="module")
def sealed() -> SealedLog:
    return SealedLog.of(suggestion_batch(sum(SIZES)), SIZES)


@pytest.fixture
def chain(sealed: SealedLog) -> FakeChain:
    return FakeChain().anchor_log(sealed)


def check(export: Any, chain: FakeChain, batch: int, **kwargs: Any) -> Any:
    return verify_batch_export(export, chain, log=LOG, batch=batch, **kwargs)


def flip(hex_hash: str) -> str:
    return ("0" if hex_hash[0] != "0" else "1") + hex_hash[1:]


# -- valid ------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", range(len(SIZES)))
def test_every_honest_v2_export_is_valid(batch: int, sealed: SealedLog, chain: FakeChain) -> None:
    result = check(sealed.export(batch), chain, batch)
    assert result.verdict is BatchVerdict.VALID, result.reason
    assert [(c.step, c.ok) for c in result.checks] == [
        (1, True),
        (2, True),
        (3, True),
        (4, True),
        (5, True),
        (6, True),
    ]
    assert (result.version, result.first, result.size) == (
        2,
        sealed.first(batch),
        sealed.ends[batch],
    )
    assert result.root == result.chain_root == sealed.root(batch).hex()
    assert result.chain_size == sealed.ends[batch]
    if batch:
        assert f"gives the root anchored for batch {batch - 1}" in result.reason
        assert f"batch {batch - 1} of log 'suggestions''s anchored root" in result.checks[4].detail
    else:
        assert result.checks[4].detail == "batch 0 starts the log: no tree before"
    assert result.to_dict()["first"] == sealed.first(batch)


def test_extend_frontier_is_the_root_of_the_whole_log(sealed: SealedLog) -> None:
    leaves = [r.leaf_hash for r in sealed.records]
    for first in range(len(leaves)):
        frontier = sealed.read(tlog.frontier(first))
        assert extend_frontier(first, frontier, leaves[first:]) == merkle_root(leaves)
    with pytest.raises(ValueError, match="is 2 subtree hash"):
        extend_frontier(6, [], leaves[6:])


# -- altered: the leaves and the frontier do not give the export's root -------------------------

ALTERED: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a leaf changed": (
        lambda e: e["leaf_hashes"].__setitem__(2, flip(e["leaf_hashes"][2])),
        "the published leaves are not the batch anchored",
    ),
    "a frontier hash changed": (
        lambda e: e["frontier"].__setitem__(1, flip(e["frontier"][1])),
        "the published leaves are not the batch anchored",
    ),
    "the frontier in the wrong order": (
        lambda e: e["frontier"].reverse(),
        "the published leaves are not the batch anchored",
    ),
    "a leaf left out": (
        lambda e: e["leaf_hashes"].pop(),
        "the export lists 6 leaf hashes for entries 15 to 21 (7 entries)",
    ),
    "a leaf too many": (
        lambda e: e["leaf_hashes"].append("00" * 32),
        "the export lists 8 leaf hashes for entries 15 to 21",
    ),
    "a frontier hash left out": (
        lambda e: e["frontier"].pop(),
        "the frontier of a tree of 15 entries is 4 subtree hash(es), the export gives 3",
    ),
    "two leaves swapped": (
        lambda e: e["leaf_hashes"].reverse(),
        "the published leaves are not the batch anchored",
    ),
}


@pytest.mark.parametrize("name", ALTERED)
def test_leaves_or_a_frontier_that_do_not_give_the_root_are_altered(
    name: str, sealed: SealedLog, chain: FakeChain
) -> None:
    change, message = ALTERED[name]
    export = sealed.export(4)
    change(export)
    result = check(export, chain, 4)
    assert result.verdict is BatchVerdict.ALTERED
    assert (result.checks[-1].step, result.checks[-1].name) == (2, "leaves give the root")
    assert message in result.reason
    assert chain.calls == []  # nothing asked of the chain


# -- root_mismatch and inconsistent: the export against the chain -------------------------------


def test_an_export_recomputed_from_other_leaves_is_root_mismatch(
    sealed: SealedLog, chain: FakeChain
) -> None:
    # A liar who recomputes the root from the leaves it publishes: step 2 passes, 4 does not.
    export = sealed.export(2)
    export["leaf_hashes"][0] = flip(export["leaf_hashes"][0])
    leaves = [bytes.fromhex(h) for h in export["leaf_hashes"]]
    frontier = [bytes.fromhex(h) for h in export["frontier"]]
    export["root"] = extend_frontier(export["first"], frontier, leaves).hex()
    result = check(export, chain, 2)
    assert result.verdict is BatchVerdict.ROOT_MISMATCH
    assert result.checks[-1].step == 4
    assert result.chain_root == sealed.root(2).hex() != result.root


def test_a_forged_frontier_with_a_recomputed_root_is_root_mismatch(
    sealed: SealedLog, chain: FakeChain
) -> None:
    export = sealed.export(3)
    export["frontier"][0] = flip(export["frontier"][0])
    leaves = [bytes.fromhex(h) for h in export["leaf_hashes"]]
    frontier = [bytes.fromhex(h) for h in export["frontier"]]
    export["root"] = extend_frontier(export["first"], frontier, leaves).hex()
    result = check(export, chain, 3)
    assert result.verdict is BatchVerdict.ROOT_MISMATCH
    assert result.checks[-1].step == 4


def test_the_batch_alone_as_version_1_is_root_mismatch_against_a_v2_anchor(
    sealed: SealedLog, chain: FakeChain
) -> None:
    own = Batch.of(sealed.records[5:8], number=1)
    export = {
        key: value
        for key, value in sealed.export(1).items()
        if key not in ("v", "first", "frontier")
    }
    export.update(root=own.root.hex(), size=3)
    result = check(export, chain, 1)
    assert (result.version, result.verdict) == (1, BatchVerdict.ROOT_MISMATCH)
    assert "on chain batch 1 of log 'suggestions' has root" in result.reason
    assert "size 8; the export claims" in result.reason


def test_a_start_the_chain_does_not_have_is_root_mismatch(
    sealed: SealedLog, chain: FakeChain
) -> None:
    # Batch 2 published as entries 0–13 (the whole log so far, no frontier): its leaves give the
    # anchored root and size, but the batch does not start where batch 1 ends.
    export = sealed.export(2)
    export.update(
        first=0,
        frontier=[],
        leaf_hashes=[r.record_hash for r in sealed.records[:14]],
    )
    result = check(export, chain, 2)
    assert result.verdict is BatchVerdict.ROOT_MISMATCH
    assert result.checks[-1].step == 5
    assert result.reason == (
        "on chain batch 1 of log 'suggestions' ends the log at 8 entries; the export says "
        "batch 2 of log 'suggestions' starts at entry 0"
    )


def test_a_chain_whose_trees_do_not_extend_each_other_is_inconsistent(
    sealed: SealedLog,
) -> None:
    # Batch 2 was anchored over another history of entries 0–7 than batch 1: the chain's
    # contract only checks that sizes grow, so a rewritten log could be anchored after it.
    other = SealedLog.of(suggestion_batch(30)[22:], [8])
    chain = FakeChain().anchor_log(sealed)
    chain.anchor_root(LOG, 1, other.root(0), 8)
    result = check(sealed.export(2), chain, 2)
    assert result.verdict is BatchVerdict.INCONSISTENT
    assert (result.checks[-1].step, result.checks[-1].name) == (5, "extends the batch before")
    assert other.root(0).hex() in result.reason and "rewritten" in result.reason
    # The batch before it is judged against what the chain holds for it, on its own.
    assert check(sealed.export(1), chain, 1).verdict is BatchVerdict.ROOT_MISMATCH


def test_the_batch_before_not_anchored_is_not_anchored(sealed: SealedLog) -> None:
    chain = FakeChain().anchor_log(sealed, batches=[0, 2])
    result = check(sealed.export(2), chain, 2)
    assert result.verdict is BatchVerdict.NOT_ANCHORED
    assert result.checks[-1].step == 5
    assert "batch 1 of log 'suggestions' is not anchored" in result.reason


def test_an_unanchored_batch_is_not_anchored(sealed: SealedLog) -> None:
    chain = FakeChain().anchor_log(sealed, batches=[0, 1])
    result = check(sealed.export(2), chain, 2)
    assert result.verdict is BatchVerdict.NOT_ANCHORED
    assert result.checks[-1].step == 4


def test_another_chain_or_contract_is_wrong_chain(sealed: SealedLog, chain: FakeChain) -> None:
    chain.id = 5
    assert check(sealed.export(1), chain, 1).verdict is BatchVerdict.WRONG_CHAIN
    chain.id = 1337
    other = "0x" + "12" * 20
    result = check(sealed.export(1), chain, 1, contract=other)
    assert result.verdict is BatchVerdict.WRONG_CHAIN and other in result.reason
    assert check(sealed.export(1), chain, 1, contract=CONTRACT.lower()).valid


# -- malformed ----------------------------------------------------------------------------------

MALFORMED: dict[str, tuple[int, Callable[[dict[str, Any]], None], str]] = {
    "v 3": (1, lambda e: e.update(v=3), "export version 3 is not supported"),
    "v true": (1, lambda e: e.update(v=True), "v must be an integer"),
    "first missing": (1, lambda e: e.pop("first"), "the export lacks first"),
    "frontier missing": (1, lambda e: e.pop("frontier"), "the export lacks frontier"),
    "first a string": (1, lambda e: e.update(first="8"), "first must be an integer"),
    "first equal to size": (2, lambda e: e.update(first=14), "first (14) must be below size (14)"),
    "frontier a string": (2, lambda e: e.update(frontier="00" * 32), "frontier must be an array"),
    "frontier uppercase": (
        2,
        lambda e: e["frontier"].__setitem__(0, e["frontier"][0].upper()),
        "frontier must be an array of 64-lowercase-hex subtree hashes",
    ),
    "batch 0 not at 0": (0, lambda e: e.update(first=1), "batch 0 starts the log at entry 0"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_v2_exports(name: str, sealed: SealedLog, chain: FakeChain) -> None:
    batch, change, message = MALFORMED[name]
    export = copy.deepcopy(sealed.export(batch))
    change(export)
    result = check(export, chain, batch)
    assert result.verdict is BatchVerdict.MALFORMED
    assert [(c.step, c.ok) for c in result.checks] == [(1, False)]
    assert message in result.reason


# -- version 1 exports are still checked ----------------------------------------------------------


def v1_export(batch: Batch) -> dict[str, Any]:
    return {
        "log": batch.log,
        "batch": batch.number,
        "root": batch.root.hex(),
        "size": len(batch.records),
        "tx": "0x" + "ab" * 32,
        "block": 100,
        "chain_id": 1337,
        "contract": CONTRACT,
        "leaf_hashes": [r.record_hash for r in batch.records],
    }


def test_a_v1_export_against_a_v1_anchor(sealed: SealedLog) -> None:
    batch = Batch.of(suggestion_batch(6))
    chain = FakeChain().anchor(batch)
    for export in (v1_export(batch), {**v1_export(batch), "v": 1}):
        result = check(export, chain, batch.number)
        assert result.verdict is BatchVerdict.VALID, result.reason
        assert result.version == 1 and result.first is None
        assert [c.step for c in result.checks] == [1, 2, 3, 4, 6]  # no step 5 in version 1
    tampered = v1_export(batch)
    tampered["leaf_hashes"][0] = flip(tampered["leaf_hashes"][0])
    assert check(tampered, chain, batch.number).verdict is BatchVerdict.ALTERED
    forged = v1_export(batch)
    forged["root"] = hashlib.sha256(b"x").hexdigest()
    assert "the published leaves are not the batch anchored" in check(forged, chain, 3).reason


def test_a_caller_may_accept_version_2_only(sealed: SealedLog, chain: FakeChain) -> None:
    batch = Batch.of(suggestion_batch(6))
    v1_chain = FakeChain().anchor(batch)
    result = verify_batch_export(
        v1_export(batch), v1_chain, log=LOG, batch=batch.number, versions=(2,)
    )
    assert result.verdict is BatchVerdict.MALFORMED
    assert result.reason.startswith("a version 1 export is not accepted here (only v=2): ")
    assert "PROTOCOL §8" in result.reason and v1_chain.calls == []
    assert verify_batch_export(sealed.export(1), chain, log=LOG, batch=1, versions=(2,)).valid
