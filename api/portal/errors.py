"""Errors a portal page answers with an HTML page (not the API's JSON)."""

from __future__ import annotations

from typing import Any


class PageError(Exception):
    """Raise in a portal route or dependency: the visitor gets ``error.html`` with this
    status, the message ``title_key`` as heading and ``detail_key`` (formatted with
    ``fmt``) as explanation, in their language."""

    def __init__(self, status_code: int, title_key: str, detail_key: str, **fmt: Any) -> None:
        super().__init__(f"{status_code} {title_key}: {detail_key}")
        self.status_code = status_code
        self.title_key = title_key
        self.detail_key = detail_key
        self.fmt = fmt
