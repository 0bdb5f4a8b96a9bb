from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status

from api import writes
from api.deps import (
    CurrentPrincipal,
    OptionalPrincipal,
    ReadSessionDep,
    SessionDep,
    StateDep,
)
from api.routes.records import receipt_url
from api.state import AppState
from voting import service
from voting.schemas import BallotIn, PublicKeyIn, SimulationIn

router = APIRouter(prefix="/api/v1", tags=["simulations"])
SimId = Annotated[
    str, Path(pattern=r"^SIM-[0-9A-HJKMNP-TV-Z]{8}$", description="e.g. SIM-7K3M9QXD")
]


def _accepted(request: Request, record_hash: str, **extra: Any) -> dict[str, Any]:
    state: AppState = request.app.state.civic
    return {
        "record_hash": record_hash,
        "receipt_url": receipt_url(state.settings, record_hash),
        **extra,
    }


@router.post(
    "/simulations", status_code=status.HTTP_201_CREATED, summary="Create a draft simulation (staff)"
)
def create(body: SimulationIn, session: SessionDep, principal: CurrentPrincipal) -> dict[str, Any]:
    row = service.create(session, body, principal=principal)
    return service.public_view(session, row)


@router.get("/simulations", summary="All simulations, newest first")
def list_simulations(session: ReadSessionDep) -> list[dict[str, Any]]:
    return [service.public_view(session, row) for row in service.all_simulations(session)]


@router.get("/simulations/{simulation_id}", summary="A simulation: rules, state, counts and result")
def get_simulation(simulation_id: SimId, session: ReadSessionDep) -> dict[str, Any]:
    return service.public_view(session, service.get(session, simulation_id))


@router.post("/simulations/{simulation_id}/open", status_code=201, summary="Open voting (staff)")
def open_simulation(
    simulation_id: SimId, session: SessionDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    sealed = service.open_simulation(session, simulation_id, principal=principal)
    return _accepted(request, sealed.record_hash, state="open")


@router.post("/simulations/{simulation_id}/close", status_code=201, summary="Close voting (staff)")
def close_simulation(
    simulation_id: SimId, session: SessionDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    sealed = service.close(session, simulation_id, principal=principal)
    return _accepted(request, sealed.record_hash, state="closed")


@router.post(
    "/simulations/{simulation_id}/tally",
    status_code=201,
    summary="Tally and record the result (staff)",
)
def tally_simulation(
    simulation_id: SimId, session: SessionDep, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    sealed = service.tally_simulation(session, simulation_id, principal=principal)
    return _accepted(request, sealed.record_hash, state="tallied")


@router.post(
    "/simulations/{simulation_id}/ballots",
    status_code=201,
    summary="Cast a signed ballot; the signature is the voter's authority",
    responses={
        403: {"description": "the voter is not in the electorate"},
        409: {"description": "voting is not open, or the nonce was used before"},
        422: {
            "description": "bad signature, ballot for another simulation, or a ballot that breaks the rules"
        },
    },
)
async def cast_ballot(
    simulation_id: SimId, body: BallotIn, state: StateDep, request: Request
) -> dict[str, Any]:
    done = await writes.cast_ballot(state, simulation_id, body)
    return _accepted(request, done.record_hash)


@router.get("/simulations/{simulation_id}/ballots", summary="Ballots, as the secrecy mode allows")
def list_ballots(
    simulation_id: SimId, session: ReadSessionDep, principal: OptionalPrincipal
) -> dict[str, Any]:
    return service.ballots_view(session, service.get(session, simulation_id), principal)


@router.put(
    "/deputies/{deputy_id}/public-key",
    summary="Register a deputy's Ed25519 public key (admin)",
)
def register_key(
    deputy_id: Annotated[str, Path(pattern=r"^deputy-[0-9a-f]{8}$")],
    body: PublicKeyIn,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> dict[str, str]:
    service.register_key(session, deputy_id, body.public_key, principal=principal)
    return {"deputy": deputy_id, "public_key": body.public_key}
