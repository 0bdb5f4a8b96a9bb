"""Bad input found by the schemathesis run, pinned as regression tests; and the request limits
(body size, anonymous submission rate) on every write route (docs/SECURITY.md, "Limits")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import body_bytes_for
from ledger.schemas import SuggestionIn
from tests.api.conftest import People, make_settings
from tests.fixtures.db import Database

SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/suggestions?district=%00",
        "/api/v1/suggestions?category=a%00b&office=JT",
        "/api/v1/stats?by=%00",
        "/api/v1/deputies/deputy-%00/record",
        "/api/v1/suggestions/SG-0000-0000-0000/contact?reason=%00",
    ],
)
def test_a_nul_in_the_url_is_a_400_not_a_database_error(
    client: TestClient, people: People, url: str
) -> None:
    """On PostgreSQL, ``?district=%00`` reached the database and failed there (a 500)."""
    response = client.get(url, headers=people.staff.headers)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "MalformedRequest",
        "detail": "the URL holds a NUL character (%00)",
    }
    assert response.headers["x-content-type-options"] == "nosniff"


def test_percent_encoded_text_that_is_not_nul_still_passes(client: TestClient) -> None:
    response = client.get("/api/v1/suggestions?district=%2500")  # the text "%00"
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("who", "path", "body"),
    [
        ("admin", "/api/v1/accounts", {"role": "office", "name": "a\u0000b", "office": "JT"}),
        ("admin", "/api/v1/accounts", {"role": "deputy", "name": "代表", "district": "\u0000"}),
        ("anonymous", "/api/v1/suggestions", {**SUGGESTION, "title": "路灯\u0000"}),
        ("anonymous", "/api/v1/suggestions", {**SUGGESTION, "district": "\u0000"}),
        (
            "staff",
            "/api/v1/simulations",
            {
                "title": "票决\u0000",
                "ballot_type": "approval",
                "rule": "greedy",
                "budget": 10,
                "projects": [{"id": "A", "name": "电梯\u0000", "cost": 1}],
            },
        ),
    ],
)
def test_a_nul_in_a_body_field_is_refused(
    client: TestClient, people: People, who: str, path: str, body: dict[str, Any]
) -> None:
    """A NUL in an account's name or district reached PostgreSQL, which cannot store one: 500."""
    headers = getattr(people, who).headers if who != "anonymous" else {}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] in {"ValidationError", "InvalidInput"}


# -- limits -----------------------------------------------------------------------------------


def write_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every route of the JSON API that accepts a body or changes state."""
    schema = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"post", "put", "patch", "delete"}
    ]


def test_every_write_route_refuses_a_body_over_the_limit(client: TestClient) -> None:
    routes = write_routes(client)
    assert len(routes) >= 10
    for method, path in routes:
        url = (
            path.replace("{tracking_code}", "SG-0000-0000-0000")
            .replace("{simulation_id}", "SIM-00000000")
            .replace("{deputy_id}", "deputy-00000000")
        )
        big = {
            "/api/v1/attachments": 11 * 1024 * 1024,
            "/api/v1/suggestions": body_bytes_for(SuggestionIn) + 1,
        }.get(path, 65 * 1024)
        response = client.request(
            method, url, content=b"x" * big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413, (method, path, response.status_code)
        assert response.json()["error"] == "PayloadTooLarge"


def test_the_body_limit_counts_bytes_sent_without_a_content_length(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(300):
            yield b"x" * 1024

    response = client.post(
        "/api/v1/suggestions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/api/v1/suggestions", "/api/v1/attachments"])
def test_anonymous_writes_are_rate_limited_per_address(
    database: Database, tmp_path: Path, path: str
) -> None:
    settings = make_settings(database, tmp_path, submit_rate=2)
    with TestClient(create_app(settings)) as client:
        if path.endswith("attachments"):

            def send() -> Any:
                return client.post(path, content=b"plain", headers={"content-type": "text/plain"})
        else:

            def send() -> Any:
                return client.post(path, json=SUGGESTION)

        assert [send().status_code for _ in range(2)] == [201, 201]
        refused = send()
    assert refused.status_code == 429
    assert refused.json()["error"] == "RateLimited"
    assert int(refused.headers["retry-after"]) >= 1
