"""One Jinja2 environment for every portal page, and ``render`` that fills in what each page
needs: the language and ``t``, the signed-in account, the CSRF token, the verifier's address
and the navigation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.portal import i18n
from api.portal.csrf import FIELD as CSRF_FIELD
from api.portal.csrf import csrf_token, set_anon_cookie
from api.portal.session import portal_principal
from api.state import AppState

TEMPLATES_DIR = Path(__file__).parent / "templates"
#: Times are shown in China Standard Time (no daylight saving), labelled as such.
LOCAL_ZONE = timezone(timedelta(hours=8), "UTC+8")

environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class NavItem:
    key: str  # message key of the label
    href: str


#: The header's navigation, in order. A page is "current" when its path starts with href.
NAV: tuple[NavItem, ...] = (
    NavItem("nav.submit", "/"),
    NavItem("nav.verify", "/verify"),
    NavItem("nav.dashboard", "/dashboard"),
    NavItem("nav.workbench", "/workbench"),
    NavItem("nav.simulations", "/simulations"),
    NavItem("nav.inspector", "/inspector"),
)


def verifier_url(request: Request) -> str:
    """The verifier service as the visitor's browser reaches it (no trailing slash):
    ``CIVIC_VERIFIER_PUBLIC_URL``, else the public URL's host on ``CIVIC_VERIFIER_PORT``
    (never the Host header)."""
    state: AppState = request.app.state.civic
    return state.settings.resolved_verifier_public_url


def local_time(value: str | datetime | None, with_seconds: bool = False) -> str:
    """A record time (``YYYY-MM-DDTHH:MM:SS.sssZ`` or a datetime) in UTC+8, for people."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    shown = moment.astimezone(LOCAL_ZONE)
    return shown.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M") + " (UTC+8)"


# Text people typed (titles, names, districts, reasons) may hold right-to-left characters or
# bidirectional overrides (U+202E): shown as it comes, an override reverses what follows it
# on the line, such as a project's cost beside its name. Templates isolate every such text
# (issue 21): ``dir="auto"`` on an element holding only that text, ``|bdi`` where it shares a
# line, ``|isolate`` where no markup is possible (the page title, an SVG tooltip or label).
def bdi(value: object) -> Markup:
    """``value`` escaped, in a ``<bdi>`` element: isolated from the text around it."""
    return Markup("<bdi>{}</bdi>").format(value)


def isolate(value: object) -> str:
    """``value`` between FIRST STRONG ISOLATE and POP DIRECTIONAL ISOLATE (U+2068, U+2069):
    plain text's own isolation, for places that take no markup."""
    return f"\u2068{value}\u2069"


environment.filters["local_time"] = local_time
environment.filters["bdi"] = bdi
environment.filters["isolate"] = isolate


def _switch_url(request: Request, lang: str) -> str:
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", lang))
    return f"{request.url.path}?{urlencode(params)}"


def _nav(request: Request) -> list[dict[str, Any]]:
    path = request.url.path
    items = []
    for item in NAV:
        current = path == "/" if item.href == "/" else path.startswith(item.href)
        items.append({"key": item.key, "href": item.href, "current": current})
    return items


def page_context(request: Request) -> dict[str, Any]:
    """What every template gets (also usable to render a fragment by hand)."""
    lang = i18n.language_of(request)
    other = "en" if lang == "zh" else "zh"
    return {
        "request": request,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "t": partial(i18n.translate, lang),
        "principal": portal_principal(request),
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "verifier_url": verifier_url(request),
        "nav": _nav(request),
        "switch_lang": other,
        "switch_lang_url": _switch_url(request, other),
        "current_url": str(request.url.path)
        + (f"?{request.url.query}" if request.url.query else ""),
    }


def render(request: Request, name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    """The template ``name`` as an HTML response; ``ctx`` adds to (or overrides) the
    common context. Sets the ``lang`` and ``civic_anon`` cookies when needed."""
    context = page_context(request) | ctx
    html = environment.get_template(name).render(context)
    response = HTMLResponse(html, status_code=status_code)
    i18n.remember_language(request, response)
    set_anon_cookie(request, response)
    return response
