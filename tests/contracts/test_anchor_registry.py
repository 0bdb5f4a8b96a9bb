"""AnchorRegistry (PROTOCOL §3) on a real ganache: roles, batch order, immutability,
witness attestations, events and gas."""

from __future__ import annotations

import os

import pytest
from eth_utils import keccak
from web3 import Web3

from contracts import load_artifact
from ledger.chain import (
    ANCHOR_GAS_LIMIT,
    AlreadyAnchored,
    AnchorConflict,
    AnchorReceipt,
    BatchOutOfOrder,
    ChainClient,
    ContractReverted,
    Unauthorized,
    log_id,
)
from tests.fixtures.chain import Ganache, Registry

pytestmark = [pytest.mark.chain, pytest.mark.every_node]

STEADY_STATE_GAS_GOAL = 80_000


def _root() -> bytes:
    return os.urandom(31) + b"\x01"  # never zero


def _anchor(
    client: ChainClient,
    contract: str,
    log: str,
    batch: int,
    root: bytes,
    size: int = 10,
    **kwargs: int,
) -> AnchorReceipt:
    signed = client.sign_anchor(contract, log, batch, root, size, **kwargs)
    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
    assert receipt is not None
    return receipt


def _web3_contract(registry: Registry):  # type: ignore[no-untyped-def]
    return registry.client.w3.eth.contract(
        address=registry.address, abi=list(load_artifact("AnchorRegistry").abi)
    )


def test_roles_are_the_documented_constants_and_constructor_grants_them(
    registry: Registry, ganache: Ganache
) -> None:
    contract = _web3_contract(registry)
    assert bytes(contract.functions.ANCHORER_ROLE().call()) == keccak(text="ANCHORER_ROLE")
    assert bytes(contract.functions.WITNESS_ROLE().call()) == keccak(text="WITNESS_ROLE")
    admin = ganache.address(0)
    assert contract.functions.hasRole(bytes(32), admin).call()
    assert contract.functions.hasRole(keccak(text="ANCHORER_ROLE"), admin).call()
    assert not contract.functions.hasRole(keccak(text="ANCHORER_ROLE"), ganache.address(1)).call()


def test_constructor_grants_admin_and_anchorer_to_different_accounts(ganache: Ganache) -> None:
    client = ChainClient(ganache.rpc_url, ganache.keys[0])
    deployment = client.deploy_registry(admin=ganache.address(3), anchorer=ganache.address(1))
    with pytest.raises(Unauthorized):
        _anchor(client, deployment.address, "votes", 0, _root())
    anchorer = ChainClient(ganache.rpc_url, ganache.keys[1])
    assert _anchor(anchorer, deployment.address, "votes", 0, _root()).status == 1
    with pytest.raises(Unauthorized):  # keys[0] deployed it but is not its admin
        client.grant_role(deployment.address, "WITNESS_ROLE", ganache.address(2))


def test_constructor_refuses_the_zero_address(ganache: Ganache) -> None:
    client = ChainClient(ganache.rpc_url, ganache.keys[0])
    zero = "0x" + "00" * 20
    with pytest.raises(ContractReverted, match="ZeroAddress"):
        client.deploy_registry(admin=zero)


def test_only_an_anchorer_can_anchor(registry: Registry, ganache: Ganache) -> None:
    outsider = ChainClient(ganache.rpc_url, ganache.keys[1])
    with pytest.raises(Unauthorized, match="AccessControlUnauthorizedAccount") as refused:
        outsider.sign_anchor(registry.address, "suggestions", 0, _root(), 5)
    assert refused.value.error_args["account"].lower() == ganache.address(1).lower()
    assert refused.value.error_args["neededRole"] == keccak(text="ANCHORER_ROLE")

    # Not just the estimate: a mined transaction from an outsider fails and changes nothing.
    receipt = _anchor(outsider, registry.address, "suggestions", 0, _root(), gas=ANCHOR_GAS_LIMIT)
    assert receipt.status == 0
    assert registry.client.next_batch(registry.address, "suggestions") == 0

    registry.client.grant_role(registry.address, "ANCHORER_ROLE", ganache.address(1))
    assert _anchor(outsider, registry.address, "suggestions", 0, _root()).status == 1


def test_batch_numbers_are_consecutive_per_log_and_logs_are_independent(
    registry: Registry,
) -> None:
    client, address = registry.client, registry.address
    for batch in range(3):
        assert _anchor(client, address, "suggestions", batch, _root(), size=batch + 1).status == 1
    assert client.next_batch(address, "suggestions") == 3

    with pytest.raises(BatchOutOfOrder) as gap:
        client.sign_anchor(address, "suggestions", 4, _root(), 1)
    assert (gap.value.expected, gap.value.given) == (3, 4)
    assert gap.value.error_args["logId"] == log_id("suggestions")

    with pytest.raises(AnchorConflict):  # repeat of an anchored number, another root
        client.sign_anchor(address, "suggestions", 1, _root(), 1)

    assert client.next_batch(address, "votes") == 0
    with pytest.raises(BatchOutOfOrder, match="contract expects 0"):
        client.sign_anchor(address, "votes", 3, _root(), 1)
    assert _anchor(client, address, "votes", 0, _root()).status == 1
    assert client.next_batch(address, "votes") == 1
    assert client.next_batch(address, "suggestions") == 3


def test_an_anchored_batch_can_never_be_overwritten(registry: Registry) -> None:
    client, address = registry.client, registry.address
    original = _root()
    _anchor(client, address, "access", 0, original, size=7)

    # Bypass the client's checks and let the chain itself refuse the overwrite.
    receipt = _anchor(client, address, "access", 0, _root(), size=7, gas=ANCHOR_GAS_LIMIT)
    assert receipt.status == 0
    on_chain = client.batch_of(address, "access", 0)
    assert on_chain is not None and (on_chain.root, on_chain.size) == (original, 7)

    with pytest.raises(AnchorConflict) as conflict:
        client.sign_anchor(address, "access", 0, _root(), 7)
    assert conflict.value.on_chain.root == original
    with pytest.raises(AlreadyAnchored):
        client.sign_anchor(address, "access", 0, original, 7)


@pytest.mark.parametrize(
    ("root", "size", "error"),
    [(bytes(32), 5, "EmptyRoot"), (b"\x01" * 32, 0, "EmptyBatch")],
)
def test_zero_root_and_zero_size_are_refused(
    registry: Registry, root: bytes, size: int, error: str
) -> None:
    with pytest.raises(ContractReverted, match=error) as refused:
        registry.client.transact(
            registry.address, "AnchorRegistry", "anchor", log_id("votes"), 0, root, size
        )
    assert refused.value.error_name == error
    assert registry.client.next_batch(registry.address, "votes") == 0


def test_a_logs_size_must_grow_from_batch_to_batch(registry: Registry) -> None:
    """Version 2 (PROTOCOL §8): each anchor carries the whole log's size, which only grows."""
    client, address = registry.client, registry.address
    assert _anchor(client, address, "access", 0, _root(), size=10).status == 1
    for size in (10, 9):
        with pytest.raises(ContractReverted, match="SizeNotGrowing") as refused:
            client.transact(address, "AnchorRegistry", "anchor", log_id("access"), 1, _root(), size)
        assert refused.value.error_args["previous"] == 10
        assert refused.value.error_args["given"] == size
    assert client.next_batch(address, "access") == 1
    assert _anchor(client, address, "access", 1, _root(), size=11).status == 1
    # Each log's size is its own.
    assert _anchor(client, address, "votes", 0, _root(), size=1).status == 1


def test_batch_of_returns_what_was_anchored_and_zero_when_not(registry: Registry) -> None:
    client, address = registry.client, registry.address
    root = _root()
    receipt = _anchor(client, address, "votes", 0, root, size=1000)
    block = client.w3.eth.get_block(receipt.block_number)
    contract = _web3_contract(registry)
    assert tuple(contract.functions.batchOf(log_id("votes"), 0).call()) == (
        root,
        1000,
        block["timestamp"],
        receipt.block_number,
    )
    assert tuple(contract.functions.batchOf(log_id("votes"), 1).call()) == (bytes(32), 0, 0, 0)
    root_of_other_log, *_ = contract.functions.batchOf(log_id("suggestions"), 0).call()
    assert root_of_other_log == bytes(32)


def test_anchored_event_carries_log_batch_root_and_size(registry: Registry) -> None:
    client, address = registry.client, registry.address
    _anchor(client, address, "votes", 0, _root())
    root = _root()
    receipt = _anchor(client, address, "votes", 1, root, size=123)
    raw = client.w3.eth.get_transaction_receipt(receipt.tx_hash)
    (event,) = _web3_contract(registry).events.Anchored().process_receipt(raw)
    assert event["args"]["logId"] == log_id("votes")
    assert event["args"]["batch"] == 1
    assert event["args"]["root"] == root
    assert event["args"]["size"] == 123
    # Both indexed topics are filterable, which is how find_anchor locates the transaction.
    assert raw["logs"][0]["topics"][1] == log_id("votes")
    assert raw["logs"][0]["topics"][2] == (1).to_bytes(32, "big")


def test_witnesses_attest_only_the_anchored_root_once_each(
    registry: Registry, ganache: Ganache
) -> None:
    client, address = registry.client, registry.address
    root = _root()
    _anchor(client, address, "suggestions", 0, root)
    first = ChainClient(ganache.rpc_url, ganache.keys[2])
    second = ChainClient(ganache.rpc_url, ganache.keys[3])

    with pytest.raises(Unauthorized, match="AccessControlUnauthorizedAccount"):
        first.attest(address, "suggestions", 0, root)

    client.grant_role(address, "WITNESS_ROLE", ganache.address(2))
    client.grant_role(address, "WITNESS_ROLE", ganache.address(3))

    with pytest.raises(ContractReverted, match="NotAnchored") as not_anchored:
        first.attest(address, "suggestions", 1, root)
    assert not_anchored.value.error_args["batch"] == 1

    wrong = _root()
    with pytest.raises(ContractReverted, match="AttestedRootMismatch") as mismatch:
        first.attest(address, "suggestions", 0, wrong)
    assert mismatch.value.error_args["anchored"] == root
    assert mismatch.value.error_args["attested"] == wrong
    assert client.attestations(address, "suggestions", 0) == 0

    receipt = first.attest(address, "suggestions", 0, root)
    assert client.attestations(address, "suggestions", 0) == 1
    raw = client.w3.eth.get_transaction_receipt(receipt.tx_hash)
    (event,) = _web3_contract(registry).events.Attested().process_receipt(raw)
    assert event["args"]["logId"] == log_id("suggestions")
    assert event["args"]["batch"] == 0
    assert Web3.to_checksum_address(event["args"]["witness"]) == ganache.address(2)
    assert event["args"]["root"] == root

    with pytest.raises(ContractReverted, match="AlreadyAttested"):
        first.attest(address, "suggestions", 0, root)
    assert client.attestations(address, "suggestions", 0) == 1

    second.attest(address, "suggestions", 0, root)
    assert client.attestations(address, "suggestions", 0) == 2
    assert client.attestations(address, "suggestions", 1) == 0
    contract = _web3_contract(registry)
    assert contract.functions.hasAttested(log_id("suggestions"), 0, ganache.address(3)).call()


def test_anchoring_stays_under_80k_gas_in_steady_state(registry: Registry) -> None:
    client, address = registry.client, registry.address
    gas = [
        _anchor(client, address, "suggestions", b, _root(), size=1000 * (b + 1)).gas_used
        for b in range(5)
    ]
    first, steady = gas[0], gas[1:]
    # The first anchor of a log also turns its batch counter from zero to non-zero (+17,100).
    assert first <= STEADY_STATE_GAS_GOAL + 17_100, gas
    assert max(steady) <= STEADY_STATE_GAS_GOAL, gas
