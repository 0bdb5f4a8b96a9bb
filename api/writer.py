"""The writer process: every hot write of the service (submit, transition, flags, ballots)
runs in one process of its own, in groups that share one transaction and one COMMIT
(ledger.groupcommit).

Why a process of its own: Python lets one thread run at a time (the GIL), and a thread that
gives it up for every SQL statement gets it back only after the busy thread holding it lets
go. A writer thread inside an API process, next to the event loop that parses requests,
spent most of its time waiting for the GIL while holding the write lock: measured, a
writer that commits 1,339 submissions a second alone managed 33 a second next to one busy
Python thread (123 a second with a 0.5 ms switch interval). Here the writer is the only
thread of its process: it reads the requests of all API processes from a Unix socket,
runs what arrived as one group, answers, and reads again. What arrives while a group runs
forms the next group.

The protocol between the API processes and the writer: frames of a 4-byte length and a JSON
document of ``api.writes`` (typed requests one way, replies or errors the other, versioned;
never pickle). The socket is the service's own: it lives in the 0700 data directory (or a
0700 directory of its own when that path is too long for a socket), is made 0600, and the
writer answers only peers running as its own user; a frame that does not decode closes the
connection.

Without ``CIVIC_WRITER_SOCKET`` (an application made in-process, as the tests do) the same
operations run in a writer thread of the process (``ledger.groupcommit.GroupCommitter``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any, cast

from sqlalchemy.orm import Session, sessionmaker

from api.writes import (
    AnyRequest,
    WriteContext,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    error_from_wire,
    job,
)
from ledger.errors import ServiceUnavailable
from ledger.groupcommit import MAX_GROUP, GroupStats, run_group
from ledger.pii import Vault
from ledger.suggestions import Policy

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
MAX_FRAME = 4 * 1024 * 1024  # a request is bounded by the API's body limit; this is a sanity cap
# How long an API process waits for the writer to come up (start, restart) before answering 503.
CONNECT_PATIENCE = 5.0


class WriterUnavailable(ServiceUnavailable):
    """The writer process did not answer; whether the write happened is not known, and it
    was not acknowledged."""


# -- frames -----------------------------------------------------------------------------------


def _frame(data: bytes) -> bytes:
    if len(data) > MAX_FRAME:
        raise ValueError(f"a frame of {len(data)} bytes is larger than {MAX_FRAME}")
    return _LENGTH.pack(len(data)) + data


class _Frames:
    """Splits a byte stream into frames (their bytes)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ValueError(f"a frame of {size} bytes is larger than {MAX_FRAME}")
            end = _LENGTH.size + size
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[_LENGTH.size : end]))
            del self._buffer[:end]
        return frames


# -- the writer process -----------------------------------------------------------------------


Request = AnyRequest


class _Batch:
    """Requests read in one turn of the event loop, run as one group at the end of it."""

    def __init__(self, sessions: sessionmaker[Session], ctx: WriteContext) -> None:
        self.sessions = sessions
        self.ctx = ctx
        self.stats = GroupStats()
        self.pending: list[tuple[asyncio.Transport, int, Request]] = []
        self.scheduled = False

    def add(self, transport: asyncio.Transport, request_id: int, request: Request) -> None:
        self.pending.append((transport, request_id, request))
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.run)

    def run(self) -> None:
        self.scheduled = False
        while self.pending:
            group, self.pending = self.pending[:MAX_GROUP], self.pending[MAX_GROUP:]
            jobs = [job(self.ctx, request) for _transport, _id, request in group]
            outcomes = run_group(self.sessions, jobs, stats=self.stats)
            for (transport, request_id, _request), (result, error) in zip(
                group, outcomes, strict=True
            ):
                if transport.is_closing():
                    continue  # the API process went away; the write stands, unacknowledged
                transport.write(_answer(request_id, result, error))


def _answer(request_id: int, result: Any, error: BaseException | None) -> bytes:
    if error is not None:
        log.info("write %d refused: %s: %s", request_id, type(error).__name__, error)
    try:
        return _frame(encode_reply(request_id, result, error))
    except Exception as exc:  # an answer that cannot be encoded: say so, never hang the caller
        log.exception("the answer to write %d cannot be encoded", request_id)
        return _frame(encode_reply(request_id, None, RuntimeError(f"the writer's answer: {exc}")))


class _WriterProtocol(asyncio.Protocol):
    def __init__(self, batch: _Batch) -> None:
        self.batch = batch
        self.frames = _Frames()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        if uid != os.getuid():
            log.warning("refused a connection from uid %d", uid)
            transport.abort()
            return
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            for frame in self.frames.feed(data):
                decoded = decode_request(frame)
                self.batch.add(self.transport, decoded.id, decoded.request)
        except Exception as exc:
            log.warning("closing a connection that sent a bad frame: %s", exc)
            self.transport.abort()


def serve(settings: Any) -> int:
    """The writer process (``civic-ledger writer``): answer the API processes on
    ``CIVIC_WRITER_SOCKET`` until SIGTERM, finishing every request already read."""
    from ledger.db import make_engine, make_session_factory
    from ledger.pii import load_or_create_pii_key

    path = settings.writer_socket
    if path is None:
        log.error("CIVIC_WRITER_SOCKET is not set: `civic-ledger run` sets it")
        return 2
    from ledger.cli import cmd_migrate

    cmd_migrate(settings)  # as the API and the worker do: a no-op when the schema is current
    engine = make_engine(settings.resolved_database_url, pool_size=2, max_overflow=2)
    ctx = WriteContext(
        vault=Vault(load_or_create_pii_key(settings.resolved_pii_key_file)),
        policy=Policy(
            reply_due_months=settings.reply_due_months,
            rehandling_due_months=settings.rehandling_due_months,
            evaluation_days=settings.evaluation_days,
        ),
    )
    batch = _Batch(make_session_factory(engine), ctx)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by a writer that was killed
        old_umask = os.umask(0o177)
        try:
            server = await loop.create_unix_server(lambda: _WriterProtocol(batch), str(path))
        finally:
            os.umask(old_umask)
        log.info("writer listening on %s", path)
        await stop.wait()
        server.close()
        await server.wait_closed()
        batch.run()  # whatever was read and not yet run

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        engine.dispose()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        stats = batch.stats
        log.info(
            "writer stopped: %d requests in %d groups (largest %d, %d rerun alone)",
            stats.jobs,
            stats.groups,
            stats.largest,
            stats.retried_alone,
        )
    return 0


# -- the API processes' side --------------------------------------------------------------------


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.task = asyncio.get_running_loop().create_task(self._read())
        self.closed = False

    async def _read(self) -> None:
        frames = _Frames()
        try:
            while True:
                data = await self.reader.read(256 * 1024)
                if not data:
                    break
                for frame in frames.feed(data):
                    answer = decode_reply(frame)
                    future = self.waiting.pop(answer.id, None)
                    if future is None or future.done():
                        continue
                    if answer.error is not None:
                        future.set_exception(error_from_wire(answer.error))
                    else:
                        future.set_result(answer.reply or {})
        except Exception as exc:  # a broken stream: every waiting write is in doubt
            log.warning("the connection to the writer broke: %s", exc)
        finally:
            self.close()

    def usable(self) -> bool:
        """Open, as far as anyone knows: a transport closed by the event loop (the writer
        killed) is closing before the reading task has run to notice."""
        return not self.closed and not self.writer.is_closing()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(
                    WriterUnavailable(
                        "the writer process stopped before it answered: the write was not "
                        "acknowledged and may or may not have been stored; look at the trail "
                        "before trying again"
                    )
                )
        self.waiting.clear()


class WriterClient:
    """An API process's connection to the writer process (one per event loop)."""

    def __init__(self, path: Path, patience: float = CONNECT_PATIENCE) -> None:
        self.path = path
        self.patience = patience
        self._ids = itertools.count()
        self._connection: _Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None

    async def call(self, request: Request) -> dict[str, Any]:
        """Send ``request``; its reply (as JSON values) once its group committed, or the
        exception it raised there."""
        request_id = next(self._ids)
        data = _frame(
            encode_request(request_id, request)
        )  # before connecting: sends nothing if bad
        for attempt in range(2):
            connection = await self._connect()
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            connection.waiting[request_id] = future
            try:
                connection.writer.write(data)
            except (RuntimeError, OSError) as exc:
                # The transport closed under us (the writer was killed) before the reading
                # task saw it: uvloop refuses the write with RuntimeError. Nothing was sent,
                # so the request goes out once more on a new connection.
                connection.waiting.pop(request_id, None)
                connection.close()
                if attempt:
                    raise WriterUnavailable(
                        f"the writer process does not answer ({exc}); nothing was written"
                    ) from exc
                continue
            return await future
        raise AssertionError("unreachable")  # pragma: no cover

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop: start afresh
            self._loop, self._connection, self._connecting = loop, None, asyncio.Lock()
        connection = self._connection
        if connection is not None and connection.usable():
            return connection
        assert self._connecting is not None
        async with self._connecting:
            if self._connection is not None and self._connection.usable():
                return self._connection
            if self._connection is not None:
                self._connection.close()  # its waiting writes are in doubt: say so now
            deadline = time.monotonic() + self.patience
            while True:
                try:
                    reader, writer = await asyncio.open_unix_connection(str(self.path))
                    break
                except OSError as exc:
                    if time.monotonic() >= deadline:
                        raise WriterUnavailable(
                            f"the writer process does not answer ({exc.strerror or exc}); "
                            "nothing was written"
                        ) from exc
                    await asyncio.sleep(0.1)
            self._connection = _Connection(reader, writer)
            return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
