"""The audit's checks of one record (PROTOCOL §1, §2 and §7), over the row as stored.

A record's leaf hash must be SHA-256(0x00 ‖ canonical) (§2); its canonical bytes must be
RFC 8785 of a §1 record (``check_record_shape``) whose log, subject, seq and type are those of
its row. A record with empty content and a redaction row is erased under §7: not a finding,
and listed. Every failure here is the finding ``altered``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from hashlib import sha256
from typing import Any, NamedTuple

from core.canonical import CanonicalizationError, canonical_bytes
from core.records import RecordShapeError, check_record_shape
from verifier.audit.findings import ReanchorEvent, RedactedRecord
from verifier.audit.reading import StoredRecord, StoredRedaction

MAX_SAFE_INTEGER = 2**53 - 1


class NotARecord(ValueError):
    """The canonical bytes are not RFC 8785 of a §1 record; the message says why."""


def _refuse_float(text: str) -> Any:
    raise NotARecord(f"floating-point number {text} (PROTOCOL §1 allows none)")


def _refuse_constant(text: str) -> Any:
    raise NotARecord(f"{text} is not JSON")


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise NotARecord(f"integer {text} is outside ±(2^53 − 1)")
    return value


_DECODER = json.JSONDecoder(
    parse_float=_refuse_float, parse_int=_safe_int, parse_constant=_refuse_constant
)


def parse_canonical_record(canonical: bytes) -> dict[str, Any]:
    """The record in ``canonical``, which must be exactly its RFC 8785 bytes (PROTOCOL §2):
    strict JSON (no floats, NaN or unsafe integers), re-serialised by ``canonical_bytes``
    to the very same bytes (a duplicate key, a space, an escape RFC 8785 does not make, a
    member out of order: all change them)."""
    try:
        record = _DECODER.decode(canonical.decode("utf-8"))
    except NotARecord:
        raise
    except (ValueError, RecursionError) as exc:
        raise NotARecord(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise NotARecord("not a JSON object")
    try:
        same = canonical_bytes(record) == canonical
    except CanonicalizationError as exc:
        raise NotARecord(str(exc)) from exc
    if not same:
        raise NotARecord("its bytes are not the RFC 8785 serialisation of the record")
    return record


class RecordCheck(NamedTuple):
    """What checking one record found: its content when it can be judged further (by its
    trail), why it is ``altered``, or the redaction that erased it."""

    content: dict[str, Any] | None = None
    altered: str | None = None
    erased: StoredRedaction | None = None


_UNRECORDED_ERASURE = RecordCheck(
    altered="its content is erased, but no redaction (PROTOCOL §7) records that"
)


def check_record(
    log: str, record: StoredRecord, redactions: Mapping[bytes, StoredRedaction]
) -> RecordCheck:
    """Judge one stored record of ``log`` (see the module doc); ``redactions`` by leaf hash."""
    canonical, leaf = record.canonical, record.leaf_hash
    if not canonical:
        redaction = redactions.get(leaf)
        return _UNRECORDED_ERASURE if redaction is None else RecordCheck(erased=redaction)
    digest = sha256(b"\x00" + canonical)
    if digest.digest() != leaf:
        return RecordCheck(
            altered=f"its content hashes to {digest.hexdigest()}, not to its record hash"
        )
    try:
        content = parse_canonical_record(canonical)
        check_record_shape(content)
    except (NotARecord, RecordShapeError) as exc:
        return RecordCheck(altered=f"its content is not a record: {exc}")
    if (
        content["seq"] != record.seq
        or content["subject"] != record.subject
        or content["type"] != record.type
        or content["log"] != log
    ):
        differs = [
            f"{name} {content[name]!r} (its row: {column!r})"
            for name, column in (
                ("log", log),
                ("subject", record.subject),
                ("seq", record.seq),
                ("type", record.type),
            )
            if content[name] != column
        ]
        return RecordCheck(altered=f"its record says {', '.join(differs)}")
    return RecordCheck(content)


def redacted_record(log: str, record: StoredRecord, redaction: StoredRedaction) -> RedactedRecord:
    """The report's entry for a record erased under PROTOCOL §7."""
    return RedactedRecord(
        log,
        record.position,
        record.subject,
        record.seq,
        record.leaf_hash.hex(),
        redaction.at,
        redaction.reason,
    )


def reanchor_event(log: str, record: StoredRecord, content: Mapping[str, Any]) -> ReanchorEvent:
    """The report's entry for a ``ledger.reanchored`` record (what its body says, where typed)."""
    body = content["body"]

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) else None

    def number(name: str) -> int | None:
        value = body.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return ReanchorEvent(
        log,
        record.position,
        record.seq,
        record.leaf_hash.hex(),
        content["at"],
        text("old_contract"),
        text("new_contract"),
        number("chain_id"),
        number("batches"),
        text("reason"),
    )
