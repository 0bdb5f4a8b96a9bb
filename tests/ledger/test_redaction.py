"""PROTOCOL §7 against a real chain and database: an erased record is reported `redacted`,
every other proof stays valid, and erasing is the only change a record row allows."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from core.verdicts import Verdict
from ledger import auth, service, suggestions
from ledger.errors import Conflict, InvalidInput
from ledger.models import RecordRow, SuggestionPrivate, SuggestionRow
from ledger.pii import Vault
from ledger.redaction import redact
from ledger.schemas import ContactIn, SuggestionIn
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import Database
from verifier.chain import Web3ChainReader
from verifier.receipt import verify_receipt

pytestmark = pytest.mark.chain
VAULT = Vault(secrets.token_bytes(32))


def _submit(db: Database, n: int) -> list[suggestions.Submitted]:
    out = []
    with db.sessions.begin() as session:
        for i in range(n):
            data = SuggestionIn(
                title=f"第{i}条",
                text="楼道灯坏了",
                category="城乡建设",
                district="鼓楼区",
                contact=ContactIn(name="赵秀英", phone="13912345678"),
            )
            out.append(suggestions.submit(session, data, principal=None, vault=VAULT))
    return out


def test_redacted_record_is_reported_redacted_and_the_rest_stay_valid(
    database: Database, registry, ganache
) -> None:  # type: ignore[no-untyped-def]
    submitted = _submit(database, 3)
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(
            contract=registry.address, anchor_interval=0, logs=["suggestions", "access"]
        ),
    )
    worker.step()
    with database.sessions.begin() as session:
        admin = auth.add_account(session, role="admin", name="管理员")
    target = submitted[0]
    with database.sessions.begin() as session:
        event = redact(session, target.sealed.record_hash, reason="本人申请删除", admin_id=admin.id)
    while worker.step():
        pass

    reader = Web3ChainReader(ganache.rpc_url)
    with database.sessions() as session:
        erased = service.receipt(session, target.sealed.record_hash)
        assert isinstance(erased, dict)
        assert erased["record"] is None and erased["leaf_hash"] == target.sealed.record_hash
        assert erased["redaction"]["reason"] == "本人申请删除"
        assert verify_receipt(erased, reader).verdict is Verdict.REDACTED
        for other in submitted[1:]:
            receipt = service.receipt(session, other.sealed.record_hash)
            assert verify_receipt(receipt, reader).verdict is Verdict.VALID
        event_receipt = service.receipt(session, event)
        assert verify_receipt(event_receipt, reader).verdict is Verdict.VALID
        assert event_receipt["record"]["type"] == "record.redacted"
        assert event_receipt["record"]["body"]["record_hash"] == target.sealed.record_hash

        trail = suggestions.trail(session, target.tracking_code)
        assert trail["records"][0]["record"] is None
        assert session.get(SuggestionRow, target.tracking_code).title == ""
        assert session.get(SuggestionPrivate, target.tracking_code) is None
        assert session.get(SuggestionPrivate, submitted[1].tracking_code) is not None

    with database.sessions.begin() as session, pytest.raises(Conflict, match="already redacted"):
        redact(session, target.sealed.record_hash, reason="again", admin_id=admin.id)
    for who in ("nobody", submitted[1].tracking_code):
        with (
            database.sessions.begin() as session,
            pytest.raises(InvalidInput, match="not an active admin"),
        ):
            redact(session, submitted[1].sealed.record_hash, reason="x", admin_id=who)
    for worker_state in worker.logs:
        worker_state.lock.release()


def test_erasing_is_the_only_update_a_record_row_allows(database: Database) -> None:
    [first, second] = _submit(database, 2)
    with database.sessions.begin() as session:
        admin = auth.add_account(session, role="admin", name="管理员")
    with database.sessions.begin() as session:
        redact(session, first.sealed.record_hash, reason="本人申请", admin_id=admin.id)
    leaf_first, leaf_second = first.sealed.leaf_hash, second.sealed.leaf_hash
    refused = [
        # no redaction row for this record
        update(RecordRow).where(RecordRow.leaf_hash == leaf_second).values(canonical=b""),
        # a redacted record cannot get content back, nor change anything else
        update(RecordRow).where(RecordRow.leaf_hash == leaf_first).values(canonical=b"{}"),
        update(RecordRow).where(RecordRow.leaf_hash == leaf_first).values(subject="SG-FAKE"),
    ]
    for statement in refused:
        with pytest.raises(DBAPIError, match="append-only"), database.sessions.begin() as session:
            session.execute(statement)
    with database.sessions() as session:
        assert session.scalar(select(RecordRow.canonical).where(RecordRow.leaf_hash == leaf_second))
