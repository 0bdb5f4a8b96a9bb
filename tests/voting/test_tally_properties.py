"""Invariants of ``core.voting.tally.tally`` over random elections, for every ballot type and rule:
the outcome stays within the budget and is made of known projects, the result does not depend
on voters' names or order, and (for greedy and 票决) more support never loses a project or a
candidate its place."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.voting.tally import tally

RULES = ["greedy", "mes", "mes-add1", "mes-add1-comparison"]
IDS = "ABCDEFG"


@st.composite
def elections(
    draw: st.DrawFn, kinds: tuple[str, ...] = ("approval", "cumulative", "ordinal")
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A rule set and ballots (voter → choices) that fit it."""
    kind = draw(st.sampled_from(kinds))
    # as SimulationIn allows: the comparison step is for approval ballots only
    rule = draw(
        st.sampled_from(
            RULES if kind == "approval" else RULES[:3] if kind == "cumulative" else ["greedy"]
        )
    )
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True))
    projects = [{"id": p, "name": p, "cost": draw(st.integers(1, 20))} for p in ids]
    budget = draw(st.integers(1, sum(p["cost"] for p in projects) + 5))
    voters = draw(st.integers(0, 8))
    ballots: dict[str, Any] = {}
    for i in range(voters):
        if kind == "approval":
            choice: Any = sorted(draw(st.sets(st.sampled_from(ids), min_size=1)))
        elif kind == "cumulative":
            choice = draw(st.dictionaries(st.sampled_from(ids), st.integers(1, 5), min_size=1))
        else:
            choice = draw(st.permutations(ids))[: draw(st.integers(1, len(ids)))]
        ballots[f"deputy-{i:08x}"] = choice
    rule_set = {"ballot_type": kind, "rule": rule, "projects": projects, "budget": budget}
    return rule_set, ballots


def costs(rule_set: dict[str, Any]) -> dict[str, int]:
    return {p["id"]: p["cost"] for p in rule_set["projects"]}


@settings(max_examples=100, deadline=None)
@given(elections())
def test_the_outcome_is_within_budget_and_of_known_projects(
    election: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    rule_set, ballots = election
    result = tally(rule_set, ballots)
    selected = result["outcome"]["selected"]
    known = costs(rule_set)
    assert len(set(selected)) == len(selected)
    assert set(selected) <= set(known)
    assert result["outcome"]["cost"] == sum(known[p] for p in selected)
    assert result["outcome"]["cost"] <= rule_set["budget"]
    assert set(result["counts"]) == set(known)


@settings(max_examples=100, deadline=None)
@given(elections(), st.randoms(use_true_random=False))
def test_voters_names_and_order_do_not_matter(
    election: tuple[dict[str, Any], dict[str, Any]], rnd: random.Random
) -> None:
    rule_set, ballots = election
    choices = list(ballots.values())
    rnd.shuffle(choices)
    renamed = {f"deputy-{rnd.getrandbits(32):08x}-{i}": c for i, c in enumerate(choices)}
    assert tally(rule_set, renamed) == tally(rule_set, ballots)


@settings(max_examples=100, deadline=None)
@given(elections(kinds=("approval",)), st.data())
def test_greedy_more_approval_never_drops_a_selected_project(
    election: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    rule_set, ballots = election
    rule_set = {**rule_set, "rule": "greedy"}
    before = tally(rule_set, ballots)["outcome"]["selected"]
    if not before:
        return
    favourite = data.draw(st.sampled_from(sorted(before)))
    after = tally(rule_set, {**ballots, "deputy-ffffffff": [favourite]})
    assert favourite in after["outcome"]["selected"]
    assert after["counts"][favourite] == tally(rule_set, ballots)["counts"][favourite] + 1


@st.composite
def yes_no_elections(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=5, unique=True))
    electorate = [f"deputy-{i:08x}" for i in range(draw(st.integers(1, 9)))]
    voters = draw(st.lists(st.sampled_from(electorate), unique=True))
    slots = draw(st.integers(1, len(ids)))
    ballots = {}
    for v in voters:
        ballot = {c: draw(st.sampled_from(["yes", "no", "abstain"])) for c in ids}
        for c in [c for c in ids if ballot[c] == "yes"][slots:]:  # at most `slots` yes
            ballot[c] = "no"
        ballots[v] = ballot
    rule_set = {
        "ballot_type": "yes_no",
        "rule": "yes-no",
        "projects": [{"id": c, "name": c, "cost": 1} for c in ids],
        "slots": slots,
        "quorum": draw(st.sampled_from([(1, 2), (2, 3), (1, 1)])),
        "majority_of": draw(st.sampled_from(["eligible", "present"])),
        "electorate_ids": electorate,
    }
    return rule_set, ballots


@settings(max_examples=100, deadline=None)
@given(yes_no_elections(), st.data())
def test_yes_no_a_no_turned_yes_never_fails_a_passing_candidate(
    election: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    rule_set, ballots = election
    before = tally(rule_set, ballots)
    passed = before["outcome"]["passed"]
    changeable = [
        (v, c)
        for v, b in sorted(ballots.items())
        for c in passed
        if b[c] in ("no", "abstain") and list(b.values()).count("yes") < rule_set["slots"]
    ]
    if not changeable:
        return
    voter, candidate = data.draw(st.sampled_from(changeable))
    more = {**ballots, voter: {**ballots[voter], candidate: "yes"}}
    after = tally(rule_set, more)
    assert candidate in after["outcome"]["passed"]
    assert after["counts"][candidate]["yes"] == before["counts"][candidate]["yes"] + 1


@settings(max_examples=100, deadline=None)
@given(yes_no_elections(), st.randoms(use_true_random=False))
def test_yes_no_ballot_order_does_not_matter_and_adopted_fit_the_slots(
    election: tuple[dict[str, Any], dict[str, Any]], rnd: random.Random
) -> None:
    rule_set, ballots = election
    items = list(ballots.items())
    rnd.shuffle(items)
    result = tally(rule_set, dict(items))
    assert result == tally(rule_set, ballots)
    outcome = result["outcome"]
    assert len(outcome["adopted"]) <= rule_set["slots"]
    assert set(outcome["adopted"]) <= set(outcome["passed"])
    for counts in result["counts"].values():
        assert sum(counts.values()) == len(rule_set["electorate_ids"])
