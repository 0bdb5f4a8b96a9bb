"""The citizen pages in a real browser (Debian's Chromium through Playwright) against the whole
service: ganache, the API, the anchoring worker and the verifier service (``civic-ledger run``).

Screenshots for docs/screenshots/ are taken on the way when CIVIC_SCREENSHOTS=1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.fixtures.service import Service
from tests.portal.conftest import shoot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.chain]

SUGGESTION = {
    "title": "幸福路口路灯不亮",
    "text": "幸福路与人民路交叉口的路灯坏了三周，晚上行人过马路很危险。建议尽快修复。",
    "category": "城乡建设",
    "district": "鼓楼区",
}
ANCHORED = 30_000  # ms: anchoring takes about the 2 s interval; the machine may be busy


def expect_verdict(page: Page, selector: str, verdict: str, timeout: int = ANCHORED) -> None:
    page.wait_for_selector(f"{selector}[data-verdict='{verdict}']", timeout=timeout)


def fill_form(page: Page, data: dict[str, str] = SUGGESTION) -> None:
    page.fill("#f-title", data["title"])
    page.fill("#f-text", data["text"])
    page.select_option("#f-category", data["category"])
    page.fill("#f-district", data["district"])


def submit_by_api(portal: Service) -> dict[str, Any]:
    response = httpx.post(f"{portal.api}/api/v1/suggestions", json=SUGGESTION, timeout=10)
    assert response.status_code == 201, response.text
    accepted: dict[str, Any] = response.json()
    return accepted


def anchored_receipt(portal: Service, record_hash: str) -> dict[str, Any]:
    receipt, _waited = portal.receipt(record_hash, timeout=30)
    return receipt


def test_submit_track_and_verify_a_suggestion(page: Page, portal: Service, tmp_path: Path) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "提交建议"
    fill_form(page)
    page.fill("#f-contact_name", "张三")
    page.fill("#f-contact_phone", "138 0000 0000")
    shoot(page, "submit")
    page.click("form[action='/'] button[type=submit]")
    for _ in range(2):  # neighbours in the same batch: the receipt gets a Merkle path
        submit_by_api(portal)

    # The result: tracking code, token shown once, QR code, receipt pending then valid.
    code = page.locator("#tracking-code").inner_text()
    assert re.fullmatch(r"SG-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", code)
    assert page.locator("#citizen-token").inner_text().startswith("cit_")
    qr = page.locator("img.qr")
    assert qr.get_attribute("src").startswith("data:image/png;base64,")
    assert qr.evaluate("img => img.naturalWidth > 0")
    record_hash = page.locator("#record-hash").inner_text()
    # The badge's verdict comes from the verifier service, asked by the browser.
    expect_verdict(page, "#receipt-badge", "valid")
    assert page.locator("#receipt-badge").inner_text() == "有效"
    download_link = page.locator("#receipt-download")
    assert download_link.inner_text() == "下载回执"
    shoot(page, "submitted")
    with page.expect_download() as info:
        download_link.click()
    saved = tmp_path / "receipt.json"
    info.value.save_as(saved)
    receipt = json.loads(saved.read_text(encoding="utf-8"))
    assert receipt["record"]["subject"] == code and receipt["proof"]["root"]

    # The track page: the trail as a timeline, each step verified by the verifier service.
    page.click("#track-link")
    page.wait_for_url(f"**/track/{code}")
    items = page.locator(".timeline__item")
    assert items.count() == 1
    assert "提交了建议" in items.first.inner_text()
    assert "(UTC+8)" in items.first.inner_text() and "市民" in items.first.inner_text()
    expect_verdict(page, "#badge-0", "valid")
    expect_verdict(page, "#trail-badge", "valid")
    assert page.locator("[data-verifier-down]").is_hidden()
    shoot(page, "track")

    # The verify page, reached from the record's "verify" link, by its hash.
    page.click("#r-0 a[href^='/verify?record_hash=']")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "valid"
    assert page.locator("#leaf-hash").inner_text() == record_hash
    assert page.locator("#receipt-root").inner_text() == receipt["proof"]["root"]
    assert page.locator("#chain-root").inner_text() == receipt["proof"]["root"]
    assert page.locator("#anchor-tx").inner_text() == receipt["anchor"]["tx"]
    steps = page.locator("#path-steps li")
    assert steps.count() == len(receipt["proof"]["path"])
    if steps.count():  # the last step of the walk gives the root
        assert steps.last.inner_text().endswith(receipt["proof"]["root"][:16] + "…")
    assert page.locator("#checks li.check-ok").count() >= 6
    assert page.locator("#checks li.check-bad").count() == 0
    shoot(page, "verify")
    # Nothing was blocked by the Content-Security-Policy, no script failed.
    assert problems == []


def test_a_tampered_receipt_is_altered_uploaded_or_pasted(
    page: Page, portal: Service, tmp_path: Path
) -> None:
    accepted = submit_by_api(portal)
    receipt = anchored_receipt(portal, accepted["record_hash"])
    text = receipt["record"]["body"]["text"]
    receipt["record"]["body"]["text"] = text.replace("三周", "三天", 1)  # one character changed
    assert receipt["record"]["body"]["text"] != text
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(receipt, ensure_ascii=False, indent=2), encoding="utf-8")

    page.goto("/verify")
    page.set_input_files("#f-receipt_file", str(tampered))
    page.click("form[action='/verify'] button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "altered"
    assert "已被篡改" in page.locator("#result").inner_text()
    assert page.locator("#checks li.check-bad").count() == 1
    shoot(page, "verify-altered")

    page.goto("/verify")
    page.fill("#f-receipt", tampered.read_text(encoding="utf-8"))
    page.click("form[action='/verify'] button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "altered"

    # The untouched receipt, pasted, is valid.
    receipt["record"]["body"]["text"] = text
    page.goto("/verify")
    page.fill("#f-receipt", json.dumps(receipt, ensure_ascii=False))
    page.click("form[action='/verify'] button[type=submit]")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "valid"


def test_the_language_switch_turns_the_portal_english(page: Page, portal: Service) -> None:
    accepted = submit_by_api(portal)
    page.goto(f"/track/{accepted['tracking_code']}")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.click("a.lang-switch")
    page.wait_for_url("**lang=en")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "The suggestion was submitted" in page.locator(".timeline").inner_text()
    expect_verdict(page, "#badge-0", "valid")
    assert page.locator("#badge-0").inner_text() == "valid"
    shoot(page, "track-en")
    # Remembered: the next page is English too, and the switch leads back to Chinese.
    page.click("nav a[href='/']")
    assert page.locator("h1").inner_text() == "Submit a suggestion"
    page.click("a.lang-switch")
    assert page.locator("h1").inner_text() == "提交建议"


def test_a_phone_sized_screen_needs_no_horizontal_scrolling(
    new_page: Callable[..., Page], portal: Service
) -> None:
    page = new_page(width=375, height=812, is_mobile=True, has_touch=True)
    accepted = submit_by_api(portal)
    for path, name in (
        ("/", "submit-phone"),
        (f"/track/{accepted['tracking_code']}", "track-phone"),
    ):
        page.goto(path)
        page.wait_for_load_state("load")
        if "track" in path:
            expect_verdict(page, "#badge-0", "valid")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width}px wide on a 375px screen"
        assert page.locator("form").first.is_visible()
        shoot(page, name)
    page.goto("/")
    for field in ("#f-title", "#f-text", "#f-category", "#f-district"):
        box = page.locator(field).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, field


def test_the_form_is_submittable_by_keyboard_alone(page: Page, portal: Service) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"

    def tab_to(selector: str, limit: int = 30) -> None:
        for _ in range(limit):
            if page.evaluate("s => document.activeElement === document.querySelector(s)", selector):
                return
            page.keyboard.press("Tab")
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#f-title")
    page.keyboard.type(SUGGESTION["title"])
    page.keyboard.press("Tab")
    page.keyboard.type(SUGGESTION["text"])
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")  # the first category: 城乡建设
    assert page.locator("#f-category").input_value() == "城乡建设"
    page.keyboard.press("Tab")
    page.keyboard.type(SUGGESTION["district"])
    tab_to("form[action='/'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#tracking-code")
    assert page.locator("h1").inner_text() == "建议已提交"


def test_the_track_page_says_when_the_verifier_cannot_be_reached(
    page: Page, portal: Service
) -> None:
    accepted = submit_by_api(portal)
    anchored_receipt(portal, accepted["record_hash"])
    page.context.route(f"{portal.verifier}/**", lambda route: route.abort())
    page.goto(f"/track/{accepted['tracking_code']}")
    notice = page.locator("[data-verifier-down]")
    notice.wait_for(state="visible")
    assert portal.verifier in notice.inner_text()
    expect_verdict(page, "#badge-0", "unreachable", timeout=15_000)
    assert page.locator("#badge-0").inner_text() == "无法连接核验服务"


def test_a_citizen_follows_the_handling_and_evaluates_the_answer(
    page: Page, portal: Service
) -> None:
    deputy = portal.add_account("deputy", "王代表", district="鼓楼区")
    staff = portal.add_account("staff", "人大办 张")
    office = portal.add_account("office", "市交通局", office="JT")
    accepted = submit_by_api(portal)
    code, token = accepted["tracking_code"], accepted["citizen_token"]

    def step(account: dict[str, Any], **body: Any) -> None:
        response = httpx.post(
            f"{portal.api}/api/v1/suggestions/{code}/transitions",
            json=body,
            headers={"Authorization": f"Bearer {account['token']}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text

    reply = httpx.post(
        f"{portal.api}/api/v1/attachments",
        content=b"%PDF-1.4 the transport bureau's reply",
        headers={"Authorization": f"Bearer {office['token']}", "content-type": "application/pdf"},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    step(deputy, to="DEPUTY_ACCEPTED", reason="属实，转交办理")
    step(staff, to="ASSIGNED", offices=["JT"])
    step(office, to="IN_PROGRESS")
    step(office, to="ANSWERED", category="A", reply_sha256=reply.json()["sha256"])

    page.goto(f"/track/{code}")
    assert page.locator(".timeline__item").count() == 5
    timeline = page.locator(".timeline").inner_text()
    for words in (
        "人大代表受理了这条建议",
        "交办给承办单位",
        "承办单位开始办理",
        "承办单位作出答复",
    ):
        assert words in timeline
    assert "A 类：已解决或采纳" in timeline and "属实，转交办理" in timeline
    for i in range(5):
        expect_verdict(page, f"#badge-{i}", "valid")
    expect_verdict(page, "#trail-badge", "valid")
    # The visitor's own browser finds the whole trail complete once the local witness has
    # cosigned the latest checkpoint (the page asks again every 2 s until then).
    page.wait_for_selector("#browser-verdict[data-verdict='complete']", timeout=90_000)
    shoot(page, "track-answered")

    page.fill("#f-token", token)
    page.check("#f-level-satisfied")
    page.fill("#f-reason", "路灯已修好，谢谢。")
    page.click("#evaluate button[type=submit]")
    page.wait_for_url(f"**/track/{code}?evaluated=1")
    assert "您的评价已记录" in page.locator("main").inner_text()
    assert page.locator("#state").inner_text() == "办结"
    assert page.locator(".timeline__item").count() == 6
    assert "满意" in page.locator("#r-5").inner_text()
    assert page.locator("#evaluate").count() == 0
    expect_verdict(page, "#badge-5", "valid")
