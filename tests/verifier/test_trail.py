"""verify_trail against PROTOCOL §5's trail rule: a real trail is valid, and each fault gives
exactly its verdict and names the first bad record.

Trails are written with the real core (``build_record`` with seq and prev), sealed into real
Merkle batches and anchored on the in-memory FakeChain. A faulty service could anchor a bad
trail honestly, so most bad trails here have valid receipts and fail only the trail rules.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.records import SealedRecord
from core.verdicts import TrailVerdict, TrailVerification, Verdict
from core.workflow import ReplyCategory, SuggestionState, TrailFacts, allowed_next
from tests.verifier.fakes import (
    CONTRACT,
    LOOP,
    OTHER_SUBJECT,
    START,
    SUBJECT,
    FakeChain,
    TrailWriter,
    loop_writer,
    redacted_entry,
    seal_trail,
    trail_entry,
    write_steps,
)
from verifier.chain import log_id
from verifier.errors import ChainUnreachable
from verifier.trail import verify_trail

S = SuggestionState
STATES_AFTER = [
    "SUBMITTED",
    "DEPUTY_ACCEPTED",
    "ASSIGNED",
    "IN_PROGRESS",
    "ANSWERED",
    "REHANDLING",
    "REHANDLING",
    "ANSWERED",
    "CLOSED",
    "FOLLOW_UP",
    "ANSWERED",
    "CLOSED",
]


def sealed(records: list[SealedRecord], **kwargs: Any) -> tuple[list[dict[str, Any]], FakeChain]:
    chain = FakeChain()
    return seal_trail(records, chain, **kwargs), chain


@pytest.fixture(scope="module")
def loop() -> list[SealedRecord]:
    return loop_writer().records


@pytest.fixture
def honest(loop: list[SealedRecord]) -> tuple[list[dict[str, Any]], FakeChain]:
    return sealed(loop)


def verify(entries: Any, chain: FakeChain, **kwargs: Any) -> TrailVerification:
    return verify_trail(entries, chain, **kwargs)


def assert_fails(
    result: TrailVerification, verdict: TrailVerdict, index: int, record_hash: str, words: str
) -> None:
    """Exactly ``verdict``, naming the record at ``index`` by position and hash."""
    assert result.verdict is verdict, result.reason
    assert result.first_bad == index
    assert all(r.ok for r in result.records[:index])
    bad = result.records[index]
    assert not bad.ok and bad.verdict is verdict
    assert f"position {index} " in result.reason
    assert record_hash in result.reason
    assert words in result.reason, result.reason


# --- valid -----------------------------------------------------------------------------------


def test_the_full_loop_is_valid(
    honest: tuple[list[dict[str, Any]], FakeChain], loop: list[SealedRecord]
) -> None:
    entries, chain = honest
    result = verify(entries, chain, subject=SUBJECT)
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert result.valid
    assert result.first_bad is None
    assert result.tracking_code == SUBJECT
    assert result.state == "CLOSED"
    assert result.reason.startswith("12 records, seq 0 to 11: every receipt anchored")
    assert [r.seq for r in result.records] == list(range(12))
    assert [r.record_hash for r in result.records] == [s.record_hash for s in loop]
    assert all(r.ok and r.receipt_verdict is Verdict.VALID for r in result.records)
    assert [r.to_state or "" for r in result.records] == [
        state if i != 6 else "" for i, state in enumerate(STATES_AFTER)
    ]
    assert result.records[0].from_state is None
    assert result.records[0].actor_role == "citizen"
    assert result.records[6].type == "suggestion.flagged"
    assert (result.records[6].from_state, result.records[6].to_state) == (None, None)
    assert (result.records[9].from_state, result.records[9].to_state) == ("CLOSED", "FOLLOW_UP")


def test_the_subject_is_taken_from_the_records_when_not_given(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.VALID
    assert result.tracking_code == SUBJECT


def test_to_dict_is_plain_json(honest: tuple[list[dict[str, Any]], FakeChain]) -> None:
    entries, chain = honest
    data = json.loads(json.dumps(verify(entries, chain).to_dict(), ensure_ascii=False))
    assert data["verdict"] == "valid"
    assert data["state"] == "CLOSED"
    assert data["first_bad"] is None
    assert data["records"][4] == {
        "index": 4,
        "seq": 4,
        "record_hash": entries[4]["record_hash"],
        "status": "anchored",
        "type": "suggestion.transition",
        "at": "2026-11-27T09:34:00.123Z",
        "actor_role": "office",
        "from_state": "IN_PROGRESS",
        "to_state": "ANSWERED",
        "receipt_verdict": "valid",
        "ok": True,
        "verdict": None,
        "problem": None,
        "note": None,
    }


def test_each_chain_question_is_asked_once_per_trail(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    verify(entries, chain)
    assert chain.calls.count("chain_id") == 1
    assert chain.calls.count("block_number") == 1
    assert chain.calls.count("batch_of") == 4  # 12 records in batches of 3


def test_a_deputys_own_suggestion_may_go_straight_to_assigned() -> None:
    writer = TrailWriter()
    writer.submitted("deputy")
    write_steps(writer, [("SUBMITTED", "ASSIGNED", "staff", {"offices": ["jy-zjj"]}), *LOOP[2:]])
    result = verify(*sealed(writer.records))
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert result.state == "CLOSED"


def test_equal_times_are_not_reversed() -> None:
    writer = TrailWriter()
    writer.submitted()
    writer.transition("SUBMITTED", "DEPUTY_ACCEPTED", "deputy", at=START)
    assert verify(*sealed(writer.records)).verdict is TrailVerdict.VALID


def test_a_trail_of_another_log_skips_the_state_machine() -> None:
    writer = TrailWriter("sim-2027-budget/voter-07", log="votes")
    for n in range(3):
        writer.append("ballot.cast", "deputy", {"choices": [n], "nonce": f"{n:032x}"})
    entries, chain = sealed(writer.records)
    result = verify(entries, chain, log="votes")
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert result.state is None
    assert all(r.from_state is None and r.to_state is None for r in result.records)
    # The same trail is not a suggestions trail.
    assert_fails(
        verify(entries, chain),
        TrailVerdict.BROKEN_LINK,
        0,
        entries[0]["record_hash"],
        "a record of the 'votes' log in a trail of the 'suggestions' log",
    )


def test_a_truncated_trail_is_still_internally_valid(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    """Records left off the end leave nothing to see: completeness needs the audit."""
    entries, chain = honest
    result = verify(entries[:6], chain)
    assert result.verdict is TrailVerdict.VALID
    assert result.state == "REHANDLING"


# --- gap, broken_link, time_reversed ---------------------------------------------------------


def test_a_missing_seq_is_a_gap(honest: tuple[list[dict[str, Any]], FakeChain]) -> None:
    entries, chain = honest
    del entries[3]
    result = verify(entries, chain)
    assert_fails(
        result,
        TrailVerdict.GAP,
        3,
        entries[3]["record_hash"],
        "no record with seq 3: position 3 holds seq 4",
    )
    # Later records are judged against the record before them, not against the gap.
    assert all(r.ok for r in result.records[4:])


def test_a_missing_first_record_is_a_gap(honest: tuple[list[dict[str, Any]], FakeChain]) -> None:
    entries, chain = honest
    assert_fails(
        verify(entries[1:], chain),
        TrailVerdict.GAP,
        0,
        entries[1]["record_hash"],
        "no record with seq 0",
    )


def test_an_empty_trail_is_a_gap() -> None:
    result = verify([], FakeChain(), subject=SUBJECT)
    assert result.verdict is TrailVerdict.GAP
    assert result.first_bad is None
    assert result.reason == "the trail is empty: no record with seq 0"


def test_a_wrong_prev_is_a_broken_link() -> None:
    writer = loop_writer(until=4)
    writer.transition("ANSWERED", "REHANDLING", "deputy", prev=writer.records[2].leaf_hash)
    write_steps(writer, LOOP[5:])
    entries, chain = sealed(writer.records)
    result = verify(entries, chain)
    assert_fails(
        result,
        TrailVerdict.BROKEN_LINK,
        5,
        entries[5]["record_hash"],
        f"prev is {entries[2]['record_hash']}, but the record before (position 4) has leaf "
        f"hash {entries[4]['record_hash']}",
    )
    assert all(r.ok for r in result.records[6:])


def test_time_going_backwards_is_time_reversed() -> None:
    writer = loop_writer(until=5)
    writer.append("suggestion.flagged", "staff", {}, at=START + timedelta(minutes=4, seconds=59))
    write_steps(writer, LOOP[6:])
    entries, chain = sealed(writer.records)
    assert_fails(
        verify(entries, chain),
        TrailVerdict.TIME_REVERSED,
        6,
        entries[6]["record_hash"],
        "at 2026-11-27T09:34:59.123Z is earlier than the time of the record at position 5",
    )


def test_a_record_of_another_subject_spliced_in_is_a_broken_link() -> None:
    """It links perfectly (seq and prev follow), but it is about another suggestion."""
    writer = loop_writer(until=3)
    writer.transition("IN_PROGRESS", "ANSWERED", "office", {"category": "A"}, subject=OTHER_SUBJECT)
    entries, chain = sealed(writer.records)
    assert_fails(
        verify(entries, chain, subject=SUBJECT),
        TrailVerdict.BROKEN_LINK,
        4,
        entries[4]["record_hash"],
        f"a record about {OTHER_SUBJECT!r} in the trail of {SUBJECT!r}",
    )


def test_a_record_of_another_log_spliced_in_is_a_broken_link() -> None:
    writer = loop_writer(until=3)
    writer.transition("IN_PROGRESS", "ANSWERED", "office", {"category": "A"}, log="access")
    entries, chain = sealed(writer.records)
    assert entries[4]["receipt"]["proof"]["log"] == "access"  # anchored honestly in its own log
    assert_fails(
        verify(entries, chain),
        TrailVerdict.BROKEN_LINK,
        4,
        entries[4]["record_hash"],
        "a record of the 'access' log in a trail of the 'suggestions' log",
    )


def test_the_trail_of_another_suggestion_fails_at_its_first_record(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    assert_fails(
        verify(entries, chain, subject=OTHER_SUBJECT),
        TrailVerdict.BROKEN_LINK,
        0,
        entries[0]["record_hash"],
        f"a record about {SUBJECT!r} in the trail of {OTHER_SUBJECT!r}",
    )


def test_a_swapped_pair_is_a_broken_link_not_a_gap(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    """Every seq is there (no gap); the records are out of order, so the prev chain breaks."""
    entries, chain = honest
    entries[4], entries[5] = entries[5], entries[4]
    assert_fails(
        verify(entries, chain),
        TrailVerdict.BROKEN_LINK,
        4,
        entries[4]["record_hash"],
        "out of order: seq 5 stands where seq 4 belongs (seq 4 is at position 5)",
    )


def test_two_records_with_one_seq_are_a_fork() -> None:
    writer = loop_writer(until=3)
    twin = writer.transition(
        "IN_PROGRESS",
        "ANSWERED",
        "office",
        {"category": "D"},
        seq=3,
        prev=writer.records[2].leaf_hash,
    )
    entries, chain = sealed(writer.records)
    assert_fails(
        verify(entries, chain),
        TrailVerdict.BROKEN_LINK,
        4,
        twin.record_hash,
        "a second record with seq 3 (the first is at position 3): the trail forks",
    )


# --- illegal_transition ----------------------------------------------------------------------


def illegal(
    steps: list[Any], submitter: str = "citizen"
) -> tuple[TrailVerification, list[dict[str, Any]]]:
    writer = TrailWriter()
    writer.submitted(submitter)
    write_steps(writer, steps)
    entries, chain = sealed(writer.records)
    return verify(entries, chain), entries


@pytest.mark.parametrize(
    ("steps", "bad", "words"),
    [
        (
            [("SUBMITTED", "IN_PROGRESS", "office", {})],
            1,
            "SUBMITTED → IN_PROGRESS is not in the state machine; from SUBMITTED the allowed "
            "next states are ANSWERED_DIRECT, DEPUTY_ACCEPTED, MERGED, REJECTED, WITHDRAWN",
        ),
        (
            [("SUBMITTED", "ASSIGNED", "staff", {}), *LOOP[2:]],
            1,
            "SUBMITTED → ASSIGNED only for a deputy's own suggestion, and this one was submitted "
            "by a citizen; from SUBMITTED the allowed next states are ANSWERED_DIRECT, "
            "DEPUTY_ACCEPTED, MERGED, REJECTED, WITHDRAWN",
        ),
        (
            [
                *LOOP[:3],
                ("IN_PROGRESS", "ANSWERED", "office", {"category": "A"}),
                ("ANSWERED", "CLOSED", "deputy", {"level": "satisfied"}),
                ("CLOSED", "FOLLOW_UP", "staff", {}),
            ],
            6,
            "CLOSED → FOLLOW_UP only after a reply of category B or C, and the latest reply was "
            "category A; from CLOSED the allowed next states are none",
        ),
        (
            # The latest reply counts: B first, then A after rehandling.
            [
                *LOOP[:5],
                ("REHANDLING", "ANSWERED", "office", {"category": "A"}),
                ("ANSWERED", "CLOSED", "deputy", {}),
                ("CLOSED", "FOLLOW_UP", "staff", {}),
            ],
            8,
            "the latest reply was category A",
        ),
        (
            [
                *LOOP[:3],
                ("IN_PROGRESS", "ANSWERED", "office", {}),
                ("ANSWERED", "CLOSED", "deputy", {}),
                ("CLOSED", "FOLLOW_UP", "staff", {}),
            ],
            6,
            "the latest reply was without a category",
        ),
        (
            [*LOOP[:2], ("DEPUTY_ACCEPTED", "ASSIGNED", "staff", {})],
            3,
            "the transition is from DEPUTY_ACCEPTED, but the suggestion is in ASSIGNED",
        ),
        (
            [("SUBMITTED", "WITHDRAWN", "citizen", {}), ("WITHDRAWN", "DEPUTY_ACCEPTED", "x", {})],
            2,
            "WITHDRAWN → DEPUTY_ACCEPTED is not in the state machine; WITHDRAWN is final",
        ),
        (
            [("SUBMITTED", "ARCHIVED", "staff", {})],
            1,
            "body.from 'SUBMITTED' and body.to 'ARCHIVED' must both be states",
        ),
        (
            [*LOOP[:4], ("ANSWERED", "CLOSED", "citizen", {"level": "unsatisfied"})],
            5,
            "an evaluation of unsatisfied moves the suggestion to REHANDLING, not to CLOSED",
        ),
        (
            [*LOOP[:4], ("ANSWERED", "REHANDLING", "citizen", {"level": "满意"})],
            5,
            "body.level '满意' is not an evaluation level (satisfied, basically_satisfied, "
            "unsatisfied)",
        ),
        (
            [("suggestion.submitted", "citizen", {"title": "再提一次"})],
            1,
            "a suggestion is submitted once; this is a second suggestion.submitted",
        ),
    ],
    ids=[
        "SUBMITTED to IN_PROGRESS",
        "citizen SUBMITTED to ASSIGNED",
        "FOLLOW_UP after an A reply",
        "FOLLOW_UP after the latest reply A",
        "FOLLOW_UP after a reply without category",
        "from is not the current state",
        "out of a final state",
        "unknown state",
        "unsatisfied but closed",
        "unknown evaluation level",
        "submitted twice",
    ],
)
def test_an_illegal_transition_is_named(steps: list[Any], bad: int, words: str) -> None:
    result, entries = illegal(steps)
    assert_fails(result, TrailVerdict.ILLEGAL_TRANSITION, bad, entries[bad]["record_hash"], words)


def test_a_trail_must_begin_with_its_submission() -> None:
    writer = TrailWriter()
    writer.transition("SUBMITTED", "DEPUTY_ACCEPTED", "deputy")
    entries, chain = sealed(writer.records)
    assert_fails(
        verify(entries, chain),
        TrailVerdict.ILLEGAL_TRANSITION,
        0,
        entries[0]["record_hash"],
        "a suggestion's trail begins with suggestion.submitted, not suggestion.transition",
    )


def test_after_an_illegal_step_the_trail_is_judged_from_where_it_went() -> None:
    result, _ = illegal([("SUBMITTED", "ASSIGNED", "staff", {}), *LOOP[2:]])
    assert result.first_bad == 1
    assert all(r.ok for r in result.records[2:])
    assert result.state == "CLOSED"


# --- receipts --------------------------------------------------------------------------------


def test_content_altered_in_record_and_receipt_fails_receipt_step_3(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    for record in (entries[4]["record"], entries[4]["receipt"]["record"]):
        record["body"]["category"] = "A"  # rewrite the B reply as solved
    result = verify(entries, chain)
    assert_fails(
        result,
        TrailVerdict.ALTERED,
        4,
        entries[4]["record_hash"],
        "receipt: recomputed root",
    )
    assert result.records[4].receipt_verdict is Verdict.ALTERED


def test_content_altered_in_the_listing_only_is_altered(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[4]["record"]["body"]["category"] = "A"
    result = verify(entries, chain)
    assert_fails(
        result,
        TrailVerdict.ALTERED,
        4,
        entries[4]["record_hash"],
        f"not to the record hash {entries[4]['record_hash']} the trail gives",
    )
    assert result.records[4].receipt_verdict is Verdict.VALID


def test_the_receipt_of_another_record_is_altered(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[4]["receipt"] = copy.deepcopy(entries[3]["receipt"])
    assert_fails(
        verify(entries, chain),
        TrailVerdict.ALTERED,
        4,
        entries[4]["record_hash"],
        f"the receipt proves record {entries[3]['record_hash']}, not {entries[4]['record_hash']}",
    )


@pytest.mark.parametrize(
    ("fault", "verdict", "words"),
    [
        ("batch missing", TrailVerdict.NOT_ANCHORED, "is not anchored at"),
        ("other root", TrailVerdict.ROOT_MISMATCH, "on chain batch 4 of log 'suggestions' has"),
        ("K=22", TrailVerdict.UNCONFIRMED, "21 confirmations (block 100, latest 120); 22"),
        ("W=3", TrailVerdict.UNCONFIRMED, "2 witness attestations; 3 required"),
        ("chain 5", TrailVerdict.WRONG_CHAIN, "the endpoint serves chain 5"),
    ],
)
def test_a_receipt_that_fails_fails_the_trail_with_its_verdict(
    fault: str,
    verdict: TrailVerdict,
    words: str,
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    key = (CONTRACT.lower(), log_id("suggestions"), 4)  # the batch of positions 3 to 5
    options: dict[str, int] = {}
    first = 3
    if fault == "batch missing":
        del chain.batches[key]
    elif fault == "other root":
        chain.batches[key] = (bytes(range(32)), *chain.batches[key][1:])
    elif fault == "K=22":
        options, first = {"min_confirmations": 22}, 0
    elif fault == "W=3":
        options, first = {"min_attestations": 3}, 0
    else:
        chain.id, first = 5, 0
    result = verify(entries, chain, **options)
    assert_fails(result, verdict, first, entries[first]["record_hash"], words)
    assert "): receipt: " in result.reason
    assert result.records[first].receipt_verdict == Verdict(verdict.value)


def test_an_unreachable_chain_raises(honest: tuple[list[dict[str, Any]], FakeChain]) -> None:
    entries, chain = honest
    chain.unreachable = True
    with pytest.raises(ChainUnreachable, match="cannot reach http://fake"):
        verify(entries, chain)


# --- pending ---------------------------------------------------------------------------------


def test_a_pending_tail_makes_the_trail_pending(loop: list[SealedRecord]) -> None:
    entries, chain = sealed(loop, pending=3)
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.PENDING, result.reason
    assert not result.valid
    assert result.first_bad is None
    assert result.state == "CLOSED"
    assert result.reason.startswith(
        "every check that can be made passed, but 3 of 12 records are not anchored yet "
        "(from position 9)"
    )
    assert [r.status for r in result.records[8:]] == ["anchored", *["pending"] * 3]
    assert all(r.ok and r.receipt_verdict is None for r in result.records[9:])


def test_a_fault_in_a_pending_record_beats_pending() -> None:
    writer = loop_writer(until=8)
    writer.transition("CLOSED", "ANSWERED", "office", {"category": "A"})
    entries, chain = sealed(writer.records, pending=2)
    result = verify(entries, chain)
    assert_fails(
        result,
        TrailVerdict.ILLEGAL_TRANSITION,
        9,
        entries[9]["record_hash"],
        "CLOSED → ANSWERED is not in the state machine",
    )
    assert result.records[9].status == "pending"


def test_a_pending_record_is_checked_against_its_hash(loop: list[SealedRecord]) -> None:
    entries, chain = sealed(loop, pending=1)
    entries[-1]["record"]["actor"]["role"] = "office"
    assert verify(entries, chain).verdict is TrailVerdict.ALTERED


# --- redacted --------------------------------------------------------------------------------


def test_an_erased_record_in_the_middle_leaves_the_trail_valid(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[2] = redacted_entry(entries[2])  # DEPUTY_ACCEPTED → ASSIGNED, erased
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert result.reason.endswith("it reaches CLOSED; 1 erased record proven by leaf hash")
    erased = result.records[2]
    assert erased.ok and erased.receipt_verdict is Verdict.REDACTED
    assert (erased.seq, erased.type, erased.at, erased.from_state) == (None, None, None, None)
    assert erased.record_hash == entries[2]["record_hash"]
    assert erased.note is not None
    assert erased.note.startswith("the record's content was erased (删除请求 (PIPL art. 47))")
    assert "its seq, prev, time, log, subject and transition cannot be checked" in erased.note
    assert "the next transition may start from ASSIGNED, DEPUTY_ACCEPTED, MERGED" in erased.note
    # The record after it: from ASSIGNED is one of the states the erased record may have reached.
    assert result.records[3].ok and result.records[3].from_state == "ASSIGNED"


def test_after_an_erased_reply_a_follow_up_is_not_checked_not_illegal(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[7] = redacted_entry(entries[7])  # REHANDLING → ANSWERED with category C, erased
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert result.records[9].to_state == "FOLLOW_UP"
    assert result.records[9].note is not None
    assert "CLOSED → FOLLOW_UP is allowed only for some values of facts" in result.records[9].note


def test_an_erased_first_record_is_taken_as_the_submission(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[0] = redacted_entry(entries[0])
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.VALID, result.reason
    assert "taken to be suggestion.submitted" in (result.records[0].note or "")
    assert result.tracking_code == SUBJECT


def test_the_link_out_of_an_erased_record_is_still_checked() -> None:
    writer = loop_writer(until=2)
    writer.transition("ASSIGNED", "IN_PROGRESS", "office", prev=writer.records[1].leaf_hash)
    entries, chain = sealed(writer.records)
    entries[2] = redacted_entry(entries[2])
    assert_fails(
        verify(entries, chain),
        TrailVerdict.BROKEN_LINK,
        3,
        entries[3]["record_hash"],
        f"but the record before (position 2) has leaf hash {entries[2]['record_hash']}",
    )


def test_seq_bridges_an_erased_record(honest: tuple[list[dict[str, Any]], FakeChain]) -> None:
    entries, chain = honest
    entries[2] = redacted_entry(entries[2])
    del entries[4]
    assert verify(entries, chain).verdict is TrailVerdict.GAP


def test_a_transition_no_erased_record_can_explain_is_illegal() -> None:
    writer = loop_writer(until=1)  # citizen's suggestion, then DEPUTY_ACCEPTED (to be erased)
    writer.transition("IN_PROGRESS", "ANSWERED", "office", {"category": "A"})
    entries, chain = sealed(writer.records)
    entries[1] = redacted_entry(entries[1])
    assert_fails(
        verify(entries, chain),
        TrailVerdict.ILLEGAL_TRANSITION,
        2,
        entries[2]["record_hash"],
        "the transition is from IN_PROGRESS, but after the erased record(s) before it the "
        "suggestion can only be in",
    )


def test_an_erased_record_with_a_wrong_leaf_hash_is_altered(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[2] = redacted_entry(entries[2])
    entries[2]["receipt"]["leaf_hash"] = entries[3]["record_hash"]
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.ALTERED
    assert result.first_bad == 2


# --- malformed listings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (lambda e: e.pop("record_hash"), "record_hash must be 64 lowercase hex"),
        (lambda e: e.update(status="queued"), "status must be 'anchored' or 'pending'"),
        (lambda e: e.update(receipt=None), "an anchored entry must carry its receipt"),
        (lambda e: e["record"].update(extra=1), "record: record members differ"),
        (lambda e: e["record"].update(seq=True), "record: 'seq' must be an integer"),
    ],
    ids=["no record_hash", "unknown status", "anchored without receipt", "extra member", "bool"],
)
def test_a_malformed_entry_is_malformed(
    spoil: Callable[[dict[str, Any]], Any],
    words: str,
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    spoil(entries[5])
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.MALFORMED
    assert result.first_bad == 5
    assert words in result.reason


def test_a_pending_entry_with_a_receipt_is_malformed(
    honest: tuple[list[dict[str, Any]], FakeChain],
) -> None:
    entries, chain = honest
    entries[5]["status"] = "pending"
    result = verify(entries, chain)
    assert result.verdict is TrailVerdict.MALFORMED
    assert "a pending entry has no receipt yet" in result.reason


@pytest.mark.parametrize("listing", [{"records": []}, "[]", None])
def test_a_listing_that_is_not_an_array_is_malformed(listing: Any) -> None:
    result = verify(listing, FakeChain())
    assert result.verdict is TrailVerdict.MALFORMED
    assert result.first_bad is None


def test_an_unknown_log_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="log must be one of"):
        verify_trail([], FakeChain(), log="ballots")


def test_one_entry_built_by_hand(loop: list[SealedRecord]) -> None:
    assert verify([trail_entry(loop[0])], FakeChain()).verdict is TrailVerdict.PENDING


# --- property: every walk the published machine allows is valid -----------------------------


@st.composite
def legal_walks(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, dict[str, Any]]]]:
    submitter = draw(st.sampled_from(["citizen", "deputy"]))
    facts = TrailFacts(submitted_by_deputy=submitter == "deputy")
    state, steps = S.SUBMITTED, []
    for _ in range(draw(st.integers(0, 14))):
        options = sorted(allowed_next(state, facts))
        if not options:
            break
        nxt = draw(st.sampled_from(options))
        body: dict[str, Any] = {}
        if nxt in (S.ANSWERED, S.ANSWERED_DIRECT):
            category = draw(st.sampled_from(list(ReplyCategory)))
            body["category"] = category.value
            facts = TrailFacts(facts.submitted_by_deputy, category)
        steps.append((state.value, nxt.value, body))
        state = nxt
    return submitter, steps


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(walk=legal_walks(), pending=st.integers(0, 2), cut=st.integers(0, 20))
def test_every_legal_walk_is_valid_and_dropping_a_record_is_not(
    walk: tuple[str, list[tuple[str, str, dict[str, Any]]]], pending: int, cut: int
) -> None:
    submitter, steps = walk
    writer = TrailWriter()
    writer.submitted(submitter)
    for frm, to, body in steps:
        writer.transition(frm, to, "staff", body)
    pending = min(pending, len(writer.records))
    entries, chain = sealed(writer.records, pending=pending)
    result = verify(entries, chain, subject=SUBJECT)
    assert result.verdict is (TrailVerdict.PENDING if pending else TrailVerdict.VALID)
    assert result.state == (steps[-1][1] if steps else "SUBMITTED")

    if len(entries) > 1:
        dropped = cut % (len(entries) - 1)  # never the last: that is truncation, still valid
        del entries[dropped]
        assert verify(entries, chain).verdict is TrailVerdict.GAP
