"""The committed artifacts in contracts/build are exactly what the sources compile to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import ArtifactNotFound, load_artifact

REPO = Path(__file__).resolve().parents[2]
NAMES = ["AnchorRegistry", "NaiveAnchorRegistry"]
_PUSH0 = 0x5F  # Shanghai's first new opcode: its presence means the code is not london code


def test_committed_artifacts_match_a_fresh_compile() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "compile_contracts"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", NAMES)
def test_artifact_records_how_it_was_built(name: str) -> None:
    raw = json.loads((REPO / "contracts" / "build" / f"{name}.json").read_text())
    assert raw["evmVersion"] == "london"
    assert raw["optimizer"]["enabled"] is True
    assert raw["compiler"].startswith("0.8.37+commit.")
    assert len(raw["sources_sha256"]) == 64
    artifact = load_artifact(name)
    assert artifact.name == name
    assert artifact.bytecode.startswith("0x60") and artifact.deployed_bytecode.startswith("0x60")


def _opcodes(code: bytes) -> list[int]:
    """The opcodes of runtime code, skipping PUSH data and the trailing CBOR metadata."""
    metadata_length = int.from_bytes(code[-2:], "big") + 2
    code = code[:-metadata_length]
    ops, i = [], 0
    while i < len(code):
        op = code[i]
        ops.append(op)
        i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)
    return ops


@pytest.mark.parametrize("name", NAMES)
def test_runtime_code_runs_on_a_london_chain(name: str) -> None:
    code = bytes.fromhex(load_artifact(name).deployed_bytecode[2:])
    assert _PUSH0 not in _opcodes(code)


def test_unknown_and_malformed_names_are_refused() -> None:
    with pytest.raises(ArtifactNotFound, match="run scripts/compile_contracts"):
        load_artifact("NoSuchContract")
    with pytest.raises(ArtifactNotFound, match="not a contract name"):
        load_artifact("../build/AnchorRegistry")


def test_loading_is_cached() -> None:
    assert load_artifact("AnchorRegistry") is load_artifact("AnchorRegistry")
