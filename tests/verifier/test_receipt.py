"""verify_receipt against PROTOCOL §5: every verdict, and exactly that verdict, per fault."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from eth_utils.crypto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from core.verdicts import ReceiptVerification, Verdict
from tests.verifier.fakes import (
    ANCHOR_BLOCK,
    ATTESTATIONS,
    CONTRACT,
    LATEST_BLOCK,
    Batch,
    FakeChain,
    SealedLog,
    suggestion_batch,
)
from verifier.chain import log_id
from verifier.errors import ChainUnreachable, ReceiptMalformed
from verifier.receipt import receipt_from_json, verify_receipt, verify_receipt_json

INDEX = 5  # of 7: seq 2 of trail B, so prev is a real hash; its path has 3 hashes


@pytest.fixture(scope="module")
def batch() -> Batch:
    return Batch.of(suggestion_batch(7))


@pytest.fixture
def chain(batch: Batch) -> FakeChain:
    return FakeChain().anchor(batch)


@pytest.fixture
def receipt(batch: Batch) -> dict[str, Any]:
    return batch.receipt(INDEX)


def verdict_of(receipt: Any, chain: FakeChain, **kwargs: int) -> Verdict:
    return verify_receipt(receipt, chain, **kwargs).verdict


def changed(text: str, at: int = -1) -> str:
    """``text`` with one character changed, keeping its kind (hex stays hex, digit stays digit)."""
    c = text[at]
    if c.isdigit():
        new = str((int(c) + 1) % 10)
    elif c in "abcde":
        new = chr(ord(c) + 1)
    elif c == "f":
        new = "a"
    else:
        new = chr(ord(c) + 1)
    position = at % len(text)
    return text[:position] + new + text[position + 1 :]


# --- valid -----------------------------------------------------------------------------------


def test_an_honest_receipt_is_valid(
    receipt: dict[str, Any], chain: FakeChain, batch: Batch
) -> None:
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.VALID
    assert result.valid
    assert result.record_hash == batch.records[INDEX].record_hash
    assert [(c.step, c.name, c.ok) for c in result.checks] == [
        (1, "receipt is well-formed", True),
        (2, "record hash", True),
        (3, "inclusion proof", True),
        (4, "chain id", True),
        (4, "contract", True),
        (4, "anchored root and size", True),
        (5, "confirmations", True),
        (5, "attestations", True),
    ]
    details = " | ".join(c.detail for c in result.checks)
    assert batch.records[INDEX].record_hash in details
    assert batch.root.hex() in details
    assert f"{LATEST_BLOCK - ANCHOR_BLOCK + 1} confirmations" in details
    assert f"{ATTESTATIONS} witness attestations" in details
    assert "2026-11-27 09:30:00 UTC" in details
    assert result.reason == (
        "the record is leaf 5 of batch 3 of log 'suggestions', anchored on chain 1337 in block 100"
    )


def test_result_serialises_to_json(receipt: dict[str, Any], chain: FakeChain) -> None:
    result = verify_receipt(receipt, chain)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["verdict"] == "valid"
    assert data["record_hash"] == result.record_hash
    assert data["checks"][0] == {
        "step": 1,
        "name": "receipt is well-formed",
        "ok": True,
        "detail": result.checks[0].detail,
    }


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 40), data=st.data())
def test_every_leaf_of_any_batch_size_is_valid(size: int, data: st.DataObject) -> None:
    batch = Batch.of(
        suggestion_batch(size, log="access"), number=data.draw(st.integers(0, 2**64 - 1))
    )
    index = data.draw(st.integers(0, size - 1), label="index")
    assert verdict_of(batch.receipt(index), FakeChain().anchor(batch)) is Verdict.VALID


def test_verdict_values_are_the_protocol_words() -> None:
    assert [v.value for v in Verdict] == [
        "valid", "altered", "not_anchored", "root_mismatch",
        "wrong_chain", "malformed", "unconfirmed", "redacted",
        "bad_signature", "inconsistent",
    ]  # fmt: skip
    assert Verdict("root_mismatch") is Verdict.ROOT_MISMATCH
    assert isinstance(Verdict.VALID, str)
    assert f"{Verdict.VALID}" == "valid"


def test_log_id_is_keccak256_of_the_utf8_name() -> None:
    assert log_id("").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert log_id("suggestions") == keccak(b"suggestions")
    assert log_id("suggestions") != hashlib.sha3_256(b"suggestions").digest()


# --- altered: step 3 -------------------------------------------------------------------------


def _change_log(receipt: dict[str, Any], log: str) -> None:
    # The log is named twice; changing only one is malformed (below), both is altered.
    receipt["record"]["log"] = log
    receipt["proof"]["log"] = log


RECORD_CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "type": lambda r: r["record"].update(type=changed(r["record"]["type"])),
    "subject": lambda r: r["record"].update(subject=changed(r["record"]["subject"])),
    "seq": lambda r: r["record"].update(seq=r["record"]["seq"] + 1),
    "prev": lambda r: r["record"].update(prev=changed(r["record"]["prev"])),
    "at": lambda r: r["record"].update(at=changed(r["record"]["at"], -2)),
    "actor": lambda r: r["record"]["actor"].update(id=changed(r["record"]["actor"]["id"])),
    "body": lambda r: r["record"]["body"].update(title=changed(r["record"]["body"]["title"], 4)),
    "salt": lambda r: r["record"].update(salt=changed(r["record"]["salt"])),
    "log": lambda r: _change_log(r, "votes"),
}


@pytest.mark.parametrize("member", RECORD_CHANGES)
def test_a_changed_record_member_is_altered(
    member: str, receipt: dict[str, Any], chain: FakeChain
) -> None:
    RECORD_CHANGES[member](receipt)
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.ALTERED
    assert (result.checks[-1].step, result.checks[-1].ok) == (3, False)
    assert "differs from proof.root" in result.reason


def test_every_record_member_but_v_is_covered_by_a_change_test(receipt: dict[str, Any]) -> None:
    # v can only be 1: changing it is malformed (tested below).
    assert set(RECORD_CHANGES) | {"v"} == set(receipt["record"])


@pytest.mark.parametrize("position", range(3))
def test_a_changed_path_element_is_altered(
    position: int, receipt: dict[str, Any], chain: FakeChain
) -> None:
    receipt["proof"]["path"][position] = changed(receipt["proof"]["path"][position])
    assert verdict_of(receipt, chain) is Verdict.ALTERED


PROOF_CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "swapped path order": lambda r: r["proof"]["path"].reverse(),
    "index - 1": lambda r: r["proof"].update(index=INDEX - 1),
    "index + 1": lambda r: r["proof"].update(index=INDEX + 1),
    "index 0": lambda r: r["proof"].update(index=0),
    "size 6": lambda r: r["proof"].update(size=6),
    "size 9": lambda r: r["proof"].update(size=9),
    "truncated path": lambda r: r["proof"]["path"].pop(),
    "path without its first hash": lambda r: r["proof"]["path"].pop(0),
    "empty path": lambda r: r["proof"].update(path=[]),
    "extended path": lambda r: r["proof"]["path"].append("00" * 32),
    "path with the root prepended": lambda r: r["proof"]["path"].insert(0, r["proof"]["root"]),
    "wrong proof.root": lambda r: r["proof"].update(root=changed(r["proof"]["root"])),
}


@pytest.mark.parametrize("change", PROOF_CHANGES)
def test_a_changed_proof_is_altered(change: str, receipt: dict[str, Any], chain: FakeChain) -> None:
    PROOF_CHANGES[change](receipt)
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.ALTERED
    assert (result.checks[-1].step, result.checks[-1].name) == (3, "inclusion proof")
    assert "batch_of" not in chain.calls  # step 3 fails before anyone asks the chain


def test_a_wrong_proof_root_is_altered_even_if_the_chain_has_that_root(
    receipt: dict[str, Any], batch: Batch
) -> None:
    forged_root = changed(receipt["proof"]["root"])
    receipt["proof"]["root"] = forged_root
    chain = FakeChain().anchor(batch, root=bytes.fromhex(forged_root))
    assert verdict_of(receipt, chain) is Verdict.ALTERED


# --- step 4: not_anchored, root_mismatch, wrong_chain -----------------------------------------


def test_no_batch_on_chain_is_not_anchored(receipt: dict[str, Any]) -> None:
    result = verify_receipt(receipt, FakeChain())
    assert result.verdict is Verdict.NOT_ANCHORED
    assert "batch 3 of log 'suggestions' is not anchored" in result.reason


def test_another_batch_number_is_not_anchored(receipt: dict[str, Any], chain: FakeChain) -> None:
    receipt["proof"]["batch"] = 4
    assert verdict_of(receipt, chain) is Verdict.NOT_ANCHORED


def test_a_different_root_on_chain_is_root_mismatch(receipt: dict[str, Any], batch: Batch) -> None:
    chain = FakeChain().anchor(batch, root=hashlib.sha256(b"another tree").digest())
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.ROOT_MISMATCH
    assert (result.checks[-1].step, result.checks[-1].name) == (4, "anchored root and size")


def test_a_different_size_on_chain_is_root_mismatch(receipt: dict[str, Any], batch: Batch) -> None:
    chain = FakeChain().anchor(batch, size=8)
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.ROOT_MISMATCH
    assert "size 8" in result.reason


def test_a_claimed_size_the_path_also_fits_is_caught_by_the_size_on_chain(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    # Leaf 5's path walks the same way in a tree of 8 as in one of 7, so step 3 passes;
    # only the anchored size tells the trees apart.
    receipt["proof"]["size"] = 8
    result = verify_receipt(receipt, chain)
    assert result.checks[2].ok
    assert result.verdict is Verdict.ROOT_MISMATCH


def test_another_log_is_not_anchored(batch: Batch) -> None:
    votes = Batch.of(suggestion_batch(7, log="votes"))
    chain = FakeChain().anchor(batch)  # only the suggestions batch 3 is anchored
    assert verdict_of(votes.receipt(INDEX), chain) is Verdict.NOT_ANCHORED


def test_another_chain_id_is_wrong_chain(receipt: dict[str, Any], chain: FakeChain) -> None:
    chain.id = 1338
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.WRONG_CHAIN
    assert result.reason == "the endpoint serves chain 1338, the receipt names chain 1337"
    assert chain.calls == ["chain_id"]


def test_no_code_at_the_contract_is_wrong_chain(receipt: dict[str, Any], chain: FakeChain) -> None:
    chain.code_at = set()
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.WRONG_CHAIN
    assert result.checks[-1].name == "contract"
    assert "batch_of" not in chain.calls


def test_a_contract_that_is_not_a_registry_is_wrong_chain(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    chain.not_a_registry = True
    assert verdict_of(receipt, chain) is Verdict.WRONG_CHAIN


def test_an_unreachable_chain_is_an_error_not_a_verdict(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    chain.unreachable = True
    with pytest.raises(ChainUnreachable, match="cannot reach"):
        verify_receipt(receipt, chain)


def test_the_receipt_block_is_reported_not_enforced(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    receipt["anchor"]["block"] = ANCHOR_BLOCK + 7  # e.g. after a reorg
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.VALID
    assert "anchored in block 100 (the receipt says block 107)" in result.checks[5].detail


# --- step 5: unconfirmed ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "verdict"),
    [
        (0, Verdict.VALID),
        (21, Verdict.VALID),
        (22, Verdict.UNCONFIRMED),
        (1000, Verdict.UNCONFIRMED),
    ],
)
def test_confirmations(k: int, verdict: Verdict, receipt: dict[str, Any], chain: FakeChain) -> None:
    assert LATEST_BLOCK - ANCHOR_BLOCK + 1 == 21
    result = verify_receipt(receipt, chain, min_confirmations=k)
    assert result.verdict is verdict
    if verdict is Verdict.UNCONFIRMED:
        assert result.reason == f"21 confirmations (block 100, latest 120); {k} required"


def test_a_node_behind_the_anchor_counts_no_confirmations(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    chain.latest = ANCHOR_BLOCK - 5
    assert verdict_of(receipt, chain) is Verdict.VALID
    assert verdict_of(receipt, chain, min_confirmations=1) is Verdict.UNCONFIRMED


@pytest.mark.parametrize(
    ("w", "verdict"), [(0, Verdict.VALID), (2, Verdict.VALID), (3, Verdict.UNCONFIRMED)]
)
def test_attestations(w: int, verdict: Verdict, receipt: dict[str, Any], chain: FakeChain) -> None:
    result = verify_receipt(receipt, chain, min_attestations=w)
    assert result.verdict is verdict
    if verdict is Verdict.UNCONFIRMED:
        assert result.reason == "2 witness attestations; 3 required"


def test_a_registry_without_attestations_only_matters_when_they_are_required(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    chain.no_attestations_view = True
    assert verdict_of(receipt, chain) is Verdict.VALID
    assert verdict_of(receipt, chain, min_attestations=1) is Verdict.WRONG_CHAIN


def test_negative_requirements_are_a_programming_error(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        verify_receipt(receipt, chain, min_confirmations=-1)


# --- malformed: step 1 -----------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(receipt: dict[str, Any]) -> None:
        target: Any = receipt
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(receipt: dict[str, Any]) -> None:
        target: Any = receipt
        for part in parents:
            target = target[part]
        del target[last]

    return change


def _upper(path: str) -> Callable[[dict[str, Any]], None]:
    *parents, last = path.split(".")

    def change(receipt: dict[str, Any]) -> None:
        target: Any = receipt
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        key: Any = int(last) if isinstance(target, list) else last
        target[key] = target[key].upper()

    return change


MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("v missing", _delete("v"), "the receipt lacks v"),
    ("record missing", _delete("record"), "the receipt lacks record"),
    ("proof missing", _delete("proof"), "the receipt lacks proof"),
    ("anchor missing", _delete("anchor"), "the receipt lacks anchor"),
    ("v is 3", _set("v", 3), "receipt version 3 is not supported; this verifier knows v=1 and v=2"),
    ("v is 0", _set("v", 0), "receipt version 0 is not supported"),
    ("v is true", _set("v", True), "v must be an integer, got true"),
    ("v is a string", _set("v", "1"), "v must be an integer, got a string"),
    ("v is 1.0", _set("v", 1.0), "v must be an integer, got the non-integer number 1.0"),
    ("record is a list", _set("record", []), "record: a record is a JSON object"),
    (
        "record lacks salt",
        _delete("record.salt"),
        r"record: record members differ: missing \['salt'\]",
    ),
    ("record has an extra member", _set("record.note", "x"), r"unexpected \['note'\]"),
    ("record.v is 2", _set("record.v", 2), "record: 'v' must be 1"),
    ("record.seq is true", _set("record.seq", True), "record: 'seq' must be an integer"),
    ("record.log is a list", _set("record.log", ["votes"]), "record: 'log' must be one of"),
    (
        "record.prev uppercase",
        _upper("record.prev"),
        "record: 'prev' must be a 64-character lowercase",
    ),
    ("record.salt uppercase", _upper("record.salt"), "record: 'salt' must be 32 lowercase hex"),
    (
        "record.at without ms",
        _set("record.at", "2026-11-27T09:30:05Z"),
        "record: 'at' must look like",
    ),
    ("float in body", _set("record.body.amount", 1.5), r"record: \$\.body\.amount: floating-point"),
    ("big int in body", _set("record.body.amount", 2**53), "outside"),
    ("lone surrogate in body", _set("record.body.title", "\ud800"), "record: "),
    (
        "record.log differs from proof.log",
        _set("record.log", "votes"),
        "proof.log 'suggestions' differs from record.log 'votes'",
    ),
    (
        "leaf_hash beside a record",
        _set("leaf_hash", "00" * 32),
        "leaf_hash belong only to a redacted receipt",
    ),
    (
        "redaction beside a record",
        _set("redaction", {"at": "2027-01-05T08:00:00.000Z", "reason": "x"}),
        "redaction belong only",
    ),
    ("proof not an object", _set("proof", [1]), "proof must be a JSON object"),
    ("proof.log missing", _delete("proof.log"), "proof lacks log"),
    ("proof.batch missing", _delete("proof.batch"), "proof lacks batch"),
    ("proof.index missing", _delete("proof.index"), "proof lacks index"),
    ("proof.size missing", _delete("proof.size"), "proof lacks size"),
    ("proof.path missing", _delete("proof.path"), "proof lacks path"),
    ("proof.root missing", _delete("proof.root"), "proof lacks root"),
    ("proof.log unknown", _set("proof.log", "ballots"), "proof.log must be one of"),
    ("proof.batch is true", _set("proof.batch", True), "proof.batch must be an integer, got true"),
    (
        "proof.index is false",
        _set("proof.index", False),
        "proof.index must be an integer, got false",
    ),
    ("proof.size is true", _set("proof.size", True), "proof.size must be an integer"),
    ("proof.index is 5.0", _set("proof.index", 5.0), "proof.index must be an integer"),
    (
        "proof.index is a string",
        _set("proof.index", "5"),
        "proof.index must be an integer, got a string",
    ),
    ("proof.batch negative", _set("proof.batch", -1), "proof.batch must be between 0 and"),
    ("proof.batch beyond uint64", _set("proof.batch", 2**64), "proof.batch must be between"),
    ("proof.size zero", _set("proof.size", 0), "proof.size must be between 1 and 4294967295"),
    ("proof.size beyond uint32", _set("proof.size", 2**32), "proof.size must be between"),
    ("proof.index negative", _set("proof.index", -1), "proof.index must be between 0"),
    ("proof.index equals size", _set("proof.index", 7), "proof.index 7 must be below proof.size 7"),
    ("proof.path a string", _set("proof.path", "00" * 32), "proof.path must be a JSON array"),
    (
        "proof.path element uppercase",
        _upper("proof.path.0"),
        r"proof.path\[0\] must be 64 lowercase hex",
    ),
    ("proof.path element short", _set("proof.path.1", "00" * 31), r"proof.path\[1\] must be 64"),
    ("proof.path element a number", _set("proof.path.2", 0), r"proof.path\[2\] must be 64"),
    ("proof.root uppercase", _upper("proof.root"), "proof.root must be 64 lowercase hex"),
    (
        "proof.root with 0x",
        lambda r: r["proof"].update(root="0x" + r["proof"]["root"]),
        "proof.root must be 64",
    ),
    ("anchor not an object", _set("anchor", None), "anchor must be a JSON object"),
    ("anchor.chain_id missing", _delete("anchor.chain_id"), "anchor lacks chain_id"),
    ("anchor.contract missing", _delete("anchor.contract"), "anchor lacks contract"),
    ("anchor.tx missing", _delete("anchor.tx"), "anchor lacks tx"),
    ("anchor.block missing", _delete("anchor.block"), "anchor lacks block"),
    (
        "anchor.chain_id is true",
        _set("anchor.chain_id", True),
        "anchor.chain_id must be an integer, got true",
    ),
    (
        "anchor.chain_id is a string",
        _set("anchor.chain_id", "1337"),
        "anchor.chain_id must be an integer",
    ),
    ("anchor.chain_id zero", _set("anchor.chain_id", 0), "anchor.chain_id must be between 1"),
    (
        "anchor.block is false",
        _set("anchor.block", False),
        "anchor.block must be an integer, got false",
    ),
    ("anchor.block negative", _set("anchor.block", -1), "anchor.block must be between 0"),
    (
        "anchor.contract short",
        _set("anchor.contract", CONTRACT[:-1]),
        "anchor.contract must be 0x followed by 40 hex",
    ),
    (
        "anchor.contract without 0x",
        _set("anchor.contract", CONTRACT[2:] + "00"),
        "anchor.contract must be 0x",
    ),
    (
        "anchor.contract bad checksum",
        _set("anchor.contract", CONTRACT.replace("F", "f", 1)),
        "not an EIP-55 checksum",
    ),
    (
        "anchor.tx uppercase",
        _set("anchor.tx", "0x" + "AB" * 32),
        "anchor.tx must be 0x followed by 64 lowercase hex",
    ),
    ("anchor.tx short", _set("anchor.tx", "0x" + "ab" * 31), "anchor.tx must be 0x"),
]


@pytest.mark.parametrize(
    ("change", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_receipts(
    change: Callable[[dict[str, Any]], None],
    message: str,
    receipt: dict[str, Any],
    chain: FakeChain,
) -> None:
    change(receipt)
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.MALFORMED
    assert [(c.step, c.ok) for c in result.checks] == [(1, False)]
    assert result.record_hash is None
    assert chain.calls == []  # nothing is asked of the chain about a malformed receipt
    assert_mentions(result.reason, message)


def assert_mentions(text: str, pattern: str) -> None:
    assert re.search(pattern, text), f"{pattern!r} not found in {text!r}"


@pytest.mark.parametrize("receipt", [None, [], "receipt", 1, True], ids=repr)
def test_a_receipt_that_is_not_an_object_is_malformed(receipt: Any, chain: FakeChain) -> None:
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.MALFORMED
    assert result.reason == "the receipt must be a JSON object"


@pytest.mark.parametrize(
    "contract",
    [CONTRACT, CONTRACT.lower(), "0x" + CONTRACT[2:].upper()],
    ids=["eip55", "lower", "upper"],
)
def test_contract_address_in_one_case_or_checksummed_is_accepted(
    contract: str, receipt: dict[str, Any], chain: FakeChain
) -> None:
    receipt["anchor"]["contract"] = contract
    assert verdict_of(receipt, chain) is Verdict.VALID


def test_unknown_envelope_members_are_tolerated_and_reported(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    receipt["status"] = "anchored"
    receipt["proof"]["algorithm"] = "sha256"
    receipt["anchor"]["explorer"] = "https://example.invalid/tx"
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.VALID
    assert result.checks[0].detail.endswith(
        "ignored unknown members: receipt.status, proof.algorithm, anchor.explorer"
    )


# --- redacted (§7) ---------------------------------------------------------------------------


@pytest.fixture
def redacted(batch: Batch) -> dict[str, Any]:
    return batch.redacted_receipt(INDEX)


def test_a_redacted_receipt_that_passes_steps_3_to_5_is_redacted(
    redacted: dict[str, Any], chain: FakeChain, batch: Batch
) -> None:
    result = verify_receipt(redacted, chain, min_confirmations=21, min_attestations=2)
    assert result.verdict is Verdict.REDACTED
    assert not result.valid
    assert result.record_hash == batch.records[INDEX].record_hash
    assert all(c.ok for c in result.checks)
    assert "erased at 2027-01-05T08:00:00.000Z (删除请求 (PIPL art. 47))" in result.checks[1].detail
    assert result.reason.startswith("the record's content was erased (删除请求 (PIPL art. 47))")


def test_a_redacted_receipt_with_a_wrong_leaf_hash_is_altered(
    redacted: dict[str, Any], chain: FakeChain
) -> None:
    redacted["leaf_hash"] = changed(redacted["leaf_hash"])
    assert verdict_of(redacted, chain) is Verdict.ALTERED


@pytest.mark.parametrize(
    ("chain_change", "kwargs", "verdict"),
    [
        ("unanchored", {}, Verdict.NOT_ANCHORED),
        ("other root", {}, Verdict.ROOT_MISMATCH),
        ("other chain", {}, Verdict.WRONG_CHAIN),
        ("anchored", {"min_confirmations": 22}, Verdict.UNCONFIRMED),
    ],
)
def test_a_redacted_receipt_still_runs_steps_4_and_5(
    chain_change: str,
    kwargs: dict[str, int],
    verdict: Verdict,
    redacted: dict[str, Any],
    batch: Batch,
) -> None:
    chain = {
        "unanchored": FakeChain(),
        "other root": FakeChain().anchor(batch, root=bytes(31) + b"\x01"),
        "other chain": FakeChain(id=1).anchor(batch),
        "anchored": FakeChain().anchor(batch),
    }[chain_change]
    assert verify_receipt(redacted, chain, **kwargs).verdict is verdict


REDACTED_MALFORMED: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "leaf_hash missing",
        _delete("leaf_hash"),
        "a redacted receipt \\(record null\\) lacks leaf_hash",
    ),
    ("redaction missing", _delete("redaction"), "lacks redaction"),
    ("leaf_hash uppercase", _upper("leaf_hash"), "leaf_hash must be 64 lowercase hex"),
    ("leaf_hash a number", _set("leaf_hash", 7), "leaf_hash must be 64 lowercase hex"),
    ("redaction a string", _set("redaction", "erased"), "redaction must be a JSON object"),
    ("redaction.at missing", _delete("redaction.at"), "redaction lacks at"),
    ("redaction.reason missing", _delete("redaction.reason"), "redaction lacks reason"),
    (
        "redaction.at not a time",
        _set("redaction.at", "yesterday"),
        "redaction: 'at' must look like",
    ),
    (
        "redaction.reason empty",
        _set("redaction.reason", ""),
        "redaction.reason must be a non-empty string",
    ),
    ("proof.log unknown", _set("proof.log", "other"), "proof.log must be one of"),
]


@pytest.mark.parametrize(
    ("change", "message"),
    [m[1:] for m in REDACTED_MALFORMED],
    ids=[m[0] for m in REDACTED_MALFORMED],
)
def test_malformed_redacted_receipts(
    change: Callable[[dict[str, Any]], None],
    message: str,
    redacted: dict[str, Any],
    chain: FakeChain,
) -> None:
    change(redacted)
    result = verify_receipt(redacted, chain)
    assert result.verdict is Verdict.MALFORMED
    assert_mentions(result.reason, message)


def test_redaction_keeps_every_other_receipt_of_the_batch_valid(
    batch: Batch, chain: FakeChain
) -> None:
    verdicts = [
        verdict_of(batch.redacted_receipt(i) if i == INDEX else batch.receipt(i), chain)
        for i in range(len(batch.records))
    ]
    assert verdicts == [Verdict.VALID] * INDEX + [Verdict.REDACTED] + [Verdict.VALID]


# --- strict JSON -----------------------------------------------------------------------------


def test_receipt_from_json_reads_what_json_dumps_writes(receipt: dict[str, Any]) -> None:
    text = json.dumps(receipt, ensure_ascii=False, indent=2)
    assert receipt_from_json(text) == receipt
    assert receipt_from_json(text.encode("utf-8")) == receipt
    assert receipt_from_json("\ufeff" + text) == receipt


NOT_STRICT_JSON: list[tuple[str, str | bytes, str]] = [
    ("duplicate top-level member", '{"v": 1, "v": 1}', "duplicate member 'v'"),
    ("duplicate nested member", '{"proof": {"index": 1, "index": 2}}', "duplicate member 'index'"),
    ("NaN", '{"v": NaN}', "NaN is not a JSON number"),
    ("Infinity", '{"v": Infinity}', "Infinity is not a JSON number"),
    ("-Infinity", '{"v": -Infinity}', "-Infinity is not a JSON number"),
    ("trailing comma", '{"v": 1,}', "the receipt is not JSON"),
    ("empty", "", "the receipt is not JSON"),
    ("single quotes", "{'v': 1}", "the receipt is not JSON"),
    ("not UTF-8", b'{"v": "\xff"}', "the receipt is not UTF-8 text"),
    ("two documents", '{"v": 1} {"v": 1}', "the receipt is not JSON"),
    # web3 (through py_ecc) raises the recursion limit to 100000: without the nesting cap
    # this would overflow the C stack instead of raising RecursionError.
    ("deeply nested", "[" * 100_000, "nests deeper than 64 levels"),
    ("deeply nested objects", '{"a":' * 65 + "1" + "}" * 65, "nests deeper than 64 levels"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in NOT_STRICT_JSON], ids=[c[0] for c in NOT_STRICT_JSON]
)
def test_receipt_from_json_is_strict(text: str | bytes, message: str, chain: FakeChain) -> None:
    with pytest.raises(ReceiptMalformed, match=message):
        receipt_from_json(text)
    result = verify_receipt_json(text, chain)
    assert result.verdict is Verdict.MALFORMED
    assert [(c.step, c.ok) for c in result.checks] == [(1, False)]


def test_nesting_is_counted_outside_strings_only(receipt: dict[str, Any], chain: FakeChain) -> None:
    receipt["record"]["body"]["title"] = "[" * 100 + "{" * 100
    receipt["record"]["body"]["deep"] = json.loads('{"a":' * 60 + "1" + "}" * 60)
    assert verify_receipt_json(json.dumps(receipt), chain).verdict is Verdict.ALTERED


def test_duplicate_members_in_a_real_receipt_are_malformed(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    text = json.dumps(receipt)
    # A second "root" member after the real one: which one would a reader believe?
    forged = text.replace('"root": ', f'"root": "{"00" * 32}", "root": ', 1)
    assert verify_receipt_json(forged, chain).verdict is Verdict.MALFORMED
    assert verify_receipt_json(text, chain).verdict is Verdict.VALID


def test_verify_receipt_json_passes_requirements_on(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    text = json.dumps(receipt)
    assert verify_receipt_json(text, chain, min_confirmations=22).verdict is Verdict.UNCONFIRMED
    assert verify_receipt_json(text, chain, min_attestations=3).verdict is Verdict.UNCONFIRMED


def test_verification_does_not_change_the_receipt(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    before = copy.deepcopy(receipt)
    result: ReceiptVerification = verify_receipt(receipt, chain)
    assert result.valid
    assert receipt == before


# --- version 2 (PROTOCOL §8, §11): one growing tree per log ---------------------------------

SIZES = (4, 7, 1, 5)  # batches 0–3: entries 0–3, 4–10, 11, 12–16
V2_INDEX = 6  # seq 3 of trail A, in batch 1; proven in the tree of 11 entries


@pytest.fixture(scope="module")
def sealed() -> SealedLog:
    return SealedLog.of(suggestion_batch(sum(SIZES)), SIZES)


@pytest.fixture
def v2_chain(sealed: SealedLog) -> FakeChain:
    return FakeChain().anchor_log(sealed)


@pytest.fixture
def v2_receipt(sealed: SealedLog) -> dict[str, Any]:
    return sealed.receipt(V2_INDEX)


def test_an_honest_v2_receipt_is_valid(
    v2_receipt: dict[str, Any], v2_chain: FakeChain, sealed: SealedLog
) -> None:
    proof = v2_receipt["proof"]
    assert (v2_receipt["v"], proof["batch"], proof["index"], proof["size"]) == (2, 1, 6, 11)
    result = verify_receipt(v2_receipt, v2_chain)
    assert result.verdict is Verdict.VALID
    assert result.record_hash == sealed.records[V2_INDEX].record_hash
    assert [(c.step, c.ok) for c in result.checks] == [
        (1, True), (2, True), (3, True), (4, True), (4, True), (4, True), (5, True), (5, True)
    ]  # fmt: skip
    assert result.checks[0].detail == (
        "v2 receipt: log 'suggestions', batch 1, entry 6 of 11, chain 1337"
    )
    assert result.reason == (
        "the record is entry 6 of log 'suggestions', in its tree of 11 entries anchored as "
        "batch 1 on chain 1337 in block 100"
    )


def test_every_entry_of_a_v2_log_is_valid_and_so_is_its_redacted_receipt(
    sealed: SealedLog, v2_chain: FakeChain
) -> None:
    for index in range(len(sealed.records)):
        assert verdict_of(sealed.receipt(index), v2_chain) is Verdict.VALID, index
        assert verdict_of(sealed.redacted_receipt(index), v2_chain) is Verdict.REDACTED, index


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 9), min_size=1, max_size=6), data=st.data())
def test_every_entry_of_any_v2_log_is_valid(sizes: list[int], data: st.DataObject) -> None:
    log = SealedLog.of(suggestion_batch(sum(sizes), log="access"), sizes)
    index = data.draw(st.integers(0, sum(sizes) - 1), label="index")
    assert verdict_of(log.receipt(index), FakeChain().anchor_log(log)) is Verdict.VALID


def test_a_v2_receipt_may_carry_a_checkpoint_not_read_without_a_log_key(
    v2_receipt: dict[str, Any], v2_chain: FakeChain
) -> None:
    v2_receipt["checkpoint"] = "civic-ledger.localhost/suggestions\n11\nAAAA\n\n— not read yet\n"
    result = verify_receipt(v2_receipt, v2_chain)
    assert result.verdict is Verdict.VALID
    assert result.checks[0].detail.endswith("; its checkpoint is not read (no log key given)")
    assert "ignored" not in result.checks[0].detail


@pytest.mark.parametrize("value", [None, 7, True, ["a"], {"note": "x"}], ids=repr)
def test_a_v2_checkpoint_that_is_not_a_string_is_malformed(
    value: Any, v2_receipt: dict[str, Any], v2_chain: FakeChain
) -> None:
    v2_receipt["checkpoint"] = value
    result = verify_receipt(v2_receipt, v2_chain)
    assert result.verdict is Verdict.MALFORMED
    assert result.reason.startswith("checkpoint must be a string (a C2SP checkpoint")
    assert v2_chain.calls == []


def test_a_checkpoint_in_a_v1_receipt_is_an_unknown_member(
    receipt: dict[str, Any], chain: FakeChain
) -> None:
    receipt["checkpoint"] = 7  # version 1 knows no checkpoint: tolerated, listed, not judged
    result = verify_receipt(receipt, chain)
    assert result.verdict is Verdict.VALID
    assert result.checks[0].detail.endswith("ignored unknown members: receipt.checkpoint")


def test_a_changed_v2_record_is_altered(v2_receipt: dict[str, Any], v2_chain: FakeChain) -> None:
    RECORD_CHANGES["body"](v2_receipt)
    result = verify_receipt(v2_receipt, v2_chain)
    assert result.verdict is Verdict.ALTERED
    assert (result.checks[-1].step, result.checks[-1].ok) == (3, False)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: r["proof"].update(index=V2_INDEX - 4), id="index within the batch"),
        pytest.param(lambda r: r["proof"].update(size=7), id="size of the batch alone"),
        pytest.param(lambda r: r["proof"]["path"].pop(), id="truncated path"),
    ],
)
def test_a_changed_v2_proof_is_altered(
    change: Callable[[dict[str, Any]], None], v2_receipt: dict[str, Any], v2_chain: FakeChain
) -> None:
    change(v2_receipt)
    result = verify_receipt(v2_receipt, v2_chain)
    assert result.verdict is Verdict.ALTERED
    assert (result.checks[-1].step, result.checks[-1].name) == (3, "inclusion proof")
    assert "batch_of" not in v2_chain.calls


def test_a_v2_receipt_against_another_root_is_root_mismatch(
    v2_receipt: dict[str, Any], sealed: SealedLog
) -> None:
    chain = FakeChain().anchor_root(sealed.log, 1, hashlib.sha256(b"another log").digest(), 11)
    result = verify_receipt(v2_receipt, chain)
    assert result.verdict is Verdict.ROOT_MISMATCH
    assert (result.checks[-1].step, result.checks[-1].name) == (4, "anchored root and size")


def test_a_proof_in_the_batch_alone_is_root_mismatch_under_a_v2_anchor(
    sealed: SealedLog, v2_chain: FakeChain
) -> None:
    # The version 1 proof of the same record (its batch's own tree) is self-consistent, so step 3
    # passes; the chain holds the whole log's root at the batch's end, and its size.
    own = Batch.of(sealed.records[4:11], number=1).receipt(V2_INDEX - 4)
    own["v"] = 2
    result = verify_receipt(own, v2_chain)
    assert result.checks[2].ok
    assert result.verdict is Verdict.ROOT_MISMATCH
    assert "size 11" in result.reason and "size 7" in result.reason


def test_a_v2_receipt_claiming_a_later_batch_is_root_mismatch(
    v2_receipt: dict[str, Any], v2_chain: FakeChain
) -> None:
    v2_receipt["proof"]["batch"] = 2  # anchored with 12 entries and another root
    assert verdict_of(v2_receipt, v2_chain) is Verdict.ROOT_MISMATCH


def test_a_v2_receipt_of_an_unanchored_batch_is_not_anchored(
    v2_receipt: dict[str, Any], sealed: SealedLog
) -> None:
    chain = FakeChain().anchor_log(sealed, batches=[0])
    assert verdict_of(v2_receipt, chain) is Verdict.NOT_ANCHORED
