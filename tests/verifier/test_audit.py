"""The inspectors' audit against a real store (SQLite and PostgreSQL) anchored by the real worker
on a real ganache: a clean store is clean, and every way to alter the store is found, with the
exact finding and the record it names.

The attacker has database superuser rights: on SQLite it drops the append-only triggers, on
PostgreSQL it disables them, and then it writes what it likes. Citizens hold the receipts the
service issued before the attack; the trail verifier is run on what the store shows after it
(records in seq order, each with the receipt issued for its record hash), to show what a trail
verification sees and what only the audit sees.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.canonical import canonical_bytes
from core.merkle import leaf_hash, merkle_root
from core.records import MAP_SUBJECT, build_record
from core.trailmap import MemoryMap, map_root
from core.verdicts import TrailVerdict
from ledger import auth, service, suggestions
from ledger.models import RecordRow
from ledger.pii import Vault
from ledger.reader import StoreReader
from ledger.redaction import redact
from ledger.schemas import SuggestionIn
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from verifier.audit import audit_store
from verifier.audit.findings import AuditReport, Finding, FindingKind
from verifier.audit.reading import open_store
from verifier.chain import Web3ChainReader
from verifier.cli import main
from verifier.errors import ChainUnreachable
from verifier.trail import verify_trail

pytestmark = pytest.mark.chain

VAULT = Vault(secrets.token_bytes(32))
LOG = "suggestions"
BATCH_MAX = 4
# The suggestions log, four suggestions A–D, each submitted and moved three steps, one record
# per transaction, interleaved, the worker sealing after each step: A0 B0 C0 D0 M0 | A1 B1 C1
# D1 M1 | A2 B2 C2 D2 M2 | A3 B3 C3 D3 M3, where Mb is batch b's ledger.map_head record (the
# last entry of every batch, PROTOCOL §10). So the record of suggestion k at step s sits at
# position 5 * s + k and batch b's map head at 5 * b + 4. Batches of five entries:
# batch 0 = positions 0–4, batch 1 = 5–9, batch 2 = 10–14, batch 3 = 15–19.
STEPS = [
    ("SUBMITTED", "DEPUTY_ACCEPTED", {"role": "deputy", "id": "deputy-0000beef"}, {}),
    (
        "DEPUTY_ACCEPTED",
        "ASSIGNED",
        {"role": "staff", "id": "staff-7"},
        {"offices": ["zhujianju"], "due": "2027-02-27"},
    ),
    ("ASSIGNED", "IN_PROGRESS", {"role": "office", "id": "office-3"}, {}),
]
SUGGESTIONS = 4
# How SQLite (query_only, or a file opened read-only) and PostgreSQL refuse a write.
REFUSED = r"readonly database|read-only transaction"
BATCHES = 1 + len(STEPS)
RECORDS = SUGGESTIONS * BATCHES + BATCHES  # the suggestions' records and one map head a batch


def position(suggestion: int, step: int) -> int:
    return (SUGGESTIONS + 1) * step + suggestion


def map_head(batch: int) -> int:
    """The position of batch ``batch``'s ledger.map_head record."""
    return (SUGGESTIONS + 1) * batch + SUGGESTIONS


@dataclass
class Store:
    db: Database
    rpc: str
    contract: str
    codes: list[str]  # tracking codes of suggestions A–D
    issued: dict[str, Any]  # record hash → the receipt the service issued for it
    worker: AnchoringWorker

    def audit(self, **options: Any) -> AuditReport:
        with open_store(self.db.url) as store:
            return audit_store(store, Web3ChainReader(self.rpc), **options)

    def row(self, at: int, log: str = LOG) -> RecordRow:
        with self.db.sessions() as session:
            return session.scalars(
                select(RecordRow).where(RecordRow.log == log, RecordRow.position == at)
            ).one()

    def listing(self, subject: str) -> list[dict[str, Any]]:
        """The trail as the store now shows it, with the receipts issued before the attack."""
        with self.db.sessions() as session:
            rows = session.scalars(
                select(RecordRow)
                .where(RecordRow.log == LOG, RecordRow.subject == subject)
                .order_by(RecordRow.seq)
            ).all()
        entries = []
        for row in rows:
            record_hash = row.leaf_hash.hex()
            receipt = self.issued.get(record_hash)
            entries.append(
                {
                    "record_hash": record_hash,
                    "status": "anchored" if receipt else "pending",
                    "receipt": receipt,
                    "record": json.loads(row.canonical) if row.canonical else None,
                }
            )
        return entries

    def verify_trail(self, suggestion: int) -> Any:
        code = self.codes[suggestion]
        return verify_trail(self.listing(code), Web3ChainReader(self.rpc), subject=code)

    def release(self) -> None:
        for state in self.worker.logs:
            state.lock.release()


def _append(db: Database, subject: str, frm: str, to: str, actor: Any, extra: Any) -> None:
    with db.sessions.begin() as session:
        service.append_record(
            session,
            log=LOG,
            type="suggestion.transition",
            subject=subject,
            actor=actor,
            body={"from": frm, "to": to, **extra},
        )


@pytest.fixture
def store(database: Database, registry: Any, ganache: Any) -> Iterator[Store]:
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(
            contract=registry.address,
            anchor_interval=0.0,
            batch_max=BATCH_MAX,
            receipt_timeout=10.0,
            logs=["suggestions", "access"],
        ),
    )
    codes = []
    for i in range(SUGGESTIONS):
        with database.sessions.begin() as session:
            data = SuggestionIn(
                title=f"幸福路第{i}号路灯不亮",
                text="晚上路口一片漆黑，行人和电动车都看不清。",
                category="城乡建设",
                district="鼓楼区",
            )
            codes.append(
                suggestions.submit(session, data, principal=None, vault=VAULT).tracking_code
            )
    while worker.step():  # a batch takes every waiting record: seal after each step
        pass
    for frm, to, actor, extra in STEPS:
        for code in codes:
            _append(database, code, frm, to, actor, extra)
        while worker.step():
            pass
    for n in range(3):  # an account's reads of personal data: a trail in the access log
        with database.sessions.begin() as session:
            service.append_record(
                session,
                log="access",
                type="pii.read",
                subject="staff-7",
                actor={"role": "staff", "id": "staff-7"},
                body={"suggestion": codes[n], "field": "contact", "reason": "电话回访"},
            )
    while worker.step():
        pass
    issued = {}
    with database.sessions() as session:
        for row in session.scalars(select(RecordRow)):
            receipt = service.receipt(session, row.leaf_hash.hex())
            assert isinstance(receipt, dict)
            issued[row.leaf_hash.hex()] = receipt
    built = Store(database, ganache.rpc_url, registry.address, codes, issued, worker)
    try:
        yield built
    finally:
        built.release()


# -- the attacker -------------------------------------------------------------------------


def attack(db: Database, *statements: tuple[str, dict[str, Any]]) -> None:
    """Run SQL as a database superuser would, past the append-only triggers."""
    with db.engine.begin() as conn:
        if db.backend == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS records_append_only_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS records_append_only_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE records DISABLE TRIGGER USER")
        for statement, params in statements:
            conn.execute(text(statement), params)
        if db.backend != "sqlite":
            conn.exec_driver_sql("ALTER TABLE records ENABLE TRIGGER USER")


def set_canonical(db: Database, at: int, canonical: bytes, leaf: bytes | None = None) -> None:
    if leaf is None:
        attack(
            db,
            (
                "UPDATE records SET canonical = :c WHERE log = :log AND position = :p",
                {"c": canonical, "log": LOG, "p": at},
            ),
        )
    else:
        attack(
            db,
            (
                "UPDATE records SET canonical = :c, leaf_hash = :h WHERE log = :log AND "
                "position = :p",
                {"c": canonical, "h": leaf, "log": LOG, "p": at},
            ),
        )


def swap_positions(db: Database, a: int, b: int) -> None:
    attack(
        db,
        (
            "UPDATE records SET position = -1 WHERE log = :log AND position = :a",
            {"log": LOG, "a": a},
        ),
        (
            "UPDATE records SET position = :a WHERE log = :log AND position = :b",
            {"log": LOG, "a": a, "b": b},
        ),
        (
            "UPDATE records SET position = :b WHERE log = :log AND position = -1",
            {"log": LOG, "b": b},
        ),
    )


def insert_row(db: Database, at: int, sealed: Any, subject: str, seq: int, kind: str) -> None:
    attack(
        db,
        (
            "INSERT INTO records (log, position, subject, seq, type, leaf_hash, canonical, "
            "accepted_at) VALUES (:log, :p, :s, :q, :t, :h, :c, :a)",
            {
                "log": LOG,
                "p": at,
                "s": subject,
                "q": seq,
                "t": kind,
                "h": sealed.leaf_hash,
                "c": sealed.canonical,
                "a": datetime.now(UTC),
            },
        ),
    )


def kinds(report: AuditReport) -> list[tuple[str, str, int | None]]:
    return sorted(
        ((f.kind.value, f.log, f.position) for f in report.findings),
        key=lambda k: (k[0], k[1], -1 if k[2] is None else k[2]),
    )


def only(report: AuditReport, kind: FindingKind) -> list[Finding]:
    return [f for f in report.findings if f.kind is kind]


# -- a clean store ------------------------------------------------------------------------


def test_a_clean_store_is_clean_and_the_cli_exits_0(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    report = store.audit()
    assert report.clean, report.findings
    assert report.findings == [] and report.redacted == []
    by_log = {s.log: s for s in report.logs}
    assert by_log[LOG].records == RECORDS and by_log[LOG].batches == 4
    assert by_log[LOG].anchored_batches == 4 and by_log[LOG].chain_batches == 4
    # the suggestions' trails and the map's own trail (its map heads)
    assert by_log[LOG].trails == SUGGESTIONS + 1
    # the map replayed from the entries equals every map head (PROTOCOL §10)
    assert by_log[LOG].map_heads == BATCHES
    assert by_log["access"].records == 3 + 1 and by_log["access"].trails == 1 + 1
    assert by_log["access"].map_heads == 1
    assert by_log["votes"].records == 0
    assert report.contract is not None and report.contract.lower() == store.contract.lower()
    assert report.to_dict()["clean"] is True
    for i in range(SUGGESTIONS):
        assert store.verify_trail(i).verdict is TrailVerdict.VALID

    argv = ["audit", "--database-url", store.db.url, "--rpc", store.rpc, "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "CLEAN" in out and f"{RECORDS:>10,} records" in out
    assert main([*argv, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["clean"] is True and answer["findings"] == [] and answer["records"] == RECORDS + 4


# -- the tamper suite ---------------------------------------------------------------------

A, B, C, D = 0, 1, 2, 3


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: r["body"].__setitem__("to", "REJECTED"), id="body"),
        pytest.param(lambda r: r.__setitem__("at", "2026-01-01T00:00:00.000Z"), id="at"),
        pytest.param(
            lambda r: r.__setitem__("actor", {"role": "deputy", "id": "deputy-0badc0de"}),
            id="actor",
        ),
        pytest.param(lambda r: r.__setitem__("salt", secrets.token_hex(16)), id="salt"),
    ],
)
def test_an_edited_record_is_altered(store: Store, change: Any) -> None:
    target = store.row(position(B, 1))
    record = json.loads(target.canonical)
    change(record)
    set_canonical(store.db, target.position, canonical_bytes(record))

    report = store.audit()
    # The row keeps its leaf hash: the map of trail heads, replayed from leaf hashes, agrees.
    assert kinds(report) == [("altered", LOG, position(B, 1))]
    [found] = report.findings
    assert (found.batch, found.subject, found.seq) == (1, store.codes[B], 1)
    assert found.record_hash == target.leaf_hash.hex()
    assert "hashes to" in found.detail
    trail = store.verify_trail(B)
    assert trail.verdict is TrailVerdict.ALTERED and trail.first_bad == 1


def test_a_record_rewritten_with_its_hash_is_named_by_its_batch_and_trail(store: Store) -> None:
    target = store.row(position(B, 1))
    record = json.loads(target.canonical)
    record["body"]["to"] = "REJECTED"
    forged = canonical_bytes(record)
    set_canonical(store.db, target.position, forged, leaf_hash(forged))

    report = store.audit()
    assert kinds(report) == [
        ("altered", LOG, position(B, 1)),
        ("broken_link", LOG, position(B, 2)),
        ("map_head_mismatch", LOG, map_head(1)),
    ]
    [altered] = only(report, FindingKind.ALTERED)
    assert altered.batch == 1 and altered.seq == 1 and "rewritten" in altered.detail
    assert target.leaf_hash.hex() in altered.detail
    [link] = only(report, FindingKind.BROKEN_LINK)
    assert (link.subject, link.seq) == (store.codes[B], 2)
    # Batch 1's map head committed to B's head as it was: the replayed map holds the new hash.
    [mismatch] = only(report, FindingKind.MAP_HEAD_MISMATCH)
    assert mismatch.batch == 1 and "map_root" in mismatch.detail
    # No receipt was issued for the forged hash; the next record still links to the old one.
    trail = store.verify_trail(B)
    assert trail.verdict is TrailVerdict.BROKEN_LINK and trail.first_bad == 2


def test_a_deleted_record_is_missing_and_its_trail_has_a_gap(store: Store) -> None:
    gone = store.row(position(B, 1))
    attack(store.db, (DELETE_AT, {"log": LOG, "p": position(B, 1)}))

    report = store.audit()
    assert kinds(report) == [
        ("gap", LOG, position(B, 2)),
        ("map_head_mismatch", LOG, map_head(1)),  # B's head in batch 1 is gone from the map
        ("missing", LOG, position(B, 1)),
    ]
    [missing] = only(report, FindingKind.MISSING)
    assert missing.batch == 1 and f"position {position(B, 1)}" in missing.detail
    [gap] = only(report, FindingKind.GAP)
    assert (gap.subject, gap.seq) == (store.codes[B], 2) and "no record with seq 1" in gap.detail
    trail = store.verify_trail(B)
    assert trail.verdict is TrailVerdict.GAP and trail.first_bad == 1
    assert gone.leaf_hash.hex() not in json.dumps(report.to_dict())
    # The log's tree after the hole is taken up again from the frontier the store keeps for
    # batch 2, which folds to the root anchored for batch 1: batches 2 and 3 are still judged.
    assert not_recomputed(report) == []


DELETE_AT = "DELETE FROM records WHERE log = :log AND position = :p"


def not_recomputed(report: AuditReport) -> list[str]:
    return [note for note in report.notes if "was not recomputed" in note]


def test_after_a_hole_a_stored_frontier_must_fold_to_the_anchored_root(store: Store) -> None:
    attack(
        store.db,
        (DELETE_AT, {"log": LOG, "p": position(B, 1)}),
        (
            "UPDATE batches SET frontier = :f WHERE log = :log AND number = 2",
            {"f": hashlib.sha256(b"forged").digest() * 2, "log": LOG},
        ),
    )
    report = store.audit()
    assert kinds(report) == [
        ("gap", LOG, position(B, 2)),
        ("map_head_mismatch", LOG, map_head(1)),
        ("missing", LOG, position(B, 1)),
    ]
    assert not_recomputed(report) == [
        "suggestions: batch 2 was not recomputed: the log's tree before it could not be "
        "rebuilt from the records, nor taken from the store as anchored"
    ]  # batch 3 is judged again, from the frontier the store keeps for it


def test_a_forged_record_at_a_new_position_is_inserted(store: Store) -> None:
    last = store.row(position(D, 3))
    forged = build_record(
        log=LOG,
        type="suggestion.transition",
        subject=store.codes[D],
        seq=4,
        prev=last.leaf_hash,
        actor={"role": "office", "id": "office-3"},
        body={"from": "IN_PROGRESS", "to": "ANSWERED", "category": "A"},
        now=datetime.now(UTC),
        salt=secrets.token_bytes,
    )
    insert_row(store.db, RECORDS, forged, store.codes[D], 4, "suggestion.transition")

    report = store.audit()
    assert kinds(report) == [("inserted", LOG, RECORDS)]
    [found] = report.findings
    assert (found.subject, found.seq, found.batch) == (store.codes[D], 4, None)
    assert found.record_hash == forged.record_hash
    # The trail verifier sees a well-linked record that is merely not anchored yet.
    assert store.verify_trail(D).verdict is TrailVerdict.PENDING


def test_a_forged_record_out_of_time_is_inserted_and_time_reversed(store: Store) -> None:
    last = store.row(position(D, 3))
    earlier = datetime.fromisoformat(json.loads(last.canonical)["at"]) - timedelta(hours=1)
    forged = build_record(
        log=LOG,
        type="suggestion.transition",
        subject=store.codes[D],
        seq=4,
        prev=last.leaf_hash,
        actor={"role": "office", "id": "office-3"},
        body={"from": "IN_PROGRESS", "to": "ANSWERED", "category": "A"},
        now=earlier,
        salt=secrets.token_bytes,
    )
    insert_row(store.db, RECORDS, forged, store.codes[D], 4, "suggestion.transition")

    report = store.audit()
    assert kinds(report) == [("inserted", LOG, RECORDS), ("time_reversed", LOG, RECORDS)]
    [reversed_] = only(report, FindingKind.TIME_REVERSED)
    assert (reversed_.subject, reversed_.seq) == (store.codes[D], 4)
    trail = store.verify_trail(D)
    assert trail.verdict is TrailVerdict.TIME_REVERSED and trail.first_bad == 4


def test_a_transition_the_state_machine_forbids_is_illegal(store: Store) -> None:
    # What a service that skipped its own checks would write: IN_PROGRESS may only be answered.
    _append(store.db, store.codes[A], "IN_PROGRESS", "CLOSED", {"role": "staff", "id": "s"}, {})

    report = store.audit()
    assert kinds(report) == [("illegal_transition", LOG, RECORDS)]
    [found] = report.findings
    assert (found.subject, found.seq) == (store.codes[A], 4)
    assert "IN_PROGRESS → CLOSED" in found.detail
    trail = store.verify_trail(A)
    assert trail.verdict is TrailVerdict.ILLEGAL_TRANSITION and trail.first_bad == 4


def test_a_record_forged_into_an_anchored_batch_is_inserted(store: Store) -> None:
    code = "SG-FAKE-FAKE-FAKE"
    forged = build_record(
        log=LOG,
        type="suggestion.submitted",
        subject=code,
        seq=0,
        prev=None,
        actor={"role": "citizen", "id": "anon-0123456789abcdef"},
        body={"title": "伪造", "text": "伪造", "category": "城乡建设", "district": "鼓楼区"},
        now=datetime.now(UTC),
        salt=secrets.token_bytes,
    )
    # Make room at position 7 (inside anchored batch 1): every later record moves up one.
    attack(
        store.db,
        (
            "UPDATE records SET position = -position - 1 WHERE log = :log AND position >= 7",
            {"log": LOG},
        ),
        (
            "UPDATE records SET position = -position WHERE log = :log AND position < 0",
            {"log": LOG},
        ),
    )
    insert_row(store.db, 7, forged, code, 0, "suggestion.submitted")

    report = store.audit()
    # Every map head from batch 1 on now stands one position beyond the index it names, and
    # the map replayed from the entries holds the forged trail, which no map head holds.
    assert kinds(report) == [
        ("inserted", LOG, 7),
        *(("map_head_mismatch", LOG, map_head(b) + 1) for b in (1, 2, 3)),
    ]
    [found] = only(report, FindingKind.INSERTED)
    assert (found.batch, found.subject, found.seq) == (1, code, 0)
    assert found.record_hash == forged.record_hash
    for i in range(SUGGESTIONS):  # every trail still reads as before
        assert store.verify_trail(i).verdict is TrailVerdict.VALID


def test_two_records_swapped_are_reordered(store: Store) -> None:
    first, second = store.row(position(C, 1)), store.row(position(D, 1))
    swap_positions(store.db, first.position, second.position)

    report = store.audit()
    # Both stay before batch 1's map head: the map of trail heads is the same.
    assert kinds(report) == [
        ("reordered", LOG, first.position),
        ("reordered", LOG, second.position),
    ]
    named = {f.position: (f.batch, f.subject, f.record_hash) for f in report.findings}
    assert named[first.position] == (1, store.codes[D], second.leaf_hash.hex())
    assert named[second.position] == (1, store.codes[C], first.leaf_hash.hex())
    # Each trail is still in order: only the audit sees the batch reordered.
    assert store.verify_trail(C).verdict is TrailVerdict.VALID
    assert store.verify_trail(D).verdict is TrailVerdict.VALID


def test_two_records_of_one_trail_swapped_are_reordered_and_break_it(store: Store) -> None:
    swap_positions(store.db, position(B, 1), position(B, 2))

    report = store.audit()
    # B's seq 1 and seq 2 are in batches 1 and 2: each batch is reordered (both records
    # named in each), and both map heads hold another head of B than the entries give.
    assert kinds(report) == [
        ("broken_link", LOG, position(B, 1)),
        ("map_head_mismatch", LOG, map_head(1)),
        ("map_head_mismatch", LOG, map_head(2)),
        ("reordered", LOG, position(B, 1)),
        ("reordered", LOG, position(B, 1)),
        ("reordered", LOG, position(B, 2)),
        ("reordered", LOG, position(B, 2)),
    ]
    [link] = only(report, FindingKind.BROKEN_LINK)
    assert link.seq == 2 and "out of order" in link.detail


def test_receipts_swapped_between_records_are_altered(store: Store) -> None:
    first, second = store.row(position(C, 1)), store.row(position(D, 2))
    set_canonical(store.db, first.position, second.canonical)
    set_canonical(store.db, second.position, first.canonical)

    report = store.audit()
    assert kinds(report) == [("altered", LOG, first.position), ("altered", LOG, second.position)]
    assert {f.record_hash for f in report.findings} == {
        first.leaf_hash.hex(),
        second.leaf_hash.hex(),
    }
    assert store.verify_trail(C).verdict is TrailVerdict.ALTERED
    assert store.verify_trail(D).verdict is TrailVerdict.ALTERED


def test_a_truncated_trail_is_seen_by_the_audit_not_by_the_trail_verifier(store: Store) -> None:
    last = store.row(position(B, 3))
    attack(
        store.db,
        (DELETE_AT, {"log": LOG, "p": position(B, 2)}),
        (DELETE_AT, {"log": LOG, "p": position(B, 3)}),
    )
    # The version 1 trail checks cannot see records left off the end (PROTOCOL-NOTES, Trails);
    # the map of trail heads can (tests/verifier/test_trail_map.py).
    assert store.verify_trail(B).verdict is TrailVerdict.VALID

    report = store.audit()
    assert kinds(report) == [
        ("map_head_mismatch", LOG, map_head(2)),
        ("map_head_mismatch", LOG, map_head(3)),
        ("missing", LOG, None),
        ("missing", LOG, position(B, 2)),
        ("missing", LOG, position(B, 3)),
    ]
    by_position = {f.position: f for f in only(report, FindingKind.MISSING)}
    assert by_position[position(B, 2)].batch == 2 and by_position[position(B, 3)].batch == 3
    # The map heads of batches 2 and 3 hold B's later heads; the entries left end at seq 1.
    assert [f.batch for f in only(report, FindingKind.MAP_HEAD_MISMATCH)] == [2, 3]
    trail = by_position[None]
    assert (trail.subject, trail.seq, trail.record_hash) == (
        store.codes[B],
        2,
        last.leaf_hash.hex(),
    )
    assert not_recomputed(report) == []  # batch 3 judged from its stored frontier


def test_an_anchored_batch_the_store_lacks_is_a_missing_batch(store: Store) -> None:
    attack(
        store.db,
        # batch 3 whole: its records (positions 15–19, the map head last) and its row
        ("DELETE FROM records WHERE log = :log AND position >= 15", {"log": LOG}),
        ("DELETE FROM batches WHERE log = :log AND number = 3", {"log": LOG}),
    )
    report = store.audit()
    assert {f.kind for f in report.findings} == {FindingKind.MISSING_BATCH, FindingKind.MISSING}
    [batch] = only(report, FindingKind.MISSING_BATCH)
    assert batch.batch == 3 and "anchored on chain" in batch.detail
    missing = {(f.position, f.batch, f.subject) for f in only(report, FindingKind.MISSING)}
    # the positions of batch 3, and the last record of every trail it ended (the map's too)
    assert missing == {(15, 3, None)} | {
        (None, None, subject) for subject in [*store.codes, MAP_SUBJECT]
    }
    [hole] = [f for f in only(report, FindingKind.MISSING) if f.position == 15]
    assert "positions 15 to 19" in hole.detail


def test_a_batch_left_unanchored_past_the_deadline_is_unanchored(store: Store) -> None:
    for code in store.codes[:2]:
        _append(store.db, code, "IN_PROGRESS", "ANSWERED", {"role": "office", "id": "o"}, {})
    sealed = store.worker.seal(LOG, force=True)  # sealed, never sent
    assert sealed is not None and sealed.number == 4
    _append(store.db, store.codes[2], "IN_PROGRESS", "ANSWERED", {"role": "office", "id": "o"}, {})

    assert store.audit().clean  # within the ten minutes
    report = store.audit(now=datetime.now(UTC) + timedelta(minutes=11))
    # batch 4: the two records and its map head; then the record waiting to be sealed
    waiting = RECORDS + 3
    assert kinds(report) == [("unanchored", LOG, None), ("unanchored", LOG, waiting)]
    by_position = {f.position: f for f in report.findings}
    assert by_position[None].batch == 4 and "sealed" in by_position[None].detail
    assert by_position[waiting].batch is None and "to be sealed" in by_position[waiting].detail
    argv = ["audit", "--database-url", store.db.url, "--rpc", store.rpc, "--deadline-minutes", "0"]
    assert main([*argv, "--no-progress"]) == 1


def test_a_stored_root_that_differs_from_the_chain_is_a_root_mismatch(store: Store) -> None:
    attack(
        store.db,
        (
            "UPDATE batches SET log_root = :r WHERE log = :log AND number = 2",
            {"r": hashlib.sha256(b"forged").digest(), "log": LOG},
        ),
    )
    report = store.audit()
    assert [(f.kind, f.batch, f.position) for f in report.findings] == [
        (FindingKind.ROOT_MISMATCH, 2, None)
    ]
    assert "for the log's first 15 entries" in report.findings[0].detail


def test_the_batch_only_root_is_not_judged(store: Store) -> None:
    # Version 2 anchors the whole log's root (batches.log_root); the batch's own root is kept
    # for diagnosis, and nothing anchors it any more.
    attack(
        store.db,
        (
            "UPDATE batches SET root = :r WHERE log = :log AND number = 2",
            {"r": hashlib.sha256(b"forged").digest(), "log": LOG},
        ),
    )
    assert store.audit().clean


def test_a_batch_rewritten_with_its_records_differs_from_the_chain(store: Store) -> None:
    """A thorough attacker rewrites a record, its hash and its batch's root: the chain's root
    still holds the record as it was, and the next record of its trail names the old hash."""
    target = store.row(position(C, 2))
    record = json.loads(target.canonical)
    record["body"]["offices"] = ["caizhengju"]
    forged = canonical_bytes(record)
    with store.db.sessions() as session:
        leaves = list(
            session.scalars(
                select(RecordRow.leaf_hash)
                .where(RecordRow.log == LOG, RecordRow.position.between(0, 14))
                .order_by(RecordRow.position)
            )
        )
    leaves[target.position] = leaf_hash(forged)
    set_canonical(store.db, target.position, forged, leaf_hash(forged))
    attack(
        store.db,
        (
            "UPDATE batches SET root = :r, log_root = :l WHERE log = :log AND number = 2",
            {"r": merkle_root(leaves[10:]), "l": merkle_root(leaves), "log": LOG},
        ),
    )
    report = store.audit()
    assert sorted((f.kind.value, f.batch, f.position) for f in report.findings) == [
        ("altered", 2, position(C, 2)),
        ("broken_link", 3, position(C, 3)),
        # batch 2's map head (unchanged) holds C's head as anchored, not as rewritten
        ("map_head_mismatch", 2, map_head(2)),
        ("root_mismatch", 2, None),
    ]


# -- the map of trail heads (PROTOCOL §10) -------------------------------------------------


def test_a_map_head_rewritten_in_the_store_is_a_finding_naming_its_batch(store: Store) -> None:
    """The map head of batch 2 rewritten (with its hash) to a map without suggestion B's
    trail, as an operator hiding B's later steps would need: the replayed map differs."""
    target = store.row(map_head(2))
    record = json.loads(target.canonical)
    assert record["type"] == "ledger.map_head" and record["subject"] == MAP_SUBJECT
    assert record["body"]["batch"] == 2 and record["body"]["index"] == map_head(2)
    without_b = MemoryMap()
    for at in range(map_head(2)):
        row = store.row(at)
        if row.subject not in (MAP_SUBJECT, store.codes[B]):
            without_b.set_heads([(row.subject, row.seq, row.leaf_hash)])
    record["body"]["map_root"] = without_b.root.hex()
    record["body"]["trails"] = SUGGESTIONS - 1
    forged = canonical_bytes(record)
    set_canonical(store.db, target.position, forged, leaf_hash(forged))

    report = store.audit()
    assert kinds(report) == [
        ("altered", LOG, map_head(2)),
        ("broken_link", LOG, map_head(3)),  # batch 3's map head links to the anchored one
        ("map_head_mismatch", LOG, map_head(2)),
    ]
    [mismatch] = only(report, FindingKind.MAP_HEAD_MISMATCH)
    assert (mismatch.batch, mismatch.subject, mismatch.seq) == (2, MAP_SUBJECT, 2)
    assert mismatch.record_hash == leaf_hash(forged).hex()
    assert f"map_root is '{without_b.root.hex()}'" in mismatch.detail
    assert f"trails is {SUGGESTIONS - 1}, the entries give {SUGGESTIONS}" in mismatch.detail


def test_a_map_head_the_sealer_got_wrong_is_found_though_it_is_anchored(store: Store) -> None:
    """The sealer's stored map loses every trail (an operator, or a bug) before batch 4: its
    map head is anchored as written, so every record, link and root checks out; only the
    map replayed from the entries shows that batch 4's map head does not commit to them."""
    with store.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM map_nodes WHERE log = :log"), {"log": LOG})
    _append(store.db, store.codes[A], "IN_PROGRESS", "ANSWERED", {"role": "office", "id": "o"}, {})
    while store.worker.step():
        pass
    head = store.row(RECORDS + 1)  # batch 4: A's new record, then its map head
    assert json.loads(head.canonical)["type"] == "ledger.map_head"

    report = store.audit()
    assert kinds(report) == [("map_head_mismatch", LOG, RECORDS + 1)]
    [mismatch] = report.findings
    assert (mismatch.batch, mismatch.record_hash) == (4, head.leaf_hash.hex())
    assert "map_root is" in mismatch.detail
    assert by_log(report)[LOG].map_heads == BATCHES + 1


def test_the_replayed_map_equals_every_map_head_of_a_clean_store(store: Store) -> None:
    """What the audit replays is the map the sealer committed to, batch by batch."""
    replay = MemoryMap()
    for at in range(RECORDS):
        row = store.row(at)
        record = json.loads(row.canonical)
        if row.subject != MAP_SUBJECT:
            replay.set_heads([(row.subject, row.seq, row.leaf_hash)])
            continue
        assert record["body"] == {
            "batch": at // (SUGGESTIONS + 1),
            "index": at,
            "map_root": replay.root.hex(),
            "trails": len(replay),
        }
        assert replay.root == map_root(replay.pairs)  # incremental equals from scratch
    report = store.audit()
    assert report.clean and by_log(report)[LOG].map_heads == BATCHES


def by_log(report: AuditReport) -> dict[str, Any]:
    return {summary.log: summary for summary in report.logs}


def test_an_erased_record_is_redacted_not_a_finding(store: Store) -> None:
    target = store.row(position(A, 0))
    with store.db.sessions.begin() as session:
        admin = auth.add_account(session, role="admin", name="管理员")
    with store.db.sessions.begin() as session:
        redact(session, target.leaf_hash.hex(), reason="本人申请删除", admin_id=admin.id)

    report = store.audit()
    assert report.clean, report.findings
    [erased] = report.redacted
    assert (erased.position, erased.subject, erased.reason) == (0, store.codes[A], "本人申请删除")
    # Erasing without a redaction is not PROTOCOL §7: it is tampering.
    set_canonical(store.db, position(B, 0), b"")
    report = store.audit()
    assert kinds(report) == [("altered", LOG, 1)]
    assert "no redaction" in report.findings[0].detail


# -- the audit never writes ---------------------------------------------------------------


def test_the_audit_leaves_a_sqlite_file_untouched(store: Store) -> None:
    if store.db.backend != "sqlite":
        pytest.skip("a SQLite file")
    store.db.engine.dispose()  # the last connection checkpoints the WAL into the file
    path = Path(store.db.url.removeprefix("sqlite:///"))
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    path.chmod(0o444)
    try:
        assert store.audit().clean
        with StoreReader(store.db.url) as reader:
            with pytest.raises(DBAPIError, match=REFUSED):
                reader.connection.exec_driver_sql("DELETE FROM batches")
            with pytest.raises(DBAPIError, match=REFUSED):
                reader.connection.exec_driver_sql("CREATE TABLE intruder (x INTEGER)")
    finally:
        path.chmod(0o644)
    after = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    assert after == before
    with sqlite3.connect(path) as check:  # the file is still a sound database
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_readers_connection_refuses_writes(database: Database) -> None:
    with StoreReader(database.url) as reader:
        assert reader.log_heads()  # it reads
        with pytest.raises(DBAPIError, match=REFUSED):
            reader.connection.exec_driver_sql(
                "UPDATE log_heads SET next_position = 99 WHERE log = 'suggestions'"
            )
    with database.sessions() as session:
        assert (
            session.scalar(text("SELECT next_position FROM log_heads WHERE log = 'suggestions'"))
            == 0
        )


# -- the command line ---------------------------------------------------------------------


def test_the_cli_names_the_record_and_exits_1(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    target = store.row(position(B, 1))
    record = json.loads(target.canonical)
    record["body"]["to"] = "REJECTED"
    set_canonical(store.db, target.position, canonical_bytes(record))
    argv = ["audit", "--database-url", store.db.url, "--rpc", store.rpc, "--progress"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert "NOT CLEAN: 1 finding" in captured.out
    assert "altered (1):" in captured.out
    assert (
        f"suggestions, batch 1, position {position(B, 1)}, {store.codes[B]}, seq 1" in captured.out
    )
    assert target.leaf_hash.hex() in captured.out
    assert "records" in captured.err and "100%" in captured.err  # the progress bar, forced
    assert main([*argv[:-1], "--json", "--contract", store.contract]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["clean"] is False and answer["counts"] == {"altered": 1}
    assert answer["findings"][0]["record_hash"] == target.leaf_hash.hex()


def test_the_cli_exits_2_when_it_cannot_audit(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = f"sqlite:///{tmp_path / 'nowhere.db'}"
    assert main(["audit", "--database-url", missing, "--no-progress"]) == 2
    assert "no SQLite database" in capsys.readouterr().err
    assert main(["audit", "--database-url", "not a url", "--no-progress"]) == 2
    capsys.readouterr()
    # A store that names a contract, and a chain endpoint nobody answers on.
    dead = "http://127.0.0.1:9"
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO batches (log, number, first_position, size, root, state, sealed_at, "
                "contract, chain_id) VALUES ('suggestions', 0, 0, 1, :r, 'sent', :t, :c, 1337)"
            ),
            {"r": b"\x01" * 32, "t": datetime.now(UTC), "c": "0x" + "ab" * 20},
        )
    with open_store(database.url) as reader, pytest.raises(ChainUnreachable):
        audit_store(reader, Web3ChainReader(dead, timeout=2))
    assert main(["audit", "--database-url", database.url, "--rpc", dead, "--no-progress"]) == 2
    assert "cannot reach" in capsys.readouterr().err


def test_help_lists_audit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--database-url", "--rpc", "--contract", "--deadline-minutes", "--json"):
        assert option in out
