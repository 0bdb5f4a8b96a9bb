"""When the node cannot estimate gas, transactions still go through, and refusals still arrive.

Besu 25.6.0 to 25.7.x answer every ``eth_estimateGas`` on a QBFT network with a JSON-RPC
"Internal error" (fixed in 25.8.0). contracts.transactions then runs the call with eth_call
(the contract's checks) and sends it with ``FALLBACK_GAS_LIMIT``. Here a real node (ganache,
and anvil) sits behind a small proxy that answers eth_estimateGas exactly so and passes every
other request through: anchoring, role grants, deployments and attestations work, and a wrong
batch, a repeated anchor, a missing role and a repeated attestation are refused by name, as
they are with estimates.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from web3.exceptions import ContractLogicError, Web3RPCError

from contracts.transactions import (
    FALLBACK_DEPLOY_GAS_LIMIT,
    FALLBACK_GAS_LIMIT,
    estimate_unavailable,
)
from ledger.chain import (
    AlreadyAnchored,
    BatchOutOfOrder,
    ChainClient,
    Unauthorized,
)
from tests.fixtures.chain import Ganache, Registry
from verifier.witness import AttestSigner, WitnessError

#: What Besu 25.7.0 answers to eth_estimateGas on QBFT (besu issue 9022).
BESU_INTERNAL_ERROR = {"code": -32603, "message": "Internal error"}


def _rpc_error(error: dict[str, Any]) -> Web3RPCError:
    return Web3RPCError(str(error), rpc_response={"jsonrpc": "2.0", "id": 1, "error": error})


# -- the decision -------------------------------------------------------------------------------


def test_only_an_error_that_is_not_a_revert_means_the_node_cannot_estimate() -> None:
    assert estimate_unavailable(_rpc_error(BESU_INTERNAL_ERROR))
    assert estimate_unavailable(_rpc_error({"code": -32000, "message": "header not found"}))
    # A revert is the contract's answer: never sent anyway.
    assert not estimate_unavailable(_rpc_error({"code": -32000, "message": "Execution reverted"}))
    revert = {"code": 3, "message": "execution reverted", "data": "0x08c379a0" + "00" * 96}
    assert not estimate_unavailable(_rpc_error(revert))
    assert not estimate_unavailable(ContractLogicError("execution reverted", data="0x1234abcd"))
    # A node too slow to answer, or a transport failure, is not one that cannot estimate.
    assert not estimate_unavailable(_rpc_error({"code": -32000, "message": "Request timed out"}))
    assert not estimate_unavailable(ConnectionError("refused"))
    assert not estimate_unavailable(ValueError("Internal error"))


def test_the_fallback_limits_cover_what_is_sent_with_them() -> None:
    """Measured (docs/BENCHMARKS.md, FIELD-NOTES): a log's first anchor about 95,000 gas, the
    AnchorRegistry deployment about 962,000."""
    assert FALLBACK_GAS_LIMIT >= 2 * 95_000
    assert FALLBACK_DEPLOY_GAS_LIMIT >= 2 * 962_000


# -- against a real node that cannot estimate -----------------------------------------------------


class _NoEstimates(BaseHTTPRequestHandler):
    """Passes JSON-RPC to ``upstream``, except eth_estimateGas, answered as Besu 25.7 does."""

    upstream = ""
    seen: list[str]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        self.seen.append(request["method"])
        if request["method"] == "eth_estimateGas":
            answer = json.dumps(
                {"jsonrpc": "2.0", "id": request["id"], "error": BESU_INTERNAL_ERROR}
            ).encode()
        else:
            headers = {"Content-Type": "application/json"}
            answer = requests.post(self.upstream, data=body, headers=headers, timeout=30).content
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def no_estimates(ganache: Ganache) -> Iterator[tuple[str, list[str]]]:
    """(URL of a proxy in front of the test node that cannot estimate, methods it saw)."""
    seen: list[str] = []
    handler = type("Handler", (_NoEstimates,), {"upstream": ganache.rpc_url, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _root() -> bytes:
    return os.urandom(31) + b"\x01"


@pytest.mark.chain
@pytest.mark.every_node
def test_anchoring_through_a_node_that_cannot_estimate(
    registry: Registry,
    ganache: Ganache,
    no_estimates: tuple[str, list[str]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, seen = no_estimates
    client = ChainClient(url, ganache.keys[0])
    root = _root()
    with caplog.at_level(logging.WARNING, logger="civic.chain"):
        signed = client.sign_anchor(registry.address, "suggestions", 0, root, 9)
        assert "eth_estimateGas" in seen and "eth_call" in seen
        client.send_raw(signed.raw)
        receipt = client.wait_for_receipt(signed.tx_hash, timeout=10)
        assert receipt is not None and receipt.status == 1
        assert client.w3.eth.get_transaction(signed.tx_hash)["gas"] == FALLBACK_GAS_LIMIT  # type: ignore[arg-type]
        on_chain = client.batch_of(registry.address, "suggestions", 0)
        assert on_chain is not None and (on_chain.root, on_chain.size) == (root, 9)

        # The contract's refusals still arrive before anything is signed, by name.
        with pytest.raises(AlreadyAnchored):
            client.sign_anchor(registry.address, "suggestions", 0, root, 9)
        with pytest.raises(BatchOutOfOrder, match="batch 5 given, contract expects 1"):
            client.sign_anchor(registry.address, "suggestions", 5, _root(), 1)
        warnings = [r for r in caplog.records if "cannot estimate gas" in r.getMessage()]
        assert len(warnings) == 1  # once per signer, not once per transaction
        assert "Internal error" in warnings[0].getMessage()
        outsider = ChainClient(url, ganache.keys[3])
        with pytest.raises(Unauthorized):
            outsider.sign_anchor(registry.address, "suggestions", 1, _root(), 1)


@pytest.mark.chain
@pytest.mark.every_node
def test_deploying_granting_and_attesting_through_a_node_that_cannot_estimate(
    ganache: Ganache, no_estimates: tuple[str, list[str]]
) -> None:
    url, seen = no_estimates
    admin = ChainClient(url, ganache.keys[0])
    deployment = admin.deploy_registry()
    assert admin.w3.eth.get_transaction(deployment.tx_hash)["gas"] == FALLBACK_DEPLOY_GAS_LIMIT  # type: ignore[arg-type]
    assert admin.has_code(deployment.address)
    witness = ganache.address(1)
    assert admin.grant_role(deployment.address, "WITNESS_ROLE", witness).status == 1

    root = _root()
    signed = admin.sign_anchor(deployment.address, "votes", 0, root, 3)
    admin.send_raw(signed.raw)
    assert admin.wait_for_receipt(signed.tx_hash, timeout=10) is not None
    signer = AttestSigner(url, ganache.keys[1])
    signer.attest(deployment.address, "votes", 0, root)
    assert admin.attestations(deployment.address, "votes", 0) == 1
    with pytest.raises(WitnessError, match="already attested"):
        signer.attest(deployment.address, "votes", 0, root)
    assert seen.count("eth_estimateGas") >= 5  # every one of them was refused
