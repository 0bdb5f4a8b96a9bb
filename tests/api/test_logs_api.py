"""The logs' growing trees over the API (PROTOCOL §8): consistency proofs between anchored
sizes that verify against the anchored trees' roots, and the sealed entries for monitors."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from core import tlog
from core.canonical import canonical_bytes
from core.merkle import leaf_hash, merkle_root
from ledger.models import BatchRow
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.api.test_workflow_api import SUGGESTION
from tests.fixtures.db import Database


def _anchor(database: Database, registry: Any, batch_max: int) -> list[BatchRow]:
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(
            contract=registry.address,
            logs=["suggestions"],
            anchor_interval=0.0,
            batch_max=batch_max,
            receipt_timeout=10.0,
        ),
    )
    try:
        while worker.step():
            pass
    finally:
        for state in worker.logs:
            state.lock.release()
    with database.sessions() as session:
        return list(session.scalars(select(BatchRow).order_by(BatchRow.number)))


def test_consistency_proofs_between_anchored_sizes_and_the_entries_behind_them(
    client: TestClient, database: Database, registry: Any
) -> None:
    for i in range(11):
        r = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": f"第 {i} 条"})
        assert r.status_code == 201, r.text
    batches = _anchor(database, registry, batch_max=4)
    ends = [b.first_position + b.size for b in batches]
    assert ends == [4, 8, 11]

    listed = client.get("/api/v1/logs/suggestions/entries", params={"start": 0, "end": 11})
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [e["index"] for e in entries] == list(range(11))
    leaves = [leaf_hash(canonical_bytes(e["record"])) for e in entries]
    assert [leaf.hex() for leaf in leaves] == [e["leaf_hash"] for e in entries]

    # Each batch's log root is the tree of all entries so far, and every pair of anchored
    # sizes is proven consistent.
    assert [b.log_root for b in batches] == [merkle_root(leaves[:end]) for end in ends]
    for old in ends:
        for new in ends[ends.index(old) :]:
            r = client.get("/api/v1/logs/suggestions/consistency", params={"from": old, "to": new})
            assert r.status_code == 200, r.text
            answer = r.json()
            assert (answer["from"], answer["to"]) == (old, new)
            proof = [bytes.fromhex(h) for h in answer["path"]]
            assert tlog.verify_consistency(
                old, new, merkle_root(leaves[:old]), merkle_root(leaves[:new]), proof
            )

    # Sizes that are not anchored ends, bad ranges, unknown logs: precise refusals.
    for params in ({"from": 3, "to": 8}, {"from": 8, "to": 4}, {"from": 0, "to": 4}):
        r = client.get("/api/v1/logs/suggestions/consistency", params=params)
        assert r.status_code == 422, (params, r.text)
    assert client.get("/api/v1/logs/nope/consistency?from=4&to=8").status_code == 404
    for start, end in ((0, 12), (5, 5), (0, 1001)):
        r = client.get("/api/v1/logs/suggestions/entries", params={"start": start, "end": end})
        assert r.status_code == 422, (start, end, r.text)
