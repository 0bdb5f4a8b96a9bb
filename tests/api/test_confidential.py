"""保密 (confidential) suggestions (issue 21, item 10): what the public records hold in place
of the text, the title and the attachments, and the reasons of personal-data reads, which
records carry only by commitment."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.canonical import canonical_bytes
from ledger.models import Attachment, RecordRow
from ledger.suggestions import HIDDEN_TITLE
from tests.api.conftest import People
from tests.api.test_workflow_api import SUGGESTION, step
from tests.fixtures.db import Database

SECRET_TITLE = "举报某小区物业乱收费"
SECRET_TEXT = "物业每月多收每户八十元，业主不敢出面，我不想被知道是我反映的。"


def _opens(commitment: str, salt_hex: str, value: dict[str, Any]) -> bool:
    salt = bytes.fromhex(salt_hex)
    return hashlib.sha256(salt + canonical_bytes(value)).hexdigest() == commitment


def _upload(client: TestClient, text: str) -> str:
    r = client.post(
        "/api/v1/attachments",
        content=text.encode(),
        headers={"content-type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


def _all_records(database: Database) -> list[bytes]:
    with database.sessions() as session:
        return [r.canonical for r in session.scalars(select(RecordRow)) if r.canonical]


def _assigned(client: TestClient, people: People, **extra: object) -> str:
    r = client.post("/api/v1/suggestions", json={**SUGGESTION, **extra})
    assert r.status_code == 201, r.text
    code = str(r.json()["tracking_code"])
    step(client, code, people.deputy.headers, to="DEPUTY_ACCEPTED")
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["JT"])
    return code


def test_a_confidential_suggestion_hides_its_title_and_attachments_behind_commitments(
    client: TestClient, people: People, database: Database
) -> None:
    files = [_upload(client, "照片说明：收费单据一"), _upload(client, "收费单据二")]
    code = _assigned(
        client,
        people,
        title=SECRET_TITLE,
        text=SECRET_TEXT,
        confidential=True,
        attachments=files,
    )
    body = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][0]["record"]["body"]
    assert body["title"] == HIDDEN_TITLE and body["confidential"] is True
    assert "text" not in body and "attachments" not in body
    assert {"content_commitment", "title_commitment", "attachments_commitment"} <= set(body)
    for canonical in _all_records(database):
        for secret in (SECRET_TITLE, SECRET_TEXT, *files):
            assert secret.encode() not in canonical
    # Nor in what anyone may list or look up.
    listed = client.get("/api/v1/suggestions").json()["items"]
    assert [item["title"] for item in listed if item["tracking_code"] == code] == [HIDDEN_TITLE]
    assert client.get(f"/api/v1/suggestions/{code}").json()["title"] == HIDDEN_TITLE
    # The files are cited all the same: the housekeeping never removes them.
    with database.sessions() as session:
        rows = session.scalars(select(Attachment).where(Attachment.sha256.in_(files))).all()
        assert len(rows) == 2 and all(row.referenced_at is not None for row in rows)

    # Those handling it open the content, and each value opens its own commitment.
    read = client.get(
        f"/api/v1/suggestions/{code}/text",
        params={"reason": "办理需要"},
        headers=people.office.headers,
    )
    assert read.status_code == 200, read.text
    opened = read.json()
    assert (opened["text"], opened["title"], opened["attachments"]) == (
        SECRET_TEXT,
        SECRET_TITLE,
        files,
    )
    assert _opens(body["content_commitment"], opened["commitment_salt"], {"text": SECRET_TEXT})
    assert _opens(
        body["title_commitment"], opened["title_commitment_salt"], {"title": SECRET_TITLE}
    )
    assert _opens(
        body["attachments_commitment"],
        opened["attachments_commitment_salt"],
        {"attachments": files},
    )
    assert len({opened["commitment_salt"], opened["title_commitment_salt"]}) == 2


def test_the_citizen_may_keep_the_title_of_a_confidential_suggestion_public(
    client: TestClient, people: People
) -> None:
    code = _assigned(client, people, title=SECRET_TITLE, confidential=True, title_public=True)
    body = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][0]["record"]["body"]
    assert body["title"] == SECRET_TITLE and "title_commitment" not in body
    assert "text" not in body and "content_commitment" in body
    opened = client.get(
        f"/api/v1/suggestions/{code}/text", params={"reason": "办理"}, headers=people.office.headers
    ).json()
    assert "title" not in opened and opened["text"] == SUGGESTION["text"]


def test_a_plain_suggestion_keeps_its_title_and_attachments_in_the_record(
    client: TestClient, people: People
) -> None:
    sha = _upload(client, "现场说明")
    code = _assigned(client, people, attachments=[sha])
    body = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][0]["record"]["body"]
    assert body["title"] == SUGGESTION["title"] and body["attachments"] == [sha]
    assert "title_commitment" not in body and "attachments_commitment" not in body


def test_a_reads_reason_is_committed_in_the_access_log_and_opened_by_inspectors(
    client: TestClient, people: People, database: Database
) -> None:
    code = _assigned(client, people, contact={"name": "赵秀英", "phone": "13912345678"})
    reason = "回访赵女士，她说腿脚不便，需上门"
    r = client.get(
        f"/api/v1/suggestions/{code}/contact",
        params={"reason": reason},
        headers=people.office.headers,
    )
    assert r.status_code == 200, r.text
    with database.sessions() as session:
        [access] = session.scalars(select(RecordRow).where(RecordRow.log == "access")).all()
    body = json.loads(access.canonical)["body"]
    assert set(body) == {"suggestion", "field", "reason_commitment"}
    assert reason.encode() not in access.canonical
    record_hash = access.leaf_hash.hex()

    url = f"/api/v1/access/{record_hash}/reason"
    got = client.get(url, headers=people.inspector.headers)
    assert got.status_code == 200, got.text
    assert got.json()["reason"] == reason
    assert _opens(body["reason_commitment"], got.json()["salt"], {"reason": reason})
    assert client.get(url, headers=people.admin.headers).status_code == 200
    for who in ("office", "staff", "deputy"):
        assert client.get(url, headers=getattr(people, who).headers).status_code == 403
    assert client.get(url).status_code == 401
    assert (
        client.get(
            f"/api/v1/access/{'0' * 64}/reason", headers=people.inspector.headers
        ).status_code
        == 404
    )
