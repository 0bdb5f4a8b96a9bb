"""How long the visitor's browser takes to verify a trail (issue 17, "Benchmarks"): a
10-record suggestion trail with its completeness proof (PROTOCOL §11), in Debian's Chromium
driven by Playwright, with the bundle the portal serves (api/portal/static/dist/civic-verify.js).

What is timed is ``CivicVerify.verifyTrail`` on the trail answer text, as the track page calls
it: for each of the 10 records its RFC 8785 bytes, SHA-256 leaf hash and inclusion path, its
checkpoint's log signature and 2 witness cosignatures (Ed25519), the links and the state
machine; then the map head's receipt (the same checks) and the map proof, whose depth is that
of a map of ``other_trails`` + 2 trails. Network time is not included (the page's own
``data-total-ms`` has it). Run: ``.venv/bin/python scripts/bench_browser_verify.py``; from
scripts/bench.py: ``measure()``.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BUNDLE = ROOT / "api" / "portal" / "static" / "dist" / "civic-verify.js"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def measure(runs: int = 30, other_trails: int = 20_000) -> dict[str, Any]:
    """Verify the trail ``runs`` times in one page (after one cold run); times in ms."""
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import Keys
    from tests.web.trails import trail_answer

    keys = Keys()
    answer = trail_answer(keys, records=10, other_trails=other_trails)
    trust = keys.trust(2)
    text = json.dumps(answer, ensure_ascii=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_content("<!doctype html><title>bench</title>")
            page.add_script_tag(path=str(BUNDLE))
            result = page.evaluate(
                """([text, trust, runs]) => {
                  const V = window.CivicVerify;
                  let t = performance.now();
                  const first = V.verifyTrail(text, trust, {});
                  const cold = performance.now() - t;
                  const times = [];
                  for (let i = 0; i < runs; i++) {
                    t = performance.now();
                    const r = V.verifyTrail(text, trust, {});
                    times.push(performance.now() - t);
                    if (r.verdict !== 'complete') throw new Error(r.verdict + ': ' + r.reason);
                  }
                  return {verdict: first.verdict, cold, times};
                }""",
                [text, trust, runs],
            )
        finally:
            browser.close()
    times = sorted(result["times"])
    return {
        "verdict": result["verdict"],
        "records": len(answer["records"]),
        "map_trails": other_trails + 2,
        "map_proof_siblings": len(answer["map"]["proof"]["siblings"]),
        "cold_ms": round(result["cold"], 1),
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
        "bundle_kib": round(BUNDLE.stat().st_size / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
