"""Statistics of the suggestion workflow and a deputy's performance record (履职档案).

Read-only queries around one pure summary (``summarize``). The numbers come from the
suggestions' summary rows (``SuggestionRow``), which the workflow service keeps in step with
every transition; a deputy's own acts are counted from the records themselves.

Definitions, for a set of suggestions (the whole set, or one group):

- ``total``: suggestions in the set.
- ``assigned``: ever assigned to an office (交办): ``assigned_at`` is set.
- ``answered``: ever answered (答复), by an office or directly by a deputy:
  ``first_answered_at`` is set.
- ``closed``: ever completed (办结): ``closed_at`` is set, i.e. the suggestion reached
  ``CLOSED`` or ``ANSWERED_DIRECT`` at least once. A suggestion in ``FOLLOW_UP`` (跟踪落实), or
  answered again after a follow-up, stays counted: follow-up comes after completion.
- ``completion_rate`` (办结率): ``closed`` / the suggestions that should be completed, which
  are all but those ended without handling: ``WITHDRAWN``, ``MERGED`` and ``REJECTED``.
- ``on_time_rate``: replies on time / suggestions answered by an office
  (``answered_on_time`` is set: it is not for ``ANSWERED_DIRECT``, which has no due date).
  It judges the latest office reply against the due date then in force, so extensions (延期)
  and rehandling (重新办理) deadlines count.
- ``satisfaction_rate``: latest evaluation ``satisfied`` or ``basically_satisfied`` /
  suggestions whose latest reply was evaluated (``last_level`` is set). A reply closed by
  staff without an evaluation is not evaluated.
- ``median_handling_days``: median of ``first_answered_at - assigned_at`` over the suggestions
  that have both, in days with one decimal.
- ``overdue``: a reply is owed and its due date has passed, now (``suggestions.is_overdue``).
- ``key_supervision``: flagged 重点督办.

Rates are rounded to 4 decimals, and null when their denominator is 0.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.records import RecordType
from core.workflow import EvaluationLevel, SuggestionState
from ledger import service
from ledger.auth import Role
from ledger.errors import InvalidInput, NotFound
from ledger.models import Account, RecordRow, SuggestionRow
from ledger.suggestions import LOG, is_overdue

S = SuggestionState

#: what ``GET /api/v1/stats?by=`` may group by
GROUPINGS = ("district", "office", "deputy")
#: states that end a suggestion without handling it: not counted as "should be completed"
NOT_TO_COMPLETE = frozenset({S.WITHDRAWN, S.MERGED, S.REJECTED})
SATISFIED_LEVELS = frozenset(
    {EvaluationLevel.SATISFIED.value, EvaluationLevel.BASICALLY_SATISFIED.value}
)
_DAY_SECONDS = 86_400


class DeputyNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class SuggestionFacts:
    """What the statistics need of one suggestion, read at one moment."""

    district: str
    lead_office: str | None
    deputy: str | None
    state: SuggestionState
    assigned_at: datetime | None
    first_answered_at: datetime | None
    answered_on_time: bool | None
    closed: bool
    last_level: str | None
    overdue: bool
    key_supervision: bool

    @classmethod
    def of(cls, row: SuggestionRow, now: datetime) -> SuggestionFacts:
        return cls(
            district=row.district,
            lead_office=row.lead_office,
            deputy=row.deputy_id,
            state=SuggestionState(row.state),
            assigned_at=row.assigned_at,
            first_answered_at=row.first_answered_at,
            answered_on_time=row.answered_on_time,
            closed=row.closed_at is not None,
            last_level=row.last_level,
            overdue=is_overdue(row, now),
            key_supervision=bool(row.key_supervision),
        )


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(facts: Iterable[SuggestionFacts]) -> dict[str, Any]:
    """The numbers of the module docstring for one set of suggestions. Pure."""
    items = list(facts)
    to_complete = [f for f in items if f.state not in NOT_TO_COMPLETE]
    office_answered = [f for f in items if f.answered_on_time is not None]
    evaluated = [f for f in items if f.last_level is not None]
    handling = [
        (f.first_answered_at - f.assigned_at).total_seconds()
        for f in items
        if f.assigned_at is not None and f.first_answered_at is not None
    ]
    # statistics.median of an even count is the mean of the middle two
    median = round(statistics.median(handling) / _DAY_SECONDS, 1) if handling else None
    return {
        "total": len(items),
        "assigned": sum(f.assigned_at is not None for f in items),
        "answered": sum(f.first_answered_at is not None for f in items),
        "closed": sum(f.closed for f in items),
        "completion_rate": _rate(sum(f.closed for f in to_complete), len(to_complete)),
        "on_time_rate": _rate(
            sum(bool(f.answered_on_time) for f in office_answered), len(office_answered)
        ),
        "satisfaction_rate": _rate(
            sum(f.last_level in SATISFIED_LEVELS for f in evaluated), len(evaluated)
        ),
        "median_handling_days": median,
        "overdue": sum(f.overdue for f in items),
        "key_supervision": sum(f.key_supervision for f in items),
    }


_GROUP_KEY: dict[str, Callable[[SuggestionFacts], str | None]] = {
    "district": lambda f: f.district,
    "office": lambda f: f.lead_office,
    "deputy": lambda f: f.deputy,
}


def grouped(facts: Sequence[SuggestionFacts], by: str) -> list[dict[str, Any]]:
    """``summarize`` per group, sorted by name; the group without a name (no lead office yet,
    no deputy) comes last as ``"name": null``, so the groups always add up to the whole."""
    key = _GROUP_KEY[by]
    groups: defaultdict[str | None, list[SuggestionFacts]] = defaultdict(list)
    for f in facts:
        groups[key(f)].append(f)
    names = sorted(groups, key=lambda name: (name is None, name or ""))
    return [{"name": name, **summarize(groups[name])} for name in names]


def _check_query(period_from: date | None, period_to: date | None, by: str | None) -> None:
    if period_from is not None and period_to is not None and period_from > period_to:
        raise InvalidInput(
            f"the period ends before it starts: from={period_from.isoformat()} is after "
            f"to={period_to.isoformat()}"
        )
    if by is not None and by not in GROUPINGS:
        raise InvalidInput(f"by must be one of {', '.join(GROUPINGS)}; got {by!r}")


def suggestion_stats(
    session: Session,
    *,
    period_from: date | None,
    period_to: date | None,
    by: str | None,
    now: datetime,
) -> dict[str, Any]:
    """办结率, on-time rate, satisfaction rate, median handling days and overdue counts over the
    suggestions *submitted* in the period (inclusive dates, UTC days; an open end is
    unbounded), for the whole set and, with ``by``, per district, per office or per deputy.

    ``office`` groups a suggestion under its current lead office (主办单位, the first office of
    the latest assignment) only; assisting offices are not counted. ``deputy`` groups it under
    the deputy it is addressed to, submitted by or accepted by (``deputy_id``). Raises
    ``InvalidInput`` when ``period_from`` is after ``period_to`` or ``by`` is unknown.
    """
    _check_query(period_from, period_to, by)
    query = select(SuggestionRow)
    if period_from is not None:
        query = query.where(
            SuggestionRow.submitted_at >= datetime.combine(period_from, time.min, tzinfo=UTC)
        )
    if period_to is not None:
        query = query.where(
            SuggestionRow.submitted_at <= datetime.combine(period_to, time.max, tzinfo=UTC)
        )
    facts = [SuggestionFacts.of(row, now) for row in session.scalars(query)]
    return {
        "period": {
            "from": period_from.isoformat() if period_from else None,
            "to": period_to.isoformat() if period_to else None,
        },
        "as_of": service.iso(now),
        "by": by,
        "overall": summarize(facts),
        "groups": grouped(facts, by) if by is not None else None,
    }


# -- a deputy's record ----------------------------------------------------------------------


def _deputy_acts(session: Session, deputy: Account) -> Counter[str]:
    """How many transitions to each state the deputy made, read from the records.

    A deputy acts only on suggestions of their district or addressed to them
    (``suggestions.deputy_in_scope``), so only those trails are read. A redacted record
    (PROTOCOL §7) has lost its actor and is not counted.
    """
    scope = [SuggestionRow.deputy_id == deputy.id]
    if deputy.district is not None:
        scope.append(SuggestionRow.district == deputy.district)
    in_scope = select(SuggestionRow.tracking_code).where(or_(*scope))
    canonicals = session.scalars(
        select(RecordRow.canonical).where(
            RecordRow.log == LOG,
            RecordRow.type == RecordType.SUGGESTION_TRANSITION,
            RecordRow.subject.in_(in_scope),
        )
    )
    acts: Counter[str] = Counter()
    actor = {"role": Role.DEPUTY.value, "id": deputy.id}
    for canonical in canonicals:
        if not canonical:
            continue
        record = json.loads(canonical)
        if record["actor"] == actor:
            acts[record["body"]["to"]] += 1
    return acts


def votes_cast(session: Session, deputy_id: str) -> int:
    """Budget simulations in which the deputy cast a ballot: distinct ``ballot.cast`` trails
    of the ``votes`` log whose subject is ``<simulation id>/<deputy id>`` (PROTOCOL §6).
    Revotes extend the same trail and count once; a redacted ballot still counts."""
    count = session.scalar(
        select(func.count(func.distinct(RecordRow.subject))).where(
            RecordRow.log == "votes",
            RecordRow.type == RecordType.BALLOT_CAST,
            RecordRow.subject.endswith(f"/{deputy_id}", autoescape=True),
        )
    )
    return count or 0


def deputy_record(session: Session, deputy_id: str, *, now: datetime) -> dict[str, Any]:
    """A deputy's 履职档案, public information about an official; no citizen's data.

    - ``suggestions``: ``summarize`` over the suggestions addressed to, submitted by or
      accepted by the deputy (``deputy_id``), as ``GET /api/v1/stats?by=deputy`` counts them.
    - ``taken_up`` (代表受理), ``answered_direct`` (代表直接答复), ``rejected`` (不予受理): the
      deputy's own steps, counted from the ``suggestion.transition`` records whose actor is
      the deputy, not from summary rows (another deputy of the district may have acted on a
      suggestion addressed to this one).
    - ``submitted_own``: suggestions the deputy submitted under their account.
    - ``votes_cast``: see ``votes_cast``.

    Raises ``DeputyNotFound`` for an unknown account id or an account that is not a deputy.
    A disabled deputy's record stays readable (``active`` is false).
    """
    account = session.get(Account, deputy_id)
    if account is None or account.role != Role.DEPUTY.value:
        raise DeputyNotFound(f"no deputy has the account id {deputy_id!r}")
    rows = session.scalars(select(SuggestionRow).where(SuggestionRow.deputy_id == account.id))
    submitted_own = session.scalar(
        select(func.count())
        .select_from(SuggestionRow)
        .where(
            SuggestionRow.submitter_role == Role.DEPUTY.value,
            SuggestionRow.submitter_id == account.id,
        )
    )
    acts = _deputy_acts(session, account)
    return {
        "deputy": account.id,
        "district": account.district,
        "active": account.disabled_at is None,
        "as_of": service.iso(now),
        "taken_up": acts[S.DEPUTY_ACCEPTED.value],
        "answered_direct": acts[S.ANSWERED_DIRECT.value],
        "rejected": acts[S.REJECTED.value],
        "submitted_own": submitted_own or 0,
        "votes_cast": votes_cast(session, account.id),
        "suggestions": summarize(SuggestionFacts.of(row, now) for row in rows),
    }
