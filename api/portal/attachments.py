"""Attachments for signed-in accounts: ``/attachments/{sha256}``, where the workbench links.

The JSON API's download (``GET /api/v1/attachments/{sha256}``) takes a bearer token in a
header, which a link in a page cannot send, and the API takes no cookie (docs/SECURITY.md,
"CORS"). Here the portal's session cookie says who asks; the same rule decides
(``ledger.suggestions.read_attachment``) and the file is served the same way
(``api.routes.attachments.attachment_response``: a download but for verified images,
``nosniff``, a Content-Security-Policy under which nothing runs). A file this account may not
read and a hash nobody uploaded get the same 404 page; with nobody signed in, the page asks
to sign in, whether or not the file exists.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ReadSessionDep, StateDep
from api.portal.errors import PageError
from api.portal.session import portal_principal
from api.portal.workbench import login_redirect
from api.routes.attachments import attachment_response
from ledger import suggestions
from ledger.errors import NotFound

router = APIRouter()
_SHA256 = re.compile(r"[0-9a-f]{64}")


@router.get("/attachments/{sha256}", name="portal_attachment")
def attachment(request: Request, sha256: str, session: ReadSessionDep, state: StateDep) -> Response:
    principal = portal_principal(request, session)
    try:
        if not _SHA256.fullmatch(sha256):
            raise NotFound(f"no attachment {sha256}")
        served = suggestions.read_attachment(
            session, state.settings.attachments_dir, sha256, principal=principal
        )
    except NotFound:
        if principal is None:
            return login_redirect(request)
        raise PageError(404, "error.not_found.title", "error.not_found.detail") from None
    return attachment_response(served)
