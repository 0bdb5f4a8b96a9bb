"""The logs' growing trees (PROTOCOL §8), public: consistency proofs between anchored sizes,
and the entries themselves, for monitors that recompute every root."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from api.deps import ReadSessionDep, StateDep, run_read
from ledger import checkpoints, service
from ledger.checkpoints import LogKeys
from ledger.errors import BatchNotFound, ServiceUnavailable

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


Batch = Annotated[int, Path(ge=0, le=2**63 - 1, description="batch number, from 0")]


@router.get(
    "/logs/{log}/map/{subject:path}",
    summary="A subject's proof in the map of trail heads of an anchored batch (PROTOCOL §10)",
    responses={
        404: {"description": "unknown log, no such anchored batch, or one older than the map"}
    },
)
async def map_proof(
    log: Log,
    subject: Annotated[str, Path(min_length=1, max_length=160, description="a trail's subject")],
    state: StateDep,
    batch: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="batch number; the latest by default")
    ] = None,
) -> dict[str, Any]:
    return await run_read(
        state, lambda reader: service.map_proof(reader, log, subject, batch), driver=True
    )


_NOTE = {
    "content": {"text/plain": {}},
    "description": "a C2SP signed note: the log's signature and the witnesses' cosignatures",
}


def _keys(state: Any) -> LogKeys:
    if state.log_keys is None:  # pragma: no cover - made at start-up
        raise ServiceUnavailable("the logs' checkpoint keys are not loaded")
    keys: LogKeys = state.log_keys
    return keys


@router.get(
    "/logs/{log}/checkpoint",
    summary="The log's latest checkpoint (PROTOCOL §9): a C2SP tlog-checkpoint, signed by the "
    "log and cosigned by the witnesses",
    response_class=PlainTextResponse,
    responses={200: _NOTE, 404: {"description": "unknown log, or nothing anchored yet"}},
)
def latest_checkpoint(log: Log, session: ReadSessionDep, state: StateDep) -> PlainTextResponse:
    note = checkpoints.batch_checkpoint(session, _keys(state), log, None)
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get(
    "/logs/{log}/checkpoints/{batch}",
    summary="The checkpoint of one anchored batch (PROTOCOL §9)",
    response_class=PlainTextResponse,
    responses={200: _NOTE, 404: {"description": "unknown log, or no such anchored batch"}},
)
def checkpoint_of_batch(
    log: Log, batch: Batch, session: ReadSessionDep, state: StateDep
) -> PlainTextResponse:
    note = checkpoints.batch_checkpoint(session, _keys(state), log, batch)
    return PlainTextResponse(note, media_type="text/plain; charset=utf-8")


@router.get(
    "/logs/{log}/keys",
    summary="The log's verifier key (C2SP note verifier form) and its witnesses' keys",
    responses={404: {"description": "unknown log"}},
)
def log_keys(log: Log, state: StateDep) -> dict[str, Any]:
    keys = _keys(state)
    if log not in keys.signers:
        raise BatchNotFound(f"unknown log {log!r}; logs are {', '.join(sorted(keys.signers))}")
    witnesses = [{"name": w.name, "key": w.key, "url": w.url} for w in state.settings.witness_list]
    return {
        "log": keys.verifier_key(log),
        "origin": keys.signers[log].name,
        "witnesses": witnesses,
        # how many of them must cosign a checkpoint for it to count as cosigned (PROTOCOL §11)
        "quorum": state.settings.resolved_witness_quorum,
    }
