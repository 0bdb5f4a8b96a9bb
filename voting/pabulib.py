"""A strict reader of Pabulib ``.pb`` files, and the rule each file records.

Format (Stolicki, Szufa, Talmon, "Pabulib: A Participatory Budgeting Library",
arXiv:2012.06539, and pabulib.org/format): UTF-8 text in three sections, in this order,
each introduced by a line holding only its name and followed by a header line:

* ``META`` with header ``key;value``: one ``key;value`` row per property (``budget``,
  ``vote_type``, ``rule``, ``num_projects``, ``num_votes``, ``min_length``, ...);
* ``PROJECTS`` with a header starting ``project_id`` and containing ``cost`` (``votes``,
  ``score``, ``name``, ``selected`` and free extra columns are optional);
* ``VOTES`` with a header starting ``voter_id`` and containing ``vote`` (comma-separated
  project ids; for ``cumulative`` and ``scoring`` ballots also ``points``, comma-separated
  integers in the same order; for ``ordinal`` ballots the ids are ranked, best first).

Rows are ``;``-separated. A field may be quoted with ``"``; inside quotes ``;`` is literal and
``""`` stands for one ``"``. Lines end with LF or CRLF. Surrounding spaces of a field are
dropped (as pabutools does).

"Strict" means the reader refuses, with the line number, what the format does not allow
rather than guessing: a quote inside an unquoted field or text after a closing quote, an
unterminated quote, a row with more or fewer fields than its header, blank lines other than
at the end, unknown, duplicated or missing sections, duplicated META keys, project ids or
voter ids, a vote for an unknown project or for one project twice, points that do not
match the votes, costs or budgets that are not integers (PROTOCOL §1: money is an integer
count of units), and ``num_projects`` / ``num_votes`` that disagree with the rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from core.voting import rules
from voting.errors import PabulibError

VOTE_TYPES: Final = frozenset({"approval", "choose-1", "cumulative", "scoring", "ordinal"})
SUPPORTED_RULES: Final = (
    "greedy",
    "equalshares",
    "equalshares/add1",
    "equalshares/add1-comparison",
)
_UNSIGNED = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class PbProject:
    """One row of PROJECTS. ``extra`` holds the columns this reader does not interpret."""

    id: str
    cost: int
    name: str = ""
    votes: int | None = None
    score: int | None = None
    selected: bool | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True)
class PbVote:
    """One row of VOTES.

    ``approvals`` lists the project ids of the ``vote`` column in file order (for ordinal
    ballots that is the ranking, best first; see ``ranking``). ``points`` maps project id to
    points for ``cumulative`` and ``scoring`` ballots and is None otherwise.
    """

    voter_id: str
    approvals: tuple[str, ...]
    points: Mapping[str, int] | None = None
    extra: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    @property
    def ranking(self) -> tuple[str, ...]:
        """The ranked projects, best first (meaningful for ``ordinal`` ballots)."""
        return self.approvals


@dataclass(frozen=True)
class PbInstance:
    """A parsed Pabulib file: META, PROJECTS and VOTES, in file order."""

    meta: Mapping[str, str]
    projects: tuple[PbProject, ...]
    votes: tuple[PbVote, ...]

    @property
    def budget(self) -> int:
        return int(self.meta["budget"])

    @property
    def vote_type(self) -> str:
        return self.meta["vote_type"]

    @property
    def rule(self) -> str | None:
        """The rule that decided the recorded winners (META ``rule``), if the file says."""
        return self.meta.get("rule") or None

    def meta_int(self, key: str) -> int | None:
        """An integer META property such as ``max_sum_points``, or None when absent or empty."""
        value = self.meta.get(key, "")
        if value == "":
            return None
        if not _SIGNED.fullmatch(value):
            raise PabulibError(f"META {key} is not an integer: {value!r}")
        return int(value)

    @property
    def min_length(self) -> int | None:
        return self.meta_int("min_length")

    @property
    def max_length(self) -> int | None:
        return self.meta_int("max_length")

    def costs(self) -> dict[str, int]:
        """Project id to cost, in file order."""
        return {p.id: p.cost for p in self.projects}

    def selected(self) -> frozenset[str]:
        """The recorded winners: projects whose ``selected`` column is 1."""
        return frozenset(p.id for p in self.projects if p.selected)

    def approval_ballots(self) -> tuple[frozenset[str], ...]:
        """Every vote as an approval set (``approval`` and ``choose-1`` files)."""
        if self.vote_type not in ("approval", "choose-1"):
            raise PabulibError(f"vote_type {self.vote_type!r} has no approval ballots")
        return tuple(frozenset(v.approvals) for v in self.votes)

    def points_ballots(self) -> tuple[Mapping[str, int], ...]:
        """Every vote as points per project (``cumulative`` and ``scoring`` files)."""
        ballots = []
        for vote in self.votes:
            if vote.points is None:
                raise PabulibError(f"vote_type {self.vote_type!r} has no points ballots")
            ballots.append(vote.points)
        return tuple(ballots)

    def ordinal_points(self) -> int:
        """Points of the first rank of an ordinal ballot: ``max_length``, else the longest ballot.

        Rank ``i`` (0 for the best) earns ``ordinal_points() - i``: Kraków's 3/2/1 for three
        ranked projects, as in its recorded ``score`` column.
        """
        declared = self.max_length
        if declared is not None:
            return declared
        return max((len(v.approvals) for v in self.votes), default=0)

    def scores(self) -> dict[str, int]:
        """The score greedy sorts by: approvals, total points, or positional points for ranks."""
        costs = self.costs()
        if self.vote_type in ("approval", "choose-1"):
            return rules.approval_scores(costs, self.approval_ballots())
        if self.vote_type in ("cumulative", "scoring"):
            return rules.points_scores(costs, self.points_ballots())
        top = self.ordinal_points()
        scores = dict.fromkeys(costs, 0)
        for vote in self.votes:
            for rank, project in enumerate(vote.approvals):
                scores[project] += top - rank
        return scores


def run_rule(instance: PbInstance, rule: str | None = None) -> tuple[str, ...]:
    """Tally ``instance`` with ``rule`` (default: the file's META ``rule``).

    Supported: ``greedy`` (by :meth:`PbInstance.scores`), ``equalshares`` (plain MES),
    ``equalshares/add1`` and ``equalshares/add1-comparison`` (approval or points ballots;
    comparison for approval only), with the conventions of :mod:`core.voting.rules`.
    """
    chosen = rule if rule is not None else instance.rule
    if chosen is None:
        raise PabulibError("the file names no rule; pass one")
    costs = instance.costs()
    if chosen == "greedy":
        return rules.greedy(costs, instance.budget, instance.scores())
    completions: dict[str, rules.Completion] = {
        "equalshares": None,
        "equalshares/add1": "add1",
        "equalshares/add1-comparison": "add1-comparison",
    }
    if chosen not in completions:
        raise PabulibError(f"rule {chosen!r} is not supported (supported: {SUPPORTED_RULES})")
    ballots: tuple[frozenset[str], ...] | tuple[Mapping[str, int], ...]
    if instance.vote_type in ("approval", "choose-1"):
        ballots = instance.approval_ballots()
    elif instance.vote_type in ("cumulative", "scoring"):
        ballots = instance.points_ballots()
    else:
        raise PabulibError(f"rule {chosen!r} is not defined for {instance.vote_type!r} ballots")
    return rules.equal_shares(costs, instance.budget, ballots, completions[chosen])


# -- reading --------------------------------------------------------------------------------


def load_pabulib(path: str | Path) -> PbInstance:
    """Read and parse a ``.pb`` file (UTF-8, an optional byte-order mark is dropped)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PabulibError("the file is not valid UTF-8", line) from exc
    return parse_pabulib(text)


def _split_row(line: str, number: int) -> list[str]:
    """Split one line into ``;``-separated fields, honouring ``"`` quoting strictly."""
    fields: list[str] = []
    i, end = 0, len(line)
    while True:
        if line.startswith('"', i):
            parts: list[str] = []
            i += 1
            while True:
                close = line.find('"', i)
                if close < 0:
                    raise PabulibError("unterminated quoted field", number)
                parts.append(line[i:close])
                if line.startswith('"', close + 1):
                    parts.append('"')
                    i = close + 2
                    continue
                i = close + 1
                break
            if i < end and line[i] != ";":
                raise PabulibError("text after a closing quote", number)
            fields.append("".join(parts).strip())
        else:
            stop = line.find(";", i)
            stop = end if stop < 0 else stop
            value = line[i:stop]
            if '"' in value:
                raise PabulibError('a quote (") inside an unquoted field', number)
            fields.append(value.strip())
            i = stop
        if i >= end:
            return fields
        i += 1  # the ';'


def _to_int(value: str, what: str, number: int, *, signed: bool = False) -> int:
    pattern = _SIGNED if signed else _UNSIGNED
    if not pattern.fullmatch(value):
        kind = "an integer" if signed else "a non-negative integer"
        raise PabulibError(f"{what} must be {kind}, got {value!r}", number)
    return int(value)


def _split_ids(value: str, number: int) -> list[str]:
    if value == "":
        return []
    items = [item.strip() for item in value.split(",")]
    if any(item == "" for item in items):
        raise PabulibError(f"empty item in list {value!r}", number)
    return items


def parse_pabulib(text: str) -> PbInstance:
    """Parse the text of a ``.pb`` file; raises ``PabulibError`` (with line number) if malformed."""
    lines = text.split("\n")
    rows: list[tuple[int, list[str]]] = []
    for index, raw in enumerate(lines):
        number = index + 1
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise PabulibError("stray carriage return", number)
        if line.strip() == "":
            if any(rest.strip("\r\t ") for rest in lines[index + 1 :]):
                raise PabulibError("blank line inside the file", number)
            break
        rows.append((number, _split_row(line, number)))

    sections: dict[str, list[tuple[int, list[str]]]] = {}
    headers: dict[str, tuple[int, list[str]]] = {}
    order = ("META", "PROJECTS", "VOTES")
    current: str | None = None
    expect_header = False
    for number, row in rows:
        name = row[0].upper() if len(row) == 1 else None
        if name in order:
            assert name is not None
            if name in sections:
                raise PabulibError(f"section {name} appears twice", number)
            expected = order[len(sections)]
            if name != expected:
                raise PabulibError(f"section {name} found where {expected} was expected", number)
            current = name
            sections[name] = []
            expect_header = True
            continue
        if current is None:
            raise PabulibError("the file must start with META", number)
        if expect_header:
            headers[current] = (number, row)
            expect_header = False
            continue
        sections[current].append((number, row))
    for name in order:
        if name not in sections:
            raise PabulibError(f"section {name} is missing")
        if name not in headers:
            raise PabulibError(f"section {name} has no header line")

    meta = _parse_meta(headers["META"], sections["META"])
    projects = _parse_projects(headers["PROJECTS"], sections["PROJECTS"])
    votes = _parse_votes(headers["VOTES"], sections["VOTES"], meta["vote_type"], projects)

    for key, count in (("num_projects", len(projects)), ("num_votes", len(votes))):
        if key in meta and meta[key] != "" and int(meta[key]) != count:
            raise PabulibError(f"META {key} is {meta[key]} but the file has {count} rows")
    return PbInstance(meta=MappingProxyType(meta), projects=projects, votes=votes)


_META_INTS: Final = (
    "budget",
    "num_projects",
    "num_votes",
    "min_length",
    "max_length",
    "min_sum_cost",
    "max_sum_cost",
    "min_points",
    "max_points",
    "min_sum_points",
    "max_sum_points",
)


def _parse_meta(header: tuple[int, list[str]], body: list[tuple[int, list[str]]]) -> dict[str, str]:
    number, names = header
    if [n.lower() for n in names] != ["key", "value"]:
        raise PabulibError("the META header must be key;value", number)
    meta: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, row in body:
        if len(row) != 2:
            raise PabulibError(f"a META row has 2 fields, this one has {len(row)}", number)
        key, value = row
        if key == "":
            raise PabulibError("empty META key", number)
        if key in meta:
            raise PabulibError(f"META key {key!r} appears twice", number)
        meta[key] = value
        lines[key] = number
    for key in ("budget", "vote_type"):
        if key not in meta:
            raise PabulibError(f"META has no {key!r}", header[0])
    for key in _META_INTS:
        if meta.get(key, "") != "":
            _to_int(meta[key], f"META {key}", lines[key])
    if meta["vote_type"] not in VOTE_TYPES:
        raise PabulibError(
            f"unknown vote_type {meta['vote_type']!r} (known: {sorted(VOTE_TYPES)})",
            lines["vote_type"],
        )
    return meta


def _check_header(
    header: tuple[int, list[str]], first: str, required: tuple[str, ...], section: str
) -> list[str]:
    number, names = header
    if not names or names[0] != first:
        raise PabulibError(f"the {section} header must start with {first}", number)
    if any(n == "" for n in names):
        raise PabulibError(f"empty column name in the {section} header", number)
    if len(set(names)) != len(names):
        raise PabulibError(f"a column name repeats in the {section} header", number)
    for name in required:
        if name not in names:
            raise PabulibError(f"the {section} header has no {name!r} column", number)
    return names


def _parse_projects(
    header: tuple[int, list[str]], body: list[tuple[int, list[str]]]
) -> tuple[PbProject, ...]:
    names = _check_header(header, "project_id", ("cost",), "PROJECTS")
    known = {"project_id", "cost", "name", "votes", "score", "selected"}
    projects: list[PbProject] = []
    seen: set[str] = set()
    for number, row in body:
        if len(row) != len(names):
            raise PabulibError(
                f"a PROJECTS row has {len(names)} fields, this one has {len(row)}", number
            )
        values = dict(zip(names, row, strict=True))
        project_id = values["project_id"]
        if project_id == "":
            raise PabulibError("empty project_id", number)
        if "," in project_id:
            raise PabulibError(f"project_id {project_id!r} contains a comma", number)
        if project_id in seen:
            raise PabulibError(f"project_id {project_id!r} appears twice", number)
        seen.add(project_id)
        selected_text = values.get("selected", "")
        if selected_text not in ("", "0", "1"):
            raise PabulibError(f"selected must be 0 or 1, got {selected_text!r}", number)
        projects.append(
            PbProject(
                id=project_id,
                cost=_to_int(values["cost"], "cost", number),
                name=values.get("name", ""),
                votes=_optional_int(values.get("votes", ""), "votes", number),
                score=_optional_int(values.get("score", ""), "score", number),
                selected=None if selected_text == "" else selected_text == "1",
                extra=MappingProxyType({k: v for k, v in values.items() if k not in known}),
            )
        )
    return tuple(projects)


def _optional_int(value: str, what: str, number: int) -> int | None:
    return None if value == "" else _to_int(value, what, number, signed=True)


def _parse_votes(
    header: tuple[int, list[str]],
    body: list[tuple[int, list[str]]],
    vote_type: str,
    projects: tuple[PbProject, ...],
) -> tuple[PbVote, ...]:
    names = _check_header(header, "voter_id", ("vote",), "VOTES")
    with_points = vote_type in ("cumulative", "scoring")
    if with_points and "points" not in names:
        raise PabulibError(f"{vote_type} votes need a 'points' column", header[0])
    known_projects = {p.id for p in projects}
    votes: list[PbVote] = []
    seen: set[str] = set()
    for number, row in body:
        if len(row) != len(names):
            raise PabulibError(
                f"a VOTES row has {len(names)} fields, this one has {len(row)}", number
            )
        values = dict(zip(names, row, strict=True))
        voter_id = values["voter_id"]
        if voter_id == "":
            raise PabulibError("empty voter_id", number)
        if voter_id in seen:
            raise PabulibError(f"voter_id {voter_id!r} appears twice", number)
        seen.add(voter_id)
        chosen = _split_ids(values["vote"], number)
        for project in chosen:
            if project not in known_projects:
                raise PabulibError(f"vote for unknown project {project!r}", number)
        if len(set(chosen)) != len(chosen):
            raise PabulibError("a vote names the same project twice", number)
        if vote_type == "choose-1" and len(chosen) > 1:
            raise PabulibError("a choose-1 vote names more than one project", number)
        points: Mapping[str, int] | None = None
        if with_points:
            items = _split_ids(values["points"], number)
            if len(items) != len(chosen):
                raise PabulibError(
                    f"{len(chosen)} projects in vote but {len(items)} values in points", number
                )
            numbers = [
                _to_int(item, "points", number, signed=vote_type == "scoring") for item in items
            ]
            points = MappingProxyType(dict(zip(chosen, numbers, strict=True)))
        elif values.get("points", "") != "":
            raise PabulibError(f"{vote_type} votes carry no points", number)
        votes.append(
            PbVote(
                voter_id=voter_id,
                approvals=tuple(chosen),
                points=points,
                extra=MappingProxyType(
                    {k: v for k, v in values.items() if k not in ("voter_id", "vote", "points")}
                ),
            )
        )
    return tuple(votes)
