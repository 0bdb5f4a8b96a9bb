"""civic-verify trail: completeness from the map of trail heads (PROTOCOL §10, §11), against
the real service (its app, in process) over a real store anchored on a real ganache.

Two suggestions A and B are submitted and sealed in batch 0, then A is accepted by a deputy and
sealed in batch 1 (every batch ends with its ledger.map_head record). The service's answers are
carried to the verifier through an httpx.MockTransport that may edit them on the way, as a
service that hides part of a trail would.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.trailmap import key_of
from core.verdicts import Completeness, TrailVerdict
from ledger import service
from ledger.settings import Settings
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from verifier.chain import Web3ChainReader
from verifier.cli import main
from verifier.trail import verify_completeness

pytestmark = pytest.mark.chain

API = "http://civic.example"
SUGGESTION = {
    "title": "小区门口积水",
    "text": "每逢下雨，幸福小区南门积水没过脚踝。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
Edit = Callable[[str, Any], Any]


@dataclass
class Live:
    api: TestClient
    rpc: str
    a: str  # two records: batch 0 and batch 1
    b: str  # one record, batch 0
    seal: Callable[[], None]

    def get(self, path: str) -> Any:
        answer = self.api.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def trail(self, code: str) -> Any:
        return self.get(f"/api/v1/suggestions/{code}/trail")

    def transport(self, edit: Edit | None = None) -> httpx.MockTransport:
        """The service, its JSON answers passed through ``edit(path, answer)``."""

        def handle(request: httpx.Request) -> httpx.Response:
            path = request.url.raw_path.decode()
            answer = self.api.request(request.method, path, headers=dict(request.headers))
            if edit is None or "json" not in answer.headers.get("content-type", ""):
                return httpx.Response(
                    answer.status_code, headers=answer.headers, content=answer.content
                )
            original = answer.json()
            edited = edit(path, original)
            # an answer made up in place of the service's (a 404) is served as found
            status = answer.status_code if edited is original else 200
            return httpx.Response(status, json=edited)

        return httpx.MockTransport(handle)

    def run(self, code: str, *options: str, edit: Edit | None = None) -> int:
        """``civic-verify trail CODE --json``: its exit code (the answer goes to stdout)."""
        return main(
            ["trail", code, "--api", API, "--json", *options],
            http_transport=self.transport(edit),
        )

    def log_key(self) -> str:
        key: str = self.get("/api/v1/logs/suggestions/keys")["log"]
        return key


@pytest.fixture
def live(database: Database, registry: Any, ganache: Any, tmp_path: Path) -> Iterator[Live]:
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        database_url=database.url,
        chain_rpc=ganache.rpc_url,
        contract=registry.address,
        submit_rate=0,
    )
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(contract=registry.address, anchor_interval=0, logs=["suggestions"]),
    )

    def seal() -> None:
        while worker.step():
            pass

    try:
        with TestClient(create_app(settings)) as api:
            codes = []
            for i in range(2):
                r = api.post("/api/v1/suggestions", json={**SUGGESTION, "title": f"积水 {i}"})
                assert r.status_code == 201, r.text
                codes.append(r.json()["tracking_code"])
            seal()  # batch 0: A0, B0, map head
            accept(database, codes[0])
            seal()  # batch 1: A1, map head
            yield Live(api, ganache.rpc_url, codes[0], codes[1], seal)
    finally:
        for state in worker.logs:
            state.lock.release()


def accept(database: Database, code: str) -> None:
    with database.sessions.begin() as session:
        service.append_record(
            session,
            log="suggestions",
            type="suggestion.transition",
            subject=code,
            actor={"role": "deputy", "id": "deputy-0000beef"},
            body={"from": "SUBMITTED", "to": "DEPUTY_ACCEPTED"},
        )


def verdicts(capsys: pytest.CaptureFixture[str]) -> tuple[str, str, dict[str, Any]]:
    answer = json.loads(capsys.readouterr().out)
    return answer["verdict"], answer["completeness"]["verdict"], answer["completeness"]


# -- honest -------------------------------------------------------------------------------


def test_an_honest_trail_is_complete_on_chain_and_offline(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = live.trail(live.a)
    assert answer["map"]["batch"] == 1 and answer["map"]["subject"] == live.a
    assert answer["map"]["proof"]["key"] == key_of(live.a).hex()

    assert live.run(live.a, "--rpc", live.rpc) == 0
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("valid", "complete"), found["reason"]
    assert (found["batch"], found["latest_batch"], found["head_seq"]) == (1, 1, 1)
    assert found["head_hash"] == answer["records"][-1]["record_hash"]

    # Offline: every receipt and the map head from their checkpoints, freshness from the
    # latest checkpoint, nothing from the chain.
    assert live.run(live.a, "--log-key", live.log_key()) == 0
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("valid", "complete"), found["reason"]
    assert any("latest checkpoint" in check for check in found["checks"])

    # Text: the completeness verdict is reported apart from the trail's.
    assert (
        main(["trail", live.a, "--api", API, "--rpc", live.rpc], http_transport=live.transport())
        == 0
    )
    out = capsys.readouterr().out
    assert "VALID:" in out and "COMPLETENESS COMPLETE:" in out


def test_a_record_after_the_map_leaves_the_trail_complete_as_of_the_latest_batch(
    live: Live, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    with database.sessions.begin() as session:  # B accepted, not sealed yet
        service.append_record(
            session,
            log="suggestions",
            type="suggestion.transition",
            subject=live.b,
            actor={"role": "deputy", "id": "deputy-0000beef"},
            body={"from": "SUBMITTED", "to": "DEPUTY_ACCEPTED"},
        )
    assert live.run(live.b, "--rpc", live.rpc) == 1  # the trail is pending
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("pending", "complete") and found["head_seq"] == 0


# -- what a service hiding part of a trail shows -------------------------------------------


def test_a_trail_with_its_last_record_dropped_is_truncated(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    last = live.trail(live.a)["records"][-1]

    def drop_last(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            answer["records"] = answer["records"][:-1]
            answer["state"] = "SUBMITTED"
        return answer

    for options in (("--rpc", live.rpc), ("--log-key", live.log_key())):
        assert live.run(live.a, *options, edit=drop_last) == 1
        trail, complete, found = verdicts(capsys)
        # The version 1 checks see a sound trail; the map sees the record dropped.
        assert (trail, complete) == ("valid", "truncated")
        assert found["head_seq"] == 1 and found["head_hash"] == last["record_hash"]
        assert "ends at seq 0" in found["reason"]


def test_a_proof_of_another_subject_is_altered(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    other = live.get(f"/api/v1/logs/suggestions/map/{live.b}")

    def swap_proof(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            answer["map"]["proof"] = other["proof"]
        return answer

    assert live.run(live.a, "--rpc", live.rpc, edit=swap_proof) == 1
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("valid", "altered")
    assert "SHA-256 of the subject" in found["reason"]

    def swap_subject(path: str, answer: Any) -> Any:  # the proof and the subject it names
        if path.endswith("/trail"):
            answer["map"] = other
        return answer

    assert live.run(live.a, "--rpc", live.rpc, edit=swap_subject) == 1
    assert verdicts(capsys)[1] == "altered"


def test_a_changed_map_head_or_sibling_is_altered(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    def change_root(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            body = answer["map"]["map_head"]["record"]["body"]
            body["map_root"] = "00" * 32
        return answer

    assert live.run(live.a, "--rpc", live.rpc, edit=change_root) == 1
    _, complete, found = verdicts(capsys)
    assert complete == "altered" and "map head's receipt" in found["reason"]

    def change_sibling(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            siblings = answer["map"]["proof"]["siblings"]
            siblings[0] = "ff" * 32 if siblings[0] != "ff" * 32 else "00" * 32
        return answer

    assert live.trail(live.a)["map"]["proof"]["siblings"]  # two trails: one sibling at least
    assert live.run(live.a, "--rpc", live.rpc, edit=change_sibling) == 1
    _, complete, found = verdicts(capsys)
    assert complete == "altered" and "does not reach the map root" in found["reason"]


def test_a_map_of_an_older_batch_is_stale(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    older = live.get(f"/api/v1/logs/suggestions/map/{live.b}?batch=0")
    assert older["batch"] == 0

    def older_map(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            answer["map"] = older
        return answer

    assert live.run(live.b, "--rpc", live.rpc, edit=older_map) == 1
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("valid", "stale")
    assert (found["batch"], found["latest_batch"]) == (0, 1)

    assert live.run(live.b, "--log-key", live.log_key(), edit=older_map) == 1
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("valid", "stale") and "latest cosigned checkpoint" in found[
        "reason"
    ]

    # A's map of batch 0 holds seq 0, yet seq 1 is shown: the map is stale, not the trail cut.
    older_a = live.get(f"/api/v1/logs/suggestions/map/{live.a}?batch=0")
    older_a_map = lambda p, a: {**a, "map": older_a} if p.endswith("/trail") else a  # noqa: E731
    assert live.run(live.a, "--rpc", live.rpc, edit=older_a_map) == 1
    assert verdicts(capsys)[1] == "stale"


def test_records_shown_for_a_subject_the_map_says_is_absent_are_unknown_subject(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    ghost = "SG-0000-0000-0000"
    absent = live.get(f"/api/v1/logs/suggestions/map/{ghost}")
    assert absent["proof"]["key"] == key_of(ghost).hex()
    shown = live.trail(live.b)

    def ghost_trail(path: str, answer: Any) -> Any:
        if path.endswith(f"/{ghost}/trail"):  # B's records shown under the ghost's code
            return {**shown, "tracking_code": ghost, "map": absent}
        return answer

    assert live.run(ghost, "--rpc", live.rpc, edit=ghost_trail) == 1
    trail, complete, found = verdicts(capsys)
    assert (trail, complete) == ("broken_link", "unknown_subject")
    assert found["head_seq"] is None


def test_without_a_map_completeness_is_not_checked(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_map(path: str, answer: Any) -> Any:
        if path.endswith("/trail"):
            answer.pop("map")
        return answer

    assert live.run(live.a, "--rpc", live.rpc, edit=no_map) == 1
    assert verdicts(capsys)[:2] == ("valid", "no_map")


def test_verify_completeness_judges_the_trail_shown_against_the_map(live: Live) -> None:
    """The function itself: a head at a seq the trail shows with another record hash is
    head_mismatch; an empty listing against a map holding the trail is truncated."""
    answer = live.trail(live.a)
    chain = Web3ChainReader(live.rpc)
    honest = verify_completeness(answer["map"], answer["records"], chain, subject=live.a)
    assert honest.verdict is Completeness.COMPLETE
    other = json.loads(json.dumps(answer["records"]))
    other[-1]["record_hash"] = "ab" * 32
    assert (
        verify_completeness(answer["map"], other, chain, subject=live.a).verdict
        is Completeness.HEAD_MISMATCH
    )
    assert (
        verify_completeness(answer["map"], [], chain, subject=live.a).verdict
        is Completeness.TRUNCATED
    )
    # A trail cut short at any length before the map's head is truncated.
    for code in (live.a, live.b):
        shown = live.trail(code)
        for kept in range(len(shown["records"])):
            cut = verify_completeness(shown["map"], shown["records"][:kept], chain, subject=code)
            assert cut.verdict is Completeness.TRUNCATED, (code, kept, cut.reason)
    assert TrailVerdict.VALID.value == "valid"
