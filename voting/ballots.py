"""Ballot keys of deputies: making them, and keeping them in files.

Key files hold the private key as unencrypted PKCS #8 PEM (``-----BEGIN PRIVATE KEY-----``),
the form ``openssl genpkey -algorithm ed25519`` writes. The file is the secret, so it is
created with mode 0600 and never overwritten, and a file that group or others may read or
write is refused. Signing and checking ballots is pure and lives in ``core.voting.ballots``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from voting.errors import KeyFileError


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key from the operating system's CSPRNG."""
    return Ed25519PrivateKey.generate()


def write_private_key(path: str | Path, key: Ed25519PrivateKey) -> None:
    """Write ``key`` as unencrypted PKCS #8 PEM to a new file of mode 0600.

    The file is created with ``O_CREAT | O_EXCL`` (an existing file or symlink is never
    followed or overwritten: ``KeyFileError``) and its mode is set to exactly 0600 whatever
    the umask. If writing fails, the partial file is removed.
    """
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path}: already exists, not overwriting a key") from exc
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot create: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Load an Ed25519 private key written by :func:`write_private_key` (or openssl).

    Refuses (``KeyFileError``) a symlink, a file that is not a regular file, a file any
    group or other permission bit is set on, and anything that is not an unencrypted
    PKCS #8 PEM Ed25519 key.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot open: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path}: not a regular file")
        if info.st_mode & 0o077:
            raise KeyFileError(
                f"{path}: mode {stat.S_IMODE(info.st_mode):04o} lets group or others at the key; "
                "chmod 600 it"
            )
        data = handle.read()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PKCS #8 PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 key")
    return key
