"""Verifying one receipt (PROTOCOL §4, §5, §7, §11), in the order and with the numbers of §5.

``verify_receipt`` never raises for a bad receipt: every way a receipt can be wrong is a
verdict. It raises only ``VerificationError`` subclasses when the chain cannot be asked.

Two versions are accepted, checked by the same steps:

* ``"v": 1`` (§4), issued under a version 1 registry: ``proof.index`` is the record's leaf in its
  batch, ``proof.size`` the batch's record count and ``proof.root`` the batch's own root.
* ``"v": 2`` (§11): ``proof.index`` is the record's entry in the whole log, ``proof.size`` the
  log's size after the batch that first included it (``end(b)``, §8) and ``proof.root`` the root
  of the log's tree of that size, which is what ``batchOf`` holds for that batch. A version 2
  receipt may carry ``"checkpoint"``, that batch's C2SP checkpoint (§9): it must be a string.

Nothing in steps 3 and 4 differs: the root recomputed from leaf, index, size and path must be
``proof.root``, and ``batchOf`` must hold that root and size.

Step 4 has two trust roots (§11): the chain (``chain``), and the receipt's checkpoint opened
with the log's and the witnesses' keys (``trust``, ``verifier.checkpoint``). Given both, both
run, the checkpoint first, and both must pass (each compares with ``proof.size`` and
``proof.root``, so passing both means they agree). Given neither, the receipt has no trust
root and is ``unconfirmed``; given ``trust`` but a receipt without a checkpoint, also
``unconfirmed``. Without the chain, step 5's confirmations and attestations cannot be counted:
requiring any is ``unconfirmed``.

Decisions where PROTOCOL §5 leaves room (step 1, "every member has its type"):

* Booleans are not integers: ``"v": true`` or ``"index": false`` is ``malformed``.
* Hashes (path, root, leaf_hash, record.prev) are 64 *lowercase* hex characters, as §2 writes
  them; uppercase is ``malformed``. ``anchor.tx`` is ``0x`` + 64 lowercase hex.
  ``anchor.contract`` is ``0x`` + 40 hex in one case, or mixed case with a valid EIP-55
  checksum (a mistyped checksummed address is ``malformed``, not ``wrong_chain``).
* The record has exactly the §1 members (it is hashed as it stands): an extra member is
  ``malformed``. The receipt envelope, ``proof``, ``anchor`` and ``redaction`` tolerate
  unknown members (they are not hashed, so ignoring them cannot hide a change); the step 1
  check lists the ones it ignored. ``leaf_hash`` and ``redaction`` are not unknown: they
  belong to redacted receipts only and make a receipt with a record ``malformed``.
* ``proof.log`` must be a §1 log name and equal ``record.log``; ``0 <= index < size``,
  ``size`` fits the contract's uint32 and ``batch`` its uint64.
* A path of the wrong length is not malformed: it is a proof that does not fit its
  index and size, so step 3 fails and the verdict is ``altered``.
* ``anchor.block`` and ``anchor.tx`` are shown, not enforced: the chain's own ``blockNumber``
  from ``batchOf`` is what confirmations count from (after a reorg the anchoring transaction
  may sit in another block than the one the receipt names).
* Step 4 compares root *and* size: an inclusion path alone does not bind the tree size (leaf 4
  of 8 has the same path shape as leaf 4 of 7), only the anchored (root, size) pair does.
* A contract that does not answer ``batchOf`` like an AnchorRegistry is ``wrong_chain``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate
from typing import Any

from eth_utils.address import is_checksum_address

from core.canonical import CanonicalizationError, canonical_bytes
from core.merkle import ZERO_ROOT, InvalidProof, leaf_hash, root_from_inclusion_path
from core.records import LOGS, RecordShapeError, check_record_shape, is_hex64, parse_at
from core.verdicts import Check, ReceiptVerification, Verdict
from verifier.chain import ChainReader, log_id
from verifier.checkpoint import CheckpointTrust, check_receipt_checkpoint
from verifier.errors import ContractMismatch, ReceiptMalformed

# Receipt versions this verifier reads (PROTOCOL §4 and §11); records stay version 1 (§1).
RECEIPT_VERSIONS = (1, 2)
MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1
MAX_CHAIN_ID = 2**256 - 1

# Receipts nest a few levels (receipt, record, body, a rule set's projects...). The cap is
# checked before parsing because importing web3 raises Python's recursion limit to 100000
# (py_ecc does), so a deeply nested document would crash the C stack instead of raising.
MAX_NESTING = 64

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_TX_HASH = re.compile(r"0x[0-9a-f]{64}")


# Receipts of one deployment all name one contract: its EIP-55 check (a Keccak-256) is done once.
_is_checksummed = lru_cache(maxsize=256)(is_checksum_address)


class _Malformed(Exception):
    """Step 1 failed; the message says where."""


@dataclass(frozen=True, slots=True)
class _Receipt:
    """A receipt that passed step 1, with its hashes as bytes."""

    canonical: bytes | None  # canonical record bytes; None when redacted
    kept_leaf_hash: bytes | None  # §7 leaf_hash of a redacted receipt
    redaction: Mapping[str, Any] | None
    log: str
    batch: int
    index: int
    size: int
    path: list[bytes]
    root: bytes
    chain_id: int
    contract: str
    tx: str
    block: int
    version: int = 1
    checkpoint: str | None = None  # §11: the batch's C2SP checkpoint text
    ignored: list[str] = field(default_factory=list)


def _object(value: Any, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Malformed(f"{name} must be a JSON object")
    return value


def _members(obj: Mapping[str, Any], name: str, required: tuple[str, ...]) -> None:
    missing = [member for member in required if member not in obj]
    if missing:
        raise _Malformed(f"{name} lacks {', '.join(missing)}")


def _unknown(obj: Mapping[str, Any], name: str, known: set[str]) -> list[str]:
    return [f"{name}.{member}" for member in obj if member not in known]


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"the non-integer number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _integer(value: Any, name: str, low: int, high: int) -> int:
    # bool is a subclass of int in Python, but JSON true is not a number.
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"{name} must be an integer, got {_json_kind(value)}")
    if not low <= value <= high:
        raise _Malformed(f"{name} must be between {low} and {high}, got {value}")
    return value


def _hash(value: Any, name: str) -> bytes:
    if not is_hex64(value):
        raise _Malformed(f"{name} must be 64 lowercase hex characters")
    return bytes.fromhex(value)


def _path(items: list[Any]) -> list[bytes]:
    """``proof.path`` as bytes. This runs for every path hash, so a name is only spelled out
    for a bad element."""
    for index, item in enumerate(items):
        if not is_hex64(item):
            raise _Malformed(f"proof.path[{index}] must be 64 lowercase hex characters")
    return [bytes.fromhex(item) for item in items]


def _step1_parse(receipt: Any) -> _Receipt:
    """PROTOCOL §5 step 1: the receipt parses, ``v`` is 1 or 2 (§11), and every member has its
    type."""
    top = _object(receipt, "the receipt")
    _members(top, "the receipt", ("v",))
    version = _integer(top["v"], "v", 0, MAX_UINT64)
    if version not in RECEIPT_VERSIONS:
        raise _Malformed(
            f"receipt version {version} is not supported; this verifier knows v=1 and v=2"
        )
    _members(top, "the receipt", ("record", "proof", "anchor"))
    known = {"v", "record", "proof", "anchor", "leaf_hash", "redaction"}
    checkpoint: str | None = None
    if version == 2:
        known.add("checkpoint")
        if "checkpoint" in top:
            checkpoint = top["checkpoint"]
            if not isinstance(checkpoint, str):
                raise _Malformed(
                    f"checkpoint must be a string (a C2SP checkpoint, PROTOCOL §11), "
                    f"got {_json_kind(checkpoint)}"
                )
    ignored = _unknown(top, "receipt", known)

    record = top["record"]
    canonical: bytes | None = None
    kept: bytes | None = None
    redaction: Mapping[str, Any] | None = None
    if record is None:  # §7: a redacted record
        _members(top, "a redacted receipt (record null)", ("leaf_hash", "redaction"))
        kept = _hash(top["leaf_hash"], "leaf_hash")
        redaction = _object(top["redaction"], "redaction")
        _members(redaction, "redaction", ("at", "reason"))
        try:
            parse_at(redaction["at"])
        except RecordShapeError as exc:
            raise _Malformed(f"redaction: {exc}") from exc
        if not isinstance(redaction["reason"], str) or not redaction["reason"]:
            raise _Malformed("redaction.reason must be a non-empty string")
        ignored += _unknown(redaction, "redaction", {"at", "reason"})
    else:
        stray = [member for member in ("leaf_hash", "redaction") if member in top]
        if stray:
            raise _Malformed(
                f"{' and '.join(stray)} belong only to a redacted receipt, whose record is null"
            )
        try:
            check_record_shape(record)
            canonical = canonical_bytes(record)
        except (RecordShapeError, CanonicalizationError) as exc:
            raise _Malformed(f"record: {exc}") from exc

    proof = _object(top["proof"], "proof")
    _members(proof, "proof", ("log", "batch", "index", "size", "path", "root"))
    ignored += _unknown(proof, "proof", {"log", "batch", "index", "size", "path", "root"})
    log = proof["log"]
    if not isinstance(log, str) or log not in LOGS:
        raise _Malformed(f"proof.log must be one of {sorted(LOGS)}")
    if record is not None and log != record["log"]:
        raise _Malformed(f"proof.log {log!r} differs from record.log {record['log']!r}")
    batch = _integer(proof["batch"], "proof.batch", 0, MAX_UINT64)
    size = _integer(proof["size"], "proof.size", 1, MAX_UINT32)
    index = _integer(proof["index"], "proof.index", 0, MAX_UINT32)
    if index >= size:
        raise _Malformed(f"proof.index {index} must be below proof.size {size}")
    if not isinstance(proof["path"], list):
        raise _Malformed("proof.path must be a JSON array")
    path = _path(proof["path"])
    root = _hash(proof["root"], "proof.root")

    anchor = _object(top["anchor"], "anchor")
    _members(anchor, "anchor", ("chain_id", "contract", "tx", "block"))
    ignored += _unknown(anchor, "anchor", {"chain_id", "contract", "tx", "block"})
    chain_id = _integer(anchor["chain_id"], "anchor.chain_id", 1, MAX_CHAIN_ID)
    contract = anchor["contract"]
    if not isinstance(contract, str) or not _ADDRESS.fullmatch(contract):
        raise _Malformed("anchor.contract must be 0x followed by 40 hex characters")
    digits = contract[2:]
    if digits not in (digits.lower(), digits.upper()) and not _is_checksummed(contract):
        raise _Malformed(f"anchor.contract {contract} is mixed-case but not an EIP-55 checksum")
    tx = anchor["tx"]
    if not isinstance(tx, str) or not _TX_HASH.fullmatch(tx):
        raise _Malformed("anchor.tx must be 0x followed by 64 lowercase hex characters")
    block = _integer(anchor["block"], "anchor.block", 0, MAX_UINT64)

    return _Receipt(
        canonical=canonical,
        kept_leaf_hash=kept,
        redaction=redaction,
        log=log,
        batch=batch,
        index=index,
        size=size,
        path=path,
        root=root,
        chain_id=chain_id,
        contract=contract,
        tx=tx,
        block=block,
        version=version,
        checkpoint=checkpoint,
        ignored=ignored,
    )


class _Report:
    """Collects the checks in order; ``fail`` and ``finish`` turn them into the result."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.record_hash: str | None = None

    def passed(self, step: int, name: str, detail: str) -> None:
        self.checks.append(Check(step, name, True, detail))

    def fail(self, verdict: Verdict, step: int, name: str, detail: str) -> ReceiptVerification:
        self.checks.append(Check(step, name, False, detail))
        return ReceiptVerification(verdict, self.record_hash, self.checks, detail)

    def finish(self, verdict: Verdict, reason: str) -> ReceiptVerification:
        return ReceiptVerification(verdict, self.record_hash, self.checks, reason)


def _many(count: int, noun: str, plural: str = "") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


@lru_cache(maxsize=1024)  # receipts of one batch share its timestamp
def _utc(timestamp: int) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"timestamp {timestamp}"


def verify_receipt(
    receipt: Any,
    chain: ChainReader | None,
    *,
    min_confirmations: int = 0,
    min_attestations: int = 0,
    trust: CheckpointTrust | None = None,
) -> ReceiptVerification:
    """Verify a parsed receipt against ``chain`` following PROTOCOL §5 (and §7 for redactions),
    and against its checkpoint when ``trust`` is given (§11; see the module doc).

    ``min_confirmations`` (K) and ``min_attestations`` (W) are the optional step 5
    requirements; 0 means "not required". Raises ChainUnreachable/ChainError when the chain
    cannot be asked; every fault of the receipt itself is a verdict.
    """
    if min_confirmations < 0 or min_attestations < 0:
        raise ValueError("required confirmations and attestations cannot be negative")
    report = _Report()

    # Step 1: the receipt parses, v is 1 or 2, and every member has its type.
    try:
        r = _step1_parse(receipt)
    except _Malformed as exc:
        return report.fail(Verdict.MALFORMED, 1, "receipt is well-formed", str(exc))
    redacted = r.canonical is None
    # v1 proves a leaf of one batch's tree; v2 an entry of the whole log's tree (§8, §11).
    place = f"leaf {r.index} of {r.size}" if r.version == 1 else f"entry {r.index} of {r.size}"
    summary = (
        f"v{r.version} {'redacted ' if redacted else ''}receipt: log {r.log!r}, batch {r.batch}, "
        f"{place}, chain {r.chain_id}"
    )
    if r.checkpoint is not None and trust is None:
        summary += "; its checkpoint is not read (no log key given)"
    if r.ignored:
        summary += f"; ignored unknown members: {', '.join(r.ignored)}"
    report.passed(1, "receipt is well-formed", summary)

    # Step 2: leaf_hash(record) = SHA-256(0x00 || canonical(record)); §7: the kept leaf hash.
    if r.canonical is not None:
        leaf = leaf_hash(r.canonical)
        how = f"SHA-256(0x00 || {len(r.canonical)} canonical bytes of the record)"
    else:
        assert r.kept_leaf_hash is not None and r.redaction is not None
        leaf = r.kept_leaf_hash
        how = (
            f"kept leaf hash of a record erased at {r.redaction['at']} "
            f"({r.redaction['reason']}); its content cannot be checked"
        )
    report.record_hash = leaf.hex()
    report.passed(2, "record hash", f"{leaf.hex()}: {how}")

    # Step 3: the root recomputed from index, size, leaf hash and path equals proof.root.
    try:
        computed = root_from_inclusion_path(leaf, r.index, r.size, r.path)
    except InvalidProof as exc:
        return report.fail(
            Verdict.ALTERED,
            3,
            "inclusion proof",
            f"a path of {_many(len(r.path), 'hash', 'hashes')} does not fit {place}: {exc}",
        )
    if computed != r.root:
        return report.fail(
            Verdict.ALTERED,
            3,
            "inclusion proof",
            f"recomputed root {computed.hex()} differs from proof.root {r.root.hex()}: "
            "the record or its proof is not what was anchored",
        )
    report.passed(
        3,
        "inclusion proof",
        f"recomputed root {computed.hex()} from {_many(len(r.path), 'path hash', 'path hashes')} "
        "equals proof.root",
    )

    # Step 4, offline (§11): the batch's checkpoint, signed by the log and cosigned.
    if chain is None and trust is None:
        return report.fail(
            Verdict.UNCONFIRMED,
            4,
            "trust root",
            "neither a chain endpoint nor the log's key was given: nothing says the root was "
            "anchored (PROTOCOL §11)",
        )
    if trust is not None:
        if r.checkpoint is None:
            return report.fail(
                Verdict.UNCONFIRMED,
                4,
                "checkpoint",
                "the receipt carries no checkpoint to check with the log's key",
            )
        checked = check_receipt_checkpoint(
            r.checkpoint, log=r.log, size=r.size, root=r.root, trust=trust
        )
        for detail in checked.details[:-1] if checked.verdict else checked.details:
            report.passed(4, "checkpoint", detail)
        if checked.verdict is not None:
            return report.fail(checked.verdict, 4, "checkpoint", checked.details[-1])
    if chain is None:
        if min_confirmations or min_attestations:
            return report.fail(
                Verdict.UNCONFIRMED,
                5,
                "confirmations",
                "confirmations and on-chain attestations are counted on chain, and no chain "
                "endpoint was given",
            )
        return _finish_offline(report, r)
    return _step4_on_chain(report, r, chain, min_confirmations, min_attestations)


def _finish_offline(report: _Report, r: _Receipt) -> ReceiptVerification:
    where = f"batch {r.batch} of log {r.log!r}, as its signed checkpoint says"
    if r.redaction is not None:
        return report.finish(
            Verdict.REDACTED,
            f"the record's content was erased ({r.redaction['reason']}); its leaf hash is in "
            f"{where}",
        )
    return report.finish(
        Verdict.VALID,
        f"the record is entry {r.index} of log {r.log!r}, in its tree of {r.size} entries: "
        f"{where} (the chain was not asked)",
    )


def _step4_on_chain(
    report: _Report,
    r: _Receipt,
    chain: ChainReader,
    min_confirmations: int,
    min_attestations: int,
) -> ReceiptVerification:
    # Step 4: batchOf(keccak256(log), batch) on anchor.contract, on chain anchor.chain_id.
    endpoint_chain = chain.chain_id()
    if endpoint_chain != r.chain_id:
        return report.fail(
            Verdict.WRONG_CHAIN,
            4,
            "chain id",
            f"the endpoint serves chain {endpoint_chain}, the receipt names chain {r.chain_id}",
        )
    report.passed(4, "chain id", f"the endpoint serves chain {endpoint_chain}, as the receipt says")
    if not chain.has_code(r.contract):
        return report.fail(
            Verdict.WRONG_CHAIN,
            4,
            "contract",
            f"no contract is deployed at {r.contract} on chain {r.chain_id} (a chain that was "
            "reset and re-anchored leaves old receipts naming the old registry: ask the service "
            "for a new receipt; the inspectors' audit lists ledger.reanchored records)",
        )
    report.passed(4, "contract", f"a contract is deployed at {r.contract}")

    lid = log_id(r.log)
    try:
        on_chain = chain.batch_of(r.contract, lid, r.batch)
    except ContractMismatch as exc:
        return report.fail(Verdict.WRONG_CHAIN, 4, "contract", str(exc))
    chain_root, chain_size, anchored_at, anchored_block = on_chain
    batch_name = f"batch {r.batch} of log {r.log!r}"
    if chain_root == ZERO_ROOT:
        return report.fail(
            Verdict.NOT_ANCHORED,
            4,
            "anchored root and size",
            f"{batch_name} is not anchored at {r.contract} (batchOf returns a zero root)",
        )
    if chain_root != r.root or chain_size != r.size:
        return report.fail(
            Verdict.ROOT_MISMATCH,
            4,
            "anchored root and size",
            f"on chain {batch_name} has root {chain_root.hex()} and size {chain_size}; "
            f"the receipt claims root {r.root.hex()} and size {r.size}",
        )
    where = f"block {anchored_block}"
    if anchored_block != r.block:
        where += f" (the receipt says block {r.block})"
    report.passed(
        4,
        "anchored root and size",
        f"{batch_name}: root {chain_root.hex()}, size {chain_size}, anchored in {where} "
        f"at {_utc(anchored_at)}",
    )

    # Step 5 (optional): at least K confirmations and at least W witness attestations.
    latest = chain.block_number()
    confirmations = max(0, latest - anchored_block + 1)
    counted = f"{_many(confirmations, 'confirmation')} (block {anchored_block}, latest {latest})"
    if confirmations < min_confirmations:
        return report.fail(
            Verdict.UNCONFIRMED, 5, "confirmations", f"{counted}; {min_confirmations} required"
        )
    report.passed(
        5,
        "confirmations",
        f"{counted}; {min_confirmations or 'none'} required",
    )
    try:
        attested = chain.attestations(r.contract, lid, r.batch)
    except ContractMismatch as exc:
        if min_attestations:
            return report.fail(Verdict.WRONG_CHAIN, 5, "attestations", str(exc))
        report.passed(5, "attestations", f"none required; the contract did not say: {exc}")
    else:
        if attested < min_attestations:
            return report.fail(
                Verdict.UNCONFIRMED,
                5,
                "attestations",
                f"{_many(attested, 'witness attestation')}; {min_attestations} required",
            )
        report.passed(
            5,
            "attestations",
            f"{_many(attested, 'witness attestation')}; {min_attestations or 'none'} required",
        )

    anchored = f"{batch_name}, anchored on chain {r.chain_id} in block {anchored_block}"
    if r.redaction is not None:
        return report.finish(
            Verdict.REDACTED,
            f"the record's content was erased ({r.redaction['reason']}); its leaf hash is in "
            f"{anchored}",
        )
    if r.version == 1:
        return report.finish(Verdict.VALID, f"the record is leaf {r.index} of {anchored}")
    return report.finish(
        Verdict.VALID,
        f"the record is entry {r.index} of log {r.log!r}, in its tree of {r.size} entries "
        f"anchored as batch {r.batch} on chain {r.chain_id} in block {anchored_block}",
    )


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ReceiptMalformed(f"duplicate member {key!r}: a receipt must mean one thing")
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> Any:
    raise ReceiptMalformed(f"{name} is not a JSON number")


def _nesting(text: str) -> int:
    """How deep arrays and objects nest in ``text``, brackets inside strings not counted."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub('""', text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def receipt_from_json(text: str | bytes) -> Any:
    """Parse receipt text as strict JSON (RFC 8259): UTF-8, no NaN/Infinity, no duplicate keys.

    A leading byte order mark is ignored (RFC 8259 §8.1 allows it; Windows editors add one).
    Raises ReceiptMalformed, which is the ``malformed`` verdict of step 1.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReceiptMalformed(f"the receipt is not UTF-8 text: {exc}") from exc
    text = text.removeprefix("\ufeff")
    if _nesting(text) > MAX_NESTING:
        raise ReceiptMalformed(f"the receipt nests deeper than {MAX_NESTING} levels")
    try:
        return json.loads(
            text, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant
        )
    except ReceiptMalformed:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise ReceiptMalformed(f"the receipt is not JSON: {exc}") from exc


def verify_receipt_json(
    text: str | bytes,
    chain: ChainReader | None,
    *,
    min_confirmations: int = 0,
    min_attestations: int = 0,
    trust: CheckpointTrust | None = None,
) -> ReceiptVerification:
    """``receipt_from_json`` then ``verify_receipt``; text that is not strict JSON is malformed."""
    try:
        receipt = receipt_from_json(text)
    except ReceiptMalformed as exc:
        return _Report().fail(Verdict.MALFORMED, 1, "receipt is well-formed", str(exc))
    return verify_receipt(
        receipt,
        chain,
        min_confirmations=min_confirmations,
        min_attestations=min_attestations,
        trust=trust,
    )
