"""Reading anchors from the chain (PROTOCOL §3), read-only, for verification.

``ChainReader`` is all that ``verify_receipt`` needs from a chain. ``Web3ChainReader`` is the
real one: JSON-RPC over HTTP with web3.py, ``eth_call`` only, no account, no transaction. Its
ABI is written here from PROTOCOL §3 rather than loaded from ``contracts/``, so the verifier
runs with nothing but a receipt and an endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    Web3Exception,
)
from web3.middleware import ExtraDataToPOAMiddleware

from verifier.errors import ChainError, ChainUnreachable, ContractMismatch

# The two views of AnchorRegistry that verification calls (PROTOCOL §3). `attestations` is
# read as uint256: the protocol does not fix its width, and any narrower unsigned return value
# decodes the same from its 32-byte word.
ANCHOR_REGISTRY_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "batchOf",
        "stateMutability": "view",
        "inputs": [
            {"name": "logId", "type": "bytes32"},
            {"name": "batch", "type": "uint64"},
        ],
        "outputs": [
            {"name": "root", "type": "bytes32"},
            {"name": "size", "type": "uint32"},
            {"name": "anchoredAt", "type": "uint64"},
            {"name": "blockNumber", "type": "uint64"},
        ],
    },
    {
        "type": "function",
        "name": "attestations",
        "stateMutability": "view",
        "inputs": [
            {"name": "logId", "type": "bytes32"},
            {"name": "batch", "type": "uint64"},
        ],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


def log_id(name: str) -> bytes:
    """PROTOCOL §3: ``logId = keccak256(utf8(log name))`` (Keccak-256, not SHA3-256)."""
    return keccak(name.encode("utf-8"))


class ChainReader(Protocol):
    """What verification reads from a chain. Addresses are ``0x`` + 40 hex, in any case.

    Implementations raise ChainUnreachable/ChainError when the endpoint fails, and
    ContractMismatch when the contract does not answer like an AnchorRegistry.
    """

    def chain_id(self) -> int:
        """The endpoint's chain id (``eth_chainId``)."""
        ...

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at ``address`` (``eth_getCode`` is not empty)."""
        ...

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        """``batchOf(logId, batch)``: (root, size, anchoredAt, blockNumber); zero root if absent."""
        ...

    def block_number(self) -> int:
        """The number of the latest block."""
        ...

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        """``attestations(logId, batch)``: how many witnesses attested the batch."""
        ...


class Web3ChainReader:
    """A ChainReader over JSON-RPC/HTTP(S), with the POA middleware so QBFT/Clique chains work."""

    def __init__(self, rpc_url: str, timeout: float = 10.0) -> None:
        if urlsplit(rpc_url).scheme not in ("http", "https"):
            raise ChainUnreachable(f"{rpc_url!r} is not an http(s) JSON-RPC endpoint")
        self.rpc_url = rpc_url
        # No retries: a verifier should say "unreachable" promptly rather than back off.
        provider = HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
        )
        self._w3 = Web3(provider)
        # POA and QBFT chains put more than 32 bytes in extraData; without this middleware web3
        # refuses their blocks.
        self._w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)

    @contextmanager
    def _asking(self, what: str) -> Iterator[None]:
        try:
            yield
        except (ContractLogicError, BadFunctionCallOutput) as exc:
            raise ContractMismatch(
                f"{what}: the contract does not answer as an AnchorRegistry ({exc})"
            ) from exc
        except (OSError, ProviderConnectionError, RequestTimedOut) as exc:
            # requests' ConnectionError and Timeout are OSErrors.
            raise ChainUnreachable(f"cannot reach {self.rpc_url} ({what}): {exc}") from exc
        except (Web3Exception, ValueError) as exc:
            raise ChainError(f"{self.rpc_url} failed on {what}: {exc}") from exc

    def _registry(self, contract: str) -> Any:
        return self._w3.eth.contract(address=to_checksum_address(contract), abi=ANCHOR_REGISTRY_ABI)

    def chain_id(self) -> int:
        with self._asking("eth_chainId"):
            return int(self._w3.eth.chain_id)

    def has_code(self, address: str) -> bool:
        with self._asking("eth_getCode"):
            return len(self._w3.eth.get_code(to_checksum_address(address))) > 0

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        with self._asking("batchOf"):
            root, size, anchored_at, block = (
                self._registry(contract).functions.batchOf(log_id, batch).call()
            )
        return bytes(root), int(size), int(anchored_at), int(block)

    def block_number(self) -> int:
        with self._asking("eth_blockNumber"):
            return int(self._w3.eth.block_number)

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        with self._asking("attestations"):
            return int(self._registry(contract).functions.attestations(log_id, batch).call())
