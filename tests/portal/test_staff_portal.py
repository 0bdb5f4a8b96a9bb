"""The staff pages in a real browser (headless Debian Chromium through Playwright) against the
whole service (``civic-ledger run``: ganache, contract, API, worker, verifier service).

* an office moves a suggestion along through the workbench forms (a deputy takes it up, staff
  assign it, the lead office starts and answers it with a reply document);
* a deputy votes in the browser, signing with the key file ``civic-ledger deputy keygen``
  wrote; staff close and tally from the page; the deputy sees the result, and
  ``civic-verify tally`` recounts it from the chain;
* the dashboard renders the numbers of suggestions just handled;
* an inspector's audit of the store runs to "clean".

With ``CIVIC_SCREENSHOTS=1`` they also write the screenshots in docs/screenshots/.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.fixtures.service import Service
from tests.portal.conftest import shoot

pytestmark = [pytest.mark.browser, pytest.mark.chain]


def watch_console(page: Page) -> list[str]:
    """Collect the page's console errors (a CSP violation shows up there)."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors


def csp_violations(errors: list[str]) -> list[str]:
    return [e for e in errors if "Content Security Policy" in e]


def sign_in(page: Page, token: str) -> None:
    """Sign in with the keyboard only: the token field has the focus, Enter submits."""
    page.goto("/login")
    expect(page.locator("#token")).to_be_focused()
    page.keyboard.type(token)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/login" not in page.url, page.locator("main").inner_text()


def submit(portal: Service, district: str, **extra: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{portal.api}/api/v1/suggestions",
        json={
            "title": "幸福路口路灯不亮",
            "text": "幸福路口的路灯坏了三周，夜里行人看不见路。",
            "category": "城乡建设",
            "district": district,
            **extra,
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def item(page: Page, code: str) -> Any:
    return page.locator(f"li.work-item[data-code='{code}']")


def take_step(page: Page, code: str, to: str, fill: Callable[[Any], None] | None = None) -> None:
    """Open the step's <details> by keyboard-usable summary, fill it, submit, and check that
    the page says the suggestion moved."""
    entry = item(page, code)
    details = entry.locator(f"details[data-step='{to}']")
    if not details.evaluate("d => d.open"):  # a refused form comes back open
        details.locator("summary").click()
    form = details.locator("form")
    if fill is not None:
        fill(form)
    form.locator("button[type=submit]").click()
    expect(page.locator("#workbench-notice")).to_contain_text(code)


def test_an_office_moves_a_suggestion_along_in_the_workbench(
    portal: Service, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    district = "鼓楼区"
    suffix = secrets.token_hex(2).upper()
    deputy = portal.add_account("deputy", "王代表", district=district)
    staff = portal.add_account("staff", "人大办 张")
    office_code = f"JT{suffix}"
    office = portal.add_account("office", "市交通局", office=office_code)
    code = submit(portal, district, contact={"name": "张三", "phone": "13800001234"})[
        "tracking_code"
    ]

    page = new_page()
    errors = watch_console(page)
    sign_in(page, deputy["token"])
    page.goto("/workbench")
    take_step(page, code, "DEPUTY_ACCEPTED")

    page = new_page()
    errors += watch_console(page)
    sign_in(page, staff["token"])
    page.goto("/workbench")
    expect(item(page, code)).to_be_visible()
    # a wrong office code is refused with the service's reason, and nothing moves
    take_assign = item(page, code).locator("details[data-step='ASSIGNED']")
    take_assign.locator("summary").click()
    take_assign.locator("input[name=offices]").fill("NOSUCH")
    take_assign.locator("button[type=submit]").click()
    expect(page.locator("#workbench-error")).to_contain_text("unknown office(s): NOSUCH")
    take_step(page, code, "ASSIGNED", lambda f: f.locator("input[name=offices]").fill(office_code))

    page = new_page()
    errors += watch_console(page)
    sign_in(page, office["token"])
    page.goto("/workbench")
    expect(item(page, code)).to_contain_text("您是主办单位")
    take_step(page, code, "IN_PROGRESS")
    reply = "已更换灯杆，路灯恢复照明。".encode()

    def answer(form: Any) -> None:
        form.locator("select[name=category]").select_option("A")
        form.locator("input[name=reply_file]").set_input_files(
            files=[{"name": "答复.txt", "mimeType": "text/plain", "buffer": reply}]
        )
        form.locator("textarea[name=reason]").fill("已于本周更换灯杆并恢复照明。")
        shoot(page, "workbench")

    take_step(page, code, "ANSWERED", answer)
    expect(page.locator("#workbench-notice")).to_contain_text("已答复")

    # the lead office reads the contact data, with a reason; the read is recorded
    page.goto(f"/workbench?code={code}")
    private = page.locator("#found details[data-private]")
    private.locator("summary").click()
    private.locator("input[name=reason]").fill("电话回访答复情况")
    private.locator("button[type=submit]").click()
    expect(page.locator("#private-data")).to_contain_text("13800001234")

    trail = httpx.get(f"{portal.api}/api/v1/suggestions/{code}/trail", timeout=10).json()
    moves = [r["record"]["body"].get("to") for r in trail["records"][1:]]
    assert moves == ["DEPUTY_ACCEPTED", "ASSIGNED", "IN_PROGRESS", "ANSWERED"]
    assert (
        trail["records"][-1]["record"]["body"]["reply_sha256"] == hashlib.sha256(reply).hexdigest()
    )
    assert trail["state"] == "ANSWERED"
    assert not csp_violations(errors), errors


def test_the_workbench_fits_a_phone(portal: Service, new_page: Callable[..., Page]) -> None:
    staff = portal.add_account("staff", "人大办 王")
    submit(portal, "台江区")
    page = new_page(375, 812)
    sign_in(page, staff["token"])
    for path in ("/workbench", "/dashboard", "/simulations", "/login"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path} is {overflow}px wider than a phone"


def keygen(portal: Service, path: Path) -> str:
    made = portal.cli("deputy", "keygen", "--out", str(path))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def test_a_deputy_votes_in_the_browser_and_sees_the_verified_result(
    portal: Service, new_page: Callable[..., Page], tmp_path: Path
) -> None:
    admin = portal.add_account("admin", "管理员")
    staff = portal.add_account("staff", "人大办 李")
    deputies = [portal.add_account("deputy", f"代表{i}", district="晋安区") for i in range(2)]
    keys = []
    for i, deputy in enumerate(deputies):
        path = tmp_path / f"deputy{i}.key"
        public = keygen(portal, path)
        registered = portal.cli("deputy", "register", deputy["id"], public, "--admin", admin["id"])
        assert registered.returncode == 0, registered.stderr
        keys.append(path)
    created = httpx.post(
        f"{portal.api}/api/v1/simulations",
        headers={"Authorization": f"Bearer {staff['token']}"},
        json={
            "title": "2027年民生实事项目票决",
            "ballot_type": "approval",
            "rule": "greedy",
            "projects": [
                {"id": "P1", "name": "老旧小区加装电梯", "cost": 600_000},
                {"id": "P2", "name": "社区长者食堂", "cost": 300_000},
                {"id": "P3", "name": "口袋公园", "cost": 500_000},
            ],
            "budget": 1_000_000,
            "electorate": [d["id"] for d in deputies],
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    sim = created.json()["id"]

    staff_page = new_page()
    errors = watch_console(staff_page)
    sign_in(staff_page, staff["token"])
    staff_page.goto(f"/simulations/{sim}")
    staff_page.locator("#sim-open").click()
    expect(staff_page.locator("#sim-state")).to_have_attribute("data-state", "open")

    page = new_page()
    errors += watch_console(page)
    sign_in(page, deputies[0]["token"])
    page.goto(f"/simulations/{sim}")
    expect(page.locator("#vote-command")).to_contain_text(
        f"civic-ledger vote {sim} --key deputy.key --voter {deputies[0]['id']} --api {portal.api}"
    )
    # a wrong key is refused by the server: the signature does not verify
    page.locator("#choice-P1").check()
    page.locator("#ballot-key-file").set_input_files(str(keys[1]))
    page.locator("#ballot-submit").click()
    expect(page.locator("#ballot-status")).to_have_attribute("data-result", "bad")
    expect(page.locator("#ballot-status")).to_contain_text("BallotSignatureRejected")
    # the deputy's own key: pasted this time
    page.locator("#choice-P2").check()
    page.locator("#ballot-key-text").fill(keys[0].read_text())
    page.locator("#ballot-submit").click()
    expect(page.locator("#ballot-status")).to_have_attribute("data-result", "ok")
    assert page.locator("#ballot-key-text").input_value() == ""  # the key is not kept
    record_hash = page.locator("#ballot-status").get_attribute("data-record-hash")
    assert record_hash and len(record_hash) == 64

    # the second deputy votes from the terminal with the command the page shows
    voted = portal.cli(
        "vote", sim, "--key", str(keys[1]), "--voter", deputies[1]["id"],
        "--api", portal.api, "--choices", "P2,P3",
    )  # fmt: skip
    assert voted.returncode == 0, voted.stderr

    staff_page.reload()
    staff_page.locator("#sim-close").click()
    expect(staff_page.locator("#sim-state")).to_have_attribute("data-state", "closed")
    staff_page.locator("#sim-tally").click()
    expect(staff_page.locator("#sim-state")).to_have_attribute("data-state", "tallied")

    page.reload()
    # ballots P1+P2 and P2+P3: P2 first (2), then P1 and P3 tie at 1 and greedy takes the
    # lower id, P1; P3 no longer fits the budget (600k + 300k + 500k > 1M)
    expect(page.locator("#outcome")).to_have_text("P2, P1")
    expect(page.locator("tr[data-project='P2'] [data-count]")).to_have_text("2")
    expect(page.locator("#ballots-counted")).to_have_text("2")
    expect(page.locator("#my-ballots")).to_contain_text(record_hash)
    tally_record = page.locator("#result .mono").nth(1).inner_text()
    portal.receipt(tally_record, timeout=60)  # anchored
    expect(page.locator("#tally-verdict")).to_have_attribute(
        "data-verdict", "valid", timeout=30_000
    )
    command = page.locator("#verify-command").inner_text().split()
    assert command[:3] == ["civic-verify", "tally", sim] and "--my-ballot" in command
    checked = subprocess.run(
        [sys.executable, "-m", "verifier.cli", *command[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout
    shoot(page, "simulation-result")
    assert not csp_violations(errors), errors


def _handle_to_closed(
    portal: Service, district: str, staff: dict, office: dict, deputy: dict
) -> None:
    """One suggestion all the way to 办结 through the JSON API (the dashboard's data)."""
    submitted = submit(portal, district)
    code, citizen = submitted["tracking_code"], submitted["citizen_token"]

    def move(token: str, body: dict[str, Any]) -> None:
        answer = httpx.post(
            f"{portal.api}/api/v1/suggestions/{code}/transitions",
            headers={"Authorization": f"Bearer {token}"},
            json=body,
            timeout=10,
        )
        assert answer.status_code == 201, answer.text

    move(deputy["token"], {"to": "DEPUTY_ACCEPTED"})
    move(staff["token"], {"to": "ASSIGNED", "offices": [office["office"]]})
    move(office["token"], {"to": "IN_PROGRESS"})
    reply = httpx.post(
        f"{portal.api}/api/v1/attachments",
        content=b"reply " + code.encode(),
        headers={"content-type": "text/plain", "Authorization": f"Bearer {office['token']}"},
        timeout=10,
    ).json()["sha256"]
    move(office["token"], {"to": "ANSWERED", "category": "A", "reply_sha256": reply})
    move(citizen, {"to": "CLOSED", "level": "satisfied"})


def test_the_dashboard_shows_what_was_handled(
    portal: Service, new_page: Callable[..., Page]
) -> None:
    district = "测试" + secrets.token_hex(2) + "区"
    staff = portal.add_account("staff", "人大办 周")
    code = "SW" + secrets.token_hex(2).upper()
    office = portal.add_account("office", "市水务局", office=code)
    office["office"] = code
    deputy = portal.add_account("deputy", "周代表", district=district)
    _handle_to_closed(portal, district, staff, office, deputy)
    submit(portal, district)  # one still waiting: 1 of 2 completed

    page = new_page()
    errors = watch_console(page)
    page.goto("/dashboard")
    tile = page.locator(f"li.district-tile[data-district='{district}']")
    expect(tile).to_have_attribute("data-bucket", "rate-b2")  # 50 %
    expect(tile).to_contain_text("50.0%")
    office_row = page.locator("table tr", has_text=code)
    expect(office_row).to_contain_text("100.0%")
    expect(page.locator("figure.chart svg").first).to_be_visible()
    page.locator("#from").fill("2000-01-01")
    page.locator("#to").fill("2000-12-31")
    page.locator(".period-form button[type=submit]").click()
    expect(page.locator("#kpi-total")).to_have_text("0")
    page.goto("/dashboard?preset=30d")
    shoot(page, "dashboard")
    page.goto("/dashboard?lang=en")
    expect(page.locator("h1")).to_have_text("Democracy effectiveness map")
    page.goto("/dashboard?lang=zh")
    assert not csp_violations(errors), errors


def test_an_inspector_audit_runs_to_clean(portal: Service, new_page: Callable[..., Page]) -> None:
    inspector = portal.add_account("inspector", "监察 陈")
    made = submit(portal, "仓山区")
    portal.receipt(made["record_hash"], timeout=60)  # something anchored to check

    page = new_page()
    errors = watch_console(page)
    sign_in(page, inspector["token"])
    page.goto("/inspector")
    page.locator("#start-audit").click()
    audit = page.locator("#audit")
    expect(audit).to_have_attribute("data-audit-state", "finished", timeout=90_000)
    expect(audit).to_have_attribute("data-clean", "true")
    expect(page.locator("#audit-verdict")).to_contain_text("无异常")
    records = int(page.locator("#audit-records").inner_text())
    assert records >= 1
    expect(page.locator("#findings")).to_contain_text("未发现异常")
    shoot(page, "inspector-report")
    assert not csp_violations(errors), errors
