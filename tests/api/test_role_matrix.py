"""Every endpoint with every role: who is allowed, who is refused (401/403, or 404 where a
refusal must not tell whether the thing exists), and that a refusal changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from ledger.models import Attachment
from tests.api.conftest import People
from tests.api.test_privacy_api import CONTACT
from tests.api.test_workflow_api import REPLY, SUGGESTION, records, step, upload, walk_to
from tests.fixtures import images
from tests.fixtures.db import Database

ROLES = [
    "anonymous",
    "citizen",
    "other_citizen",
    "deputy",
    "other_deputy",
    "staff",
    "office",
    "other_office",
    "inspector",
    "admin",
]

# (state to start from, the step, its fields, the roles allowed to make it)
STEPS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("SUBMITTED", "DEPUTY_ACCEPTED", {}, {"deputy"}),
    ("SUBMITTED", "REJECTED", {"reason": "不属于人大职权"}, {"deputy", "staff"}),
    ("SUBMITTED", "ANSWERED_DIRECT", {"reason": "已当面答复"}, {"deputy"}),
    ("SUBMITTED", "WITHDRAWN", {}, {"citizen"}),
    ("DEPUTY_ACCEPTED", "ASSIGNED", {"offices": ["JT", "ZJ"]}, {"staff"}),
    ("ASSIGNED", "IN_PROGRESS", {}, {"office"}),
    ("ASSIGNED", "REASSIGN_REQUESTED", {"reason": "不属于本单位职责"}, {"office"}),
    ("IN_PROGRESS", "ANSWERED", {"category": "A", "reply_sha256": "REPLY"}, {"office"}),
    ("ANSWERED", "CLOSED", {"level": "satisfied"}, {"citizen"}),
    ("ANSWERED", "REHANDLING", {"level": "unsatisfied"}, {"citizen"}),
]


def headers_for(role: str, people: People, own_token: str, other_token: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "citizen":
        return {"Authorization": f"Bearer {own_token}"}
    if role == "other_citizen":
        return {"Authorization": f"Bearer {other_token}"}
    return getattr(people, role).headers


@pytest.mark.parametrize(("state", "to", "fields", "allowed"), STEPS, ids=[s[1] for s in STEPS])
def test_every_role_on_every_step(
    client: TestClient,
    people: People,
    database: Database,
    state: str,
    to: str,
    fields: dict[str, Any],
    allowed: set[str],
) -> None:
    other_token = client.post("/api/v1/suggestions", json=SUGGESTION).json()["citizen_token"]
    if fields.get("reply_sha256") == "REPLY":
        fields = {**fields, "reply_sha256": upload(client, people.office.headers)}
    for role in ROLES:
        code, token = walk_to(client, people, state)
        before = records(database)
        response = client.post(
            f"/api/v1/suggestions/{code}/transitions",
            json={"to": to, **fields},
            headers=headers_for(role, people, token, other_token),
        )
        if role in allowed:
            assert response.status_code == 201, (role, to, response.text)
            assert records(database) == before + 1
        else:
            expected = 401 if role == "anonymous" else 403
            assert response.status_code == expected, (role, to, response.text)
            assert records(database) == before


def _status(client: TestClient, method: str, path: str, headers: dict[str, str], **kw: Any) -> int:
    return client.request(method, path, headers=headers, **kw).status_code


def test_every_role_on_every_other_endpoint(
    client: TestClient, people: People, database: Database
) -> None:
    code, token = walk_to(client, people, "ASSIGNED")  # lead office JT, assisting ZJ
    submitted = client.post("/api/v1/suggestions", json={**SUGGESTION, "contact": CONTACT}).json()
    other_token = submitted["citizen_token"]
    client.post(
        f"/api/v1/suggestions/{submitted['tracking_code']}/transitions",
        json={"to": "DEPUTY_ACCEPTED"},
        headers=people.deputy.headers,
    )
    client.post(
        f"/api/v1/suggestions/{submitted['tracking_code']}/transitions",
        json={"to": "ASSIGNED", "offices": ["JT", "ZJ"]},
        headers=people.staff.headers,
    )
    contact_code = submitted["tracking_code"]
    sha = upload(client, people.office.headers)
    public = {role: 200 for role in ROLES}

    def handling(ok: int) -> dict[str, int]:
        return {
            role: (ok if role in {"deputy", "staff", "office", "other_office"} else 403)
            for role in ROLES
        } | {"anonymous": 401}

    cases: list[tuple[str, str, dict[str, Any], dict[str, int]]] = [
        ("GET", "/api/v1/suggestions", {}, public),
        ("GET", f"/api/v1/suggestions/{code}", {}, public),
        ("GET", f"/api/v1/suggestions/{code}/trail", {}, public),
        ("GET", "/api/v1/stats", {}, public),
        ("GET", f"/api/v1/deputies/{people.deputy.id}/record", {}, public),
        (
            "GET",
            f"/api/v1/suggestions/{contact_code}/contact",
            {"params": {"reason": "回访"}},
            handling(200),
        ),
        # an upload no record cites yet: its uploader only (every kind of attachment below)
        ("GET", f"/api/v1/attachments/{sha}", {}, {role: 404 for role in ROLES} | {"office": 200}),
        ("GET", "/api/v1/me", {}, {role: 200 for role in ROLES} | {"anonymous": 401}),
        (
            "POST",
            f"/api/v1/suggestions/{code}/flags",
            {"json": {"key_supervision": True}},
            {role: 403 for role in ROLES} | {"anonymous": 401, "staff": 201},
        ),
        (
            "POST",
            "/api/v1/accounts",
            {"json": {"role": "office", "name": "市水务局", "office": "SW"}},
            {role: 403 for role in ROLES} | {"anonymous": 401, "admin": 201},
        ),
        (
            "POST",
            "/api/v1/suggestions",
            {"json": SUGGESTION},
            {role: 403 for role in ROLES} | {"anonymous": 201, "deputy": 201, "other_deputy": 201},
        ),
    ]
    for method, path, kw, expected in cases:
        for role in ROLES:
            if (path.endswith("/flags") or path == "/api/v1/accounts") and expected[role] == 201:
                continue  # done once below, after the refusals
            got = _status(client, method, path, headers_for(role, people, token, other_token), **kw)
            want = expected[role]
            if path.endswith("/contact") and role == "other_deputy":
                want = 403  # another district
            assert got == want, (method, path, role, got)
    assert (
        _status(
            client,
            "POST",
            f"/api/v1/suggestions/{code}/flags",
            people.staff.headers,
            json={"key_supervision": True},
        )
        == 201
    )
    assert (
        _status(
            client,
            "POST",
            "/api/v1/accounts",
            people.admin.headers,
            json={"role": "office", "name": "市水务局", "office": "SW"},
        )
        == 201
    )


PHOTO = images.png(seed=11)  # a real image: images are decoded and stripped before storage


def test_every_role_on_every_kind_of_attachment(
    client: TestClient, people: People, database: Database
) -> None:
    """Who downloads an attachment (issue 19, item 6): once a suggestion cites it, those
    handling that suggestion (staff, the deputies in scope, the offices it is assigned to),
    inspectors, and that suggestion's citizen token; before, its uploader; everyone when it is
    marked public. Everybody else gets the 404 of a hash nobody uploaded."""
    photo = client.post(
        "/api/v1/attachments", content=PHOTO, headers={"content-type": "image/png"}
    ).json()["sha256"]
    submitted = client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [photo]})
    code, token = submitted.json()["tracking_code"], submitted.json()["citizen_token"]
    other_token = client.post("/api/v1/suggestions", json=SUGGESTION).json()["citizen_token"]
    step(client, code, people.deputy.headers, to="DEPUTY_ACCEPTED")  # 鼓楼区
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["JT"])  # not ZJ
    step(client, code, people.office.headers, to="IN_PROGRESS")
    reply = upload(client, people.office.headers, REPLY + b" to " + code.encode())
    step(client, code, people.office.headers, to="ANSWERED", category="A", reply_sha256=reply)
    draft = upload(client, people.office.headers, REPLY + b", a draft nobody cites yet")
    shown = client.post(
        "/api/v1/attachments", content=images.png(seed=12), headers={"content-type": "image/png"}
    ).json()["sha256"]
    client.post("/api/v1/suggestions", json={**SUGGESTION, "attachments": [shown]})
    with database.sessions.begin() as session:
        session.execute(update(Attachment).where(Attachment.sha256 == shown).values(public=True))

    handling = {"citizen", "deputy", "staff", "office", "inspector"}
    of_the_suggestion = {role: 200 if role in handling else 404 for role in ROLES}
    kinds: dict[str, tuple[str, dict[str, int]]] = {
        "a submission's photo": (photo, of_the_suggestion),
        "a reply document": (reply, of_the_suggestion),
        "an upload no record cites yet": (draft, {role: 404 for role in ROLES} | {"office": 200}),
        "a file marked public": (shown, {role: 200 for role in ROLES}),
        "a hash nobody uploaded": ("ab" * 32, {role: 404 for role in ROLES}),
    }
    for kind, (sha, expected) in kinds.items():
        for role in ROLES:
            got = client.get(
                f"/api/v1/attachments/{sha}",
                headers=headers_for(role, people, token, other_token),
            )
            assert got.status_code == expected[role], (kind, role, got.text)
            if got.status_code == 404:
                assert got.json() == {"error": "NotFound", "detail": f"no attachment {sha}"}
