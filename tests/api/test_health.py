"""/healthz for the public says only which part is down; the detail (addresses, workers, the
database backend, errors) is for admins and inspectors at /healthz/detail (issue 21, item 9)."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ledger import repository as repo
from tests.api.conftest import People
from tests.fixtures.db import Database

GOOD = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
WORKER = f"{socket.gethostname()}:{os.getpid()}"


def _a_worker_heartbeat(database: Database) -> None:
    with database.sessions.begin() as session:
        repo.upsert_worker_status(session, "suggestions", WORKER, "idle", None, datetime.now(UTC))


def test_the_public_status_is_plain_booleans(client: TestClient, database: Database) -> None:
    _a_worker_heartbeat(database)
    response = client.get("/healthz")
    assert response.status_code == 503  # nothing listens at the chain address of the tests
    assert response.json() == {
        "status": "degraded",
        "database": True,
        "chain": False,
        "worker": True,
        "writer": True,
    }
    text = response.text
    for internal in ("127.0.0.1:9", WORKER, socket.gethostname(), "sqlite", "postgresql", "rpc"):
        assert internal not in text, internal


@pytest.mark.parametrize("who", ["anonymous", "staff", "office", "deputy"])
def test_the_detail_is_for_admins_and_inspectors_only(
    client: TestClient, people: People, who: str
) -> None:
    headers = {} if who == "anonymous" else getattr(people, who).headers
    response = client.get("/healthz/detail", headers=headers)
    assert response.status_code == (401 if who == "anonymous" else 403)
    assert set(response.json()) == {"error", "detail"}


@pytest.mark.parametrize("who", ["admin", "inspector"])
def test_the_detail_reports_the_unreachable_chain_but_submissions_still_work(
    client: TestClient, database: Database, people: People, who: str
) -> None:
    _a_worker_heartbeat(database)
    assert client.post("/api/v1/suggestions", json=GOOD).status_code == 201
    response = client.get("/healthz/detail", headers=getattr(people, who).headers)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"ok": True, "backend": database.engine.dialect.name}
    assert body["chain"]["ok"] is False and "ChainUnavailable" in body["chain"]["error"]
    assert body["chain"]["rpc"] == "http://127.0.0.1:9"
    assert body["worker"]["logs"]["suggestions"]["worker"] == WORKER
    assert body["anchoring"]["suggestions"]["unanchored_records"] == 1
    assert body["writer"] == {"ok": True, "mode": "thread"}
    # the public answer says the same, in booleans
    plain = client.get("/healthz").json()
    assert plain == {
        "status": "degraded",
        "database": True,
        "chain": False,
        "worker": True,
        "writer": True,
    }
