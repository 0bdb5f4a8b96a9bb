"""PROTOCOL §7: erase a record's content, keep its leaf hash proven.

The record row keeps every column but its canonical bytes, which become empty — the one
change the append-only triggers allow, and only once a redaction row exists for it. The
batch root and every other record's proof stay valid; the receipt of the erased record
carries ``"record": null``, its ``leaf_hash`` and ``"redaction": {"at", "reason"}``. The
redaction itself is recorded in the ``access`` log, so the audit can tell it from a deletion.
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from core.clock import Clock, utc_now
from core.records import RecordType, format_at
from ledger import repository as repo
from ledger import service
from ledger.auth import Role, get_account
from ledger.errors import Conflict, InvalidInput, RecordNotFound
from ledger.models import RecordRow, Redaction, SuggestionPrivate, SuggestionRow


def redact(
    session: Session,
    record_hash: str,
    *,
    reason: str,
    admin_id: str,
    clock: Clock = utc_now,
) -> str:
    """Erase the content of one record; returns the hash of the ``record.redacted`` record."""
    admin = get_account(session, admin_id)
    if admin is None or admin.role != Role.ADMIN.value or admin.disabled_at is not None:
        raise InvalidInput(f"{admin_id!r} is not an active admin account")
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidInput("a redaction needs a reason of 1 to 500 characters")
    leaf = service.parse_record_hash(record_hash)
    row = repo.record_by_hash(session, leaf)
    if row is None:
        raise RecordNotFound(f"no record has hash {record_hash}")
    if session.get(Redaction, leaf) is not None:
        raise Conflict(f"record {record_hash} is already redacted")
    now = clock()
    session.add(Redaction(leaf_hash=leaf, at=format_at(now), reason=reason, by=admin_id))
    session.flush()
    session.execute(update(RecordRow).where(RecordRow.id == row.id).values(canonical=b""))
    if row.log == "suggestions" and row.type == RecordType.SUGGESTION_SUBMITTED:
        # The summary row and the encrypted data copy the erased content: erase them too.
        session.execute(
            update(SuggestionRow).where(SuggestionRow.tracking_code == row.subject).values(title="")
        )
        session.execute(
            delete(SuggestionPrivate).where(SuggestionPrivate.tracking_code == row.subject)
        )
    sealed = service.append_record(
        session,
        log="access",
        type="record.redacted",
        subject=admin_id,
        actor={"role": Role.ADMIN.value, "id": admin_id},
        body={"record_hash": record_hash, "log": row.log, "reason": reason},
        clock=clock,
    )
    return sealed.record_hash
