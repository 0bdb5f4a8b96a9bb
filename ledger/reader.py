"""The one read-only reader of the store, for the inspectors' audit (``civic-verify audit``).

It opens its own engine from a database URL, on a connection the database itself keeps from
writing, and hands out plain named tuples, never ORM objects or sessions:

* SQLite: the file is opened as ``file:…?mode=ro`` (the OS-level open is read-only, so not even
  a checkpoint or a journal can touch the file) and ``PRAGMA query_only=ON``;
* PostgreSQL: ``default_transaction_read_only=on`` in the connection's startup options, and
  the session characteristics set to ``READ ONLY`` as well.

Everything is read inside one transaction (SQLite WAL snapshot; PostgreSQL ``REPEATABLE READ
READ ONLY``), so records, batches and heads are read as of one moment even while the service
keeps appending. Records are streamed in chunks (``yield_per``: a server-side cursor on
PostgreSQL), so a million records never sit in memory at once.

The verifier is allowed to import this module and nothing else of the store (see the
import-linter contracts in ``pyproject.toml``); it must therefore import nothing from
``api``, ``voting`` or ``verifier``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from ledger.models import BatchRow, LogHead, RecordRow, Redaction, TrailHead

DEFAULT_CHUNK = 10_000
_PG_READ_ONLY_OPTION = "-c default_transaction_read_only=on"


class StoreUnavailable(RuntimeError):
    """The store could not be opened or read (bad URL, missing file, refused connection)."""


class StoredRecord(NamedTuple):
    """One record row as stored; ``canonical`` is empty when the content was erased (§7)."""

    position: int
    subject: str
    seq: int
    type: str
    leaf_hash: bytes
    canonical: bytes
    accepted_at: datetime


class StoredBatch(NamedTuple):
    """One sealed batch: positions ``[first_position, first_position + size)`` of its log."""

    log: str
    number: int
    first_position: int
    size: int
    root: bytes
    state: str
    tx_hash: str | None
    block_number: int | None
    contract: str | None
    chain_id: int | None
    sealed_at: datetime
    sent_at: datetime | None
    anchored_at: datetime | None
    # Version 2 (PROTOCOL §8): the whole log's root at the batch's end, what its anchor carries
    # (None for a batch sealed before the log trees, not yet carried over by `reanchor`).
    log_root: bytes | None = None
    # The hashes of core.tlog.frontier(first_position), largest first, concatenated: the log's
    # tree before the batch (None as for log_root). The audit takes it only where it folds to
    # the root anchored for the batch before.
    frontier: bytes | None = None

    @property
    def end(self) -> int:
        """The log's size after this batch: a version 2 anchor's ``size``."""
        return self.first_position + self.size


class StoredRedaction(NamedTuple):
    """PROTOCOL §7: the content of the record with this leaf hash was erased."""

    leaf_hash: bytes
    at: str
    reason: str
    by: str


class StoredLogHead(NamedTuple):
    """A log's head: the next free position and the first position not yet sealed."""

    log: str
    next_position: int
    sealed_until: int


class StoredTrailHead(NamedTuple):
    """The last record of a trail, as the service keeps it for the next append."""

    subject: str
    next_seq: int
    last_leaf_hash: bytes


def _blob(value: Any) -> bytes:
    """A BLOB column's value as bytes. SQLite keeps whatever type was written, so a row an
    attacker rewrote with text (``replace()`` on a BLOB returns TEXT) still reads as bytes."""
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    return bytes(value)


def _aware(moment: datetime | None) -> Any:
    """SQLite hands back naive datetimes; the store writes UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise StoreUnavailable(
            f"{url.render_as_string(hide_password=True)}: give the path of a SQLite file"
        )
    path = Path(database).resolve()
    if not path.is_file():
        raise StoreUnavailable(f"no SQLite database at {path}")
    # mode=ro: SQLite opens the file O_RDONLY, so no statement, checkpoint or journal
    # recovery can change it. quote() keeps '?' and '#' in a path from starting the URI query.
    uri = f"file:{quote(str(path))}?mode=ro"

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
        connection.isolation_level = None  # we issue BEGIN ourselves: one snapshot
        connection.execute("PRAGMA query_only=ON")
        return connection

    engine = create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A deferred BEGIN: in WAL mode the first read fixes the snapshot for the whole audit.
        conn.exec_driver_sql("BEGIN")

    return engine


def _postgres_engine(url: URL) -> Engine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    options = url.query.get("options")
    if isinstance(options, tuple):
        options = " ".join(options)
    # Merged into any options the URL already carries (a search_path, say): connect_args
    # would otherwise replace them.
    merged = f"{options} {_PG_READ_ONLY_OPTION}" if options else _PG_READ_ONLY_OPTION
    url = url.difference_update_query(["options"])
    engine = create_engine(
        url,
        connect_args={"options": merged},
        poolclass=NullPool,
        isolation_level="REPEATABLE READ",
    )

    @event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        dbapi_connection.autocommit = autocommit

    return engine


def open_engine(url: str) -> Engine:
    """A read-only engine for ``url`` (SQLite file or PostgreSQL); nothing is connected yet."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreUnavailable(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed)
        if backend == "postgresql":
            return _postgres_engine(parsed)
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreUnavailable(f"cannot open {parsed.render_as_string()}: {exc}") from exc
    raise StoreUnavailable(f"unsupported database {backend!r}: use a SQLite file or PostgreSQL")


class StoreReader:
    """Read-only access to the ledger store, as plain tuples, within one snapshot.

    Use as a context manager, or call :meth:`close`. Every method raises StoreUnavailable
    when the database cannot be read.
    """

    def __init__(self, url: str, *, chunk: int = DEFAULT_CHUNK) -> None:
        self.url = url
        self.chunk = chunk
        self._engine = open_engine(url)
        try:
            self._connection = self._engine.connect()
            self._connection.begin()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise StoreUnavailable(f"cannot connect to the store: {exc}") from exc

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the read transaction (a rollback: there is nothing to commit) and disconnect."""
        try:
            self._connection.rollback()
            self._connection.close()
        finally:
            self._engine.dispose()

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def connection(self) -> Connection:
        """The read-only connection itself, for tests that prove writes are refused."""
        return self._connection

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"cannot read {what} from the store: {exc}") from exc

    # -- small tables -------------------------------------------------------------------

    def log_heads(self) -> list[StoredLogHead]:
        """Every log's head, by log name."""
        with self._reading("log heads"):
            rows = self._connection.execute(
                select(LogHead.log, LogHead.next_position, LogHead.sealed_until).order_by(
                    LogHead.log
                )
            ).all()
        return [StoredLogHead(*row) for row in rows]

    def batches(self, log: str) -> list[StoredBatch]:
        """The log's batches, by number (a thousand for a million records: read at once)."""
        with self._reading(f"the batches of {log}"):
            rows = self._connection.execute(
                select(
                    BatchRow.log,
                    BatchRow.number,
                    BatchRow.first_position,
                    BatchRow.size,
                    BatchRow.root,
                    BatchRow.state,
                    BatchRow.tx_hash,
                    BatchRow.block_number,
                    BatchRow.contract,
                    BatchRow.chain_id,
                    BatchRow.sealed_at,
                    BatchRow.sent_at,
                    BatchRow.anchored_at,
                    BatchRow.log_root,
                    BatchRow.frontier,
                )
                .where(BatchRow.log == log)
                .order_by(BatchRow.number)
            ).all()
        return [
            StoredBatch(
                row.log,
                row.number,
                row.first_position,
                row.size,
                _blob(row.root),
                row.state,
                row.tx_hash,
                row.block_number,
                row.contract,
                row.chain_id,
                _aware(row.sealed_at),
                _aware(row.sent_at),
                _aware(row.anchored_at),
                _blob(row.log_root) if row.log_root is not None else None,
                _blob(row.frontier) if row.frontier is not None else None,
            )
            for row in rows
        ]

    def redactions(self) -> list[StoredRedaction]:
        """Every §7 redaction (all logs; one per erased record)."""
        with self._reading("redactions"):
            rows = self._connection.execute(
                select(Redaction.leaf_hash, Redaction.at, Redaction.reason, Redaction.by)
            ).all()
        return [StoredRedaction(_blob(row[0]), *row[1:]) for row in rows]

    def count_records(self, log: str | None = None) -> int:
        """How many record rows the log (or the whole store) holds."""
        query = select(func.count()).select_from(RecordRow)
        if log is not None:
            query = query.where(RecordRow.log == log)
        with self._reading("the record count"):
            return int(self._connection.execute(query).scalar_one())

    # -- streams ------------------------------------------------------------------------

    def _stream(self, what: str, query: Any) -> Iterator[Any]:
        """Rows of ``query`` in chunks of ``self.chunk``, on a server-side cursor where the
        database has one."""
        with self._reading(what):
            result = self._connection.execution_options(yield_per=self.chunk).execute(query)
            try:
                yield from result.partitions()
            finally:
                result.close()

    def records(
        self, log: str, *, start: int | None = None, stop: int | None = None
    ) -> Iterator[StoredRecord]:
        """The log's records in position order, optionally only ``start <= position < stop``."""
        for chunk in self.record_chunks(log, start=start, stop=stop):
            yield from chunk

    def record_chunks(
        self, log: str, *, start: int | None = None, stop: int | None = None
    ) -> Iterator[list[StoredRecord]]:
        """As :meth:`records`, a list of up to ``chunk`` records at a time (less overhead)."""
        query = select(
            RecordRow.position,
            RecordRow.subject,
            RecordRow.seq,
            RecordRow.type,
            RecordRow.leaf_hash,
            RecordRow.canonical,
            RecordRow.accepted_at,
        ).where(RecordRow.log == log)
        if start is not None:
            query = query.where(RecordRow.position >= start)
        if stop is not None:
            query = query.where(RecordRow.position < stop)
        make = StoredRecord._make
        sqlite = self.dialect == "sqlite"
        for rows in self._stream(f"the records of {log}", query.order_by(RecordRow.position)):
            if sqlite:  # naive times (the store writes UTC), and BLOBs that may be TEXT
                yield [
                    make(
                        (
                            p,
                            s,
                            q,
                            t,
                            h if h.__class__ is bytes else _blob(h),
                            c if c.__class__ is bytes else _blob(c),
                            a.replace(tzinfo=UTC),
                        )
                    )
                    for p, s, q, t, h, c, a in rows
                ]
            else:
                yield [make(row) for row in rows]

    def trail_heads(self, log: str) -> Iterator[StoredTrailHead]:
        """The service's head of every trail of the log (its next seq and last leaf hash)."""
        query = (
            select(TrailHead.subject, TrailHead.next_seq, TrailHead.last_leaf_hash)
            .where(TrailHead.log == log)
            .order_by(TrailHead.subject)
        )
        for rows in self._stream(f"the trail heads of {log}", query):
            for subject, next_seq, last in rows:
                yield StoredTrailHead(subject, next_seq, _blob(last))
