"""Fixtures for the portal's tests.

Browser tests (``@pytest.mark.browser``) drive Debian's Chromium through Playwright against
the whole service started once per session with ``civic-ledger run`` (ganache, API, worker,
verifier service) on free ports, SQLite, in a temporary data directory:

* ``portal``: the running ``Service`` (``portal.api`` is the portal's base URL,
  ``portal.add_account(role, name, office=…, district=…)`` makes an account and returns its
  token, ``portal.verifier`` the verifier service) and ``browser``, one headless Chromium, both
  once per session for every folder (tests/fixtures/browser.py);
* ``page``: a fresh context and page (1280×900) per test; ``new_page(width, height)`` for
  other viewports (a 375-px phone);
* ``sign_in(page, token)``: signs a page in through ``/login`` (the staff pages);
* ``shoot(page, name)``: writes ``docs/screenshots/<name>.png``, only when
  ``CIVIC_SCREENSHOTS=1`` (a normal test run never rewrites the committed pictures).

Non-browser tests use ``portal_client`` (FastAPI's TestClient on the real app and database,
no chain).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import client, make_settings, people
from tests.fixtures.db import Database
from tests.fixtures.service import Service

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["client", "people"]  # the API tests' fixtures, used beside the portal's

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DEFAULT_VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def new_page(browser: Browser, portal: Service) -> Iterator[Callable[..., Page]]:
    """``new_page(width=1280, height=900, **context_options)``: a page in a fresh context
    (its own cookies), with ``base_url`` set to the portal."""
    contexts: list[Any] = []

    def make(width: int = 1280, height: int = 900, **options: Any) -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=portal.api, **options
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page(**DEFAULT_VIEWPORT)


def shoot(page: Page, name: str, *, full_page: bool = True) -> Path | None:
    """Save ``docs/screenshots/<name>.png`` when ``CIVIC_SCREENSHOTS=1``; else do nothing."""
    if os.environ.get("CIVIC_SCREENSHOTS") != "1":
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page: Page, token: str) -> None:
    """Sign ``page`` in with an account token through the portal's ``/login`` form."""
    page.goto("/login")
    page.locator("input[name=token]").fill(token)
    # wait for the POST's own navigation: wait_for_load_state() alone returns at once (the
    # login page is loaded), and a goto() right after would cancel the sign-in
    with page.expect_navigation():
        page.locator("form[action='/login'] [type=submit]").click()


@pytest.fixture
def portal_client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    """The real app on the test database, without a chain (pages that need none)."""
    with TestClient(create_app(make_settings(database, tmp_path))) as client:
        yield client
