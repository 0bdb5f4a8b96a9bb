"""The whole service as a user runs it: `civic-ledger run` (ganache, contract, database,
API, worker) in its own process group, driven over HTTP, checked with `civic-verify`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.verdicts import Verdict
from tests.fixtures.db import BACKENDS, POSTGRES_URL, postgres_schema_url
from tests.fixtures.service import Service
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt

pytestmark = pytest.mark.chain

GOOD = {
    "title": "小区门口积水",
    "text": "每逢下雨，幸福小区南门积水没过脚踝。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


@pytest.fixture(params=BACKENDS)
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    database_url, drop = None, None
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("CIVIC_TEST_POSTGRES_URL is not set")
        database_url, drop = postgres_schema_url()
    svc = Service(tmp_path / "data", database_url=database_url)
    try:
        svc.start()
        yield svc
    finally:
        if svc.proc and svc.proc.poll() is None:
            svc.kill9()
        if drop:
            drop()


def _verify_cli(path: Path, rpc: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier.cli", "receipt", str(path), "--rpc", rpc],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_submit_anchor_verify_and_detect_alteration(service: Service, tmp_path: Path) -> None:
    accepted = [
        httpx.post(
            f"{service.api}/api/v1/suggestions", json={**GOOD, "title": f"积水 {i}"}, timeout=5
        )
        for i in range(3)
    ]
    assert all(r.status_code == 201 for r in accepted)
    record_hash = accepted[0].json()["record_hash"]
    receipt, waited = service.receipt(record_hash, timeout=30)
    assert waited <= 2 * 2.0, f"receipt took {waited:.2f}s, more than twice the anchor interval"
    assert receipt["record"]["subject"] == accepted[0].json()["tracking_code"]
    # the three suggestions and the map head after them (PROTOCOL §10)
    assert receipt["proof"]["size"] == 4 and len(receipt["proof"]["path"]) == 2

    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt, ensure_ascii=False))
    result = _verify_cli(path, service.rpc)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower()

    # One changed character anywhere in the record, or in any path element: altered.
    tampered_text = json.loads(json.dumps(receipt))
    tampered_text["record"]["body"]["text"] = tampered_text["record"]["body"]["text"].replace(
        "脚踝", "膝盖"
    )
    tampered_path = json.loads(json.dumps(receipt))
    element = tampered_path["proof"]["path"][1]
    tampered_path["proof"]["path"][1] = ("0" if element[0] != "0" else "1") + element[1:]
    for tampered in (tampered_text, tampered_path):
        path.write_text(json.dumps(tampered, ensure_ascii=False))
        result = _verify_cli(path, service.rpc)
        assert result.returncode == 1
        assert "altered" in result.stdout.lower()

    # The verifier's own HTTP service, started by `civic-ledger run`, says the same.
    verifier = f"http://127.0.0.1:{service.verifier_port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            verdict = httpx.post(f"{verifier}/verify/receipt", json=receipt, timeout=10)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, service.log_tail()
            time.sleep(0.3)
    assert verdict.status_code == 200 and verdict.json()["verdict"] == "valid", verdict.text
    altered = httpx.post(f"{verifier}/verify/receipt", json=tampered_text, timeout=10)
    assert altered.json()["verdict"] == "altered"

    batch = httpx.get(
        f"{service.api}/api/v1/anchors/suggestions/{receipt['proof']['batch']}", timeout=5
    ).json()
    assert batch["root"] == receipt["proof"]["root"] and batch["tx"] == receipt["anchor"]["tx"]
    # the suggestions, then the batch's map head (PROTOCOL §10)
    assert [r.json()["record_hash"] for r in accepted] == batch["leaf_hashes"][:-1]
    last = httpx.get(f"{service.api}/api/v1/records/{batch['leaf_hashes'][-1]}/receipt", timeout=5)
    assert last.json()["record"]["type"] == "ledger.map_head", last.text

    public = httpx.get(f"{service.api}/healthz", timeout=5)
    assert public.status_code == 200, public.text
    assert public.json() == {
        "status": "ok",
        "database": True,
        "chain": True,
        "worker": True,
        "writer": True,
    }
    status, health = service.health()
    assert status == 200, health
    assert health["worker"]["logs"]["suggestions"]["state"] in {"idle", "anchoring"}
    assert health["writer"] == {"ok": True, "mode": "process"}
    assert service.stop() == 0


def test_kill_9_during_a_burst_loses_nothing_acknowledged(service: Service) -> None:
    acknowledged: list[str] = []
    stop = threading.Event()

    def burst() -> None:
        with httpx.Client(timeout=5) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = client.post(
                        f"{service.api}/api/v1/suggestions", json={**GOOD, "title": f"第{i}条"}
                    )
                except httpx.HTTPError:
                    continue  # the service died under us: not acknowledged
                if r.status_code == 201:
                    acknowledged.append(r.json()["record_hash"])

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(3.5)
    service.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) > 100

    service.start()
    reader = Web3ChainReader(service.rpc)
    for record_hash in acknowledged:
        receipt, _ = service.receipt(record_hash, timeout=60)
        assert verify_receipt(receipt, reader).verdict is Verdict.VALID
    assert service.stop() == 0


def _account(service: Service, *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "users", "add", *args, "--json"],
        env={**service.env, "CIVIC_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_whole_loop_over_http_is_a_verified_trail_and_contact_stays_private(
    service: Service,
) -> None:
    deputy = _account(service, "--role", "deputy", "--name", "王代表", "--district", "鼓楼区")
    staff = _account(service, "--role", "staff", "--name", "人大办")
    office = _account(service, "--role", "office", "--name", "市交通局", "--office", "JT")
    auth = {
        name: {"Authorization": f"Bearer {acc['token']}"}
        for name, acc in (("deputy", deputy), ("staff", staff), ("office", office))
    }
    contact = {"name": "赵秀英", "phone": "13912345678"}
    api = f"{service.api}/api/v1"
    with httpx.Client(timeout=10) as http:
        submitted = http.post(f"{api}/suggestions", json={**GOOD, "contact": contact}).json()
        code = submitted["tracking_code"]
        auth["citizen"] = {"Authorization": f"Bearer {submitted['citizen_token']}"}

        def upload(data: bytes) -> str:
            r = http.post(
                f"{api}/attachments",
                content=data,
                headers={**auth["office"], "content-type": "application/pdf"},
            )
            assert r.status_code == 201, r.text
            return r.json()["sha256"]

        steps = [
            ("deputy", {"to": "DEPUTY_ACCEPTED"}),
            ("staff", {"to": "ASSIGNED", "offices": ["JT"]}),
            ("office", {"to": "IN_PROGRESS"}),
            (
                "office",
                {"to": "ANSWERED", "category": "B", "reply_sha256": upload(b"%PDF-1.4 reply 1")},
            ),
            ("citizen", {"to": "REHANDLING", "level": "unsatisfied", "reason": "积水依旧"}),
            (
                "office",
                {"to": "ANSWERED", "category": "A", "reply_sha256": upload(b"%PDF-1.4 reply 2")},
            ),
            ("citizen", {"to": "CLOSED", "level": "satisfied"}),
        ]
        for who, body in steps:
            r = http.post(f"{api}/suggestions/{code}/transitions", json=body, headers=auth[who])
            assert r.status_code == 201, (who, body, r.text)
        r = http.get(
            f"{api}/suggestions/{code}/contact",
            params={"reason": "电话回访"},
            headers=auth["office"],
        )
        assert r.status_code == 200 and r.json()["contact"] == contact

        deadline = time.monotonic() + 30
        while True:
            trail = http.get(f"{api}/suggestions/{code}/trail").json()
            if all(e["status"] == "anchored" for e in trail["records"]):
                break
            assert time.monotonic() < deadline, trail
            time.sleep(0.2)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier.cli",
            "trail",
            code,
            "--api",
            service.api,
            "--rpc",
            service.rpc,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower() and "办结" in result.stdout
    assert len(trail["records"]) == 8
    assert service.stop() == 0

    # Search the database, every record, the chain's own files and the service's logs.
    needles = [contact["phone"].encode(), contact["name"].encode()]
    for path in [p for p in service.data_dir.rglob("*") if p.is_file()] + [
        service.data_dir.parent / f"service-{service.api_port}.log"
    ]:
        content = path.read_bytes()
        assert not any(n in content for n in needles), f"personal data found in {path}"


def _cli(service: Service, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env={**service.env, "CIVIC_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_budget_vote_from_keys_to_a_verified_tally(service: Service, tmp_path: Path) -> None:
    admin = _account(service, "--role", "admin", "--name", "管理员")
    staff = {
        "Authorization": f"Bearer {_account(service, '--role', 'staff', '--name', '人大办')['token']}"
    }
    deputies = [
        _account(service, "--role", "deputy", "--name", f"代表{i}", "--district", "鼓楼区")
        for i in range(3)
    ]
    for i, deputy in enumerate(deputies):
        keygen = _cli(service, "deputy", "keygen", "--out", str(tmp_path / f"d{i}.key"))
        assert keygen.returncode == 0, keygen.stderr
        assert (tmp_path / f"d{i}.key").stat().st_mode & 0o777 == 0o600
        registered = _cli(
            service,
            "deputy",
            "register",
            deputy["id"],
            keygen.stdout.strip(),
            "--admin",
            admin["id"],
        )
        assert registered.returncode == 0, registered.stderr
    api = f"{service.api}/api/v1"
    spec = {
        "title": "2027年民生实事",
        "ballot_type": "approval",
        "rule": "mes-add1",
        "budget": 1000,
        "projects": [
            {"id": "A", "name": "加装电梯", "cost": 600},
            {"id": "B", "name": "社区食堂", "cost": 300},
            {"id": "C", "name": "口袋公园", "cost": 400},
        ],
    }
    sim = httpx.post(f"{api}/simulations", json=spec, headers=staff, timeout=10).json()["id"]
    assert httpx.post(f"{api}/simulations/{sim}/open", headers=staff, timeout=10).status_code == 201
    mine = None
    for i, choices in enumerate(("A,B", "B,C", "A")):
        vote = _cli(
            service,
            "vote",
            sim,
            "--key",
            str(tmp_path / f"d{i}.key"),
            "--voter",
            deputies[i]["id"],
            "--api",
            service.api,
            "--choices",
            choices,
        )
        assert vote.returncode == 0, vote.stderr
        mine = mine or vote.stdout.split()[2]
    refused = _cli(
        service,
        "vote",
        sim,
        "--key",
        str(tmp_path / "d0.key"),
        "--voter",
        deputies[1]["id"],
        "--api",
        service.api,
        "--choices",
        "A",
    )
    assert refused.returncode == 1 and "BallotSignatureRejected" in refused.stderr
    for step in ("close", "tally"):
        assert (
            httpx.post(f"{api}/simulations/{sim}/{step}", headers=staff, timeout=10).status_code
            == 201
        )
    result = httpx.get(f"{api}/simulations/{sim}", timeout=10).json()["result"]
    assert result["ballots_counted"] == 3 and result["counts"] == {"A": 2, "B": 2, "C": 1}

    deadline = time.monotonic() + 30
    while True:
        check = subprocess.run(
            [
                sys.executable,
                "-m",
                "verifier.cli",
                "tally",
                sim,
                "--api",
                service.api,
                "--rpc",
                service.rpc,
                "--my-ballot",
                mine,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # until the tally's batch is anchored
    assert check.returncode == 0, check.stdout + check.stderr
    assert "valid" in check.stdout.lower()
    assert service.stop() == 0
