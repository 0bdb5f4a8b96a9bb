"""The load tool (scripts/load) against the real service, briefly: no request fails and no
acknowledged record is lost or left unanchored. Correctness only; speed is measured by
./scripts/bench (docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.db import BACKENDS, POSTGRES_URL

pytestmark = pytest.mark.chain

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_load_without_errors_and_every_acknowledged_record_anchored(
    backend: str, tmp_path: Path
) -> None:
    if backend == "postgres" and not POSTGRES_URL:
        pytest.skip("CIVIC_TEST_POSTGRES_URL is not set")
    out = tmp_path / "load.json"
    command = [
        sys.executable,
        str(ROOT / "scripts" / "load.py"),
        "--clients",
        "5",
        "--duration",
        "5",
        "--json",
        str(out),
        "--database",
        "sqlite" if backend == "sqlite" else "postgresql",
    ]
    if backend == "postgres":
        command += ["--database-url", str(POSTGRES_URL)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    (result,) = json.loads(out.read_text())
    assert result["errors"] == 0, result["error_samples"]
    for kind in ("submit", "transition", "trail"):
        assert result["kinds"][kind]["requests"] > 0, kind
    store = result["store"]
    assert (
        store["acknowledged"]
        == result["kinds"]["submit"]["requests"] + (result["kinds"]["transition"]["requests"])
    )
    assert store["acknowledged"] > 0
    assert store["missing"] == []
    assert store["positions_dense"]
    assert store["stored"] == store["anchored"] == store["acknowledged"]
    assert store["ok"]
