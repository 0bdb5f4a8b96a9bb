"""Log tree benchmarks (PROTOCOL §8, ledger/tree.py): what the growing tree costs the sealer, and
how fast the store serves proofs from its node table at a given log size.

A store of N entries is made directly (the records' leaf hashes, random; nothing else of a
record matters to the tree), then:

* ``seal``: the tree's part in sealing each batch of 1,000 entries (``ledger.tree.seal``:
  read the frontier once, extend the node table, commit; not the batch's leaf read), per batch, over
  all N entries;
* ``inclusion``: inclusion proofs of random entries in the tree of size N, from the node table
  (two indexed queries each), per second;
* ``consistency``: consistency proofs between two random batch ends, per second;
* ``receipt_paths``: the receipts' hot path (``ledger.service.BatchTree``: a batch's frontier and
  leaves, built once, then an inclusion path per record), paths per second.

Run: ``.venv/bin/python scripts/bench_tree.py [--entries N] [--database-url URL]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 1000


def _fill(url: str, entries: int) -> None:
    """N records of the suggestions log, written directly (positions 0..N-1)."""
    from sqlalchemy import insert, update

    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from ledger.models import LogHead, RecordRow, table_of

    engine = make_engine(url)
    upgrade(engine)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    rows = table_of(RecordRow)
    with engine.begin() as conn:
        for start in range(0, entries, 50_000):
            conn.execute(
                insert(rows),
                [
                    {
                        "log": "suggestions",
                        "position": p,
                        "subject": f"SG-{p}",
                        "seq": 0,
                        "type": "suggestion.submitted",
                        "leaf_hash": os.urandom(32),
                        "canonical": b"{}",
                        "accepted_at": at,
                    }
                    for p in range(start, min(entries, start + 50_000))
                ],
            )
        conn.execute(
            update(table_of(LogHead))
            .where(table_of(LogHead).c.log == "suggestions")
            .values(next_position=entries, sealed_until=entries)
        )
    engine.dispose()


def measure(url: str, entries: int, proofs: int) -> dict[str, Any]:
    from ledger import repository as repo
    from ledger import tree
    from ledger.db import make_engine, make_session_factory
    from ledger.service import BatchTree

    _fill(url, entries)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    per_batch = []
    for first in range(0, entries, BATCH):
        size = min(BATCH, entries - first)
        with sessions.begin() as session:
            head = repo.lock_log_head(session, "suggestions")
            # The sealer has read the batch's leaves anyway (for its own root): not timed.
            leaves = repo.leaf_hashes_in_range(session, "suggestions", first, size)
            started = time.perf_counter()
            tree.seal(session, head, first, leaves)
        per_batch.append(time.perf_counter() - started)  # the commit of the nodes included
    rng = random.Random(7)
    with sessions() as session:
        started = time.perf_counter()
        for _ in range(proofs):
            tree.inclusion_proof(session, "suggestions", rng.randrange(entries), entries)
        inclusion = proofs / (time.perf_counter() - started)
        ends = list(range(BATCH, entries + 1, BATCH))
        started = time.perf_counter()
        for _ in range(proofs):
            a, b = sorted(rng.sample(ends, 2))
            tree.consistency_proof(session, "suggestions", a, b)
        consistency = proofs / (time.perf_counter() - started)
        first = entries - BATCH
        started = time.perf_counter()
        leaves = repo.leaf_hashes_in_range(session, "suggestions", first, BATCH)
        view = BatchTree(first, tree.frontier_hashes(session, "suggestions", first), leaves)
        built = time.perf_counter() - started
        started = time.perf_counter()
        for position in range(first, entries):
            view.inclusion_path(position)
        paths = BATCH / (time.perf_counter() - started)
    engine.dispose()
    return {
        "entries": entries,
        "seal_tree_ms_per_batch_of_1000": {
            "p50": round(statistics.median(per_batch) * 1000, 2),
            "max": round(max(per_batch) * 1000, 2),
        },
        "inclusion_proofs_per_s": round(inclusion),
        "consistency_proofs_per_s": round(consistency),
        "receipt_batch_view_build_ms": round(built * 1000, 1),
        "receipt_paths_per_s": round(paths),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'tree.db'}"
        print(json.dumps(measure(url, args.entries, args.proofs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
