"""A witness's time to check and cosign one checkpoint (C2SP tlog-witness, PROTOCOL §9,
``verifier.cosigning``).

One log grows by batches of ``--batch`` random leaves; each batch's root and size are anchored
on a fresh ganache (pipelined, as ``bench_audit`` anchors), and its checkpoint is signed with
the log's key. Then three witnesses, each with a state file of its own, are shown the
checkpoints in order, each request carrying the consistency proof from the previous one
(``old <size>``, the proof, the note), and every answer must be 200:

* ``http``: ``civic-verify witness serve`` in its own process, POST add-checkpoint over
  loopback HTTP with one keep-alive client, timed end to end (request to cosignature line);
* ``in_process``: ``CheckpointWitness.add_checkpoint`` called directly, the chain check
  included (``nextBatch`` and the binary search over ``batchOf`` on ganache, JSON-RPC);
* ``in_process_no_chain``: the same with the chain answered from memory: the pure check (parse,
  log signature, consistency proof), the state committed (SQLite ``synchronous=FULL``) and the
  cosignature.

    .venv/bin/python scripts/bench_witness.py [--checkpoints N] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ORIGIN = "civic-ledger.localhost/suggestions"


class _MemoryIndex:
    """The chain's ``nextBatch``/``batchOf`` for the log, from memory."""

    def __init__(self, anchored: list[tuple[bytes, int]]) -> None:
        self.anchored = anchored

    def next_batch(self, contract: str, log_id: bytes) -> int:
        return len(self.anchored)

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        root, size = self.anchored[batch]
        return root, size, 0, 0


def _quantiles(seconds: list[float]) -> dict[str, float]:
    q = statistics.quantiles(seconds, n=100)
    return {
        "p50_ms": round(q[49] * 1000, 2),
        "p95_ms": round(q[94] * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "mean_ms": round(statistics.fmean(seconds) * 1000, 2),
    }


def _requests(checkpoints: int, batch: int) -> tuple[list[bytes], list[tuple[bytes, int]], Any]:
    """The add-checkpoint bodies of a log growing by ``batch`` leaves per checkpoint, and the
    (root, size) of each checkpoint."""
    from core import tlog
    from core.checkpoint import Checkpoint, sign_checkpoint
    from core.note import Ed25519Signer, encode_base64

    key = Ed25519Signer(ORIGIN, os.urandom(32))
    nodes: dict[tlog.Node, bytes] = {}

    def read(wanted: Any) -> list[bytes]:
        return [nodes[n] for n in wanted]

    bodies, anchored = [], []
    size, old = 0, 0
    for _ in range(checkpoints):
        appended = tlog.append_leaves(size, [os.urandom(32) for _ in range(batch)], read)
        nodes.update(appended.nodes)
        size = appended.size
        proof = tlog.consistency_proof(old, size, read) if old else []
        note = sign_checkpoint(Checkpoint(ORIGIN, size, appended.root), key)
        lines = [f"old {old}\n", *(encode_base64(h) + "\n" for h in proof), "\n", note]
        bodies.append("".join(lines).encode())
        anchored.append((appended.root, size))
        old = size
    return bodies, anchored, key


def _anchor(client: Any, contract: str, anchored: list[tuple[bytes, int]]) -> None:
    from ledger.chain import ANCHOR_GAS_LIMIT

    nonce = client.w3.eth.get_transaction_count(client.address, "pending")
    sent = []
    for number, (root, size) in enumerate(anchored):
        signed = client.sign_anchor(
            contract, "suggestions", number, root, size, nonce + number, gas=ANCHOR_GAS_LIMIT
        )
        client.send_raw(signed.raw)
        sent.append(signed.tx_hash)
    for tx_hash in sent:
        receipt = client.wait_for_receipt(tx_hash, 120)
        if receipt is None or receipt.status != 1:
            raise RuntimeError(f"anchor transaction {tx_hash} failed")


def _wait_listening(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(log.read_text()[-3000:]) from None
            time.sleep(0.2)


def measure_witness(checkpoints: int = 200, batch: int = 1000) -> dict[str, Any]:
    import httpx

    from contracts.keys import generate_key
    from ledger.chain import ChainClient
    from ledger.devchain import free_port, start_ganache
    from verifier.chain import Web3ChainReader
    from verifier.cosigning import CheckpointWitness, log_keys_from, write_new_cosigner

    load_before = os.getloadavg()
    bodies, anchored, log_key = _requests(checkpoints, batch)
    key = generate_key()
    results: dict[str, Any] = {
        "checkpoints": checkpoints,
        "entries_per_checkpoint": batch,
        "final_size": anchored[-1][1],
        "proof_hashes_max": max(b.split(b"\n\n", 1)[0].count(b"\n") for b in bodies),
    }
    with tempfile.TemporaryDirectory(prefix="civic-witness-bench-") as tmp:
        chain = start_ganache(port=free_port(), db_path=None, funded_keys=[key])
        try:
            client = ChainClient(chain.rpc_url, key)
            contract = client.deploy_registry().address
            _anchor(client, contract, anchored)

            # End to end over HTTP against `civic-verify witness serve`.
            key_file = Path(tmp) / "witness.key"
            write_new_cosigner(key_file, "witness.bench")
            port = free_port()
            log_path = Path(tmp) / "witness.log"
            with open(log_path, "wb") as log_file:
                proc = subprocess.Popen(
                    [
                        str(ROOT / ".venv" / "bin" / "civic-verify"),
                        "witness",
                        "serve",
                        "--log",
                        log_key.verifier_key,
                        "--key",
                        str(key_file),
                        "--rpc",
                        chain.rpc_url,
                        "--contract",
                        contract,
                        "--port",
                        str(port),
                    ],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                url = f"http://127.0.0.1:{port}/add-checkpoint"
                _wait_listening(f"http://127.0.0.1:{port}/", proc, log_path)
                times = []
                with httpx.Client(timeout=30) as http:
                    for body in bodies:
                        started = time.perf_counter()
                        answer = http.post(url, content=body)
                        times.append(time.perf_counter() - started)
                        if answer.status_code != 200:
                            raise RuntimeError(f"HTTP {answer.status_code}: {answer.text}")
                results["http"] = _quantiles(times)
            finally:
                proc.terminate()
                proc.wait(30)

            # In-process, the chain asked over JSON-RPC as the service asks it.
            for name, index in (
                ("in_process", Web3ChainReader(chain.rpc_url, 10.0)),
                ("in_process_no_chain", _MemoryIndex(anchored)),
            ):
                from core.cosignature import Cosigner

                witness = CheckpointWitness(
                    cosigner=Cosigner("witness.bench", os.urandom(32)),
                    log_keys=log_keys_from([log_key.verifier_key]),
                    state_path=Path(tmp) / f"{name}.sqlite",
                    chain=index,
                    contract=contract,
                )
                times = []
                for body in bodies:
                    started = time.perf_counter()
                    answer = witness.add_checkpoint(body)
                    times.append(time.perf_counter() - started)
                    if answer.status != 200:
                        raise RuntimeError(f"{name}: {answer.status} {answer.body}")
                results[name] = _quantiles(times)
        finally:
            chain.stop()
    results["state_file"] = "SQLite, synchronous=FULL, on the temporary directory's disk"
    results["loadavg_before"] = "/".join(f"{x:.1f}" for x in load_before)
    results["loadavg_after"] = "/".join(f"{x:.1f}" for x in os.getloadavg())
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(measure_witness(args.checkpoints, args.batch), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
