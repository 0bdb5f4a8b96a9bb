#!/usr/bin/env python3
"""Make the verifier's reference files in tests/assets/: an honest receipt, trail listing and
batch exports, and one tampered copy per verdict (README.md beside this file lists them).

Run by hand after a change to the protocol code, from the repository root:

    .venv/bin/python tests/assets/make_assets.py              # rewrites tests/assets/*.json
    .venv/bin/python tests/assets/make_assets.py --out DIR    # writes them to DIR instead

The tests never run it to get their inputs: they read the committed files. One test runs it
into a temporary directory and fails when the committed files differ, so that the assets
cannot drift silently from the protocol code.

The output is deterministic: fixed salts, a fixed clock, fixed tracking codes, account ids and
anchor values. Only the pure core is used (``core.records.build_record``, ``core.canonical``,
``core.merkle``, ``core.tlog``), so the files hold what the protocol makes, not what a store
happens to hold.

The receipts and exports are version 2 (PROTOCOL §8, §11): batch b anchors the root of the whole
log's tree of ``end(b)`` entries with ``size = end(b)``; a receipt proves the entry's index in
the log in the tree of its batch's end; an export carries the frontier of the tree before the
batch (``first``, ``frontier``) and the batch's own leaf hashes.

The story: one deployment's ``suggestions`` log, 21 records sealed into batches 0, 1 and 2
(8, 8 and 5 records: the log's sizes 8, 16 and 21). It holds the honest trail of SG-7K3M-9QXD-P2WT (submitted, accepted,
assigned, flagged, handled, answered, closed, followed up, answered again, closed) and three
trails written by a faulty service that broke the trail rules but anchored honestly: a prev
that skips a record (SG-4F8N-2QRS-6HVA), a step the state machine forbids
(SG-9PTC-3KXM-8DWE) and a time earlier than the record before (SG-2BJR-7YNZ-5GQH). Their
receipts are all valid; only the trail check catches them.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core import tlog
from core.canonical import canonical_bytes
from core.merkle import leaf_hash
from core.records import RecordType, SealedRecord, build_record, parse_at

ASSETS = Path(__file__).resolve().parent

LOG = "suggestions"
BATCH_SIZE = 8
START = datetime(2026, 11, 27, 9, 30, 0, 123000, tzinfo=UTC)
STEP = timedelta(hours=3)  # between two records of the log

# The anchor every receipt and export names, as a development deployment would: ganache's
# chain id and the first contract deployed by the first funded account. The tests anchor the
# same roots on a fresh registry and rebind these values to it (tests/verifier/assets.py).
CHAIN_ID = 1337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
FIRST_ANCHOR_BLOCK = 2  # block 1 deploys the registry
OTHER_CHAIN_ID = 1  # the chain receipt-wrong_chain.json claims: Ethereum mainnet

HONEST = "SG-7K3M-9QXD-P2WT"
BROKEN_LINK = "SG-4F8N-2QRS-6HVA"
ILLEGAL = "SG-9PTC-3KXM-8DWE"
REVERSED = "SG-2BJR-7YNZ-5GQH"
INSERTED = "SG-8WXK-4NPD-1TQB"  # never anchored: slipped into batch 0 after it was anchored

DEPUTY = {"role": "deputy", "id": "deputy-3c8f1a02"}
STAFF = {"role": "staff", "id": "staff-9d4e7b15"}
OFFICE = {"role": "office", "id": "office-1a2b3c4d"}

REPLY_FIRST = hashlib.sha256("市交通局答复函：幸福路口路灯已列入本月维修计划".encode()).hexdigest()
REPLY_SECOND = hashlib.sha256("市交通局答复函：幸福路口路灯已修复并加装定时器".encode()).hexdigest()
REDACTION = {"at": "2027-01-05T08:00:00.000Z", "reason": "删除请求 (PIPL art. 47)"}

TEXT = "幸福路口的路灯坏了三周。"
ALTERED_TEXT = "幸福路口的路灯坏了三天。"  # one character: what receipt-altered.json changes


def _digest(label: str) -> bytes:
    return hashlib.sha256(f"civic-ledger tests/assets {label}".encode()).digest()


def anchor_of(batch: int) -> dict[str, Any]:
    """The §4 ``anchor`` of batch ``batch``: fixed values a development chain could hold."""
    return {
        "chain_id": CHAIN_ID,
        "contract": CONTRACT,
        "tx": "0x" + _digest(f"anchor tx {LOG}/{batch}").hex(),
        "block": FIRST_ANCHOR_BLOCK + batch,
    }


def citizen(n: int) -> dict[str, str]:
    """A submitter's pseudonym, ``anon-<16 hex>`` as the service makes them."""
    return {"role": "citizen", "id": "anon-" + _digest(f"pseudonym {n}").hex()[:16]}


def commitment(value: Mapping[str, Any], salt: bytes) -> str:
    """``SHA-256(salt || canonical(value))``: the service's salted commitment (ledger.pii)."""
    return hashlib.sha256(salt + canonical_bytes(value)).hexdigest()


def submission(title: str, text: str, district: str, contact: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "category": "城乡建设",
        "district": district,
        "channel": "web",
        "text": text,
    }
    if contact is not None:
        person = {"name": f"测试{contact}", "phone": f"0000000000{contact}"}
        body["contact_commitment"] = commitment(person, _digest(f"contact salt {contact}")[:16])
    return body


def move(frm: str, to: str, **fields: Any) -> dict[str, Any]:
    return {"from": frm, "to": to, **fields}


# One step of a trail: (actor, type, body), or (actor, type, body, faults) where the faults
# ("prev_of": a seq, "before_previous": a timedelta) are how a faulty service broke a rule.
Step = tuple[Any, ...]

TRAILS: dict[str, list[Step]] = {
    HONEST: [
        (citizen(1), RecordType.SUGGESTION_SUBMITTED, submission("路灯不亮", TEXT, "鼓楼区", 1)),
        (
            DEPUTY,
            RecordType.SUGGESTION_TRANSITION,
            move("SUBMITTED", "DEPUTY_ACCEPTED", reason="情况属实，予以受理"),
        ),
        (
            STAFF,
            RecordType.SUGGESTION_TRANSITION,
            move("DEPUTY_ACCEPTED", "ASSIGNED", offices=["JT"], due="2027-02-28"),
        ),
        (
            STAFF,
            RecordType.SUGGESTION_FLAGGED,
            {"flag": "key_supervision", "value": True, "reason": "列为重点督办"},
        ),
        (OFFICE, RecordType.SUGGESTION_TRANSITION, move("ASSIGNED", "IN_PROGRESS")),
        (
            OFFICE,
            RecordType.SUGGESTION_TRANSITION,
            move("IN_PROGRESS", "ANSWERED", reply_sha256=REPLY_FIRST, category="B"),
        ),
        (
            citizen(1),
            RecordType.SUGGESTION_TRANSITION,
            move("ANSWERED", "CLOSED", level="basically_satisfied"),
        ),
        (OFFICE, RecordType.SUGGESTION_TRANSITION, move("CLOSED", "FOLLOW_UP")),
        (
            OFFICE,
            RecordType.SUGGESTION_TRANSITION,
            move("FOLLOW_UP", "ANSWERED", reply_sha256=REPLY_SECOND, category="A"),
        ),
        (
            citizen(1),
            RecordType.SUGGESTION_TRANSITION,
            move("ANSWERED", "CLOSED", level="satisfied"),
        ),
    ],
    BROKEN_LINK: [
        (
            citizen(2),
            RecordType.SUGGESTION_SUBMITTED,
            submission("公交站无遮雨棚", "长乐路公交站没有遮雨棚。", "台江区"),
        ),
        (DEPUTY, RecordType.SUGGESTION_TRANSITION, move("SUBMITTED", "DEPUTY_ACCEPTED")),
        (
            STAFF,
            RecordType.SUGGESTION_TRANSITION,
            move("DEPUTY_ACCEPTED", "ASSIGNED", offices=["JT"], due="2027-02-28"),
        ),
        # prev names seq 1, not seq 2: the link skips a record.
        (OFFICE, RecordType.SUGGESTION_TRANSITION, move("ASSIGNED", "IN_PROGRESS"), {"prev_of": 1}),
    ],
    ILLEGAL: [
        (
            citizen(3),
            RecordType.SUGGESTION_SUBMITTED,
            submission("小区门口积水", "每逢下雨，幸福小区南门积水没过脚踝。", "鼓楼区"),
        ),
        (DEPUTY, RecordType.SUGGESTION_TRANSITION, move("SUBMITTED", "DEPUTY_ACCEPTED")),
        (
            STAFF,
            RecordType.SUGGESTION_TRANSITION,
            move("DEPUTY_ACCEPTED", "ASSIGNED", offices=["JT"], due="2027-02-28"),
        ),
        # ASSIGNED → ANSWERED skips IN_PROGRESS: the published state machine forbids it.
        (
            OFFICE,
            RecordType.SUGGESTION_TRANSITION,
            move("ASSIGNED", "ANSWERED", reply_sha256=REPLY_FIRST, category="A"),
        ),
    ],
    REVERSED: [
        (
            citizen(4),
            RecordType.SUGGESTION_SUBMITTED,
            submission("人行道砖块松动", "幸福路东段人行道砖块松动，雨天积水。", "仓山区"),
        ),
        (DEPUTY, RecordType.SUGGESTION_TRANSITION, move("SUBMITTED", "DEPUTY_ACCEPTED")),
        # Written two hours before the record it follows: a server clock that stepped back.
        (
            STAFF,
            RecordType.SUGGESTION_TRANSITION,
            move("DEPUTY_ACCEPTED", "ASSIGNED", offices=["JT"], due="2027-02-28"),
            {"before_previous": timedelta(hours=2)},
        ),
    ],
}
# The state the service's row shows for each trail (the trail listing's "state").
STATES = {HONEST: "CLOSED", BROKEN_LINK: "IN_PROGRESS", ILLEGAL: "ANSWERED", REVERSED: "ASSIGNED"}
GAP_LEFT_OUT = 3  # trail-gap.json: the honest listing without the flag record (seq 3)


class Salts:
    """Distinct 16-byte salts, the same on every run (the service uses a CSPRNG)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, n: int) -> bytes:
        self.count += 1
        return _digest(f"salt {self.count}")[:n]


class Log:
    """The ``suggestions`` log in acceptance order; each trail's seq and prev as the service
    assigns them (unless a faulty step overrides them)."""

    def __init__(self) -> None:
        self.records: list[SealedRecord] = []
        self.trails: dict[str, list[SealedRecord]] = {}
        self.salts = Salts()

    def append(self, subject: str, step: Step) -> SealedRecord:
        actor, kind, body = step[:3]
        faults: dict[str, Any] = step[3] if len(step) > 3 else {}
        trail = self.trails.setdefault(subject, [])
        prev = trail[-1].leaf_hash if trail else None
        if "prev_of" in faults:
            prev = trail[faults["prev_of"]].leaf_hash
        at = START + STEP * len(self.records)
        if "before_previous" in faults:
            at = parse_at(trail[-1].record["at"]) - faults["before_previous"]
        sealed = build_record(
            log=LOG,
            type=kind,
            subject=subject,
            seq=len(trail),
            prev=prev,
            actor=actor,
            body=body,
            now=at,
            salt=self.salts,
        )
        self.records.append(sealed)
        trail.append(sealed)
        return sealed


def write_log() -> Log:
    """The trails' steps in turn, one step of each trail per round, into one log."""
    log = Log()
    steps = {subject: list(trail) for subject, trail in TRAILS.items()}
    while any(steps.values()):
        for subject, left in steps.items():
            if left:
                log.append(subject, left.pop(0))
    return log


def as_stored(sealed: SealedRecord) -> dict[str, Any]:
    """The record as the service hands it out: parsed from its canonical bytes."""
    parsed: dict[str, Any] = json.loads(sealed.canonical)
    return parsed


class Tree:
    """The log's tree over ``records`` (PROTOCOL §8): every complete subtree, by ``core.tlog``."""

    def __init__(self, records: list[SealedRecord]) -> None:
        appended = tlog.append_leaves(0, [r.leaf_hash for r in records], lambda nodes: [])
        self.nodes = dict(appended.nodes)

    def read(self, nodes: Sequence[tlog.Node]) -> list[bytes]:
        return [self.nodes[node] for node in nodes]


class Batch:
    """A sealed batch of the log: its number, the log's entries ``[first, end)`` it holds, and
    the log's tree it is anchored in (the root of the first ``end`` entries)."""

    def __init__(self, number: int, records: list[SealedRecord], first: int, tree: Tree) -> None:
        self.number = number
        self.records = records
        self.first = first
        self.end = first + len(records)
        self.tree = tree
        self.root = tlog.tree_root(self.end, tree.read)

    def receipt(self, index: int) -> dict[str, Any]:
        """The PROTOCOL §11 receipt of the batch's record ``index`` (entry ``first + index`` of
        the log), members in the service's order."""
        entry = self.first + index
        return {
            "v": 2,
            "record": as_stored(self.records[index]),
            "proof": {
                "log": LOG,
                "batch": self.number,
                "index": entry,
                "size": self.end,
                "path": [h.hex() for h in tlog.inclusion_proof(entry, self.end, self.tree.read)],
                "root": self.root.hex(),
            },
            "anchor": anchor_of(self.number),
        }

    def export(self) -> dict[str, Any]:
        """``GET /api/v1/anchors/{log}/{batch}``, as ledger.service.anchored_batch answers."""
        anchor = anchor_of(self.number)
        return {
            "v": 2,
            "log": LOG,
            "batch": self.number,
            "root": self.root.hex(),
            "size": self.end,
            "first": self.first,
            "frontier": [h.hex() for h in self.tree.read(tlog.frontier(self.first))],
            "tx": anchor["tx"],
            "block": anchor["block"],
            "chain_id": anchor["chain_id"],
            "contract": anchor["contract"],
            "leaf_hashes": [r.record_hash for r in self.records],
        }


def seal(records: list[SealedRecord]) -> list[Batch]:
    tree = Tree(records)
    return [
        Batch(n, records[start : start + BATCH_SIZE], start, tree)
        for n, start in enumerate(range(0, len(records), BATCH_SIZE))
    ]


def trail_listing(subject: str, log: Log, batches: list[Batch]) -> dict[str, Any]:
    """``GET /api/v1/suggestions/{code}/trail`` (ledger.suggestions.trail): every record
    anchored, each entry with its record and receipt."""
    where = {r.leaf_hash: (b, i) for b in batches for i, r in enumerate(b.records)}
    entries = []
    for sealed in log.trails[subject]:
        batch, index = where[sealed.leaf_hash]
        entries.append(
            {
                "record_hash": sealed.record_hash,
                "status": "anchored",
                "record": as_stored(sealed),
                "receipt": batch.receipt(index),
            }
        )
    return {"tracking_code": subject, "state": STATES[subject], "records": entries}


def make_assets() -> dict[str, Any]:
    """Every asset file's name and JSON content."""
    log = write_log()
    batches = seal(log.records)
    first = batches[0]
    honest_index = first.records.index(log.trails[HONEST][0])
    receipt = first.receipt(honest_index)  # the honest submission's, as its citizen downloads it

    def changed(change: Callable[[dict[str, Any]], None], base: Any = receipt) -> Any:
        copied = copy.deepcopy(base)
        change(copied)
        return copied

    def alter(r: dict[str, Any]) -> None:
        r["record"]["body"]["text"] = ALTERED_TEXT

    def other_chain(r: dict[str, Any]) -> None:
        r["anchor"]["chain_id"] = OTHER_CHAIN_ID

    def quoted_index(r: dict[str, Any]) -> None:
        r["proof"]["index"] = str(r["proof"]["index"])

    # root_mismatch: batch 0 rebuilt with a record slipped in after it was anchored. The
    # receipt's path and root agree with each other (step 3 passes) but not with the chain.
    inserted = build_record(
        log=LOG,
        type=RecordType.SUGGESTION_SUBMITTED,
        subject=INSERTED,
        seq=0,
        prev=None,
        actor=citizen(5),
        body=submission("补录的建议", "事后补录进已锚定批次的一条记录。", "鼓楼区"),
        now=START + STEP / 2,
        salt=lambda n: _digest("inserted salt")[:n],
    )
    records = first.records
    forged = [*records[: honest_index + 1], inserted, *records[honest_index + 1 :]]
    rebuilt = Batch(0, forged, 0, Tree(forged))

    # §7: the record's content erased, its leaf hash kept (members in the service's order).
    redacted = {
        "v": 2,
        "record": None,
        "leaf_hash": records[honest_index].record_hash,
        "redaction": dict(REDACTION),
        "proof": copy.deepcopy(receipt["proof"]),
        "anchor": copy.deepcopy(receipt["anchor"]),
    }

    # batch-altered: the export lists the leaf hash of receipt-altered's record.
    batch_altered = first.export()
    altered_record = changed(alter)["record"]
    batch_altered["leaf_hashes"][honest_index] = leaf_hash(canonical_bytes(altered_record)).hex()

    honest_trail = trail_listing(HONEST, log, batches)
    gap = copy.deepcopy(honest_trail)
    del gap["records"][GAP_LEFT_OUT]

    assets: dict[str, Any] = {
        "receipt.json": receipt,
        "receipt-altered.json": changed(alter),
        "receipt-root_mismatch.json": rebuilt.receipt(honest_index),
        "receipt-wrong_chain.json": changed(other_chain),
        "receipt-malformed.json": changed(quoted_index),
        "receipt-redacted.json": redacted,
        "trail.json": honest_trail,
        "trail-broken_link.json": trail_listing(BROKEN_LINK, log, batches),
        "trail-gap.json": gap,
        "trail-illegal_transition.json": trail_listing(ILLEGAL, log, batches),
        "trail-time_reversed.json": trail_listing(REVERSED, log, batches),
        "batch-altered.json": batch_altered,
        "batch-root_mismatch.json": rebuilt.export(),
    }
    for batch in batches:
        assets[f"batch-{batch.number}.json"] = batch.export()
    return dict(sorted(assets.items()))


def dump(value: Any) -> bytes:
    """How every asset is written: UTF-8 JSON, two-space indent, Chinese as it is, one newline."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def write_assets(out: Path) -> list[Path]:
    """Write every asset into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, value in make_assets().items():
        path = out / name
        path.write_bytes(dump(value))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=ASSETS, help="directory to write to (default: tests/assets)"
    )
    args = parser.parse_args(argv)
    for path in write_assets(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
