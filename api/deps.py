"""Typed dependencies: one unit of work per request, settings, the chain probe."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, TypeVar

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api import writes
from api.state import AppState
from ledger import auth, ratelimit
from ledger.auth import Forbidden, Principal, Role, Unauthenticated
from ledger.db import reading
from ledger.ratelimit import RateLimit
from ledger.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")

# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency on a
# pool thread, and each such hop costs more CPU than the check itself (scripts/load).


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.civic
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


# The hot writes do not come here: they go to the writer (api.writes). The other write
# routes have a unit of work each, gated: at most WRITERS_PER_PROCESS run at once in this
# process, the others wait without holding a thread. A sync route holds one of the 40 pool threads while
# it waits for the write lock (SQLite's BEGIN IMMEDIATE, the log head's row lock on
# PostgreSQL), and the lock holder still needs a pool thread after its route returns (FastAPI
# validates a sync route's answer there) and one to commit: ungated, 40 concurrent writers
# took every thread and waited for a commit that could no longer run (scripts/load caught
# it). Commits run on threads of their own; the gate also keeps the lock queue short.
WRITERS_PER_PROCESS = 8


@dataclass
class _WriteGate:
    loop: object
    slots: anyio.Semaphore
    commits: anyio.CapacityLimiter


def _write_gate(request: Request) -> _WriteGate:
    loop = asyncio.get_running_loop()
    gate: _WriteGate | None = getattr(request.app.state, "write_gate", None)
    if gate is None or gate.loop is not loop:  # a new event loop (tests): new primitives
        gate = request.app.state.write_gate = _WriteGate(
            loop, anyio.Semaphore(WRITERS_PER_PROCESS), anyio.CapacityLimiter(WRITERS_PER_PROCESS)
        )
    return gate


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def write_session(request: Request, state: StateDep) -> AsyncIterator[Session]:
    """The request's unit of work: committed when the route returns, rolled back on error.

    Opening a session does no I/O (it connects on first use, in the route's thread); the
    commit runs before the response is sent."""
    gate = _write_gate(request)
    async with gate.slots:
        session = state.sessions()
        try:
            yield session
        except BaseException:
            with anyio.CancelScope(shield=True):  # a client that went away still gets cleaned up
                await anyio.to_thread.run_sync(_finish, session, False, limiter=gate.commits)
            raise
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_finish, session, True, limiter=gate.commits)
        else:  # nothing to commit: closing does no I/O
            session.close()


async def read_session(state: StateDep) -> AsyncIterator[Session]:
    """A read-only session. Made on the event loop (it connects at its first statement, in
    the route's thread); closed after the answer, in a thread when it holds a connection
    (the rollback that returns it is I/O), at once when it never connected. A plain ``def``
    generator cost two thread hops per request, each as dear as the route's own
    (scripts/load)."""
    session = state.read_sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close)
        else:
            session.close()


def _read(state: AppState, read: Callable[[Any], R], driver: bool) -> R:
    if driver:  # driver statements only: a pooled connection is enough (ledger.db.reading)
        with reading(state.read_engine) as reader:
            return read(reader)
    with state.read_sessions() as session:
        return read(session)


async def run_read(state: AppState, read: Callable[[Any], R], *, driver: bool = False) -> R:
    """``read(session)`` in a read-only session, for the hot reads (trail, receipt, token
    checks). On SQLite they run right here on the event loop: they wait for no I/O (the
    database is a local file, and readers never wait for the writer in WAL mode), and the GIL
    lets one thread run at a time anyway, so a thread hop would only add its own cost (as
    much as the read). On PostgreSQL they wait for the network: in a pool thread.

    ``driver``: ``read`` runs driver statements only (the repository's hot reads) and gets a
    ``ledger.db.DriverReader`` instead of a Session, which costs less than its statements."""
    if state.reads_inline:
        return _read(state, read, driver)
    return await anyio.to_thread.run_sync(_read, state, read, driver)


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit *before* the response is sent. With the default ("request") the
# commit would run after the client already holds a 201, and a crash in between would lose
# an acknowledged record (the kill -9 end-to-end test caught exactly that).
SessionDep = Annotated[Session, Depends(write_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(read_session)]


async def get_principal(request: Request, state: StateDep) -> Principal | None:
    """Who is asking: None for an anonymous caller; 401 for a bad, expired or forged token."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use the header Authorization: Bearer <token>")
    return await run_read(
        state, functools.partial(auth.authenticate, token=token.strip()), driver=True
    )


OptionalPrincipal = Annotated[Principal | None, Depends(get_principal)]


async def require_principal(principal: OptionalPrincipal) -> Principal:
    if principal is None:
        raise Unauthenticated("this needs a bearer token (Authorization: Bearer <token>)")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]


class RequireRole:
    """``Depends(RequireRole(Role.STAFF, Role.ADMIN))``: 403 for any other role."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, principal: CurrentPrincipal) -> Principal:
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise Forbidden(f"this is for {allowed}; you are {principal.role.value}")
        return principal


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy names
    (CIVIC_TRUSTED_PROXIES, ``api.security``); never what an untrusted client claims."""
    return request.client.host if request.client else "unknown"


async def _count_anonymous(request: Request, state: AppState, limits: list[RateLimit]) -> None:
    if all(limit.limit <= 0 for limit in limits):
        return
    client = client_address(request)
    # Counted in the shared database, through the writer: once for the whole service.
    wait = await writes.rate_check(state, client, limits)
    if wait:
        raise ratelimit.refusal(client, limits, wait)


async def anonymous_rate_limit(
    request: Request, state: StateDep, principal: OptionalPrincipal
) -> None:
    """CIVIC_SUBMIT_RATE anonymous submissions a minute per client address, for the whole
    service; accounts are exempt."""
    if principal is None:
        await _count_anonymous(request, state, [ratelimit.submission_limit(state.settings)])


async def anonymous_upload_limit(
    request: Request, state: StateDep, principal: OptionalPrincipal
) -> None:
    """An anonymous upload counts as a submission (CIVIC_SUBMIT_RATE a minute) and against
    CIVIC_UPLOAD_RATE an hour, per client address; accounts are exempt."""
    if principal is None:
        limits = [
            ratelimit.submission_limit(state.settings),
            ratelimit.upload_limit(state.settings),
        ]
        await _count_anonymous(request, state, limits)
