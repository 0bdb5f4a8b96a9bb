"""The browser verifier's own unit tests (tests/web/js/*.test.mjs), run with ``node --test``
so that ``./scripts/test`` covers them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.web.conftest import ROOT, need_node

JS_TESTS = sorted(str(p) for p in (Path(__file__).parent / "js").glob("*.test.mjs"))


def test_node_unit_tests_pass() -> None:
    node = need_node()
    done = subprocess.run(
        [node, "--test", *JS_TESTS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_bundle_exists_and_loads_nothing_from_elsewhere() -> None:
    """scripts/setup builds the bundle; it must not name any other origin to load from."""
    bundle = ROOT / "api" / "portal" / "static" / "dist" / "civic-verify.js"
    assert bundle.is_file(), "run ./scripts/setup (or ./scripts/build-web)"
    text = bundle.read_text(encoding="utf-8")
    assert "CivicVerify" in text
    for needle in ("cdn.", "unpkg", "jsdelivr", "import(", "fetch("):
        assert needle not in text, needle
