"""Checking a simulation's tally (PROTOCOL §6 ``simulation.tallied``) from its anchored records.

``verify_tally`` takes what the service published as plain values (the simulation, receipts,
the ballot listing: ``verifier.fetch.fetch_tally_inputs`` reads them over HTTP) and asks
nothing but the chain, through the ``ChainReader`` it is given (to verify the receipts).

``verify_tally`` reads like the check it makes, in this order (the step numbers of its checks):

1. The tally's receipt verifies (PROTOCOL §5) and its record is the ``simulation.tallied``
   record of this simulation, with a 64-hex ``counted_root``; the service's published
   ``tally_record`` and ``result`` are that record's hash and body.
2. The ``simulation.opened`` record's receipt verifies, it is seq 0 of the simulation's trail,
   and (given the records between them) the trail links it to the tally by ``seq`` and
   ``prev``. Its body is the rule set the recount uses: the electorate's keys, the projects,
   the rule.
3. Each ballot whose contents the listing shows (open mode after closing, or an inspector's
   or the voter's token): its receipt verifies, its record is the ``ballot.cast`` of this
   simulation and voter and holds exactly the listed ``choices`` and ``nonce``, and its
   Ed25519 signature verifies under the voter's key in the opened record. When every ballot
   is so proven, the counted ones are worked out from the records (each voter's ballot with
   the highest ``seq``); otherwise the listing's ``superseded`` marks are taken as given.
   ``counted_root`` must be the Merkle Tree Hash (§3) of the counted ballots' leaf hashes in
   ascending order, and ``ballots_counted`` their number. With every counted ballot's
   contents at hand the outcome is recounted with ``core.voting.tally.tally``, the very function
   the service tallies with, and ``counts`` and ``outcome`` must be the anchored ones.
4. When some contents are hidden (secret mode, no token), the counted ballots are those the
   listing does not mark superseded, and only the root over their record hashes and their
   number are checked; the outcome cannot be recounted, and the result says so
   (``recounted`` false, a note), which does not fail the tally.
5. ``my_ballot`` (a record hash) must be one of the counted leaves: the result gives its
   position in the ascending list and its RFC 9162 inclusion path to ``counted_root``.

Verdicts (``TallyVerdict``); the first failing check decides, and later checks still run:

* ``valid``: every check that could be made passed (see ``recounted`` and ``notes`` for what
  could not be made).
* ``recount_mismatch``: the recount differs from the anchored ``counts``/``outcome``, the
  anchored ``ballots_counted`` or ``rule`` differs, a counted ballot breaks the rules, the
  tally cannot be run on the opened rule set, or the service publishes a ``result`` that is
  not the anchored body.
* ``root_mismatch`` (in steps 3, 4 and 5): ``counted_root`` is not the root of the counted
  ballots. The same word from a receipt (step 1, 2 or 3 ``ballot receipt``) is PROTOCOL §5's:
  the chain holds another batch root; the failing check's step and name say which.
* ``signature_invalid``: a listed ballot's signature does not verify, or its voter has no key
  in the opened record.
* ``not_counted``: ``my_ballot`` is not among the counted ballots (superseded, or unknown).
* ``altered``: the listing shows a ballot other than the anchored record (another hash,
  record type, subject or contents); also a receipt's own ``altered``.
* ``broken_link``: the opened record is not linked to the tally by the simulation's trail.
* ``malformed``: the service's answers are not shaped as promised (the tally receipt is not
  this simulation's ``simulation.tallied``, a listing entry lacks its hash, ...).
* the other receipt verdicts of PROTOCOL §5 (``not_anchored``, ``wrong_chain``,
  ``unconfirmed``, ``redacted``) pass through from the receipt that gave them.
* ``pending``: nothing failed, but a listed ballot has no receipt yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any

from core.canonical import CanonicalizationError, canonical_bytes
from core.merkle import inclusion_path, leaf_hash, merkle_root, verify_inclusion
from core.records import RecordType, is_hex64
from core.verdicts import Verdict
from core.voting.ballots import verify_ballot_signature
from core.voting.errors import BallotInvalid, VotingError
from core.voting.tally import check_ballot, tally
from verifier.chain import ChainReader
from verifier.receipt import verify_receipt
from verifier.trail import AskOnce

LOG = "votes"
OPENED = RecordType.SIMULATION_OPENED
TALLIED = RecordType.SIMULATION_TALLIED
CLOSED = RecordType.SIMULATION_CLOSED
BALLOT = RecordType.BALLOT_CAST
# Members of the opened body that are not the rule set (voting.service.open_simulation).
_NOT_RULES = ("simulation", "opens_at", "closes_at")
_BALLOT_CONTENT = ("voter", "choices", "nonce")
_SHOWN = 5  # differences named in one check before "and N more"


class TallyVerdict(StrEnum):
    """What checking a tally concludes; the receipt verdicts of PROTOCOL §5 keep their words."""

    VALID = "valid"
    PENDING = "pending"
    RECOUNT_MISMATCH = "recount_mismatch"
    ROOT_MISMATCH = "root_mismatch"
    SIGNATURE_INVALID = "signature_invalid"
    NOT_COUNTED = "not_counted"
    BROKEN_LINK = "broken_link"
    ALTERED = "altered"
    NOT_ANCHORED = "not_anchored"
    WRONG_CHAIN = "wrong_chain"
    MALFORMED = "malformed"
    UNCONFIRMED = "unconfirmed"
    REDACTED = "redacted"


@dataclass(frozen=True, slots=True)
class TallyCheck:
    """One check; ``verdict`` is what its failure means (None when it passed)."""

    step: int
    name: str
    ok: bool
    detail: str
    verdict: TallyVerdict | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "verdict": None if self.verdict is None else self.verdict.value,
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """A ballot's place among the counted leaves: leaf ``index`` of ``size`` (ascending leaf
    hashes), with its RFC 9162 §2.1.3.1 inclusion ``path`` (nearest sibling first) to ``root``."""

    record_hash: str
    index: int
    size: int
    path: list[str]
    root: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_hash": self.record_hash,
            "index": self.index,
            "size": self.size,
            "path": list(self.path),
            "root": self.root,
        }


@dataclass(frozen=True, slots=True)
class TallyVerification:
    """The verdict on a simulation's tally and every check made, in order.

    ``counted`` is the ascending list of counted ballot leaf hashes as this verifier worked it
    out (None when the ballots could not be read); ``recounted`` says whether the outcome was
    recomputed from the ballots' contents; ``notes`` say what could not be checked.
    """

    verdict: TallyVerdict
    simulation: str | None
    reason: str
    checks: list[TallyCheck] = field(default_factory=list)
    tally_record: str | None = None
    counted_root: str | None = None
    counted: list[str] | None = None
    recounted: bool = False
    my_ballot: InclusionProof | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.verdict is TallyVerdict.VALID

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "simulation": self.simulation,
            "reason": self.reason,
            "tally_record": self.tally_record,
            "counted_root": self.counted_root,
            "counted": self.counted,
            "recounted": self.recounted,
            "my_ballot": None if self.my_ballot is None else self.my_ballot.to_dict(),
            "notes": list(self.notes),
            "checks": [check.to_dict() for check in self.checks],
        }


class _Report:
    def __init__(self, simulation: str | None) -> None:
        self.simulation = simulation
        self.checks: list[TallyCheck] = []
        self.notes: list[str] = []
        self.first: TallyCheck | None = None
        self.pending = 0
        self.tally_record: str | None = None
        self.counted_root: str | None = None
        self.counted: list[str] | None = None
        self.recounted = False
        self.my_ballot: InclusionProof | None = None
        self.root_step = 4  # 3 when every ballot's contents are proven, 4 when some are hidden

    def passed(self, step: int, name: str, detail: str) -> None:
        self.checks.append(TallyCheck(step, name, True, detail))

    def fail(self, step: int, name: str, verdict: TallyVerdict, detail: str) -> None:
        check = TallyCheck(step, name, False, detail, verdict)
        self.checks.append(check)
        if self.first is None:
            self.first = check

    def result(self) -> TallyVerification:
        if self.first is not None:
            verdict, reason = self.first.verdict or TallyVerdict.MALFORMED, self.first.detail
        elif self.pending:
            verdict = TallyVerdict.PENDING
            reason = (
                f"every check that can be made passed, but {_many(self.pending, 'listed ballot')} "
                "has no receipt yet"
            )
        else:
            verdict = TallyVerdict.VALID
            reason = "the anchored tally checks out: " + (
                "recounted from the signed ballots"
                if self.recounted
                else "counted_root checked; the outcome could not be recounted (see notes)"
            )
        return TallyVerification(
            verdict=verdict,
            simulation=self.simulation,
            reason=reason,
            checks=self.checks,
            tally_record=self.tally_record,
            counted_root=self.counted_root,
            counted=self.counted,
            recounted=self.recounted,
            my_ballot=self.my_ballot,
            notes=self.notes,
        )


def _many(count: int, noun: str, plural: str = "") -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


def _same(a: Any, b: Any) -> bool:
    """Equal as RFC 8785 bytes (so ``1`` and ``true`` differ, as they would in a hash)."""
    try:
        return canonical_bytes(a) == canonical_bytes(b)
    except (CanonicalizationError, TypeError, ValueError):
        return False


def _short(values: Sequence[str]) -> str:
    shown = ", ".join(values[:_SHOWN])
    return shown + (f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else "")


def _receipt_verdict(verdict: Verdict) -> TallyVerdict:
    return TallyVerdict(verdict.value)


# -- 1. the tally record -----------------------------------------------------------------


def _check_tally(
    report: _Report,
    simulation: Mapping[str, Any],
    receipt: Any,
    chain: ChainReader,
    confirmations: int,
    attestations: int,
) -> Mapping[str, Any] | None:
    """Step 1; returns the tally record when the rest can go on."""
    sim = report.simulation
    result = verify_receipt(
        receipt, chain, min_confirmations=confirmations, min_attestations=attestations
    )
    report.tally_record = result.record_hash
    if result.verdict is not Verdict.VALID:
        report.fail(1, "tally receipt", _receipt_verdict(result.verdict), result.reason)
        return None
    report.passed(1, "tally receipt", result.reason)
    record: Mapping[str, Any] = receipt["record"]
    body = record["body"]
    problems = []
    if record["log"] != LOG or record["type"] != TALLIED:
        problems.append(f"it is a {record['type']!r} record of the {record['log']!r} log")
    if record["subject"] != sim or (isinstance(body, Mapping) and body.get("simulation") != sim):
        problems.append(f"it is about {record['subject']!r}, not {sim!r}")
    if not isinstance(body, Mapping) or not {
        "rule",
        "ballots_counted",
        "counts",
        "outcome",
        "counted_root",
    } <= set(body):
        problems.append("its body lacks members of §6 (counts, outcome, ballots_counted, ...)")
    elif not is_hex64(body["counted_root"]):
        problems.append("its counted_root is not 64 lowercase hex characters")
    if problems:
        report.fail(
            1,
            "tally record",
            TallyVerdict.MALFORMED,
            f"the tally receipt is not this simulation's {TALLIED}: {'; '.join(problems)}",
        )
        return None
    report.counted_root = body["counted_root"]
    report.passed(
        1,
        "tally record",
        f"{TALLIED} of {sim}, seq {record['seq']}, at {record['at']}: rule {body['rule']!r}, "
        f"{_many(body['ballots_counted'], 'ballot')} counted, counted_root {body['counted_root']}",
    )
    published = simulation.get("tally_record")
    if published is not None and published != result.record_hash:
        report.fail(
            1,
            "published tally",
            TallyVerdict.MALFORMED,
            f"the service names tally record {published}, the receipt is of {result.record_hash}",
        )
    elif simulation.get("result") is not None and not _same(simulation["result"], body):
        report.fail(
            1,
            "published tally",
            TallyVerdict.RECOUNT_MISMATCH,
            "the service publishes a result that is not the anchored tally record's body",
        )
    elif published is not None and simulation.get("result") is not None:
        report.passed(
            1, "published tally", "the service's tally_record and result are the record's"
        )
    return record


# -- 2. the opened record and the rule set ----------------------------------------------------


def _check_opened(
    report: _Report,
    tally_record: Mapping[str, Any],
    opened_receipt: Any,
    between: Sequence[Any] | None,
    chain: ChainReader,
    confirmations: int,
    attestations: int,
) -> tuple[dict[str, Any] | None, list[Mapping[str, Any]]]:
    """Step 2; returns the rule set (None when not available) and the records between."""
    sim = report.simulation
    if opened_receipt is None:
        report.notes.append(
            f"no {OPENED} record was given: ballot signatures and the recount were not checked"
        )
        return None, []
    trail: list[Mapping[str, Any]] = []
    for name, receipt in [("opened receipt", opened_receipt)] + [
        (f"trail receipt {i + 1}", r) for i, r in enumerate(between or ())
    ]:
        result = verify_receipt(
            receipt, chain, min_confirmations=confirmations, min_attestations=attestations
        )
        if result.verdict is not Verdict.VALID:
            report.fail(2, name, _receipt_verdict(result.verdict), result.reason)
            return None, []
        trail.append(receipt["record"])
    opened, rest = trail[0], trail[1:]
    body = opened["body"]
    if (
        opened["log"] != LOG
        or opened["type"] != OPENED
        or opened["subject"] != sim
        or opened["seq"] != 0
        or not isinstance(body, Mapping)
        or body.get("simulation") != sim
    ):
        report.fail(
            2,
            "opened record",
            TallyVerdict.MALFORMED,
            f"the first record given is not seq 0 of {sim}'s trail, a {OPENED} "
            f"(it is {opened['type']!r}, seq {opened['seq']}, about {opened['subject']!r})",
        )
        return None, []
    report.passed(
        2, "opened record", f"{OPENED} of {sim} at {opened['at']}: the rule set, anchored"
    )
    if between is None:
        report.notes.append(
            f"the records between {OPENED} and {TALLIED} were not given: their link was not checked"
        )
    else:
        chain_of = [opened, *rest, tally_record]
        for before, after in pairwise(chain_of):
            problem = None
            if after["log"] != LOG or after["subject"] != sim:
                problem = f"a {after['type']!r} record about {after['subject']!r} is in the trail"
            elif after["seq"] != before["seq"] + 1:
                problem = f"seq {after['seq']} follows seq {before['seq']}"
            elif after["prev"] != _leaf(before):
                problem = (
                    f"the prev of seq {after['seq']} is not the leaf hash of seq {before['seq']}"
                )
            if problem is not None:
                report.fail(
                    2, "trail", TallyVerdict.BROKEN_LINK, f"{sim}'s trail is broken: {problem}"
                )
                return None, []
        report.passed(
            2,
            "trail",
            f"seq 0 to {tally_record['seq']} of {sim}'s trail link the opened record to the tally",
        )
    rules = {k: v for k, v in body.items() if k not in _NOT_RULES}
    electorate = rules.get("electorate")
    if not isinstance(electorate, list) or not all(
        isinstance(e, Mapping) and isinstance(e.get("voter"), str) for e in electorate
    ):
        report.fail(
            2,
            "rule set",
            TallyVerdict.MALFORMED,
            "the opened rule set has no electorate of voters with keys (PROTOCOL §6)",
        )
        return None, rest
    rules["electorate_ids"] = [e["voter"] for e in electorate]
    report.passed(
        2,
        "rule set",
        f"{rules.get('ballot_type')!r} ballots, rule {rules.get('rule')!r}, "
        f"{_many(len(electorate), 'voter')} with keys, secrecy {rules.get('secrecy')!r}",
    )
    return rules, rest


def _leaf(record: Mapping[str, Any]) -> str:
    return leaf_hash(canonical_bytes(record)).hex()


# -- 3. and 4. the ballots, the counted root, the recount -------------------------------------


@dataclass(slots=True)
class _Ballot:
    record_hash: str
    superseded: bool
    voter: str | None = None
    choices: Any = None
    nonce: str | None = None
    visible: bool = False
    proven: bool = False  # a valid receipt shows exactly these contents
    seq: int = -1


def _read_listing(report: _Report, entries: Any) -> list[_Ballot] | None:
    if not isinstance(entries, list):
        report.fail(3, "ballot listing", TallyVerdict.MALFORMED, "the ballots are not a list")
        return None
    ballots: list[_Ballot] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        problem = None
        if not isinstance(entry, Mapping):
            problem = "is not an object"
        elif not is_hex64(entry.get("record_hash")):
            problem = "has no record_hash of 64 lowercase hex characters"
        elif not isinstance(entry.get("superseded"), bool):
            problem = "has no superseded true/false"
        elif entry["record_hash"] in seen:
            problem = f"repeats record hash {entry['record_hash']}"
        elif any(k in entry for k in _BALLOT_CONTENT) and not (
            isinstance(entry.get("voter"), str)
            and isinstance(entry.get("nonce"), str)
            and "choices" in entry
        ):
            problem = "shows part of a ballot (voter, choices and nonce go together)"
        if problem is not None:
            report.fail(3, "ballot listing", TallyVerdict.MALFORMED, f"listed ballot {i} {problem}")
            return None
        assert isinstance(entry, Mapping)
        seen.add(entry["record_hash"])
        ballot = _Ballot(entry["record_hash"], entry["superseded"])
        if "voter" in entry:
            ballot.voter, ballot.choices, ballot.nonce = (
                entry["voter"],
                entry["choices"],
                entry["nonce"],
            )
            ballot.visible = True
        ballots.append(ballot)
    return ballots


def _check_ballot_records(
    report: _Report,
    entries: Sequence[Any],
    ballots: list[_Ballot],
    rules: Mapping[str, Any] | None,
    chain: ChainReader,
    confirmations: int,
    attestations: int,
) -> None:
    """Step 3, per shown ballot: receipt, record, contents, signature."""
    sim = report.simulation
    keys = (
        {e["voter"]: e.get("public_key") for e in rules["electorate"]}
        if rules is not None
        else None
    )
    unproven = 0
    signed = 0
    for entry, ballot in zip(entries, ballots, strict=True):
        if not ballot.visible:
            continue
        receipt = entry.get("receipt")
        if receipt is None:
            if entry.get("receipt_status", "pending") == "pending":
                report.pending += 1
            unproven += 1
            continue
        name = f"ballot {ballot.record_hash}"
        result = verify_receipt(
            receipt, chain, min_confirmations=confirmations, min_attestations=attestations
        )
        if result.verdict is Verdict.REDACTED:
            unproven += 1
            if result.record_hash != ballot.record_hash:
                report.fail(
                    3,
                    "ballot receipt",
                    TallyVerdict.ALTERED,
                    f"{name}: its receipt proves {result.record_hash}",
                )
            continue
        if result.verdict is not Verdict.VALID:
            report.fail(
                3, "ballot receipt", _receipt_verdict(result.verdict), f"{name}: {result.reason}"
            )
            continue
        record = receipt["record"]
        body = record["body"]
        problem = None
        if result.record_hash != ballot.record_hash:
            problem = f"its receipt is of another record, {result.record_hash}"
        elif record["log"] != LOG or record["type"] != BALLOT:
            problem = f"it is a {record['type']!r} record of the {record['log']!r} log"
        elif record["subject"] != f"{sim}/{ballot.voter}":
            problem = f"its record is about {record['subject']!r}, not {sim}/{ballot.voter}"
        elif not isinstance(body, Mapping) or not _same(
            {k: body.get(k) for k in ("simulation", *_BALLOT_CONTENT)},
            {
                "simulation": sim,
                "voter": ballot.voter,
                "choices": ballot.choices,
                "nonce": ballot.nonce,
            },
        ):
            problem = "the listing shows other contents than its anchored record"
        if problem is not None:
            report.fail(3, "ballot record", TallyVerdict.ALTERED, f"{name}: {problem}")
            continue
        ballot.proven, ballot.seq = True, record["seq"]
        if keys is None:
            continue
        key = keys.get(ballot.voter)
        assert ballot.voter is not None and ballot.nonce is not None
        if key is None:
            report.fail(
                3,
                "ballot signature",
                TallyVerdict.SIGNATURE_INVALID,
                f"{name}: {ballot.voter} is not in the electorate of the opened record",
            )
        elif not verify_ballot_signature(
            key, sim or "", ballot.voter, ballot.choices, ballot.nonce, body.get("signature")
        ):
            report.fail(
                3,
                "ballot signature",
                TallyVerdict.SIGNATURE_INVALID,
                f"{name}: {ballot.voter}'s signature does not verify under the key in the "
                "opened record",
            )
        else:
            signed += 1
    shown = sum(b.visible for b in ballots)
    proven = sum(b.proven for b in ballots)
    hidden = len(ballots) - shown
    detail = f"{proven} of {_many(len(ballots), 'listed ballot')} proven by their receipts"
    if hidden:
        detail += f"; {hidden} with hidden contents"
    if unproven:
        detail += f"; {unproven} shown without a receipt to prove them"
    report.passed(3, "ballot receipts", detail)
    if keys is not None and proven:
        report.passed(
            3,
            "ballot signatures",
            f"{signed} of {proven} proven ballots carry their voter's valid Ed25519 signature",
        )


def _counted(report: _Report, ballots: list[_Ballot]) -> list[_Ballot]:
    """The counted ballots: from the records when all are proven, else the listing's marks."""
    if ballots and all(b.proven for b in ballots):
        report.root_step = 3
        latest: dict[str, _Ballot] = {}
        for ballot in ballots:
            assert ballot.voter is not None
            if ballot.voter not in latest or ballot.seq > latest[ballot.voter].seq:
                latest[ballot.voter] = ballot
        counted = list(latest.values())
        chosen = {b.record_hash for b in counted}
        marked = [b.record_hash for b in ballots if b.superseded == (b.record_hash in chosen)]
        how = "each voter's latest ballot (highest seq of their trail)"
        if marked:
            report.notes.append(
                "the listing's superseded marks disagree with the ballots' order for "
                + _short(marked)
            )
    else:
        counted = [b for b in ballots if not b.superseded]
        how = "the ballots the listing does not mark superseded"
        voters = Counter(b.voter for b in counted if b.voter is not None)
        twice = sorted(v for v, n in voters.items() if n > 1)
        if twice:
            report.fail(
                report.root_step,
                "counted ballots",
                TallyVerdict.RECOUNT_MISMATCH,
                f"the listing counts more than one ballot of {_short(twice)}",
            )
    report.passed(report.root_step, "counted ballots", f"{_many(len(counted), 'ballot')}: {how}")
    return counted


def _check_root(
    report: _Report,
    body: Mapping[str, Any],
    counted: list[_Ballot],
    rest: Sequence[Mapping[str, Any]],
) -> None:
    leaves = sorted(b.record_hash for b in counted)
    report.counted = leaves
    root = merkle_root([bytes.fromhex(h) for h in leaves]).hex()
    if root != body["counted_root"]:
        report.fail(
            report.root_step,
            "counted root",
            TallyVerdict.ROOT_MISMATCH,
            f"the Merkle Tree Hash of the {_many(len(leaves), 'counted ballot')} is {root}; the "
            f"tally record says counted_root {body['counted_root']}",
        )
    else:
        report.passed(
            report.root_step,
            "counted root",
            f"{root} is the Merkle Tree Hash of the {_many(len(leaves), 'counted ballot')}' leaf "
            "hashes in ascending order",
        )
    if body["ballots_counted"] != len(counted):
        report.fail(
            report.root_step,
            "ballots counted",
            TallyVerdict.RECOUNT_MISMATCH,
            f"the tally record says {body['ballots_counted']} ballots counted; there are "
            f"{len(counted)}",
        )
    closed = [r for r in rest if r["type"] == CLOSED and isinstance(r["body"], Mapping)]
    if closed and "ballots" in closed[-1]["body"]:
        received = closed[-1]["body"]["ballots"]
        if received != body["ballots_counted"]:
            report.fail(
                report.root_step,
                "ballots counted",
                TallyVerdict.RECOUNT_MISMATCH,
                f"{received} ballots were received at closing, {body['ballots_counted']} counted",
            )


def _differences(anchored: Any, recounted: Any) -> list[str]:
    if isinstance(anchored, Mapping) and isinstance(recounted, Mapping):
        keys = list(dict.fromkeys([*recounted, *anchored]))
        return [
            f"{k}: anchored {anchored.get(k)!r}, recount {recounted.get(k)!r}"
            for k in keys
            if not _same(anchored.get(k), recounted.get(k))
        ]
    return [f"anchored {anchored!r}, recount {recounted!r}"]


def _recount(
    report: _Report,
    body: Mapping[str, Any],
    counted: list[_Ballot],
    rules: dict[str, Any] | None,
) -> None:
    hidden = sum(not b.visible for b in counted)
    if rules is None:
        report.notes.append("without the opened rule set the outcome was not recounted")
        return
    if hidden:
        report.notes.append(
            f"the outcome cannot be recounted: the contents of {hidden} of "
            f"{_many(len(counted), 'counted ballot')} are hidden (secret mode; an inspector's "
            "token shows them after closing)"
        )
        return
    if any(not b.proven for b in counted):
        report.notes.append(
            "the recount used contents the listing shows without a receipt for some ballots"
        )
    for ballot in counted:
        try:
            check_ballot(rules, ballot.choices)
        except BallotInvalid as exc:
            report.fail(
                3,
                "recount",
                TallyVerdict.RECOUNT_MISMATCH,
                f"counted ballot {ballot.record_hash} breaks the rules: {exc.reason}: {exc.message}",
            )
        except (KeyError, TypeError, ValueError) as exc:
            report.fail(
                3,
                "recount",
                TallyVerdict.RECOUNT_MISMATCH,
                f"the opened rule set cannot check ballots: {exc!r}",
            )
            return
    try:
        recount = tally(rules, {str(b.voter): b.choices for b in counted})
    except (VotingError, KeyError, TypeError, ValueError) as exc:
        report.fail(
            3,
            "recount",
            TallyVerdict.RECOUNT_MISMATCH,
            f"the tally cannot be run on the opened rule set and the counted ballots: {exc}",
        )
        return
    report.recounted = True
    problems = []
    if body["rule"] != rules.get("rule"):
        problems.append(f"rule: anchored {body['rule']!r}, opened {rules.get('rule')!r}")
    for member in ("counts", "outcome"):
        problems += [f"{member} {d}" for d in _differences(body[member], recount[member])]
    if problems:
        report.fail(
            3,
            "recount",
            TallyVerdict.RECOUNT_MISMATCH,
            f"the recount differs from the anchored tally: {_short(problems)}",
        )
    else:
        report.passed(
            3,
            "recount",
            f"core.voting.tally.tally on the opened rule set and the {_many(len(counted), 'counted ballot')} "
            "gives the anchored counts and outcome",
        )


# -- 5. my ballot ---------------------------------------------------------------------------


def _prove_mine(
    report: _Report,
    body: Mapping[str, Any],
    ballots: list[_Ballot],
    counted: list[_Ballot],
    mine: str,
) -> None:
    leaves = report.counted or []
    if mine in leaves:
        index = leaves.index(mine)
        hashes = [bytes.fromhex(h) for h in leaves]
        path = inclusion_path(hashes, index)
        root = body["counted_root"]
        if verify_inclusion(hashes[index], index, len(hashes), path, bytes.fromhex(root)):
            report.my_ballot = InclusionProof(
                mine, index, len(leaves), [p.hex() for p in path], root
            )
            report.passed(
                5,
                "my ballot",
                f"{mine} is leaf {index} of the {_many(len(leaves), 'counted ballot')} "
                f"(ascending leaf hashes); its path of {_many(len(path), 'hash', 'hashes')} "
                f"gives counted_root {root}",
            )
        else:
            report.fail(
                5,
                "my ballot",
                TallyVerdict.ROOT_MISMATCH,
                f"{mine} is among the counted ballots, but they do not give the anchored "
                f"counted_root {root}",
            )
        return
    listed = next((b for b in ballots if b.record_hash == mine), None)
    if listed is None:
        why = "it is not among the simulation's ballots"
    else:
        later = [b for b in counted if b.voter is not None and b.voter == listed.voter]
        why = "it was superseded by a later ballot of the same voter" + (
            f" ({later[0].record_hash})" if later else ""
        )
    report.fail(5, "my ballot", TallyVerdict.NOT_COUNTED, f"{mine} was not counted: {why}")


# -- the whole check ---------------------------------------------------------------------------


def verify_tally(
    simulation: Mapping[str, Any],
    tally_receipt: Any,
    opened_receipt: Any | None,
    ballot_entries: Sequence[Any],
    chain: ChainReader,
    *,
    my_ballot: str | None = None,
    between_receipts: Sequence[Any] | None = None,
    min_confirmations: int = 0,
    min_attestations: int = 0,
) -> TallyVerification:
    """Check a simulation's tally; see the module docstring for the steps and verdicts.

    ``simulation`` is the service's ``GET /api/v1/simulations/{id}`` answer; ``tally_receipt``
    and ``opened_receipt`` the §4 receipts of its ``simulation.tallied`` and
    ``simulation.opened`` records; ``between_receipts`` those of the records between them in
    seq order (``simulation.closed``), to check the trail's links; ``ballot_entries`` the
    ballot listing's entries, each with the ballot's ``receipt`` when its contents are shown
    (None with ``receipt_status`` ``pending`` or ``hidden`` when the service gave none).
    Raises only when the chain cannot be asked (``VerificationError``).
    """
    sim = simulation.get("id") if isinstance(simulation, Mapping) else None
    report = _Report(sim if isinstance(sim, str) else None)
    if report.simulation is None:
        report.fail(1, "simulation", TallyVerdict.MALFORMED, "the simulation has no id")
        return report.result()
    chain = AskOnce(chain)
    k, w = min_confirmations, min_attestations
    tallied = _check_tally(report, simulation, tally_receipt, chain, k, w)
    if tallied is None:
        return report.result()
    body = tallied["body"]
    rules, rest = _check_opened(report, tallied, opened_receipt, between_receipts, chain, k, w)
    ballots = _read_listing(report, list(ballot_entries))
    if ballots is None:
        return report.result()
    _check_ballot_records(report, ballot_entries, ballots, rules, chain, k, w)
    counted = _counted(report, ballots)
    _check_root(report, body, counted, rest)
    _recount(report, body, counted, rules)
    if my_ballot is not None:
        _prove_mine(report, body, ballots, counted, my_ballot)
    return report.result()


def tally_pending(simulation: str, record_hash: str, detail: str) -> TallyVerification:
    """The answer while the tally record itself is not anchored yet (no receipt)."""
    check = TallyCheck(1, "tally receipt", True, f"{record_hash}: {detail}")
    return TallyVerification(
        TallyVerdict.PENDING,
        simulation,
        f"the tally record {record_hash} is not anchored yet: {detail}",
        [check],
        tally_record=record_hash,
    )
