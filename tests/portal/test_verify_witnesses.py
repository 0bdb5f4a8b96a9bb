"""The verify page and version 2 receipts (PROTOCOL §9, §11, issue 16): it opens the
receipt's checkpoint with the log's key and the configured witnesses' keys and names each
witness whose cosignature verifies, with its time; a receipt no witness has cosigned says so,
and a checkpoint that does not open is a warning beside the verdict, never a broken page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from core.checkpoint import parse_checkpoint
from core.cosignature import Cosigner
from core.note import open_note
from ledger.checkpoints import LogKeys
from ledger.models import WitnessCosignatureRow
from tests.api.conftest import make_settings
from tests.api.test_logs_api import _anchor
from tests.api.test_witnesses import _submit
from tests.fixtures.db import Database
from tests.portal.test_citizen_pages import verdict_of, verify

COSIGNED_AT = 1_800_000_000  # 2027-01-15 08:00:00 UTC


def test_the_verify_page_names_the_witnesses_that_cosigned(
    database: Database, registry: Any, ganache: Any, tmp_path: Path
) -> None:
    cosigner = Cosigner("witness.example.org", b"w" * 32)
    settings = make_settings(
        database,
        tmp_path,
        chain_rpc=ganache.rpc_url,
        witnesses=f"http://127.0.0.1:9={cosigner.verifier_key}",
        witness_quorum=1,
    )
    with TestClient(create_app(settings)) as client:
        hashes = _submit(client, 4)
        [first] = _anchor(database, registry, batch_max=4)  # end 5 (and its map head)
        hashes += _submit(client, 2, start=4)
        first, second = _anchor(database, registry, batch_max=2)  # end 8
        keys = LogKeys(settings)
        log_key = keys.signers["suggestions"].verifier
        # The first batch's checkpoint cosigned, stored as the pusher stores what it verified.
        text = open_note(keys.checkpoint(first), [log_key]).text
        assert parse_checkpoint(text).size == 5
        with database.sessions.begin() as session:
            session.add(
                WitnessCosignatureRow(
                    log="suggestions",
                    batch=first.number,
                    witness=cosigner.name,
                    key_id=cosigner.verifier.key_id,
                    lines=cosigner.cosign(text, COSIGNED_AT).line,
                    cosigned_at=datetime.now(UTC),
                )
            )

        page = client.get(f"/verify?record_hash={hashes[0]}&lang=en")
        assert page.status_code == 200, page.text
        assert verdict_of(page.text) == "valid"
        assert 'id="witnesses"' in page.text
        assert "witness.example.org (cosigned at 2027-01-15 08:00:00 UTC)" in page.text
        assert f'<code id="log-key-id">{log_key.key_id.hex()}</code>' in page.text
        assert "checkpoint-problem" not in page.text

        # The second batch: a version 2 receipt with a checkpoint no witness cosigned.
        receipt = client.get(f"/api/v1/records/{hashes[5]}/receipt").json()
        assert receipt["v"] == 2 and receipt["proof"]["batch"] == second.number
        page = client.get(f"/verify?record_hash={hashes[5]}&lang=en")
        assert verdict_of(page.text) == "valid"
        assert "No witness has cosigned yet." in page.text
        assert 'id="witnesses"' not in page.text
        chinese = client.get(f"/verify?record_hash={hashes[5]}&lang=zh")
        assert "尚无见证方联署此检查点。" in chinese.text

        # A checkpoint changed in the receipt does not open with the log's key: a warning.
        receipt["checkpoint"] = receipt["checkpoint"].replace("\n8\n", "\n9\n", 1)
        client.get("/verify?lang=en")  # the language the form is posted in (the cookie)
        page = verify(client, receipt=json.dumps(receipt, ensure_ascii=False))
        assert page.status_code == 200
        assert 'id="checkpoint-problem"' in page.text
        assert "does not verify with this log" in page.text
        assert 'id="witnesses"' not in page.text
