"""Uploads: anonymous ones have their own, smaller budget, and uploads no record cites are
removed after the grace period (issue 21, item 4); a file must be what its declared type says
and is served so that no browser runs it (issue 21, item 11); it belongs to the first
suggestion that cites it, and only those that suggestion allows may read it (issue 19,
item 6). Every role on every kind of attachment: ``tests/api/test_role_matrix.py``."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Boolean, DateTime, Integer, String, column, select, table, update
from sqlalchemy.sql.expression import TableClause

from api.app import create_app
from ledger.db import make_engine, make_session_factory
from ledger.housekeeping import Housekeeper
from ledger.migrate import upgrade
from ledger.models import Attachment
from ledger.service import append_record
from ledger.settings import Settings
from tests.api.conftest import People, make_settings
from tests.api.test_workflow_api import citizen, records, step, walk_to
from tests.fixtures import images
from tests.fixtures.db import BACKENDS, Database, backend_url

MiB = 1024 * 1024
GRACE = 24 * 3600.0
SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def upload(client: TestClient, data: bytes, **headers: str) -> Any:
    return client.post(
        "/api/v1/attachments", content=data, headers={"content-type": "text/plain", **headers}
    )


# -- the budget ------------------------------------------------------------------------------


def test_an_anonymous_upload_is_at_most_2_mib(client: TestClient, people: People) -> None:
    assert upload(client, b"x" * (2 * MiB)).status_code == 201
    refused = upload(client, b"y" * (2 * MiB + 1))
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "PayloadTooLarge",
        "detail": f"an anonymous upload is at most {2 * MiB} bytes",
    }
    # an account keeps CIVIC_MAX_ATTACHMENT_BYTES (10 MiB)
    staff = upload(client, b"z" * (5 * MiB), Authorization=f"Bearer {people.staff.token}")
    assert staff.status_code == 201, staff.text


def test_the_anonymous_budget_counts_the_bytes_sent_without_a_content_length(
    client: TestClient,
) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"w" * MiB

    refused = client.post(
        "/api/v1/attachments", content=chunks(), headers={"content-type": "text/plain"}
    )
    assert refused.status_code == 413
    assert refused.json()["error"] == "PayloadTooLarge"


def test_anonymous_uploads_have_their_own_rate(
    database: Database, tmp_path: Path, people: People
) -> None:
    settings = make_settings(database, tmp_path, upload_rate=2)
    with TestClient(create_app(settings)) as client:
        assert [upload(client, f"{i}".encode()).status_code for i in range(2)] == [201, 201]
        refused = upload(client, b"2")
        assert refused.status_code == 429
        assert "at most 2 anonymous uploads an hour" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) > 3000
        # submissions have their own count, and accounts are not counted
        assert client.post("/api/v1/suggestions", json=SUGGESTION).status_code == 201
        assert upload(client, b"3", Authorization=f"Bearer {people.staff.token}").status_code == 201


# -- uploads nobody cites --------------------------------------------------------------------


def _age(database: Database, directory: Path, sha: str, hours: float) -> None:
    """Make the upload ``sha`` look ``hours`` old: its row and its file."""
    then = datetime.now(UTC) - timedelta(hours=hours)
    with database.sessions.begin() as session:
        session.execute(update(Attachment).where(Attachment.sha256 == sha).values(created_at=then))
    path = directory / sha
    if path.exists():
        os.utime(path, (then.timestamp(), then.timestamp()))


def _old_file(path: Path, hours: float, data: bytes = b"left over") -> Path:
    path.write_bytes(data)
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def _rows(database: Database) -> set[str]:
    with database.sessions() as session:
        return set(session.scalars(select(Attachment.sha256)))


def test_uploads_no_record_cites_are_removed_after_the_grace_period(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "attachments"
    uncited = upload(client, b"never cited").json()["sha256"]
    cited = upload(client, b"cited by a submission").json()["sha256"]
    reply = upload(client, b"cited by nothing yet, but fresh").json()["sha256"]
    submitted = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [cited]})
    assert submitted.status_code == 201, submitted.text
    for sha in (uncited, cited):
        _age(database, directory, sha, hours=25)
    orphan = _old_file(directory / hashlib.sha256(b"x").hexdigest(), hours=25)
    fresh_orphan = _old_file(directory / hashlib.sha256(b"y").hexdigest(), hours=1)
    temporary = _old_file(directory / f".{hashlib.sha256(b'z').hexdigest()}.tmp", hours=25)
    unrelated = _old_file(directory / "README", hours=25)

    swept = Housekeeper(database.sessions, directory, GRACE).sweep()

    assert (swept.attachment_rows, swept.attachment_files) == (1, 3)
    assert _rows(database) == {cited, reply}
    assert not (directory / uncited).exists()
    assert (directory / cited).exists() and (directory / reply).exists()
    assert not orphan.exists() and not temporary.exists()
    assert fresh_orphan.exists() and unrelated.exists()
    # what was removed can no longer be cited: upload it again
    late = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [uncited]})
    assert late.status_code == 422
    assert f"no attachment {uncited} was uploaded" in late.json()["detail"]
    assert Housekeeper(database.sessions, directory, GRACE).sweep().attachment_rows == 0


def test_a_cited_upload_is_kept_however_old(
    client: TestClient, database: Database, tmp_path: Path, people: People
) -> None:
    """A reply document cited by a transition, uploaded long before."""
    directory = tmp_path / "attachments"
    document = upload(client, b"%PDF reply", Authorization=f"Bearer {people.office.token}")
    sha = document.json()["sha256"]
    code, _ = walk_to(client, people, "IN_PROGRESS")
    answered = client.post(
        f"/api/v1/suggestions/{code}/transitions",
        json={"to": "ANSWERED", "category": "A", "reply_sha256": sha},
        headers=people.office.headers,
    )
    assert answered.status_code == 201, answered.text
    _age(database, directory, sha, hours=24 * 400)
    Housekeeper(database.sessions, directory, GRACE).sweep()
    assert sha in _rows(database) and (directory / sha).exists()


def test_uploading_again_starts_the_grace_period_afresh(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    directory = tmp_path / "attachments"
    sha = upload(client, b"the same photo").json()["sha256"]
    _age(database, directory, sha, hours=25)
    assert upload(client, b"the same photo").json()["sha256"] == sha
    Housekeeper(database.sessions, directory, GRACE).sweep()
    assert sha in _rows(database) and (directory / sha).exists()


def _attachments_before(*, referenced_at: bool) -> TableClause:
    """The attachments table as an older revision had it, without ``referenced_at`` (before
    0004) or with it (before 0007): the model's table has columns they lacked."""
    columns = [
        column("sha256", String),
        column("size", Integer),
        column("content_type", String),
        column("uploaded_by", String),
        column("created_at", DateTime(timezone=True)),
    ]
    if referenced_at:
        columns.append(column("referenced_at", DateTime(timezone=True)))
    return table("attachments", *columns)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uploads_stored_before_the_migration_are_kept(backend: str, tmp_path: Path) -> None:
    """Which records cited them was not tracked: the migration counts them all as cited."""
    url, drop = backend_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        upgrade(engine, "0003")
        then = datetime(2026, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                _attachments_before(referenced_at=False)
                .insert()
                .values(
                    sha256="ab" * 32,
                    size=1,
                    content_type="text/plain",
                    uploaded_by="anonymous",
                    created_at=then,
                )
            )
        upgrade(engine)
        with engine.connect() as conn:
            cited = conn.execute(select(Attachment.referenced_at)).scalar_one()
        assert cited == then
    finally:
        engine.dispose()
        drop()


def test_the_grace_period_is_a_setting(tmp_path: Path) -> None:
    assert Settings(env="test", data_dir=tmp_path).attachment_grace_hours == 24
    assert Settings(env="test", data_dir=tmp_path).anonymous_attachment_bytes == 2 * MiB


# -- what a file is (issue 21, item 11) ------------------------------------------------------

# Real images, made with Pillow (tests/fixtures/images.py): an image is decoded and encoded
# again before it is stored (ledger/images.py), so a signature alone no longer passes.
PNG = images.png()
JPEG = images.jpeg()
WEBP = images.webp()
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TEXT = "答复：路灯已于 3 月 2 日修复（a < b 也无妨）。\n".encode()
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)">'
    b"<script>fetch('/api/v1/me')</script></svg>"
)
HTML = b"<!DOCTYPE html><html><body><script>fetch('/api/v1/me')</script></body></html>"


def _files(tmp_path: Path) -> list[str]:
    directory = tmp_path / "attachments"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("image/png", PNG),
        ("image/jpeg", JPEG),
        ("image/webp", WEBP),
        ("application/pdf", PDF),
        ("text/plain", TEXT),
        ("text/plain; charset=utf-8", TEXT),
    ],
    ids=["png", "jpeg", "webp", "pdf", "text", "text with charset"],
)
def test_each_allowed_type_takes_files_of_its_kind(
    client: TestClient, people: People, declared: str, data: bytes
) -> None:
    stored = upload(client, data, **{"content-type": declared}, **people.office.headers)
    assert stored.status_code == 201, stored.text
    assert stored.json()["content_type"] == declared.split(";")[0]


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        pytest.param("image/png", SVG, id="an SVG with a script as image/png"),
        pytest.param("image/jpeg", HTML, id="HTML as image/jpeg"),
        pytest.param("image/webp", PNG, id="a PNG as image/webp"),
        pytest.param("image/png", JPEG, id="a JPEG as image/png"),
        pytest.param("application/pdf", HTML, id="HTML as application/pdf"),
        pytest.param("text/plain", HTML, id="HTML as text/plain"),
        pytest.param("text/plain", SVG, id="SVG as text/plain"),
        pytest.param(
            "text/plain",
            b"\xef\xbb\xbf \r\n\t<?xml version='1.0'?><svg/>",
            id="XML after a BOM and white space as text/plain",
        ),
        pytest.param("text/plain", "\u3000<html>".encode(), id="markup after an ideographic space"),
        pytest.param("text/plain", b"plain\x00text", id="a NUL in text/plain"),
        pytest.param("text/plain", b"caf\xe9", id="Latin-1 as text/plain"),
        pytest.param("text/plain", PNG, id="a PNG as text/plain"),
    ],
)
def test_a_file_that_is_not_its_declared_type_is_refused_and_nothing_is_stored(
    client: TestClient,
    people: People,
    database: Database,
    tmp_path: Path,
    declared: str,
    data: bytes,
) -> None:
    for headers in ({}, people.office.headers):  # anonymous and with an account
        refused = upload(client, data, **{"content-type": declared}, **headers)
        assert refused.status_code == 415, refused.text
        assert refused.json()["error"] == "ContentMismatch"
        assert refused.json()["detail"].startswith(f"the file is not {declared}: ")
    assert _rows(database) == set()
    assert _files(tmp_path) == []


def test_an_svg_declared_as_png_and_html_declared_as_text_are_named(client: TestClient) -> None:
    svg = upload(client, SVG, **{"content-type": "image/png"})
    assert svg.json() == {
        "error": "ContentMismatch",
        "detail": "the file is not image/png: it does not start with the PNG signature "
        "(it starts like markup: HTML, SVG or XML)",
    }
    html = upload(client, HTML, **{"content-type": "text/plain"})
    assert html.json() == {
        "error": "ContentMismatch",
        "detail": "the file is not text/plain: it starts like markup (HTML, SVG or XML), "
        "which a browser could run",
    }
    jpeg = upload(client, JPEG, **{"content-type": "image/png"})
    assert jpeg.json()["detail"] == (
        "the file is not image/png: it does not start with the PNG signature (it is image/jpeg)"
    )


@pytest.mark.parametrize(
    ("declared", "data", "served", "disposition", "extension"),
    [
        ("image/png", PNG, "image/png", "inline", "png"),
        ("image/jpeg", JPEG, "image/jpeg", "inline", "jpg"),
        ("image/webp", WEBP, "image/webp", "inline", "webp"),
        ("application/pdf", PDF, "application/pdf", "attachment", "pdf"),
        ("text/plain", TEXT, "text/plain; charset=utf-8", "attachment", "txt"),
    ],
    ids=["png", "jpeg", "webp", "pdf", "text"],
)
def test_files_are_served_as_downloads_and_only_verified_images_inline(
    client: TestClient,
    people: People,
    declared: str,
    data: bytes,
    served: str,
    disposition: str,
    extension: str,
) -> None:
    sha = upload(client, data, **{"content-type": declared}, **people.office.headers).json()
    sha = sha["sha256"]
    got = client.get(f"/api/v1/attachments/{sha}", headers=people.office.headers)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == sha
    if not served.startswith("image/"):  # documents are stored as they are sent
        assert got.content == data
    assert got.headers["content-type"] == served
    assert got.headers["content-disposition"] == f'{disposition}; filename="{sha}.{extension}"'
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["cache-control"] == "no-store"


def test_a_stored_file_whose_bytes_are_not_its_type_is_served_as_plain_bytes(
    client: TestClient, database: Database, people: People, tmp_path: Path
) -> None:
    """A row stored before uploads were checked: the type is checked again at each download,
    and a file that fails is an opaque download, never the type it was declared as."""
    sha = hashlib.sha256(SVG).hexdigest()
    (tmp_path / "attachments").mkdir(exist_ok=True)
    (tmp_path / "attachments" / sha).write_bytes(SVG)
    with database.sessions.begin() as session:
        session.add(
            Attachment(
                sha256=sha,
                size=len(SVG),
                content_type="image/png",
                uploaded_by=people.office.id,
                created_at=datetime.now(UTC),
            )
        )
    got = client.get(f"/api/v1/attachments/{sha}", headers=people.office.headers)
    assert got.status_code == 200 and got.content == SVG
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == f'attachment; filename="{sha}.bin"'
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"


# -- one suggestion per file -----------------------------------------------------------------


def _photo(client: TestClient, data: bytes = PNG) -> str:
    stored = upload(client, data, **{"content-type": "image/png"})
    assert stored.status_code == 201, stored.text
    return str(stored.json()["sha256"])


def _submit(client: TestClient, **extra: Any) -> dict[str, Any]:
    submitted = client.post("/api/v1/suggestions", json={**SUGGESTION, **extra})
    assert submitted.status_code == 201, submitted.text
    return dict(submitted.json())


def test_a_reply_citing_another_suggestions_attachment_is_refused(
    client: TestClient, people: People, database: Database
) -> None:
    photo = _photo(client)
    _submit(client, attachments=[photo])  # suggestion X's photo
    answered, _ = walk_to(client, people, "ANSWERED")  # X's reply document
    trail = client.get(f"/api/v1/suggestions/{answered}/trail").json()
    reply = trail["records"][-1]["record"]["body"]["reply_sha256"]
    code, _ = walk_to(client, people, "IN_PROGRESS")  # suggestion Y
    before = records(database)
    for sha in (photo, reply):
        refused = step(
            client,
            code,
            people.office.headers,
            expect=409,
            to="ANSWERED",
            category="A",
            reply_sha256=sha,
        )
        assert refused == {
            "error": "AttachmentOfAnotherSuggestion",
            "detail": f"attachment {sha} belongs to another suggestion; "
            "cite a file uploaded for this one",
        }
    assert records(database) == before
    assert client.get(f"/api/v1/suggestions/{code}").json()["state"] == "IN_PROGRESS"


def test_a_submission_citing_another_suggestions_attachment_is_refused(
    client: TestClient, database: Database
) -> None:
    photo = _photo(client)
    _submit(client, attachments=[photo])
    before = records(database)
    refused = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [photo]})
    assert refused.status_code == 409
    assert refused.json()["error"] == "AttachmentOfAnotherSuggestion"
    assert records(database) == before


def test_a_suggestion_cites_its_own_file_again(client: TestClient, people: People) -> None:
    """A second reply of the same suggestion may cite the same document: it is its own."""
    code, token = walk_to(client, people, "ANSWERED")
    reply = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"][-1]["record"]
    step(client, code, citizen(token), to="REHANDLING", level="unsatisfied")
    again = step(
        client,
        code,
        people.office.headers,
        to="ANSWERED",
        category="B",
        reply_sha256=reply["body"]["reply_sha256"],
    )
    assert again["state"] == "ANSWERED"


# -- who reads (issue 19, item 6) ------------------------------------------------------------


def test_a_citizen_token_reads_the_files_of_its_own_suggestion_only(client: TestClient) -> None:
    mine, theirs = _photo(client), _photo(client, images.png(seed=1))
    token = _submit(client, attachments=[mine])["citizen_token"]
    _submit(client, attachments=[theirs])
    as_citizen = {"Authorization": f"Bearer {token}"}
    got = client.get(f"/api/v1/attachments/{mine}", headers=as_citizen)
    assert hashlib.sha256(got.content).hexdigest() == mine
    missing = "ab" * 32
    # the same answer for another suggestion's file and for a hash nobody uploaded
    for sha in (theirs, missing):
        got = client.get(f"/api/v1/attachments/{sha}", headers=as_citizen)
        assert got.status_code == 404
        assert got.json() == {"error": "NotFound", "detail": f"no attachment {sha}"}
        anonymous = client.get(f"/api/v1/attachments/{sha}")
        assert (anonymous.status_code, anonymous.json()) == (got.status_code, got.json())


def test_the_uploader_reads_an_upload_until_a_suggestion_cites_it(
    client: TestClient, people: People
) -> None:
    sha = upload(client, PDF, **{"content-type": "application/pdf"}, **people.office.headers)
    sha = sha.json()["sha256"]
    assert client.get(f"/api/v1/attachments/{sha}", headers=people.office.headers).content == PDF
    for other in (people.other_office, people.staff, people.deputy):
        assert client.get(f"/api/v1/attachments/{sha}", headers=other.headers).status_code == 404


def test_a_file_marked_public_is_for_everyone(
    client: TestClient, database: Database, people: People
) -> None:
    photo = _photo(client)
    _submit(client, attachments=[photo])
    assert client.get(f"/api/v1/attachments/{photo}").status_code == 404
    # No route marks a file public yet (docs/SECURITY.md, "Attachments"): an operator does.
    with database.sessions.begin() as session:
        session.execute(update(Attachment).where(Attachment.sha256 == photo).values(public=True))
    for headers in ({}, people.admin.headers):
        got = client.get(f"/api/v1/attachments/{photo}", headers=headers)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == photo


@pytest.mark.parametrize("backend", BACKENDS)
def test_files_cited_before_the_migration_belong_to_the_first_suggestion_citing_them(
    backend: str, tmp_path: Path
) -> None:
    """Migration 0007 reads the suggestions log: each file cited by a record belongs to the
    first suggestion whose record cites it; a file nobody cites stays free."""
    url, drop = backend_url(backend, tmp_path)
    engine = make_engine(url)
    photo, reply, free = "aa" * 32, "bb" * 32, "cc" * 32
    first, second = "SG-AAAA-AAAA-AAAA", "SG-BBBB-BBBB-BBBB"
    try:
        upgrade(engine, "0006")
        citizen = {"role": "citizen", "id": "anon-0000000000000000"}
        with make_session_factory(engine).begin() as session:
            for code in (first, second):  # before 0007 two suggestions could cite one file
                append_record(
                    session,
                    log="suggestions",
                    type="suggestion.submitted",
                    subject=code,
                    actor=citizen,
                    body={**SUGGESTION, "channel": "web", "attachments": [photo]},
                )
            append_record(
                session,
                log="suggestions",
                type="suggestion.transition",
                subject=second,
                actor={"role": "office", "id": "office-00000000"},
                body={
                    "from": "IN_PROGRESS",
                    "to": "ANSWERED",
                    "category": "A",
                    "reply_sha256": reply,
                },
            )
        then = datetime(2026, 1, 1, tzinfo=UTC)
        with engine.begin() as conn:
            for sha, cited in ((photo, then), (reply, then), (free, None)):
                conn.execute(
                    _attachments_before(referenced_at=True)
                    .insert()
                    .values(
                        sha256=sha,
                        size=1,
                        content_type="image/png",
                        uploaded_by="anonymous",
                        created_at=then,
                        referenced_at=cited,
                    )
                )
        upgrade(engine)
        bound = table(
            "attachments",
            column("sha256", String),
            column("suggestion", String),
            column("public", Boolean),
        )
        with engine.connect() as conn:
            rows = {sha: (owner, public) for sha, owner, public in conn.execute(bound.select())}
        assert rows == {photo: (first, False), reply: (second, False), free: (None, False)}
    finally:
        engine.dispose()
        drop()
