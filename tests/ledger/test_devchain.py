"""The development chain: ganache keeps its state in --database.dbPath across restarts and
SIGKILL, reports early deaths clearly, and dies with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts.keys import generate_key
from ledger.chain import ChainClient, ChainUnavailable
from ledger.devchain import DevChainError, free_port, start_ganache

pytestmark = pytest.mark.chain

REPO = Path(__file__).resolve().parents[2]


def _anchor(client: ChainClient, contract: str, batch: int, root: bytes) -> str:
    signed = client.sign_anchor(contract, "suggestions", batch, root, 5 * (batch + 1))  # grows
    client.send_raw(signed.raw)
    assert client.wait_for_receipt(signed.tx_hash, timeout=10) is not None
    return signed.tx_hash


def test_state_survives_restart_and_sigkill(tmp_path: Path) -> None:
    key = generate_key()
    db = tmp_path / "chain"
    roots = [os.urandom(31) + b"\x01" for _ in range(3)]

    with start_ganache(port=free_port(), db_path=db, funded_keys=[key]) as chain:
        client = ChainClient(chain.rpc_url, key)
        contract = client.deploy_registry().address
        first_tx = _anchor(client, contract, 0, roots[0])
        _anchor(client, contract, 1, roots[1])
        balance = client.w3.eth.get_balance(client.address)
        nonce = client.w3.eth.get_transaction_count(client.address)
        head = client.ping()

    # Restart after SIGTERM, same keys: the stored chain wins, nothing is re-funded or reset.
    chain = start_ganache(port=free_port(), db_path=db, funded_keys=[key])
    try:
        client = ChainClient(chain.rpc_url, key)
        assert client.ping() == head
        assert client.has_code(contract)
        assert client.next_batch(contract, "suggestions") == 2
        assert client.batch_of(contract, "suggestions", 0).root == roots[0]  # type: ignore[union-attr]
        assert client.find_anchor(contract, "suggestions", 0)[0] == first_tx  # type: ignore[index]
        assert client.w3.eth.get_balance(client.address) == balance
        assert client.w3.eth.get_transaction_count(client.address) == nonce
        last_tx = _anchor(client, contract, 2, roots[2])
    finally:
        chain.kill()  # SIGKILL: no chance to flush anything

    with start_ganache(port=free_port(), db_path=db, funded_keys=[key]) as chain:
        client = ChainClient(chain.rpc_url, key)
        assert client.next_batch(contract, "suggestions") == 3
        assert client.batch_of(contract, "suggestions", 2).root == roots[2]  # type: ignore[union-attr]
        receipt = client.get_receipt(last_tx)
        assert receipt is not None and receipt.status == 1


def test_genesis_accounts_only_apply_to_a_new_database(tmp_path: Path) -> None:
    """A key first given on restart is NOT funded: ganache keeps the stored genesis."""
    db = tmp_path / "chain"
    with start_ganache(port=free_port(), db_path=db, funded_keys=[generate_key()]):
        pass
    late = generate_key()
    with start_ganache(port=free_port(), db_path=db, funded_keys=[late]) as chain:
        client = ChainClient(chain.rpc_url, late)
        assert client.w3.eth.get_balance(client.address) == 0


def test_stop_is_idempotent_and_the_port_goes_dead(tmp_path: Path) -> None:
    chain = start_ganache(port=free_port(), db_path=None, funded_keys=[generate_key()])
    client = ChainClient(chain.rpc_url)
    assert client.ping() == 0
    chain.stop()
    chain.stop()
    assert chain.process.returncode is not None
    with pytest.raises(ChainUnavailable):
        client.ping()


def test_an_early_exit_is_reported_with_the_log(tmp_path: Path) -> None:
    log = tmp_path / "ganache.log"
    with pytest.raises(DevChainError, match="exited with status") as failed:
        start_ganache(
            port=free_port(),
            db_path=None,
            funded_keys=[generate_key()],
            hardfork="nope",
            log_path=log,
        )
    assert "hardfork" in str(failed.value)  # ganache's own complaint, from its log


def test_a_missing_binary_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIVIC_GANACHE_BIN", str(tmp_path / "no-ganache"))
    with pytest.raises(DevChainError, match="ganache not found"):
        start_ganache(port=free_port(), db_path=None, funded_keys=[generate_key()])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_ganache_dies_with_its_parent() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ledger.devchain import *; from contracts.keys import generate_key; import time\n"
            "c = start_ganache(port=free_port(), db_path=None, funded_keys=[generate_key()])\n"
            "print(c.process.pid, flush=True); time.sleep(60)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        os.kill(child_pid, 0)  # alive
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child_pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("ganache outlived its parent")
    finally:
        if parent.poll() is None:
            parent.kill()
