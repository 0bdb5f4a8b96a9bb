"""The anonymous limits count real clients, once for the whole service (issue 21, items 2 and 3).

Item 2: uvicorn believed ``X-Forwarded-For`` from loopback, so 70 submissions naming 70
addresses were all accepted. Now the header is believed only from CIVIC_TRUSTED_PROXIES.
Item 3: the count was per API process (twice the advertised 30 a minute with two processes).
Now it lives in the database, written through the writer, and every process counts the same
hits. The real ``civic-ledger api`` (uvicorn, two processes) is tested here, as are
in-process apps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.supervisor import uvicorn_options
from ledger import ratelimit
from ledger.devchain import free_port
from ledger.models import RateWindow
from ledger.settings import Settings
from tests.api.conftest import People, make_settings
from tests.fixtures.db import Database

ROOT = Path(__file__).resolve().parents[2]
SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了三周。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


class Api:
    """``civic-ledger api`` (uvicorn, two processes) on a free port."""

    def __init__(self, data_dir: Path, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"api-{self.port}.log"
        self.env = {
            **os.environ,
            "CIVIC_DATA_DIR": str(data_dir),
            "CIVIC_DATABASE_URL": database_url,
            "CIVIC_API_PORT": str(self.port),
            "CIVIC_API_WORKERS": "2",
            "CIVIC_CHAIN_RPC": "http://127.0.0.1:9",
            **env,
        }
        for name in ("CIVIC_ENV", "CIVIC_WRITER_SOCKET", "FORWARDED_ALLOW_IPS"):
            if name not in env:
                self.env.pop(name, None)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Api:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "api"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.2)

    def __exit__(self, *_exc: object) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def submit(self, forwarded_for: str) -> int:
        """One anonymous submission on a new connection (so both processes take some)."""
        response = httpx.post(
            f"{self.url}/api/v1/suggestions",
            json=SUGGESTION,
            headers={"X-Forwarded-For": forwarded_for, "Connection": "close"},
            timeout=10,
        )
        assert response.status_code in (201, 429), response.text
        if response.status_code == 429:
            assert response.json()["error"] == "RateLimited"
            assert int(response.headers["retry-after"]) >= 1
        return response.status_code


def test_forwarded_for_from_loopback_names_no_one_when_no_proxy_is_trusted(
    database: Database, tmp_path: Path
) -> None:
    """70 submissions naming 70 addresses, from loopback, against two API processes: one
    client, 30 accepted (CIVIC_SUBMIT_RATE), 40 refused."""
    with Api(tmp_path / "data", database.url, CIVIC_SUBMIT_RATE="30") as api:
        statuses = Counter(api.submit(f"203.0.113.{i}") for i in range(70))
    assert statuses == {201: 30, 429: 40}


def test_a_trusted_proxy_names_the_client_and_the_count_is_shared_by_the_processes(
    database: Database, tmp_path: Path
) -> None:
    env = {"CIVIC_SUBMIT_RATE": "30", "CIVIC_TRUSTED_PROXIES": "127.0.0.1"}
    with Api(tmp_path / "data", database.url, **env) as api:
        distinct = Counter(api.submit(f"203.0.113.{i}") for i in range(70))
        one = Counter(api.submit("198.51.100.7") for _ in range(31))
    assert distinct == {201: 70}  # 70 clients behind the proxy
    assert one == {201: 30, 429: 1}  # one of them, counted once across both processes


def test_civic_ledger_api_leaves_forwarded_headers_to_the_app(tmp_path: Path) -> None:
    """uvicorn's own proxy handling (which trusts loopback by default) is off; the app
    decides (api.security), whatever server runs it."""
    for proxies in ("", "10.0.1.5"):
        settings = Settings(env="test", data_dir=tmp_path, api_workers=2, trusted_proxies=proxies)
        options = uvicorn_options(settings)
        assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == ""


# -- in-process apps ------------------------------------------------------------------------


@pytest.fixture
def two_processes(database: Database, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two applications on one database, as two API processes are."""
    settings = make_settings(database, tmp_path, submit_rate=2)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as other:
        yield one, other


def test_the_limit_is_counted_once_for_every_process(
    two_processes: tuple[TestClient, TestClient],
) -> None:
    one, other = two_processes
    assert one.post("/api/v1/suggestions", json=SUGGESTION).status_code == 201
    assert other.post("/api/v1/suggestions", json=SUGGESTION).status_code == 201
    refused = one.post("/api/v1/suggestions", json=SUGGESTION)
    assert refused.status_code == 429
    assert "at most 2 anonymous submissions a minute" in refused.json()["detail"]
    assert other.post("/api/v1/suggestions", json=SUGGESTION).status_code == 429


def test_accounts_are_not_counted(
    two_processes: tuple[TestClient, TestClient], people: People
) -> None:
    one, _ = two_processes
    for _ in range(3):
        answer = one.post("/api/v1/suggestions", json=SUGGESTION, headers=people.deputy.headers)
        assert answer.status_code == 201


@pytest.mark.parametrize("trusted", [False, True])
def test_in_process_apps_believe_forwarded_for_only_from_trusted_proxies(
    database: Database, tmp_path: Path, trusted: bool
) -> None:
    proxies = "10.0.0.0/8" if trusted else ""
    settings = make_settings(database, tmp_path, submit_rate=1, trusted_proxies=proxies)
    with TestClient(create_app(settings), client=("10.1.2.3", 4000)) as client:

        def submit(forwarded_for: str) -> int:
            headers = {"X-Forwarded-For": forwarded_for}
            return client.post("/api/v1/suggestions", json=SUGGESTION, headers=headers).status_code

        statuses = [submit("203.0.113.1"), submit("203.0.113.2"), submit("203.0.113.1")]
    assert statuses == ([201, 201, 429] if trusted else [201, 429, 429])
    with database.sessions() as session:
        clients = set(session.scalars(select(RateWindow.client)))
    assert clients == ({"203.0.113.1", "203.0.113.2"} if trusted else {"10.1.2.3"})


def test_a_wildcard_or_a_name_is_not_a_trusted_proxy(tmp_path: Path) -> None:
    for value in ("*", "proxy.internal", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="CIVIC_TRUSTED_PROXIES"):
            Settings(env="test", data_dir=tmp_path, trusted_proxies=value)
    settings = Settings(env="test", data_dir=tmp_path, trusted_proxies="10.0.1.5, 10.0.2.0/24,::1")
    assert settings.trusted_proxy_list == ["10.0.1.5", "10.0.2.0/24", "::1"]


# -- the sliding window --------------------------------------------------------------------


def test_at_most_limit_hits_in_any_window(database: Database) -> None:
    rule = ratelimit.RateLimit("submit", 3, 60.0, "submissions")
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def hit(seconds: float, client: str = "192.0.2.1") -> float:
        with database.sessions.begin() as session:
            return ratelimit.hit(session, client, [rule], start + timedelta(seconds=seconds))

    assert [hit(0), hit(10), hit(20)] == [0.0, 0.0, 0.0]
    assert hit(30) == pytest.approx(30.0)  # the hit at 0 leaves the window at 60
    assert hit(59.9) == pytest.approx(0.1)
    assert hit(30, client="192.0.2.2") == 0.0  # another address has its own count
    assert hit(60) == 0.0
    assert hit(61) == pytest.approx(9.0)  # now 10, 20 and 60 are in the window
    assert hit(80.5) == 0.0


def test_a_refusal_under_one_limit_counts_under_none(database: Database) -> None:
    minute = ratelimit.RateLimit("submit", 5, 60.0, "submissions")
    hour = ratelimit.RateLimit("upload", 1, 3600.0, "uploads")
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with database.sessions.begin() as session:
        assert ratelimit.hit(session, "192.0.2.9", [minute, hour], now) == 0.0
        assert ratelimit.hit(session, "192.0.2.9", [minute, hour], now) == pytest.approx(3600)
        # the refused upload was not counted as a submission either: 4 more fit the minute
        for _ in range(4):
            assert ratelimit.hit(session, "192.0.2.9", [minute], now) == 0.0
        assert ratelimit.hit(session, "192.0.2.9", [minute], now) > 0


def test_idle_windows_are_forgotten(database: Database) -> None:
    rule = ratelimit.RateLimit("submit", 3, 60.0, "submissions")
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with database.sessions.begin() as session:
        ratelimit.hit(session, "192.0.2.1", [rule], now - timedelta(days=2))
        ratelimit.hit(session, "192.0.2.2", [rule], now - timedelta(hours=1))
        assert ratelimit.forget_idle(session, now) == 1
        assert set(session.scalars(select(RateWindow.client))) == {"192.0.2.2"}
