"""Checking one batch from the service's public export against the chain (PROTOCOL §3, §8).

The service publishes every anchored batch at ``GET /api/v1/anchors/{log}/{batch}`` (202 while it
is being anchored, 404 when there is no such batch). That is what ``GET /verify/batch/{log}/{n}``
answers and what a witness checks before ``attest``. Two shapes:

* **Version 2** (``"v": 2``, PROTOCOL §8): ``{v, log, batch, root, size, first, frontier, tx,
  block, chain_id, contract, leaf_hashes}``. ``root`` is the root of the whole log's tree of
  ``size = end(b)`` entries, ``first`` is ``end(b−1)`` (0 for batch 0), ``frontier`` the hashes
  of the complete subtrees of the log's tree of ``first`` entries, largest first
  (``core.tlog.frontier``), and ``leaf_hashes`` the batch's own entries ``first … size−1``.
  Appending the leaves to the frontier must give ``root``; the frontier must fold to the root
  anchored for batch b−1, which shows that the tree anchored for b extends it.
* **Version 1** (no ``v``, or ``"v": 1``): ``{log, batch, root, size, tx, block, chain_id,
  contract, leaf_hashes}``, the batch's own root over its ``size`` leaves. Still checked, with
  no consistency step (version 1 has none); a witness attests only version 2 exports.

Checks, in order; the first that fails gives the verdict:

1. the export is shaped as promised and is the batch asked for (``malformed``); version 2:
   ``first`` is below ``size``, and 0 for batch 0 (§8: ``end(−1) = 0``);
2. the leaves give the export's root (``altered``: the published leaves are not the batch the
   service says it anchored). Version 2: one frontier hash per complete subtree of the tree of
   ``first`` entries, ``size − first`` leaf hashes, and appending them to the frontier gives
   ``root`` for ``size`` entries (RFC 9162 §2.1.1); version 1: ``size`` leaf hashes whose
   Merkle Tree Hash is ``root``;
3. the endpoint serves the export's ``chain_id`` and, when the caller pins one, the contract is
   the expected one; there is code at the contract and it answers ``batchOf`` (``wrong_chain``);
4. ``batchOf(b)`` gives a non-zero root (``not_anchored``) equal to the export's root and size
   (``root_mismatch``);
5. version 2, batch b > 0: ``batchOf(b−1)`` is anchored (``not_anchored``), its size is
   ``first`` (``root_mismatch``: the export misplaces the batch's start), and its root is what
   the frontier folds to (``inconsistent``, §8). Step 2 and 4 passed, so the frontier is the one
   the anchored root of b commits to: a different root for b−1 means the tree anchored for b
   does not extend the tree anchored for b−1.

Then attestations and confirmations are read and reported (step 6; they fail nothing here).
``tx`` and ``block`` are shown, not checked, as for receipts (PROTOCOL-NOTES §5).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from eth_utils.address import is_checksum_address

from core import tlog
from core.merkle import ZERO_ROOT, merkle_root
from core.records import LOGS, is_hex64
from core.verdicts import Check
from verifier.chain import ChainReader, log_id
from verifier.errors import ContractMismatch

MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1
EXPORT_VERSIONS = (1, 2)

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


class BatchVerdict(StrEnum):
    """What checking a batch export concludes. ``pending`` is the service's own 202: the batch
    is sealed and its anchor transaction under way, so there is nothing to check yet.
    ``inconsistent`` is PROTOCOL §8's word: the tree anchored for the batch does not extend the
    tree anchored for the batch before it."""

    VALID = "valid"
    PENDING = "pending"
    MALFORMED = "malformed"
    ALTERED = "altered"
    WRONG_CHAIN = "wrong_chain"
    NOT_ANCHORED = "not_anchored"
    ROOT_MISMATCH = "root_mismatch"
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True, slots=True)
class BatchVerification:
    """The verdict on one batch export and every check made, in order.

    ``root`` is the root recomputed from the leaves (None before step 2) and ``size`` the size
    of the tree it is the root of: the batch's own record count in version 1, the log's size
    after the batch (``end(b)``) in version 2, whose batch starts at entry ``first``.
    ``chain_root`` and ``chain_size`` are what ``batchOf`` answered; ``attestations`` and
    ``confirmations`` are read only for a batch that checked out. ``version`` is the export's
    (None when it is malformed before that is known).
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
    version: int | None = None
    first: int | None = None

    @property
    def valid(self) -> bool:
        return self.verdict is BatchVerdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "log": self.log,
            "batch": self.batch,
            "reason": self.reason,
            "version": self.version,
            "root": self.root,
            "size": self.size,
            "first": self.first,
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


def _hashes(export: dict[str, Any], name: str, what: str) -> list[bytes]:
    items = export[name]
    if not isinstance(items, list) or not all(is_hex64(item) for item in items):
        raise _Malformed(f"{name} must be an array of 64-lowercase-hex {what}")
    return [bytes.fromhex(item) for item in items]


@dataclass(frozen=True, slots=True)
class _Export:
    version: int
    root: bytes
    size: int
    first: int  # version 1: always 0, the batch's own tree
    frontier: list[bytes]  # version 1: always empty
    leaves: list[bytes]
    chain_id: int
    contract: str
    tx: str
    block: int


_MEMBERS = ("log", "batch", "root", "size", "tx", "block", "chain_id", "contract", "leaf_hashes")


def _parse(export: Any, log: str, batch: int, versions: Collection[int]) -> _Export:
    if not isinstance(export, dict):
        raise _Malformed("the export must be a JSON object")
    version = 1
    if "v" in export:
        version = _integer(export, "v", 0, MAX_UINT64)
        if version not in EXPORT_VERSIONS:
            raise _Malformed(
                f"export version {version} is not supported; this verifier knows v=1 and v=2"
            )
    if version not in versions:
        raise _Malformed(
            f"a version {version} export is not accepted here (only "
            f"{' and '.join(f'v={v}' for v in sorted(versions))}): "
            + (
                "a version 1 export gives the batch's own root, and nothing shows that the "
                "log's tree extends the one anchored before it (PROTOCOL §8)"
                if version == 1
                else "ask for another version"
            )
        )
    members = _MEMBERS + (("first", "frontier") if version == 2 else ())
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
    first, frontier = 0, []
    if version == 2:
        first = _integer(export, "first", 0, MAX_UINT32)
        if first >= size:
            raise _Malformed(
                f"first ({first}) must be below size ({size}): a batch holds at least one entry"
            )
        if batch == 0 and first != 0:
            raise _Malformed(
                f"batch 0 starts the log at entry 0 (PROTOCOL §8: end(−1) = 0), the export "
                f"says first {first}"
            )
        frontier = _hashes(export, "frontier", "subtree hashes")
    leaves = _hashes(export, "leaf_hashes", "leaf hashes")
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
        version=version,
        root=bytes.fromhex(export["root"]),
        size=size,
        first=first,
        frontier=frontier,
        leaves=leaves,
        chain_id=chain_id,
        contract=contract,
        tx=tx,
        block=block,
    )


def extend_frontier(first: int, frontier: Sequence[bytes], leaves: Sequence[bytes]) -> bytes:
    """The root of the log's tree after appending ``leaves`` to the tree of ``first`` entries
    whose :func:`core.tlog.frontier` hashes are ``frontier`` (largest first).

    Raises ValueError when ``frontier`` has not one hash per complete subtree of that tree.
    """
    nodes = tlog.frontier(first)
    if len(frontier) != len(nodes):
        raise ValueError(
            f"the frontier of a tree of {first} entries is {len(nodes)} subtree hash(es), "
            f"the export gives {len(frontier)}"
        )
    table = dict(zip(nodes, frontier, strict=True))
    return tlog.append_leaves(first, leaves, lambda wanted: [table[n] for n in wanted]).root


class _LeavesDiffer(Exception):
    """Step 2 failed; ``computed`` is the root the leaves do give, when they give one."""

    def __init__(self, computed: bytes | None, detail: str) -> None:
        super().__init__(detail)
        self.computed = computed


def _leaves_give_the_root(e: _Export) -> str:
    """Step 2: the recomputed root's description; raises _LeavesDiffer when it fails."""
    if e.version == 1:
        if len(e.leaves) != e.size:
            raise _LeavesDiffer(
                None, f"the export lists {len(e.leaves)} leaf hashes for a batch of size {e.size}"
            )
        computed = merkle_root(e.leaves)
        if computed != e.root:
            raise _LeavesDiffer(
                computed,
                f"the {e.size} leaf hashes give root {computed.hex()}, the export claims "
                f"{e.root.hex()}: the published leaves are not the batch anchored",
            )
        return f"recomputed root {computed.hex()} equals the export's"
    count = e.size - e.first
    if len(e.leaves) != count:
        raise _LeavesDiffer(
            None,
            f"the export lists {len(e.leaves)} leaf hashes for entries {e.first} to "
            f"{e.size - 1} ({count} entries)",
        )
    try:
        computed = extend_frontier(e.first, e.frontier, e.leaves)
    except ValueError as exc:
        raise _LeavesDiffer(None, str(exc)) from exc
    if computed != e.root:
        raise _LeavesDiffer(
            computed,
            f"the frontier of the tree of {e.first} entries and the {count} leaf hashes give "
            f"root {computed.hex()} for {e.size} entries, the export claims {e.root.hex()}: "
            "the published leaves are not the batch anchored",
        )
    return (
        f"the frontier of the tree of {e.first} entries and the {count} leaf hashes give the "
        f"export's root {computed.hex()} for {e.size} entries"
    )


def verify_batch_export(
    export: Any,
    chain: ChainReader,
    *,
    log: str,
    batch: int,
    contract: str | None = None,
    versions: Collection[int] = EXPORT_VERSIONS,
) -> BatchVerification:
    """Check the export of batch ``batch`` of ``log`` against ``chain`` (see the module doc).

    ``contract``, when given, is the AnchorRegistry the caller trusts: an export naming another
    one is ``wrong_chain``. ``versions`` are the export versions accepted (a witness accepts
    only 2); another is ``malformed``. Never raises for a bad export; raises
    ChainUnreachable/ChainError when the chain cannot be asked.
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
        e = _parse(export, log, batch, versions)
    except _Malformed as exc:
        return fail(BatchVerdict.MALFORMED, 1, "export is well-formed", str(exc))
    shown: dict[str, Any] = {
        "chain_id": e.chain_id,
        "contract": e.contract,
        "tx": e.tx,
        "block": e.block,
        "version": e.version,
    }
    if e.version == 2:
        shown["first"] = e.first
        what = f"v2, entries {e.first} to {e.size - 1} of the log ({e.size - e.first} leaves)"
    else:
        what = f"v1, {e.size} leaves"
    checks.append(Check(1, "export is well-formed", True, f"batch {batch} of log {log!r}: {what}"))

    # 2. The leaves give the export's root (RFC 9162 §2.1.1).
    try:
        detail = _leaves_give_the_root(e)
    except _LeavesDiffer as exc:
        if exc.computed is not None:
            shown.update(root=exc.computed.hex(), size=e.size)
        return fail(BatchVerdict.ALTERED, 2, "leaves give the root", str(exc), **shown)
    found: dict[str, Any] = {**shown, "root": e.root.hex(), "size": e.size}
    checks.append(Check(2, "leaves give the root", True, detail))

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
    if chain_root != e.root or chain_size != e.size:
        return fail(
            BatchVerdict.ROOT_MISMATCH,
            4,
            "anchored root and size",
            f"on chain {name} has root {chain_root.hex()} and size {chain_size}; the export "
            f"claims root {e.root.hex()} and size {e.size}",
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

    # 5. Version 2: the tree anchored for this batch extends the one anchored before it (§8).
    if e.version == 2:
        if batch == 0:
            checks.append(
                Check(5, "extends the batch before", True, "batch 0 starts the log: no tree before")
            )
        else:
            before = f"batch {batch - 1} of log {log!r}"
            try:
                prev_root, prev_size, _at, _block = chain.batch_of(e.contract, lid, batch - 1)
            except ContractMismatch as exc:
                return fail(BatchVerdict.WRONG_CHAIN, 5, "contract", str(exc), **found)
            if prev_root == ZERO_ROOT:
                return fail(
                    BatchVerdict.NOT_ANCHORED,
                    5,
                    "extends the batch before",
                    f"{before} is not anchored at {e.contract} (batchOf returns a zero root), "
                    f"although {name} is: the tree before the batch cannot be checked",
                    **found,
                )
            if prev_size != e.first:
                return fail(
                    BatchVerdict.ROOT_MISMATCH,
                    5,
                    "extends the batch before",
                    f"on chain {before} ends the log at {prev_size} entries; the export says "
                    f"{name} starts at entry {e.first}",
                    **found,
                )
            folded = tlog.fold_subtree(e.frontier)  # first > 0 here: at least one hash
            if folded != prev_root:
                return fail(
                    BatchVerdict.INCONSISTENT,
                    5,
                    "extends the batch before",
                    f"the tree anchored for {name} holds, for its first {e.first} entries, "
                    f"root {folded.hex()}; on chain {before} has root {prev_root.hex()} for "
                    f"those entries: the log was rewritten between the two anchors "
                    "(PROTOCOL §8, inconsistent)",
                    **found,
                )
            checks.append(
                Check(
                    5,
                    "extends the batch before",
                    True,
                    f"the frontier folds to {before}'s anchored root {prev_root.hex()} "
                    f"({e.first} entries): the tree of {e.size} entries extends it",
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
            6,
            "confirmations and attestations",
            True,
            f"{confirmations} confirmations (latest block {latest}); "
            f"{'unknown' if attested is None else attested} witness attestations",
        )
    )
    if e.version == 2:
        reason = (
            f"the frontier of the log's first {e.first} entries and the {e.size - e.first} "
            f"published leaves give the root anchored for {name} on chain {e.chain_id}"
            + (f", and the frontier gives the root anchored for batch {batch - 1}" if batch else "")
        )
    else:
        reason = (
            f"the {e.size} published leaves give the root anchored for {name} on chain {e.chain_id}"
        )
    return BatchVerification(
        BatchVerdict.VALID,
        reason=reason,
        confirmations=confirmations,
        attestations=attested,
        **base,
        **found,
    )
