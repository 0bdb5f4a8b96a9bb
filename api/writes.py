"""The hot writes as typed operations: one request and one reply model per operation, the
function the routes call for each, and the versioned JSON encoding that carries them to the
writer process (``api.writer``).

Each request knows how to run itself in the writer's group transaction (``run``), so the
path from a route to the SQL is plain typed Python that mypy follows end to end: a route
calls ``submit(state, prepared)`` and gets a ``SubmitReply``. What crosses the socket is
JSON (``WIRE_VERSION``): a frame holds ``{"v": 1, "id": n, "request": {"op": ..., ...}}`` one
way and ``{"v": 1, "id": n, "reply": {...}}`` or ``{"v": 1, "id": n, "error": {...}}`` the
other. Bytes travel as base64. Nothing is ever unpickled: a peer can at worst send a request
that fails validation.

Errors: a refusal of the service (``CivicError`` and its subclasses) crosses as its class
name, message, HTTP status and headers, and is raised again on the API side as the same
class, so the answer (``{"error": <class name>, "detail"}`` and the status) is exactly the
one an in-process write gives. A lost database becomes ``DatabaseUnavailable`` (503); any
other exception becomes ``WriterFailed`` (500), its text kept for the log.

Without a writer process (an application made in-process, as the tests make it) the same
requests run in a writer thread (``ledger.groupcommit.GroupCommitter``), encoded and decoded
on the way as over the socket, so that every test of a hot write also tests the encoding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from core.clock import Clock, utc_now
from ledger import ratelimit, suggestions
from ledger.auth import Principal
from ledger.errors import CivicError, ServiceUnavailable
from ledger.pii import Vault
from ledger.schemas import FlagIn, TransitionIn
from ledger.suggestions import Policy, PreparedSubmission
from voting import service as voting
from voting.schemas import BallotIn

if TYPE_CHECKING:
    from api.state import AppState

WIRE_VERSION = 1


@dataclass(frozen=True)
class WriteContext:
    """What the operations need besides the session and their request."""

    vault: Vault
    policy: Policy
    clock: Clock = field(default=utc_now)


class _Wire(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )


# -- replies ----------------------------------------------------------------------------------


class SubmitReply(_Wire):
    tracking_code: str
    record_hash: str
    citizen_token: str | None


class TransitionReply(_Wire):
    record_hash: str
    state: str


class FlagsReply(_Wire):
    record_hashes: list[str]


class BallotReply(_Wire):
    record_hash: str


class RateCheckReply(_Wire):
    wait: float  # 0: allowed (and counted); else seconds until it would be


Reply = SubmitReply | TransitionReply | FlagsReply | BallotReply | RateCheckReply


# -- requests ---------------------------------------------------------------------------------


class SubmitRequest(_Wire):
    """群众提: store a submission prepared in the API process (``prepare_submission``)."""

    op: Literal["suggestion.submit"] = "suggestion.submit"
    prepared: PreparedSubmission

    def run(self, session: Session, ctx: WriteContext) -> SubmitReply:
        done = suggestions.store_submission(session, self.prepared, vault=ctx.vault)
        return SubmitReply(
            tracking_code=done.tracking_code,
            record_hash=done.sealed.record_hash,
            citizen_token=done.citizen_token,
        )


class TransitionRequest(_Wire):
    """One step of the workflow."""

    op: Literal["suggestion.transition"] = "suggestion.transition"
    tracking_code: str
    req: TransitionIn
    principal: Principal

    def run(self, session: Session, ctx: WriteContext) -> TransitionReply:
        sealed, row = suggestions.transition(
            session, self.tracking_code, self.req, principal=self.principal, policy=ctx.policy
        )
        return TransitionReply(record_hash=sealed.record_hash, state=row.state)


class FlagsRequest(_Wire):
    """重点督办 and 延期."""

    op: Literal["suggestion.flags"] = "suggestion.flags"
    tracking_code: str
    flags: FlagIn
    principal: Principal

    def run(self, session: Session, ctx: WriteContext) -> FlagsReply:
        sealed = suggestions.set_flags(
            session, self.tracking_code, self.flags, principal=self.principal
        )
        return FlagsReply(record_hashes=[record.record_hash for record in sealed])


class BallotRequest(_Wire):
    """A signed ballot."""

    op: Literal["ballot.cast"] = "ballot.cast"
    simulation_id: str
    ballot: BallotIn

    def run(self, session: Session, ctx: WriteContext) -> BallotReply:
        return BallotReply(
            record_hash=voting.cast(session, self.simulation_id, self.ballot).record_hash
        )


class RateLimitIn(_Wire):
    scope: str = Field(max_length=16)
    limit: int = Field(ge=0)
    window: float = Field(gt=0, le=ratelimit.MAX_WINDOW.total_seconds())
    what: str = Field(max_length=32)


class RateCheckRequest(_Wire):
    """Count one anonymous write of ``client`` under ``limits`` (``ledger.ratelimit``), in
    the shared database, so that every API process counts the same hits. Never refused in
    the group: the reply says how long to wait, and the API process answers 429."""

    op: Literal["rate.check"] = "rate.check"
    client: str = Field(max_length=64)
    limits: list[RateLimitIn] = Field(max_length=4)

    def run(self, session: Session, ctx: WriteContext) -> RateCheckReply:
        limits = [ratelimit.RateLimit(**limit.model_dump()) for limit in self.limits]
        return RateCheckReply(wait=ratelimit.hit(session, self.client, limits, ctx.clock()))


AnyRequest = SubmitRequest | TransitionRequest | FlagsRequest | BallotRequest | RateCheckRequest
WriteRequest = Annotated[AnyRequest, Field(discriminator="op")]


# -- the encoding -----------------------------------------------------------------------------


class WireError(_Wire):
    """An exception as it crosses: ``civic`` (a CivicError subclass, raised again as
    itself) or ``internal`` (raised as WriterFailed)."""

    kind: Literal["civic", "internal"]
    name: str
    detail: str
    status: int = 500
    headers: dict[str, str] | None = None


class RequestFrame(_Wire):
    v: Literal[1]
    id: int
    request: WriteRequest


class ReplyFrame(_Wire):
    v: Literal[1]
    id: int
    reply: dict[str, Any] | None = None
    error: WireError | None = None


_REQUEST_FRAME = TypeAdapter(RequestFrame)
_REPLY_FRAME = TypeAdapter(ReplyFrame)


class BadFrame(ValueError):
    """Bytes that are not a frame of this version."""


def encode_request(request_id: int, request: AnyRequest) -> bytes:
    return RequestFrame(v=WIRE_VERSION, id=request_id, request=request).model_dump_json().encode()


def decode_request(data: bytes) -> RequestFrame:
    try:
        return _REQUEST_FRAME.validate_json(data)
    except ValidationError as exc:
        raise BadFrame(f"not a version {WIRE_VERSION} write request: {exc}") from exc


def encode_reply(request_id: int, reply: BaseModel | None, error: BaseException | None) -> bytes:
    if error is not None:
        frame = ReplyFrame(v=WIRE_VERSION, id=request_id, error=wire_error(error))
    else:
        assert reply is not None
        frame = ReplyFrame(v=WIRE_VERSION, id=request_id, reply=reply.model_dump(mode="json"))
    return frame.model_dump_json().encode()


def decode_reply(data: bytes) -> ReplyFrame:
    try:
        return _REPLY_FRAME.validate_json(data)
    except ValidationError as exc:
        raise BadFrame(f"not a version {WIRE_VERSION} write reply: {exc}") from exc


class DatabaseUnavailable(ServiceUnavailable):
    """The database went away under the write (what api.errors answers for a lost
    connection in the API process itself)."""


class WriterFailed(CivicError):
    """The writer raised something that is not a refusal of the service: a bug. Nothing of
    the write was committed."""

    status_code = 500


def wire_error(error: BaseException) -> WireError:
    """How an exception of an operation crosses the socket."""
    if isinstance(error, CivicError):
        headers = getattr(error, "headers", None)
        return WireError(
            kind="civic",
            name=type(error).__name__,
            detail=error.message,
            status=error.status_code,
            headers=dict(headers) if headers else None,
        )
    if isinstance(error, DBAPIError) and (
        isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated
    ):
        return wire_error(
            DatabaseUnavailable(
                "the database did not answer; the request was not acknowledged: try again in "
                "a moment"
            )
        )
    return WireError(kind="internal", name=type(error).__name__, detail=str(error))


def _civic_classes() -> dict[str, type[CivicError]]:
    found: dict[str, type[CivicError]] = {}
    pending: list[type[CivicError]] = [CivicError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from_wire(error: WireError) -> CivicError:
    """The exception to raise in the API process: the very CivicError class the writer
    raised (its constructor is not called: subclasses take other arguments), else
    WriterFailed."""
    if error.kind == "civic":
        cls = _civic_classes().get(error.name)
        if cls is not None:
            exc = cls.__new__(cls)
            Exception.__init__(exc, error.detail)
            exc.message, exc.status_code = error.detail, error.status
            if error.headers:
                exc.headers = dict(error.headers)  # type: ignore[attr-defined]
            return exc
        return CivicError(error.detail, error.status)
    return WriterFailed(f"the writer failed ({error.name}): {error.detail}")


# -- the API processes' side: one function per operation -------------------------------------

R = TypeVar("R", bound=BaseModel)


async def submit(state: AppState, prepared: PreparedSubmission) -> SubmitReply:
    """Store a prepared submission; the reply once its group committed."""
    return await _write(state, SubmitRequest(prepared=prepared), SubmitReply)


async def transition(
    state: AppState, tracking_code: str, req: TransitionIn, principal: Principal
) -> TransitionReply:
    """One workflow step of a suggestion."""
    request = TransitionRequest(tracking_code=tracking_code, req=req, principal=principal)
    return await _write(state, request, TransitionReply)


async def set_flags(
    state: AppState, tracking_code: str, flags: FlagIn, principal: Principal
) -> FlagsReply:
    """Key supervision and extension flags of a suggestion."""
    request = FlagsRequest(tracking_code=tracking_code, flags=flags, principal=principal)
    return await _write(state, request, FlagsReply)


async def cast_ballot(state: AppState, simulation_id: str, ballot: BallotIn) -> BallotReply:
    """A signed ballot."""
    return await _write(
        state, BallotRequest(simulation_id=simulation_id, ballot=ballot), BallotReply
    )


async def rate_check(state: AppState, client: str, limits: list[ratelimit.RateLimit]) -> float:
    """Count one anonymous write of ``client`` under ``limits``, once for the whole service:
    0.0 when allowed, else the seconds until it would be (nothing was counted then)."""
    request = RateCheckRequest(
        client=client[:64],
        limits=[
            RateLimitIn(scope=limit.scope, limit=limit.limit, window=limit.window, what=limit.what)
            for limit in limits
        ],
    )
    return (await _write(state, request, RateCheckReply)).wait


async def _write(state: AppState, request: AnyRequest, reply_type: type[R]) -> R:
    """Run ``request`` in the writer and return its reply once its group has committed; its
    exception, if it raised (nothing of it was written then).

    In the service (``civic-ledger run``) the writer process runs it; an application made
    in-process (the tests) runs it in its own writer thread, after the same encoding and
    decoding. Either way the write shares its transaction and its COMMIT with every write
    that queued meanwhile."""
    if state.writer_client is not None:
        return reply_type.model_validate(await state.writer_client.call(request))
    assert state.writer is not None
    decoded = decode_request(encode_request(0, request)).request
    loop = asyncio.get_running_loop()
    future: asyncio.Future[BaseModel] = loop.create_future()

    def done(result: Any, error: BaseException | None) -> None:
        loop.call_soon_threadsafe(_settle, future, result, error)

    state.writer.submit(job(state.write_context, decoded), done)
    reply = await future
    assert isinstance(reply, reply_type)
    return reply


def job(ctx: WriteContext, request: AnyRequest) -> Callable[[Session], BaseModel]:
    """``request.run(session, ctx)`` as a group commit job."""

    def run(session: Session) -> BaseModel:
        return request.run(session, ctx)

    return run


def _settle(future: asyncio.Future[BaseModel], result: Any, error: BaseException | None) -> None:
    if future.done():  # the request was cancelled (client gone); the write stands
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
