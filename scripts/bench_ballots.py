"""Signed ballots accepted per second in-process, through ``voting.service.cast`` (the code
the API runs): signature check, eligibility, window, constraints, nonce, record append."""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def measure_ballots(n: int = 3000, commit_every: int = 1, url: str | None = None) -> dict[str, Any]:
    from core.voting.ballots import public_key_hex, sign_ballot
    from ledger.auth import Principal, Role
    from ledger.db import make_engine, make_session_factory
    from ledger.migrate import upgrade
    from voting import service
    from voting.ballots import generate_key
    from voting.schemas import BallotIn, ProjectIn, SimulationIn

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url or f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        sessions = make_session_factory(engine)
        keys = {f"pb-{i}": generate_key() for i in range(n)}
        staff = Principal(Role.STAFF, "bench")
        projects = [ProjectIn(id=f"P{i}", name=f"project {i}", cost=100 + i) for i in range(20)]
        data = SimulationIn(
            title="bench", ballot_type="approval", rule="greedy", budget=1000, projects=projects
        )
        with sessions.begin() as session:
            row = service.create(
                session, data, principal=staff, keys={v: public_key_hex(k) for v, k in keys.items()}
            )
            service.open_simulation(session, row.id, principal=staff)
            sim = row.id
        ballots = []
        for voter, key in keys.items():
            choices = [f"P{j}" for j in sorted(secrets.SystemRandom().sample(range(20), 4))]
            nonce = secrets.token_hex(16)
            ballots.append(
                BallotIn(
                    simulation=sim,
                    voter=voter,
                    choices=choices,
                    nonce=nonce,
                    signature=sign_ballot(key, sim, voter, choices, nonce),
                )
            )
        start = time.perf_counter()
        session = sessions()
        session.begin()
        for i, ballot in enumerate(ballots, 1):
            service.cast(session, sim, ballot)
            if i % commit_every == 0:
                session.commit()
                session.begin()
        session.commit()
        session.close()
        elapsed = time.perf_counter() - start
        engine.dispose()
    return {
        "ballots": n,
        "commit_every": commit_every,
        "seconds": round(elapsed, 3),
        "per_second": round(n / elapsed, 1),
    }


def main() -> int:
    for every in (1, 100):
        print(json.dumps(measure_ballots(commit_every=every)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
