from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from api import writes
from api.deps import (
    CurrentPrincipal,
    OptionalPrincipal,
    ReadSessionDep,
    SessionDep,
    StateDep,
    anonymous_rate_limit,
    run_read,
)
from api.routes.records import RecordHash, receipt_url
from core.codes import TRACKING_CODE_PATTERN
from core.workflow import SuggestionState
from ledger import suggestions
from ledger.schemas import FlagIn, RecordAccepted, SuggestionAccepted, SuggestionIn, TransitionIn

router = APIRouter(prefix="/api/v1", tags=["suggestions"])

Code = Annotated[
    str,
    Path(
        pattern=TRACKING_CODE_PATTERN,
        description="tracking code, e.g. SG-7K3M-9QXD-P2WT",
    ),
]


@router.post(
    "/suggestions",
    status_code=status.HTTP_201_CREATED,
    response_model=SuggestionAccepted,
    response_model_exclude_none=True,
    summary="Submit a suggestion (群众提)",
    dependencies=[Depends(anonymous_rate_limit)],
    responses={
        400: {"description": "the body is not valid JSON"},
        401: {"description": "a bearer token was given but is not valid"},
        403: {"description": "only citizens (no token) and deputies submit"},
        409: {"description": "an attachment belongs to another suggestion (it cited it first)"},
        413: {"description": "the body is larger than 64 KiB"},
        422: {
            "description": "a field is missing, of the wrong type, empty or too long, or an "
            "attachment was never uploaded"
        },
        429: {"description": "too many anonymous submissions from this address (whole service)"},
    },
)
async def submit_suggestion(
    body: SuggestionIn,
    state: StateDep,
    principal: OptionalPrincipal,
) -> SuggestionAccepted:
    """Store the suggestion as the first record of its trail. The answer carries the
    tracking code, the record hash and, for a citizen, the private citizen token (shown
    once) that alone allows withdrawing and evaluating it."""
    prepared = suggestions.prepare_submission(body, principal=principal, vault=state.vault)
    done = await writes.submit(state, prepared)
    return SuggestionAccepted(
        tracking_code=done.tracking_code,
        record_hash=done.record_hash,
        receipt_url=receipt_url(state.settings, done.record_hash),
        citizen_token=done.citizen_token,
    )


@router.post(
    "/suggestions/{tracking_code}/transitions",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordAccepted,
    summary="Move a suggestion one step through the workflow",
    responses={
        401: {"description": "no, bad or expired token"},
        403: {"description": "this role, office or deputy may not make this step"},
        404: {"description": "unknown tracking code"},
        409: {
            "description": "the step is not allowed from the current state, or its "
            "reply_sha256 belongs to another suggestion"
        },
        422: {"description": "a field the step needs is missing, or one it does not take is given"},
    },
)
async def transition(
    tracking_code: Code,
    body: TransitionIn,
    state: StateDep,
    principal: CurrentPrincipal,
) -> RecordAccepted:
    done = await writes.transition(state, tracking_code, body, principal)
    return RecordAccepted(
        record_hash=done.record_hash,
        state=done.state,
        receipt_url=receipt_url(state.settings, done.record_hash),
    )


@router.post(
    "/suggestions/{tracking_code}/flags",
    status_code=status.HTTP_201_CREATED,
    summary="Set 重点督办 (key supervision) or 延期 (extension); congress staff",
)
async def set_flags(
    tracking_code: Code, body: FlagIn, state: StateDep, principal: CurrentPrincipal
) -> dict[str, Any]:
    done = await writes.set_flags(state, tracking_code, body, principal)
    return {"record_hashes": done.record_hashes}


@router.get("/suggestions", summary="List suggestions (public view), filtered and paginated")
def list_suggestions(
    session: ReadSessionDep,
    state: Annotated[SuggestionState | None, Query()] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
    office: Annotated[str | None, Query(max_length=32)] = None,
    deputy: Annotated[str | None, Query(max_length=32)] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[bool | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    filters = suggestions.ListFilter(
        state=state,
        district=district,
        office=office,
        deputy=deputy,
        category=category,
        overdue=overdue,
        page=page,
        per_page=per_page,
    )
    return suggestions.list_suggestions(session, filters, datetime.now(UTC))


@router.get(
    "/suggestions/{tracking_code}", summary="One suggestion, public view (no personal data)"
)
async def get_suggestion(tracking_code: Code, state: StateDep) -> dict[str, Any]:
    row = await run_read(state, lambda session: suggestions.get_row(session, tracking_code))
    return suggestions.public_view(row, datetime.now(UTC))


@router.get(
    "/suggestions/{tracking_code}/trail",
    summary="The trail: every record in seq order, with its receipt once anchored",
)
async def get_trail(tracking_code: Code, state: StateDep) -> dict[str, Any]:
    return await run_read(
        state, lambda reader: suggestions.trail(reader, tracking_code), driver=True
    )


@router.get(
    "/suggestions/{tracking_code}/contact",
    summary="The submitter's contact data, for those handling it; every read is recorded",
)
def read_contact(
    tracking_code: Code,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why you read it")],
    session: SessionDep,
    state: StateDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return suggestions.read_private(
        session, tracking_code, "contact", principal=principal, reason=reason, vault=state.vault
    )


@router.get(
    "/suggestions/{tracking_code}/text",
    summary="A confidential suggestion's text, for those handling it; every read is recorded",
)
def read_confidential_text(
    tracking_code: Code,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="why you read it")],
    session: SessionDep,
    state: StateDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return suggestions.read_private(
        session, tracking_code, "text", principal=principal, reason=reason, vault=state.vault
    )


@router.get(
    "/access/{record_hash}/reason",
    summary="Why a personal-data read happened (the reason behind a pii.read record's "
    "commitment); inspectors and admins",
)
def read_access_reason(
    record_hash: RecordHash,
    session: SessionDep,
    state: StateDep,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return suggestions.reading_reason(session, record_hash, principal=principal, vault=state.vault)
