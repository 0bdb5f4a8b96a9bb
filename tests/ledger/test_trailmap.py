"""The map of trail heads in the store (PROTOCOL §10): every batch ends with a
``ledger.map_head`` record whose root is the map of every trail's head before it, and the
store proves any subject, present or absent, against the map of any batch."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core import trailmap
from core.records import MAP_HEAD_TYPE, MAP_SUBJECT
from ledger import repository as repo
from ledger import service
from ledger import trailmap as maps
from ledger.models import BatchRow, LogHead, RecordRow
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from tests.verifier.test_audit import attack


def _append(db: Database, subject: str, n: int = 1) -> None:
    with db.sessions.begin() as session:
        for _ in range(n):
            service.append_record(
                session,
                log="suggestions",
                type="suggestion.flagged",
                subject=subject,
                actor={"role": "staff", "id": "u1"},
                body={"reason": "test"},
            )


def _seal(db: Database) -> BatchRow:
    worker = AnchoringWorker(
        engine=db.engine,
        session_factory=db.sessions,
        chain=None,  # type: ignore[arg-type] - sealing never talks to the chain
        config=WorkerConfig(contract="0x0", logs=["suggestions"], anchor_interval=0.0),
    )
    batch = worker.seal("suggestions", force=True)
    assert batch is not None
    return batch


def _heads_before(db: Database, end: int) -> dict[bytes, bytes]:
    """The map by its definition: the last record of every subject before ``end``."""
    with db.sessions() as session:
        rows = session.execute(
            select(RecordRow.subject, RecordRow.seq, RecordRow.leaf_hash)
            .where(RecordRow.log == "suggestions", RecordRow.position < end)
            .order_by(RecordRow.position)
        ).all()
    return {
        trailmap.key_of(s): trailmap.value_of(seq, bytes(leaf))
        for s, seq, leaf in rows
        if s != MAP_SUBJECT
    }


def _map_head(db: Database, batch: BatchRow) -> dict:
    with db.sessions() as session:
        row = session.execute(
            select(RecordRow).where(
                RecordRow.log == "suggestions",
                RecordRow.position == batch.first_position + batch.size - 1,
            )
        ).scalar_one()
        return json.loads(row.canonical)


def test_every_batch_ends_with_the_map_of_every_trail_head_before_it(database: Database) -> None:
    rng = random.Random(7)
    subjects = [f"SG-{i:04d}" for i in range(40)]
    batches = []
    for _ in range(5):
        for subject in rng.sample(subjects, 12):
            _append(database, subject, rng.randint(1, 3))
        batches.append(_seal(database))
    for number, batch in enumerate(batches):
        head = _map_head(database, batch)
        index = batch.first_position + batch.size - 1
        assert head["type"] == MAP_HEAD_TYPE and head["subject"] == MAP_SUBJECT
        assert head["actor"] == {"role": "system", "id": "sealer"}
        assert head["seq"] == number  # the map's own trail, one record per batch
        pairs = _heads_before(database, index)
        assert head["body"] == {
            "batch": number,
            "index": index,
            "map_root": trailmap.map_root(pairs).hex(),
            "trails": len(pairs),
        }


def test_the_store_proves_present_and_absent_subjects_in_the_map_of_any_batch(
    database: Database,
) -> None:
    subjects = [f"SG-{i:04d}" for i in range(30)]
    batches = []
    for round_ in range(4):
        for subject in subjects[: 10 * (round_ + 1)]:
            _append(database, subject)
        batches.append(_seal(database))
    for batch in batches:
        root = bytes.fromhex(_map_head(database, batch)["body"]["map_root"])
        pairs = _heads_before(database, batch.first_position + batch.size - 1)
        with database.sessions() as session:
            stored = repo.batch_containing(session, "suggestions", batch.first_position)
            for subject in [*subjects, "SG-NEVER", "SG-9999"]:
                answer = maps.prove(session, stored, subject)
                proven = trailmap.verify(root, subject, answer.proof)
                expected = pairs.get(trailmap.key_of(subject))
                assert proven == (None if expected is None else trailmap.split_value(expected))


def test_a_rebuilt_map_gives_every_batchs_root_and_a_changed_record_is_named(
    database: Database,
) -> None:
    for round_ in range(3):
        for i in range(8):
            _append(database, f"SG-{(i * 3 + round_) % 11:04d}")
        _seal(database)
    with database.sessions.begin() as session:
        head = session.get(LogHead, "suggestions")
        before = (head.map_until, head.map_trails)
        assert maps.rebuild(session, head) == 3
        assert (head.map_until, head.map_trails) == before
    _append(database, "SG-0001")
    last = _seal(database)  # the rebuilt map carries on
    body = _map_head(database, last)["body"]
    assert body["map_root"] == trailmap.map_root(_heads_before(database, body["index"])).hex()

    attack(  # a record changed under the map, past the append-only triggers
        database,
        (
            "UPDATE records SET leaf_hash = :h WHERE log = 'suggestions' AND position = 3",
            {"h": bytes(32)},
        ),
    )
    with database.sessions.begin() as session, pytest.raises(RuntimeError, match="batch 0"):
        maps.rebuild(session, session.get(LogHead, "suggestions"))


def test_a_store_sealed_before_the_map_catches_up_at_its_next_seal(database: Database) -> None:
    for i in range(6):
        _append(database, f"SG-{i:04d}")
    with database.sessions.begin() as session:  # as a version 2 store before §10 sealed it
        head = session.get(LogHead, "suggestions")
        session.add(
            BatchRow(
                log="suggestions",
                number=0,
                first_position=0,
                size=6,
                root=bytes(32),
                state="sealed",
                sealed_at=datetime.now(UTC),
            )
        )
        head.sealed_until = 6
    _append(database, "SG-0002")
    _append(database, "SG-0100")
    batch = _seal(database)
    body = _map_head(database, batch)["body"]
    assert body["trails"] == 7
    assert body["map_root"] == trailmap.map_root(_heads_before(database, body["index"])).hex()


def test_civic_ledger_map_rebuild_replays_every_log_and_names_a_forged_map_head(
    tmp_path: Path,
) -> None:
    from ledger.db import make_engine, make_session_factory
    from ledger.migrate import upgrade
    from tests.ledger.test_cli import run

    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'civic-ledger.db'}"
    engine = make_engine(url)
    upgrade(engine)
    store = Database("sqlite", url, engine, make_session_factory(engine))
    for round_ in range(2):
        for i in range(3):
            _append(store, f"SG-{i + round_:04d}")
        _seal(store)
    result = run(tmp_path, "map", "rebuild")
    assert result.returncode == 0, result.stderr
    assert "suggestions\t2 map heads replayed, 4 trails" in result.stdout

    attack(  # the second map head's root, rewritten in the store
        store,
        (
            "UPDATE records SET canonical = CAST(replace(canonical, 'map_root\":\"', "
            "'map_root\":\"00') AS BLOB) WHERE log = 'suggestions' AND subject = 'ledger/map' AND seq = 1",
            {},
        ),
    )
    result = run(tmp_path, "map", "rebuild", "--log", "suggestions")
    assert result.returncode == 1 and "batch 1's map head" in result.stderr
    engine.dispose()
