"""The store: records are appended with linked trails and can never be changed."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from core.records import check_record_shape, record_leaf_hash
from ledger import service, suggestions
from ledger.models import RecordRow
from ledger.pii import Vault
from ledger.schemas import SuggestionIn
from tests.fixtures.db import Database, append_records

VAULT = Vault(secrets.token_bytes(32))
SUGGESTION = SuggestionIn(
    title="路灯不亮", text="幸福路口的路灯坏了三周。", category="城乡建设", district="鼓楼区"
)


def test_submission_is_a_protocol_record_whose_hash_is_its_identity(database: Database) -> None:
    with database.sessions.begin() as session:
        submitted = suggestions.submit(session, SUGGESTION, principal=None, vault=VAULT)
        code, sealed = submitted.tracking_code, submitted.sealed
    with database.sessions() as session:
        row = session.scalars(select(RecordRow)).one()
    record = json.loads(row.canonical)
    check_record_shape(record)
    assert record_leaf_hash(record).hex() == sealed.record_hash == row.leaf_hash.hex()
    assert record["subject"] == code and record["seq"] == 0 and record["prev"] is None
    assert record["type"] == "suggestion.submitted" and record["log"] == "suggestions"
    assert record["body"] == {
        "title": "路灯不亮",
        "text": "幸福路口的路灯坏了三周。",
        "category": "城乡建设",
        "district": "鼓楼区",
        "channel": "web",
    }
    assert record["actor"]["role"] == "citizen" and record["actor"]["id"].startswith("anon-")
    assert code.startswith("SG-") and len(code) == 17


def test_trail_records_link_to_their_predecessor_and_positions_are_dense(
    database: Database,
) -> None:
    a = append_records(database, 3, "SG-A")
    b = append_records(database, 2, "SG-B")
    with database.sessions() as session:
        rows = session.scalars(select(RecordRow).order_by(RecordRow.position)).all()
    assert [r.position for r in rows] == [0, 1, 2, 3, 4]
    records = {r.leaf_hash.hex(): json.loads(r.canonical) for r in rows}
    for trail in (a, b):
        assert [records[h]["seq"] for h in trail] == list(range(len(trail)))
        assert records[trail[0]]["prev"] is None
        for before, after in pairwise(trail):
            assert records[after]["prev"] == before


def test_trail_time_never_goes_backwards_even_if_the_clock_does(database: Database) -> None:
    late = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
    with database.sessions.begin() as session:
        first = service.append_record(
            session,
            log="votes",
            type="simulation.opened",
            subject="SIM-1",
            actor={"role": "staff", "id": "s"},
            body={},
            clock=lambda: late,
        )
    with database.sessions.begin() as session:
        second = service.append_record(
            session,
            log="votes",
            type="simulation.closed",
            subject="SIM-1",
            actor={"role": "staff", "id": "s"},
            body={},
            clock=lambda: late - timedelta(minutes=5),
        )
    assert second.record["at"] >= first.record["at"] == "2026-11-27T10:00:00.000Z"


def test_records_cannot_be_updated_or_deleted(database: Database) -> None:
    append_records(database, 1, "SG-X")
    for statement in (
        update(RecordRow).values(canonical=b"{}"),
        update(RecordRow).values(subject="SG-Y"),
        delete(RecordRow),
    ):
        with pytest.raises(DBAPIError, match="append-only"), database.sessions.begin() as session:
            session.execute(statement)
    if database.backend == "postgres":
        with pytest.raises(DBAPIError, match="append-only"), database.engine.begin() as conn:
            conn.execute(text("TRUNCATE records"))
    with database.sessions() as session:
        assert session.scalar(select(RecordRow.subject)) == "SG-X"


def test_a_failed_request_leaves_nothing_behind(database: Database) -> None:
    with pytest.raises(RuntimeError), database.sessions.begin() as session:
        suggestions.submit(session, SUGGESTION, principal=None, vault=VAULT)
        raise RuntimeError("the request failed after the record was flushed")
    with database.sessions() as session:
        assert session.scalar(select(RecordRow.id)) is None
        assert service.anchoring_lag(session)["suggestions"]["records"] == 0


def test_concurrent_appends_get_unique_dense_positions_and_unbroken_trails(
    database: Database,
) -> None:
    errors: list[BaseException] = []

    def writer(subject: str) -> None:
        try:
            append_records(database, 15, subject)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"SG-{i % 3}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with database.sessions() as session:
        rows = session.scalars(select(RecordRow).order_by(RecordRow.position)).all()
    assert [r.position for r in rows] == list(range(90))
    by_subject: dict[str, list[dict]] = {}
    for r in rows:
        by_subject.setdefault(r.subject, []).append(json.loads(r.canonical))
    for trail in by_subject.values():
        trail.sort(key=lambda rec: rec["seq"])
        assert [rec["seq"] for rec in trail] == list(range(30))
        for before, after in pairwise(trail):
            assert after["prev"] == record_leaf_hash(before).hex()
