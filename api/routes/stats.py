"""Public statistics: aggregate numbers of the workflow, and deputies' records (履职档案)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.deps import ReadSessionDep
from ledger import stats

router = APIRouter(prefix="/api/v1", tags=["statistics"])


@router.get(
    "/stats",
    summary="办结率, on-time and satisfaction rates, median handling days, overdue counts",
    responses={422: {"description": "from is after to, a date is malformed, or by is unknown"}},
)
def suggestion_stats(
    session: ReadSessionDep,
    period_from: Annotated[
        date | None,
        Query(alias="from", description="first day of submission, YYYY-MM-DD (UTC), inclusive"),
    ] = None,
    period_to: Annotated[
        date | None,
        Query(alias="to", description="last day of submission, YYYY-MM-DD (UTC), inclusive"),
    ] = None,
    by: Annotated[
        str | None,
        Query(max_length=16, description="group by district, office (lead office) or deputy"),
    ] = None,
) -> dict[str, Any]:
    """Over the suggestions submitted in the period; the definitions are in ``ledger.stats``."""
    return stats.suggestion_stats(
        session, period_from=period_from, period_to=period_to, by=by, now=datetime.now(UTC)
    )


@router.get(
    "/deputies/{deputy_id}/record",
    summary="A deputy's performance record (履职档案)",
    responses={404: {"description": "no deputy has this account id"}},
)
def deputy_record(
    deputy_id: Annotated[str, Path(min_length=1, max_length=32, description="account id")],
    session: ReadSessionDep,
) -> dict[str, Any]:
    return stats.deputy_record(session, deputy_id, now=datetime.now(UTC))
