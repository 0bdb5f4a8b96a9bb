"""Pydantic shapes of what callers send to the voting API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProjectId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
VoterId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
BallotType = Literal["approval", "cumulative", "ordinal", "yes_no"]
Rule = Literal["greedy", "mes", "mes-add1", "mes-add1-comparison", "yes-no"]


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ProjectId
    name: Annotated[str, Field(min_length=1, max_length=200)]
    cost: Annotated[int, Field(ge=1, le=2**53 - 1, description="integer, smallest unit (fen)")]


class SimulationIn(BaseModel):
    """A draft simulation: the whole rule set that `simulation.opened` will record."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, Field(min_length=1, max_length=200)]
    ballot_type: BallotType
    rule: Rule
    projects: Annotated[list[ProjectIn], Field(min_length=1, max_length=500)]
    budget: Annotated[int, Field(ge=1, le=2**53 - 1)] | None = None
    slots: Annotated[int, Field(ge=1)] | None = Field(
        None, description="票决: projects to adopt (M)"
    )
    min_choices: Annotated[int, Field(ge=0)] | None = None
    max_choices: Annotated[int, Field(ge=1)] | None = None
    max_points: Annotated[int, Field(ge=1)] | None = Field(
        None, description="cumulative: total points"
    )
    add1_unit: Annotated[int, Field(ge=1)] = Field(
        1,
        description="Add1 raises each voter's share by this many smallest units per step (100: one yuan in fen)",
    )
    quorum: tuple[int, int] = Field((2, 3), description="票决 quorum as [numerator, denominator]")
    majority_of: Literal["eligible", "present"] = "eligible"
    secrecy: Literal["open", "secret"] = "open"
    electorate: Annotated[list[VoterId], Field(min_length=1, max_length=100_000)] | None = Field(
        None, description="voter ids; default: every active deputy with a registered key"
    )
    closes_at: datetime | None = Field(None, description="end of the voting window (UTC)")

    @model_validator(mode="after")
    def _consistent(self) -> SimulationIn:
        ids = [p.id for p in self.projects]
        if len(set(ids)) != len(ids):
            raise ValueError("project ids must be distinct")
        if self.ballot_type == "yes_no":
            if self.rule != "yes-no":
                raise ValueError("a yes_no simulation uses the rule yes-no")
            if self.slots is None or self.slots >= len(self.projects):
                raise ValueError("票决 needs slots (M) smaller than the number of candidates")
            num, den = self.quorum
            if not (0 <= num <= den and den > 0):
                raise ValueError("quorum must be a fraction between 0 and 1, e.g. [2, 3]")
        else:
            if self.rule == "yes-no":
                raise ValueError("the yes-no rule is for yes_no ballots")
            if self.budget is None:
                raise ValueError("a participatory budget needs a budget")
            if self.rule == "mes-add1-comparison" and self.ballot_type != "approval":
                raise ValueError("the comparison step is defined for approval ballots only")
            if self.ballot_type == "ordinal" and self.rule != "greedy":
                raise ValueError("ordinal ballots are tallied with greedy (positional points)")
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
