"""The FastAPI application. Routes are thin; the ledger does the work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors, portal, security
from api.limits import BodySizeLimit, JsonDepthLimit, RefuseNulInUrl, body_bytes_for
from api.routes import (
    accounts,
    anchors,
    attachments,
    health,
    logs,
    records,
    simulations,
    stats,
    suggestions,
)
from api.state import AppState, ChainProbe
from api.writer import WriterClient
from ledger import checkpoints
from ledger.checkpoints import LogKeys
from ledger.db import (
    is_sqlite,
    make_engine,
    make_session_factory,
    read_only_engine,
    writers_lock_file,
)
from ledger.deployment import contract_address
from ledger.devchain import die_with_parent
from ledger.groupcommit import GroupCommitter
from ledger.pii import Vault, load_or_create_pii_key
from ledger.schemas import SuggestionIn
from ledger.settings import Settings
from ledger.suggestions import Policy


def api_pool(settings: Settings) -> dict[str, int]:
    """Connections an API process keeps: reads run on up to 40 pool threads at once, and the
    default pool (5 kept, 10 more made and closed again) made each burst of reads open new
    connections, each paying the connect and its pragmas (scripts/load). PostgreSQL keeps
    fewer, since its server allows 100 connections in all (two API processes, the worker,
    the verifier and the command line share them)."""
    if is_sqlite(settings.resolved_database_url):
        return {"pool_size": 48, "max_overflow": 8}
    return {"pool_size": 12, "max_overflow": 18}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.resolved_database_url, **api_pool(settings))
        settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
        sessions = make_session_factory(engine)
        policy = Policy(
            reply_due_months=settings.reply_due_months,
            rehandling_due_months=settings.rehandling_due_months,
            evaluation_days=settings.evaluation_days,
        )
        vault = Vault(load_or_create_pii_key(settings.resolved_pii_key_file))
        log_keys = LogKeys(settings)
        checkpoints.install(log_keys)  # receipts carry their batch's checkpoint (§11)
        writer_client = thread = None
        if settings.writer_socket is not None:
            writer_client = WriterClient(settings.writer_socket)
        else:
            thread = GroupCommitter(
                sessions, lock_file=writers_lock_file(settings.resolved_database_url)
            ).start()
        app.state.civic = AppState(
            settings=settings,
            engine=engine,
            sessions=sessions,
            read_sessions=make_session_factory(engine, read_only=True),
            read_engine=read_only_engine(engine),
            chain_probe=ChainProbe(settings.resolved_chain_rpc, contract_address(settings)),
            vault=vault,
            policy=policy,
            writer_client=writer_client,
            log_keys=log_keys,
            writer=thread,
        )
        try:
            yield
        finally:
            if thread is not None:
                thread.close()  # the queued writes finish and are answered first
            if writer_client is not None:
                writer_client.close()
            engine.dispose()

    app = FastAPI(
        title="civic-ledger",
        version="0.1.0",
        summary="Tamper-evident records of suggestions and budget votes, anchored on chain",
        lifespan=lifespan,
    )
    # Middleware added first runs innermost: the depth limit reads bodies the size limit
    # already bounds, and InternalErrors answers what escapes them all, inside the headers.
    app.add_middleware(JsonDepthLimit, raw_paths=("/api/v1/attachments",))
    # A suggestion (the API's and the portal form's) may be as large as its longest valid
    # text in the costliest encoding: the body limit never refuses what the schema accepts.
    submission = max(settings.max_body_bytes, body_bytes_for(SuggestionIn))
    app.add_middleware(
        BodySizeLimit,
        limit=settings.max_body_bytes,
        overrides={
            "/api/v1/attachments": settings.max_attachment_bytes,
            # the workbench's answer form carries the reply document
            "/workbench/": settings.max_attachment_bytes,
        },
        exact={"/api/v1/suggestions": submission, "/": submission},
        # the portal's form with its photos (each within the upload limits, in all this)
        multipart={"/": submission + settings.max_attachment_bytes},
        page=portal.body_too_large_page,
    )
    app.add_middleware(RefuseNulInUrl)
    app.add_middleware(errors.InternalErrors)
    security.install(app, settings)  # outermost: its headers also go on the 413s above
    errors.install(app)
    for module in (
        suggestions,
        attachments,
        accounts,
        simulations,
        records,
        anchors,
        logs,
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
