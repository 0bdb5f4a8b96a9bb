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
from starlette.concurrency import run_in_threadpool

from api.deps import (
    OptionalPrincipal,
    ReadSessionDep,
    StateDep,
    anonymous_upload_limit,
)
from ledger import attachments, suggestions
from ledger.errors import PayloadTooLarge

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
        f"{', '.join(sorted(attachments.ALLOWED_TYPES))}, and must be what the bytes are: "
        "the image and PDF signatures, and for text/plain UTF-8 without NUL that does not "
        "start with '<' (markup). "
        "Without an account: at most CIVIC_ANONYMOUS_ATTACHMENT_BYTES (2 MiB), counted as a "
        "submission (CIVIC_SUBMIT_RATE a minute) and against CIVIC_UPLOAD_RATE an hour per "
        "address. A file no record cites within CIVIC_ATTACHMENT_GRACE_HOURS (24) is removed; "
        "the first suggestion whose record cites it owns it, and no other may cite it (409)."
    ),
    dependencies=[Depends(anonymous_upload_limit)],
    responses={
        413: {
            "description": "larger than CIVIC_MAX_ATTACHMENT_BYTES, or without an account "
            "CIVIC_ANONYMOUS_ATTACHMENT_BYTES"
        },
        415: {
            "description": "the bytes are not of the declared type (ContentMismatch: e.g. an "
            "SVG as image/png, HTML as text/plain); nothing is stored"
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

    stored = await run_in_threadpool(store)  # file and database I/O off the event loop
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
