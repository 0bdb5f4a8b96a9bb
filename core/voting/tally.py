"""Tally a simulation's counted ballots with its rule. Pure: the service and any recount
(``civic-verify``, inspectors) call the same function on the same inputs.

Ballot shapes (``choices`` as signed): approval → list of project ids; cumulative →
{project id: points}; ordinal → list of project ids, best first; yes_no → {candidate:
"yes" | "no" | "abstain"}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from core.voting import rules
from core.voting.errors import BallotInvalid

MAX_ADD1_RUNS = 1_000_000  # a guard: beyond this the unit is too small for the budget


def ordinal_scores(
    costs: Mapping[str, int], ballots: Sequence[Sequence[str]], top: int
) -> dict[str, int]:
    """Positional points: rank ``i`` (0 = best) earns ``top - i`` (Kraków's 3/2/1)."""
    scores = dict.fromkeys(costs, 0)
    for ballot in ballots:
        for rank, project in enumerate(ballot):
            scores[project] += top - rank
    return scores


def check_ballot(rule_set: Mapping[str, Any], choices: Any) -> None:
    """Raise ``core.voting.errors.BallotInvalid`` unless ``choices`` fits the rule set."""
    projects = [p["id"] for p in rule_set["projects"]]
    kind = rule_set["ballot_type"]
    lo, hi = rule_set.get("min_choices"), rule_set.get("max_choices")
    if kind == "approval":
        rules.check_approval_ballot(choices, projects, lo, hi)
        if not isinstance(choices, list):
            raise BallotInvalid("not_a_list", "an approval ballot is a list of project ids")
    elif kind == "ordinal":
        rules.check_approval_ballot(choices, projects, lo, hi)
        if not isinstance(choices, list):
            raise BallotInvalid("not_a_list", "an ordinal ballot is a list, best first")
    elif kind == "cumulative":
        rules.check_points_ballot(
            choices, projects, min_len=lo, max_len=hi, max_sum_points=rule_set.get("max_points")
        )
    else:
        rules.check_yes_no_ballot(choices, projects, rule_set["slots"])


def tally(rule_set: Mapping[str, Any], ballots: Mapping[str, Any]) -> dict[str, Any]:
    """Counts and outcome for ``ballots`` (voter id → choices) under ``rule_set``.

    Returns only ints, strings, lists and objects, so it can go into a record as it is.
    """
    costs = {p["id"]: p["cost"] for p in rule_set["projects"]}
    kind, rule = rule_set["ballot_type"], rule_set["rule"]
    if kind == "yes_no":
        num, den = rule_set["quorum"]
        result = rules.yes_no_abstain(
            list(costs),
            rule_set["slots"],
            rule_set["electorate_ids"],
            ballots,
            Fraction(num, den),
            rule_set["majority_of"],
        )
        return {
            "counts": {
                c.candidate: {
                    "yes": c.yes,
                    "no": c.no,
                    "abstain": c.abstain,
                    "not_voted": c.not_voted,
                }
                for c in result.counts
            },
            "outcome": {
                "quorum_required": result.quorum_required,
                "quorum_met": result.quorum_met,
                "yes_needed": result.yes_needed,
                "passed": [c.candidate for c in result.counts if c.passed],
                "adopted": list(result.adopted),
                "tie": None
                if result.tie is None
                else {
                    "candidates": list(result.tie.candidates),
                    "yes": result.tie.yes,
                    "seats": result.tie.seats,
                },
            },
        }
    values = list(ballots.values())
    budget = rule_set["budget"]
    if kind == "approval":
        scores = rules.approval_scores(costs, [frozenset(v) for v in values])
    elif kind == "cumulative":
        scores = rules.points_scores(costs, values)
    else:
        top = rule_set.get("max_choices") or max((len(v) for v in values), default=0)
        scores = ordinal_scores(costs, values, top)
    if rule == "greedy":
        selected = rules.greedy(costs, budget, scores)
        detail: dict[str, Any] = {}
    else:
        completion = {"mes": None, "mes-add1": "add1", "mes-add1-comparison": "add1-comparison"}[
            rule
        ]
        mes_ballots = [frozenset(v) for v in values] if kind == "approval" else values
        outcome = rules.equal_shares_outcome(
            costs,
            budget,
            mes_ballots,
            completion,  # type: ignore[arg-type]
            unit=rule_set.get("add1_unit", 1),
            max_runs=MAX_ADD1_RUNS,
        )
        selected = outcome.selected
        detail = {"virtual_budget": outcome.virtual_budget}
        if outcome.comparison is not None:
            detail["comparison"] = {
                "prefer_mes": outcome.comparison.prefer_mes,
                "prefer_greedy": outcome.comparison.prefer_greedy,
                "chose_greedy": outcome.comparison.chose_greedy,
            }
    return {
        "counts": scores,
        "outcome": {"selected": list(selected), "cost": sum(costs[p] for p in selected), **detail},
    }
