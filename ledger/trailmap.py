"""Each log's map of trail heads in the store (PROTOCOL §10, ``core.trailmap``).

The sealer, holding the log's head lock, ends every batch with a ``ledger.map_head`` record:
it applies the heads of the trails that moved since the last batch to the map
(``map_nodes``, the map as of the last sealed batch, one row per stored node), keeps every
version it writes (``map_node_versions``, keyed by the batch that wrote it) and appends the
record with the new root. Every entry before the record is covered, since a batch takes every
waiting record. A proof for any batch reads the latest version of each node on the way down
that is no newer than the batch: two indexed lookups per level.

A store older than the map catches up at its next seal (``log_heads.map_until`` says how far
the map reaches; every trail head before it goes into the first map). ``rebuild`` replays a
log's entries batch by batch and writes the map again, checking each recomputed root against
the ``map_head`` record of its batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import trailmap
from core.clock import Clock, utc_now
from core.records import MAP_ACTOR, MAP_HEAD_TYPE, MAP_SUBJECT, SealedRecord
from core.trailmap import Inner, Node, Position, Terminal
from ledger import repository as repo
from ledger.db import DriverReader
from ledger.errors import NotFound
from ledger.models import BatchRow, LogHead, MapNode, MapNodeVersion, RecordRow
from ledger.repository import ReadTarget, StoredBatch, StoredRecord


class MapUnavailable(NotFound):
    """The batch asked for was sealed before the map of trail heads existed."""


def _prefix(position: Position) -> bytes:
    depth, prefix = position
    return prefix.to_bytes((depth + 7) // 8, "big")


def _node(hash_: bytes, pair: bytes | None) -> Node:
    if pair:
        return Terminal(bytes(pair[: trailmap.KEY_SIZE]), bytes(pair[trailmap.KEY_SIZE :]))
    return Inner(bytes(hash_))


def _mark(target: ReadTarget) -> str:
    dialect = target.dialect if isinstance(target, DriverReader) else target.connection().dialect
    return "?" if dialect.paramstyle == "qmark" else "%s"


def current_reader(session: Session, log: str) -> trailmap.NodeReader:
    """The map as of the last sealed batch: one indexed statement per depth asked for."""
    connection = session.connection()
    mark = _mark(session)

    def read(positions: Sequence[Position]) -> dict[Position, Node]:
        by_depth: dict[int, dict[bytes, Position]] = {}
        for position in positions:
            by_depth.setdefault(position[0], {})[_prefix(position)] = position
        found: dict[Position, Node] = {}
        for depth, prefixes in by_depth.items():
            # Only placeholders are formatted in; every value is a bound parameter.
            sql = (
                f"SELECT prefix, hash, pair FROM map_nodes WHERE log = {mark} "  # noqa: S608
                f"AND depth = {mark} AND prefix IN ({', '.join([mark] * len(prefixes))})"
            )
            for prefix, hash_, pair in connection.exec_driver_sql(sql, (log, depth, *prefixes)):
                found[prefixes[bytes(prefix)]] = _node(hash_, pair)
        return found

    return read


def reader_at(target: ReadTarget, log: str, batch: int) -> trailmap.NodeReader:
    """The map as batch ``batch`` left it: at each position, the latest version no newer."""
    mark = _mark(target)
    one = (
        "SELECT * FROM (SELECT depth, prefix, hash, pair FROM map_node_versions "  # noqa: S608
        f"WHERE log = {mark} AND depth = {mark} AND prefix = {mark} AND batch <= {mark} "
        "ORDER BY batch DESC LIMIT 1) AS v"
    )

    def read(positions: Sequence[Position]) -> dict[Position, Node]:
        if not positions:
            return {}
        wanted = {(p[0], _prefix(p)): p for p in positions}
        sql = " UNION ALL ".join(one.replace(" AS v", f" AS v{i}") for i in range(len(wanted)))
        params = tuple(v for depth, prefix in wanted for v in (log, depth, prefix, batch))
        return {
            wanted[(depth, bytes(prefix))]: _node(hash_, pair)
            for depth, prefix, hash_, pair in _rows(target, sql, params)
        }

    return read


@dataclass(frozen=True)
class Heads:
    """The trail heads that moved in a range of entries: the map's changes, and how many of
    them are trails the map did not hold (their first record is in the range)."""

    changes: dict[bytes, bytes]
    new_trails: int


def heads_in(session: Session, log: str, start: int, end: int) -> Heads:
    """The last record of each subject among entries ``[start, end)``, but the map's own."""
    rows = session.execute(
        select(RecordRow.subject, RecordRow.seq, RecordRow.leaf_hash)
        .where(RecordRow.log == log, RecordRow.position >= start, RecordRow.position < end)
        .order_by(RecordRow.position)
    )
    last: dict[str, tuple[int, bytes]] = {}
    new = 0
    for subject, seq, leaf in rows:
        if subject == MAP_SUBJECT:
            continue
        if seq == 0:
            new += 1
        last[subject] = (seq, leaf)
    return Heads(
        {
            trailmap.key_of(subject): trailmap.value_of(seq, bytes(leaf))
            for subject, (seq, leaf) in last.items()
        },
        new,
    )


_COLUMNS = "log, depth, prefix, batch, hash, pair"


def _write(session: Session, log: str, batch: int, written: Mapping[Position, Node]) -> None:
    """Store the nodes a batch wrote: over the old ones in ``map_nodes``, beside them in
    ``map_node_versions``. On the driver, in key order: a batch writes thousands of rows,
    and SQLAlchemy's parameter handling cost more than the inserts themselves."""
    if not written:
        return
    rows = sorted(
        (
            log,
            position[0],
            _prefix(position),
            batch,
            node.hash,
            node.key + node.value if isinstance(node, Terminal) else None,
        )
        for position, node in written.items()
    )
    mark = _mark(session)
    values = ", ".join([mark] * 6)
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.executemany(
        f"INSERT INTO map_nodes ({_COLUMNS}) VALUES ({values}) "  # noqa: S608
        "ON CONFLICT (log, depth, prefix) DO UPDATE SET "
        "batch = excluded.batch, hash = excluded.hash, pair = excluded.pair",
        rows,
    )
    cursor.executemany(
        f"INSERT INTO map_node_versions ({_COLUMNS}) VALUES ({values})",  # noqa: S608
        rows,
    )


def seal(session: Session, head: LogHead, batch: int, clock: Clock = utc_now) -> SealedRecord:
    """End batch ``batch`` of the log with its ``ledger.map_head`` record (PROTOCOL §10):
    bring the map up to every entry so far and append the record at the log's next position.
    ``head`` is the log's head row, locked by the sealer's transaction."""
    from ledger import service  # the ledger's append; imported late (service imports tree)

    end = head.next_position
    heads = heads_in(session, head.log, head.map_until, end)
    root, written = trailmap.update(current_reader(session, head.log), heads.changes)
    _write(session, head.log, batch, written)
    trails = head.map_trails + heads.new_trails
    sealed = service.append_record(
        session,
        log=head.log,
        type=MAP_HEAD_TYPE,
        subject=MAP_SUBJECT,
        actor=MAP_ACTOR,
        body={"batch": batch, "index": end, "map_root": root.hex(), "trails": trails},
        clock=clock,
    )
    if sealed.record["subject"] != MAP_SUBJECT:  # pragma: no cover - a programming error
        raise RuntimeError("the map head went into another trail")
    head.map_until, head.map_trails = end, trails
    return sealed


def _rows(target: ReadTarget, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain SQL on a Session's connection or on an API reader's (``ledger.db.reading``)."""
    if isinstance(target, DriverReader):
        cursor = target.dbapi.cursor()
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    return [tuple(row) for row in target.connection().exec_driver_sql(sql, params)]


def head_record_position(batch: BatchRow | StoredBatch) -> int:
    """The position of a batch's last entry, where its map head is (when it has one)."""
    return batch.first_position + batch.size - 1


def map_head_of(target: ReadTarget, batch: BatchRow | StoredBatch) -> StoredRecord | None:
    """The batch's ``ledger.map_head`` record; None for a batch sealed before the map existed
    (its last entry is not a map head)."""
    mark = _mark(target)
    rows = _rows(
        target,
        f"SELECT {', '.join(StoredRecord._fields)} FROM records "  # noqa: S608
        f"WHERE log = {mark} AND position = {mark}",
        (batch.log, head_record_position(batch)),
    )
    if not rows:
        return None
    record = StoredRecord(*rows[0])
    if record.type != MAP_HEAD_TYPE or not record.canonical:
        return None
    return record._replace(leaf_hash=bytes(record.leaf_hash), canonical=bytes(record.canonical))


def map_head_body(target: ReadTarget, batch: BatchRow | StoredBatch) -> dict[str, Any] | None:
    record = map_head_of(target, batch)
    if record is None:
        return None
    body: dict[str, Any] = json.loads(record.canonical)["body"]
    return body


@dataclass(frozen=True)
class MapAnswer:
    """A subject's map proof against the map head of an anchored batch."""

    batch: StoredBatch
    head: StoredRecord
    proof: trailmap.MapProof


def anchored_batch(target: ReadTarget, log: str, number: int | None) -> StoredBatch | None:
    """Batch ``number`` of the log if it is anchored, or its latest anchored batch (None)."""
    mark = _mark(target)
    if number is None:
        sql = (
            "SELECT first_position FROM batches WHERE log = "  # noqa: S608
            f"{mark} AND state = 'anchored' ORDER BY number DESC LIMIT 1"
        )
        rows = _rows(target, sql, (log,))
    else:
        sql = (
            "SELECT first_position FROM batches WHERE log = "  # noqa: S608
            f"{mark} AND number = {mark} AND state = 'anchored'"
        )
        rows = _rows(target, sql, (log, number))
    if not rows:
        return None
    return repo.batch_containing(target, log, rows[0][0])


def prove(target: ReadTarget, batch: StoredBatch, subject: str) -> MapAnswer:
    """The proof for ``subject`` in the map that ``batch``'s map head commits to."""
    head = map_head_of(target, batch)
    if head is None:
        raise MapUnavailable(
            f"batch {batch.number} of log {batch.log} was sealed before the map of trail heads"
        )
    body: dict[str, Any] = json.loads(head.canonical)["body"]
    proof = trailmap.prove(reader_at(target, batch.log, batch.number), trailmap.key_of(subject))
    if trailmap.proof_root(proof).hex() != body["map_root"]:
        raise RuntimeError(
            f"log {batch.log}: the stored map no longer gives batch {batch.number}'s map root"
        )
    return MapAnswer(batch, head, proof)


def rebuild(session: Session, head: LogHead) -> int:
    """Write the log's map again from its entries, batch by batch, each root checked against
    the batch's ``map_head`` record; how many map heads were replayed. ``head`` is locked by
    the caller's transaction. A root that differs is a RuntimeError naming the batch."""
    session.execute(delete(MapNode).where(MapNode.log == head.log))
    session.execute(delete(MapNodeVersion).where(MapNodeVersion.log == head.log))
    memory = trailmap.MemoryMap()
    covered, trails, replayed = 0, 0, 0
    batches = session.scalars(
        select(BatchRow).where(BatchRow.log == head.log).order_by(BatchRow.number)
    ).all()
    for batch in batches:
        body = map_head_body(session, batch)
        if body is None:
            continue
        end = head_record_position(batch)
        heads = heads_in(session, head.log, covered, end)
        root, written = trailmap.update(memory.read, heads.changes)
        memory.nodes.update(written)
        _write(session, head.log, batch.number, written)
        trails += heads.new_trails
        if root.hex() != body["map_root"] or trails != body["trails"]:
            raise RuntimeError(
                f"log {head.log}: batch {batch.number}'s map head says root {body['map_root']} "
                f"over {body['trails']} trails; its entries give {root.hex()} over {trails}"
            )
        covered, replayed = end, replayed + 1
    head.map_until, head.map_trails = covered, trails
    return replayed
