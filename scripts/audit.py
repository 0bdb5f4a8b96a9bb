"""pip-audit over the installed environment, as ./scripts/test runs it (docs/SECURITY.md).

Fails (exit 1) when:

* a known vulnerability affects an installed package, unless its id is in ``IGNORED`` below
  with the reason it does not apply;
* PyPI (pip-audit's vulnerability source) cannot be reached: CI has PyPI access, so an audit
  that could not run is a failure, not a pass. ``CIVIC_AUDIT_OFFLINE=1`` turns that into a
  warning for work without a network.

pip-audit asks PyPI's per-version JSON (``/pypi/<name>/<version>/json``). Where that answers
404 (seen here: the PyPI this machine reaches serves only the project-level JSON, so pip-audit
skipped every package), the project-level JSON (``/pypi/<name>/json``) still lists the known
vulnerabilities of the *latest* release: a package installed at that release is audited from
it. Packages at an older version that PyPI will not describe cannot be audited: they are
listed, loudly, but do not fail the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

#: Vulnerability ids accepted on purpose, each with why: none at present.
IGNORED: dict[str, str] = {}

_OFFLINE_SIGNS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "timed out",
)


def _latest_release_vulns(dependency: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The known vulnerabilities of ``dependency`` from PyPI's project-level JSON, when it is
    installed at the latest release (which is what that document describes); else None."""
    try:
        installed = dependency.get("version") or metadata.version(dependency["name"])
    except metadata.PackageNotFoundError:
        return None
    url = f"https://pypi.org/pypi/{dependency['name']}/json"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            project = json.load(answer)
    except (urllib.error.URLError, TimeoutError, ValueError):
        return None
    if project.get("info", {}).get("version") != installed:
        return None
    dependency["version"] = installed
    return [
        {"id": vuln.get("id"), "fix_versions": vuln.get("fixed_in") or []}
        for vuln in project.get("vulnerabilities") or []
        if not vuln.get("withdrawn") and vuln.get("id") not in IGNORED
    ]


def _audit_latest_releases(skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fill ``vulns`` of the skipped dependencies that the project-level JSON can audit; the
    ones it audited are returned."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(_latest_release_vulns, skipped))
    audited = []
    for dependency, vulns in zip(skipped, found, strict=True):
        if vulns is not None:
            dependency["vulns"] = vulns
            del dependency["skip_reason"]
            audited.append(dependency)
    return audited


def main() -> int:
    command = [
        str(ROOT / ".venv/bin/pip-audit"),
        "--skip-editable",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ]
    for vuln_id in IGNORED:
        command += ["--ignore-vuln", vuln_id]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = None
    if report is None:
        offline = any(sign in done.stderr for sign in _OFFLINE_SIGNS)
        reason = "PyPI cannot be reached" if offline else "pip-audit failed"
        print(f"pip-audit: {reason}; no audit was made.", file=sys.stderr)
        print("\n".join(done.stderr.strip().splitlines()[-5:]), file=sys.stderr)
        if offline and os.environ.get("CIVIC_AUDIT_OFFLINE") == "1":
            print("pip-audit: CIVIC_AUDIT_OFFLINE=1, so carrying on without it.", file=sys.stderr)
            return 0
        return 1
    dependencies = report.get("dependencies", [])
    from_latest = _audit_latest_releases(
        [d for d in dependencies if "not found on PyPI" in d.get("skip_reason", "")]
    )
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = len(dependencies) - len(skipped)
    not_on_pypi = [d for d in skipped if "not found on PyPI" in d["skip_reason"]]
    other_skips = [d for d in skipped if d not in not_on_pypi]
    print(
        f"pip-audit: {audited} of {len(dependencies)} installed packages audited "
        f"({len(from_latest)} of them from PyPI's project JSON, being at the latest release)"
    )
    if not_on_pypi:
        names = ", ".join(d["name"] for d in not_on_pypi)
        print(
            f"pip-audit: WARNING: {len(not_on_pypi)} not audited, as PyPI does not know them at "
            f"these versions (local wheels?): {names}"
        )
    for dependency in other_skips:
        print(f"pip-audit: not audited: {dependency['name']}: {dependency['skip_reason']}")
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            print(
                f"pip-audit: VULNERABLE {dependency['name']} {dependency['version']}: "
                f"{vuln['id']} (fixed in {fixes})",
                file=sys.stderr,
            )
    if vulnerable:
        print(
            "pip-audit: raise the pin in pyproject.toml, or add the id to IGNORED in "
            "scripts/audit.py with the reason it does not apply",
            file=sys.stderr,
        )
        return 1
    print("pip-audit: no known vulnerabilities in what was audited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
