"""The verifier service's errors never say where the civic-ledger API is (issue 21, item 9):
``civic-ledger run`` gives it the API's internal address, and the service is public."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.verifier.fakes import FakeChain
from verifier.service import create_verifier_app

INTERNAL = "http://10.9.8.7:8000"


def verifier(handler: httpx.MockTransport, api_url: str = INTERNAL) -> TestClient:
    return TestClient(
        create_verifier_app(
            rpc_url="http://fake.test",
            api_url=api_url,
            reader_factory=lambda _rpc, _timeout: FakeChain(),
            http_transport=handler,
        )
    )


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"connection to {request.url} refused", request=request)


def answers(status: int, body: bytes = b"oops") -> httpx.MockTransport:
    return httpx.MockTransport(lambda _request: httpx.Response(status, content=body))


@pytest.mark.parametrize(
    ("transport", "status", "error"),
    [
        (httpx.MockTransport(refused), 502, "TrailUnavailable"),
        (answers(500), 502, "TrailUnavailable"),
        (answers(200, b"not json"), 502, "TrailUnavailable"),
        (answers(404), 404, "UnknownTrackingCode"),
    ],
)
@pytest.mark.parametrize("api_url", [INTERNAL, INTERNAL + "/"])
def test_trail_errors_do_not_name_the_api_address(
    transport: httpx.MockTransport, status: int, error: str, api_url: str
) -> None:
    answer = verifier(transport, api_url).get("/verify/trail/SG-7K3M-9QXD-P2WT")
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert "10.9.8.7" not in answer.text
    assert "the civic-ledger API" in answer.json()["detail"]


@pytest.mark.parametrize("transport", [httpx.MockTransport(refused), answers(503)])
def test_batch_errors_do_not_name_the_api_address(transport: httpx.MockTransport) -> None:
    answer = verifier(transport).get("/verify/batch/suggestions/0")
    assert answer.status_code == 502
    assert "10.9.8.7" not in answer.text
    assert "the civic-ledger API" in answer.json()["detail"]
