"""civic-verify witness against a real ganache: honest batches are attested exactly once (also
across restarts), lying exports are reported and never attested, and keys are handled safely.
The service's batch export is a MockTransport: only its HTTP shape matters here."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from contracts.keys import address_of, generate_key
from core.verdicts import Verdict
from ledger.chain import ChainClient
from ledger.devchain import free_port, start_ganache
from tests.verifier.anchoring import Anchored, ExportService, anchor_batch, records_log
from verifier.chain import Web3ChainReader, log_id
from verifier.cli import main
from verifier.receipt import verify_receipt
from verifier.witness import (
    AttestSigner,
    KeyFileRefused,
    Witness,
    load_witness_key,
    state_path_for,
)

pytestmark = [pytest.mark.chain, pytest.mark.every_node]

API = "http://civic.test"


def write_key(path: Path, key: bytes, mode: int = 0o600) -> Path:
    path.write_text(f"0x{key.hex()}\n")
    path.chmod(mode)
    return path


@pytest.fixture
def key_file(tmp_path: Path, ganache) -> Path:  # type: ignore[no-untyped-def]
    return write_key(tmp_path / "witness.key", ganache.keys[1])


@pytest.fixture
def exports() -> ExportService:
    return ExportService()


@pytest.fixture
def two_batches(registry, exports: ExportService) -> list[Anchored]:  # type: ignore[no-untyped-def]
    log = records_log(5, 3)
    batches = [anchor_batch(registry.client, registry.address, log, n) for n in (0, 1)]
    for anchored in batches:
        exports.publish(anchored)
    return batches


@pytest.fixture
def witness_role(registry, ganache) -> None:  # type: ignore[no-untyped-def]
    registry.client.grant_role(registry.address, "WITNESS_ROLE", ganache.address(1))


def run(
    key: Path, exports: ExportService, rpc: str, *extra: str, capsys: Any = None
) -> tuple[int, str, str]:
    argv = ["witness", "--log", "suggestions", "--key", str(key), "--api", API, "--rpc", rpc]
    code = main(
        [*argv, "--once", *extra],
        http_transport=exports.transport(),
    )
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def attestations(registry, batch: int) -> int:  # type: ignore[no-untyped-def]
    return int(registry.client.attestations(registry.address, "suggestions", batch))


def test_attests_each_anchored_batch_once_across_restarts(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    receipt = two_batches[0].receipt(2)
    reader = Web3ChainReader(ganache.rpc_url)
    assert verify_receipt(receipt, reader, min_attestations=1).verdict is Verdict.UNCONFIRMED

    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 0, err
    assert "attested batch 0" in out and "attested batch 1" in out
    assert "2 attested, 0 already attested, 0 refused" in out
    assert [attestations(registry, n) for n in (0, 1)] == [1, 1]
    assert verify_receipt(receipt, reader, min_attestations=1).verdict is Verdict.VALID
    assert verify_receipt(receipt, reader, min_attestations=2).verdict is Verdict.UNCONFIRMED

    # A restart remembers where it was: nothing to do, nothing sent twice.
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert (code, err) == (0, "")
    assert "0 attested, 0 already attested, 0 refused" in out

    # Without its state file it rescans, and the chain's hasAttested stops a second attest.
    state = state_path_for(key_file, "suggestions")
    assert state.exists() and state.stat().st_mode & 0o077 == 0
    state.unlink()
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert (code, err) == (0, "")
    assert "0 attested, 2 already attested, 0 refused" in out
    assert [attestations(registry, n) for n in (0, 1)] == [1, 1]

    # New batches are followed from where it stopped.
    third = anchor_batch(registry.client, registry.address, records_log(5, 3, 2), 2)
    exports.publish(third)
    code, out, _ = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 0 and "1 attested, 0 already attested" in out
    assert attestations(registry, 2) == 1


def test_an_export_whose_root_is_not_the_chains_is_refused_loudly(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    liar = records_log(5, salt_from=20)  # consistent leaves and root, not anchored
    exports.publish(Anchored(liar, 0, two_batches[0].anchor))
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 3
    assert "MISMATCH in batch 0" in err and "ROOT_MISMATCH" in err and "NOT attested" in err
    assert "attested batch 1" in out  # and it keeps following the others
    assert [attestations(registry, n) for n in (0, 1)] == [0, 1]

    # Restarted, it looks at the refused batch again and is just as loud.
    code, _, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 3 and "MISMATCH in batch 0" in err
    assert attestations(registry, 0) == 0

    # Once the service publishes the true export, the batch is attested after all.
    exports.publish(two_batches[0])
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert (code, err) == (0, "")
    assert "attested batch 0" in out and attestations(registry, 0) == 1


def test_leaves_that_do_not_give_the_root_are_refused(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    def tamper(export: dict[str, Any]) -> None:
        leaf = export["leaf_hashes"][0]
        export["leaf_hashes"][0] = ("f" if leaf[0] != "f" else "e") + leaf[1:]

    exports.publish(two_batches[1], tamper)
    code, _, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 3
    assert "MISMATCH in batch 1" in err and "ALTERED" in err
    assert [attestations(registry, n) for n in (0, 1)] == [1, 0]


def test_a_log_rewritten_between_two_anchors_is_inconsistent_and_refused(
    registry, ganache, exports, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    # The registry only checks that sizes grow: an operator who rewrote entries 0–4 can still
    # anchor batch 1 over the new history. Its export is honest about that tree (leaves and
    # frontier give the anchored root), but the frontier does not give batch 0's anchored root.
    first = anchor_batch(registry.client, registry.address, records_log(5, 3), 0)
    rewritten = anchor_batch(registry.client, registry.address, records_log(5, 3, salt_from=20), 1)
    exports.publish(first)
    exports.publish(rewritten)
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 3
    assert "MISMATCH in batch 1 of log 'suggestions': INCONSISTENT" in err
    assert "the log was rewritten between the two anchors" in err
    assert "attested batch 0" in out
    assert [attestations(registry, n) for n in (0, 1)] == [1, 0]


def test_a_version_1_export_is_not_attested(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    def version_1(export: dict[str, Any]) -> None:  # batch 0 alone is the same tree in v1 and v2
        for member in ("v", "first", "frontier"):
            del export[member]

    exports.publish(two_batches[0], version_1)
    code, out, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 3
    assert "MISMATCH in batch 0 of log 'suggestions': MALFORMED" in err
    assert "a version 1 export is not accepted here (only v=2)" in err
    assert "attested batch 1" in out
    assert [attestations(registry, n) for n in (0, 1)] == [0, 1]


def test_an_export_naming_another_contract_than_the_pinned_one_is_refused(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    other = "0x" + "12" * 20
    code, _, err = run(key_file, exports, ganache.rpc_url, "--contract", other, capsys=capsys)
    assert code == 3 and "WRONG_CHAIN" in err and other in err
    assert attestations(registry, 0) == 0
    code, out, _ = run(
        key_file, exports, ganache.rpc_url, "--contract", registry.address, capsys=capsys
    )
    assert code == 0 and "2 attested" in out


def test_a_key_without_witness_role_gets_a_clear_error(
    registry, ganache, exports, two_batches, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 2
    assert f"{ganache.address(1)} does not hold WITNESS_ROLE on {registry.address}" in err
    assert attestations(registry, 0) == 0


def test_the_contract_refusal_is_named_too(registry, ganache, two_batches) -> None:  # type: ignore[no-untyped-def]
    signer = AttestSigner(ganache.rpc_url, ganache.keys[2])
    with pytest.raises(Exception, match="does not hold WITNESS_ROLE"):
        signer.attest(registry.address, "suggestions", 0, two_batches[0].root)
    registry.client.grant_role(registry.address, "WITNESS_ROLE", ganache.address(2))
    with pytest.raises(Exception, match="it anchors " + two_batches[0].root.hex()):
        signer.attest(registry.address, "suggestions", 0, bytes(32 * [7]))
    with pytest.raises(Exception, match="is not anchored"):
        signer.attest(registry.address, "suggestions", 5, bytes(32 * [7]))
    signer.attest(registry.address, "suggestions", 0, two_batches[0].root)
    with pytest.raises(Exception, match="has already attested"):
        signer.attest(registry.address, "suggestions", 0, two_batches[0].root)


def test_unsafe_or_unusable_key_files_are_refused(tmp_path: Path, ganache, exports, capsys) -> None:  # type: ignore[no-untyped-def]
    readable = write_key(tmp_path / "open.key", ganache.keys[1], mode=0o644)
    code, _, err = run(readable, exports, ganache.rpc_url, capsys=capsys)
    assert code == 2 and "chmod 600" in err
    for name, text in (("short.key", "0xabcd"), ("text.key", "not a key"), ("ks.key", "{}")):
        path = tmp_path / name
        path.write_text(text)
        path.chmod(0o600)
        with pytest.raises(KeyFileRefused):
            load_witness_key(path)
    link = tmp_path / "link.key"
    os.symlink(tmp_path / "short.key", link)
    with pytest.raises(KeyFileRefused):
        load_witness_key(link)
    code, _, err = run(tmp_path / "missing.key", exports, ganache.rpc_url, capsys=capsys)
    assert code == 2 and "does not exist" in err


def test_pending_batches_and_an_unreachable_service(
    registry, ganache, exports, two_batches, witness_role, key_file, capsys
) -> None:  # type: ignore[no-untyped-def]
    exports.pending.add(("suggestions", 2))
    code, out, _ = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 0 and "stopped: batch 2 is being anchored" in out

    exports.down = True
    code, _, err = run(key_file, exports, ganache.rpc_url, capsys=capsys)
    assert code == 2 and "cannot reach" in err


def test_follow_mode_reports_errors_and_keeps_going(
    registry, ganache, exports, two_batches, witness_role, key_file
) -> None:  # type: ignore[no-untyped-def]
    err = io.StringIO()
    witness = Witness(
        log="suggestions",
        api_url=API,
        reader=Web3ChainReader(ganache.rpc_url),
        signer=AttestSigner(ganache.rpc_url, ganache.keys[1]),
        state_path=state_path_for(key_file, "suggestions"),
        http_transport=exports.transport(),
        out=io.StringIO(),
        err=err,
    )
    exports.down = True
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        exports.down = False  # the service comes back during the pause

    assert witness.follow(0.5, passes=2, sleep=sleep) == 0
    assert sleeps == [0.5]
    assert "retrying in 0.5 s" in err.getvalue()
    assert [attestations(registry, n) for n in (0, 1)] == [1, 1]


@pytest.fixture(scope="module")
def zero_gas_chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[bytes]]]:
    keys = [generate_key(), generate_key()]
    chain = start_ganache(
        port=free_port(),
        db_path=None,
        funded_keys=keys,
        log_path=tmp_path_factory.mktemp("zero-gas") / "ganache.log",
        hardfork="berlin",
        gas_price_wei=0,
    )
    try:
        yield chain.rpc_url, keys
    finally:
        chain.stop()


def test_a_zero_gas_legacy_chain(zero_gas_chain, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rpc, keys = zero_gas_chain
    admin = ChainClient(rpc, keys[0], gas_price_wei=0)
    contract = admin.deploy_registry().address
    anchored = anchor_batch(admin, contract, records_log(4), 0)
    admin.grant_role(contract, "WITNESS_ROLE", address_of(keys[1]))
    exports = ExportService()
    exports.publish(anchored)
    key = write_key(tmp_path / "w.key", keys[1])
    code, out, err = run(key, exports, rpc, "--gas-price-wei", "0", capsys=capsys)
    assert code == 0, err
    assert "1 attested" in out
    assert admin.attestations(contract, "suggestions", 0) == 1
    assert Web3ChainReader(rpc).attestations(contract, log_id("suggestions"), 0) == 1


def test_an_encrypted_keystore_with_its_password_file(
    registry, ganache, exports, two_batches, witness_role, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    """As deploy/besu/generate.py hands witness keys out: a v3 keystore and a password file.
    (pbkdf2 with few rounds keeps the test fast; the loader takes any v3 keystore.)"""
    keystore = tmp_path / "witness.json"
    keystore.write_text(
        json.dumps(Account.encrypt(ganache.keys[1], "s3cret", kdf="pbkdf2", iterations=1024))
    )
    keystore.chmod(0o600)
    password = tmp_path / "witness.password"
    password.write_text("s3cret\n")
    password.chmod(0o600)

    code, _, err = run(keystore, exports, ganache.rpc_url, capsys=capsys)
    assert code == 2 and "--password-file" in err
    password.chmod(0o644)
    code, _, err = run(
        keystore, exports, ganache.rpc_url, "--password-file", str(password), capsys=capsys
    )
    assert code == 2 and "chmod 600" in err
    password.chmod(0o600)
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)
    code, _, err = run(
        keystore, exports, ganache.rpc_url, "--password-file", str(wrong), capsys=capsys
    )
    assert code == 2 and "cannot decrypt" in err
    code, out, err = run(
        keystore, exports, ganache.rpc_url, "--password-file", str(password), capsys=capsys
    )
    assert code == 0, err
    assert "2 attested" in out and ganache.address(1) in out
    assert [attestations(registry, n) for n in (0, 1)] == [1, 1]
