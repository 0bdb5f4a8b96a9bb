from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import ReadSessionDep, RequireRole, StateDep
from api.state import AppState
from core.records import LOGS
from ledger import reanchor, service, witnesses
from ledger import repository as repo
from ledger.auth import Role

router = APIRouter(tags=["health"])


def _writer(state: AppState) -> dict[str, Any]:
    """Whether the writer process takes connections (api.writer); a writer thread of this
    process when there is no writer process."""
    if state.writer_client is None:
        return {"ok": True, "mode": "thread"}
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(0.5)
    try:
        probe.connect(str(state.writer_client.path))
    except OSError as exc:
        return {"ok": False, "mode": "process", "error": f"{type(exc).__name__}: {exc}"}
    finally:
        probe.close()
    return {"ok": True, "mode": "process"}


def _health(session: Session, state: AppState) -> tuple[bool, dict[str, Any]]:
    """Whether all is well, and every part's detail (addresses, workers, errors)."""
    now = datetime.now(UTC)
    body: dict[str, Any] = {}
    expected: list[reanchor.ExpectedAnchor] = []
    try:
        session.execute(text("SELECT 1"))
        body["database"] = {"ok": True, "backend": state.engine.dialect.name}
        lag = service.anchoring_lag(session, now)
        workers = repo.worker_statuses(session)
        expected = reanchor.expected_anchors(session)
    except Exception as exc:
        body["database"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        lag, workers = {}, []
    body["chain"] = state.chain_probe.status(expected)
    stale_after = timedelta(seconds=max(10.0, 5 * state.settings.anchor_interval))
    worker: dict[str, Any] = {}
    for status in workers:
        age = (now - status.heartbeat_at).total_seconds()
        worker[status.log] = {
            "worker": status.worker_id,
            "state": status.state if age < stale_after.total_seconds() else "stopped",
            "detail": status.detail,
            "heartbeat_age_seconds": round(age, 3),
        }
    body["worker"] = {
        "ok": bool(worker) and all(w["state"] in {"idle", "anchoring"} for w in worker.values()),
        "logs": worker,
    }
    body["anchoring"] = lag
    body["writer"] = _writer(state)
    body["witnesses"] = _witnesses(session, state)
    ok = bool(
        body["database"]["ok"]
        and body["chain"].get("ok", False)
        and body["worker"]["ok"]
        and body["writer"]["ok"]
    )
    body["status"] = "ok" if ok else "degraded"
    return ok, body


def _witnesses(session: Session, state: AppState) -> dict[str, Any]:
    """Each witness's lag per log (``ledger.witnesses.lag``). Informative: a witness away
    does not stop records being accepted or anchored, so it does not make the service
    degraded; ``ok`` says whether the quorum cosigned every log's latest anchored batch."""
    named = state.settings.witness_list
    if not named:
        return {"ok": True, "quorum": 0, "witnesses": {}}
    try:
        report = witnesses.lag(session, named, LOGS)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    quorum = state.settings.resolved_witness_quorum
    up_to_date = {
        log: sum(1 for w in report.values() if w["logs"][log]["batches_behind"] == 0)
        for log in LOGS
    }
    return {
        "ok": all(count >= quorum for count in up_to_date.values()),
        "quorum": quorum,
        "witnesses": report,
    }


_PLAIN = {
    "type": "object",
    "required": ["status", "database", "chain", "worker", "writer"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        **{part: {"type": "boolean"} for part in ("database", "chain", "worker", "writer")},
    },
}


@router.get(
    "/healthz",
    summary="Whether the database, the chain, the anchoring worker and the writer are well",
    responses={
        200: {
            "description": "all is well",
            "content": {"application/json": {"schema": _PLAIN}},
        },
        503: {
            "description": "a part is down (chain, anchoring worker or writer); the body says which",
            "content": {"application/json": {"schema": _PLAIN}},
        },
    },
)
def healthz(session: ReadSessionDep, state: StateDep) -> Any:
    """200 when all is well, 503 when a part is down: the chain or the anchoring worker
    (records are accepted but not anchored), or the writer process (the hot writes are refused
    until it is back), so a monitor can page someone. Public, so it says only which part is
    down (booleans): addresses, host names, process ids and errors are in ``/healthz/detail``,
    for admins and inspectors."""
    ok, body = _health(session, state)
    plain = {"status": body["status"]} | {
        part: bool(body[part]["ok"]) for part in ("database", "chain", "worker", "writer")
    }
    return JSONResponse(plain, status_code=200 if ok else 503)


@router.get(
    "/healthz/detail",
    summary="The health of every part in detail, with the anchoring lag (admins, inspectors)",
    dependencies=[Depends(RequireRole(Role.ADMIN, Role.INSPECTOR))],
    responses={
        200: {
            "description": "all is well",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        401: {"description": "no, bad or expired token"},
        403: {"description": "not an admin or inspector"},
        503: {
            "description": "a part is down; the body says which and why",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
def healthz_detail(session: ReadSessionDep, state: StateDep) -> Any:
    """What ``/healthz`` says, with each part's detail: the database backend, the chain's
    address, block and registry check (``reanchor_needed`` with the command when the chain
    lost our anchors), each log's worker (host and process), state and heartbeat, the
    anchoring lag per log, and the writer's mode; errors as they were raised."""
    ok, body = _health(session, state)
    return JSONResponse(body, status_code=200 if ok else 503)
