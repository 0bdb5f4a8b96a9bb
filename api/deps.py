"""Typed dependencies: one unit of work per request, settings, the chain probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.state import AppState
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
