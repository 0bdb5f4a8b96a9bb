"""The ``crud-baseline`` part of ./scripts/bench: civic-ledger against a plain CRUD app.

The same load — 50 keep-alive connections posting distinct suggestions (POST
/api/v1/suggestions, anonymous) for 30 s (5 s with ``--quick``) — against

* civic-ledger (``civic-ledger run``, as scripts/load.py starts it: temporary data directory,
  free ports, submission rate limit off) on SQLite and on a fresh PostgreSQL schema;
* scripts/crud_baseline.py, a plain FastAPI + SQLAlchemy app doing one INSERT and one COMMIT
  per request, under uvicorn with as many workers as the service's API, on SQLite (WAL,
  synchronous=FULL) and on its own PostgreSQL schema (dropped afterwards).

The load generator is ``wrk`` (installed with ``apt-get install -y wrk`` when missing and
running as root; a Lua script makes every body distinct), or else the project's own asyncio
keep-alive client from scripts/load.py. The result says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parent
for _path in (ROOT, SCRIPTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import load  # noqa: E402 - scripts/load.py, found through the path above

PATH = "/api/v1/suggestions"
CONNECTIONS = 50
THREADS = 2
TIMEOUT_S = 10
MARK = "CRUD_BASELINE_JSON "

# Every request's body is distinct: the thread's number and its own counter in title and text.
WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local threads = {}
local counter = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"title":"路灯不亮 %d-%d","text":"幸福路口的路灯坏了三周，晚上行人看不清路。（%d-%d）",'
      .. '"category":"城乡建设","district":"鼓楼区"}', tid, counter, tid, counter)
  return wrk.format(nil, "__PATH__", nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '__MARK__{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,'
      .. '"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
""".replace("__PATH__", PATH).replace("__MARK__", MARK)


# -- the generator ----------------------------------------------------------------------------


def find_wrk() -> tuple[str | None, str]:
    """wrk's path (installing the Debian package when missing and allowed), and a note."""
    found = shutil.which("wrk")
    if found:
        return found, "wrk found on PATH"
    apt = shutil.which("apt-get")
    if apt is None:
        return None, "wrk not installed and no apt-get"
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return None, "wrk not installed; not root and no sudo to install it"
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("    wrk missing: apt-get install -y wrk …", flush=True)
    attempts = [[apt, "install", "-y", "wrk"], [apt, "update"], [apt, "install", "-y", "wrk"]]
    for i, command in enumerate(attempts):
        done = subprocess.run(
            prefix + command, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        if i == 0 and done.returncode == 0:
            break  # installed without an update of the package lists
        if i == 2 and done.returncode != 0:
            return None, f"apt-get install -y wrk failed: {done.stderr.strip()[-300:]}"
    found = shutil.which("wrk")
    if found is None:
        return None, "wrk not found after apt-get install -y wrk"
    return found, "wrk installed by this run with apt-get install -y wrk"


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0].strip() if first else "wrk"


def run_wrk(wrk: str, port: int, duration: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", encoding="utf-8") as script:
        script.write(WRK_SCRIPT)
        script.flush()
        done = subprocess.run(
            [
                wrk,
                f"-t{THREADS}",
                f"-c{CONNECTIONS}",
                f"-d{duration:g}s",
                f"--timeout={TIMEOUT_S}s",
                "-s",
                script.name,
                f"http://127.0.0.1:{port}{PATH}",
            ],
            capture_output=True,
            text=True,
            timeout=duration + 120,
            check=False,
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith(MARK)), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result ({done.returncode}): {done.stderr[-500:]}")
    w = json.loads(line[len(MARK) :])
    seconds = w["duration_us"] / 1e6
    # wrk counts every answer in "requests"; "status" is those not 2xx or 3xx.
    ok = w["requests"] - w["status"]
    return {
        "seconds": round(seconds, 2),
        "answered": w["requests"],
        "ok": ok,
        "per_second": round(ok / seconds, 1),
        "p50_ms": round(w["p50_us"] / 1000, 1),
        "p90_ms": round(w["p90_us"] / 1000, 1),
        "p99_ms": round(w["p99_us"] / 1000, 1),
        "max_ms": round(w["max_us"] / 1000, 1),
        "non_2xx": w["status"],
        "timeouts": w["timeout"],
        "socket_errors": w["connect"] + w["read"] + w["write"],
    }


async def _client(n: int, port: int, deadline: float, out: dict[str, Any]) -> None:
    conn = load.Connection("127.0.0.1", port)
    count = 0
    try:
        while time.monotonic() < deadline:
            count += 1
            body = {
                **load.SUGGESTION,
                "title": f"路灯不亮 {n}-{count}",
                "text": f"{load.SUGGESTION['text']}（{n}-{count}）",
            }
            data = json.dumps(body, ensure_ascii=False).encode()
            start = time.perf_counter()
            try:
                status, _ = await conn.request("POST", PATH, data, timeout=TIMEOUT_S)
            except load.HTTPError as exc:
                out["timeouts" if "TimeoutError" in str(exc) else "socket_errors"] += 1
                continue
            out["latencies"].append(time.perf_counter() - start)
            out["ok" if 200 <= status < 400 else "non_2xx"] += 1
    finally:
        conn.close()


def run_own(port: int, duration: float) -> dict[str, Any]:
    """The fallback: scripts/load.py's keep-alive client, one asyncio task per connection."""
    out: dict[str, Any] = {"latencies": [], "ok": 0, "non_2xx": 0, "timeouts": 0}
    out["socket_errors"] = 0

    async def drive() -> float:
        start = time.perf_counter()
        deadline = time.monotonic() + duration
        await asyncio.gather(*(_client(n, port, deadline, out) for n in range(CONNECTIONS)))
        return time.perf_counter() - start

    with asyncio.Runner(loop_factory=load._event_loop_factory()) as runner:
        seconds = runner.run(drive())
    lat = sorted(out["latencies"])
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else 0.0  # noqa: E731
    return {
        "seconds": round(seconds, 2),
        "answered": len(lat),
        "ok": out["ok"],
        "per_second": round(out["ok"] / seconds, 1),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": round(lat[-1] * 1000, 1) if lat else 0.0,
        "non_2xx": out["non_2xx"],
        "timeouts": out["timeouts"],
        "socket_errors": out["socket_errors"],
    }


# -- the targets ------------------------------------------------------------------------------


def api_workers() -> int:
    """The service's default number of API processes (CIVIC_API_WORKERS, else one per core,
    at most 4): the plain app gets as many."""
    try:
        from api.supervisor import api_workers as service_workers
        from ledger.settings import Settings

        return service_workers(Settings())
    except Exception:  # the same rule, should the service's modules be mid-refactor
        return int(os.environ.get("CIVIC_API_WORKERS") or max(1, min(4, os.cpu_count() or 1)))


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait until ``url`` answers 200; the last status (0: no answer)."""
    import httpx

    deadline = time.monotonic() + timeout
    last = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            last = httpx.get(url, timeout=2).status_code
            if last == 200:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return last


def _count(url: str, sql: str) -> int:
    from sqlalchemy import text

    from ledger.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


class Plain:
    """scripts/crud_baseline.py under uvicorn, in its own process group."""

    def __init__(self, database_url: str, workers: int, log_path: Path) -> None:
        self.url, self.workers, self.log_path = database_url, workers, log_path
        self.port = load.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import crud_baseline

        crud_baseline.create_table(self.url)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "crud_baseline:app",
                "--app-dir",
                str(SCRIPTS),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                # as the service's uvicorn.run: loop and http "auto" (uvloop and httptools
                # when installed), no access log
                "--loop",
                "auto",
                "--http",
                "auto",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env={**os.environ, "CRUD_DATABASE_URL": self.url},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=SCRIPTS,
        )
        if _wait_healthy(f"http://127.0.0.1:{self.port}/healthz", self.proc, 60) != 200:
            raise RuntimeError(
                "the plain app did not come up:\n" + self.log_path.read_text()[-3000:]
            )

    def stop(self) -> None:
        load.stop_process_group(self.proc)


def _measure(
    target: str,
    database: str,
    port: int,
    pgid: int,
    duration: float,
    wrk: str | None,
    count: Any,
) -> dict[str, Any]:
    busy0, cpu0, loadavg = load._machine_busy(), load._group_cpu(pgid), os.getloadavg()
    r = run_wrk(wrk, port, duration) if wrk else run_own(port, duration)
    busy1, cpu1 = load._machine_busy(), load._group_cpu(pgid)
    time.sleep(1.0)  # requests in flight when the generator stopped are finished
    stored = count()
    cpu = {k: round(v - cpu0.get(k, 0.0), 1) for k, v in sorted(cpu1.items())}
    r.update(
        target=target,
        database=database,
        stored=stored,
        # every 2xx is stored; at most one request per connection was cut off in flight
        store_ok=r["ok"] <= stored <= r["ok"] + CONNECTIONS,
        server_cpu_s=round(sum(cpu.values()), 1),
        server_cpu_s_by_process=cpu,
        server_cpu_ms_per_submission=round(1000 * sum(cpu.values()) / max(1, r["ok"]), 2),
        machine_busy_percent=round(100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1),
        loadavg_before="/".join(f"{x:.1f}" for x in loadavg),
    )
    return r


def _service_run(database: str, url: str | None, duration: float, wrk: str | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="civic-crud-") as tmp, contextlib.ExitStack() as stack:
        db_url = stack.enter_context(load.postgres_schema(url)) if url else None
        service = load.Service(Path(tmp) / "data", db_url)
        stack.callback(service.stop)
        service.start()
        assert service.proc is not None
        health = _wait_healthy(f"http://127.0.0.1:{service.api_port}/healthz", service.proc, 60)
        if health != 200:
            print(f"    (the service's /healthz still answers {health}; measuring anyway)")
        result = _measure(
            "civic-ledger",
            database,
            service.api_port,
            service.proc.pid,
            duration,
            wrk,
            # the store check of scripts/load.py: records in the suggestions log, dense
            lambda: load.check_store(service.database_url, [], 0)["stored_in_log"],
        )
        result["healthz_before"] = health
        if service.proc.poll() is not None:
            raise RuntimeError("the service exited during the run:\n" + service.log_tail())
        return result


def _plain_run(database: str, url: str | None, duration: float, wrk: str | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="civic-crud-") as tmp, contextlib.ExitStack() as stack:
        db_url = (
            stack.enter_context(load.postgres_schema(url)) if url else f"sqlite:///{tmp}/crud.db"
        )
        plain = Plain(db_url, api_workers(), Path(tmp) / "plain.log")
        stack.callback(plain.stop)
        plain.start()
        assert plain.proc is not None
        return _measure(
            "plain app",
            database,
            plain.port,
            plain.proc.pid,
            duration,
            wrk,
            lambda: _count(db_url, "SELECT count(*) FROM crud_suggestions"),
        )


def run_crud_baseline(quick: bool) -> dict[str, Any]:
    duration = 5.0 if quick else 30.0
    wrk, note = find_wrk()
    generator = (
        wrk_version(wrk) if wrk else "scripts/load.py's asyncio keep-alive client (wrk unavailable)"
    )
    print(f"    generator: {generator} ({note})", flush=True)
    pg = load.postgres_url("the baseline runs")
    runs: list[dict[str, Any]] = []
    for database, url in (("sqlite", None), ("postgresql", pg)):
        if database == "postgresql" and pg is None:
            continue
        for target, run in (("civic-ledger", _service_run), ("plain app", _plain_run)):
            print(f"    {target} on {database} …", flush=True)
            try:
                r = run(database, url, duration, wrk)
            except Exception as exc:
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                print(f"    failed: {failure}", flush=True)
                runs.append({"target": target, "database": database, "failed": failure})
                continue
            print(
                f"    {r['per_second']} submissions/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} "
                f"ms, non-2xx {r['non_2xx']}, timeouts {r['timeouts']}, socket errors "
                f"{r['socket_errors']}; stored {r['stored']} of {r['ok']} acknowledged",
                flush=True,
            )
            runs.append(r)
    ratios = {}
    for database in ("sqlite", "postgresql"):
        by = {r["target"]: r for r in runs if r["database"] == database and "failed" not in r}
        if len(by) == 2:
            s, p = by["civic-ledger"], by["plain app"]
            ratios[database] = {
                "submissions_per_s": round(s["per_second"] / max(p["per_second"], 0.1), 2),
                "p50": round(s["p50_ms"] / max(p["p50_ms"], 0.1), 2),
                "p99": round(s["p99_ms"] / max(p["p99_ms"], 0.1), 2),
            }
    return {
        "generator": generator,
        "generator_note": note,
        "connections": CONNECTIONS,
        "threads": THREADS if wrk else 1,
        "duration_s": duration,
        "timeout_s": TIMEOUT_S,
        "workers": api_workers(),
        "runs": runs,
        "ratios": ratios,
    }


# -- report -----------------------------------------------------------------------------------


def _goal(result: dict[str, Any]) -> list[str]:
    plain = next(
        (
            r
            for r in result["runs"]
            if r["target"] == "plain app" and r["database"] == "postgresql" and "failed" not in r
        ),
        None,
    )
    if plain is None:
        return ["Goal not checked: no run of the plain app on PostgreSQL."]
    lines = []
    for r in result["runs"]:
        if r["target"] != "civic-ledger" or "failed" in r:
            continue
        met = r["per_second"] > plain["per_second"] and r["p99_ms"] < plain["p99_ms"]
        like = "like for like" if r["database"] == "postgresql" else "its default database"
        lines.append(
            f"* civic-ledger on {r['database']} ({like}): {r['per_second']} submissions/s, p99 "
            f"{r['p99_ms']} ms against the plain app on PostgreSQL's {plain['per_second']}/s, "
            f"{plain['p99_ms']} ms: **{'met' if met else 'not met'}**."
        )
    return lines


def render_crud_baseline(result: dict[str, Any]) -> list[str]:
    lines = [
        "## Against a plain CRUD app (crud-baseline)",
        "",
        f"The same load against civic-ledger and against `scripts/crud_baseline.py`, a plain "
        f"FastAPI + SQLAlchemy app (a benchmark baseline, not part of the service) that does "
        f"one INSERT and one COMMIT per request into one table: {result['connections']} "
        f"keep-alive connections post distinct suggestions (POST /api/v1/suggestions, every "
        f"body different) for {result['duration_s']:g} s, each as soon as its last one is "
        "answered. "
        + (
            f"Load generator: **{result['generator']}** ({result['generator_note']}), "
            f"{result['threads']} threads, request timeout {result['timeout_s']} s, a Lua "
            "script numbering every body. "
            if result["generator"].startswith("wrk")
            else f"Load generator: **{result['generator']}** ({result['generator_note']}). "
        )
        + "The bench uses wrk (Debian package `wrk`, installed with `apt-get install -y wrk` "
        "when missing and allowed) and falls back to scripts/load.py's client otherwise. "
        "civic-ledger is "
        "`civic-ledger run` as `scripts/load` starts it (API, writer process, anchoring worker, "
        "verifier service and ganache on the same cores; anonymous rate limit off); the plain "
        f"app runs under uvicorn with the same {result['workers']} worker processes and the "
        "same event loop and HTTP parser (uvloop, httptools). Both keep the same durability: "
        "SQLite in WAL mode with `synchronous=FULL`, PostgreSQL (psycopg 3) with "
        "`synchronous_commit=on`, each on a fresh schema.",
        "",
        "| target | database | submissions/s | p50 ms | p99 ms | non-2xx | timeouts "
        "| socket errors | stored / acknowledged | server CPU ms per submission "
        "| machine busy | load avg before |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        if "failed" in r:
            lines.append(f"| {r['target']} | {r['database']} | failed: {r['failed']} |")
            continue
        lines.append(
            f"| {r['target']} | {r['database']} | **{r['per_second']}** | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['non_2xx']} | {r['timeouts']} | {r['socket_errors']} "
            f"| {r['stored']} / {r['ok']}{'' if r['store_ok'] else ' (MISMATCH)'} "
            f"| {r['server_cpu_ms_per_submission']} | {r['machine_busy_percent']}% "
            f"| {r['loadavg_before']} |"
        )
    lines += [
        "",
        "Ratios civic-ledger ÷ plain app, per database (above 1 is more submissions a second, "
        "or a longer latency):",
        "",
        "| database | submissions/s | p50 | p99 |",
        "|---|---|---|---|",
    ]
    for database, q in result["ratios"].items():
        lines.append(f"| {database} | {q['submissions_per_s']}× | {q['p50']}× | {q['p99']}× |")
    lines += [
        "",
        "Goal: more submissions a second than the plain app on PostgreSQL, with a lower p99.",
        "",
        *_goal(result),
        "",
        "*Stored* counts what the database holds after the run (civic-ledger: the records of "
        "the suggestions log); a request cut off when the generator stopped may be stored "
        "without having been counted, so stored may exceed acknowledged by up to one per "
        "connection. *Server CPU* is the CPU time of all the target's processes (for "
        "civic-ledger also the anchoring worker, verifier and chain) over the submissions "
        "acknowledged; it is steadier than throughput on this shared machine. The generator "
        "runs on the same cores.",
        "",
    ]
    lines += [
        "",
        "Why civic-ledger does more than one INSERT and COMMIT per request while it hashes, "
        "links and seals every record: the writer process runs the submissions that arrive "
        "together as one transaction with one COMMIT (group commit), and on PostgreSQL the "
        "writes of a group that nobody reads back go out together in one round trip "
        "(`ledger.db.DeferredWrites`, psycopg's pipeline mode), so a submission costs one "
        "round trip (its tracking-code check) instead of six or seven. Before the deferred "
        "writes (2026-12-03 09:39 UTC, same bench) civic-ledger on PostgreSQL did 459 "
        "submissions/s against the plain app's 497 (0.92×); with them 1.44× to 2.04× in the "
        "runs of this session (machine load varies). See docs/ARCHITECTURE.md, "
        '"Deferred writes".',
    ]
    return lines


if __name__ == "__main__":
    outcome = run_crud_baseline("--quick" in sys.argv)
    print(json.dumps(outcome, indent=2, ensure_ascii=False))
    print("\n".join(render_crud_baseline(outcome)))
