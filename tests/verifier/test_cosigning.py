"""civic-verify witness serve (C2SP tlog-witness, PROTOCOL §9) against a real ganache: each
status code the spec names, the on-chain check beyond it, the state kept across a restart and
seen by a second witness process, and the witness key's file."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from core.checkpoint import Checkpoint, sign_checkpoint
from core.cosignature import Cosigner
from core.note import Ed25519Signer, encode_base64, open_note
from core.tlog import consistency_proof
from ledger.devchain import free_port
from tests.verifier.anchoring import anchor_batch, records_log
from tests.verifier.fakes import SealedLog
from verifier.chain import Web3ChainReader
from verifier.cli import main
from verifier.cosigning import (
    SIZE_CONTENT_TYPE,
    CheckpointWitness,
    WitnessKeyError,
    create_witness_app,
    load_cosigner,
    log_keys_from,
)

pytestmark = pytest.mark.chain

ORIGIN = "civic-ledger.localhost/suggestions"
LOG_KEY = Ed25519Signer(ORIGIN, bytes([1]) * 32)
COSIGNER = Cosigner("witness.example", bytes([2]) * 32)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def chain(registry, ganache) -> tuple[str, str, SealedLog]:  # type: ignore[no-untyped-def]
    """Batches 0 and 1 (sizes 5 and 8) of a log anchored; batch 2 (size 12) sealed only."""
    log = records_log(5, 3, 4)
    for number in (0, 1):
        anchor_batch(registry.client, registry.address, log, number)
    return ganache.rpc_url, registry.address, log


def make_witness(chain: tuple[str, str, SealedLog], state: Path) -> CheckpointWitness:
    rpc, contract, _ = chain
    return CheckpointWitness(
        cosigner=COSIGNER,
        log_keys=log_keys_from([LOG_KEY.verifier_key]),
        state_path=state,
        chain=Web3ChainReader(rpc, 10.0),
        contract=contract,
    )


@pytest.fixture
def witness(chain: tuple[str, str, SealedLog], tmp_path: Path) -> CheckpointWitness:
    return make_witness(chain, tmp_path / "state.sqlite")


@pytest.fixture
def client(witness: CheckpointWitness) -> Iterator[TestClient]:
    with TestClient(create_witness_app(witness, "/witness")) as test_client:
        yield test_client


def note_of(size: int, root: bytes, key: Ed25519Signer = LOG_KEY, origin: str = ORIGIN) -> str:
    return sign_checkpoint(Checkpoint(origin, size, root), key)


def body(old: int, proof: list[bytes], note: str) -> bytes:
    lines = [f"old {old}\n", *(encode_base64(h) + "\n" for h in proof), "\n", note]
    return "".join(lines).encode()


def add(client: TestClient, payload: bytes) -> httpx.Response:
    return client.post("/witness/add-checkpoint", content=payload)


def batch_note(log: SealedLog, batch: int) -> str:
    return note_of(log.ends[batch], log.root(batch))


def step(log: SealedLog, old_batch: int | None, batch: int) -> bytes:
    """The honest request moving the witness from batch ``old_batch`` (None: nothing) to
    ``batch``."""
    old = 0 if old_batch is None else log.ends[old_batch]
    proof = consistency_proof(old, log.ends[batch], log.read) if old else []
    return body(old, proof, batch_note(log, batch))


def test_honest_checkpoints_are_cosigned_in_turn(
    client: TestClient, chain: tuple[str, str, SealedLog]
) -> None:
    log = chain[2]
    first = add(client, step(log, None, 0))
    assert first.status_code == 200, first.text
    assert first.text.startswith("— witness.example ") and first.text.endswith("\n")
    opened = open_note(batch_note(log, 0) + first.text, [LOG_KEY.verifier, COSIGNER.verifier])
    assert opened.signed_by == {
        (ORIGIN, LOG_KEY.key_id),
        ("witness.example", COSIGNER.key_id),
    }
    second = add(client, step(log, 0, 1))
    assert second.status_code == 200, second.text
    # The same checkpoint again, from its own size: consistent, cosigned again.
    again = add(client, step(log, 1, 1))
    assert again.status_code == 200, again.text


def test_an_old_size_it_never_cosigned_is_409_with_the_size_it_knows(
    client: TestClient, chain: tuple[str, str, SealedLog]
) -> None:
    log = chain[2]
    assert add(client, step(log, 0, 1)).status_code == 409  # it never cosigned size 5
    assert add(client, step(log, None, 0)).status_code == 200
    answer = add(client, step(log, None, 1))  # old 0, but it cosigned size 5
    assert answer.status_code == 409
    assert answer.headers["content-type"] == SIZE_CONTENT_TYPE
    assert answer.text == "5\n"


def test_a_split_view_at_one_size_is_409(
    client: TestClient, chain: tuple[str, str, SealedLog]
) -> None:
    log = chain[2]
    assert add(client, step(log, None, 0)).status_code == 200
    other = records_log(5, 3, salt_from=50)  # another log of the same size
    answer = add(client, body(5, [], note_of(5, other.root(0))))
    assert answer.status_code == 409
    assert "split view" in answer.text
    assert answer.headers["content-type"].startswith("text/plain")


def test_a_consistency_proof_that_does_not_verify_is_422(
    client: TestClient, chain: tuple[str, str, SealedLog]
) -> None:
    log = chain[2]
    assert add(client, step(log, None, 0)).status_code == 200
    proof = consistency_proof(5, 8, log.read)
    proof[0] = bytes(32)
    answer = add(client, body(5, proof, batch_note(log, 1)))
    assert answer.status_code == 422
    # Never cosigned: the honest request still goes from size 5.
    assert add(client, step(log, 0, 1)).status_code == 200


def test_an_unknown_origin_is_404(client: TestClient, chain: tuple[str, str, SealedLog]) -> None:
    log = chain[2]
    stranger = Ed25519Signer("elsewhere.example/suggestions", bytes([3]) * 32)
    note = note_of(log.ends[0], log.root(0), stranger, stranger.name)
    assert add(client, body(0, [], note)).status_code == 404


@pytest.mark.parametrize("fault", ["unknown key", "bad signature"])
def test_no_trusted_signature_that_verifies_is_403(
    client: TestClient, chain: tuple[str, str, SealedLog], fault: str
) -> None:
    log = chain[2]
    if fault == "unknown key":
        note = note_of(log.ends[0], log.root(0), Ed25519Signer(ORIGIN, bytes([9]) * 32))
    else:
        note = batch_note(log, 0).replace("\n5\n", "\n6\n", 1)  # the log's line no longer fits
    assert add(client, body(0, [], note)).status_code == 403


@pytest.mark.parametrize(
    "payload",
    [
        b"old 01\n\n",
        b"old -1\n\n",
        b"new 0\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + b"AAAA\n" + b"\n",  # 3 bytes, not a hash
        b"old 0\n" + b"".join(encode_base64(bytes(32)).encode() + b"\n" for _ in range(64)) + b"\n",
        b"old 0\n",
        b"\xff\xfe",
    ],
)
def test_a_malformed_body_is_400(
    client: TestClient, chain: tuple[str, str, SealedLog], payload: bytes
) -> None:
    log = chain[2]
    assert add(client, payload + batch_note(log, 0).encode()).status_code == 400


def test_old_above_the_size_is_400(client: TestClient, chain: tuple[str, str, SealedLog]) -> None:
    log = chain[2]
    assert add(client, body(6, [], batch_note(log, 0))).status_code == 400


def test_a_checkpoint_not_anchored_is_never_cosigned(
    client: TestClient, witness: CheckpointWitness, chain: tuple[str, str, SealedLog]
) -> None:
    log = chain[2]
    assert add(client, step(log, None, 0)).status_code == 200
    # Batch 2 is consistent and signed by the log, but not anchored: 422, nothing cosigned.
    answer = add(client, step(log, 0, 2))
    assert answer.status_code == 422
    assert "no batch of log 'suggestions'" in answer.text and "has size 12" in answer.text
    # A size the chain has with another root (the log key signed a rewritten log): 409.
    rewritten = records_log(5, 3, salt_from=70)
    answer = add(client, body(0, [], note_of(8, rewritten.root(1))))
    assert answer.status_code == 409  # it cosigned size 5: the C2SP check comes first
    assert witness.cosigned(ORIGIN) == (5, log.root(0))


def test_a_root_the_chain_does_not_hold_for_that_size_is_409(
    client: TestClient, witness: CheckpointWitness
) -> None:
    rewritten = records_log(5, 3, salt_from=70)
    answer = add(client, body(0, [], note_of(8, rewritten.root(1))))
    assert answer.status_code == 409
    assert "batch 1 of log 'suggestions' anchored size 8 with root" in answer.text
    assert witness.cosigned(ORIGIN) is None
    rows = witness._connect().execute("SELECT status, size FROM refused").fetchall()
    assert rows == [(409, 8)]


def test_the_chain_unreachable_is_503_and_nothing_is_cosigned(
    chain: tuple[str, str, SealedLog], tmp_path: Path
) -> None:
    _, contract, log = chain
    down = CheckpointWitness(
        cosigner=COSIGNER,
        log_keys=log_keys_from([LOG_KEY.verifier_key]),
        state_path=tmp_path / "state.sqlite",
        chain=Web3ChainReader(f"http://127.0.0.1:{free_port()}", 2.0),
        contract=contract,
    )
    answer = down.add_checkpoint(step(log, None, 0))
    assert answer.status == 503
    assert down.cosigned(ORIGIN) is None


def test_the_state_survives_a_restart(chain: tuple[str, str, SealedLog], tmp_path: Path) -> None:
    log = chain[2]
    state = tmp_path / "state.sqlite"
    assert make_witness(chain, state).add_checkpoint(step(log, None, 0)).status == 200
    restarted = make_witness(chain, state)
    answer = restarted.add_checkpoint(step(log, None, 1))
    assert (answer.status, answer.body, answer.content_type) == (409, "5\n", SIZE_CONTENT_TYPE)
    assert restarted.add_checkpoint(step(log, 0, 1)).status == 200


def test_concurrent_requests_cannot_roll_the_state_back(
    chain: tuple[str, str, SealedLog], tmp_path: Path
) -> None:
    log = chain[2]
    state = tmp_path / "state.sqlite"
    witnesses = [make_witness(chain, state) for _ in range(2)]
    assert witnesses[0].add_checkpoint(step(log, None, 0)).status == 200
    answers: list[int] = []
    requests = [step(log, 0, 1), step(log, 0, 0)]  # both from size 5: to 8, and 5 again

    def send(n: int) -> None:
        answers.append(witnesses[n].add_checkpoint(requests[n]).status)

    threads = [threading.Thread(target=send, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Whichever ran first, the state never goes back from 8 to 5: 5 again then 8 (both
    # cosigned), or 8 then 5 again (refused: old 5 is no longer the size it cosigned).
    assert sorted(answers) in ([200, 200], [200, 409])
    assert witnesses[1].cosigned(ORIGIN) == (8, log.root(1))


def test_a_second_witness_process_sees_the_state(
    chain: tuple[str, str, SealedLog], tmp_path: Path
) -> None:
    rpc, contract, log = chain
    state = tmp_path / "state.sqlite"
    key = tmp_path / "witness.key"
    key.write_text(COSIGNER.signer_key + "\n")
    key.chmod(0o600)
    assert make_witness(chain, state).add_checkpoint(step(log, None, 0)).status == 200
    port = free_port()
    argv = [sys.executable, "-m", "verifier.cli", "witness", "serve", "--log"]
    argv += [LOG_KEY.verifier_key, "--key", str(key), "--state", str(state), "--rpc", rpc]
    argv += ["--contract", contract, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/add-checkpoint"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(url, content=step(log, None, 1), timeout=10)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the witness did not start"
                time.sleep(0.2)
        assert (answer.status_code, answer.text) == (409, "5\n")
        assert answer.headers["content-type"] == SIZE_CONTENT_TYPE
        answer = httpx.post(url, content=step(log, 0, 1), timeout=10)
        assert answer.status_code == 200
        assert answer.text.startswith("— witness.example ")
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert make_witness(chain, state).cosigned(ORIGIN) == (8, log.root(1))


# -- keys ---------------------------------------------------------------------------------


def test_keygen_writes_a_0600_key_and_prints_its_verifier_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "witness.key"
    assert main(["witness", "keygen", "--name", "witness.example", "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip()
    assert out.stat().st_mode & 0o777 == 0o600
    assert load_cosigner(out).verifier_key == printed
    assert printed.startswith("witness.example+")
    assert main(["witness", "keygen", "--name", "witness.example", "--out", str(out)]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "witness.key"
    key.write_text(COSIGNER.signer_key + "\n")
    key.chmod(0o644)
    with pytest.raises(WitnessKeyError, match="group and others must have no access"):
        load_cosigner(key)


def test_log_keys_must_name_a_log() -> None:
    with pytest.raises(WitnessKeyError, match="<deployment>/<log>"):
        log_keys_from([Ed25519Signer("example.com/other", bytes(32)).verifier_key])
    with pytest.raises(WitnessKeyError, match="--log"):
        log_keys_from([COSIGNER.verifier_key])  # a cosignature key is not a log key


def test_the_attesting_witness_still_needs_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["witness", "--log", "suggestions"]) == 2
    assert "civic-verify witness needs --key, --api" in capsys.readouterr().err
