"""`civic-ledger reanchor` against real chains and a real database: a store anchored on one
chain is re-anchored on a fresh chain (the "wiped" one), same batch numbers and roots; old
receipts get a clear verdict, new ones verify, the event is a record the audit lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from contracts import Artifact
from contracts.keys import generate_key
from core.merkle import merkle_root
from core.records import CHAIN_SUBJECT, REANCHORED_TYPE
from core.verdicts import Verdict
from ledger import chain as chain_module
from ledger import repository, service
from ledger.chain import ChainClient
from ledger.deployment import DeploymentInfo, read_deployment, write_deployment
from ledger.devchain import DevChain, free_port, start_ganache
from ledger.models import BatchRow, LogHead, RecordRow, TreeNode
from ledger.reanchor import (
    ExpectedAnchor,
    ReanchorError,
    check_chain,
    expected_anchors,
    reanchor,
)
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from verifier.audit import audit_store
from verifier.audit.reading import open_store
from verifier.audit.report import format_audit
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def wiped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevChain, bytes]]:
    """A fresh, empty chain with the same chain id: what a wiped development chain looks like.
    Its anchoring key is another one, so no address there can equal one on the old chain."""
    key = generate_key()
    log_path = tmp_path_factory.mktemp("wiped") / "ganache.log"
    chain = start_ganache(port=free_port(), db_path=None, funded_keys=[key], log_path=log_path)
    try:
        yield chain, key
    finally:
        chain.stop()


def append_records(db: Database, n: int, first: int = 0) -> list[str]:
    """``n`` suggestions, each its own trail of one ``suggestion.submitted`` (so the audit's
    state machine has nothing to say about them), each in its own transaction."""
    hashes = []
    for i in range(first, first + n):
        with db.sessions.begin() as session:
            sealed = service.append_record(
                session,
                log="suggestions",
                type="suggestion.submitted",
                subject=f"SG-TEST-{i:04d}",
                actor={"role": "citizen", "id": f"anon-{i:016x}"},
                body={"title": f"t{i}", "text": "x", "category": "c", "district": "d"},
            )
            hashes.append(sealed.record_hash)
    return hashes


def _anchor_all(db: Database, contract: str, client: ChainClient, batch_max: int) -> None:
    worker = AnchoringWorker(
        engine=db.engine,
        session_factory=db.sessions,
        chain=client,
        config=WorkerConfig(
            contract=contract, anchor_interval=0.0, batch_max=batch_max, receipt_timeout=10.0
        ),
    )
    try:
        while worker.step():
            pass
        assert all(s.state == "idle" for s in worker.logs if s.held), [
            (s.name, s.state, s.detail) for s in worker.logs
        ]
    finally:
        for state in worker.logs:
            state.lock.release()


def _append_anchored(
    db: Database, contract: str, client: ChainClient, sizes: list[int]
) -> list[str]:
    """Batches of ``sizes`` records (each and its map head), anchored one after another: a
    batch takes every record waiting when it is sealed."""
    hashes: list[str] = []
    for size in sizes:
        hashes += append_records(db, size, first=len(hashes))
        _anchor_all(db, contract, client, batch_max=size)
    return hashes


def _batches(db: Database) -> list[BatchRow]:
    with db.sessions() as session:
        return list(session.scalars(select(BatchRow).order_by(BatchRow.log, BatchRow.number)))


def _deployment(path: Path, address: str, chain_id: int) -> Path:
    write_deployment(path, DeploymentInfo(address, chain_id, "0x" + "00" * 32, 1, "http://old"))
    return path


def test_every_batch_is_anchored_again_and_the_event_is_a_record(
    database: Database, registry, ganache, wiped, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    hashes = _append_anchored(database, registry.address, registry.client, [5, 5, 2])
    with database.sessions() as session:
        old_receipts = [service.receipt(session, h) for h in hashes]
        expected = expected_anchors(session)
    assert [(e.log, e.number) for e in expected] == [("suggestions", 2)]
    chain, key = wiped
    client = ChainClient(chain.rpc_url, key)
    found = check_chain(client, registry.address, expected)
    assert found.state == "reset" and not found.contract_code
    assert "civic-ledger reanchor" in found.message
    deployment = _deployment(tmp_path / "contract.json", registry.address, ganache.chain_id)

    result = reanchor(
        engine=database.engine,
        sessions=database.sessions,
        client=client,
        rpc=chain.rpc_url,
        deployment_file=deployment,
    )

    assert result.deployed and result.new_contract != registry.address
    assert result.old_contract == registry.address and result.batches == {"suggestions": 3}
    recorded = read_deployment(deployment)
    assert recorded is not None and recorded.address == result.new_contract
    batches = _batches(database)
    assert [(b.number, b.state, b.contract) for b in batches] == [
        (n, "anchored", result.new_contract) for n in range(3)
    ]
    for b in batches:  # same numbers, same roots, on the new registry
        on_chain = client.batch_of(result.new_contract, "suggestions", b.number)
        assert on_chain is not None and (on_chain.root, on_chain.size) == (b.log_root, b.end)
        assert client.find_anchor(result.new_contract, "suggestions", b.number) == (
            b.tx_hash,
            b.block_number,
        )
    reader = Web3ChainReader(chain.rpc_url)
    with database.sessions() as session:
        for h, old in zip(hashes, old_receipts, strict=True):
            new = service.receipt(session, h)
            assert isinstance(new, dict) and isinstance(old, dict)
            assert new["proof"] == old["proof"]  # same batch, index, path and root
            assert new["anchor"]["contract"] == result.new_contract
            assert verify_receipt(new, reader).verdict is Verdict.VALID
            verdict = verify_receipt(old, reader)
            assert verdict.verdict is Verdict.WRONG_CHAIN
            assert registry.address in verdict.reason and "re-anchored" in verdict.reason
        event = session.scalars(
            select(RecordRow).where(
                RecordRow.leaf_hash == bytes.fromhex(result.records["suggestions"])
            )
        ).one()
        assert (event.type, event.subject, event.seq) == (REANCHORED_TYPE, CHAIN_SUBJECT, 0)
        assert check_chain(client, result.new_contract, expected_anchors(session)).ok

    # The record is sealed and anchored like any other; the audit lists it, finds nothing.
    _anchor_all(database, result.new_contract, client, batch_max=5)
    with open_store(database.url) as store:
        report = audit_store(store, reader)
    assert report.clean, report.findings
    [listed] = report.reanchored
    assert (listed.log, listed.batches, listed.old_contract, listed.new_contract) == (
        "suggestions",
        3,
        registry.address,
        result.new_contract,
    )
    assert any("wrong_chain" in note for note in report.notes)
    shown = format_audit(report)
    assert "CLEAN" in shown and "re-anchored after a chain reset (1, not findings)" in shown
    assert report.to_dict()["reanchored"][0]["record_hash"] == result.records["suggestions"]

    again = reanchor(
        engine=database.engine,
        sessions=database.sessions,
        client=client,
        rpc=chain.rpc_url,
        deployment_file=deployment,
    )
    assert again.total == 0 and not again.deployed and again.records == {}


def test_a_half_done_reanchor_is_finished_by_running_it_again(
    database: Database, registry, wiped, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _append_anchored(database, registry.address, registry.client, [2] * 5)
    chain, key = wiped
    client = ChainClient(chain.rpc_url, key)
    target = client.deploy_registry().address
    first_two = []
    for b in _batches(database)[:2]:  # the crashed run got this far
        signed = client.sign_anchor(target, "suggestions", b.number, b.anchored_root, b.end)
        client.send_raw(signed.raw)
        assert client.wait_for_receipt(signed.tx_hash, 10) is not None
        first_two.append(signed.tx_hash)
    deployment = _deployment(tmp_path / "contract.json", target, client.chain_id)

    result = reanchor(
        engine=database.engine,
        sessions=database.sessions,
        client=client,
        rpc=chain.rpc_url,
        deployment_file=deployment,
    )

    assert not result.deployed and result.new_contract == target
    assert result.batches == {"suggestions": 5} and list(result.records) == ["suggestions"]
    batches = _batches(database)
    assert [b.tx_hash for b in batches[:2]] == first_two
    assert all(b.contract == target and b.state == "anchored" for b in batches)
    assert client.next_batch(target, "suggestions") == 5


def test_a_registry_holding_other_roots_is_an_alteration_and_nothing_changes(
    database: Database, registry, wiped, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 3)
    _anchor_all(database, registry.address, registry.client, batch_max=5)
    chain, key = wiped
    client = ChainClient(chain.rpc_url, key)
    other = client.deploy_registry().address
    forged = client.sign_anchor(other, "suggestions", 0, b"\x22" * 32, 3)
    client.send_raw(forged.raw)
    client.wait_for_receipt(forged.tx_hash, 10)
    deployment = _deployment(tmp_path / "contract.json", other, client.chain_id)
    before = _batches(database)

    with pytest.raises(ReanchorError, match="alteration, not a reset"):
        reanchor(
            engine=database.engine,
            sessions=database.sessions,
            client=client,
            rpc=chain.rpc_url,
            deployment_file=deployment,
        )

    assert [(b.contract, b.tx_hash) for b in _batches(database)] == [
        (b.contract, b.tx_hash) for b in before
    ]
    with database.sessions() as session:
        [head] = [h for h in repository.all_log_heads(session) if h.log == "suggestions"]
        assert head.next_position == 4  # no record was written (3 and the map head)
        expected = expected_anchors(session)
    # Had the store's batches named that registry, the check would call it a conflict too.
    [e] = expected
    named = ExpectedAnchor(e.log, e.number, e.root, e.size, other, client.chain_id)
    conflict = check_chain(client, other, [named])
    assert conflict.state == "conflict" and "not a reset" in conflict.message


def test_check_chain_tells_intact_from_reset(database: Database, registry) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 2)
    _anchor_all(database, registry.address, registry.client, batch_max=5)
    with database.sessions() as session:
        expected = expected_anchors(session)
    assert check_chain(registry.client, registry.address, expected).ok
    [e] = expected
    beyond = ExpectedAnchor(e.log, e.number + 1, e.root, e.size, e.contract, e.chain_id)
    missing = check_chain(registry.client, registry.address, [beyond])
    assert missing.state == "reset" and "does not hold it" in missing.problems[0]


def test_reanchor_refuses_to_run_beside_an_active_worker(
    database: Database, registry, wiped
) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 2)
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(contract=registry.address, anchor_interval=0.0),
    )
    worker.step()  # takes the logs' locks
    chain, key = wiped
    try:
        with pytest.raises(ReanchorError, match="stop the service"):
            reanchor(
                engine=database.engine,
                sessions=database.sessions,
                client=ChainClient(chain.rpc_url, key),
                rpc=chain.rpc_url,
            )
    finally:
        for state in worker.logs:
            state.lock.release()


V1_REGISTRY = Path(__file__).resolve().parents[1] / "fixtures" / "AnchorRegistry-v1.json"


def test_a_version_1_store_moves_to_version_2_with_reanchor(
    database: Database, ganache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """PROTOCOL §8: "a version 1 store is migrated by anchoring its entries again, in the same
    order", into a registry of its own. The store here was anchored by version 1 (each batch
    its own root and size, on the version 1 registry, compiled before version 2: the fixture
    artifact); the service refuses to go on with it, and `civic-ledger reanchor` moves it."""
    raw = json.loads(V1_REGISTRY.read_text())
    v1 = Artifact(
        raw["contractName"],
        tuple(raw["abi"]),
        raw["bytecode"],
        raw["deployedBytecode"],
        raw["evmVersion"],
        raw["compiler"],
    )
    real_artifact = chain_module.load_artifact
    monkeypatch.setattr(
        chain_module,
        "load_artifact",
        lambda name: v1 if name == "AnchorRegistryV1" else real_artifact(name),
    )
    client = ChainClient(ganache.rpc_url, ganache.keys[0])
    old = client.deploy("AnchorRegistryV1", client.address, client.address).address
    assert client.protocol_version(old) == 1

    # What a version 1 service left: batches of 5, each anchored with its own root and size,
    # and no log tree.
    hashes: list[str] = []
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=client,
        config=WorkerConfig(contract=old, anchor_interval=0.0, batch_max=5, receipt_timeout=10.0),
    )
    try:
        for size in (5, 5, 2):
            hashes += append_records(database, size, first=len(hashes))
            assert worker.seal("suggestions", force=True) is not None
    finally:
        for state in worker.logs:
            state.lock.release()
    with database.sessions.begin() as session:
        session.execute(delete(TreeNode))
        session.execute(update(LogHead).values(tree_size=0))
        for row in session.scalars(select(BatchRow).order_by(BatchRow.number)):
            signed = client.sign_anchor(old, "suggestions", row.number, row.root, row.size)
            client.send_raw(signed.raw)
            mined = client.wait_for_receipt(signed.tx_hash, 10)
            assert mined is not None and mined.status == 1
            row.log_root = row.frontier = None
            row.state, row.contract, row.chain_id = "anchored", old, client.chain_id
            row.tx_hash, row.block_number = signed.tx_hash, mined.block_number

    with database.sessions() as session:
        found = check_chain(client, old, expected_anchors(session))
    assert found.state == "reset" and "protocol version 1 registry" in found.message

    deployment = _deployment(tmp_path / "contract.json", old, ganache.chain_id)
    result = reanchor(
        engine=database.engine,
        sessions=database.sessions,
        client=client,
        rpc=ganache.rpc_url,
        deployment_file=deployment,
    )
    assert result.deployed and result.new_contract != old
    assert client.protocol_version(result.new_contract) == 2
    assert result.batches == {"suggestions": 3}
    with database.sessions() as session:
        leaves = list(session.scalars(select(RecordRow.leaf_hash).order_by(RecordRow.position)))
        assert check_chain(client, result.new_contract, expected_anchors(session)).ok
    for b in _batches(database):
        on_chain = client.batch_of(result.new_contract, "suggestions", b.number)
        assert on_chain is not None
        assert (on_chain.root, on_chain.size) == (merkle_root(leaves[: b.end]), b.end)
    with database.sessions() as session:
        receipt = service.receipt(session, hashes[7])
    assert isinstance(receipt, dict) and receipt["v"] == 2
    # entry 8 of the log (the first batch's map head is entry 5); batch 1 ends at 12
    assert receipt["proof"]["index"] == 8 and receipt["proof"]["size"] == 12
