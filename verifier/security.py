"""Security headers on every HTTP answer: one small ASGI middleware for both services.

It lives here, not in ``api``, because the verifier stands alone (it may import nothing of the
API); ``api/security.py`` builds the API's and the portal's policy on top of it. The policy is
written down in docs/SECURITY.md.

The middleware adds each header the route did not set itself, so a page may tighten its own
policy; it never removes one. Headers are computed per request by a ``policy`` callable, since
the portal's Content-Security-Policy names the verifier's origin as the browser reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What every answer of either service carries (docs/SECURITY.md, "Headers").
BASELINE_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
        "interest-cohort=(), browsing-topics=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
}

#: Two years, subdomains included; sent only in production, where TLS is terminated in front.
HSTS = "max-age=63072000; includeSubDomains"

#: FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from jsDelivr and start it with an
#: inline script: they get this policy instead of the strict one (they show only the schema).
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'"
)

#: The verifier serves only JSON (and its docs): nothing may be loaded on its behalf.
JSON_ONLY_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

HeaderPolicy = Callable[[Scope], Mapping[str, str]]


def static_policy(csp: str, *, hsts: bool) -> HeaderPolicy:
    """The same headers for every request: the baseline, ``csp`` (``DOCS_CSP`` on the docs
    pages) and, when ``hsts``, Strict-Transport-Security."""

    def policy(scope: Scope) -> Mapping[str, str]:
        headers = dict(BASELINE_HEADERS)
        headers["Content-Security-Policy"] = DOCS_CSP if scope.get("path") in DOCS_PATHS else csp
        if hsts:
            headers["Strict-Transport-Security"] = HSTS
        return headers

    return policy


class SecurityHeaders:
    """ASGI middleware: adds ``policy(scope)``'s headers to each HTTP response lacking them."""

    def __init__(self, app: ASGIApp, policy: HeaderPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.policy(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                for name, value in extra.items():
                    key = name.lower().encode("latin-1")
                    if key not in present:
                        headers.append((key, value.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
