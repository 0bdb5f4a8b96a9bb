"""Refuse request bodies over the limit before they are read into memory, and JSON bodies that
nest too deep before they are parsed (docs/SECURITY.md, "Limits")."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from email.message import Message as MimeHeader
from typing import Any, get_args

from annotated_types import MaxLen
from fastapi import HTTPException
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The most bytes one character of a text field can take in a request body: a character beyond
#: U+FFFF written in JSON as a surrogate pair of ``\u`` escapes (``\ud83d\ude00``), or in a
#: form as its four UTF-8 bytes percent-encoded (``%F0%9F%98%80``). A CJK character takes 3
#: bytes as UTF-8, 6 as a JSON escape, 9 percent-encoded.
BYTES_PER_CHARACTER = 12
#: Room in a body for all but the characters of its length-limited text fields: member names,
#: punctuation, a phone number, a deputy id, ten attachment hashes, a form's CSRF token.
ENVELOPE_BYTES = 8 * 1024
#: How deep arrays and objects may nest in a JSON body. Our bodies nest three levels at most
#: (a simulation's projects); a ballot's ``choices`` two. Far below Python's recursion limit
#: and the verifier's cap on receipts (64), which wrap a ballot in three more levels.
MAX_JSON_DEPTH = 32

#: An HTML answer for a browser's page request, or None for the API's JSON.
PageRefusal = Callable[[Request, int], Response | None]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-body; an HTTPException so the framework answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def text_capacity(model: type[BaseModel]) -> int:
    """The characters the length-limited string fields of ``model`` (and of the models nested
    in it) hold together at most."""
    total = 0
    for field in model.model_fields.values():
        if field.annotation is str:
            total += max((m.max_length for m in field.metadata if isinstance(m, MaxLen)), default=0)
        for inner in get_args(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                total += text_capacity(inner)
    return total


def body_bytes_for(model: type[BaseModel]) -> int:
    """A body limit that every valid ``model`` fits in, however its text is encoded: each
    character at its costliest (``BYTES_PER_CHARACTER``) plus ``ENVELOPE_BYTES``. Without it,
    the byte limit refused Chinese text long before its character limit (issue 21)."""
    return text_capacity(model) * BYTES_PER_CHARACTER + ENVELOPE_BYTES


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually sent, exceed the limit:
    ``multipart[path]`` for a ``multipart/form-data`` body (a form with files), else
    ``exact[path]``, else the first ``overrides`` prefix the path starts with, else ``limit``.

    ``page`` answers a browser's page request (a portal form) with an HTML page instead of
    the JSON error; it returns None for everything else."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        overrides: dict[str, int] | None = None,
        exact: dict[str, int] | None = None,
        page: PageRefusal | None = None,
        multipart: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.default = limit
        self.overrides = overrides or {}
        self.exact = exact or {}
        self.page = page
        self.multipart = multipart or {}

    def limit_for(self, path: str, content_type: bytes = b"") -> int:
        if path in self.multipart and content_type.lower().startswith(b"multipart/form-data"):
            return self.multipart[path]
        if path in self.exact:
            return self.exact[path]
        for prefix, limit in self.overrides.items():
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = next((v for n, v in scope.get("headers", ()) if n == b"content-type"), b"")
        limit = self.limit_for(scope.get("path", ""), content_type)
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
                    await self._too_large(scope, receive, send, limit)
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
                await self._too_large(scope, receive, send, limit)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        page = self.page(Request(scope), limit) if self.page is not None else None
        if page is not None:
            await page(scope, receive, send)
        else:
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


# A JSON string, its closing quote optional: it always matches, so a scan never starts over
# (an unterminated string with escaped quotes would otherwise be scanned once per quote).
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\(?s:.)?)*"?')
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]+")


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``body`` (brackets inside
    strings not counted). Linear time; text that is not JSON is measured all the same (it
    fails to parse later)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # the common case: too few brackets to nest that deep
    depth = 0
    for byte in _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", body)):
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def parsed_as_json(scope: Scope) -> bool:
    """Whether FastAPI parses this request's body as JSON: no Content-Type at all, or
    ``application/json`` or ``application/*+json`` (fastapi.routing's own test)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            header = MimeHeader()
            header["content-type"] = value.decode("latin-1")
            if header.get_content_maintype() != "application":
                return False
            subtype = header.get_content_subtype()
            return subtype == "json" or subtype.endswith("+json")
    return True


class JsonDepthLimit:
    """ASGI middleware: 400 ``NestingTooDeep`` for a JSON body nesting arrays and objects deeper
    than ``max_depth``, before anything parses it.

    Python's JSON parser and the code after it (pydantic, RFC 8785 canonicalisation) recurse
    once per level: a ballot of about 1 KB whose ``choices`` nested 400 levels made a
    RecursionError, and with web3 imported (it raises the recursion limit to 100000) a deeper
    one could overflow the C stack. Bodies FastAPI parses as JSON are read here (they are
    bounded by ``BodySizeLimit`` outside this middleware), measured, and handed on as one
    message; ``raw_paths`` take a file as their body and are never scanned.
    """

    def __init__(
        self, app: ASGIApp, max_depth: int = MAX_JSON_DEPTH, raw_paths: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.raw_paths = raw_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not _has_body(scope)
            or scope.get("path", "") in self.raw_paths
            or not parsed_as_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if nests_deeper_than(body, self.max_depth):
            await BodySizeLimit._refuse(
                send,
                400,
                "NestingTooDeep",
                f"the JSON body nests arrays and objects deeper than {self.max_depth} levels",
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)
