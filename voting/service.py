"""Budget simulations (政策沙盘, 民生实事票决): draft → open → closed → tallied, every step a
record in the ``votes`` log, every ballot signed by the voter's Ed25519 key.

Services flush; the caller's unit of work commits.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from core import codes
from core.clock import Clock, utc_now
from core.merkle import merkle_root
from core.records import RecordType, SealedRecord
from core.voting.ballots import verify_ballot_signature
from core.voting.errors import BallotInvalid, TallyError
from core.voting.tally import check_ballot, tally
from ledger import service as ledger_service
from ledger.auth import Forbidden, Principal, Role
from ledger.errors import CivicError, Conflict, InvalidInput, NotFound
from ledger.models import Account, table_of
from ledger.repository import StoredRecord
from voting.models import BallotRow, SimulationRow
from voting.schemas import BallotIn, SimulationIn

LOG = "votes"


class SimulationNotFound(NotFound):
    pass


class VotingClosed(Conflict):
    pass


class NotEligible(CivicError):
    status_code = 403


class BallotSignatureRejected(CivicError):
    status_code = 422


class BallotRefused(CivicError):
    status_code = 422


class NonceReplayed(Conflict):
    pass


def new_simulation_id() -> str:
    return "SIM-" + codes.crockford(8, secrets.choice)


_BALLOTS = table_of(BallotRow)
_NONCE_USED = select(_BALLOTS.c.nonce).where(
    _BALLOTS.c.simulation_id == bindparam("sim"),
    _BALLOTS.c.voter == bindparam("voter"),
    _BALLOTS.c.nonce == bindparam("nonce"),
)
_SUPERSEDE = (
    update(_BALLOTS)
    .where(
        _BALLOTS.c.simulation_id == bindparam("b_sim"),
        _BALLOTS.c.voter == bindparam("b_voter"),
        _BALLOTS.c.superseded.is_(False),
    )
    .values(superseded=True)
)
_INSERT_BALLOT = insert(_BALLOTS)

_RULES_CACHE: dict[str, dict[str, Any]] = {}


def rule_set_of(row: SimulationRow) -> dict[str, Any]:
    """The parsed rule set; cached once the simulation is open, when it can no longer change."""
    if row.state == "draft":
        return row.rule_set
    cached = _RULES_CACHE.get(row.id)
    if cached is None:
        if len(_RULES_CACHE) > 256:
            _RULES_CACHE.clear()
        cached = _RULES_CACHE[row.id] = row.rule_set
    return cached


_KEYS_CACHE: dict[str, dict[str, str]] = {}


def _electorate_keys(simulation_id: str, rule_set: dict[str, Any]) -> dict[str, str]:
    keys = _KEYS_CACHE.get(simulation_id)
    if keys is None:
        if len(_KEYS_CACHE) > 256:
            _KEYS_CACHE.clear()
        keys = _KEYS_CACHE[simulation_id] = {
            e["voter"]: e["public_key"] for e in rule_set["electorate"]
        }
    return keys


def _require_staff(principal: Principal | None) -> Principal:
    if principal is None or principal.role not in (Role.STAFF, Role.ADMIN):
        raise Forbidden("simulations are managed by congress staff")
    return principal


def get(session: Session, simulation_id: str, *, for_update: bool = False) -> SimulationRow:
    if for_update:
        query = select(SimulationRow).where(SimulationRow.id == simulation_id).with_for_update()
        row = session.scalars(query).one_or_none()
    else:  # within one transaction the identity map answers repeated reads
        row = session.get(SimulationRow, simulation_id)
    if row is None:
        raise SimulationNotFound(f"no simulation {simulation_id}")
    return row


def all_simulations(session: Session) -> list[SimulationRow]:
    return list(session.scalars(select(SimulationRow).order_by(SimulationRow.created_at.desc())))


def register_key(
    session: Session, deputy_id: str, public_key: str, *, principal: Principal
) -> None:
    """An admin registers a deputy's Ed25519 public key (the private key never leaves them)."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("public keys are registered by an admin")
    account = session.get(Account, deputy_id)
    if account is None or account.role != Role.DEPUTY.value:
        raise NotFound(f"no deputy {deputy_id}")
    account.public_key = public_key
    session.flush()


def create(
    session: Session,
    data: SimulationIn,
    *,
    principal: Principal | None,
    clock: Clock = utc_now,
    keys: dict[str, str] | None = None,
) -> SimulationRow:
    """A draft: its rule set and electorate are fixed here and recorded when it opens.

    ``keys`` (voter id → public key hex) is for imports whose voters are not accounts; by
    default the electorate is deputies with registered keys.
    """
    creator = _require_staff(principal) if keys is None else principal
    if keys is None:
        deputies = {
            a.id: a.public_key
            for a in session.scalars(
                select(Account).where(
                    Account.role == Role.DEPUTY.value, Account.disabled_at.is_(None)
                )
            )
        }
        wanted = (
            data.electorate
            if data.electorate is not None
            else [d for d, k in deputies.items() if k]
        )
        missing = [v for v in wanted if v not in deputies]
        if missing:
            raise InvalidInput(f"not deputies: {', '.join(missing[:5])}")
        unkeyed = [v for v in wanted if not deputies[v]]
        if unkeyed:
            raise InvalidInput(
                f"these deputies have no registered public key: {', '.join(unkeyed[:5])}"
            )
        keys = {v: deputies[v] for v in wanted}  # type: ignore[misc]
    if not keys:
        raise InvalidInput("the electorate is empty: register deputies' public keys first")
    if data.ballot_type == "yes_no" and data.slots is not None and data.slots >= len(data.projects):
        raise InvalidInput("票决 needs more candidates than slots")
    now = clock()
    closes_at = data.closes_at  # aware and in UTC: the schema refuses a time without a zone
    if closes_at is not None and closes_at <= now:
        raise InvalidInput("closes_at must be in the future")
    rule_set = {
        "title": data.title,
        "ballot_type": data.ballot_type,
        "rule": data.rule,
        "projects": [p.model_dump() for p in data.projects],
        "budget": data.budget,
        "slots": data.slots,
        "min_choices": data.min_choices,
        "max_choices": data.max_choices,
        "max_points": data.max_points,
        "add1_unit": data.add1_unit,
        "quorum": list(data.quorum),
        "majority_of": data.majority_of,
        "secrecy": data.secrecy,
        "electorate": [{"voter": v, "public_key": k} for v, k in sorted(keys.items())],
    }
    row = SimulationRow(
        id=new_simulation_id(),
        title=data.title,
        state="draft",
        ballot_type=data.ballot_type,
        rule=data.rule,
        secrecy=data.secrecy,
        rules=json.dumps(rule_set, ensure_ascii=False),
        created_by=creator.id if creator else "import",
        created_at=now,
        closes_at=closes_at,
    )
    session.add(row)
    session.flush()
    return row


def _append(
    session: Session,
    row: SimulationRow,
    type_: str,
    actor: dict[str, str],
    body: dict[str, Any],
    clock: Clock,
    subject: str | None = None,
) -> SealedRecord:
    return ledger_service.append_record(
        session, log=LOG, type=type_, subject=subject or row.id, actor=actor, body=body, clock=clock
    )


def open_simulation(
    session: Session,
    simulation_id: str,
    *,
    principal: Principal,
    clock: Clock = utc_now,
) -> SealedRecord:
    """``simulation.opened``: the whole rule set, electorate with public keys, the window."""
    _require_staff(principal)
    row = get(session, simulation_id, for_update=True)
    if row.state != "draft":
        raise Conflict(f"{simulation_id} is {row.state}; only a draft opens")
    now = clock()
    closes = row.closes_at
    if closes is not None and closes <= now:
        raise Conflict("its closing time has passed; create a new simulation")
    body = {
        **row.rule_set,
        "simulation": row.id,
        "opens_at": ledger_service.iso(now),
        "closes_at": ledger_service.iso(closes),
    }
    sealed = _append(session, row, RecordType.SIMULATION_OPENED, principal.actor, body, clock)
    row.state, row.opens_at = "open", now
    session.flush()
    return sealed


def cast(
    session: Session, simulation_id: str, ballot: BallotIn, *, clock: Clock = utc_now
) -> SealedRecord:
    """Check and record one signed ballot. A revote supersedes the voter's earlier ballot;
    every ballot stays in the log. Refusals store nothing."""
    if ballot.simulation != simulation_id:
        raise BallotRefused(f"the ballot is for {ballot.simulation}, not {simulation_id}")
    row = get(session, simulation_id)
    now = clock()
    if row.state != "open":
        raise VotingClosed(
            f"{simulation_id} is {row.state}: ballots are taken only while it is open"
        )
    closes = row.closes_at
    if closes is not None and now >= closes:
        raise VotingClosed(f"voting on {simulation_id} closed at {ledger_service.iso(closes)}")
    rule_set = rule_set_of(row)
    keys = _electorate_keys(row.id, rule_set)
    if ballot.voter not in keys:
        raise NotEligible(f"{ballot.voter} is not in the electorate of {simulation_id}")
    if not verify_ballot_signature(
        keys[ballot.voter],
        simulation_id,
        ballot.voter,
        ballot.choices,
        ballot.nonce,
        ballot.signature,
    ):
        raise BallotSignatureRejected(
            f"the signature does not verify under {ballot.voter}'s registered key"
        )
    try:
        check_ballot(rule_set, ballot.choices)
    except BallotInvalid as exc:
        raise BallotRefused(f"{exc.reason}: {exc.message}") from exc
    conn = session.connection()
    if conn.execute(
        _NONCE_USED, {"sim": simulation_id, "voter": ballot.voter, "nonce": ballot.nonce}
    ).first():
        raise NonceReplayed(
            f"nonce {ballot.nonce} was already used by {ballot.voter}: sign the revote with a new nonce"
        )
    body = ballot.model_dump()
    sealed = _append(
        session,
        row,
        RecordType.BALLOT_CAST,
        {"role": "deputy" if ballot.voter.startswith("deputy-") else "voter", "id": ballot.voter},
        body,
        clock,
        subject=f"{simulation_id}/{ballot.voter}",
    )
    if sealed.record["seq"] > 0:  # a revote: the voter's earlier ballot no longer counts
        conn.execute(_SUPERSEDE, {"b_sim": simulation_id, "b_voter": ballot.voter})
    conn.execute(
        _INSERT_BALLOT,
        {
            "simulation_id": simulation_id,
            "voter": ballot.voter,
            "nonce": ballot.nonce,
            "record_hash": sealed.record_hash,
            "choices": json.dumps(ballot.choices, ensure_ascii=False),
            "cast_at": now,
            "superseded": False,
        },
    )
    return sealed


def close(
    session: Session,
    simulation_id: str,
    *,
    principal: Principal,
    clock: Clock = utc_now,
) -> SealedRecord:
    _require_staff(principal)
    row = get(session, simulation_id, for_update=True)
    if row.state != "open":
        raise Conflict(f"{simulation_id} is {row.state}; only an open simulation closes")
    now = clock()
    counted = _counted(session, simulation_id)
    body = {"simulation": row.id, "closed_at": ledger_service.iso(now), "ballots": len(counted)}
    sealed = _append(session, row, RecordType.SIMULATION_CLOSED, principal.actor, body, clock)
    row.state, row.closed_at = "closed", now
    session.flush()
    return sealed


def _counted(session: Session, simulation_id: str) -> list[BallotRow]:
    return list(
        session.scalars(
            select(BallotRow).where(
                BallotRow.simulation_id == simulation_id, BallotRow.superseded.is_(False)
            )
        )
    )


def tally_simulation(
    session: Session,
    simulation_id: str,
    *,
    principal: Principal,
    clock: Clock = utc_now,
) -> SealedRecord:
    """``simulation.tallied``: counts, outcome, ballots counted and ``counted_root`` — the
    Merkle Tree Hash over the counted ballots' leaf hashes in ascending order (PROTOCOL §6)."""
    _require_staff(principal)
    row = get(session, simulation_id, for_update=True)
    if row.state != "closed":
        raise Conflict(f"{simulation_id} is {row.state}; close it before tallying")
    counted = _counted(session, simulation_id)
    rule_set = row.rule_set | {"electorate_ids": [e["voter"] for e in row.rule_set["electorate"]]}
    try:
        result = tally(rule_set, {b.voter: json.loads(b.choices) for b in counted})
    except TallyError as exc:
        raise Conflict(f"the tally failed: {exc.message}") from exc
    leaves = sorted(bytes.fromhex(b.record_hash) for b in counted)
    body = {
        "simulation": row.id,
        "rule": row.rule,
        "ballots_counted": len(counted),
        **result,
        "counted_root": merkle_root(leaves).hex(),
    }
    sealed = _append(session, row, RecordType.SIMULATION_TALLIED, principal.actor, body, clock)
    row.state, row.result, row.tally_record = (
        "tallied",
        json.dumps(body, ensure_ascii=False),
        sealed.record_hash,
    )
    session.flush()
    return sealed


# -- reading ------------------------------------------------------------------------------


def public_view(session: Session, row: SimulationRow) -> dict[str, Any]:
    rule_set = row.rule_set
    ballots = _counted(session, row.id)
    return {
        "id": row.id,
        "title": row.title,
        "state": row.state,
        "ballot_type": row.ballot_type,
        "rule": row.rule,
        "secrecy": row.secrecy,
        "projects": rule_set["projects"],
        "budget": rule_set["budget"],
        "slots": rule_set["slots"],
        "min_choices": rule_set["min_choices"],
        "max_choices": rule_set["max_choices"],
        "max_points": rule_set["max_points"],
        "electorate": [e["voter"] for e in rule_set["electorate"]],
        "opens_at": ledger_service.iso(row.opens_at),
        "closes_at": ledger_service.iso(row.closes_at),
        "closed_at": ledger_service.iso(row.closed_at),
        "ballots_received": len(ballots),
        "result": json.loads(row.result) if row.result else None,
        "tally_record": row.tally_record,
    }


def may_read_ballots(
    row: SimulationRow, principal: Principal | None, voter: str | None = None
) -> bool:
    """Open mode: everyone, once voting has closed. Secret mode: inspectors, and each voter
    their own. Before closing, only the voter themself."""
    if principal is not None and principal.role is Role.INSPECTOR and row.state != "open":
        return True
    if principal is not None and voter is not None and principal.id == voter:
        return True
    return row.secrecy == "open" and row.state in ("closed", "tallied")


def ballots_view(
    session: Session, row: SimulationRow, principal: Principal | None
) -> dict[str, Any]:
    rows = session.scalars(
        select(BallotRow)
        .where(BallotRow.simulation_id == row.id)
        .order_by(BallotRow.cast_at, BallotRow.record_hash)
    ).all()
    items = []
    for b in rows:
        item: dict[str, Any] = {"record_hash": b.record_hash, "superseded": b.superseded}
        if may_read_ballots(row, principal, b.voter):
            item |= {"voter": b.voter, "choices": json.loads(b.choices), "nonce": b.nonce}
        items.append(item)
    return {"simulation": row.id, "secrecy": row.secrecy, "state": row.state, "ballots": items}


def ballot_receipt_allowed(
    session: Session, record_subject: str, principal: Principal | None
) -> bool:
    """Whether the receipt of a ballot record (subject ``<simulation>/<voter>``) may be shown."""
    simulation_id, _, voter = record_subject.partition("/")
    row = session.get(SimulationRow, simulation_id)
    return row is not None and may_read_ballots(row, principal, voter)


def is_ballot(row: StoredRecord) -> bool:
    """Whether a stored record is a ballot (its receipt carries the choices)."""
    return row.log == LOG and row.type == RecordType.BALLOT_CAST


def guard_ballot_record(session: Session, row: StoredRecord, principal: Principal | None) -> None:
    """Ballot receipts carry the choices: refuse them where the secrecy mode hides ballots."""
    if not is_ballot(row):
        return
    if not ballot_receipt_allowed(session, row.subject, principal):
        raise Forbidden(
            "this ballot's receipt shows its choices: only its voter (and inspectors after closing) "
            "may read it in this simulation's secrecy mode"
        )
