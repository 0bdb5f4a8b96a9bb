"""Map of trail heads benchmarks (PROTOCOL §10, ledger/trailmap.py): what updating the map costs
the sealer per batch, and how large and how fast its proofs are, at a given number of trails.

A store whose map holds N trails is made directly (random keys and heads, written through the
same ``core.trailmap.update`` and ``ledger.trailmap`` writes the sealer uses), then:

* ``update``: one batch's map work, commit included, for 1,000 changed trails (800 heads that
  moved, 200 new trails): read the nodes on their ways down (one statement per depth), rehash,
  upsert ``map_nodes`` and insert ``map_node_versions``; per batch, over ``--batches`` batches;
* ``proofs``: proofs of random present and absent subjects against the last batch's map, from
  ``map_node_versions`` (two indexed lookups per level), per second, with their sizes (siblings
  and JSON bytes).

Run: ``.venv/bin/python scripts/bench_map.py [--trails N ...] [--database-url URL]``; prints JSON.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHANGED = 1000
NEW = 200
BUILD_STEP = 100_000


def _engine(url: str | None, folder: str) -> Any:
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(url or f"sqlite:///{folder}/map.db")
    upgrade(engine)
    return engine


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(trails: int, batches: int, url: str | None) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from core import trailmap
    from ledger import trailmap as maps

    rng = random.Random(trails)

    def head() -> bytes:
        return trailmap.value_of(rng.randrange(50), rng.randbytes(32))

    with tempfile.TemporaryDirectory() as folder:
        engine = _engine(url, folder)
        keys: list[bytes] = []
        started = time.perf_counter()
        batch = 0
        while len(keys) < trails:  # the existing map, in steps (batches of the past)
            step = [rng.randbytes(32) for _ in range(min(BUILD_STEP, trails - len(keys)))]
            with Session(engine) as session, session.begin():
                _root, written = trailmap.update(
                    maps.current_reader(session, "suggestions"), {k: head() for k in step}
                )
                maps._write(session, "suggestions", batch, written)
            keys += step
            batch += 1
        built = time.perf_counter() - started
        times = []
        for _ in range(batches):
            changes = {k: head() for k in rng.sample(keys, CHANGED - NEW)}
            fresh = [rng.randbytes(32) for _ in range(NEW)]
            changes.update({k: head() for k in fresh})
            t0 = time.perf_counter()
            with Session(engine) as session, session.begin():
                _root, written = trailmap.update(
                    maps.current_reader(session, "suggestions"), changes
                )
                maps._write(session, "suggestions", batch, written)
            times.append(time.perf_counter() - t0)
            keys += fresh
            batch += 1
        last = batch - 1
        with Session(engine) as session:
            read = maps.reader_at(session, "suggestions", last)
            subjects = rng.sample(keys, 500) + [rng.randbytes(32) for _ in range(100)]
            t0 = time.perf_counter()
            proofs = [trailmap.prove(read, key) for key in subjects]
            proving = time.perf_counter() - t0
        depths = [len(p.siblings) for p in proofs]
        sizes = [len(json.dumps(p.to_json(), separators=(",", ":"))) for p in proofs]
        engine.dispose()
    return {
        "trails": trails,
        "build_seconds": round(built, 1),
        "update_ms_p50": round(1000 * statistics.median(times), 1),
        "update_ms_p95": round(1000 * _percentile(times, 0.95), 1),
        "batches": batches,
        "changed_per_batch": CHANGED,
        "proofs_per_second": round(len(proofs) / proving),
        "proof_siblings_median": statistics.median(depths),
        "proof_siblings_max": max(depths),
        "proof_bytes_median": statistics.median(sizes),
        "proof_bytes_max": max(sizes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trails", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get("CIVIC_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    results = [bench(n, args.batches, args.database_url) for n in args.trails]
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
