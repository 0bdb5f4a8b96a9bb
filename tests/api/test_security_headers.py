"""Security headers on every answer of the API app (pages included) and of the verifier, and the
CORS policy of each (docs/SECURITY.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security import content_security_policy, verifier_origin
from ledger.settings import Settings
from tests.api.conftest import People, make_settings
from tests.fixtures.db import Database
from tests.verifier.fakes import FakeChain
from verifier.service import cors_origins_from, create_verifier_app

BASELINE = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
PORTAL_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: ; "
    "connect-src 'self' {verifier}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
).replace("data: ;", "data:;")
SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def assert_baseline(headers: dict[str, str] | object) -> None:
    for name, value in BASELINE.items():
        assert headers[name] == value, name  # type: ignore[index]
    assert "camera=()" in headers["permissions-policy"]  # type: ignore[index]


def test_every_kind_of_api_answer_carries_the_headers(client: TestClient, people: People) -> None:
    expected_csp = PORTAL_CSP.format(verifier="http://127.0.0.1:8001")
    answers = {
        "list": client.get("/api/v1/suggestions"),
        "created with a token": client.post("/api/v1/suggestions", json=SUGGESTION),
        "me": client.get("/api/v1/me", headers=people.staff.headers),
        "401": client.get("/api/v1/me", headers={"Authorization": "Bearer clt_forged"}),
        "404": client.get("/api/v1/no-such-thing"),
        "405": client.delete("/api/v1/suggestions"),
        "422": client.post("/api/v1/suggestions", json={}),
        "400": client.post(
            "/api/v1/suggestions", content=b"{", headers={"content-type": "application/json"}
        ),
        # refused by the body limit middleware, before any route runs
        "413": client.post(
            "/api/v1/suggestions",
            content=b"x" * (300 * 1024),  # above the submissions' limit (docs/SECURITY.md)
            headers={"content-type": "application/json"},
        ),
        "openapi": client.get("/openapi.json"),
    }
    for what, response in answers.items():
        assert_baseline(response.headers)
        assert response.headers["content-security-policy"] == expected_csp, what
        assert response.headers["cache-control"] == "no-store", what
        assert "strict-transport-security" not in response.headers, what
    assert answers["created with a token"].json()["citizen_token"].startswith("cit_")
    assert answers["413"].status_code == 413


def test_the_docs_page_gets_its_own_policy_the_rest_stays_strict(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert_baseline(docs.headers)
    csp = docs.headers["content-security-policy"]
    assert "https://cdn.jsdelivr.net" in csp and "frame-ancestors 'none'" in csp
    assert "cdn.jsdelivr.net" not in client.get("/api/v1/stats").headers["content-security-policy"]


def test_portal_pages_hold_under_the_policy(client: TestClient) -> None:
    """The portal's pages use no inline script or style, so the strict CSP does not break them."""
    page = client.get("/")
    if page.status_code == 404 or "text/html" not in page.headers.get("content-type", ""):
        pytest.skip("the portal is not installed in this tree")
    assert page.status_code == 200
    assert_baseline(page.headers)
    assert page.headers["content-security-policy"] == PORTAL_CSP.format(
        verifier="http://127.0.0.1:8001"
    )
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline <script>"
    assert "<style" not in html, "an inline <style>"
    assert not re.search(r"\sstyle=", html), "a style attribute"
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"
    static = client.get("/static/portal.css")
    assert static.status_code == 200
    assert_baseline(static.headers)
    assert "cache-control" not in static.headers or static.headers["cache-control"] != "no-store"


def test_connect_src_names_the_configured_verifier_origin(
    database: Database, tmp_path: Path
) -> None:
    settings = make_settings(
        database, tmp_path, verifier_public_url="https://verify.example.org/some/path"
    )
    with TestClient(create_app(settings)) as client:
        csp = client.get("/api/v1/stats").headers["content-security-policy"]
    assert csp == PORTAL_CSP.format(verifier="https://verify.example.org")


def test_the_policy_never_follows_the_host_header(client: TestClient) -> None:
    """connect-src comes from the settings alone: a Host header, hostile or not, changes
    nothing (issue 21, item 8)."""
    expected = PORTAL_CSP.format(verifier="http://127.0.0.1:8001")
    for host in ("evil.example", "evil.example; script-src *", "a b", "[::1]:8000", ""):
        response = client.get("/api/v1/stats", headers={"host": host})
        assert response.headers["content-security-policy"] == expected, host


def test_verifier_origin_follows_the_settings(tmp_path: Path) -> None:
    base = Settings(env="test", data_dir=tmp_path, verifier_port=9001)
    assert verifier_origin(base) == "http://127.0.0.1:9001"
    public = Settings(
        env="test", data_dir=tmp_path, verifier_port=9001, public_url="https://ledger.example"
    )
    assert verifier_origin(public) == "https://ledger.example:9001"
    own = Settings(env="test", data_dir=tmp_path, verifier_public_url="https://v.example:8443/x")
    assert verifier_origin(own) == "https://v.example:8443"
    assert content_security_policy(None).count("connect-src 'self';") == 1


def test_hsts_only_in_production(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    settings = Settings(
        env="production",
        data_dir=tmp_path,
        database_url="postgresql://civic@db.internal/civic",
        chain_rpc="https://chain.internal:8545",
        contract="0x" + "ab" * 20,
        key_file=secrets_dir / "anchor.json",
        key_password_file=secrets_dir / "anchor.password",
        pii_key_file=secrets_dir / "pii.key",
        portal_secret_file=secrets_dir / "portal.secret",
        public_url="https://ledger.example.gov.cn",
        log_key_dir=secrets_dir / "log-keys",
        log_name="ledger.example.gov.cn",
    )
    # No lifespan (no database here): the schema route and a 404 need none.
    client = TestClient(create_app(settings), base_url="https://ledger.example.gov.cn")
    for response in (client.get("/openapi.json"), client.get("/api/v1/nothing")):
        assert response.headers["strict-transport-security"].startswith("max-age=63072000")
        assert_baseline(response.headers)


def test_the_api_sends_no_cors_headers(client: TestClient) -> None:
    """Bearer tokens, no cookies, no CORS: another site's scripts cannot read the API."""
    origin = {"Origin": "https://evil.example"}
    response = client.get("/api/v1/stats", headers=origin)
    assert response.status_code == 200
    assert not any(name.startswith("access-control-") for name in response.headers)
    preflight = client.options(
        "/api/v1/suggestions",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 405
    assert not any(name.startswith("access-control-") for name in preflight.headers)
    assert "set-cookie" not in client.post("/api/v1/suggestions", json=SUGGESTION).headers


# -- the verifier service -------------------------------------------------------------------

PORTAL = "http://127.0.0.1:8000"


def verifier(*, production: bool = False) -> TestClient:
    chain = FakeChain()
    return TestClient(
        create_verifier_app(
            rpc_url="http://fake.test",
            api_url="http://civic.test",
            reader_factory=lambda _rpc, _timeout: chain,
            cors_origins=[PORTAL],
            production=production,
        )
    )


def test_every_verifier_answer_carries_the_headers() -> None:
    client = verifier()
    answers = {
        "health": client.get("/healthz"),
        "verdict": client.post("/verify/receipt", content=b"{}"),
        "413": client.post("/verify/receipt", content=b" " * (65 * 1024)),
        "422": client.get("/verify/batch/suggestions/-1"),
        "404": client.get("/nothing"),
        "preflight": client.options(
            "/verify/receipt",
            headers={"Origin": PORTAL, "Access-Control-Request-Method": "POST"},
        ),
    }
    for what, response in answers.items():
        assert_baseline(response.headers)
        assert response.headers["content-security-policy"].startswith("default-src 'none'"), what
        assert "strict-transport-security" not in response.headers, what
    assert answers["verdict"].json()["verdict"] == "malformed"
    assert answers["413"].status_code == 413
    assert "strict-transport-security" in verifier(production=True).get("/healthz").headers


def test_the_verifier_allows_only_the_portal_origins() -> None:
    client = verifier()
    allowed = client.post("/verify/receipt", content=b"{}", headers={"Origin": PORTAL})
    assert allowed.headers["access-control-allow-origin"] == PORTAL
    assert "access-control-allow-credentials" not in allowed.headers
    other = client.post(
        "/verify/receipt", content=b"{}", headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers
    preflight = client.options(
        "/verify/receipt",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(
    "value",
    ["*", "http://a.example, *", "https://a.example/path", "ftp://a.example", "a.example"],
)
def test_wildcard_and_non_origins_are_refused_for_the_verifier(value: str) -> None:
    with pytest.raises(ValueError, match=r"not an origin|never"):
        cors_origins_from(value)


def test_verifier_cors_origins_parse_and_default() -> None:
    assert cors_origins_from(" https://portal.example/ ,http://[::1]:8000") == (
        "https://portal.example",
        "http://[::1]:8000",
    )
    assert cors_origins_from("", ("http://x.example",)) == ("http://x.example",)
    with pytest.raises(ValueError, match="never"):
        create_verifier_app(
            rpc_url="http://fake.test",
            api_url="http://civic.test",
            reader_factory=lambda _rpc, _timeout: FakeChain(),
            cors_origins=["*"],
        )
