"""The OpenAPI document says what the error handlers really send (both services use this).

FastAPI documents a 422 as its own ``HTTPValidationError`` (a list of details) and nothing
for the 401, 404, 413, 429 … that any route may answer; our handlers answer every error as
``{"error": <class name>, "detail": <message>}``. Clients, and schemathesis, read the document:
it must match.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

_ERROR_REF = {"$ref": "#/components/schemas/Error"}


def document_errors(schema: dict[str, Any], error_schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the one error shape (``error_schema``, as ``#/components/schemas/Error``).

    Every operation gets a ``default`` response of that shape; 422 is replaced by it; another
    documented error status keeps its description and gets the shape when it has no content
    of its own (a route that documents its own body for, say, 503 keeps it).
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = error_schema
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.isdigit() and (
                    int(status) == 422 or (int(status) >= 400 and "content" not in response)
                ):
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
            responses.setdefault(
                "default",
                {
                    "description": 'an error: {"error": <class name>, "detail": <message>}',
                    "content": {"application/json": {"schema": _ERROR_REF}},
                },
            )
    # FastAPI's validation shapes are no longer referenced: drop them (HTTPValidationError
    # first, as it is what refers to ValidationError).
    components = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        if f'"#/components/schemas/{unused}"' not in json.dumps(schema):
            components.pop(unused, None)
    return schema


def install_error_documentation(app: FastAPI, error_schema: dict[str, Any]) -> None:
    """Make ``app``'s OpenAPI document (built once, at first request for it) carry the one
    error shape, through :func:`document_errors`."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate(), error_schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
