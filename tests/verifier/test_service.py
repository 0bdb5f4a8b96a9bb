"""The verifier's HTTP service against a real ganache (and, for trails, the real API over a real
database): verdicts, precise errors, CORS, the body limit and the root cache."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.checkpoint import Checkpoint, sign_checkpoint
from core.cosignature import Cosigner
from core.note import Ed25519Signer, decode_base64, encode_base64
from ledger.chain import ChainClient
from ledger.devchain import free_port
from ledger.settings import Settings
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from tests.verifier.anchoring import Anchored, ExportService, anchor_batch, records_log
from tests.verifier.fakes import Batch, FakeChain, suggestion_batch
from verifier.chain import CachingChainReader, ChainReader, Web3ChainReader, log_id
from verifier.checkpoint import CheckpointTrust
from verifier.service import MAX_RECEIPT_BYTES, create_verifier_app

API = "http://civic.test"
PORTAL = "http://127.0.0.1:8000"


class CountingReader:
    """A real reader that counts the questions it is asked."""

    def __init__(self, inner: ChainReader) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def chain_id(self) -> int:
        self._count("chain_id")
        return self.inner.chain_id()

    def has_code(self, address: str) -> bool:
        self._count("has_code")
        return self.inner.has_code(address)

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        self._count("batch_of")
        return self.inner.batch_of(contract, log_id, batch)

    def block_number(self) -> int:
        self._count("block_number")
        return self.inner.block_number()

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        self._count("attestations")
        return self.inner.attestations(contract, log_id, batch)


def verifier(rpc_url: str, **kwargs: Any) -> TestClient:
    return TestClient(create_verifier_app(rpc_url=rpc_url, api_url=API, **kwargs))


def closed_rpc() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def anchored(registry) -> Anchored:  # type: ignore[no-untyped-def]
    return anchor_batch(registry.client, registry.address, records_log(5), 0)


@pytest.fixture
def exports() -> ExportService:
    return ExportService()


@pytest.fixture
def client(ganache, exports: ExportService) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with verifier(ganache.rpc_url, http_transport=exports.transport()) as test_client:
        yield test_client


def post(client: TestClient, receipt: Any, **params: Any) -> httpx.Response:
    body = receipt if isinstance(receipt, bytes) else json.dumps(receipt, ensure_ascii=False)
    return client.post(
        "/verify/receipt",
        content=body,
        params=params,
        headers={"Content-Type": "application/json"},
    )


# -- POST /verify/receipt ---------------------------------------------------------------------

pytestmark = [pytest.mark.chain, pytest.mark.every_node]


def test_valid_receipts_are_valid(client: TestClient, anchored: Anchored) -> None:
    for receipt, sealed in zip(anchored.receipts(), anchored.records, strict=True):
        answer = post(client, receipt)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["verdict"] == "valid", result["reason"]
        assert result["record_hash"] == sealed.record_hash
        assert [c["step"] for c in result["checks"]] == [1, 2, 3, 4, 4, 4, 5, 5]
        assert all(c["ok"] for c in result["checks"])


def test_an_altered_receipt_is_altered(client: TestClient, anchored: Anchored) -> None:
    receipt = anchored.receipt(2)
    receipt["record"]["body"]["title"] += "。"
    result = post(client, receipt).json()
    assert result["verdict"] == "altered"
    assert result["checks"][-1] == {
        "step": 3,
        "name": "inclusion proof",
        "ok": False,
        "detail": result["reason"],
    }


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "not JSON"),
        (b"{not json", "not JSON"),
        (b'{"v": 1, "v": 1}', "duplicate member"),
        (b"[" * 30_000 + b"]" * 30_000, "nests deeper than 64"),
        (b'{"v": NaN}', "not a JSON number"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "must be a JSON object"),
        (b'{"v": 1, "record": {}, "proof": {}, "anchor": {}}', "record members differ"),
    ],
)
def test_a_body_that_is_not_a_receipt_is_the_verdict_malformed(
    client: TestClient, body: bytes, why: str
) -> None:
    answer = post(client, body)
    assert answer.status_code == 200
    assert answer.json()["verdict"] == "malformed"
    assert why in answer.json()["reason"]


def test_a_receipt_for_another_chain_is_wrong_chain(client: TestClient, anchored: Anchored) -> None:
    receipt = anchored.receipt(0)
    receipt["anchor"]["chain_id"] = 1
    result = post(client, receipt).json()
    assert result["verdict"] == "wrong_chain"
    assert "names chain 1" in result["reason"]
    nowhere = anchored.receipt(0)
    nowhere["anchor"]["contract"] = "0x" + "00" * 19 + "01"
    assert post(client, nowhere).json()["verdict"] == "wrong_chain"


def test_an_unreachable_chain_is_503_never_a_verdict(anchored: Anchored) -> None:
    with verifier(closed_rpc()) as down:
        answer = post(down, anchored.receipt(0))
        assert answer.status_code == 503
        assert answer.json()["error"] == "ChainUnreachable"
        assert "cannot reach" in answer.json()["detail"]
        # What needs no chain is still answered.
        assert post(down, b"{").json()["verdict"] == "malformed"
        altered = anchored.receipt(0)
        altered["proof"]["index"] = 1
        assert post(down, altered).json()["verdict"] == "altered"
        health = down.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "chain_unreachable"


def test_required_attestations_and_confirmations(registry, ganache, anchored: Anchored) -> None:  # type: ignore[no-untyped-def]
    receipt = anchored.receipt(1)
    with verifier(ganache.rpc_url) as client:
        result = post(client, receipt, min_attestations=1).json()
        assert result["verdict"] == "unconfirmed"
        assert "0 witness attestations; 1 required" in result["reason"]
        result = post(client, receipt, min_confirmations=10_000).json()
        assert result["verdict"] == "unconfirmed"
        assert "10000 required" in result["reason"]
        assert post(client, receipt, min_attestations=-1).status_code == 422
        assert post(client, receipt, min_confirmations="many").status_code == 422

    registry.client.grant_role(registry.address, "WITNESS_ROLE", ganache.address(1))
    witness = ChainClient(ganache.rpc_url, ganache.keys[1])
    witness.attest(registry.address, "suggestions", 0, anchored.root)
    with verifier(ganache.rpc_url) as client:
        assert post(client, receipt, min_attestations=1).json()["verdict"] == "valid"
        assert post(client, receipt, min_attestations=2).json()["verdict"] == "unconfirmed"


def test_a_body_over_64_kib_is_413(client: TestClient) -> None:
    big = b'{"v": 1, "pad": "' + b"x" * MAX_RECEIPT_BYTES + b'"}'
    answer = post(client, big)
    assert answer.status_code == 413
    assert answer.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 4096

    answer = client.post("/verify/receipt", content=chunks())
    assert answer.status_code == 413
    just_fits = b" " * (MAX_RECEIPT_BYTES - 2) + b"{}"
    assert post(client, just_fits).json()["verdict"] == "malformed"


# -- CORS, health, docs -------------------------------------------------------------------------


def test_cors_allows_the_portal_only(client: TestClient) -> None:
    allowed = client.get("/healthz", headers={"Origin": PORTAL})
    assert allowed.headers["access-control-allow-origin"] == PORTAL
    other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers

    preflight = client.options(
        "/verify/receipt",
        headers={
            "Origin": "http://localhost:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "DELETE" not in preflight.headers["access-control-allow-methods"]
    for origin, method in (("https://evil.example", "POST"), (PORTAL, "DELETE")):
        refused = client.options(
            "/verify/receipt",
            headers={"Origin": origin, "Access-Control-Request-Method": method},
        )
        assert refused.status_code == 400


def test_cors_origins_are_configurable(ganache) -> None:  # type: ignore[no-untyped-def]
    with verifier(ganache.rpc_url, cors_origins=["https://portal.example"]) as client:
        answer = client.get("/healthz", headers={"Origin": "https://portal.example"})
        assert answer.headers["access-control-allow-origin"] == "https://portal.example"
        assert (
            "access-control-allow-origin"
            not in client.get("/healthz", headers={"Origin": PORTAL}).headers
        )


def test_health_and_openapi(client: TestClient, ganache) -> None:  # type: ignore[no-untyped-def]
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["chain"]["chain_id"] == ganache.chain_id
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/verify/receipt", "/verify/trail/{tracking_code}", "/verify/batch/{log}/{n}"} <= set(
        paths
    )
    assert "requestBody" in paths["/verify/receipt"]["post"]
    assert client.get("/docs").status_code == 200


# -- the root cache ---------------------------------------------------------------------------


def test_repeated_receipts_skip_batch_of_and_not_anchored_is_never_cached(
    registry, ganache, anchored: Anchored
) -> None:  # type: ignore[no-untyped-def]
    counting = CountingReader(Web3ChainReader(ganache.rpc_url))
    with verifier(ganache.rpc_url, reader_factory=lambda url, timeout: counting) as client:
        for _ in range(3):
            for receipt in anchored.receipts():
                assert post(client, receipt).json()["verdict"] == "valid"
        assert counting.calls["batch_of"] == 1
        assert counting.calls["chain_id"] == 1

        later = records_log(5, 3)  # the log with a batch 1 of 3 records, not anchored yet
        early = Anchored(later, 1, anchored.anchor).receipt(2)
        for _ in range(2):
            assert post(client, early).json()["verdict"] == "not_anchored"
        assert counting.calls["batch_of"] == 3  # asked every time

        anchor_batch(registry.client, registry.address, later, 1)
        assert post(client, early).json()["verdict"] == "valid"
        assert post(client, early).json()["verdict"] == "valid"
        assert counting.calls["batch_of"] == 4


def test_without_the_cache_every_receipt_asks(ganache, anchored: Anchored) -> None:  # type: ignore[no-untyped-def]
    counting = CountingReader(Web3ChainReader(ganache.rpc_url))
    with verifier(
        ganache.rpc_url, reader_factory=lambda url, timeout: counting, cache=False
    ) as client:
        for receipt in anchored.receipts():
            assert post(client, receipt).json()["verdict"] == "valid"
    assert counting.calls["batch_of"] == 5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_caching_reader_rules() -> None:
    batch = Batch.of(suggestion_batch(4))
    fake = FakeChain()
    clock = Clock()
    reader = CachingChainReader(fake, max_batches=2, block_ttl=1.0, identity_ttl=60.0, clock=clock)
    lid = log_id(batch.log)
    contract = next(iter(fake.code_at))

    assert reader.batch_of(contract, lid, batch.number)[0] == bytes(32)
    fake.anchor(batch)
    assert reader.batch_of(contract, lid, batch.number)[0] == batch.root  # zero was not kept
    fake.batches.clear()
    assert reader.batch_of(contract.upper().replace("0X", "0x"), lid, batch.number)[0] == batch.root
    assert fake.calls.count("batch_of") == 2

    fake.anchor(Batch.of(suggestion_batch(2), 7))
    fake.anchor(Batch.of(suggestion_batch(3), 8))
    reader.batch_of(contract, lid, 7)
    reader.batch_of(contract, lid, 8)  # evicts batch 3, the least recently used
    assert reader.cached_batches() == 2
    fake.anchor(batch)
    reader.batch_of(contract, lid, batch.number)
    assert fake.calls.count("batch_of") == 5

    assert reader.block_number() == fake.latest
    fake.latest += 5
    assert reader.block_number() == fake.latest - 5
    clock.now += 1.01
    assert reader.block_number() == fake.latest

    assert reader.has_code("0x" + "11" * 20) is False
    fake.code_at.add("0x" + "11" * 20)
    assert reader.has_code("0x" + "11" * 20) is True  # "no code" was not kept
    fake.code_at.clear()
    assert reader.has_code("0x" + "11" * 20) is True
    clock.now += 61
    assert reader.has_code("0x" + "11" * 20) is False

    fake.unreachable = True
    with pytest.raises(Exception, match="cannot reach"):
        reader.block_number()

    # nextBatch is asked every time (a remembered smaller answer would make an old map of
    # trail heads look the latest); a reader that cannot ask it says so.
    class Growing:
        count = 3

        def next_batch(self, contract: str, log_id: bytes) -> int:
            self.count += 1
            return self.count

    growing = CachingChainReader(Growing())  # type: ignore[arg-type]
    assert [growing.next_batch(contract, lid) for _ in range(2)] == [4, 5]
    with pytest.raises(TypeError, match="cannot ask nextBatch"):
        reader.next_batch(contract, lid)


# -- GET /verify/batch/{log}/{n} ------------------------------------------------------------------


def test_an_honest_batch_export_is_valid(
    client: TestClient, exports: ExportService, anchored: Anchored
) -> None:
    exports.publish(anchored)
    result = client.get("/verify/batch/suggestions/0").json()
    assert result["verdict"] == "valid", result["reason"]
    assert result["root"] == result["chain_root"] == anchored.root.hex()
    assert result["size"] == result["chain_size"] == 5
    assert (result["version"], result["first"]) == (2, 0)
    assert result["attestations"] == 0 and result["confirmations"] >= 1
    assert result["tx"] == anchored.anchor["tx"]


def _tamper_leaf(export: dict[str, Any]) -> None:
    leaf = export["leaf_hashes"][3]
    export["leaf_hashes"][3] = ("0" if leaf[0] != "0" else "1") + leaf[1:]


def test_a_tampered_leaf_is_altered(
    client: TestClient, exports: ExportService, anchored: Anchored
) -> None:
    exports.publish(anchored, _tamper_leaf)
    result = client.get("/verify/batch/suggestions/0").json()
    assert result["verdict"] == "altered"
    assert "the published leaves are not the batch anchored" in result["reason"]

    exports.publish(anchored, lambda e: e["leaf_hashes"].pop())
    result = client.get("/verify/batch/suggestions/0").json()
    assert result["verdict"] == "altered"
    assert "4 leaf hashes for entries 0 to 4 (5 entries)" in result["reason"]


def test_an_export_whose_root_is_not_the_chains_is_root_mismatch(
    client: TestClient, exports: ExportService, anchored: Anchored
) -> None:
    other = records_log(5, salt_from=20)  # consistent in itself, not what was anchored
    exports.publish(Anchored(other, 0, anchored.anchor))
    result = client.get("/verify/batch/suggestions/0").json()
    assert result["verdict"] == "root_mismatch"
    assert result["chain_root"] == anchored.root.hex() != result["root"]

    def smaller(export: dict[str, Any]) -> None:  # a size the chain does not have
        four = records_log(4)
        export.update(
            size=4, root=four.root(0).hex(), leaf_hashes=[r.record_hash for r in four.records]
        )

    exports.publish(anchored, smaller)
    assert client.get("/verify/batch/suggestions/0").json()["verdict"] == "root_mismatch"


def test_other_batch_verdicts_and_errors(
    client: TestClient, exports: ExportService, anchored: Anchored
) -> None:
    exports.publish(Anchored(records_log(5, 2), 1, anchored.anchor))
    assert client.get("/verify/batch/suggestions/1").json()["verdict"] == "not_anchored"

    exports.publish(anchored, lambda e: e.update(chain_id=5))
    result = client.get("/verify/batch/suggestions/0").json()
    assert result["verdict"] == "wrong_chain" and "names chain 5" in result["reason"]

    exports.publish(anchored, lambda e: e.update(batch=9))
    assert client.get("/verify/batch/suggestions/0").json()["verdict"] == "malformed"
    exports.publish(anchored, lambda e: e.update(root="XYZ"))
    assert client.get("/verify/batch/suggestions/0").json()["verdict"] == "malformed"

    exports.pending.add(("suggestions", 2))
    assert client.get("/verify/batch/suggestions/2").json()["verdict"] == "pending"

    unknown = client.get("/verify/batch/suggestions/3")
    assert unknown.status_code == 404 and unknown.json()["error"] == "UnknownBatch"
    assert client.get("/verify/batch/ballots/0").status_code == 404
    assert client.get("/verify/batch/suggestions/-1").status_code == 422

    exports.down = True
    down = client.get("/verify/batch/suggestions/0")
    assert down.status_code == 502 and down.json()["error"] == "BatchUnavailable"


def test_batch_route_with_an_unreachable_chain_is_503(
    exports: ExportService, anchored: Anchored
) -> None:
    exports.publish(anchored)
    with verifier(closed_rpc(), http_transport=exports.transport()) as down:
        answer = down.get("/verify/batch/suggestions/0")
        assert answer.status_code == 503 and answer.json()["error"] == "ChainUnreachable"


# -- GET /verify/trail/{tracking_code}: the real API over a real database --------------------------

SUGGESTION = {
    "title": "小区门口积水",
    "text": "每逢下雨，幸福小区南门积水没过脚踝。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def forward_to(api: TestClient) -> httpx.MockTransport:
    """Carry the verifier's requests to the API app in this process."""

    def handle(request: httpx.Request) -> httpx.Response:
        answer = api.request(
            request.method, request.url.raw_path.decode(), headers={"Accept": "application/json"}
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(handle)


def test_trail_route_against_the_real_api_and_chain(
    database: Database, registry, ganache, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
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
    try:
        with TestClient(create_app(settings)) as api:
            accepted = [
                api.post("/api/v1/suggestions", json={**SUGGESTION, "title": f"积水 {i}"})
                for i in range(3)
            ]
            assert all(a.status_code == 201 for a in accepted)
            code = accepted[1].json()["tracking_code"]
            with verifier(ganache.rpc_url, http_transport=forward_to(api)) as client:
                pending = client.get(f"/verify/trail/{code}").json()
                assert pending["verdict"] == "pending"
                assert pending["service_state"] == "SUBMITTED"
                assert pending["completeness"]["verdict"] == "no_map"  # nothing anchored yet

                assert worker.step() is True
                result = client.get(f"/verify/trail/{code}").json()
                assert result["verdict"] == "valid", result["reason"]
                assert result["tracking_code"] == code and result["state"] == "SUBMITTED"
                assert result["records"][0]["receipt_verdict"] == "valid"
                # the whole trail as of batch 0, on chain (PROTOCOL §11)
                assert result["completeness"]["verdict"] == "complete", result["completeness"]

                batch = client.get("/verify/batch/suggestions/0").json()
                # the three suggestions and the batch's ledger.map_head record (PROTOCOL §10)
                assert batch["verdict"] == "valid" and batch["size"] == 4

                unknown = client.get("/verify/trail/SG-0000-0000-0000")
                assert unknown.status_code == 404
                assert unknown.json()["error"] == "UnknownTrackingCode"
                assert client.get("/verify/batch/suggestions/1").status_code == 404
    finally:
        for state in worker.logs:
            state.lock.release()


def test_trail_route_when_the_api_or_the_chain_is_down(ganache, anchored: Anchored) -> None:  # type: ignore[no-untyped-def]
    api_down = f"http://127.0.0.1:{free_port()}"
    app = create_verifier_app(rpc_url=ganache.rpc_url, api_url=api_down, timeout=2)
    with TestClient(app) as client:
        answer = client.get("/verify/trail/SG-0000-0000-0000")
        assert answer.status_code == 502
        assert answer.json()["error"] == "TrailUnavailable"

    receipt = anchored.receipt(0)
    record = copy.deepcopy(receipt["record"])
    trail = {
        "tracking_code": record["subject"],
        "state": "SUBMITTED",
        "records": [
            {
                "record_hash": anchored.records[0].record_hash,
                "status": "anchored",
                "receipt": receipt,
                "record": record,
            }
        ],
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=trail))
    with verifier(closed_rpc(), http_transport=transport) as down:
        answer = down.get(f"/verify/trail/{record['subject']}")
        assert answer.status_code == 503 and answer.json()["error"] == "ChainUnreachable"
    with verifier(ganache.rpc_url, http_transport=transport) as up:
        result = up.get(f"/verify/trail/{record['subject']}").json()
        # A record of a trail whose first record is a submission: valid against the chain.
        assert result["records"][0]["receipt_verdict"] == "valid"


def test_block_number_cache_is_short(ganache, anchored: Anchored) -> None:  # type: ignore[no-untyped-def]
    counting = CountingReader(Web3ChainReader(ganache.rpc_url))
    with verifier(ganache.rpc_url, reader_factory=lambda url, timeout: counting) as client:
        post(client, anchored.receipt(0))
        post(client, anchored.receipt(1))
        assert counting.calls["block_number"] == 1
        time.sleep(1.05)
        post(client, anchored.receipt(2))
        assert counting.calls["block_number"] == 2


# -- civic-verify serve ---------------------------------------------------------------------------


def test_serve_runs_the_app_with_its_settings(
    monkeypatch: pytest.MonkeyPatch, ganache, anchored: Anchored
) -> None:  # type: ignore[no-untyped-def]
    import uvicorn

    from verifier.cli import main

    served: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("CIVIC_VERIFIER_PORT", "8123")
    monkeypatch.setenv("CIVIC_API_PORT", "8900")
    monkeypatch.delenv("CIVIC_VERIFIER_CORS", raising=False)
    monkeypatch.delenv("CIVIC_API_URL", raising=False)
    assert main(["serve", "--rpc", ganache.rpc_url]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    with TestClient(served["app"]) as client:
        assert post(client, anchored.receipt(0)).json()["verdict"] == "valid"
        origin = {"Origin": "http://localhost:8900"}
        assert client.get("/healthz", headers=origin).headers["access-control-allow-origin"]
        assert client.get("/healthz").json()["api"] == "http://127.0.0.1:8900"

    monkeypatch.setenv("CIVIC_VERIFIER_CORS", "https://a.example, https://b.example/")
    assert main(["serve", "--rpc", ganache.rpc_url, "--port", "9001", "--host", "127.0.0.2"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.2", 9001)
    with TestClient(served["app"]) as client:
        answer = client.get("/healthz", headers={"Origin": "https://b.example"})
        assert answer.headers["access-control-allow-origin"] == "https://b.example"

    assert main(["serve", "--port", "0"]) == 2
    assert main(["serve", "--rpc", "ftp://nowhere"]) == 2


# -- version 2: receipts from their cosigned checkpoints (PROTOCOL §11) ----------------------

ORIGIN = "civic-ledger.localhost/suggestions"
LOG_KEY = Ed25519Signer(ORIGIN, bytes([1]) * 32)
WITNESS_1 = Cosigner("witness1.example", bytes([101]) * 32)
WITNESS_2 = Cosigner("witness2.example", bytes([102]) * 32)
NOW = 1_764_000_000


def cosigned(
    receipt: dict[str, Any], *witnesses: Cosigner, extra_lines: str = ""
) -> dict[str, Any]:
    """``receipt`` with its batch's checkpoint signed by LOG_KEY and cosigned by ``witnesses``."""
    checkpoint = Checkpoint(
        ORIGIN, receipt["proof"]["size"], bytes.fromhex(receipt["proof"]["root"])
    )
    note = sign_checkpoint(checkpoint, LOG_KEY)
    note += "".join(w.cosign(checkpoint.text, NOW).line for w in witnesses) + extra_lines
    return {**receipt, "checkpoint": note}


def forged_line(receipt: dict[str, Any], claimed: Cosigner) -> str:
    """A cosignature line naming ``claimed`` (its name and key ID) but signed by a key nobody
    published: a cosignature by an unknown key posing as a trusted witness."""
    impostor = Cosigner(claimed.name, bytes([7]) * 32)
    text = Checkpoint(
        ORIGIN, receipt["proof"]["size"], bytes.fromhex(receipt["proof"]["root"])
    ).text
    line = impostor.cosign(text, NOW).line
    name, _, blob = line.rstrip("\n").rpartition(" ")
    raw = decode_base64(blob)
    return f"{name} {encode_base64(claimed.key_id + raw[4:])}\n"


def offline_verifier(*witnesses: Cosigner, quorum: int, **kwargs: Any) -> TestClient:
    def no_chain(rpc: str, timeout: float) -> Any:
        raise AssertionError(f"the chain was asked ({rpc}) without an RPC endpoint")

    trust = CheckpointTrust(LOG_KEY.verifier, tuple(w.verifier for w in witnesses), quorum)
    app = create_verifier_app(
        rpc_url=None, api_url=API, trust=trust, reader_factory=no_chain, **kwargs
    )
    return TestClient(app)


def test_with_the_log_key_a_receipt_is_valid_offline_and_names_its_cosigners(
    anchored: Anchored,
) -> None:
    receipt = cosigned(anchored.receipt(1), WITNESS_1, WITNESS_2)
    with offline_verifier(WITNESS_1, WITNESS_2, quorum=2) as client:
        result = post(client, receipt).json()
        assert result["verdict"] == "valid", result["reason"]
        assert "the chain was not asked" in result["reason"]
        assert result["trust_roots"] == ["checkpoint"]
        assert [(c["name"], c["key_id"], c["timestamp"]) for c in result["cosigners"]] == [
            ("witness1.example", WITNESS_1.key_id.hex(), NOW),
            ("witness2.example", WITNESS_2.key_id.hex(), NOW),
        ]
        # A receipt without a checkpoint has no trust root here.
        bare = post(client, anchored.receipt(1)).json()
        assert (bare["verdict"], bare["cosigners"]) == ("unconfirmed", [])
        # Trails and batches are checked on chain: without one, no verdict (503).
        for path in ("/verify/trail/SG-AAAA-BBBB-CCCC", "/verify/batch/suggestions/0"):
            answer = client.get(path)
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"] == "NoChainEndpoint"
        health = client.get("/healthz").json()
        assert (health["status"], health["chain"]) == ("ok", None)
        assert health["checkpoints"] == {
            "log_key": LOG_KEY.verifier_key,
            "witnesses": ["witness1.example", "witness2.example"],
            "quorum": 2,
        }


def test_a_cosignature_by_an_unknown_key_is_bad_signature(anchored: Anchored) -> None:
    receipt = anchored.receipt(0)
    forged = cosigned(receipt, extra_lines=forged_line(receipt, WITNESS_1))
    with offline_verifier(WITNESS_1, quorum=1) as client:
        result = post(client, forged).json()
        assert result["verdict"] == "bad_signature", result["reason"]
        assert "witness1.example" in result["reason"]
        assert result["cosigners"] == []
        # Under its own name and key ID, an untrusted witness's line is not counted at all.
        untrusted = post(client, cosigned(receipt, WITNESS_2)).json()
        assert (untrusted["verdict"], untrusted["cosigners"]) == ("unconfirmed", [])


def test_fewer_trusted_cosigners_than_the_quorum_is_unconfirmed(anchored: Anchored) -> None:
    receipt = cosigned(anchored.receipt(2), WITNESS_1)
    with offline_verifier(WITNESS_1, WITNESS_2, quorum=2) as client:
        result = post(client, receipt).json()
        assert result["verdict"] == "unconfirmed"
        assert result["reason"].startswith("1 of 2 trusted witnesses cosigned")
        assert [c["name"] for c in result["cosigners"]] == ["witness1.example"]
        # Step 5's on-chain counts cannot be had offline either.
        required = post(
            client, cosigned(anchored.receipt(2), WITNESS_1, WITNESS_2), min_confirmations=1
        )
        assert required.json()["verdict"] == "unconfirmed"


def test_with_the_chain_as_well_checkpoint_and_chain_must_agree(
    ganache: Any, anchored: Anchored
) -> None:
    trust = CheckpointTrust(LOG_KEY.verifier, (WITNESS_1.verifier,), 1)
    app = create_verifier_app(rpc_url=ganache.rpc_url, api_url=API, trust=trust)
    with TestClient(app) as client:
        result = post(client, cosigned(anchored.receipt(0), WITNESS_1)).json()
        assert result["verdict"] == "valid", result["reason"]
        assert result["trust_roots"] == ["checkpoint", "chain"]
        assert {c["name"] for c in result["checks"]} >= {"checkpoint", "anchored root and size"}
        # A checkpoint, properly signed and cosigned, of a tree the chain did not anchor: the
        # chain says otherwise and the verdict is the chain's.
        other = records_log(6).receipt(0)
        other["anchor"] = dict(anchored.anchor)
        disagreeing = post(client, cosigned(other, WITNESS_1)).json()
        assert disagreeing["verdict"] == "root_mismatch", disagreeing["reason"]
        assert disagreeing["checks"][-1]["name"] != "checkpoint"


def test_serve_takes_the_log_key_witnesses_and_quorum(
    monkeypatch: pytest.MonkeyPatch, ganache: Any, anchored: Anchored
) -> None:
    import uvicorn

    from verifier.cli import main

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.update(kwargs, app=app))

    def no_chain(rpc: str, timeout: float) -> Any:
        raise AssertionError(f"the chain was asked ({rpc}) without --rpc")

    keys = ["--log-key", LOG_KEY.verifier_key, "--witness", WITNESS_1.verifier_key]
    assert main(["serve", *keys, "--quorum", "1"], reader_factory=no_chain) == 0
    with TestClient(served["app"]) as client:
        result = post(client, cosigned(anchored.receipt(0), WITNESS_1)).json()
        assert (result["verdict"], result["trust_roots"]) == ("valid", ["checkpoint"])
    assert main(["serve", *keys, "--rpc", ganache.rpc_url]) == 0
    with TestClient(served["app"]) as client:
        result = post(client, cosigned(anchored.receipt(0))).json()
        assert result["verdict"] == "unconfirmed"  # the default quorum is 1 with a witness
        result = post(client, cosigned(anchored.receipt(0), WITNESS_1)).json()
        assert (result["verdict"], result["trust_roots"]) == ("valid", ["checkpoint", "chain"])
    assert main(["serve", "--witness", WITNESS_1.verifier_key]) == 2
    assert main(["serve", *keys, "--quorum", "2"]) == 2
