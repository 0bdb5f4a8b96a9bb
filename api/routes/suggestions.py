from __future__ import annotations

from fastapi import APIRouter, Request, status

from api.deps import SessionDep
from ledger import service
from ledger.schemas import SuggestionAccepted, SuggestionIn

router = APIRouter(prefix="/api/v1", tags=["suggestions"])


@router.post(
    "/suggestions",
    status_code=status.HTTP_201_CREATED,
    response_model=SuggestionAccepted,
    summary="Submit a suggestion (群众提)",
    responses={
        400: {"description": "the body is not valid JSON"},
        413: {"description": "the body is larger than 64 KiB"},
        422: {"description": "a field is missing, of the wrong type, empty or too long"},
    },
)
def submit_suggestion(
    body: SuggestionIn, session: SessionDep, request: Request
) -> SuggestionAccepted:
    """Store the suggestion as the first record of its trail. The answer carries the
    tracking code and the record hash; the receipt follows once the batch is anchored."""
    tracking_code, sealed = service.submit_suggestion(session, body)
    return SuggestionAccepted(
        tracking_code=tracking_code,
        record_hash=sealed.record_hash,
        receipt_url=str(request.url_for("record_receipt", record_hash=sealed.record_hash)),
    )
