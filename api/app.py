"""The FastAPI application. Routes are thin; the ledger does the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, portal, security
from api.limits import BodySizeLimit, RefuseNulInUrl
from api.ratelimit import SlidingWindowLimiter
from api.routes import (
    accounts,
    anchors,
    attachments,
    health,
    records,
    simulations,
    stats,
    suggestions,
)
from api.state import AppState, ChainProbe
from ledger.db import make_engine, make_session_factory
from ledger.deployment import contract_address
from ledger.devchain import die_with_parent
from ledger.pii import Vault, load_or_create_pii_key
from ledger.settings import Settings
from ledger.suggestions import Policy


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url)
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        app.state.civic = AppState(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_session_factory(engine, read_only=True),
            chain_probe=ChainProbe(settings.resolved_chain_rpc, contract_address(settings)),
            vault=Vault(load_or_create_pii_key(settings.resolved_pii_key_file)),
            policy=Policy(
                reply_due_months=settings.reply_due_months,
                rehandling_due_months=settings.rehandling_due_months,
                evaluation_days=settings.evaluation_days,
            ),
            submit_limiter=SlidingWindowLimiter(settings.submit_rate),
        )
        yield
        engine.dispose()

    app = FastAPI(
        title="civic-ledger",
        version="0.1.0",
        summary="Tamper-evident records of suggestions and budget votes, anchored on chain",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        overrides={
            "/api/v1/attachments": settings.max_attachment_bytes,
            # the workbench's answer form carries the reply document
            "/workbench/": settings.max_attachment_bytes,
        },
    )
    app.add_middleware(RefuseNulInUrl)
    security.install(app, settings)  # outermost: its headers also go on the 413s above
    errors.install(app)
    for module in (
        suggestions,
        attachments,
        accounts,
        simulations,
        records,
        anchors,
        health,
        stats,
    ):
        app.include_router(module.router)
    portal.install(app, settings)  # the web pages, /static
    return app


def create_worker_app() -> FastAPI:
    """The factory of uvicorn's worker processes when the API runs several
    (``CIVIC_API_WORKERS``): each dies with its master (Linux PDEATHSIG), so a kill -9 of the
    API process leaves no orphan holding the port, and the supervisor's restart can bind it
    (tests/test_chaos.py caught orphans serving on while every restart failed)."""
    die_with_parent()
    return create_app()
