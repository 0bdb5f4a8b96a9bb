"""The browser's §5 trail walk (links, seq, time, the published state machine, erased records)
gives ``verifier.trail.verify_trail``'s verdict and first bad record on trails written with the
real core and then erased in places, reordered, cut or rewritten as a faulty service might:
Python checks them against an in-memory chain, JavaScript offline from cosigned checkpoints."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from core.workflow import SuggestionState
from tests.verifier.fakes import (
    LOOP,
    FakeChain,
    SealedLog,
    TrailWriter,
    loop_writer,
    redacted_entry,
    trail_entry,
)
from tests.web.conftest import Keys, Oracle
from verifier.trail import verify_trail

STATES = [s.value for s in SuggestionState]


def wandering(rng: random.Random, steps: int, submitter: str) -> TrailWriter:
    """A trail sealed honestly whose transitions wander anywhere, mostly from where it is."""
    writer = TrailWriter()
    writer.submitted(submitter)
    state = "SUBMITTED"
    for _ in range(steps):
        if rng.random() < 0.15:
            writer.append("suggestion.flagged", "staff", {"flag": "key_supervision", "value": True})
            continue
        frm = state if rng.random() < 0.85 else rng.choice(STATES)
        to = rng.choice(STATES)
        body: dict[str, Any] = {}
        if to in ("ANSWERED", "ANSWERED_DIRECT"):
            body["category"] = rng.choice(["A", "B", "C", "D"])
        if to in ("CLOSED", "REHANDLING") and rng.random() < 0.7:
            body["level"] = rng.choice(["satisfied", "basically_satisfied", "unsatisfied"])
        writer.transition(frm, to, "staff", body)
        state = to
    return writer


def sealed_trail(
    keys: Keys, until: int, submitter: str, batch: int, rng: random.Random | None = None
) -> tuple[list[Any], FakeChain]:
    writer = wandering(rng, until, submitter) if rng else loop_writer(until, submitter)
    records = writer.records
    sizes = [min(batch, len(records) - i) for i in range(0, len(records), batch)]
    log = SealedLog.of(records, sizes)
    checkpoints = {b: keys.cosigned(end, log.root(b)) for b, end in enumerate(log.ends)}
    entries = []
    for index, sealed in enumerate(records):
        receipt = log.receipt(index)
        receipt["checkpoint"] = checkpoints[receipt["proof"]["batch"]]
        entries.append(trail_entry(sealed, receipt))
    return entries, FakeChain().anchor_log(log)


def mutate(entries: list[Any], rng: random.Random) -> tuple[str, list[Any]]:
    entries = copy.deepcopy(entries)
    kind = rng.choice(["none", "erase", "erase2", "swap", "drop", "dup", "to", "at", "from"])
    n = len(entries)
    if kind == "erase":
        i = rng.randrange(n)
        entries[i] = redacted_entry(entries[i])
    elif kind == "erase2" and n > 2:
        for i in rng.sample(range(n), 2):
            entries[i] = redacted_entry(entries[i])
    elif kind == "swap" and n > 2:
        i = rng.randrange(1, n - 1)
        entries[i], entries[i + 1] = entries[i + 1], entries[i]
    elif kind == "drop" and n > 2:
        del entries[rng.randrange(1, n - 1)]
    elif kind == "dup" and n > 1:
        i = rng.randrange(n)
        entries.insert(i, copy.deepcopy(entries[i]))
    elif kind in ("to", "from", "at"):
        i = rng.randrange(1, n) if n > 1 else 0
        record = entries[i]["record"]
        if kind == "at":
            record["at"] = "2020-01-01T00:00:00.000Z"
        elif record["type"] == "suggestion.transition":
            record["body"][kind] = rng.choice(["CLOSED", "ASSIGNED", "SUBMITTED", "NOPE"])
        # a rewritten record no longer hashes to its record_hash: altered, in both
    return kind, entries


def test_trail_walks_agree(js: Oracle, keys: Keys) -> None:
    rng = random.Random(1705)
    trust = keys.trust(2)
    kinds: dict[str, set[str]] = {}
    for case in range(200):
        until = rng.randrange(0, len(LOOP) + 1)
        submitter = rng.choice(["citizen", "deputy"])
        wander = rng if case % 2 else None
        entries, chain = sealed_trail(keys, until, submitter, rng.choice([1, 3, 5]), wander)
        kind, changed = mutate(entries, rng)
        subject = entries[0]["record"]["subject"]
        expected = verify_trail(changed, chain, subject=subject)
        answer = js.ask(
            {
                "op": "trail",
                "answer": json.dumps({"tracking_code": subject, "records": changed, "map": None}),
                "trust": trust,
            }
        )
        got = (answer["trail_verdict"], answer["first_bad"], answer["state"])
        want = (expected.verdict.value, expected.first_bad, expected.state)
        assert got == want, (case, kind, until, submitter, answer["reason"], expected.reason)
        kinds.setdefault(kind, set()).add(expected.verdict.value)
    verdicts = set().union(*kinds.values())
    assert {"valid", "altered", "gap", "broken_link", "illegal_transition"} <= verdicts, kinds
