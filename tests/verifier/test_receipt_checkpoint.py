"""Version 2 receipts checked offline from their cosigned checkpoint (PROTOCOL §11): each
verdict, built with the real core (note, checkpoint, cosignature) and a SealedLog; and
`civic-verify receipt --log-key` without a chain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.checkpoint import Checkpoint, sign_checkpoint
from core.cosignature import Cosigner
from core.note import Ed25519Signer, sign_note
from core.verdicts import Verdict
from tests.verifier.fakes import FakeChain, SealedLog, suggestion_batch
from verifier.checkpoint import CheckpointTrust
from verifier.cli import main
from verifier.receipt import verify_receipt

ORIGIN = "civic-ledger.localhost/suggestions"
NOW = 1_764_000_000
INDEX = 6  # in batch 1 (entries 5..10)


def log_key(name: str = ORIGIN, fill: int = 1) -> Ed25519Signer:
    return Ed25519Signer(name, bytes([fill]) * 32)


def witness(n: int) -> Cosigner:
    return Cosigner(f"witness{n}.example", bytes([100 + n]) * 32)


@pytest.fixture
def sealed() -> SealedLog:
    return SealedLog.of(suggestion_batch(14), [5, 6, 3])


def checkpoint_of(
    sealed: SealedLog,
    batch: int = 1,
    *,
    key: Ed25519Signer | None = None,
    cosigners: tuple[Cosigner, ...] = (),
    origin: str = ORIGIN,
    root: bytes | None = None,
    size: int | None = None,
) -> str:
    key = key or log_key()
    checkpoint = Checkpoint(
        origin,
        sealed.ends[batch] if size is None else size,
        sealed.root(batch) if root is None else root,
    )
    note = (
        sign_checkpoint(checkpoint, key) if origin == key.name else sign_note(checkpoint.text, key)
    )
    return note + "".join(c.cosign(checkpoint.text, NOW).line for c in cosigners)


def receipt_with(sealed: SealedLog, note: str) -> dict[str, Any]:
    receipt = sealed.receipt(INDEX)
    receipt["checkpoint"] = note
    return receipt


def trust(
    *witnesses: Cosigner, quorum: int = 0, key: Ed25519Signer | None = None
) -> CheckpointTrust:
    return CheckpointTrust(
        (key or log_key()).verifier, tuple(w.verifier for w in witnesses), quorum
    )


def offline(receipt: dict[str, Any], with_trust: CheckpointTrust | None) -> Verdict:
    return verify_receipt(receipt, None, trust=with_trust).verdict


def test_a_cosigned_checkpoint_is_a_trust_root_without_the_chain(sealed: SealedLog) -> None:
    note = checkpoint_of(sealed, cosigners=(witness(1), witness(2)))
    result = verify_receipt(
        receipt_with(sealed, note), None, trust=trust(witness(1), witness(2), quorum=2)
    )
    assert result.verdict is Verdict.VALID, result.reason
    assert "2 of 2 trusted witnesses cosigned (witness1.example, witness2.example)" in " ".join(
        c.detail for c in result.checks
    )
    assert "the chain was not asked" in result.reason


def test_fewer_cosignatures_than_the_quorum_is_unconfirmed(sealed: SealedLog) -> None:
    note = checkpoint_of(sealed, cosigners=(witness(1),))
    result = verify_receipt(
        receipt_with(sealed, note), None, trust=trust(witness(1), witness(2), quorum=2)
    )
    assert result.verdict is Verdict.UNCONFIRMED
    assert result.reason.startswith("1 of 2 trusted witnesses cosigned")


def test_a_cosignature_by_an_untrusted_key_does_not_count(sealed: SealedLog) -> None:
    note = checkpoint_of(sealed, cosigners=(witness(3),))
    assert offline(receipt_with(sealed, note), trust(witness(1), quorum=1)) is Verdict.UNCONFIRMED


def test_no_trust_root_at_all_is_unconfirmed(sealed: SealedLog) -> None:
    result = verify_receipt(receipt_with(sealed, checkpoint_of(sealed)), None)
    assert result.verdict is Verdict.UNCONFIRMED
    assert "neither a chain endpoint nor the log's key" in result.reason


def test_a_log_key_without_a_checkpoint_in_the_receipt_is_unconfirmed(sealed: SealedLog) -> None:
    assert offline(sealed.receipt(INDEX), trust()) is Verdict.UNCONFIRMED


def test_a_changed_checkpoint_is_bad_signature(sealed: SealedLog) -> None:
    note = checkpoint_of(sealed)
    forged = note.replace(f"\n{sealed.ends[1]}\n", f"\n{sealed.ends[1] + 1}\n", 1)
    result = verify_receipt(receipt_with(sealed, forged), None, trust=trust())
    assert result.verdict is Verdict.BAD_SIGNATURE
    assert result.reason.startswith(f"the checkpoint's line by {ORIGIN}+")


def test_a_bad_cosignature_by_a_trusted_witness_is_bad_signature(sealed: SealedLog) -> None:
    checkpoint = Checkpoint(ORIGIN, sealed.ends[1], sealed.root(1))
    other = Checkpoint(ORIGIN, sealed.ends[0], sealed.root(0))
    # The witness's line cosigns another checkpoint: it names a trusted key and fails.
    note = sign_checkpoint(checkpoint, log_key()) + witness(1).cosign(other.text, NOW).line
    result = verify_receipt(receipt_with(sealed, note), None, trust=trust(witness(1), quorum=1))
    assert result.verdict is Verdict.BAD_SIGNATURE
    assert "witness1.example" in result.reason


def test_our_origin_signed_by_another_key_is_bad_signature(sealed: SealedLog) -> None:
    impostor = log_key(fill=9)  # same name, another key: another key ID
    note = checkpoint_of(sealed, key=impostor)
    result = verify_receipt(receipt_with(sealed, note), None, trust=trust())
    assert result.verdict is Verdict.BAD_SIGNATURE
    assert "is not signed by its key" in result.reason


def test_a_checkpoint_of_another_log_is_wrong_chain(sealed: SealedLog) -> None:
    other = log_key("elsewhere.example/suggestions", fill=7)
    note = checkpoint_of(sealed, key=other, origin=other.name)
    result = verify_receipt(receipt_with(sealed, note), None, trust=trust())
    assert result.verdict is Verdict.WRONG_CHAIN
    assert "elsewhere.example/suggestions" in result.reason


def test_a_log_key_of_another_log_is_wrong_chain(sealed: SealedLog) -> None:
    access = log_key("civic-ledger.localhost/access", fill=5)
    note = checkpoint_of(sealed, key=access, origin=access.name)
    result = verify_receipt(receipt_with(sealed, note), None, trust=trust(key=access))
    assert result.verdict is Verdict.WRONG_CHAIN
    assert "is not the key of log 'suggestions'" in result.reason


def test_the_log_key_signing_another_origin_is_wrong_chain(sealed: SealedLog) -> None:
    note = checkpoint_of(sealed, origin="civic-ledger.localhost/other")
    assert offline(receipt_with(sealed, note), trust()) is Verdict.WRONG_CHAIN


@pytest.mark.parametrize("what", ["size", "root"])
def test_a_signed_checkpoint_of_another_tree_is_root_mismatch(sealed: SealedLog, what: str) -> None:
    note = (
        checkpoint_of(sealed, size=sealed.ends[2], root=sealed.root(2))
        if what == "size"
        else checkpoint_of(sealed, root=sealed.root(0))
    )
    assert offline(receipt_with(sealed, note), trust()) is Verdict.ROOT_MISMATCH


def test_a_checkpoint_that_is_not_a_note_is_malformed(sealed: SealedLog) -> None:
    note = f"{ORIGIN}\n11\nnot base64\n"
    assert offline(receipt_with(sealed, note), trust()) is Verdict.MALFORMED


def test_the_inclusion_proof_is_still_checked_offline(sealed: SealedLog) -> None:
    receipt = receipt_with(sealed, checkpoint_of(sealed))
    receipt["record"]["body"]["title"] = "changed"
    assert offline(receipt, trust()) is Verdict.ALTERED


def test_requiring_confirmations_without_a_chain_is_unconfirmed(sealed: SealedLog) -> None:
    receipt = receipt_with(sealed, checkpoint_of(sealed))
    result = verify_receipt(receipt, None, trust=trust(), min_confirmations=1)
    assert result.verdict is Verdict.UNCONFIRMED


def test_with_the_chain_as_well_both_must_pass(sealed: SealedLog) -> None:
    receipt = receipt_with(sealed, checkpoint_of(sealed, cosigners=(witness(1),)))
    honest = FakeChain().anchor_log(sealed)
    both = verify_receipt(receipt, honest, trust=trust(witness(1), quorum=1))
    assert both.verdict is Verdict.VALID
    assert {c.name for c in both.checks} >= {"checkpoint", "anchored root and size"}
    # The chain holds another root for batch 1: the signed checkpoint does not save it.
    lying = FakeChain().anchor_log(sealed).anchor_root("suggestions", 1, sealed.root(0), 11)
    assert verify_receipt(receipt, lying, trust=trust()).verdict is Verdict.ROOT_MISMATCH
    # The checkpoint fails: the chain is not asked.
    forged = receipt_with(sealed, checkpoint_of(sealed, key=log_key(fill=9)))
    chain = FakeChain().anchor_log(sealed)
    assert verify_receipt(forged, chain, trust=trust()).verdict is Verdict.BAD_SIGNATURE
    assert chain.calls == []


def test_a_quorum_larger_than_the_witnesses_is_refused() -> None:
    with pytest.raises(ValueError, match="a quorum of 2 needs at least 2 distinct witness keys"):
        trust(witness(1), quorum=2)


# -- the command line ----------------------------------------------------------------------


def _unreachable(rpc: str, timeout: float) -> Any:
    raise AssertionError(f"the chain was asked ({rpc}) without --rpc")


def run_cli(path: Path, *args: str, capsys: Any) -> tuple[int, dict[str, Any]]:
    code = main(["receipt", str(path), "--json", *args], reader_factory=_unreachable)
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def test_cli_verifies_offline_with_the_log_and_witness_keys(
    sealed: SealedLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(
        json.dumps(receipt_with(sealed, checkpoint_of(sealed, cosigners=(witness(1),))))
    )
    keys = ["--log-key", log_key().verifier_key, "--witness", witness(1).verifier_key]
    code, shown = run_cli(path, *keys, capsys=capsys)
    assert (code, shown["verdict"]) == (0, "valid")
    code, shown = run_cli(
        path, *keys, "--witness", witness(2).verifier_key, "--quorum", "2", capsys=capsys
    )
    assert (code, shown["verdict"]) == (1, "unconfirmed")
    other = log_key(fill=9).verifier_key
    code, shown = run_cli(path, "--log-key", other, capsys=capsys)
    assert (code, shown["verdict"]) == (1, "bad_signature")


def test_cli_refuses_a_malformed_key_or_witnesses_without_a_log_key(
    sealed: SealedLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt_with(sealed, checkpoint_of(sealed))))
    assert main(["receipt", str(path), "--log-key", "nonsense"], reader_factory=_unreachable) == 2
    assert "--log-key/--witness/--quorum" in capsys.readouterr().err
    # A witness key is type 0x04: not a log key.
    code = main(["receipt", str(path), "--log-key", witness(1).verifier_key])
    assert code == 2
    code = main(
        ["receipt", str(path), "--witness", witness(1).verifier_key], reader_factory=_unreachable
    )
    assert code == 2
    assert "--witness and --quorum need --log-key" in capsys.readouterr().err
