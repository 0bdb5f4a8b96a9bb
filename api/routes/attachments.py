from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status
from starlette.concurrency import run_in_threadpool

from api.deps import (
    CurrentPrincipal,
    OptionalPrincipal,
    ReadSessionDep,
    StateDep,
    anonymous_rate_limit,
)
from ledger import attachments

router = APIRouter(prefix="/api/v1", tags=["attachments"])


@router.post(
    "/attachments",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a file (photo, reply document); the answer names it by SHA-256",
    dependencies=[Depends(anonymous_rate_limit)],
    responses={
        413: {"description": "larger than CIVIC_MAX_ATTACHMENT_BYTES"},
        422: {"description": "type not allowed"},
    },
)
async def upload(
    request: Request, state: StateDep, principal: OptionalPrincipal
) -> dict[str, object]:
    data = await request.body()
    uploader = principal.id if principal else "anonymous"
    content_type = request.headers.get("content-type", "")

    def store() -> attachments.StoredAttachment:
        with state.sessions.begin() as session:
            return attachments.store(
                session, state.settings.attachments_dir, data, content_type, uploader
            )

    stored = await run_in_threadpool(store)  # file and database I/O off the event loop
    return {"sha256": stored.sha256, "size": stored.size, "content_type": stored.content_type}


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
