"""The writer process (api.writer): the API processes' hot writes run there, over a Unix
socket, with the same results and the same refusals as in-process; a writer that dies
costs only the writes it had not answered, which are reported as not acknowledged."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.writer import OPERATIONS, WriterClient, WriterUnavailable
from ledger import suggestions
from ledger.auth import Principal, Role
from ledger.cli import writer_socket
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

    def submit(self) -> dict[str, Any]:
        return {
            "prepared": suggestions.prepare_submission(SUGGESTION, principal=None, vault=self.vault)
        }


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
        answers = await asyncio.gather(
            *(client.call("suggestion.submit", writer.submit()) for _ in range(40))
        )
        codes = {code for code, _hash, _token in answers}
        assert len(codes) == 40 and all(token for _c, _h, token in answers)
        code = answers[0][0]
        with pytest.raises(IllegalTransition, match="cannot move to CLOSED") as refused:
            await client.call(
                "suggestion.transition",
                {
                    "tracking_code": code,
                    "req": TransitionIn(to="CLOSED", level="satisfied"),
                    "principal": Principal(Role.STAFF, "staff-1"),
                },
            )
        assert refused.value.status_code == 409
        with pytest.raises(ValueError, match=r"no operation 'drop\.tables'"):
            await client.call("drop.tables", {})
        client.close()

    asyncio.run(scenario())
    assert writer.records() == 40
    assert stat.S_IMODE(writer.socket.stat().st_mode) == 0o600  # only this user may write
    assert writer.stop() == 0
    assert not writer.socket.exists()
    assert "writer stopped: 42 requests in" in writer.log.read_text()  # 40 + 2 refused


def test_a_killed_writer_fails_only_what_it_had_not_answered_and_its_successor_takes_over(
    writer: Writer,
) -> None:
    async def scenario() -> tuple[int, int, int]:
        client = WriterClient(writer.socket, patience=10)
        acknowledged = refused = 0

        async def one() -> None:
            nonlocal acknowledged, refused
            try:
                await client.call("suggestion.submit", writer.submit())
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
    """The writer takes only these operations; each is the hot path of one route."""
    routes = "".join(
        (ROOT / "api" / "routes" / name).read_text()
        for name in os.listdir(ROOT / "api" / "routes")
        if name.endswith(".py")
    )
    for operation in OPERATIONS:
        assert f'"{operation}"' in routes, operation


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
        assert client.get("/healthz").json()["writer"] == {"ok": True, "mode": "process"}
        assert writer.records() == 1  # stored by the writer process, in the shared database

        assert writer.stop() == 0
        client.app.state.civic.writer_client.patience = 0.2  # type: ignore[attr-defined]
        refused = client.post("/api/v1/suggestions", json=body)
        assert refused.status_code == 503
        assert refused.json()["error"] == "WriterUnavailable"
        assert "nothing was written" in refused.json()["detail"]
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["writer"]["ok"] is False
    assert writer.records() == 1
