from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CurrentPrincipal,
    OptionalPrincipal,
    ReadSessionDep,
    StateDep,
    anonymous_upload_limit,
)
from ledger import attachments
from ledger.errors import PayloadTooLarge

router = APIRouter(prefix="/api/v1", tags=["attachments"])


@router.post(
    "/attachments",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (photo, reply document); the answer names it by SHA-256",
    description=(
        "Without an account: at most CIVIC_ANONYMOUS_ATTACHMENT_BYTES (2 MiB), counted as a "
        "submission (CIVIC_SUBMIT_RATE a minute) and against CIVIC_UPLOAD_RATE an hour per "
        "address. A file no record cites within CIVIC_ATTACHMENT_GRACE_HOURS (24) is removed."
    ),
    dependencies=[Depends(anonymous_upload_limit)],
    responses={
        413: {
            "description": "larger than CIVIC_MAX_ATTACHMENT_BYTES, or without an account "
            "CIVIC_ANONYMOUS_ATTACHMENT_BYTES"
        },
        422: {"description": "type not allowed"},
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
    summary="Download a file; accounts only (it may show people)",
    responses={
        200: {
            "description": "the file, with the type it was uploaded as",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in sorted(attachments.ALLOWED_TYPES)
            },
        }
    },
)
def download(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    session: ReadSessionDep,
    state: StateDep,
    principal: CurrentPrincipal,
) -> Response:
    del principal  # any account may read; anonymous callers may not
    data, content_type = attachments.load(session, state.settings.attachments_dir, sha256)
    return Response(data, media_type=content_type, headers={"X-Content-Type-Options": "nosniff"})
