"""Pydantic shapes of what callers send and receive."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from core.codes import TRACKING_CODE_PATTERN
from core.workflow import EvaluationLevel, ReplyCategory, SuggestionState

#: Letters and symbols that draw nothing: the Hangul fillers and the blank Braille pattern.
_BLANK_GRAPHICS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_visible(ch: str) -> bool:
    """Whether ``ch`` draws something: a letter, number, punctuation mark or symbol. Spaces,
    controls, format characters (U+200B zero width space, the bidirectional marks and
    overrides, U+FEFF), combining marks on their own, private-use and unassigned code points
    draw nothing a reader could tell apart."""
    return unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANK_GRAPHICS


def _clean_text(value: str) -> str:
    """Normalise to NFC, strip, refuse control characters other than line breaks/tabs, and
    refuse text with no visible character (empty, white space, or only invisible characters
    such as U+200B or U+202E: issue 21)."""
    value = unicodedata.normalize("NFC", value).strip()
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in "\n\t\r":
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed")
        if unicodedata.category(ch) == "Cs":
            raise ValueError("unpaired surrogate characters are not allowed")
    if not any(is_visible(ch) for ch in value):
        raise ValueError("must not be empty, only white space or only invisible characters")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]
OneLine = Annotated[str, AfterValidator(_clean_text), AfterValidator(_one_line)]


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256, lowercase hex")]
TrackingCode = Annotated[str, Field(pattern=TRACKING_CODE_PATTERN)]


class ContactIn(BaseModel):
    """How the handling office may reach the citizen. Encrypted at rest; the record carries
    only a salted commitment."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[OneLine, Field(min_length=1, max_length=50)]
    phone: Annotated[
        str, Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$", description="digits, spaces, -")
    ]


class SuggestionIn(BaseModel):
    """A suggestion as submitted. No personal data goes into the record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    title: Annotated[OneLine, Field(min_length=1, max_length=200, description="one line")]
    text: Annotated[CleanText, Field(min_length=1, max_length=20000)]
    category: Annotated[OneLine, Field(min_length=1, max_length=64, description="e.g. 城乡建设")]
    district: Annotated[OneLine, Field(min_length=1, max_length=64, description="e.g. 鼓楼区")]
    contact: ContactIn | None = Field(None, description="optional; encrypted, never in a record")
    confidential: bool = Field(
        False,
        description=(
            "保密: the record carries commitments to the text, the title and the attachments "
            "instead of them (docs/WORKFLOW.md, 'Confidential suggestions')"
        ),
    )
    title_public: bool = Field(
        False,
        description=(
            "with confidential: the title stays public (the citizen's choice); without "
            "confidential it is always public"
        ),
    )
    deputy: Annotated[str, Field(pattern=r"^deputy-[0-9a-f]{8}$")] | None = Field(
        None, description="the deputy the suggestion is addressed to"
    )
    attachments: list[Sha256Hex] = Field(
        default_factory=list, max_length=10, description="SHA-256 of files uploaded first"
    )


class SuggestionAccepted(BaseModel):
    tracking_code: str = Field(description="the public id of the suggestion: its trail's subject")
    record_hash: str = Field(description="PROTOCOL §2 leaf hash of the submission record, hex")
    receipt_url: str
    citizen_token: str | None = Field(
        None,
        description="shown once: alone allows withdrawing and evaluating this suggestion",
    )


class TransitionIn(BaseModel):
    """One step of the workflow. ``to`` names the new state; the other fields are those the
    step needs (see docs/WORKFLOW.md); a field the step does not use is refused."""

    model_config = ConfigDict(extra="forbid")

    to: SuggestionState
    offices: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]] | None = (
        Field(None, min_length=1, max_length=10, description="handling offices, lead office first")
    )
    due: date | None = Field(None, description="reply due date (YYYY-MM-DD)")
    category: ReplyCategory | None = Field(None, description="reply category A/B/C/D")
    reply_sha256: Sha256Hex | None = None
    level: EvaluationLevel | None = None
    reason: Annotated[CleanText, Field(min_length=1, max_length=2000)] | None = None
    merged_into: TrackingCode | None = None


class FlagIn(BaseModel):
    """Flags, not states: 重点督办 key supervision, 延期 extension of the due date."""

    model_config = ConfigDict(extra="forbid")

    key_supervision: bool | None = None
    extend_due: date | None = Field(None, description="延期: the new due date")
    reason: Annotated[CleanText, Field(min_length=1, max_length=2000)] | None = None


class RecordAccepted(BaseModel):
    record_hash: str
    state: str
    receipt_url: str
