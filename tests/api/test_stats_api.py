"""Statistics (办结率, on-time, satisfaction, median handling days, overdue) and deputies'
records (履职档案) over HTTP, on a small data set built through the workflow API.

The data set, two districts, two offices (lead office first), two deputies D1 (鼓楼区) and
D2 (台江区); days are assignment to first answer:

    A  鼓楼区 D1 JT   CLOSED satisfied, 10 days
    B  鼓楼区 D1 JT   unsatisfied, answered again, CLOSED basically satisfied, 20 days
    C  鼓楼区 D1 JT   ASSIGNED, overdue, 重点督办
    D  鼓楼区 -  -    WITHDRAWN
    I  鼓楼区 D1 ZJ   D1's own suggestion, ASSIGNED, not yet due
    E  台江区 D2 ZJ   answered late, unsatisfied: REHANDLING, 40 days
    F  台江区 D2 ZJ   CLOSED satisfied, 4 days, submitted 2025-03-10
    G  台江区 D2 -    addressed to D2, ANSWERED_DIRECT by D2
    H  台江区 -  -    REJECTED by D2
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger import service
from ledger.models import SuggestionRow
from tests.api.conftest import People
from tests.api.test_workflow_api import SUGGESTION, citizen, step, submit, upload
from tests.fixtures.db import Database

GULOU, TAIJIANG = "鼓楼区", "台江区"


def metrics(
    total: int,
    assigned: int,
    answered: int,
    closed: int,
    completion: float | None,
    on_time: float | None,
    satisfaction: float | None,
    median: float | None,
    overdue: int = 0,
    key_supervision: int = 0,
) -> dict[str, Any]:
    return {
        "total": total,
        "assigned": assigned,
        "answered": answered,
        "closed": closed,
        "completion_rate": completion,
        "on_time_rate": on_time,
        "satisfaction_rate": satisfaction,
        "median_handling_days": median,
        "overdue": overdue,
        "key_supervision": key_supervision,
    }


EMPTY = metrics(0, 0, 0, 0, None, None, None, None)


def change(database: Database, code: str, **columns: Any) -> None:
    with database.sessions.begin() as session:
        row = session.get(SuggestionRow, code)
        assert row is not None
        for name, value in columns.items():
            setattr(row, name, value)


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@dataclass(frozen=True)
class DataSet:
    codes: dict[str, str]


def build(client: TestClient, people: People, database: Database) -> DataSet:
    codes: dict[str, str] = {}
    tokens: dict[str, str] = {}
    replies: list[str] = []

    def new(name: str, district: str = GULOU, **extra: Any) -> str:
        submitted = submit(client, district=district, **extra)
        codes[name], tokens[name] = submitted["tracking_code"], submitted["citizen_token"]
        return codes[name]

    def accept_and_assign(code: str, deputy: Any, offices: list[str]) -> None:
        step(client, code, deputy.headers, to="DEPUTY_ACCEPTED")
        step(client, code, people.staff.headers, to="ASSIGNED", offices=offices)

    def answer(code: str, office: Any, category: str = "A") -> None:
        replies.append(code)  # each reply a distinct document (a PDF: uploads are checked)
        reply = upload(client, office.headers, f"%PDF-1.4 reply {len(replies)} to {code}".encode())
        step(client, code, office.headers, to="ANSWERED", category=category, reply_sha256=reply)

    def evaluate(name: str, level: str) -> None:
        to = "REHANDLING" if level == "unsatisfied" else "CLOSED"
        step(client, codes[name], citizen(tokens[name]), to=to, level=level)

    a = new("A")
    accept_and_assign(a, people.deputy, ["JT"])
    change(database, a, assigned_at=days_ago(10))
    step(client, a, people.office.headers, to="IN_PROGRESS")
    answer(a, people.office)
    evaluate("A", "satisfied")

    b = new("B")
    accept_and_assign(b, people.deputy, ["JT", "ZJ"])
    change(database, b, assigned_at=days_ago(20))
    step(client, b, people.office.headers, to="IN_PROGRESS")
    answer(b, people.office, "D")
    evaluate("B", "unsatisfied")
    answer(b, people.office)
    evaluate("B", "basically_satisfied")

    c = new("C")
    accept_and_assign(c, people.deputy, ["JT", "ZJ"])
    flagged = client.post(
        f"/api/v1/suggestions/{c}/flags",
        json={"key_supervision": True},
        headers=people.staff.headers,
    )
    assert flagged.status_code == 201, flagged.text
    change(database, c, due_at=days_ago(1))

    d = new("D")
    step(client, d, citizen(tokens["D"]), to="WITHDRAWN")

    own = client.post("/api/v1/suggestions", json=SUGGESTION, headers=people.deputy.headers)
    assert own.status_code == 201, own.text
    codes["I"] = own.json()["tracking_code"]
    step(client, codes["I"], people.staff.headers, to="ASSIGNED", offices=["ZJ"])

    e = new("E", TAIJIANG)
    accept_and_assign(e, people.other_deputy, ["ZJ", "JT"])
    change(database, e, assigned_at=days_ago(40), due_at=days_ago(5))
    step(client, e, people.other_office.headers, to="IN_PROGRESS")
    answer(e, people.other_office)
    evaluate("E", "unsatisfied")

    f = new("F", TAIJIANG)
    accept_and_assign(f, people.other_deputy, ["ZJ"])
    change(
        database,
        f,
        assigned_at=days_ago(4),
        submitted_at=datetime(2025, 3, 10, 12, 0, tzinfo=UTC),
    )
    step(client, f, people.other_office.headers, to="IN_PROGRESS")
    answer(f, people.other_office)
    evaluate("F", "satisfied")

    g = new("G", TAIJIANG, deputy=people.other_deputy.id)
    step(client, g, people.other_deputy.headers, to="ANSWERED_DIRECT", reason="已向街道了解并答复")

    h = new("H", TAIJIANG)
    step(client, h, people.other_deputy.headers, to="REJECTED", reason="不属于人大职权范围")
    return DataSet(codes)


@pytest.fixture
def dataset(client: TestClient, people: People, database: Database) -> DataSet:
    return build(client, people, database)


def get_stats(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_name(body: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    groups = body["groups"]
    names = [g["name"] for g in groups]
    named = [n for n in names if n is not None]
    assert named == sorted(named) and None not in names[: len(named)]  # sorted, null last
    return {g.pop("name"): g for g in groups}


def test_stats_over_the_whole_set_and_per_group(
    client: TestClient, people: People, dataset: DataSet
) -> None:
    body = get_stats(client)
    assert body["period"] == {"from": None, "to": None} and body["by"] is None
    assert body["groups"] is None
    # 4 of 7 closed (D withdrawn and H rejected are not to be completed); E answered late;
    # A, B, F satisfied, E unsatisfied; median of 4, 10, 20, 40 days; C overdue
    assert body["overall"] == metrics(9, 6, 5, 4, 0.5714, 0.75, 0.75, 15.0, 1, 1)

    assert by_name(get_stats(client, by="district")) == {
        GULOU: metrics(5, 4, 2, 2, 0.5, 1.0, 1.0, 15.0, 1, 1),
        TAIJIANG: metrics(4, 2, 3, 2, 0.6667, 0.5, 0.5, 22.0),
    }
    # an office counts the suggestions it leads: B and C are JT's although ZJ assists
    assert by_name(get_stats(client, by="office")) == {
        "JT": metrics(3, 3, 2, 2, 0.6667, 1.0, 1.0, 15.0, 1, 1),
        "ZJ": metrics(3, 3, 2, 1, 0.3333, 0.5, 0.5, 22.0),
        None: metrics(3, 0, 1, 1, 1.0, None, None, None),  # D, G, H: never assigned
    }
    assert by_name(get_stats(client, by="deputy")) == {
        people.deputy.id: metrics(4, 4, 2, 2, 0.5, 1.0, 1.0, 15.0, 1, 1),
        people.other_deputy.id: metrics(3, 2, 3, 2, 0.6667, 0.5, 0.5, 22.0),
        None: metrics(2, 0, 0, 0, None, None, None, None),  # D and H: denominator 0
    }


def test_overdue_in_the_listing_and_in_the_stats_agree(
    client: TestClient, dataset: DataSet
) -> None:
    listed = client.get("/api/v1/suggestions", params={"overdue": "true"}).json()
    assert [s["tracking_code"] for s in listed["items"]] == [dataset.codes["C"]]
    assert get_stats(client)["overall"]["overdue"] == listed["total"] == 1


def test_the_period_is_of_submission_dates_inclusive(client: TestClient, dataset: DataSet) -> None:
    only_f = metrics(1, 1, 1, 1, 1.0, 1.0, 1.0, 4.0)
    for bounds in ({"from": "2025-03-10", "to": "2025-03-10"}, {"to": "2025-03-10"}):
        body = get_stats(client, **bounds)
        assert body["overall"] == only_f
        assert body["period"] == {"from": bounds.get("from"), "to": "2025-03-10"}
    assert get_stats(client, **{"from": "2025-03-11"})["overall"]["total"] == 8
    by_district = get_stats(client, **{"from": "2025-01-01", "to": "2025-12-31", "by": "district"})
    assert by_district["groups"] == [{"name": TAIJIANG, **only_f}]


@pytest.mark.parametrize(
    "bounds",
    [
        {"from": "2025-03-11", "to": "2025-03-11"},
        {"to": "2025-03-09"},
        {"from": "2099-01-01"},
    ],
)
def test_an_empty_period_has_null_rates(
    client: TestClient, dataset: DataSet, bounds: dict[str, str]
) -> None:
    body = get_stats(client, **bounds, by="office")
    assert body["overall"] == EMPTY and body["groups"] == []


def test_stats_of_an_empty_ledger(client: TestClient) -> None:
    assert get_stats(client)["overall"] == EMPTY


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"from": "2025-03-11", "to": "2025-03-10"},
            "InvalidInput",
            "the period ends before it starts: from=2025-03-11 is after to=2025-03-10",
        ),
        (
            {"by": "region"},
            "InvalidInput",
            "by must be one of district, office, deputy; got 'region'",
        ),
        ({"by": ""}, "InvalidInput", "by must be one of district, office, deputy; got ''"),
        ({"from": "10/03/2025"}, "ValidationError", "from: Input should be a valid date"),
        ({"to": "2025-02-30"}, "ValidationError", "to: Input should be a valid date"),
    ],
)
def test_bad_parameters_are_422_with_a_precise_message(
    client: TestClient, params: dict[str, str], error: str, message: str
) -> None:
    response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == error
    assert message in response.json()["detail"]


def cast_ballot(database: Database, simulation: str, voter: str) -> None:
    with database.sessions.begin() as session:
        service.append_record(
            session,
            log="votes",
            type="ballot.cast",
            subject=f"{simulation}/{voter}",
            actor={"role": "deputy", "id": voter},
            body={"simulation": simulation, "voter": voter, "choices": [], "nonce": "00"},
        )


def test_deputy_records(
    client: TestClient, people: People, database: Database, dataset: DataSet
) -> None:
    cast_ballot(database, "SIM-2026-1", people.deputy.id)
    cast_ballot(database, "SIM-2026-1", people.deputy.id)  # a revote: the same simulation
    cast_ballot(database, "SIM-2026-2", people.deputy.id)
    cast_ballot(database, "SIM-2026-1", people.other_deputy.id)

    first = client.get(f"/api/v1/deputies/{people.deputy.id}/record")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body.pop("as_of")
    assert body == {
        "deputy": people.deputy.id,
        "district": GULOU,
        "active": True,
        "taken_up": 3,  # A, B, C; I is their own, D was withdrawn before anyone accepted it
        "answered_direct": 0,
        "rejected": 0,
        "submitted_own": 1,
        "votes_cast": 2,
        "suggestions": metrics(4, 4, 2, 2, 0.5, 1.0, 1.0, 15.0, 1, 1),
    }

    body = client.get(f"/api/v1/deputies/{people.other_deputy.id}/record").json()
    body.pop("as_of")
    assert body == {
        "deputy": people.other_deputy.id,
        "district": TAIJIANG,
        "active": True,
        "taken_up": 2,  # E, F; G was answered directly without being taken up
        "answered_direct": 1,
        "rejected": 1,  # H, which was addressed to nobody: an act, not one of D2's suggestions
        "submitted_own": 0,
        "votes_cast": 1,
        "suggestions": metrics(3, 2, 3, 2, 0.6667, 0.5, 0.5, 22.0),  # E, F, G
    }
    text = str(client.get(f"/api/v1/deputies/{people.other_deputy.id}/record").json())
    assert "anon-" not in text and "SG-" not in text  # no citizen, no suggestion detail


def test_a_deputy_with_no_activity_has_an_empty_record(client: TestClient, people: People) -> None:
    body = client.get(f"/api/v1/deputies/{people.deputy.id}/record").json()
    assert body["suggestions"] == EMPTY
    assert (body["taken_up"], body["submitted_own"], body["votes_cast"]) == (0, 0, 0)


def test_unknown_and_non_deputy_ids_are_404(client: TestClient, people: People) -> None:
    for account_id in ("deputy-00000000", people.staff.id, people.office.id, people.admin.id):
        response = client.get(f"/api/v1/deputies/{account_id}/record")
        assert response.status_code == 404
        assert response.json() == {
            "error": "DeputyNotFound",
            "detail": f"no deputy has the account id {account_id!r}",
        }
