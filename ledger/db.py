"""Engines and sessions: SQLite (WAL) by default, PostgreSQL in production and CI."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
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

    ``deferrable``: a write whose result nobody reads (an INSERT or UPDATE without
    RETURNING). Inside a group transaction that defers writes (``defer_writes``) it is not sent
    at once but queued, and the queue goes out in one round trip before the next statement
    that reads anything (see ``DeferredWrites``).

    Driver errors are raised as SQLAlchemy's own (``IntegrityError``, ``OperationalError``,
    ...), and a lost connection is invalidated as SQLAlchemy would, so callers see what a
    Core execute would have raised.
    """

    def __init__(
        self, statement: Any, *, column_keys: list[str] | None = None, deferrable: bool = False
    ) -> None:
        self.statement = statement
        self.column_keys = column_keys
        self.deferrable = deferrable
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
        SQLAlchemy would convert them. A deferrable write in a deferring transaction is
        queued and returns no rows."""
        deferred: DeferredWrites | None = None
        if isinstance(target, DriverReader):
            dialect, dbapi_connection, invalidate = target.dialect, target.dbapi, target.invalidate
        else:
            connection = target.connection()
            dialect, invalidate = connection.dialect, connection.invalidate
            dbapi_connection = connection.connection.driver_connection
            deferred = connection.info.get(_DEFERRED)
        compiled = self._compiled(dialect)
        arguments = compiled.arguments(params)
        if deferred is not None and self.deferrable:
            deferred.queue(compiled, arguments)
            return []
        cursor = dbapi_connection.cursor()
        carry = deferred if deferred is not None and deferred.pending else None
        try:
            # The writes queued before this statement go out with it, in one round trip.
            with carry.sending(dbapi_connection, dialect) if carry else nullcontext():
                if carry:
                    carry.send(cursor)
                cursor.execute(compiled.sql, arguments)
                # From the statement, not the cursor: in pipeline mode the cursor has no
                # description before the fetch.
                rows = cursor.fetchall() if compiled.returns_rows else []
        except dialect.loaded_dbapi.Error as exc:
            raise _sqlalchemy_error(
                exc, compiled.sql, arguments, dialect, dbapi_connection, cursor, invalidate
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


def _sqlalchemy_error(
    exc: Any,  # the driver's Error
    sql: str,
    arguments: Any,
    dialect: Dialect,
    dbapi_connection: Any,
    cursor: Any,
    invalidate: Callable[[BaseException], None],
) -> BaseException:
    """A driver error as SQLAlchemy raises it; a lost connection is invalidated first."""
    lost = dialect.is_disconnect(exc, dbapi_connection, cursor)
    if lost:
        invalidate(exc)
    error: BaseException = DBAPIError.instance(
        sql,
        arguments,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return error


_DEFERRED = "civic_deferred_writes"


class DeferredWrites:
    """The writes of one group transaction that nobody reads back, held until something
    must see them, then sent together: on PostgreSQL in one round trip (psycopg's pipeline
    mode, one ``executemany`` per statement), on SQLite as one ``executemany`` per statement.

    On PostgreSQL every statement is a round trip to the server, and the writer spent most of
    a write waiting for six or seven of them in turn (claim a position, read the trail head,
    insert the record, the trail head, the suggestion, its private row). Deferred, a
    submission costs the round trip of its one read (is the tracking code taken?), which
    carries the writes queued before it.

    What may see the queue, and so what sends it first: any later statement on the
    connection (a DriverStatement that reads, and every statement SQLAlchemy sends: ORM
    loads and flushes, SAVEPOINT, through ``before_cursor_execute``), and the group's COMMIT
    (``flush``, called by ledger.groupcommit). A ROLLBACK drops it. Statements keep their
    order within each statement; different statements go out in the order each was first
    queued, which keeps every insert after the rows it refers to (a record before its trail
    head, a suggestion before its private row).

    A write that fails at sending fails the statement that sent it (or the COMMIT): the group
    commit then runs the group again with a savepoint per job and ``flush`` at each job's
    end, so the failure lands on the job that queued it.

    ``positions``: the next position of each log whose head row this transaction already
    locked and claimed (``ledger.repository.claim_position``), so later claims in the same
    transaction need no round trip; ``mark`` and ``restore`` undo a refused job's claims.
    """

    def __init__(self) -> None:
        self.pending: dict[_Compiled, list[Any]] = {}
        self.positions: dict[str, int] = {}
        self.info: dict[Any, Any] | None = None  # the connection's, while deferring

    def queue(self, compiled: _Compiled, arguments: Any) -> None:
        self.pending.setdefault(compiled, []).append(arguments)

    def mark(self) -> dict[str, int]:
        return dict(self.positions)

    def restore(self, mark: dict[str, int]) -> None:
        self.pending.clear()
        self.positions = dict(mark)

    @contextmanager
    def sending(self, dbapi_connection: Any, dialect: Dialect) -> Iterator[None]:
        """One round trip for everything sent inside (PostgreSQL's pipeline mode)."""
        if dialect.name == "postgresql":
            with dbapi_connection.pipeline():
                yield
        else:
            yield

    def send(self, cursor: Any) -> None:
        """Send what is queued on ``cursor`` (inside ``sending``); the queue is empty after,
        whether or not the server accepted it."""
        pending, self.pending = self.pending, {}
        for compiled, rows in pending.items():
            cursor.executemany(compiled.sql, rows)


def deferred_writes(session: Session) -> DeferredWrites | None:
    """The deferred writes of the session's transaction, if it defers writes."""
    found: DeferredWrites | None = session.connection().info.get(_DEFERRED)
    return found


def defer_writes(session: Session) -> DeferredWrites:
    """Defer the deferrable writes of ``session``'s transaction (a group commit) until
    something reads or the caller calls ``flush``; ``stop_deferring`` before the COMMIT or
    ROLLBACK, while the transaction still holds its connection, so that the next user of the
    pooled connection never sees this transaction's state."""
    writes = DeferredWrites()
    info = session.connection().info
    info[_DEFERRED] = writes
    writes.info = info
    return writes


def stop_deferring(writes: DeferredWrites) -> None:
    """Forget ``writes`` (unsent writes are dropped: call ``flush`` first to keep them)."""
    writes.restore({})
    if writes.info is not None and writes.info.get(_DEFERRED) is writes:
        del writes.info[_DEFERRED]
    writes.info = None


def flush(session: Session) -> None:
    """Send the session's deferred writes now (before a COMMIT, at a job's end)."""
    connection = session.connection()
    writes: DeferredWrites | None = connection.info.get(_DEFERRED)
    if writes is None or not writes.pending:
        return
    dialect = connection.dialect
    dbapi_connection = connection.connection.driver_connection
    _send_pending(writes, dialect, dbapi_connection, connection.invalidate)


def _send_pending(
    writes: DeferredWrites,
    dialect: Dialect,
    dbapi_connection: Any,
    invalidate: Callable[[BaseException], None],
) -> None:
    cursor = dbapi_connection.cursor()
    try:
        with writes.sending(dbapi_connection, dialect):
            writes.send(cursor)
    except dialect.loaded_dbapi.Error as exc:
        raise _sqlalchemy_error(
            exc, "(deferred writes)", (), dialect, dbapi_connection, cursor, invalidate
        ) from exc
    finally:
        cursor.close()


@event.listens_for(Engine, "before_cursor_execute")
def _send_before_sqlalchemy(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """Whatever SQLAlchemy sends on a connection with deferred writes sees them."""
    writes: DeferredWrites | None = conn.info.get(_DEFERRED)
    if writes is not None and writes.pending:
        _send_pending(writes, conn.dialect, conn.connection.driver_connection, conn.invalidate)


@event.listens_for(Engine, "rollback")
def _drop_on_rollback(conn: Any) -> None:
    if conn.invalidated:
        # A lost connection (invalidated mid-transaction): its ``info`` cannot be reached
        # until this very ROLLBACK completes, and asking for it here would raise
        # PendingRollbackError in place of the error that lost it. Its queue went with it:
        # the group commit forgets the writes (``stop_deferring``) before rolling back.
        return
    writes: DeferredWrites | None = conn.info.get(_DEFERRED)
    if writes is not None:
        writes.restore({})


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
        self.returns_rows = bool(self.readers)

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
