"""What an outside probe of the running service found (issue 21), pinned: each case failed
before its fix. Nesting depth and the catch-all 500 (item 1), staff input that made 500s (5),
the exact office filter (6), the submission body limit against the text limit (7), strict
simulation parameters (12) and titles with nothing visible (13). The portal's side of items
7 and 13 is in tests/portal/test_hardening_pages.py."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.limits import MAX_JSON_DEPTH, body_bytes_for, nests_deeper_than
from core.canonical import MAX_SAFE_INTEGER
from ledger import auth
from ledger.schemas import SuggestionIn
from tests.api.conftest import People, make_settings
from tests.api.test_simulations_api import PB, YN, Voter, opened, voters
from tests.api.test_workflow_api import walk_to
from tests.fixtures.db import Database

__all__ = ["voters"]  # the simulation tests' fixture, used here

SUGGESTION = {
    "title": "路灯不亮",
    "text": "幸福路口的路灯坏了。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
BASELINE_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


def nested(depth: int, inner: Any = "A") -> Any:
    """``inner`` inside ``depth`` arrays."""
    value = inner
    for _ in range(depth):
        value = [value]
    return value


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """The one error shape, with the security headers."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert isinstance(body["detail"], str)
    for header in BASELINE_HEADERS:
        assert header in response.headers, header
    return body


# -- 1. nesting depth at the edge, and no exception without the error shape -------------------


def test_a_ballot_nested_400_levels_is_refused_before_it_is_parsed(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    """The probe's case: an anonymous ballot of about 1 KB whose choices nest 400 levels made
    a RecursionError (a plain-text 500 without the security headers)."""
    sim = opened(client, people, PB)
    ballot = voters[0].ballot(sim, ["A"])
    ballot["choices"] = nested(400)
    body = json.dumps(ballot).encode()
    assert len(body) < 1500
    response = client.post(
        f"/api/v1/simulations/{sim}/ballots",
        content=body,
        headers={"content-type": "application/json"},
    )
    detail = assert_error(response, 400, "NestingTooDeep")["detail"]
    assert f"deeper than {MAX_JSON_DEPTH} levels" in detail


def write_routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.get("/openapi.json").json()
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"post", "put", "patch", "delete"}
    ]


def test_every_json_body_is_held_to_the_depth_limit(client: TestClient, people: People) -> None:
    deep = json.dumps(nested(MAX_JSON_DEPTH + 1)).encode()
    routes = [r for r in write_routes(client) if r[1] != "/api/v1/attachments"]
    assert len(routes) >= 10
    for method, path in routes:
        url = (
            path.replace("{tracking_code}", "SG-0000-0000-0000")
            .replace("{simulation_id}", "SIM-00000000")
            .replace("{deputy_id}", "deputy-00000000")
        )
        for content_type in ("application/json", "application/merge-patch+json", None):
            headers = {**people.staff.headers}
            if content_type:
                headers["content-type"] = content_type
            response = client.request(method, url, content=deep, headers=headers)
            assert_error(response, 400, "NestingTooDeep")


def test_nesting_up_to_the_limit_and_brackets_in_strings_pass(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    sim = opened(client, people, PB)
    at_limit = voters[0].ballot(sim, nested(MAX_JSON_DEPTH - 2))  # {choices: [...]}: 32 levels
    response = client.post(f"/api/v1/simulations/{sim}/ballots", json=at_limit)
    assert response.json()["error"] != "NestingTooDeep"  # refused for what it is: 422
    brackets = {**SUGGESTION, "text": "[{" * 5000}
    assert client.post("/api/v1/suggestions", json=brackets).status_code == 201


def test_the_depth_scan_is_linear_and_ignores_strings() -> None:
    assert not nests_deeper_than(b'{"a": "[[[[[[[[[[[[[["}', 3)
    assert not nests_deeper_than(b'["\\"[[[[[[[", [[1]]]', 3)
    assert nests_deeper_than(b'[[[["\\\\"]]]]', 3)
    assert nests_deeper_than(b"[" * 4 + b'"unterminated [', 3)
    hostile = b'"' + b'\\"[' * 200_000  # one string, never closed, full of escaped quotes
    started = time.perf_counter()
    assert not nests_deeper_than(hostile, MAX_JSON_DEPTH)
    assert time.perf_counter() - started < 1.0


def test_a_file_upload_is_not_scanned_as_json(client: TestClient) -> None:
    response = client.post("/api/v1/attachments", content=b"[" * 100, headers={})
    assert response.json()["error"] != "NestingTooDeep"


def boom_app(database: Database, tmp_path: Path) -> FastAPI:
    """The real app with one more route, which fails as a bug would."""
    app = create_app(make_settings(database, tmp_path))

    def boom() -> None:
        raise RuntimeError("secret internals: /srv/civic/data, password=hunter2")

    app.add_api_route("/api/v1/test-boom", boom, methods=["GET", "POST"])
    return app


def test_an_unhandled_exception_is_a_json_500_with_the_headers(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(boom_app(database, tmp_path)) as client:
        response = client.get("/api/v1/test-boom")
    body = assert_error(response, 500, "InternalError")
    assert "hunter2" not in response.text and "Traceback" not in response.text
    incident = body["detail"].split("incident ")[1].split(",")[0]
    logged = [r for r in caplog.records if r.name == "civic.api" and incident in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the stack trace is in the log only


@pytest.fixture
def served(database: Database, tmp_path: Path) -> Iterator[int]:
    """``boom_app`` served by uvicorn on a free port; the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(boom_app(database, tmp_path), log_level="critical", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def test_a_500_keeps_the_keep_alive_connection_usable(served: int) -> None:
    """uvicorn closed the connection after an exception had reached it: the client's next
    request on it was reset."""
    connection = http.client.HTTPConnection("127.0.0.1", served, timeout=10)
    try:
        connection.request("GET", "/api/v1/test-boom")
        failed = connection.getresponse()
        assert failed.status == 500
        assert json.loads(failed.read())["error"] == "InternalError"
        assert failed.getheader("x-frame-options") == "DENY"
        assert failed.getheader("connection") != "close"
        used = connection.sock
        connection.request("GET", "/api/v1/suggestions")
        after = connection.getresponse()
        assert after.status == 200
        after.read()
        assert connection.sock is used  # the same connection, not a new one
    finally:
        connection.close()


# -- 5. staff input that made 500s -------------------------------------------------------------


@pytest.mark.parametrize(
    "closes_at",
    [
        "2099-01-01T00:00:00",  # no time zone: a ValueError when the draft was shown
        "9999-12-31T23:59:59-14:00",  # beyond year 9999 in UTC: an OverflowError at the store
    ],
)
def test_a_closing_time_without_zone_or_out_of_range_is_a_422(
    client: TestClient, people: People, voters: list[Voter], closes_at: str
) -> None:
    response = client.post(
        "/api/v1/simulations", json={**PB, "closes_at": closes_at}, headers=people.staff.headers
    )
    assert_error(response, 422, "ValidationError")


def test_a_closing_time_with_its_zone_is_kept_in_utc(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    spec = {**PB, "closes_at": "2099-01-01T08:00:00+08:00"}
    sim = opened(client, people, spec)
    assert client.get(f"/api/v1/simulations/{sim}").json()["closes_at"] == (
        "2099-01-01T00:00:00.000Z"
    )


TOO_BIG = MAX_SAFE_INTEGER + 1


@pytest.mark.parametrize(
    "spec",
    [
        {**PB, "budget": TOO_BIG},
        {**PB, "projects": [{"id": "A", "name": "电梯", "cost": TOO_BIG}]},
        {**PB, "max_choices": TOO_BIG},
        {**PB, "min_choices": TOO_BIG},
        {**PB, "add1_unit": TOO_BIG},  # accepted, then /open failed to canonicalise: a 500
        {**PB, "ballot_type": "cumulative", "max_points": TOO_BIG},
        {**YN, "slots": TOO_BIG},
        {**YN, "quorum": [1, TOO_BIG]},
    ],
)
def test_an_integer_a_record_cannot_hold_is_refused_when_the_draft_is_written(
    client: TestClient, people: People, voters: list[Voter], spec: dict[str, Any]
) -> None:
    response = client.post("/api/v1/simulations", json=spec, headers=people.staff.headers)
    assert_error(response, 422, "ValidationError")


# -- 12. strict parameters, the same checks for every method ---------------------------------


@pytest.mark.parametrize("value", ["100", True, 100.0, "1e3"])
@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (PB, "budget"),
        (PB, "max_choices"),
        (PB, "min_choices"),
        (PB, "add1_unit"),
        ({**PB, "ballot_type": "cumulative"}, "max_points"),
        (YN, "slots"),
    ],
)
def test_integers_are_strict(
    client: TestClient,
    people: People,
    voters: list[Voter],
    spec: dict[str, Any],
    field: str,
    value: Any,
) -> None:
    response = client.post(
        "/api/v1/simulations", json={**spec, field: value}, headers=people.staff.headers
    )
    assert_error(response, 422, "ValidationError")


@pytest.mark.parametrize(
    ("spec", "refused"),
    [
        ({**PB, "quorum": [5, 0]}, "quorum"),  # any quorum was accepted for approval
        ({**PB, "quorum": [2, 3]}, "quorum"),  # a valid one too: nothing would read it
        ({**PB, "majority_of": "present"}, "majority_of"),
        ({**PB, "slots": 1}, "slots"),
        ({**PB, "max_points": 5}, "max_points"),
        ({**PB, "rule": "greedy", "add1_unit": 100}, "add1_unit"),
        ({**PB, "rule": "mes", "add1_unit": 100}, "add1_unit"),
        ({**PB, "ballot_type": "ordinal", "rule": "greedy", "add1_unit": 100}, "add1_unit"),
        ({**YN, "budget": 1000}, "budget"),
        ({**YN, "max_choices": 1}, "max_choices"),
        ({**YN, "quorum": [3, 2]}, "quorum"),
        ({**YN, "quorum": [1, 0]}, "quorum"),
        ({**YN, "quorum": [-1, 2]}, "quorum"),
        ({**PB, "min_choices": 4}, "min_choices"),  # more than the three projects
    ],
)
def test_each_method_takes_only_its_parameters_and_only_sound_values(
    client: TestClient, people: People, voters: list[Voter], spec: dict[str, Any], refused: str
) -> None:
    response = client.post("/api/v1/simulations", json=spec, headers=people.staff.headers)
    assert refused in assert_error(response, 422, "ValidationError")["detail"]


@pytest.mark.parametrize(
    "spec",
    [
        {**PB, "rule": "greedy", "min_choices": 0, "max_choices": 3},
        {**PB, "rule": "mes"},
        {**PB, "rule": "mes-add1", "add1_unit": 100},
        {**PB, "rule": "mes-add1-comparison", "add1_unit": 1},
        {**PB, "ballot_type": "cumulative", "rule": "mes-add1", "max_points": 10},
        {**PB, "ballot_type": "ordinal", "rule": "greedy", "max_choices": 3},
        {**YN, "quorum": [1, 2], "majority_of": "present"},
        {**YN, "quorum": [0, 1]},
    ],
)
def test_each_method_opens_with_its_own_parameters(
    client: TestClient, people: People, voters: list[Voter], spec: dict[str, Any]
) -> None:
    opened(client, people, spec)


# -- 6. the office filter matches exactly ------------------------------------------------------


def test_the_office_filter_matches_the_code_exactly(
    client: TestClient, people: People, database: Database
) -> None:
    code, _ = walk_to(client, people, "ASSIGNED")  # offices JT, ZJ
    with database.sessions.begin() as session:
        auth.add_account(session, role="office", name="通配局", office="J_")

    def found(office: str) -> list[str]:
        answer = client.get("/api/v1/suggestions", params={"office": office})
        assert answer.status_code == 200, answer.text
        return [item["tracking_code"] for item in answer.json()["items"]]

    assert found("JT") == [code] and found("ZJ") == [code]
    for office in ("J_", "_T", "%", "J%", "jt", "J", "T", "JT,ZJ", '"JT"'):
        assert found(office) == [], office


# -- 7. the body limit of a submission fits every text the schema accepts ----------------------


@pytest.mark.parametrize(
    ("character", "ensure_ascii"),
    [
        ("字", True),  # \u5b57: 6 bytes; the probe's 413 came at about 8,000 characters
        ("\U00020000", True),  # beyond U+FFFF: a surrogate pair of escapes, 12 bytes
        ("字", False),
    ],
)
def test_the_longest_text_is_accepted_however_it_is_encoded(
    client: TestClient, character: str, ensure_ascii: bool
) -> None:
    longest = {
        **SUGGESTION,
        "title": character * 200,
        "text": character * 20000,
        "category": character * 64,
        "district": character * 64,
        "contact": {"name": character * 50, "phone": "+86 138 0000 0000"},
        "attachments": [],
    }
    body = json.dumps(longest, ensure_ascii=ensure_ascii).encode()
    assert len(body) <= body_bytes_for(SuggestionIn)
    response = client.post(
        "/api/v1/suggestions", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text[:300]


def test_a_text_over_its_limit_is_a_422_not_a_413(client: TestClient) -> None:
    body = json.dumps({**SUGGESTION, "text": "字" * 20001}).encode()
    response = client.post(
        "/api/v1/suggestions", content=body, headers={"content-type": "application/json"}
    )
    assert "text" in assert_error(response, 422, "ValidationError")["detail"]


def test_other_routes_keep_the_general_limit(client: TestClient, people: People) -> None:
    code, _ = walk_to(client, people, "SUBMITTED")
    response = client.post(
        f"/api/v1/suggestions/{code}/transitions",
        content=b" " * (65 * 1024),
        headers={**people.deputy.headers, "content-type": "application/json"},
    )
    assert_error(response, 413, "PayloadTooLarge")


# -- 13. titles must show something ------------------------------------------------------------

INVISIBLE = [
    "\u200b",  # zero width space
    "\u202e",  # right-to-left override alone
    "\u200f\u200e",  # the directional marks
    "\ufeff",  # byte order mark
    "\u3164",  # Hangul filler (a "letter" that draws nothing)
    "\u2800",  # the blank Braille pattern
    " \u200b\u2060 ",  # spaces around invisible characters
    "\u0301",  # a combining accent on nothing
]


@pytest.mark.parametrize("title", INVISIBLE)
def test_a_suggestion_title_with_nothing_visible_is_refused(client: TestClient, title: str) -> None:
    response = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": title})
    assert "title" in assert_error(response, 422, "ValidationError")["detail"]


@pytest.mark.parametrize("title", INVISIBLE)
def test_simulation_and_project_titles_with_nothing_visible_are_refused(
    client: TestClient, people: People, voters: list[Voter], title: str
) -> None:
    for spec in (
        {**PB, "title": title},
        {**PB, "projects": [{"id": "A", "name": title, "cost": 600}]},
    ):
        response = client.post("/api/v1/simulations", json=spec, headers=people.staff.headers)
        assert_error(response, 422, "ValidationError")


@pytest.mark.parametrize("title", ["\u202e路灯不亮", "مصباح الشارع", "\u200b路灯\u200b", "🚦"])
def test_titles_with_visible_text_are_kept_as_written(client: TestClient, title: str) -> None:
    """Right-to-left text and overrides are people's text: kept, and isolated where shown
    (tests/portal/test_hardening_pages.py)."""
    response = client.post("/api/v1/suggestions", json={**SUGGESTION, "title": title})
    assert response.status_code == 201, response.text
    code = response.json()["tracking_code"]
    assert client.get(f"/api/v1/suggestions/{code}").json()["title"] == title
