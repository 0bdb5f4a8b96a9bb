"""The service's side of witnessing (PROTOCOL §9, C2SP tlog-witness): the pusher sends every
anchored batch's checkpoint to each witness of CIVIC_WITNESSES with a consistency proof from
the size the witness last cosigned, follows a 409 to the size it names, keeps a conflict and
errors, and stores the cosignatures, which the API then serves in the checkpoints, the
receipts, /keys and /healthz/detail. The witness here is a small HTTP double that follows the
spec's status codes and cosigns with a real cosignature/v1 key."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.supervisor import (
    RestartPolicy,
    Supervisor,
    dev_witness,
    dev_witness_key,
    runs_dev_witness,
)
from core import tlog
from core.checkpoint import open_checkpoint, parse_checkpoint
from core.cosignature import Cosigner
from core.note import NoteError, decode_base64, open_note, parse_verifier_key
from ledger import auth
from ledger.checkpoints import LogKeys
from ledger.models import WitnessCosignatureRow, WitnessState
from ledger.settings import Settings
from ledger.witness_pusher import WitnessPusher
from ledger.witnesses import parse_witnesses
from tests.api.conftest import make_settings
from tests.api.test_logs_api import _anchor, submit_anchored
from tests.api.test_workflow_api import SUGGESTION
from tests.fixtures.db import Database

NOW = 1_800_000_000


@dataclass
class WitnessDouble:
    """A tlog-witness for one log: the size and root it last cosigned, and knobs to make it
    answer something else once (``fail_next``)."""

    cosigner: Cosigner
    log_key: str
    size: int = 0
    root: bytes = b""
    fail_next: list[int] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)  # the old size of each request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_checkpoint(self, body: str) -> tuple[int, str, str]:
        """(status, content type, body) as C2SP tlog-witness says."""
        head, _, note = body.partition("\n\n")
        lines = head.split("\n")
        if not lines[0].startswith("old "):
            return 400, "text/plain", "no old size\n"
        old = int(lines[0][4:])
        proof = [decode_base64(line) for line in lines[1:]]
        try:
            opened = open_note(note, [parse_verifier_key(self.log_key)])
        except NoteError:
            return 403, "text/plain", "not signed by a known log key\n"
        checkpoint = parse_checkpoint(opened.text)
        with self.lock:
            self.requests.append(old)
            if self.fail_next:
                status = self.fail_next.pop(0)
                return status, "text/plain", f"made to fail with {status}\n"
            if old > checkpoint.size:
                return 400, "text/plain", "old is beyond the checkpoint\n"
            if old != self.size:
                return 409, "text/x.tlog.size", f"{self.size}\n"
            if old == checkpoint.size:
                if checkpoint.root != self.root:
                    return 409, "text/plain", "another root at this size\n"
            elif old > 0 and not tlog.verify_consistency(
                old, checkpoint.size, self.root, checkpoint.root, proof
            ):
                return 422, "text/plain", "the consistency proof does not verify\n"
            elif old == 0 and proof:
                return 422, "text/plain", "a proof from 0 is empty\n"
            self.size, self.root = checkpoint.size, checkpoint.root
            return 200, "text/plain", self.cosigner.cosign(opened.text, NOW).line


@pytest.fixture
def witness_server() -> Iterator[tuple[str, list[WitnessDouble]]]:
    """An HTTP server answering add-checkpoint with whichever double is in the list."""
    doubles: list[WitnessDouble] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = self.rfile.read(length).decode("utf-8")
            if self.path != "/w/add-checkpoint":
                status, kind, text = 404, "text/plain", "no such path\n"
            else:
                status, kind, text = doubles[0].add_checkpoint(body)
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/w", doubles
    finally:
        server.shutdown()
        server.server_close()


def _submit(client: TestClient, count: int, start: int = 0) -> list[str]:
    hashes = []
    for i in range(start, start + count):
        r = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": f"第 {i} 条"})
        assert r.status_code == 201, r.text
        hashes.append(r.json()["record_hash"])
    return hashes


def test_the_pusher_collects_cosignatures_the_api_serves_them(
    database: Database, registry: Any, tmp_path: Path, witness_server: Any
) -> None:
    url, doubles = witness_server
    cosigner = Cosigner("witness.example.org", b"w" * 32)
    settings = make_settings(
        database, tmp_path, witnesses=f"{url}={cosigner.verifier_key}", witness_quorum=1
    )
    with TestClient(create_app(settings)) as client:
        hashes, batches = submit_anchored(client, database, registry, [4, 2])  # ends 5 and 8
        keys = LogKeys(settings)
        doubles.append(WitnessDouble(cosigner, keys.verifier_key("suggestions")))
        witness = doubles[0]
        pusher = WitnessPusher(database.sessions, keys, settings.witness_list)

        # A 503 first: an error kept for /healthz, nothing stored, tried again later.
        witness.fail_next = [503]
        assert pusher.push(settings.witness_list[0], "votes") == 0  # nothing anchored there
        with pytest.raises(Exception, match="HTTP 503"):
            pusher.push(settings.witness_list[0], "suggestions")
        with database.sessions() as session:
            state = session.get(
                WitnessState, ("suggestions", cosigner.name, cosigner.verifier.key_id)
            )
            assert state is not None and state.size == 0 and "503" in (state.last_error or "")

        # Then both batches, in order: old 0 with no proof, old 5 with a proof to 8.
        assert pusher.push(settings.witness_list[0], "suggestions") == 2
        assert witness.requests[-2:] == [0, 5] and witness.size == 8
        with database.sessions() as session:
            rows = session.scalars(select(WitnessCosignatureRow)).all()
            assert [(r.log, r.batch) for r in rows] == [("suggestions", 0), ("suggestions", 1)]
            state = session.get(
                WitnessState, ("suggestions", cosigner.name, cosigner.verifier.key_id)
            )
            assert state is not None and state.size == 8 and state.last_error is None

        log_key = parse_verifier_key(client.get("/api/v1/logs/suggestions/keys").json()["log"])
        listed = client.get("/api/v1/logs/suggestions/keys").json()["witnesses"]
        assert listed == [{"name": cosigner.name, "key": cosigner.verifier_key, "url": url}]
        assert client.get("/api/v1/logs/suggestions/keys").json()["quorum"] == 1
        for batch in batches:
            note = client.get(f"/api/v1/logs/suggestions/checkpoints/{batch.number}").text
            opened = open_checkpoint(note, log_key, [cosigner.verifier])
            assert opened.checkpoint.size == batch.end
            assert opened.witnesses == {(cosigner.name, cosigner.verifier.key_id)}
            assert opened.cosignatures[0].timestamp == NOW
        latest = client.get("/api/v1/logs/suggestions/checkpoint").text
        assert latest == client.get("/api/v1/logs/suggestions/checkpoints/1").text
        receipt = client.get(f"/api/v1/records/{hashes[0]}/receipt").json()
        opened = open_checkpoint(receipt["checkpoint"], log_key, [cosigner.verifier])
        assert opened.checkpoint.size == 5 and len(opened.witnesses) == 1

        # Nothing new: nothing sent.
        sent = len(witness.requests)
        assert pusher.push_all() == 0 and len(witness.requests) == sent

        # A pass that fails waits before it sends to that witness again (2 s, doubling).
        _submit(client, 1, start=6)
        _anchor(database, registry, batch_max=4)
        witness.fail_next = [500]
        assert pusher.push_all() == 0 and len(witness.requests) == sent + 1
        assert pusher.push_all() == 0 and len(witness.requests) == sent + 1


def test_409_422_and_conflicts(
    database: Database, registry: Any, tmp_path: Path, witness_server: Any
) -> None:
    url, doubles = witness_server
    cosigner = Cosigner("witness.example.org", b"v" * 32)
    settings = make_settings(database, tmp_path, witnesses=f"{url}={cosigner.verifier_key}")
    with TestClient(create_app(settings)) as client:
        batches = submit_anchored(client, database, registry, [2, 2, 2])[1]  # ends 3, 6, 9
        keys = LogKeys(settings)
        witness_key = settings.witness_list[0]
        pusher = WitnessPusher(database.sessions, keys, settings.witness_list)
        # The witness already cosigned size 6 (our batch 1) for us, and we lost that: the
        # pusher sends old 0, takes 6 from the 409, gets 6 cosigned again, then 9.
        doubles.append(
            WitnessDouble(
                cosigner, keys.verifier_key("suggestions"), 6, bytes(batches[1].log_root or b"")
            )
        )
        witness = doubles[0]
        assert pusher.push(witness_key, "suggestions") == 2
        assert witness.requests == [0, 6, 6] and witness.size == 9
        with database.sessions() as session:
            cosigned = session.scalars(select(WitnessCosignatureRow.batch)).all()
            assert sorted(cosigned) == [1, 2]

        # A 422 (a proof it refuses) is an error, kept, and retried.
        _submit(client, 2, start=6)
        _anchor(database, registry, batch_max=2)  # end 12
        witness.fail_next = [422]
        with pytest.raises(Exception, match="HTTP 422"):
            pusher.push(witness_key, "suggestions")
        assert pusher.push(witness_key, "suggestions") == 1 and witness.size == 12

        # The witness names a size that is none of ours: a conflict, recorded, never retried
        # blindly, shown in /healthz/detail with the lag.
        witness.size = 7
        _submit(client, 2, start=8)
        _anchor(database, registry, batch_max=2)  # end 15
        sent = len(witness.requests)
        with pytest.raises(Exception, match="last cosigned size 7"):
            pusher.push(witness_key, "suggestions")
        assert pusher.push(witness_key, "suggestions") == 0
        assert len(witness.requests) == sent + 1
        report = _detail(client, database)["witnesses"]
        assert report["ok"] is False and report["quorum"] == 1
        standing = report["witnesses"][cosigner.verifier_key]["logs"]["suggestions"]
        assert standing["cosigned_size"] == 12 and standing["batches_behind"] == 1
        assert "size 7" in standing["conflict"]


@pytest.fixture
def stuck_witness() -> Iterator[str]:
    """A witness URL whose socket accepts every connection, reads, and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # kept open, never answered

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/stuck"
    finally:
        done.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


def test_a_stuck_witness_does_not_delay_a_healthy_ones_cosignatures(
    database: Database, registry: Any, tmp_path: Path, witness_server: Any, stuck_witness: str
) -> None:
    url, doubles = witness_server
    healthy = Cosigner("healthy.example.org", b"h" * 32)
    stuck = Cosigner("stuck.example.org", b"s" * 32)
    # The stuck witness first: pushed to one after the other, it would hold the healthy one
    # up for the whole timeout.
    witnesses = f"{stuck_witness}={stuck.verifier_key},{url}={healthy.verifier_key}"
    settings = make_settings(database, tmp_path, witnesses=witnesses)
    with TestClient(create_app(settings)) as client:
        submit_anchored(client, database, registry, [2, 2])  # ends 3 and 6
        keys = LogKeys(settings)
        doubles.append(WitnessDouble(healthy, keys.verifier_key("suggestions")))
        timeout = 3.0
        pusher = WitnessPusher(
            database.sessions, keys, settings.witness_list, timeout=httpx.Timeout(timeout)
        )
        results: list[int] = []
        started = time.monotonic()
        passing = threading.Thread(target=lambda: results.append(pusher.push_all()))
        passing.start()

        def healthy_batches() -> list[int]:
            with database.sessions() as session:
                return sorted(
                    session.scalars(
                        select(WitnessCosignatureRow.batch).where(
                            WitnessCosignatureRow.witness == healthy.name
                        )
                    ).all()
                )

        while healthy_batches() != [0, 1] and time.monotonic() - started < timeout:
            time.sleep(0.02)
        cosigned_after = time.monotonic() - started
        assert healthy_batches() == [0, 1]
        assert cosigned_after < timeout / 2, cosigned_after
        assert passing.is_alive()  # the stuck witness still holds its own thread
        passing.join(timeout * 3)
        assert not passing.is_alive() and results == [2]
        assert time.monotonic() - started >= timeout  # it waited for its own timeout only
        with database.sessions() as session:
            state = session.get(WitnessState, ("suggestions", stuck.name, stuck.verifier.key_id))
            assert state is not None and state.size == 0
            assert "Timeout" in (state.last_error or "")

        # Running (civic-ledger worker): one loop per witness, so the healthy witness's next
        # batches are cosigned while the stuck one hangs again after its backoff.
        # A fresh pusher: no backoff, the stuck witness is asked (and hangs) at once.
        stop = threading.Event()
        pusher = WitnessPusher(
            database.sessions,
            keys,
            settings.witness_list,
            every=0.05,
            timeout=httpx.Timeout(timeout),
        )
        running = pusher.start(stop)
        try:
            for more in (4, 6):
                _submit(client, 2, start=more)
                _anchor(database, registry, batch_max=2)
                wanted = list(range(more // 2 + 1))
                started = time.monotonic()
                while healthy_batches() != wanted and time.monotonic() - started < timeout:
                    time.sleep(0.02)
                assert healthy_batches() == wanted
                assert time.monotonic() - started < timeout / 2
        finally:
            stop.set()
            running.join(timeout * 3)
        assert not running.is_alive()


def _detail(client: TestClient, database: Database) -> dict[str, Any]:
    with database.sessions.begin() as session:
        token = auth.add_account(session, role="inspector", name="监察 W").token
    r = client.get("/healthz/detail", headers={"Authorization": f"Bearer {token}"})
    body: dict[str, Any] = r.json()
    return body


def test_civic_witnesses_is_url_and_key() -> None:
    key = Cosigner("w.example", b"k" * 32).verifier_key
    both = parse_witnesses(
        f"https://w.example/a={key}\nhttp://127.0.0.1:8002={Cosigner('b', b'b' * 32).verifier_key}"
    )
    assert [w.url for w in both] == ["https://w.example/a", "http://127.0.0.1:8002"]
    assert both[0].add_checkpoint_url == "https://w.example/a/add-checkpoint"
    for bad, message in (
        (f"ftp://w.example={key}", "not an http"),
        (f"https://w.example/?a=1={key}", "not an http"),
        ("https://w.example=civic-ledger.localhost/suggestions+00000000+AQ", "not a cosignature"),
        ("https://w.example", "is not <url>="),
        (f"https://a.example={key},https://b.example={key}", "twice"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_witnesses(bad)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_real_witness_cosigns_what_the_pusher_sends(
    database: Database, registry: Any, ganache: Any, tmp_path: Path
) -> None:
    """`civic-verify witness serve` as `./scripts/run` starts it (api.supervisor.dev_witness):
    it checks each checkpoint against batchOf on the chain and cosigns; the API serves it."""
    settings = make_settings(database, tmp_path, witnesses="")
    env = {"CIVIC_CHAIN_RPC": ganache.rpc_url}
    port = _free_port()
    settings = settings.model_copy(update={"witness_port": port})
    witness, args = dev_witness(settings, tmp_path, env, registry.address)
    assert stat.S_IMODE((tmp_path / "witness.key").stat().st_mode) == 0o600
    assert dev_witness_key(tmp_path).verifier_key == witness.key  # made once, then read
    process = subprocess.Popen(
        [sys.executable, "-m", "verifier.cli", "witness", "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{witness.url}/", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        (process.stderr.read() if process.stderr else b"").decode()
                    ) from None
                time.sleep(0.2)
        with TestClient(create_app(settings)) as client:
            batches = submit_anchored(client, database, registry, [2, 2, 1])[1]  # ends 3, 6, 8
            pusher = WitnessPusher(database.sessions, LogKeys(settings), [witness])
            assert pusher.push(witness, "suggestions") == 3
            log_key = parse_verifier_key(client.get("/api/v1/logs/suggestions/keys").json()["log"])
            for batch in batches:
                note = client.get(f"/api/v1/logs/suggestions/checkpoints/{batch.number}").text
                opened = open_checkpoint(note, log_key, [witness.verifier])
                assert opened.checkpoint.size == batch.end
                assert opened.witnesses == {(witness.name, witness.verifier.key_id)}
            # A store that lost the witness's size (restored from a backup) sends old 0, is
            # told 8 (409 text/x.tlog.size), and has nothing more to send.
            with database.sessions.begin() as session:
                session.query(WitnessState).delete()
            assert pusher.push(witness, "suggestions") == 0
            with database.sessions() as session:
                state = session.scalars(select(WitnessState)).one()
                assert (state.size, state.conflict, state.last_error) == (8, None, None)
    finally:
        process.terminate()
        process.wait(10)


def test_run_starts_a_local_witness_in_development_only(tmp_path: Path) -> None:
    assert runs_dev_witness(Settings(data_dir=tmp_path))
    assert not runs_dev_witness(Settings(data_dir=tmp_path, witnesses=""))  # chosen: none
    supervisor = Supervisor(Settings(data_dir=tmp_path), {}, ["--port", "8002"])
    assert supervisor.command("witness")[1:] == [
        "-m",
        "verifier.cli",
        "witness",
        "serve",
        "--port",
        "8002",
    ]


def test_a_local_witness_that_keeps_failing_is_given_up_alone(tmp_path: Path) -> None:
    """The witness only adds cosignatures: the supervisor stops restarting it, and keeps the
    rest of the service up, where a failing API or worker stops everything."""
    supervisor = Supervisor(Settings(data_dir=tmp_path), {})
    supervisor.children["witness"] = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    supervisor.children["witness"].wait(10)
    now = time.monotonic()
    supervisor.restarts["witness"] = RestartPolicy(failing_since=now - 1000, last_start=now)
    stop = threading.Event()
    watching = threading.Thread(target=supervisor.watch, args=(stop,))
    watching.start()
    try:
        deadline = time.monotonic() + 10
        while "witness" in supervisor.children and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "witness" not in supervisor.children and not stop.is_set()
    finally:
        stop.set()
        watching.join(5)
