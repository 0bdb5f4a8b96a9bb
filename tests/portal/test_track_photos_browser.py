"""Photos in a real browser (Debian's Chromium through Playwright) against the whole service
(issue 19, item 5): on a phone-sized screen a citizen attaches a photo with GPS data to the
form, then on the track page enters the citizen token and sees the thumbnail (loaded under the
page's Content-Security-Policy, no script involved), which opens the full, stripped image;
another browser without the token sees no photo."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from PIL import Image

from tests.fixtures import images
from tests.fixtures.service import Service
from tests.portal.conftest import shoot
from tests.portal.test_citizen_portal import fill_form

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.chain]


def test_a_citizen_attaches_a_photo_on_a_phone_and_sees_it_on_the_track_page(
    new_page: Callable[..., Page], portal: Service, tmp_path: Path
) -> None:
    page = new_page(width=375, height=812, is_mobile=True, has_touch=True)
    problems: list[str] = []  # the files refused, anything the page's policy blocked
    page.on(
        "console",
        lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and "/files/" in r.url
            else None
        ),
    )
    photo = tmp_path / "IMG_0042.JPG"
    photo.write_bytes(images.photo_with_exif(600, 400, orientation=6, seed=42))

    page.goto("/")
    field = page.locator("#f-photos")
    assert field.get_attribute("capture") == "environment"
    assert field.get_attribute("accept") == "image/*"
    fill_form(page)
    field.set_input_files(str(photo))
    page.click("form[action='/'] button[type=submit]")
    code = page.locator("#tracking-code").inner_text()
    token = page.locator("#citizen-token").inner_text()

    page.goto(f"/track/{code}")
    assert page.locator("#files img").count() == 0
    page.fill("#f-files_token", token)
    page.click("#files button[type=submit]")
    page.wait_for_url(f"**/track/{code}#files")
    thumbnail = page.locator("#files img")
    assert thumbnail.count() == 1
    page.wait_for_function("() => document.querySelector('#files img').complete")
    assert thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [213, 320]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shoot(page, "track-photos-phone")

    full = page.locator("#files a.files__image").get_attribute("href")
    assert full is not None
    answer = page.request.get(full)
    assert answer.status == 200 and answer.headers["content-type"] == "image/jpeg"
    opened = Image.open(io.BytesIO(answer.body()))
    assert opened.size == (400, 600) and dict(opened.getexif()) == {}
    assert problems == [], problems

    # the same file for a browser without the token, and for the API without one: not found
    assert httpx.get(f"{portal.api}{full}", timeout=10).status_code == 404
    assert httpx.get(f"{portal.api}{full}/thumbnail", timeout=10).status_code == 404
