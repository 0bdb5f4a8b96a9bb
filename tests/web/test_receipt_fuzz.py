"""Receipts changed at random (a member's value replaced by another JSON value, a member
removed or added, the checkpoint's text edited): the browser's verdict equals
``verifier.receipt.verify_receipt``'s offline, as JSON text so that both read the same
numbers (``1.0`` is a float to both, ``2**64`` an integer)."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from tests.verifier.assets import load
from tests.web.conftest import Keys, Oracle
from tests.web.test_cross_verdicts import honest_sizes
from tests.web.trails import with_checkpoints
from verifier.checkpoint import trust_from_keys
from verifier.receipt import verify_receipt_json

VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    7,
    2**53,
    2**64,
    2**70,
    "",
    "x",
    "0" * 64,
    "A" * 64,
    [],
    {},
    ["0" * 64],
    "0x" + "ab" * 20,
    "2026-02-30T00:00:00.000Z",
    "2026-11-27T09:30:00.123Z",
]
FLOATS = ["1.0", "1e3", "-0.5"]


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at] if at else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += paths(item, (*at, i))
    return found


def mutated(receipt: dict[str, Any], rng: random.Random) -> str:
    receipt = copy.deepcopy(receipt)
    path = rng.choice(paths(receipt))
    parent: Any = receipt
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    choice = rng.random()
    marker = None
    if choice < 0.15 and isinstance(parent, dict):
        del parent[last]
    elif choice < 0.25 and isinstance(parent, dict):
        parent["extra_" + str(rng.randrange(3))] = rng.choice(VALUES)
    elif choice < 0.35:
        marker = "__FLOAT__"
        parent[last] = marker
    elif choice < 0.5 and isinstance(parent[last], str) and parent[last]:
        text = parent[last]
        i = rng.randrange(len(text))
        parent[last] = text[:i] + rng.choice("0aZ+/=\n—") + text[i + 1 :]
    else:
        parent[last] = rng.choice(VALUES)
    text = json.dumps(receipt, ensure_ascii=False)
    if marker:
        text = text.replace(json.dumps(marker), rng.choice(FLOATS))
    return text


def test_mutated_receipts_get_the_python_verdict(js: Oracle, keys: Keys) -> None:
    rng = random.Random(4711)
    trust = keys.trust(1)
    checkpoint_trust = trust_from_keys(trust["logKey"], trust["witnesses"], trust["quorum"])
    sizes = honest_sizes()
    bases = [
        with_checkpoints(load(name), keys, sizes)
        for name in ("receipt.json", "receipt-redacted.json")
    ]
    seen: dict[str, int] = {}
    for case in range(600):
        text = mutated(bases[case % 2], rng)
        expected = verify_receipt_json(text, None, trust=checkpoint_trust)
        answer = js.ask({"op": "receipt", "receipt": text, "trust": trust})
        assert (answer["verdict"], answer["record_hash"]) == (
            expected.verdict.value,
            expected.record_hash,
        ), (case, text[:600], answer["reason"], expected.reason)
        seen[expected.verdict.value] = seen.get(expected.verdict.value, 0) + 1
    assert {"valid", "malformed", "altered", "bad_signature"} <= set(seen), seen
