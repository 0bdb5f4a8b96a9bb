"""`civic-ledger simulation import-pabulib` replays six real elections as signed ballots
through the service and must select exactly the recorded winners."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.db import make_engine, make_session_factory
from ledger.models import RecordRow
from ledger.settings import Settings
from tests.voting import PABULIB_DIR
from voting.cli import import_pabulib
from voting.pabulib import load_pabulib

PABULIB = PABULIB_DIR
FILES = sorted(PABULIB.glob("*.pb"))


def test_the_six_files_are_there() -> None:
    assert len(FILES) == 6


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_import_reproduces_the_recorded_winners(path: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'civic.db'}")
    out = import_pabulib(settings, path)
    instance = load_pabulib(path)
    assert set(out["selected"]) == instance.selected()
    assert out["ballots"] == len(instance.votes)
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        tally = session.scalars(
            select(RecordRow).where(RecordRow.leaf_hash == bytes.fromhex(out["tally_record"]))
        ).one()
        ballots = session.scalars(
            select(RecordRow.type).where(RecordRow.type == "ballot.cast")
        ).all()
    engine.dispose()
    body = json.loads(tally.canonical)["body"]
    assert tally.type == "simulation.tallied" and body["ballots_counted"] == len(ballots) == len(
        instance.votes
    )
