"""One place that turns errors into HTTP answers: {"error": <class>, "detail": <message>}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.errors import CivicError


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


def install(app: FastAPI) -> None:
    app.add_exception_handler(CivicError, civic_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
