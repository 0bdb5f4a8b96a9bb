"""Photos are stripped before they are stored (issue 19, item 5): decoded, turned upright,
encoded again without EXIF, GPS, XMP, comments or text chunks, the stored file's SHA-256 is
the attachment's identity; decompression bombs and unreadable images are refused with nothing
stored; each image has a thumbnail, served by the rule of its file. The images are real ones,
made with Pillow (tests/fixtures/images.py)."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update

from ledger import images as stripping
from ledger.attachments import remove_uncited
from ledger.models import Attachment
from tests.api.conftest import People
from tests.api.test_workflow_api import SUGGESTION, step, walk_to
from tests.fixtures import images
from tests.fixtures.db import Database


def upload(client: TestClient, data: bytes, declared: str, **headers: str) -> Any:
    return client.post(
        "/api/v1/attachments", content=data, headers={"content-type": declared, **headers}
    )


def _stored(tmp_path: Path) -> list[str]:
    directory = tmp_path / "attachments"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


def _rows(database: Database) -> list[str]:
    with database.sessions() as session:
        return list(session.scalars(select(Attachment.sha256)))


def _near(pixel: Any, colour: tuple[int, int, int], slack: int = 40) -> bool:
    return all(abs(int(a) - b) <= slack for a, b in zip(pixel, colour, strict=True))


def test_a_phone_photo_comes_back_without_exif_or_gps_and_upright(
    client: TestClient, tmp_path: Path
) -> None:
    # 60 × 40 pixels as stored by the camera, to be turned 90° clockwise (orientation 6)
    original = images.photo_with_exif(60, 40, orientation=6)
    sent = Image.open(io.BytesIO(original))
    assert sent.getexif().get(images.ORIENTATION) == 6
    assert sent.getexif().get_ifd(images.GPS_IFD)  # the fixture really carries GPS data
    assert b"Phone Maker" in original and b"SN-42" in original and b"Home address" in original

    answer = upload(client, original, "image/jpeg")  # anonymous: the submission form's way
    assert answer.status_code == 201, answer.text
    body = answer.json()
    sha = body["sha256"]
    assert sha != hashlib.sha256(original).hexdigest()
    assert body["content_type"] == "image/jpeg"

    stored = (tmp_path / "attachments" / sha).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == sha  # the identity is the stored file's hash
    assert body["size"] == len(stored)
    for secret in (b"Exif", b"Phone Maker", b"Phone 15", b"SN-42", b"2026:03:02", b"xmpmeta"):
        assert secret not in stored
    assert b"taken at home" not in stored and b"Home address" not in stored

    photo = Image.open(io.BytesIO(stored))
    assert photo.format == "JPEG"
    assert dict(photo.getexif()) == {}
    assert not photo.getexif().get_ifd(images.GPS_IFD)
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "photoshop"):
        assert key not in photo.info
    # upright: the camera's left third (red) is now the top, its bottom band (blue) the left
    assert photo.size == (40, 60)
    rgb = photo.convert("RGB")
    assert _near(rgb.getpixel((30, 5)), (255, 0, 0))
    assert _near(rgb.getpixel((3, 50)), (0, 0, 255))
    assert _near(rgb.getpixel((30, 50)), (0, 200, 0))

    # the same photo sent again is the same file
    assert upload(client, original, "image/jpeg").json()["sha256"] == sha


def test_a_png_with_text_chunks_is_stripped(client: TestClient, tmp_path: Path) -> None:
    original = images.png_with_text()
    assert b"tEXt" in original and b"Zhao Li" in original and b"iTXt" in original
    answer = upload(client, original, "image/png")
    assert answer.status_code == 201, answer.text
    sha = answer.json()["sha256"]
    assert answer.json()["content_type"] == "image/png"
    stored = (tmp_path / "attachments" / sha).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == sha
    for chunk in (b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"Zhao Li", "我家楼下".encode()):
        assert chunk not in stored
    image = Image.open(io.BytesIO(stored))
    assert image.format == "PNG" and image.size == (60, 40)
    assert "Author" not in image.info and "Description" not in image.info
    assert image.convert("RGB").getpixel((5, 5)) == (255, 0, 0)  # PNG stays lossless


def test_webp_stays_webp_and_documents_are_stored_as_sent(
    client: TestClient, people: People, tmp_path: Path
) -> None:
    webp = upload(client, images.webp(), "image/webp").json()
    assert webp["content_type"] == "image/webp"
    assert Image.open(tmp_path / "attachments" / webp["sha256"]).format == "WEBP"
    pdf = b"%PDF-1.7\n% a reply with metadata we keep\n%%EOF\n"
    stored = upload(client, pdf, "application/pdf", **people.office.headers).json()
    assert stored["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert (tmp_path / "attachments" / stored["sha256"]).read_bytes() == pdf
    assert not (tmp_path / "attachments" / (stored["sha256"] + ".thumb")).exists()


@pytest.mark.parametrize(
    "bomb",
    [
        pytest.param(images.png_bomb(), id="10 billion pixels (past Pillow's own limit)"),
        pytest.param(images.png_bomb(8000, 8000), id="64 million pixels (past ours)"),
    ],
)
def test_a_decompression_bomb_is_refused_and_nothing_is_stored(
    client: TestClient, people: People, database: Database, tmp_path: Path, bomb: bytes
) -> None:
    assert len(bomb) < 20_000
    for headers in ({}, people.office.headers):
        refused = upload(client, bomb, "image/png", **headers)
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"] == "ImageTooLarge"
        assert f"at most {stripping.MAX_PIXELS} pixels" in refused.json()["detail"]
    assert _rows(database) == []
    assert _stored(tmp_path) == []


def test_an_image_that_does_not_decode_or_heic_is_refused_and_nothing_is_stored(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    truncated = images.png()[:40]
    refused = upload(client, truncated, "image/png")
    assert refused.status_code == 415, refused.text
    assert refused.json()["error"] == "UnreadableImage"
    garbage = upload(client, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png")
    assert (garbage.status_code, garbage.json()["error"]) == (415, "UnreadableImage")
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    answer = upload(client, heic, "image/heic")
    assert answer.status_code == 415, answer.text
    assert answer.json() == {
        "error": "UnreadableImage",
        "detail": "image/heic photos cannot be read here; send the photo as JPEG "
        "(on an iPhone: Settings › Camera › Formats › Most Compatible)",
    }
    not_heic = upload(client, images.jpeg(), "image/heic")
    assert (not_heic.status_code, not_heic.json()["error"]) == (415, "ContentMismatch")
    assert _rows(database) == []
    assert _stored(tmp_path) == []


# -- thumbnails ------------------------------------------------------------------------------


def _thumbnail(client: TestClient, sha: str, **headers: str) -> Any:
    return client.get(f"/api/v1/attachments/{sha}/thumbnail", headers=headers)


def test_each_image_has_a_small_jpeg_thumbnail_beside_it(
    client: TestClient, people: People, tmp_path: Path
) -> None:
    original = images.photo_with_exif(1200, 800, orientation=6)
    sha = upload(client, original, "image/jpeg", **people.office.headers).json()["sha256"]
    kept = tmp_path / "attachments" / f"{sha}.thumb"
    assert kept.is_file()
    got = _thumbnail(client, sha, **people.office.headers)  # the uploader, before any citation
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-disposition"] == f'inline; filename="{sha}-thumbnail.jpg"'
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["x-content-type-options"] == "nosniff"
    thumb = Image.open(io.BytesIO(got.content))
    assert thumb.size == (213, 320)  # upright, at most 320 a side
    assert dict(thumb.getexif()) == {} and b"Phone Maker" not in got.content
    # made again when it is missing (a file stored before thumbnails, or on another host)
    kept.unlink()
    again = _thumbnail(client, sha, **people.office.headers)
    assert again.status_code == 200 and Image.open(io.BytesIO(again.content)).size == (213, 320)
    assert kept.is_file()
    # a document has none
    pdf = upload(client, b"%PDF-1.7\n%%EOF\n", "application/pdf", **people.office.headers)
    assert _thumbnail(client, pdf.json()["sha256"], **people.office.headers).status_code == 404


def test_thumbnails_follow_the_rule_of_their_file(
    client: TestClient, people: People, database: Database
) -> None:
    photo = upload(client, images.photo_with_exif(seed=3), "image/jpeg").json()["sha256"]
    mine = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [photo]}).json()
    theirs = client.post("/api/v1/suggestions", json=SUGGESTION).json()
    as_mine = {"Authorization": f"Bearer {mine['citizen_token']}"}
    as_stranger = {"Authorization": f"Bearer {theirs['citizen_token']}"}
    missing = "ab" * 32
    for sha in (photo, missing):
        for headers in ({}, as_stranger, people.other_office.headers, people.admin.headers):
            original = client.get(f"/api/v1/attachments/{sha}", headers=headers)
            thumb = _thumbnail(client, sha, **headers)
            assert thumb.status_code == original.status_code == 404
            assert (
                thumb.json()
                == original.json()
                == {
                    "error": "NotFound",
                    "detail": f"no attachment {sha}",
                }
            )
    for headers in (as_mine, people.staff.headers, people.inspector.headers):
        assert _thumbnail(client, photo, **headers).status_code == 200
    with database.sessions.begin() as session:
        session.execute(update(Attachment).where(Attachment.sha256 == photo).values(public=True))
    assert _thumbnail(client, photo).status_code == 200
    assert _thumbnail(client, photo, **as_stranger).status_code == 200


def test_a_reply_documents_thumbnail_is_for_those_handling_it(
    client: TestClient, people: People
) -> None:
    code, token = walk_to(client, people, "IN_PROGRESS")
    scan = upload(client, images.png(seed=5), "image/png", **people.office.headers).json()
    step(
        client,
        code,
        people.office.headers,
        to="ANSWERED",
        category="A",
        reply_sha256=scan["sha256"],
    )
    assert _thumbnail(client, scan["sha256"], Authorization=f"Bearer {token}").status_code == 200
    assert _thumbnail(client, scan["sha256"], **people.office.headers).status_code == 200
    assert _thumbnail(client, scan["sha256"], **people.admin.headers).status_code == 404
    assert _thumbnail(client, scan["sha256"]).status_code == 404


def test_thumbnails_of_uncited_uploads_go_with_them(
    client: TestClient, database: Database, tmp_path: Path
) -> None:
    sha = upload(client, images.png(seed=9), "image/png").json()["sha256"]
    assert _stored(tmp_path) == [sha, f"{sha}.thumb"]
    later = datetime.now(UTC) + timedelta(days=2)
    for name in _stored(tmp_path):
        path = tmp_path / "attachments" / name
        old = (later - timedelta(days=1, hours=1)).timestamp()
        os.utime(path, (old, old))
    with database.sessions.begin() as session:
        session.execute(update(Attachment).values(created_at=later - timedelta(days=1, hours=1)))
    removed = remove_uncited(
        database.sessions, tmp_path / "attachments", grace_seconds=24 * 3600.0, now=later
    )
    assert removed.rows == [sha]
    assert sorted(removed.files) == [sha, f"{sha}.thumb"]
    assert _stored(tmp_path) == []
