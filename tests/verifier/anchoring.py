"""Batches anchored on a real chain for the verifier's service and witness tests.

Records are built with the real core (``tests.verifier.fakes``), anchored through the real
AnchorRegistry with the admin client of the ``registry`` fixture, and turned into the §4
receipts and the public batch export exactly as the service writes them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.chain import ChainClient
from tests.verifier.fakes import Batch, suggestion_batch


@dataclass
class Anchored:
    """One batch anchored on chain: its receipts and its public export."""

    batch: Batch
    anchor: dict[str, Any]

    def receipt(self, index: int) -> dict[str, Any]:
        receipt = self.batch.receipt(index)
        receipt["anchor"] = dict(self.anchor)
        return receipt

    def receipts(self) -> list[dict[str, Any]]:
        return [self.receipt(i) for i in range(len(self.batch.records))]

    def export(self) -> dict[str, Any]:
        """What ``GET /api/v1/anchors/{log}/{batch}`` answers for this batch."""
        return {
            "log": self.batch.log,
            "batch": self.batch.number,
            "root": self.batch.root.hex(),
            "size": len(self.batch.records),
            "tx": self.anchor["tx"],
            "block": self.anchor["block"],
            "chain_id": self.anchor["chain_id"],
            "contract": self.anchor["contract"],
            "leaf_hashes": [r.record_hash for r in self.batch.records],
        }


def anchor_batch(client: ChainClient, contract: str, batch: Batch) -> Anchored:
    """Anchor ``batch`` (its number must be the log's next) and wait until it is mined."""
    signed = client.sign_anchor(contract, batch.log, batch.number, batch.root, len(batch.records))
    client.send_raw(signed.raw)
    mined = client.wait_for_receipt(signed.tx_hash, 30)
    assert mined is not None and mined.status == 1
    anchor = {
        "chain_id": client.chain_id,
        "contract": contract,
        "tx": signed.tx_hash,
        "block": mined.block_number,
    }
    return Anchored(batch, anchor)


def records_batch(number: int, size: int = 5, salt_from: int = 0) -> Batch:
    """A batch of ``size`` fresh suggestion records (distinct for each ``salt_from``)."""
    records = (
        suggestion_batch(size + salt_from)[salt_from:] if salt_from else suggestion_batch(size)
    )
    return Batch.of(records, number)


class ExportService:
    """The service's public batch export as an ``httpx.MockTransport``.

    ``exports[(log, n)]`` is the JSON answered with 200; ``pending`` holds (log, n) answered
    with 202; anything else is a 404. ``down`` makes every request fail to connect.
    """

    def __init__(self) -> None:
        self.exports: dict[tuple[str, int], Any] = {}
        self.pending: set[tuple[str, int]] = set()
        self.down = False
        self.requests: list[str] = []

    def publish(
        self, anchored: Anchored, change: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        export = copy.deepcopy(anchored.export())
        if change is not None:
            change(export)
        self.exports[(anchored.batch.log, anchored.batch.number)] = export

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.down:
            raise httpx.ConnectError("connection refused (test)", request=request)
        parts = request.url.path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "anchors"] and parts[4].isdigit():
            key = (parts[3], int(parts[4]))
            if key in self.pending:
                return httpx.Response(202, json={"status": "pending", "detail": "being anchored"})
            if key in self.exports:
                return httpx.Response(200, json=self.exports[key])
        return httpx.Response(404, json={"error": "BatchNotFound", "detail": "no such batch"})
