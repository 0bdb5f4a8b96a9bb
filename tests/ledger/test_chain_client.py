"""ChainClient against a real ganache: signing, broadcasting, receipts, fees, error mapping."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from web3.middleware import ExtraDataToPOAMiddleware

from contracts.keys import generate_key
from ledger.chain import (
    ANCHOR_GAS_LIMIT,
    AlreadyAnchored,
    AnchorConflict,
    BatchOutOfOrder,
    ChainClient,
    ChainError,
    ChainUnavailable,
    ContractMissing,
    SignedAnchor,
    TransactionRejected,
    log_id,
)
from ledger.devchain import free_port, start_ganache
from tests.fixtures.chain import Ganache, Registry

pytestmark = [pytest.mark.chain, pytest.mark.every_node]


def _root() -> bytes:
    return os.urandom(31) + b"\x01"


def _send(client: ChainClient, signed: SignedAnchor) -> int:
    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
    assert receipt is not None
    return receipt.status


def test_log_id_is_keccak_of_the_utf8_name() -> None:
    assert log_id("suggestions").hex() == (
        "3dfa462ef48d1142072834185ffc3cb7b1a34ff460db0031b158af520928937d"
    )
    assert log_id("投票") != log_id("votes")


def test_sign_send_and_wait(registry: Registry) -> None:
    client, address = registry.client, registry.address
    root = _root()
    signed = client.sign_anchor(address, "suggestions", 0, root, 42)
    assert signed.tx_hash.startswith("0x") and signed.tx_hash == signed.tx_hash.lower()
    assert len(signed.tx_hash) == 66
    assert client.batch_of(address, "suggestions", 0) is None  # signing sends nothing

    assert client.send_raw(signed.raw) == signed.tx_hash
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
    assert receipt is not None and receipt.status == 1 and receipt.tx_hash == signed.tx_hash
    assert client.get_receipt(signed.tx_hash) == receipt

    on_chain = client.batch_of(address, "suggestions", 0)
    assert on_chain is not None
    assert (on_chain.root, on_chain.size, on_chain.block_number) == (root, 42, receipt.block_number)
    assert on_chain.anchored_at > 0
    assert client.next_batch(address, "suggestions") == 1


def test_rebroadcasting_the_same_raw_transaction_is_idempotent(registry: Registry) -> None:
    client, address = registry.client, registry.address
    nonce_before = client.w3.eth.get_transaction_count(client.address)
    signed = client.sign_anchor(address, "votes", 0, _root(), 3)
    assert signed.nonce == nonce_before
    for _ in range(3):  # mined already: the node says "nonce too low" / "already known"
        assert client.send_raw(signed.raw) == signed.tx_hash
    assert client.wait_for_receipt(signed.tx_hash, timeout=10) is not None
    assert client.send_raw(signed.raw) == signed.tx_hash
    assert client.w3.eth.get_transaction_count(client.address) == nonce_before + 1
    assert client.next_batch(address, "votes") == 1


def test_a_different_transaction_with_a_used_nonce_is_rejected(registry: Registry) -> None:
    client, address = registry.client, registry.address
    first = client.sign_anchor(address, "votes", 0, _root(), 3)
    _send(client, first)
    stale = client.sign_anchor(address, "votes", 1, _root(), 4, nonce=first.nonce)
    with pytest.raises(TransactionRejected):
        client.send_raw(stale.raw)


def test_pipelined_anchors_with_explicit_nonces(registry: Registry) -> None:
    """Batch n+1 signed while batch n is unsent: no estimate possible, so a fixed gas limit."""
    client, address = registry.client, registry.address
    nonce = client.w3.eth.get_transaction_count(client.address, "pending")
    first = client.sign_anchor(address, "access", 0, _root(), 1, nonce=nonce)
    second = client.sign_anchor(
        address, "access", 1, _root(), 2, nonce=nonce + 1, gas=ANCHOR_GAS_LIMIT
    )
    assert (first.nonce, second.nonce) == (nonce, nonce + 1)
    client.send_raw(first.raw)
    client.send_raw(second.raw)
    for signed in (first, second):
        receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
        assert receipt is not None and receipt.status == 1
    assert client.next_batch(address, "access") == 2


def test_unknown_transactions_have_no_receipt(registry: Registry) -> None:
    unknown = "0x" + os.urandom(32).hex()
    assert registry.client.get_receipt(unknown) is None
    started = time.monotonic()
    assert registry.client.wait_for_receipt(unknown, timeout=0.3) is None
    assert 0.3 <= time.monotonic() - started < 2


def test_batch_of_is_none_for_unanchored_batches(registry: Registry) -> None:
    assert registry.client.batch_of(registry.address, "suggestions", 0) is None
    assert registry.client.batch_of(registry.address, "suggestions", 2**64 - 1) is None
    assert registry.client.attestations(registry.address, "suggestions", 0) == 0


def test_find_anchor_names_the_transaction(registry: Registry) -> None:
    client, address = registry.client, registry.address
    signed = [client.sign_anchor(address, "suggestions", b, _root(), 1) for b in range(1)]
    _send(client, signed[0])
    second = client.sign_anchor(address, "suggestions", 1, _root(), 2)  # a log's size grows
    _send(client, second)
    _send(client, client.sign_anchor(address, "votes", 0, _root(), 1))  # same batch, other log

    found = client.find_anchor(address, "suggestions", 1)
    receipt = client.get_receipt(second.tx_hash)
    assert receipt is not None
    assert found == (second.tx_hash, receipt.block_number)
    assert client.find_anchor(address, "suggestions", 0) == (
        signed[0].tx_hash,
        client.get_receipt(signed[0].tx_hash).block_number,  # type: ignore[union-attr]
    )
    assert client.find_anchor(address, "suggestions", 2) is None
    assert (
        client.find_anchor(address, "suggestions", 1, from_block=receipt.block_number + 1) is None
    )


@pytest.mark.parametrize(("tx_type", "wire_type"), [("legacy", 0), ("eip1559", 2), ("auto", 2)])
def test_transaction_types(
    registry: Registry, ganache: Ganache, tx_type: str, wire_type: int
) -> None:
    client = ChainClient(ganache.rpc_url, ganache.keys[0], tx_type=tx_type)
    signed = client.sign_anchor(registry.address, "votes", 0, _root(), 1)
    assert _send(client, signed) == 1
    tx = client.w3.eth.get_transaction(signed.tx_hash)  # type: ignore[arg-type]
    assert tx["type"] == wire_type
    if wire_type == 0:  # EIP-155: the chain id is folded into v
        assert tx["v"] in (2 * ganache.chain_id + 35, 2 * ganache.chain_id + 36)
    else:
        assert tx["chainId"] == ganache.chain_id


def test_base_fee_chains_refuse_zero_fees(registry: Registry, ganache: Ganache) -> None:
    """ganache 7 has no zero-base-fee option (its base fee only decays towards ~7 wei), so on a
    london ganache a zero fee is refused; see the berlin chain below for the zero-gas case (and
    tests/ledger/test_anvil.py for a london chain with base fee 0). Each node words it its own
    way: ganache names ``baseFeePerGas``, anvil says "less than block base fee"."""
    client = ChainClient(ganache.rpc_url, ganache.keys[0], gas_price_wei=0)
    signed = client.sign_anchor(registry.address, "votes", 0, _root(), 1)
    with pytest.raises(TransactionRejected, match=r"baseFeePerGas|less than block base fee"):
        client.send_raw(signed.raw)


@pytest.fixture(scope="module")
def zero_gas_chain() -> Iterator[tuple[str, bytes]]:
    """A chain without a base fee (pre-London rules) whose miner accepts gas price 0, like a
    Besu network with --min-gas-price=0 and a genesis without London."""
    key = generate_key()
    with start_ganache(
        port=free_port(),
        db_path=None,
        funded_keys=[key],
        chain_id=4242,
        hardfork="berlin",
        gas_price_wei=0,
        balance_wei=0,  # nobody has any ether: only zero-fee transactions can pass
    ) as chain:
        yield chain.rpc_url, key


@pytest.mark.parametrize("tx_type", ["auto", "legacy"])
def test_zero_gas_price_chain(zero_gas_chain: tuple[str, bytes], tx_type: str) -> None:
    rpc_url, key = zero_gas_chain
    client = ChainClient(rpc_url, key, tx_type=tx_type, gas_price_wei=0)
    assert client.chain_id == 4242
    deployment = client.deploy_registry()
    assert deployment.chain_id == 4242
    signed = client.sign_anchor(deployment.address, "votes", 0, _root(), 1)
    assert _send(client, signed) == 1
    tx = client.w3.eth.get_transaction(signed.tx_hash)  # type: ignore[arg-type]
    assert tx["gasPrice"] == 0 and tx["type"] == 0
    assert client.w3.eth.get_balance(client.address) == 0


def test_eip1559_is_refused_on_a_chain_without_base_fee(zero_gas_chain: tuple[str, bytes]) -> None:
    rpc_url, key = zero_gas_chain
    client = ChainClient(rpc_url, key, tx_type="eip1559", gas_price_wei=0)
    with pytest.raises(ChainError, match="no base fee"):
        client.deploy_registry()


def test_dead_port_is_chain_unavailable_at_once() -> None:
    client = ChainClient(f"http://127.0.0.1:{free_port()}", generate_key())
    started = time.monotonic()
    with pytest.raises(ChainUnavailable):
        client.ping()
    with pytest.raises(ChainUnavailable):
        client.next_batch("0x" + "11" * 20, "votes")
    with pytest.raises(ChainUnavailable):
        client.send_raw(b"\x01\x02")
    with pytest.raises(ChainUnavailable):
        _ = client.chain_id
    assert time.monotonic() - started < 2


def test_a_node_that_never_answers_times_out_as_chain_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        client = ChainClient(f"http://127.0.0.1:{port}", request_timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ChainUnavailable):
            client.ping()
        assert time.monotonic() - started < 3


def test_refusals_map_to_the_right_errors(registry: Registry) -> None:
    client, address = registry.client, registry.address
    root = _root()
    _send(client, client.sign_anchor(address, "suggestions", 0, root, 9))

    with pytest.raises(BatchOutOfOrder) as gap:
        client.sign_anchor(address, "suggestions", 2, _root(), 9)
    assert (gap.value.expected, gap.value.given) == (1, 2)
    assert not isinstance(gap.value, AlreadyAnchored)

    with pytest.raises(AnchorConflict) as conflict:
        client.sign_anchor(address, "suggestions", 0, _root(), 9)
    assert conflict.value.on_chain.root == root
    with pytest.raises(AnchorConflict):  # same root, different size: still a conflict
        client.sign_anchor(address, "suggestions", 0, root, 10)

    with pytest.raises(AlreadyAnchored) as already:  # our own earlier anchor: a BatchOutOfOrder
        client.sign_anchor(address, "suggestions", 0, root, 9)
    assert isinstance(already.value, BatchOutOfOrder)
    assert already.value.on_chain.size == 9


def test_contract_missing(registry: Registry, ganache: Ganache) -> None:
    client = registry.client
    not_a_contract = ganache.address(3)
    assert client.has_code(registry.address)
    assert not client.has_code(not_a_contract)
    with pytest.raises(ContractMissing):
        client.sign_anchor(not_a_contract, "votes", 0, _root(), 1)
    with pytest.raises(ContractMissing):
        client.next_batch(not_a_contract, "votes")
    with pytest.raises(ContractMissing):
        client.batch_of(not_a_contract, "votes", 0)


def test_local_validation_and_read_only_clients(registry: Registry, ganache: Ganache) -> None:
    with pytest.raises(ValueError, match="root"):
        registry.client.sign_anchor(registry.address, "votes", 0, bytes(32), 1)
    with pytest.raises(ValueError, match="root"):
        registry.client.sign_anchor(registry.address, "votes", 0, b"\x01" * 31, 1)
    with pytest.raises(ValueError, match="size"):
        registry.client.sign_anchor(registry.address, "votes", 0, _root(), 0)
    with pytest.raises(ValueError, match="tx_type"):
        ChainClient(ganache.rpc_url, tx_type="type3")

    reader = ChainClient(ganache.rpc_url)
    assert reader.address is None
    assert reader.ping() >= 1
    assert reader.next_batch(registry.address, "votes") == 0
    with pytest.raises(ChainError, match="read"):
        reader.sign_anchor(registry.address, "votes", 0, _root(), 1)


def test_poa_extra_data_middleware_is_installed(ganache: Ganache) -> None:
    """Besu QBFT headers carry more than 32 bytes of extraData, which web3 refuses without this
    middleware. ganache caps --miner.extraData at 32 bytes, so only its presence is checked."""
    client = ChainClient(ganache.rpc_url)
    installed = [entry[0] for entry in client.w3.middleware_onion.middleware]
    assert ExtraDataToPOAMiddleware in installed
    assert client.w3.eth.get_block("latest")["number"] >= 0


def test_generic_deploy_for_the_benchmark_baseline(ganache: Ganache) -> None:
    client = ChainClient(ganache.rpc_url, ganache.keys[0])
    deployment = client.deploy("NaiveAnchorRegistry", client.address, client.address)
    assert client.has_code(deployment.address) and deployment.chain_id == ganache.chain_id
    receipt = client.transact(deployment.address, "NaiveAnchorRegistry", "store", _root())
    assert receipt.status == 1 and receipt.gas_used > 40_000
