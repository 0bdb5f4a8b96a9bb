"""Engines and sessions: SQLite (WAL) by default, PostgreSQL in production and CI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError
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


class DriverStatement:
    """A statement of the write path, compiled once per dialect and run on the driver's own
    cursor (sqlite3, psycopg) inside the session's transaction.

    SQLAlchemy's ``Connection.execute`` costs about as much CPU per statement as a single
    SQLite insert does several times over: its compiled-cache lookup, parameter processing,
    execution context and result wrapping were 45 % of the writer process's time for the 6 to
    8 statements of each write (py-spy under scripts/load). Here the SQL text and the
    parameters' type conversions (``UTCDateTime``, ``Boolean``) come from the same SQLAlchemy
    statement and column types, worked out once; each run is one ``cursor.execute``.

    Driver errors are raised as SQLAlchemy's own (``IntegrityError``, ``OperationalError``,
    ...), and a lost connection is invalidated as SQLAlchemy would, so callers see what a
    Core execute would have raised.
    """

    def __init__(self, statement: Any, *, column_keys: list[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = column_keys
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        key = dialect.name
        compiled = self._by_dialect.get(key)
        if compiled is None:
            compiled = self._by_dialect[key] = _Compiled(self.statement, dialect, self.column_keys)
        return compiled

    def run(self, target: Session | DriverReader, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Execute with ``params`` (by bind name) in the session's transaction (a write) or on
        a reader's connection (``reading``); the rows it returned, if any, converted as
        SQLAlchemy would convert them."""
        if isinstance(target, DriverReader):
            dialect, dbapi_connection, invalidate = target.dialect, target.dbapi, target.invalidate
        else:
            connection = target.connection()
            dialect, invalidate = connection.dialect, connection.invalidate
            dbapi_connection = connection.connection.driver_connection
        compiled = self._compiled(dialect)
        arguments = compiled.arguments(params)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            rows = cursor.fetchall() if cursor.description is not None else []
        except dialect.loaded_dbapi.Error as exc:
            lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
            if lost:
                invalidate(exc)
            raise DBAPIError.instance(
                compiled.sql,
                arguments,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=dialect,
            ) from exc
        finally:
            cursor.close()
        readers = compiled.readers
        if not rows or not any(readers):
            return rows
        return [
            tuple(
                value if read is None else read(value)
                for read, value in zip(readers, row, strict=True)
            )
            for row in rows
        ]


@dataclass(frozen=True)
class DriverReader:
    """A pooled connection lent to the hot reads (``reading``), for DriverStatements only."""

    dialect: Dialect
    dbapi: Any
    invalidate: Callable[[BaseException], None]


@contextmanager
def reading(engine: Engine) -> Iterator[DriverReader]:
    """A read transaction on one of the engine's pooled connections, without a Session or a
    Connection: for the hot reads of the API (trails, receipts, token checks), where taking
    a Session, its Connection and their BEGIN cost more than the reads' own statements
    (py-spy under scripts/load). SQLite: a deferred BEGIN, so that the statements see one
    snapshot; PostgreSQL: the driver's own transaction. Returning the connection to the pool
    rolls the transaction back."""
    pooled = engine.raw_connection()
    try:
        dbapi = pooled.driver_connection
        assert dbapi is not None
        if engine.dialect.name == "sqlite":
            dbapi.execute("BEGIN")
        yield DriverReader(engine.dialect, dbapi, pooled.invalidate)
    finally:
        pooled.close()


class _Compiled:
    """One DriverStatement for one dialect: SQL text, parameter order and conversions."""

    def __init__(self, statement: Any, dialect: Dialect, column_keys: list[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql: str = compiled.string
        self.order: list[str] | None = list(compiled.positiontup) if compiled.positional else None
        self.binders: list[tuple[str, Callable[[Any], Any]]] = []
        # Values the statement carries itself (a LIMIT's, say); the caller's come on top.
        self.fixed: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.binders.append((name, process))
            if not bind.required:
                self.fixed[name] = bind.effective_value
        # A SELECT's columns, or what an INSERT/UPDATE returns (none without RETURNING).
        columns = statement.exported_columns
        self.readers: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]

    def arguments(self, params: dict[str, Any]) -> Any:
        if self.fixed:
            params = self.fixed | params
        if self.binders:
            params = dict(params)
            for name, process in self.binders:
                if name in params:
                    params[name] = process(params[name])
        if self.order is None:
            return params
        return tuple(params[name] for name in self.order)
