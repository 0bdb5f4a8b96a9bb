"""The logs' checkpoints (PROTOCOL §9): a C2SP signed note per anchored batch, signed with the
log's own Ed25519 key, whose name is the log's origin ``<CIVIC_LOG_NAME>/<log>``.

Keys live in ``CIVIC_LOG_KEY_DIR`` (development: ``<data dir>/log-keys``), one file per log,
``<log>.key``, holding the C2SP signer key text (``PRIVATE+KEY+<origin>+<key id>+<base64>``, the
form Go's ``note.NewSigner`` reads), mode 0600. Development generates a missing key at first use;
production only reads them (a key made on the spot would not be the one published to witnesses
and citizens). A key whose name is not the log's origin is refused: it belongs to another
deployment name.

Ed25519 signatures are deterministic, so a batch's checkpoint is the same bytes whenever it is
signed: the API signs on demand (and caches), nothing is stored. What is served is the
cosigned checkpoint (§9): that note and every cosignature line the witnesses gave for the
batch (``ledger.witnesses``, stored by ``ledger.witness_pusher``).
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from sqlalchemy.orm import Session

from contracts.secretfile import SecretFileError, SecretFileMissing, read_secret_file
from core.checkpoint import Checkpoint, log_origin, sign_checkpoint
from core.note import Ed25519Signer, parse_signer_key
from core.records import LOGS
from ledger import repository as repo
from ledger import witnesses
from ledger.errors import BatchNotFound, NotFound
from ledger.models import BatchRow
from ledger.repository import ReadTarget, StoredBatch
from ledger.settings import Settings


class LogKeyError(RuntimeError):
    """A log key file that cannot be used (missing in production, loose mode, another name)."""


def key_path(directory: Path, log: str) -> Path:
    return directory / f"{log}.key"


def load_log_key(directory: Path, deployment: str, log: str, *, create: bool) -> Ed25519Signer:
    """The signing key of ``log``; generated (mode 0600) when missing and ``create``."""
    origin = log_origin(deployment, log)
    path = key_path(directory, log)
    try:
        text = read_secret_file(path, f"the checkpoint key of log {log}").decode("ascii").strip()
    except SecretFileMissing:
        if not create:
            raise LogKeyError(
                f"{path} does not exist: make the logs' keys with `civic-ledger log-keys` and "
                "publish their verifier keys before starting"
            ) from None
        signer = Ed25519Signer(origin, secrets.token_bytes(32))
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use that one
            return load_log_key(directory, deployment, log, create=False)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(signer.signer_key + "\n")
        return signer
    except (SecretFileError, UnicodeDecodeError) as exc:
        raise LogKeyError(str(exc)) from None
    try:
        signer = parse_signer_key(text)
    except ValueError as exc:
        raise LogKeyError(f"{path} is not a C2SP Ed25519 signer key: {exc}") from None
    if signer.name != origin:
        raise LogKeyError(
            f"{path} is the key of {signer.name!r}, not of this log's origin {origin!r} "
            "(CIVIC_LOG_NAME names the deployment)"
        )
    return signer


class LogKeys:
    """The checkpoint keys of every log of a deployment, loaded once."""

    def __init__(self, settings: Settings) -> None:
        create = settings.env != "production"
        self.signers = {
            log: load_log_key(settings.resolved_log_key_dir, settings.log_name, log, create=create)
            for log in sorted(LOGS)
        }

    def verifier_key(self, log: str) -> str:
        return self.signers[log].verifier_key

    def checkpoint(self, batch: StoredBatch | BatchRow) -> str:
        """The signed checkpoint of an anchored batch: the whole log's size and root after it
        (the log's signature only)."""
        if batch.log_root is None:
            raise NotFound(f"batch {batch.number} of log {batch.log} has no version 2 root")
        return _signed(self.signers[batch.log], batch.end, bytes(batch.log_root))


@lru_cache(maxsize=4096)
def _signed(signer: Ed25519Signer, size: int, root: bytes) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, root), signer)


# The keys the receipts of this process carry checkpoints with (``install``, at start-up of an
# API process); None: receipts without a checkpoint (PROTOCOL §11 makes it optional).
_installed: LogKeys | None = None


def install(keys: LogKeys | None) -> None:
    global _installed
    _installed = keys


def installed() -> LogKeys | None:
    return _installed


def cosigned_checkpoint(target: ReadTarget, keys: LogKeys, batch: StoredBatch | BatchRow) -> str:
    """The cosigned checkpoint of an anchored batch (PROTOCOL §9): the log's signed note and
    every stored cosignature line of the batch."""
    lines = witnesses.cosignature_lines(target, batch.log, batch.number)
    return witnesses.cosigned(keys.checkpoint(batch), lines)


def batch_checkpoint(session: Session, keys: LogKeys, log: str, number: int | None) -> str:
    """The cosigned checkpoint of batch ``number`` of ``log`` (None: the latest anchored
    batch)."""
    if log not in LOGS:
        raise BatchNotFound(f"unknown log {log!r}; logs are {', '.join(sorted(LOGS))}")
    row = (
        repo.last_anchored_batch(session, log)
        if number is None
        else repo.batch(session, log, number)
    )
    if row is None or row.state != "anchored":
        which = "no anchored batch yet" if number is None else f"no anchored batch {number}"
        raise BatchNotFound(f"log {log} has {which}")
    return cosigned_checkpoint(session, keys, row)
