"""Absolute URLs come from the configured public URL, never from the Host header, and in
production a Host the service does not answer for is refused (issue 21, item 8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.api.conftest import People, make_settings
from tests.fixtures.db import Database

SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
EVIL = {"host": "evil.example"}


def test_receipt_urls_use_the_public_url_whatever_the_host_header(
    database: Database, tmp_path: Path, people: People
) -> None:
    settings = make_settings(database, tmp_path, public_url="https://ledger.example.gov.cn/")
    with TestClient(create_app(settings)) as client:
        submitted = client.post("/api/v1/suggestions", json=SUGGESTION, headers=EVIL).json()
        code, record_hash = submitted["tracking_code"], submitted["record_hash"]
        accepted = client.post(
            f"/api/v1/suggestions/{code}/transitions",
            json={"to": "DEPUTY_ACCEPTED"},
            headers={**people.deputy.headers, **EVIL},
        )
        assert accepted.status_code == 201, accepted.text
    base = "https://ledger.example.gov.cn/api/v1/records"
    assert submitted["receipt_url"] == f"{base}/{record_hash}/receipt"
    assert accepted.json()["receipt_url"] == f"{base}/{accepted.json()['record_hash']}/receipt"


def test_the_development_default_is_the_api_address(database: Database, tmp_path: Path) -> None:
    settings = make_settings(database, tmp_path, api_port=8123)
    with TestClient(create_app(settings)) as client:
        submitted = client.post("/api/v1/suggestions", json=SUGGESTION, headers=EVIL).json()
        csp = client.get("/api/v1/stats", headers=EVIL).headers["content-security-policy"]
    assert submitted["receipt_url"].startswith("http://127.0.0.1:8123/api/v1/records/")
    assert "connect-src 'self' http://127.0.0.1:8001;" in csp
    assert "evil" not in csp


@pytest.mark.parametrize(
    ("overrides", "public", "verifier"),
    [
        ({}, "http://127.0.0.1:8000", "http://127.0.0.1:8001"),
        ({"api_host": "0.0.0.0"}, "http://127.0.0.1:8000", "http://127.0.0.1:8001"),  # noqa: S104
        ({"api_host": "10.0.1.11"}, "http://10.0.1.11:8000", "http://10.0.1.11:8001"),
        ({"api_host": "::1"}, "http://[::1]:8000", "http://[::1]:8001"),
        (
            {"public_url": "https://ledger.example.gov.cn"},
            "https://ledger.example.gov.cn",
            "https://ledger.example.gov.cn:8001",
        ),
        (
            {
                "public_url": "https://ledger.example.gov.cn",
                "verifier_public_url": "https://verify.example.gov.cn/",
            },
            "https://ledger.example.gov.cn",
            "https://verify.example.gov.cn",
        ),
    ],
)
def test_public_urls_from_the_settings(
    tmp_path: Path, overrides: dict[str, Any], public: str, verifier: str
) -> None:
    settings = Settings(env="test", data_dir=tmp_path, **overrides)
    assert settings.resolved_public_url == public
    assert settings.resolved_verifier_public_url == verifier


@pytest.mark.parametrize(
    "value", ["ledger.example.gov.cn", "https://x/path", "ftp://x", "https://"]
)
def test_the_public_url_is_an_origin(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Settings(env="test", data_dir=tmp_path, public_url=value)


def production(tmp_path: Path, **overrides: Any) -> Settings:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "env": "production",
        "data_dir": tmp_path,
        "database_url": "postgresql://civic@db.internal/civic",
        "chain_rpc": "https://chain.internal:8545",
        "contract": "0x" + "ab" * 20,
        "key_file": secrets_dir / "anchor.json",
        "key_password_file": secrets_dir / "anchor.password",
        "pii_key_file": secrets_dir / "pii.key",
        "portal_secret_file": secrets_dir / "portal.secret",
        "public_url": "https://ledger.example.gov.cn",
        "log_key_dir": secrets_dir / "log-keys",
        "log_name": "ledger.example.gov.cn",
        "api_host": "10.0.1.11",
        "allowed_hosts": "monitor.internal, Ledger-Alias.example",
        **overrides,
    }
    return Settings(**values)


@pytest.mark.parametrize(
    ("host", "answered"),
    [
        ("ledger.example.gov.cn", True),
        ("LEDGER.example.gov.cn:443", True),
        ("10.0.1.11:8000", True),  # the API's own address (monitoring, the verifier)
        ("monitor.internal", True),  # CIVIC_ALLOWED_HOSTS
        ("ledger-alias.example", True),
        ("evil.example", False),
        ("ledger.example.gov.cn.evil.example", False),
        ("127.0.0.1:8000", False),
        ("", False),
    ],
)
def test_production_answers_only_its_own_host_names(
    tmp_path: Path, host: str, answered: bool
) -> None:
    # No lifespan (no database here): the schema route and a 404 need none.
    client = TestClient(create_app(production(tmp_path)))
    response = client.get("/api/v1/nothing", headers={"host": host})
    if answered:
        assert response.status_code == 404
        assert response.json()["error"] == "NotFound"
    else:
        assert response.status_code == 400
        assert response.json() == {
            "error": "UnknownHost",
            "detail": "this service does not answer for that host",
        }
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_development_answers_any_host(client: TestClient) -> None:
    assert client.get("/api/v1/stats", headers=EVIL).status_code == 200
