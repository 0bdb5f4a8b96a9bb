"""Messages in Chinese (the default) and English, and the visitor's choice between them.

Messages live in ``api/portal/messages/*.json``; each file maps a key to
``{"zh": "...", "en": "..."}``. The files are merged: a key defined twice, or lacking a
language, is an error (a unit test loads them all). Templates call ``t("key", **fmt)``; the
text is formatted with ``str.format`` when arguments are given.

The language is ``?lang=zh|en`` on any page (remembered in the ``lang`` cookie for a year),
else the cookie, else Chinese.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup, escape

MESSAGES_DIR = Path(__file__).parent / "messages"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600


class MessageError(ValueError):
    """The message files contradict each other or miss a language."""


def load_messages(directory: Path = MESSAGES_DIR) -> dict[str, dict[str, str]]:
    """All message files of ``directory`` merged; MessageError names the first problem."""
    merged: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(entries, dict):
            raise MessageError(f"{path.name}: expected an object of key → {{zh, en}}")
        for key, texts in entries.items():
            if key in merged:
                raise MessageError(f"{path.name}: key {key!r} is already defined in {origin[key]}")
            if not isinstance(texts, dict):
                raise MessageError(f"{path.name}: {key!r} is not an object of languages")
            missing = [lang for lang in LANGUAGES if not isinstance(texts.get(lang), str)]
            if missing or any(not texts[lang].strip() for lang in LANGUAGES):
                raise MessageError(f"{path.name}: {key!r} lacks {', '.join(missing) or 'text'}")
            extra = set(texts) - set(LANGUAGES)
            if extra:
                raise MessageError(f"{path.name}: {key!r} has unknown languages {sorted(extra)}")
            merged[key] = {lang: texts[lang] for lang in LANGUAGES}
            origin[key] = path.name
    return merged


@lru_cache(maxsize=1)
def messages() -> Mapping[str, Mapping[str, str]]:
    return load_messages()


def translate(lang: str, key: str, **fmt: Any) -> str:
    """The message ``key`` in ``lang``; an unknown key shows as itself (and a test finds it).

    When an argument is markup (people's text isolated with the ``bdi`` filter), the message
    is escaped and returned as markup around it; the other arguments are escaped."""
    entry = messages().get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    if any(isinstance(value, Markup) for value in fmt.values()):
        return escape(text).format(**fmt)
    return text.format(**fmt) if fmt else text


def requested_language(request: Request) -> str | None:
    """``?lang=`` when it names a language we have, else None."""
    value = request.query_params.get("lang")
    return value if value in LANGUAGES else None


def language_of(request: Request) -> str:
    """The page's language: ``?lang=``, else the ``lang`` cookie, else Chinese."""
    chosen = requested_language(request)
    if chosen:
        return chosen
    cookie = request.cookies.get(LANG_COOKIE)
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def remember_language(request: Request, response: Response) -> None:
    """Set the ``lang`` cookie when the request chose a language with ``?lang=``."""
    chosen = requested_language(request)
    if chosen and request.cookies.get(LANG_COOKIE) != chosen:
        response.set_cookie(
            LANG_COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE, samesite="lax", path="/"
        )
