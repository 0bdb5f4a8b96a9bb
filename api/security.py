"""The API's and the portal's security headers (docs/SECURITY.md).

Built on ``verifier.security.SecurityHeaders`` (the verifier cannot import the API, so the
middleware lives there). What this module adds is the policy of the app that serves the
portal's pages:

* a Content-Security-Policy without inline scripts or styles, whose ``connect-src`` names the
  verifier service, because the portal's pages ask it for verdicts from the browser:
  ``settings.verifier_public_url`` when set, else ``http://<the request's host>:<verifier_port>``;
* ``Cache-Control: no-store`` on every answer but the static files, so that no browser or proxy
  keeps a token (account creation, a citizen's submission), personal data (contact, a
  confidential text, attachments) or a signed-in page;
* Strict-Transport-Security only when ``settings.env == "production"``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import Scope

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

# A Host header we are willing to repeat in a header: a DNS name, IPv4 or a bracketed IPv6
# literal, with an optional port. Anything else (spaces, ';', quotes…) is never echoed.
_HOST = re.compile(
    r"^(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::\d{1,5})?$"
)


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


def verifier_origin(settings: Settings, host_header: str | None) -> str | None:
    """Where browsers reach the verifier: the configured public URL, else the request's host
    on the verifier port; None when the Host header is not one we would repeat."""
    if settings.verifier_public_url:
        return origin_of(settings.verifier_public_url)
    match = _HOST.match(host_header or "")
    if match is None:
        return None
    return f"http://{match['name']}:{settings.verifier_port}"


def _host_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


def api_policy(settings: Settings) -> HeaderPolicy:
    """The header policy of the API app, for ``SecurityHeaders``."""
    production = settings.env == "production"
    fixed = origin_of(settings.verifier_public_url) if settings.verifier_public_url else None

    def policy(scope: Scope) -> Mapping[str, str]:
        path = str(scope.get("path", ""))
        headers = dict(BASELINE_HEADERS)
        if path in DOCS_PATHS:
            headers["Content-Security-Policy"] = DOCS_CSP
        else:
            origin = fixed if fixed else verifier_origin(settings, _host_of(scope))
            headers["Content-Security-Policy"] = content_security_policy(origin)
        if not path.startswith(CACHEABLE_PREFIXES):
            headers["Cache-Control"] = NO_STORE
        if production:
            headers["Strict-Transport-Security"] = HSTS
        return headers

    return policy


def install(app: FastAPI, settings: Settings) -> None:
    """Add the security headers to every answer of ``app``: call it after every other
    middleware, so that it is the outermost and also covers their refusals (413, 400)."""
    app.add_middleware(SecurityHeaders, policy=api_policy(settings))
