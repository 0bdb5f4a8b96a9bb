from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import OptionalPrincipal, StateDep, run_read
from ledger import service
from ledger.db import DriverReader
from ledger.repository import StoredRecord
from ledger.service import ReceiptPending
from ledger.settings import Settings
from voting import service as voting_service

router = APIRouter(prefix="/api/v1", tags=["records"])

RecordHash = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{64}$",
        description="PROTOCOL §2 leaf hash: 64 lowercase hexadecimal characters",
    ),
]


def receipt_url(settings: Settings, record_hash: str) -> str:
    """Where a record's receipt is fetched, under the configured public URL: never built from
    the Host header, which the client chooses."""
    return f"{settings.resolved_public_url}/api/v1/records/{record_hash}/receipt"


@router.get(
    "/records/{record_hash}/receipt",
    name="record_receipt",
    summary="The PROTOCOL §4 receipt of a record",
    responses={
        202: {"description": 'stored, not anchored yet: {"status": "pending"}'},
        404: {"description": "no record has this hash"},
        422: {"description": "not a 64-character lowercase hex hash"},
    },
)
async def record_receipt(
    record_hash: RecordHash, state: StateDep, principal: OptionalPrincipal
) -> Any:
    def read(reader: DriverReader) -> tuple[StoredRecord, dict[str, Any] | ReceiptPending]:
        row = service.stored_record(reader, record_hash)
        return row, service.receipt_for(reader, row)

    row, result = await run_read(state, read, driver=True)
    if voting_service.is_ballot(row):  # before anything of it is answered
        await run_read(
            state, lambda session: voting_service.guard_ballot_record(session, row, principal)
        )
    if isinstance(result, ReceiptPending):
        return JSONResponse(
            {"status": "pending", "record_hash": result.record_hash, "detail": result.detail},
            status_code=202,
        )
    return result
