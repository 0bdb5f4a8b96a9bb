"""All SQL of the ledger store. Functions take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ledger.models import (
    BatchRow,
    LogHead,
    RecordRow,
    SuggestionPrivate,
    SuggestionRow,
    TrailHead,
    WorkerStatus,
)


def lock_log_head(session: Session, log: str) -> LogHead:
    """The log's head row, locked until the transaction ends.

    On PostgreSQL ``FOR UPDATE`` serialises appends to one log, so positions are handed out
    in commit order and the worker never sees position n+1 before n. SQLite serialises every
    write transaction anyway (BEGIN IMMEDIATE).
    """
    head = session.scalars(
        select(LogHead).where(LogHead.log == log).with_for_update()
    ).one_or_none()
    if head is None:
        raise LookupError(f"unknown log {log!r}")
    return head


# The append path runs these for every record: built once, executed on the session's
# connection (Core), so a write costs a few statements and no ORM unit of work.
_CLAIM_POSITION = (
    update(LogHead.__table__)
    .where(LogHead.__table__.c.log == bindparam("log_name"))
    .values(next_position=LogHead.__table__.c.next_position + 1)
    .returning(LogHead.__table__.c.next_position - 1)
)
_TRAIL_HEAD = select(
    TrailHead.__table__.c.next_seq,
    TrailHead.__table__.c.last_leaf_hash,
    TrailHead.__table__.c.last_at,
).where(
    TrailHead.__table__.c.log == bindparam("log_name"),
    TrailHead.__table__.c.subject == bindparam("subject_name"),
)
_INSERT_RECORD = insert(RecordRow.__table__)
_INSERT_TRAIL = insert(TrailHead.__table__)
_UPDATE_TRAIL = (
    update(TrailHead.__table__)
    .where(
        TrailHead.__table__.c.log == bindparam("log_name"),
        TrailHead.__table__.c.subject == bindparam("subject_name"),
    )
    .values(
        next_seq=bindparam("next_seq"),
        last_leaf_hash=bindparam("last_leaf_hash"),
        last_at=bindparam("last_at"),
    )
)


def claim_position(session: Session, log: str) -> int:
    """Take the log's next position: ``UPDATE … RETURNING``, which also row-locks the head."""
    position = session.connection().execute(_CLAIM_POSITION, {"log_name": log}).scalar_one_or_none()
    if position is None:
        raise LookupError(f"unknown log {log!r}")
    return int(position)


def trail_head(session: Session, log: str, subject: str) -> Row[Any] | None:
    return (
        session.connection()
        .execute(_TRAIL_HEAD, {"log_name": log, "subject_name": subject})
        .one_or_none()
    )


def insert_record(session: Session, **values: object) -> None:
    session.connection().execute(_INSERT_RECORD, values)


def advance_trail(
    session: Session, log: str, subject: str, next_seq: int, leaf: bytes, at: datetime, *, new: bool
) -> None:
    values = {"next_seq": next_seq, "last_leaf_hash": leaf, "last_at": at}
    if new:
        session.connection().execute(_INSERT_TRAIL, {"log": log, "subject": subject, **values})
    else:
        session.connection().execute(
            _UPDATE_TRAIL, {"log_name": log, "subject_name": subject, **values}
        )


def all_log_heads(session: Session) -> Sequence[LogHead]:
    return session.scalars(select(LogHead).order_by(LogHead.log)).all()


def add(session: Session, *rows: object) -> None:
    session.add_all(rows)


# Statements of the hot reads (receipts, trails), built once: building the expression cost
# as much as running it (py-spy under scripts/load).
_RECORD_BY_HASH = select(RecordRow).where(RecordRow.leaf_hash == bindparam("leaf"))
_BATCH_CONTAINING = (
    select(BatchRow)
    .where(BatchRow.log == bindparam("log_name"), BatchRow.first_position <= bindparam("position"))
    .order_by(BatchRow.first_position.desc())
    .limit(1)
)
_TRAIL_RECORDS = (
    select(RecordRow)
    .where(RecordRow.log == bindparam("log_name"), RecordRow.subject == bindparam("subject"))
    .order_by(RecordRow.seq)
)


def record_by_hash(session: Session, leaf_hash: bytes) -> RecordRow | None:
    return session.scalars(_RECORD_BY_HASH, {"leaf": leaf_hash}).one_or_none()


def trail_records(session: Session, log: str, subject: str) -> list[RecordRow]:
    """A trail's records in seq order."""
    return list(session.scalars(_TRAIL_RECORDS, {"log_name": log, "subject": subject}))


def leaf_hashes_in_range(session: Session, log: str, first: int, size: int) -> list[bytes]:
    rows = session.execute(
        select(RecordRow.position, RecordRow.leaf_hash)
        .where(RecordRow.log == log, RecordRow.position >= first, RecordRow.position < first + size)
        .order_by(RecordRow.position)
    ).all()
    if len(rows) != size or (rows and rows[0].position != first):
        raise LookupError(f"log {log} is missing records in positions {first}..{first + size - 1}")
    return [row.leaf_hash for row in rows]


def oldest_record_time_from(session: Session, log: str, position: int) -> datetime | None:
    return session.scalars(
        select(RecordRow.accepted_at).where(RecordRow.log == log, RecordRow.position == position)
    ).one_or_none()


def batch(session: Session, log: str, number: int) -> BatchRow | None:
    return session.get(BatchRow, (log, number))


def batch_containing(session: Session, log: str, position: int) -> BatchRow | None:
    return session.scalars(_BATCH_CONTAINING, {"log_name": log, "position": position}).one_or_none()


def last_batch(session: Session, log: str) -> BatchRow | None:
    return session.scalars(
        select(BatchRow).where(BatchRow.log == log).order_by(BatchRow.number.desc()).limit(1)
    ).one_or_none()


def oldest_unanchored_batch(session: Session, log: str) -> BatchRow | None:
    return session.scalars(
        select(BatchRow)
        .where(BatchRow.log == log, BatchRow.state != "anchored")
        .order_by(BatchRow.number)
        .limit(1)
    ).one_or_none()


def last_anchored_batch(session: Session, log: str) -> BatchRow | None:
    return session.scalars(
        select(BatchRow)
        .where(BatchRow.log == log, BatchRow.state == "anchored")
        .order_by(BatchRow.number.desc())
        .limit(1)
    ).one_or_none()


def get_suggestion(session: Session, tracking_code: str) -> SuggestionRow | None:
    return session.get(SuggestionRow, tracking_code)


_SUGGESTION = select(SuggestionRow).where(SuggestionRow.tracking_code == bindparam("code"))


def suggestion(
    session: Session, tracking_code: str, *, for_update: bool = False
) -> SuggestionRow | None:
    """A suggestion's row (locked until the transaction ends with ``for_update``)."""
    query = _SUGGESTION.with_for_update() if for_update else _SUGGESTION
    return session.scalars(query, {"code": tracking_code}).one_or_none()


_INSERT_SUGGESTION = insert(SuggestionRow.__table__)


def insert_suggestion(session: Session, **values: object) -> None:
    """A new suggestion's summary row, as a Core insert: an ORM flush of the one row cost as
    much CPU as the whole record append (profiled under scripts/load)."""
    session.connection().execute(_INSERT_SUGGESTION, values)


_SUGGESTIONS = SuggestionRow.__table__
_LOCKED_SUGGESTION = (
    select(_SUGGESTIONS).where(_SUGGESTIONS.c.tracking_code == bindparam("code")).with_for_update()
)
# Every column but the key, so that one statement (compiled once) serves every transition.
_UPDATE_SUGGESTION = (
    update(_SUGGESTIONS)
    .where(_SUGGESTIONS.c.tracking_code == bindparam("code"))
    .values({c.name: bindparam(f"new_{c.name}") for c in _SUGGESTIONS.c if not c.primary_key})
)


def locked_suggestion(
    session: Session, tracking_code: str
) -> tuple[SuggestionRow | None, dict[str, Any]]:
    """A suggestion's row, locked until the transaction ends (PostgreSQL ``FOR UPDATE``;
    SQLite's write transaction is exclusive anyway), as a detached object, with the values
    read. A Core select and ``update_suggestion`` instead of an ORM load and flush: together
    they cost a quarter of the writer's time per transition (py-spy under scripts/load)."""
    found = (
        session.connection().execute(_LOCKED_SUGGESTION, {"code": tracking_code}).mappings().first()
    )
    if found is None:
        return None, {}
    stored = dict(found)
    return SuggestionRow(**stored), stored


def update_suggestion(session: Session, row: SuggestionRow, stored: dict[str, Any]) -> None:
    """Write ``row`` back when any column differs from ``stored`` (what locked_suggestion
    read)."""
    values = {name: getattr(row, name) for name in stored}
    if values != stored:
        params = {f"new_{name}": value for name, value in values.items() if name != "tracking_code"}
        session.connection().execute(_UPDATE_SUGGESTION, {"code": row.tracking_code, **params})


_INSERT_PRIVATE = insert(SuggestionPrivate.__table__)


def insert_private(session: Session, **values: object) -> None:
    session.connection().execute(_INSERT_PRIVATE, values)


_SUGGESTION_EXISTS = select(SuggestionRow.__table__.c.tracking_code).where(
    SuggestionRow.__table__.c.tracking_code == bindparam("code")
)


def suggestion_exists(session: Session, tracking_code: str) -> bool:
    """Whether a tracking code is taken: one Core query, no ORM load (every submission asks)."""
    found = session.connection().execute(_SUGGESTION_EXISTS, {"code": tracking_code}).first()
    return found is not None


def worker_statuses(session: Session) -> Sequence[WorkerStatus]:
    return session.scalars(select(WorkerStatus).order_by(WorkerStatus.log)).all()


def upsert_worker_status(
    session: Session, log: str, worker_id: str, state: str, detail: str | None, at: datetime
) -> None:
    row = session.get(WorkerStatus, log)
    if row is None:
        session.add(
            WorkerStatus(log=log, worker_id=worker_id, state=state, detail=detail, heartbeat_at=at)
        )
    else:
        row.worker_id, row.state, row.detail, row.heartbeat_at = worker_id, state, detail, at
