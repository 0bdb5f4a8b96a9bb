"""Engines and sessions: SQLite (WAL) by default, PostgreSQL in production and CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

READ_ONLY = "civic_read_only"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def writers_lock_file(url: str) -> Path | None:
    """The file the writer threads of several processes ``flock`` before a SQLite write
    transaction (ledger.groupcommit); None for PostgreSQL and in-memory SQLite."""
    path = sqlite_path(url)
    return None if path is None else path.with_name(path.name + "-writers.lock")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas and transaction behaviour the ledger relies on.

    SQLite: WAL so readers never block the writer, a busy timeout instead of instant
    "database is locked", and BEGIN IMMEDIATE so a write transaction takes the write lock
    up front (two deferred transactions upgrading at once would deadlock and fail).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # acknowledged means on disk
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(parsed, **kwargs)


def read_only_engine(engine: Engine) -> Engine:
    """The engine for reads that must not queue behind writers (SQLite: a deferred BEGIN)."""
    return engine.execution_options(**{READ_ONLY: True})


def make_session_factory(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions for writes, or (``read_only``) for reads that must not queue behind writers."""
    bind = read_only_engine(engine) if read_only else engine
    return sessionmaker(bind, expire_on_commit=False)
