"""The service's own output checked by Go's independent implementation (issue 16): x/mod's
``sumdb/note`` opens the checkpoints the API serves with the log's published verifier key,
``sumdb/tlog`` checks the consistency proofs the API serves between anchored checkpoints and
the inclusion proofs of the receipts it issues. Skipped where Go or x/mod are not installed
(``scripts/setup-go``)."""

from __future__ import annotations

import base64
from itertools import pairwise
from typing import Any

from fastapi.testclient import TestClient

from core.canonical import canonical_bytes
from core.checkpoint import parse_checkpoint
from core.merkle import leaf_hash
from core.note import split_note
from tests.api.test_logs_api import submit_anchored
from tests.core.test_go_interop import Go, go  # noqa: F401 - the fixture, built once
from tests.fixtures.db import Database


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_go_opens_the_services_checkpoints_and_checks_its_proofs(
    client: TestClient,
    database: Database,
    registry: Any,
    go: Go,  # noqa: F811
) -> None:
    hashes, batches = submit_anchored(client, database, registry, [4, 4, 3])
    keys = client.get("/api/v1/logs/suggestions/keys").json()

    notes = [client.get(f"/api/v1/logs/suggestions/checkpoints/{b.number}").text for b in batches]
    opened = go([{"op": "open", "note": n, "vkeys": [keys["log"]]} for n in notes])
    heads = []
    for batch, note_text, result in zip(batches, notes, opened, strict=True):
        assert result["ok"], result
        assert result["origin"] == keys["origin"]
        assert (result["tree_size"], base64.b64decode(result["tree_root"])) == (
            batch.end,
            batch.log_root,
        )
        heads.append(parse_checkpoint(split_note(note_text)[0]))

    cases = []
    for old, new in pairwise(heads):
        proof = client.get(
            "/api/v1/logs/suggestions/consistency", params={"from": old.size, "to": new.size}
        ).json()["path"]
        cases.append(
            {
                "op": "check_tree",
                "old_size": old.size,
                "old_root": b64(old.root),
                "new_size": new.size,
                "new_root": b64(new.root),
                "proof": [b64(bytes.fromhex(h)) for h in proof],
            }
        )
    for record_hash in hashes:
        receipt = client.get(f"/api/v1/records/{record_hash}/receipt").json()
        proof = receipt["proof"]
        cases.append(
            {
                "op": "check_record",
                "index": proof["index"],
                "size": proof["size"],
                "leaf": b64(leaf_hash(canonical_bytes(receipt["record"]))),
                "root": b64(bytes.fromhex(proof["root"])),
                "proof": [b64(bytes.fromhex(h)) for h in proof["path"]],
            }
        )
    results = go(cases)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    assert len(results) == (len(heads) - 1) + len(hashes)
