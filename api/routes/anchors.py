from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import ReadSessionDep
from ledger import service

router = APIRouter(prefix="/api/v1", tags=["anchors"])


@router.get(
    "/anchors/{log}/{batch}",
    summary="One anchored batch: root, size, transaction, block and every leaf hash",
    responses={
        202: {"description": "the batch is sealed and its anchor transaction is under way"},
        404: {"description": "unknown log or batch"},
    },
)
def anchored_batch(
    log: Annotated[str, Path(pattern=r"^[a-z]{1,32}$", description="suggestions, votes or access")],
    batch: Annotated[int, Path(ge=0, le=2**63 - 1, description="batch number, from 0")],
    session: ReadSessionDep,
) -> Any:
    result = service.anchored_batch(session, log, batch)
    if isinstance(result, service.ReceiptPending):
        return JSONResponse({"status": "pending", "detail": result.detail}, status_code=202)
    return result
