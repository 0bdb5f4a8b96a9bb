"""civic-ledger benchmarks (run through ./scripts/bench). Writes docs/BENCHMARKS.md.

* append: records appended per second in-process (one transaction per record, as a
  request does), on SQLite, and on PostgreSQL when CIVIC_TEST_POSTGRES_URL is set;
* merkle: one batch of 100,000 records, root plus every inclusion proof, against the
  pymerkle library on the same entries in the same run;
* latency: accept-to-anchored, p50 and p95, through the real service over HTTP;
* gas: per anchored batch and per record at batch sizes 1, 100, 1,000 and 10,000, against a
  naive one-hash-per-transaction contract on the same node.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    python = f"Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}){mem}, {python}, {platform.system()}"


# -- append -------------------------------------------------------------------------------


def bench_append(url: str, n: int) -> dict[str, Any]:
    from ledger import suggestions
    from ledger.db import make_engine, make_session_factory
    from ledger.migrate import upgrade
    from ledger.pii import Vault
    from ledger.schemas import SuggestionIn

    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    vault = Vault(secrets.token_bytes(32))
    suggestion = SuggestionIn(
        title="路灯不亮",
        text="幸福路口的路灯坏了三周。" * 5,
        category="城乡建设",
        district="鼓楼区",
    )
    start = time.perf_counter()
    for _ in range(n):
        with sessions.begin() as session:
            suggestions.submit(session, suggestion, principal=None, vault=vault)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return {"records": n, "seconds": round(elapsed, 3), "per_second": round(n / elapsed, 1)}


def run_append(quick: bool) -> dict[str, Any]:
    n = 1000 if quick else 5000
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = bench_append(f"sqlite:///{tmp}/bench.db", n)
    pg = os.environ.get("CIVIC_TEST_POSTGRES_URL")
    if pg:
        from ledger.db import make_engine

        schema = "bench_" + secrets.token_hex(4)
        admin = make_engine(pg)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in pg else "?"
            results["postgresql"] = bench_append(f"{pg}{sep}options=-csearch_path%3D{schema}", n)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
            admin.dispose()
    return results


# -- merkle -------------------------------------------------------------------------------


def run_merkle(quick: bool) -> dict[str, Any]:
    from datetime import timedelta

    from pymerkle import InmemoryTree

    from ledger.merkle import all_inclusion_paths, leaf_hash, verify_inclusion
    from ledger.records import build_record

    n = 20_000 if quick else 100_000
    t0 = datetime(2026, 11, 27, tzinfo=UTC)
    entries = [
        build_record(
            log="votes",
            type="ballot.cast",
            subject=f"SIM-1/D{i:06d}",
            seq=0,
            prev=None,
            actor={"role": "deputy", "id": f"D{i:06d}"},
            body={
                "simulation": "SIM-1",
                "voter": f"D{i:06d}",
                "choices": {"P1": "yes"},
                "nonce": i,
            },
            now=t0 + timedelta(milliseconds=i),
            salt=secrets.token_bytes,
        ).canonical
        for i in range(n)
    ]

    start = time.perf_counter()
    leaves = [leaf_hash(e) for e in entries]
    root, paths = all_inclusion_paths(leaves)
    ours = time.perf_counter() - start

    start = time.perf_counter()
    tree = InmemoryTree(algorithm="sha256")
    for e in entries:
        tree.append_entry(e)
    their_root = tree.get_root()
    for i in range(1, n + 1):
        tree.prove_inclusion(i)
    theirs = time.perf_counter() - start

    assert their_root == root, "pymerkle and civic-ledger disagree on the root"
    for i in range(0, n, max(1, n // 100)):
        assert verify_inclusion(leaves[i], i, n, paths[i], root)
    return {
        "records": n,
        "civic_ledger_seconds": round(ours, 3),
        "pymerkle_seconds": round(theirs, 3),
        "speedup": round(theirs / ours, 1),
        "roots_agree": True,
    }


# -- latency ------------------------------------------------------------------------------


def run_latency(quick: bool, interval: float = 2.0) -> dict[str, Any]:
    import httpx

    from ledger.devchain import free_port

    n = 40 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        api_port, chain_port = free_port(), free_port()
        env = {
            **os.environ,
            "CIVIC_DATA_DIR": f"{tmp}/data",
            "CIVIC_API_PORT": str(api_port),
            "CIVIC_CHAIN_PORT": str(chain_port),
            "CIVIC_VERIFIER_PORT": str(free_port()),
            "CIVIC_SUBMIT_RATE": "0",  # one client on loopback: not an abuser
            "CIVIC_ANCHOR_INTERVAL": str(interval),
        }
        for name in ("CIVIC_CHAIN_RPC", "CIVIC_CONTRACT", "CIVIC_DATABASE_URL"):
            env.pop(name, None)
        log = open(f"{tmp}/service.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        api = f"http://127.0.0.1:{api_port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    httpx.get(f"{api}/healthz", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError(Path(f"{tmp}/service.log").read_text()[-3000:]) from None
                    time.sleep(0.3)
            accepted: dict[str, float] = {}
            anchored: dict[str, float] = {}
            lock = threading.Lock()
            done = threading.Event()

            def poll() -> None:
                # One poller, concurrent with the submissions, asking about every record
                # still waiting; a round over ~50 waiting records takes well under 100 ms.
                with httpx.Client(timeout=10) as poller:
                    while not (done.is_set() and len(anchored) == n):
                        with lock:
                            waiting = [h for h in accepted if h not in anchored]
                        for h in waiting:
                            r = poller.get(f"{api}/api/v1/records/{h}/receipt")
                            if r.status_code == 200:
                                with lock:
                                    anchored[h] = time.monotonic()
                        time.sleep(0.01)

            poller = threading.Thread(target=poll)
            poller.start()
            with httpx.Client(timeout=10) as client:
                body = {
                    "title": "噪音扰民",
                    "text": "夜间施工噪音。",
                    "category": "生态环境",
                    "district": "台江区",
                }
                for i in range(n):
                    r = client.post(
                        f"{api}/api/v1/suggestions", json={**body, "title": f"噪音 {i}"}
                    )
                    r.raise_for_status()
                    with lock:
                        accepted[r.json()["record_hash"]] = time.monotonic()
                    time.sleep(interval * 4 / n)  # spread over about four intervals
            done.set()
            poller.join(timeout=120)
            waits = sorted(anchored[h] - accepted[h] for h in accepted)
        finally:
            proc.terminate()
            proc.wait(30)
    q = statistics.quantiles(waits, n=100)
    return {
        "records": n,
        "anchor_interval_s": interval,
        "p50_s": round(q[49], 3),
        "p95_s": round(q[94], 3),
        "max_s": round(waits[-1], 3),
    }


# -- gas ----------------------------------------------------------------------------------


def run_gas(quick: bool) -> dict[str, Any]:
    import secrets as _secrets

    import bench_gas

    from ledger.devchain import free_port, start_ganache

    key = _secrets.token_bytes(32)
    with start_ganache(port=free_port(), db_path=None, funded_keys=[key]) as chain:
        return bench_gas.measure_gas(chain.rpc_url, key, naive_sample=20 if quick else 50)


# -- voting, verifier, audit ----------------------------------------------------------------


def run_voting(quick: bool) -> dict[str, Any]:
    import bench_ballots
    import bench_voting

    return {
        "tally": bench_voting.measure_tally(with_pabutools=not quick),
        "signing": bench_voting.measure_ballot_signing(1000 if quick else 5000),
        "cast_commit_each": bench_ballots.measure_ballots(500 if quick else 3000, 1),
        "cast_commit_100": bench_ballots.measure_ballots(500 if quick else 3000, 100),
    }


def run_verifier(quick: bool) -> dict[str, Any]:
    import bench_verifier

    return {
        "receipts": bench_verifier.measure_receipts(2000 if quick else 20000),
        "http": bench_verifier.measure_http_p50(50 if quick else 200),
    }


def run_audit(quick: bool) -> dict[str, Any]:
    import bench_audit

    return bench_audit.measure_audit(100_000 if quick else 1_000_000)


# -- report -------------------------------------------------------------------------------


def _ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2f}"


def render(results: dict[str, Any], when: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {when} on {machine()}.",
        "",
        "Run `./scripts/bench` to measure again; it rewrites this file.",
        "",
    ]
    if "append" in results:
        lines += [
            "## Records appended per second (in-process, one transaction per record)",
            "",
            "| database | records | seconds | records/s |",
            "|---|---|---|---|",
        ]
        for db, r in results["append"].items():
            lines.append(f"| {db} | {r['records']} | {r['seconds']} | {r['per_second']} |")
        lines.append("")
    if "merkle" in results:
        m = results["merkle"]
        lines += [
            "## Merkle batch: root plus every inclusion proof",
            "",
            f"{m['records']:,} records (leaf hashing included): civic-ledger "
            f"{m['civic_ledger_seconds']} s, pymerkle {m['pymerkle_seconds']} s on the same "
            f"entries in the same run: **{m['speedup']}×** faster; roots agree.",
            "",
        ]
    if "latency" in results:
        lt = results["latency"]
        lines += [
            "## Accept-to-anchored latency (real service over HTTP, local ganache)",
            "",
            f"{lt['records']} suggestions spread over about four anchor intervals of "
            f"{lt['anchor_interval_s']} s: p50 **{lt['p50_s']} s**, p95 **{lt['p95_s']} s**, "
            f"max {lt['max_s']} s. A batch is sealed once its oldest record has waited "
            "CIVIC_ANCHOR_INTERVAL (or CIVIC_BATCH_MAX records wait), so the worst case is about "
            "the interval plus one anchor transaction; later arrivals wait less.",
            "",
        ]
    if "gas" in results:
        g = results["gas"]
        naive = g["naive"]["gas_per_record_mean"]
        lines += [
            "## Gas per anchored batch and per record (same ganache node)",
            "",
            f"AnchorRegistry: first anchor of a log {g['first_anchor_gas']:,} gas, steady "
            f"state {g['steady_anchor_gas']:,} gas (goal: at most 80,000). Naive baseline "
            f"(one hash per transaction, same role check): {naive:,.0f} gas per record, "
            f"mean of {g['naive']['samples']} transactions; a batch of N costs N times that.",
            "",
            "| records in batch | gas per anchor | gas per record | naive gas per record "
            "| naive ÷ batched |",
            "|---|---|---|---|---|",
        ]
        for b in g["batches"]:
            lines.append(
                f"| {b['size']:,} | {b['gas_per_anchor']:,} | {b['gas_per_record']:,.2f} "
                f"| {naive:,.0f} | {_ratio(b['naive_over_batched'])}× |"
            )
        lines += [
            "",
            f"Deploy: AnchorRegistry {g['deploy_gas']['AnchorRegistry']:,} gas, "
            f"NaiveAnchorRegistry {g['deploy_gas']['NaiveAnchorRegistry']:,} gas.",
            "",
        ]
    for name, title in (
        (
            "voting",
            "Voting: tally against pabutools, ballot signatures, ballots accepted in-process",
        ),
        (
            "verifier",
            "Verifier: receipts per second with roots cached, POST /verify/receipt latency",
        ),
        ("audit", "Inspectors' audit of the whole store against the chain"),
    ):
        if name in results:
            lines += [f"## {title}", "", "```json", json.dumps(results[name], indent=2), "```", ""]
    for name, title in (
        (
            "voting",
            "Voting: tally against pabutools, ballot signatures, ballots accepted in-process",
        ),
        (
            "verifier",
            "Verifier: receipts per second with roots cached, POST /verify/receipt latency",
        ),
        ("audit", "Inspectors' audit of the whole store against the chain"),
    ):
        if name in results:
            lines += [f"## {title}", "", "```json", json.dumps(results[name], indent=2), "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", default="append,merkle,latency,gas,voting,verifier,audit")
    parser.add_argument("--no-write", action="store_true", help="do not rewrite docs/BENCHMARKS.md")
    parser.add_argument(
        "--render", action="store_true", help="rewrite docs/BENCHMARKS.md from docs/benchmarks.json"
    )
    args = parser.parse_args()
    runners = {
        "append": run_append,
        "merkle": run_merkle,
        "latency": run_latency,
        "gas": run_gas,
        "voting": run_voting,
        "verifier": run_verifier,
        "audit": run_audit,
    }
    if args.render:
        saved = json.loads((ROOT / "docs" / "benchmarks.json").read_text())
        when = saved.pop("when")
        saved.pop("machine", None)
        (ROOT / "docs" / "BENCHMARKS.md").write_text(render(saved, when), encoding="utf-8")
        return 0
    results: dict[str, Any] = {}
    for name in args.only.split(","):
        print(f"==> {name}", flush=True)
        results[name] = runners[name](args.quick)
        print(json.dumps(results[name], indent=2), flush=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if not args.no_write:
        (ROOT / "docs" / "BENCHMARKS.md").write_text(render(results, when), encoding="utf-8")
        (ROOT / "docs" / "benchmarks.json").write_text(
            json.dumps({"when": when, "machine": machine(), **results}, indent=2) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
