"""The chain client: everything civic-ledger does on an EVM chain goes through ChainClient.

It signs locally (permissioned nodes such as Besu hold no keys), with the chain's own id, and
works on the chains we meet: ganache for development, Besu QBFT in production (long
``extraData`` headers, hence web3's ``ExtraDataToPOAMiddleware``), with or without a base fee,
and with zero gas prices. Failures are raised as :class:`ChainError` subclasses, decoded from
the contract's custom errors, so the anchoring worker can tell "retry later"
(:class:`ChainUnavailable`) from "someone else's root is already there" (:class:`AnchorConflict`).

The contract is PROTOCOL.md §3's ``AnchorRegistry`` (contracts/AnchorRegistry.sol).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from contracts import load_artifact
from contracts.registry import REGISTRY, log_id, role_id
from contracts.transactions import (
    FeePolicy,
    NoBaseFee,
    SignedTransaction,
    Transactable,
    TransactionSigner,
    custom_errors,
    decode_revert,
    revert_data,
)
from core.merkle import ZERO_ROOT

__all__ = [
    "ANCHOR_GAS_LIMIT",
    "AlreadyAnchored",
    "AnchorConflict",
    "AnchorReceipt",
    "BatchOutOfOrder",
    "ChainClient",
    "ChainError",
    "ChainUnavailable",
    "ContractMissing",
    "ContractReverted",
    "Deployment",
    "OnChainBatch",
    "SignedAnchor",
    "TransactionRejected",
    "Unauthorized",
    "log_id",
]

# A safe gas limit for one anchor without estimating (see sign_anchor's ``gas``): measured
# 94,400 for a log's first anchor and 77,300 in steady state.
ANCHOR_GAS_LIMIT = 150_000
_ANCHORED_TOPIC = keccak(text="Anchored(bytes32,uint64,bytes32,uint32)")

T = TypeVar("T")


# ---------------------------------------------------------------------------------- errors


class ChainError(Exception):
    """Base of every chain failure."""


class ChainUnavailable(ChainError):
    """The node did not answer (connection refused, timeout, HTTP error): try again later."""


class ContractMissing(ChainError):
    """There is no contract code at the address."""


class TransactionRejected(ChainError):
    """The node refused the transaction itself (nonce, funds, fee), before any execution."""


class ContractReverted(ChainError):
    """The contract reverted. ``error_name``/``error_args`` are its decoded custom error."""

    def __init__(
        self,
        message: str,
        error_name: str | None = None,
        error_args: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_name = error_name
        self.error_args = dict(error_args or {})


class Unauthorized(ContractReverted):
    """The sender lacks the role the function needs (OZ AccessControlUnauthorizedAccount)."""


class BatchOutOfOrder(ContractReverted):
    """The batch number is not the log's nextBatch: ``expected`` is what the contract wants."""

    def __init__(self, message: str, *, expected: int, given: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.expected = expected
        self.given = given


class AlreadyAnchored(BatchOutOfOrder):
    """The batch is already anchored with exactly this root and size (e.g. by our own earlier,
    unrecorded transaction): nothing to do but find that transaction (``find_anchor``)."""

    def __init__(self, message: str, *, on_chain: OnChainBatch, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.on_chain = on_chain


class AnchorConflict(ChainError):
    """The batch is already anchored with a *different* root or size. Never retry: alarm."""

    def __init__(self, message: str, *, on_chain: OnChainBatch, root: bytes, size: int) -> None:
        super().__init__(message)
        self.on_chain = on_chain
        self.root = root
        self.size = size


# ---------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class OnChainBatch:
    """An anchored batch as ``batchOf`` returns it."""

    root: bytes
    size: int
    anchored_at: int
    block_number: int


#: A signed, not yet broadcast ``anchor`` transaction. ``raw`` can be rebroadcast as is.
SignedAnchor = SignedTransaction


@dataclass(frozen=True)
class AnchorReceipt:
    """The outcome of a mined transaction (``status`` 1 = success)."""

    tx_hash: str
    block_number: int
    gas_used: int
    status: int


@dataclass(frozen=True)
class Deployment:
    """Where a contract was deployed."""

    address: str
    tx_hash: str
    block_number: int
    chain_id: int


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


# ---------------------------------------------------------------------- revert messages


def _rpc_message(exc: Exception) -> str:
    """The node's own error message, without the stack traces some nodes attach."""
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
    return str(exc)


def _describe(name: str | None, args: Mapping[str, Any]) -> str:
    if name is None:
        return "reverted (no decodable reason)"
    shown = ", ".join(f"{k}={_hex(v) if isinstance(v, bytes) else v}" for k, v in args.items())
    return f"{name}({shown})"


# ---------------------------------------------------------------------------------- client


class ChainClient:
    """Reads and writes the AnchorRegistry over JSON-RPC, signing with ``private_key``.

    Without a key the client is read-only. ``tx_type`` is ``"auto"``, ``"legacy"`` or
    ``"eip1559"``; ``gas_price_wei`` forces the fee (0 on zero-gas chains).
    """

    def __init__(
        self,
        rpc_url: str,
        private_key: bytes | None = None,
        *,
        request_timeout: float = 10.0,
        tx_type: str = "auto",
        gas_price_wei: int | None = None,
        poll_interval: float = 0.05,
        tx_timeout: float = 60.0,
    ) -> None:
        self.rpc_url = rpc_url
        self.tx_type = tx_type
        self.gas_price_wei = gas_price_wei
        self.poll_interval = poll_interval
        self.tx_timeout = tx_timeout
        self.w3 = Web3(
            Web3.HTTPProvider(
                rpc_url,
                request_kwargs={"timeout": request_timeout},
                # No silent retries: the caller decides, and a dead node is reported at once.
                exception_retry_configuration=None,
            )
        )
        self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self.fee_policy = FeePolicy(tx_type, gas_price_wei)
        self._signer = (
            TransactionSigner(self.w3, private_key, self.fee_policy)
            if private_key is not None
            else None
        )
        self.address: str | None = self._signer.address if self._signer else None
        self._chain_id: int | None = None
        self._contracts: dict[tuple[str, str], Contract] = {}
        self._with_code: set[str] = set()
        self._errors = custom_errors(load_artifact(REGISTRY).abi)

    # ---------------------------------------------------------------- plumbing

    @contextmanager
    def _rpc(self) -> Iterator[None]:
        """Turn transport failures into ChainUnavailable."""
        try:
            yield
        except (requests.RequestException, ProviderConnectionError, OSError) as exc:
            raise ChainUnavailable(f"{self.rpc_url}: {exc}") from exc
        except Web3RPCError as exc:
            if "timed out" in str(exc).lower():
                raise ChainUnavailable(f"{self.rpc_url}: {exc}") from exc
            raise

    def _call(self, fn: Callable[[], T]) -> T:
        with self._rpc():
            return fn()

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked once, then cached)."""
        if self._chain_id is None:
            signer = self._signer  # one question for reading and signing
            self._chain_id = int(
                self._call(lambda: signer.chain_id if signer else self.w3.eth.chain_id)
            )
        return self._chain_id

    def _contract(self, address: str, artifact_name: str = REGISTRY) -> Contract:
        checksum = Web3.to_checksum_address(address)
        key = (checksum, artifact_name)
        if key not in self._contracts:
            abi = list(load_artifact(artifact_name).abi)
            self._contracts[key] = self.w3.eth.contract(address=checksum, abi=abi)
            self._errors.update(custom_errors(abi))
        return self._contracts[key]

    def _require_code(self, address: str) -> None:
        checksum = Web3.to_checksum_address(address)
        if checksum in self._with_code:
            return
        if not self.has_code(checksum):
            raise ContractMissing(f"no contract code at {checksum} on chain {self.chain_id}")
        self._with_code.add(checksum)

    def _require_key(self) -> TransactionSigner:
        if self._signer is None:
            raise ChainError("this ChainClient has no private key: it can only read")
        return self._signer

    def _view(self, fn: ContractFunction) -> Any:
        try:
            with self._rpc():
                return fn.call()
        except BadFunctionCallOutput as exc:
            raise ContractMissing(f"{fn.address}: {exc}") from exc
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: ContractLogicError | Web3RPCError) -> ChainError:
        """A revert (decoded when possible) or, for any other RPC error, a plain ChainError."""
        if (
            isinstance(exc, ContractLogicError)
            or revert_data(exc) is not None
            or "revert" in _rpc_message(exc).lower()  # Besu: "Execution reverted", no data
        ):
            return self._reverted(exc)
        return ChainError(f"{self.rpc_url}: {_rpc_message(exc)}")

    def _reverted(self, exc: Exception) -> ContractReverted:
        name, args = decode_revert(revert_data(exc), self._errors)
        message = _describe(name, args) if name else f"reverted: {exc}"
        if name == "AccessControlUnauthorizedAccount":
            return Unauthorized(message, error_name=name, error_args=args)
        return ContractReverted(message, error_name=name, error_args=args)

    def _estimate(self, call: Transactable) -> int:
        """Gas for ``call`` with headroom; the contract's refusal as a decoded ChainError."""
        signer = self._require_key()
        try:
            with self._rpc():
                return signer.estimate(call)
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._failure(exc) from exc

    def _fees(self) -> dict[str, int]:
        """Fee fields for a transaction, per the tx_type / gas_price_wei policy."""
        try:
            with self._rpc():
                return self.fee_policy.fees(self.w3)
        except NoBaseFee as exc:
            raise ChainError(str(exc)) from exc

    def _signed(self, call: Transactable, gas: int, nonce: int | None = None) -> SignedTransaction:
        """``call`` built and signed (contracts.transactions), node failures as ChainErrors."""
        signer = self._require_key()
        try:
            with self._rpc():
                return signer.sign(call, gas=gas, nonce=nonce)
        except NoBaseFee as exc:
            raise ChainError(str(exc)) from exc

    def _transact(self, fn: ContractFunction) -> AnchorReceipt:
        """Estimate, sign, send and wait for one transaction; raise if it fails."""
        signed = self._signed(fn, self._estimate(fn))
        self.send_raw(signed.raw)
        receipt = self.wait_for_receipt(signed.tx_hash, self.tx_timeout)
        if receipt is None:
            raise ChainUnavailable(f"{signed.tx_hash} not mined within {self.tx_timeout:.0f} s")
        if receipt.status != 1:
            raise ContractReverted(f"{signed.tx_hash} failed in block {receipt.block_number}")
        return receipt

    # ---------------------------------------------------------------- reading

    def ping(self) -> int:
        """The latest block number; raises ChainUnavailable when the node does not answer."""
        return int(self._call(lambda: self.w3.eth.block_number))

    def has_code(self, address: str) -> bool:
        """Whether a contract is deployed at ``address``."""
        checksum = Web3.to_checksum_address(address)
        return len(self._call(lambda: self.w3.eth.get_code(checksum))) > 0

    def protocol_version(self, contract: str) -> int:
        """The protocol version of the registry at ``contract``: 2 when it says so
        (``protocolVersion()``), else 1 (a version 1 registry has no such function)."""
        try:
            return int(self._view(self._contract(contract).functions.protocolVersion()))
        except ChainUnavailable:
            raise
        except ChainError:
            return 1

    def next_batch(self, contract: str, log_name: str) -> int:
        """The number the log's next anchored batch must carry."""
        return int(self._view(self._contract(contract).functions.nextBatch(log_id(log_name))))

    def batch_of(self, contract: str, log_name: str, batch: int) -> OnChainBatch | None:
        """The anchored batch, or None when it is not anchored (zero root)."""
        fn = self._contract(contract).functions.batchOf(log_id(log_name), batch)
        root, size, anchored_at, block_number = self._view(fn)
        if bytes(root) == ZERO_ROOT:
            return None
        return OnChainBatch(bytes(root), int(size), int(anchored_at), int(block_number))

    def attestations(self, contract: str, log_name: str, batch: int) -> int:
        """How many distinct witnesses attested the batch."""
        fn = self._contract(contract).functions.attestations(log_id(log_name), batch)
        return int(self._view(fn))

    def find_anchor(
        self, contract: str, log_name: str, batch: int, from_block: int = 0
    ) -> tuple[str, int] | None:
        """(tx hash, block number) of the transaction that anchored the batch, or None.

        Looks only at the block ``batchOf`` names, so it never scans a long range (Besu caps
        eth_getLogs at 5,000 blocks by default).
        """
        on_chain = self.batch_of(contract, log_name, batch)
        if on_chain is None or on_chain.block_number < from_block:
            return None
        block = on_chain.block_number
        query = {
            "address": Web3.to_checksum_address(contract),
            "fromBlock": block,
            "toBlock": block,
            "topics": [
                _hex(_ANCHORED_TOPIC),
                _hex(log_id(log_name)),
                _hex(batch.to_bytes(32, "big")),
            ],
        }
        logs = self._call(lambda: self.w3.eth.get_logs(query))  # type: ignore[arg-type]
        if not logs:
            return None
        return _hex(logs[0]["transactionHash"]), int(logs[0]["blockNumber"])

    def get_receipt(self, tx_hash: str) -> AnchorReceipt | None:
        """The receipt of a mined transaction, or None if it is not mined (or unknown)."""
        try:
            with self._rpc():
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if receipt is None or receipt.get("blockNumber") is None:
            return None
        return AnchorReceipt(
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            status=int(receipt["status"]),
        )

    def wait_for_receipt(self, tx_hash: str, timeout: float) -> AnchorReceipt | None:
        """Poll for the receipt every ``poll_interval`` s; None if not mined within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_interval)

    # ---------------------------------------------------------------- writing

    def deploy(self, artifact_name: str, *args: Any) -> Deployment:
        """Deploy any compiled contract of contracts/build with constructor ``args``."""
        self._require_key()
        artifact = load_artifact(artifact_name)
        factory = self.w3.eth.contract(abi=list(artifact.abi), bytecode=artifact.bytecode)
        constructor = factory.constructor(*args)
        signed = self._signed(constructor, self._estimate(constructor))
        tx_hash = signed.tx_hash
        self.send_raw(signed.raw)
        receipt = self.wait_for_receipt(tx_hash, self.tx_timeout)
        if receipt is None:
            raise ChainUnavailable(f"deployment {tx_hash} not mined within {self.tx_timeout:.0f} s")
        if receipt.status != 1:
            raise ContractReverted(f"deployment {tx_hash} of {artifact_name} failed")
        full = self._call(lambda: self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        created = full["contractAddress"]
        if created is None:
            raise ContractReverted(f"deployment {tx_hash} of {artifact_name} created no contract")
        address = Web3.to_checksum_address(created)
        self._with_code.add(address)
        return Deployment(address, tx_hash, receipt.block_number, self.chain_id)

    def deploy_registry(self, admin: str | None = None, anchorer: str | None = None) -> Deployment:
        """Deploy an AnchorRegistry; admin and anchorer default to this client's address."""
        own = self._require_key().address
        return self.deploy(
            REGISTRY,
            Web3.to_checksum_address(admin or own),
            Web3.to_checksum_address(anchorer or own),
        )

    def sign_anchor(
        self,
        contract: str,
        log_name: str,
        batch: int,
        root: bytes,
        size: int,
        nonce: int | None = None,
        *,
        gas: int | None = None,
    ) -> SignedAnchor:
        """Sign ``anchor(logId, batch, root, size)`` without sending it.

        Gas is estimated against the latest state, which runs the contract's checks: a wrong
        batch number surfaces here as :class:`BatchOutOfOrder`, an existing anchor of the same
        root as :class:`AlreadyAnchored`, a different one as :class:`AnchorConflict`, a missing
        role as :class:`Unauthorized`. To sign batch n+1 while batch n is still pending (so the
        estimate would fail), pass ``gas`` (e.g. ``ANCHOR_GAS_LIMIT``) and no estimate is made.
        """
        self._require_key()
        root = bytes(root)
        if len(root) != 32 or root == ZERO_ROOT:
            raise ValueError("root must be 32 bytes and not all zero")
        if not 0 < size < 2**32:
            raise ValueError("size must be between 1 and 2**32 - 1")
        if not 0 <= batch < 2**64:
            raise ValueError("batch must fit in uint64")
        self._require_code(contract)
        fn = self._contract(contract).functions.anchor(log_id(log_name), batch, root, size)
        if gas is None:
            try:
                gas = self._estimate(fn)
            except ContractReverted as exc:
                raise self._anchor_refusal(exc, contract, log_name, batch, root, size) from exc
        return self._signed(fn, gas, nonce)

    def _anchor_refusal(
        self,
        exc: ContractReverted,
        contract: str,
        log_name: str,
        batch: int,
        root: bytes,
        size: int,
    ) -> ChainError:
        if exc.error_name != "BatchOutOfOrder":
            return exc
        expected, given = int(exc.error_args["expected"]), int(exc.error_args["given"])
        common: dict[str, Any] = {
            "expected": expected,
            "given": given,
            "error_name": exc.error_name,
        }
        if given < expected:
            on_chain = self.batch_of(contract, log_name, given)
            if on_chain is not None and on_chain.root == root and on_chain.size == size:
                return AlreadyAnchored(
                    f"{log_name} batch {given} is already anchored with this root",
                    on_chain=on_chain,
                    error_args=exc.error_args,
                    **common,
                )
            if on_chain is not None:
                return AnchorConflict(
                    f"{log_name} batch {given} is anchored with root {_hex(on_chain.root)} "
                    f"size {on_chain.size}, not {_hex(root)} size {size}",
                    on_chain=on_chain,
                    root=root,
                    size=size,
                )
        return BatchOutOfOrder(
            f"{log_name}: batch {given} given, contract expects {expected}",
            error_args=exc.error_args,
            **common,
        )

    def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; return its hash.

        Idempotent: if the node refuses it because it already has it ("already known",
        "nonce too low" after it was mined), that is success.
        """
        tx_hash = _hex(keccak(raw))
        try:
            with self._rpc():
                returned = self.w3.eth.send_raw_transaction(raw)
        except (Web3RPCError, ValueError) as exc:
            if self._is_known(tx_hash):
                return tx_hash
            raise TransactionRejected(f"{tx_hash} refused: {_rpc_message(exc)}") from exc
        return _hex(returned)

    def _is_known(self, tx_hash: str) -> bool:
        try:
            with self._rpc():
                self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return False
        return True

    def grant_role(self, contract: str, role_name: str, account: str) -> AnchorReceipt:
        """Grant ``ANCHORER_ROLE``, ``WITNESS_ROLE`` (or ``DEFAULT_ADMIN_ROLE``) to ``account``."""
        role = role_id(role_name)
        self._require_code(contract)
        fn = self._contract(contract).functions.grantRole(role, Web3.to_checksum_address(account))
        return self._transact(fn)

    def transact(
        self, contract: str, artifact_name: str, function_name: str, *args: Any
    ) -> AnchorReceipt:
        """Call any state-changing function of a deployed artifact and wait for it to be mined
        (for benchmarks and admin scripts; the anchoring path uses sign_anchor/send_raw)."""
        self._require_code(contract)
        fn = self._contract(contract, artifact_name).get_function_by_name(function_name)(*args)
        return self._transact(fn)

    def attest(self, contract: str, log_name: str, batch: int, root: bytes) -> AnchorReceipt:
        """As a witness, attest that ``root`` is what batch ``batch`` of the log anchors.

        Refusals arrive as :class:`ContractReverted` with ``error_name`` ``NotAnchored``,
        ``AttestedRootMismatch`` or ``AlreadyAttested``, or as :class:`Unauthorized`.
        """
        self._require_code(contract)
        fn = self._contract(contract).functions.attest(log_id(log_name), batch, bytes(root))
        return self._transact(fn)
