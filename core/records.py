"""Records as PROTOCOL §1 defines them: construction, shape checks and the record hash.

Pure functions over plain values. The clock and the salt source are parameters, so the
store passes ``datetime.now(UTC)`` and ``secrets.token_bytes`` and tests pass fixed ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from core.canonical import canonical_bytes
from core.merkle import leaf_hash

PROTOCOL_VERSION = 1
LOGS = frozenset({"suggestions", "votes", "access"})
RECORD_MEMBERS = frozenset(
    {"v", "log", "type", "subject", "seq", "prev", "at", "actor", "body", "salt"}
)
SALT_BYTES = 16


class RecordType:
    """The record types the service writes (PROTOCOL §1 ``type``), one name each.

    Plain strings (not an enum), so that they go into records and compare with stored
    values as they are."""

    SUGGESTION_SUBMITTED: Final = "suggestion.submitted"
    SUGGESTION_TRANSITION: Final = "suggestion.transition"
    SUGGESTION_FLAGGED: Final = "suggestion.flagged"
    SIMULATION_OPENED: Final = "simulation.opened"
    SIMULATION_CLOSED: Final = "simulation.closed"
    SIMULATION_TALLIED: Final = "simulation.tallied"
    BALLOT_CAST: Final = "ballot.cast"
    # A handling account read a suggestion's personal data or confidential content
    # (the `access` log; its subject is the reader's account).
    PII_READ: Final = "pii.read"
    # A chain reset survived: `civic-ledger reanchor` anchored every sealed batch again on a
    # new registry and recorded that as a record of this type in each log it touched, all in
    # one trail whose subject is CHAIN_SUBJECT (docs/PROTOCOL-NOTES.md, "Chain resets").
    LEDGER_REANCHORED: Final = "ledger.reanchored"
    # PROTOCOL §10: the last entry of every batch, the root of the log's map of trail heads,
    # in its own trail whose subject is MAP_SUBJECT (``core.trailmap``).
    LEDGER_MAP_HEAD: Final = "ledger.map_head"


REANCHORED_TYPE = RecordType.LEDGER_REANCHORED
CHAIN_SUBJECT = "chain"
MAP_HEAD_TYPE = RecordType.LEDGER_MAP_HEAD
MAP_SUBJECT = "ledger/map"
MAP_ACTOR = {"role": "system", "id": "sealer"}

_HEX64 = re.compile(r"[0-9a-f]{64}")
_SALT = re.compile(r"[0-9a-f]{32}")
# ASCII: in Python, \d also matches other scripts' digits, which int() and strptime accept.
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", re.ASCII)
_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


class RecordShapeError(ValueError):
    """A value that is not a well-formed PROTOCOL §1 record."""


def format_at(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.sssZ`` in UTC, milliseconds truncated (PROTOCOL §1)."""
    if moment.tzinfo is None:
        raise ValueError("record times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_at(text: str) -> datetime:
    """Inverse of ``format_at``; raises RecordShapeError for any other spelling."""
    if not isinstance(text, str) or not _AT.fullmatch(text):
        raise RecordShapeError(f"'at' must look like 2026-11-27T09:30:00.123Z, got {text!r}")
    try:
        # The pattern above fixed the spelling; fromisoformat checks the calendar (month 13,
        # 30 February, hour 24 all fail) at a thirtieth of strptime's cost.
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordShapeError(f"'at' is not a real time: {text!r}") from exc


def is_hex64(value: Any) -> bool:
    """True for 64 lowercase hex characters: how hashes are written in records and receipts."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def check_record_shape(record: Any) -> None:
    """Raise RecordShapeError unless ``record`` has exactly the PROTOCOL §1 members and types."""
    if not isinstance(record, Mapping):
        raise RecordShapeError("a record is a JSON object")
    members = set(record)
    if members != RECORD_MEMBERS:
        missing = sorted(RECORD_MEMBERS - members)
        extra = sorted(members - RECORD_MEMBERS)
        raise RecordShapeError(f"record members differ: missing {missing}, unexpected {extra}")

    def integer(name: str) -> int:
        value = record[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecordShapeError(f"'{name}' must be an integer")
        return value

    if integer("v") != PROTOCOL_VERSION:
        raise RecordShapeError(f"'v' must be {PROTOCOL_VERSION}")
    if not isinstance(record["log"], str) or record["log"] not in LOGS:
        raise RecordShapeError(f"'log' must be one of {sorted(LOGS)}")
    if not isinstance(record["type"], str) or not _TYPE.fullmatch(record["type"]):
        raise RecordShapeError("'type' must be a dotted lowercase name like suggestion.submitted")
    if not isinstance(record["subject"], str) or not record["subject"]:
        raise RecordShapeError("'subject' must be a non-empty string")
    seq = integer("seq")
    if seq < 0:
        raise RecordShapeError("'seq' must not be negative")
    prev = record["prev"]
    if seq == 0 and prev is not None:
        raise RecordShapeError("'prev' must be null when 'seq' is 0")
    if seq > 0 and not is_hex64(prev):
        raise RecordShapeError("'prev' must be a 64-character lowercase hex leaf hash")
    parse_at(record["at"])
    actor = record["actor"]
    if (
        not isinstance(actor, Mapping)
        or set(actor) != {"role", "id"}
        or not all(isinstance(actor[k], str) and actor[k] for k in ("role", "id"))
    ):
        raise RecordShapeError('\'actor\' must be {"role": string, "id": string}')
    if not isinstance(record["body"], Mapping):
        raise RecordShapeError("'body' must be an object")
    if not isinstance(record["salt"], str) or not _SALT.fullmatch(record["salt"]):
        raise RecordShapeError("'salt' must be 32 lowercase hex characters")


def record_leaf_hash(record: Mapping[str, Any]) -> bytes:
    """PROTOCOL §2: SHA-256(0x00 || canonical(record))."""
    return leaf_hash(canonical_bytes(record))


@dataclass(frozen=True, slots=True)
class SealedRecord:
    """A record together with its canonical bytes and leaf hash, computed once."""

    record: Mapping[str, Any]
    canonical: bytes
    leaf_hash: bytes

    @property
    def record_hash(self) -> str:
        return self.leaf_hash.hex()


def build_record(
    *,
    log: str,
    type: str,
    subject: str,
    seq: int,
    prev: bytes | None,
    actor: Mapping[str, str],
    body: Mapping[str, Any],
    now: datetime,
    salt: Callable[[int], bytes],
) -> SealedRecord:
    """Make a PROTOCOL §1 record, check its shape, and compute its canonical bytes and hash.

    ``salt`` is called with 16 and must return fresh CSPRNG bytes (``secrets.token_bytes``).
    """
    record: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "log": log,
        "type": type,
        "subject": subject,
        "seq": seq,
        "prev": prev.hex() if prev is not None else None,
        "at": format_at(now),
        "actor": dict(actor),
        "body": dict(body),
        "salt": salt(SALT_BYTES).hex(),
    }
    check_record_shape(record)
    canonical = canonical_bytes(record)
    return SealedRecord(MappingProxyType(record), canonical, leaf_hash(canonical))
