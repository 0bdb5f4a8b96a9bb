"""The portal's side of what the outside probe found (issue 21), through FastAPI's TestClient:
a form too large to read is a page, not the API's JSON (item 7), the submission form takes its
longest text (7), people's text is isolated wherever a page shows it (13), and an office sees
only its own queue (6). The API's side is in tests/api/test_hardening.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from api.limits import body_bytes_for
from core.voting.ballots import public_key_hex
from ledger import auth
from ledger.models import Account
from ledger.schemas import SuggestionIn
from tests.api.conftest import People
from tests.fixtures.db import Database
from voting.ballots import generate_key

PAGE = {"accept": "text/html,application/xhtml+xml"}
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
GOOD = {
    "title": "幸福路口路灯不亮",
    "text": "幸福路口的路灯坏了三周，晚上很危险。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: reverses what follows it, up to the paragraph's end


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> None:
    client.cookies.clear()
    answer = client.post(
        "/login",
        data={"csrf": csrf_of(client.get("/login").text), "token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


# -- 7. the submission form and its limits -----------------------------------------------------


def test_the_form_takes_its_longest_text(portal_client: TestClient) -> None:
    """Percent-encoded, a CJK character is 9 bytes: the form's 64 KiB limit answered a raw
    JSON 413 at about 7,000 characters of the 20,000 the form allows."""
    token = csrf_of(portal_client.get("/").text)
    answer = portal_client.post(
        "/", data={"csrf": token, **GOOD, "text": "字" * 20000}, headers=PAGE
    )
    assert answer.status_code == 201, answer.text[:500]
    too_long = portal_client.post(
        "/", data={"csrf": token, **GOOD, "text": "字" * 20001}, headers=PAGE
    )
    assert too_long.status_code == 422
    assert 'id="e-text"' in too_long.text  # the form again, the text field's message on it


def test_a_form_too_large_to_read_is_a_page_for_browsers(portal_client: TestClient) -> None:
    token = csrf_of(portal_client.get("/").text)
    huge = {"csrf": token, **GOOD, "text": "字" * 40000}  # forged: the form stops at 20,000
    page = portal_client.post("/", data=huge, headers=PAGE)
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert (
        "表单内容过多" in page.text and f"{body_bytes_for(SuggestionIn) // 1024} KiB" in page.text
    )
    assert page.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in page.headers
    api = portal_client.post("/", data=huge)  # no browser: the API's error
    assert api.status_code == 413 and api.json()["error"] == "PayloadTooLarge"


def test_a_form_sent_without_a_length_is_a_page_too(portal_client: TestClient) -> None:
    """Without Content-Length the limit is found while the form is read, inside the route:
    the portal's error handler makes the same page."""
    token = csrf_of(portal_client.get("/").text)
    body = f"csrf={token}&title=t&category=c&district=d&text={'%E5%AD%97' * 40000}".encode()
    assert len(body) > body_bytes_for(SuggestionIn)

    def chunks() -> Any:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    page = portal_client.post(
        "/",
        content=chunks(),
        headers={**PAGE, "content-type": "application/x-www-form-urlencoded"},
    )
    assert page.status_code == 413
    assert page.headers["content-type"].startswith("text/html")
    assert "表单内容过多" in page.text


# -- 13. people's text is isolated where it is shown ------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
ISOLATING = {"bdi", "textarea", "script", "style", "option"}
PLAIN_ISOLATE = re.compile("\u2068[^\u2069]*\u2069")


class Exposure(HTMLParser):
    """Text holding ``marker`` outside any isolation: no ancestor with ``dir`` or ``<bdi>``,
    and not between U+2068 and U+2069 (plain text's isolation, where markup is impossible)."""

    def __init__(self, marker: str) -> None:
        super().__init__(convert_charrefs=True)
        self.marker = marker
        self.stack: list[tuple[str, bool]] = []
        self.exposed: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            isolated = tag in ISOLATING or any(name == "dir" for name, _ in attrs)
            self.stack.append((tag, isolated))

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                return

    def handle_data(self, data: str) -> None:
        if self.marker not in data or any(isolated for _, isolated in self.stack):
            return
        if self.marker in PLAIN_ISOLATE.sub("", data):
            where = " > ".join(tag for tag, _ in self.stack[-3:])
            self.exposed.append(f"{where}: {data.strip()[:60]!r}")


def exposed(html: str, marker: str = RLO) -> list[str]:
    parser = Exposure(marker)
    parser.feed(html)
    assert marker in html, "the page does not show the text at all"
    return parser.exposed


def test_right_to_left_overrides_are_isolated_on_every_page_showing_them(
    portal_client: TestClient, people: People, database: Database
) -> None:
    """A title like ``\\u202e…`` reversed the text after it on its line: a district beside a
    category, a project's cost beside its name. Each page that shows people's text keeps it
    in its own direction (``dir="auto"``, ``<bdi>``, or U+2068…U+2069 where no markup goes)."""
    client = portal_client
    # the district stays plain on the suggestion that is handled (deputies act on their own
    # district); another one, left as submitted, carries the override in its district
    mark = {key: f"{RLO}{value}" for key, value in GOOD.items() if key != "district"}
    submitted = client.post("/api/v1/suggestions", json={**GOOD, **mark})
    assert submitted.status_code == 201, submitted.text
    code = submitted.json()["tracking_code"]
    elsewhere = client.post("/api/v1/suggestions", json={**GOOD, "district": f"{RLO}鼓楼区"})
    assert elsewhere.status_code == 201, elsewhere.text
    steps = [
        (people.deputy, {"to": "DEPUTY_ACCEPTED"}),
        (people.staff, {"to": "ASSIGNED", "offices": ["JT"]}),
        (people.office, {"to": "IN_PROGRESS"}),
    ]
    for who, body in steps:
        moved = client.post(
            f"/api/v1/suggestions/{code}/transitions", json=body, headers=who.headers
        )
        assert moved.status_code == 201, moved.text
    with database.sessions.begin() as session:
        account = session.get(Account, people.deputy.id)
        assert account is not None
        account.public_key = public_key_hex(generate_key())
    sim = client.post(
        "/api/v1/simulations",
        json={
            "title": f"{RLO}2027 民生实事",
            "ballot_type": "approval",
            "rule": "greedy",
            "budget": 1000,
            "projects": [
                {"id": "P1", "name": f"{RLO}加装电梯", "cost": 600},
                {"id": "P2", "name": "社区食堂", "cost": 300},
            ],
        },
        headers=people.staff.headers,
    )
    assert sim.status_code == 201, sim.text
    sim_id = sim.json()["id"]
    opened = client.post(f"/api/v1/simulations/{sim_id}/open", headers=people.staff.headers)
    assert opened.status_code == 201, opened.text

    pages = {f"/track/{code}": None, f"/track/{elsewhere.json()['tracking_code']}": None}
    pages |= {"/workbench": people.office, "/dashboard": people.staff}
    pages |= {"/simulations": people.deputy, f"/simulations/{sim_id}": people.deputy}
    for path, who in pages.items():
        if who is None:
            client.cookies.clear()
        else:
            sign_in(client, who.token)
        page = client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        assert exposed(page.text) == [], path


# -- 6. an office's queue is its own -----------------------------------------------------------


def test_an_office_whose_code_has_a_wildcard_sees_only_its_own_queue(
    portal_client: TestClient, people: People, database: Database
) -> None:
    """``J_`` matched ``JT`` as a LIKE pattern: its workbench showed JT's suggestions."""
    client = portal_client
    code = client.post("/api/v1/suggestions", json=GOOD).json()["tracking_code"]
    for who, body in [
        (people.deputy, {"to": "DEPUTY_ACCEPTED"}),
        (people.staff, {"to": "ASSIGNED", "offices": ["JT"]}),
    ]:
        moved = client.post(
            f"/api/v1/suggestions/{code}/transitions", json=body, headers=who.headers
        )
        assert moved.status_code == 201, moved.text
    with database.sessions.begin() as session:
        wildcard = auth.add_account(session, role="office", name="通配局", office="J_")
        lower = auth.add_account(session, role="office", name="小写局", office="jt")
    sign_in(client, people.office.token)
    assert code in client.get("/workbench").text
    for office, other in (("J_", wildcard), ("jt", lower)):
        sign_in(client, other.token)
        page = client.get("/workbench")
        assert page.status_code == 200
        assert code not in page.text, office
