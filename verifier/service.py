"""The verifier's own HTTP service: PROTOCOL §5 for anyone with a browser (``civic-verify serve``).

It holds no database and trusts the civic-ledger API for nothing but handing over records and
batch exports; every answer is checked against the chain.

* ``POST /verify/receipt``: a §4 receipt as the body (at most 64 KiB) → the verdict and every
  check. A body that is not a receipt (not strict JSON, wrong shape) is answered **200 with the
  verdict ``malformed``** and the reason, exactly as ``civic-verify receipt`` reports it:
  "malformed" is one of the protocol's answers about a receipt, not a failure of the verifier,
  and the portal shows it like any other verdict. HTTP errors mean that no verdict could be
  reached: 413 for a body over the limit, 422 for bad query parameters, 503 when the chain
  cannot be reached, 502 when it answers with something no verdict can rest on.
* ``GET /verify/trail/{tracking_code}``: the suggestion's trail, read from the API and judged
  record by record (``verify_trail``), and whether it is the whole trail as of the latest
  anchored batch (``completeness``, PROTOCOL §11, ``verify_completeness``). 404 for an unknown tracking code, 502 when the API
  cannot be reached or does not answer with a trail, 503 when the chain cannot be reached.
* ``GET /verify/batch/{log}/{n}``: the public batch export recomputed (version 2: the frontier
  of the log's tree before the batch and the batch's leaves → the log's root at its end) and
  compared with ``batchOf`` on chain, the frontier with the root anchored for the batch before
  (``verify_batch_export``), with the attestation count.
* ``GET /healthz``: whether the chain endpoint answers, and what the service trusts.

Version 2 receipts (PROTOCOL §11) carry their batch's cosigned checkpoint. Given ``trust``
(``civic-verify serve --log-key VKEY [--witness VKEY …] [--quorum W]``, the meaning of
``civic-verify receipt``), ``POST /verify/receipt`` checks that checkpoint: signed by the log's
key, its size and root the receipt's, cosigned by at least W of the trusted witnesses. Without a
chain endpoint (no ``--rpc``) that is step 4, and the service never asks a chain about receipts;
with one, the chain is asked as well and both must pass (each is compared with the receipt's
size and root, so both passing means they agree). The answer then names the trusted witnesses
whose cosignatures verified (``cosigners``) and the trust roots asked (``trust_roots``). A
service without a chain endpoint answers trails and batches, which are checked on chain only,
with 503.

Errors are ``{"error": <class name>, "detail": <message>}``, as in the API.

Anchored roots are cached (``CachingChainReader``): a batch, once anchored, never changes, so
repeated receipts of one batch cost no ``batchOf`` call; the latest block (for confirmations)
and attestation counts are cached for about a second. Pass ``cache=False`` to ask the chain
every time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.records import LOGS
from verifier.batch import (
    pending_batch,
    verify_batch_export,
)
from verifier.chain import CachingChainReader, ChainReader, ReaderFactory, Web3ChainReader
from verifier.checkpoint import CheckpointTrust, cosigners
from verifier.errors import (
    ChainError,
    ChainUnreachable,
    ContractMismatch,
    UnknownBatch,
    UnknownTrackingCode,
    VerificationError,
)
from verifier.fetch import fetch_batch_export, fetch_trail
from verifier.openapi import install_error_documentation
from verifier.present import trail_answer
from verifier.receipt import receipt_from_json, verify_receipt_json
from verifier.security import JSON_ONLY_CSP, SecurityHeaders, static_policy
from verifier.trail import verify_completeness, verify_trail

DEFAULT_PORT = 8001
PORT_ENV = "CIVIC_VERIFIER_PORT"
CORS_ENV = "CIVIC_VERIFIER_CORS"
API_ENV = "CIVIC_API_URL"
DEFAULT_API = "http://127.0.0.1:8000"
# The API serves the portal; these are its origins when it runs on its default port.
DEFAULT_CORS_ORIGINS: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
MAX_RECEIPT_BYTES = 64 * 1024
_MAX_COUNT = 2**32 - 1

_RECEIPT_BODY = {
    "required": True,
    "description": "A PROTOCOL §4 receipt, as JSON text (at most 64 KiB).",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}
_ERROR = {"content": {"application/json": {"schema": _ERROR_SCHEMA}}}


_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$")


def cors_origins_from(
    value: str | None, defaults: Sequence[str] = DEFAULT_CORS_ORIGINS
) -> tuple[str, ...]:
    """``CIVIC_VERIFIER_CORS``: origins separated by commas; unset or blank → ``defaults``.

    Each must be a browser origin, ``http(s)://host[:port]``: a wildcard ``*`` (any web page
    could then drive the verifier from its visitors' browsers), a path or a query is refused
    with ValueError. See docs/SECURITY.md, "CORS".
    """
    origins = tuple(part.strip().rstrip("/") for part in (value or "").split(",") if part.strip())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ValueError(
                f"{origin!r} is not an origin (http(s)://host[:port]); the verifier allows only "
                "the portal's own origins, never '*'"
            )
    return origins or tuple(defaults)


def default_port() -> int:
    """``$CIVIC_VERIFIER_PORT``, else 8001."""
    value = os.environ.get(PORT_ENV, "").strip()
    return int(value) if value else DEFAULT_PORT


def _endpoint(url: str) -> str:
    """``scheme://host:port`` of a URL: enough to say which one, without keys in its path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


class NoChainEndpoint(VerificationError):
    """The service was started without a chain endpoint (receipts from checkpoints only)."""


def _status_of(exc: VerificationError) -> int:
    if isinstance(exc, UnknownTrackingCode | UnknownBatch):
        return 404
    if isinstance(exc, ChainUnreachable | NoChainEndpoint):
        return 503
    # The API unreachable or not answering with a trail/export; the chain answering nonsense.
    return 502


def _install_errors(app: FastAPI, api_url: str) -> None:
    # The API's address may be an internal one (``civic-ledger run`` passes its loopback
    # address): the public hears of "the civic-ledger API", never where it is.
    internal = sorted({api_url, api_url.rstrip("/"), _endpoint(api_url)}, key=len, reverse=True)

    async def verification_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VerificationError)
        detail = str(exc)
        for address in internal:
            detail = detail.replace(address, "the civic-ledger API")
        return JSONResponse({"error": type(exc).__name__, "detail": detail}, _status_of(exc))

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        names = {404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge"}
        return JSONResponse(
            {"error": names.get(exc.status_code, "HTTPError"), "detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse({"error": "ValidationError", "detail": detail}, status_code=422)

    app.add_exception_handler(VerificationError, verification_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_long = int(declared) > limit
        except ValueError:
            raise HTTPException(400, "Content-Length is not a number") from None
        if too_long:
            raise HTTPException(413, f"a receipt is at most {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise HTTPException(413, f"a receipt is at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Count = Annotated[int, Query(ge=0, le=_MAX_COUNT)]


def _receipt_cosigners(body: bytes, trust: CheckpointTrust) -> list[dict[str, object]]:
    """The trusted witnesses that cosigned the receipt's checkpoint (none when it has none)."""
    try:
        receipt = receipt_from_json(body)
    except VerificationError:
        return []
    note = receipt.get("checkpoint") if isinstance(receipt, dict) else None
    return cosigners(note, trust) if isinstance(note, str) else []


def _trust_summary(trust: CheckpointTrust | None) -> dict[str, Any] | None:
    if trust is None:
        return None
    return {
        "log_key": trust.log_key.verifier_key,
        "witnesses": sorted(w.name for w in trust.witnesses),
        "quorum": trust.quorum,
    }


def create_verifier_app(
    *,
    rpc_url: str | None,
    api_url: str,
    reader_factory: ReaderFactory = Web3ChainReader,
    http_transport: httpx.BaseTransport | None = None,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
    timeout: float = 10.0,
    cache: bool = True,
    max_receipt_bytes: int = MAX_RECEIPT_BYTES,
    production: bool = False,
    trust: CheckpointTrust | None = None,
) -> FastAPI:
    """The verifier's FastAPI app (see the module doc).

    ``reader_factory(rpc_url, timeout)`` makes the chain reader (wrapped in a
    ``CachingChainReader`` unless ``cache`` is False); ``rpc_url`` may be None only with
    ``trust`` (receipts from their checkpoints alone); ``http_transport`` carries requests to
    the civic-ledger API at ``api_url`` (tests pass an ``httpx.MockTransport``). Every answer
    carries the security headers of docs/SECURITY.md; ``production`` adds HSTS.
    """
    if "*" in cors_origins:
        raise ValueError("the verifier allows only the portal's own origins, never '*'")
    if rpc_url is None and trust is None:
        raise ValueError("the verifier needs a chain endpoint, the log's key, or both")
    reader: ChainReader | None = None
    if rpc_url is not None:
        inner = reader_factory(rpc_url, timeout)
        reader = CachingChainReader(inner) if cache else inner
    trust_roots = [
        name for name, given in (("checkpoint", trust), ("chain", reader)) if given is not None
    ]

    def chain_reader() -> ChainReader:
        if reader is None:
            raise NoChainEndpoint(
                "this verifier was started without a chain endpoint (--log-key without --rpc): "
                "it checks receipts from their checkpoints; trails and batches are checked on "
                "chain"
            )
        return reader

    app = FastAPI(
        title="civic-ledger verifier",
        version="0.1.0",
        summary="Independent checks of civic-ledger receipts, trails and batches against the chain",
        description=(
            "Holds no database. Records and batch exports come from the civic-ledger API at "
            f"{_endpoint(api_url)}; every anchor is read from the chain. Verdicts are the "
            "words of PROTOCOL §5; a receipt that cannot be parsed is the verdict `malformed` "
            "(HTTP 200), while HTTP errors mean no verdict could be reached."
        ),
    )
    app.state.reader = reader
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
        max_age=600,
    )
    # Outermost, so that CORS preflight answers carry the headers too.
    app.add_middleware(SecurityHeaders, policy=static_policy(JSON_ONLY_CSP, hsts=production))
    _install_errors(app, api_url)
    errors: dict[int | str, dict[str, Any]] = {
        502: {**_ERROR, "description": "the chain answered with nothing a verdict can rest on"},
        503: {**_ERROR, "description": "the chain endpoint cannot be reached"},
    }

    @app.post(
        "/verify/receipt",
        summary="Verify one receipt (PROTOCOL §5)",
        openapi_extra={"requestBody": _RECEIPT_BODY},
        responses={
            200: {"description": "the verdict (malformed included) and every check made"},
            413: {**_ERROR, "description": f"the body is over {max_receipt_bytes} bytes"},
            **errors,
        },
    )
    async def verify_receipt_route(
        request: Request, min_confirmations: Count = 0, min_attestations: Count = 0
    ) -> dict[str, Any]:
        body = await _read_limited(request, max_receipt_bytes)
        result = await run_in_threadpool(
            verify_receipt_json,
            body,
            reader,
            min_confirmations=min_confirmations,
            min_attestations=min_attestations,
            trust=trust,
        )
        answer = result.to_dict()
        if trust is not None:
            answer["trust_roots"] = trust_roots
            # Named only once the checkpoint step ran (not for a receipt that failed before).
            checked = any(check.name == "checkpoint" for check in result.checks)
            answer["cosigners"] = _receipt_cosigners(body, trust) if checked else []
        return answer

    @app.get(
        "/verify/trail/{tracking_code}",
        summary="Verify a suggestion's whole trail (PROTOCOL §5)",
        responses={
            200: {"description": "the trail's verdict and what was found about every record"},
            404: {**_ERROR, "description": "the API knows no such tracking code"},
            502: {**_ERROR, "description": "the API cannot be reached or gave no trail"},
            503: errors[503],
        },
    )
    def verify_trail_route(
        tracking_code: Annotated[str, Path(min_length=1, max_length=64)],
        min_confirmations: Count = 0,
        min_attestations: Count = 0,
    ) -> dict[str, Any]:
        chain = chain_reader()
        trail = fetch_trail(api_url, tracking_code, timeout=timeout, transport=http_transport)
        result = verify_trail(
            trail.records,
            chain,
            subject=tracking_code,
            min_confirmations=min_confirmations,
            min_attestations=min_attestations,
        )
        # PROTOCOL §11: whether the trail shown is the whole trail as of the latest anchored
        # batch (the map of trail heads), judged on the chain like the records.
        completeness = verify_completeness(
            trail.map,
            trail.records,
            chain,
            subject=tracking_code,
            trust=trust,
            min_confirmations=min_confirmations,
            min_attestations=min_attestations,
        )
        return {**trail_answer(result, trail.state), "completeness": completeness.to_dict()}

    @app.get(
        "/verify/batch/{log}/{n}",
        summary="Recompute a batch's anchored root from the public export and compare it with "
        "the chain",
        responses={
            200: {"description": "the batch's verdict, roots, sizes and attestation count"},
            404: {**_ERROR, "description": "unknown log, or the API has no such batch"},
            502: {**_ERROR, "description": "the API cannot be reached or gave no export"},
            503: errors[503],
        },
    )
    def verify_batch_route(
        log: Annotated[str, Path(description="suggestions, votes or access")],
        n: Annotated[int, Path(ge=0, le=2**64 - 1, description="batch number, from 0")],
    ) -> dict[str, Any]:
        if log not in LOGS:
            raise HTTPException(404, f"unknown log {log!r}; logs are {', '.join(sorted(LOGS))}")
        chain = chain_reader()
        export = fetch_batch_export(api_url, log, n, timeout=timeout, transport=http_transport)
        if isinstance(export, str):
            return pending_batch(log, n, export).to_dict()
        return verify_batch_export(export, chain, log=log, batch=n).to_dict()

    @app.get("/healthz", summary="Whether the chain endpoint answers, and what is trusted")
    def healthz() -> JSONResponse:
        checkpoints = _trust_summary(trust)
        if rpc_url is None or reader is None:
            return JSONResponse(
                {
                    "status": "ok",
                    "chain": None,
                    "checkpoints": checkpoints,
                    "api": _endpoint(api_url),
                }
            )
        chain: dict[str, Any] = {"rpc": _endpoint(rpc_url)}
        try:
            chain.update(chain_id=reader.chain_id(), latest_block=reader.block_number())
        except (ChainError, ContractMismatch) as exc:
            chain["error"] = str(exc)
            return JSONResponse(
                {
                    "status": "chain_unreachable",
                    "chain": chain,
                    "checkpoints": checkpoints,
                    "api": _endpoint(api_url),
                },
                status_code=503,
            )
        return JSONResponse(
            {"status": "ok", "chain": chain, "checkpoints": checkpoints, "api": _endpoint(api_url)}
        )

    install_error_documentation(app, _ERROR_SCHEMA)
    return app
