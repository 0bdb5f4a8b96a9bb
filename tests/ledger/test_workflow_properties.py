"""Properties of the suggestion state machine (``core.workflow``), on both of its sides:

* random walks over the published table, written as records, always verify as a trail
  (``verifier.trail``), and one illegal step anywhere is named as ``illegal_transition`` at
  exactly that record;
* random walks through the service (``ledger.suggestions.transition`` on a real SQLite
  database), trying legal and illegal targets alike: the service takes exactly the steps the
  table allows, refuses the others with ``IllegalTransition`` and records nothing for them, and
  the trail it stores, anchored, verifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.canonical import canonical_bytes
from core.records import SealedRecord
from core.verdicts import TrailVerdict
from core.workflow import (
    INITIAL,
    TRANSITIONS,
    ReplyCategory,
    SuggestionState,
    TrailFacts,
    allowed_next,
)
from ledger import attachments, auth, suggestions
from ledger.errors import CivicError
from ledger.pii import Vault
from ledger.schemas import SuggestionIn, TransitionIn
from ledger.suggestions import IllegalTransition
from tests.fixtures.db import Database
from tests.verifier.fakes import SUBJECT, FakeChain, TrailWriter, seal_trail
from verifier.trail import verify_trail

S = SuggestionState
ALL = sorted(S)
REPLY = hashlib.sha256(b"reply letter").hexdigest()
EVALUATION = {S.CLOSED: "satisfied", S.REHANDLING: "unsatisfied"}


def step_body(frm: S, to: S, category: ReplyCategory) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if to in (S.ANSWERED, S.ANSWERED_DIRECT):
        body = {"category": category.value, "reply_sha256": REPLY}
    elif to is S.ASSIGNED:
        body = {"offices": ["JT"], "due": "2027-03-01"}
    elif frm is S.ANSWERED and to in EVALUATION:
        body = {"level": EVALUATION[to]}
    return body


@st.composite
def walks(draw: st.DrawFn, max_steps: int = 14) -> tuple[bool, list[tuple[S, S, dict[str, Any]]]]:
    """A submitter (deputy or not) and a legal walk from SUBMITTED: (from, to, body) steps."""
    by_deputy = draw(st.booleans())
    state, category = INITIAL, None
    steps = []
    for _ in range(draw(st.integers(0, max_steps))):
        options = sorted(allowed_next(state, TrailFacts(by_deputy, category)))
        if not options:
            break
        nxt = draw(st.sampled_from(options))
        reply = draw(st.sampled_from(list(ReplyCategory)))
        steps.append((state, nxt, step_body(state, nxt, reply)))
        if nxt is S.ANSWERED:
            category = reply
        state = nxt
    return by_deputy, steps


def write(by_deputy: bool, steps: list[tuple[S, S, dict[str, Any]]]) -> TrailWriter:
    writer = TrailWriter()
    writer.submitted("deputy" if by_deputy else "citizen")
    for frm, to, body in steps:
        writer.transition(frm.value, to.value, "staff", body)
    return writer


def facts_after(by_deputy: bool, steps: list[tuple[S, S, dict[str, Any]]]) -> TrailFacts:
    category = None
    for _frm, to, body in steps:
        if to is S.ANSWERED:
            category = ReplyCategory(body["category"])
    return TrailFacts(by_deputy, category)


@settings(max_examples=150, deadline=None)
@given(walks())
def test_every_legal_walk_verifies_as_a_trail(
    walk: tuple[bool, list[tuple[S, S, dict[str, Any]]]],
) -> None:
    by_deputy, steps = walk
    chain = FakeChain()
    entries = seal_trail(write(by_deputy, steps).records, chain)
    result = verify_trail(entries, chain, subject=SUBJECT)
    assert result.verdict is TrailVerdict.VALID, result.reason


@settings(max_examples=150, deadline=None)
@given(walks(), st.data())
def test_one_illegal_step_is_named_at_its_record(
    walk: tuple[bool, list[tuple[S, S, dict[str, Any]]]], data: st.DataObject
) -> None:
    by_deputy, steps = walk
    cut = data.draw(st.integers(0, len(steps)), label="where")
    head = steps[:cut]
    state = head[-1][1] if head else INITIAL
    illegal = sorted(set(S) - allowed_next(state, facts_after(by_deputy, head)))
    target = data.draw(st.sampled_from(illegal), label="illegal target")
    writer = write(by_deputy, head)
    writer.transition(state.value, target.value, "staff", {})
    chain = FakeChain()
    entries = seal_trail(writer.records, chain)
    result = verify_trail(entries, chain, subject=SUBJECT)
    assert result.verdict is TrailVerdict.ILLEGAL_TRANSITION, result.reason
    assert result.first_bad == cut + 1  # the submission is record 0


# -- through the service ------------------------------------------------------------------------


@dataclass
class Actors:
    staff: auth.Principal
    deputy: auth.Principal
    office: auth.Principal
    deputy_token: str
    other_code: str


@pytest.fixture
def actors(database: Database) -> Iterator[tuple[Database, Actors, Vault]]:
    vault = Vault(bytes(32))
    with database.sessions.begin() as session:
        tokens = {
            "staff": auth.add_account(session, role="staff", name="人大办").token,
            "deputy": auth.add_account(
                session, role="deputy", name="王代表", district="鼓楼区"
            ).token,
            "office": auth.add_account(session, role="office", name="交通局", office="JT").token,
        }
        other = suggestions.submit(session, suggestion(), principal=None, vault=vault)
    with database.sessions() as session:
        people = {role: auth.authenticate(session, token) for role, token in tokens.items()}
    yield (
        database,
        Actors(
            people["staff"],
            people["deputy"],
            people["office"],
            tokens["deputy"],
            other.tracking_code,
        ),
        vault,
    )


def suggestion() -> SuggestionIn:
    return SuggestionIn(
        title="路灯不亮", text="幸福路口的路灯坏了。", category="城乡建设", district="鼓楼区"
    )


def request_for(
    to: S,
    level_for: dict[S, str],
    actors: Actors,
    submitter: auth.Principal,
    reply: str,
    reply_document: str,
) -> tuple[auth.Principal, TransitionIn]:
    """Who makes a step to ``to``, with the fields it needs (docs/WORKFLOW.md); an answer
    cites ``reply_document``, a file of the suggestion's own (a file belongs to one)."""
    fields: dict[str, Any] = {"to": to}
    who = actors.staff
    if to in (S.DEPUTY_ACCEPTED, S.ANSWERED_DIRECT):
        who = actors.deputy
    if to in (S.REJECTED, S.ANSWERED_DIRECT, S.REASSIGN_REQUESTED):
        fields["reason"] = "理由"
    if to is S.MERGED:
        fields["merged_into"] = actors.other_code
    if to is S.WITHDRAWN:
        who = submitter
    if to is S.ASSIGNED:
        fields["offices"] = ["JT"]
    if to in (S.IN_PROGRESS, S.REASSIGN_REQUESTED, S.ANSWERED, S.FOLLOW_UP):
        who = actors.office
    if to is S.ANSWERED:
        fields |= {"category": reply, "reply_sha256": reply_document}
    if to in (S.REHANDLING, S.CLOSED):
        who, fields["level"] = submitter, level_for[to]
    return who, TransitionIn(**fields)


def anchored_trail(session: Any, code: str) -> tuple[list[dict[str, Any]], FakeChain, str]:
    listing = suggestions.trail(session, code)
    records = [
        SealedRecord(e["record"], canonical_bytes(e["record"]), bytes.fromhex(e["record_hash"]))
        for e in listing["records"]
    ]
    chain = FakeChain()
    return seal_trail(records, chain), chain, listing["state"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_service_walks_take_exactly_the_legal_steps_and_verify(
    actors: tuple[Database, Actors, Vault], tmp_path: Path
) -> None:
    database, people, vault = actors

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        by_deputy=st.booleans(),
        length=st.integers(0, 16),
        satisfied=st.sampled_from(["satisfied", "basically_satisfied"]),
        data=st.data(),
    )
    def walk(by_deputy: bool, length: int, satisfied: str, data: st.DataObject) -> None:
        with database.sessions.begin() as session:
            submitted = suggestions.submit(
                session,
                suggestion(),
                principal=people.deputy if by_deputy else None,
                vault=vault,
            )
        code = submitted.tracking_code
        with database.sessions.begin() as session:
            reply_document = attachments.store(
                session, tmp_path / "files", f"reply to {code}".encode(), "text/plain", "office"
            ).sha256
        if by_deputy:
            submitter = people.deputy
        else:
            with database.sessions() as session:
                submitter = auth.authenticate(session, submitted.citizen_token or "")
        state, category = INITIAL, None
        levels = {S.CLOSED: satisfied, S.REHANDLING: "unsatisfied"}
        taken = 0
        for _ in range(length):
            allowed = sorted(allowed_next(state, TrailFacts(by_deputy, category)))
            # mostly a legal step that does not end the walk, so walks get far; a final one
            # or any state at all now and then
            going_on = [nxt for nxt in allowed if TRANSITIONS[nxt]]
            choices = [st.sampled_from(ALL)]
            if allowed:
                choices.append(st.sampled_from(allowed))
            if going_on:
                choices += [st.sampled_from(going_on)] * 4
            to = data.draw(st.one_of(choices))
            reply = data.draw(st.sampled_from(["A", "B", "C", "D"]))
            legal = to in allowed
            who, req = request_for(to, levels, people, submitter, reply, reply_document)
            if state is not S.ANSWERED and to is S.CLOSED:
                req = req.model_copy(update={"level": None, "reason": "逾期未评价"})
                who = people.staff
            try:
                with database.sessions.begin() as session:
                    suggestions.transition(session, code, req, principal=who)
            except IllegalTransition:
                assert not legal, f"{state} → {to} is in the table but was refused"
                continue
            except CivicError as exc:  # legal, refused for another reason: say which
                assert legal, f"{state} → {to}: {exc}"
                # CLOSED by staff without an evaluation waits for the evaluation period: the
                # only legal step this walk cannot make at once.
                assert to is S.CLOSED, f"{state} → {to} refused: {exc}"
                continue
            assert legal, f"{state} → {to} is not in the table but was taken"
            taken += 1
            if to is S.ANSWERED:
                category = ReplyCategory(reply)
            state = to
        with database.sessions() as session:
            entries, chain, stored_state = anchored_trail(session, code)
        assert stored_state == state.value
        assert len(entries) == taken + 1  # the submission, then one record per step taken
        result = verify_trail(entries, chain, subject=code)
        assert result.verdict is TrailVerdict.VALID, result.reason

    walk()


def test_the_table_has_no_step_into_the_initial_state() -> None:
    assert all(INITIAL not in nxt for nxt in TRANSITIONS.values())
