"""The reference files of tests/assets/ (see its README.md), each with the verdict it must get.

* As committed, against an in-memory chain that holds what the honest batch exports say
  (unit level, ``FakeChain``): the files themselves give their verdicts, nothing rewritten.
* Against a real ganache, where the module anchors the honest batch roots on a fresh
  AnchorRegistry and the assets are rebound to it (``tests.verifier.assets.rebind``: only the
  anchor's chain id, contract, transaction and block, and only where they hold the assets' own
  honest values): ``civic-verify receipt`` and ``civic-verify trail`` run as processes, and
  the verifier service's ``POST /verify/receipt``, ``GET /verify/trail/{code}`` and
  ``GET /verify/batch/{log}/{n}``. Trail listings and batch exports are served by a real HTTP
  server on 127.0.0.1, each asset under its own path prefix, as if by a service of its own.
  The CLI has no batch command: ``civic-verify witness --once`` is its reader of batch
  exports (it attests honest batches and refuses tampered ones).
* The committed files are what tests/assets/make_assets.py makes, byte for byte.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.chain import ChainClient
from tests.verifier.assets import (
    ANCHOR_MEMBERS,
    ASSETS,
    Anchors,
    asset,
    asset_anchors,
    asset_names,
    differences,
    honest_batches,
    load,
    rebind,
    rebound_paths,
)
from tests.verifier.fakes import ANCHORED_AT, FakeChain
from verifier.batch import verify_batch_export
from verifier.chain import log_id
from verifier.receipt import verify_receipt_json
from verifier.service import create_verifier_app
from verifier.trail import verify_trail

# asset → (verdict, the §5 step whose check fails, or None when every check passes)
RECEIPTS: dict[str, tuple[str, int | None]] = {
    "receipt.json": ("valid", None),
    "receipt-altered.json": ("altered", 3),
    "receipt-root_mismatch.json": ("root_mismatch", 4),
    "receipt-wrong_chain.json": ("wrong_chain", 4),
    "receipt-malformed.json": ("malformed", 1),
    "receipt-redacted.json": ("redacted", None),
}
# asset → (verdict, position of the first bad record, or None)
TRAILS: dict[str, tuple[str, int | None]] = {
    "trail.json": ("valid", None),
    "trail-broken_link.json": ("broken_link", 3),
    "trail-gap.json": ("gap", 3),
    "trail-illegal_transition.json": ("illegal_transition", 3),
    "trail-time_reversed.json": ("time_reversed", 2),
}
# asset → (verdict, the batch check that fails, or None)
BATCHES: dict[str, tuple[str, int | None]] = {
    "batch-0.json": ("valid", None),
    "batch-1.json": ("valid", None),
    "batch-2.json": ("valid", None),
    "batch-altered.json": ("altered", 2),
    "batch-root_mismatch.json": ("root_mismatch", 4),
}
# Each tampered copy that changes values of an honest asset, and that asset.
TAMPERED_FROM = {
    "receipt-altered.json": "receipt.json",
    "receipt-root_mismatch.json": "receipt.json",
    "receipt-wrong_chain.json": "receipt.json",
    "receipt-malformed.json": "receipt.json",
    "receipt-redacted.json": "receipt.json",
    "batch-altered.json": "batch-0.json",
    "batch-root_mismatch.json": "batch-0.json",
}

LOG = "suggestions"
# The service's public API (README, docs/PROTOCOL-NOTES.md), as the verifier asks it.
TRAIL_PATH = "/api/v1/suggestions/{code}/trail"
BATCH_PATH = "/api/v1/anchors/{log}/{batch}"
EXPORTS = "exports"  # the prefix serving every honest batch export, for the witness
CLI = Path(sys.executable).with_name("civic-verify")
EXIT = {"valid": 0}  # every other verdict exits 1


def stem(name: str) -> str:
    return name.removesuffix(".json")


# -- the assets themselves -------------------------------------------------------------------


def test_every_asset_has_its_expected_verdict_and_names_it() -> None:
    assert asset_names() == sorted([*RECEIPTS, *TRAILS, *BATCHES])
    for table in (RECEIPTS, TRAILS, BATCHES):
        for name, (verdict, _) in table.items():
            tampering = stem(name).partition("-")[2]
            if tampering and not tampering.isdigit():
                assert tampering == verdict, name
            else:
                assert verdict == "valid", name
    readme = asset("README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in asset_names())


def test_the_committed_assets_are_what_the_generator_makes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ASSETS / "make_assets.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    made = sorted(path.name for path in tmp_path.iterdir())
    assert made == asset_names()
    for name in made:
        assert (tmp_path / name).read_bytes() == asset(name).read_bytes(), (
            f"{name} differs from what make_assets.py makes: run it and review the change"
        )


# Deployed values unlike the assets' in every member, so that every rebinding shows.
ELSEWHERE: dict[int, dict[str, Any]] = {
    n: {
        "chain_id": 31337,
        "contract": "0x" + "ab" * 20,
        "tx": "0x" + f"{n:02x}" * 32,
        "block": 1000 + n,
    }
    for n in honest_batches()
}


@pytest.mark.parametrize("name", asset_names())
def test_rebinding_touches_the_anchor_only(name: str) -> None:
    value = load(name)
    for path in rebound_paths(value, ELSEWHERE):
        assert path[-1] in ANCHOR_MEMBERS, path
        assert len(path) == 1 or path[-2] == "anchor", path  # an export's or a receipt's anchor
    rebound = rebind(value, ELSEWHERE)
    assert rebind(rebound, ELSEWHERE) == rebound  # bound values are never rebound again


@pytest.mark.parametrize("name", sorted(TAMPERED_FROM))
def test_what_a_tampered_copy_changed_is_never_rebound(name: str) -> None:
    value = load(name)
    changed = set(differences(value, load(TAMPERED_FROM[name])))
    assert changed
    assert not changed & rebound_paths(value, ELSEWHERE)
    if name == "receipt-wrong_chain.json":
        assert changed == {("anchor", "chain_id")}
        assert rebind(value, ELSEWHERE)["anchor"]["chain_id"] == value["anchor"]["chain_id"]


# -- unit level: the files as committed, against an in-memory chain -------------------------


def fake_chain() -> FakeChain:
    """A chain holding exactly what the honest exports say was anchored, at their contract."""
    anchors = asset_anchors()
    (chain_id,) = {anchor["chain_id"] for anchor in anchors.values()}
    (contract,) = {anchor["contract"].lower() for anchor in anchors.values()}
    chain = FakeChain(id=chain_id, code_at={contract})
    for n, anchor in anchors.items():
        export = load(f"batch-{n}.json")
        root = bytes.fromhex(export["root"])
        chain.batches[(contract, log_id(LOG), n)] = (
            root,
            export["size"],
            ANCHORED_AT,
            anchor["block"],
        )
    return chain


@pytest.mark.parametrize(("name", "expected"), RECEIPTS.items(), ids=list(RECEIPTS))
def test_receipt_assets_as_committed(name: str, expected: tuple[str, int | None]) -> None:
    result = verify_receipt_json(asset(name).read_bytes(), fake_chain())
    assert_receipt(result.to_dict(), expected)


@pytest.mark.parametrize(("name", "expected"), TRAILS.items(), ids=list(TRAILS))
def test_trail_assets_as_committed(name: str, expected: tuple[str, int | None]) -> None:
    listing = load(name)
    result = verify_trail(listing["records"], fake_chain(), subject=listing["tracking_code"])
    assert_trail(result.to_dict(), listing, expected)


@pytest.mark.parametrize(("name", "expected"), BATCHES.items(), ids=list(BATCHES))
def test_batch_assets_as_committed(name: str, expected: tuple[str, int | None]) -> None:
    export = load(name)
    result = verify_batch_export(export, fake_chain(), log=LOG, batch=export["batch"])
    assert_batch(result.to_dict(), expected)


def assert_receipt(result: dict[str, Any], expected: tuple[str, int | None]) -> None:
    verdict, failing_step = expected
    assert result["verdict"] == verdict, result["reason"]
    checks = result["checks"]
    if failing_step is None:
        assert all(check["ok"] for check in checks), checks
        assert [check["step"] for check in checks] == [1, 2, 3, 4, 4, 4, 5, 5]
    else:
        assert [check["ok"] for check in checks] == [True] * (len(checks) - 1) + [False]
        assert checks[-1]["step"] == failing_step
        assert checks[-1]["detail"] == result["reason"]


def assert_trail(
    result: dict[str, Any], listing: dict[str, Any], expected: tuple[str, int | None]
) -> None:
    verdict, first_bad = expected
    assert result["verdict"] == verdict, result["reason"]
    assert result["first_bad"] == first_bad
    assert result["tracking_code"] == listing["tracking_code"]
    records = result["records"]
    assert len(records) == len(listing["records"])
    # Every receipt is valid: a faulty service anchored these honestly, only the trail is bad.
    assert [r["receipt_verdict"] for r in records] == ["valid"] * len(records)
    bad = [r["index"] for r in records if not r["ok"]]
    assert bad == ([] if first_bad is None else [first_bad])
    if first_bad is not None:
        assert records[first_bad]["verdict"] == verdict
        assert result["reason"].startswith(f"record at position {first_bad} ")
    else:
        assert result["state"] == listing["state"]


def assert_batch(result: dict[str, Any], expected: tuple[str, int | None]) -> None:
    verdict, failing_check = expected
    assert result["verdict"] == verdict, result["reason"]
    checks = result["checks"]
    if failing_check is None:
        assert all(check["ok"] for check in checks)
    else:
        assert not checks[-1]["ok"] and checks[-1]["step"] == failing_check


# -- a real chain: the honest batch roots anchored on a fresh registry ------------------------


@dataclass(frozen=True)
class Deployed:
    rpc_url: str
    contract: str
    anchors: Anchors
    keys: list[bytes]


@pytest.fixture(scope="module")
def deployed(ganache) -> Deployed:  # type: ignore[no-untyped-def]
    """A fresh AnchorRegistry holding each honest export's root and size, in batch order."""
    client = ChainClient(ganache.rpc_url, ganache.keys[0])
    contract = client.deploy_registry().address
    anchors: dict[int, dict[str, Any]] = {}
    for n in honest_batches():
        export = load(f"batch-{n}.json")
        root = bytes.fromhex(export["root"])
        signed = client.sign_anchor(contract, export["log"], n, root, export["size"])
        client.send_raw(signed.raw)
        mined = client.wait_for_receipt(signed.tx_hash, 30)
        assert mined is not None and mined.status == 1
        anchors[n] = {
            "chain_id": client.chain_id,
            "contract": contract,
            "tx": signed.tx_hash,
            "block": mined.block_number,
        }
    client.grant_role(contract, "WITNESS_ROLE", ganache.address(1))
    return Deployed(ganache.rpc_url, contract, anchors, ganache.keys)


class ServedAssets:
    """The service's public API on a real HTTP server: each published asset at the path the
    service serves it at, under a prefix of its own; anything else is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = routes.get(self.path)
                status = 200 if body is not None else 404
                if body is None:
                    body = json.dumps({"error": "NotFound", "detail": self.path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def publish(self, prefix: str, path: str, value: Any) -> None:
        self.routes[f"/{prefix}{path}"] = json.dumps(value, ensure_ascii=False).encode()

    def api(self, prefix: str) -> str:
        """The base URL of the service serving ``prefix``'s assets."""
        return f"{self.base}/{prefix}"

    def run(self) -> Iterator[ServedAssets]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
            thread.join(5)


@pytest.fixture(scope="module")
def served(deployed: Deployed) -> Iterator[ServedAssets]:
    """Every trail listing and batch export, rebound to ``deployed``, under its own stem; the
    honest exports together under ``/exports``."""
    assets = ServedAssets()
    for name in TRAILS:
        listing = load(name)
        path = TRAIL_PATH.format(code=listing["tracking_code"])
        assets.publish(stem(name), path, rebind(listing, deployed.anchors))
    for name in BATCHES:
        export = load(name)
        path = BATCH_PATH.format(log=export["log"], batch=export["batch"])
        assets.publish(stem(name), path, rebind(export, deployed.anchors))
    for n in honest_batches():
        path = BATCH_PATH.format(log=LOG, batch=n)
        assets.publish(EXPORTS, path, rebind(load(f"batch-{n}.json"), deployed.anchors))
    yield from assets.run()


def civic_verify(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *argv], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.chain
@pytest.mark.parametrize(("name", "expected"), RECEIPTS.items(), ids=list(RECEIPTS))
def test_civic_verify_receipt(
    name: str, expected: tuple[str, int | None], deployed: Deployed, tmp_path: Path
) -> None:
    receipt = tmp_path / name
    receipt.write_text(json.dumps(rebind(load(name), deployed.anchors), ensure_ascii=False))
    done = civic_verify("receipt", str(receipt), "--rpc", deployed.rpc_url, "--json")
    assert done.returncode == EXIT.get(expected[0], 1), done.stderr or done.stdout
    assert_receipt(json.loads(done.stdout), expected)


@pytest.mark.chain
@pytest.mark.parametrize(("name", "expected"), TRAILS.items(), ids=list(TRAILS))
def test_civic_verify_trail(
    name: str, expected: tuple[str, int | None], deployed: Deployed, served: ServedAssets
) -> None:
    listing = load(name)
    code, api = listing["tracking_code"], served.api(stem(name))
    done = civic_verify("trail", code, "--api", api, "--rpc", deployed.rpc_url, "--json")
    # The assets are version 1 trail answers: no map of trail heads, so completeness is not
    # checked (no_map) and a valid trail exits 1 too; completeness against the real service:
    # tests/verifier/test_trail_map.py.
    assert done.returncode == 1, done.stderr or done.stdout
    result = json.loads(done.stdout)
    assert result["completeness"]["verdict"] == "no_map"
    assert_trail(result, listing, expected)
    assert result["service_state"] == listing["state"]


@pytest.mark.chain
def test_civic_verify_witness_attests_the_honest_exports(
    deployed: Deployed, served: ServedAssets, tmp_path: Path
) -> None:
    key = witness_key(tmp_path, deployed)
    done = witness(key, served.api(EXPORTS), deployed)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        f"witness: {len(honest_batches())} attested, 0 already attested, 0 refused"
    )


@pytest.mark.chain
@pytest.mark.parametrize("name", [n for n, (v, _) in BATCHES.items() if v != "valid"])
def test_civic_verify_witness_refuses_a_tampered_export(
    name: str, deployed: Deployed, served: ServedAssets, tmp_path: Path
) -> None:
    key = witness_key(tmp_path, deployed)
    done = witness(key, served.api(stem(name)), deployed)
    assert done.returncode == 3, done.stderr
    verdict = BATCHES[name][0]
    batch = load(name)["batch"]
    assert f"MISMATCH in batch {batch} of log {LOG!r}: {verdict.upper()}\n" in done.stderr
    assert done.stdout.splitlines()[-1] == "witness: 0 attested, 0 already attested, 1 refused"


def witness_key(tmp_path: Path, deployed: Deployed) -> Path:
    path = tmp_path / "witness.key"  # its progress file goes beside it: a fresh one per test
    path.write_text(f"0x{deployed.keys[1].hex()}\n")
    path.chmod(0o600)
    return path


def witness(key: Path, api: str, deployed: Deployed) -> subprocess.CompletedProcess[str]:
    return civic_verify(
        "witness",
        "--log",
        LOG,
        "--key",
        str(key),
        "--api",
        api,
        "--rpc",
        deployed.rpc_url,
        "--once",
    )


# -- the verifier service -------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(deployed: Deployed) -> Iterator[TestClient]:
    """The verifier service for receipts (it asks no API for them)."""
    app = create_verifier_app(rpc_url=deployed.rpc_url, api_url="http://127.0.0.1:9")
    with TestClient(app) as client:
        yield client


def service_for(deployed: Deployed, api: str) -> TestClient:
    return TestClient(create_verifier_app(rpc_url=deployed.rpc_url, api_url=api))


@pytest.mark.chain
@pytest.mark.parametrize(("name", "expected"), RECEIPTS.items(), ids=list(RECEIPTS))
def test_service_verifies_receipt(
    name: str, expected: tuple[str, int | None], deployed: Deployed, service: TestClient
) -> None:
    body = json.dumps(rebind(load(name), deployed.anchors), ensure_ascii=False)
    answer = service.post(
        "/verify/receipt", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    assert_receipt(answer.json(), expected)


@pytest.mark.chain
@pytest.mark.parametrize(("name", "expected"), TRAILS.items(), ids=list(TRAILS))
def test_service_verifies_trail(
    name: str, expected: tuple[str, int | None], deployed: Deployed, served: ServedAssets
) -> None:
    listing = load(name)
    with service_for(deployed, served.api(stem(name))) as client:
        answer = client.get(f"/verify/trail/{listing['tracking_code']}")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert_trail(result, listing, expected)
    assert result["service_state"] == listing["state"]


@pytest.mark.chain
@pytest.mark.parametrize(("name", "expected"), BATCHES.items(), ids=list(BATCHES))
def test_service_verifies_batch_export(
    name: str, expected: tuple[str, int | None], deployed: Deployed, served: ServedAssets
) -> None:
    export = load(name)
    with service_for(deployed, served.api(stem(name))) as client:
        answer = client.get(f"/verify/batch/{export['log']}/{export['batch']}")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert_batch(result, expected)
    assert result["contract"] == deployed.contract
