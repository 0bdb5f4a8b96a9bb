"""Tally rules: hand-worked cases, pabutools as the oracle on random instances, and 票决."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pabutools.election import Additive_Cardinal_Sat, Cardinality_Sat, Cost_Sat
from pabutools.rules import greedy_utilitarian_welfare, method_of_equal_shares
from pabutools.rules.composition import popularity_comparison
from pabutools.rules.exhaustion import exhaustion_by_budget_increase

from core.voting import rules
from core.voting.errors import BallotInvalid, TallyError
from tests.voting import pabutools_approval, pabutools_cumulative, tie_breaking

RANDOM = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- greedy ---------------------------------------------------------------------------------


def test_greedy_skips_what_no_longer_fits() -> None:
    projects = {"a": 60, "b": 50, "c": 40, "d": 10}
    scores = {"a": 9, "b": 8, "c": 7, "d": 1}
    # a (60) fits, b (50) does not, c (40) does, d no longer does.
    assert rules.greedy(projects, 100, scores) == ("a", "c")


def test_greedy_ties_go_to_the_smaller_id_and_zero_scores_are_funded() -> None:
    projects = {"b": 50, "a": 50, "z": 10}
    assert rules.greedy(projects, 110, {"a": 3, "b": 3}) == ("a", "b", "z")
    assert rules.greedy(projects, 60, {"a": 3, "b": 3}) == ("a", "z")


@pytest.mark.parametrize(
    ("projects", "budget", "scores", "match"),
    [
        ({"a": 0}, 10, {}, "cost must be a positive integer"),
        ({"a": 1.5}, 10, {}, "cost must be a positive integer"),
        ({"a": 1}, -1, {}, "budget must be"),
        ({"a": 1}, 10, {"b": 1}, "unknown project 'b'"),
        ({"a": 1}, 10, {"a": -1}, "score must be"),
    ],
)
def test_greedy_refuses_bad_input(
    projects: dict[str, Any], budget: int, scores: dict[str, int], match: str
) -> None:
    with pytest.raises(TallyError, match=match):
        rules.greedy(projects, budget, scores)


# -- Method of Equal Shares, by hand --------------------------------------------------------

# Four voters, budget 400 (100 each). C (100) is approved by all, A (200) by v1 and v2,
# B (300) by v3 and v4.
HAND_PROJECTS = {"A": 200, "B": 300, "C": 100}
HAND_BALLOTS = [
    frozenset({"A", "C"}),
    frozenset({"A", "C"}),
    frozenset({"B", "C"}),
    frozenset({"B", "C"}),
]


def test_mes_by_hand() -> None:
    # C costs 25 each (α = 25/100). Then A needs 200 from two voters holding 75: unaffordable.
    assert rules.equal_shares(HAND_PROJECTS, 400, HAND_BALLOTS, None) == ("C",)


def test_add1_by_hand() -> None:
    # With x per voter, A becomes affordable at 2(x − 25) ≥ 200, x = 125 (C, A cost 300 ≤ 400);
    # B at 2(x − 25) ≥ 300, x = 175, and C, A, B cost 600 > 400: Add1 keeps x = 174.
    outcome = rules.equal_shares_outcome(HAND_PROJECTS, 400, HAND_BALLOTS, "add1")
    assert outcome.selected == ("C", "A")
    assert outcome.cost == 300
    assert outcome.virtual_budget == 174 * 4
    assert outcome.add1_runs == 175 - 100
    assert outcome.comparison is None


def test_add1_unit_and_run_cap() -> None:
    # Adding 50 per voter: 150 each funds C and A (300), 200 each also B (600 > 400).
    outcome = rules.equal_shares_outcome(HAND_PROJECTS, 400, HAND_BALLOTS, "add1", unit=50)
    assert (outcome.selected, outcome.virtual_budget, outcome.add1_runs) == (("C", "A"), 600, 2)
    with pytest.raises(TallyError, match="did not overspend within 10 runs"):
        rules.equal_shares(HAND_PROJECTS, 400, HAND_BALLOTS, "add1", max_runs=10)
    with pytest.raises(TallyError, match="unit must be a positive integer"):
        rules.equal_shares(HAND_PROJECTS, 400, HAND_BALLOTS, "add1", unit=0)


def test_add1_comparison_by_hand() -> None:
    outcome = rules.equal_shares_outcome(HAND_PROJECTS, 400, HAND_BALLOTS, "add1-comparison")
    assert outcome.comparison == rules.ComparisonResult(
        mes=("C", "A"), greedy=("C", "A"), prefer_mes=0, prefer_greedy=0, chose_greedy=False
    )
    assert outcome.selected == ("C", "A")


def test_comparison_picks_greedy_only_when_strictly_more_prefer_it() -> None:
    # Three voters want the expensive X, three others one cheap project each. MES funds the
    # cheap ones (at 20 per voter; X needs 30 each, and then everything costs 150 > 90);
    # greedy funds X (3 approvals) and nothing else fits.
    projects = {"X": 90, "p": 20, "q": 20, "r": 20}
    ballots = [frozenset({"X"})] * 3 + [frozenset({"p"}), frozenset({"q"}), frozenset({"r"})]
    greedy = rules.greedy(projects, 90, rules.approval_scores(projects, ballots))
    assert greedy == ("X",)
    outcome = rules.equal_shares_outcome(projects, 90, ballots, "add1-comparison")
    assert outcome.comparison is not None
    assert outcome.comparison.mes == ("p", "q", "r")
    assert (outcome.comparison.prefer_mes, outcome.comparison.prefer_greedy) == (3, 3)
    assert outcome.selected == ("p", "q", "r")  # a tie keeps MES
    outcome = rules.equal_shares_outcome(
        projects, 90, [*ballots, frozenset({"X"})], "add1-comparison"
    )
    assert outcome.comparison is not None and outcome.comparison.chose_greedy
    assert outcome.selected == ("X",)


def test_mes_tie_breaking() -> None:
    # One voter, budget 100: X (60) and Y (50) both have α = 1; whichever comes first leaves
    # too little for the other.
    projects, ballots = {"X": 60, "Y": 50}, [frozenset({"X", "Y"})]
    assert rules.equal_shares(projects, 100, ballots, None, tie_break="id") == ("X",)
    assert rules.equal_shares(projects, 100, ballots, None, tie_break="cost-votes-id") == ("Y",)


def test_cardinality_utility_prefers_cheap_projects() -> None:
    # Two voters, 100 each, both approve E (200) and c (50). Cost utilities: α(E) = 100/200 =
    # α(c) = 25/50 tie, the cheaper c first (then E unaffordable). Cardinality: c costs 25
    # each, E 100 each: c first too; here both agree, E then needs 200 from 150.
    projects, ballots = {"E": 200, "c": 50}, [frozenset({"E", "c"})] * 2
    assert rules.equal_shares(projects, 200, ballots, None) == ("c",)
    assert rules.equal_shares(projects, 200, ballots, None, utility="cardinality") == ("c",)


def test_add1_when_every_supported_project_fits() -> None:
    # Nothing can overspend, so Add1's limit is every supported project; "z" has no support.
    projects = {"a": 10, "b": 1000, "z": 5}
    ballots = [frozenset({"a"}), frozenset({"a", "b"}), frozenset()]
    assert set(rules.equal_shares(projects, 2000, ballots, "add1")) == {"a", "b"}
    assert rules.equal_shares(projects, 2000, ballots, None) == ("a",)  # b needs 1000 from 663
    assert rules.equal_shares({"a": 10}, 10, [], "add1") == ()


@pytest.mark.parametrize(
    ("ballots", "completion", "match"),
    [
        ([frozenset({"nope"})], None, "unknown project 'nope'"),
        ([["a", "a"]], None, "approved twice"),
        (["ab"], None, "set of project ids"),
        ([frozenset({"a"}), {"a": 1}], None, "mix"),
        ([{"a": -1}], None, "non-negative"),
        ([{"a": 1}], "add1-comparison", "approval ballots only"),
        ([frozenset({"a"})], "add2", "unknown completion"),
    ],
)
def test_mes_refuses_bad_input(ballots: list[Any], completion: Any, match: str) -> None:
    with pytest.raises(TallyError, match=match):
        rules.equal_shares({"a": 1}, 10, ballots, completion)


# -- pabutools as the oracle on random instances -------------------------------------------


@st.composite
def approval_instances(
    draw: st.DrawFn, *, points: bool = False
) -> tuple[dict[str, int], int, list[Any]]:
    ids = draw(st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=6, unique=True))
    projects = {p: draw(st.integers(1, 12)) for p in ids}
    voters = draw(st.integers(1, 7))
    if points:
        ballots: list[Any] = [
            draw(st.dictionaries(st.sampled_from(ids), st.integers(1, 4), max_size=len(ids)))
            for _ in range(voters)
        ]
    else:
        ballots = [draw(st.frozensets(st.sampled_from(ids))) for _ in range(voters)]
    budget = draw(st.integers(0, sum(projects.values())))
    return projects, budget, ballots


def _names(allocation: Any) -> tuple[str, ...]:
    return tuple(p.name for p in allocation)


@RANDOM
@given(
    approval_instances(),
    st.sampled_from(["cost", "cardinality"]),
    st.sampled_from(["id", "cost-votes-id"]),
)
def test_mes_agrees_with_pabutools(
    instance: tuple[dict[str, int], int, list[Any]], utility: Any, tie_break: str
) -> None:
    projects, budget, ballots = instance
    theirs, profile = pabutools_approval(projects, budget, ballots)
    sat = Cost_Sat if utility == "cost" else Cardinality_Sat
    expected = method_of_equal_shares(
        theirs, profile, sat_class=sat, tie_breaking=tie_breaking(tie_break)
    )
    ours = rules.equal_shares(projects, budget, ballots, None, utility=utility, tie_break=tie_break)  # type: ignore[arg-type]
    assert ours == _names(expected)  # the same projects, funded in the same order


@RANDOM
@given(approval_instances(points=True))
def test_mes_with_points_agrees_with_pabutools(
    instance: tuple[dict[str, int], int, list[Any]],
) -> None:
    projects, budget, ballots = instance
    theirs, profile = pabutools_cumulative(projects, budget, ballots)
    expected = method_of_equal_shares(theirs, profile, sat_class=Additive_Cardinal_Sat)
    assert rules.equal_shares(projects, budget, ballots, None, tie_break="id") == _names(expected)


def _supported_cost(projects: dict[str, int], ballots: list[Any]) -> int:
    return sum(projects[p] for p in set().union(*map(set, ballots)))


@RANDOM
@given(approval_instances(), st.integers(1, 6), st.sampled_from(["id", "cost-votes-id"]))
def test_add1_agrees_with_pabutools_when_n_divides_the_budget(
    instance: tuple[dict[str, int], int, list[Any]], per_voter: int, tie_break: str
) -> None:
    """pabutools' Add1 starts from B, ours from ⌊B/n⌋·n: the same when n divides B."""
    projects, _, ballots = instance
    n = len(ballots)
    budget = per_voter * n
    assume(_supported_cost(projects, ballots) > budget)  # otherwise pabutools loops to its bound
    theirs, profile = pabutools_approval(projects, budget, ballots)
    expected = exhaustion_by_budget_increase(
        theirs,
        profile,
        method_of_equal_shares,
        {"sat_class": Cost_Sat, "tie_breaking": tie_breaking(tie_break)},
        budget_step=n,
        exhaustive_stop=False,
    )
    ours = rules.equal_shares(projects, budget, ballots, "add1", tie_break=tie_break)  # type: ignore[arg-type]
    assert ours == _names(expected)


@RANDOM
@given(approval_instances(points=True), st.integers(1, 6))
def test_add1_with_points_agrees_with_pabutools(
    instance: tuple[dict[str, int], int, list[Any]], per_voter: int
) -> None:
    projects, _, ballots = instance
    n = len(ballots)
    budget = per_voter * n
    assume(_supported_cost(projects, ballots) > budget)
    theirs, profile = pabutools_cumulative(projects, budget, ballots)
    expected = exhaustion_by_budget_increase(
        theirs,
        profile,
        method_of_equal_shares,
        {"sat_class": Additive_Cardinal_Sat},
        budget_step=n,
        exhaustive_stop=False,
    )
    assert rules.equal_shares(projects, budget, ballots, "add1", tie_break="id") == _names(expected)


@RANDOM
@given(approval_instances())
def test_add1_follows_pabulib_definition_with_pabutools_mes(
    instance: tuple[dict[str, int], int, list[Any]],
) -> None:
    """Any budget: MES(B), then pabutools' MES at ⌊B/n⌋·n + k·n while the outcome fits."""
    projects, budget, ballots = instance
    n = len(ballots)
    assume(_supported_cost(projects, ballots) > budget)
    theirs, profile = pabutools_approval(projects, budget, ballots)

    def mes(total: int) -> tuple[str, ...]:
        theirs.budget_limit = total
        return _names(method_of_equal_shares(theirs, profile, sat_class=Cost_Sat))

    expected, total = mes(budget), (budget // n) * n
    while True:
        total += n
        candidate = mes(total)
        if sum(projects[p] for p in candidate) > budget:
            break
        expected = candidate
    assert rules.equal_shares(projects, budget, ballots, "add1", tie_break="id") == expected


@RANDOM
@given(approval_instances())
def test_comparison_agrees_with_pabutools(
    instance: tuple[dict[str, int], int, list[Any]],
) -> None:
    projects, budget, ballots = instance
    assume(_supported_cost(projects, ballots) > budget)
    outcome = rules.equal_shares_outcome(
        projects, budget, ballots, "add1-comparison", tie_break="id"
    )
    assert outcome.comparison is not None
    theirs, profile = pabutools_approval(projects, budget, ballots)
    greedy = greedy_utilitarian_welfare(theirs, profile, sat_class=Cost_Sat)
    assert outcome.comparison.greedy == _names(greedy)
    mes_names = outcome.comparison.mes
    winners = popularity_comparison(
        theirs,
        profile,
        Cardinality_Sat,
        [
            lambda *_, **__: [p for p in theirs if p.name in mes_names],
            greedy_utilitarian_welfare,
        ],
        [{}, {"sat_class": Cost_Sat}],
    )
    # One winner: that one; two (equally popular): the comparison keeps MES.
    expected = set(_names(winners[0])) if len(winners) == 1 else set(mes_names)
    assert set(outcome.selected) == expected


@RANDOM
@given(approval_instances())
def test_greedy_agrees_with_pabutools(instance: tuple[dict[str, int], int, list[Any]]) -> None:
    projects, budget, ballots = instance
    theirs, profile = pabutools_approval(projects, budget, ballots)
    expected = greedy_utilitarian_welfare(theirs, profile, sat_class=Cost_Sat)
    scores = rules.approval_scores(projects, ballots)
    assert rules.greedy(projects, budget, scores) == _names(expected)


# -- ballot checks ---------------------------------------------------------------------------


def test_check_approval_ballot() -> None:
    projects = {"a", "b", "c"}
    rules.check_approval_ballot(["a", "b"], projects, 1, 2)
    rules.check_approval_ballot([], projects)
    for ballot, low, high, reason in [
        (["a", "z"], None, None, "unknown_project"),
        (["a", "a"], None, None, "duplicate_project"),
        (["a"], 2, None, "too_few_projects"),
        (["a", "b", "c"], None, 2, "too_many_projects"),
        ("ab", None, None, "not_a_list"),
        ([1], None, None, "not_a_list"),
    ]:
        with pytest.raises(BallotInvalid) as caught:
            rules.check_approval_ballot(ballot, projects, low, high)  # type: ignore[arg-type]
        assert caught.value.reason == reason


def test_check_points_ballot() -> None:
    projects = {"a", "b", "c"}
    rules.check_points_ballot({"a": 7, "b": 3}, projects, max_sum_points=10)
    for ballot, limits, reason in [
        ({"z": 1}, {}, "unknown_project"),
        ({"a": 1.0}, {}, "bad_points"),
        ({"a": True}, {}, "bad_points"),
        ({"a": 0}, {}, "points_below_minimum"),
        ({"a": 6}, {"max_points": 5}, "points_above_maximum"),
        ({"a": 6, "b": 5}, {"max_sum_points": 10}, "too_many_points"),
        ({"a": 1}, {"min_sum_points": 2}, "too_few_points"),
        ({"a": 1}, {"min_len": 2}, "too_few_projects"),
        ({"a": 1, "b": 1}, {"max_len": 1}, "too_many_projects"),
        (["a"], {}, "not_a_mapping"),
    ]:
        with pytest.raises(BallotInvalid) as caught:
            rules.check_points_ballot(ballot, projects, **limits)  # type: ignore[arg-type]
        assert caught.value.reason == reason


def test_check_yes_no_ballot() -> None:
    candidates = ["p1", "p2", "p3", "p4"]
    rules.check_yes_no_ballot({"p1": "yes", "p2": "yes", "p3": "no"}, candidates, 2)
    with pytest.raises(BallotInvalid, match="at most 2 yes votes, got 3") as caught:
        rules.check_yes_no_ballot({"p1": "yes", "p2": "yes", "p3": "yes"}, candidates, 2)
    assert caught.value.reason == "too_many_yes"
    with pytest.raises(BallotInvalid, match="unknown candidate 'p9'"):
        rules.check_yes_no_ballot({"p9": "no"}, candidates, 2)
    with pytest.raises(BallotInvalid, match="'YES' is not yes, no or abstain") as caught:
        rules.check_yes_no_ballot({"p1": "YES"}, candidates, 2)
    assert caught.value.reason == "bad_value"


# -- 票决 --------------------------------------------------------------------------------------

DEPUTIES = [f"d{i}" for i in range(9)]
CANDIDATES = ["p1", "p2", "p3", "p4"]


def ballots_from(rows: dict[str, str]) -> dict[str, dict[str, str]]:
    """``{"d0": "yyn-"}``: one letter per candidate (y, n, a, - for left blank)."""
    values = {"y": "yes", "n": "no", "a": "abstain"}
    return {
        voter: {c: values[v] for c, v in zip(CANDIDATES, row, strict=True) if v != "-"}
        for voter, row in rows.items()
    }


def count(result: rules.YesNoResult, candidate: str) -> rules.CandidateCount:
    return next(c for c in result.counts if c.candidate == candidate)


def test_majority_of_eligible_versus_present() -> None:
    # 9 eligible, 6 present (quorum 6): p1 has 5 yes, p2 4 yes.
    ballots = ballots_from(
        {"d0": "yy--", "d1": "yy--", "d2": "yy--", "d3": "yy--", "d4": "yn--", "d5": "nn--"}
    )
    of_eligible = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    assert of_eligible.quorum_met and of_eligible.quorum_required == 6
    assert of_eligible.yes_needed == 5
    assert [c.passed for c in of_eligible.counts] == [True, False, False, False]
    assert of_eligible.adopted == ("p1",)
    of_present = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots, majority_of="present")
    assert of_present.yes_needed == 4
    assert of_present.adopted == ("p1", "p2")
    assert of_present.tie is None


def test_not_voted_is_kept_apart_from_abstain() -> None:
    ballots = ballots_from(
        {"d0": "ya--", "d1": "ya--", "d2": "yn--", "d3": "y---", "d4": "y-a-", "d5": "y---"}
    )
    result = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    p2 = count(result, "p2")
    assert (p2.yes, p2.no, p2.abstain, p2.not_voted) == (0, 1, 2, 6)  # 3 absent + 3 blank
    p1 = count(result, "p1")
    assert (p1.yes, p1.no, p1.abstain, p1.not_voted) == (6, 0, 0, 3)
    assert all(c.yes + c.no + c.abstain + c.not_voted == 9 for c in result.counts)


def test_without_quorum_there_is_no_result() -> None:
    ballots = ballots_from({f"d{i}": "yy--" for i in range(5)})  # 5 of 9 present, 6 needed
    result = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    assert not result.quorum_met and not result.has_result
    assert result.adopted == () and result.tie is None
    assert not any(c.passed for c in result.counts)
    assert count(result, "p1").yes == 5  # counts stay visible
    lower = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots, quorum=Fraction(1, 2))
    assert lower.quorum_met and lower.adopted == ("p1", "p2")


def test_tie_at_the_cut_off_needs_a_run_off() -> None:
    # Two slots, yes needed 5 of 9. p1 has 7 yes; p2 and p3 have 5 each: the second slot is tied.
    ballots = ballots_from(
        {
            "d0": "yy--",
            "d1": "yy--",
            "d2": "yy--",
            "d3": "y-y-",
            "d4": "y-y-",
            "d5": "y-y-",
            "d6": "y--n",
            "d7": "-yy-",
            "d8": "-yy-",
        }
    )
    result = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    assert [count(result, c).yes for c in CANDIDATES] == [7, 5, 5, 0]
    assert result.adopted == ("p1",)
    assert result.tie == rules.CutoffTie(candidates=("p2", "p3"), yes=5, seats=1)
    assert result.needs_runoff
    # Without the tie, the top two are adopted.
    ballots["d6"] = {"p1": "yes", "p2": "yes"}
    result = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    assert result.adopted == ("p1", "p2") and result.tie is None
    # Three candidates tied for two slots: nobody is adopted outright.
    ballots = ballots_from({f"d{i}": ("yy--", "y-y-", "-yy-")[i // 3] for i in range(9)})
    result = rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots)
    assert result.adopted == ()
    assert result.tie == rules.CutoffTie(candidates=("p1", "p2", "p3"), yes=6, seats=2)


def test_too_many_yes_is_refused_and_strangers_too() -> None:
    with pytest.raises(BallotInvalid, match="at most 2 yes"):
        rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, ballots_from({"d0": "yyy-"}))
    with pytest.raises(TallyError, match="not an eligible deputy"):
        rules.yes_no_abstain(CANDIDATES, 2, DEPUTIES, {"mallory": {"p1": "yes"}})
    with pytest.raises(TallyError, match="slots must be between 1 and 4"):
        rules.yes_no_abstain(CANDIDATES, 0, DEPUTIES, {})
