"""The anchoring worker against a real ganache and a real database: it seals, anchors,
and after a crash at any point resumes with no batch lost, skipped or anchored twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.merkle import merkle_root
from core.verdicts import Verdict
from ledger import repository, service
from ledger.chain import ChainClient
from ledger.models import BatchRow, RecordRow
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database, append_records
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt

pytestmark = [pytest.mark.chain, pytest.mark.every_node]


def _worker(db: Database, registry, client: ChainClient | None = None, **config) -> AnchoringWorker:  # type: ignore[no-untyped-def]
    settings = {"anchor_interval": 0.0, "batch_max": 1000, "receipt_timeout": 10.0, **config}
    return AnchoringWorker(
        engine=db.engine,
        session_factory=db.sessions,
        chain=client or registry.client,
        config=WorkerConfig(contract=registry.address, logs=["suggestions"], **settings),
    )


def _batches(db: Database) -> list[BatchRow]:
    with db.sessions() as session:
        return list(session.scalars(select(BatchRow).order_by(BatchRow.number)))


def _release(*workers: AnchoringWorker) -> None:
    for worker in workers:
        for state in worker.logs:
            state.lock.release()


def test_records_are_sealed_anchored_and_every_receipt_verifies(
    database: Database, registry, ganache
) -> None:  # type: ignore[no-untyped-def]
    hashes = append_records(database, 7)
    worker = _worker(database, registry)
    assert worker.step() is True
    [batch] = _batches(database)
    # the 7 records and the map of trail heads after them (PROTOCOL §10)
    assert (batch.number, batch.size, batch.state) == (0, 8, "anchored")
    on_chain = registry.client.batch_of(registry.address, "suggestions", 0)
    assert on_chain is not None and on_chain.root == batch.log_root and on_chain.size == 8
    reader = Web3ChainReader(ganache.rpc_url)
    with database.sessions() as session:
        for h in hashes:
            receipt = service.receipt(session, h)
            assert isinstance(receipt, dict)
            assert receipt["anchor"]["tx"] == batch.tx_hash
            assert verify_receipt(receipt, reader).verdict is Verdict.VALID
    assert worker.step() is False  # nothing left to do
    _release(worker)


def test_a_batch_takes_every_waiting_record_and_ends_with_the_map_head(
    database: Database, registry
) -> None:  # type: ignore[no-untyped-def]
    worker = _worker(database, registry, batch_max=10, anchor_interval=3600.0)
    append_records(database, 9)
    assert worker.step() is False  # fewer than batch_max wait, and not for long
    append_records(database, 16, subject="SG-OTHER")
    while worker.step():
        pass
    append_records(database, 10, subject="SG-THIRD")
    while worker.step():
        pass
    batches = _batches(database)
    # batch_max says when to seal; the batch takes all that wait, then its map head (§10)
    assert [(b.number, b.first_position, b.size, b.state) for b in batches] == [
        (0, 0, 26, "anchored"),
        (1, 26, 11, "anchored"),
    ]
    with database.sessions() as session:
        types = list(session.scalars(select(RecordRow.type).order_by(RecordRow.position)))
    assert [types[b.first_position + b.size - 1] for b in batches] == ["ledger.map_head"] * 2
    assert types.count("ledger.map_head") == 2
    assert registry.client.next_batch(registry.address, "suggestions") == 2
    with database.sessions() as session:
        leaves = list(session.scalars(select(RecordRow.leaf_hash).order_by(RecordRow.position)))
    for b in batches:
        assert merkle_root(leaves[b.first_position : b.first_position + b.size]) == b.root
        # The whole log's tree grew with each batch (PROTOCOL §8).
        assert merkle_root(leaves[: b.first_position + b.size]) == b.log_root
    _release(worker)


def test_a_small_batch_waits_for_the_anchor_interval(database: Database, registry) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 3)
    now = datetime.now(UTC)
    clock = {"now": now}
    worker = _worker(database, registry, anchor_interval=60.0)
    worker.clock = lambda: clock["now"]
    assert worker.step() is False and _batches(database) == []
    clock["now"] = now + timedelta(seconds=61)
    assert worker.step() is True
    assert [b.size for b in _batches(database)] == [4]  # and the map head
    _release(worker)


def test_crash_after_sealing_before_sending(database: Database, registry) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 4)
    first = _worker(database, registry)
    first.seal("suggestions", force=True)
    _release(first)  # the process died here
    second = _worker(database, registry)
    assert second.step() is True
    assert [(b.number, b.state) for b in _batches(database)] == [(0, "anchored")]
    _release(second)


def test_crash_after_storing_the_signed_tx_before_broadcast(database: Database, registry) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 4)
    first = _worker(database, registry)
    batch = first.seal("suggestions", force=True)
    signed = first.prepare(batch)
    assert signed is not None
    _release(first)  # died before send_raw
    second = _worker(database, registry)
    assert second.step() is True
    [stored] = _batches(database)
    assert stored.state == "anchored" and stored.tx_hash == signed.tx_hash
    assert registry.client.next_batch(registry.address, "suggestions") == 1
    _release(second)


def test_crash_after_the_tx_was_mined_before_it_was_recorded(database: Database, registry) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 4)
    first = _worker(database, registry)
    batch = first.seal("suggestions", force=True)
    signed = first.prepare(batch)
    assert signed is not None
    registry.client.send_raw(signed.raw)
    assert registry.client.wait_for_receipt(signed.tx_hash, 10) is not None
    _release(first)  # died before marking the batch anchored
    append_records(database, 2)
    second = _worker(database, registry)
    while second.step():
        pass
    batches = _batches(database)
    assert [(b.number, b.size, b.state) for b in batches] == [
        (0, 5, "anchored"),  # each with its map head
        (1, 3, "anchored"),
    ]
    assert batches[0].tx_hash == signed.tx_hash
    assert registry.client.next_batch(registry.address, "suggestions") == 2
    _release(second)


def test_a_batch_anchored_behind_the_workers_back_is_recognised(
    database: Database, registry
) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 3)
    worker = _worker(database, registry)
    batch = worker.seal("suggestions", force=True)
    signed = registry.client.sign_anchor(
        registry.address, "suggestions", 0, batch.anchored_root, batch.end
    )
    registry.client.send_raw(signed.raw)
    registry.client.wait_for_receipt(signed.tx_hash, 10)
    assert worker.step() is True
    [stored] = _batches(database)
    assert stored.state == "anchored" and stored.tx_hash == signed.tx_hash
    _release(worker)


def test_a_different_root_on_chain_stops_the_log_and_is_reported(
    database: Database, registry
) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 3)
    worker = _worker(database, registry)
    worker.seal("suggestions", force=True)
    forged = registry.client.sign_anchor(registry.address, "suggestions", 0, b"\x11" * 32, 3)
    registry.client.send_raw(forged.raw)
    registry.client.wait_for_receipt(forged.tx_hash, 10)
    worker.step()
    [stored] = _batches(database)
    assert stored.state == "sealed"
    state = worker.logs[0]
    assert state.state == "chain_error" and "refusing to continue" in (state.detail or "")
    _release(worker)


def test_only_one_worker_is_active_per_log(database: Database, registry, ganache) -> None:  # type: ignore[no-untyped-def]
    append_records(database, 30)
    second_client = ChainClient(ganache.rpc_url, ganache.keys[0])
    workers = [
        _worker(database, registry, batch_max=4),
        _worker(database, registry, client=second_client, batch_max=4),
    ]
    errors: list[BaseException] = []
    rounds = 6
    # Records keep coming: after each round of writes both workers step at once. Each worker
    # keeps its own thread (the file lock of SQLite is held per thread).
    start, done = threading.Barrier(3), threading.Barrier(3)

    def run(worker: AnchoringWorker) -> None:
        for _ in range(rounds):
            start.wait()
            try:
                for _ in range(6):  # seal, anchor, then nothing left (the standby: nothing)
                    worker.step()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            done.wait()

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for i in range(rounds):
        append_records(database, 5, subject=f"SG-MORE-{i}")
        start.wait()
        done.wait()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(w.logs[0].held for w in workers) == [False, True]
    batches = _batches(database)
    assert len(batches) == 6  # one per round
    assert [b.number for b in batches] == list(range(len(batches)))
    assert all(b.state == "anchored" for b in batches)
    # every record in exactly one batch, each batch ending with its map head
    assert sum(b.size for b in batches) == 60 + len(batches)
    assert [b.first_position for b in batches] == [0] + [
        b.first_position + b.size for b in batches[:-1]
    ]
    assert registry.client.next_batch(registry.address, "suggestions") == len(batches)
    _release(*workers)


def test_an_unreachable_chain_is_reported_and_records_keep_coming(
    database: Database, registry, ganache
) -> None:  # type: ignore[no-untyped-def]
    dead = ChainClient("http://127.0.0.1:9", ganache.keys[0], request_timeout=1.0)
    worker = _worker(database, registry, client=dead)
    append_records(database, 2)
    worker.step()
    assert worker.logs[0].state == "chain_unreachable"
    append_records(database, 2)  # the store keeps accepting
    with database.sessions() as session:
        lag = service.anchoring_lag(session)["suggestions"]
        statuses = {s.log: s.state for s in repository.worker_statuses(session)}
    assert lag["unanchored_records"] == 5  # and the first batch's map head
    assert statuses["suggestions"] == "chain_unreachable"
    _release(worker)
