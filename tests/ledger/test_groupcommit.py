"""Group commit (ledger.groupcommit): many requests' writes, one transaction, one COMMIT; a
failing write costs nobody else anything, and nothing is reported before it is on disk."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from api.writes import wire_error
from ledger import repository as repo
from ledger.db import deferred_writes, make_engine, make_session_factory, writers_lock_file
from ledger.errors import InvalidInput
from ledger.groupcommit import GroupCommitter, WriterClosed, run_group
from ledger.migrate import upgrade
from ledger.models import LogHead, RecordRow, TrailHead
from tests.fixtures.db import POSTGRES_URL, Database, append_one, postgres_schema_url

AT = datetime(2026, 12, 1, tzinfo=UTC)


def _append(subject: str, i: int = 0) -> Callable[[Session], str]:
    return lambda session: append_one(session, subject, i)


def _submit(writer: GroupCommitter, job: Callable[[Session], Any]) -> Future[Any]:
    future: Future[Any] = Future()

    def done(result: Any, error: BaseException | None) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    writer.submit(job, done)
    return future


def _stored(db: Database) -> list[RecordRow]:
    with db.sessions() as session:
        return list(session.scalars(select(RecordRow).order_by(RecordRow.position)))


class _Gate:
    """A first job that blocks the writer until released, so the next ones queue up and run
    as one group."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, session: Session) -> str:
        self.entered.set()
        assert self.release.wait(10)
        return _append("SG-GATE")(session)


def _commits(db: Database) -> list[int]:
    count = [0]

    @event.listens_for(db.engine, "commit")
    def on_commit(conn: Any) -> None:
        count[0] += 1

    return count


def test_queued_writes_share_one_transaction_and_each_gets_its_own_result(
    database: Database,
) -> None:
    writer = GroupCommitter(database.sessions).start()
    try:
        commits = _commits(database)
        gate = _Gate()
        first = _submit(writer, gate)
        assert gate.entered.wait(10)
        rest = [_submit(writer, _append(f"SG-{i % 3}", i)) for i in range(20)]
        gate.release.set()
        hashes = [first.result(10)] + [f.result(10) for f in rest]
    finally:
        writer.close()
    assert commits[0] == 2  # the gate's own group, then the 20 that queued behind it
    assert writer.stats.jobs == 21 and writer.stats.groups == 2 and writer.stats.largest == 20
    rows = _stored(database)
    assert [r.leaf_hash.hex() for r in rows] == hashes  # dense positions, in queue order
    assert [r.position for r in rows] == list(range(21))
    for subject in ("SG-0", "SG-1", "SG-2"):
        seqs = [r.seq for r in rows if r.subject == subject]
        assert seqs == list(range(len(seqs)))


def test_a_failing_write_rolls_back_alone_and_its_caller_gets_the_error(
    database: Database,
) -> None:
    def half_then_refuse(session: Session) -> str:
        _append("SG-BAD")(session)  # written, then undone with its savepoint
        raise InvalidInput("no such office")

    writer = GroupCommitter(database.sessions).start()
    try:
        gate = _Gate()
        futures = [_submit(writer, gate)]
        assert gate.entered.wait(10)
        futures += [
            _submit(writer, _append("SG-A")),
            _submit(writer, half_then_refuse),
            _submit(writer, _append("SG-A", 1)),
        ]
        gate.release.set()
        with pytest.raises(InvalidInput, match="no such office"):
            futures[2].result(10)
        good = [futures[i].result(10) for i in (0, 1, 3)]
    finally:
        writer.close()
    # the group of three ran without savepoints, was rolled back at the refusal, and ran
    # again with one savepoint per write
    assert writer.stats.rerun_with_savepoints == 1
    rows = _stored(database)
    assert [r.leaf_hash.hex() for r in rows] == good
    assert [r.position for r in rows] == [0, 1, 2]  # no hole where the refused write was
    assert "SG-BAD" not in {r.subject for r in rows}


def test_a_write_refused_by_the_database_when_its_deferred_writes_go_out_fails_alone(
    database: Database,
) -> None:
    """The writes nobody reads back are held and sent together (ledger.db.DeferredWrites);
    a constraint they break is found only when they go out, after the job returned. The
    caller of that job still gets the database's error, and nobody else loses anything."""

    def duplicate_trail_head(session: Session) -> str:
        claimed = repo.claim_position(session, "suggestions")  # a claim, undone with the job
        # The trail SG-A already has a head: inserting another one breaks its primary key,
        # but only when the deferred insert is sent.
        repo.advance_trail(session, "suggestions", "SG-A", 9, b"\x09" * 32, AT, new=True)
        return str(claimed)

    writer = GroupCommitter(database.sessions).start()
    try:
        futures = [_submit(writer, _append("SG-A"))]
        assert futures[0].result(10)
        gate = _Gate()
        futures.append(_submit(writer, gate))
        assert gate.entered.wait(10)
        futures += [
            _submit(writer, _append("SG-A", 1)),
            _submit(writer, duplicate_trail_head),
            _submit(writer, _append("SG-B", 2)),
        ]
        gate.release.set()
        with pytest.raises(IntegrityError):
            futures[3].result(10)
        good = [futures[i].result(10) for i in (0, 1, 2, 4)]
    finally:
        writer.close()
    rows = _stored(database)
    assert [r.leaf_hash.hex() for r in rows] == good
    assert [r.position for r in rows] == list(range(4))  # the refused claim left no hole
    with database.sessions() as session:
        heads = {h.subject: h.next_seq for h in session.scalars(select(TrailHead))}
        next_position = session.scalars(
            select(LogHead.next_position).where(LogHead.log == "suggestions")
        ).one()
    assert heads == {"SG-A": 2, "SG-GATE": 1, "SG-B": 1} and next_position == 4


def test_a_connection_back_in_the_pool_carries_nothing_of_a_group(database: Database) -> None:
    """After a group, the pooled connection defers nothing: a plain transaction on it claims
    its positions from the log head itself."""
    run_group(database.sessions, [_append("SG-P", i) for i in range(3)])
    with database.sessions.begin() as session:
        assert deferred_writes(session) is None
        assert repo.claim_position(session, "suggestions") == 3
    with database.sessions() as session:
        assert (
            session.scalars(select(LogHead.next_position).where(LogHead.log == "suggestions")).one()
            == 4
        )


def test_when_the_group_cannot_commit_each_write_runs_again_alone(database: Database) -> None:
    commits = [0]

    @event.listens_for(database.engine, "commit")
    def sabotage(conn: Any) -> None:
        commits[0] += 1
        if commits[0] == 2:  # the gate's group commits; the group of five does not
            raise RuntimeError("the disk went away during COMMIT")

    writer = GroupCommitter(database.sessions).start()
    try:
        gate = _Gate()
        first = _submit(writer, gate)
        assert gate.entered.wait(10)
        rest = [_submit(writer, _append("SG-R", i)) for i in range(5)]
        gate.release.set()
        hashes = [first.result(10)] + [f.result(10) for f in rest]
    finally:
        writer.close()
    assert writer.stats.retried_alone == 5
    rows = _stored(database)
    assert [r.leaf_hash.hex() for r in rows] == hashes
    assert [r.seq for r in rows if r.subject == "SG-R"] == list(range(5))


def test_a_write_that_cannot_commit_alone_is_reported_failed_and_leaves_nothing(
    database: Database,
) -> None:
    @event.listens_for(database.engine, "commit")
    def refuse(conn: Any) -> None:
        raise RuntimeError("read-only file system")

    writer = GroupCommitter(database.sessions).start()
    try:
        with pytest.raises(RuntimeError, match="read-only file system"):
            _submit(writer, _append("SG-X")).result(10)
    finally:
        writer.close()
    event.remove(database.engine, "commit", refuse)
    assert _stored(database) == []


@pytest.mark.postgres
@pytest.mark.parametrize("group", [1, 3])
def test_a_connection_lost_under_a_write_fails_it_as_a_lost_connection(group: int) -> None:
    """PostgreSQL restarted (or the backend terminated) while a job runs: the job's caller
    gets the OperationalError of the lost connection (the API answers 503, "try again"), not
    PendingRollbackError, which the rollback of the deferred writes raised in its place (a
    500 seen under a PostgreSQL restart); the group's other jobs commit."""
    if not POSTGRES_URL:
        pytest.skip("CIVIC_TEST_POSTGRES_URL is not set")
    url, drop = postgres_schema_url()
    engine = make_engine(url)
    admin = make_engine(POSTGRES_URL)
    try:
        upgrade(engine)
        sessions = make_session_factory(engine)

        def lose_the_connection(session: Session) -> str:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            return append_one(session, "SG-LOST")

        jobs = [lose_the_connection] + [_append("SG-OK", i) for i in range(group - 1)]
        outcomes = run_group(sessions, jobs)
        error = outcomes[0][1]
        assert isinstance(error, OperationalError) and error.connection_invalidated, error
        assert wire_error(error).name == "DatabaseUnavailable"
        assert all(e is None for _r, e in outcomes[1:]), outcomes
        with sessions() as session:
            subjects = session.scalars(select(RecordRow.subject)).all()
        assert sorted(subjects) == ["SG-OK"] * (group - 1)
    finally:
        engine.dispose()
        admin.dispose()
        drop()


def test_close_answers_every_queued_write_then_refuses_new_ones(database: Database) -> None:
    writer = GroupCommitter(database.sessions).start()
    gate = _Gate()
    futures = [_submit(writer, gate)]
    assert gate.entered.wait(10)
    futures += [_submit(writer, _append("SG-C", i)) for i in range(10)]
    closer = threading.Thread(target=writer.close)
    closer.start()
    gate.release.set()
    closer.join(10)
    assert all(f.result(0) for f in futures)
    with pytest.raises(WriterClosed):
        writer.submit(_append("SG-C"), lambda result, error: None)
    assert len(_stored(database)) == 11


def test_writers_of_several_processes_share_the_sqlite_file_lock_without_gaps(
    tmp_path: Path, database: Database
) -> None:
    """Two writers (as two API processes have) append to one log at once: positions stay
    dense and every trail stays linked."""
    lock = writers_lock_file(database.url) if database.backend == "sqlite" else None
    writers = [GroupCommitter(database.sessions, lock_file=lock).start() for _ in range(2)]
    futures: list[Future[Any]] = []

    def client(k: int) -> None:
        for i in range(25):
            futures.append(_submit(writers[k % 2], _append(f"SG-{k}", i)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        hashes = {f.result(30) for f in futures}
    finally:
        for w in writers:
            w.close()
    rows = _stored(database)
    assert {r.leaf_hash.hex() for r in rows} == hashes and len(rows) == 150
    assert [r.position for r in rows] == list(range(150))
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RecordRow)) == 150
    for k in range(6):
        seqs = [r.seq for r in rows if r.subject == f"SG-{k}"]
        assert seqs == list(range(25))
        trail = [r for r in rows if r.subject == f"SG-{k}"]
        for a, b in pairwise(trail):
            assert a.position < b.position
