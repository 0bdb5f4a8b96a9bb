"""The logs' growing trees over the API (PROTOCOL §8): consistency proofs between anchored
sizes that verify against the anchored trees' roots, and the sealed entries for monitors."""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core import tlog
from core.canonical import canonical_bytes
from core.checkpoint import open_checkpoint
from core.merkle import leaf_hash, merkle_root
from core.note import Ed25519Signer, NoteError, parse_verifier_key
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


def submit_anchored(
    client: TestClient, database: Database, registry: Any, sizes: list[int]
) -> tuple[list[str], list[BatchRow]]:
    """Suggestions in batches of ``sizes``, each batch sealed and anchored before the next
    is submitted (a batch takes every waiting record, then its map head: PROTOCOL §10)."""
    hashes: list[str] = []
    batches: list[BatchRow] = []
    for size in sizes:
        for _ in range(size):
            title = f"第 {len(hashes)} 条"
            r = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": title})
            assert r.status_code == 201, r.text
            hashes.append(r.json()["record_hash"])
        batches = _anchor(database, registry, batch_max=size)
    return hashes, batches


def test_consistency_proofs_between_anchored_sizes_and_the_entries_behind_them(
    client: TestClient, database: Database, registry: Any
) -> None:
    batches = submit_anchored(client, database, registry, [4, 4, 3])[1]
    ends = [b.first_position + b.size for b in batches]
    assert ends == [5, 10, 14]  # each batch's records and its map head

    listed = client.get("/api/v1/logs/suggestions/entries", params={"start": 0, "end": 14})
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [e["index"] for e in entries] == list(range(14))
    assert [entries[end - 1]["record"]["type"] for end in ends] == ["ledger.map_head"] * 3
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
    for start, end in ((0, 15), (5, 5), (0, 1001)):
        r = client.get("/api/v1/logs/suggestions/entries", params={"start": start, "end": end})
        assert r.status_code == 422, (start, end, r.text)


def test_every_anchored_batch_has_a_checkpoint_signed_by_the_logs_published_key(
    client: TestClient, database: Database, registry: Any, tmp_path: Path
) -> None:
    """PROTOCOL §9: a C2SP signed note per anchored batch, body <origin>\\n<size>\\n<root>\\n,
    signed by the log's key (named by the origin); receipts carry their batch's (§11)."""
    assert client.get("/api/v1/logs/suggestions/checkpoint").status_code == 404  # none yet
    hashes, batches = submit_anchored(client, database, registry, [4, 2])  # ends 5 and 8

    keys = client.get("/api/v1/logs/suggestions/keys").json()
    assert keys["origin"] == "civic-ledger.localhost/suggestions" and keys["witnesses"] == []
    assert keys["quorum"] == 0  # no witness named: nothing to wait for
    verifier = parse_verifier_key(keys["log"])
    key_file = tmp_path / "log-keys" / "suggestions.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("PRIVATE+KEY+civic-ledger.localhost/suggestions+")

    for batch in batches:
        r = client.get(f"/api/v1/logs/suggestions/checkpoints/{batch.number}")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        opened = open_checkpoint(r.text, verifier)
        assert (opened.checkpoint.size, opened.checkpoint.root) == (batch.end, batch.log_root)
        assert opened.checkpoint.text == (
            f"civic-ledger.localhost/suggestions\n{batch.end}\n"
            f"{base64.b64encode(batch.log_root or b'').decode()}\n"
        )
    latest = client.get("/api/v1/logs/suggestions/checkpoint").text
    assert latest == client.get("/api/v1/logs/suggestions/checkpoints/1").text

    # A receipt carries the checkpoint of its batch, and the two agree.
    receipt = client.get(f"/api/v1/records/{hashes[5]}/receipt").json()
    assert receipt["v"] == 2 and receipt["proof"]["batch"] == 1
    opened = open_checkpoint(receipt["checkpoint"], verifier)
    assert opened.checkpoint.size == receipt["proof"]["size"] == 8
    assert opened.checkpoint.root.hex() == receipt["proof"]["root"]

    # Another key of the same name does not open it; a changed size breaks the signature.
    other = Ed25519Signer("civic-ledger.localhost/suggestions", b"\x07" * 32).verifier
    with pytest.raises(NoteError):
        open_checkpoint(latest, other)
    with pytest.raises(NoteError):
        open_checkpoint(latest.replace("\n8\n", "\n9\n", 1), verifier)
    assert client.get("/api/v1/logs/suggestions/checkpoints/9").status_code == 404
    assert client.get("/api/v1/logs/nope/checkpoint").status_code == 404
