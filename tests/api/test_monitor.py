"""civic-verify monitor (PROTOCOL §8-§9, issue 16): a log followed from what the service
publishes, its tree recomputed from the entries, every checkpoint's root and signature, the
consistency between consecutive checkpoints and each checkpoint against the chain. A record
changed after it was checkpointed is found and named."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from core.canonical import canonical_bytes
from core.merkle import leaf_hash
from ledger.models import RecordRow
from tests.api.test_logs_api import submit_anchored
from tests.api.test_verify_tally import bridge
from tests.fixtures.db import Database
from tests.verifier.test_audit import set_canonical
from verifier.chain import Web3ChainReader
from verifier.cli import main


def _monitor(
    client: TestClient, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, dict[str, Any]]:
    key = client.get("/api/v1/logs/suggestions/keys").json()["log"]
    code = main(
        ["monitor", "--api", "http://testserver", "--log-key", key, "--json", *extra],
        http_transport=bridge(client),
        reader_factory=Web3ChainReader,
    )
    return code, json.loads(capsys.readouterr().out)


def _rewrite(database: Database, position: int, *, keep_hash: bool) -> None:
    """Change the content of the record at ``position`` behind the service's back, as a
    database superuser would (past the append-only triggers)."""
    with database.sessions() as session:
        row = session.scalars(select(RecordRow).where(RecordRow.position == position)).one()
        record = json.loads(row.canonical)
    record["body"]["title"] = "改过的标题"
    canonical = canonical_bytes(record)
    leaf = None if keep_hash else leaf_hash(canonical)
    set_canonical(database, position, canonical, leaf)


@pytest.fixture
def anchored(client: TestClient, database: Database, registry: Any) -> Any:
    batches = submit_anchored(client, database, registry, [4, 4, 1])[1]
    assert [b.end for b in batches] == [5, 10, 12]  # each batch's records and its map head
    return registry


def test_an_honest_log_is_recomputed_and_found_consistent_with_its_checkpoints_and_chain(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    rpc = anchored.client.w3.provider.endpoint_uri
    code, result = _monitor(client, capsys, "--rpc", rpc)
    assert (code, result["verdict"]) == (0, "valid"), result
    assert (result["batches"], result["entries"]) == (3, 12)


def test_a_record_changed_with_its_listed_hash_is_named_altered(
    client: TestClient, database: Database, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite(database, 5, keep_hash=True)
    code, result = _monitor(client, capsys)
    assert (code, result["verdict"], result["index"]) == (1, "altered", 5), result


def test_a_log_rewritten_behind_its_checkpoints_is_inconsistent_naming_the_batch(
    client: TestClient, database: Database, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _rewrite(database, 5, keep_hash=False)  # a consistent-looking rewrite of entry 5
    code, result = _monitor(client, capsys)
    assert (code, result["verdict"], result["batch"]) == (1, "inconsistent", 1), result


def test_checkpoints_under_another_key_are_bad_signatures(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.note import Ed25519Signer

    other = Ed25519Signer("civic-ledger.localhost/suggestions", b"\x05" * 32).verifier_key
    code = main(
        ["monitor", "--api", "http://testserver", "--log-key", other, "--json"],
        http_transport=bridge(client),
        reader_factory=Web3ChainReader,
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["verdict"], result["batch"]) == (1, "bad_signature", 0), result


def test_a_service_that_cannot_answer_is_no_verdict_with_the_reason(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the monitor fetches goes through verifier.fetch: no answer, another status and an
    answer that is not strict JSON are 'no verdict' (exit 2), never a verdict on the log."""
    real = bridge(client)
    broken: dict[str, httpx.Response] = {}

    def handle(request: httpx.Request) -> httpx.Response:
        for path, answer in broken.items():
            if request.url.path.endswith(path):
                return answer
        return real.handle_request(request)

    def monitor() -> tuple[int, str]:
        code = main(
            ["monitor", "--api", "http://testserver", "--json"],
            http_transport=httpx.MockTransport(handle),
            reader_factory=Web3ChainReader,
        )
        return code, capsys.readouterr().err

    broken["/entries"] = httpx.Response(500, text="boom")
    code, err = monitor()
    assert code == 2 and "/entries answered HTTP 500, not entries" in err, err
    broken["/entries"] = httpx.Response(200, content=b'{"entries": [], "entries": []}')
    code, err = monitor()
    assert code == 2 and "did not answer with strict JSON" in err, err
    broken.clear()
    broken["/consistency"] = httpx.Response(404, json={"detail": "no"})
    code, err = monitor()
    assert code == 2 and "answered 404, not a proof" in err, err
    code = main(["monitor", "--api", "http://127.0.0.1:1", "--timeout", "2"])
    assert code == 2 and "cannot reach http://127.0.0.1:1" in capsys.readouterr().err


def test_a_map_head_whose_root_differs_from_the_entries_is_named_with_its_batch(
    client: TestClient, database: Database, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sealer's stored map loses every trail before batch 3 (an operator, or a bug): the
    map head it writes is anchored and checkpointed as written, so the tree and every
    checkpoint check out; the map replayed from the entries does not."""
    code, result = _monitor(client, capsys)
    assert (code, result["verdict"]) == (0, "valid"), result  # batches 0-2's map heads agree
    with database.engine.begin() as conn:
        conn.execute(text("DELETE FROM map_nodes WHERE log = 'suggestions'"))
    submit_anchored(client, database, anchored, [1])
    rpc = anchored.client.w3.provider.endpoint_uri
    code, result = _monitor(client, capsys, "--rpc", rpc)
    assert (code, result["verdict"], result["batch"], result["index"]) == (
        1,
        "map_head_mismatch",
        3,
        13,  # batch 3: entry 12 (the new suggestion), then its map head
    ), result
    assert "map_root is" in result["detail"] and "entry 13 (batch 3)" in result["detail"]
