"""Checking one batch from the service's public export against the chain (PROTOCOL §3).

The service publishes every anchored batch at ``GET /api/v1/anchors/{log}/{batch}`` as
``{log, batch, root, size, tx, block, chain_id, contract, leaf_hashes}`` (202 while it is being
anchored, 404 when there is no such batch). Anyone can recompute the RFC 9162 Merkle Tree Hash
from ``leaf_hashes`` and compare it with the export's root and with ``batchOf`` on chain. That
is what ``GET /verify/batch/{log}/{n}`` answers and what a witness does before ``attest``.

Checks, in order; the first that fails gives the verdict:

1. the export is shaped as promised and is the batch asked for (``malformed``);
2. the leaf hashes, as many as ``size``, give the export's ``root`` (``altered``: the published
   leaves are not the batch the service says it anchored);
3. the endpoint serves the export's ``chain_id`` and, when the caller pins one, the contract is
   the expected one; there is code at the contract and it answers ``batchOf`` (``wrong_chain``);
4. ``batchOf`` gives a non-zero root (``not_anchored``) equal to the export's root and size
   (``root_mismatch``).

Then attestations and confirmations are read and reported (they fail nothing here).
``tx`` and ``block`` are shown, not checked, as for receipts (PROTOCOL-NOTES §5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eth_utils.address import is_checksum_address

from core.merkle import ZERO_ROOT, merkle_root
from core.records import LOGS, is_hex64
from core.verdicts import Check
from verifier.chain import ChainReader, log_id
from verifier.errors import ContractMismatch

MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


class BatchVerdict(StrEnum):
    """What checking a batch export concludes. ``pending`` is the service's own 202: the batch
    is sealed and its anchor transaction under way, so there is nothing to check yet."""

    VALID = "valid"
    PENDING = "pending"
    MALFORMED = "malformed"
    ALTERED = "altered"
    WRONG_CHAIN = "wrong_chain"
    NOT_ANCHORED = "not_anchored"
    ROOT_MISMATCH = "root_mismatch"


@dataclass(frozen=True, slots=True)
class BatchVerification:
    """The verdict on one batch export and every check made, in order.

    ``root`` is the root recomputed from the leaves (None before step 2); ``chain_root`` and
    ``chain_size`` what ``batchOf`` answered; ``attestations`` and ``confirmations`` are read
    only for a batch that checked out.
    """

    verdict: BatchVerdict
    log: str
    batch: int
    reason: str
    checks: list[Check] = field(default_factory=list)
    root: str | None = None
    size: int | None = None
    chain_root: str | None = None
    chain_size: int | None = None
    chain_id: int | None = None
    contract: str | None = None
    tx: str | None = None
    block: int | None = None
    anchored_block: int | None = None
    attestations: int | None = None
    confirmations: int | None = None

    @property
    def valid(self) -> bool:
        return self.verdict is BatchVerdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "log": self.log,
            "batch": self.batch,
            "reason": self.reason,
            "root": self.root,
            "size": self.size,
            "chain_root": self.chain_root,
            "chain_size": self.chain_size,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "tx": self.tx,
            "block": self.block,
            "anchored_block": self.anchored_block,
            "attestations": self.attestations,
            "confirmations": self.confirmations,
            "checks": [check.to_dict() for check in self.checks],
        }


def pending_batch(log: str, batch: int, detail: str) -> BatchVerification:
    """The answer for a batch the service reports as still being anchored (HTTP 202)."""
    return BatchVerification(BatchVerdict.PENDING, log, batch, detail or "being anchored")


class _Malformed(Exception):
    pass


def _integer(export: dict[str, Any], name: str, low: int, high: int) -> int:
    value = export.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _Malformed(f"{name} must be an integer between {low} and {high}")
    return value


@dataclass(frozen=True, slots=True)
class _Export:
    root: bytes
    size: int
    leaves: list[bytes]
    chain_id: int
    contract: str
    tx: str
    block: int


def _parse(export: Any, log: str, batch: int) -> _Export:
    if not isinstance(export, dict):
        raise _Malformed("the export must be a JSON object")
    members = ("log", "batch", "root", "size", "tx", "block", "chain_id", "contract", "leaf_hashes")
    missing = [name for name in members if name not in export]
    if missing:
        raise _Malformed(f"the export lacks {', '.join(missing)}")
    if export["log"] != log:
        raise _Malformed(f"the export is of log {export['log']!r}, not {log!r}")
    if _integer(export, "batch", 0, MAX_UINT64) != batch:
        raise _Malformed(f"the export is of batch {export['batch']}, not {batch}")
    if not is_hex64(export["root"]):
        raise _Malformed("root must be 64 lowercase hex characters")
    size = _integer(export, "size", 1, MAX_UINT32)
    leaves = export["leaf_hashes"]
    if not isinstance(leaves, list) or not all(is_hex64(leaf) for leaf in leaves):
        raise _Malformed("leaf_hashes must be an array of 64-lowercase-hex leaf hashes")
    chain_id = _integer(export, "chain_id", 1, 2**256 - 1)
    contract = export["contract"]
    if not isinstance(contract, str) or not _ADDRESS.fullmatch(contract):
        raise _Malformed("contract must be 0x followed by 40 hex characters")
    digits = contract[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(contract):
        raise _Malformed(f"contract {contract} is mixed-case but not an EIP-55 checksum")
    tx = export["tx"]
    if not isinstance(tx, str) or not _TX_HASH.fullmatch(tx):
        raise _Malformed("tx must be 0x followed by 64 lowercase hex characters")
    block = _integer(export, "block", 0, MAX_UINT64)
    return _Export(
        root=bytes.fromhex(export["root"]),
        size=size,
        leaves=[bytes.fromhex(leaf) for leaf in leaves],
        chain_id=chain_id,
        contract=contract,
        tx=tx,
        block=block,
    )


def verify_batch_export(
    export: Any,
    chain: ChainReader,
    *,
    log: str,
    batch: int,
    contract: str | None = None,
) -> BatchVerification:
    """Check the export of batch ``batch`` of ``log`` against ``chain`` (see the module doc).

    ``contract``, when given, is the AnchorRegistry the caller trusts: an export naming another
    one is ``wrong_chain``. Never raises for a bad export; raises ChainUnreachable/ChainError
    when the chain cannot be asked.
    """
    if log not in LOGS:
        raise ValueError(f"log must be one of {sorted(LOGS)}, not {log!r}")
    checks: list[Check] = []
    base: dict[str, Any] = {"log": log, "batch": batch, "checks": checks}

    def fail(
        verdict: BatchVerdict, step: int, name: str, detail: str, **found: Any
    ) -> BatchVerification:
        checks.append(Check(step, name, False, detail))
        return BatchVerification(verdict, reason=detail, **base, **found)

    # 1. The export is shaped as promised, and is the batch asked for.
    try:
        e = _parse(export, log, batch)
    except _Malformed as exc:
        return fail(BatchVerdict.MALFORMED, 1, "export is well-formed", str(exc))
    shown = {"chain_id": e.chain_id, "contract": e.contract, "tx": e.tx, "block": e.block}
    checks.append(
        Check(1, "export is well-formed", True, f"batch {batch} of log {log!r}: {e.size} leaves")
    )

    # 2. The leaves, as many as size, give the export's root (RFC 9162 §2.1.1).
    if len(e.leaves) != e.size:
        return fail(
            BatchVerdict.ALTERED,
            2,
            "leaves give the root",
            f"the export lists {len(e.leaves)} leaf hashes for a batch of size {e.size}",
            **shown,
        )
    computed = merkle_root(e.leaves)
    found: dict[str, Any] = {**shown, "root": computed.hex(), "size": e.size}
    if computed != e.root:
        return fail(
            BatchVerdict.ALTERED,
            2,
            "leaves give the root",
            f"the {e.size} leaf hashes give root {computed.hex()}, the export claims "
            f"{e.root.hex()}: the published leaves are not the batch anchored",
            **found,
        )
    checks.append(
        Check(
            2, "leaves give the root", True, f"recomputed root {computed.hex()} equals the export's"
        )
    )

    # 3. The chain and contract the export names.
    endpoint_chain = chain.chain_id()
    if endpoint_chain != e.chain_id:
        return fail(
            BatchVerdict.WRONG_CHAIN,
            3,
            "chain id",
            f"the endpoint serves chain {endpoint_chain}, the export names chain {e.chain_id}",
            **found,
        )
    if contract is not None and contract.lower() != e.contract.lower():
        return fail(
            BatchVerdict.WRONG_CHAIN,
            3,
            "contract",
            f"the export names contract {e.contract}, the expected one is {contract}",
            **found,
        )
    if not chain.has_code(e.contract):
        return fail(
            BatchVerdict.WRONG_CHAIN,
            3,
            "contract",
            f"no contract is deployed at {e.contract} on chain {e.chain_id}",
            **found,
        )
    lid = log_id(log)
    try:
        chain_root, chain_size, _anchored_at, anchored_block = chain.batch_of(
            e.contract, lid, batch
        )
    except ContractMismatch as exc:
        return fail(BatchVerdict.WRONG_CHAIN, 3, "contract", str(exc), **found)
    checks.append(Check(3, "chain and contract", True, f"chain {e.chain_id}, {e.contract}"))

    # 4. batchOf gives the same root and size.
    name = f"batch {batch} of log {log!r}"
    if chain_root == ZERO_ROOT:
        return fail(
            BatchVerdict.NOT_ANCHORED,
            4,
            "anchored root and size",
            f"{name} is not anchored at {e.contract} (batchOf returns a zero root), although "
            "the service exports it as anchored",
            **found,
        )
    found.update(chain_root=chain_root.hex(), chain_size=chain_size, anchored_block=anchored_block)
    if chain_root != computed or chain_size != e.size:
        return fail(
            BatchVerdict.ROOT_MISMATCH,
            4,
            "anchored root and size",
            f"on chain {name} has root {chain_root.hex()} and size {chain_size}; the export "
            f"claims root {computed.hex()} and size {e.size}",
            **found,
        )
    checks.append(
        Check(
            4,
            "anchored root and size",
            True,
            f"{name}: root {chain_root.hex()}, size {chain_size}, anchored in block "
            f"{anchored_block}",
        )
    )

    # Reported, not required.
    latest = chain.block_number()
    confirmations = max(0, latest - anchored_block + 1)
    try:
        attested: int | None = chain.attestations(e.contract, lid, batch)
    except ContractMismatch:
        attested = None
    checks.append(
        Check(
            5,
            "confirmations and attestations",
            True,
            f"{confirmations} confirmations (latest block {latest}); "
            f"{'unknown' if attested is None else attested} witness attestations",
        )
    )
    return BatchVerification(
        BatchVerdict.VALID,
        reason=f"the {e.size} published leaves give the root anchored for {name} on chain "
        f"{e.chain_id}",
        confirmations=confirmations,
        attestations=attested,
        **base,
        **found,
    )
