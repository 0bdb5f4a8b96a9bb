"""The web portal: server-rendered pages (Jinja2), Chinese by default, English on request.

``router`` holds every page: the citizens' (``citizen.py``: submit, track, verify) and the
staff's (``staff.py``: dashboard, workbench, simulations, inspector, login). ``install(app,
settings)`` adds the pages, ``/static`` and the HTML error page to the API app. See
docs/PORTAL.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api.portal import citizen, staff
from api.portal.errors import PageError
from api.portal.render import render
from ledger.settings import Settings

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)
router.include_router(citizen.router)
router.include_router(staff.router)


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


def install(app: FastAPI, settings: Settings) -> None:
    """Mount ``/static``, add the portal's pages and its HTML error page to ``app``."""
    del settings  # the pages read settings per request (app.state); kept for the signature
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(PageError, page_error)
    app.include_router(router)
