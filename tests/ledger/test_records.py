"""Records (PROTOCOL §1), their hash (§2), and the reference files that pin both."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.canonical import canonical_bytes
from core.records import (
    RECORD_MEMBERS,
    RecordShapeError,
    SealedRecord,
    build_record,
    check_record_shape,
    format_at,
    is_hex64,
    parse_at,
    record_leaf_hash,
)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
NOW = datetime(2026, 11, 27, 9, 30, 0, 123456, tzinfo=UTC)
PREV = hashlib.sha256(b"previous record").digest()


def fixed_salt(n: int) -> bytes:
    return bytes(range(n))


def build(**overrides: Any) -> SealedRecord:
    arguments: dict[str, Any] = {
        "log": "suggestions",
        "type": "suggestion.transition",
        "subject": "JY-2026-000123",
        "seq": 1,
        "prev": PREV,
        "actor": {"role": "staff", "id": "s-42"},
        "body": {"from": "submitted", "to": "accepted"},
        "now": NOW,
        "salt": fixed_salt,
    }
    arguments.update(overrides)
    return build_record(**arguments)


def valid_record() -> dict[str, Any]:
    return dict(build().record)


# --- build_record ----------------------------------------------------------------------------


def test_build_record_has_exactly_the_protocol_members() -> None:
    record = build().record
    assert set(record) == RECORD_MEMBERS == {
        "v", "log", "type", "subject", "seq", "prev", "at", "actor", "body", "salt",
    }  # fmt: skip
    assert dict(record) == {
        "v": 1,
        "log": "suggestions",
        "type": "suggestion.transition",
        "subject": "JY-2026-000123",
        "seq": 1,
        "prev": PREV.hex(),
        "at": "2026-11-27T09:30:00.123Z",
        "actor": {"role": "staff", "id": "s-42"},
        "body": {"from": "submitted", "to": "accepted"},
        "salt": "000102030405060708090a0b0c0d0e0f",
    }


def test_build_record_seals_canonical_bytes_and_leaf_hash() -> None:
    sealed = build()
    assert sealed.canonical == canonical_bytes(dict(sealed.record))
    assert sealed.leaf_hash == hashlib.sha256(b"\x00" + sealed.canonical).digest()
    assert sealed.leaf_hash == record_leaf_hash(sealed.record)
    assert sealed.record_hash == sealed.leaf_hash.hex()


def test_sealed_record_cannot_be_changed_after_hashing() -> None:
    sealed = build()
    with pytest.raises(TypeError):
        sealed.record["seq"] = 2  # type: ignore[index]


def test_time_has_milliseconds_and_z_in_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    assert build(now=datetime(2026, 11, 27, 17, 30, 0, 999999, tzinfo=beijing)).record["at"] == (
        "2026-11-27T09:30:00.999Z"
    )
    assert build(now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)).record["at"] == (
        "2026-01-02T03:04:05.000Z"
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", build().record["at"])


def test_time_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build(now=datetime(2026, 11, 27, 9, 30))


def test_text_order_of_times_is_time_order() -> None:
    moments = [NOW + timedelta(milliseconds=ms) for ms in (0, 1, 999, 1000, 59_999, 86_400_000)]
    texts = [format_at(m) for m in moments]
    assert sorted(texts) == texts
    assert [parse_at(t) for t in texts] == [
        m.replace(microsecond=m.microsecond // 1000 * 1000) for m in moments
    ]


def test_salt_is_16_bytes_as_32_lowercase_hex_and_fresh() -> None:
    asked: list[int] = []

    def recording_salt(n: int) -> bytes:
        asked.append(n)
        return secrets.token_bytes(n)

    salts = {build(salt=recording_salt).record["salt"] for _ in range(20)}
    assert asked == [16] * 20
    assert len(salts) == 20
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) for s in salts)


def test_prev_is_null_at_seq_zero_and_a_leaf_hash_after() -> None:
    first = build(seq=0, prev=None)
    assert first.record["prev"] is None
    second = build(seq=1, prev=first.leaf_hash)
    assert second.record["prev"] == first.record_hash


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seq": 0, "prev": PREV}, r"^'prev' must be null when 'seq' is 0$"),
        ({"seq": 1, "prev": None}, r"^'prev' must be a 64-character lowercase hex leaf hash$"),
        ({"log": "ballots"}, r"^'log' must be one of \['access', 'suggestions', 'votes'\]$"),
        ({"type": "Submitted"}, r"^'type' must be a dotted lowercase name"),
        ({"subject": ""}, r"^'subject' must be a non-empty string$"),
        ({"seq": -1}, r"^'seq' must not be negative$"),
        ({"actor": {"role": "staff"}}, r"^'actor' must be \{\"role\": string, \"id\": string\}$"),
    ],
)
def test_build_record_refuses_a_malformed_record(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordShapeError, match=message):
        build(**overrides)


# --- check_record_shape ----------------------------------------------------------------------


def test_a_built_record_passes_the_shape_check() -> None:
    check_record_shape(valid_record())
    check_record_shape(build().record)


def with_member(name: str, value: Any) -> dict[str, Any]:
    record = valid_record()
    record[name] = value
    return record


def without_member(name: str) -> dict[str, Any]:
    record = valid_record()
    del record[name]
    return record


SHAPE_ERRORS: list[tuple[str, Any, str]] = [
    ("not an object", ["v", 1], r"^a record is a JSON object$"),
    ("null", None, r"^a record is a JSON object$"),
    (
        "missing salt",
        without_member("salt"),
        r"^record members differ: missing \['salt'\], unexpected \[\]$",
    ),
    (
        "extra member",
        {**valid_record(), "note": "x"},
        r"^record members differ: missing \[\], unexpected \['note'\]$",
    ),
    ("v is 2", with_member("v", 2), r"^'v' must be 1$"),
    ("v is true", with_member("v", True), r"^'v' must be an integer$"),
    ("v is a string", with_member("v", "1"), r"^'v' must be an integer$"),
    ("v is a float", with_member("v", 1.0), r"^'v' must be an integer$"),
    ("unknown log", with_member("log", "ballots"), r"^'log' must be one of"),
    ("log is a list", with_member("log", ["votes"]), r"^'log' must be one of"),
    (
        "type without dot",
        with_member("type", "submitted"),
        r"^'type' must be a dotted lowercase name",
    ),
    ("type uppercase", with_member("type", "Suggestion.Submitted"), r"^'type' must be a dotted"),
    ("type not a string", with_member("type", 7), r"^'type' must be a dotted"),
    ("empty subject", with_member("subject", ""), r"^'subject' must be a non-empty string$"),
    (
        "subject not a string",
        with_member("subject", 123),
        r"^'subject' must be a non-empty string$",
    ),
    ("seq is true", with_member("seq", True), r"^'seq' must be an integer$"),
    ("seq is a string", with_member("seq", "1"), r"^'seq' must be an integer$"),
    ("seq negative", with_member("seq", -1), r"^'seq' must not be negative$"),
    ("prev at seq 0", {**valid_record(), "seq": 0}, r"^'prev' must be null when 'seq' is 0$"),
    (
        "prev null at seq 1",
        with_member("prev", None),
        r"^'prev' must be a 64-character lowercase hex",
    ),
    ("prev uppercase", with_member("prev", PREV.hex().upper()), r"^'prev' must be a 64-character"),
    ("prev short", with_member("prev", PREV.hex()[:-1]), r"^'prev' must be a 64-character"),
    (
        "at without ms",
        with_member("at", "2026-11-27T09:30:00Z"),
        r"^'at' must look like 2026-11-27T09:30:00\.123Z, got '2026-11-27T09:30:00Z'$",
    ),
    ("at with offset", with_member("at", "2026-11-27T09:30:00.123+00:00"), r"^'at' must look like"),
    ("at lowercase z", with_member("at", "2026-11-27T09:30:00.123z"), r"^'at' must look like"),
    (
        "at with microseconds",
        with_member("at", "2026-11-27T09:30:00.123456Z"),
        r"^'at' must look like",
    ),
    ("at not a string", with_member("at", 1764235800123), r"^'at' must look like"),
    (
        "at with Arabic-Indic digits",
        with_member("at", "٢٠٢٦-11-27T09:30:00.123Z"),
        r"^'at' must look like",
    ),
    (
        "at not a real day",
        with_member("at", "2026-02-30T09:30:00.123Z"),
        r"^'at' is not a real time: '2026-02-30T09:30:00\.123Z'$",
    ),
    ("at hour 24", with_member("at", "2026-11-27T24:00:00.000Z"), r"^'at' is not a real time"),
    (
        "actor not an object",
        with_member("actor", "staff:s-42"),
        r"^'actor' must be \{\"role\": string, \"id\": string\}$",
    ),
    (
        "actor extra key",
        with_member("actor", {"role": "staff", "id": "s-42", "name": "x"}),
        r"^'actor' must be",
    ),
    ("actor empty id", with_member("actor", {"role": "staff", "id": ""}), r"^'actor' must be"),
    ("actor id number", with_member("actor", {"role": "staff", "id": 42}), r"^'actor' must be"),
    ("body a list", with_member("body", []), r"^'body' must be an object$"),
    ("body null", with_member("body", None), r"^'body' must be an object$"),
    (
        "salt uppercase",
        with_member("salt", "000102030405060708090A0B0C0D0E0F"),
        r"^'salt' must be 32 lowercase hex characters$",
    ),
    ("salt short", with_member("salt", "00" * 15), r"^'salt' must be 32 lowercase hex characters$"),
    ("salt bytes", with_member("salt", bytes(16)), r"^'salt' must be 32 lowercase hex characters$"),
]


@pytest.mark.parametrize(
    ("record", "message"), [c[1:] for c in SHAPE_ERRORS], ids=[c[0] for c in SHAPE_ERRORS]
)
def test_shape_check_names_what_is_wrong(record: Any, message: str) -> None:
    with pytest.raises(RecordShapeError, match=message):
        check_record_shape(record)


def test_is_hex64() -> None:
    assert is_hex64("0" * 64)
    assert is_hex64(PREV.hex())
    assert not is_hex64(PREV.hex().upper())
    assert not is_hex64("0" * 63)
    assert not is_hex64("0" * 65)
    assert not is_hex64("0" * 63 + "g")
    assert not is_hex64(PREV)
    assert not is_hex64(None)


# --- reference files (tests/assets) ----------------------------------------------------------
# Any change to canonical encoding or hashing breaks these on purpose: a record hash handed to a
# citizen must stay checkable forever. Never regenerate them to make this test pass.


def test_reference_record_is_a_well_formed_record() -> None:
    record = json.loads((ASSETS / "record-submitted.json").read_text(encoding="utf-8"))
    check_record_shape(record)


def test_reference_record_canonical_bytes_and_leaf_hash() -> None:
    record = json.loads((ASSETS / "record-submitted.json").read_text(encoding="utf-8"))
    canonical = (ASSETS / "record-submitted.canonical").read_bytes()
    leaf_hash_hex = (ASSETS / "record-submitted.leaf-hash").read_text(encoding="ascii").strip()

    assert canonical_bytes(record) == canonical
    assert hashlib.sha256(b"\x00" + canonical).hexdigest() == leaf_hash_hex
    assert record_leaf_hash(record).hex() == leaf_hash_hex
    assert leaf_hash_hex == "30f38d2a7a50e8db3f9848fc7a81e52d2ee57d215c2d84e868abe4f0a04acf83"


def test_reference_record_is_what_build_record_makes() -> None:
    record = json.loads((ASSETS / "record-submitted.json").read_text(encoding="utf-8"))
    sealed = build_record(
        log="suggestions",
        type="suggestion.submitted",
        subject="JY-2026-000123",
        seq=0,
        prev=None,
        actor={"role": "citizen", "id": "p-5b1e9c0d7a"},
        body=record["body"],
        now=datetime(2026, 11, 27, 17, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8))),
        salt=lambda n: bytes.fromhex("3f9c2a7e51d04b8e9a6c1f2d7e8b0a45")[:n],
    )
    assert dict(sealed.record) == record
    assert sealed.canonical == (ASSETS / "record-submitted.canonical").read_bytes()
