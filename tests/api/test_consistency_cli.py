"""civic-verify consistency (PROTOCOL §8, issue 16): the service's consistency proof between
two anchored sizes, checked between the roots of the checkpoints of those sizes (their
signatures under --log-key); a proof that does not verify is ``inconsistent``."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.note import Ed25519Signer
from tests.api.test_logs_api import submit_anchored
from tests.api.test_verify_tally import bridge
from tests.fixtures.db import Database
from verifier.cli import main
from verifier.errors import VerificationError
from verifier.monitor import check_consistency


@pytest.fixture
def anchored(client: TestClient, database: Database, registry: Any) -> Any:
    batches = submit_anchored(client, database, registry, [4, 4, 1])[1]
    assert [b.end for b in batches] == [5, 10, 12]  # each batch's records and its map head
    return registry


def _consistency(
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    transport: httpx.BaseTransport | None = None,
) -> tuple[int, dict[str, Any]]:
    code = main(
        ["consistency", "--api", "http://testserver", "--json", *extra],
        http_transport=transport or bridge(client),
    )
    return code, json.loads(capsys.readouterr().out)


def _key(client: TestClient) -> str:
    return str(client.get("/api/v1/logs/suggestions/keys").json()["log"])


def test_anchored_sizes_of_an_honest_log_are_consistent(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result = _consistency(
        client, capsys, "--from", "5", "--to", "12", "--log-key", _key(client)
    )
    assert (code, result["verdict"]) == (0, "valid"), result
    assert (result["from_batch"], result["to_batch"], result["signatures_checked"]) == (0, 2, True)
    code, result = _consistency(client, capsys, "--from", "10", "--to", "10")
    assert (code, result["verdict"], result["signatures_checked"]) == (0, "valid", False)


def test_a_proof_that_does_not_verify_is_inconsistent(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    honest = bridge(client)

    def tampering(request: httpx.Request) -> httpx.Response:
        response = honest.handle_request(request)
        if request.url.path.endswith("/consistency"):
            body = json.loads(response.read())
            body["path"][0] = "00" * 32
            return httpx.Response(200, json=body)
        return response

    code, result = _consistency(
        client,
        capsys,
        "--from",
        "5",
        "--to",
        "10",
        "--log-key",
        _key(client),
        transport=httpx.MockTransport(tampering),
    )
    assert (code, result["verdict"]) == (1, "inconsistent"), result
    assert "does not verify" in result["detail"]


def test_checkpoints_under_another_key_and_sizes_never_anchored(
    client: TestClient, anchored: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Ed25519Signer("civic-ledger.localhost/suggestions", b"\x05" * 32).verifier_key
    code, result = _consistency(client, capsys, "--from", "5", "--to", "10", "--log-key", other)
    assert (code, result["verdict"]) == (1, "bad_signature"), result
    with pytest.raises(VerificationError, match="no checkpoint of log suggestions has size 6"):
        check_consistency("http://testserver", "suggestions", 6, 10, transport=bridge(client))
    assert main(["consistency", "--api", "http://testserver", "--from", "8", "--to", "4"]) != 0
