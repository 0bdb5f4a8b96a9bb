"""Each log's growing tree in the store (PROTOCOL §8): the node table that ``core.tlog`` reads.

The tree of a log is the RFC 9162 tree over all its entries in order. What is stored is every
complete subtree of level 1 and up (``tree_nodes``, one row each, written once); the level 0
nodes are the records' leaf hashes, read from ``records`` by position. ``core.tlog`` names
the O(log n) nodes any root, inclusion proof or consistency proof needs, and each is served
with two indexed queries (one per table) whatever the size of the log.

The sealer extends the tree with every batch it seals, in the batch's transaction
(``extend``), and stores the whole log's root in the batch row (``batches.log_root``): the
root a version 2 anchor carries (§8). A store written before the tree existed is caught up at
its next seal, from the records (``log_heads.tree_size`` says how far the tree reaches).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core import tlog
from core.tlog import Node
from ledger.models import BatchRow, LogHead, RecordRow, TreeNode, table_of

# Leaves read per step when a store older than the tree catches up.
CATCH_UP_STEP = 50_000


class TreeUnavailable(LookupError):
    """The tree does not (yet) reach the size asked for."""


def read_nodes(session: Session, log: str, nodes: Sequence[Node]) -> list[bytes]:
    """The hashes of ``nodes`` (a ``core.tlog.HashReader`` for one log), in order: one
    statement for the leaves (``records``) and one for the inner nodes (``tree_nodes``).

    Plain SQL on the driver: building the SQLAlchemy expression of 20-odd lookups cost more
    than running it, and neither an OR of the lookups nor a row-value IN is planned by SQLite
    as point lookups of the primary key (it scanned every node of the log); a UNION ALL of
    point lookups is, on SQLite and PostgreSQL alike."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    found: dict[Node, bytes] = {}
    leaves = sorted({node.index for node in nodes if node.level == 0})
    if leaves:
        # Only placeholders are formatted in; every value is a bound parameter.
        sql = (
            f"SELECT position, leaf_hash FROM records WHERE log = {mark} "  # noqa: S608
            f"AND position IN ({', '.join([mark] * len(leaves))})"
        )
        rows = connection.exec_driver_sql(sql, (log, *leaves))
        found.update({Node(0, position): bytes(leaf) for position, leaf in rows})
    inner = sorted({node for node in nodes if node.level > 0})
    if inner:
        one = (
            f"SELECT level, idx, hash FROM tree_nodes "  # noqa: S608 (placeholders only)
            f"WHERE log = {mark} AND level = {mark} AND idx = {mark}"
        )
        sql = " UNION ALL ".join([one] * len(inner))
        params = tuple(value for n in inner for value in (log, n.level, n.index))
        stored = connection.exec_driver_sql(sql, params)
        found.update({Node(level, index): bytes(value) for level, index, value in stored})
    missing = [node for node in nodes if node not in found]
    if missing:
        raise TreeUnavailable(f"log {log}: the tree has no node {missing[0]} (not sealed yet?)")
    return [found[node] for node in nodes]


def _reader(session: Session, log: str) -> tlog.HashReader:
    return lambda nodes: read_nodes(session, log, nodes)


def _append(
    session: Session, head: LogHead, leaves: Sequence[bytes], read: tlog.HashReader
) -> bytes:
    """Append ``leaves`` to the log's tree (they follow its ``tree_size`` entries): store the
    subtrees they complete and return the new root. ``read`` serves the tree's frontier."""
    appended = tlog.append_leaves(head.tree_size, leaves, read)
    inner = [
        {"log": head.log, "level": node.level, "idx": node.index, "hash": value}
        for node, value in appended.nodes
        if node.level > 0
    ]
    if inner:
        session.execute(insert(table_of(TreeNode)), inner)
    head.tree_size = appended.size
    return appended.root


def extend(session: Session, head: LogHead, end: int) -> bytes:
    """Extend the log's tree to ``end`` entries and return the root of the tree of that size,
    reading the entries the tree does not cover yet from ``records`` (every one of them, once,
    for a store older than the tree). ``head`` is the log's head row, locked by the caller's
    transaction (the sealer's), so no one else extends the tree meanwhile."""
    size = head.tree_size
    if end < size:
        raise ValueError(f"log {head.log}: the tree already covers {size} entries, not {end}")
    reader = _reader(session, head.log)
    if size == end:
        return tlog.tree_root(size, reader)
    root = b""
    while size < end:
        step = min(end - size, CATCH_UP_STEP)
        leaves = list(
            session.scalars(
                select(RecordRow.leaf_hash)
                .where(
                    RecordRow.log == head.log,
                    RecordRow.position >= size,
                    RecordRow.position < size + step,
                )
                .order_by(RecordRow.position)
            )
        )
        if len(leaves) != step:
            raise TreeUnavailable(f"log {head.log} lacks records in {size}..{size + step - 1}")
        root = _append(session, head, leaves, reader)
        size = head.tree_size
    return root


def frontier_hashes(session: Session, log: str, size: int) -> bytes:
    """The hashes of ``core.tlog.frontier(size)`` (largest first), concatenated: all of the
    tree of ``size`` entries that a batch starting there needs (``batches.frontier``)."""
    _require(session, log, size)
    return b"".join(read_nodes(session, log, tlog.frontier(size)))


def seal(
    session: Session, head: LogHead, first: int, leaves: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """The tree's part in sealing ``leaves`` (the leaf hashes of entries ``first`` on, which
    the sealer has read) as a batch: extend the tree over them and return (the whole log's
    root after them, the frontier before them). The frontier is read once and serves both; a
    tree behind ``first`` (a store older than the tree) catches up from the records first."""
    if head.tree_size < first:
        extend(session, head, first)
    elif head.tree_size > first:
        raise ValueError(f"log {head.log}: the tree already covers {head.tree_size} entries")
    nodes = tlog.frontier(first)
    hashes = read_nodes(session, head.log, nodes)
    known = dict(zip(nodes, hashes, strict=True))
    log_root = _append(session, head, leaves, lambda wanted: [known[node] for node in wanted])
    return log_root, b"".join(hashes)


def backfill(session: Session, head: LogHead) -> int:
    """Give every sealed batch of the log its ``log_root`` and ``frontier`` where a store older
    than the log trees left them empty (extending the tree over every sealed entry first);
    how many batches were filled. ``head`` is locked by the caller's transaction."""
    empty = list(
        session.scalars(
            select(BatchRow)
            .where(BatchRow.log == head.log, BatchRow.log_root.is_(None))
            .order_by(BatchRow.number)
        )
    )
    if not empty:
        return 0
    extend(session, head, head.sealed_until)
    for batch in empty:
        batch.log_root = root(session, head.log, batch.first_position + batch.size)
        batch.frontier = frontier_hashes(session, head.log, batch.first_position)
    return len(empty)


def root(session: Session, log: str, size: int) -> bytes:
    """The root of the log's tree of ``size`` entries (``size`` at most the tree's size)."""
    _require(session, log, size)
    return tlog.tree_root(size, _reader(session, log))


def inclusion_proof(session: Session, log: str, index: int, size: int) -> list[bytes]:
    """RFC 9162 §2.1.3 inclusion proof of entry ``index`` in the log's tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"entry {index} is not in a tree of {size} entries")
    _require(session, log, size)
    return tlog.inclusion_proof(index, size, _reader(session, log))


def consistency_proof(session: Session, log: str, old: int, new: int) -> list[bytes]:
    """RFC 9162 §2.1.4 consistency proof from the log's tree of ``old`` entries to ``new``."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} entries (need 0 < from <= to)")
    _require(session, log, new)
    return tlog.consistency_proof(old, new, _reader(session, log))


def _require(session: Session, log: str, size: int) -> None:
    covered = session.scalar(select(LogHead.tree_size).where(LogHead.log == log))
    if covered is None or size > covered:
        raise TreeUnavailable(
            f"log {log}: the tree covers {covered or 0} sealed entries, not {size}"
        )
