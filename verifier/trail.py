"""Verifying a trail: all records of one subject in one log (PROTOCOL §5, last paragraph).

    A trail is valid when every record's receipt is ``valid``, the ``seq`` values are 0..n−1
    with no gap, every ``prev`` equals the leaf hash of the record before it, times never go
    backwards, and every ``suggestion.transition`` is allowed by the state machine that the
    project publishes. Failing trail verdicts name the first bad record.

``verify_trail`` takes the entries of the service's trail listing, in seq order, each
``{"record_hash", "status": "anchored" | "pending", "receipt", "record"}``, and judges every
entry with the checks below, in this order; a record's first failing check is its problem, and
the trail's verdict is the problem of its first bad record:

1. the entry is shaped as promised (``malformed``);
2. an anchored entry's receipt verifies (``verify_receipt``; its verdict fails the trail unless
   it is ``valid`` or ``redacted``);
3. the entry's record hashes to the entry's ``record_hash``, and the receipt proves that same
   leaf hash (``altered``) — i.e. the receipt's record is the entry's record, compared as
   canonical bytes, not as loosely equal JSON;
4. the record belongs to this log and subject (``broken_link``: it is not a link of this trail);
5. its ``seq`` follows the record before (``gap`` when that seq is nowhere in the trail,
   ``broken_link`` when the records are out of order or a seq repeats);
6. its ``prev`` is the leaf hash of the record before (``broken_link``);
7. its ``at`` is not earlier than the record before (``time_reversed``);
8. in the ``suggestions`` log, the state machine of ``core.workflow`` (``illegal_transition``):
   the first record is the submission, each transition starts from the current state and goes
   where ``allowed_next`` allows, and an evaluation (``body.level``) leads where
   ``evaluation_outcome`` says.

Later records are still judged after a failure (so every bad record is listed), each against
the record before it, not against the first failure.

Where content cannot be seen (an erased record, PROTOCOL §7, whose receipt proves only its leaf
hash): its own ``seq``, ``prev``, ``at``, log, subject and transition cannot be checked, and it
is reported with a note instead of a problem. The link *out of* it is still checked (the next
record's ``prev`` must be its proven leaf hash), seq and time checks bridge it (the next record
must carry the seq one past it, and a time not before the last visible one), and the state
machine widens rather than guesses: after an erased record the suggestion may be in its old
state or any state one step on, the next visible transition must start from one of those, and
a transition that is allowed only for some value of a fact the erased record may have set (the
reply category) is reported as not checked, never as illegal.

A pending entry (no receipt yet) is checked from its record like any other; if nothing fails,
the trail's verdict is ``pending``, not ``valid``.

What these checks cannot see: records left off the end. A trail cut short is still internally
valid. ``verify_completeness`` (below) sees it from the map of trail heads (PROTOCOL §10, §11):
the service's proof of the subject's head in the map of the latest anchored batch, whose
``ledger.map_head`` record is itself anchored. It gives its own verdict (``Completeness``),
beside the trail's: ``complete``, ``truncated``, ``head_mismatch``, ``unknown_subject``,
``stale`` or ``altered`` (and ``no_map`` when the service shows none).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core import trailmap
from core.canonical import CanonicalizationError, canonical_bytes
from core.checkpoint import MalformedCheckpoint, WrongOrigin, open_checkpoint
from core.merkle import leaf_hash
from core.note import BadSignature, MalformedNote, UnknownKey
from core.records import (
    LOGS,
    MAP_HEAD_TYPE,
    MAP_SUBJECT,
    RecordShapeError,
    RecordType,
    check_record_shape,
    is_hex64,
    parse_at,
)
from core.trailmap import MapProofError
from core.verdicts import (
    Completeness,
    CompletenessVerification,
    TrailRecordResult,
    TrailVerdict,
    TrailVerification,
    Verdict,
)
from core.workflow import (
    FOLLOW_UP_CATEGORIES,
    INITIAL,
    TRANSITIONS,
    EvaluationLevel,
    ReplyCategory,
    SuggestionState,
    TrailFacts,
    allowed_next,
    evaluation_outcome,
)
from verifier.chain import ChainReader, log_id
from verifier.checkpoint import CheckpointTrust
from verifier.receipt import verify_receipt

SUGGESTIONS_LOG = "suggestions"
SUBMITTED = RecordType.SUGGESTION_SUBMITTED
TRANSITION = RecordType.SUGGESTION_TRANSITION
ANCHORED = "anchored"
PENDING = "pending"

S = SuggestionState
_REPLIES = frozenset({S.ANSWERED, S.ANSWERED_DIRECT})
_EVALUATED = frozenset({S.CLOSED, S.REHANDLING})

# Receipt verdicts a trail accepts: a redacted record is erased but proven (§7).
_ACCEPTED_RECEIPTS = frozenset({Verdict.VALID, Verdict.REDACTED})


class AskOnce:
    """A ChainReader that asks the real one each question once per trail.

    Records of a trail share batches, and one answer for the latest block keeps the
    confirmation counts of all receipts consistent.
    """

    def __init__(self, chain: ChainReader) -> None:
        self._chain = chain
        self._answers: dict[tuple[Any, ...], Any] = {}

    def _ask(self, key: tuple[Any, ...], ask: Any) -> Any:
        if key not in self._answers:
            self._answers[key] = ask()
        return self._answers[key]

    def chain_id(self) -> int:
        answer: int = self._ask(("chain_id",), self._chain.chain_id)
        return answer

    def has_code(self, address: str) -> bool:
        answer: bool = self._ask(
            ("has_code", address.lower()), lambda: self._chain.has_code(address)
        )
        return answer

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        answer: tuple[bytes, int, int, int] = self._ask(
            ("batch_of", contract.lower(), log_id, batch),
            lambda: self._chain.batch_of(contract, log_id, batch),
        )
        return answer

    def block_number(self) -> int:
        answer: int = self._ask(("block_number",), self._chain.block_number)
        return answer

    def attestations(self, contract: str, log_id: bytes, batch: int) -> int:
        answer: int = self._ask(
            ("attestations", contract.lower(), log_id, batch),
            lambda: self._chain.attestations(contract, log_id, batch),
        )
        return answer


@dataclass(frozen=True, slots=True)
class _Entry:
    """One entry of the trail listing, shaped as promised; ``record`` None when not visible."""

    record_hash: str
    status: str
    receipt: Any
    record: Mapping[str, Any] | None


class _EntryMalformed(Exception):
    """Check 1 failed; the message says how."""


def _read_entry(entry: Any) -> _Entry:
    """Check 1: the entry is ``{"record_hash", "status", "receipt", "record"}`` as promised."""
    if not isinstance(entry, Mapping):
        raise _EntryMalformed("the entry must be a JSON object")
    record_hash = entry.get("record_hash")
    if not isinstance(record_hash, str) or not is_hex64(record_hash):
        raise _EntryMalformed("record_hash must be 64 lowercase hex characters")
    status = entry.get("status")
    receipt = entry.get("receipt")
    if status == ANCHORED and receipt is None:
        raise _EntryMalformed("an anchored entry must carry its receipt")
    if status == PENDING and receipt is not None:
        raise _EntryMalformed("a pending entry has no receipt yet, but this one carries one")
    if status not in (ANCHORED, PENDING):
        raise _EntryMalformed(f"status must be 'anchored' or 'pending', got {status!r}")
    record = entry.get("record")
    if record is not None:
        try:
            check_record_shape(record)
            canonical_bytes(record)
        except (RecordShapeError, CanonicalizationError) as exc:
            raise _EntryMalformed(f"record: {exc}") from exc
    return _Entry(record_hash, status, receipt, record)


def _state(value: Any) -> SuggestionState | None:
    try:
        return SuggestionState(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _category(value: Any) -> ReplyCategory | None:
    try:
        return ReplyCategory(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _evaluated(level: Any, to: SuggestionState) -> str | None:
    """满意/基本满意 close the suggestion, 不满意 sends it back (``evaluation_outcome``)."""
    try:
        outcome = evaluation_outcome(EvaluationLevel(level))
    except ValueError:
        known = ", ".join(e.value for e in EvaluationLevel)
        return f"body.level {level!r} is not an evaluation level ({known})"
    if outcome is not to:
        return f"an evaluation of {level} moves the suggestion to {outcome}, not to {to}"
    return None


def _names(states: frozenset[SuggestionState] | set[SuggestionState]) -> str:
    return ", ".join(sorted(states)) or "none"


@dataclass(frozen=True, slots=True)
class _Move:
    """What one record does to the suggestion's state, and what is wrong or unchecked."""

    from_state: SuggestionState | None = None
    to_state: SuggestionState | None = None
    problem: str | None = None
    note: str | None = None


class StateMachine:
    """Check 8: the published suggestion state machine (``core.workflow``), walked record
    by record.

    ``possible`` is the set of states the suggestion may be in: one state while every record is
    visible, more after an erased one. Facts the table needs (who submitted, the latest reply
    category) are None/unknown when they sit in erased content.
    """

    def __init__(self) -> None:
        self.possible: frozenset[SuggestionState] | None = None  # None: before the first record
        self.submitter: str | None = None  # the submitting actor's role, when visible
        self.by_deputy: bool | None = None
        self.reply_category: ReplyCategory | None = None
        self.category_known = True

    @property
    def state(self) -> SuggestionState | None:
        if self.possible is not None and len(self.possible) == 1:
            return next(iter(self.possible))
        return None

    def _facts(self) -> list[TrailFacts]:
        """Every value the facts may have: one when nothing was erased."""
        deputies = [self.by_deputy] if self.by_deputy is not None else [False, True]
        categories = [self.reply_category] if self.category_known else [None, *list(ReplyCategory)]
        return [TrailFacts(d, c) for d in deputies for c in categories]

    def _allowed(
        self, state: SuggestionState
    ) -> tuple[frozenset[SuggestionState], frozenset[SuggestionState]]:
        """(allowed whatever the unknown facts are, allowed for some value of them)."""
        options = [allowed_next(state, facts) for facts in self._facts()]
        return frozenset.intersection(*options), frozenset.union(*options)

    def _why_not(self, frm: SuggestionState, to: SuggestionState) -> str:
        allowed = self._allowed(frm)[1]
        where = f"from {frm} the allowed next states are {_names(allowed)}"
        if not TRANSITIONS[frm]:
            where = f"{frm} is final: no transition leaves it"
        if frm is S.SUBMITTED and to is S.ASSIGNED:
            return (
                f"{frm} → {to} only for a deputy's own suggestion, and this one was submitted "
                f"by a {self.submitter}; {where}"
            )
        if frm is S.CLOSED and to is S.FOLLOW_UP:
            latest = (
                f"category {self.reply_category}" if self.reply_category else "without a category"
            )
            return (
                f"{frm} → {to} only after a reply of category "
                f"{' or '.join(sorted(FOLLOW_UP_CATEGORIES))}, and the latest reply was {latest}; "
                f"{where}"
            )
        return f"{frm} → {to} is not in the state machine; {where}"

    def visible(self, record: Mapping[str, Any]) -> _Move:
        """Judge one record whose content is visible, and move to the state it reaches."""
        kind = record["type"]
        if self.possible is None:  # the first record of the trail
            self.possible = frozenset({INITIAL})
            if kind != SUBMITTED:
                return _Move(
                    problem=f"a suggestion's trail begins with {SUBMITTED}, not {kind}",
                )
            self.submitter = record["actor"]["role"]
            self.by_deputy = self.submitter == "deputy"
            return _Move(to_state=INITIAL)
        if kind == SUBMITTED:
            return _Move(problem=f"a suggestion is submitted once; this is a second {SUBMITTED}")
        if kind != TRANSITION:
            return _Move()  # flags, notes …: the state does not change
        body = record["body"]
        frm, to = _state(body.get("from")), _state(body.get("to"))
        if frm is None or to is None:
            return _Move(
                frm,
                to,
                problem=(
                    f"body.from {body.get('from')!r} and body.to {body.get('to')!r} must both "
                    f"be states of the published state machine ({_names(set(S))})"
                ),
            )
        problem = note = None
        if frm not in self.possible:
            if len(self.possible) == 1:
                problem = f"the transition is from {frm}, but the suggestion is in {self.state}"
            else:
                problem = (
                    f"the transition is from {frm}, but after the erased record(s) before it "
                    f"the suggestion can only be in {_names(self.possible)}"
                )
        else:
            surely, maybe = self._allowed(frm)
            if to not in maybe:
                problem = self._why_not(frm, to)
            elif to not in surely:
                note = (
                    f"{frm} → {to} is allowed only for some values of facts held in erased "
                    "content (who submitted, the latest reply category): not checked"
                )
            if problem is None and to in _EVALUATED and body.get("level") is not None:
                problem = _evaluated(body["level"], to)
        # Judge what follows from where the trail says it went, so one bad step is one problem.
        self.possible = frozenset({to})
        if to in _REPLIES:
            self.reply_category = _category(body.get("category"))
            self.category_known = True
        return _Move(frm, to, problem, note)

    def unseen(self) -> str:
        """An erased (or unreadable) record: widen the possible states, guess nothing."""
        if self.possible is None:
            self.possible = frozenset({INITIAL})
            self.by_deputy = None
            return (
                f"the first record cannot be seen: taken to be {SUBMITTED}; who submitted it "
                "(and so whether it may go straight to ASSIGNED) cannot be checked"
            )
        reachable = frozenset().union(*(self._allowed(state)[1] for state in self.possible))
        if reachable & _REPLIES:
            self.category_known = False
        self.possible = self.possible | reachable
        return f"the next transition may start from {_names(self.possible)}"


class _Walk:
    """Checks 4 to 8 need the record before: what is known about it, carried along the trail."""

    def __init__(self, log: str, subject: str | None, entries: list[Any]) -> None:
        self.log = log
        self.subject = subject
        self.machine = StateMachine() if log == SUGGESTIONS_LOG else None
        self.last_hash: str | None = None  # the leaf hash of the record before, when known
        self.last_seq: tuple[int, int] | None = None  # (position, seq) of the last visible record
        self.last_at: tuple[int, datetime] | None = None
        self.seqs_seen: dict[int, int] = {}
        # Where each visible seq sits, to tell a missing seq from records out of order.
        self.seq_at: dict[int, int] = {}
        for index, entry in enumerate(entries):
            record = entry.get("record") if isinstance(entry, Mapping) else None
            seq = record.get("seq") if isinstance(record, Mapping) else None
            if isinstance(seq, int) and not isinstance(seq, bool):
                self.seq_at.setdefault(seq, index)

    def belongs(self, record: Mapping[str, Any]) -> str | None:
        """Check 4: the record is of this log and this subject."""
        if record["log"] != self.log:
            return f"a record of the {record['log']!r} log in a trail of the {self.log!r} log"
        if self.subject is None:
            self.subject = record["subject"]
        elif record["subject"] != self.subject:
            return f"a record about {record['subject']!r} in the trail of {self.subject!r}"
        return None

    def follows(self, index: int, seq: int) -> tuple[TrailVerdict, str] | None:
        """Check 5: ``seq`` is one past the record before (0 for the first)."""
        if self.last_seq is None:
            expected = index
        else:
            last_index, last_seq = self.last_seq
            expected = last_seq + (index - last_index)
        earlier = self.seqs_seen.get(seq)
        self.last_seq = (index, seq)
        self.seqs_seen.setdefault(seq, index)
        if seq == expected:
            return None
        if earlier is not None:
            return (
                TrailVerdict.BROKEN_LINK,
                f"a second record with seq {seq} (the first is at position {earlier}): "
                "the trail forks",
            )
        later = self.seq_at.get(expected)
        if later is not None and later > index:
            return (
                TrailVerdict.BROKEN_LINK,
                f"out of order: seq {seq} stands where seq {expected} belongs "
                f"(seq {expected} is at position {later})",
            )
        return (
            TrailVerdict.GAP,
            f"no record with seq {expected}: position {index} holds seq {seq}",
        )

    def links(self, index: int, prev: str | None) -> str | None:
        """Check 6: ``prev`` is the leaf hash of the record before (null for the first)."""
        if index == 0 or self.last_hash is None:
            return None  # seq 0 has prev null (§1 shape); an unknown hash cannot be compared
        if prev != self.last_hash:
            return (
                f"prev is {prev or 'null'}, but the record before (position {index - 1}) has "
                f"leaf hash {self.last_hash}"
            )
        return None

    def in_time(self, index: int, at: str) -> str | None:
        """Check 7: ``at`` is not earlier than the last visible record's."""
        moment = parse_at(at)
        before = self.last_at
        if before is not None and moment < before[1]:
            return f"at {at} is earlier than the time of the record at position {before[0]}"
        self.last_at = (index, moment)
        return None


def _fail(
    verdict: TrailVerdict, tracking_code: str | None, log: str, reason: str
) -> TrailVerification:
    return TrailVerification(verdict, tracking_code, None, None, [], reason, log)


def verify_trail(
    entries: Any,
    chain: ChainReader | None,
    *,
    log: str = SUGGESTIONS_LOG,
    subject: str | None = None,
    min_confirmations: int = 0,
    min_attestations: int = 0,
    trust: CheckpointTrust | None = None,
) -> TrailVerification:
    """Verify the entries of a trail listing (in seq order) against ``chain``, PROTOCOL §5.

    ``subject`` is the tracking code (or other subject) every record must be about; when None,
    the first visible record's subject is taken. ``min_confirmations``/``min_attestations`` are
    passed to every receipt's step 5. With ``trust`` each version 2 receipt's step 4 is also
    (without ``chain``, only) done offline from its checkpoint (PROTOCOL §11). Never raises for a bad trail; raises ChainUnreachable /
    ChainError when the chain cannot be asked, ValueError for an unknown ``log``.
    """
    if log not in LOGS:
        raise ValueError(f"log must be one of {sorted(LOGS)}, not {log!r}")
    if not isinstance(entries, list):
        return _fail(TrailVerdict.MALFORMED, subject, log, "the trail must be a JSON array")
    if not entries:
        return _fail(TrailVerdict.GAP, subject, log, "the trail is empty: no record with seq 0")

    reader = AskOnce(chain) if chain is not None else None
    walk = _Walk(log, subject, entries)
    results = [
        _judge(index, entry, walk, reader, min_confirmations, min_attestations, trust)
        for index, entry in enumerate(entries)
    ]
    return _conclude(results, walk)


def _judge(
    index: int,
    raw: Any,
    walk: _Walk,
    chain: ChainReader | None,
    min_confirmations: int,
    min_attestations: int,
    trust: CheckpointTrust | None = None,
) -> TrailRecordResult:
    """Checks 1 to 8 on the entry at ``index``; its first failing check is its problem."""
    problems: list[tuple[TrailVerdict, str]] = []
    notes: list[str] = []

    # Check 1: the entry is shaped as promised.
    try:
        entry = _read_entry(raw)
    except _EntryMalformed as exc:
        claimed = raw.get("record_hash") if isinstance(raw, Mapping) else None
        walk.last_hash = claimed if is_hex64(claimed) else None
        if walk.machine is not None:
            walk.machine.unseen()
        return TrailRecordResult(
            index=index,
            seq=None,
            record_hash=claimed if isinstance(claimed, str) else None,
            status=raw.get("status") if isinstance(raw, Mapping) else None,
            type=None,
            at=None,
            actor_role=None,
            from_state=None,
            to_state=None,
            receipt_verdict=None,
            ok=False,
            verdict=TrailVerdict.MALFORMED,
            problem=str(exc),
        )
    record = entry.record

    # Check 2: an anchored entry's receipt verifies (PROTOCOL §5 steps 1–5, §7).
    receipt_verdict: Verdict | None = None
    proven_hash: str | None = None
    if entry.status == ANCHORED:
        checked = verify_receipt(
            entry.receipt,
            chain,
            min_confirmations=min_confirmations,
            min_attestations=min_attestations,
            trust=trust,
        )
        receipt_verdict, proven_hash = checked.verdict, checked.record_hash
        if checked.verdict not in _ACCEPTED_RECEIPTS:
            problems.append((TrailVerdict(checked.verdict.value), f"receipt: {checked.reason}"))
        elif checked.verdict is Verdict.REDACTED:
            notes.append(checked.reason)
            proof_log = entry.receipt["proof"]["log"]
            if record is None and proof_log != walk.log:
                problems.append(
                    (
                        TrailVerdict.BROKEN_LINK,
                        f"a record of the {proof_log!r} log in a trail of the {walk.log!r} log",
                    )
                )

    # Check 3: the record is what the entry names, and what the receipt proves.
    if record is not None:
        hashed = leaf_hash(canonical_bytes(record)).hex()
        if hashed != entry.record_hash:
            problems.append(
                (
                    TrailVerdict.ALTERED,
                    f"the record hashes to {hashed}, not to the record hash {entry.record_hash} "
                    "the trail gives",
                )
            )
    if proven_hash is not None and proven_hash != entry.record_hash:
        problems.append(
            (
                TrailVerdict.ALTERED,
                f"the receipt proves record {proven_hash}, not {entry.record_hash}: "
                "it is the receipt of another record",
            )
        )

    from_state = to_state = None
    if record is None:
        # Checks 4–8 read content; the link *out of* this record is still checked (next prev).
        notes.append("its seq, prev, time, log, subject and transition cannot be checked")
        if walk.machine is not None:
            notes.append(walk.machine.unseen())
    else:
        # Check 4: one log, one subject.
        foreign = walk.belongs(record)
        if foreign:
            problems.append((TrailVerdict.BROKEN_LINK, foreign))
        # Check 5: seq follows the record before.
        out_of_step = walk.follows(index, record["seq"])
        if out_of_step:
            problems.append(out_of_step)
        # Check 6: prev is the leaf hash of the record before.
        unlinked = walk.links(index, record["prev"])
        if unlinked:
            problems.append((TrailVerdict.BROKEN_LINK, unlinked))
        # Check 7: times never go backwards.
        reversed_ = walk.in_time(index, record["at"])
        if reversed_:
            problems.append((TrailVerdict.TIME_REVERSED, reversed_))
        # Check 8: the transition is allowed by the published state machine.
        if walk.machine is not None:
            move = walk.machine.visible(record)
            from_state, to_state = move.from_state, move.to_state
            if move.problem:
                problems.append((TrailVerdict.ILLEGAL_TRANSITION, move.problem))
            if move.note:
                notes.append(move.note)
    walk.last_hash = entry.record_hash

    first = problems[0] if problems else None
    return TrailRecordResult(
        index=index,
        seq=record["seq"] if record is not None else None,
        record_hash=entry.record_hash,
        status=entry.status,
        type=record["type"] if record is not None else None,
        at=record["at"] if record is not None else None,
        actor_role=record["actor"]["role"] if record is not None else None,
        from_state=from_state.value if from_state else None,
        to_state=to_state.value if to_state else None,
        receipt_verdict=receipt_verdict,
        ok=first is None,
        verdict=first[0] if first else None,
        problem=first[1] if first else None,
        note="; ".join(notes) or None,
    )


def _conclude(results: list[TrailRecordResult], walk: _Walk) -> TrailVerification:
    """The trail's verdict: the first bad record's problem, else pending, else valid."""
    state = walk.machine.state if walk.machine is not None else None
    state_name = state.value if state else None
    bad = next((r for r in results if not r.ok), None)
    if bad is not None:
        assert bad.verdict is not None
        seq = f"seq {bad.seq}" if bad.seq is not None else "content not visible"
        return TrailVerification(
            bad.verdict,
            walk.subject,
            state_name,
            bad.index,
            results,
            f"record at position {bad.index} ({seq}, record hash {bad.record_hash}): {bad.problem}",
            walk.log,
        )
    count = len(results)
    reached = f"; it reaches {state_name}" if state_name else ""
    if walk.machine is not None and state is None:
        reached = "; erased content leaves its state open"
    erased = sum(1 for r in results if r.receipt_verdict is Verdict.REDACTED)
    if erased:
        reached += f"; {erased} erased record{'s' if erased > 1 else ''} proven by leaf hash"
    pending = [r for r in results if r.status == PENDING]
    if pending:
        return TrailVerification(
            TrailVerdict.PENDING,
            walk.subject,
            state_name,
            None,
            results,
            f"every check that can be made passed, but {len(pending)} of {count} records are "
            f"not anchored yet (from position {pending[0].index}){reached}",
            walk.log,
        )
    return TrailVerification(
        TrailVerdict.VALID,
        walk.subject,
        state_name,
        None,
        results,
        f"{count} record{'s' if count > 1 else ''}, seq {'0 to ' if count > 1 else ''}"
        f"{count - 1}: every receipt "
        f"anchored, every link, time and transition in order{reached}",
        walk.log,
    )


# -- completeness (PROTOCOL §10 and §11, "A complete trail") ---------------------------------


@dataclass(frozen=True, slots=True)
class _Shown:
    """One record of the trail as shown: its seq (the entry's place when its content is
    erased), its record hash, and whether its receipt places it in batch ``<= b`` (before the
    map head of batch b, the last entry of its batch); pending records come after."""

    seq: int
    record_hash: str
    before: bool


def _shown(entries: list[Any], log: str, batch: int) -> list[_Shown]:
    shown = []
    for place, raw in enumerate(entries):
        if not isinstance(raw, Mapping):
            continue
        record, receipt = raw.get("record"), raw.get("receipt")
        seq = record.get("seq") if isinstance(record, Mapping) else None
        if not isinstance(seq, int) or isinstance(seq, bool):
            seq = place
        record_hash = raw.get("record_hash")
        before = False
        if raw.get("status") == ANCHORED and isinstance(receipt, Mapping):
            proof = receipt.get("proof")
            if isinstance(proof, Mapping) and proof.get("log") == log:
                at = proof.get("batch")
                before = isinstance(at, int) and not isinstance(at, bool) and at <= batch
        shown.append(_Shown(seq, record_hash if isinstance(record_hash, str) else "", before))
    return shown


def _latest_from_checkpoint(
    note: str | None, trust: CheckpointTrust
) -> tuple[int | None, Completeness | None, str]:
    """The size of the log's latest cosigned checkpoint, or the verdict that it cannot be
    trusted: (size, None, what was checked) or (None, verdict, why)."""
    if note is None:
        return (
            None,
            Completeness.UNCONFIRMED,
            ("the service gave no latest checkpoint: whether the map is the latest is unknown"),
        )
    key = trust.log_key
    try:
        opened = open_checkpoint(note, key, trust.witnesses)
    except BadSignature as exc:
        return (
            None,
            Completeness.BAD_SIGNATURE,
            (f"the latest checkpoint's line by {exc.name}+{exc.key_id.hex()} does not verify"),
        )
    except (UnknownKey, WrongOrigin) as exc:
        return None, Completeness.WRONG_CHAIN, f"the latest checkpoint is not this log's: {exc}"
    except (MalformedNote, MalformedCheckpoint) as exc:
        return None, Completeness.MALFORMED, f"the latest checkpoint is not a checkpoint: {exc}"
    cosigned = len(opened.witnesses)
    if cosigned < trust.quorum:
        return (
            None,
            Completeness.UNCONFIRMED,
            (
                f"the latest checkpoint is cosigned by {cosigned} trusted witnesses, "
                f"{trust.quorum} required"
            ),
        )
    size = opened.checkpoint.size
    return (
        size,
        None,
        (
            f"the latest checkpoint, signed by the log key and cosigned by {cosigned} trusted "
            f"witnesses, has size {size}"
        ),
    )


def verify_completeness(
    answer: Any,
    entries: Any,
    chain: ChainReader | None,
    *,
    subject: str,
    log: str = SUGGESTIONS_LOG,
    trust: CheckpointTrust | None = None,
    latest_checkpoint: str | None = None,
    min_confirmations: int = 0,
    min_attestations: int = 0,
) -> CompletenessVerification:
    """Whether ``entries`` (a trail listing, as for ``verify_trail``) are the whole trail of
    ``subject`` as of the latest anchored batch, from ``answer``: the trail answer's ``map``
    (``{"log", "subject", "batch", "map_head": <receipt>, "proof"}``, or None).

    In order (PROTOCOL §11): the map head's receipt is valid (on ``chain``, or offline from
    its checkpoint with ``trust``; its verdict otherwise); the map head is batch b's
    ``ledger.map_head`` record of this log; the map proof reaches its ``map_root`` and its key
    is SHA-256(subject) (``altered``); the head the map proves is the shown record with that
    seq (``truncated`` when the trail shown stops before it, ``head_mismatch`` when another
    record is shown there or a record shown in batch b or before goes beyond it,
    ``unknown_subject`` when the map proves no trail yet records are shown in batch b or
    before); and batch b is the latest anchored batch (``nextBatch − 1`` on ``chain``, else
    the size of ``latest_checkpoint``, the log's latest checkpoint, checked with ``trust``):
    else ``stale``. Raises ChainUnreachable/ChainError when the chain cannot be asked.
    """
    checks: list[str] = []

    def verdict(v: Completeness, reason: str, **known: Any) -> CompletenessVerification:
        return CompletenessVerification(v, reason, checks=checks, **known)

    if answer is None:
        return verdict(
            Completeness.NO_MAP,
            "the service showed no map of trail heads: completeness cannot be checked",
        )
    if (
        not isinstance(answer, Mapping)
        or not isinstance(answer.get("batch"), int)
        or isinstance(answer.get("batch"), bool)
        or not isinstance(answer.get("map_head"), Mapping)
        or "proof" not in answer
    ):
        return verdict(
            Completeness.MALFORMED,
            "the map is not an object with batch, map_head (a receipt) and proof",
        )
    batch: int = answer["batch"]
    if answer.get("log", log) != log:
        return verdict(
            Completeness.ALTERED, f"the map is of the {answer.get('log')!r} log, not {log!r}"
        )

    # The map head's receipt: on chain, or offline from its checkpoint.
    head_receipt = answer["map_head"]
    checked = verify_receipt(
        head_receipt,
        chain,
        min_confirmations=min_confirmations,
        min_attestations=min_attestations,
        trust=trust,
    )
    if checked.verdict is not Verdict.VALID:
        word = Completeness.ALTERED if checked.verdict is Verdict.REDACTED else None
        return verdict(
            word or Completeness(checked.verdict.value),
            f"the map head's receipt: {checked.reason}",
            batch=batch,
            map_head=checked,
        )
    checks.append(f"the receipt of the map head of batch {batch} is valid")
    head, proof_of_head = head_receipt["record"], head_receipt["proof"]
    body = head.get("body") if isinstance(head, Mapping) else None
    body = body if isinstance(body, Mapping) else {}
    index = proof_of_head["index"] if head_receipt.get("v") == 2 else body.get("index")
    problem = None
    if head.get("type") != MAP_HEAD_TYPE or head.get("subject") != MAP_SUBJECT:
        problem = f"the record is a {head.get('type')!r} of {head.get('subject')!r}"
    elif head.get("log") != log or proof_of_head["log"] != log:
        problem = f"it is of the {head.get('log')!r} log, not {log!r}"
    elif body.get("batch") != batch or proof_of_head["batch"] != batch:
        problem = (
            f"its body names batch {body.get('batch')!r} and its receipt batch "
            f"{proof_of_head['batch']}, not batch {batch}"
        )
    elif body.get("index") != index:
        problem = f"its body names index {body.get('index')!r}, its receipt {index}"
    elif head_receipt.get("v") == 2 and index != proof_of_head["size"] - 1:
        problem = (
            f"it is entry {index}, not the last entry of its batch (the tree of batch {batch} "
            f"has {proof_of_head['size']} entries)"
        )
    elif not isinstance(body.get("map_root"), str) or not is_hex64(body["map_root"]):
        problem = "its body has no map_root"
    if problem is not None:
        return verdict(
            Completeness.ALTERED, f"the map head is not batch {batch}'s: {problem}", batch=batch
        )
    map_root = body["map_root"]
    known: dict[str, Any] = {
        "batch": batch,
        "map_root": map_root,
        "map_index": index,
        "map_head": checked,
    }
    checks.append(f"it is the map head of batch {batch}, at index {index}, map_root {map_root}")

    # The map proof.
    if answer.get("subject", subject) != subject:
        return verdict(
            Completeness.ALTERED,
            f"the map proof is for {answer.get('subject')!r}, not {subject!r}",
            **known,
        )
    try:
        proven = trailmap.verify(
            bytes.fromhex(map_root), subject, trailmap.parse_proof(answer["proof"])
        )
    except MapProofError as exc:
        return verdict(Completeness.ALTERED, f"the map proof: {exc}", **known)
    if proven is None:
        checks.append(f"the map proves that {subject} had no trail as of batch {batch}")
    else:
        known["head_seq"], known["head_hash"] = proven[0], proven[1].hex()
        checks.append(
            f"the map proves the head of {subject} as of batch {batch}: seq {proven[0]}, "
            f"record hash {proven[1].hex()}"
        )

    # The trail shown against the map.
    shown = _shown(entries if isinstance(entries, list) else [], log, batch)
    before = [s for s in shown if s.before]
    if proven is None:
        if before:
            return verdict(
                Completeness.UNKNOWN_SUBJECT,
                f"the map of batch {batch} proves {subject} has no trail, yet the record with "
                f"seq {before[0].seq} ({before[0].record_hash}) is shown anchored in batch "
                f"{batch} or before",
                **known,
            )
    else:
        seq, leaf = proven[0], proven[1].hex()
        at = [s for s in shown if s.seq == seq]
        beyond = [s for s in before if s.seq > seq]
        if not at and all(s.seq < seq for s in shown):
            last = f"seq {shown[-1].seq}" if shown else "no record"
            return verdict(
                Completeness.TRUNCATED,
                f"the map of batch {batch} holds seq {seq} (record hash {leaf}) of {subject}; "
                f"the trail shown ends at {last}",
                **known,
            )
        if not at:
            return verdict(
                Completeness.HEAD_MISMATCH,
                f"the map holds seq {seq} (record hash {leaf}); the trail shown has no record "
                "with that seq",
                **known,
            )
        if at[0].record_hash != leaf:
            return verdict(
                Completeness.HEAD_MISMATCH,
                f"the map holds seq {seq} as record hash {leaf}; the trail shows "
                f"{at[0].record_hash}",
                **known,
            )
        if not at[0].before:
            return verdict(
                Completeness.HEAD_MISMATCH,
                f"the map of batch {batch} holds seq {seq}, which the trail shows anchored "
                f"after batch {batch} (or pending)",
                **known,
            )
        if beyond:
            return verdict(
                Completeness.HEAD_MISMATCH,
                f"the map of batch {batch} holds seq {seq}, yet the record with seq "
                f"{beyond[0].seq} is shown anchored in batch {batch} or before",
                **known,
            )
        checks.append(f"it is the record with seq {seq} of the trail shown, none beyond it")

    # Freshness: batch b is the latest anchored batch of the log.
    if chain is not None:
        next_batch = getattr(chain, "next_batch", None)
        if next_batch is None:  # a reader that cannot ask nextBatch cannot tell freshness
            return verdict(
                Completeness.UNCONFIRMED,
                "the chain reader cannot ask nextBatch: whether the map is the latest is unknown",
                **known,
            )
        latest = int(next_batch(proof_of_head_contract(head_receipt), log_id(log))) - 1
        known["latest_batch"] = latest
        if latest != batch:
            return verdict(
                Completeness.STALE,
                f"the map is of batch {batch}, but nextBatch on chain says batch {latest} is "
                "the latest anchored",
                **known,
            )
        checks.append(f"batch {batch} is the latest anchored (nextBatch − 1 on chain)")
    else:
        assert trust is not None  # else the map head's receipt is unconfirmed
        size, failed, said = _latest_from_checkpoint(latest_checkpoint, trust)
        if failed is not None:
            return verdict(failed, said, **known)
        checks.append(said)
        if size is not None and size > proof_of_head["size"]:
            return verdict(
                Completeness.STALE,
                f"the map is of batch {batch} (size {proof_of_head['size']}), but the log's "
                f"latest cosigned checkpoint has size {size}",
                **known,
            )
        checks.append(f"batch {batch} is the latest cosigned checkpoint's")
    return verdict(
        Completeness.COMPLETE,
        f"the trail shown is the whole trail of {subject} as of batch {batch}, the latest",
        **known,
    )


def proof_of_head_contract(receipt: Mapping[str, Any]) -> str:
    """The registry a (valid) receipt names."""
    contract: str = receipt["anchor"]["contract"]
    return contract
