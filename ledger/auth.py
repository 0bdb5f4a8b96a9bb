"""Accounts, bearer tokens and who is asking.

Tokens are random, shown once, and stored only as SHA-256 (they carry 256 bits of
entropy, so a plain hash is enough; no password stretching is needed). Account tokens start
with ``clt_``, a citizen's suggestion token with ``cit_``, so a token says what it is.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ledger.db import DriverReader, DriverStatement
from ledger.errors import CivicError, InvalidInput
from ledger.models import Account, SuggestionRow, table_of

ACCOUNT_TOKEN_PREFIX = "clt_"  # noqa: S105 - a prefix, not a secret
CITIZEN_TOKEN_PREFIX = "cit_"  # noqa: S105 - a prefix, not a secret
_OFFICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


class Role(StrEnum):
    CITIZEN = "citizen"
    DEPUTY = "deputy"
    STAFF = "staff"
    OFFICE = "office"
    INSPECTOR = "inspector"
    ADMIN = "admin"


ACCOUNT_ROLES = frozenset(Role) - {Role.CITIZEN}


class Unauthenticated(CivicError):
    status_code = 401


class Forbidden(CivicError):
    status_code = 403


@dataclass(frozen=True)
class Principal:
    """Who makes a request. ``id`` is what records show as ``actor.id``: an account id, or
    for a citizen the pseudonym of their submission."""

    role: Role
    id: str
    office: str | None = None
    district: str | None = None
    tracking_code: str | None = None  # a citizen token acts for this suggestion only

    @property
    def actor(self) -> dict[str, str]:
        return {"role": self.role.value, "id": self.id}


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_account_token() -> str:
    return ACCOUNT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_citizen_token() -> str:
    return CITIZEN_TOKEN_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class NewAccount:
    id: str
    role: Role
    name: str
    token: str
    expires_at: datetime


def add_account(
    session: Session,
    *,
    role: str,
    name: str,
    office: str | None = None,
    district: str | None = None,
    token_days: int = 180,
    now: datetime | None = None,
) -> NewAccount:
    """Create an account and its first token (returned once, stored hashed)."""
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}; roles are {', '.join(r.value for r in sorted(ACCOUNT_ROLES))}"
        ) from None
    if parsed not in ACCOUNT_ROLES:
        raise InvalidInput("citizens need no account: they get a token with each submission")
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name must be 1 to 100 characters")
    if parsed is Role.OFFICE:
        if not office or not _OFFICE.fullmatch(office):
            raise InvalidInput("an office account needs --office CODE (letters, digits, _ . -)")
    elif office:
        raise InvalidInput("only office accounts have an office code")
    if parsed is Role.DEPUTY and not district:
        raise InvalidInput("a deputy account needs --district")
    now = now or datetime.now(UTC)
    account_id = f"{parsed.value}-{secrets.token_hex(4)}"
    token = new_account_token()
    expires = now + timedelta(days=token_days)
    session.add(
        Account(
            id=account_id,
            role=parsed.value,
            name=name,
            office=office,
            district=district.strip() if district else None,
            token_hash=hash_token(token),
            token_expires_at=expires,
            created_at=now,
        )
    )
    session.flush()
    return NewAccount(account_id, parsed, name, token, expires)


_ACCOUNTS = table_of(Account)
_CITIZEN = DriverStatement(
    select(table_of(SuggestionRow).c.submitter_id, table_of(SuggestionRow).c.tracking_code).where(
        table_of(SuggestionRow).c.citizen_token_hash == bindparam("token_hash")
    )
)
_ACCOUNT = DriverStatement(
    select(
        _ACCOUNTS.c.id,
        _ACCOUNTS.c.role,
        _ACCOUNTS.c.office,
        _ACCOUNTS.c.district,
        _ACCOUNTS.c.disabled_at,
        _ACCOUNTS.c.token_expires_at,
    ).where(_ACCOUNTS.c.token_hash == bindparam("token_hash"))
)


def authenticate(
    session: Session | DriverReader, token: str, now: datetime | None = None
) -> Principal:
    """The principal a bearer token stands for; Unauthenticated for anything else."""
    now = now or datetime.now(UTC)
    # Driver statements of the few columns needed, not ORM loads: every authenticated
    # request asks (scripts/load).
    if token.startswith(CITIZEN_TOKEN_PREFIX):
        rows = _CITIZEN.run(session, {"token_hash": hash_token(token)})
        if not rows:
            raise Unauthenticated("the citizen token is not valid")
        submitter_id, tracking_code = rows[0]
        return Principal(Role.CITIZEN, submitter_id, tracking_code=tracking_code)
    if token.startswith(ACCOUNT_TOKEN_PREFIX):
        rows = _ACCOUNT.run(session, {"token_hash": hash_token(token)})
        if not rows:
            raise Unauthenticated("the token is not valid")
        account_id, role, office, district, disabled_at, expires_at = rows[0]
        if disabled_at is not None:
            raise Unauthenticated("the account is disabled")
        if expires_at <= now:
            raise Unauthenticated("the token has expired; ask an admin for a new one")
        return Principal(Role(role), account_id, office, district)
    raise Unauthenticated("malformed token: expected a clt_ or cit_ bearer token")


def known_offices(session: Session) -> set[str]:
    rows = session.scalars(
        select(Account.office).where(
            Account.role == Role.OFFICE.value, Account.disabled_at.is_(None)
        )
    )
    return {office for office in rows if office}


def get_account(session: Session, account_id: str) -> Account | None:
    return session.get(Account, account_id)


def list_accounts(session: Session) -> list[Account]:
    return list(session.scalars(select(Account).order_by(Account.created_at)))


def disable_account(session: Session, account_id: str, now: datetime | None = None) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise InvalidInput(f"no account {account_id!r}")
    account.disabled_at = now or datetime.now(UTC)
    return account
