"""anvil, the second EVM node of the suite: it starts funded, keeps its --state across a clean
restart, reports early deaths, and runs a zero-base-fee London chain (Besu ``zeroBaseFee``),
which ganache 7 cannot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.keys import address_of, generate_key
from ledger.chain import ChainClient
from ledger.devchain import DevChainError, free_port, start_anvil

pytestmark = pytest.mark.chain


def _root() -> bytes:
    return os.urandom(31) + b"\x01"


def _anchor(client: ChainClient, contract: str, batch: int) -> bytes:
    root = _root()
    signed = client.sign_anchor(contract, "suggestions", batch, root, 3 * (batch + 1))  # grows
    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
    assert receipt is not None and receipt.status == 1
    return root


def test_funded_keys_and_nothing_else(tmp_path: Path) -> None:
    keys = [generate_key(), generate_key()]
    with start_anvil(
        port=free_port(), state_path=None, funded_keys=keys, balance_wei=5 * 10**18
    ) as chain:
        client = ChainClient(chain.rpc_url, keys[1])
        assert client.chain_id == 1337
        assert client.w3.eth.get_balance(address_of(keys[0])) == 5 * 10**18
        assert client.w3.eth.accounts == []  # no dev accounts from the well-known mnemonic
        assert client.w3.eth.get_block("latest")["baseFeePerGas"] > 0  # london rules
        log = chain.log_path
    assert not log.exists()  # a temporary log goes with the chain


def test_state_survives_a_clean_restart(tmp_path: Path) -> None:
    key = generate_key()
    state = tmp_path / "anvil" / "state.json"
    with start_anvil(port=free_port(), state_path=state, funded_keys=[key]) as chain:
        client = ChainClient(chain.rpc_url, key)
        contract = client.deploy_registry().address
        first = _anchor(client, contract, 0)
        balance = client.w3.eth.get_balance(client.address)
        nonce = client.w3.eth.get_transaction_count(client.address)
    assert state.stat().st_size > 0  # dumped on SIGTERM

    with start_anvil(port=free_port(), state_path=state, funded_keys=[key]) as chain:
        client = ChainClient(chain.rpc_url, key)
        assert client.next_batch(contract, "suggestions") == 1
        assert client.batch_of(contract, "suggestions", 0).root == first  # type: ignore[union-attr]
        # Not re-funded: the stored state wins, as with ganache's database.
        assert client.w3.eth.get_balance(client.address) == balance
        assert client.w3.eth.get_transaction_count(client.address) == nonce
        _anchor(client, contract, 1)


def test_an_empty_state_file_is_refused_before_starting(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b"")
    with pytest.raises(DevChainError, match="empty"):
        start_anvil(port=free_port(), state_path=state, funded_keys=[generate_key()])


def test_an_early_exit_is_reported_with_the_log(tmp_path: Path) -> None:
    with pytest.raises(DevChainError, match="anvil exited with status"):
        start_anvil(
            port=free_port(),
            state_path=None,
            funded_keys=[generate_key()],
            hardfork="no-such-fork",
            log_path=tmp_path / "anvil.log",
        )


@pytest.mark.parametrize(("tx_type", "wire_type"), [("legacy", 0), ("eip1559", 2), ("auto", 2)])
def test_a_zero_base_fee_london_chain_takes_zero_fee_transactions(
    tx_type: str, wire_type: int
) -> None:
    """FIELD-NOTES: with base fee 0, type-2 transactions with zero fees and legacy gasPrice=0
    are both accepted; this is the chain a Besu genesis with ``zeroBaseFee`` gives."""
    key = generate_key()
    with start_anvil(
        port=free_port(), state_path=None, funded_keys=[key], gas_price_wei=0, balance_wei=0
    ) as chain:
        client = ChainClient(chain.rpc_url, key, tx_type=tx_type, gas_price_wei=0)
        assert client.w3.eth.get_block("latest")["baseFeePerGas"] == 0
        contract = client.deploy_registry().address
        signed = client.sign_anchor(contract, "votes", 0, _root(), 1)
        client.send_raw(signed.raw)
        receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
        assert receipt is not None and receipt.status == 1
        tx = client.w3.eth.get_transaction(signed.tx_hash)  # type: ignore[arg-type]
        assert tx["type"] == wire_type
        if wire_type == 2:
            assert tx["maxFeePerGas"] == 0 and tx["maxPriorityFeePerGas"] == 0
        else:
            assert tx["gasPrice"] == 0
        assert client.w3.eth.get_balance(client.address) == 0  # nobody paid anything
