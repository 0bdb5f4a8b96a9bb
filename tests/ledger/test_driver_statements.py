"""The write path's driver statements (ledger.db.DriverStatement) store exactly what the ORM
reads back, and fail as SQLAlchemy would, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ledger import repository as repo
from ledger.models import SuggestionRow, TrailHead
from tests.fixtures.db import Database

# A time given in another zone is stored as the same instant in UTC, as UTCDateTime does.
CHINA = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 28, 12, 30, 5, 123456, tzinfo=CHINA)


def test_rows_written_by_driver_statements_read_back_through_the_orm(database: Database) -> None:
    with database.sessions.begin() as session:
        repo.insert_suggestion(
            session,
            tracking_code="SG-AAAA-BBBB-CCCC",
            state="SUBMITTED",
            category="城乡建设",
            district="鼓楼区",
            channel="web",
            submitted_at=AT,
            updated_at=AT,
            confidential=True,
        )
        repo.advance_trail(
            session, "suggestions", "SG-AAAA-BBBB-CCCC", 1, b"\x01" * 32, AT, new=True
        )
    with database.sessions() as session:
        row = session.get(SuggestionRow, "SG-AAAA-BBBB-CCCC")
        head = session.scalars(select(TrailHead)).one()
    assert row is not None
    # Model defaults apply to the columns not given, as with an ORM or Core insert.
    assert (row.title, row.submitter_role, row.key_supervision) == ("", "citizen", False)
    assert row.confidential is True and row.due_at is None
    assert row.submitted_at == AT and row.submitted_at.tzinfo is not None
    assert row.submitted_at.utcoffset() == timedelta(0)
    assert (head.next_seq, head.last_leaf_hash, head.last_at) == (1, b"\x01" * 32, AT)

    with database.sessions.begin() as session:
        found, stored = repo.locked_suggestion(session, "SG-AAAA-BBBB-CCCC")
        assert found is not None and stored["confidential"] is True
        assert stored["submitted_at"] == AT and stored["submitted_at"].tzinfo == UTC
        end = repo.trail_head(session, "suggestions", "SG-AAAA-BBBB-CCCC")
        assert end == (1, b"\x01" * 32, AT) and end is not None and end.last_at.tzinfo == UTC
        found.state, found.answered_on_time = "ANSWERED", False
        repo.update_suggestion(session, found, stored)
    with database.sessions() as session:
        row = session.get(SuggestionRow, "SG-AAAA-BBBB-CCCC")
    assert row is not None and (row.state, row.answered_on_time) == ("ANSWERED", False)
    with database.sessions() as session:
        assert repo.locked_suggestion(session, "SG-NONE-NONE-NONE") == (None, {})


def test_a_constraint_violation_is_sqlalchemys_integrity_error_and_undoes_nothing_else(
    database: Database,
) -> None:
    with database.sessions.begin() as session:
        repo.advance_trail(session, "suggestions", "SG-X", 1, b"\x01" * 32, AT, new=True)
    with database.sessions() as session:
        position = repo.claim_position(session, "suggestions")
        with pytest.raises(IntegrityError, match="trail_heads"):
            repo.advance_trail(session, "suggestions", "SG-X", 1, b"\x02" * 32, AT, new=True)
        session.rollback()
        # The transaction is usable again after the rollback; the claimed position was undone.
        assert repo.claim_position(session, "suggestions") == position
        session.rollback()
    with pytest.raises(LookupError, match="unknown log"), database.sessions.begin() as session:
        repo.claim_position(session, "nosuchlog")
