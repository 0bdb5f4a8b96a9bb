"""Photos and the reply document on the citizen pages (issue 19, item 5): the submit form
takes photos (the phone's camera), which are stored stripped of EXIF and GPS data; the track
page shows them, as thumbnails linking to the image, and the reply document, to the citizen
whose token this browser holds, to the accounts handling the suggestion, and to everyone for
files marked public; nobody else sees them or can fetch them."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select, update

from api.limits import body_bytes_for
from ledger.models import Attachment, SuggestionRow
from ledger.schemas import SuggestionIn
from tests.api.conftest import People
from tests.api.test_workflow_api import step
from tests.fixtures import images
from tests.fixtures.db import Database
from tests.portal.test_citizen_pages import GOOD, csrf_of, field_errors, form_token
from tests.portal.test_staff_pages import sign_in

_INPUT = re.compile(r"<input [^>]*name=\"photos\"[^>]*>")


def _submit_with_photos(client: TestClient, *photos: tuple[str, bytes, str]) -> Any:
    token = form_token(client)
    return client.post(
        "/",
        data={"csrf": token, **GOOD},
        files=[("photos", photo) for photo in photos],
    )


def _code_and_token(html: str) -> tuple[str, str]:
    code = re.search(r'data-tracking-code="(SG-[0-9A-Z-]+)"', html)
    token = re.search(r"(cit_[A-Za-z0-9_-]{40,})", html)
    assert code and token
    return code.group(1), token.group(1)


def _cited(database: Database, code: str) -> list[str]:
    with database.sessions() as session:
        rows = session.scalars(select(Attachment).where(Attachment.suggestion == code))
        return sorted(row.sha256 for row in rows)


def _thumbnails(html: str) -> list[str]:
    return re.findall(r'<img src="/track/SG-[0-9A-Z-]+/files/([0-9a-f]{64})/thumbnail"', html)


def test_the_submit_form_opens_the_camera_and_takes_several_photos(
    portal_client: TestClient,
) -> None:
    html = portal_client.get("/").text
    assert 'enctype="multipart/form-data"' in html
    field = _INPUT.search(html)
    assert field, "the form has no photo field"
    for attribute in ('type="file"', 'accept="image/*"', 'capture="environment"', "multiple"):
        assert attribute in field.group(0)


def test_photos_sent_with_the_form_are_stored_stripped_and_cited(
    portal_client: TestClient, database: Database, tmp_path: Path
) -> None:
    answer = _submit_with_photos(
        portal_client,
        ("IMG_0001.JPG", images.photo_with_exif(orientation=6), "image/jpeg"),
        ("screenshot.png", images.png_with_text(), "image/png"),
    )
    assert answer.status_code == 201, answer.text
    code, _ = _code_and_token(answer.text)
    cited = _cited(database, code)
    assert len(cited) == 2
    with database.sessions() as session:
        row = session.scalars(select(SuggestionRow)).one()
        assert row.tracking_code == code
    for sha in cited:
        stored = (tmp_path / "attachments" / sha).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == sha
        assert b"Phone Maker" not in stored and b"Zhao Li" not in stored
        assert dict(Image.open(io.BytesIO(stored)).getexif()) == {}
    trail = portal_client.get(f"/api/v1/suggestions/{code}/trail").json()
    assert sorted(trail["records"][0]["record"]["body"]["attachments"]) == cited


def test_a_photo_the_form_refuses_stores_nothing(
    portal_client: TestClient, database: Database, tmp_path: Path
) -> None:
    for photo, status, key in (
        (("bomb.png", images.png_bomb(), "image/png"), 413, "photos"),
        (("note.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf"), 415, "photos"),
        (("fake.jpg", b"<svg onload=alert(1)>", "image/jpeg"), 415, "photos"),
    ):
        refused = _submit_with_photos(portal_client, photo)
        assert refused.status_code == status, refused.text
        assert key in field_errors(refused.text)
    with database.sessions() as session:
        assert session.scalars(select(SuggestionRow)).first() is None
        assert session.scalars(select(Attachment)).first() is None
    directory = tmp_path / "attachments"
    assert not directory.exists() or not any(directory.iterdir())


def _answered_with_photo(client: TestClient, people: People) -> tuple[str, str, list[str], str]:
    """A suggestion submitted on the form with a photo and answered with a reply document:
    (code, its citizen token, the photo hashes, the reply's hash)."""
    answer = _submit_with_photos(client, ("p.jpg", images.photo_with_exif(seed=4), "image/jpeg"))
    assert answer.status_code == 201, answer.text
    code, token = _code_and_token(answer.text)
    trail = client.get(f"/api/v1/suggestions/{code}/trail").json()
    photos = trail["records"][0]["record"]["body"]["attachments"]
    step(client, code, people.deputy.headers, to="DEPUTY_ACCEPTED")
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["JT"])
    step(client, code, people.office.headers, to="IN_PROGRESS")
    reply = client.post(
        "/api/v1/attachments",
        content=b"%PDF-1.7\n% the reply\n%%EOF\n",
        headers={**people.office.headers, "content-type": "application/pdf"},
    ).json()["sha256"]
    step(client, code, people.office.headers, to="ANSWERED", category="A", reply_sha256=reply)
    client.cookies.clear()
    return code, token, photos, reply


def test_the_track_page_shows_photos_and_the_reply_to_the_citizen_only(
    portal_client: TestClient, people: People
) -> None:
    code, token, photos, reply = _answered_with_photo(portal_client, people)
    files = [f"/track/{code}/files/{sha}" for sha in (*photos, reply)]

    # anyone: the hashes, the form for the token, no thumbnail, no link, no file
    page = portal_client.get(f"/track/{code}").text
    assert _thumbnails(page) == []
    assert f"/track/{code}/files/" not in page.replace(f'action="/track/{code}/files"', "")
    assert 'id="f-files_token"' in page and reply in page
    for url in [*files, f"{files[0]}/thumbnail"]:
        assert portal_client.get(url, headers={"accept": "text/html"}).status_code == 404

    # a wrong token, or another suggestion's, is refused
    csrf = csrf_of(page)
    other = _submit_with_photos(portal_client, ("q.png", images.png(seed=8), "image/png"))
    _, other_token = _code_and_token(other.text)
    for wrong in ("cit_nope", other_token, people.office.token):
        refused = portal_client.post(
            f"/track/{code}/files", data={"csrf": csrf, "token": wrong}, follow_redirects=False
        )
        assert refused.status_code == 422
        assert "files_token" in field_errors(refused.text)
    # another suggestion's citizen, holding its own cookie, still sees nothing here
    assert portal_client.get(f"{files[0]}/thumbnail").status_code == 404

    # the citizen of this suggestion
    shown = portal_client.post(
        f"/track/{code}/files", data={"csrf": csrf, "token": token}, follow_redirects=False
    )
    assert shown.status_code == 303 and shown.headers["location"] == f"/track/{code}#files"
    cookie = shown.headers["set-cookie"]
    assert "civic_citizen=" in cookie and f"Path=/track/{code}" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = portal_client.get(f"/track/{code}").text
    assert _thumbnails(page) == photos
    assert f'<a href="/track/{code}/files/{photos[0]}" class="files__image">' in page
    assert f'href="/track/{code}/files/{reply}" data-reply-file="{reply}"' in page
    thumb = portal_client.get(f"{files[0]}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320
    image = portal_client.get(files[0])
    assert image.status_code == 200 and hashlib.sha256(image.content).hexdigest() == photos[0]
    assert image.headers["content-security-policy"] == "default-src 'none'; sandbox"
    document = portal_client.get(files[-1])
    assert document.status_code == 200 and document.headers["content-type"] == "application/pdf"
    assert document.headers["content-disposition"].startswith("attachment;")
    # the cookie is for this suggestion's pages only: not the API, not another suggestion
    assert portal_client.get(f"/api/v1/attachments/{photos[0]}").status_code == 404
    # forgetting it
    forgot = portal_client.post(
        f"/track/{code}/files",
        data={"csrf": csrf_of(page), "forget": "1"},
        follow_redirects=False,
    )
    assert forgot.status_code == 303
    assert _thumbnails(portal_client.get(f"/track/{code}").text) == []


def test_the_track_page_shows_them_to_those_handling_it_and_public_ones_to_all(
    portal_client: TestClient, people: People, database: Database
) -> None:
    code, _, photos, reply = _answered_with_photo(portal_client, people)
    sign_in(portal_client, people.office.token)  # JT, the lead office
    assert _thumbnails(portal_client.get(f"/track/{code}").text) == photos
    assert portal_client.get(f"/track/{code}/files/{photos[0]}/thumbnail").status_code == 200
    sign_in(portal_client, people.other_office.token)  # ZJ: not assigned
    assert _thumbnails(portal_client.get(f"/track/{code}").text) == []
    assert portal_client.get(f"/track/{code}/files/{photos[0]}/thumbnail").status_code == 404
    portal_client.cookies.clear()
    with database.sessions.begin() as session:
        session.execute(
            update(Attachment).where(Attachment.sha256 == photos[0]).values(public=True)
        )
    page = portal_client.get(f"/track/{code}").text
    assert _thumbnails(page) == [photos[0]]
    assert f"/track/{code}/files/{reply}" not in page  # the reply is not public
    assert portal_client.get(f"/track/{code}/files/{photos[0]}/thumbnail").status_code == 200
    # only this suggestion's files are served under its path
    other = _submit_with_photos(portal_client, ("r.png", images.png(seed=13), "image/png"))
    other_code, _ = _code_and_token(other.text)
    assert portal_client.get(f"/track/{other_code}/files/{photos[0]}").status_code == 404


def test_the_form_with_photos_may_be_larger_than_a_form_without(
    portal_client: TestClient, database: Database
) -> None:
    """The body limit of ``POST /`` is the text's (body_bytes_for(SuggestionIn)) for a plain
    form, and CIVIC_MAX_ATTACHMENT_BYTES more for a form with files (api/app.py)."""
    noise = Image.frombytes("RGB", (500, 500), os.urandom(500 * 500 * 3))
    out = io.BytesIO()
    noise.save(out, "PNG")
    photo = out.getvalue()
    assert body_bytes_for(SuggestionIn) < len(photo) < 2 * 1024 * 1024
    answer = _submit_with_photos(portal_client, ("noise.png", photo, "image/png"))
    assert answer.status_code == 201, answer.text[:300]
    code, _ = _code_and_token(answer.text)
    assert len(_cited(database, code)) == 1
