"""Tally rules: greedy, the Method of Equal Shares, and 票决 (yes / no / abstain). Pure, no I/O.

Every function here works on immutable inputs and returns frozen dataclasses holding only
ints, strings, booleans and tuples, so a result can go into a record as it is (PROTOCOL §1:
no floats). Arithmetic is exact: money is an integer count of the smallest unit and the
Method of Equal Shares runs on ``fractions.Fraction``, so an outcome never depends on
rounding.

Conventions (the ones Pabulib and pabutools use, checked against six real elections in
``tests/voting``):

* **greedy** sorts projects by score, highest first, and funds each one that still fits in
  what is left of the budget (a project that does not fit is skipped, the next one is tried).
  Ties in score are broken by project id in code-point order, smallest first (pabutools'
  ``lexico_tie_breaking``).
* **Method of Equal Shares** (MES) gives each of the ``n`` voters ``budget / n``; a project of
  cost ``c`` is affordable when its supporters can pay ``c`` together, each paying
  ``min(own money, α · utility)``; each round funds the project with the smallest ``α``.
  With approval ballots the utility model is *cost utilities* (a voter's utility for an
  approved project is its cost), as on equalshares.net and in Pabulib's ``equalshares``
  rules; ``utility="cardinality"`` (utility 1) is available too. With points ballots the
  utility is the number of points (pabutools ``Additive_Cardinal_Sat``).
* **Add1 completion** (Pabulib ``equalshares/add1``, the equalshares.net compute tool): after
  MES with the real budget ``B``, rerun MES with a virtual total budget of
  ``(B // n) · n + k · n`` for k = 1, 2, ... (the per-voter budget starts at the whole unit
  below ``B / n`` and rises by one unit of currency at a time) and keep the last outcome whose
  cost is still at most ``B``. It goes on past exhaustive outcomes: it stops only when an
  outcome would overspend. (pabutools: ``exhaustion_by_budget_increase(...,
  budget_step=n, exhaustive_stop=False)``, which agrees whenever ``n`` divides ``B``.)
* **Comparison step** (``equalshares/add1-comparison``): compute greedy by number of
  approvals; every voter prefers the outcome that funds more of the projects they approved;
  the greedy outcome replaces the MES outcome only if strictly more voters prefer it
  (pabutools ``popularity_comparison`` with ``Cardinality_Sat``, ties kept for MES).
* **MES tie-breaking** (several projects with exactly the same ``α``): ``"cost-votes-id"``
  (default, equalshares.net and the Pabulib checker) prefers the lower cost, then more
  supporters, then the smaller project id; ``"id"`` prefers the smaller project id
  (pabutools' default). Exact ties do happen in real data: in Assen's Add1 runs they change
  the order of funding and, at 3 of the intermediate budgets, the funded set; both
  tie-breakings end in the recorded winners of all six reference elections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence, Set
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, TypeAlias

from core.voting.errors import BallotInvalid, TallyError

ApprovalBallot: TypeAlias = Set[str]
PointsBallot: TypeAlias = Mapping[str, int]
Completion: TypeAlias = Literal["add1", "add1-comparison"] | None
Utility: TypeAlias = Literal["cost", "cardinality"]
MesTieBreak: TypeAlias = Literal["cost-votes-id", "id"]
YesNoValue: TypeAlias = Literal["yes", "no", "abstain"]
MajorityOf: TypeAlias = Literal["eligible", "present"]

YES_NO_VALUES: frozenset[str] = frozenset({"yes", "no", "abstain"})


# -- input checks -------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_projects(projects: Mapping[str, int], budget: int) -> None:
    if not _is_int(budget) or budget < 0:
        raise TallyError(f"budget must be a non-negative integer, got {budget!r}")
    for project, cost in projects.items():
        if not isinstance(project, str) or not project:
            raise TallyError(f"project ids must be non-empty strings, got {project!r}")
        if not _is_int(cost) or cost <= 0:
            raise TallyError(f"project {project!r}: cost must be a positive integer, got {cost!r}")


# -- greedy -------------------------------------------------------------------------------


def greedy(projects: Mapping[str, int], budget: int, scores: Mapping[str, int]) -> tuple[str, ...]:
    """Fund projects by score, highest first, skipping any that no longer fits.

    ``projects`` maps project id to cost (positive integers), ``scores`` maps project id to its
    score (approvals, points, ...; a project missing from ``scores`` has score 0). Ties in
    score are broken by project id, smallest first (code-point order, as pabutools'
    ``lexico_tie_breaking``). Projects with score 0 are funded too if money is left, as in
    Pabulib's ``greedy``. Returns the funded ids in the order they were funded.
    """
    _check_projects(projects, budget)
    for project, score in scores.items():
        if project not in projects:
            raise TallyError(f"score given for unknown project {project!r}")
        if not _is_int(score) or score < 0:
            raise TallyError(f"project {project!r}: score must be a non-negative integer")
    order = sorted(projects, key=lambda p: (-scores.get(p, 0), p))
    remaining = budget
    funded: list[str] = []
    for project in order:
        cost = projects[project]
        if cost <= remaining:
            funded.append(project)
            remaining -= cost
    return tuple(funded)


def approval_scores(projects: Collection[str], ballots: Sequence[ApprovalBallot]) -> dict[str, int]:
    """Number of ballots approving each project (every project of ``projects`` appears)."""
    scores = dict.fromkeys(projects, 0)
    for index, ballot in enumerate(ballots):
        for project in ballot:
            if project not in scores:
                raise TallyError(f"ballot {index}: unknown project {project!r}")
            scores[project] += 1
    return scores


def points_scores(projects: Collection[str], ballots: Sequence[PointsBallot]) -> dict[str, int]:
    """Total points given to each project (every project of ``projects`` appears)."""
    scores = dict.fromkeys(projects, 0)
    for index, ballot in enumerate(ballots):
        for project, points in ballot.items():
            if project not in scores:
                raise TallyError(f"ballot {index}: unknown project {project!r}")
            if not _is_int(points) or points < 0:
                raise TallyError(f"ballot {index}: points must be non-negative integers")
            scores[project] += points
    return scores


# -- Method of Equal Shares ---------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonResult:
    """The comparison step of ``equalshares/add1-comparison``.

    ``prefer_mes`` and ``prefer_greedy`` count voters who strictly prefer one outcome (more of
    their approved projects funded); the greedy outcome wins only if ``prefer_greedy`` is
    strictly larger.
    """

    mes: tuple[str, ...]
    greedy: tuple[str, ...]
    prefer_mes: int
    prefer_greedy: int
    chose_greedy: bool


@dataclass(frozen=True)
class MesOutcome:
    """What the Method of Equal Shares funded, and how.

    ``selected`` lists the funded project ids in the order they were funded (greedy order when
    the comparison step chose greedy). ``virtual_budget`` is the total budget MES was run with
    for the kept outcome (the real budget when Add1 kept the first run), ``add1_runs`` how many
    MES runs the Add1 completion made after the first one, and ``cost`` the total cost funded.
    """

    selected: tuple[str, ...]
    cost: int
    virtual_budget: int
    add1_runs: int
    comparison: ComparisonResult | None


@dataclass(frozen=True)
class _Instance:
    """A MES instance prepared once and rerun at several budgets by Add1.

    Voter ``i`` is bit ``i`` of a Python integer. ``supporters[p]`` lists ``(utility, mask)``:
    the voters who support project ``p`` with that utility (one entry for approval ballots).
    Sets of voters then cost one big-integer operation, and counting them one ``bit_count``.
    """

    ids: tuple[str, ...]
    costs: tuple[int, ...]
    supporters: tuple[tuple[tuple[int, int], ...], ...]
    all_supporters: tuple[int, ...]
    total_utility: tuple[int, ...]
    tie_keys: tuple[tuple[int, int, str] | tuple[str], ...]
    voters: int


def _mask(voters: Sequence[int], size: int) -> int:
    """The integer whose set bits are ``voters``."""
    bits = bytearray(size // 8 + 1)
    for voter in voters:
        bits[voter >> 3] |= 1 << (voter & 7)
    return int.from_bytes(bits, "little")


def _prepare(
    projects: Mapping[str, int],
    ballots: Sequence[ApprovalBallot] | Sequence[PointsBallot],
    utility: Utility,
    tie_break: MesTieBreak,
) -> tuple[_Instance, bool]:
    """Check the ballots and build each project's supporter masks; second value: approval?"""
    if utility not in ("cost", "cardinality"):
        raise TallyError(f"unknown utility model {utility!r}")
    if tie_break not in ("cost-votes-id", "id"):
        raise TallyError(f"unknown tie-breaking {tie_break!r}")
    kinds = {isinstance(ballot, Mapping) for ballot in ballots}
    if len(kinds) > 1:
        raise TallyError("ballots mix approval sets and points")
    is_points = kinds == {True}
    # project -> utility -> the voters supporting it with that utility
    voters_of: dict[str, dict[int, list[int]]] = {}
    for voter, ballot in enumerate(ballots):
        if is_points:
            assert isinstance(ballot, Mapping)
            for project, points in ballot.items():
                if project not in projects:
                    raise TallyError(f"ballot {voter}: unknown project {project!r}")
                if not _is_int(points) or points < 0:
                    raise TallyError(f"ballot {voter}: points must be non-negative integers")
                if points:  # points ballots: the utility is the number of points
                    voters_of.setdefault(project, {}).setdefault(points, []).append(voter)
        else:
            if isinstance(ballot, str | bytes) or not isinstance(ballot, Collection):
                raise TallyError(f"ballot {voter}: an approval ballot is a set of project ids")
            if len(set(ballot)) != len(ballot):
                raise TallyError(f"ballot {voter}: a project is approved twice")
            for project in ballot:
                if project not in projects:
                    raise TallyError(f"ballot {voter}: unknown project {project!r}")
                value = projects[project] if utility == "cost" else 1
                voters_of.setdefault(project, {}).setdefault(value, []).append(voter)
    # Projects nobody supports can never be funded by MES.
    ids = tuple(sorted(voters_of))
    supporters = tuple(
        tuple((u, _mask(voters, len(ballots))) for u, voters in sorted(voters_of[project].items()))
        for project in ids
    )
    votes = [sum(mask.bit_count() for _, mask in s) for s in supporters]
    all_supporters = []
    for s in supporters:
        union = 0
        for _, mask in s:
            union |= mask
        all_supporters.append(union)
    tie_keys: list[tuple[int, int, str] | tuple[str]] = [
        (projects[project], -votes[p], project) if tie_break == "cost-votes-id" else (project,)
        for p, project in enumerate(ids)
    ]
    instance = _Instance(
        ids=ids,
        costs=tuple(projects[project] for project in ids),
        supporters=supporters,
        all_supporters=tuple(all_supporters),
        total_utility=tuple(sum(u * mask.bit_count() for u, mask in s) for s in supporters),
        tie_keys=tuple(tie_keys),
        voters=len(ballots),
    )
    return instance, not is_points


def _money_order(item: tuple[Fraction, int]) -> tuple[float, Fraction]:
    # float() rounds correctly, hence monotonically: unequal floats already order the exact
    # values, and only equal floats fall back to the (slower) exact comparison.
    return (item[0].numerator / item[0].denominator, item[0])


class _Classes:
    """Voters grouped by how much money they hold, during one MES run.

    Voters who hold the same money are interchangeable for MES, so a few classes (money,
    voter mask), kept in increasing order of money, stand for thousands of voters. Voters
    whose money runs out leave every class: they can pay nothing more, exactly as a voter
    without money drops out of every later payment in MES.
    """

    def __init__(self, instance: _Instance, share: Fraction) -> None:
        self.instance = instance
        everyone = 0
        for union in instance.all_supporters:
            everyone |= union
        self.classes: list[tuple[Fraction, int]] = [(share, everyone)] if everyone else []

    def affordability(self, p: int) -> Fraction | None:
        """Smallest α with Σ min(money_i, α·u_i) = cost over p's supporters; None if unaffordable.

        Supporters are visited from the one who runs out first (smallest money / utility):
        while ``α · u`` exceeds a supporter's money, that supporter pays everything they have.
        If all of them would, their money does not cover the cost.
        """
        cost = self.instance.costs[p]
        supporters = self.instance.supporters[p]
        items: list[tuple[Fraction, int, int]] = []
        denominator = 0
        for money, voters in self.classes:
            for u, mask in supporters:
                count = (voters & mask).bit_count()
                if count:
                    items.append((money, u, count))
                    denominator += u * count
        if len(supporters) > 1:  # utilities differ (points ballots): order by money / utility
            items.sort(key=lambda item: item[0] / item[1])
        paid = Fraction(0)
        for money, u, count in items:
            alpha = (cost - paid) / denominator
            if alpha * u <= money:
                return alpha
            paid += money * count
            denominator -= u * count
        return None

    def pay(self, w: int, alpha: Fraction) -> None:
        """Every supporter of ``w`` pays ``min(money, α·u)``; classes split and merge by money."""
        supporters = self.instance.supporters[w]
        paying = self.instance.all_supporters[w]
        # Keyed by the normalised (numerator, denominator): hashing a Fraction itself costs a
        # modular inverse.
        after: dict[tuple[int, int], tuple[Fraction, int]] = {}

        def join(money: Fraction, voters: int) -> None:
            key = (money.numerator, money.denominator)
            known = after.get(key)
            after[key] = (money, voters | known[1]) if known else (money, voters)

        for money, voters in self.classes:
            stay = voters & ~paying
            if stay:
                join(money, stay)
            if stay == voters:
                continue
            for u, mask in supporters:
                payers = voters & mask
                if payers:
                    left = money - alpha * u
                    if left > 0:
                        join(left, payers)
        self.classes = sorted(after.values(), key=_money_order)


def _mes_fixed(instance: _Instance, total_budget: int) -> tuple[int, ...]:
    """One run of MES with ``total_budget`` split equally; returns indices into ``instance.ids``.

    Lazy evaluation: a project's α can only grow as voters spend, so projects are visited by
    their last known α and the round stops once that exceeds the best α found (exact, so the
    result is the same as recomputing everything).
    """
    classes = _Classes(instance, Fraction(total_budget, instance.voters))
    alpha_known: list[Fraction] = [
        Fraction(cost, total)
        for cost, total in zip(instance.costs, instance.total_utility, strict=True)
    ]
    # Projects still in the running, kept sorted by their last known α (re-sorting after a
    # round is cheap: only the few projects evaluated in the round moved).
    order = sorted(range(len(instance.ids)), key=alpha_known.__getitem__)
    funded: list[int] = []
    while order:
        best: Fraction | None = None
        tied: list[int] = []
        unaffordable: set[int] = set()
        for p in order:
            if best is not None and alpha_known[p] > best:
                break
            alpha = classes.affordability(p)
            if alpha is None:
                unaffordable.add(p)
                continue
            alpha_known[p] = alpha
            if best is None or alpha < best:
                best, tied = alpha, [p]
            elif alpha == best:
                tied.append(p)
        if best is None:
            break
        winner = min(tied, key=lambda q: instance.tie_keys[q])
        funded.append(winner)
        unaffordable.add(winner)
        order = [p for p in order if p not in unaffordable]
        order.sort(key=alpha_known.__getitem__)
        classes.pay(winner, best)
    return tuple(funded)


def _compare_with_greedy(
    projects: Mapping[str, int],
    budget: int,
    ballots: Sequence[ApprovalBallot],
    mes: tuple[str, ...],
) -> ComparisonResult:
    greedy_outcome = greedy(projects, budget, approval_scores(projects, ballots))
    mes_set, greedy_set = set(mes), set(greedy_outcome)
    prefer_mes = prefer_greedy = 0
    for ballot in ballots:
        in_mes = sum(1 for project in ballot if project in mes_set)
        in_greedy = sum(1 for project in ballot if project in greedy_set)
        if in_mes > in_greedy:
            prefer_mes += 1
        elif in_greedy > in_mes:
            prefer_greedy += 1
    return ComparisonResult(
        mes=mes,
        greedy=greedy_outcome,
        prefer_mes=prefer_mes,
        prefer_greedy=prefer_greedy,
        chose_greedy=prefer_greedy > prefer_mes,
    )


def equal_shares_outcome(
    projects: Mapping[str, int],
    budget: int,
    ballots: Sequence[ApprovalBallot] | Sequence[PointsBallot],
    completion: Completion = "add1",
    *,
    utility: Utility = "cost",
    tie_break: MesTieBreak = "cost-votes-id",
    unit: int = 1,
    max_runs: int | None = None,
) -> MesOutcome:
    """The Method of Equal Shares with its details (see the module docstring for definitions).

    ``ballots`` is either a sequence of approval sets or a sequence of points mappings
    (project id to non-negative integer points); every ballot counts as one voter, empty
    ones included (they hold their share of the budget and spend nothing). ``completion`` is
    ``None`` (plain MES), ``"add1"`` or ``"add1-comparison"`` (approval ballots only).

    ``unit`` is the unit of currency Add1 adds per voter, in the units costs are counted in:
    1 for Pabulib files (whole złoty or euro), 100 when money is counted in fen and Add1
    should add one yuan. Add1 runs MES once per unit until an outcome overspends, so it may
    take up to (largest useful per-voter budget − ``budget / n``) / ``unit`` runs;
    ``max_runs`` caps them (``TallyError`` beyond). When every supported project fits in the
    budget no outcome can overspend and the completion's outcome is all of them.
    """
    _check_projects(projects, budget)
    if completion not in (None, "add1", "add1-comparison"):
        raise TallyError(f"unknown completion {completion!r}")
    if not _is_int(unit) or unit < 1:
        raise TallyError(f"unit must be a positive integer, got {unit!r}")
    instance, is_approval = _prepare(projects, ballots, utility, tie_break)
    if completion == "add1-comparison" and not is_approval:
        raise TallyError("the comparison step is defined for approval ballots only")
    n = instance.voters
    if n == 0:
        return MesOutcome((), 0, budget, 0, None)

    def run(total: int) -> tuple[tuple[str, ...], int]:
        chosen = tuple(instance.ids[p] for p in _mes_fixed(instance, total))
        return chosen, sum(projects[p] for p in chosen)

    selected, cost = run(budget)
    virtual_budget, runs = budget, 0
    if completion is not None:
        supported_cost = sum(instance.costs)
        # Beyond a per-voter budget of ``supported_cost`` every supporter can pay every
        # project alone, so every supported project is funded and outcomes stop changing.
        ceiling = n * supported_cost
        if supported_cost <= budget:
            # No outcome can overspend: the completion's limit is every supported project.
            selected, cost = run(max(ceiling, budget))
            virtual_budget, runs = max(ceiling, budget), 1
        else:
            step = n * unit
            total = (budget // step) * step
            while total < ceiling:
                if max_runs is not None and runs >= max_runs:
                    raise TallyError(f"Add1 did not overspend within {max_runs} runs")
                total += step
                candidate, candidate_cost = run(total)
                runs += 1
                if candidate_cost > budget:
                    break
                selected, cost, virtual_budget = candidate, candidate_cost, total
    comparison = None
    if completion == "add1-comparison":
        approvals = [ballot for ballot in ballots if not isinstance(ballot, Mapping)]
        comparison = _compare_with_greedy(projects, budget, approvals, selected)
        if comparison.chose_greedy:
            selected = comparison.greedy
            cost = sum(projects[p] for p in selected)
    return MesOutcome(selected, cost, virtual_budget, runs, comparison)


def equal_shares(
    projects: Mapping[str, int],
    budget: int,
    ballots: Sequence[ApprovalBallot] | Sequence[PointsBallot],
    completion: Completion = "add1",
    *,
    utility: Utility = "cost",
    tie_break: MesTieBreak = "cost-votes-id",
    unit: int = 1,
    max_runs: int | None = None,
) -> tuple[str, ...]:
    """The project ids funded by the Method of Equal Shares, in the order they were funded.

    Same arguments as :func:`equal_shares_outcome`, which also reports the virtual budget,
    the number of Add1 runs and the comparison step.
    """
    return equal_shares_outcome(
        projects,
        budget,
        ballots,
        completion,
        utility=utility,
        tie_break=tie_break,
        unit=unit,
        max_runs=max_runs,
    ).selected


# -- ballot checks (the service refuses bad ballots at casting) ----------------------------


def check_approval_ballot(
    ballot: Sequence[str] | Set[str],
    projects: Collection[str],
    min_len: int | None = None,
    max_len: int | None = None,
) -> None:
    """Raise ``BallotInvalid`` unless ``ballot`` approves known projects, each once, within bounds.

    ``min_len`` / ``max_len`` are Pabulib's ``min_length`` / ``max_length`` (None: no bound).
    """
    if isinstance(ballot, str | bytes) or not isinstance(ballot, Collection):
        raise BallotInvalid("not_a_list", "an approval ballot is a list of project ids")
    seen: set[str] = set()
    for project in ballot:
        if not isinstance(project, str):
            raise BallotInvalid("not_a_list", f"project ids are strings, got {project!r}")
        if project not in projects:
            raise BallotInvalid("unknown_project", f"unknown project {project!r}")
        if project in seen:
            raise BallotInvalid("duplicate_project", f"project {project!r} is approved twice")
        seen.add(project)
    if min_len is not None and len(seen) < min_len:
        raise BallotInvalid(
            "too_few_projects", f"approve at least {min_len} projects, got {len(seen)}"
        )
    if max_len is not None and len(seen) > max_len:
        raise BallotInvalid(
            "too_many_projects", f"approve at most {max_len} projects, got {len(seen)}"
        )


def check_points_ballot(
    ballot: Mapping[str, int],
    projects: Collection[str],
    *,
    min_len: int | None = None,
    max_len: int | None = None,
    min_points: int = 1,
    max_points: int | None = None,
    min_sum_points: int | None = None,
    max_sum_points: int | None = None,
) -> None:
    """Raise ``BallotInvalid`` unless ``ballot`` gives integer points to known projects within bounds.

    Points per listed project must lie in ``[min_points, max_points]`` (a project a voter
    does not support is left out, so the default minimum is 1); the number of listed projects
    in ``[min_len, max_len]`` and the total in ``[min_sum_points, max_sum_points]``
    (Pabulib's ``min_length``, ``max_length``, ``min_points``, ``max_points``,
    ``min_sum_points``, ``max_sum_points``; None: no bound).
    """
    if not isinstance(ballot, Mapping):
        raise BallotInvalid("not_a_mapping", "a points ballot maps project ids to points")
    total = 0
    for project, points in ballot.items():
        if not isinstance(project, str) or project not in projects:
            raise BallotInvalid("unknown_project", f"unknown project {project!r}")
        if not _is_int(points):
            raise BallotInvalid("bad_points", f"project {project!r}: points must be an integer")
        if points < min_points:
            raise BallotInvalid(
                "points_below_minimum", f"project {project!r}: at least {min_points} points"
            )
        if max_points is not None and points > max_points:
            raise BallotInvalid(
                "points_above_maximum", f"project {project!r}: at most {max_points} points"
            )
        total += points
    if min_len is not None and len(ballot) < min_len:
        raise BallotInvalid(
            "too_few_projects", f"give points to at least {min_len} projects, got {len(ballot)}"
        )
    if max_len is not None and len(ballot) > max_len:
        raise BallotInvalid(
            "too_many_projects", f"give points to at most {max_len} projects, got {len(ballot)}"
        )
    if min_sum_points is not None and total < min_sum_points:
        raise BallotInvalid(
            "too_few_points", f"give at least {min_sum_points} points in total, got {total}"
        )
    if max_sum_points is not None and total > max_sum_points:
        raise BallotInvalid(
            "too_many_points", f"give at most {max_sum_points} points in total, got {total}"
        )


def check_yes_no_ballot(ballot: Mapping[str, str], candidates: Collection[str], slots: int) -> None:
    """Raise ``BallotInvalid`` unless ``ballot`` is a valid 票决 ballot.

    ``ballot`` maps candidate to ``"yes"``, ``"no"`` or ``"abstain"``; a candidate left out
    counts as not voted. More than ``slots`` "yes" is refused.
    """
    if not isinstance(ballot, Mapping):
        raise BallotInvalid("not_a_mapping", "a yes/no ballot maps candidates to yes/no/abstain")
    yes = 0
    for candidate, value in ballot.items():
        if not isinstance(candidate, str) or candidate not in candidates:
            raise BallotInvalid("unknown_candidate", f"unknown candidate {candidate!r}")
        if not isinstance(value, str) or value not in YES_NO_VALUES:
            raise BallotInvalid(
                "bad_value", f"candidate {candidate!r}: {value!r} is not yes, no or abstain"
            )
        if value == "yes":
            yes += 1
    if yes > slots:
        raise BallotInvalid("too_many_yes", f"at most {slots} yes votes, got {yes}")


# -- 票决: yes / no / abstain ----------------------------------------------------------------


@dataclass(frozen=True)
class CandidateCount:
    """One candidate's count. ``not_voted`` counts eligible deputies who did not cast a ballot
    plus those whose ballot left this candidate blank; it is never mixed with ``abstain``."""

    candidate: str
    yes: int
    no: int
    abstain: int
    not_voted: int
    passed: bool


@dataclass(frozen=True)
class CutoffTie:
    """Candidates tied on "yes" at the cut-off: a run-off decides ``seats`` of them."""

    candidates: tuple[str, ...]
    yes: int
    seats: int


@dataclass(frozen=True)
class YesNoResult:
    """Result of a yes / no / abstain vote.

    Without quorum (``quorum_met`` false) there is no result: nothing passes, nothing is
    adopted, ``tie`` is None; the counts are still given so turnout can be checked.
    ``yes_needed`` is the smallest number of "yes" that is more than half of the majority
    base (all eligible deputies, or those present = ballots cast). ``adopted`` lists the
    candidates adopted outright, most "yes" first; when ``tie`` is set, a run-off must fill
    ``tie.seats`` more slots from ``tie.candidates``.
    """

    eligible: int
    ballots_cast: int
    quorum_required: int
    quorum_met: bool
    majority_of: str
    yes_needed: int
    slots: int
    counts: tuple[CandidateCount, ...]
    adopted: tuple[str, ...]
    tie: CutoffTie | None

    @property
    def has_result(self) -> bool:
        return self.quorum_met

    @property
    def needs_runoff(self) -> bool:
        return self.tie is not None


def yes_no_abstain(
    candidates: Sequence[str],
    slots: int,
    eligible: Sequence[str],
    ballots: Mapping[str, Mapping[str, str]],
    quorum: Fraction = Fraction(2, 3),
    majority_of: MajorityOf = "eligible",
) -> YesNoResult:
    """Count a 票决 vote: which candidates pass, which M are adopted, and whether a run-off is needed.

    * Quorum: at least ``quorum`` of the eligible deputies cast a ballot
      (``ballots_cast ≥ ⌈quorum · eligible⌉``); otherwise there is no result.
    * A candidate passes with "yes" from more than half of all eligible deputies
      (``majority_of="eligible"``, the default) or of those present (``"present"``: the
      deputies who cast a ballot).
    * The passing candidates with the most "yes" are adopted, at most ``slots`` of them. When
      the last slot is contested by candidates with equal "yes", those above the tie are
      adopted and the tied ones are reported for a run-off.

    Every ballot is checked with :func:`check_yes_no_ballot` (``BallotInvalid``); a ballot
    from a voter who is not eligible raises ``TallyError``.
    """
    if len(set(candidates)) != len(candidates):
        raise TallyError("candidates must be distinct")
    if not _is_int(slots) or not 1 <= slots <= len(candidates):
        raise TallyError(f"slots must be between 1 and {len(candidates)}, got {slots!r}")
    if len(set(eligible)) != len(eligible) or not eligible:
        raise TallyError("eligible deputies must be distinct and not empty")
    if not isinstance(quorum, Fraction | int) or isinstance(quorum, bool) or not 0 <= quorum <= 1:
        raise TallyError(f"quorum must be a fraction between 0 and 1, got {quorum!r}")
    if majority_of not in ("eligible", "present"):
        raise TallyError(f"majority_of must be 'eligible' or 'present', got {majority_of!r}")
    electorate = set(eligible)
    for voter, ballot in ballots.items():
        if voter not in electorate:
            raise TallyError(f"ballot from {voter!r}, who is not an eligible deputy")
        check_yes_no_ballot(ballot, candidates, slots)

    quorum = Fraction(quorum)
    cast = len(ballots)
    required = -((-quorum.numerator * len(eligible)) // quorum.denominator)  # ceiling
    quorum_met = cast >= required
    base = len(eligible) if majority_of == "eligible" else cast
    yes_needed = base // 2 + 1

    tallies: dict[str, Counter[str]] = {c: Counter() for c in candidates}
    for ballot in ballots.values():
        for candidate, value in ballot.items():
            tallies[candidate][value] += 1
    counts = []
    for candidate in candidates:
        tally = tallies[candidate]
        voted = tally["yes"] + tally["no"] + tally["abstain"]
        counts.append(
            CandidateCount(
                candidate=candidate,
                yes=tally["yes"],
                no=tally["no"],
                abstain=tally["abstain"],
                not_voted=len(eligible) - voted,
                passed=quorum_met and tally["yes"] >= yes_needed,
            )
        )

    adopted: tuple[str, ...] = ()
    tie = None
    passing = sorted(
        (c for c in counts if c.passed), key=lambda c: (-c.yes, candidates.index(c.candidate))
    )
    if len(passing) <= slots:
        adopted = tuple(c.candidate for c in passing)
    else:
        cutoff = passing[slots - 1].yes
        if passing[slots].yes == cutoff:
            above = tuple(c.candidate for c in passing if c.yes > cutoff)
            tied = tuple(c.candidate for c in passing if c.yes == cutoff)
            adopted = above
            tie = CutoffTie(candidates=tied, yes=cutoff, seats=slots - len(above))
        else:
            adopted = tuple(c.candidate for c in passing[:slots])
    return YesNoResult(
        eligible=len(eligible),
        ballots_cast=cast,
        quorum_required=required,
        quorum_met=quorum_met,
        majority_of=majority_of,
        yes_needed=yes_needed,
        slots=slots,
        counts=tuple(counts),
        adopted=adopted,
        tie=tie,
    )
