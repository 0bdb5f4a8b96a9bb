"""Tests of the voting engine. pabutools (a dev dependency) is the oracle for the tally rules.

The helpers below translate our inputs into pabutools objects; they are shared by
``test_rules`` and ``test_pabulib``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence, Set
from pathlib import Path
from typing import Any

from pabutools.election import (
    AdditiveSatisfaction,
    ApprovalBallot,
    ApprovalProfile,
    CumulativeBallot,
    CumulativeProfile,
    Instance,
    Project,
)
from pabutools.tiebreaking import TieBreakingRule, lexico_tie_breaking

# ../shared beside the repository; the files are not copied into the repo.
# The shared folder beside the repository (CI lays a copy there); CIVIC_SHARED_DIR overrides.
PABULIB_DIR = (
    Path(
        os.environ.get("CIVIC_SHARED_DIR") or Path(__file__).resolve().parents[2].parent / "shared"
    )
    / "data"
    / "pabulib"
)
PABULIB_FILES = (
    "Netherlands_Assen_2024.pb",
    "Poland_Czestochowa_2024_Srodmiescie.pb",
    "Poland_Krakow_2020_Stare_Miasto.pb",
    "Poland_Swiecie_2023.pb",
    "Poland_Warszawa_2022_Wlochy.pb",
    "Poland_Wieliczka_2023_Green_Budget.pb",
)


def pabutools_instance(
    projects: Mapping[str, int], budget: int
) -> tuple[Instance, dict[str, Project]]:
    by_id = {pid: Project(pid, cost) for pid, cost in projects.items()}
    return Instance(by_id.values(), budget_limit=budget), by_id


def pabutools_approval(
    projects: Mapping[str, int], budget: int, ballots: Sequence[Set[str]]
) -> tuple[Instance, ApprovalProfile]:
    instance, by_id = pabutools_instance(projects, budget)
    profile = ApprovalProfile([ApprovalBallot([by_id[p] for p in b]) for b in ballots])
    return instance, profile


def pabutools_cumulative(
    projects: Mapping[str, int], budget: int, ballots: Sequence[Mapping[str, int]]
) -> tuple[Instance, CumulativeProfile]:
    instance, by_id = pabutools_instance(projects, budget)
    profile = CumulativeProfile(
        [CumulativeBallot({by_id[p]: points for p, points in b.items()}) for b in ballots]
    )
    return instance, profile


def tie_breaking(name: str) -> TieBreakingRule:
    """Our MES tie-breaking names as pabutools tie-breaking rules."""
    if name == "id":
        return lexico_tie_breaking
    return TieBreakingRule(
        lambda inst, prof, proj: (proj.cost, -prof.approval_score(proj), proj.name)
    )


def score_times_cost(score: Callable[[Any, Project], int]) -> type[AdditiveSatisfaction]:
    """A pabutools satisfaction whose greedy density (total satisfaction / cost) is the score."""

    def func(instance: Any, profile: Any, ballot: Any, project: Project, pre: dict) -> Any:
        return score(ballot, project) * project.cost

    class ScoreTimesCost(AdditiveSatisfaction):
        def __init__(self, instance: Any, profile: Any, ballot: Any) -> None:
            AdditiveSatisfaction.__init__(self, instance, profile, ballot, func)

    return ScoreTimesCost
