"""Pabulib import: six real elections parse, and the rule in each file's META reproduces the
recorded winners; pabutools agrees on the parse and on the decisive steps of each tally."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from pabutools.election import Cost_Sat
from pabutools.election import parse_pabulib as pabutools_parse
from pabutools.rules import greedy_utilitarian_welfare, method_of_equal_shares
from pabutools.rules.exhaustion import exhaustion_by_budget_increase

from core.voting import rules
from tests.voting import PABULIB_DIR, PABULIB_FILES, score_times_cost
from voting.errors import PabulibError
from voting.pabulib import load_pabulib, parse_pabulib, run_rule

SLOW = pytest.mark.skipif(
    not os.environ.get("CIVIC_SLOW_TESTS"),
    reason="runs pabutools' whole Add1 loop (about 20 s on Świecie, 100 s on Wieliczka); "
    "set CIVIC_SLOW_TESTS=1",
)


def path_of(name: str) -> Path:
    path = PABULIB_DIR / name
    assert path.is_file(), f"{path} is missing (the six Pabulib files live in ../shared)"
    return path


@functools.cache
def add1_outcome(name: str) -> rules.MesOutcome:
    """Our MES + Add1 on a real file, with the comparison step (computed once per file)."""
    instance = load_pabulib(path_of(name))
    return rules.equal_shares_outcome(
        instance.costs(), instance.budget, instance.approval_ballots(), "add1-comparison"
    )


@pytest.fixture(scope="module", params=PABULIB_FILES)
def election(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    return request.param, load_pabulib(path_of(request.param))


def test_all_six_files_are_there() -> None:
    assert sorted(p.name for p in PABULIB_DIR.glob("*.pb")) == sorted(PABULIB_FILES)


def test_counts_match_meta(election) -> None:  # type: ignore[no-untyped-def]
    _, instance = election
    assert len(instance.projects) == int(instance.meta["num_projects"])
    assert len(instance.votes) == int(instance.meta["num_votes"])
    assert instance.budget == int(instance.meta["budget"])
    assert instance.rule in ("greedy", "equalshares/add1", "equalshares/add1-comparison")
    assert instance.selected()


def test_recorded_votes_and_scores_match_the_ballots(election) -> None:  # type: ignore[no-untyped-def]
    _, instance = election
    approvals = {p.id: 0 for p in instance.projects}
    for vote in instance.votes:
        for project in vote.approvals:
            approvals[project] += 1
    assert {p.id: p.votes for p in instance.projects} == approvals
    if any(p.score is not None for p in instance.projects):
        # Częstochowa: points; Kraków: 3/2/1 for the three ranked projects.
        assert {p.id: p.score for p in instance.projects} == instance.scores()


def test_meta_rule_reproduces_recorded_winners(election) -> None:  # type: ignore[no-untyped-def]
    name, instance = election
    outcome = run_rule(instance)
    if instance.rule == "equalshares/add1":
        # add1-comparison would give the same here: the comparison step keeps MES.
        assert add1_outcome(name).comparison.chose_greedy is False  # type: ignore[union-attr]
    if instance.rule and instance.rule.startswith("equalshares"):
        assert set(add1_outcome(name).selected) == set(outcome)
    assert len(set(outcome)) == len(outcome)
    assert set(outcome) == instance.selected(), name
    assert sum(instance.costs()[p] for p in outcome) <= instance.budget


def test_parse_agrees_with_pabutools(election) -> None:  # type: ignore[no-untyped-def]
    name, instance = election
    theirs, profile = pabutools_parse(str(path_of(name)))
    assert {p.name: int(p.cost) for p in theirs} == instance.costs()
    assert int(theirs.budget_limit) == instance.budget
    assert dict(theirs.meta) == dict(instance.meta)
    assert profile.num_ballots() == len(instance.votes)
    if instance.vote_type == "approval":
        assert [frozenset(p.name for p in b) for b in profile] == list(instance.approval_ballots())
    elif instance.vote_type == "cumulative":
        assert [{p.name: int(v) for p, v in b.items()} for b in profile] == [
            dict(v) for v in instance.points_ballots()
        ]
    else:
        assert [tuple(p.name for p in b) for b in profile] == [v.ranking for v in instance.votes]


def test_greedy_agrees_with_pabutools(election) -> None:  # type: ignore[no-untyped-def]
    name, instance = election
    theirs, profile = pabutools_parse(str(path_of(name)))
    if instance.vote_type == "approval":
        sat = Cost_Sat
    elif instance.vote_type == "cumulative":
        sat = score_times_cost(lambda ballot, project: int(ballot.get(project, 0)))
    else:
        top = instance.ordinal_points()

        def positional(ballot, project):  # type: ignore[no-untyped-def]
            ranking = list(ballot)
            return top - ranking.index(project) if project in ranking else 0

        sat = score_times_cost(positional)
    expected = {p.name for p in greedy_utilitarian_welfare(theirs, profile, sat_class=sat)}
    assert set(run_rule(instance, "greedy")) == expected


@pytest.mark.parametrize(
    "name",
    [n for n in PABULIB_FILES if n.startswith(("Netherlands", "Poland_Swiecie", "Poland_Wiel"))],
)
def test_mes_add1_decisive_runs_agree_with_pabutools(name: str) -> None:
    """Add1 keeps MES at ``virtual_budget`` and stops because MES at one more unit per voter
    overspends: pabutools' MES gives the same outcome at both budgets (and at the real one)."""
    instance = load_pabulib(path_of(name))
    costs, budget, ballots = instance.costs(), instance.budget, instance.approval_ballots()
    n = len(ballots)
    ours = add1_outcome(name)
    theirs, profile = pabutools_parse(str(path_of(name)))

    def pabutools_mes(total: int) -> set[str]:
        theirs.budget_limit = total
        try:
            return {p.name for p in method_of_equal_shares(theirs, profile, sat_class=Cost_Sat)}
        finally:
            theirs.budget_limit = budget

    for total in (ours.virtual_budget, ours.virtual_budget + n):
        assert pabutools_mes(total) == set(rules.equal_shares(costs, total, ballots, None))
    assert set(ours.selected) == pabutools_mes(ours.virtual_budget)
    assert sum(costs[p] for p in pabutools_mes(ours.virtual_budget + n)) > budget


@pytest.mark.parametrize(
    "name",
    [
        "Netherlands_Assen_2024.pb",
        pytest.param("Poland_Swiecie_2023.pb", marks=SLOW),
        pytest.param("Poland_Wieliczka_2023_Green_Budget.pb", marks=SLOW),
    ],
)
def test_mes_add1_agrees_with_pabutools_whole_loop(name: str) -> None:
    """pabutools' Add1 (from B, step n, not stopping at exhaustive outcomes) on the real file."""
    instance = load_pabulib(path_of(name))
    theirs, profile = pabutools_parse(str(path_of(name)))
    n = profile.num_ballots()
    expected = exhaustion_by_budget_increase(
        theirs,
        profile,
        method_of_equal_shares,
        {"sat_class": Cost_Sat},
        budget_step=n,
        exhaustive_stop=False,
    )
    ours = rules.equal_shares(instance.costs(), instance.budget, instance.approval_ballots())
    assert set(ours) == {p.name for p in expected} == instance.selected()


def test_wieliczka_comparison_step_keeps_mes() -> None:
    name = "Poland_Wieliczka_2023_Green_Budget.pb"
    instance = load_pabulib(path_of(name))
    outcome = add1_outcome(name)
    assert outcome.comparison is not None
    assert (outcome.comparison.prefer_mes, outcome.comparison.prefer_greedy) == (1615, 873)
    assert not outcome.comparison.chose_greedy
    assert set(outcome.selected) == instance.selected()
    # The comparison matters here: greedy by approvals would have funded other projects.
    assert set(outcome.comparison.greedy) != instance.selected()


# -- strictness ---------------------------------------------------------------------------

GOOD = (
    "META\r\n"
    "key;value\r\n"
    "description;test\r\n"
    "num_projects;2\r\n"
    "num_votes;2\r\n"
    "budget;100\r\n"
    "vote_type;approval\r\n"
    "rule;greedy\r\n"
    "min_length;1\r\n"
    "PROJECTS\r\n"
    "project_id;cost;votes;name;selected\r\n"
    'a;60;2;"Park ""Zielony""; stage 1";1\r\n'
    "b;50;1;Bench;0\r\n"
    "VOTES\r\n"
    "voter_id;vote;age\r\n"
    "v1;a,b;30\r\n"
    "v2;a;\r\n"
)


def test_parses_quoting_crlf_and_extras() -> None:
    instance = parse_pabulib(GOOD)
    assert instance.budget == 100
    assert instance.vote_type == "approval"
    assert instance.rule == "greedy"
    assert instance.min_length == 1
    assert instance.max_length is None
    with pytest.raises(PabulibError, match="META description is not an integer"):
        instance.meta_int("description")
    assert instance.projects[0].name == 'Park "Zielony"; stage 1'
    assert instance.projects[0].selected is True
    assert instance.projects[1].selected is False
    assert instance.votes[0].approvals == ("a", "b")
    assert instance.votes[0].extra == {"age": "30"}
    assert instance.votes[1].extra == {"age": ""}
    assert instance.votes[0].points is None
    assert run_rule(instance) == ("a",)
    assert parse_pabulib(GOOD.replace("\r\n", "\n")) == instance


def test_parses_points() -> None:
    text = (
        "META\nkey;value\nbudget;10\nvote_type;cumulative\nmax_sum_points;5\n"
        "PROJECTS\nproject_id;cost;score\nx;6;7\ny;5;3\n"
        "VOTES\nvoter_id;vote;points\n1;x,y;4,1\n2;x,y;3,2\n"
    )
    instance = parse_pabulib(text)
    assert [dict(v.points or {}) for v in instance.votes] == [{"x": 4, "y": 1}, {"x": 3, "y": 2}]
    assert instance.scores() == {"x": 7, "y": 3}
    assert instance.meta_int("max_sum_points") == 5
    # Greedy by points: x (6 of 10) first, then y (5) no longer fits.
    assert run_rule(instance, "greedy") == ("x",)


@pytest.mark.parametrize(
    ("old", "new", "line", "match"),
    [
        ("a;60;2;", 'a;60;2;x"y', 12, "quote"),  # a quote inside an unquoted field
        ('"Park ""Zielony""; stage 1"', '"Park" x', 12, "after a closing quote"),
        ('"Park ""Zielony""; stage 1"', '"Park', 12, "unterminated"),
        ("b;50;1;Bench;0", "b;50;1;Bench", 13, "has 5 fields"),
        ("b;50;1;Bench;0", "a;50;1;Bench;0", 13, "appears twice"),
        ("b;50;", "b;50.5;", 13, "cost must be a non-negative integer"),
        ("budget;100", "budget;100.5", 6, "budget must be"),
        ("v2;a;", "v2;c;", 17, "unknown project 'c'"),
        ("v2;a;", "v2;a,a;", 17, "same project twice"),
        ("v2;a;", "v1;a;", 17, "voter_id 'v1' appears twice"),
        ("v2;a;", "v2;a,;", 17, "empty item"),
        ("num_votes;2", "num_votes;3", None, "num_votes is 3"),
        ("vote_type;approval", "vote_type;quadratic", 7, "unknown vote_type"),
        ("rule;greedy\r\n", "rule;greedy\r\nrule;greedy\r\n", 9, "appears twice"),
        ("selected\r\n", "selected\r\n\r\n", 12, "blank line"),
        ("b;50;1;Bench;0", "b;50;1;Bench;2", 13, "selected must be 0 or 1"),
        ("PROJECTS\r\n", "VOTES\r\n", 10, "VOTES found where PROJECTS"),
        ("key;value", "key;value;x", 2, "key;value"),
    ],
)
def test_refuses_malformed_input(old: str, new: str, line: int | None, match: str) -> None:
    assert old in GOOD
    with pytest.raises(PabulibError, match=match) as caught:
        parse_pabulib(GOOD.replace(old, new, 1))
    assert caught.value.line == line


def test_refuses_missing_sections_and_points() -> None:
    with pytest.raises(PabulibError, match="start with META"):
        parse_pabulib("key;value\nbudget;1\n")
    with pytest.raises(PabulibError, match="section VOTES is missing"):
        parse_pabulib(GOOD.split("VOTES")[0])
    cumulative = GOOD.replace("vote_type;approval", "vote_type;cumulative")
    with pytest.raises(PabulibError, match="need a 'points' column"):
        parse_pabulib(cumulative)
    with pytest.raises(PabulibError, match="2 projects in vote but 1 values"):
        parse_pabulib(
            cumulative.replace("voter_id;vote;age", "voter_id;vote;points").replace(
                "v1;a,b;30", "v1;a,b;3"
            )
        )


def test_load_refuses_bad_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.pb"
    path.write_bytes(GOOD.encode().replace(b"Bench", b"B\xffnch"))
    with pytest.raises(PabulibError, match="UTF-8") as caught:
        load_pabulib(path)
    assert caught.value.line == 13
