"""Faults, with real processes, a real chain and a real database (issue 7, "Faults").

Each test breaks one thing while records stream in, and then checks the promise: nothing
acknowledged is lost (every 201 ends up in an anchored batch, its receipt verifies), nothing
is half-written (the inspectors' audit of the whole store is clean), and the service says
what is wrong while it is wrong (``/healthz``).

* kill -9 of the API child, then of the worker child, of a running ``civic-ledger run`` (the
  supervisor restarts them); ``test_end_to_end`` already kills the whole process group;
* the chain node down (killed, brought back on its data after a while);
* the chain wiped: seen while running, refused at start, repaired by ``civic-ledger reanchor``;
* PostgreSQL restarted under load (root and ``pg_ctlcluster`` needed);
* two anchoring worker processes started at once, the active one killed.

Measured numbers are printed (``-s``) and, with ``CIVIC_CHAOS_REPORT=FILE``, appended to FILE as
JSON lines. ``CIVIC_CHAOS_OUTAGE`` sets the chain outage in seconds (default 10; the full
60-second scenario is ``scripts/chaos chain-down``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_utils import keccak
from sqlalchemy import select

from contracts.keys import load_or_create_key
from core.verdicts import Verdict
from ledger import service
from ledger.devchain import DevChain, start_ganache
from ledger.models import BatchRow, LogHead, WorkerStatus
from tests.fixtures.db import BACKENDS, POSTGRES_URL, Database, postgres_schema_url
from tests.fixtures.service import Service
from verifier.audit import audit_store
from verifier.audit.findings import AuditReport
from verifier.audit.reading import open_store
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt

pytestmark = pytest.mark.chain

GOOD = {
    "title": "小区门口积水",
    "text": "每逢下雨，幸福小区南门积水没过脚踝。",
    "category": "城乡建设",
    "district": "鼓楼区",
}

OUTAGE = float(os.environ.get("CIVIC_CHAOS_OUTAGE", "10"))
# kill: the node dies and is started again on its data; freeze: it hangs (SIGSTOP), answering
# nothing, as behind a blocked port, and resumes (SIGCONT).
OUTAGE_MODE = os.environ.get("CIVIC_CHAOS_MODE", "kill")


def measured(name: str, **numbers: Any) -> None:
    line = json.dumps({"scenario": name, **numbers})
    print(f"CHAOS {line}")
    report = os.environ.get("CIVIC_CHAOS_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


# -- the service and its children -------------------------------------------------------------


def children(pid: int) -> dict[str, int]:
    """The supervisor's children by role: api, writer, worker, verifier, chain."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) != pid:
            continue
        if "api.cli api" in cmdline:
            found["api"] = int(entry.name)
        elif "api.cli writer" in cmdline:
            found["writer"] = int(entry.name)
        elif "api.cli worker" in cmdline:
            found["worker"] = int(entry.name)
        elif "verifier.cli" in cmdline:
            found["verifier"] = int(entry.name)
        elif "ganache" in cmdline:
            found["chain"] = int(entry.name)
    return found


def database_url(svc: Service) -> str:
    return svc.env.get("CIVIC_DATABASE_URL") or f"sqlite:///{svc.data_dir / 'civic-ledger.db'}"


@pytest.fixture
def make_service(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    """Start `civic-ledger run` on SQLite or on a fresh PostgreSQL schema; killed afterwards."""
    made: list[tuple[Service, Callable[[], None] | None]] = []

    def make(backend: str, api_workers: int | None = 1) -> Service:
        """``api_workers``: API processes (None: the default, one per core)."""
        url, drop = None, None
        if backend == "postgres":
            if not POSTGRES_URL:
                pytest.skip("CIVIC_TEST_POSTGRES_URL is not set")
            url, drop = postgres_schema_url()
        extra = {"CIVIC_API_WORKERS": str(api_workers)} if api_workers else {}
        svc = Service(
            tmp_path / f"data-{len(made)}", database_url=url, interval=1.0, extra_env=extra
        )
        made.append((svc, drop))
        svc.start()
        return svc

    yield make
    for svc, drop in made:
        if svc.proc and svc.proc.poll() is None:
            svc.kill9()
        if drop:
            drop()


class Stream:
    """Submissions from ``threads`` clients, each one after the other, until stopped. Keeps
    every acknowledged record hash and every answer that was not a 201."""

    def __init__(self, api: str, threads: int = 3, pause: float = 0.02) -> None:
        self.api = api
        self.pause = pause
        self.acknowledged: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.transport_errors = 0
        self.unclean: list[str] = []  # answers neither 201 nor a 503 with the error shape
        self.last_ack = 0.0
        self.last_error = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def __enter__(self) -> Stream:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _run(self, n: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    r = client.post(
                        f"{self.api}/api/v1/suggestions",
                        json={**GOOD, "title": f"故障 {n}-{i}"},
                    )
                except httpx.HTTPError:
                    with self._lock:
                        self.transport_errors += 1
                        self.last_error = time.monotonic()
                    time.sleep(0.05)
                    continue
                with self._lock:
                    self.statuses[r.status_code] += 1
                    if r.status_code == 201:
                        self.acknowledged.append(r.json()["record_hash"])
                        self.last_ack = time.monotonic()
                    else:  # only a clean 503 is acceptable: the one JSON error shape
                        try:
                            body = r.json()
                            if set(body) != {"error", "detail"} or r.status_code != 503:
                                self.unclean.append(f"{r.status_code} {r.text[:300]}")
                        except ValueError:
                            self.unclean.append(f"{r.status_code} {r.text[:300]}")
                time.sleep(self.pause)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)


def wait_all_anchored(svc: Service, hashes: list[str], timeout: float) -> dict[str, dict]:
    """Every record's receipt (each must come within ``timeout`` s in all)."""
    deadline = time.monotonic() + timeout
    receipts: dict[str, dict] = {}
    with httpx.Client(timeout=10) as client:
        for record_hash in hashes:
            while True:
                r = client.get(f"{svc.api}/api/v1/records/{record_hash}/receipt")
                if r.status_code == 200:
                    receipts[record_hash] = r.json()
                    break
                assert r.status_code == 202, r.text
                assert time.monotonic() < deadline, (
                    f"{record_hash} not anchored in {timeout}s\n{svc.log_tail()}"
                )
                time.sleep(0.1)
    return receipts


def check_receipts(svc: Service, receipts: dict[str, dict]) -> None:
    """One receipt per batch is verified in full against the chain (the audit checks every
    batch root and every record); all must name the batch the service anchored."""
    reader = Web3ChainReader(svc.rpc)
    seen: set[tuple[str, int]] = set()
    for receipt in receipts.values():
        key = (receipt["proof"]["log"], receipt["proof"]["batch"])
        if key in seen:
            continue
        seen.add(key)
        assert verify_receipt(receipt, reader).verdict is Verdict.VALID, receipt


def audit(svc: Service) -> AuditReport:
    with open_store(database_url(svc)) as store:
        report = audit_store(store, Web3ChainReader(svc.rpc))
    assert report.clean, [f.to_dict() for f in report.findings]
    return report


def healthz(svc: Service) -> tuple[int, dict]:
    """/healthz/detail, as an inspector: the public /healthz says only booleans."""
    return svc.health(timeout=10)


def wait_for(what: str, check: Callable[[], bool], timeout: float, svc: Service) -> float:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what} not within {timeout}s\n{svc.log_tail()}"
        time.sleep(0.1)
    return time.monotonic() - start


def api_answers(svc: Service) -> bool:
    try:
        return httpx.get(f"{svc.api}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


# -- 1. kill -9 of the worker, the API and the writer children -------------------------------


def kill_and_replace(
    svc: Service, stream: Stream, role: str, pid: int, within: float
) -> tuple[float, float]:
    """kill -9 a child of the service, wait for its successor and for 20 more acknowledged
    submissions: seconds until the successor ran, and seconds from the kill to the last
    failed request (0 when none failed)."""
    assert svc.proc is not None
    parent = svc.proc.pid
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    at_kill, last_error = stream.count(), stream.last_error
    wait_for(f"a new {role}", lambda: children(parent).get(role) not in (None, pid), 10, svc)
    replaced = time.monotonic() - killed
    wait_for("more submissions", lambda: stream.count() > at_kill + 20, within, svc)
    failed_for = max(0.0, stream.last_error - killed) if stream.last_error != last_error else 0.0
    return replaced, failed_for


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_9_of_the_api_the_writer_and_the_worker_loses_nothing_acknowledged(
    make_service: Callable[..., Service], backend: str
) -> None:
    svc = make_service(backend, api_workers=2)  # a uvicorn master and its workers
    assert svc.proc is not None
    before = children(svc.proc.pid)
    assert {"api", "writer", "worker", "verifier", "chain"} <= set(before), before
    with Stream(svc.api) as stream:
        wait_for("submissions", lambda: stream.count() > 30, 20, svc)
        worker_back, _ = kill_and_replace(svc, stream, "worker", before["worker"], 20)
        _, api_back = kill_and_replace(svc, stream, "api", before["api"], 30)
        # The writer process: the writes it had read and not answered are 503s (not
        # acknowledged), the API processes reconnect to its successor.
        _, writer_back = kill_and_replace(svc, stream, "writer", before["writer"], 30)
    after = children(svc.proc.pid)
    assert after["api"] != before["api"] and after["worker"] != before["worker"]
    assert after["writer"] != before["writer"]
    # Each came back once and stayed: no restart loop (an orphan of the killed API holding the
    # port made every restart fail with "Address already in use").
    log = svc.log_path.read_text(errors="replace")
    assert log.count("api exited") == 1 and log.count("worker exited") == 1, log[-3000:]
    assert log.count("writer exited") == 1, log[-3000:]
    assert stream.unclean == [] and stream.statuses[500] == 0, stream.unclean

    started = time.monotonic()
    wait_all_anchored(svc, stream.acknowledged[-1:], timeout=60)
    to_anchor = time.monotonic() - started
    receipts = wait_all_anchored(svc, stream.acknowledged, timeout=60)
    check_receipts(svc, receipts)
    report = audit(svc)
    assert report.records >= len(stream.acknowledged)
    measured(
        f"kill-9-children[{backend}]",
        acknowledged=len(stream.acknowledged),
        stored=report.records,
        lost=0,
        transport_errors=stream.transport_errors,
        statuses=dict(stream.statuses),
        worker_restarted_s=round(worker_back, 2),
        api_unavailable_s=round(api_back, 2),
        writer_unavailable_s=round(writer_back, 2),
        all_anchored_after_stop_s=round(to_anchor, 2),
    )
    assert svc.stop() == 0


# -- 2. the chain node down --------------------------------------------------------------


def restart_chain(svc: Service, db_path: Path | None) -> DevChain:
    """A ganache on the service's chain port: on its data (the node comes back) or on none (a
    fresh chain: what a wiped one looks like)."""
    key = load_or_create_key(svc.data_dir / "anchor.key")
    return start_ganache(
        port=svc.chain_port,
        db_path=db_path,
        funded_keys=[key],
        log_path=svc.data_dir.parent / f"ganache-{time.monotonic_ns()}.log",
    )


def test_the_chain_down_keeps_submissions_flowing_and_the_backlog_is_anchored_after(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service("sqlite")
    assert svc.proc is not None
    ganache = children(svc.proc.pid)["chain"]
    revived: DevChain | None = None
    try:
        with Stream(svc.api, threads=2, pause=0.1) as stream:
            wait_for("submissions", lambda: stream.count() > 10, 20, svc)
            wait_all_anchored(svc, list(stream.acknowledged), timeout=30)
            os.kill(ganache, signal.SIGSTOP if OUTAGE_MODE == "freeze" else signal.SIGKILL)
            down_at = time.monotonic()
            at_down = stream.count()

            def reported_down() -> bool:
                code, body = healthz(svc)
                worker = body["worker"]["logs"].get("suggestions", {})
                return (
                    code == 503
                    and not body["chain"]["ok"]
                    and "ChainUnavailable" in body["chain"].get("error", "")
                    and not body["chain"].get("reanchor_needed")
                    and worker.get("state") == "chain_unreachable"
                )

            # A hung node is noticed when requests time out (the worker's after 10 s).
            limit = OUTAGE if OUTAGE_MODE == "kill" else max(OUTAGE, 25)
            reported = wait_for("/healthz reporting the chain down", reported_down, limit, svc)
            time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))
            during = stream.count() - at_down
            assert during > 0
            if OUTAGE_MODE == "freeze":
                os.kill(ganache, signal.SIGCONT)
            else:
                revived = restart_chain(svc, svc.data_dir / "chain")
            up_at = time.monotonic()
            backlog = list(stream.acknowledged)
            # Batches are anchored in order: the newest record of the backlog comes last.
            wait_all_anchored(svc, backlog[-1:], timeout=90)
            to_anchor = time.monotonic() - up_at
            wait_all_anchored(svc, backlog, timeout=90)
            healthy = wait_for("/healthz 200", lambda: healthz(svc)[0] == 200, 30, svc)
        assert stream.unclean == [] and stream.statuses[500] == 0, stream.unclean
        receipts = wait_all_anchored(svc, stream.acknowledged, timeout=30)
        check_receipts(svc, receipts)
        audit(svc)
        measured(
            f"chain-down[{OUTAGE_MODE}]",
            outage_s=OUTAGE,
            accepted_during_outage=during,
            acknowledged=len(stream.acknowledged),
            healthz_reported_down_after_s=round(reported, 2),
            backlog_anchored_after_chain_back_s=round(to_anchor, 2),
            healthz_ok_after_anchored_s=round(healthy, 2),
            statuses=dict(stream.statuses),
        )
        assert svc.stop() == 0
    finally:
        if revived is not None:
            revived.stop()


# -- 3. the development chain wiped ---------------------------------------------------------


def _cli(svc: Service, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env={**svc.env, "CIVIC_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_wiped_chain_is_reported_refused_and_reanchored(
    make_service: Callable[..., Service],
) -> None:
    svc = make_service("sqlite")
    assert svc.proc is not None
    with httpx.Client(timeout=10) as client:
        submitted = [
            client.post(f"{svc.api}/api/v1/suggestions", json={**GOOD, "title": f"旧 {i}"})
            for i in range(8)
        ]
    old = wait_all_anchored(svc, [r.json()["record_hash"] for r in submitted], timeout=30)
    contract = json.loads((svc.data_dir / "contract.json").read_text())["address"]

    # While running: a fresh node takes the port (the old one died, its data is gone).
    os.kill(children(svc.proc.pid)["chain"], signal.SIGKILL)
    fresh = restart_chain(svc, None)
    try:

        def reported_reset() -> bool:
            code, body = healthz(svc)
            return code == 503 and bool(body["chain"].get("reanchor_needed"))

        seen = wait_for("/healthz reporting the reset", reported_reset, 20, svc)
        _, body = healthz(svc)
        assert "civic-ledger reanchor" in body["chain"]["error"]
        assert body["chain"]["contract_code"] is False
        during = httpx.post(f"{svc.api}/api/v1/suggestions", json=GOOD, timeout=10)
        assert during.status_code == 201  # still accepting
        assert svc.stop() == 0
    finally:
        fresh.stop()

    # Stopped: the chain's data is deleted. `run` refuses, naming the repair.
    shutil.rmtree(svc.data_dir / "chain")
    refused = subprocess.run(
        [sys.executable, "-m", "api.cli", "run"],
        env=svc.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0
    assert "civic-ledger reanchor" in refused.stderr, refused.stderr[-2000:]

    started = time.monotonic()
    repaired = _cli(svc, "reanchor", "--json")
    reanchor_s = time.monotonic() - started
    assert repaired.returncode == 0, repaired.stderr
    result = json.loads(repaired.stdout)
    batches = {r["proof"]["batch"] for r in old.values()}
    assert result["batches"] == {"suggestions": max(batches) + 1}
    assert result["old_contract"] == contract and "no contract code" in result["reason"]

    svc.start()
    after = httpx.post(f"{svc.api}/api/v1/suggestions", json=GOOD, timeout=10)
    assert after.status_code == 201
    hashes = [*old, during.json()["record_hash"], after.json()["record_hash"]]
    receipts = wait_all_anchored(svc, hashes, timeout=30)
    reader = Web3ChainReader(svc.rpc)
    for receipt in receipts.values():
        assert receipt["anchor"]["contract"] == result["new_contract"]
        assert verify_receipt(receipt, reader).verdict is Verdict.VALID
    for receipt in old.values():  # handed out before the reset
        verdict = verify_receipt(receipt, reader).verdict
        expected = Verdict.VALID if result["new_contract"] == contract else Verdict.WRONG_CHAIN
        assert verdict is expected
    wait_for("/healthz 200", lambda: healthz(svc)[0] == 200, 30, svc)
    # The event is a record, anchored; the audit lists it and finds nothing.
    receipts = wait_all_anchored(svc, [result["records"]["suggestions"]], timeout=30)
    report = audit(svc)
    [event] = report.reanchored
    assert event.record_hash == result["records"]["suggestions"]
    assert event.batches == result["batches"]["suggestions"]
    measured(
        "chain-wiped",
        batches_reanchored=sum(result["batches"].values()),
        reanchor_command_s=round(reanchor_s, 2),
        healthz_reported_reset_after_s=round(seen, 2),
        same_registry_address=result["new_contract"] == contract,
    )
    assert svc.stop() == 0


# -- 4. PostgreSQL restarted under load -------------------------------------------------------


def _pg_cluster() -> list[str] | None:
    """``[version, name]`` of the local cluster to restart, or None when we cannot."""
    if os.geteuid() != 0 or shutil.which("pg_ctlcluster") is None:
        return None
    wanted = os.environ.get("CIVIC_TEST_PG_CLUSTER")
    if wanted:
        return wanted.split()
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*") if p.is_dir())
    return [versions[-1], "main"] if versions else None


def _pg_online(cluster: list[str]) -> bool:
    result = subprocess.run(
        ["pg_ctlcluster", *cluster, "status"], capture_output=True, text=True, timeout=30
    )
    return result.returncode == 0


@pytest.mark.postgres
def test_postgres_restarted_mid_load_fails_cleanly_and_recovers(
    make_service: Callable[..., Service],
) -> None:
    cluster = _pg_cluster()
    if cluster is None:
        pytest.skip("needs root and pg_ctlcluster to restart the local PostgreSQL")
    svc = make_service("postgres")
    try:
        with Stream(svc.api) as stream:
            wait_for("submissions", lambda: stream.count() > 40, 20, svc)
            began = time.monotonic()
            subprocess.run(["pg_ctlcluster", *cluster, "restart"], check=True, timeout=120)
            restarted = time.monotonic() - began
            back_at = time.monotonic()
            at_back = stream.count()
            recovered = wait_for(
                "a 201 after the restart", lambda: stream.count() > at_back, 30, svc
            )
            wait_for("more submissions", lambda: stream.count() > at_back + 40, 30, svc)
        wait_for("/healthz 200", lambda: healthz(svc)[0] == 200, 30, svc)
        healthy = time.monotonic() - back_at
    finally:
        if not _pg_online(cluster):
            subprocess.run(["pg_ctlcluster", *cluster, "start"], timeout=120)
    assert stream.unclean == [] and stream.statuses[500] == 0, stream.unclean
    # Nobody crashed: the worker and the API rode it out (a worker that died at its lock
    # would be restarted into a failing start-up, and five of those stop the service).
    log = svc.log_path.read_text(errors="replace")
    assert "exited with code" not in log, log[-4000:]
    receipts = wait_all_anchored(svc, stream.acknowledged, timeout=60)
    check_receipts(svc, receipts)
    report = audit(svc)
    measured(
        "postgres-restart",
        acknowledged=len(stream.acknowledged),
        stored=report.records,
        answered_503=stream.statuses[503],
        transport_errors=stream.transport_errors,
        pg_restart_command_s=round(restarted, 2),
        first_201_after_restart_s=round(recovered, 2),
        healthz_ok_after_restart_s=round(healthy, 2),
        statuses=dict(stream.statuses),
    )
    assert svc.stop() == 0


# -- 5. two anchoring workers started at once ------------------------------------------------


def _worker_process(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _append(db: Database, n: int, tag: str) -> None:
    with db.sessions.begin() as session:
        service.append_record(
            session,
            log="suggestions",
            type="suggestion.submitted",
            subject=f"SG-{tag}-{n:04d}",
            actor={"role": "citizen", "id": f"anon-{n:016x}"},
            body={"title": "t", "text": "x", "category": "c", "district": "d"},
        )


def _active_worker(db: Database) -> str | None:
    with db.sessions() as session:
        row = session.get(WorkerStatus, "suggestions")
        return row.worker_id if row else None


def test_two_worker_processes_started_at_once_anchor_each_batch_once(
    database: Database, registry, ganache, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    key_file = tmp_path / "anchor.key"
    key_file.write_text(ganache.keys[0].hex())
    key_file.chmod(0o600)
    env = {
        **os.environ,
        "CIVIC_DATA_DIR": str(tmp_path / "data"),
        "CIVIC_DATABASE_URL": database.url,
        "CIVIC_CHAIN_RPC": ganache.rpc_url,
        "CIVIC_CONTRACT": registry.address,
        "CIVIC_KEY_FILE": str(key_file),
        "CIVIC_ANCHOR_INTERVAL": "0.3",
        "CIVIC_BATCH_MAX": "7",
    }
    logs = tmp_path / "workers.log"
    workers = [_worker_process(env, logs) for _ in range(2)]
    total = 0
    try:
        deadline = time.monotonic() + 30
        while _active_worker(database) is None:
            assert time.monotonic() < deadline, logs.read_text()
            time.sleep(0.1)
        for _ in range(30):
            _append(database, total, "A")
            total += 1
            time.sleep(0.03)
        active = _active_worker(database)
        assert active is not None
        victim = next(w for w in workers if active.endswith(f":{w.pid}"))
        victim.kill()
        victim.wait(10)
        killed = time.monotonic()
        workers.append(_worker_process(env, logs))  # what the supervisor would do
        for _ in range(30):
            _append(database, total, "B")
            total += 1
            time.sleep(0.03)
        while _active_worker(database) == active:
            assert time.monotonic() - killed < 30, logs.read_text()
            time.sleep(0.1)
        takeover = time.monotonic() - killed

        def anchored() -> int:
            with database.sessions() as session:
                head = session.get(LogHead, "suggestions")
                assert head is not None
                rows = session.scalars(
                    select(BatchRow).where(
                        BatchRow.log == "suggestions", BatchRow.state == "anchored"
                    )
                ).all()
                # each batch: its records, then its map head (PROTOCOL §10)
                done = sum(r.size - 1 for r in rows)
                return done if head.sealed_until == head.next_position else -1

        deadline = time.monotonic() + 60
        while anchored() != total:
            assert time.monotonic() < deadline, logs.read_text()[-4000:]
            time.sleep(0.2)
        alive = [w for w in workers if w.poll() is None]
        assert len(alive) == 2  # the standby and the newcomer, neither crashed
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(15)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait(5)

    with database.sessions() as session:
        batches = list(
            session.scalars(
                select(BatchRow).where(BatchRow.log == "suggestions").order_by(BatchRow.number)
            )
        )
    n = len(batches)
    assert [b.number for b in batches] == list(range(n))
    assert [b.first_position for b in batches] == [
        sum(b.size for b in batches[:i]) for i in range(n)
    ]
    assert sum(b.size for b in batches) == total + n and all(b.state == "anchored" for b in batches)
    client = registry.client
    assert client.next_batch(registry.address, "suggestions") == n
    for b in batches:
        on_chain = client.batch_of(registry.address, "suggestions", b.number)
        assert on_chain is not None and (on_chain.root, on_chain.size) == (b.log_root, b.end)
    anchored_topic = "0x" + keccak(text="Anchored(bytes32,uint64,bytes32,uint32)").hex()
    events = client.w3.eth.get_logs(
        {
            "address": registry.address,
            "fromBlock": registry.deployment.block_number,
            "topics": [anchored_topic],
        }
    )
    assert len(events) == n  # one Anchored event per batch: none twice, none skipped
    measured(
        f"two-workers[{database.backend}]",
        records=total,
        batches=n,
        standby_took_over_s=round(takeover, 2),
    )
