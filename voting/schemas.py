"""Pydantic shapes of what callers send to the voting API.

Every integer is strict (a JSON integer: ``"100"``, ``true`` and ``1.0`` are refused) and at
most 2^53 − 1, which records can hold (PROTOCOL §1, ``core.canonical``): a draft that could
never be opened is refused when it is written (issue 21).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.canonical import MAX_SAFE_INTEGER
from ledger.schemas import OneLine

ProjectId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
VoterId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
BallotType = Literal["approval", "cumulative", "ordinal", "yes_no"]
Rule = Literal["greedy", "mes", "mes-add1", "mes-add1-comparison", "yes-no"]
Count = Annotated[int, Field(strict=True, ge=0, le=MAX_SAFE_INTEGER)]
Positive = Annotated[int, Field(strict=True, ge=1, le=MAX_SAFE_INTEGER)]

#: The parameters each ballot type's tally reads (``core.voting.tally``) besides its projects
#: and rule. Any other parameter given is refused, whatever the method: nothing would read it,
#: yet it would be recorded in the rule set as if it counted.
PARAMETERS: dict[str, frozenset[str]] = {
    "approval": frozenset({"budget", "min_choices", "max_choices", "add1_unit"}),
    "cumulative": frozenset({"budget", "min_choices", "max_choices", "max_points", "add1_unit"}),
    "ordinal": frozenset({"budget", "min_choices", "max_choices"}),
    "yes_no": frozenset({"slots", "quorum", "majority_of"}),
}
OPTIONAL = frozenset().union(*PARAMETERS.values())
ADD1_RULES = frozenset({"mes-add1", "mes-add1-comparison"})


def _utc(value: datetime) -> datetime:
    """An aware time as UTC; one that UTC cannot hold (beyond year 9999) is refused."""
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is out of range") from exc


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ProjectId
    name: Annotated[OneLine, Field(min_length=1, max_length=200)]
    cost: Annotated[Positive, Field(description="integer, smallest unit (fen)")]


class SimulationIn(BaseModel):
    """A draft simulation: the whole rule set that `simulation.opened` will record."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[OneLine, Field(min_length=1, max_length=200)]
    ballot_type: BallotType
    rule: Rule
    projects: Annotated[list[ProjectIn], Field(min_length=1, max_length=500)]
    budget: Positive | None = Field(None, description="participatory budgets: the money to spend")
    slots: Positive | None = Field(None, description="票决: projects to adopt (M)")
    min_choices: Count | None = None
    max_choices: Positive | None = None
    max_points: Positive | None = Field(None, description="cumulative: total points")
    add1_unit: Positive = Field(
        1,
        description="mes-add1 rules: Add1 raises each voter's share by this many smallest units "
        "per step (100: one yuan in fen)",
    )
    quorum: tuple[Count, Positive] = Field(
        (2, 3), description="票决 quorum as [numerator, denominator], at most 1"
    )
    majority_of: Literal["eligible", "present"] = Field("eligible", description="票决 only")
    secrecy: Literal["open", "secret"] = "open"
    electorate: Annotated[list[VoterId], Field(min_length=1, max_length=100_000)] | None = Field(
        None, description="voter ids; default: every active deputy with a registered key"
    )
    closes_at: Annotated[AwareDatetime, AfterValidator(_utc)] | None = Field(
        None, description="end of the voting window, with its time zone (Z or ±hh:mm)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SimulationIn:
        ids = [p.id for p in self.projects]
        if len(set(ids)) != len(ids):
            raise ValueError("project ids must be distinct")
        given = {
            name for name in self.model_fields_set & OPTIONAL if getattr(self, name) is not None
        }
        unused = sorted(given - PARAMETERS[self.ballot_type])
        if unused:
            raise ValueError(f"a {self.ballot_type} simulation takes no {', '.join(unused)}")
        if "add1_unit" in given and self.rule not in ADD1_RULES:
            raise ValueError(f"add1_unit is for the rules {', '.join(sorted(ADD1_RULES))}")
        num, den = self.quorum
        if num > den:
            raise ValueError("quorum must be a fraction between 0 and 1, e.g. [2, 3]")
        if self.ballot_type == "yes_no":
            if self.rule != "yes-no":
                raise ValueError("a yes_no simulation uses the rule yes-no")
            if self.slots is None or self.slots >= len(self.projects):
                raise ValueError("票决 needs slots (M) smaller than the number of candidates")
        else:
            if self.rule == "yes-no":
                raise ValueError("the yes-no rule is for yes_no ballots")
            if self.budget is None:
                raise ValueError("a participatory budget needs a budget")
            if self.rule == "mes-add1-comparison" and self.ballot_type != "approval":
                raise ValueError("the comparison step is defined for approval ballots only")
            if self.ballot_type == "ordinal" and self.rule != "greedy":
                raise ValueError("ordinal ballots are tallied with greedy (positional points)")
        if self.min_choices is not None and self.min_choices > len(self.projects):
            raise ValueError("min_choices is larger than the number of projects")
        if (
            self.min_choices is not None
            and self.max_choices is not None
            and self.min_choices > self.max_choices
        ):
            raise ValueError("min_choices is larger than max_choices")
        return self


class BallotIn(BaseModel):
    """A signed ballot: the signature covers the RFC 8785 bytes of
    {simulation, voter, choices, nonce} (PROTOCOL §6)."""

    model_config = ConfigDict(extra="forbid")

    simulation: Annotated[str, Field(max_length=32)]
    voter: VoterId
    choices: Any
    nonce: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]


class PublicKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="Ed25519, raw, hex")]
