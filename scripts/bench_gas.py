"""Gas per record: batched AnchorRegistry against the one-hash-per-transaction baseline.

``measure_gas`` deploys both contracts on a node and measures, from real receipts:

* the first anchor of a log (its batch counter goes from zero to non-zero: 17,100 gas more),
* steady-state anchors at each batch size (after a few warm-up anchors of the same log),
* NaiveAnchorRegistry.store, one record per transaction, averaged over ``naive_sample`` calls.

An anchor's gas does not depend on the batch size (only the 32-bit ``size`` argument changes,
a few calldata bytes), so gas per record is gas per anchor / size. The naive design's cost per
record does not depend on batch size either: a batch of N records costs N transactions, so its
per-batch figure is N × the measured mean (reported as computed, not as N real transactions).

``main()`` starts its own ganache on a free port and prints the result as JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.keys import generate_key
from ledger.chain import ChainClient
from ledger.devchain import free_port, start_ganache

WARMUP_ANCHORS = 3
STEADY_SAMPLES = 3


def _anchor(client: ChainClient, contract: str, log: str, batch: int, size: int) -> int:
    signed = client.sign_anchor(contract, log, batch, os.urandom(32), size)
    client.send_raw(signed.raw)
    receipt = client.wait_for_receipt(signed.tx_hash, timeout=30)
    if receipt is None or receipt.status != 1:
        raise RuntimeError(f"anchor {log}/{batch} failed: {receipt}")
    return receipt.gas_used


def _naive_store(client: ChainClient, contract: str) -> int:
    return client.transact(contract, "NaiveAnchorRegistry", "store", os.urandom(32)).gas_used


def measure_gas(
    rpc_url: str,
    funded_key: bytes,
    sizes: Sequence[int] = (1, 100, 1000, 10000),
    naive_sample: int = 50,
) -> dict[str, Any]:
    """Measure anchoring gas on the node at ``rpc_url``, paying with ``funded_key``."""
    client = ChainClient(rpc_url, funded_key)
    registry = client.deploy_registry()
    naive = client.deploy("NaiveAnchorRegistry", client.address, client.address)

    first = _anchor(client, registry.address, "bench-first", 0, 1)

    per_size = []
    for size in sizes:
        log = f"bench-{size}"
        for batch in range(WARMUP_ANCHORS):
            _anchor(client, registry.address, log, batch, size)
        samples = [
            _anchor(client, registry.address, log, WARMUP_ANCHORS + i, size)
            for i in range(STEADY_SAMPLES)
        ]
        per_size.append({"size": size, "gas_per_anchor": max(samples), "samples": samples})

    naive_samples = [_naive_store(client, naive.address) for _ in range(naive_sample)]
    naive_per_record = statistics.fmean(naive_samples)

    for row in per_size:
        size = row["size"]
        row["gas_per_record"] = row["gas_per_anchor"] / size
        row["naive_gas_for_batch"] = naive_per_record * size
        row["naive_over_batched"] = naive_per_record * size / row["gas_per_anchor"]

    steady = max(row["gas_per_anchor"] for row in per_size)
    return {
        "chain_id": client.chain_id,
        "registry": registry.address,
        "deploy_gas": {
            "AnchorRegistry": client.get_receipt(registry.tx_hash).gas_used,  # type: ignore[union-attr]
            "NaiveAnchorRegistry": client.get_receipt(naive.tx_hash).gas_used,  # type: ignore[union-attr]
        },
        "first_anchor_gas": first,
        "steady_anchor_gas": steady,
        "batches": per_size,
        "naive": {
            "samples": naive_sample,
            "gas_per_record_mean": naive_per_record,
            "gas_per_record_min": min(naive_samples),
            "gas_per_record_max": max(naive_samples),
            "note": "one transaction per record; a batch of N costs N times the mean (linear)",
        },
    }


def main() -> int:
    key = generate_key()
    with start_ganache(port=free_port(), db_path=None, funded_keys=[key]) as chain:
        result = measure_gas(chain.rpc_url, key)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
