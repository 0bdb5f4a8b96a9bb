"""Load test of the real service over loopback HTTP (run through ./scripts/load).

Starts ``civic-ledger run`` in a temporary data directory on free ports (SQLite, or a fresh
schema of a PostgreSQL database), creates a deputy, a staff and an office account (as
``civic-ledger users add`` does), then lets
``--clients`` concurrent clients hammer it for ``--duration`` seconds with a mix of

* ``submit``      POST /api/v1/suggestions (anonymous citizen; rate limit off: CIVIC_SUBMIT_RATE=0)
* ``transition``  POST /api/v1/suggestions/{code}/transitions, walking each of the client's
  suggestions SUBMITTED → DEPUTY_ACCEPTED (the district's deputy) → ASSIGNED (staff) →
  IN_PROGRESS → ANSWERED (the lead office) → CLOSED (the citizen's evaluation, with the
  citizen token)
* ``trail``       GET /api/v1/suggestions/{code}/trail
* ``verify``      GET /api/v1/records/{hash}/receipt of a record accepted a few seconds earlier,
  then POST /verify/receipt to the verifier service (the verdict must be ``valid``)

Every answer other than the expected one is an error (a receipt still pending is counted
apart, not as an error). At the end it checks in the database itself that every
acknowledged record (each 201) is stored, and waits until all of them are anchored.

The HTTP client is a minimal asyncio HTTP/1.1 keep-alive client (one connection per client
and service), so that the load generator, which shares the machine's cores with the
service, costs as little CPU as possible. Output: a table, and ``--json FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_MIX = "submit=45,transition=30,trail=15,verify=10"
WRITE_KINDS = ("submit", "transition")
KINDS = ("submit", "transition", "trail", "receipt", "verify")
OFFICE = "LOADJT"
# Each answer cites a reply document of its own suggestion (a file belongs to the first
# suggestion citing it): this, with the tracking code after it, uploaded just before.
REPLY_PDF = b"%PDF-1.4\n% civic-ledger load test reply\n"
# The steps a client walks each of its suggestions through, with who makes them.
STEPS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "SUBMITTED": ("deputy", "DEPUTY_ACCEPTED", {}),
    "DEPUTY_ACCEPTED": ("staff", "ASSIGNED", {"offices": [OFFICE]}),
    "ASSIGNED": ("office", "IN_PROGRESS", {}),
    "IN_PROGRESS": ("office", "ANSWERED", {"category": "A"}),  # + its own reply_sha256
    "ANSWERED": ("citizen", "CLOSED", {"level": "satisfied"}),
}
SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周，晚上行人看不清路。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


# -- the service ----------------------------------------------------------------------------


def free_port() -> int:
    from ledger.devchain import free_port as _free_port

    return _free_port()


@contextlib.contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL whose connections use a fresh schema of ``url``'s database; dropped afterwards."""
    from ledger.db import make_engine

    schema = "load_" + secrets.token_hex(5)
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


class Service:
    """``civic-ledger run`` in its own process group, on free ports."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None,
        extra_env: dict[str, str] | None = None,
        root: Path = ROOT,
    ) -> None:
        self.root = root
        self.data_dir = data_dir
        self.api_port, self.chain_port, self.verifier_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "CIVIC_DATA_DIR": str(data_dir),
            "CIVIC_API_PORT": str(self.api_port),
            "CIVIC_CHAIN_PORT": str(self.chain_port),
            "CIVIC_VERIFIER_PORT": str(self.verifier_port),
            # Every client comes from 127.0.0.1: the anonymous per-address limit would refuse
            # all but 30 submissions a minute. A deployment keeps it on (docs/BENCHMARKS.md).
            "CIVIC_SUBMIT_RATE": "0",
            "CIVIC_LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        for name in ("CIVIC_CHAIN_RPC", "CIVIC_CONTRACT", "CIVIC_DATABASE_URL"):
            self.env.pop(name, None)
        if database_url:
            self.env["CIVIC_DATABASE_URL"] = database_url
        self.database_url = database_url or f"sqlite:///{data_dir / 'civic-ledger.db'}"
        self.log_path = data_dir.parent / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def add_accounts(self, *accounts: dict[str, str]) -> list[str]:
        """Accounts made as ``civic-ledger users add`` makes them (same function, same
        database), in this process: three CLI start-ups would cost seconds. Their tokens."""
        from ledger import auth
        from ledger.db import make_engine, make_session_factory

        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine).begin() as session:
                return [auth.add_account(session, **account).token for account in accounts]
        finally:
            engine.dispose()

    def start(self, timeout: float = 120.0) -> None:
        import httpx

        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "run"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.root,  # `python -m` finds the service's packages here first
        )
        deadline = time.monotonic() + timeout
        urls = (
            f"http://127.0.0.1:{self.api_port}/healthz",
            f"http://127.0.0.1:{self.verifier_port}/healthz",
        )
        pending = list(urls)
        while pending:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the service did not come up:\n" + self.log_tail())
            try:
                if httpx.get(pending[0], timeout=2).status_code in (200, 503):
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) of the service's live processes, by role."""
        if self.proc is None:
            return {}
        return _group_cpu(self.proc.pid)

    def stop(self) -> None:
        stop_process_group(self.proc)


def _role(cmdline: str) -> str:
    if "ganache" in cmdline or "anvil" in cmdline or "node" in cmdline.split(" ", 1)[0]:
        return "chain"
    for role in ("worker", "run"):
        if f"api.cli {role}" in cmdline:
            return "supervisor" if role == "run" else role
    if "verifier.cli" in cmdline:
        return "verifier"
    if "api.cli writer" in cmdline:
        return "writer"
    return "api"  # `api.cli api` and its uvicorn worker processes


def stop_process_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the process group a service was started in, SIGKILL after 30 s."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def postgres_url(purpose: str) -> str | None:
    """CIVIC_TEST_POSTGRES_URL, else the local test database, if it answers; None otherwise
    (``purpose`` says what then runs on SQLite only)."""
    url = os.environ.get("CIVIC_TEST_POSTGRES_URL") or DEFAULT_PG
    try:
        from ledger.db import make_engine

        engine = make_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as exc:
        print(f"    (no PostgreSQL at {url}: {type(exc).__name__}; {purpose} on SQLite only)")
        return None
    return url


def _group_cpu(pgid: int) -> dict[str, float]:
    """CPU seconds (user + system) of the live processes of a process group, by role."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # pgrp
            role = _role(cmdline)
            totals[role] = totals.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return totals


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


# -- a minimal HTTP/1.1 keep-alive client ---------------------------------------------------


class HTTPError(Exception):
    pass


class Connection:
    """One keep-alive connection; requests on it are sequential (one client, one at a time)."""

    # uvicorn closes a connection idle for 5 s (timeout_keep_alive); a request sent just as
    # it does would fail without reaching the service, so an idle connection is renewed.
    IDLE = 3.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30.0,
        content_type: str = "application/json",
    ) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(
                self._request(method, path, body, headers, content_type), timeout
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.close()
            raise HTTPError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str] | None,
        content_type: str,
    ) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.used > self.IDLE:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}")
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(data[:-2])
            payload = b"".join(parts)
        elif length is not None:
            payload = await self.reader.readexactly(length)
        else:
            payload = await self.reader.read()
            close = True
        self.used = time.monotonic()
        if close:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- the load -------------------------------------------------------------------------------


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in ("submit", "transition", "trail", "verify"):
            raise ValueError(f"unknown request kind {name!r} in --mix")
        mix[name] = float(weight)
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("--mix needs a positive weight")
    return mix


@dataclass
class Suggestion:
    code: str
    state: str
    citizen_token: str


@dataclass
class Shared:
    """What the clients of one run share: tokens, latencies, acknowledged records, errors."""

    staff: str
    office: str
    deputy: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    acknowledged: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, hash)
    codes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    pending_receipts: int = 0
    closed: int = 0

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < 20:
            self.errors.append(message)


class Client:
    def __init__(
        self, n: int, shared: Shared, api: tuple[str, int], verifier: tuple[str, int]
    ) -> None:
        self.rng = random.Random(n)
        self.shared = shared
        self.api = Connection(*api)
        self.verifier = Connection(*verifier)
        self.mine: list[Suggestion] = []
        self.n = n
        self.count = 0

    async def timed(
        self,
        kind: str,
        conn: Connection,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[int, Any] | None:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        start = time.perf_counter()
        try:
            status, payload = await conn.request(method, path, data, headers)
        except HTTPError as exc:
            self.shared.error(f"{kind}: {exc}")
            return None
        self.shared.latencies[kind].append(time.perf_counter() - start)
        if status not in expect:
            self.shared.error(
                f"{kind}: {method} {path} → {status} {payload[:300].decode(errors='replace')}"
            )
            return None
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:
            self.shared.error(
                f"{kind}: {method} {path} → {status}, not JSON: {payload[:200].decode(errors='replace')}"
            )
            return None

    async def submit(self) -> None:
        self.count += 1
        body = {**SUGGESTION, "title": f"路灯不亮 {self.n}-{self.count}"}
        answer = await self.timed(
            "submit", self.api, "POST", "/api/v1/suggestions", body, expect=(201,)
        )
        if answer is None:
            return
        data = answer[1]
        self.shared.acknowledged.append((time.monotonic(), data["record_hash"]))
        self.shared.codes.append(data["tracking_code"])
        self.mine.append(Suggestion(data["tracking_code"], "SUBMITTED", data["citizen_token"]))

    async def transition(self) -> bool:
        open_ones = [s for s in self.mine if s.state in STEPS]
        if not open_ones:
            return False
        suggestion = self.rng.choice(open_ones)
        who, to, extra = STEPS[suggestion.state]
        token = {
            "deputy": self.shared.deputy,
            "staff": self.shared.staff,
            "office": self.shared.office,
            "citizen": suggestion.citizen_token,
        }[who]
        body = {"to": to, **extra}
        if to == "ANSWERED":
            reply = await self.upload_reply(suggestion.code)
            if reply is None:
                return True
            body["reply_sha256"] = reply
        answer = await self.timed(
            "transition",
            self.api,
            "POST",
            f"/api/v1/suggestions/{suggestion.code}/transitions",
            body,
            headers={"Authorization": f"Bearer {token}"},
            expect=(201,),
        )
        if answer is not None:
            suggestion.state = to
            self.shared.acknowledged.append((time.monotonic(), answer[1]["record_hash"]))
            if to == "CLOSED":
                self.shared.closed += 1
                self.mine.remove(suggestion)
        return True

    async def upload_reply(self, code: str) -> str | None:
        """The office uploads the suggestion's own reply document (not timed: the step is)."""
        try:
            status, payload = await self.api.request(
                "POST",
                "/api/v1/attachments",
                REPLY_PDF + code.encode(),
                {"Authorization": f"Bearer {self.shared.office}"},
                content_type="application/pdf",
            )
        except HTTPError as exc:
            self.shared.error(f"upload: {exc}")
            return None
        if status != 201:
            self.shared.error(f"upload: {status} {payload[:300].decode(errors='replace')}")
            return None
        sha: str = json.loads(payload)["sha256"]
        return sha

    async def trail(self) -> None:
        if not self.shared.codes:
            await self.submit()
            return
        code = self.rng.choice(self.shared.codes)
        answer = await self.timed("trail", self.api, "GET", f"/api/v1/suggestions/{code}/trail")
        if answer is not None and not answer[1]["records"]:
            self.shared.error(f"trail: {code} has no records")

    async def verify(self, older_than: float) -> None:
        acknowledged = self.shared.acknowledged
        cutoff = time.monotonic() - older_than
        # acknowledged is in time order: pick among those accepted before the cutoff
        lo, hi = 0, len(acknowledged)
        while lo < hi:
            mid = (lo + hi) // 2
            if acknowledged[mid][0] < cutoff:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            await self.trail()
            return
        record_hash = acknowledged[self.rng.randrange(lo)][1]
        answer = await self.timed(
            "receipt",
            self.api,
            "GET",
            f"/api/v1/records/{record_hash}/receipt",
            expect=(200, 202),
        )
        if answer is None:
            return
        if answer[0] == 202:
            self.shared.pending_receipts += 1
            return
        verdict = await self.timed(
            "verify", self.verifier, "POST", "/verify/receipt", answer[1], expect=(200,)
        )
        if verdict is not None and verdict[1].get("verdict") != "valid":
            self.shared.error(f"verify: {record_hash} → {json.dumps(verdict[1])[:300]}")

    async def run(
        self, deadline: float, mix: dict[str, float], older_than: float, interval: float = 0.0
    ) -> None:
        """Operations back to back, or (``interval`` > 0, --rate) one every ``interval``
        seconds, starting late rather than skipping when the answers are slower."""
        kinds, weights = list(mix), list(mix.values())
        next_at = time.monotonic() + self.rng.random() * interval
        try:
            while time.monotonic() < deadline:
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                    if time.monotonic() >= deadline:
                        break
                kind = self.rng.choices(kinds, weights)[0]
                if kind == "submit":
                    await self.submit()
                elif kind == "transition":
                    if not await self.transition():
                        await self.submit()
                elif kind == "trail":
                    await self.trail()
                else:
                    await self.verify(older_than)
        finally:
            self.api.close()
            self.verifier.close()


async def _drive(
    shared: Shared,
    clients: int,
    duration: float,
    mix: dict[str, float],
    api: tuple[str, int],
    verifier: tuple[str, int],
    older_than: float,
    rate: float | None = None,
) -> float:
    deadline = time.monotonic() + duration
    interval = clients / rate if rate else 0.0
    start = time.perf_counter()
    await asyncio.gather(
        *(
            Client(i, shared, api, verifier).run(deadline, mix, older_than, interval)
            for i in range(clients)
        )
    )
    return time.perf_counter() - start


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.new_event_loop


def _setup(service: Service) -> Shared:
    staff, office, deputy = service.add_accounts(
        {"role": "staff", "name": "负载测试 人大工作人员"},
        {"role": "office", "name": "负载测试 交通局", "office": OFFICE},
        {"role": "deputy", "name": "负载测试 代表", "district": SUGGESTION["district"]},
    )
    return Shared(staff=staff, office=office, deputy=deputy)


def check_store(database_url: str, hashes: list[str], timeout: float) -> dict[str, Any]:
    """Every acknowledged record is in the store, and (waiting up to ``timeout``) anchored."""
    from sqlalchemy import bindparam, text

    from ledger.db import make_engine

    engine = make_engine(database_url)
    wanted = {bytes.fromhex(h) for h in hashes}
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT leaf_hash, position FROM records WHERE log = 'suggestions'")
            ).all()
            stored_total = len(rows)
            positions = {bytes(r[0]): int(r[1]) for r in rows}
        # positions are dense (0 … n-1, each once), also with several API processes
        dense = sorted(positions.values()) == list(range(stored_total))
        missing = [h.hex() for h in wanted if h not in positions]
        last = max((positions[h] for h in wanted if h in positions), default=-1)
        anchored_query = text(
            "SELECT first_position, size FROM batches "
            "WHERE log = :log AND state = 'anchored' ORDER BY number"
        ).bindparams(bindparam("log", "suggestions"))
        start = time.monotonic()
        anchored_until = 0
        while True:
            with engine.connect() as conn:
                batches = conn.execute(anchored_query).all()
            # batches are dense from position 0; anchored ones form a prefix plus stragglers
            covered = sorted((int(b[0]), int(b[1])) for b in batches)
            anchored_until = 0
            for first, size in covered:
                if first != anchored_until:
                    break
                anchored_until = first + size
            if anchored_until > last or time.monotonic() - start > timeout:
                break
            time.sleep(0.25)
        waited = time.monotonic() - start
        anchored = sum(1 for h in wanted if h in positions and positions[h] < anchored_until)
    finally:
        engine.dispose()
    return {
        "acknowledged": len(wanted),
        "acknowledged_responses": len(hashes),
        "stored": len(wanted) - len(missing),
        "missing": missing[:10],
        "anchored": anchored,
        "stored_in_log": stored_total,
        "anchor_wait_s": round(waited, 2),
        "positions_dense": dense,
        "ok": dense and not missing and anchored == len(wanted) and len(wanted) == len(hashes),
    }


def _quantiles(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"requests": 0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "requests": len(values),
        "p50_ms": round(pick(0.50) * 1000, 1),
        "p99_ms": round(pick(0.99) * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def run_load(
    *,
    clients: int = 50,
    duration: float = 60.0,
    mix: str = DEFAULT_MIX,
    database: str = "sqlite",
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    anchor_timeout: float = 120.0,
    service_root: Path = ROOT,
    rate: float | None = None,
) -> dict[str, Any]:
    """One load run against a fresh service; the measurements and the store check."""
    weights = parse_mix(mix)
    loadavg = "/".join(f"{x:.1f}" for x in os.getloadavg())
    with (
        tempfile.TemporaryDirectory(prefix="civic-load-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        url = None
        if database == "postgresql":
            url = stack.enter_context(
                postgres_schema(
                    database_url or os.environ.get("CIVIC_TEST_POSTGRES_URL") or DEFAULT_PG
                )
            )
        elif database != "sqlite":
            raise ValueError("--database is sqlite or postgresql")
        service = Service(Path(tmp) / "data", url, extra_env, root=service_root)
        stack.callback(service.stop)
        service.start()
        shared = _setup(service)
        interval = float(service.env.get("CIVIC_ANCHOR_INTERVAL", "2"))
        older_than = 1.5 * interval + 0.5  # usually anchored by then; pending is counted
        cpu_service0, busy0 = service.cpu_seconds(), _machine_busy()
        cpu_self0 = time.process_time()
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            elapsed = runner.run(
                _drive(
                    shared,
                    clients,
                    duration,
                    weights,
                    ("127.0.0.1", service.api_port),
                    ("127.0.0.1", service.verifier_port),
                    older_than,
                    rate,
                )
            )
        cpu_self = time.process_time() - cpu_self0
        cpu_service1 = service.cpu_seconds()
        cpu_service = {
            role: round(seconds - cpu_service0.get(role, 0.0), 1)
            for role, seconds in sorted(cpu_service1.items())
        }
        busy1 = _machine_busy()
        store = check_store(
            service.database_url, [h for _, h in shared.acknowledged], anchor_timeout
        )
        if service.proc is not None and service.proc.poll() is not None:
            shared.error("the service exited during the run:\n" + service.log_tail())
    total = sum(len(v) for v in shared.latencies.values())
    writes = sum(len(shared.latencies[k]) for k in WRITE_KINDS)
    machine_share = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    return {
        "database": database,
        "clients": clients,
        "duration_s": round(elapsed, 2),
        "mix": mix,
        # operations a second asked for (--rate; a receipt check is two requests), or None:
        # each client starts its next operation as soon as the last one is answered
        "offered_operations_per_s": rate,
        "api_workers": (extra_env or {}).get("CIVIC_API_WORKERS")
        or os.environ.get("CIVIC_API_WORKERS")
        or f"default ({max(1, min(4, os.cpu_count() or 1))})",
        "loadavg_before": loadavg,
        "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "write_requests_per_s": round(writes / elapsed, 1),
        "errors": shared.error_count,
        "error_samples": shared.errors,
        "pending_receipts": shared.pending_receipts,
        "suggestions_closed": shared.closed,
        "kinds": {k: _quantiles(v) for k, v in shared.latencies.items()},
        "cpu": {
            "cores": os.cpu_count(),
            "machine_busy_percent": round(100 * machine_share, 1),
            "generator_cpu_s": round(cpu_self, 1),
            "service_cpu_s": round(sum(cpu_service.values()), 1),
            "service_cpu_s_by_process": cpu_service,
            # steadier than throughput on a shared machine: what one request costs the API
            "api_cpu_ms_per_request": round(1000 * cpu_service.get("api", 0.0) / max(1, total), 2),
            # the writer process (api.writer): what one acknowledged write costs it
            "writer_cpu_ms_per_write": round(
                1000 * cpu_service.get("writer", 0.0) / max(1, writes), 2
            ),
        },
        "store": store,
    }


def format_result(result: dict[str, Any]) -> str:
    lines = [
        f"{result['database']}: {result['clients']} clients × {result['duration_s']} s, "
        + (
            f"paced at {result['offered_operations_per_s']:g} operations/s, "
            if result.get("offered_operations_per_s")
            else ""
        )
        + f"mix {result['mix']}, API workers {result['api_workers']}",
        f"  {result['requests']} requests, {result['requests_per_s']}/s; "
        f"writes {result['write_requests_per_s']}/s; errors {result['errors']}; "
        f"receipts still pending {result['pending_receipts']}",
    ]
    for kind, q in result["kinds"].items():
        if q["requests"]:
            lines.append(
                f"  {kind:<11} {q['requests']:>7}  p50 {q['p50_ms']:>6} ms  "
                f"p99 {q['p99_ms']:>6} ms  max {q['max_ms']:>7} ms"
            )
    cpu, store = result["cpu"], result["store"]
    lines.append(
        f"  CPU: machine {cpu['machine_busy_percent']}% busy of {cpu['cores']} cores; "
        f"generator {cpu['generator_cpu_s']} s, service {cpu['service_cpu_s']} s "
        f"({', '.join(f'{k} {v}' for k, v in cpu['service_cpu_s_by_process'].items())}); "
        f"API {cpu['api_cpu_ms_per_request']} ms CPU per request, "
        f"writer {cpu['writer_cpu_ms_per_write']} ms per write"
    )
    lines.append(
        f"  store: {store['stored']}/{store['acknowledged']} acknowledged records stored, "
        f"{store['anchored']} anchored (waited {store['anchor_wait_s']} s): "
        + ("OK" if store["ok"] else "FAILED")
    )
    for sample in result["error_samples"]:
        lines.append(f"  error: {sample}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--rate",
        type=float,
        help="pace the clients: this many operations a second in all (open loop: the latency "
        "at a given load); by default each client goes on as soon as it is answered",
    )
    parser.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"weights of submit, transition, trail, verify ({DEFAULT_MIX})",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="sqlite, postgresql, or both (comma-separated); PostgreSQL gets a fresh schema",
    )
    parser.add_argument(
        "--database-url",
        help=f"PostgreSQL database (default: CIVIC_TEST_POSTGRES_URL or {DEFAULT_PG})",
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument(
        "--service-root",
        type=Path,
        default=ROOT,
        help="run the service from another checkout (e.g. `git archive` of a baseline commit)",
    )
    args = parser.parse_args(argv)
    results = []
    failed = False
    databases = ["sqlite", "postgresql"] if args.database == "both" else args.database.split(",")
    for database in databases:
        result = run_load(
            clients=args.clients,
            duration=args.duration,
            mix=args.mix,
            database=database.strip(),
            database_url=args.database_url,
            service_root=args.service_root,
            rate=args.rate,
        )
        print(format_result(result), flush=True)
        results.append(result)
        failed = failed or result["errors"] > 0 or not result["store"]["ok"]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
