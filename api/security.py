"""The API's and the portal's security at the edge (docs/SECURITY.md): headers, the Host
header, and who the client is.

Built on ``verifier.security.SecurityHeaders`` (the verifier cannot import the API, so the
middleware lives there). What this module adds is the policy of the app that serves the
portal's pages:

* a Content-Security-Policy without inline scripts or styles, whose ``connect-src`` names the
  verifier service, because the portal's pages ask it for verdicts from the browser:
  ``settings.resolved_verifier_public_url`` (``CIVIC_VERIFIER_PUBLIC_URL``, else the public
  URL's host on the verifier port), never anything taken from the request;
* ``Cache-Control: no-store`` on every answer but the static files, so that no browser or proxy
  keeps a token (account creation, a citizen's submission), personal data (contact, a
  confidential text, attachments) or a signed-in page;
* Strict-Transport-Security only when ``settings.env == "production"``;
* in production, a 400 for a Host header that names none of ``settings.allowed_host_names``
  (the public URL's host, the API's own address, ``CIVIC_ALLOWED_HOSTS``);
* ``X-Forwarded-For``/``X-Forwarded-Proto`` believed only from ``CIVIC_TRUSTED_PROXIES``
  (uvicorn's ``ProxyHeadersMiddleware``, in the app itself, so that every server and the
  tests' in-process apps decide alike; ``civic-ledger api`` turns uvicorn's own off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ledger.settings import Settings
from verifier.security import (
    BASELINE_HEADERS,
    DOCS_CSP,
    DOCS_PATHS,
    HSTS,
    HeaderPolicy,
    SecurityHeaders,
)

#: Paths whose answers may be cached: the portal's CSS, JavaScript and images.
CACHEABLE_PREFIXES = ("/static/",)
NO_STORE = "no-store"


def content_security_policy(verifier_origin: str | None) -> str:
    """The portal's CSP: everything from our own origin, the verifier reachable by fetch."""
    connect = "'self'" + (f" {verifier_origin}" if verifier_origin else "")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL (no path, no user, no query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


def verifier_origin(settings: Settings) -> str:
    """Where browsers reach the verifier, as an origin: from the settings alone."""
    return origin_of(settings.resolved_verifier_public_url)


def api_policy(settings: Settings) -> HeaderPolicy:
    """The header policy of the API app, for ``SecurityHeaders``."""
    production = settings.env == "production"
    portal_csp = content_security_policy(verifier_origin(settings))

    def policy(scope: Scope) -> Mapping[str, str]:
        path = str(scope.get("path", ""))
        headers = dict(BASELINE_HEADERS)
        headers["Content-Security-Policy"] = DOCS_CSP if path in DOCS_PATHS else portal_csp
        if not path.startswith(CACHEABLE_PREFIXES):
            headers["Cache-Control"] = NO_STORE
        if production:
            headers["Strict-Transport-Security"] = HSTS
        return headers

    return policy


def host_name(value: str) -> str:
    """The name of a Host header's value, without its port, lower case (``[::1]:8000`` →
    ``::1``)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class KnownHostsOnly:
    """ASGI middleware: 400 ``UnknownHost`` for a request whose Host header names none of
    ``hosts`` (what Starlette's TrustedHostMiddleware does, in the service's error shape).
    Absolute URLs are built from the public URL anyway; this keeps a request made for another
    name (DNS rebinding, a misrouted proxy, cache poisoning through Host) from being served."""

    def __init__(self, app: ASGIApp, hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = frozenset(host.lower() for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = ""
            for name, value in scope.get("headers", ()):
                if name == b"host":
                    host = host_name(value.decode("latin-1"))
                    break
            if host not in self.hosts:
                response = JSONResponse(
                    {
                        "error": "UnknownHost",
                        "detail": "this service does not answer for that host",
                    },
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the edge's security to ``app``: call it after every other middleware, so that the
    headers are the outermost and also cover the refusals (413, 400) of the others."""
    if settings.trusted_proxy_list:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    if settings.env == "production":
        app.add_middleware(KnownHostsOnly, hosts=settings.allowed_host_names)
    app.add_middleware(SecurityHeaders, policy=api_policy(settings))
