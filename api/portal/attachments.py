"""Attachments in the portal: ``/attachments/{sha256}`` (where the workbench links) and the
files of one suggestion on its track page, ``/track/{code}/files/{sha256}``.

The JSON API's download (``GET /api/v1/attachments/{sha256}``) takes a bearer token in a
header, which a link or an ``<img>`` in a page cannot send, and the API takes no cookie
(docs/SECURITY.md, "CORS"). Here cookies say who asks; the same rule decides
(``ledger.suggestions.may_read_attachment``) and the file is served the same way
(``api.routes.attachments.attachment_response``: a download but for verified images,
``nosniff``, a Content-Security-Policy under which nothing runs). Each file has its
thumbnail beside it (``…/thumbnail``: a JPEG of at most 320 pixels a side, derived from the
stored, stripped image), served by the very same rule.

* ``/attachments/{sha256}`` and ``/attachments/{sha256}/thumbnail``: the portal's session
  cookie (a signed-in account). A file this account may not read and a hash nobody uploaded
  get the same 404 page; with nobody signed in, the page asks to sign in (a public file is
  served to anyone).
* ``/track/{code}/files/{sha256}`` and ``…/thumbnail``: what the track page shows. The
  visitor is the signed-in account, if any, and the citizen of that suggestion when their
  browser holds its citizen token: ``POST /track/{code}/files`` (the "show my photos" form)
  checks the token and keeps it in the cookie ``civic_citizen`` (HttpOnly, SameSite=Strict,
  Secure in production, ``Path=/track/{code}``: sent for that suggestion's pages only, never
  to the API). Only files that belong to that suggestion are served there; anything else,
  and everything the visitor may not read, is the same 404 page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import ReadSessionDep, StateDep
from api.portal.errors import PageError
from api.portal.session import portal_principal
from api.portal.workbench import login_redirect
from api.routes.attachments import attachment_response, readable
from ledger import attachments, auth, filetypes, suggestions
from ledger import repository as repo
from ledger.auth import Principal, Role, Unauthenticated
from ledger.errors import NotFound
from ledger.models import Attachment
from ledger.settings import Settings

router = APIRouter()
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CODE = re.compile(r"SG-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
CITIZEN_COOKIE = "civic_citizen"


def _serve(request: Request, session: Session, state: Any, sha256: str, thumb: bool) -> Response:
    principal = portal_principal(request, session)
    try:
        if not _SHA256.fullmatch(sha256):
            raise NotFound(f"no attachment {sha256}")
        row = readable(session, sha256, principal)
        directory = state.settings.attachments_dir
        served = (
            attachments.thumbnail(directory, row) if thumb else attachments.load(directory, row)
        )
    except NotFound:
        if principal is None:
            return login_redirect(request)
        raise PageError(404, "error.not_found.title", "error.not_found.detail") from None
    return attachment_response(served)


@router.get("/attachments/{sha256}", name="portal_attachment")
def attachment(request: Request, sha256: str, session: ReadSessionDep, state: StateDep) -> Response:
    return _serve(request, session, state, sha256, thumb=False)


@router.get("/attachments/{sha256}/thumbnail", name="portal_attachment_thumbnail")
def attachment_thumbnail(
    request: Request, sha256: str, session: ReadSessionDep, state: StateDep
) -> Response:
    return _serve(request, session, state, sha256, thumb=True)


# -- the track page's files ------------------------------------------------------------------


def set_citizen_cookie(response: Response, code: str, token: str, settings: Settings) -> None:
    response.set_cookie(
        CITIZEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.env == "production",
        path=f"/track/{code}",
    )


def clear_citizen_cookie(response: Response, code: str) -> None:
    response.delete_cookie(CITIZEN_COOKIE, path=f"/track/{code}", httponly=True, samesite="strict")


def citizen_of(session: Session, token: str, code: str) -> Principal | None:
    """The citizen of suggestion ``code`` when ``token`` is its citizen token, else None."""
    if not token.startswith(auth.CITIZEN_TOKEN_PREFIX):
        return None
    try:
        principal = auth.authenticate(session, token)
    except Unauthenticated:
        return None
    if principal.role is Role.CITIZEN and principal.tracking_code == code:
        return principal
    return None


def track_visitors(request: Request, session: Session, code: str) -> list[Principal]:
    """Who looks at suggestion ``code``'s track page: the signed-in account and the citizen
    whose token the cookie of that page holds (either, both or neither)."""
    visitors: list[Principal] = []
    account = portal_principal(request, session)
    if account is not None:
        visitors.append(account)
    citizen = citizen_of(session, request.cookies.get(CITIZEN_COOKIE, "").strip(), code)
    if citizen is not None:
        visitors.append(citizen)
    return visitors


@dataclass(frozen=True)
class ShownFile:
    """A file of a suggestion the visitor may see: its hash, whether it is an image (shown
    as a thumbnail linking to the image), whether it is a reply document, whether public."""

    sha256: str
    image: bool
    reply: bool
    public: bool
    url: str
    thumbnail_url: str | None


def _may_read(visitors: list[Principal], row: Attachment, owner: Any) -> bool:
    if row.public:
        return True
    return any(suggestions.may_read_attachment(v, row, owner) for v in visitors)


def shown_files(
    session: Session, code: str, cited: list[str], replies: set[str], visitors: list[Principal]
) -> list[ShownFile]:
    """The files of suggestion ``code`` the visitors may see, in the order the trail cites
    them (``cited``: the hashes its public records name), then those it hides (a confidential
    suggestion's photos) for visitors who may read them."""
    owner = repo.suggestion(session, code)
    rows: dict[str, Attachment] = {}
    if cited:
        for row in session.scalars(select(Attachment).where(Attachment.sha256.in_(cited))):
            rows[row.sha256] = row
    if visitors:  # the hidden ones: only for those who may read some (no index needed else)
        for row in session.scalars(select(Attachment).where(Attachment.suggestion == code)):
            rows.setdefault(row.sha256, row)
    order = {sha: i for i, sha in enumerate(cited)}
    shown = []
    for sha, row in sorted(rows.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])):
        if row.suggestion != code or not _may_read(visitors, row, owner):
            continue
        image = row.content_type in filetypes.IMAGE_TYPES
        base = f"/track/{code}/files/{sha}"
        shown.append(
            ShownFile(
                sha, image, sha in replies, row.public, base, base + "/thumbnail" if image else None
            )
        )
    return shown


def _serve_tracked(
    request: Request, session: Session, state: Any, code: str, sha256: str, thumb: bool
) -> Response:
    code = code.strip().upper()
    visitors = track_visitors(request, session, code)
    try:
        if not _SHA256.fullmatch(sha256) or not _CODE.fullmatch(code):
            raise NotFound(f"no attachment {sha256}")
        row = session.get(Attachment, sha256)
        owner = repo.suggestion(session, code) if row is not None else None
        if row is None or row.suggestion != code or not _may_read(visitors, row, owner):
            raise NotFound(f"no attachment {sha256}")
        directory = state.settings.attachments_dir
        served = (
            attachments.thumbnail(directory, row) if thumb else attachments.load(directory, row)
        )
    except NotFound:
        raise PageError(404, "error.not_found.title", "error.not_found.detail") from None
    return attachment_response(served)


@router.get("/track/{tracking_code}/files/{sha256}", name="portal_track_file")
def track_file(
    request: Request, tracking_code: str, sha256: str, session: ReadSessionDep, state: StateDep
) -> Response:
    return _serve_tracked(request, session, state, tracking_code, sha256, thumb=False)


@router.get("/track/{tracking_code}/files/{sha256}/thumbnail", name="portal_track_thumbnail")
def track_thumbnail(
    request: Request, tracking_code: str, sha256: str, session: ReadSessionDep, state: StateDep
) -> Response:
    return _serve_tracked(request, session, state, tracking_code, sha256, thumb=True)
