"""Attachments (a photo of the problem, a reply document), stored by SHA-256.

Records carry only the hash; the bytes live in the data directory. Storing is idempotent:
the same bytes give the same name. An upload must be what its declared type says
(``ledger.filetypes``: 415 ``ContentMismatch`` otherwise, nothing stored), and a stored file
is served as the type its bytes are checked to be again at each download (``load``).

A file belongs to the first suggestion whose record cites it (``attachments.suggestion``,
set by ``require_cited``); a record of another suggestion citing it is refused (409
``AttachmentOfAnotherSuggestion``), since who may read a file follows from the suggestion it
belongs to (``ledger.suggestions.may_read_attachment``, docs/SECURITY.md "Attachments").

An image (JPEG, PNG, WebP; HEIC when Pillow reads it) is not stored as uploaded: it is
decoded, turned upright and encoded again without EXIF, GPS, XMP, comments or colour profile
(``ledger.images``), and the stored file is that stripped one: its SHA-256, the attachment's
identity returned by the upload and cited by records, is the hash of the stored bytes. A
JPEG thumbnail (``<sha256>.thumb``) is kept beside each image; it is derived data, in no
record, served by the rule of its file (``thumbnail``). Documents (PDF, text) are stored as
they are.

An upload that no record cites is removed after a grace period (``remove_uncited``, run by
the housekeeping thread of ``civic-ledger worker``): a record that cites files marks them
(``require_cited``) in its own transaction, so a file is either cited or removable, never
removed under a record that cites it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from ledger import filetypes, images
from ledger import repository as repo
from ledger.errors import CivicError, Conflict, InvalidInput, NotFound
from ledger.models import Attachment

log = logging.getLogger("civic.attachments")
_FILE_NAME = re.compile(r"^\.?([0-9a-f]{64})(\.thumb)?(\.tmp)?$")
THUMBNAIL_SUFFIX = ".thumb"

ALLOWED_TYPES = frozenset(
    {"image/jpeg", "image/png", "image/webp", "application/pdf", "text/plain"}
)
#: What an upload may be declared as: the stored types, and HEIC/HEIF photos, which are
#: converted to JPEG (or refused with 415 when this Pillow cannot read them).
UPLOAD_TYPES = ALLOWED_TYPES | images.HEIC_TYPES
#: The uploads that are decoded and stripped before they are stored.
STRIPPED_TYPES = filetypes.IMAGE_TYPES | images.HEIC_TYPES
#: Every type a download may be served as: the allowed ones, and bytes for a stored file
#: whose content is not the type it was stored as.
SERVED_TYPES = ALLOWED_TYPES | {filetypes.OPAQUE}


class ContentMismatch(CivicError):
    """The bytes of an upload are not of the type it was declared as (an SVG as
    ``image/png``, HTML as ``text/plain``)."""

    status_code = 415


class AttachmentOfAnotherSuggestion(Conflict):
    """A record cites a file that belongs to another suggestion."""


@dataclass(frozen=True)
class StoredAttachment:
    sha256: str
    size: int
    content_type: str


def store(
    session: Session, directory: Path, data: bytes, content_type: str, uploaded_by: str
) -> StoredAttachment:
    """Store an upload (checked, and stripped when it is an image) and return its identity.

    Every refusal comes before anything is written, row or file: 422 for a type not taken
    or an empty file, 415 ``ContentMismatch`` for bytes that are not the declared type, 413
    ``ImageTooLarge`` for an image over ``images.MAX_PIXELS``, 415 ``UnreadableImage`` for
    one Pillow cannot decode."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in UPLOAD_TYPES:
        raise InvalidInput(
            f"attachments may be {', '.join(sorted(UPLOAD_TYPES))}; got {media_type or 'no content type'}"
        )
    if not data:
        raise InvalidInput("the attachment is empty")
    problem = filetypes.mismatch(media_type, data)
    if problem is not None:  # before anything is written: nothing is stored
        raise ContentMismatch(f"the file is not {media_type}: {problem}")
    thumb: bytes | None = None
    if media_type in STRIPPED_TYPES:
        stripped = images.strip(data, media_type)
        data, media_type, thumb = stripped.data, stripped.media_type, stripped.thumbnail
    sha = hashlib.sha256(data).hexdigest()
    now = datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / sha
    existing = session.get(Attachment, sha)
    if existing is not None:
        if existing.referenced_at is None:
            # Uploaded again before any record cites it: the grace period starts afresh.
            existing.created_at = now
            session.flush()
        if path.exists():
            os.utime(path)  # the clean-up spares files touched within the grace period
        else:  # removed on this host meanwhile (another host's row): write it again
            _write(directory, sha, data)
        _keep_thumbnail(directory, sha, thumb)
        return StoredAttachment(sha, existing.size, existing.content_type)
    if path.exists():
        os.utime(path)
    else:
        _write(directory, sha, data)
    _keep_thumbnail(directory, sha, thumb)
    session.add(
        Attachment(
            sha256=sha,
            size=len(data),
            content_type=media_type,
            uploaded_by=uploaded_by,
            created_at=now,
        )
    )
    session.flush()
    return StoredAttachment(sha, len(data), media_type)


def _write(directory: Path, name: str, data: bytes) -> None:
    tmp = directory / f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)


def _keep_thumbnail(directory: Path, sha: str, thumb: bytes | None) -> None:
    if thumb is None:
        return
    path = directory / (sha + THUMBNAIL_SUFFIX)
    if path.exists():
        os.utime(path)
    else:
        _write(directory, sha + THUMBNAIL_SUFFIX, thumb)


def require_cited(
    session: Session, hashes: Sequence[str], now: datetime, *, suggestion: str
) -> None:
    """The attachments a record of ``suggestion`` being written cites: each must have been
    uploaded (else InvalidInput) and must not belong to another suggestion (else
    AttachmentOfAnotherSuggestion); each is marked as cited, in the record's transaction, so
    it is never removed as uncited, and one cited for the first time becomes
    ``suggestion``'s. A refusal leaves nothing: the caller's transaction is rolled back.

    A file cited before migration 0007 whose suggestion the migration could not tell (its
    record redacted, or hiding it behind a commitment) belongs to no suggestion and can be
    cited by none: its first citer is unknown, and it could be another suggestion's."""
    wanted = list(dict.fromkeys(hashes))
    owners = repo.mark_attachments_cited(session, wanted, now, suggestion)
    for sha in wanted:
        if sha not in owners:
            raise InvalidInput(
                f"no attachment {sha} was uploaded; POST it to /api/v1/attachments first"
            )
        if owners[sha] != suggestion:
            raise AttachmentOfAnotherSuggestion(
                f"attachment {sha} belongs to another suggestion; cite a file uploaded for this one"
            )


@dataclass(frozen=True)
class Removed:
    rows: list[str]  # attachment rows deleted (uncited, older than the grace period)
    files: list[str]  # files deleted from this host's directory


def remove_uncited(
    sessions: sessionmaker[Session], directory: Path, *, grace_seconds: float, now: datetime
) -> Removed:
    """Remove the uploads no record cites once they are older than the grace period.

    First the rows (one transaction; a record citing one of them at the same moment either
    marked it first, and it stays, or finds it gone and is refused), then, after that commit,
    the files of this host's directory that have no row and were not written or uploaded
    again within the grace period (``store`` touches them), so that a file whose row another
    host removed goes too, and a file being stored right now never does. A thumbnail goes
    with its file."""
    cutoff = now.timestamp() - grace_seconds
    with sessions.begin() as session:
        rows = repo.delete_uncited_attachments(session, datetime.fromtimestamp(cutoff, UTC))
    files: list[str] = []
    if directory.is_dir():
        candidates: dict[str, list[Path]] = {}
        for path in directory.iterdir():
            match = _FILE_NAME.match(path.name)
            if match is None:
                continue
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
            except FileNotFoundError:
                continue
            candidates.setdefault(match[1], []).append(path)
        if candidates:
            with sessions() as session:
                kept = repo.existing_attachments(session, sorted(candidates))
            for sha, paths in sorted(candidates.items()):
                for path in paths:
                    # A leftover temporary file goes whatever its row says.
                    if sha in kept and not path.name.endswith(".tmp"):
                        continue
                    try:
                        if path.stat().st_mtime >= cutoff:
                            continue  # stored again since it was listed
                        path.unlink()
                    except FileNotFoundError:
                        continue
                    files.append(path.name)
    if rows or files:
        log.info("removed %d uncited uploads (%d files)", len(rows), len(files))
    return Removed(rows, files)


@dataclass(frozen=True)
class Served:
    """A file as it is to be served: its bytes, the type they were checked to be, whether a
    browser may show it (``inline``: verified images only) or must save it, and the name
    to save it under (``<sha256>.<extension>``, nothing of the uploader's)."""

    data: bytes
    media_type: str
    inline: bool
    filename: str


def load(directory: Path, row: Attachment) -> Served:
    """The file of ``row`` (whoever asks was already allowed to read it), served as the type
    it was stored as only when its bytes are checked to be that type again: a row stored
    before uploads were checked (or whose file was replaced) is served as bytes to save
    (``application/octet-stream``, never ``inline``), whatever type it claims."""
    try:
        data = (directory / row.sha256).read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no attachment {row.sha256}") from None
    if hashlib.sha256(data).hexdigest() != row.sha256:
        raise RuntimeError(f"attachment {row.sha256} on disk no longer matches its hash")
    verified = (
        row.content_type in ALLOWED_TYPES and filetypes.mismatch(row.content_type, data) is None
    )
    media_type = row.content_type if verified else filetypes.OPAQUE
    return Served(
        data=data,
        media_type=media_type,
        inline=media_type in filetypes.IMAGE_TYPES,
        filename=f"{row.sha256}.{filetypes.EXTENSIONS[media_type]}",
    )


def thumbnail(directory: Path, row: Attachment) -> Served:
    """The thumbnail of ``row``'s image (whoever asks was already allowed to read the file):
    a JPEG of at most ``images.THUMBNAIL_SIZE`` pixels a side, kept beside the file. One
    missing (a file stored before thumbnails were made, or on another host), or whose bytes
    are not a JPEG, is made again from the file, whose hash is checked first. A file that is
    not a verified image has no thumbnail (404)."""
    if row.content_type not in filetypes.IMAGE_TYPES:
        raise NotFound(f"attachment {row.sha256} is not an image and has no thumbnail")
    path = directory / (row.sha256 + THUMBNAIL_SUFFIX)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    if filetypes.mismatch(filetypes.JPEG, data) is not None:
        served = load(directory, row)
        if not served.inline:
            raise NotFound(f"attachment {row.sha256} is not an image and has no thumbnail")
        try:
            data = images.thumbnail_of(served.data, served.media_type)
        except CivicError:
            raise NotFound(f"attachment {row.sha256} has no thumbnail") from None
        _write(directory, row.sha256 + THUMBNAIL_SUFFIX, data)
    return Served(
        data=data,
        media_type=filetypes.JPEG,
        inline=True,
        filename=f"{row.sha256}-thumbnail.jpg",
    )
