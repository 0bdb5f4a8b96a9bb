"""The FastAPI application. Routes are thin; the ledger does the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.limits import BodySizeLimit
from api.routes import anchors, health, records, suggestions
from api.state import AppState, ChainProbe
from ledger.db import make_engine, make_session_factory
from ledger.deployment import contract_address
from ledger.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        app.state.civic = AppState(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_session_factory(engine, read_only=True),
            chain_probe=ChainProbe(settings.resolved_chain_rpc, contract_address(settings)),
        )
        yield
        engine.dispose()

    app = FastAPI(
        title="civic-ledger",
        version="0.1.0",
        summary="Tamper-evident records of suggestions and budget votes, anchored on chain",
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_body_bytes)
    errors.install(app)
    for module in (suggestions, records, anchors, health):
        app.include_router(module.router)
    return app
