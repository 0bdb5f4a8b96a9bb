"""The map of trail heads over the API (PROTOCOL §10, §11): every subject, with a trail or
without, gets its proof against the map head of an anchored batch, and the map head's receipt
verifies like any other."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core import trailmap
from core.verdicts import Verdict
from tests.api.test_logs_api import _anchor
from tests.api.test_workflow_api import SUGGESTION
from tests.fixtures.db import Database
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt


def _submit(client: TestClient, n: int) -> list[str]:
    codes = []
    for i in range(n):
        r = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": f"第 {i} 条"})
        assert r.status_code == 201, r.text
        codes.append(r.json()["tracking_code"])
    return codes


def _check(answer: dict[str, Any], subject: str, reader: Web3ChainReader) -> tuple | None:
    """The head the answer proves for ``subject`` (None: no trail), after checking the map
    head's receipt on chain and the proof against its root."""
    head = answer["map_head"]
    assert verify_receipt(head, reader).verdict is Verdict.VALID
    record = head["record"]
    assert (record["type"], record["subject"]) == ("ledger.map_head", "ledger/map")
    assert record["body"]["batch"] == answer["batch"] == head["proof"]["batch"]
    assert record["body"]["index"] == head["proof"]["index"] == head["proof"]["size"] - 1
    root = bytes.fromhex(record["body"]["map_root"])
    return trailmap.verify(root, subject, trailmap.parse_proof(answer["proof"]))


def test_every_subject_is_proven_in_or_out_of_the_map_of_any_anchored_batch(
    client: TestClient, database: Database, registry: Any, ganache: Any
) -> None:
    reader = Web3ChainReader(ganache.rpc_url)
    assert client.get("/api/v1/logs/suggestions/map/SG-NONE").status_code == 404  # no batch yet
    first = _submit(client, 3)
    _anchor(database, registry, batch_max=1)
    second = _submit(client, 2)
    _anchor(database, registry, batch_max=1)

    trail = client.get(f"/api/v1/suggestions/{first[0]}/trail").json()
    [record] = trail["records"]
    assert trail["map"]["batch"] == 1  # the latest anchored batch
    proven = _check(trail["map"], first[0], reader)
    assert proven == (0, bytes.fromhex(record["record_hash"]))

    for batch, codes, absent in ((0, first, second), (1, first + second, [])):
        for code in codes:
            r = client.get(f"/api/v1/logs/suggestions/map/{code}", params={"batch": batch})
            assert r.status_code == 200, r.text
            seq, leaf = _check(r.json(), code, reader)
            assert seq == 0 and leaf.hex() in {
                e["record_hash"]
                for e in client.get(f"/api/v1/suggestions/{code}/trail").json()["records"]
            }
        for code in [*absent, "SG-NEVER-SEEN", "任何/主体"]:  # no trail: proven absent
            r = client.get(f"/api/v1/logs/suggestions/map/{code}", params={"batch": batch})
            assert r.status_code == 200, r.text
            assert _check(r.json(), code, reader) is None
    # the map's own trail is not in the map
    r = client.get("/api/v1/logs/suggestions/map/ledger/map").json()
    assert _check(r, "ledger/map", reader) is None

    for url, status in (
        ("/api/v1/logs/nope/map/SG-1", 404),
        ("/api/v1/logs/suggestions/map/SG-1?batch=7", 404),
        ("/api/v1/logs/suggestions/map/SG-1?batch=-1", 422),
        ("/api/v1/logs/suggestions/map/" + "x" * 161, 422),
    ):
        r = client.get(url)
        assert r.status_code == status, (url, r.text)
        assert r.json()["detail"]
