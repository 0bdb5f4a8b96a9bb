"""Messages: every key in both languages, no key defined twice, every key a page uses exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from api.portal import i18n
from api.portal.i18n import MessageError, load_messages
from core.verdicts import TrailVerdict, Verdict
from core.workflow import EvaluationLevel, ReplyCategory, SuggestionState
from ledger.auth import Role

TEMPLATES = Path(i18n.__file__).parent / "templates"
CITIZEN_TEMPLATES = (
    "base.html",
    "error.html",
    "submit.html",
    "submitted.html",
    "track.html",
    "verify.html",
    "_citizen_forms.html",
)


def test_the_shipped_messages_load_with_both_languages() -> None:
    messages = load_messages()
    assert messages["site.name"] == {"zh": "公民建议与票决存证", "en": messages["site.name"]["en"]}
    for key, texts in messages.items():
        assert set(texts) == {"zh", "en"}, key
        assert texts["zh"].strip() and texts["en"].strip(), key


def test_a_key_defined_in_two_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": {"zh": "甲", "en": "a"}}))
    (tmp_path / "b.json").write_text(json.dumps({"x": {"zh": "乙", "en": "b"}}))
    with pytest.raises(MessageError, match=r"'x' is already defined in a\.json"):
        load_messages(tmp_path)


@pytest.mark.parametrize(
    "entry",
    [{"zh": "甲"}, {"en": "a"}, {"zh": "甲", "en": " "}, {"zh": "甲", "en": "a", "fr": "a"}],
)
def test_a_key_lacking_a_language_is_refused(tmp_path: Path, entry: dict[str, str]) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"x": entry}))
    with pytest.raises(MessageError, match="'x'"):
        load_messages(tmp_path)


def test_every_literal_key_of_the_citizen_pages_exists() -> None:
    messages = load_messages()
    used: set[str] = set()
    for name in CITIZEN_TEMPLATES:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", (TEMPLATES / name).read_text()))
    assert used, "no t(...) calls found"
    prefixes = {key for key in used if key.endswith(".")}  # t("state." ~ view.state)
    assert sorted(used - prefixes - set(messages)) == []
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in messages), prefix


def test_every_state_role_verdict_level_and_reply_category_has_words() -> None:
    messages = load_messages()
    families = {
        "state.": [s.value for s in SuggestionState],
        "event.to.": [s.value for s in SuggestionState],
        "role.": [r.value for r in Role],
        "verdict.": [v.value for v in Verdict] + [v.value for v in TrailVerdict],
        "explain.": [v.value for v in Verdict],
        "level.": [level.value for level in EvaluationLevel],
        "reply.": [c.value for c in ReplyCategory],
    }
    missing = [p + v for p, values in families.items() for v in values if p + v not in messages]
    assert missing == []


def test_translate_formats_and_falls_back() -> None:
    assert (
        i18n.translate("en", "auth.signed_in_as", role="staff", id="s-1") == "Signed in: staff s-1"
    )
    assert i18n.translate("zh", "no.such.key") == "no.such.key"
