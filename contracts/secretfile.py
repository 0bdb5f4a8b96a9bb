"""Reading a secret from a file that only its owner may read (docs/SECURITY.md, "Secrets").

Every secret lives in a file: an account key (``contracts.keys``: the anchoring key, a
witness's key), a key's password, the personal-data key and the portal's secret. Each is
refused, in every environment, when its group or others have any access (``mode & 0o077``):
the service creates the ones it generates with mode 0600, so only a file someone loosened, or
one made by hand without ``chmod 600``, is refused, and the message says how to fix it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(RuntimeError):
    """The secret file is missing, not a regular file, or readable by others than its owner."""


class SecretFileMissing(SecretFileError):
    """There is no file at the path (callers that may create the secret catch this one)."""


def read_secret_file(path: Path, what: str) -> bytes:
    """The bytes of ``path``; ``what`` names the secret in the error message.

    The file is opened without following a final symlink and checked through the open
    descriptor, so the file checked is the file read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise SecretFileMissing(f"{what}: {path} does not exist") from None
    except OSError as exc:
        raise SecretFileError(f"{what}: cannot open {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise SecretFileError(f"{what}: {path} is not a regular file")
        if mode & 0o077:
            raise SecretFileError(
                f"{what}: {path} has mode {stat.S_IMODE(mode):04o}; group and others must have "
                f"no access to a secret (chmod 600 {path})"
            )
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
