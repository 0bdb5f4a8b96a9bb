"""Rules and transactions of the ledger: appending records, receipts, anchors, health.

Services ``flush()``; the caller's unit of work commits (one transaction per request).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import tlog
from core.clock import Clock, utc_now
from core.merkle import HASH_SIZE, node_hash
from core.records import LOGS, SealedRecord, build_record, format_at, is_hex64
from ledger import checkpoints, tree
from ledger import repository as repo
from ledger import trailmap as maps
from ledger.errors import BatchNotFound, InvalidInput, RecordNotFound
from ledger.models import BatchRow, LogHead, RecordRow
from ledger.repository import ReadTarget, StoredBatch, StoredRecord


def iso(moment: datetime | None) -> str | None:
    """A stored time as PROTOCOL writes times (UTC, milliseconds, Z); None stays None."""
    if moment is None:
        return None
    return format_at(moment)


def append_record(
    session: Session,
    *,
    log: str,
    type: str,
    subject: str,
    actor: Mapping[str, str],
    body: Mapping[str, Any],
    clock: Clock = utc_now,
    new_subject: bool = False,
) -> SealedRecord:
    """Append one record to a log, linked to the end of its trail (written at once).

    Holds the log's head lock until the caller's transaction ends, so positions and the
    trail's seq/prev are assigned without races. ``new_subject``: the caller has checked in
    this transaction that the subject has no trail yet (a fresh tracking code), so its head
    is not looked up; were the caller wrong, the trail head's insert would fail.
    """
    if log not in LOGS:
        raise InvalidInput(f"unknown log {log!r}")
    # One UPDATE claims the position and holds the log's row lock until the transaction
    # ends (PostgreSQL), so positions are dense and handed out in commit order; SQLite
    # serialises write transactions anyway (BEGIN IMMEDIATE). Core statements, not ORM
    # units of work: this is the hottest path of every write.
    position = repo.claim_position(session, log)
    trail = None if new_subject else repo.trail_head(session, log, subject)
    seq, prev = (0, None) if trail is None else (trail.next_seq, trail.last_leaf_hash)
    now = clock()
    if trail is not None:
        # Times never go backwards inside a trail (PROTOCOL §5), even if the wall clock does.
        now = max(now, trail.last_at)
    sealed = build_record(
        log=log,
        type=type,
        subject=subject,
        seq=seq,
        prev=prev,
        actor=actor,
        body=body,
        now=now,
        salt=secrets.token_bytes,
    )
    repo.insert_record(
        session,
        log=log,
        position=position,
        subject=subject,
        seq=seq,
        type=type,
        leaf_hash=sealed.leaf_hash,
        canonical=sealed.canonical,
        accepted_at=now,
    )
    repo.advance_trail(session, log, subject, seq + 1, sealed.leaf_hash, now, new=trail is None)
    return sealed


def parse_record_hash(text: str) -> bytes:
    if not is_hex64(text):
        raise InvalidInput("a record hash is 64 lowercase hexadecimal characters")
    return bytes.fromhex(text)


class BatchTree:
    """What a batch's receipts and export need of its log's tree (PROTOCOL §8): the tree
    before the batch (its frontier, ``batches.frontier``) and the batch's own leaves. Every
    node of an inclusion proof in the tree of the batch's end is one of the frontier's or is
    built from it and the leaves: a left sibling wholly before the batch is a frontier node
    (it is a maximal complete subtree there), any other node lies in or straddles the batch.
    So a batch's receipts cost one read of its leaves, then nothing but hashing."""

    def __init__(self, first: int, frontier: bytes, leaves: Sequence[bytes]) -> None:
        self.first = first
        self.end = first + len(leaves)
        edge = tlog.frontier(first)
        if len(frontier) != HASH_SIZE * len(edge):
            raise RuntimeError(f"a frontier of {len(frontier)} bytes for a tree of {first}")
        self.frontier = [frontier[i : i + HASH_SIZE] for i in range(0, len(frontier), HASH_SIZE)]
        self.leaves = list(leaves)
        nodes: dict[tlog.Node, bytes] = dict(zip(edge, self.frontier, strict=True))
        nodes.update({tlog.Node(0, first + i): leaf for i, leaf in enumerate(leaves)})
        level = 0
        while True:  # every complete subtree whose two halves are known, bottom up
            parents = {node.index >> 1 for node in nodes if node.level == level}
            added = False
            for index in parents:
                left, right = tlog.Node(level, 2 * index), tlog.Node(level, 2 * index + 1)
                if left in nodes and right in nodes and right.end <= self.end:
                    nodes[tlog.Node(level + 1, index)] = node_hash(nodes[left], nodes[right])
                    added = True
            if not added and not any(node.level > level for node in nodes):
                break
            level += 1
        self.nodes = nodes
        self.root = tlog.tree_root(self.end, self.read)

    def read(self, wanted: Sequence[tlog.Node]) -> list[bytes]:
        return [self.nodes[node] for node in wanted]

    def inclusion_path(self, position: int) -> list[bytes]:
        return tlog.inclusion_proof(position, self.end, self.read)


_tree_cache: dict[tuple[str, int], BatchTree] = {}
_TREE_CACHE_MAX = 64


def batch_tree(session: ReadTarget, batch: BatchRow | StoredBatch) -> BatchTree:
    """The batch's part of its log's tree, rebuilt from the store and checked against the
    sealed log root; cached, since a sealed batch never changes."""
    key = (batch.log, batch.number)
    cached = _tree_cache.get(key)
    if cached is not None and cached.root == batch.log_root:
        return cached
    if batch.log_root is None or batch.frontier is None:
        raise RuntimeError(
            f"batch {batch.log}/{batch.number} has no log root: a store older than the log "
            "trees (`civic-ledger reanchor` computes them)"
        )
    leaves = repo.leaf_hashes_in_range(session, batch.log, batch.first_position, batch.size)
    built = BatchTree(batch.first_position, bytes(batch.frontier), leaves)
    if built.root != batch.log_root:
        raise RuntimeError(
            f"batch {batch.log}/{batch.number}: the stored records no longer give the sealed root"
        )
    if len(_tree_cache) >= _TREE_CACHE_MAX:
        _tree_cache.pop(next(iter(_tree_cache)))
    _tree_cache[key] = built
    return built


@dataclass(frozen=True)
class ReceiptPending:
    record_hash: str
    detail: str


def stored_record(session: ReadTarget, record_hash: str) -> StoredRecord:
    """The stored record with this hash; RecordNotFound when there is none."""
    row = repo.record_by_hash(session, parse_record_hash(record_hash))
    if row is None:
        raise RecordNotFound(f"no record has hash {record_hash}")
    return row


def receipt(session: ReadTarget, record_hash: str) -> dict[str, Any] | ReceiptPending:
    """PROTOCOL §4 receipt of a record, or ReceiptPending while its batch is not anchored."""
    return receipt_for(session, stored_record(session, record_hash))


def receipt_for(session: ReadTarget, row: StoredRecord) -> dict[str, Any] | ReceiptPending:
    """The receipt of a stored record already read."""
    return receipt_of(session, row, repo.batch_containing(session, row.log, row.position))


def receipts_of(
    session: ReadTarget, rows: Sequence[StoredRecord]
) -> list[dict[str, Any] | ReceiptPending]:
    """The receipts of stored records (a trail, in order): one batch lookup per batch, not
    per record, and no second lookup of the records themselves."""
    found: list[dict[str, Any] | ReceiptPending] = []
    batch: StoredBatch | None = None
    for row in rows:
        if batch is None or not (
            batch.log == row.log
            and batch.first_position <= row.position < batch.first_position + batch.size
        ):
            batch = repo.batch_containing(session, row.log, row.position)
        found.append(receipt_of(session, row, batch))
    return found


def receipt_of(
    session: ReadTarget, row: StoredRecord, batch: StoredBatch | None
) -> dict[str, Any] | ReceiptPending:
    """The receipt of a stored record, given the batch that starts at or before it."""
    record_hash = row.leaf_hash.hex()
    if batch is None or batch.first_position + batch.size <= row.position:
        return ReceiptPending(
            record_hash, "the record is stored and waits to be sealed into a batch"
        )
    if batch.state != "anchored":
        return ReceiptPending(
            record_hash, f"the record is sealed in batch {batch.number}, which is being anchored"
        )
    batch_view = batch_tree(session, batch)
    receipt: dict[str, Any] = {
        "v": 2,
        "record": json.loads(row.canonical) if row.canonical else None,
    }
    if not row.canonical:  # PROTOCOL §7: content erased, leaf hash still proven
        at, reason = repo.redaction_of(session, row.leaf_hash) or (None, None)
        receipt["leaf_hash"] = row.leaf_hash.hex()
        receipt["redaction"] = {"at": at, "reason": reason}
    return (
        receipt
        | {
            "proof": {
                "log": batch.log,
                "batch": batch.number,
                "index": row.position,  # version 2: the entry's index in the whole log
                "size": batch_view.end,
                "path": [h.hex() for h in batch_view.inclusion_path(row.position)],
                "root": batch_view.root.hex(),
            },
            "anchor": {
                "chain_id": batch.chain_id,
                "contract": batch.contract,
                "tx": batch.tx_hash,
                "block": batch.block_number,
            },
        }
        | _checkpoint_of(session, batch)
    )


def _checkpoint_of(session: ReadTarget, batch: StoredBatch) -> dict[str, str]:
    """PROTOCOL §11: a version 2 receipt may carry its batch's cosigned checkpoint (§9)."""
    keys = checkpoints.installed()
    if keys is None:
        return {}
    return {"checkpoint": checkpoints.cosigned_checkpoint(session, keys, batch)}


def _known_log(log: str) -> None:
    """BatchNotFound (404) for a log that is not one of PROTOCOL's."""
    if log not in LOGS:
        raise BatchNotFound(f"unknown log {log!r}; logs are {', '.join(sorted(LOGS))}")


def map_proof(
    target: ReadTarget, log: str, subject: str, number: int | None = None
) -> dict[str, Any]:
    """PROTOCOL §10: the proof for ``subject`` in the map of trail heads of an anchored batch
    (the latest when ``number`` is None), with the version 2 receipt of the batch's
    ``ledger.map_head`` record. A subject without a trail gets its proof of absence."""
    _known_log(log)
    batch = maps.anchored_batch(target, log, number)
    if batch is None:
        raise BatchNotFound(
            f"log {log} has no anchored batch yet"
            if number is None
            else f"log {log} has no anchored batch {number}"
        )
    answer = maps.prove(target, batch, subject)
    return {
        "log": log,
        "subject": subject,
        "batch": batch.number,
        "map_head": receipt_of(target, answer.head, batch),
        "proof": answer.proof.to_json(),
    }


def trail_map(target: ReadTarget, log: str, subject: str) -> dict[str, Any] | None:
    """The map proof of a trail as of the log's latest anchored batch, for a trail's answer;
    None while no anchored batch carries a map head."""
    try:
        return map_proof(target, log, subject)
    except (BatchNotFound, maps.MapUnavailable):
        return None


def anchored_batch(session: Session, log: str, number: int) -> dict[str, Any] | ReceiptPending:
    """The public export of one batch (version 2): the whole log's root and size after it, the
    tree before it (``first`` and ``frontier``), its anchor and its own leaf hashes in order.
    Anyone folds the frontier to batch b−1's anchored root, appends the leaves and must reach
    this root (verifier/batch.py)."""
    _known_log(log)
    batch = repo.batch(session, log, number)
    if batch is None:
        raise BatchNotFound(f"log {log} has no batch {number}")
    if batch.state != "anchored":
        return ReceiptPending("", f"batch {number} of log {log} is sealed and being anchored")
    view = batch_tree(session, batch)
    return {
        "v": 2,
        "log": log,
        "batch": number,
        "root": view.root.hex(),
        "size": view.end,
        "first": view.first,
        "frontier": [h.hex() for h in view.frontier],
        "tx": batch.tx_hash,
        "block": batch.block_number,
        "chain_id": batch.chain_id,
        "contract": batch.contract,
        "leaf_hashes": [h.hex() for h in view.leaves],
    }


def anchoring_lag(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Per log: records not yet anchored and how long the oldest of them has waited."""
    now = now or utc_now()
    result: dict[str, Any] = {}
    for head in repo.all_log_heads(session):
        anchored = repo.last_anchored_batch(session, head.log)
        anchored_until = anchored.first_position + anchored.size if anchored else 0
        waiting = head.next_position - anchored_until
        oldest = (
            repo.oldest_record_time_from(session, head.log, anchored_until) if waiting else None
        )
        result[head.log] = {
            "records": head.next_position,
            "unanchored_records": waiting,
            "unsealed_records": head.next_position - head.sealed_until,
            "anchored_batches": anchored.number + 1 if anchored else 0,
            "oldest_unanchored_age_seconds": round((now - oldest).total_seconds(), 3)
            if oldest
            else 0.0,
        }
    return result


MAX_ENTRIES = 1000


def _anchored_end(session: Session, log: str, size: int) -> None:
    """Refuse a tree size that is not the end of an anchored batch of ``log``."""
    if repo.anchored_batch_ending_at(session, log, size) is None:
        raise InvalidInput(
            f"{size} is not the size of log {log} at the end of an anchored batch "
            "(the end of batch b is its first position plus its size)"
        )


def consistency(session: Session, log: str, old: int, new: int) -> dict[str, Any]:
    """RFC 9162 §2.1.4 consistency proof between two anchored sizes of the log (PROTOCOL §8)."""
    _known_log(log)
    if not 0 < old <= new:
        raise InvalidInput(f"from must be at least 1 and at most to; got from={old}, to={new}")
    _anchored_end(session, log, old)
    _anchored_end(session, log, new)
    path = tree.consistency_proof(session, log, old, new)
    return {"log": log, "from": old, "to": new, "path": [node.hex() for node in path]}


def entries(session: Session, log: str, start: int, end: int) -> dict[str, Any]:
    """Entries ``[start, end)`` of the log, for monitors: index, leaf hash and canonical
    record (null when redacted, PROTOCOL §7). At most MAX_ENTRIES, and only sealed ones."""
    _known_log(log)
    if not 0 <= start < end or end - start > MAX_ENTRIES:
        raise InvalidInput(
            f"need 0 <= start < end and at most {MAX_ENTRIES} entries; got start={start}, end={end}"
        )
    head = session.get(LogHead, log)
    sealed = head.sealed_until if head else 0
    if end > sealed:
        raise InvalidInput(f"log {log} has {sealed} sealed entries; end={end} is beyond them")
    rows = session.execute(
        select(RecordRow.position, RecordRow.leaf_hash, RecordRow.canonical)
        .where(RecordRow.log == log, RecordRow.position >= start, RecordRow.position < end)
        .order_by(RecordRow.position)
    )
    return {
        "log": log,
        "start": start,
        "end": end,
        "entries": [
            {
                "index": position,
                "leaf_hash": leaf.hex(),
                "record": json.loads(canonical) if canonical else None,
            }
            for position, leaf, canonical in rows
        ],
    }
