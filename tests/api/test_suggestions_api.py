"""POST /api/v1/suggestions and the receipt endpoint, without a chain: validation,
precise 4xx answers, and nothing stored on refusal."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.limits import body_bytes_for
from ledger.models import RecordRow, SuggestionRow
from ledger.schemas import SuggestionIn
from tests.fixtures.db import Database

GOOD = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def _stored(database: Database) -> tuple[int, int]:
    with database.sessions() as session:
        return (
            session.scalar(select(func.count()).select_from(RecordRow)) or 0,
            session.scalar(select(func.count()).select_from(SuggestionRow)) or 0,
        )


def test_submit_returns_tracking_code_and_record_hash(
    client: TestClient, database: Database
) -> None:
    response = client.post("/api/v1/suggestions", json=GOOD)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tracking_code"].startswith("SG-")
    assert len(body["record_hash"]) == 64
    assert body["receipt_url"].endswith(f"/api/v1/records/{body['record_hash']}/receipt")
    assert _stored(database) == (1, 1)

    pending = client.get(f"/api/v1/records/{body['record_hash']}/receipt")
    assert pending.status_code == 202
    assert pending.json()["status"] == "pending"


@pytest.mark.parametrize(
    ("payload", "status", "error", "detail"),
    [
        (
            {k: v for k, v in GOOD.items() if k != "title"},
            422,
            "ValidationError",
            r"title: Field required",
        ),
        ({**GOOD, "title": 5}, 422, "ValidationError", r"title: Input should be a valid string"),
        ({**GOOD, "title": "   "}, 422, "ValidationError", r"title: .*must not be empty"),
        ({**GOOD, "title": "a\nb"}, 422, "ValidationError", r"title: .*single line"),
        ({**GOOD, "title": "x" * 201}, 422, "ValidationError", r"title: .*at most 200"),
        ({**GOOD, "text": "bad\x00byte"}, 422, "ValidationError", r"text: .*U\+0000"),
        ({**GOOD, "category": ""}, 422, "ValidationError", r"category"),
        ({**GOOD, "district": None}, 422, "ValidationError", r"district"),
        ({**GOOD, "phone": "13800000000"}, 422, "ValidationError", r"phone: Extra inputs"),
        ([GOOD], 422, "ValidationError", r"valid dictionary"),
    ],
)
def test_bad_suggestions_are_refused_precisely_and_store_nothing(
    client: TestClient, database: Database, payload: object, status: int, error: str, detail: str
) -> None:
    response = client.post("/api/v1/suggestions", json=payload)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert pytest.importorskip("re").search(detail, response.json()["detail"]), response.json()
    assert _stored(database) == (0, 0)


def test_malformed_json_is_a_400(client: TestClient, database: Database) -> None:
    response = client.post(
        "/api/v1/suggestions",
        content=b'{"title": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "MalformedJSON"
    assert _stored(database) == (0, 0)


def test_bodies_over_the_limit_are_refused_with_413(client: TestClient, database: Database) -> None:
    big = json.dumps({**GOOD, "text": "字" * 50000}).encode()  # \u escapes: 6 bytes each
    assert len(big) > body_bytes_for(SuggestionIn)
    response = client.post(
        "/api/v1/suggestions", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLarge"

    def chunks():  # no Content-Length: the limit is enforced on the bytes as they arrive
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    response = client.post(
        "/api/v1/suggestions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert _stored(database) == (0, 0)


def test_text_just_under_the_limit_is_accepted(client: TestClient) -> None:
    response = client.post("/api/v1/suggestions", json={**GOOD, "text": "字" * 20000})
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/records/" + "0" * 64 + "/receipt", 404),
        ("/api/v1/records/" + "A" * 64 + "/receipt", 422),
        ("/api/v1/records/abc/receipt", 422),
        ("/api/v1/anchors/suggestions/0", 404),
        ("/api/v1/anchors/ballots/0", 404),
        ("/api/v1/anchors/suggestions/-1", 422),
        ("/api/v1/anchors/suggestions/x", 422),
    ],
)
def test_unknown_or_malformed_lookups(client: TestClient, path: str, status: int) -> None:
    response = client.get(path)
    assert response.status_code == status, response.text
    assert response.json()["detail"]
