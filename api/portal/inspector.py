"""The inspectors' page (``/inspector``): start an audit of the whole store and read its report.

The audit is the very one ``civic-verify audit`` runs (``verifier.audit.audit_store``): a
read-only connection to the store, every batch root compared with the chain, every trail
walked. The API may import the verifier (the import-linter layers allow it); only
``verifier.audit`` touches the store reader. An audit runs in a daemon thread of the API
process; its progress lives in memory (the API is one process), and its finished report is
also written to ``$CIVIC_DATA_DIR/audits/<id>.json``, so reports outlive a restart. An audit
still running when the process stops is lost (start it again).
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.portal.csrf import verify_csrf
from api.portal.errors import PageError
from api.portal.render import render
from api.portal.workbench import signed_in_as
from api.state import made_once
from ledger.auth import Role
from ledger.deployment import contract_address
from verifier.audit import audit_store
from verifier.audit.reading import open_store
from verifier.chain import Web3ChainReader
from verifier.errors import VerificationError

_ID_CHARS = "0123456789abcdefghjkmnpqrstvwxyz"
#: keep this many finished audits in memory (older ones stay on disk)
KEEP = 20


@dataclass
class AuditRun:
    """One audit: who started it, how far it is, and its report once finished."""

    id: str
    started_by: str
    started_at: datetime
    state: str = "running"  # running | finished | failed
    done: int = 0
    total: int = 0
    finished_at: datetime | None = None
    report: dict[str, Any] | None = None
    error: str | None = None

    @property
    def percent(self) -> int:
        if self.state != "running":
            return 100
        return int(100 * self.done / self.total) if self.total else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "report": self.report,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRun:
        finished = data.get("finished_at")
        return cls(
            id=data["id"],
            started_by=data["started_by"],
            started_at=datetime.fromisoformat(data["started_at"]),
            state=data["state"],
            done=data.get("done", 0),
            total=data.get("total", 0),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            report=data.get("report"),
            error=data.get("error"),
        )


@dataclass
class AuditRunner:
    """Starts audits and remembers them. One audit at a time: a second start while one
    runs returns the running one (an audit reads the whole store; two would only compete)."""

    database_url: str
    chain_rpc: str
    contract: str | None
    directory: Path
    deadline: timedelta = timedelta(minutes=10)
    timeout: float = 10.0
    _runs: dict[str, AuditRun] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, started_by: str) -> AuditRun:
        with self._lock:
            running = next((r for r in self._runs.values() if r.state == "running"), None)
            if running is not None:
                return replace(running)
            run = AuditRun(
                id="AUD-" + "".join(secrets.choice(_ID_CHARS) for _ in range(8)),
                started_by=started_by,
                started_at=datetime.now(UTC),
            )
            self._runs[run.id] = run
            for old in sorted(self._runs.values(), key=lambda r: r.started_at)[:-KEEP]:
                del self._runs[old.id]
        threading.Thread(target=self._run, args=(run,), name=run.id, daemon=True).start()
        return run

    def _run(self, run: AuditRun) -> None:
        def progress(done: int, total: int) -> None:
            run.done, run.total = done, total

        report: dict[str, Any] | None = None
        error: str | None = None
        try:
            chain = Web3ChainReader(self.chain_rpc, self.timeout)
            with open_store(self.database_url) as store:
                report = audit_store(
                    store,
                    chain,
                    contract=self.contract,
                    unanchored_deadline=self.deadline,
                    progress=progress,
                ).to_dict()
        except VerificationError as exc:  # store or chain unreachable: no audit was made
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug must still end the run, not leave it "running"
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:  # a page sees the run before or after this, never half of it
            run.report, run.error = report, error
            run.state = "failed" if error else "finished"
            run.finished_at = datetime.now(UTC)
            finished = replace(run)
        self._save(finished)

    def _save(self, run: AuditRun) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{run.id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(run.to_dict(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def get(self, run_id: str) -> AuditRun | None:
        """A consistent copy of the run (from memory, else from its saved report)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                return replace(run)
        if not run_id.startswith("AUD-") or not run_id[4:].isalnum():
            return None
        path = self.directory / f"{run_id}.json"
        if not path.is_file():
            return None
        return AuditRun.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def recent(self, limit: int = 10) -> list[AuditRun]:
        """The latest audits, newest first: those in memory and those saved on disk."""
        with self._lock:
            runs = {key: replace(run) for key, run in self._runs.items()}
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("AUD-*.json"))[-50:]:
                if path.stem not in runs:
                    try:
                        runs[path.stem] = AuditRun.from_dict(
                            json.loads(path.read_text(encoding="utf-8"))
                        )
                    except (ValueError, KeyError):
                        continue
        return sorted(runs.values(), key=lambda r: r.started_at, reverse=True)[:limit]


# -- the pages ------------------------------------------------------------------------------

router = APIRouter()
INSPECTORS = frozenset({Role.INSPECTOR})


def audit_runner(request: Request) -> AuditRunner:
    """The app's runner, made at first use from the settings (store URL, chain, contract)."""
    return made_once(
        request.app.state,
        "portal_audit_runner",
        lambda civic: AuditRunner(
            database_url=civic.settings.resolved_database_url,
            chain_rpc=civic.settings.resolved_chain_rpc,
            contract=contract_address(civic.settings),
            directory=civic.settings.resolved_data_dir / "audits",
        ),
    )


@router.get("/inspector", name="portal_inspector")
def inspector(request: Request) -> Response:
    principal = signed_in_as(request, INSPECTORS)
    if isinstance(principal, Response):
        return principal
    runner = audit_runner(request)
    wanted = request.query_params.get("audit")
    run = runner.get(wanted) if wanted else None
    if wanted and run is None:
        raise PageError(404, "staff.insp.not_found.title", "staff.insp.not_found.detail")
    recent = runner.recent()
    if run is None and recent:
        run = recent[0]
    report = run.report if run is not None else None
    findings_by_kind: dict[str, int] = dict(report["counts"]) if report else {}
    return render(
        request,
        "inspector.html",
        run=run,
        report=report,
        findings_by_kind=findings_by_kind,
        recent=recent,
        refresh=run is not None and run.state == "running",
    )


@router.post("/inspector/audits", name="portal_start_audit", dependencies=[Depends(verify_csrf)])
def start_audit(request: Request) -> Response:
    principal = signed_in_as(request, INSPECTORS)
    if isinstance(principal, Response):
        return principal
    run = audit_runner(request).start(principal.id)
    return RedirectResponse(f"/inspector?audit={run.id}", status_code=303)
