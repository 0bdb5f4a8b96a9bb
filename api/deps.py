"""Typed dependencies: one unit of work per request, settings, the chain probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.state import AppState
from ledger import auth
from ledger.auth import Forbidden, Principal, Role, Unauthenticated
from ledger.errors import CivicError
from ledger.settings import Settings


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.civic
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def write_session(state: StateDep) -> Iterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back on error."""
    with state.sessions.begin() as session:
        yield session


def read_session(state: StateDep) -> Iterator[Session]:
    with state.read_sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit *before* the response is sent. With the default ("request") the
# commit would run after the client already holds a 201, and a crash in between would lose
# an acknowledged record (the kill -9 end-to-end test caught exactly that).
SessionDep = Annotated[Session, Depends(write_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(read_session)]


def get_principal(request: Request, state: StateDep) -> Principal | None:
    """Who is asking: None for an anonymous caller; 401 for a bad, expired or forged token."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use the header Authorization: Bearer <token>")
    with state.read_sessions() as session:
        return auth.authenticate(session, token.strip())


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]


def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise Unauthenticated("this needs a bearer token (Authorization: Bearer <token>)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


class RequireRole:
    """``Depends(RequireRole(Role.STAFF, Role.ADMIN))``: 403 for any other role."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def __call__(self, principal: CurrentPrincipal) -> Principal:
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise Forbidden(f"this is for {allowed}; you are {principal.role.value}")
        return principal


class RateLimited(CivicError):
    status_code = 429

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}


def anonymous_rate_limit(request: Request, state: StateDep, principal: OptionalPrincipal) -> None:
    """CIVIC_SUBMIT_RATE anonymous submissions a minute per client address; accounts are exempt."""
    if principal is not None:
        return
    client = request.client.host if request.client else "unknown"
    wait = state.submit_limiter.check(client)
    if wait:
        raise RateLimited(
            f"too many submissions from {client}: at most {state.submit_limiter.per_minute} "
            "a minute; try again later",
            state.submit_limiter.retry_after_header(wait),
        )
