"""Reading anchors from the chain (PROTOCOL §3), read-only, for verification.

``ChainReader`` is all that ``verify_receipt`` needs from a chain. ``Web3ChainReader`` is the
real one: JSON-RPC over HTTP with web3.py, ``eth_call`` only, no account, no transaction. Its
ABI is the registry's compiled artifact (``contracts.registry``), shipped inside the package, so
the verifier still runs with nothing but a receipt and an endpoint.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    Web3Exception,
)
from web3.middleware import ExtraDataToPOAMiddleware

from contracts.registry import log_id as log_id  # re-exported: the verifier names it here
from contracts.registry import registry_abi
from core.merkle import ZERO_ROOT
from verifier.errors import ChainError, ChainUnreachable, ContractMismatch

# How a front-end (the verifier service, the CLI) makes its chain reader from an RPC URL and a
# timeout: ``Web3ChainReader`` itself, or a fake in tests.
ReaderFactory = Callable[[str, float], "ChainReader"]


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
        self._abi = registry_abi()

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
        return self._w3.eth.contract(address=to_checksum_address(contract), abi=self._abi)

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

    def next_batch(self, contract: str, log_id: bytes) -> int:
        """``nextBatch(logId)``: the number the log's next batch gets (all below are anchored)."""
        with self._asking("nextBatch"):
            return int(self._registry(contract).functions.nextBatch(log_id).call())


class CachingChainReader:
    """A ChainReader that remembers what cannot change, so repeated verifications skip the chain.

    What is cached, and why it is safe:

    * ``batch_of`` answers with a non-zero root, in a small LRU keyed by
      ``(chain id, contract, logId, batch)``: the contract never changes or replaces an anchored
      batch (PROTOCOL §3). A zero root ("not anchored") is never cached: the batch may be
      anchored a moment later, and it must never turn into ``valid`` from memory either.
    * ``chain_id`` and a *positive* ``has_code`` for ``identity_ttl`` seconds (an endpoint could
      be repointed at another chain; code, once deployed, stays). "No code" is never cached.
    * ``nextBatch`` never: it grows, and a smaller answer would make a map look the latest.
    * ``block_number`` and ``attestations`` for ``block_ttl`` seconds (about one block). Both
      only grow, so a stale answer can understate confirmations or attestations, giving
      ``unconfirmed`` where a fresh one would pass, but never overstate them.

    Errors are never cached. Safe to share between threads: the cache is locked; two threads
    that miss at once may both ask the chain, which is harmless.
    """

    def __init__(
        self,
        inner: ChainReader,
        *,
        max_batches: int = 4096,
        block_ttl: float = 1.0,
        identity_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batches < 1:
            raise ValueError("max_batches must be at least 1")
        self.inner = inner
        self.max_batches = max_batches
        self.block_ttl = block_ttl
        self.identity_ttl = identity_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._batches: OrderedDict[tuple[int, str, bytes, int], tuple[bytes, int, int, int]] = (
            OrderedDict()
        )
        self._timed: dict[tuple[Any, ...], tuple[float, Any]] = {}

    def _fresh(self, key: tuple[Any, ...]) -> tuple[bool, Any]:
        entry = self._timed.get(key)  # one dict lookup: atomic, no lock needed to read
        if entry is not None and self._clock() < entry[0]:
            return True, entry[1]
        return False, None

    def _keep(self, key: tuple[Any, ...], value: Any, ttl: float) -> None:
        if ttl > 0:
            now = self._clock()
            with self._lock:
                if len(self._timed) >= self.max_batches:  # forget what has expired
                    self._timed = {k: e for k, e in self._timed.items() if e[0] > now}
                self._timed[key] = (now + ttl, value)

    def chain_id(self) -> int:
        hit, value = self._fresh(("chain_id",))
        if hit:
            return int(value)
        answer = self.inner.chain_id()
        self._keep(("chain_id",), answer, self.identity_ttl)
        return answer

    def has_code(self, address: str) -> bool:
        key = ("has_code", address.lower())
        hit, _ = self._fresh(key)
        if hit:
            return True
        answer = self.inner.has_code(address)
        if answer:
            self._keep(key, True, self.identity_ttl)
        return answer

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        key = (self.chain_id(), contract.lower(), bytes(log_id), batch)
        with self._lock:
            cached = self._batches.get(key)
            if cached is not None:
                self._batches.move_to_end(key)
                return cached
        answer = self.inner.batch_of(contract, log_id, batch)
        if answer[0] != ZERO_ROOT:  # only what is anchored, and so can never change
            with self._lock:
                self._batches[key] = answer
                self._batches.move_to_end(key)
                while len(self._batches) > self.max_batches:
                    self._batches.popitem(last=False)
        return answer

    def next_batch(self, contract: str, log_id: bytes) -> int:
        """``nextBatch(logId)``, asked every time: it grows, and a remembered (smaller) answer
        could call a map of trail heads the latest when a newer batch is anchored."""
        ask = getattr(self.inner, "next_batch", None)
        if ask is None:
            raise TypeError(f"{type(self.inner).__name__} cannot ask nextBatch")
        return int(ask(contract, log_id))

    def block_number(self) -> int:
        hit, value = self._fresh(("block_number",))
        if hit:
            return int(value)
        answer = self.inner.block_number()
        self._keep(("block_number",), answer, self.block_ttl)
        return answer

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        key = ("attestations", contract.lower(), bytes(log_id), batch)
        hit, value = self._fresh(key)
        if hit:
            return int(value)
        answer = self.inner.attestations(contract, log_id, batch)
        self._keep(key, answer, self.block_ttl)
        return answer

    def cached_batches(self) -> int:
        """How many anchored batches are held."""
        with self._lock:
            return len(self._batches)
