"""The audit's checks of every trail of one log (PROTOCOL §5), walked in position order.

Records are grouped by subject and each is judged against the record before it in its trail,
with the checks ``verifier.trail`` makes of a trail a service shows: seq 0, 1, … (``gap`` when
a seq is nowhere, ``broken_link`` when it comes later or twice), every ``prev`` the leaf hash of
the record before (``broken_link``), times never backwards (``time_reversed``), and in the
suggestions log the published state machine (``illegal_transition``). One finding per trail,
naming its first bad record. Then the service's trail heads must agree with the records: a
trail cut short at its end is ``missing``, which only an audit can see.

The walk also keeps evidence for the diagnosis of batches (``verifier.audit.diagnosis``): the
leaf hash a trail remembers for the record at a position, and the leaf hashes of records gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.records import CHAIN_SUBJECT, MAP_SUBJECT
from verifier.audit.findings import FindingKind, LogFindings
from verifier.audit.reading import StoredRecord, StoredTrailHead
from verifier.trail import SUGGESTIONS_LOG, StateMachine


class TrailWalk:
    """What the walk of one trail (log, subject) carries from one record to the next."""

    __slots__ = (
        "awaiting",
        "bad",
        "count",
        "first_hash",
        "first_position",
        "last_at",
        "last_hash",
        "last_position",
        "last_seq",
        "machine",
        "suspect",
    )

    def __init__(self, machine: StateMachine | None, position: int, leaf: bytes) -> None:
        self.machine = machine
        self.last_seq = -1
        self.last_hash = b""
        self.last_position = -1
        self.last_at: str | None = None
        self.count = 0
        self.first_position = position
        self.first_hash = leaf
        # The first bad record: once found, the trail is judged (one finding per trail).
        self.bad = False
        # A record whose seq skipped ahead: `gap` unless the skipped seq turns up later.
        self.awaiting: int | None = None
        self.suspect: tuple[int, int, bytes, bytes | None] | None = None  # pos, seq, hash, prev


class TrailChecks:
    """The trails of one log, each walked as its records come in position order."""

    def __init__(self, log: str, found: LogFindings) -> None:
        self.found = found
        self.with_state_machine = log == SUGGESTIONS_LOG
        self.trails: dict[str, TrailWalk] = {}
        # Evidence for the diagnosis of batches: the leaf hash a trail remembers for the record
        # at a position (the next record's prev, the trail head), and leaf hashes of records
        # that are gone (the prev of the record after a gap).
        self.remembered: dict[int, bytes] = {}
        self.gone: set[bytes] = set()

    def step(self, record: StoredRecord, content: Mapping[str, Any] | None) -> None:
        """The next record of its trail, in position order (see ``walk``)."""
        trail = self.trails.get(record.subject)
        if trail is None:
            # The chain's own trail (re-anchoring events) and the map's (its map heads,
            # PROTOCOL §10) are no suggestions: no state machine.
            machine = (
                StateMachine()
                if self.with_state_machine and record.subject not in (CHAIN_SUBJECT, MAP_SUBJECT)
                else None
            )
            trail = self.trails[record.subject] = TrailWalk(
                machine, record.position, record.leaf_hash
            )
        self.walk(trail, record, content)

    def walk(
        self, trail: TrailWalk, record: StoredRecord, content: Mapping[str, Any] | None
    ) -> None:
        """PROTOCOL §5 trail checks (as ``verifier.trail`` makes them), in position order.

        ``content`` is None when it cannot be judged (erased under §7, or altered): then, as
        for an erased record in ``verify_trail``, its own prev, time and transition are not
        checked, the state machine widens, and the next record must link to its leaf hash.
        """
        seq = record.seq
        trail.count += 1
        if trail.bad:
            if trail.awaiting is not None and seq == trail.awaiting:
                self.out_of_order(trail, record)
            return
        expected = trail.last_seq + 1
        problem: tuple[FindingKind, str] | None = None
        if seq != expected:
            if seq < expected:
                problem = (
                    FindingKind.BROKEN_LINK,
                    f"a second record with seq {seq} in this trail: the trail forks",
                )
            else:  # gap, unless seq `expected` comes later in the trail (out of order)
                trail.bad = True
                trail.awaiting = expected
                prev = content.get("prev") if content is not None else None
                trail.suspect = (
                    record.position,
                    seq,
                    record.leaf_hash,
                    bytes.fromhex(prev) if isinstance(prev, str) else None,
                )
                return
        elif content is not None:
            prev = content["prev"]
            if seq > 0 and prev != trail.last_hash.hex():
                problem = (
                    FindingKind.BROKEN_LINK,
                    f"prev is {prev}, but the record before it in the trail (position "
                    f"{trail.last_position}, seq {trail.last_seq}) has leaf hash "
                    f"{trail.last_hash.hex()}",
                )
                self.remembered.setdefault(trail.last_position, bytes.fromhex(prev))
            elif trail.last_at is not None and content["at"] < trail.last_at:
                # §1's fixed format makes text order time order.
                problem = (
                    FindingKind.TIME_REVERSED,
                    f"at {content['at']} is earlier than {trail.last_at}, the time of the "
                    "record before it",
                )
            elif trail.machine is not None:
                move = trail.machine.visible(content)
                if move.problem:
                    problem = (FindingKind.ILLEGAL_TRANSITION, move.problem)
            trail.last_at = content["at"]
        elif trail.machine is not None:
            trail.machine.unseen()
        if problem is not None:
            trail.bad = True
            self.found.find_record(problem[0], record, problem[1])
        trail.last_seq = seq
        trail.last_hash = record.leaf_hash
        trail.last_position = record.position

    def out_of_order(self, trail: TrailWalk, record: StoredRecord) -> None:
        """The seq a trail skipped turned up later: its records are out of order."""
        assert trail.suspect is not None
        position, seq, leaf, _prev = trail.suspect
        self.found.find(
            FindingKind.BROKEN_LINK,
            f"out of order: seq {seq} stands where seq {record.seq} belongs (seq {record.seq} "
            f"is at position {record.position})",
            position=position,
            subject=record.subject,
            seq=seq,
            record_hash=leaf,
        )
        trail.awaiting = None

    def close(self, heads: Iterable[StoredTrailHead]) -> None:
        """Every record walked: trails whose skipped seq never came have a gap, and the
        service's trail ``heads`` must match the records."""
        find = self.found.find
        for subject, trail in self.trails.items():
            if trail.awaiting is not None and trail.suspect is not None:
                position, seq, leaf, prev = trail.suspect
                if prev is not None and seq == trail.awaiting + 1:
                    self.gone.add(prev)
                find(
                    FindingKind.GAP,
                    f"no record with seq {trail.awaiting}: position {position} holds seq {seq}",
                    position=position,
                    subject=subject,
                    seq=seq,
                    record_hash=leaf,
                )
        with_head = set()
        for head in heads:
            with_head.add(head.subject)
            found = self.trails.get(head.subject)
            if found is None:
                find(
                    FindingKind.MISSING,
                    f"the trail head records {head.next_seq} records of this trail (the last "
                    f"with record hash {head.last_leaf_hash.hex()}), but the store has none",
                    subject=head.subject,
                    seq=0,
                    record_hash=head.last_leaf_hash,
                )
                continue
            trail = found
            if trail.bad:
                continue
            last = trail.last_seq
            if last + 1 < head.next_seq:
                first_gone = last + 1
                find(
                    FindingKind.MISSING,
                    f"the trail ends at seq {last}, but its head records {head.next_seq} "
                    f"records: seq {first_gone} to {head.next_seq - 1} are gone (the last had "
                    f"record hash {head.last_leaf_hash.hex()})",
                    subject=head.subject,
                    seq=first_gone,
                    record_hash=head.last_leaf_hash,
                )
            elif last + 1 > head.next_seq:
                find(
                    FindingKind.INSERTED,
                    f"the trail's head records {head.next_seq} records, but the trail goes on "
                    f"to seq {last}: no append wrote the records after seq "
                    f"{head.next_seq - 1}",
                    position=trail.last_position,
                    subject=head.subject,
                    seq=last,
                    record_hash=trail.last_hash,
                )
            elif head.last_leaf_hash != trail.last_hash:
                self.remembered.setdefault(trail.last_position, head.last_leaf_hash)
                find(
                    FindingKind.ALTERED,
                    f"the trail head remembers its last record as "
                    f"{head.last_leaf_hash.hex()}, but the record at seq {last} has record "
                    f"hash {trail.last_hash.hex()}",
                    position=trail.last_position,
                    subject=head.subject,
                    seq=last,
                    record_hash=trail.last_hash,
                )
        for subject, trail in self.trails.items():
            if subject not in with_head:
                find(
                    FindingKind.INSERTED,
                    "no append wrote this trail: the service keeps no head for it",
                    position=trail.first_position,
                    subject=subject,
                    record_hash=trail.first_hash,
                )
