"""What verifying a receipt or a trail concludes (PROTOCOL §5), and the checks that led there.

Receipts and trails have separate verdict types. A receipt can never be ``gap`` and a trail is
never ``redacted`` (an erased record is acceptable inside a trail), so each function's return
type says exactly which answers it can give. The values are the protocol's words, and a
receipt verdict that fails a trail keeps its word: ``TrailVerdict(receipt_verdict.value)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The PROTOCOL §5 verdicts of one receipt; the values are the protocol's words."""

    VALID = "valid"
    ALTERED = "altered"
    NOT_ANCHORED = "not_anchored"
    ROOT_MISMATCH = "root_mismatch"
    WRONG_CHAIN = "wrong_chain"
    MALFORMED = "malformed"
    UNCONFIRMED = "unconfirmed"
    REDACTED = "redacted"
    # PROTOCOL §11: a checkpoint's signature or a cosignature fails under a key it names.
    BAD_SIGNATURE = "bad_signature"
    # PROTOCOL §8: an anchored tree does not extend an earlier one.
    INCONSISTENT = "inconsistent"


class MapVerdict(StrEnum):
    """What replaying a log's map of trail heads (PROTOCOL §10) from its entries finds beyond
    the receipt verdicts (``civic-verify monitor``; the audit's finding of the same name):
    a ``ledger.map_head`` record whose map_root, trails, index or batch is not what the
    entries before it give."""

    MAP_HEAD_MISMATCH = "map_head_mismatch"


@dataclass(frozen=True, slots=True)
class Check:
    """One check a verifier made. ``step`` is the number of the PROTOCOL §5 step it belongs to."""

    step: int
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class ReceiptVerification:
    """The verdict on one receipt, the record hash it is about, and every check made, in order.

    Checks stop at the first failure, which ``reason`` names. ``record_hash`` is the leaf hash
    (64 lowercase hex) once step 2 has run, else None.
    """

    verdict: Verdict
    record_hash: str | None
    checks: list[Check] = field(default_factory=list)
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.verdict is Verdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "record_hash": self.record_hash,
            "reason": self.reason,
            "checks": [check.to_dict() for check in self.checks],
        }


class TrailVerdict(StrEnum):
    """The PROTOCOL §5 verdicts of a trail (all records of one subject in one log).

    ``pending`` is this verifier's word, not the protocol's: every check that could be made
    passed, but some record has no receipt yet. A failing receipt fails its trail with the
    receipt's own verdict (``altered``, ``not_anchored``, …); ``malformed`` also covers an
    entry of the trail listing that is not shaped as the service promises.
    """

    VALID = "valid"
    PENDING = "pending"
    BROKEN_LINK = "broken_link"
    GAP = "gap"
    ILLEGAL_TRANSITION = "illegal_transition"
    TIME_REVERSED = "time_reversed"
    ALTERED = "altered"
    NOT_ANCHORED = "not_anchored"
    ROOT_MISMATCH = "root_mismatch"
    WRONG_CHAIN = "wrong_chain"
    MALFORMED = "malformed"
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True, slots=True)
class TrailRecordResult:
    """What the trail verification found about the entry at position ``index`` of the trail.

    Content fields (``seq``, ``type``, ``at``, ``actor_role``) are None when the content is not
    visible (erased, §7). ``from_state``/``to_state`` are the suggestion states the record moves
    between (``to_state`` alone for ``suggestion.submitted``; neither for other types).
    ``receipt_verdict`` is None for a pending record. ``verdict`` and ``problem`` say what is
    wrong with this record (None when ``ok``); ``note`` says what could not be checked.
    """

    seq: int | None
    record_hash: str | None
    type: str | None
    at: str | None
    actor_role: str | None
    from_state: str | None
    to_state: str | None
    receipt_verdict: Verdict | None
    ok: bool
    problem: str | None = None
    verdict: TrailVerdict | None = None
    note: str | None = None
    index: int = 0
    status: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "seq": self.seq,
            "record_hash": self.record_hash,
            "status": self.status,
            "type": self.type,
            "at": self.at,
            "actor_role": self.actor_role,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "receipt_verdict": None if self.receipt_verdict is None else self.receipt_verdict.value,
            "ok": self.ok,
            "verdict": None if self.verdict is None else self.verdict.value,
            "problem": self.problem,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class TrailVerification:
    """The verdict on a trail, and what was found about every record, in trail order.

    ``first_bad`` is the index of the first record that failed (the one ``reason`` names), or
    None. ``state`` is the suggestion state the trail reaches (None for other logs, or when
    erased records leave it open). ``tracking_code`` is the subject checked.
    """

    verdict: TrailVerdict
    tracking_code: str | None
    state: str | None
    first_bad: int | None
    records: list[TrailRecordResult] = field(default_factory=list)
    reason: str = ""
    log: str = "suggestions"

    @property
    def valid(self) -> bool:
        return self.verdict is TrailVerdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "tracking_code": self.tracking_code,
            "log": self.log,
            "state": self.state,
            "first_bad": self.first_bad,
            "reason": self.reason,
            "records": [record.to_dict() for record in self.records],
        }


class Completeness(StrEnum):
    """Whether a trail shown is the whole trail as of a batch (PROTOCOL §11, "A complete
    trail"), from the map of trail heads (§10); reported beside the trail's own verdict.

    ``no_map`` is this verifier's word: the service showed no map proof (a version 1 service,
    or no anchored batch with a map head yet), so completeness could not be checked. When the
    receipt of the map head fails, the verdict is that receipt's (``not_anchored``,
    ``root_mismatch``, ``wrong_chain``, ``bad_signature``, ``unconfirmed``, ``malformed``,
    ``altered``); ``malformed`` also covers a map answer not shaped as the service promises.
    """

    COMPLETE = "complete"
    TRUNCATED = "truncated"
    HEAD_MISMATCH = "head_mismatch"
    UNKNOWN_SUBJECT = "unknown_subject"
    STALE = "stale"
    ALTERED = "altered"
    NO_MAP = "no_map"
    MALFORMED = "malformed"
    NOT_ANCHORED = "not_anchored"
    ROOT_MISMATCH = "root_mismatch"
    WRONG_CHAIN = "wrong_chain"
    UNCONFIRMED = "unconfirmed"
    BAD_SIGNATURE = "bad_signature"


@dataclass(frozen=True, slots=True)
class CompletenessVerification:
    """The verdict on a trail's completeness, and what it rests on.

    ``batch`` is the batch whose map was shown, ``latest_batch`` the latest anchored batch of
    the log as the chain or the latest cosigned checkpoint says (None when unknown),
    ``map_root`` and ``map_index`` the map head's root and position, ``head_seq``/``head_hash``
    the trail head the map proves (None when it proves the subject has no trail).
    ``map_head`` is the verification of the map head's receipt; ``checks`` every check made.
    """

    verdict: Completeness
    reason: str
    batch: int | None = None
    latest_batch: int | None = None
    map_root: str | None = None
    map_index: int | None = None
    head_seq: int | None = None
    head_hash: str | None = None
    map_head: ReceiptVerification | None = None
    checks: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.verdict is Completeness.COMPLETE

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "batch": self.batch,
            "latest_batch": self.latest_batch,
            "map_root": self.map_root,
            "map_index": self.map_index,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "map_head": None if self.map_head is None else self.map_head.to_dict(),
            "checks": list(self.checks),
        }
