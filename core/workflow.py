"""The published state machine of a suggestion: 群众提 — 代表定 — 政府办 — 人大评.

Pure data and functions. The service enforces it when a transition is requested; the
verifier uses the very same table to judge a trail (PROTOCOL §5 ``illegal_transition``).
Documented, with Chinese names, in docs/WORKFLOW.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class SuggestionState(StrEnum):
    SUBMITTED = "SUBMITTED"
    DEPUTY_ACCEPTED = "DEPUTY_ACCEPTED"
    ASSIGNED = "ASSIGNED"
    REASSIGN_REQUESTED = "REASSIGN_REQUESTED"
    IN_PROGRESS = "IN_PROGRESS"
    ANSWERED = "ANSWERED"
    REHANDLING = "REHANDLING"
    CLOSED = "CLOSED"
    FOLLOW_UP = "FOLLOW_UP"
    REJECTED = "REJECTED"
    ANSWERED_DIRECT = "ANSWERED_DIRECT"
    WITHDRAWN = "WITHDRAWN"
    MERGED = "MERGED"


S = SuggestionState

CHINESE_NAMES: Mapping[SuggestionState, str] = {
    S.SUBMITTED: "已提交",
    S.DEPUTY_ACCEPTED: "代表受理",
    S.ASSIGNED: "已交办",
    S.REASSIGN_REQUESTED: "申请退办",
    S.IN_PROGRESS: "办理中",
    S.ANSWERED: "已答复",
    S.REHANDLING: "重新办理",
    S.CLOSED: "办结",
    S.FOLLOW_UP: "跟踪落实",
    S.REJECTED: "不予受理",
    S.ANSWERED_DIRECT: "代表直接答复",
    S.WITHDRAWN: "已撤回",
    S.MERGED: "已并案",
}

INITIAL = S.SUBMITTED

#: Every allowed step, ``from`` → the states it may go to. ``SUBMITTED → ASSIGNED`` is in the
#: table but only allowed for a deputy's own suggestion (see ``allowed_next``).
TRANSITIONS: Mapping[SuggestionState, frozenset[SuggestionState]] = {
    S.SUBMITTED: frozenset(
        {S.DEPUTY_ACCEPTED, S.REJECTED, S.ANSWERED_DIRECT, S.WITHDRAWN, S.MERGED, S.ASSIGNED}
    ),
    S.DEPUTY_ACCEPTED: frozenset({S.ASSIGNED, S.WITHDRAWN, S.MERGED}),
    S.ASSIGNED: frozenset({S.IN_PROGRESS, S.REASSIGN_REQUESTED}),
    S.REASSIGN_REQUESTED: frozenset({S.ASSIGNED}),
    S.IN_PROGRESS: frozenset({S.ANSWERED}),
    S.ANSWERED: frozenset({S.CLOSED, S.REHANDLING}),
    S.REHANDLING: frozenset({S.ANSWERED}),
    S.CLOSED: frozenset({S.FOLLOW_UP}),
    S.FOLLOW_UP: frozenset({S.ANSWERED}),
    S.REJECTED: frozenset(),
    S.ANSWERED_DIRECT: frozenset(),
    S.WITHDRAWN: frozenset(),
    S.MERGED: frozenset(),
}

TERMINAL = frozenset(state for state, nxt in TRANSITIONS.items() if not nxt)


class EvaluationLevel(StrEnum):
    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    UNSATISFIED = "unsatisfied"  # 不满意


class ReplyCategory(StrEnum):
    """答复类别: A solved or adopted, B being solved, C planned for later, D cannot be done now
    (explained). B and C replies are followed up (跟踪落实) after closing."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


FOLLOW_UP_CATEGORIES = frozenset({ReplyCategory.B, ReplyCategory.C})


@dataclass(frozen=True)
class TrailFacts:
    """What the table needs to know about a suggestion beyond its current state."""

    submitted_by_deputy: bool = False
    reply_category: ReplyCategory | None = None


def allowed_next(
    state: SuggestionState, facts: TrailFacts = TrailFacts()
) -> frozenset[SuggestionState]:
    """States reachable in one step from ``state`` for a suggestion with these facts."""
    nxt = set(TRANSITIONS[state])
    if state is S.SUBMITTED and not facts.submitted_by_deputy:
        nxt.discard(S.ASSIGNED)
    if state is S.CLOSED and facts.reply_category not in FOLLOW_UP_CATEGORIES:
        nxt.discard(S.FOLLOW_UP)
    return frozenset(nxt)


def is_allowed(
    from_state: SuggestionState, to_state: SuggestionState, facts: TrailFacts = TrailFacts()
) -> bool:
    return to_state in allowed_next(from_state, facts)


def evaluation_outcome(level: EvaluationLevel) -> SuggestionState:
    """满意/基本满意 close the suggestion; 不满意 sends it back for rehandling."""
    return S.REHANDLING if level is EvaluationLevel.UNSATISFIED else S.CLOSED
