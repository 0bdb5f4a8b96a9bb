"""Refuse request bodies over the limit before they are read into memory."""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body; an HTTPException so the framework answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually sent, exceed ``limit``."""

    def __init__(self, app: ASGIApp, limit: int, overrides: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = limit
        self.overrides = overrides or {}

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await self._refuse(
                        send, 400, "MalformedRequest", "Content-Length is not a number"
                    )
                    return
                if declared > limit:
                    await self._refuse(send, 413, "PayloadTooLarge", self._message(limit))
                    return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send, 413, "PayloadTooLarge", self._message(limit))

    @staticmethod
    def _message(limit: int) -> str:
        return f"the request body is larger than {limit} bytes"

    @staticmethod
    async def _refuse(send: Send, status: int, error: str, detail: str) -> None:
        body: dict[str, Any] = {"error": error, "detail": detail}
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class RefuseNulInUrl:
    """ASGI middleware: 400 for a path or query string holding a NUL character (``%00``).

    No route takes one, and PostgreSQL cannot store or even compare text with NUL in it: a
    filter like ``?district=%00`` reached the database and failed there as a 500 (found by the
    schemathesis run, tests/test_schemathesis_api.py). Bodies are checked by their schemas.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"%00" in scope.get("query_string", b"")
            or b"\x00" in scope.get("query_string", b"")
        ):
            await BodySizeLimit._refuse(
                send, 400, "MalformedRequest", "the URL holds a NUL character (%00)"
            )
            return
        await self.app(scope, receive, send)
