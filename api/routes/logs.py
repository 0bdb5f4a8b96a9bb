"""The logs' growing trees (PROTOCOL §8), public: consistency proofs between anchored sizes,
and the entries themselves, for monitors that recompute every root."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ReadSessionDep
from ledger import service

router = APIRouter(prefix="/api/v1", tags=["logs"])

Log = Annotated[str, Path(pattern=r"^[a-z]{1,32}$", description="suggestions, votes or access")]
Size = Annotated[int, Query(ge=0, le=2**53 - 1)]


@router.get(
    "/logs/{log}/consistency",
    summary="RFC 9162 consistency proof between two anchored sizes of a log",
    responses={404: {"description": "unknown log"}, 422: {"description": "not anchored sizes"}},
)
def consistency(
    log: Log,
    session: ReadSessionDep,
    from_: Annotated[int, Query(alias="from", ge=1, le=2**53 - 1, description="the older size")],
    to: Annotated[int, Query(ge=1, le=2**53 - 1, description="the newer size")],
) -> dict[str, Any]:
    return service.consistency(session, log, from_, to)


@router.get(
    "/logs/{log}/entries",
    summary=f"Sealed entries [start, end) of a log (at most {service.MAX_ENTRIES}), for monitors",
    responses={404: {"description": "unknown log"}, 422: {"description": "a bad range"}},
)
def entries(log: Log, session: ReadSessionDep, start: Size, end: Size) -> dict[str, Any]:
    return service.entries(session, log, start, end)
