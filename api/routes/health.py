from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ReadSessionDep, StateDep
from api.state import AppState
from ledger import reanchor, service
from ledger import repository as repo

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


@router.get(
    "/healthz",
    summary="Database, chain and anchoring worker, with the anchoring lag",
    responses={
        200: {
            "description": "all is well",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        503: {
            "description": "a part is down (chain, anchoring worker or writer); the body says which",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
def healthz(session: ReadSessionDep, state: StateDep) -> Any:
    """200 when all is well, 503 when a part is down (the body says which): the chain or the
    anchoring worker (records are accepted but not anchored), or the writer process (the
    hot writes are refused until it is back), so a monitor can page someone."""
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
    ok = (
        body["database"]["ok"]
        and body["chain"].get("ok", False)
        and body["worker"]["ok"]
        and body["writer"]["ok"]
    )
    body["status"] = "ok" if ok else "degraded"
    return JSONResponse(body, status_code=200 if ok else 503)
