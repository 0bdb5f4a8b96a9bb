"""What verifying a receipt concludes (PROTOCOL §5), and the checks that led there."""

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
