"""Cross-site request forgery against the portal's forms (docs/SECURITY.md, "CSRF").

The JSON API takes bearer tokens only, so a forged cross-site request carries no authority; the
portal's pages use cookies, so each of their forms carries a token bound to the visitor. These
tests post to the portal's forms as another site would, and check that nothing is stored.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger.models import RecordRow
from tests.fixtures.db import Database

FORM = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def records(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(RecordRow)) or 0


def page_token(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    if page.status_code == 404 or "text/html" not in page.headers.get("content-type", ""):
        pytest.skip("the portal is not installed in this tree")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the form carries no csrf field"
    return found.group(1)


def test_a_same_site_post_with_the_token_is_accepted(
    client: TestClient, database: Database
) -> None:
    token = page_token(client)
    before = records(database)
    response = client.post(
        "/", data={**FORM, "csrf": token}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code in (200, 201, 303), response.text[:500]
    assert records(database) == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Referer": "https://evil.example/page"},
    ],
    ids=["other origin", "look-alike origin", "other referer"],
)
def test_a_cross_origin_post_is_refused_even_with_a_valid_token(
    client: TestClient, database: Database, headers: dict[str, str]
) -> None:
    token = page_token(client)
    before = records(database)
    response = client.post("/", data={**FORM, "csrf": token}, headers=headers)
    assert response.status_code == 403
    assert records(database) == before


@pytest.mark.parametrize("token", [None, "", "0" * 64, "not-a-token"])
def test_a_post_without_a_valid_token_is_refused(
    client: TestClient, database: Database, token: str | None
) -> None:
    page_token(client)  # the visitor has the anonymous cookie, as a forged request would send
    before = records(database)
    data = dict(FORM) if token is None else {**FORM, "csrf": token}
    response = client.post("/", data=data, headers={"Origin": "null"})
    assert response.status_code == 403
    assert records(database) == before


def test_another_visitors_token_is_refused(client: TestClient, database: Database) -> None:
    """An attacker's own (valid) token does not work with the victim's cookie."""
    attackers = page_token(client)
    client.cookies.clear()
    page_token(client)  # the victim's visit: a new anonymous cookie
    before = records(database)
    response = client.post("/", data={**FORM, "csrf": attackers})
    assert response.status_code == 403
    assert records(database) == before


def test_the_login_form_is_protected_too(client: TestClient) -> None:
    page_token(client, "/login")
    response = client.post(
        "/login", data={"token": "clt_x"}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403


def test_portal_cookies_are_httponly_and_samesite(client: TestClient) -> None:
    page_token(client)
    header = client.get("/").headers.get("set-cookie") or ""
    client.cookies.clear()
    first = client.get("/")
    cookie = first.headers.get("set-cookie") or header
    assert "civic_anon=" in cookie
    assert "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() or "samesite=strict" in cookie.lower()
