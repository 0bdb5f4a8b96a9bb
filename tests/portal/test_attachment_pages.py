"""The files the workbench links to (``/attachments/{sha256}``): served to a signed-in account
by the same rule as the API's download, and to nobody else (issue 19, item 6)."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from tests.api.conftest import People
from tests.api.test_uploads import PNG
from tests.api.test_workflow_api import SUGGESTION, step
from tests.portal.test_staff_pages import sign_in


def _confidential_with_a_photo(client: TestClient, people: People) -> tuple[str, str]:
    """A confidential suggestion with a photo, assigned to JT only: (code, the photo's hash)."""
    photo = client.post(
        "/api/v1/attachments", content=PNG, headers={"content-type": "image/png"}
    ).json()["sha256"]
    submitted = client.post(
        "/api/v1/suggestions",
        json={**SUGGESTION, "confidential": True, "attachments": [photo]},
    )
    assert submitted.status_code == 201, submitted.text
    code = submitted.json()["tracking_code"]
    step(client, code, people.deputy.headers, to="DEPUTY_ACCEPTED")
    step(client, code, people.staff.headers, to="ASSIGNED", offices=["JT"])
    return code, photo


def test_the_workbench_links_a_suggestions_files_to_a_page_that_serves_them(
    portal_client: TestClient, people: People
) -> None:
    code, photo = _confidential_with_a_photo(portal_client, people)
    csrf = sign_in(portal_client, people.office.token)
    shown = portal_client.post(
        f"/workbench/{code}/private", data={"csrf": csrf, "field": "text", "reason": "核实现场"}
    )
    assert shown.status_code == 200, shown.text
    assert f'href="/attachments/{photo}"' in shown.text
    got = portal_client.get(f"/attachments/{photo}")
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == photo
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"] == f'inline; filename="{photo}.png"'
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert got.headers["x-content-type-options"] == "nosniff"


def test_a_file_is_not_served_to_an_account_that_may_not_read_it_nor_to_nobody(
    portal_client: TestClient, people: People
) -> None:
    _, photo = _confidential_with_a_photo(portal_client, people)
    sign_in(portal_client, people.other_office.token)  # ZJ: not assigned
    refused = portal_client.get(f"/attachments/{photo}", headers={"accept": "text/html"})
    missing = portal_client.get(f"/attachments/{'ab' * 32}", headers={"accept": "text/html"})
    assert refused.status_code == missing.status_code == 404
    # the same page but for the hash in its own links (the language switch)
    assert refused.text.replace(photo, "…") == missing.text.replace("ab" * 32, "…")
    assert b"PNG" not in refused.content
    portal_client.cookies.clear()
    for sha in (photo, "ab" * 32):
        anonymous = portal_client.get(f"/attachments/{sha}", follow_redirects=False)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next=%2Fattachments%2F{sha}"


def test_a_thumbnail_is_served_by_the_same_rule(portal_client: TestClient, people: People) -> None:
    _, photo = _confidential_with_a_photo(portal_client, people)
    sign_in(portal_client, people.office.token)  # JT: assigned
    got = portal_client.get(f"/attachments/{photo}/thumbnail")
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.headers["content-security-policy"] == "default-src 'none'; sandbox"
    sign_in(portal_client, people.other_office.token)  # ZJ: not assigned
    refused = portal_client.get(f"/attachments/{photo}/thumbnail", headers={"accept": "text/html"})
    assert refused.status_code == 404 and b"JFIF" not in refused.content
    portal_client.cookies.clear()
    anonymous = portal_client.get(f"/attachments/{photo}/thumbnail", follow_redirects=False)
    assert anonymous.status_code == 303
