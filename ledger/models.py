"""SQLAlchemy models of the ledger store.

Records are append-only: a record row is written once and never updated or deleted (the
migration installs triggers that refuse it). Everything that changes over time — which
batch a record is in, whether a batch is anchored — lives in other tables. A batch covers a
contiguous range of positions in its log, so sealing never has to touch a record row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Times go in as UTC and always come out timezone-aware UTC, on every backend.

    SQLite keeps no time zone, so without this every reader would have to re-attach UTC to
    what it reads; here it is done once, where the database is crossed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def table_of(model: type[Base]) -> Table:
    """A model's table, typed as the Table it is (for Core statements)."""
    return cast(Table, model.__table__)


class Base(DeclarativeBase):
    pass


class LogHead(Base):
    """One row per log: the lock that serialises appends and the next free position."""

    __tablename__ = "log_heads"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    next_position: Mapped[int] = mapped_column(BigInteger, default=0)
    sealed_until: Mapped[int] = mapped_column(BigInteger, default=0)  # first unsealed position
    # How many entries the log's tree (``tree_nodes``, PROTOCOL §8) covers: sealed_until once
    # the sealer has caught up (a store older than the tree catches up at its next seal).
    tree_size: Mapped[int] = mapped_column(BigInteger, default=0)
    # How many entries the log's map of trail heads (PROTOCOL §10, ``map_nodes``) covers:
    # the index of the last batch's ``ledger.map_head`` record; ``map_trails``, its pairs.
    map_until: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    map_trails: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class TreeNode(Base):
    """One complete subtree of a log's growing tree (PROTOCOL §8, ``core.tlog``): ``level``
    >= 1, covering entries ``[index * 2**level, (index + 1) * 2**level)``; written once, when
    the sealer seals its last entry. Level 0 (the leaf hashes) are the records' own
    ``leaf_hash``, not repeated here."""

    __tablename__ = "tree_nodes"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    index: Mapped[int] = mapped_column("idx", BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class MapNode(Base):
    """One stored node of a log's map of trail heads (PROTOCOL §10, ``core.trailmap``) as of
    the last sealed batch: at ``depth``, under the keys whose first ``depth`` bits are
    ``prefix`` (big-endian, in ``ceil(depth / 8)`` bytes). A terminal carries its ``pair``
    (key || value); ``batch`` is the batch that wrote this version."""

    __tablename__ = "map_nodes"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    depth: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    prefix: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    batch: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    pair: Mapped[bytes | None] = mapped_column(LargeBinary(72), nullable=True)


class MapNodeVersion(Base):
    """Every version of every map node, by the batch that wrote it: the map of batch b is,
    at each position, the latest version written by a batch <= b."""

    __tablename__ = "map_node_versions"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    depth: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    prefix: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    pair: Mapped[bytes | None] = mapped_column(LargeBinary(72), nullable=True)


class TrailHead(Base):
    """The last record of each trail (log, subject): where the next record links to."""

    __tablename__ = "trail_heads"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(160), primary_key=True)
    next_seq: Mapped[int] = mapped_column(Integer)
    last_leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RecordRow(Base):
    """A record exactly as hashed: its canonical bytes and leaf hash. Never updated."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("log", "position", name="uq_records_log_position"),
        UniqueConstraint("log", "subject", "seq", name="uq_records_trail_seq"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    log: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(160))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BatchRow(Base):
    """A sealed batch: positions [first_position, first_position + size) of one log.

    state: ``sealed`` (root fixed, nothing sent), ``sent`` (signed transaction stored and
    broadcast, receipt not yet seen), ``anchored`` (receipt seen, root on chain).
    """

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("log", "first_position", name="uq_batches_log_first_position"),
        Index("ix_batches_state", "state"),
    )

    log: Mapped[str] = mapped_column(String(32), ForeignKey("log_heads.log"), primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    first_position: Mapped[int] = mapped_column(BigInteger)
    size: Mapped[int] = mapped_column(BigInteger)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The root of the whole log's tree of size first_position + size (PROTOCOL §8, the root a
    # version 2 anchor carries); None for batches sealed before the tree existed.
    log_root: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    # The hashes of core.tlog.frontier(first_position), largest first, concatenated: the tree
    # before the batch, from which the batch's receipts and export are built.
    frontier: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="sealed")
    sealed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chain_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    contract: Mapped[str | None] = mapped_column(String(42), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    raw_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    nonce: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    anchored_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def end(self) -> int:
        """The log's size after this batch: what a version 2 anchor carries as ``size``."""
        return self.first_position + self.size

    @property
    def anchored_root(self) -> bytes:
        """What a version 2 anchor of this batch carries as ``root`` (PROTOCOL §8)."""
        if self.log_root is None:
            raise LookupError(
                f"batch {self.number} of log {self.log} has no log root yet (a store older than "
                "the log trees: `civic-ledger reanchor` computes it)"
            )
        return bytes(self.log_root)


class SuggestionRow(Base):
    """The current state of a suggestion, derived from its trail; the trail is the truth.

    Holds what the workflow, the listings and the statistics need without replaying trails.
    No personal data: contact details and confidential text live encrypted in
    ``suggestion_private``.
    """

    __tablename__ = "suggestions"

    tracking_code: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200), default="")
    category: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    citizen_token_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True)
    submitter_role: Mapped[str] = mapped_column(String(16), default="citizen")
    submitter_id: Mapped[str] = mapped_column(String(64), default="")
    deputy_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lead_office: Mapped[str | None] = mapped_column(String(32), nullable=True)
    offices: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list, lead first
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    first_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    answered_on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reply_category: Mapped[str | None] = mapped_column(String(1), nullable=True)
    last_level: Mapped[str | None] = mapped_column(String(24), nullable=True)
    key_supervision: Mapped[bool] = mapped_column(Boolean, default=False)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    merged_into: Mapped[str | None] = mapped_column(String(32), nullable=True)

    @property
    def office_list(self) -> list[str]:
        return json.loads(self.offices) if self.offices else []


class SuggestionPrivate(Base):
    """Personal data and confidential text, encrypted (AES-GCM) with the PII key."""

    __tablename__ = "suggestion_private"

    tracking_code: Mapped[str] = mapped_column(
        String(32), ForeignKey("suggestions.tracking_code"), primary_key=True
    )
    contact: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    text: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AccessReason(Base):
    """Why a ``pii.read`` record's reader read, sealed with the PII key (AES-GCM, bound to
    the record's hash); the record carries only a salted commitment to it. For inspectors."""

    __tablename__ = "access_reasons"

    record_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Account(Base):
    """A staff, deputy, office, inspector or admin account. The bearer token is stored only
    as its SHA-256; the name never enters a record (records carry the account id)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    office: Mapped[str | None] = mapped_column(String(32), nullable=True)
    district: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    token_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    public_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Attachment(Base):
    """A stored file (a photo of the problem, a reply document), named by its SHA-256.

    ``referenced_at`` is set when the first record citing the file is written; a file no
    record cites is removed once ``created_at`` (its last upload) is older than the grace
    period (``ledger.attachments.remove_uncited``). ``suggestion`` is the suggestion whose
    record cited it first: it belongs to that one alone, and who may read it follows from it
    (``ledger.suggestions.may_read_attachment``). ``public``: anyone may read it (no route
    sets it yet; docs/SECURITY.md, "Attachments")."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_unreferenced", "referenced_at", "created_at"),)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))
    uploaded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    referenced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    suggestion: Mapped[str | None] = mapped_column(String(32), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)


class RateWindow(Base):
    """The accepted hits of one client address under one limit (``ledger.ratelimit``), kept
    in the shared database so that every process of the service counts the same hits."""

    __tablename__ = "rate_windows"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    # JSON list of the hits inside the window, as Unix times (ms), oldest first
    hits: Mapped[str] = mapped_column(Text)
    touched_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Redaction(Base):
    """PROTOCOL §7: this record's content was erased; its leaf hash stays proven."""

    __tablename__ = "redactions"

    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    at: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64))


class WorkerStatus(Base):
    """Heartbeat of the anchoring worker, per log, for /healthz."""

    __tablename__ = "worker_status"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    worker_id: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WitnessCosignatureRow(Base):
    """A witness's cosignature lines on one anchored batch's checkpoint (PROTOCOL §9), as the
    witness answered ``add-checkpoint`` (C2SP tlog-witness) and the pusher verified them with
    the witness's key (``ledger.witnesses``). ``witness`` and ``key_id`` name the key."""

    __tablename__ = "witness_cosignatures"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    batch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(4), primary_key=True)
    lines: Mapped[str] = mapped_column(Text)  # each ``— <name> <base64>\n``
    cosigned_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WitnessState(Base):
    """What a witness (its key) holds of one log, as the pusher knows it: ``size``, the tree
    size it last cosigned for us (the ``old`` of the next ``add-checkpoint``); ``conflict``,
    the size it reported that is none of our anchored sizes (``conflict_size``) or a refusal
    the pusher does not retry blindly; ``last_error``, the last failure, for /healthz."""

    __tablename__ = "witness_state"

    log: Mapped[str] = mapped_column(String(32), primary_key=True)
    witness: Mapped[str] = mapped_column(String(255), primary_key=True)
    key_id: Mapped[bytes] = mapped_column(LargeBinary(4), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    conflict: Mapped[str | None] = mapped_column(Text, nullable=True)
    conflict_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
