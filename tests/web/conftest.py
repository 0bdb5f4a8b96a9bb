"""Fixtures for the browser verifier's tests (verifier/web, issue 17 items 4 and 5).

* ``js``: one long-lived node process running tests/web/js/oracle.mjs, asked one JSON line at
  a time (``js.ask({...})``), so property tests do not start a process per example;
* ``keys``: a test log key and witness keys, with ``cosigned(size, root)`` making the C2SP
  checkpoint of PROTOCOL §9 for the assets' log, signed and cosigned;
* ``portal`` and ``browser`` (tests/fixtures/browser.py): the session's one running service
  and one Chromium, shared with tests/portal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.checkpoint import Checkpoint, sign_checkpoint
from core.cosignature import Cosigner
from core.note import Ed25519Signer

ROOT = Path(__file__).resolve().parents[2]
ORACLE = Path(__file__).with_name("js") / "oracle.mjs"
DIST = ROOT / "api" / "portal" / "static" / "dist" / "civic-verify.js"
ORIGIN = "civic-ledger.localhost/suggestions"


def need_node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the browser verifier's tests need node (Node.js 20) on PATH")
    if not (ROOT / "node_modules" / "@noble" / "curves").is_dir():
        pytest.skip("node_modules lacks @noble/curves: run ./scripts/setup")
    return node


class Oracle:
    def __init__(self, node: str) -> None:
        self.proc = subprocess.Popen(
            [node, str(ORACLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
        )

    def ask(self, request: dict[str, Any]) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request, ensure_ascii=True) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        answer = json.loads(line)
        assert "crash" not in answer, answer["crash"]
        return answer

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def js() -> Iterator[Oracle]:
    oracle = Oracle(need_node())
    try:
        yield oracle
    finally:
        oracle.close()


@dataclass
class Keys:
    """A log key named ORIGIN and two witnesses (fixed seeds: the tests are repeatable)."""

    log: Ed25519Signer = field(default_factory=lambda: Ed25519Signer(ORIGIN, bytes(range(32))))
    witnesses: list[Cosigner] = field(
        default_factory=lambda: [
            Cosigner("witness-a.example", bytes([1] * 32)),
            Cosigner("witness-b.example", bytes([2] * 32)),
        ]
    )
    stranger: Cosigner = field(
        default_factory=lambda: Cosigner("stranger.example", bytes([3] * 32))
    )

    def trust(self, quorum: int = 1) -> dict[str, Any]:
        return {
            "logKey": self.log.verifier_key,
            "witnesses": [w.verifier_key for w in self.witnesses],
            "quorum": quorum,
        }

    def cosigned(self, size: int, root: bytes, *, witnesses: list[Cosigner] | None = None) -> str:
        note = sign_checkpoint(Checkpoint(ORIGIN, size, root), self.log)
        text = Checkpoint(ORIGIN, size, root).text
        lines = "".join(
            w.cosign(text, 1_764_000_000).line
            for w in (self.witnesses if witnesses is None else witnesses)
        )
        return note + lines


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


__all__ = ["Keys", "Oracle"]
