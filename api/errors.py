"""One place that turns errors into HTTP answers: {"error": <class>, "detail": <message>}."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.errors import CivicError
from verifier.openapi import install_error_documentation

log = logging.getLogger("civic.api")


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))


async def civic_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CivicError)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(
        {"error": type(exc).__name__, "detail": exc.message},
        status_code=exc.status_code,
        headers=headers or None,
    )


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        ctx = detail.get("ctx") or {}
        return JSONResponse(
            {
                "error": "MalformedJSON",
                "detail": f"the body is not valid JSON: {ctx.get('error', '')}".strip(),
            },
            status_code=400,
        )
    fields = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg"),
            "type": e.get("type"),
        }
        for e in errors
    ]
    return JSONResponse(
        {
            "error": "ValidationError",
            "detail": "; ".join(_describe(e) for e in errors),
            "fields": fields,
        },
        status_code=422,
    )


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    names = {
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "PayloadTooLarge",
        415: "UnsupportedMediaType",
    }
    return JSONResponse(
        {"error": names.get(exc.status_code, "HTTPError"), "detail": exc.detail},
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "the error's class name"},
        "detail": {"type": "string"},
        "fields": {
            "type": "array",
            "description": "for a ValidationError: each field refused",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """The database went away under the request (restart, failover, lost connection): 503 with
    the one error shape, never a 500 with a stack trace. The transaction was rolled back, so
    nothing of it is half-written; the pool's pre-ping replaces the dead connections, so the
    next request works as soon as the database is back."""
    assert isinstance(exc, DBAPIError)
    if not (isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated):
        raise exc  # an integrity or programming error is a bug: let it be a 500
    return JSONResponse(
        {
            "error": "DatabaseUnavailable",
            "detail": "the database did not answer; the request was not acknowledged: try "
            "again in a moment",
        },
        status_code=503,
        headers={"Retry-After": "1"},
    )


class InternalErrors:
    """ASGI middleware: any exception that no handler answered becomes a JSON 500 of the one
    error shape, ``{"error": "InternalError", "detail": ...}``, with an incident number that
    the log line carrying the stack trace also names. Nothing of the exception reaches the
    client.

    Without it, Starlette's outermost error middleware answered a plain-text 500 outside
    the security headers and raised the exception again, and uvicorn then closed the
    keep-alive connection under the client's next request (issue 21). Install it inside
    ``SecurityHeaders``: its answer gets the headers, and the connection stays usable. An
    exception after the answer has begun cannot be answered any more: it is raised as before.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            incident = secrets.token_hex(4)
            log.exception(
                "incident %s: %s %s failed", incident, scope.get("method"), scope.get("path")
            )
            if started:
                raise
            payload = json.dumps(
                {
                    "error": "InternalError",
                    "detail": f"the server failed on this request (incident {incident}, "
                    "logged). A write may have been stored before the failure: look before "
                    "sending it again",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI) -> None:
    app.add_exception_handler(CivicError, civic_error)
    app.add_exception_handler(DBAPIError, database_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    install_error_documentation(app, ERROR_SCHEMA)
