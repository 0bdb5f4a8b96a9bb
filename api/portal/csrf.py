"""Cross-site request forgery protection for the portal's forms.

Every POST form carries a hidden ``csrf`` field: HMAC-SHA256(server secret, the visitor's
binding), where the binding is the session token of a signed-in account, or else the random
``civic_anon`` cookie given to anonymous visitors with their first page. ``verify_csrf``
(a route dependency) refuses, with a 403 page, a missing or wrong token and an ``Origin`` (or,
without one, a ``Referer``) naming another host than the request's own.

The server secret is 32 random bytes in ``settings.resolved_portal_secret_file`` (default
``$CIVIC_DATA_DIR/portal.secret``), created at first use with mode 0600 and refused when others
may read it. In production it must exist beforehand: it is never generated there.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from api.portal.errors import PageError
from api.portal.session import session_token
from api.state import AppState, made_once
from contracts.secretfile import SecretFileError, read_secret_file

ANON_COOKIE = "civic_anon"
FIELD = "csrf"


class PortalSecretError(RuntimeError):
    pass


def load_or_create_portal_secret(path: Path, *, create: bool = True) -> bytes:
    """The 32-byte portal secret, created (mode 0600) when missing and ``create`` is true."""
    if create and not path.exists():
        # Written whole to a private temporary file, then linked into place: several API
        # processes start at once, and none may read a half-written secret. The loser of the
        # race reads the winner's.
        secret = secrets.token_bytes(32)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secret.hex() + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass
        else:
            return secret
        finally:
            tmp.unlink(missing_ok=True)
    try:
        secret = bytes.fromhex(read_secret_file(path, "the portal secret").decode("ascii").strip())
    except SecretFileError as exc:
        hint = ""
        if not path.exists():
            hint = (
                " (create it: python -c 'import secrets; print(secrets.token_hex(32))' > "
                f"{path}; chmod 600 {path})"
            )
        raise PortalSecretError(f"{exc}{hint}") from None
    except ValueError:
        secret = b""
    if len(secret) < 32:
        raise PortalSecretError(f"{path} does not hold a hex secret of at least 32 bytes")
    return secret


def portal_secret(request: Request) -> bytes:
    """The app's secret, loaded (or created) once at first use."""

    def load(civic: AppState) -> bytes:
        settings = civic.settings
        path = settings.resolved_portal_secret_file
        path.parent.mkdir(parents=True, exist_ok=True)
        return load_or_create_portal_secret(path, create=settings.env != "production")

    return made_once(request.app.state, "portal_secret", load)


def _binding(request: Request) -> str | None:
    token = session_token(request)
    if token is not None:
        return "session:" + token
    anon = request.cookies.get(ANON_COOKIE) or getattr(request.state, "new_anon", None)
    return "anon:" + anon if anon else None


def _token_for(secret: bytes, binding: str) -> str:
    return hmac.new(secret, b"civic-portal-csrf\x00" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The token for this visitor's forms. An anonymous visitor without a ``civic_anon``
    cookie gets a fresh value, which ``set_anon_cookie`` then sets on the response."""
    binding = _binding(request)
    if binding is None:
        request.state.new_anon = secrets.token_urlsafe(24)
        binding = "anon:" + request.state.new_anon
    return _token_for(portal_secret(request), binding)


def set_anon_cookie(request: Request, response: Response) -> None:
    new_anon: str | None = getattr(request.state, "new_anon", None)
    if new_anon:
        civic: AppState = request.app.state.civic
        response.set_cookie(
            ANON_COOKIE,
            new_anon,
            httponly=True,
            samesite="lax",
            secure=civic.settings.env == "production",
            path="/",
        )


class CsrfRejected(PageError):
    def __init__(self, detail_key: str) -> None:
        super().__init__(403, "error.csrf.title", detail_key)


def _same_host(request: Request, url: str) -> bool:
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(url).netloc.lower() == host.lower()


async def verify_csrf(request: Request) -> None:
    """Route dependency for every portal POST: a right ``csrf`` field from the same site."""
    origin = request.headers.get("origin")
    referer = request.headers.get("referer")
    # Under the site's "Referrer-Policy: no-referrer" browsers send "Origin: null" (and no
    # Referer) even for same-origin form posts: that says nothing, and the token decides.
    if origin == "null":
        origin = None
    if origin is not None:
        if not _same_host(request, origin):
            raise CsrfRejected("error.csrf.origin")
    elif referer and not _same_host(request, referer):
        raise CsrfRejected("error.csrf.origin")
    binding = _binding(request)
    form = await request.form()
    given = form.get(FIELD)
    if binding is None or not isinstance(given, str) or not given:
        raise CsrfRejected("error.csrf.missing")
    expected = _token_for(portal_secret(request), binding)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRejected("error.csrf.bad")
