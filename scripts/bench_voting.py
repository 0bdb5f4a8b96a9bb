"""Voting benchmarks: tally time against pabutools, and ballot signing throughput.

* ``measure_tally(path)``: our engine runs the rule named in the file's META (the Wieliczka
  Green Budget file: MES with Add1 and the comparison step, 6,586 voters) and pabutools
  runs the same rule on the same file in the same process, one after the other; both
  outcomes are compared.
* ``measure_ballot_signing(n)``: Ed25519 signatures over canonical ballot bytes, signed and
  verified per second.

``python scripts/bench_voting.py`` prints both as JSON; ``scripts/bench`` may import the two
functions. pabutools is a development dependency and is imported only here.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.voting.ballots import (  # noqa: E402  (the repository root goes on sys.path first)
    public_key_hex,
    sign_ballot,
    verify_ballot_signature,
)
from voting.ballots import generate_key  # noqa: E402
from voting.pabulib import load_pabulib, run_rule  # noqa: E402

SHARED = Path(os.environ.get("CIVIC_SHARED_DIR") or ROOT.parent / "shared")
WIELICZKA = SHARED / "data" / "pabulib" / "Poland_Wieliczka_2023_Green_Budget.pb"


def _pabutools_tally(path: Path) -> tuple[set[str], float, float, str]:
    """pabutools on the same file and rule: (winners, parse seconds, tally seconds, call)."""
    from pabutools.election import Cardinality_Sat, Cost_Sat, parse_pabulib
    from pabutools.rules import greedy_utilitarian_welfare, method_of_equal_shares
    from pabutools.rules.composition import popularity_comparison
    from pabutools.rules.exhaustion import exhaustion_by_budget_increase

    started = time.perf_counter()
    instance, profile = parse_pabulib(str(path))
    parsed = time.perf_counter()
    rule = instance.meta.get("rule")
    if instance.meta.get("vote_type") != "approval":
        raise ValueError("the pabutools side of this benchmark handles approval files only")
    n = profile.num_ballots()
    if rule == "greedy":
        outcome = greedy_utilitarian_welfare(instance, profile, sat_class=Cost_Sat)
        call = "greedy_utilitarian_welfare(Cost_Sat)"
    elif rule in ("equalshares/add1", "equalshares/add1-comparison"):
        outcome = exhaustion_by_budget_increase(
            instance,
            profile,
            method_of_equal_shares,
            {"sat_class": Cost_Sat},
            budget_step=n,
            exhaustive_stop=False,
        )
        call = (
            "exhaustion_by_budget_increase(method_of_equal_shares, Cost_Sat, "
            "budget_step=n, exhaustive_stop=False)"
        )
        if rule == "equalshares/add1-comparison":
            mes = outcome
            winners = popularity_comparison(
                instance,
                profile,
                Cardinality_Sat,
                [lambda *_, **__: mes, greedy_utilitarian_welfare],
                [{}, {"sat_class": Cost_Sat}],
            )
            outcome = winners[0] if len(winners) == 1 else mes
            call += " + popularity_comparison(Cardinality_Sat, greedy Cost_Sat)"
    else:
        raise ValueError(f"rule {rule!r} is not benchmarked")
    finished = time.perf_counter()
    return {p.name for p in outcome}, parsed - started, finished - parsed, call


def measure_tally(path: str | Path = WIELICZKA, *, with_pabutools: bool = True) -> dict[str, Any]:
    """Time the file's META rule: ours, then pabutools on the same file in the same run."""
    path = Path(path)
    started = time.perf_counter()
    instance = load_pabulib(path)
    parsed = time.perf_counter()
    ours = run_rule(instance)
    finished = time.perf_counter()
    result: dict[str, Any] = {
        "file": path.name,
        "rule": instance.rule,
        "voters": len(instance.votes),
        "projects": len(instance.projects),
        "ours_parse_seconds": round(parsed - started, 4),
        "ours_tally_seconds": round(finished - parsed, 4),
        "ours_matches_recorded_winners": set(ours) == instance.selected(),
    }
    if with_pabutools:
        theirs, parse_seconds, tally_seconds, call = _pabutools_tally(path)
        result.update(
            {
                "pabutools_call": call,
                "pabutools_parse_seconds": round(parse_seconds, 4),
                "pabutools_tally_seconds": round(tally_seconds, 4),
                "speedup": round(tally_seconds / (finished - parsed), 1),
                "outcomes_equal": set(ours) == theirs,
            }
        )
    return result


def measure_ballot_signing(n: int = 5000) -> dict[str, Any]:
    """Sign ``n`` yes/no ballots, then verify them: operations per second."""
    key = generate_key()
    public = public_key_hex(key)
    ballots = [
        (
            "sim-bench",
            f"deputy-{i:05d}",
            {f"p{j}": ("yes", "no", "abstain")[(i + j) % 3] for j in range(8)},
            secrets.token_hex(16),
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    signatures = [sign_ballot(key, *ballot) for ballot in ballots]
    signed = time.perf_counter()
    valid = sum(
        verify_ballot_signature(public, *ballot, signature)
        for ballot, signature in zip(ballots, signatures, strict=True)
    )
    verified = time.perf_counter()
    if valid != n:
        raise AssertionError(f"only {valid} of {n} signatures verified")
    return {
        "ballots": n,
        "sign_per_second": round(n / (signed - started)),
        "verify_per_second": round(n / (verified - signed)),
        "sign_and_verify_per_second": round(n / (verified - started)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=WIELICZKA, help="a Pabulib .pb file")
    parser.add_argument("--ballots", type=int, default=5000, help="ballots to sign and verify")
    parser.add_argument(
        "--no-pabutools", action="store_true", help="time our engine only (pabutools is slow)"
    )
    args = parser.parse_args(argv)
    report = {
        "tally": measure_tally(args.file, with_pabutools=not args.no_pabutools),
        "ballot_signing": measure_ballot_signing(args.ballots),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
