"""Simulations over HTTP: lifecycle records, signed ballots, revotes, refusals that store
nothing, secrecy, and a tally whose counted_root covers exactly the counted ballots."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core.merkle import merkle_root
from core.voting.ballots import public_key_hex, sign_ballot
from ledger.models import RecordRow
from tests.api.conftest import Account, People
from tests.fixtures.db import Database
from voting.ballots import generate_key


def votes_records(database: Database) -> int:
    with database.sessions() as session:
        return (
            session.scalar(
                select(func.count()).select_from(RecordRow).where(RecordRow.log == "votes")
            )
            or 0
        )


class Voter:
    def __init__(self, account: Account) -> None:
        self.account, self.key = account, generate_key()

    def ballot(
        self, sim: str, choices: Any, *, nonce: str | None = None, voter: str | None = None
    ) -> dict[str, Any]:
        nonce = nonce or secrets.token_hex(16)
        voter = voter or self.account.id
        return {
            "simulation": sim,
            "voter": voter,
            "choices": choices,
            "nonce": nonce,
            "signature": sign_ballot(self.key, sim, voter, choices, nonce),
        }


@pytest.fixture
def voters(client: TestClient, people: People, database: Database) -> Iterator[list[Voter]]:
    from ledger import auth

    out = [Voter(people.deputy), Voter(people.other_deputy)]
    with database.sessions.begin() as session:
        extra = auth.add_account(session, role="deputy", name="赵代表", district="鼓楼区")
    out.append(Voter(Account(extra.id, "deputy", extra.token)))
    for v in out:
        r = client.put(
            f"/api/v1/deputies/{v.account.id}/public-key",
            json={"public_key": public_key_hex(v.key)},
            headers=people.admin.headers,
        )
        assert r.status_code == 200, r.text
    yield out


PB = {
    "title": "2027年民生实事项目",
    "ballot_type": "approval",
    "rule": "mes-add1",
    "budget": 1000,
    "projects": [
        {"id": "A", "name": "老旧小区加装电梯", "cost": 600},
        {"id": "B", "name": "社区食堂", "cost": 300},
        {"id": "C", "name": "口袋公园", "cost": 400},
    ],
    "max_choices": 2,
}
YN = {
    "title": "民生实事票决",
    "ballot_type": "yes_no",
    "rule": "yes-no",
    "slots": 1,
    "projects": [{"id": "A", "name": "电梯", "cost": 1}, {"id": "B", "name": "食堂", "cost": 1}],
}


def opened(client: TestClient, people: People, spec: dict[str, Any]) -> str:
    r = client.post("/api/v1/simulations", json=spec, headers=people.staff.headers)
    assert r.status_code == 201, r.text
    sim = r.json()["id"]
    assert (
        client.post(f"/api/v1/simulations/{sim}/open", headers=people.staff.headers).status_code
        == 201
    )
    return sim


def test_lifecycle_revote_and_tally(
    client: TestClient, people: People, voters: list[Voter], database: Database
) -> None:
    sim = opened(client, people, PB)
    hashes = {}
    for v, choices in zip(voters, (["A"], ["B", "C"], ["A", "B"]), strict=True):
        r = client.post(f"/api/v1/simulations/{sim}/ballots", json=v.ballot(sim, choices))
        assert r.status_code == 201, r.text
        hashes[v.account.id] = r.json()["record_hash"]
    revote = client.post(
        f"/api/v1/simulations/{sim}/ballots", json=voters[0].ballot(sim, ["A", "C"])
    )
    assert revote.status_code == 201
    hashes[voters[0].account.id] = revote.json()["record_hash"]
    for step in ("close", "tally"):
        assert (
            client.post(
                f"/api/v1/simulations/{sim}/{step}", headers=people.staff.headers
            ).status_code
            == 201
        )
    view = client.get(f"/api/v1/simulations/{sim}").json()
    result = view["result"]
    assert view["state"] == "tallied" and result["ballots_counted"] == 3
    assert result["counts"] == {"A": 2, "B": 2, "C": 2}
    assert (
        result["counted_root"]
        == merkle_root(sorted(bytes.fromhex(h) for h in hashes.values())).hex()
    )
    ballots = client.get(f"/api/v1/simulations/{sim}/ballots").json()["ballots"]
    assert (
        len(ballots) == 4 and sum(b["superseded"] for b in ballots) == 1
    )  # the revote's predecessor
    with database.sessions() as session:
        types = [
            r.type
            for r in session.scalars(
                select(RecordRow).where(RecordRow.log == "votes").order_by(RecordRow.position)
            )
        ]
        opened_body = json.loads(
            session.scalars(
                select(RecordRow.canonical).where(RecordRow.type == "simulation.opened")
            ).one()
        )["body"]
    assert types == ["simulation.opened"] + ["ballot.cast"] * 4 + [
        "simulation.closed",
        "simulation.tallied",
    ]
    assert {e["voter"] for e in opened_body["electorate"]} == {v.account.id for v in voters}
    assert opened_body["projects"][0] == {"id": "A", "name": "老旧小区加装电梯", "cost": 600}


@pytest.mark.parametrize(
    ("mutate", "status", "error", "message"),
    [
        (
            lambda b, v, sim: {**b, "signature": "0" * 128},
            422,
            "BallotSignatureRejected",
            "does not verify",
        ),
        (
            lambda b, v, sim: {**b, "choices": ["C"]},
            422,
            "BallotSignatureRejected",
            "does not verify",
        ),
        (
            lambda b, v, sim: v[0].ballot("SIM-00000000", ["A"]),
            422,
            "BallotRefused",
            "the ballot is for SIM-00000000",
        ),
        (
            lambda b, v, sim: v[0].ballot(sim, ["A", "B", "C"]),
            422,
            "BallotRefused",
            "too_many_projects",
        ),
        (lambda b, v, sim: v[0].ballot(sim, ["Z"]), 422, "BallotRefused", "unknown_project"),
        (
            lambda b, v, sim: v[0].ballot(sim, ["A"], voter="deputy-00000000"),
            403,
            "NotEligible",
            "not in the electorate",
        ),
        (lambda b, v, sim: {**b, "nonce": "short"}, 422, "ValidationError", "nonce"),
    ],
)
def test_bad_ballots_are_refused_and_store_nothing(
    client: TestClient,
    people: People,
    voters: list[Voter],
    database: Database,
    mutate: Any,
    status: int,
    error: str,
    message: str,
) -> None:
    sim = opened(client, people, PB)
    before = votes_records(database)
    r = client.post(
        f"/api/v1/simulations/{sim}/ballots", json=mutate(voters[0].ballot(sim, ["A"]), voters, sim)
    )
    assert (
        r.status_code == status and r.json()["error"] == error and message in r.json()["detail"]
    ), r.text
    assert votes_records(database) == before


def test_replayed_nonce_and_the_voting_window(
    client: TestClient, people: People, voters: list[Voter], database: Database
) -> None:
    r = client.post("/api/v1/simulations", json=PB, headers=people.staff.headers)
    sim = r.json()["id"]
    ballot = voters[0].ballot(sim, ["A"])
    early = client.post(f"/api/v1/simulations/{sim}/ballots", json=ballot)
    assert early.status_code == 409 and early.json()["error"] == "VotingClosed"
    client.post(f"/api/v1/simulations/{sim}/open", headers=people.staff.headers)
    assert client.post(f"/api/v1/simulations/{sim}/ballots", json=ballot).status_code == 201
    replay = client.post(f"/api/v1/simulations/{sim}/ballots", json=ballot)
    assert replay.status_code == 409 and replay.json()["error"] == "NonceReplayed"
    client.post(f"/api/v1/simulations/{sim}/close", headers=people.staff.headers)
    late = client.post(f"/api/v1/simulations/{sim}/ballots", json=voters[1].ballot(sim, ["B"]))
    assert late.status_code == 409 and late.json()["error"] == "VotingClosed"
    assert votes_records(database) == 3  # opened, one ballot, closed


def test_yes_no_vote_with_quorum_and_too_many_yes(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    sim = opened(client, people, YN)
    too_many = client.post(
        f"/api/v1/simulations/{sim}/ballots", json=voters[0].ballot(sim, {"A": "yes", "B": "yes"})
    )
    assert too_many.status_code == 422 and "too_many_yes" in too_many.json()["detail"]
    for v, choice in zip(
        voters, ({"A": "yes", "B": "no"}, {"A": "yes", "B": "abstain"}), strict=False
    ):
        assert (
            client.post(
                f"/api/v1/simulations/{sim}/ballots", json=v.ballot(sim, choice)
            ).status_code
            == 201
        )
    client.post(f"/api/v1/simulations/{sim}/close", headers=people.staff.headers)
    client.post(f"/api/v1/simulations/{sim}/tally", headers=people.staff.headers)
    result = client.get(f"/api/v1/simulations/{sim}").json()["result"]
    assert result["outcome"]["quorum_met"] is True  # 2 of 3 eligible
    assert result["outcome"]["adopted"] == ["A"]
    assert result["counts"]["B"] == {"yes": 0, "no": 1, "abstain": 1, "not_voted": 1}


def test_secret_ballots_are_hidden_from_the_public(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    sim = opened(client, people, {**PB, "secrecy": "secret"})
    cast = client.post(
        f"/api/v1/simulations/{sim}/ballots", json=voters[0].ballot(sim, ["A"])
    ).json()
    receipt_path = f"/api/v1/records/{cast['record_hash']}/receipt"
    assert client.get(receipt_path).status_code == 403
    assert (
        client.get(receipt_path, headers=voters[0].account.headers).status_code == 202
    )  # own ballot, pending
    client.post(f"/api/v1/simulations/{sim}/close", headers=people.staff.headers)
    public = client.get(f"/api/v1/simulations/{sim}/ballots").json()["ballots"]
    assert public == [{"record_hash": cast["record_hash"], "superseded": False}]
    inspector = client.get(
        f"/api/v1/simulations/{sim}/ballots", headers=people.inspector.headers
    ).json()["ballots"]
    assert inspector[0]["choices"] == ["A"]
    assert client.get(receipt_path, headers=people.other_deputy.headers).status_code == 403


def test_only_staff_manage_and_only_admins_register_keys(
    client: TestClient, people: People, voters: list[Voter]
) -> None:
    for who in (people.deputy, people.office, people.inspector):
        assert client.post("/api/v1/simulations", json=PB, headers=who.headers).status_code == 403
    r = client.put(
        f"/api/v1/deputies/{people.deputy.id}/public-key",
        json={"public_key": "ab" * 32},
        headers=people.staff.headers,
    )
    assert r.status_code == 403
    bad = client.post(
        "/api/v1/simulations", json={**PB, "budget": None}, headers=people.staff.headers
    )
    assert bad.status_code == 422 and "needs a budget" in bad.json()["detail"]
