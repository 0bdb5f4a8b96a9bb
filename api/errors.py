"""One place that turns errors into HTTP answers: {"error": <class>, "detail": <message>}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import CivicError
from verifier.openapi import install_error_documentation


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


def install(app: FastAPI) -> None:
    app.add_exception_handler(CivicError, civic_error)
    app.add_exception_handler(DBAPIError, database_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    install_error_documentation(app, ERROR_SCHEMA)
