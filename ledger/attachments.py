"""Attachments (a photo of the problem, a reply document), stored by SHA-256.

Records carry only the hash; the bytes live in the data directory. Storing is idempotent:
the same bytes give the same name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from ledger.errors import InvalidInput, NotFound
from ledger.models import Attachment

ALLOWED_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "application/pdf", "text/plain"}
)


@dataclass(frozen=True)
class StoredAttachment:
    sha256: str
    size: int
    content_type: str


def store(
    session: Session, directory: Path, data: bytes, content_type: str, uploaded_by: str
) -> StoredAttachment:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in ALLOWED_TYPES:
        raise InvalidInput(
            f"attachments may be {', '.join(sorted(ALLOWED_TYPES))}; got {media_type or 'no content type'}"
        )
    if not data:
        raise InvalidInput("the attachment is empty")
    sha = hashlib.sha256(data).hexdigest()
    existing = session.get(Attachment, sha)
    if existing is not None:
        return StoredAttachment(sha, existing.size, existing.content_type)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / sha
    if not path.exists():
        tmp = directory / f".{sha}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    session.add(
        Attachment(
            sha256=sha,
            size=len(data),
            content_type=media_type,
            uploaded_by=uploaded_by,
            created_at=datetime.now(UTC),
        )
    )
    session.flush()
    return StoredAttachment(sha, len(data), media_type)


def load(session: Session, directory: Path, sha: str) -> tuple[bytes, str]:
    row = session.get(Attachment, sha)
    path = directory / sha
    if row is None or not path.exists():
        raise NotFound(f"no attachment {sha}")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise RuntimeError(f"attachment {sha} on disk no longer matches its hash")
    return data, row.content_type
