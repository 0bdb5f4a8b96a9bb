"""BASELINE for benchmarks only, not part of civic-ledger: the plain CRUD app the service is
compared with (``./scripts/bench --only crud-baseline``, see scripts/bench_crud.py).

FastAPI + SQLAlchemy 2 ORM, one table, one INSERT and one COMMIT per POST /api/v1/suggestions,
written the way a plain app is written. No records, hashes, batches, chain or audit trail.
Durability matches the service: SQLite in WAL mode with synchronous=FULL, PostgreSQL (psycopg 3)
with synchronous_commit on. The database is CRUD_DATABASE_URL; run it under uvicorn with as
many workers as the service's API (scripts/bench_crud.py does).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, String, Text, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Suggestion(Base):
    __tablename__ = "crud_suggestions"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SuggestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=20000)
    category: str = Field(min_length=1, max_length=64)
    district: str = Field(min_length=1, max_length=64)


def make_engine(url: str) -> Any:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA synchronous=FULL")

        return engine
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def create_table(url: str) -> None:
    """Run once before the workers start (several workers would race to create it)."""
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    engine.dispose()


engine = make_engine(os.environ.get("CRUD_DATABASE_URL", "sqlite:///crud-baseline.db"))
app = FastAPI(title="CRUD baseline (benchmark only)")


@app.post("/api/v1/suggestions", status_code=201)
def submit(body: SuggestionIn) -> dict[str, int]:
    with Session(engine, expire_on_commit=False) as session:
        row = Suggestion(**body.model_dump(), created_at=datetime.now(UTC))
        session.add(row)
        session.commit()
        return {"id": row.id}


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}
