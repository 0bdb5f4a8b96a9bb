"""The citizen pages without a browser: FastAPI's TestClient on the real app and database.

Validation, CSRF, rate limiting, language, receipts and the verify page's verdicts that need
no chain (malformed, altered) or say the chain is down. The browser tests
(test_citizen_portal.py) cover the same pages against the whole service and a real chain.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from core.canonical import canonical_bytes
from core.merkle import leaf_hash
from ledger.models import RecordRow, SuggestionRow
from tests.api.conftest import People, make_settings
from tests.api.test_workflow_api import walk_to
from tests.fixtures.db import Database

ASSETS = Path(__file__).resolve().parents[1] / "assets"
GOOD = {
    "title": "幸福路口路灯不亮",
    "text": "幸福路口的路灯坏了三周，晚上很危险。",
    "category": "城乡建设",
    "district": "鼓楼区",
}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def form_token(client: TestClient, path: str = "/") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_of(response.text)


def count(database: Database, model: Any) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="e-([a-z_]+)">([^<]*)</p>', html))


def submit(client: TestClient, **fields: str) -> Any:
    token = form_token(client)
    return client.post("/", data={"csrf": token, **GOOD, **fields})


# -- language ------------------------------------------------------------------------------


def test_chinese_by_default_english_on_request_and_remembered(portal_client: TestClient) -> None:
    page = portal_client.get("/")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text and "提交建议" in page.text
    assert "set-cookie" not in page.headers or "lang=" not in page.headers["set-cookie"]

    english = portal_client.get("/?lang=en")
    assert '<html lang="en">' in english.text and "Submit a suggestion" in english.text
    cookie = english.headers["set-cookie"]
    assert "lang=en" in cookie and "Max-Age=31536000" in cookie and "SameSite=lax" in cookie
    # The cookie keeps English on the next page, and ?lang=zh switches back.
    assert '<html lang="en">' in portal_client.get("/verify").text
    assert '<html lang="zh-CN">' in portal_client.get("/verify?lang=zh").text
    assert '<html lang="zh-CN">' in portal_client.get("/verify").text
    # An unknown language is ignored, not an error.
    assert portal_client.get("/?lang=fr").status_code == 200


def test_the_language_switch_link_keeps_the_page_and_its_query(portal_client: TestClient) -> None:
    html = portal_client.get("/verify?record_hash=" + "ab" * 32).text
    assert f'href="/verify?record_hash={"ab" * 32}&amp;lang=en"' in html


def test_pages_carry_no_inline_script_style_or_external_asset(portal_client: TestClient) -> None:
    code = re.search(r"SG-[0-9A-Z-]{14}", submit(portal_client).text)
    assert code
    for path in ("/", "/verify", f"/track/{code.group(0)}", "/?lang=en"):
        html = portal_client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert "<style" not in html and " style=" not in html, path
        assert not re.search(r'(src|href)="(https?:)?//', html), path


# -- 提交建议 -----------------------------------------------------------------------------


def test_a_submission_shows_code_token_qr_and_the_pending_receipt(
    portal_client: TestClient, database: Database
) -> None:
    response = submit(portal_client, contact_name="张三", contact_phone="138 0000 0000")
    assert response.status_code == 201, response.text
    html = response.text
    code = re.search(r'data-tracking-code="(SG-[0-9A-Z-]+)"', html)
    assert code
    assert re.search(r"cit_[A-Za-z0-9_-]{40,}", html), "the citizen token is shown"
    assert re.search(r'<img class="qr" src="data:image/png;base64,[A-Za-z0-9+/=]+"', html)
    assert f"http://127.0.0.1:8000/track/{code.group(1)}" in html  # CIVIC_PUBLIC_URL
    record_hash = re.search(r'<code id="record-hash">([0-9a-f]{64})</code>', html)
    assert record_hash
    assert f'href="/track/{code.group(1)}/receipt/{record_hash.group(1)}.json"' in html
    assert "回执（待上链" in html
    with database.sessions() as session:
        row = session.scalars(select(SuggestionRow)).one()
        assert row.tracking_code == code.group(1) and row.title == GOOD["title"]
        assert row.submitter_role == "citizen"


@pytest.mark.parametrize(
    ("boxes", "public_title"),
    [({"confidential": "1"}, False), ({"confidential": "1", "title_public": "1"}, True)],
)
def test_the_form_hides_a_confidential_title_unless_the_citizen_shows_it(
    portal_client: TestClient, database: Database, boxes: dict[str, str], public_title: bool
) -> None:
    assert 'name="title_public"' in portal_client.get("/").text
    response = submit(portal_client, **boxes)
    assert response.status_code == 201, response.text
    with database.sessions() as session:
        record = json.loads(session.scalars(select(RecordRow)).one().canonical)
        row = session.scalars(select(SuggestionRow)).one()
    assert record["body"]["confidential"] is True and "text" not in record["body"]
    assert (record["body"]["title"] == GOOD["title"]) is public_title
    assert ("title_commitment" in record["body"]) is not public_title
    assert (row.title == GOOD["title"]) is public_title


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"title": ""}, {"title": "此项必填。"}),
        ({"title": "   ", "text": ""}, {"title": "此项必填。", "text": "此项必填。"}),
        ({"title": "x" * 201}, {"title": "太长了：最多 200 个字符。"}),
        ({"category": ""}, {"category": "此项必填。"}),
        ({"contact_name": "张三", "contact_phone": "call me"}, {"contact_phone": "格式不对"}),
        ({"contact_phone": "13800000000"}, {"contact_name": "此项必填。"}),
    ],
)
def test_a_refused_form_is_shown_again_with_its_messages_and_stores_nothing(
    portal_client: TestClient, database: Database, fields: dict[str, str], errors: dict[str, str]
) -> None:
    response = submit(portal_client, **fields)
    assert response.status_code == 422
    found = field_errors(response.text)
    assert set(found) == set(errors)
    for name, start in errors.items():
        assert found[name].startswith(start)
        assert f'id="f-{name}"' in response.text
    assert 'aria-invalid="true"' in response.text and 'role="alert"' in response.text
    # What was typed is kept.
    if fields.get("contact_name"):
        assert f'value="{fields["contact_name"]}"' in response.text
    assert count(database, SuggestionRow) == 0 and count(database, RecordRow) == 0


def test_errors_are_in_english_on_an_english_page(portal_client: TestClient) -> None:
    portal_client.get("/?lang=en")
    response = submit(portal_client, title="")
    assert response.status_code == 422
    assert field_errors(response.text) == {"title": "This is required."}


def test_anonymous_submissions_are_rate_limited_like_the_api(
    database: Database, tmp_path: Path
) -> None:
    app = create_app(make_settings(database, tmp_path, submit_rate=1))
    with TestClient(app) as client:
        assert submit(client).status_code == 201
        refused = submit(client)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "每分钟最多 1 条" in refused.text
        assert f'value="{GOOD["title"]}"' in refused.text
    assert count(database, SuggestionRow) == 1


def test_a_signed_in_staff_account_cannot_submit(
    portal_client: TestClient, people: People, database: Database
) -> None:
    portal_client.cookies.set("civic_session", people.staff.token)
    response = submit(portal_client)
    assert response.status_code == 403
    assert "只有市民" in response.text
    assert count(database, SuggestionRow) == 0


def test_a_signed_in_deputy_submits_under_their_account(
    portal_client: TestClient, people: People, database: Database
) -> None:
    portal_client.cookies.set("civic_session", people.deputy.token)
    response = submit(portal_client)
    assert response.status_code == 201
    assert "cit_" not in response.text  # a deputy acts with their account, no citizen token
    with database.sessions() as session:
        assert session.scalars(select(SuggestionRow.submitter_id)).one() == people.deputy.id


# -- CSRF ---------------------------------------------------------------------------------


def test_a_form_without_or_with_a_wrong_csrf_token_is_refused(
    portal_client: TestClient, database: Database
) -> None:
    form_token(portal_client)  # the visitor has their anonymous cookie
    missing = portal_client.post("/", data=GOOD)
    assert missing.status_code == 403 and "安全令牌" in missing.text
    wrong = portal_client.post("/", data={**GOOD, "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert count(database, SuggestionRow) == 0


def test_a_token_is_bound_to_its_visitor(
    database: Database, tmp_path: Path, portal_client: TestClient
) -> None:
    stolen = form_token(portal_client)
    with TestClient(portal_client.app) as other:
        form_token(other)  # another visitor, another civic_anon cookie
        assert other.post("/", data={**GOOD, "csrf": stolen}).status_code == 403
        # Without any cookie there is nothing the token could be bound to.
        other.cookies.clear()
        assert other.post("/", data={**GOOD, "csrf": stolen}).status_code == 403
    assert count(database, SuggestionRow) == 0


def test_a_form_sent_from_another_site_is_refused(
    portal_client: TestClient, database: Database
) -> None:
    token = form_token(portal_client)
    data = {**GOOD, "csrf": token}
    assert (
        portal_client.post("/", data=data, headers={"origin": "http://evil.example"}).status_code
        == 403
    )
    assert (
        portal_client.post(
            "/", data=data, headers={"referer": "http://evil.example/form"}
        ).status_code
        == 403
    )
    assert count(database, SuggestionRow) == 0
    same = portal_client.post("/", data=data, headers={"origin": "http://testserver"})
    assert same.status_code == 201


def test_signing_in_changes_the_token(portal_client: TestClient, people: People) -> None:
    anonymous = form_token(portal_client)
    portal_client.cookies.set("civic_session", people.deputy.token)
    signed_in = form_token(portal_client)
    assert signed_in != anonymous
    assert portal_client.post("/", data={**GOOD, "csrf": anonymous}).status_code == 403
    assert portal_client.post("/", data={**GOOD, "csrf": signed_in}).status_code == 201


def test_cookies_are_set_safely(portal_client: TestClient, tmp_path: Path) -> None:
    cookie = portal_client.get("/").headers["set-cookie"]
    assert "civic_anon=" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    secret = tmp_path / "portal.secret"
    assert secret.exists() and secret.stat().st_mode & 0o777 == 0o600


# -- 建议追踪 -----------------------------------------------------------------------------


def test_the_track_page_tells_the_trail_in_plain_words(
    client: TestClient, portal_client: TestClient, people: People
) -> None:
    code, _token = walk_to(client, people, "ANSWERED")
    html = portal_client.get(f"/track/{code}").text
    for words in ("提交了建议", "人大代表受理了这条建议", "交办给承办单位", "承办单位作出答复"):
        assert words in html
    assert html.count('class="timeline__item"') == 5
    assert html.count("data-receipt-url=") == 5  # a badge per record
    assert 'data-trail-code="' + code + '"' in html
    assert "(UTC+8)" in html and "人大代表" in html and "B 类：正在解决" in html
    assert "评价答复" in html  # the evaluation form: the suggestion is answered
    english = portal_client.get(f"/track/{code}?lang=en").text
    assert "A deputy took the suggestion up" in english and "Evaluate the answer" in english


def test_unknown_and_malformed_tracking_codes_are_404_pages(portal_client: TestClient) -> None:
    unknown = portal_client.get("/track/SG-0000-0000-0000")
    assert unknown.status_code == 404 and "没有追踪码为 SG-0000-0000-0000 的建议" in unknown.text
    assert unknown.headers["content-type"].startswith("text/html")
    bad = portal_client.get("/track/not-a-code")
    assert bad.status_code == 404 and "不是有效的追踪码" in bad.text
    # The lookup box normalises and redirects.
    found = portal_client.get("/track?code=sg-0000-0000-0000", follow_redirects=False)
    assert found.status_code == 303 and found.headers["location"] == "/track/SG-0000-0000-0000"


def test_an_unknown_url_is_a_page_for_browsers_and_json_for_the_api(
    portal_client: TestClient,
) -> None:
    browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = portal_client.get("/no-such-page", headers=browser)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "找不到页面" in page.text and 'lang="zh-CN"' in page.text
    english = portal_client.get("/no-such-page?lang=en", headers=browser)
    assert english.status_code == 404 and "Not found" in english.text
    # The API and non-browser clients keep the JSON error, whatever they accept.
    api = portal_client.get("/api/v1/no-such-thing", headers=browser)
    assert api.status_code == 404 and api.json()["error"] == "NotFound"
    plain = portal_client.get("/no-such-page")
    assert plain.status_code == 404 and plain.json()["error"] == "NotFound"
    # Other statuses are untouched: a wrong method is still the API's 405.
    assert portal_client.delete("/", headers=browser).status_code == 405


def test_the_citizen_evaluates_with_their_token(
    client: TestClient, portal_client: TestClient, people: People, database: Database
) -> None:
    code, token = walk_to(client, people, "ANSWERED")
    csrf = form_token(portal_client, f"/track/{code}")
    before = count(database, RecordRow)

    wrong = portal_client.post(
        f"/track/{code}/evaluate", data={"csrf": csrf, "token": "cit_nope", "level": "satisfied"}
    )
    assert wrong.status_code == 422 and field_errors(wrong.text) == {"token": "令牌无效。"}
    no_level = portal_client.post(f"/track/{code}/evaluate", data={"csrf": csrf, "token": token})
    assert no_level.status_code == 422 and "level" in field_errors(no_level.text)
    other = walk_to(client, people, "ANSWERED")[1]  # the token of another suggestion
    foreign = portal_client.post(
        f"/track/{code}/evaluate", data={"csrf": csrf, "token": other, "level": "satisfied"}
    )
    assert foreign.status_code == 403 and "不能评价" in foreign.text
    after_refusals = count(database, RecordRow)
    assert after_refusals == before + 5  # only the second suggestion's own records were added

    done = portal_client.post(
        f"/track/{code}/evaluate",
        data={"csrf": csrf, "token": token, "level": "basically_satisfied", "reason": "基本解决"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/track/{code}?evaluated=1"
    page = portal_client.get(done.headers["location"]).text
    assert "您的评价已记录" in page and "基本满意" in page and "评价答复" not in page
    with database.sessions() as session:
        assert session.scalars(
            select(SuggestionRow.state).where(SuggestionRow.tracking_code == code)
        ).one() == ("CLOSED")


def test_a_receipt_download_is_pending_then_404_for_another_trail(
    client: TestClient, portal_client: TestClient
) -> None:
    first = client.post("/api/v1/suggestions", json=GOOD).json()
    second = client.post("/api/v1/suggestions", json=GOOD).json()
    pending = portal_client.get(
        f"/track/{first['tracking_code']}/receipt/{first['record_hash']}.json"
    )
    assert pending.status_code == 202 and "回执尚未就绪" in pending.text
    foreign = portal_client.get(
        f"/track/{first['tracking_code']}/receipt/{second['record_hash']}.json"
    )
    assert foreign.status_code == 404
    assert portal_client.get(f"/track/{first['tracking_code']}/receipt/xyz.json").status_code == 404


# -- 核验 ---------------------------------------------------------------------------------


def single_leaf_receipt() -> dict[str, Any]:
    """A receipt of one record alone in its batch (path empty, root = its leaf hash)."""
    record = json.loads((ASSETS / "record-submitted.json").read_text(encoding="utf-8"))
    root = leaf_hash(canonical_bytes(record)).hex()
    return {
        "v": 1,
        "record": record,
        "proof": {
            "log": "suggestions",
            "batch": 0,
            "index": 0,
            "size": 1,
            "path": [],
            "root": root,
        },
        "anchor": {
            "chain_id": 1337,
            "contract": "0x" + "12" * 20,
            "tx": "0x" + "ab" * 32,
            "block": 7,
        },
    }


def verify(client: TestClient, **fields: Any) -> Any:
    token = form_token(client, "/verify")
    files = fields.pop("files", None)
    return client.post("/verify", data={"csrf": token, **fields}, files=files)


def verdict_of(html: str) -> str | None:
    match = re.search(r'id="verdict" data-verdict="([a-z_]+)"', html)
    return match.group(1) if match else None


def test_a_pasted_receipt_that_is_not_json_is_malformed(portal_client: TestClient) -> None:
    response = verify(portal_client, receipt="{not json")
    assert response.status_code == 200
    assert verdict_of(response.text) == "malformed" and "格式错误" in response.text


def test_a_changed_record_is_altered_before_the_chain_is_asked(
    portal_client: TestClient,
) -> None:
    receipt = single_leaf_receipt()
    receipt["record"]["body"]["text"] = receipt["record"]["body"]["text"].replace("松动", "松劲")
    response = verify(portal_client, receipt=json.dumps(receipt, ensure_ascii=False))
    assert verdict_of(response.text) == "altered"
    assert "已被篡改" in response.text and 'id="leaf-hash"' in response.text


def test_an_uploaded_receipt_is_read_from_the_file(portal_client: TestClient) -> None:
    receipt = single_leaf_receipt()
    receipt["record"]["body"]["district"] = "台江区"  # no longer what the root was computed from
    body = json.dumps(receipt, ensure_ascii=False).encode()
    response = verify(
        portal_client, files={"receipt_file": ("receipt.json", body, "application/json")}
    )
    assert verdict_of(response.text) == "altered"


def test_a_good_receipt_with_the_chain_down_says_so(portal_client: TestClient) -> None:
    response = verify(portal_client, receipt=json.dumps(single_leaf_receipt()))
    assert response.status_code == 503
    assert 'id="chain-down"' in response.text and verdict_of(response.text) is None


def test_record_hash_lookups(client: TestClient, portal_client: TestClient) -> None:
    assert verify(portal_client).status_code == 422
    bad = verify(portal_client, record_hash="xyz")
    assert bad.status_code == 422 and field_errors(bad.text) == {
        "record_hash": "记录哈希是 64 位小写十六进制字符。"
    }
    unknown = portal_client.get("/verify?record_hash=" + "0" * 64)
    assert unknown.status_code == 404 and "没有哈希为此值的记录" in unknown.text
    stored = client.post("/api/v1/suggestions", json=GOOD).json()
    pending = portal_client.get(f"/verify?record_hash={stored['record_hash']}")
    assert pending.status_code == 200 and 'id="pending"' in pending.text


@pytest.fixture
def english(portal_client: TestClient) -> Iterator[TestClient]:
    portal_client.get("/?lang=en")
    yield portal_client


def test_the_verify_page_in_english(english: TestClient) -> None:
    response = verify(english, receipt="[]")
    assert verdict_of(response.text) == "malformed"
    assert "Malformed: this is not a complete, well-formed receipt." in response.text


# -- the portal secret ---------------------------------------------------------------------


def test_the_portal_secret_is_made_once_private_and_never_in_production(tmp_path: Path) -> None:
    from api.portal.csrf import PortalSecretError, load_or_create_portal_secret

    path = tmp_path / "portal.secret"
    with pytest.raises(PortalSecretError, match="does not exist"):
        load_or_create_portal_secret(path, create=False)  # production: never generated
    made = load_or_create_portal_secret(path)
    assert len(made) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_portal_secret(path) == made
    assert load_or_create_portal_secret(path, create=False) == made
    path.chmod(0o644)
    with pytest.raises(PortalSecretError, match="mode 0644"):
        load_or_create_portal_secret(path)


def test_production_settings_require_the_portal_secret_file(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from ledger.settings import Settings

    with pytest.raises(ValidationError, match="CIVIC_PORTAL_SECRET_FILE"):
        Settings(env="production", data_dir=tmp_path)
    try:
        Settings(env="production", data_dir=tmp_path, portal_secret_file=tmp_path / "s")
    except ValidationError as exc:  # other production checks still refuse these settings
        assert "CIVIC_PORTAL_SECRET_FILE" not in str(exc)
