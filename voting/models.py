"""SQLAlchemy models of budget simulations. The votes log's records are the truth; these
rows summarise them for casting checks and results."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.models import Base, UTCDateTime


class SimulationRow(Base):
    __tablename__ = "simulations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # draft | open | closed | tallied
    ballot_type: Mapped[str] = mapped_column(String(16))  # approval | cumulative | ordinal | yes_no
    rule: Mapped[str] = mapped_column(String(32))
    secrecy: Mapped[str] = mapped_column(String(8))  # open | secret
    rules: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    tally_record: Mapped[str | None] = mapped_column(String(64), nullable=True)

    @property
    def rule_set(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.rules)
        return value


class BallotRow(Base):
    __tablename__ = "ballots"

    simulation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("simulations.id"), primary_key=True
    )
    voter: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    record_hash: Mapped[str] = mapped_column(String(64), unique=True)
    choices: Mapped[str] = mapped_column(Text)
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
