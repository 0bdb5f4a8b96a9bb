"""Receipts built with the real core, and an in-memory ChainReader for unit tests.

The fake stands in for a chain only in these unit tests (CONVENTIONS §9); the end-to-end
suite runs the same verifier against a real node.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core import tlog
from core.merkle import all_inclusion_paths
from core.records import SealedRecord, build_record
from verifier.chain import log_id
from verifier.errors import ChainUnreachable, ContractMismatch

CHAIN_ID = 1337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # EIP-55 checksummed
TX = "0x" + "ab" * 32
BATCH = 3
ANCHOR_BLOCK = 100
ANCHORED_AT = 1_795_771_800  # 2026-11-27 09:30 UTC
LATEST_BLOCK = 120  # so the anchor has 21 confirmations
ATTESTATIONS = 2
START = datetime(2026, 11, 27, 9, 30, 0, 123000, tzinfo=UTC)
SUBJECT = "SG-7K2M-9QXD-4HTB"  # a tracking code, PROTOCOL-NOTES §1
OTHER_SUBJECT = "SG-3N8P-6RWT-2JCV"
REDACTION = {"at": "2027-01-05T08:00:00.000Z", "reason": "删除请求 (PIPL art. 47)"}


def counter_salt(start: int = 0) -> Any:
    """Distinct, deterministic salts (the service uses secrets.token_bytes)."""
    state = {"n": start}

    def salt(n: int) -> bytes:
        state["n"] += 1
        return hashlib.sha256(b"salt %d" % state["n"]).digest()[:n]

    return salt


def suggestion_batch(size: int = 7, log: str = "suggestions") -> list[SealedRecord]:
    """``size`` records of two interleaved trails (JY-…-A and JY-…-B), each linked by prev."""
    salt = counter_salt()
    last: dict[str, SealedRecord] = {}
    seqs: dict[str, int] = {}
    records = []
    for i in range(size):
        subject = "JY-2026-00012" + "AB"[i % 2]
        seq = seqs.get(subject, 0)
        previous = last.get(subject)
        sealed = build_record(
            log=log,
            type="suggestion.submitted" if seq == 0 else "suggestion.transition",
            subject=subject,
            seq=seq,
            prev=previous.leaf_hash if previous else None,
            actor={"role": "citizen", "id": f"p-{i:04x}"},
            body={"title": f"关于修缮幸福路人行道的建议（{i}）", "category": "urban_construction"},
            now=START + timedelta(seconds=i),
            salt=salt,
        )
        records.append(sealed)
        last[subject] = sealed
        seqs[subject] = seq + 1
    return records


@dataclass
class Batch:
    """A sealed batch: its records, root and every inclusion path, as the service computes them."""

    records: list[SealedRecord]
    root: bytes
    paths: list[list[bytes]]
    number: int = BATCH

    @classmethod
    def of(cls, records: list[SealedRecord], number: int = BATCH) -> Batch:
        root, paths = all_inclusion_paths([r.leaf_hash for r in records])
        return cls(records, root, paths, number)

    @property
    def log(self) -> str:
        return str(self.records[0].record["log"])

    def receipt(self, index: int) -> dict[str, Any]:
        """The PROTOCOL §4 receipt of record ``index``, as plain JSON values."""
        return {
            "v": 1,
            "record": copy.deepcopy(dict(self.records[index].record)),
            "proof": {
                "log": self.log,
                "batch": self.number,
                "index": index,
                "size": len(self.records),
                "path": [h.hex() for h in self.paths[index]],
                "root": self.root.hex(),
            },
            "anchor": {"chain_id": CHAIN_ID, "contract": CONTRACT, "tx": TX, "block": ANCHOR_BLOCK},
        }

    def redacted_receipt(self, index: int) -> dict[str, Any]:
        """The PROTOCOL §7 receipt of record ``index`` after its content was erased."""
        receipt = self.receipt(index)
        receipt["record"] = None
        receipt["leaf_hash"] = self.records[index].record_hash
        receipt["redaction"] = dict(REDACTION)
        return receipt


@dataclass
class SealedLog:
    """A whole log sealed into batches as a version 2 service seals it (PROTOCOL §8): the anchor
    of batch b carries the root of the log's tree of ``end(b)`` entries and ``size = end(b)``;
    receipts prove an entry's index in that tree (§11); exports carry the frontier of the tree
    before the batch and the batch's own leaves. Built with ``core.tlog`` from a node table."""

    records: list[SealedRecord]
    ends: list[int]  # end(b) for each batch b, growing
    nodes: dict[tlog.Node, bytes]

    @classmethod
    def of(cls, records: list[SealedRecord], sizes: Sequence[int]) -> SealedLog:
        """``records`` sealed into batches of ``sizes`` records, in order."""
        if sum(sizes) != len(records) or not all(size > 0 for size in sizes):
            raise ValueError("the batch sizes must be positive and cover every record")
        appended = tlog.append_leaves(0, [r.leaf_hash for r in records], lambda nodes: [])
        ends = [sum(sizes[: b + 1]) for b in range(len(sizes))]
        return cls(list(records), ends, dict(appended.nodes))

    @property
    def log(self) -> str:
        return str(self.records[0].record["log"])

    def read(self, nodes: Sequence[tlog.Node]) -> list[bytes]:
        return [self.nodes[node] for node in nodes]

    def first(self, batch: int) -> int:
        return self.ends[batch - 1] if batch else 0

    def root(self, batch: int) -> bytes:
        return tlog.tree_root(self.ends[batch], self.read)

    def batch_of(self, index: int) -> int:
        """The batch that first included entry ``index``."""
        return next(b for b, end in enumerate(self.ends) if index < end)

    def receipt(self, index: int) -> dict[str, Any]:
        """The PROTOCOL §11 receipt of entry ``index``: proven in the tree of its batch's end."""
        batch = self.batch_of(index)
        size = self.ends[batch]
        return {
            "v": 2,
            "record": copy.deepcopy(dict(self.records[index].record)),
            "proof": {
                "log": self.log,
                "batch": batch,
                "index": index,
                "size": size,
                "path": [h.hex() for h in tlog.inclusion_proof(index, size, self.read)],
                "root": self.root(batch).hex(),
            },
            "anchor": {"chain_id": CHAIN_ID, "contract": CONTRACT, "tx": TX, "block": ANCHOR_BLOCK},
        }

    def redacted_receipt(self, index: int) -> dict[str, Any]:
        """The receipt of entry ``index`` after its content was erased (PROTOCOL §7)."""
        receipt = self.receipt(index)
        receipt["record"] = None
        receipt["leaf_hash"] = self.records[index].record_hash
        receipt["redaction"] = dict(REDACTION)
        return receipt

    def export(self, batch: int) -> dict[str, Any]:
        """``GET /api/v1/anchors/{log}/{batch}``, version 2."""
        first, end = self.first(batch), self.ends[batch]
        return {
            "v": 2,
            "log": self.log,
            "batch": batch,
            "root": self.root(batch).hex(),
            "size": end,
            "first": first,
            "frontier": [h.hex() for h in self.read(tlog.frontier(first))],
            "tx": TX,
            "block": ANCHOR_BLOCK,
            "chain_id": CHAIN_ID,
            "contract": CONTRACT,
            "leaf_hashes": [r.record_hash for r in self.records[first:end]],
        }


@dataclass
class FakeChain:
    """An in-memory ChainReader: what a node would answer for one AnchorRegistry."""

    id: int = CHAIN_ID
    code_at: set[str] = field(default_factory=lambda: {CONTRACT.lower()})
    batches: dict[tuple[str, bytes, int], tuple[bytes, int, int, int]] = field(default_factory=dict)
    latest: int = LATEST_BLOCK
    attested: dict[tuple[str, bytes, int], int] = field(default_factory=dict)
    unreachable: bool = False
    not_a_registry: bool = False
    no_attestations_view: bool = False
    calls: list[str] = field(default_factory=list)

    def anchor(
        self, batch: Batch, *, root: bytes | None = None, size: int | None = None
    ) -> FakeChain:
        """Batch ``batch`` anchored as version 1 did: its own root and record count."""
        return self.anchor_root(
            batch.log,
            batch.number,
            batch.root if root is None else root,
            len(batch.records) if size is None else size,
        )

    def anchor_log(self, log: SealedLog, *, batches: Sequence[int] | None = None) -> FakeChain:
        """The batches of ``log`` (all by default) anchored as version 2 does (PROTOCOL §8)."""
        for b in range(len(log.ends)) if batches is None else batches:
            self.anchor_root(log.log, b, log.root(b), log.ends[b])
        return self

    def anchor_root(self, log: str, number: int, root: bytes, size: int) -> FakeChain:
        """``anchor(keccak256(log), number, root, size)`` on the registry at CONTRACT."""
        key = (CONTRACT.lower(), log_id(log), number)
        self.batches[key] = (root, size, ANCHORED_AT, ANCHOR_BLOCK)
        self.attested[key] = ATTESTATIONS
        return self

    def _ask(self, call: str) -> None:
        self.calls.append(call)
        if self.unreachable:
            raise ChainUnreachable("cannot reach http://fake (test)")

    def chain_id(self) -> int:
        self._ask("chain_id")
        return self.id

    def has_code(self, address: str) -> bool:
        self._ask("has_code")
        return address.lower() in self.code_at

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        self._ask("batch_of")
        if self.not_a_registry:
            raise ContractMismatch("batchOf: the contract does not answer as an AnchorRegistry")
        return self.batches.get((contract.lower(), log_id, batch), (bytes(32), 0, 0, 0))

    def block_number(self) -> int:
        self._ask("block_number")
        return self.latest

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        self._ask("attestations")
        if self.no_attestations_view:
            raise ContractMismatch("attestations: execution reverted")
        return self.attested.get((contract.lower(), log_id, batch), 0)


_NEXT = object()  # "as the service would": seq and prev follow the record before


class TrailWriter:
    """Writes one trail with the real core, as the service does: seq and prev follow the record
    before, one minute apart, fresh salts. ``seq``/``prev``/``at``/``log``/``subject`` overrides
    make the bad trails that a faulty service could still anchor honestly."""

    def __init__(
        self, subject: str = SUBJECT, *, log: str = "suggestions", salt_from: int = 1000
    ) -> None:
        self.subject = subject
        self.log = log
        self.records: list[SealedRecord] = []
        self._salt = counter_salt(salt_from)

    def append(
        self,
        type: str,
        role: str,
        body: dict[str, Any],
        *,
        seq: Any = _NEXT,
        prev: Any = _NEXT,
        at: datetime | None = None,
        log: str | None = None,
        subject: str | None = None,
        keep: bool = True,
    ) -> SealedRecord:
        """Write the next record; ``keep=False`` makes one that is not added to this trail."""
        last = self.records[-1] if self.records else None
        sealed = build_record(
            log=log or self.log,
            type=type,
            subject=subject or self.subject,
            seq=len(self.records) if seq is _NEXT else seq,
            prev=(last.leaf_hash if last else None) if prev is _NEXT else prev,
            actor={"role": role, "id": f"{role}-{len(self.records):04x}"},
            body=body,
            now=at or START + timedelta(minutes=len(self.records)),
            salt=self._salt,
        )
        if keep:
            self.records.append(sealed)
        return sealed

    def submitted(self, role: str = "citizen", **kwargs: Any) -> SealedRecord:
        body = {
            "title": "关于修缮幸福路人行道的建议",
            "text": "幸福路人行道砖块松动，雨天积水，老人出行不便。",
            "category": "urban_construction",
            "district": "jiangyang",
            "channel": "web",
        }
        return self.append("suggestion.submitted", role, body, **kwargs)

    def transition(
        self,
        frm: str,
        to: str,
        role: str = "staff",
        body: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SealedRecord:
        return self.append(
            "suggestion.transition", role, {"from": frm, "to": to, **(body or {})}, **kwargs
        )


def seal_trail(
    records: Sequence[SealedRecord], chain: FakeChain, *, batch_size: int = 3, pending: int = 0
) -> list[dict[str, Any]]:
    """Anchor all but the last ``pending`` records on ``chain`` and list them as the service's
    trail endpoint does: ``{"record_hash", "status", "receipt", "record"}`` per record.

    Each batch holds up to ``batch_size`` consecutive records of one log behind a record of
    another trail, so proofs have real siblings and indexes; batches are numbered per log.
    """
    filler = TrailWriter(OTHER_SUBJECT, salt_from=9000)
    numbers: dict[str, int] = {}
    entries: list[dict[str, Any]] = []
    anchored = len(records) - pending
    i = 0
    while i < anchored:
        log = str(records[i].record["log"])
        chunk = [records[i]]
        while (
            len(chunk) < batch_size
            and i + len(chunk) < anchored
            and records[i + len(chunk)].record["log"] == log
        ):
            chunk.append(records[i + len(chunk)])
        other = filler.append("suggestion.submitted", "citizen", {"n": i}, log=log, keep=False)
        number = numbers.get(log, BATCH)
        numbers[log] = number + 1
        batch = Batch.of([other, *chunk], number)
        chain.anchor(batch)
        entries += [trail_entry(r, batch.receipt(k + 1)) for k, r in enumerate(chunk)]
        i += len(chunk)
    entries += [trail_entry(r) for r in records[anchored:]]
    return entries


def trail_entry(sealed: SealedRecord, receipt: dict[str, Any] | None = None) -> dict[str, Any]:
    """One entry of the trail listing; without a receipt the record is pending."""
    return {
        "record_hash": sealed.record_hash,
        "status": "pending" if receipt is None else "anchored",
        "receipt": receipt,
        "record": copy.deepcopy(dict(sealed.record)),
    }


def redacted_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` after its record's content was erased (PROTOCOL §7)."""
    receipt = copy.deepcopy(entry["receipt"])
    receipt["record"] = None
    receipt["leaf_hash"] = entry["record_hash"]
    receipt["redaction"] = dict(REDACTION)
    return {**entry, "receipt": receipt, "record": None}


REPLY = hashlib.sha256("答复函：幸福路人行道已列入2027年维修计划".encode()).hexdigest()

# A suggestion's whole life after its submission: 群众提 — 代表定 — 政府办 — 人大评, rehandled
# once (unsatisfied), followed up once (after a C reply), with a flag (not a transition) in the
# middle. Each step is (from, to, role, body) for a transition, or (type, role, body).
LOOP: list[tuple[Any, ...]] = [
    ("SUBMITTED", "DEPUTY_ACCEPTED", "deputy", {"reason": "属实，予以受理"}),
    ("DEPUTY_ACCEPTED", "ASSIGNED", "staff", {"offices": ["jy-zjj"], "due": "2026-12-27"}),
    ("ASSIGNED", "IN_PROGRESS", "office", {}),
    ("IN_PROGRESS", "ANSWERED", "office", {"category": "B", "reply_sha256": REPLY}),
    ("ANSWERED", "REHANDLING", "deputy", {"level": "unsatisfied"}),
    ("suggestion.flagged", "staff", {"reason": "overdue"}),
    ("REHANDLING", "ANSWERED", "office", {"category": "C", "reply_sha256": REPLY}),
    ("ANSWERED", "CLOSED", "deputy", {"level": "basically_satisfied"}),
    ("CLOSED", "FOLLOW_UP", "staff", {}),
    ("FOLLOW_UP", "ANSWERED", "office", {"category": "A", "reply_sha256": REPLY}),
    ("ANSWERED", "CLOSED", "deputy", {"level": "satisfied"}),
]


def write_steps(writer: TrailWriter, steps: list[Any]) -> None:
    """Append ``steps`` (shaped like LOOP's) to ``writer``'s trail."""
    for step in steps:
        if len(step) == 4:
            frm, to, role, body = step
            writer.transition(frm, to, role, body)
        else:
            kind, role, body = step
            writer.append(kind, role, body)


def loop_writer(until: int = len(LOOP), submitter: str = "citizen") -> TrailWriter:
    """The loop's first ``until`` + 1 records (submitted, then ``until`` steps)."""
    writer = TrailWriter()
    writer.submitted(submitter)
    write_steps(writer, LOOP[:until])
    return writer
