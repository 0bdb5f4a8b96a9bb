from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentPrincipal, RequireRole, SessionDep, StateDep
from ledger import auth
from ledger.auth import Principal, Role
from ledger.schemas import OneLine

router = APIRouter(prefix="/api/v1", tags=["accounts"])
AdminDep = Annotated[Principal, Depends(RequireRole(Role.ADMIN))]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    # Cleaned as every text is (no control characters: a NUL in a name was a 500 on PostgreSQL,
    # which cannot store one); an office is a code as transitions name it.
    name: Annotated[OneLine, Field(min_length=1, max_length=100)]
    office: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")] | None = None
    district: Annotated[OneLine, Field(min_length=1, max_length=64)] | None = None


@router.post("/accounts", status_code=status.HTTP_201_CREATED, summary="Create an account (admin)")
def create_account(
    body: AccountIn, session: SessionDep, state: StateDep, admin: AdminDep
) -> dict[str, Any]:
    del admin
    created = auth.add_account(
        session,
        role=body.role.value,
        name=body.name,
        office=body.office,
        district=body.district,
        token_days=state.settings.token_days,
    )
    return {
        "id": created.id,
        "role": created.role.value,
        "token": created.token,
        "token_expires_at": created.expires_at.isoformat(),
    }


@router.get("/me", summary="Who the bearer token belongs to")
def me(principal: CurrentPrincipal) -> dict[str, Any]:
    return {
        "id": principal.id,
        "role": principal.role.value,
        "office": principal.office,
        "district": principal.district,
        "tracking_code": principal.tracking_code,
    }
