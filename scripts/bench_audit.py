"""Benchmark of the inspectors' audit (``civic-verify audit``): records audited per second.

``measure_audit(n)`` builds a SQLite store of ``n`` records and anchors its batches on a fresh
ganache, then times ``verifier.audit.audit_store`` end to end (opening the read-only reader,
every record hashed and parsed, every trail walked, every log's tree rebuilt and its root at each batch's end compared
with ``batchOf`` on the chain). The goal (issue 4): 1,000,000 records in at most 60 s on 2 cores.

The store is built for speed, not through the service: rows go in with bulk inserts, and
canonical bytes come from ``json.dumps`` with sorted keys, which equals RFC 8785 for these
records (checked against ``core.canonical`` on a sample). Its shape is realistic: suggestion
trails of five records (submitted, then four legal transitions) interleaved among 2,000 open
suggestions, plus ``pii.read`` trails in the access log; batches of 1,000 records, as the
worker seals them by default (``CIVIC_BATCH_MAX``), one anchor transaction each, sent
pipelined (explicit nonces) and awaited once at the end. Only the audit is timed.

    .venv/bin/python scripts/bench_audit.py [--records N] [--batch-size N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import codes  # noqa: E402  (the repository root goes on sys.path first)

TRAIL = [
    ("suggestion.submitted", None, None),
    ("suggestion.transition", "SUBMITTED", "DEPUTY_ACCEPTED"),
    ("suggestion.transition", "DEPUTY_ACCEPTED", "ASSIGNED"),
    ("suggestion.transition", "ASSIGNED", "IN_PROGRESS"),
    ("suggestion.transition", "IN_PROGRESS", "ANSWERED"),
]
OPEN_SUGGESTIONS = 2_000
ACCESS_SHARE = 0.05  # one record in twenty is a pii.read in the access log
STAFF = 50
START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _stored_time(moment: datetime) -> str:
    """How SQLAlchemy's DateTime keeps a time in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _tracking_code(rng: random.Random) -> str:
    return codes.tracking_code(rng.choice)


@dataclass
class _Head:
    next_seq: int
    last_hash: bytes
    last_at: datetime


def _records(
    n: int,
    rng: random.Random,
    heads: dict[tuple[str, str], _Head],
    access_share: float = ACCESS_SHARE,
) -> Iterator[tuple[str, str, int, str, bytes, bytes, str]]:
    """(log, subject, seq, type, leaf hash, canonical, accepted_at) in acceptance order;
    ``heads`` is filled with each trail's head, as the service keeps them."""
    open_codes: list[str] = []
    moment = START
    body_text = "幸福路口的路灯坏了三周，晚上行人和电动车都看不清路面，请尽快修复。"
    for i in range(n):
        moment += timedelta(microseconds=rng.randint(2_000, 20_000))
        if rng.random() < access_share:
            log, subject = "access", f"staff-{rng.randrange(STAFF):03d}"
            kind = "pii.read"
            actor = {"role": "staff", "id": subject}
            body: dict[str, Any] = {
                "suggestion": rng.choice(open_codes) if open_codes else "SG-0000-0000-0000",
                "field": "contact",
                "reason": "电话回访",
            }
        else:
            log = "suggestions"
            if len(open_codes) < OPEN_SUGGESTIONS:
                subject = _tracking_code(rng)
                open_codes.append(subject)
            else:
                subject = open_codes[rng.randrange(len(open_codes))]
            step = heads[(log, subject)].next_seq if (log, subject) in heads else 0
            kind, frm, to = TRAIL[step]
            if step == 0:
                actor = {"role": "citizen", "id": f"anon-{rng.getrandbits(64):016x}"}
                body = {
                    "title": f"关于第{i}号路灯的建议",
                    "text": body_text,
                    "category": "城乡建设",
                    "district": "鼓楼区",
                    "channel": "web",
                    "contact_commitment": f"{rng.getrandbits(256):064x}",
                }
            else:
                actor = {"role": "staff" if step != 1 else "deputy", "id": f"acct-{step}"}
                body = {"from": frm, "to": to}
                if to == "ASSIGNED":
                    body |= {"offices": ["城管局"], "due": "2027-02-27"}
                if to == "ANSWERED":
                    body |= {"category": "A", "reply_sha256": f"{rng.getrandbits(256):064x}"}
            if step == len(TRAIL) - 1:
                open_codes.remove(subject)
        key = (log, subject)
        head = heads.get(key)
        seq = head.next_seq if head else 0
        record = {
            "v": 1,
            "log": log,
            "type": kind,
            "subject": subject,
            "seq": seq,
            "prev": head.last_hash.hex() if head else None,
            "at": _at(moment),
            "actor": actor,
            "body": body,
            "salt": f"{rng.getrandbits(128):032x}",
        }
        canonical = _canonical(record)
        leaf = hashlib.sha256(b"\x00" + canonical).digest()
        heads[key] = _Head(seq + 1, leaf, moment)
        yield log, subject, seq, kind, leaf, canonical, _stored_time(moment)


def build_store(
    path: Path,
    n_records: int,
    batch_size: int,
    seed: int = 2026,
    *,
    access_share: float = ACCESS_SHARE,
) -> dict[str, Any]:
    """A migrated SQLite store at ``path`` with ``n_records`` records and sealed batches
    (state ``sealed``; ``anchor_batches`` anchors them). Returns the batches to anchor.
    ``access_share`` of the records go to the access log (0: all in the suggestions log)."""
    from core import tlog, trailmap
    from core.canonical import canonical_bytes
    from core.merkle import merkle_root
    from core.records import MAP_ACTOR, MAP_HEAD_TYPE, MAP_SUBJECT, build_record
    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from verifier.headmap import HeadMap

    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()

    rng = random.Random(seed)
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA synchronous=OFF")
    positions = {"suggestions": 0, "votes": 0, "access": 0}
    leaves: dict[str, list[bytes]] = {"suggestions": [], "votes": [], "access": []}
    batches: list[dict[str, Any]] = []
    numbers = {"suggestions": 0, "votes": 0, "access": 0}
    sealed_at = {"suggestions": START, "votes": START, "access": START}
    rows: list[tuple[Any, ...]] = []
    heads: dict[tuple[str, str], _Head] = {}
    checked = 0
    # Each log's growing tree (PROTOCOL §8), as its right edge: what a version 2 anchor needs.
    trees = {log: tlog.Frontier() for log in ("suggestions", "votes", "access")}
    # Each log's map of trail heads (PROTOCOL §10): every batch ends with its map head.
    maps = {log: HeadMap() for log in trees}
    moved: dict[str, dict[str, tuple[int, bytes]]] = {log: {} for log in trees}
    trails = dict.fromkeys(trees, 0)
    fresh = dict.fromkeys(trees, 0)  # trails begun since the last map head

    def map_head(log: str) -> None:
        """Append the ``ledger.map_head`` record that ends the log's next batch."""
        changes = moved[log]
        trails[log] += fresh[log]
        fresh[log] = 0
        root = maps[log].update(
            {trailmap.key_of(s): trailmap.value_of(seq, leaf) for s, (seq, leaf) in changes.items()}
        )
        moved[log] = {}
        head = heads.get((log, MAP_SUBJECT))
        sealed = build_record(
            log=log,
            type=MAP_HEAD_TYPE,
            subject=MAP_SUBJECT,
            seq=head.next_seq if head else 0,
            prev=head.last_hash if head else None,
            actor=MAP_ACTOR,
            body={
                "batch": numbers[log],
                "index": positions[log],
                "map_root": root.hex(),
                "trails": trails[log],
            },
            now=sealed_at[log],
            salt=rng.randbytes,
        )
        rows.append(
            (
                log,
                positions[log],
                MAP_SUBJECT,
                sealed.record["seq"],
                MAP_HEAD_TYPE,
                sealed.leaf_hash,
                sealed.canonical,
                _stored_time(sealed_at[log]),
            )
        )
        heads[(log, MAP_SUBJECT)] = _Head(
            sealed.record["seq"] + 1, sealed.leaf_hash, sealed_at[log]
        )
        positions[log] += 1
        leaves[log].append(sealed.leaf_hash)

    def seal(log: str) -> None:
        map_head(log)
        pending = leaves[log]
        first = positions[log] - len(pending)
        tree = trees[log]
        frontier = b"".join(tree.hashes)
        for leaf in pending:
            tree.append(leaf)
        batches.append(
            {
                "log": log,
                "number": numbers[log],
                "first_position": first,
                "size": len(pending),
                "root": merkle_root(pending),
                "log_root": tree.root(),
                "frontier": frontier,
                "sealed_at": sealed_at[log],
            }
        )
        numbers[log] += 1
        leaves[log] = []

    for log, subject, seq, kind, leaf, canonical, accepted in _records(
        n_records, rng, heads, access_share
    ):
        if checked < 200:  # the fast serialisation is RFC 8785 for these records
            assert canonical_bytes(json.loads(canonical)) == canonical
            checked += 1
        rows.append((log, positions[log], subject, seq, kind, leaf, canonical, accepted))
        positions[log] += 1
        leaves[log].append(leaf)
        moved[log][subject] = (seq, leaf)
        fresh[log] += seq == 0
        sealed_at[log] = datetime.strptime(accepted, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        if len(leaves[log]) == batch_size:
            seal(log)
        if len(rows) >= 50_000:
            connection.executemany(
                "INSERT INTO records (log, position, subject, seq, type, leaf_hash, canonical, "
                "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            rows = []
    for log in leaves:  # the last batches, each with its map head (a row not yet written)
        if leaves[log]:
            seal(log)
    if rows:
        connection.executemany(
            "INSERT INTO records (log, position, subject, seq, type, leaf_hash, canonical, "
            "accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    connection.executemany(
        "INSERT INTO trail_heads (log, subject, next_seq, last_leaf_hash, last_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (log, subject, head.next_seq, head.last_hash, _stored_time(head.last_at))
            for (log, subject), head in heads.items()
        ],
    )
    for log, position in positions.items():
        connection.execute(
            "UPDATE log_heads SET next_position = ?, sealed_until = ? WHERE log = ?",
            (position, position, log),
        )
    connection.executemany(
        "INSERT INTO batches (log, number, first_position, size, root, log_root, frontier, "
        "state, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'sealed', ?)",
        [
            (
                b["log"],
                b["number"],
                b["first_position"],
                b["size"],
                b["root"],
                b["log_root"],
                b["frontier"],
                _stored_time(b["sealed_at"]),
            )
            for b in batches
        ],
    )
    connection.commit()
    connection.close()
    return {"batches": batches, "positions": positions, "trails": sum(trails.values())}


def anchor_batches(path: Path, batches: list[dict[str, Any]], client: Any, contract: str) -> None:
    """One anchor transaction per batch, signed with consecutive nonces and sent without
    waiting; then the batch rows are marked anchored with their transaction and block."""
    from ledger.chain import ANCHOR_GAS_LIMIT

    nonce = client.w3.eth.get_transaction_count(client.address, "pending")
    sent = []
    for batch in batches:
        signed = client.sign_anchor(
            contract,
            batch["log"],
            batch["number"],
            batch["log_root"],  # version 2: the whole log's root and size at the batch's end
            batch["first_position"] + batch["size"],
            nonce,
            gas=ANCHOR_GAS_LIMIT,
        )
        client.send_raw(signed.raw)
        sent.append((batch, signed.tx_hash))
        nonce += 1
    mined = {}
    for batch, tx_hash in sent:
        receipt = client.wait_for_receipt(tx_hash, 120)
        if receipt is None or receipt.status != 1:
            raise RuntimeError(f"anchoring batch {batch['log']}/{batch['number']} failed")
        mined[(batch["log"], batch["number"])] = (tx_hash, receipt.block_number)
    connection = sqlite3.connect(path)
    now = _stored_time(datetime.now(UTC))
    connection.executemany(
        "UPDATE batches SET state = 'anchored', tx_hash = ?, block_number = ?, chain_id = ?, "
        "contract = ?, sent_at = ?, anchored_at = ? WHERE log = ? AND number = ?",
        [
            (tx, block, client.chain_id, contract, now, now, log, number)
            for (log, number), (tx, block) in mined.items()
        ],
    )
    connection.commit()
    connection.close()


def measure_audit(
    n_records: int = 1_000_000, *, batch_size: int = 1_000, workdir: Path | None = None
) -> dict[str, Any]:
    """Build and anchor a store of ``n_records``, then time one full audit of it."""
    from contracts.keys import generate_key
    from ledger.chain import ChainClient
    from ledger.devchain import free_port, start_ganache
    from verifier.audit import audit_store
    from verifier.audit.reading import open_store
    from verifier.chain import Web3ChainReader

    with tempfile.TemporaryDirectory(prefix="civic-audit-bench-", dir=workdir) as tmp:
        path = Path(tmp) / "civic.db"
        started = time.perf_counter()
        built = build_store(path, n_records, batch_size)
        build_seconds = time.perf_counter() - started
        key = generate_key()
        chain = start_ganache(port=free_port(), db_path=None, funded_keys=[key])
        try:
            client = ChainClient(chain.rpc_url, key)
            contract = client.deploy_registry().address
            started = time.perf_counter()
            anchor_batches(path, built["batches"], client, contract)
            anchor_seconds = time.perf_counter() - started

            started = time.perf_counter()
            with open_store(f"sqlite:///{path}") as store:
                report = audit_store(store, Web3ChainReader(chain.rpc_url))
            seconds = time.perf_counter() - started
        finally:
            chain.stop()
        if not report.clean:
            raise RuntimeError(f"the benchmark store is not clean: {report.findings[:5]}")
        return {
            "records": report.records,
            "batches": len(built["batches"]),
            "batch_size": batch_size,
            "trails": built["trails"],
            "seconds": round(seconds, 2),
            "records_per_second": round(report.records / seconds),
            "goal_seconds": 60,
            "within_goal": seconds <= 60 * n_records / 1_000_000,
            "database_bytes": path.stat().st_size,
            "build_seconds": round(build_seconds, 1),
            "anchor_seconds": round(anchor_seconds, 1),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    args = parser.parse_args(argv)
    result = measure_audit(args.records, batch_size=args.batch_size)
    print(json.dumps(result, indent=2))
    return 0 if result["within_goal"] else 1


if __name__ == "__main__":
    sys.exit(main())
