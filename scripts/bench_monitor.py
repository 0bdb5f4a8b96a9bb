"""``civic-verify monitor`` (``verifier.monitor``) following a log of N entries from the real
API over loopback HTTP, with the chain.

The store is built the way ``bench_audit`` builds its 1,000,000 records (``build_store``: bulk
inserts of realistic suggestion trails, RFC 8785 canonical bytes, batches of 1,000 sealed as
version 2 batches), all of them in the suggestions log; the log's tree (node table, PROTOCOL
§8) is then extended over every entry (``ledger.tree.extend``, as a store older than the tree
catches up), and every batch is anchored on a fresh ganache (pipelined). Then ``civic-ledger
api`` serves the store in its own process (one API process) and the monitor follows the log
from entry 0: every checkpoint fetched and its signature checked with the log's verifier key,
every checkpoint against ``batchOf`` on chain, every entry's record canonicalised and hashed
(pages of 1,000 from ``GET /api/v1/logs/suggestions/entries``), the tree recomputed and its
root compared at every checkpoint, and the consistency proof between every two consecutive
checkpoints verified. Only the monitor is timed; its verdict must be ``valid``.

    .venv/bin/python scripts/bench_monitor.py [--entries N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def _extend_tree(path: Path, entries: int) -> None:
    from ledger import repository as repo
    from ledger import tree
    from ledger.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{path}")
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        head = repo.lock_log_head(session, "suggestions")
        tree.extend(session, head, entries)
    engine.dispose()


def measure_monitor(entries: int = 1_000_000, batch_size: int = 1_000) -> dict[str, Any]:
    import bench_audit
    import httpx

    from contracts.keys import generate_key
    from ledger.chain import ChainClient
    from ledger.devchain import free_port, start_ganache
    from verifier.chain import Web3ChainReader
    from verifier.monitor import monitor_log

    with tempfile.TemporaryDirectory(prefix="civic-monitor-bench-") as tmp:
        path = Path(tmp) / "civic.db"
        started = time.perf_counter()
        built = bench_audit.build_store(path, entries, batch_size, access_share=0.0)
        _extend_tree(path, entries)
        build_seconds = time.perf_counter() - started
        key = generate_key()
        chain = start_ganache(port=free_port(), db_path=None, funded_keys=[key])
        proc = None
        try:
            client = ChainClient(chain.rpc_url, key)
            contract = client.deploy_registry().address
            started = time.perf_counter()
            bench_audit.anchor_batches(path, built["batches"], client, contract)
            anchor_seconds = time.perf_counter() - started

            port = free_port()
            env = {
                **os.environ,
                "CIVIC_DATA_DIR": f"{tmp}/data",
                "CIVIC_DATABASE_URL": f"sqlite:///{path}",
                "CIVIC_API_PORT": str(port),
                "CIVIC_API_WORKERS": "1",
                "CIVIC_CHAIN_RPC": chain.rpc_url,
                "CIVIC_CONTRACT": contract,
                "CIVIC_WITNESSES": "",
            }
            log_path = Path(tmp) / "api.log"
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "api.cli", "api"],
                    env=env,
                    cwd=ROOT,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            api = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            while True:
                try:
                    keys = httpx.get(f"{api}/api/v1/logs/suggestions/keys", timeout=5)
                    keys.raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(log_path.read_text()[-3000:]) from None
                    time.sleep(0.3)
            from core.note import parse_verifier_key

            log_key = parse_verifier_key(keys.json()["log"])
            marks: list[tuple[float, int]] = []
            load_before = os.getloadavg()
            cpu_before = os.times()
            started = time.perf_counter()
            result = monitor_log(
                api,
                "suggestions",
                log_key=log_key,
                chain=Web3ChainReader(chain.rpc_url, 10.0),
                contract=contract,
                timeout=60.0,
                progress=lambda size: marks.append((time.perf_counter(), size)),
            )
            seconds = time.perf_counter() - started
            cpu_after = os.times()
            load_after = os.getloadavg()
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
            chain.stop()
        if result.verdict.value != "valid":
            raise RuntimeError(f"the monitor found {result.to_dict()}")
        (first_at, first_size), (last_at, last_size) = marks[0], marks[-1]
        monitor_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        return {
            "entries": result.entries,
            "checkpoints": result.batches,
            "seconds": round(seconds, 1),
            "entries_per_s": round(result.entries / seconds),
            "phases_s": {
                "checkpoints_and_chain_and_first_page": round(first_at - started, 1),
                "entries_recomputed": round(last_at - first_at, 1),
                "consistency_proofs": round(started + seconds - last_at, 1),
            },
            "recompute_entries_per_s": round((last_size - first_size) / (last_at - first_at)),
            "monitor_cpu_s": round(monitor_cpu, 1),
            "verdict": result.verdict.value,
            "with_chain": True,
            "api_processes": 1,
            "loadavg_before": "/".join(f"{x:.1f}" for x in load_before),
            "loadavg_after": "/".join(f"{x:.1f}" for x in load_after),
            "database_bytes": path.stat().st_size if path.exists() else None,
            "build_seconds": round(build_seconds, 1),
            "anchor_seconds": round(anchor_seconds, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(measure_monitor(args.entries), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
