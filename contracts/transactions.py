"""Calling the contracts: one fee policy, one way to build and sign a transaction, and one way
to read a revert, for the anchoring worker (the ledger's chain client) and the witness.

Keys stay local: permissioned nodes such as Besu hold none, so a transaction is built here
with the chain's own id and the sender's pending nonce, and signed with eth_account.

The fee policy (:class:`FeePolicy`): ``tx_type`` ``"auto"`` sends EIP-1559 (type 2) when the
latest block carries a base fee and legacy otherwise; ``"legacy"`` always legacy;
``"eip1559"`` refuses a chain without a base fee (:class:`NoBaseFee`). ``gas_price_wei`` fixes
the price (0 on zero-gas permissioned chains): both EIP-1559 fee fields, or ``gasPrice``.
Without it a type-2 transaction offers twice the base fee plus the node's suggested tip (none
when the base fee is 0 or the node does not know one), and a legacy one the node's gas price.

Gas is estimated (``eth_estimateGas``), which also runs the contract's checks: a refusal
arrives before anything is signed. When the node cannot estimate at all (a JSON-RPC error that
is not a revert: Besu 25.6.0 to 25.7.x answer "Internal error" on QBFT networks, fixed in
25.8.0), the call is run with ``eth_call`` instead, so refusals still arrive, and sent with the
fixed :data:`FALLBACK_GAS_LIMIT` (a deployment with :data:`FALLBACK_DEPLOY_GAS_LIMIT`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_typing import ChecksumAddress
from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import TxParams

__all__ = [
    "FALLBACK_DEPLOY_GAS_LIMIT",
    "FALLBACK_GAS_LIMIT",
    "GAS_HEADROOM",
    "TX_TYPES",
    "FeePolicy",
    "NoBaseFee",
    "RevertTable",
    "SignedTransaction",
    "Transactable",
    "TransactionSigner",
    "custom_errors",
    "decode_revert",
    "estimate_unavailable",
    "revert_data",
]

log = logging.getLogger("civic.chain")

#: Estimates are multiplied by this: state can change between the estimate and the block.
GAS_HEADROOM = 1.25
#: The gas limit of a contract call when the node cannot estimate it (see the module doc).
#: The heaviest call sent this way is a log's first anchor, about 95,000 gas (77,000 after;
#: an attestation or a role grant takes less), so this leaves twice the room. Unused gas is
#: not paid for, and the Besu network charges nothing anyway.
FALLBACK_GAS_LIMIT = 200_000
#: The same for deploying a contract: AnchorRegistry takes about 962,000 gas, the benchmark's
#: naive registry about 530,000 (docs/BENCHMARKS.md). A constructor cannot be run with
#: eth_call first; one that fails shows in its receipt.
FALLBACK_DEPLOY_GAS_LIMIT = 3_000_000
TX_TYPES = ("auto", "legacy", "eip1559")

#: A contract function call or constructor, ready to estimate and build.
Transactable = ContractFunction | ContractConstructor


class NoBaseFee(ValueError):
    """``tx_type`` ``eip1559`` on a chain whose blocks carry no base fee (pre-London rules)."""


@dataclass(frozen=True)
class FeePolicy:
    """How a sender pays for its transactions (see the module doc)."""

    tx_type: str = "auto"
    gas_price_wei: int | None = None

    def __post_init__(self) -> None:
        if self.tx_type not in TX_TYPES:
            raise ValueError(f"tx_type must be auto, legacy or eip1559, not {self.tx_type!r}")
        if self.gas_price_wei is not None and self.gas_price_wei < 0:
            raise ValueError("gas_price_wei cannot be negative")

    def fees(self, w3: Web3) -> dict[str, int]:
        """The fee fields of a transaction sent now through ``w3``."""
        if self.tx_type != "legacy":
            base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
            if base_fee is not None:
                if self.gas_price_wei is not None:
                    price = self.gas_price_wei
                    return {"maxFeePerGas": price, "maxPriorityFeePerGas": price}
                priority = 0
                if base_fee > 0:
                    # A node that does not know a tip: the base fee alone gets us in.
                    with suppress(Web3RPCError, ValueError):
                        priority = int(w3.eth.max_priority_fee)
                return {
                    "maxFeePerGas": 2 * int(base_fee) + priority,
                    "maxPriorityFeePerGas": priority,
                }
            if self.tx_type == "eip1559":
                raise NoBaseFee(
                    f"chain {int(w3.eth.chain_id)} has no base fee (pre-London): use tx_type legacy"
                )
        if self.gas_price_wei is not None:
            return {"gasPrice": self.gas_price_wei}
        return {"gasPrice": int(w3.eth.gas_price)}


@dataclass(frozen=True)
class SignedTransaction:
    """A signed, not yet broadcast transaction. ``raw`` can be (re)broadcast as is."""

    raw: bytes
    tx_hash: str
    nonce: int


class TransactionSigner:
    """Builds and signs the transactions of one account on the chain behind ``w3``.

    Every call goes straight to the node: callers wrap them in their own error handling (a
    failed estimate is how a contract's refusal arrives, before anything is signed).
    """

    def __init__(self, w3: Web3, key: bytes, policy: FeePolicy | None = None) -> None:
        self.w3 = w3
        self.policy = policy or FeePolicy()
        self._account = Account.from_key(key)
        self.address: ChecksumAddress = self._account.address
        self._estimate_failed = False  # warned once that the node cannot estimate

    @cached_property
    def chain_id(self) -> int:
        """The chain's id, signed into every transaction (EIP-155); asked once."""
        return int(self.w3.eth.chain_id)

    def fees(self) -> dict[str, int]:
        """The fee fields, per :attr:`policy`."""
        return self.policy.fees(self.w3)

    def estimate(self, call: Transactable) -> int:
        """The gas ``call`` needs from this account, with :data:`GAS_HEADROOM`. The estimate
        runs the contract's checks: a refusal raises web3's ContractLogicError/Web3RPCError.

        When the node cannot estimate (:func:`estimate_unavailable`), a contract call is run
        with eth_call (a refusal raises as above) and given :data:`FALLBACK_GAS_LIMIT`, a
        deployment :data:`FALLBACK_DEPLOY_GAS_LIMIT`.
        """
        sender = cast(TxParams, {"from": self.address})
        try:
            return int(call.estimate_gas(sender) * GAS_HEADROOM)
        except Web3RPCError as exc:
            if not estimate_unavailable(exc):
                raise
            reason = exc
        if not self._estimate_failed:
            self._estimate_failed = True
            log.warning(
                "the node cannot estimate gas (%s): running calls with eth_call and sending "
                "them with a fixed gas limit; on Besu, run a release outside 25.6.0-25.7.x",
                reason,
            )
        if isinstance(call, ContractConstructor):
            return FALLBACK_DEPLOY_GAS_LIMIT
        call.call(sender)
        return FALLBACK_GAS_LIMIT

    def pending_nonce(self) -> int:
        """The account's next nonce, counting its transactions still in the pool."""
        return int(self.w3.eth.get_transaction_count(self.address, "pending"))

    def sign(self, call: Transactable, *, gas: int, nonce: int | None = None) -> SignedTransaction:
        """Build ``call`` with ``gas`` (see :meth:`estimate`), the pending nonce (or ``nonce``),
        the chain id and the fee fields, and sign it."""
        if nonce is None:
            nonce = self.pending_nonce()
        params = {"from": self.address, "nonce": nonce, "chainId": self.chain_id, "gas": gas}
        tx = call.build_transaction(cast(TxParams, {**params, **self.fees()}))
        signed = self._account.sign_transaction(cast(dict[str, Any], tx))
        return SignedTransaction(
            raw=bytes(signed.raw_transaction), tx_hash="0x" + bytes(signed.hash).hex(), nonce=nonce
        )


# ------------------------------------------------------------------------------- reverts

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)

#: A contract's custom errors by selector: (name, the ABI's inputs).
RevertTable = dict[bytes, tuple[str, list[Mapping[str, Any]]]]


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){kind[5:]}"
    return kind


def custom_errors(abi: Iterable[Mapping[str, Any]]) -> RevertTable:
    """The custom errors an ABI declares, by their 4-byte selector."""
    table: RevertTable = {}
    for item in abi:
        if item.get("type") == "error":
            types = [_abi_type(p) for p in item["inputs"]]
            selector = bytes(keccak(text=f"{item['name']}({','.join(types)})")[:4])
            table[selector] = (str(item["name"]), list(item["inputs"]))
    return table


def revert_data(exc: Exception) -> bytes | None:
    """The raw revert bytes in whatever shape the node and web3 delivered them, or None."""
    candidates: list[Any] = []
    if isinstance(exc, ContractLogicError):
        candidates.append(exc.data)
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping):
            candidates.append(error.get("data"))
    for data in candidates:
        if isinstance(data, Mapping):  # ganache: {"result": "0x…", "message": "revert", …}
            data = data.get("result") or data.get("data")
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                continue
    return None


def estimate_unavailable(exc: Exception) -> bool:
    """Whether a failed ``eth_estimateGas`` says the node could not estimate, rather than that
    the call reverts: a JSON-RPC error with no revert data and no "revert" in its message (and
    not a time-out: a node too slow to answer is not one that cannot estimate)."""
    if not isinstance(exc, Web3RPCError) or revert_data(exc) is not None:
        return False
    said = [str(exc)]
    if isinstance(exc.rpc_response, Mapping):
        error = exc.rpc_response.get("error")
        if isinstance(error, Mapping):
            said.append(str(error.get("message", "")))
    text = " ".join(said).lower()
    return "revert" not in text and "timed out" not in text


def decode_revert(data: bytes | None, errors: RevertTable) -> tuple[str | None, dict[str, Any]]:
    """(error name, {argument: value}) of a revert: ``Error(string)``, ``Panic(uint256)`` or
    one of ``errors``; (None, {}) when it cannot be decoded."""
    if not data or len(data) < 4:
        return None, {}
    selector, body = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            return "Error", {"message": abi_decode(["string"], body)[0]}
        if selector == _PANIC:
            return "Panic", {"code": abi_decode(["uint256"], body)[0]}
        if selector in errors:
            name, inputs = errors[selector]
            values = abi_decode([_abi_type(p) for p in inputs], body)
            return name, {str(p["name"]): v for p, v in zip(inputs, values, strict=True)}
    except Exception:  # malformed revert data: report it undecoded rather than crash
        return None, {}
    return None, {}
