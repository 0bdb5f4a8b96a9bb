"""The staff pages through FastAPI's TestClient, on the real app and database (no chain):
sign-in, role refusal, CSRF refusal, form validation that stores nothing, the workbench's
steps through the domain services, audited contact reads, the dashboard's numbers and the
simulation controls."""

from __future__ import annotations

import hashlib
import html
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.portal import i18n
from core.voting.ballots import public_key_hex, sign_ballot
from ledger import auth
from ledger.models import RecordRow, SuggestionRow
from tests.fixtures.db import Database
from voting.ballots import generate_key

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "portal" / "templates"
STAFF_TEMPLATES = (
    "login.html",
    "dashboard.html",
    "workbench.html",
    "simulations.html",
    "simulation.html",
    "inspector.html",
)


@dataclass(frozen=True)
class Person:
    id: str
    token: str


@dataclass(frozen=True)
class Staff:
    deputy: Person  # 鼓楼区
    other_deputy: Person  # 台江区
    staff: Person
    office: Person  # JT
    other_office: Person  # ZJ
    inspector: Person
    admin: Person


@pytest.fixture
def people(database: Database) -> Staff:
    def add(role: str, name: str, **kw: str) -> Person:
        with database.sessions.begin() as session:
            made = auth.add_account(session, role=role, name=name, **kw)
        return Person(made.id, made.token)

    return Staff(
        deputy=add("deputy", "王代表", district="鼓楼区"),
        other_deputy=add("deputy", "李代表", district="台江区"),
        staff=add("staff", "人大办 张"),
        office=add("office", "市交通局", office="JT"),
        other_office=add("office", "市住建局", office="ZJ"),
        inspector=add("inspector", "监察 陈"),
        admin=add("admin", "管理员"),
    )


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, token: str) -> str:
    """Sign in through /login; returns a CSRF token of the signed-in session."""
    client.cookies.clear()
    answer = client.post(
        "/login",
        data={"csrf": csrf_of(client.get("/login").text), "token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/dashboard").text)


def submit(client: TestClient, district: str = "鼓楼区", **extra: Any) -> dict[str, Any]:
    body = {"title": "路灯不亮", "text": "幸福路口的路灯坏了三周。", "category": "城乡建设"}
    answer = client.post("/api/v1/suggestions", json={**body, "district": district, **extra})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def records(database: Database, log: str | None = None) -> int:
    query = select(func.count()).select_from(RecordRow)
    if log:
        query = query.where(RecordRow.log == log)
    with database.sessions() as session:
        return int(session.scalar(query) or 0)


def state_of(database: Database, code: str) -> str:
    with database.sessions() as session:
        row = session.scalars(
            select(SuggestionRow).where(SuggestionRow.tracking_code == code)
        ).one()
        return row.state


def step(client: TestClient, csrf: str, code: str, to: str, **fields: Any) -> Any:
    files = fields.pop("files", None)
    return client.post(
        f"/workbench/{code}/transition",
        data={"csrf": csrf, "to": to, **fields},
        files=files,
        follow_redirects=False,
    )


def error_text(page: str) -> str:
    match = re.search(r'id="workbench-error".*?<p>(.*?)</p>', page, re.S)
    assert match, "no error summary on the page"
    return html.unescape(match.group(1))


# -- sign-in and refusals --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/workbench", "/inspector"])
def test_anonymous_is_sent_to_login_and_back(portal_client: TestClient, path: str) -> None:
    answer = portal_client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=%2F{path[1:]}"


def test_sign_in_lands_on_the_role_page_and_sets_an_httponly_cookie(
    portal_client: TestClient, people: Staff
) -> None:
    page = portal_client.get("/login?next=/inspector")
    assert 'value="/inspector"' in page.text
    answer = portal_client.post(
        "/login",
        data={"csrf": csrf_of(page.text), "token": people.office.token, "next": "//evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/workbench"  # the foreign next is dropped
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("civic_session=clt_") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    workbench = portal_client.get("/workbench")
    assert workbench.status_code == 200
    assert people.office.id in workbench.text


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        ("", 422, "请输入账户令牌"),
        ("clt_" + "x" * 43, 401, "令牌无效、已过期或账户已停用"),
        ("cit_" + "x" * 43, 401, "市民的建议令牌"),
        ("Bearer nonsense", 401, "令牌无效"),
    ],
)
def test_a_bad_token_re_renders_the_form_and_signs_nobody_in(
    portal_client: TestClient, token: str, status: int, message: str
) -> None:
    page = portal_client.get("/login")
    answer = portal_client.post(
        "/login", data={"csrf": csrf_of(page.text), "token": token}, follow_redirects=False
    )
    assert answer.status_code == status
    assert message in answer.text
    assert "civic_session" not in answer.headers.get("set-cookie", "")
    assert portal_client.get("/workbench", follow_redirects=False).status_code == 303


def test_a_disabled_account_is_signed_out_at_once(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    sign_in(portal_client, people.staff.token)
    assert portal_client.get("/workbench").status_code == 200
    with database.sessions.begin() as session:
        auth.disable_account(session, people.staff.id)
    assert portal_client.get("/workbench", follow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("inspector", "/workbench"),
        ("admin", "/workbench"),
        ("office", "/inspector"),
        ("staff", "/inspector"),
        ("deputy", "/inspector"),
    ],
)
def test_a_role_without_the_page_gets_403(
    portal_client: TestClient, people: Staff, who: str, path: str
) -> None:
    sign_in(portal_client, getattr(people, who).token)
    answer = portal_client.get(path)
    assert answer.status_code == 403
    assert "无权访问" in answer.text


def test_logout_needs_csrf_and_then_clears_the_cookie(
    portal_client: TestClient, people: Staff
) -> None:
    csrf = sign_in(portal_client, people.staff.token)
    refused = portal_client.post("/logout", data={}, follow_redirects=False)
    assert refused.status_code == 403
    assert portal_client.get("/workbench").status_code == 200  # still signed in
    answer = portal_client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert (
        'civic_session=""' in answer.headers["set-cookie"]
        or "Max-Age=0" in answer.headers["set-cookie"]
    )
    portal_client.cookies.delete("civic_session")
    assert portal_client.get("/workbench", follow_redirects=False).status_code == 303


# -- the workbench ---------------------------------------------------------------------------


def test_queues_show_each_role_its_own_work(portal_client: TestClient, people: Staff) -> None:
    mine = submit(portal_client, "鼓楼区")["tracking_code"]
    elsewhere = submit(portal_client, "台江区")["tracking_code"]
    sign_in(portal_client, people.deputy.token)
    page = portal_client.get("/workbench").text
    assert f'data-code="{mine}"' in page
    assert f'data-code="{elsewhere}"' not in page
    assert "/workbench/" + mine + "/transition" in page
    sign_in(portal_client, people.office.token)
    assert f'data-code="{mine}"' not in portal_client.get("/workbench").text


def test_a_suggestion_moves_through_the_forms(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    code = submit(portal_client)["tracking_code"]
    csrf = sign_in(portal_client, people.deputy.token)
    answer = step(portal_client, csrf, code, "DEPUTY_ACCEPTED")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/workbench?moved={code}&to=DEPUTY_ACCEPTED")
    notice = portal_client.get(answer.headers["location"]).text
    assert "已转为“代表受理”" in notice

    csrf = sign_in(portal_client, people.staff.token)
    assert f'data-code="{code}"' in portal_client.get("/workbench").text
    due = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
    assert step(portal_client, csrf, code, "ASSIGNED", offices="JT, ZJ", due=due).status_code == 303

    csrf = sign_in(portal_client, people.office.token)
    page = portal_client.get("/workbench").text
    assert f'data-code="{code}"' in page and "您是主办单位" in page
    assert step(portal_client, csrf, code, "IN_PROGRESS").status_code == 303
    reply = {"reply_file": ("答复.txt", "已修好路灯。".encode(), "text/plain")}
    answer = step(portal_client, csrf, code, "ANSWERED", category="A", files=reply)
    assert answer.status_code == 303, error_text(answer.text)
    assert state_of(database, code) == "ANSWERED"
    trail = portal_client.get(f"/api/v1/suggestions/{code}/trail").json()["records"]
    bodies = [r["record"]["body"] for r in trail]
    assert [b.get("to") for b in bodies[1:]] == [
        "DEPUTY_ACCEPTED",
        "ASSIGNED",
        "IN_PROGRESS",
        "ANSWERED",
    ]
    assert bodies[2]["offices"] == ["JT", "ZJ"] and bodies[2]["due"] == due
    assert bodies[4]["reply_sha256"] == hashlib.sha256("已修好路灯。".encode()).hexdigest()


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"to": "ASSIGNED", "offices": "NOPE"}, 422, "unknown office(s): NOPE"),
        ({"to": "ASSIGNED", "offices": "JT", "due": "2001-01-01"}, 422, "in the future"),
        ({"to": "ASSIGNED", "offices": "JT", "due": "01/02/2030"}, 422, "due"),
        ({"to": "ASSIGNED"}, 422, "needs: offices"),
        ({"to": "ASSIGNED", "offices": "JT JT"}, 422, "must not repeat"),
        ({"to": "MERGED"}, 422, "needs: merged_into"),
        ({"to": "MERGED", "merged_into": "SG-0000-0000-0000"}, 422, "no suggestion SG-0000"),
        ({"to": "IN_PROGRESS"}, 409, "Allowed next states"),
        ({"to": "FLYING"}, 422, "to:"),
    ],
)
def test_invalid_input_re_renders_with_the_reason_and_stores_nothing(
    portal_client: TestClient,
    people: Staff,
    database: Database,
    fields: dict[str, str],
    status: int,
    message: str,
) -> None:
    code = submit(portal_client)["tracking_code"]
    csrf = sign_in(portal_client, people.deputy.token)
    assert step(portal_client, csrf, code, "DEPUTY_ACCEPTED").status_code == 303
    csrf = sign_in(portal_client, people.staff.token)
    before = records(database)
    extra = dict(fields)  # the parameters are shared by the SQLite and PostgreSQL runs
    to = extra.pop("to")
    answer = step(portal_client, csrf, code, to, **extra)
    assert answer.status_code == status
    assert message in error_text(answer.text)
    assert "未保存任何内容" in answer.text
    assert records(database) == before
    assert state_of(database, code) == "DEPUTY_ACCEPTED"


def test_the_service_decides_who_may_act(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    code = submit(portal_client, "鼓楼区")["tracking_code"]
    csrf = sign_in(portal_client, people.other_deputy.token)  # 台江区: not in scope
    before = records(database)
    answer = step(portal_client, csrf, code, "DEPUTY_ACCEPTED")
    assert answer.status_code == 403
    assert "a deputy of the suggestion's district" in error_text(answer.text)
    assert records(database) == before


def test_a_form_without_a_valid_csrf_token_is_refused(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    code = submit(portal_client)["tracking_code"]
    csrf = sign_in(portal_client, people.deputy.token)
    before = records(database)
    for data, headers in (
        ({"to": "DEPUTY_ACCEPTED"}, {}),
        ({"to": "DEPUTY_ACCEPTED", "csrf": "0" * 64}, {}),
        ({"to": "DEPUTY_ACCEPTED", "csrf": csrf}, {"Origin": "http://evil.example"}),
    ):
        answer = portal_client.post(
            f"/workbench/{code}/transition", data=data, headers=headers, follow_redirects=False
        )
        assert answer.status_code == 403
    assert records(database) == before
    assert state_of(database, code) == "SUBMITTED"


def test_overdue_items_are_highlighted(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    code = submit(portal_client)["tracking_code"]
    csrf = sign_in(portal_client, people.deputy.token)
    step(portal_client, csrf, code, "DEPUTY_ACCEPTED")
    csrf = sign_in(portal_client, people.staff.token)
    step(portal_client, csrf, code, "ASSIGNED", offices="JT")
    with database.sessions.begin() as session:  # as if the three months had passed
        session.execute(
            update(SuggestionRow)
            .where(SuggestionRow.tracking_code == code)
            .values(due_at=datetime.now(UTC) - timedelta(days=3))
        )
    sign_in(portal_client, people.office.token)
    page = portal_client.get("/workbench").text
    item = re.search(rf'<li class="([^"]*)" id="item-{code}"[^>]*>', page)
    assert item and "work-item--overdue" in item.group(1)
    assert "已逾期 3 天" in page or "已逾期 4 天" in page


# -- personal data ---------------------------------------------------------------------------


def test_contact_data_only_for_handlers_with_a_reason_and_every_read_recorded(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    code = submit(portal_client, contact={"name": "张三", "phone": "13800001234"})["tracking_code"]
    csrf = sign_in(portal_client, people.deputy.token)
    step(portal_client, csrf, code, "DEPUTY_ACCEPTED")
    csrf = sign_in(portal_client, people.staff.token)
    step(portal_client, csrf, code, "ASSIGNED", offices="JT")

    csrf = sign_in(portal_client, people.other_office.token)  # not handling it
    before = records(database, "access")
    refused = portal_client.post(
        f"/workbench/{code}/private", data={"csrf": csrf, "field": "contact", "reason": "好奇"}
    )
    assert refused.status_code == 403 and "13800001234" not in refused.text
    assert records(database, "access") == before

    csrf = sign_in(portal_client, people.office.token)
    page = portal_client.get("/workbench").text
    assert "13800001234" not in page and f"/workbench/{code}/private" in page
    no_reason = portal_client.post(
        f"/workbench/{code}/private", data={"csrf": csrf, "field": "contact", "reason": "  "}
    )
    assert no_reason.status_code == 422 and "13800001234" not in no_reason.text
    assert records(database, "access") == before
    shown = portal_client.post(
        f"/workbench/{code}/private", data={"csrf": csrf, "field": "contact", "reason": "电话回访"}
    )
    assert shown.status_code == 200
    assert "13800001234" in shown.text and "张三" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert records(database, "access") == before + 1
    with database.sessions() as session:
        row = session.scalars(
            select(RecordRow).where(RecordRow.log == "access").order_by(RecordRow.position.desc())
        ).first()
        assert row is not None
        record = json.loads(row.canonical)
    assert record["type"] == "pii.read" and record["subject"] == people.office.id
    # The reason is kept sealed; the public record commits to it (tests/api/test_confidential.py).
    assert set(record["body"]) == {"suggestion", "field", "reason_commitment"}
    assert (record["body"]["suggestion"], record["body"]["field"]) == (code, "contact")
    assert "电话回访" not in row.canonical.decode()


# -- dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_rates_by_district_and_office(
    portal_client: TestClient, people: Staff
) -> None:
    district = "测试区" + secrets.token_hex(2)
    submit(portal_client, district)
    code = submit(portal_client, district)["tracking_code"]
    csrf = sign_in(portal_client, people.staff.token)
    step(portal_client, csrf, code, "REJECTED", reason="不属于人大职权")
    done = submit(portal_client, "鼓楼区")
    csrf = sign_in(portal_client, people.deputy.token)
    step(portal_client, csrf, done["tracking_code"], "ANSWERED_DIRECT", reason="已协调解决")
    portal_client.cookies.clear()

    page = portal_client.get("/dashboard").text
    tile = re.search(
        rf'<li class="district-tile (rate-[a-z0-9]+)" data-district="{district}".*?</li>',
        page,
        re.S,
    )
    assert tile and tile.group(1) == "rate-b0"  # 0 of 1 to complete
    assert "0.0%" in tile.group(0) and "0 / 2 件办结" in tile.group(0)
    gulou = re.search(r'data-district="鼓楼区" data-bucket="(rate-[a-z0-9]+)"', page)
    assert gulou and gulou.group(1) == "rate-b4"
    assert page.count("<svg") >= 6 and 'style="' not in page and "<style" not in page
    assert "按承办单位" in page and "尚未交办" in page

    english = portal_client.get("/dashboard?lang=en").text
    assert "Completion rate" in english and "Democracy effectiveness map" in english


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-02-30", "not a date"),
        ("from=2026-03-01&to=2026-01-01", "ends before it starts"),
        ("preset=decade", "unknown period"),
    ],
)
def test_dashboard_refuses_a_bad_period(
    portal_client: TestClient, query: str, message: str
) -> None:
    answer = portal_client.get(f"/dashboard?{query}")
    assert answer.status_code == 422
    assert message in answer.text


def test_dashboard_period_filters_by_submission_day(
    portal_client: TestClient, people: Staff
) -> None:
    del people
    submit(portal_client, "鼓楼区")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    later = portal_client.get(f"/dashboard?from={tomorrow}").text
    assert re.search(r'id="kpi-total">0<', later)
    today = portal_client.get("/dashboard?preset=30d").text
    assert re.search(r'id="kpi-total">1<', today)


# -- simulations -----------------------------------------------------------------------------


def test_staff_open_close_and_tally_from_the_page(
    portal_client: TestClient, people: Staff, database: Database
) -> None:
    key = generate_key()
    with database.sessions.begin() as session:
        account = auth.get_account(session, people.deputy.id)
        assert account is not None
        account.public_key = public_key_hex(key)
    created = portal_client.post(
        "/api/v1/simulations",
        headers={"Authorization": f"Bearer {people.staff.token}"},
        json={
            "title": "2027 民生实事",
            "ballot_type": "approval",
            "rule": "greedy",
            "projects": [
                {"id": "P1", "name": "老旧小区加装电梯", "cost": 600},
                {"id": "P2", "name": "社区食堂", "cost": 300},
                {"id": "P3", "name": "口袋公园", "cost": 500},
            ],
            "budget": 1000,
            "electorate": [people.deputy.id],
        },
    )
    assert created.status_code == 201, created.text
    sim = created.json()["id"]

    csrf = sign_in(portal_client, people.deputy.token)  # a deputy may not manage
    refused = portal_client.post(f"/simulations/{sim}/open", data={"csrf": csrf})
    assert refused.status_code == 403

    csrf = sign_in(portal_client, people.staff.token)
    assert 'id="sim-open"' in portal_client.get(f"/simulations/{sim}").text
    assert portal_client.post(f"/simulations/{sim}/tally", data={"csrf": csrf}).status_code == 409
    opened = portal_client.post(
        f"/simulations/{sim}/open", data={"csrf": csrf}, follow_redirects=False
    )
    assert opened.status_code == 303

    sign_in(portal_client, people.deputy.token)
    page = portal_client.get(f"/simulations/{sim}").text
    assert 'id="ballot-form"' in page and f'data-voter="{people.deputy.id}"' in page
    assert f"civic-ledger vote {sim} --key deputy.key --voter {people.deputy.id}" in page
    nonce = secrets.token_hex(16)
    ballot = {
        "simulation": sim,
        "voter": people.deputy.id,
        "choices": ["P1", "P2"],
        "nonce": nonce,
        "signature": sign_ballot(key, sim, people.deputy.id, ["P1", "P2"], nonce),
    }
    assert portal_client.post(f"/api/v1/simulations/{sim}/ballots", json=ballot).status_code == 201

    csrf = sign_in(portal_client, people.staff.token)
    for action in ("close", "tally"):
        answer = portal_client.post(
            f"/simulations/{sim}/{action}", data={"csrf": csrf}, follow_redirects=False
        )
        assert answer.status_code == 303, answer.text
    result = portal_client.get(f"/simulations/{sim}").text
    assert re.search(r'id="outcome">P1, P2<', result)
    assert f"civic-verify tally {sim} --api http://127.0.0.1:8000 --rpc" in result
    assert 'data-project="P3"' in result and 'data-project="P1" data-selected="1"' in result
    assert "入选项目共 900，预算 1,000" in result


def test_an_unknown_simulation_is_a_404_page(portal_client: TestClient) -> None:
    assert portal_client.get("/simulations/SIM-00000000").status_code == 404
    assert portal_client.get("/simulations/nonsense").status_code == 404


# -- messages --------------------------------------------------------------------------------


def test_every_message_the_staff_templates_name_exists() -> None:
    known = i18n.load_messages()
    used: set[str] = set()
    for name in STAFF_TEMPLATES:
        text = (TEMPLATES / name).read_text(encoding="utf-8")
        # whole keys only: t("a.b") or t("a.b", …); built keys (t("a." ~ x)) are not checked
        used |= set(re.findall(r"""(?<![\w.])t\(\s*["']([A-Za-z0-9_.-]+)["']\s*[,)]""", text))
    missing = sorted(key for key in used if key not in known)
    assert not missing
    staff = json.loads((TEMPLATES.parent / "messages" / "staff.json").read_text(encoding="utf-8"))
    assert all(key.startswith("staff.") for key in staff)


def test_every_built_message_key_exists() -> None:
    """Keys the templates build from values (``t("staff.step." ~ to)``) exist for every value."""
    from api.portal import dashboard, simulations, workbench
    from core.workflow import ReplyCategory, SuggestionState
    from verifier.audit.findings import FindingKind

    built = [f"staff.metric.{m}" for m in dashboard.METRICS]
    built += [f"staff.dash.preset.{p}" for p in dashboard.PRESETS]
    built += ["staff.dash.bucket.rate-none"] + [f"staff.dash.bucket.rate-b{i}" for i in range(5)]
    built += [f"staff.dash.by_{g}" for g in ("district", "office")]
    built += [f"staff.step.{s.value}" for steps in workbench.ROLE_STEPS.values() for s in steps]
    built += [f"state.{s.value}" for s in SuggestionState]
    built += [
        f"staff.field.reason.{s.value}"
        for s, fields in workbench.STEP_FIELDS.items()
        if any(name == "reason" for name, _ in fields)
    ]
    built += [key for queues in workbench.QUEUES.values() for key, _ in queues]
    built += ["staff.wb.queue.overdue"]
    built += [f"staff.wb.lead.{role}" for role in ("deputy", "staff", "office")]
    built += [f"staff.category.{c.value}" for c in ReplyCategory]
    built += [f"staff.sim.state.{s}" for s in ("draft", "open", "closed", "tallied")]
    built += [f"staff.sim.type.{t}" for t in ("approval", "cumulative", "ordinal", "yes_no")]
    built += [f"staff.sign.choices.{t}" for t in ("approval", "cumulative", "ordinal", "yes_no")]
    built += [f"staff.sim.secrecy.{s}" for s in ("open", "secret")]
    for action in simulations.ACTIONS:
        built += [f"staff.sim.{k}.{action}" for k in ("done", "action", "manage_hint")]
    built += [f"staff.insp.state.{s}" for s in ("running", "finished", "failed")]
    built += [f"staff.insp.kind.{k.value}" for k in FindingKind]
    known = i18n.load_messages()
    assert sorted(key for key in built if key not in known) == []


def test_an_inspector_starts_an_audit_and_its_report_is_kept(
    portal_client: TestClient, people: Staff, tmp_path: Path
) -> None:
    submit(portal_client)
    csrf = sign_in(portal_client, people.staff.token)
    assert portal_client.post("/inspector/audits", data={"csrf": csrf}).status_code == 403
    csrf = sign_in(portal_client, people.inspector.token)
    assert portal_client.post("/inspector/audits", data={}).status_code == 403  # no CSRF
    started = portal_client.post("/inspector/audits", data={"csrf": csrf}, follow_redirects=False)
    assert started.status_code == 303
    audit = started.headers["location"].removeprefix("/inspector?audit=")
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    page = portal_client.get(started.headers["location"]).text
    while 'data-audit-state="running"' in page and datetime.now(UTC) < deadline:
        assert '<meta http-equiv="refresh"' in page
        page = portal_client.get(started.headers["location"]).text
    # no contract is deployed in this test: the store is read, the chain is not consulted
    assert 'data-audit-state="finished"' in page and 'data-clean="true"' in page
    assert re.search(r'id="audit-records">1<', page)
    saved = json.loads((tmp_path / "audits" / f"{audit}.json").read_text(encoding="utf-8"))
    assert saved["state"] == "finished" and saved["report"]["clean"] is True
    assert saved["started_by"] == people.inspector.id
    assert portal_client.get("/inspector?audit=AUD-nosuch00").status_code == 404


def test_staff_pages_carry_no_inline_script_or_style_and_no_outside_asset(
    portal_client: TestClient, people: Staff
) -> None:
    submit(portal_client)
    pages = {
        people.deputy.token: ["/workbench", "/simulations"],
        people.staff.token: ["/workbench"],
        people.office.token: ["/workbench"],
        people.inspector.token: ["/inspector"],
        "": ["/dashboard", "/login"],
    }
    for token, paths in pages.items():
        if token:
            sign_in(portal_client, token)
        else:
            portal_client.cookies.clear()
        for path in paths:
            page = portal_client.get(path).text
            assert "style=" not in page and "<style" not in page, path
            assert re.findall(r"<script(?![^>]*\bsrc=)", page) == [], path
            assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page), path
