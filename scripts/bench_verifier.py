"""Verifier benchmarks: receipts verified per second, and the latency of POST /verify/receipt.

* ``measure_receipts``: real receipts of a real batch anchored on a local ganache, verified in
  one thread pinned to one core through ``CachingChainReader`` (the anchored root is read
  once; the latest block and the attestation count at most once a second). Reported for
  parsed receipts (``verify_receipt``) and for receipt text (``verify_receipt_json``, which
  adds the strict JSON parse the HTTP service does).
* ``measure_http_p50``: p50/p95 of ``POST /verify/receipt`` over real HTTP against the verifier
  app served by uvicorn on a free port, with the cache off, so every request makes its chain
  calls (chain id, code, batchOf, block number, attestations) to ganache.

Run: ``.venv/bin/python scripts/bench_verifier.py [--receipts N] [--requests N]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH_SIZE = 1000


@contextmanager
def _one_core() -> Iterator[int | None]:
    """Pin this process to one CPU while measuring (Linux), and give the others back after."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def anchored_batch(size: int = BATCH_SIZE) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A ganache with an AnchorRegistry and one anchored batch of ``size`` suggestion records;
    yields the RPC URL and the batch's §4 receipts (as the service writes them)."""
    import secrets

    from contracts.keys import generate_key
    from core.merkle import all_inclusion_paths
    from core.records import build_record
    from ledger.chain import ChainClient
    from ledger.devchain import free_port, start_ganache

    key = generate_key()
    log = Path(tempfile.mkdtemp(prefix="bench-verifier-")) / "ganache.log"
    chain = start_ganache(port=free_port(), db_path=None, funded_keys=[key], log_path=log)
    try:
        client = ChainClient(chain.rpc_url, key)
        contract = client.deploy_registry().address
        start = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
        records = [
            build_record(
                log="suggestions",
                type="suggestion.submitted",
                subject=f"SG-BNCH-{i:04d}-0000",
                seq=0,
                prev=None,
                actor={"role": "citizen", "id": f"anon-{secrets.token_hex(8)}"},
                body={
                    "title": f"关于修缮幸福路人行道的建议（{i}）",
                    "text": "幸福路人行道砖块松动，雨天积水，老人出行不便，建议尽快维修。",
                    "category": "城乡建设",
                    "district": "鼓楼区",
                    "channel": "web",
                },
                now=start + timedelta(seconds=i),
                salt=secrets.token_bytes,
            )
            for i in range(size)
        ]
        root, paths = all_inclusion_paths([r.leaf_hash for r in records])
        signed = client.sign_anchor(contract, "suggestions", 0, root, size)
        client.send_raw(signed.raw)
        mined = client.wait_for_receipt(signed.tx_hash, 30)
        assert mined is not None and mined.status == 1
        anchor = {
            "chain_id": client.chain_id,
            "contract": contract,
            "tx": signed.tx_hash,
            "block": mined.block_number,
        }
        receipts = [
            {
                "v": 1,
                "record": dict(r.record),
                "proof": {
                    "log": "suggestions",
                    "batch": 0,
                    "index": i,
                    "size": size,
                    "path": [h.hex() for h in paths[i]],
                    "root": root.hex(),
                },
                "anchor": anchor,
            }
            for i, r in enumerate(records)
        ]
        yield chain.rpc_url, receipts
    finally:
        chain.stop()


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def measure_receipts(n: int = 20000) -> dict[str, Any]:
    """Receipts verified per second on one core, anchored roots cached."""
    from core.verdicts import Verdict
    from verifier.chain import CachingChainReader, Web3ChainReader
    from verifier.receipt import verify_receipt, verify_receipt_json

    with anchored_batch() as (rpc, receipts):
        texts = [json.dumps(r, ensure_ascii=False).encode() for r in receipts]
        reader = CachingChainReader(Web3ChainReader(rpc))
        assert all(verify_receipt(r, reader).verdict is Verdict.VALID for r in receipts)
        size = len(receipts)
        with _one_core() as cpu:
            started = time.perf_counter()
            for i in range(n):
                verify_receipt(receipts[i % size], reader)
            parsed = time.perf_counter() - started
            started = time.perf_counter()
            for i in range(n):
                verify_receipt_json(texts[i % size], reader)
            from_text = time.perf_counter() - started
    return {
        "receipts": n,
        "batch_size": size,
        "cpu": cpu,
        "per_second": _rate(n, parsed),
        "per_second_from_json_text": _rate(n, from_text),
        "mean_us": round(parsed / n * 1e6, 1),
        "goal_per_second": 20000,
    }


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free port; yields its base URL."""
    import uvicorn

    from ledger.devchain import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _latencies(url: str, bodies: list[bytes], n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(timeout=30) as client:
        for i in range(n):
            started = time.perf_counter()
            answer = client.post(
                f"{url}/verify/receipt",
                content=bodies[i % len(bodies)],
                headers={"Content-Type": "application/json"},
            )
            out.append(time.perf_counter() - started)
            assert answer.status_code == 200 and answer.json()["verdict"] == "valid", answer.text
    return out


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    cut = statistics.quantiles(ordered, n=100)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(cut[94] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def measure_http_p50(n: int = 200) -> dict[str, Any]:
    """p50/p95 of POST /verify/receipt over HTTP, every request asking the chain."""
    from verifier.service import create_verifier_app

    with anchored_batch(100) as (rpc, receipts):
        bodies = [json.dumps(r, ensure_ascii=False).encode() for r in receipts]
        live = create_verifier_app(rpc_url=rpc, api_url="http://127.0.0.1:8000", cache=False)
        with _served(live) as url:
            _latencies(url, bodies, 10)  # warm up connections and imports
            uncached = _latencies(url, bodies, n)
        cached_app = create_verifier_app(rpc_url=rpc, api_url="http://127.0.0.1:8000")
        with _served(cached_app) as url:
            _latencies(url, bodies, 10)
            cached = _latencies(url, bodies, n)
    return {
        "requests": n,
        "live_chain": _percentiles(uncached),
        "roots_cached": _percentiles(cached),
        "chain_calls_per_request_live": 5,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--receipts", type=int, default=20000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    result = {
        "receipts": measure_receipts(args.receipts),
        "http": measure_http_p50(args.requests),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
