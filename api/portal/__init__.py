"""The web portal: server-rendered pages (Jinja2), Chinese by default, English on request.

``router`` holds every page: the citizens' (``citizen.py``: submit, track, verify), the
staff's (``staff.py``: dashboard, workbench, simulations, inspector, login) and the files the
workbench links to (``attachments.py``). ``install(app,
settings)`` adds the pages, ``/static`` and the HTML error page to the API app. See
docs/PORTAL.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import errors as api_errors
from api.limits import BodyTooLarge
from api.portal import attachments, citizen, staff
from api.portal.errors import PageError
from api.portal.render import render
from ledger.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)
router.include_router(citizen.router)
router.include_router(staff.router)
router.include_router(attachments.router)


async def page_error(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, PageError)
    return render(
        request,
        "error.html",
        status_code=exc.status_code,
        title_key=exc.title_key,
        detail_key=exc.detail_key,
        detail_fmt=exc.fmt,
    )


def _wants_a_page(request: Request) -> bool:
    """A browser asking for a page: not the JSON API, the verifier's paths or a file."""
    path = request.url.path
    if path.startswith(("/api/", "/static/", "/docs", "/redoc", "/openapi", "/healthz")):
        return False
    return "text/html" in request.headers.get("accept", "")


def body_too_large_page(request: Request, limit: int) -> Response | None:
    """A form too large to read (413), as a page for browsers; None for everyone else, who
    get the API's JSON. The limits of the submission form fit every text the form accepts
    (docs/SECURITY.md, "Limits"), so this is seen only after a form was tampered with or
    when another form's text is far too long."""
    if not _wants_a_page(request):
        return None
    return render(
        request,
        "error.html",
        status_code=413,
        title_key="error.too_large.title",
        detail_key="error.too_large.detail",
        detail_fmt={"kib": limit // 1024},
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """Unknown URLs and forms too large to read: an HTML page in the visitor's language for
    browsers, the API's JSON error for everyone else (and for every other status)."""
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):
        page = body_too_large_page(request, exc.limit)
        if page is not None:
            return page
    if exc.status_code == 404 and _wants_a_page(request):
        return render(
            request,
            "error.html",
            status_code=404,
            title_key="error.not_found.title",
            detail_key="error.not_found.detail",
            detail_fmt={},
        )
    return await api_errors.http_error(request, exc)


def install(app: FastAPI, settings: Settings) -> None:
    """Mount ``/static``, add the portal's pages and its HTML error pages to ``app``.

    Call after :func:`api.errors.install`: the 404 handler here takes over theirs for
    browsers asking for a page and hands every other case back to it."""
    del settings  # the pages read settings per request (app.state); kept for the signature
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(StarletteHTTPException, not_found)
    app.include_router(router)
