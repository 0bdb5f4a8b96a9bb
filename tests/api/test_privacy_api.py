"""Personal data stays out of records and out of the database in plaintext; reading it is
for those handling the suggestion and leaves a pii.read record."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.canonical import canonical_bytes
from ledger.models import RecordRow
from tests.api.conftest import People
from tests.api.test_workflow_api import SUGGESTION, citizen, step
from tests.fixtures import images
from tests.fixtures.db import Database

CONTACT = {"name": "赵秀英", "phone": "13912345678"}
SECRET_TEXT = "我家楼下的小卖部老板每晚违规占道经营，我不想被他知道是我反映的。"


def _assigned(client: TestClient, people: People, **extra: object) -> tuple[str, str]:
    r = client.post("/api/v1/suggestions", json={**SUGGESTION, **extra})
    assert r.status_code == 201, r.text
    code, token = r.json()["tracking_code"], r.json()["citizen_token"]
    step(client, code, people.deputy.headers, to="DEPUTY_ACCEPTED")
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["JT"])
    return code, token


def _files_contain(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_contact_is_encrypted_committed_and_never_in_records_db_or_logs(
    client: TestClient,
    people: People,
    database: Database,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    code, _ = _assigned(client, people, contact=CONTACT)
    with database.sessions() as session:
        rows = session.scalars(select(RecordRow)).all()
    for needle in (CONTACT["phone"], CONTACT["name"]):
        assert all(needle.encode() not in r.canonical for r in rows)
        assert needle not in caplog.text
        if database.backend == "sqlite":
            assert _files_contain(tmp_path, needle.encode()) == []

    submitted = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][0]["record"]
    assert "contact" not in submitted["body"]
    commitment = submitted["body"]["contact_commitment"]
    read = client.get(
        f"/api/v1/suggestions/{code}/contact",
        params={"reason": "电话回访"},
        headers=people.office.headers,
    )
    assert read.status_code == 200, read.text
    assert read.json()["contact"] == CONTACT
    salt = bytes.fromhex(read.json()["commitment_salt"])
    assert hashlib.sha256(salt + canonical_bytes(CONTACT)).hexdigest() == commitment


def test_reading_contact_is_recorded_in_the_access_log(
    client: TestClient, people: People, database: Database
) -> None:
    code, _ = _assigned(client, people, contact=CONTACT)
    r = client.get(
        f"/api/v1/suggestions/{code}/contact",
        params={"reason": "电话回访"},
        headers=people.office.headers,
    )
    assert r.status_code == 200
    with database.sessions() as session:
        [access] = session.scalars(select(RecordRow).where(RecordRow.log == "access")).all()
    assert access.type == "pii.read" and access.subject == people.office.id
    import json

    body = json.loads(access.canonical)["body"]
    # The reason is sealed beside the record, which commits to it (test_confidential.py).
    assert body["suggestion"] == code and body["field"] == "contact"
    assert "reason" not in body and "reason_commitment" in body


@pytest.mark.parametrize("who", ["other_office", "other_deputy", "inspector", "admin", "citizen"])
def test_contact_is_refused_to_those_not_handling_it(
    client: TestClient, people: People, database: Database, who: str
) -> None:
    code, token = _assigned(client, people, contact=CONTACT)
    headers = citizen(token) if who == "citizen" else getattr(people, who).headers
    r = client.get(
        f"/api/v1/suggestions/{code}/contact", params={"reason": "看看"}, headers=headers
    )
    assert r.status_code == 403
    with database.sessions() as session:
        assert session.scalars(select(RecordRow).where(RecordRow.log == "access")).all() == []


def test_contact_needs_a_token_and_a_reason(client: TestClient, people: People) -> None:
    code, _ = _assigned(client, people, contact=CONTACT)
    assert (
        client.get(f"/api/v1/suggestions/{code}/contact", params={"reason": "x"}).status_code == 401
    )
    r = client.get(f"/api/v1/suggestions/{code}/contact", headers=people.office.headers)
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    code2, _ = _assigned(client, people)
    r = client.get(
        f"/api/v1/suggestions/{code2}/contact",
        params={"reason": "x"},
        headers=people.office.headers,
    )
    assert r.status_code == 404 and "no contact" in r.json()["detail"]


@pytest.mark.parametrize(
    ("contact", "message"),
    [
        ({"name": "赵"}, "contact.phone: Field required"),
        ({"name": "赵", "phone": "call me"}, "contact.phone: String should match"),
        ({"name": "赵", "phone": "13912345678", "id_card": "1"}, "contact.id_card: Extra inputs"),
    ],
)
def test_bad_contact_is_422(client: TestClient, contact: dict, message: str) -> None:  # type: ignore[type-arg]
    r = client.post("/api/v1/suggestions", json={**SUGGESTION, "contact": contact})
    assert r.status_code == 422 and message in r.json()["detail"]


def test_a_confidential_suggestion_records_a_commitment_not_its_text(
    client: TestClient, people: People, database: Database, tmp_path: Path
) -> None:
    code, _ = _assigned(client, people, text=SECRET_TEXT, confidential=True)
    record = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][0]["record"]
    assert "text" not in record["body"] and record["body"]["confidential"] is True
    with database.sessions() as session:
        assert all(
            SECRET_TEXT.encode() not in r.canonical for r in session.scalars(select(RecordRow))
        )
    if database.backend == "sqlite":
        assert _files_contain(tmp_path, SECRET_TEXT.encode()) == []
    r = client.get(
        f"/api/v1/suggestions/{code}/text",
        params={"reason": "办理需要"},
        headers=people.office.headers,
    )
    assert r.status_code == 200 and r.json()["text"] == SECRET_TEXT
    salt = bytes.fromhex(r.json()["commitment_salt"])
    assert (
        hashlib.sha256(salt + canonical_bytes({"text": SECRET_TEXT})).hexdigest()
        == record["body"]["content_commitment"]
    )
    assert (
        client.get(
            f"/api/v1/suggestions/{code}/text",
            params={"reason": "x"},
            headers=people.inspector.headers,
        ).status_code
        == 403
    )


def test_attachments_are_stored_by_hash_and_read_by_those_the_suggestion_allows(
    client: TestClient, people: People
) -> None:
    """Not by any account: an office the suggestion is not assigned to, or anyone without a
    token, gets the 404 of a missing file (every role: tests/api/test_role_matrix.py)."""
    photo = images.png(seed=21)  # a PNG without metadata: stored as Pillow encodes it again
    r = client.post("/api/v1/attachments", content=photo, headers={"content-type": "image/png"})
    assert r.status_code == 201
    sha = r.json()["sha256"]  # the SHA-256 of the stored (stripped) file
    submitted = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [sha]})
    assert submitted.status_code == 201
    assert client.get(f"/api/v1/attachments/{sha}").status_code == 404
    assert (
        client.get(f"/api/v1/attachments/{sha}", headers=people.office.headers).status_code == 404
    )
    got = client.get(f"/api/v1/attachments/{sha}", headers=people.staff.headers)
    assert (
        got.status_code == 200
        and hashlib.sha256(got.content).hexdigest() == sha
        and got.headers["content-type"] == "image/png"
    )
    bad = client.post(
        "/api/v1/attachments",
        content=b"MZ...",
        headers={"content-type": "application/x-msdownload"},
    )
    assert bad.status_code == 422
    missing = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": ["ab" * 32]})
    assert missing.status_code == 422 and "no attachment" in missing.json()["detail"]


def test_the_pii_key_is_created_private(client: TestClient, tmp_path: Path) -> None:
    key = tmp_path / "pii.key"
    assert key.exists() and key.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(key.read_text().strip())) == 32
