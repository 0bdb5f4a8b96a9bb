"""Monitoring a log (PROTOCOL §8, §9, §12): ``civic-verify monitor`` follows a log from what the
service publishes, recomputes every anchored root from the entries themselves, checks
consistency between consecutive checkpoints and, given a chain, each checkpoint against
``batchOf``.

What it reads, over HTTP (the service is trusted for nothing but handing it over):

* ``GET /api/v1/logs/{log}/checkpoints/{b}`` for b = 0, 1, … until the service has no more:
  each anchored batch's checkpoint (a C2SP signed note). With the log's verifier key its
  signature must verify (``bad_signature`` otherwise); sizes must grow;
* ``GET /api/v1/logs/{log}/entries?start=&end=`` in pages of 1,000 up to the last checkpoint's
  size: each entry's leaf hash must be that of its record (``altered``, naming the index),
  or, for a redacted record, is taken as given;
* ``GET /api/v1/logs/{log}/consistency?from=&to=`` between consecutive checkpoints: the proof
  must verify between their roots.

The tree is recomputed once over all entries keeping only its right edge (``core.tlog.Frontier``:
O(n) hashing, O(log n) memory). Where the root of the first N entries is not checkpoint b's root, or a consistency
proof fails, the verdict is ``inconsistent`` naming batch b: the log shown is not the log
that was checkpointed. With ``--rpc``, ``batchOf(b)`` must hold each checkpoint's root and size
(``root_mismatch`` otherwise, ``not_anchored`` when it holds nothing).

Beside the tree, the map of trail heads (PROTOCOL §10) is replayed from the entries
(``MapReplay``): every ``ledger.map_head`` must commit to the map its entries give, else
``map_head_mismatch`` naming the batch and the entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from contracts.registry import log_id
from core import tlog, trailmap
from core.canonical import CanonicalizationError, canonical_bytes
from core.checkpoint import Checkpoint, MalformedCheckpoint, open_checkpoint, parse_checkpoint
from core.merkle import ZERO_ROOT, leaf_hash
from core.note import Ed25519Verifier, NoteError, split_note
from core.records import LOGS, MAP_HEAD_TYPE, MAP_SUBJECT, is_hex64
from core.verdicts import MapVerdict, Verdict
from verifier.chain import ChainReader
from verifier.errors import VerificationError
from verifier.fetch import ServiceClient
from verifier.headmap import HeadMap

PAGE = 1000
MAX_BATCHES = 10_000_000


class MonitorUnavailable(VerificationError):
    """What the monitor needs could not be had from the service."""


@dataclass
class MonitorResult:
    """The monitor's verdict on one log: ``valid`` or the first problem, naming its batch
    (and entry, for an altered one)."""

    log: str
    verdict: Verdict | MapVerdict = Verdict.VALID
    detail: str = ""
    batch: int | None = None
    index: int | None = None
    batches: int = 0
    entries: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "batch": self.batch,
            "index": self.index,
            "batches": self.batches,
            "entries": self.entries,
            "notes": self.notes,
        }


def _service(api: str, timeout: float, transport: httpx.BaseTransport | None) -> ServiceClient:
    return ServiceClient(api, MonitorUnavailable, timeout=timeout, transport=transport)


def _json(service: ServiceClient, path: str, what: str, params: dict[str, int]) -> Any:
    """The service's strict JSON answer at ``path``; MonitorUnavailable for a 404 too."""
    url, status, answer = service.get_json(path, what, params=params)
    if status == 404:
        raise MonitorUnavailable(f"{url} answered 404, not {what}")
    return answer


def _fetch_checkpoint(
    service: ServiceClient, log: str, batch: int, log_key: Ed25519Verifier | None
) -> Checkpoint | None:
    """Checkpoint ``batch`` of the log (None when the service has none), its signature checked
    under ``log_key`` when given. Raises NoteError, MalformedCheckpoint."""
    _url, response = service.get(f"/api/v1/logs/{log}/checkpoints/{batch}", "a checkpoint")
    if response is None:
        return None
    if log_key is not None:
        return open_checkpoint(response.text, log_key).checkpoint
    text, _signatures = split_note(response.text)
    return parse_checkpoint(text)


def _consistency_proof(service: ServiceClient, log: str, old: int, new: int) -> list[bytes]:
    """The service's consistency proof from size ``old`` to ``new`` of the log."""
    answer = _json(service, f"/api/v1/logs/{log}/consistency", "a proof", {"from": old, "to": new})
    path = answer.get("path") if isinstance(answer, dict) else None
    if not isinstance(path, list) or not all(isinstance(h, str) and is_hex64(h) for h in path):
        raise MonitorUnavailable(f"consistency {old}..{new}: not a proof")
    return [bytes.fromhex(h) for h in path]


def monitor_log(
    api: str,
    log: str,
    *,
    log_key: Ed25519Verifier | None = None,
    chain: ChainReader | None = None,
    contract: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    progress: Callable[[int], None] | None = None,
) -> MonitorResult:
    """Follow ``log`` of the service at ``api`` from its first checkpoint to its last."""
    if log not in LOGS:
        raise MonitorUnavailable(f"unknown log {log!r}; logs are {', '.join(sorted(LOGS))}")
    result = MonitorResult(log)
    service = _service(api, timeout, transport)
    try:
        checkpoints = _checkpoints(service, log, log_key, result)
        if result.verdict is not Verdict.VALID:
            return result
        if not checkpoints:
            result.notes.append("the log has no anchored batch yet")
            return result
        if chain is not None:
            _against_chain(service, chain, contract, log, checkpoints, result)
            if result.verdict is not Verdict.VALID:
                return result
        _recompute(service, log, checkpoints, result, progress)
        if result.verdict is not Verdict.VALID:
            return result
        _consistency(service, log, checkpoints, result)
        return result
    finally:
        service.close()


def _checkpoints(
    service: ServiceClient, log: str, log_key: Ed25519Verifier | None, result: MonitorResult
) -> list[Checkpoint]:
    found: list[Checkpoint] = []
    for batch in range(MAX_BATCHES):
        try:
            checkpoint = _fetch_checkpoint(service, log, batch, log_key)
        except NoteError as exc:
            return _fail(result, Verdict.BAD_SIGNATURE, batch, f"checkpoint {batch}: {exc}")
        except MalformedCheckpoint as exc:
            return _fail(result, Verdict.MALFORMED, batch, f"checkpoint {batch}: {exc}")
        if checkpoint is None:
            break
        if found and checkpoint.size <= found[-1].size:
            return _fail(
                result,
                Verdict.INCONSISTENT,
                batch,
                f"checkpoint {batch} has size {checkpoint.size}, not more than checkpoint "
                f"{batch - 1}'s {found[-1].size}: a log only grows",
            )
        if found and checkpoint.origin != found[-1].origin:
            return _fail(result, Verdict.WRONG_CHAIN, batch, "the checkpoints' origins differ")
        found.append(checkpoint)
    result.batches = len(found)
    return found


def _fail(
    result: MonitorResult,
    verdict: Verdict | MapVerdict,
    batch: int | None,
    detail: str,
    index: int | None = None,
) -> list[Checkpoint]:
    result.verdict, result.batch, result.detail, result.index = verdict, batch, detail, index
    return []


def _against_chain(
    service: ServiceClient,
    chain: ChainReader,
    contract: str | None,
    log: str,
    checkpoints: list[Checkpoint],
    result: MonitorResult,
) -> None:
    if contract is None:
        export = _json(service, f"/api/v1/anchors/{log}/0", "a batch", {})
        contract = export.get("contract") if isinstance(export, dict) else None
        if not isinstance(contract, str):
            raise MonitorUnavailable("the service names no registry for the log's batches")
    for batch, checkpoint in enumerate(checkpoints):
        root, size, _at, _block = chain.batch_of(contract, log_id(log), batch)
        if root == ZERO_ROOT:
            _fail(result, Verdict.NOT_ANCHORED, batch, f"batch {batch} is not on chain")
            return
        if (root, size) != (checkpoint.root, checkpoint.size):
            _fail(
                result,
                Verdict.ROOT_MISMATCH,
                batch,
                f"checkpoint {batch} says size {checkpoint.size} root {checkpoint.root.hex()}, "
                f"the chain holds size {size} root {root.hex()}",
            )
            return


def _recompute(
    service: ServiceClient,
    log: str,
    checkpoints: list[Checkpoint],
    result: MonitorResult,
    progress: Callable[[int], None] | None,
) -> None:
    """Append every entry to the tree, keeping only its right edge, and compare the root at
    each checkpoint's size."""
    tree = tlog.Frontier()
    heads = MapReplay()  # PROTOCOL §10: the map of trail heads, replayed beside the tree
    end = checkpoints[-1].size
    pending = list(enumerate(checkpoints))
    while tree.size < end:
        start, stop = tree.size, min(end, tree.size + PAGE)
        answer = _json(
            service, f"/api/v1/logs/{log}/entries", "entries", {"start": start, "end": stop}
        )
        entries = answer.get("entries") if isinstance(answer, dict) else None
        if not isinstance(entries, list) or len(entries) != stop - start:
            raise MonitorUnavailable(f"entries {start}..{stop - 1}: not the entries asked for")
        leaves = []
        for offset, entry in enumerate(entries):
            leaf = _leaf(entry, start + offset, result)
            if leaf is None:
                return
            leaves.append(leaf)
        for offset, leaf in enumerate(leaves):
            batch_here = pending[0][0] if pending else None
            heads.step(entries[offset], tree.size, batch_here)
            tree.append(leaf)
            if pending and tree.size == pending[0][1].size:
                batch, checkpoint = pending.pop(0)
                root = tree.root()
                if root != checkpoint.root:
                    _fail(
                        result,
                        Verdict.INCONSISTENT,
                        batch,
                        f"the first {tree.size} entries give root {root.hex()}, checkpoint "
                        f"{batch} says {checkpoint.root.hex()}: the entries shown are not the "
                        "log that was checkpointed",
                    )
                    return
                if heads.mismatch is not None:  # in entries that are the checkpointed ones
                    _fail(result, MapVerdict.MAP_HEAD_MISMATCH, *heads.mismatch)
                    return
        result.entries = tree.size
        if progress is not None:
            progress(tree.size)
    result.notes += heads.notes


class MapReplay:
    """The map of trail heads (PROTOCOL §10) replayed from the entries in order: each
    ``ledger.map_head`` record must commit to the map of every entry before it (its
    ``map_root`` and ``trails``), at its own ``index``, in the batch that holds it; else the
    verdict is ``map_head_mismatch`` naming the batch and the entry. The heads that moved are
    applied once per map head (``verifier.headmap.HeadMap``). A redacted entry hides its
    subject, so the map is not replayed past it (a note says so)."""

    def __init__(self) -> None:
        self.map = HeadMap()
        self.changes: dict[bytes, bytes] = {}
        self.blind_from: int | None = None  # the first redacted entry
        self.notes: list[str] = []
        self.mismatch: tuple[int | None, str, int] | None = None

    def step(self, entry: Any, index: int, batch: int | None) -> None:
        """Take the entry at ``index`` (in ``batch``). A map head that fails sets
        ``mismatch`` (batch, detail, index), reported once its batch's root is found sound."""
        record = entry.get("record")
        if self.blind_from is not None:
            return
        if not isinstance(record, dict):  # redacted: whose trail moved is not shown
            self.blind_from = index
            self.notes.append(
                f"entry {index} is redacted (its subject is not shown): the map of trail heads "
                "is not replayed from there"
            )
            return
        subject, seq = record.get("subject"), record.get("seq")
        if subject != MAP_SUBJECT:
            if isinstance(subject, str) and isinstance(seq, int) and 0 <= seq < 2**64:
                leaf = bytes.fromhex(entry["leaf_hash"])
                self.changes[trailmap.key_of(subject)] = trailmap.value_of(seq, leaf)
            return
        if record.get("type") != MAP_HEAD_TYPE:
            return
        root = self.map.update(self.changes)
        self.changes = {}
        given = record.get("body")
        body: dict[str, Any] = given if isinstance(given, dict) else {}
        expected = {"map_root": root.hex(), "trails": self.map.trails, "index": index}
        if batch is not None:
            expected["batch"] = batch
        wrong = [
            f"{name} is {body.get(name)!r}, the entries give {want!r}"
            for name, want in expected.items()
            if body.get(name) != want
        ]
        if wrong and self.mismatch is None:
            self.mismatch = (
                batch,
                f"the map head at entry {index} (batch {batch}) does not commit to the map of "
                "trail heads its entries give: " + "; ".join(wrong),
                index,
            )


def _leaf(entry: Any, index: int, result: MonitorResult) -> bytes | None:
    if (
        not isinstance(entry, dict)
        or entry.get("index") != index
        or not isinstance(entry.get("leaf_hash"), str)
        or not is_hex64(entry["leaf_hash"])
    ):
        _fail(result, Verdict.MALFORMED, None, f"entry {index} is not an entry", index)
        return None
    given = bytes.fromhex(entry["leaf_hash"])
    record = entry.get("record")
    if record is None:  # redacted (PROTOCOL §7): the leaf hash is what was anchored
        return given
    try:
        computed = leaf_hash(canonical_bytes(record))
    except CanonicalizationError as exc:
        _fail(result, Verdict.MALFORMED, None, f"entry {index}: {exc}", index)
        return None
    if computed != given:
        _fail(
            result,
            Verdict.ALTERED,
            None,
            f"entry {index}'s record hashes to {computed.hex()}, not the leaf hash "
            f"{given.hex()} the service lists with it",
            index,
        )
        return None
    return given


def _consistency(
    service: ServiceClient, log: str, checkpoints: list[Checkpoint], result: MonitorResult
) -> None:
    for batch in range(1, len(checkpoints)):
        old, new = checkpoints[batch - 1], checkpoints[batch]
        proof = _consistency_proof(service, log, old.size, new.size)
        if not tlog.verify_consistency(old.size, new.size, old.root, new.root, proof):
            _fail(
                result,
                Verdict.INCONSISTENT,
                batch,
                f"the consistency proof from checkpoint {batch - 1} (size {old.size}) to "
                f"checkpoint {batch} (size {new.size}) does not verify",
            )
            return


@dataclass
class ConsistencyResult:
    """``civic-verify consistency``: whether the log at size ``new`` extends the log at size
    ``old`` (PROTOCOL §8), both sizes those of anchored checkpoints."""

    log: str
    old: int
    new: int
    verdict: Verdict = Verdict.VALID
    detail: str = ""
    old_batch: int | None = None
    new_batch: int | None = None
    old_root: str | None = None
    new_root: str | None = None
    signatures_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "from": self.old,
            "to": self.new,
            "verdict": self.verdict.value,
            "detail": self.detail,
            "from_batch": self.old_batch,
            "to_batch": self.new_batch,
            "from_root": self.old_root,
            "to_root": self.new_root,
            "signatures_checked": self.signatures_checked,
        }


def check_consistency(
    api: str,
    log: str,
    old: int,
    new: int,
    *,
    log_key: Ed25519Verifier | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> ConsistencyResult:
    """Check the service's consistency proof from size ``old`` to size ``new`` of ``log``.

    1. Find the checkpoints of sizes ``old`` and ``new`` by walking
       ``/api/v1/logs/{log}/checkpoints/{b}`` (MonitorUnavailable when a size is none of them);
       with ``log_key`` each must be signed by the log (``bad_signature`` otherwise).
    2. Fetch ``/api/v1/logs/{log}/consistency?from=&to=`` and verify it between the two roots
       (RFC 9162 §2.1.4.2): ``valid``, else ``inconsistent``.
    """
    if log not in LOGS:
        raise MonitorUnavailable(f"unknown log {log!r}; logs are {', '.join(sorted(LOGS))}")
    if not 0 < old <= new:
        raise MonitorUnavailable(f"need 1 <= from <= to; got from={old}, to={new}")
    result = ConsistencyResult(log, old, new, signatures_checked=log_key is not None)
    service = _service(api, timeout, transport)
    try:
        found: dict[int, tuple[int, Checkpoint]] = {}
        for batch in range(MAX_BATCHES):
            try:
                checkpoint = _fetch_checkpoint(service, log, batch, log_key)
            except NoteError as exc:
                result.verdict, result.detail = Verdict.BAD_SIGNATURE, f"checkpoint {batch}: {exc}"
                return result
            except MalformedCheckpoint as exc:
                result.verdict, result.detail = Verdict.MALFORMED, f"checkpoint {batch}: {exc}"
                return result
            if checkpoint is None:
                break
            if checkpoint.size in (old, new):
                found.setdefault(checkpoint.size, (batch, checkpoint))
            if checkpoint.size >= new:
                break
        missing = [size for size in (old, new) if size not in found]
        if missing:
            raise MonitorUnavailable(
                f"no checkpoint of log {log} has size {missing[0]}: consistency is checked "
                "between anchored sizes"
            )
        (old_batch, old_checkpoint), (new_batch, new_checkpoint) = found[old], found[new]
        result.old_batch, result.new_batch = old_batch, new_batch
        result.old_root, result.new_root = old_checkpoint.root.hex(), new_checkpoint.root.hex()
        proof = _consistency_proof(service, log, old, new)
        if not tlog.verify_consistency(old, new, old_checkpoint.root, new_checkpoint.root, proof):
            result.verdict = Verdict.INCONSISTENT
            result.detail = (
                f"the consistency proof from checkpoint {old_batch} (size {old}) to checkpoint "
                f"{new_batch} (size {new}) does not verify between their roots"
            )
        return result
    finally:
        service.close()
