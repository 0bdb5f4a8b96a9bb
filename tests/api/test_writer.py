"""The writer process (api.writer): the API processes' hot writes run there, over a Unix
socket, with the same results and the same refusals as in-process; a writer that dies
costs only the writes it had not answered, which are reported as not acknowledged."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api import writes
from api.supervisor import writer_socket
from api.writer import WriterClient, WriterUnavailable
from api.writes import SubmitRequest, TransitionRequest
from ledger import auth, suggestions
from ledger.auth import Principal, Role
from ledger.db import make_engine, make_session_factory
from ledger.models import RecordRow
from ledger.pii import Vault, load_or_create_pii_key
from ledger.schemas import SuggestionIn, TransitionIn
from ledger.suggestions import IllegalTransition
from tests.fixtures.db import BACKENDS, backend_url

ROOT = Path(__file__).resolve().parents[2]
SUGGESTION = SuggestionIn(
    title="路灯不亮", text="幸福路口的路灯坏了三周。", category="城乡建设", district="鼓楼区"
)


class Writer:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.socket = writer_socket(data_dir)
        self.log = data_dir / "writer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.vault = Vault(load_or_create_pii_key(data_dir / "pii.key"))

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)  # a killed writer's: wait for the new one's
        env = {
            **os.environ,
            "CIVIC_DATA_DIR": str(self.data_dir),
            "CIVIC_DATABASE_URL": self.database_url,
            "CIVIC_WRITER_SOCKET": str(self.socket),
        }
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "writer"],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def records(self) -> int:
        engine = make_engine(self.database_url)
        try:
            with make_session_factory(engine)() as session:
                return int(session.scalar(select(func.count()).select_from(RecordRow)) or 0)
        finally:
            engine.dispose()

    def submit(self) -> SubmitRequest:
        return SubmitRequest(
            prepared=suggestions.prepare_submission(SUGGESTION, principal=None, vault=self.vault)
        )


@pytest.fixture(params=BACKENDS)
def writer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Writer]:
    url, drop = backend_url(request.param, tmp_path)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    w = Writer(data, url)
    w.start()
    try:
        yield w
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        drop()


def test_writes_through_the_writer_process_are_stored_and_refusals_come_back_as_they_are(
    writer: Writer,
) -> None:
    async def scenario() -> None:
        client = WriterClient(writer.socket)
        answers = await asyncio.gather(*(client.call(writer.submit()) for _ in range(40)))
        codes = {answer["tracking_code"] for answer in answers}
        assert len(codes) == 40 and all(answer["citizen_token"] for answer in answers)
        code = answers[0]["tracking_code"]
        with pytest.raises(IllegalTransition, match="cannot move to CLOSED") as refused:
            await client.call(
                TransitionRequest(
                    tracking_code=code,
                    req=TransitionIn(to="CLOSED", level="satisfied"),
                    principal=Principal(Role.STAFF, "staff-1"),
                )
            )
        # The refusal comes back as the very class, with its status and message.
        assert type(refused.value) is IllegalTransition and refused.value.status_code == 409
        client.close()

    asyncio.run(scenario())
    assert writer.records() == 40
    assert stat.S_IMODE(writer.socket.stat().st_mode) == 0o600  # only this user may write
    assert writer.stop() == 0
    assert not writer.socket.exists()
    assert "writer stopped: 41 requests in" in writer.log.read_text()  # 40 + 1 refused


def test_a_killed_writer_fails_only_what_it_had_not_answered_and_its_successor_takes_over(
    writer: Writer,
) -> None:
    async def scenario() -> tuple[int, int, int]:
        client = WriterClient(writer.socket, patience=10)
        acknowledged = refused = 0

        async def one() -> None:
            nonlocal acknowledged, refused
            try:
                await client.call(writer.submit())
                acknowledged += 1
            except WriterUnavailable:
                refused += 1

        burst = [asyncio.ensure_future(one()) for _ in range(200)]
        await asyncio.sleep(0.05)
        assert writer.proc is not None
        writer.proc.kill()  # kill -9, mid-burst
        await asyncio.gather(*burst)
        writer.proc.wait()
        writer.start()  # what the supervisor does
        await asyncio.gather(*(one() for _ in range(20)))
        client.close()
        return acknowledged, refused, 200

    acknowledged, refused, sent = asyncio.run(scenario())
    assert acknowledged + refused == sent + 20
    stored = writer.records()
    # Every acknowledged write is stored; a refused one may or may not be (it was read, maybe
    # committed, not answered), never more than were sent.
    assert acknowledged <= stored <= sent + 20
    assert acknowledged >= 20  # the successor answered the writes sent after it came up


def test_a_connection_closed_before_its_reader_noticed_is_replaced_and_the_write_goes_through(
    writer: Writer,
) -> None:
    """The writer killed: the event loop closes the transport at once, but the task reading
    the connection runs later. A write sent in between found a connection that looked open,
    and uvloop refused it with RuntimeError (two 500s in a kill -9 chaos run). Nothing was
    sent, so the client connects again and the write goes through."""
    import uvloop

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        client = WriterClient(writer.socket)
        first = await client.call(writer.submit())
        connection = client._connection
        assert connection is not None
        connection.writer.transport.abort()  # closed by the loop; the reader has not run
        second = await client.call(writer.submit())
        assert client._connection is not connection
        client.close()
        return first, second

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        first, second = runner.run(scenario())
    assert first["tracking_code"] != second["tracking_code"]
    assert writer.records() == 2


def test_the_socket_moves_to_a_private_directory_when_its_path_is_too_long(
    tmp_path: Path,
) -> None:
    short = writer_socket(tmp_path)
    assert short == tmp_path / "writer.sock"
    deep = tmp_path / ("d" * 120)
    moved = writer_socket(deep)
    assert len(os.fsencode(moved)) < 108 and moved.name == "writer.sock"
    assert stat.S_IMODE(moved.parent.stat().st_mode) == 0o700


def test_every_operation_has_a_route_that_uses_it() -> None:
    """The writer takes only the requests of api.writes; each is the hot path of one route
    (or of the dependency of anonymous routes: the rate check), through its typed function."""
    routes = (
        "".join(
            (ROOT / "api" / "routes" / name).read_text()
            for name in os.listdir(ROOT / "api" / "routes")
            if name.endswith(".py")
        )
        + (ROOT / "api" / "deps.py").read_text()
    )
    functions = {"SubmitRequest": "submit", "TransitionRequest": "transition"}
    functions |= {"FlagsRequest": "set_flags", "BallotRequest": "cast_ballot"}
    functions |= {"RateCheckRequest": "rate_check"}
    operations = typing.get_args(typing.get_args(writes.WriteRequest)[0])
    assert {op.__name__ for op in operations} == set(functions)
    for operation in operations:
        assert f"writes.{functions[operation.__name__]}(" in routes, operation


def test_a_frame_that_is_not_a_typed_request_closes_the_connection_and_runs_nothing(
    writer: Writer,
) -> None:
    """Unknown operations, missing fields and pickles are refused before anything runs; the
    writer goes on serving the other connections."""
    import pickle
    import socket
    import struct

    bad_frames = [
        json.dumps({"v": 1, "id": 1, "request": {"op": "drop.tables"}}).encode(),
        json.dumps({"v": 2, "id": 1, "request": writer.submit().model_dump(mode="json")}).encode(),
        json.dumps({"v": 1, "id": 1, "request": {"op": "suggestion.submit"}}).encode(),
        pickle.dumps((1, "suggestion.submit", {})),
    ]
    for frame in bad_frames:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(str(writer.socket))
            raw.sendall(struct.pack(">I", len(frame)) + frame)
            assert raw.recv(4096) == b""  # closed without an answer
    assert writer.records() == 0

    async def still_serving() -> dict[str, Any]:
        client = WriterClient(writer.socket)
        try:
            return await client.call(writer.submit())
        finally:
            client.close()

    assert asyncio.run(still_serving())["tracking_code"].startswith("SG-")
    assert writer.records() == 1


def test_requests_and_replies_survive_the_encoding(tmp_path: Path) -> None:
    """What the API prepares arrives in the writer as it was: bytes, the principal and the
    nested models; an error crosses as its own class."""
    vault = Vault(load_or_create_pii_key(tmp_path / "pii.key"))
    data = SuggestionIn(
        title="路灯不亮",
        text="保密内容",
        category="城乡建设",
        district="鼓楼区",
        confidential=True,
        contact={"name": "王", "phone": "13800000000"},
    )
    prepared = suggestions.prepare_submission(data, principal=None, vault=vault)
    frame = writes.decode_request(writes.encode_request(7, SubmitRequest(prepared=prepared)))
    assert frame.id == 7 and isinstance(frame.request, SubmitRequest)
    assert frame.request.prepared == prepared
    assert frame.request.prepared.private_contact == prepared.private_contact  # bytes intact
    reply = writes.decode_reply(writes.encode_reply(7, None, IllegalTransition("no")))
    assert reply.error is not None
    again = writes.error_from_wire(reply.error)
    assert type(again) is IllegalTransition and again.status_code == 409 and again.message == "no"
    unknown = writes.decode_reply(writes.encode_reply(8, None, KeyError("x")))
    assert unknown.error is not None
    failed = writes.error_from_wire(unknown.error)
    assert isinstance(failed, writes.WriterFailed) and failed.status_code == 500


def test_the_api_writes_through_the_writer_process_and_healthz_says_when_it_is_down(
    writer: Writer,
) -> None:
    """An application with CIVIC_WRITER_SOCKET sends its hot writes to the writer process;
    with the writer stopped, writes are refused with a 503 that says nothing was written, and
    /healthz names the writer."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from ledger.settings import Settings

    settings = Settings(
        env="test",
        data_dir=writer.data_dir,
        database_url=writer.database_url,
        chain_rpc="http://127.0.0.1:9",
        submit_rate=0,
        writer_socket=writer.socket,
    )
    body = {"title": "路灯不亮", "text": "幸福路口。", "category": "城乡建设", "district": "鼓楼区"}
    with TestClient(create_app(settings)) as client:
        accepted = client.post("/api/v1/suggestions", json=body)
        assert accepted.status_code == 201, accepted.text
        trail = client.get(f"/api/v1/suggestions/{accepted.json()['tracking_code']}/trail")
        assert [r["record_hash"] for r in trail.json()["records"]] == [
            accepted.json()["record_hash"]
        ]
        assert client.get("/healthz").json()["writer"] is True
        engine = make_engine(writer.database_url)
        with make_session_factory(engine).begin() as session:
            inspector = auth.add_account(session, role="inspector", name="监察 陈")
        engine.dispose()
        detail = client.get(
            "/healthz/detail", headers={"Authorization": f"Bearer {inspector.token}"}
        )
        assert detail.json()["writer"] == {"ok": True, "mode": "process"}
        assert writer.records() == 1  # stored by the writer process, in the shared database

        assert writer.stop() == 0
        client.app.state.civic.writer_client.patience = 0.2  # type: ignore[attr-defined]
        refused = client.post("/api/v1/suggestions", json=body)
        assert refused.status_code == 503
        assert refused.json()["error"] == "WriterUnavailable"
        assert "nothing was written" in refused.json()["detail"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["writer"] is False
    assert writer.records() == 1


def test_rate_checks_run_in_the_writer_process_and_count_in_the_shared_database(
    writer: Writer,
) -> None:
    """The anonymous limits' checks (issue 21, item 3) go to the writer like any hot write:
    concurrent checks of one address let exactly ``limit`` through, wherever they come from."""
    limit = writes.RateLimitIn(scope="submit", limit=5, window=60.0, what="submissions")

    async def scenario() -> list[float]:
        client = WriterClient(writer.socket)
        request = writes.RateCheckRequest(client="192.0.2.44", limits=[limit])
        answers = await asyncio.gather(*(client.call(request) for _ in range(12)))
        client.close()
        return [writes.RateCheckReply.model_validate(answer).wait for answer in answers]

    waits = asyncio.run(scenario())
    assert waits.count(0.0) == 5
    assert all(0 < wait <= 60 for wait in waits if wait)
    frame = writes.encode_request(1, writes.RateCheckRequest(client="::1", limits=[limit]))
    assert writes.decode_request(frame).request.op == "rate.check"
