"""All SQL of the ledger store. Functions take a session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.db import DriverReader, DriverStatement, deferred_writes
from ledger.models import (
    Attachment,
    BatchRow,
    LogHead,
    RateWindow,
    RecordRow,
    Redaction,
    SuggestionPrivate,
    SuggestionRow,
    TrailHead,
    WorkerStatus,
    table_of,
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


# The append path runs these for every record: compiled once per dialect and run on the
# driver's cursor (ledger.db.DriverStatement), so a write costs a few statements and no ORM
# unit of work or Core execution context.
_LOG_HEADS = table_of(LogHead)
_TRAIL_HEADS = table_of(TrailHead)
_RECORDS = table_of(RecordRow)
_CLAIM_POSITION = DriverStatement(
    update(_LOG_HEADS)
    .where(_LOG_HEADS.c.log == bindparam("log_name"))
    .values(next_position=_LOG_HEADS.c.next_position + literal_column("1"))
    .returning(_LOG_HEADS.c.next_position - literal_column("1"))
)
_TRAIL_HEAD = DriverStatement(
    select(_TRAIL_HEADS.c.next_seq, _TRAIL_HEADS.c.last_leaf_hash, _TRAIL_HEADS.c.last_at).where(
        _TRAIL_HEADS.c.log == bindparam("log_name"),
        _TRAIL_HEADS.c.subject == bindparam("subject_name"),
    )
)
_RECORD_COLUMNS = [
    "log",
    "position",
    "subject",
    "seq",
    "type",
    "leaf_hash",
    "canonical",
    "accepted_at",
]
_INSERT_RECORD = DriverStatement(
    insert(_RECORDS).inline(), column_keys=_RECORD_COLUMNS, deferrable=True
)
_TRAIL_COLUMNS = ["log", "subject", "next_seq", "last_leaf_hash", "last_at"]
_INSERT_TRAIL = DriverStatement(
    insert(_TRAIL_HEADS).inline(), column_keys=_TRAIL_COLUMNS, deferrable=True
)
_UPDATE_TRAIL = DriverStatement(
    update(_TRAIL_HEADS)
    .where(
        _TRAIL_HEADS.c.log == bindparam("log_name"),
        _TRAIL_HEADS.c.subject == bindparam("subject_name"),
    )
    .values(
        next_seq=bindparam("next_seq"),
        last_leaf_hash=bindparam("last_leaf_hash"),
        last_at=bindparam("last_at"),
    ),
    deferrable=True,
)


class TrailEnd(NamedTuple):
    """Where a trail's next record links to."""

    next_seq: int
    last_leaf_hash: bytes
    last_at: datetime


_SET_POSITION = DriverStatement(
    update(_LOG_HEADS)
    .where(_LOG_HEADS.c.log == bindparam("log_name"))
    .values(next_position=bindparam("next_position")),
    deferrable=True,
)


def claim_position(session: Session, log: str) -> int:
    """Take the log's next position: ``UPDATE … RETURNING``, which also row-locks the head.

    In a transaction that defers writes (a group commit, ``ledger.db.deferring``), the
    first claim of each log does that and later ones count on from it (the row is locked
    until the COMMIT, so nobody else can move it meanwhile) and queue the new value."""
    writes = deferred_writes(session)
    if writes is not None and log in writes.positions:
        position = writes.positions[log]
        writes.positions[log] = position + 1
        _SET_POSITION.run(session, {"log_name": log, "next_position": position + 1})
        return position
    rows = _CLAIM_POSITION.run(session, {"log_name": log})
    if not rows:
        raise LookupError(f"unknown log {log!r}")
    position = int(rows[0][0])
    if writes is not None:
        writes.positions[log] = position + 1
    return position


def trail_head(session: Session, log: str, subject: str) -> TrailEnd | None:
    rows = _TRAIL_HEAD.run(session, {"log_name": log, "subject_name": subject})
    return TrailEnd(*rows[0]) if rows else None


def insert_record(session: Session, **values: object) -> None:
    _INSERT_RECORD.run(session, values)


def advance_trail(
    session: Session, log: str, subject: str, next_seq: int, leaf: bytes, at: datetime, *, new: bool
) -> None:
    values = {"next_seq": next_seq, "last_leaf_hash": leaf, "last_at": at}
    if new:
        _INSERT_TRAIL.run(session, {"log": log, "subject": subject, **values})
    else:
        _UPDATE_TRAIL.run(session, {"log_name": log, "subject_name": subject, **values})


def all_log_heads(session: Session) -> Sequence[LogHead]:
    return session.scalars(select(LogHead).order_by(LogHead.log)).all()


def add(session: Session, *rows: object) -> None:
    session.add_all(rows)


# The hot reads (trails, receipts) as driver statements too, giving plain tuples: an ORM
# load cost as much as the rest of the request (py-spy under scripts/load). They run in a
# Session (writes, the worker, the portal) or on a reader (ledger.db.reading: the API).
ReadTarget = Session | DriverReader


class StoredRecord(NamedTuple):
    """A stored record (the ``records`` row), as the hot reads give it."""

    id: int
    log: str
    position: int
    subject: str
    seq: int
    type: str
    leaf_hash: bytes
    canonical: bytes
    accepted_at: datetime


class StoredBatch(NamedTuple):
    """A sealed batch (the ``batches`` row but its raw transaction), as the hot reads give it."""

    log: str
    number: int
    first_position: int
    size: int
    root: bytes
    state: str
    sealed_at: datetime
    chain_id: int | None
    contract: str | None
    tx_hash: str | None
    nonce: int | None
    sent_at: datetime | None
    block_number: int | None
    gas_used: int | None
    anchored_at: datetime | None
    last_error: str | None
    log_root: bytes | None
    frontier: bytes | None

    @property
    def end(self) -> int:
        return self.first_position + self.size


_BATCHES = table_of(BatchRow)
_RECORD_FIELDS = [_RECORDS.c[name] for name in StoredRecord._fields]
_BATCH_FIELDS = [_BATCHES.c[name] for name in StoredBatch._fields]
_RECORD_BY_HASH = DriverStatement(
    select(*_RECORD_FIELDS).where(_RECORDS.c.leaf_hash == bindparam("leaf"))
)
_BATCH_CONTAINING = DriverStatement(
    select(*_BATCH_FIELDS)
    .where(
        _BATCHES.c.log == bindparam("log_name"), _BATCHES.c.first_position <= bindparam("position")
    )
    .order_by(_BATCHES.c.first_position.desc())
    .limit(1)
)
_TRAIL_RECORDS = DriverStatement(
    select(*_RECORD_FIELDS)
    .where(_RECORDS.c.log == bindparam("log_name"), _RECORDS.c.subject == bindparam("subject"))
    .order_by(_RECORDS.c.seq)
)
_LEAVES_IN_RANGE = DriverStatement(
    select(_RECORDS.c.position, _RECORDS.c.leaf_hash)
    .where(
        _RECORDS.c.log == bindparam("log_name"),
        _RECORDS.c.position >= bindparam("first"),
        _RECORDS.c.position < bindparam("end"),
    )
    .order_by(_RECORDS.c.position)
)
_REDACTIONS = table_of(Redaction)
_REDACTION = DriverStatement(
    select(_REDACTIONS.c.at, _REDACTIONS.c.reason).where(
        _REDACTIONS.c.leaf_hash == bindparam("leaf")
    )
)


def record_by_hash(target: ReadTarget, leaf_hash: bytes) -> StoredRecord | None:
    rows = _RECORD_BY_HASH.run(target, {"leaf": leaf_hash})
    return StoredRecord(*rows[0]) if rows else None


def trail_records(target: ReadTarget, log: str, subject: str) -> list[StoredRecord]:
    """A trail's records in seq order."""
    return [
        StoredRecord(*row)
        for row in _TRAIL_RECORDS.run(target, {"log_name": log, "subject": subject})
    ]


def leaf_hashes_in_range(target: ReadTarget, log: str, first: int, size: int) -> list[bytes]:
    rows = _LEAVES_IN_RANGE.run(target, {"log_name": log, "first": first, "end": first + size})
    if len(rows) != size or (rows and rows[0][0] != first):
        raise LookupError(f"log {log} is missing records in positions {first}..{first + size - 1}")
    return [leaf for _position, leaf in rows]


def redaction_of(target: ReadTarget, leaf_hash: bytes) -> tuple[str, str] | None:
    """(at, reason) of a record's redaction (PROTOCOL §7), or None."""
    rows = _REDACTION.run(target, {"leaf": leaf_hash})
    return (rows[0][0], rows[0][1]) if rows else None


def oldest_record_time_from(session: Session, log: str, position: int) -> datetime | None:
    return session.scalars(
        select(RecordRow.accepted_at).where(RecordRow.log == log, RecordRow.position == position)
    ).one_or_none()


def batch(session: Session, log: str, number: int) -> BatchRow | None:
    return session.get(BatchRow, (log, number))


def batch_containing(target: ReadTarget, log: str, position: int) -> StoredBatch | None:
    """The batch that starts at or before ``position`` (it holds the position if it is
    large enough)."""
    rows = _BATCH_CONTAINING.run(target, {"log_name": log, "position": position})
    return StoredBatch(*rows[0]) if rows else None


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


def anchored_batch_ending_at(session: Session, log: str, size: int) -> BatchRow | None:
    """The anchored batch of ``log`` after which the log has ``size`` entries (version 2: the
    ``size`` its anchor carries), if there is one."""
    return session.scalars(
        select(BatchRow).where(
            BatchRow.log == log,
            BatchRow.state == "anchored",
            BatchRow.first_position + BatchRow.size == size,
        )
    ).first()


def get_suggestion(session: Session, tracking_code: str) -> SuggestionRow | None:
    return session.get(SuggestionRow, tracking_code)


_SUGGESTION_STATE = DriverStatement(
    select(table_of(SuggestionRow).c.state).where(
        table_of(SuggestionRow).c.tracking_code == bindparam("code")
    )
)


def suggestion_state(target: ReadTarget, tracking_code: str) -> str | None:
    """A suggestion's current state, or None when there is no such suggestion."""
    rows = _SUGGESTION_STATE.run(target, {"code": tracking_code})
    return str(rows[0][0]) if rows else None


_SUGGESTION = select(SuggestionRow).where(SuggestionRow.tracking_code == bindparam("code"))


def suggestion(
    session: Session, tracking_code: str, *, for_update: bool = False
) -> SuggestionRow | None:
    """A suggestion's row (locked until the transaction ends with ``for_update``)."""
    query = _SUGGESTION.with_for_update() if for_update else _SUGGESTION
    return session.scalars(query, {"code": tracking_code}).one_or_none()


_SUGGESTIONS = table_of(SuggestionRow)
_SUGGESTION_COLUMNS = [c.name for c in _SUGGESTIONS.c]
_INSERT_SUGGESTION = DriverStatement(
    insert(_SUGGESTIONS).inline(), column_keys=_SUGGESTION_COLUMNS, deferrable=True
)
# What a column not given gets: the model's default, else NULL (as a Core insert would do).
_SUGGESTION_DEFAULTS: dict[str, Any] = {
    c.name: getattr(c.default, "arg", None)
    if c.default is not None and c.default.is_scalar
    else None
    for c in _SUGGESTIONS.c
}


def insert_suggestion(session: Session, **values: object) -> None:
    """A new suggestion's summary row."""
    _INSERT_SUGGESTION.run(session, _SUGGESTION_DEFAULTS | values)


_LOCKED_SUGGESTION = DriverStatement(
    select(*_SUGGESTIONS.c)
    .where(_SUGGESTIONS.c.tracking_code == bindparam("code"))
    .with_for_update()
)
# Every column but the key, so that one statement (compiled once) serves every transition.
_UPDATE_SUGGESTION = DriverStatement(
    update(_SUGGESTIONS)
    .where(_SUGGESTIONS.c.tracking_code == bindparam("code"))
    .values({c.name: bindparam(f"new_{c.name}") for c in _SUGGESTIONS.c if not c.primary_key}),
    deferrable=True,
)


def locked_suggestion(
    session: Session, tracking_code: str
) -> tuple[SuggestionRow | None, dict[str, Any]]:
    """A suggestion's row, locked until the transaction ends (PostgreSQL ``FOR UPDATE``;
    SQLite's write transaction is exclusive anyway), as a detached object, with the values
    read. Not an ORM load and flush: with ``update_suggestion`` they cost a quarter of the
    writer's time per transition (py-spy under scripts/load)."""
    rows = _LOCKED_SUGGESTION.run(session, {"code": tracking_code})
    if not rows:
        return None, {}
    stored = dict(zip(_SUGGESTION_COLUMNS, rows[0], strict=True))
    return SuggestionRow(**stored), stored


def update_suggestion(session: Session, row: SuggestionRow, stored: dict[str, Any]) -> None:
    """Write ``row`` back when any column differs from ``stored`` (what locked_suggestion
    read)."""
    values = {name: getattr(row, name) for name in stored}
    if values != stored:
        params = {f"new_{name}": value for name, value in values.items() if name != "tracking_code"}
        _UPDATE_SUGGESTION.run(session, {"code": row.tracking_code, **params})


_PRIVATE_COLUMNS = ["tracking_code", "contact", "text"]
_INSERT_PRIVATE = DriverStatement(
    insert(table_of(SuggestionPrivate)).inline(), column_keys=_PRIVATE_COLUMNS, deferrable=True
)


def insert_private(session: Session, **values: object) -> None:
    _INSERT_PRIVATE.run(session, values)


_SUGGESTION_EXISTS = DriverStatement(
    select(_SUGGESTIONS.c.tracking_code).where(_SUGGESTIONS.c.tracking_code == bindparam("code"))
)


def suggestion_exists(session: Session, tracking_code: str) -> bool:
    """Whether a tracking code is taken (every submission asks)."""
    return bool(_SUGGESTION_EXISTS.run(session, {"code": tracking_code}))


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


# -- attachments: which a record cites, which nobody does ----------------------------------------

_ATTACHMENTS = table_of(Attachment)


def mark_attachments_cited(
    session: Session, hashes: Sequence[str], at: datetime, suggestion: str
) -> dict[str, str | None]:
    """Mark the attachments ``hashes`` as cited by a record of ``suggestion``: the first
    citation's time is kept, and a file cited for the first time becomes ``suggestion``'s.
    Answers, for each of them that exists, the suggestion it belongs to (None: cited before
    that was recorded, by a suggestion migration 0007 could not tell). The rows stay locked
    until the transaction ends, so the clean-up cannot remove one under a record being
    written, and two records cannot both be the first to cite one."""
    if not hashes:
        return {}
    first_citation = _ATTACHMENTS.c.referenced_at.is_(None)
    rows = session.execute(
        update(_ATTACHMENTS)
        .where(_ATTACHMENTS.c.sha256.in_(list(hashes)))
        .values(
            referenced_at=func.coalesce(
                _ATTACHMENTS.c.referenced_at, literal(at, _ATTACHMENTS.c.referenced_at.type)
            ),
            # SET sees the row as it was: only a first citation binds the file
            suggestion=case(
                (first_citation, literal(suggestion, _ATTACHMENTS.c.suggestion.type)),
                else_=_ATTACHMENTS.c.suggestion,
            ),
        )
        .returning(_ATTACHMENTS.c.sha256, _ATTACHMENTS.c.suggestion)
    )
    return {sha: owner for sha, owner in rows}


def delete_uncited_attachments(session: Session, uploaded_before: datetime) -> list[str]:
    """Delete the rows of the attachments no record cites, last uploaded before
    ``uploaded_before``; their hashes."""
    rows = session.execute(
        delete(_ATTACHMENTS)
        .where(
            _ATTACHMENTS.c.referenced_at.is_(None),
            _ATTACHMENTS.c.created_at < uploaded_before,
        )
        .returning(_ATTACHMENTS.c.sha256)
    )
    return sorted(row[0] for row in rows)


def existing_attachments(session: Session, hashes: Sequence[str]) -> set[str]:
    """Which of ``hashes`` have an attachment row."""
    found: set[str] = set()
    for start in range(0, len(hashes), 500):  # a bounded IN list (SQLite caps parameters)
        chunk = list(hashes[start : start + 500])
        found.update(
            session.scalars(select(_ATTACHMENTS.c.sha256).where(_ATTACHMENTS.c.sha256.in_(chunk)))
        )
    return found


# -- rate limits ------------------------------------------------------------------------------

_RATE_WINDOWS = table_of(RateWindow)


def lock_rate_window(session: Session, scope: str, client: str, at: datetime) -> str:
    """The hits (JSON) of ``client`` under ``scope``; its row is made when missing and stays
    locked until the transaction ends (``INSERT … ON CONFLICT DO UPDATE`` locks the row on
    PostgreSQL; SQLite serialises write transactions), so that two processes never both count
    the last allowed hit."""
    dialect = session.get_bind().dialect.name
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new = insert_(_RATE_WINDOWS).values(scope=scope, client=client, hits="[]", touched_at=at)
    upsert = new.on_conflict_do_update(
        index_elements=[_RATE_WINDOWS.c.scope, _RATE_WINDOWS.c.client],
        set_={"touched_at": new.excluded.touched_at},
    ).returning(_RATE_WINDOWS.c.hits)
    return str(session.execute(upsert).scalar_one())


def store_rate_hits(session: Session, scope: str, client: str, hits: str, at: datetime) -> None:
    session.execute(
        update(_RATE_WINDOWS)
        .where(_RATE_WINDOWS.c.scope == scope, _RATE_WINDOWS.c.client == client)
        .values(hits=hits, touched_at=at)
    )


def forget_rate_windows(session: Session, touched_before: datetime) -> int:
    """Delete the windows of clients not seen since ``touched_before``; how many."""
    result = session.execute(
        delete(_RATE_WINDOWS).where(_RATE_WINDOWS.c.touched_at < touched_before)
    )
    return int(getattr(result, "rowcount", 0) or 0)
