"""The closed loop 群众提 — 代表定 — 政府办 — 人大评 over HTTP: every step a record, every
refusal precise and without effect."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.records import record_leaf_hash
from ledger.models import RecordRow
from tests.api.conftest import People
from tests.fixtures.db import Database

SUGGESTION = {
    "title": "幸福路口红绿灯时长太短",
    "text": "老人过马路来不及，建议延长行人绿灯。",
    "category": "交通出行",
    "district": "鼓楼区",
}
REPLY = b"%PDF-1.4 reply of the transport bureau"


def records(database: Database, log: str | None = None) -> int:
    with database.sessions() as session:
        query = select(func.count()).select_from(RecordRow)
        if log:
            query = query.where(RecordRow.log == log)
        return session.scalar(query) or 0


def submit(client: TestClient, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/suggestions", json={**SUGGESTION, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def step(
    client: TestClient, code: str, headers: dict[str, str], expect: int = 201, **body: Any
) -> dict[str, Any]:
    response = client.post(f"/api/v1/suggestions/{code}/transitions", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def upload(client: TestClient, headers: dict[str, str], data: bytes = REPLY) -> str:
    response = client.post(
        "/api/v1/attachments", content=data, headers={**headers, "content-type": "application/pdf"}
    )
    assert response.status_code == 201, response.text
    return response.json()["sha256"]


def citizen(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def walk_to(client: TestClient, people: People, state: str) -> tuple[str, str]:
    """Submit and move a suggestion to ``state`` along the usual path; (code, citizen token).
    The reply document is this suggestion's own (a file belongs to one suggestion)."""
    submitted = submit(client)
    code, token = submitted["tracking_code"], submitted["citizen_token"]
    reply = REPLY + b" to " + code.encode()
    path = [
        ("DEPUTY_ACCEPTED", people.deputy.headers, {}),
        ("ASSIGNED", people.staff.headers, {"offices": ["JT", "ZJ"]}),
        ("IN_PROGRESS", people.office.headers, {}),
        (
            "ANSWERED",
            people.office.headers,
            {"category": "B", "reply_sha256": upload(client, people.office.headers, reply)},
        ),
    ]
    for to, headers, fields in path:
        if state == "SUBMITTED":
            break
        step(client, code, headers, to=to, **fields)
        if to == state:
            break
    return code, token


def test_the_whole_loop_is_a_linked_trail(
    client: TestClient, people: People, database: Database
) -> None:
    code, token = walk_to(client, people, "ANSWERED")
    step(client, code, citizen(token), to="REHANDLING", level="unsatisfied", reason="绿灯仍然太短")
    reply2 = upload(client, people.office.headers, REPLY + b" v2")
    step(client, code, people.office.headers, to="ANSWERED", category="A", reply_sha256=reply2)
    done = step(client, code, citizen(token), to="CLOSED", level="satisfied")
    assert done["state"] == "CLOSED"

    view = client.get(f"/api/v1/suggestions/{code}").json()
    assert view["state"] == "CLOSED" and view["state_name"] == "办结"
    assert view["offices"] == ["JT", "ZJ"] and view["reply_category"] == "A"
    assert view["evaluation"] == "satisfied"

    trail = client.get(f"/api/v1/suggestions/{code}/trail").json()
    entries = trail["records"]
    assert [e["record"]["seq"] for e in entries] == list(range(8))
    assert all(e["status"] == "pending" and e["receipt"] is None for e in entries)
    moves = [(e["record"]["body"].get("from"), e["record"]["body"].get("to")) for e in entries[1:]]
    assert moves == [
        ("SUBMITTED", "DEPUTY_ACCEPTED"),
        ("DEPUTY_ACCEPTED", "ASSIGNED"),
        ("ASSIGNED", "IN_PROGRESS"),
        ("IN_PROGRESS", "ANSWERED"),
        ("ANSWERED", "REHANDLING"),
        ("REHANDLING", "ANSWERED"),
        ("ANSWERED", "CLOSED"),
    ]
    for before, after in pairwise(entries):
        assert after["record"]["prev"] == before["record_hash"]
        assert record_leaf_hash(after["record"]).hex() == after["record_hash"]
    actors = [e["record"]["actor"]["role"] for e in entries]
    assert actors == [
        "citizen",
        "deputy",
        "staff",
        "office",
        "office",
        "citizen",
        "office",
        "citizen",
    ]
    # the citizen evaluates under the pseudonym they submitted with
    assert entries[5]["record"]["actor"]["id"] == entries[0]["record"]["actor"]["id"]
    assert (
        entries[2]["record"]["body"]["offices"] == ["JT", "ZJ"]
        and "due" in entries[2]["record"]["body"]
    )
    assert entries[5]["record"]["body"]["due"]  # rehandling gets a new due date


@pytest.mark.parametrize(
    ("state", "to", "allowed"),
    [
        (
            "SUBMITTED",
            "IN_PROGRESS",
            "ANSWERED_DIRECT, DEPUTY_ACCEPTED, MERGED, REJECTED, WITHDRAWN",
        ),
        ("SUBMITTED", "ASSIGNED", "ANSWERED_DIRECT, DEPUTY_ACCEPTED, MERGED, REJECTED, WITHDRAWN"),
        ("ASSIGNED", "ANSWERED", "IN_PROGRESS, REASSIGN_REQUESTED"),
        ("ANSWERED", "FOLLOW_UP", "CLOSED, REHANDLING"),
    ],
)
def test_an_illegal_step_is_409_and_names_the_allowed_states(
    client: TestClient, people: People, database: Database, state: str, to: str, allowed: str
) -> None:
    code, _ = walk_to(client, people, state)
    before = records(database)
    body = step(client, code, people.staff.headers, expect=409, to=to)
    assert body["error"] == "IllegalTransition"
    assert f"Allowed next states: {allowed}" in body["detail"]
    assert records(database) == before


def test_follow_up_only_after_a_b_or_c_reply(client: TestClient, people: People) -> None:
    code, token = walk_to(client, people, "ANSWERED")  # category B
    step(client, code, citizen(token), to="CLOSED", level="basically_satisfied")
    step(client, code, people.office.headers, to="FOLLOW_UP")
    step(
        client,
        code,
        people.office.headers,
        to="ANSWERED",
        category="A",
        reply_sha256=upload(client, people.office.headers),
    )
    step(client, code, citizen(token), to="CLOSED", level="satisfied")
    body = step(client, code, people.office.headers, expect=409, to="FOLLOW_UP")
    assert (
        "none: the suggestion is finished" in body["detail"]
        or "Allowed next states" in body["detail"]
    )


def test_a_deputys_own_suggestion_goes_straight_to_assignment(
    client: TestClient, people: People
) -> None:
    response = client.post("/api/v1/suggestions", json=SUGGESTION, headers=people.deputy.headers)
    assert response.status_code == 201
    assert "citizen_token" not in response.json()
    code = response.json()["tracking_code"]
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["ZJ"], due="2099-01-31")
    view = client.get(f"/api/v1/suggestions/{code}").json()
    assert view["submitted_by"] == "deputy" and view["due"] == "2099-01-31"


@pytest.mark.parametrize(
    ("state", "who", "to", "fields"),
    [
        ("SUBMITTED", "other_deputy", "DEPUTY_ACCEPTED", {}),  # another district
        ("SUBMITTED", "office", "DEPUTY_ACCEPTED", {}),
        ("SUBMITTED", "citizen_other", "WITHDRAWN", {}),
        ("DEPUTY_ACCEPTED", "deputy", "ASSIGNED", {"offices": ["JT"]}),
        ("ASSIGNED", "other_office", "IN_PROGRESS", {}),  # assisting, not lead
        ("ASSIGNED", "staff", "IN_PROGRESS", {}),
        ("IN_PROGRESS", "inspector", "ANSWERED", {"category": "A", "reply_sha256": "0" * 64}),
        ("IN_PROGRESS", "admin", "ANSWERED", {"category": "A", "reply_sha256": "0" * 64}),
        (
            "ANSWERED",
            "citizen_other",
            "CLOSED",
            {"level": "satisfied"},
        ),  # someone else's evaluation
        ("ANSWERED", "deputy", "CLOSED", {"level": "satisfied"}),  # not the deputy's own suggestion
        ("ANSWERED", "office", "REHANDLING", {"level": "unsatisfied"}),
    ],
)
def test_the_wrong_actor_is_refused_with_403_and_nothing_changes(
    client: TestClient,
    people: People,
    database: Database,
    state: str,
    who: str,
    to: str,
    fields: dict[str, Any],
) -> None:
    code, _ = walk_to(client, people, state)
    other_token = submit(client)["citizen_token"]
    headers = citizen(other_token) if who == "citizen_other" else getattr(people, who).headers
    before = records(database)
    body = step(client, code, headers, expect=403, to=to, **fields)
    assert body["error"] == "Forbidden"
    assert any(
        words in body["detail"] for words in ("is for", "another suggestion", "they do not handle")
    )
    assert records(database) == before
    assert client.get(f"/api/v1/suggestions/{code}").json()["state"] == state


@pytest.mark.parametrize(
    ("state", "to", "fields", "message"),
    [
        ("SUBMITTED", "REJECTED", {}, "needs: reason"),
        ("SUBMITTED", "MERGED", {}, "needs: merged_into"),
        ("DEPUTY_ACCEPTED", "ASSIGNED", {}, "needs: offices"),
        ("DEPUTY_ACCEPTED", "ASSIGNED", {"offices": ["XX"]}, "unknown office"),
        ("DEPUTY_ACCEPTED", "ASSIGNED", {"offices": ["JT", "JT"]}, "must not repeat"),
        ("DEPUTY_ACCEPTED", "ASSIGNED", {"offices": ["JT"], "due": "2001-01-01"}, "in the future"),
        (
            "DEPUTY_ACCEPTED",
            "ASSIGNED",
            {"offices": ["JT"], "level": "satisfied"},
            "does not take: level",
        ),
        ("IN_PROGRESS", "ANSWERED", {"category": "B"}, "needs: reply_sha256"),
        ("IN_PROGRESS", "ANSWERED", {"category": "B", "reply_sha256": "ab" * 32}, "no attachment"),
        ("ANSWERED", "REHANDLING", {}, "needs: level"),
        ("ANSWERED", "CLOSED", {"level": "unsatisfied"}, "moves the suggestion to REHANDLING"),
    ],
)
def test_a_step_with_missing_or_unused_fields_is_422(
    client: TestClient,
    people: People,
    database: Database,
    state: str,
    to: str,
    fields: dict[str, Any],
    message: str,
) -> None:
    code, token = walk_to(client, people, state)
    actor = {
        "REJECTED": people.deputy.headers,
        "MERGED": people.staff.headers,
        "ASSIGNED": people.staff.headers,
        "ANSWERED": people.office.headers,
        "REHANDLING": citizen(token),
        "CLOSED": citizen(token),
    }[to]
    before = records(database)
    body = step(client, code, actor, expect=422, to=to, **fields)
    assert message in body["detail"], body
    assert records(database) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"to": "NOWHERE"}, "to: Input should be"),
        ({}, "to: Field required"),
        ({"to": "ASSIGNED", "offices": "JT"}, "offices: Input should be a valid list"),
        ({"to": "ASSIGNED", "due": "next week"}, "due: Input should be a valid date"),
        ({"to": "ANSWERED", "category": "E"}, "category: Input should be"),
        ({"to": "CLOSED", "level": "happy"}, "level: Input should be"),
        ({"to": "CLOSED", "mood": "ok"}, "mood: Extra inputs are not permitted"),
    ],
)
def test_malformed_transition_bodies_are_422(
    client: TestClient, people: People, body: dict[str, Any], message: str
) -> None:
    code, _ = walk_to(client, people, "SUBMITTED")
    response = client.post(
        f"/api/v1/suggestions/{code}/transitions", json=body, headers=people.staff.headers
    )
    assert response.status_code == 422
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "needs a bearer token"),
        ("Bearer clt_forged-token-that-was-never-issued", "not valid"),
        ("Bearer cit_forged", "citizen token is not valid"),
        ("Bearer something", "malformed token"),
        ("Basic dXNlcjpwYXNz", "Authorization: Bearer"),
    ],
)
def test_missing_forged_or_malformed_tokens_are_401(
    client: TestClient, people: People, header: str | None, message: str
) -> None:
    code, _ = walk_to(client, people, "SUBMITTED")
    headers = {"Authorization": header} if header else {}
    response = client.post(
        f"/api/v1/suggestions/{code}/transitions",
        json={"to": "REJECTED", "reason": "x"},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert message in response.json()["detail"]


def test_expired_and_disabled_tokens_are_401(
    client: TestClient, people: People, database: Database
) -> None:
    from datetime import UTC, datetime, timedelta

    from ledger.models import Account

    code, _ = walk_to(client, people, "SUBMITTED")
    with database.sessions.begin() as session:
        session.get(Account, people.deputy.id).token_expires_at = datetime.now(UTC) - timedelta(
            seconds=1
        )
        session.get(Account, people.staff.id).disabled_at = datetime.now(UTC)
    for who, message in ((people.deputy, "expired"), (people.staff, "disabled")):
        response = client.post(
            f"/api/v1/suggestions/{code}/transitions",
            json={"to": "REJECTED", "reason": "x"},
            headers=who.headers,
        )
        assert response.status_code == 401 and message in response.json()["detail"]


def test_withdrawal_by_the_citizen_token(client: TestClient, people: People) -> None:
    code, token = walk_to(client, people, "DEPUTY_ACCEPTED")
    assert (
        step(client, code, citizen(token), to="WITHDRAWN", reason="问题已自行解决")["state"]
        == "WITHDRAWN"
    )
    body = step(client, code, citizen(token), expect=409, to="SUBMITTED")
    assert "none: the suggestion is finished" in body["detail"]


def test_staff_close_an_unevaluated_answer_only_after_the_evaluation_period(
    client: TestClient, people: People
) -> None:
    code, _ = walk_to(client, people, "ANSWERED")
    body = step(client, code, people.staff.headers, expect=409, to="CLOSED", reason="逾期未评价")
    assert "may evaluate the reply until" in body["detail"]


def test_merge_into_another_suggestion(client: TestClient, people: People) -> None:
    first, _ = walk_to(client, people, "SUBMITTED")
    second, _ = walk_to(client, people, "SUBMITTED")
    step(client, second, people.staff.headers, expect=422, to="MERGED", merged_into=second)
    step(
        client,
        second,
        people.staff.headers,
        expect=422,
        to="MERGED",
        merged_into="SG-0000-0000-0000",
    )
    step(client, second, people.staff.headers, to="MERGED", merged_into=first, reason="同一路口")
    assert client.get(f"/api/v1/suggestions/{second}").json()["merged_into"] == first


def test_flags_key_supervision_and_extension(
    client: TestClient, people: People, database: Database
) -> None:
    code, _ = walk_to(client, people, "ASSIGNED")
    r = client.post(
        f"/api/v1/suggestions/{code}/flags",
        json={"key_supervision": True},
        headers=people.staff.headers,
    )
    assert r.status_code == 201 and len(r.json()["record_hashes"]) == 1
    r = client.post(
        f"/api/v1/suggestions/{code}/flags",
        json={"extend_due": "2099-12-31"},
        headers=people.staff.headers,
    )
    assert r.status_code == 422 and "needs a reason" in r.json()["detail"]
    r = client.post(
        f"/api/v1/suggestions/{code}/flags",
        json={"extend_due": "2099-12-31", "reason": "需要跨部门协调"},
        headers=people.staff.headers,
    )
    assert r.status_code == 201
    view = client.get(f"/api/v1/suggestions/{code}").json()
    assert view["key_supervision"] is True and view["due"] == "2099-12-31"
    r = client.post(
        f"/api/v1/suggestions/{code}/flags",
        json={"key_supervision": True},
        headers=people.office.headers,
    )
    assert r.status_code == 403
    trail = client.get(f"/api/v1/suggestions/{code}/trail").json()["records"]
    assert [e["record"]["type"] for e in trail][-2:] == ["suggestion.flagged", "suggestion.flagged"]


def test_listing_filters_and_overdue(
    client: TestClient, people: People, database: Database
) -> None:
    from datetime import UTC, datetime, timedelta

    from ledger.models import SuggestionRow

    late, _ = walk_to(client, people, "ASSIGNED")
    walk_to(client, people, "IN_PROGRESS")
    walk_to(client, people, "SUBMITTED")
    with database.sessions.begin() as session:
        session.get(SuggestionRow, late).due_at = datetime.now(UTC) - timedelta(days=1)
    everything = client.get("/api/v1/suggestions").json()
    assert everything["total"] == 3
    overdue = client.get("/api/v1/suggestions", params={"overdue": "true"}).json()
    assert [s["tracking_code"] for s in overdue["items"]] == [late] and overdue["items"][0][
        "overdue"
    ]
    assert client.get("/api/v1/suggestions", params={"office": "ZJ"}).json()["total"] == 2
    assert client.get("/api/v1/suggestions", params={"state": "SUBMITTED"}).json()["total"] == 1
    assert (
        client.get("/api/v1/suggestions", params={"deputy": people.deputy.id}).json()["total"] == 2
    )
    page = client.get("/api/v1/suggestions", params={"per_page": 2, "page": 2}).json()
    assert len(page["items"]) == 1
    assert client.get("/api/v1/suggestions", params={"state": "LOST"}).status_code == 422
    assert client.get("/api/v1/suggestions", params={"per_page": 1000}).status_code == 422


def test_unknown_tracking_codes(client: TestClient, people: People) -> None:
    for path in ("", "/trail"):
        r = client.get(f"/api/v1/suggestions/SG-0000-0000-0000{path}")
        assert r.status_code == 404 and r.json()["error"] == "SuggestionNotFound"
    assert client.get("/api/v1/suggestions/not-a-code").status_code == 422
    r = client.post(
        "/api/v1/suggestions/SG-0000-0000-0000/transitions",
        json={"to": "REJECTED", "reason": "x"},
        headers=people.staff.headers,
    )
    assert r.status_code == 404


def test_rate_limit_on_anonymous_submissions(database: Database, tmp_path, people: People) -> None:  # type: ignore[no-untyped-def]
    from api.app import create_app
    from tests.api.conftest import make_settings

    with TestClient(create_app(make_settings(database, tmp_path, submit_rate=2))) as limited:
        assert limited.post("/api/v1/suggestions", json=SUGGESTION).status_code == 201
        assert limited.post("/api/v1/suggestions", json=SUGGESTION).status_code == 201
        refused = limited.post("/api/v1/suggestions", json=SUGGESTION)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"] == "RateLimited"
        # deputies submit under their account, which is not rate-limited this way
        assert (
            limited.post(
                "/api/v1/suggestions", json=SUGGESTION, headers=people.deputy.headers
            ).status_code
            == 201
        )
    assert records(database) == 3


def test_trail_records_are_what_was_hashed(
    client: TestClient, people: People, database: Database
) -> None:
    code, _ = walk_to(client, people, "IN_PROGRESS")
    with database.sessions() as session:
        stored = {
            r.leaf_hash.hex(): r.canonical
            for r in session.scalars(select(RecordRow).where(RecordRow.subject == code))
        }
    for entry in client.get(f"/api/v1/suggestions/{code}/trail").json()["records"]:
        assert json.loads(stored[entry["record_hash"]]) == entry["record"]
