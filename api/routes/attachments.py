"""Attachments over HTTP: upload a file, download one.

An upload is checked against its declared type (``ledger.filetypes``); a download is for those
the suggestion the file belongs to allows (``ledger.suggestions.may_read_attachment``), and is
served so that no browser runs it: the type its bytes were checked to be, a download
(``Content-Disposition: attachment``) but for verified images, ``nosniff``, and a
Content-Security-Policy under which nothing loads or runs (docs/SECURITY.md, "Attachments").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.deps import (
    OptionalPrincipal,
    ReadSessionDep,
    StateDep,
    anonymous_upload_limit,
)
from ledger import attachments, suggestions
from ledger import repository as repo
from ledger.auth import Principal
from ledger.errors import NotFound, PayloadTooLarge
from ledger.models import Attachment

router = APIRouter(prefix="/api/v1", tags=["attachments"])

#: An attachment's own policy (the security headers' middleware keeps a route's): nothing
#: may load, and ``sandbox`` gives a document that a browser shows anyway a unique origin
#: with scripts, forms and plugins off.
ATTACHMENT_CSP = "default-src 'none'; sandbox"


@router.post(
    "/attachments",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (photo, reply document); the answer names it by SHA-256",
    description=(
        "The body is the file; Content-Type is its type, one of "
        f"{', '.join(sorted(attachments.UPLOAD_TYPES))}, and must be what the bytes are: "
        "the image and PDF signatures, and for text/plain UTF-8 without NUL that does not "
        "start with '<' (markup). "
        "An image is decoded, turned upright and encoded again without EXIF, GPS, XMP, "
        "comments or colour profile (JPEG and HEIC as JPEG, PNG as PNG, WebP as WebP), and "
        "the stripped file is what is stored: the answer's sha256 is the SHA-256 of the "
        "stored bytes, not of the file sent, and is what records cite. Documents are stored "
        "as sent. "
        "Without an account: at most CIVIC_ANONYMOUS_ATTACHMENT_BYTES (2 MiB), counted as a "
        "submission (CIVIC_SUBMIT_RATE a minute) and against CIVIC_UPLOAD_RATE an hour per "
        "address. A file no record cites within CIVIC_ATTACHMENT_GRACE_HOURS (24) is removed; "
        "the first suggestion whose record cites it owns it, and no other may cite it (409)."
    ),
    dependencies=[Depends(anonymous_upload_limit)],
    responses={
        413: {
            "description": "larger than CIVIC_MAX_ATTACHMENT_BYTES, or without an account "
            "CIVIC_ANONYMOUS_ATTACHMENT_BYTES; or an image of more than 50 million pixels "
            "(ImageTooLarge, a decompression bomb); nothing is stored"
        },
        415: {
            "description": "the bytes are not of the declared type (ContentMismatch: e.g. an "
            "SVG as image/png, HTML as text/plain), or an image that cannot be decoded "
            "(UnreadableImage: corrupt, truncated, HEIC this server cannot read); nothing is "
            "stored"
        },
        422: {"description": "type not allowed, or an empty file"},
        429: {"description": "too many anonymous uploads from this address (whole service)"},
    },
)
async def upload(
    request: Request, state: StateDep, principal: OptionalPrincipal
) -> dict[str, object]:
    settings = state.settings
    limit = settings.max_attachment_bytes if principal else settings.anonymous_attachment_bytes
    data = await _read_at_most(request, limit, anonymous=principal is None)
    uploader = principal.id if principal else "anonymous"
    content_type = request.headers.get("content-type", "")

    def store() -> attachments.StoredAttachment:
        with state.sessions.begin() as session:
            return attachments.store(
                session, state.settings.attachments_dir, data, content_type, uploader
            )

    stored = await run_in_threadpool(store)  # decoding, file and database I/O off the loop
    return {"sha256": stored.sha256, "size": stored.size, "content_type": stored.content_type}


async def _read_at_most(request: Request, limit: int, *, anonymous: bool) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit`` bytes (the
    body-size middleware already holds every upload to CIVIC_MAX_ATTACHMENT_BYTES)."""
    whose = "an anonymous upload" if anonymous else "an upload"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"{whose} is at most {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"{whose} is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/attachments/{sha256}",
    summary="Download a file: for those the suggestion it belongs to allows",
    description=(
        "Readable by: anyone when the file is marked public; before a record cites it, the "
        "account or citizen token that uploaded it; once a suggestion cites it, congress "
        "staff, inspectors, the deputies and offices handling that suggestion (as for its "
        "contact data) and that suggestion's citizen token. Anyone else gets the 404 of a "
        "hash nobody uploaded. Served as the type the bytes are checked to be "
        "(application/octet-stream when they are not the stored type), as a download "
        "(Content-Disposition: attachment) except verified images (inline), with "
        "X-Content-Type-Options: nosniff and Content-Security-Policy: default-src 'none'; "
        "sandbox."
    ),
    responses={
        200: {
            "description": "the file, as the type its bytes are",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in sorted(attachments.SERVED_TYPES)
            },
        },
        404: {"description": "no such file, or not one this caller may read (the same answer)"},
    },
)
def download(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    session: ReadSessionDep,
    state: StateDep,
    principal: OptionalPrincipal,
) -> Response:
    served = suggestions.read_attachment(
        session, state.settings.attachments_dir, sha256, principal=principal
    )
    return attachment_response(served)


def readable(session: Session, sha256: str, principal: Principal | None) -> Attachment:
    """The row of a file ``principal`` may read (``suggestions.may_read_attachment``), or the
    404 a hash nobody uploaded gets."""
    row = session.get(Attachment, sha256)
    owner = repo.suggestion(session, row.suggestion) if row and row.suggestion else None
    if row is None or not suggestions.may_read_attachment(principal, row, owner):
        raise NotFound(f"no attachment {sha256}")
    return row


@router.get(
    "/attachments/{sha256}/thumbnail",
    summary="An image's thumbnail (JPEG, at most 320 pixels a side), for those who may read it",
    description=(
        "Derived from the stored (stripped) image, in no record. The same rule as the file's "
        "download decides, and a refusal is the same 404; a file that is not an image has no "
        "thumbnail (404, for those who may read the file)."
    ),
    responses={
        200: {
            "description": "the thumbnail",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        },
        404: {"description": "no such file, not one this caller may read, or not an image"},
    },
)
def thumbnail(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    session: ReadSessionDep,
    state: StateDep,
    principal: OptionalPrincipal,
) -> Response:
    row = readable(session, sha256, principal)
    return attachment_response(attachments.thumbnail(state.settings.attachments_dir, row))


def attachment_response(served: attachments.Served) -> Response:
    """The answer that carries a file (the API's download and the portal's)."""
    disposition = "inline" if served.inline else "attachment"
    return Response(
        served.data,
        media_type=served.media_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{served.filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": ATTACHMENT_CSP,
        },
    )
