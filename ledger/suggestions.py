"""The suggestion workflow service: submit, move through the published state machine,
read publicly, read personal data (audited), flag. Every change is a record.

Services flush; the request's unit of work commits. Authorisation lives here, next to the
rules it protects, so the API, the CLI and the tests all go through the same checks.
"""

from __future__ import annotations

import calendar
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core import codes
from core.clock import Clock, utc_now
from core.records import RecordType, SealedRecord
from core.workflow import (
    CHINESE_NAMES,
    ReplyCategory,
    SuggestionState,
    TrailFacts,
    allowed_next,
    evaluation_outcome,
)
from ledger import attachments, service
from ledger import repository as repo
from ledger.auth import Forbidden, Principal, Role, hash_token, known_offices, new_citizen_token
from ledger.errors import Conflict, InvalidInput, NotFound, SuggestionNotFound
from ledger.models import AccessReason, Account, Attachment, SuggestionPrivate, SuggestionRow
from ledger.pii import Vault, commitment, new_commitment_salt
from ledger.schemas import FlagIn, SuggestionIn, TransitionIn

S = SuggestionState
LOG = "suggestions"
#: states in which an office owes a reply by ``due_at``
AWAITING_REPLY = frozenset({S.ASSIGNED, S.IN_PROGRESS, S.REASSIGN_REQUESTED, S.REHANDLING})


class IllegalTransition(Conflict):
    pass


@dataclass(frozen=True)
class Policy:
    reply_due_months: int = 3
    rehandling_due_months: int = 1
    evaluation_days: int = 30


@dataclass(frozen=True)
class Submitted:
    tracking_code: str
    sealed: SealedRecord
    citizen_token: str | None


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 → 28/29 Feb)."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59, 999000), tzinfo=UTC)


def new_tracking_code() -> str:
    """``SG-XXXX-XXXX-XXXX``: 60 random bits in Crockford base32, easy to read out on a phone."""
    return codes.tracking_code(secrets.choice)


def get_row(session: Session, tracking_code: str, *, for_update: bool = False) -> SuggestionRow:
    row = repo.suggestion(session, tracking_code, for_update=for_update)
    if row is None:
        raise SuggestionNotFound(f"no suggestion has tracking code {tracking_code}")
    return row


# -- submit -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedSubmission:
    """What a submission writes, worked out before the write lock is taken (no database):
    the tracking code, the record's body, the sealed personal data, the submitter."""

    data: SuggestionIn
    channel: str
    tracking_code: str
    body: dict[str, Any]
    private_contact: bytes | None
    private_text: bytes | None
    submitter: Principal
    citizen_token: str | None


def prepare_submission(
    data: SuggestionIn,
    *,
    principal: Principal | None,
    vault: Vault,
    channel: str = "web",
    tracking_code: str | None = None,
) -> PreparedSubmission:
    """The part of 群众提 that needs no database: who may submit, a fresh tracking code,
    the salted commitments and the encrypted contact data and confidential text (bound to
    the tracking code), and for a citizen a fresh pseudonym and citizen token.

    The API runs this on the event loop and only ``store_submission`` in the writer thread,
    so the write lock is held for the statements alone."""
    if principal is not None and principal.role is not Role.DEPUTY:
        raise Forbidden("only citizens (without a token) and deputies submit suggestions")
    tracking_code = tracking_code or new_tracking_code()
    body: dict[str, Any] = {
        "title": data.title,
        "category": data.category,
        "district": data.district,
        "channel": channel,
    }
    private_text = private_contact = None
    if data.confidential:
        body["confidential"] = True
        private_text = vault.seal(_hide_confidential(data, body), f"text:{tracking_code}")
    else:
        body["text"] = data.text
    if data.contact is not None:
        contact = data.contact.model_dump()
        salt = new_commitment_salt()
        body["contact_commitment"] = commitment(contact, salt)
        private_contact = vault.seal(
            {"contact": contact, "salt": salt.hex()}, f"contact:{tracking_code}"
        )
    if data.deputy:
        body["addressed_to"] = data.deputy
    if data.attachments and not data.confidential:
        body["attachments"] = list(data.attachments)
    if principal is None:
        submitter = Principal(Role.CITIZEN, "anon-" + secrets.token_hex(8))
        citizen_token: str | None = new_citizen_token()
    else:
        submitter, citizen_token = principal, None
    return PreparedSubmission(
        data=data,
        channel=channel,
        tracking_code=tracking_code,
        body=body,
        private_contact=private_contact,
        private_text=private_text,
        submitter=submitter,
        citizen_token=citizen_token,
    )


# What the public record says in place of a confidential suggestion's title (PROTOCOL §6 asks
# for a ``title`` member; the real one is behind ``title_commitment``).
HIDDEN_TITLE = "保密建议"


def _hide_confidential(data: SuggestionIn, body: dict[str, Any]) -> dict[str, Any]:
    """保密: put commitments in the record ``body`` in place of the text, the title (unless
    the citizen chose to show it) and the attachments' hashes; the values and their salts,
    to be sealed in ``suggestion_private.text``. Each commitment is ``SHA-256(salt ||
    JCS(value))`` with a salt of its own (ledger.pii.commitment), so whoever reads one of them
    can show that it opens without learning the others."""
    salt = new_commitment_salt()
    body["content_commitment"] = commitment(data.text, salt)
    private: dict[str, Any] = {"text": data.text, "salt": salt.hex()}
    if not data.title_public:
        salt = new_commitment_salt()
        body["title"] = HIDDEN_TITLE
        body["title_commitment"] = commitment({"title": data.title}, salt)
        private |= {"title": data.title, "title_salt": salt.hex()}
    if data.attachments:
        salt = new_commitment_salt()
        body["attachments_commitment"] = commitment({"attachments": list(data.attachments)}, salt)
        private |= {"attachments": list(data.attachments), "attachments_salt": salt.hex()}
    return private


def store_submission(
    session: Session,
    prepared: PreparedSubmission,
    *,
    vault: Vault,
    clock: Clock = utc_now,
) -> Submitted:
    """The part of 群众提 that writes: the checks against the store (the addressed deputy,
    the attachments, a tracking code not yet taken), then the first record of the trail and
    the suggestion's rows."""
    data = prepared.data
    if data.deputy is not None:
        deputy = session.get(Account, data.deputy)
        if deputy is None or deputy.role != Role.DEPUTY.value or deputy.disabled_at is not None:
            raise InvalidInput(f"no deputy {data.deputy!r}")
    while repo.suggestion_exists(session, prepared.tracking_code):
        # 60 random bits: practically never. The sealed data is bound to the code: redo it.
        principal = None if prepared.citizen_token else prepared.submitter
        prepared = prepare_submission(
            data, principal=principal, vault=vault, channel=prepared.channel
        )
    tracking_code, submitter = prepared.tracking_code, prepared.submitter
    # once the tracking code is final: the files become this suggestion's
    attachments.require_cited(session, data.attachments, clock(), suggestion=tracking_code)
    sealed = service.append_record(
        session,
        log=LOG,
        type=RecordType.SUGGESTION_SUBMITTED,
        subject=tracking_code,
        actor=submitter.actor,
        body=prepared.body,
        clock=clock,
        new_subject=True,  # the tracking code was just found free, and its trail starts here
    )
    now = clock()
    repo.insert_suggestion(
        session,
        tracking_code=tracking_code,
        state=S.SUBMITTED.value,
        title=prepared.body["title"],  # a hidden title stays hidden in listings too
        category=data.category,
        district=data.district,
        channel=prepared.channel,
        submitted_at=now,
        updated_at=now,
        citizen_token_hash=hash_token(prepared.citizen_token) if prepared.citizen_token else None,
        submitter_role=submitter.role.value,
        submitter_id=submitter.id,
        deputy_id=data.deputy or (submitter.id if submitter.role is Role.DEPUTY else None),
        confidential=data.confidential,
    )
    if prepared.private_contact is not None or prepared.private_text is not None:
        repo.insert_private(
            session,
            tracking_code=tracking_code,
            contact=prepared.private_contact,
            text=prepared.private_text,
        )
    return Submitted(tracking_code, sealed, prepared.citizen_token)


def submit(
    session: Session,
    data: SuggestionIn,
    *,
    principal: Principal | None,
    vault: Vault,
    clock: Clock = utc_now,
    channel: str = "web",
) -> Submitted:
    """群众提: a suggestion becomes the first record of a new trail.

    A citizen (no account) is recorded under a fresh pseudonym and gets a citizen token; a
    deputy submits under their account. Contact data and, when confidential, the text are
    encrypted; the record carries salted commitments to them.
    """
    prepared = prepare_submission(data, principal=principal, vault=vault, channel=channel)
    return store_submission(session, prepared, vault=vault, clock=clock)


# -- transitions --------------------------------------------------------------------------


def facts_of(row: SuggestionRow) -> TrailFacts:
    return TrailFacts(
        submitted_by_deputy=row.submitter_role == Role.DEPUTY.value,
        reply_category=ReplyCategory(row.reply_category) if row.reply_category else None,
    )


def _is_submitter(principal: Principal, row: SuggestionRow) -> bool:
    if principal.role is Role.CITIZEN:
        return principal.tracking_code == row.tracking_code
    return principal.role is Role.DEPUTY and row.submitter_id == principal.id


def deputy_in_scope(principal: Principal, row: SuggestionRow) -> bool:
    """A deputy acts on suggestions of their district or addressed to them."""
    return principal.role is Role.DEPUTY and (
        row.deputy_id == principal.id
        or (principal.district is not None and principal.district == row.district)
    )


def handles(principal: Principal, row: SuggestionRow) -> bool:
    """Whether the principal is one of those handling this suggestion (may read its contact)."""
    if principal.role is Role.STAFF:
        return True
    if principal.role is Role.DEPUTY:
        return deputy_in_scope(principal, row)
    if principal.role is Role.OFFICE:
        return principal.office in row.office_list
    return False


def _authorize(principal: Principal, row: SuggestionRow, req: TransitionIn) -> None:
    to, role = req.to, principal.role
    if role is Role.CITIZEN and principal.tracking_code != row.tracking_code:
        raise Forbidden("this citizen token belongs to another suggestion")
    who: str
    if to in (S.DEPUTY_ACCEPTED, S.ANSWERED_DIRECT):
        who, ok = (
            "a deputy of the suggestion's district (or the one it is addressed to)",
            deputy_in_scope(principal, row),
        )
    elif to in (S.REJECTED, S.MERGED):
        who = "congress staff, or a deputy of the suggestion's district"
        ok = role is Role.STAFF or deputy_in_scope(principal, row)
    elif to is S.WITHDRAWN:
        who, ok = "the submitter (with the citizen token)", _is_submitter(principal, row)
    elif to is S.ASSIGNED:
        who, ok = "congress staff", role is Role.STAFF
    elif to in (S.IN_PROGRESS, S.REASSIGN_REQUESTED, S.ANSWERED, S.FOLLOW_UP):
        who = f"the lead handling office ({row.lead_office})"
        ok = role is Role.OFFICE and principal.office == row.lead_office
    elif to is S.REHANDLING or (to is S.CLOSED and req.level is not None):
        who, ok = "the submitter (with the citizen token)", _is_submitter(principal, row)
    elif to is S.CLOSED:
        who, ok = "congress staff, once the evaluation period has passed", role is Role.STAFF
    else:  # pragma: no cover - every state is listed above
        who, ok = "nobody", False
    if not ok:
        raise Forbidden(
            f"moving a suggestion to {to.value} is for {who}; you are {role.value} {principal.id}"
        )


_FIELDS = ("offices", "due", "category", "reply_sha256", "level", "reason", "merged_into")
_REQUIRED: dict[SuggestionState, tuple[str, ...]] = {
    S.REJECTED: ("reason",),
    S.ANSWERED_DIRECT: ("reason",),
    S.MERGED: ("merged_into",),
    S.ASSIGNED: ("offices",),
    S.REASSIGN_REQUESTED: ("reason",),
    S.ANSWERED: ("category", "reply_sha256"),
    S.REHANDLING: ("level",),
}
_OPTIONAL: dict[SuggestionState, tuple[str, ...]] = {
    S.DEPUTY_ACCEPTED: ("reason",),
    S.ANSWERED_DIRECT: ("reply_sha256",),
    S.WITHDRAWN: ("reason",),
    S.MERGED: ("reason",),
    S.ASSIGNED: ("due", "reason"),
    S.IN_PROGRESS: (),
    S.ANSWERED: ("reason",),
    S.CLOSED: ("level", "reason"),
    S.REHANDLING: ("reason",),
    S.FOLLOW_UP: ("reason",),
}


def _check_fields(req: TransitionIn) -> None:
    required = _REQUIRED.get(req.to, ())
    allowed = set(required) | set(_OPTIONAL.get(req.to, ()))
    given = {name for name in _FIELDS if getattr(req, name) is not None}
    missing = [name for name in required if name not in given]
    if missing:
        raise InvalidInput(f"moving to {req.to.value} needs: {', '.join(missing)}")
    unused = sorted(given - allowed)
    if unused:
        raise InvalidInput(f"moving to {req.to.value} does not take: {', '.join(unused)}")
    if req.level is not None and req.to in (S.CLOSED, S.REHANDLING):
        expected = evaluation_outcome(req.level)
        if expected is not req.to:
            raise InvalidInput(
                f"an evaluation of {req.level.value} moves the suggestion to {expected.value}, not {req.to.value}"
            )


def transition(
    session: Session,
    tracking_code: str,
    req: TransitionIn,
    *,
    principal: Principal,
    policy: Policy = Policy(),
    clock: Clock = utc_now,
) -> tuple[SealedRecord, SuggestionRow]:
    """One step of the workflow, checked against the published table, the actor's role and
    scope, and the fields the step needs; recorded as a ``suggestion.transition``."""
    row, stored = repo.locked_suggestion(session, tracking_code)
    if row is None:
        raise SuggestionNotFound(f"no suggestion has tracking code {tracking_code}")
    current = SuggestionState(row.state)
    allowed = allowed_next(current, facts_of(row))
    if req.to not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none: the suggestion is finished"
        raise IllegalTransition(
            f"{tracking_code} is {current.value} ({CHINESE_NAMES[current]}); it cannot move to "
            f"{req.to.value}. Allowed next states: {names}"
        )
    if principal.role in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden(f"{principal.role.value} accounts read; they do not handle suggestions")
    now = clock()
    _authorize(principal, row, req)
    _check_fields(req)

    body: dict[str, Any] = {"from": current.value, "to": req.to.value}
    if req.to is S.CLOSED and req.level is None:
        answered = row.answered_at
        if answered is not None and now < answered + timedelta(days=policy.evaluation_days):
            raise Conflict(
                f"the submitter may evaluate the reply until "
                f"{(answered + timedelta(days=policy.evaluation_days)).date()}; staff close it "
                "without an evaluation only after that"
            )
        if req.reason is None:
            raise InvalidInput("closing without an evaluation needs a reason")
    if req.offices is not None:
        if len(set(req.offices)) != len(req.offices):
            raise InvalidInput("offices must not repeat")
        unknown = sorted(set(req.offices) - known_offices(session))
        if unknown:
            raise InvalidInput(f"unknown office(s): {', '.join(unknown)}")
        due = end_of_day(req.due) if req.due else add_months(now, policy.reply_due_months)
        if due <= now:
            raise InvalidInput("the due date must be in the future")
        body["offices"] = list(req.offices)
        body["due"] = due.date().isoformat()
    if req.merged_into is not None:
        if req.merged_into == tracking_code:
            raise InvalidInput("a suggestion cannot be merged into itself")
        target = repo.get_suggestion(session, req.merged_into)
        if target is None:
            raise InvalidInput(f"no suggestion {req.merged_into} to merge into")
        body["merged_into"] = req.merged_into
    if req.reply_sha256 is not None:
        attachments.require_cited(session, [req.reply_sha256], now, suggestion=tracking_code)
        body["reply_sha256"] = req.reply_sha256
    if req.category is not None:
        body["category"] = req.category.value
    if req.level is not None:
        body["level"] = req.level.value
    if req.to is S.REHANDLING:
        body["due"] = add_months(now, policy.rehandling_due_months).date().isoformat()
    if req.reason is not None:
        body["reason"] = req.reason

    sealed = service.append_record(
        session,
        log=LOG,
        type=RecordType.SUGGESTION_TRANSITION,
        subject=tracking_code,
        actor=principal.actor,
        body=body,
        clock=clock,
    )
    _apply(row, req, body, principal, now)
    repo.update_suggestion(session, row, stored)
    return sealed, row


def _apply(
    row: SuggestionRow, req: TransitionIn, body: dict[str, Any], principal: Principal, now: datetime
) -> None:
    """Keep the suggestion's summary row in step with the record just written."""
    row.state = req.to.value
    row.updated_at = now
    if req.to is S.DEPUTY_ACCEPTED:
        row.deputy_id = principal.id
    elif req.to is S.ASSIGNED:
        row.offices = json.dumps(body["offices"])
        row.lead_office = body["offices"][0]
        row.due_at = end_of_day(date.fromisoformat(body["due"]))
        row.assigned_at = row.assigned_at or now
    elif req.to is S.ANSWERED:
        row.answered_at = now
        row.first_answered_at = row.first_answered_at or now
        due = row.due_at
        row.answered_on_time = due is None or now <= due
        row.reply_category = body["category"]
    elif req.to is S.ANSWERED_DIRECT:
        row.answered_at = row.first_answered_at = now
        row.closed_at = now
    elif req.to is S.REHANDLING:
        row.last_level = body["level"]
        row.due_at = end_of_day(date.fromisoformat(body["due"]))
    elif req.to is S.CLOSED:
        row.closed_at = now
        row.last_level = body.get("level")
    elif req.to is S.MERGED:
        row.merged_into = body["merged_into"]


def set_flags(
    session: Session,
    tracking_code: str,
    flags: FlagIn,
    *,
    principal: Principal,
    clock: Clock = utc_now,
) -> list[SealedRecord]:
    """重点督办 and 延期, by congress staff; each change is a ``suggestion.flagged`` record."""
    if principal.role is not Role.STAFF:
        raise Forbidden("flags are set by congress staff")
    row = get_row(session, tracking_code, for_update=True)
    if flags.key_supervision is None and flags.extend_due is None:
        raise InvalidInput("give key_supervision and/or extend_due")
    now = clock()
    sealed: list[SealedRecord] = []

    def record(body: dict[str, Any]) -> None:
        if flags.reason:
            body["reason"] = flags.reason
        sealed.append(
            service.append_record(
                session,
                log=LOG,
                type=RecordType.SUGGESTION_FLAGGED,
                subject=tracking_code,
                actor=principal.actor,
                body=body,
                clock=clock,
            )
        )

    if flags.key_supervision is not None and flags.key_supervision != row.key_supervision:
        record({"flag": "key_supervision", "value": flags.key_supervision})
        row.key_supervision = flags.key_supervision
    if flags.extend_due is not None:
        if SuggestionState(row.state) not in AWAITING_REPLY:
            raise Conflict(f"{tracking_code} is {row.state}: no reply is due, nothing to extend")
        if flags.reason is None:
            raise InvalidInput("an extension (延期) needs a reason")
        new_due = end_of_day(flags.extend_due)
        current_due = row.due_at
        if current_due is not None and new_due <= current_due:
            raise InvalidInput(
                f"an extension must move the due date later than {current_due.date()}"
            )
        record({"flag": "extension", "due": flags.extend_due.isoformat()})
        row.due_at = new_due
    if not sealed:
        raise Conflict("nothing changed: the flags already have those values")
    row.updated_at = now
    session.flush()
    return sealed


# -- reading ------------------------------------------------------------------------------


def is_overdue(row: SuggestionRow, now: datetime) -> bool:
    due = row.due_at
    return due is not None and SuggestionState(row.state) in AWAITING_REPLY and now > due


def public_view(row: SuggestionRow, now: datetime) -> dict[str, Any]:
    """What anyone may see: no contact data, no submitter identity, no confidential text."""
    return {
        "tracking_code": row.tracking_code,
        "state": row.state,
        "state_name": CHINESE_NAMES[SuggestionState(row.state)],
        "title": row.title,
        "category": row.category,
        "district": row.district,
        "channel": row.channel,
        "confidential": row.confidential,
        "submitted_by": row.submitter_role,
        "deputy": row.deputy_id,
        "offices": row.office_list,
        "due": row.due_at.date().isoformat() if row.due_at else None,
        "overdue": is_overdue(row, now),
        "key_supervision": row.key_supervision,
        "reply_category": row.reply_category,
        "evaluation": row.last_level,
        "merged_into": row.merged_into,
        "submitted_at": service.iso(row.submitted_at),
        "updated_at": service.iso(row.updated_at),
    }


@dataclass(frozen=True)
class ListFilter:
    state: SuggestionState | None = None
    district: str | None = None
    office: str | None = None
    deputy: str | None = None
    category: str | None = None
    overdue: bool | None = None
    page: int = 1
    per_page: int = 20


def list_suggestions(session: Session, f: ListFilter, now: datetime) -> dict[str, Any]:
    query: Select[SuggestionRow] = select(SuggestionRow)
    if f.state:
        query = query.where(SuggestionRow.state == f.state.value)
    if f.district:
        query = query.where(SuggestionRow.district == f.district)
    if f.category:
        query = query.where(SuggestionRow.category == f.category)
    if f.deputy:
        query = query.where(SuggestionRow.deputy_id == f.deputy)
    if f.office:
        # ``offices`` is the JSON list as json.dumps wrote it, so the quoted code occurs in it
        # exactly when it is one of the list. Not LIKE: ``_`` (allowed in office codes) and
        # ``%`` are wildcards there, and SQLite's LIKE ignores case ("jt" matched "JT").
        # REPLACE compares exactly on both databases.
        element = json.dumps(f.office)
        query = query.where(
            func.replace(SuggestionRow.offices, element, "") != SuggestionRow.offices
        )
    if f.overdue is not None:
        awaiting = SuggestionRow.state.in_([s.value for s in AWAITING_REPLY])
        late = awaiting & (SuggestionRow.due_at < now)
        query = query.where(late if f.overdue else ~late | SuggestionRow.due_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows: Sequence[SuggestionRow] = session.scalars(
        query.order_by(SuggestionRow.submitted_at.desc(), SuggestionRow.tracking_code)
        .offset((f.page - 1) * f.per_page)
        .limit(f.per_page)
    ).all()
    return {
        "total": total,
        "page": f.page,
        "per_page": f.per_page,
        "items": [public_view(row, now) for row in rows],
    }


def trail(session: repo.ReadTarget, tracking_code: str) -> dict[str, Any]:
    """The public trail in seq order: each record, its hash, and its receipt once anchored."""
    state = repo.suggestion_state(session, tracking_code)
    if state is None:
        raise SuggestionNotFound(f"no suggestion has tracking code {tracking_code}")
    records = repo.trail_records(session, LOG, tracking_code)
    entries = []
    for record, receipt in zip(records, service.receipts_of(session, records), strict=True):
        record_hash = record.leaf_hash.hex()
        anchored = not isinstance(receipt, service.ReceiptPending)
        entries.append(
            {
                "record_hash": record_hash,
                "status": "anchored" if anchored else "pending",
                "record": json.loads(record.canonical) if record.canonical else None,
                "receipt": receipt if anchored else None,
            }
        )
    return {
        "tracking_code": tracking_code,
        "state": state,
        "records": entries,
        # PROTOCOL §10/§11: the trail's head in the map of the latest anchored batch, so that
        # anyone can tell the trail shown is the whole trail as of that batch.
        "map": service.trail_map(session, LOG, tracking_code),
    }


def read_private(
    session: Session,
    tracking_code: str,
    field: str,
    *,
    principal: Principal,
    reason: str,
    vault: Vault,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Contact data or a confidential suggestion's content, for those handling the
    suggestion; every read is a ``pii.read`` record in the access log (its subject is the
    reader's account). ``field`` "text" opens the confidential text and, where they are
    hidden too, the title and the attachments, each with the salt of its commitment.

    The reader's reason is free text that may itself tell something about the citizen: the
    record carries ``reason_commitment`` (``SHA-256(salt || JCS({"reason": r}))``) and the
    reason is kept sealed beside it (``access_reasons``), for inspectors (``reading_reason``)."""
    row = get_row(session, tracking_code)
    if not handles(principal, row):
        raise Forbidden(f"only those handling {tracking_code} may read its {field}")
    private = session.get(SuggestionPrivate, tracking_code)
    blob = getattr(private, field, None) if private else None
    if blob is None:
        raise NotFound(f"{tracking_code} has no {field} on file")
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise InvalidInput("say why you read it: reason, 1 to 500 characters")
    opened = vault.open(blob, f"{field}:{tracking_code}")
    salt = new_commitment_salt()
    sealed = service.append_record(
        session,
        log="access",
        type=RecordType.PII_READ,
        subject=principal.id,
        actor=principal.actor,
        body={
            "suggestion": tracking_code,
            "field": field,
            "reason_commitment": commitment({"reason": reason}, salt),
        },
        clock=clock,
    )
    repo.add(
        session,
        AccessReason(
            record_hash=sealed.record_hash,
            sealed=vault.seal(
                {"reason": reason, "salt": salt.hex()}, f"reason:{sealed.record_hash}"
            ),
        ),
    )
    answer = {
        "tracking_code": tracking_code,
        field: opened[field],
        "commitment_salt": opened["salt"],
    }
    for hidden in ("title", "attachments"):
        if hidden in opened:
            answer[hidden] = opened[hidden]
            answer[f"{hidden}_commitment_salt"] = opened[f"{hidden}_salt"]
    return answer


def reading_reason(
    session: Session, record_hash: str, *, principal: Principal, vault: Vault
) -> dict[str, Any]:
    """Why a ``pii.read`` record's reader read: for inspectors and admins, who oversee the
    reads. The reason and the salt open the record's ``reason_commitment``."""
    if principal.role not in (Role.INSPECTOR, Role.ADMIN):
        raise Forbidden("the reasons of personal-data reads are for inspectors and admins")
    found = session.get(AccessReason, record_hash)
    if found is None:
        raise NotFound(f"no personal-data read {record_hash} with a sealed reason")
    opened = vault.open(found.sealed, f"reason:{record_hash}")
    return {"record_hash": record_hash, "reason": opened["reason"], "salt": opened["salt"]}


# -- attachments --------------------------------------------------------------------------


def may_read_attachment(
    principal: Principal | None, row: Attachment, owner: SuggestionRow | None
) -> bool:
    """Who may download an attachment (issue 19, item 6; docs/SECURITY.md, "Attachments"):

    1. anyone, when it is marked public;
    2. before any record cites it, the account or citizen token that uploaded it (an
       anonymous upload has no uploader to ask again);
    3. once cited, staff and inspectors;
    4. once cited, and it belongs to ``owner`` (the suggestion that cited it first): those
       handling that suggestion, as for its contact data (``handles``: deputies of its
       district or the one it is addressed to, the offices it is assigned to), and the
       citizen token of that suggestion;
    5. nobody else (admins included: they manage accounts, not suggestions)."""
    if row.public:
        return True
    if principal is None:
        return False
    if row.referenced_at is None:
        return row.uploaded_by == principal.id
    if principal.role in (Role.STAFF, Role.INSPECTOR):
        return True
    if owner is None:
        return False
    if principal.role is Role.CITIZEN:
        return principal.tracking_code == owner.tracking_code
    return handles(principal, owner)


def read_attachment(
    session: Session, directory: Path, sha256: str, *, principal: Principal | None
) -> attachments.Served:
    """An attachment for one who may read it (``may_read_attachment``), served as the type
    its bytes are (``ledger.attachments.load``). Everyone else gets the very refusal a hash
    nobody uploaded gets (404 ``no attachment <sha256>``), so the answer does not tell
    whether the file exists; the file itself is not touched before the decision."""
    row = session.get(Attachment, sha256)
    owner = repo.suggestion(session, row.suggestion) if row and row.suggestion else None
    if row is None or not may_read_attachment(principal, row, owner):
        raise NotFound(f"no attachment {sha256}")
    return attachments.load(directory, row)
