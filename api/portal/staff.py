"""Staff pages: sign in and out (here), and the routers of /dashboard (``dashboard.py``),
/workbench (``workbench.py``), /simulations (``simulations.py``) and /inspector
(``inspector.py``). See docs/PORTAL.md.

Signing in takes an account's API token (``civic-ledger users add`` prints it once); the
session cookie holds it (``api.portal.session``), so the portal knows exactly what the API
would know from ``Authorization: Bearer``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.portal import dashboard, inspector, simulations, workbench
from api.portal.csrf import verify_csrf
from api.portal.render import render
from api.portal.session import clear_session_cookie, portal_principal, set_session_cookie
from api.state import AppState
from ledger import auth
from ledger.auth import Principal, Role, Unauthenticated

router = APIRouter()
router.include_router(dashboard.router)
router.include_router(workbench.router)
router.include_router(simulations.router)
router.include_router(inspector.router)

#: where each role lands after signing in (unless ?next= says otherwise)
HOME = {
    Role.DEPUTY: "/workbench",
    Role.STAFF: "/workbench",
    Role.OFFICE: "/workbench",
    Role.INSPECTOR: "/inspector",
    Role.ADMIN: "/simulations",
}
TOKEN_MAX = 200


def safe_next(value: str | None) -> str | None:
    """A local path to go back to after signing in; anything else (another site, ``//host``,
    a scheme, a backslash) is dropped."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ch in value for ch in "\r\n\t") or len(value) > 500:
        return None
    return value


@router.get("/login", name="portal_login")
def login_page(request: Request) -> Response:
    return render(
        request,
        "login.html",
        next=safe_next(request.query_params.get("next")) or "",
        signed_in=portal_principal(request),
    )


@router.post("/login", name="portal_login_post", dependencies=[Depends(verify_csrf)])
async def login(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token", "")).strip()
    target = safe_next(str(form.get("next", "")))
    state: AppState = request.app.state.civic

    def check() -> Principal:
        if not token:
            raise Unauthenticated("empty")
        if len(token) > TOKEN_MAX or not token.startswith(auth.ACCOUNT_TOKEN_PREFIX):
            raise Unauthenticated("not an account token")
        with state.read_sessions() as session:
            return auth.authenticate(session, token)

    try:
        principal = await run_in_threadpool(check)
    except Unauthenticated as exc:
        key = (
            "staff.login.empty"
            if not token
            else "staff.login.citizen_token"
            if token.startswith(auth.CITIZEN_TOKEN_PREFIX)
            else "staff.login.refused"
        )
        return render(
            request,
            "login.html",
            status_code=401 if token else 422,
            next=target or "",
            error_key=key,
            error_detail=exc.message if token and key == "staff.login.refused" else None,
            signed_in=None,
        )
    response = RedirectResponse(target or HOME.get(principal.role, "/"), status_code=303)
    set_session_cookie(response, token, state.settings)
    return response


@router.post("/logout", name="portal_logout", dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    del request
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session_cookie(response)
    return response
