"""Signing in to the portal: an account signs in with its API token, kept in a cookie.

The cookie ``civic_session`` holds the account's bearer token itself (``clt_…``): HttpOnly,
SameSite=Strict, Secure in production, path ``/``, gone when the browser closes. Every page
resolves it with ``ledger.auth.authenticate``, exactly as the API resolves an
``Authorization: Bearer`` header, so a disabled or expired account is signed out at once. The
``/login`` page and handler (``api/portal/staff.py``) call ``set_session_cookie``; ``/logout``
calls ``clear_session_cookie``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from api.state import AppState
from ledger import auth
from ledger.auth import Principal, Unauthenticated
from ledger.settings import Settings

SESSION_COOKIE = "civic_session"
_CACHE = "portal_principal"


def session_token(request: Request) -> str | None:
    """The token in the session cookie, if any (not checked)."""
    token = request.cookies.get(SESSION_COOKIE, "").strip()
    return token or None


def portal_principal(request: Request, session: Session | None = None) -> Principal | None:
    """The signed-in account, or None (no cookie, or a token that no longer authenticates).

    Resolved once per request and kept on ``request.state``; ``session`` may be any open
    session (a read session is opened when none is given).
    """
    if hasattr(request.state, _CACHE):
        cached: Principal | None = getattr(request.state, _CACHE)
        return cached
    token = session_token(request)
    principal: Principal | None = None
    if token is not None and token.startswith(auth.ACCOUNT_TOKEN_PREFIX):
        try:
            if session is not None:
                principal = auth.authenticate(session, token)
            else:
                state: AppState = request.app.state.civic
                with state.read_sessions() as own:
                    principal = auth.authenticate(own, token)
        except Unauthenticated:
            principal = None
    setattr(request.state, _CACHE, principal)
    return principal


def _principal_dependency(request: Request) -> Principal | None:
    return portal_principal(request)


#: ``principal: PortalPrincipal`` in a portal route: the signed-in account or None.
PortalPrincipal = Annotated[Principal | None, Depends(_principal_dependency)]


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=settings.env == "production",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
