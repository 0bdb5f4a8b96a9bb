"""Pydantic shapes of what callers send and receive."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _clean_text(value: str) -> str:
    """Normalise to NFC, strip, and refuse control characters other than line breaks/tabs."""
    value = unicodedata.normalize("NFC", value).strip()
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in "\n\t\r":
            raise ValueError(f"control character U+{ord(ch):04X} is not allowed")
        if unicodedata.category(ch) == "Cs":
            raise ValueError("unpaired surrogate characters are not allowed")
    if not value:
        raise ValueError("must not be empty or only white space")
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("must be a single line")
    return value


CleanText = Annotated[str, AfterValidator(_clean_text)]
OneLine = Annotated[str, AfterValidator(_clean_text), AfterValidator(_one_line)]


class SuggestionIn(BaseModel):
    """A citizen's suggestion as submitted. No personal data goes into the record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    title: Annotated[OneLine, Field(min_length=1, max_length=200, description="one line")]
    text: Annotated[CleanText, Field(min_length=1, max_length=20000)]
    category: Annotated[OneLine, Field(min_length=1, max_length=64, description="e.g. 城乡建设")]
    district: Annotated[OneLine, Field(min_length=1, max_length=64, description="e.g. 鼓楼区")]


class SuggestionAccepted(BaseModel):
    tracking_code: str = Field(description="the public id of the suggestion: its trail's subject")
    record_hash: str = Field(description="PROTOCOL §2 leaf hash of the submission record, hex")
    receipt_url: str


class Pending(BaseModel):
    status: str = "pending"
    detail: str


class AnchorOut(BaseModel):
    log: str
    batch: int
    root: str
    size: int
    tx: str
    block: int
    chain_id: int
    contract: str
    leaf_hashes: list[str]
