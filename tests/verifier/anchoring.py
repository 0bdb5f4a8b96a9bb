"""Batches anchored on a real chain for the verifier's service and witness tests.

Records are built with the real core (``tests.verifier.fakes``), sealed into one log as a
version 2 service seals them (``SealedLog``: each batch anchors the whole log's root at its end,
and that end as its size, PROTOCOL §8), anchored through the real AnchorRegistry with the admin
client of the ``registry`` fixture, and turned into the §11 receipts and the public batch export
exactly as the service writes them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from core.records import SealedRecord
from ledger.chain import ChainClient
from tests.verifier.fakes import SealedLog, suggestion_batch


@dataclass
class Anchored:
    """Batch ``number`` of ``log`` anchored on chain: its receipts and its public export."""

    log: SealedLog
    number: int
    anchor: dict[str, Any]

    @property
    def records(self) -> list[SealedRecord]:
        """The batch's own records."""
        return self.log.records[self.log.first(self.number) : self.log.ends[self.number]]

    @property
    def root(self) -> bytes:
        """The anchored root: the whole log's at the batch's end."""
        return self.log.root(self.number)

    @property
    def size(self) -> int:
        """The anchored size: the log's size after the batch."""
        return self.log.ends[self.number]

    def receipt(self, offset: int) -> dict[str, Any]:
        """The receipt of the batch's record ``offset`` (entry ``first + offset`` of the log)."""
        receipt = self.log.receipt(self.log.first(self.number) + offset)
        receipt["anchor"] = dict(self.anchor)
        return receipt

    def receipts(self) -> list[dict[str, Any]]:
        return [self.receipt(i) for i in range(len(self.records))]

    def export(self) -> dict[str, Any]:
        """What ``GET /api/v1/anchors/{log}/{batch}`` answers for this batch."""
        export = self.log.export(self.number)
        export.update(
            tx=self.anchor["tx"],
            block=self.anchor["block"],
            chain_id=self.anchor["chain_id"],
            contract=self.anchor["contract"],
        )
        return export


def anchor_batch(client: ChainClient, contract: str, log: SealedLog, number: int) -> Anchored:
    """Anchor batch ``number`` of ``log`` (it must be the log's next) and wait until it is
    mined."""
    signed = client.sign_anchor(contract, log.log, number, log.root(number), log.ends[number])
    client.send_raw(signed.raw)
    mined = client.wait_for_receipt(signed.tx_hash, 30)
    assert mined is not None and mined.status == 1
    anchor = {
        "chain_id": client.chain_id,
        "contract": contract,
        "tx": signed.tx_hash,
        "block": mined.block_number,
    }
    return Anchored(log, number, anchor)


def records_log(*sizes: int, salt_from: int = 0) -> SealedLog:
    """Fresh suggestion records (distinct for each ``salt_from``) sealed into batches of
    ``sizes`` records. The same sizes and ``salt_from`` give the same records, so a log with one
    more batch extends the one without it."""
    total = sum(sizes)
    records = suggestion_batch(total + salt_from)[salt_from:]
    return SealedLog.of(records, sizes)


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
        self.exports[(anchored.log.log, anchored.number)] = export

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
