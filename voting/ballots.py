"""Signed ballots: the bytes a voter signs, Ed25519 signing and checking, and key files.

PROTOCOL §6: a ``ballot.cast`` body carries ``simulation``, ``voter``, ``choices``, ``nonce`` and
the voter's Ed25519 ``signature`` (hex) over the RFC 8785 bytes of exactly
``{simulation, voter, choices, nonce}``. Ed25519 is RFC 8032 (pure Ed25519, no pre-hash).

Text forms, all lowercase hex: a public key is its 32 raw bytes (64 hex characters), a
signature its 64 raw bytes (128 hex characters). Anything else (upper case, spaces, ``0x``,
another length) does not verify, so every valid signature has exactly one spelling.

Key files hold the private key as unencrypted PKCS #8 PEM (``-----BEGIN PRIVATE KEY-----``),
the form ``openssl genpkey -algorithm ed25519`` writes. The file is the secret, so it is
created with mode 0600 and never overwritten, and a file that group or others may read or
write is refused.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.canonical import CanonicalizationError, canonical_bytes
from voting.errors import BallotSignatureInvalid, KeyFileError

_PUBLIC_KEY_HEX = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")


def ballot_message(simulation: str, voter: str, choices: Any, nonce: str) -> bytes:
    """The bytes a voter signs: RFC 8785 bytes of ``{simulation, voter, choices, nonce}``.

    ``choices`` is any JSON value a record may hold (no floats, PROTOCOL §1); raises
    ``ledger.canonical.CanonicalizationError`` otherwise, and ``TypeError`` when
    ``simulation``, ``voter`` or ``nonce`` is not a string.
    """
    for name, value in (("simulation", simulation), ("voter", voter), ("nonce", nonce)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return canonical_bytes(
        {"simulation": simulation, "voter": voter, "choices": choices, "nonce": nonce}
    )


def generate_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key from the operating system's CSPRNG."""
    return Ed25519PrivateKey.generate()


def public_key_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as 64 lowercase hex characters (its 32 raw bytes)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def sign_ballot(
    key: Ed25519PrivateKey, simulation: str, voter: str, choices: Any, nonce: str
) -> str:
    """Sign a ballot; returns the signature as 128 lowercase hex characters."""
    return key.sign(ballot_message(simulation, voter, choices, nonce)).hex()


def verify_ballot_signature(
    public_key_hex: str,
    simulation: str,
    voter: str,
    choices: Any,
    nonce: str,
    signature_hex: str,
) -> bool:
    """True when ``signature_hex`` is the voter's signature of exactly this ballot.

    Never raises: a malformed key or signature (not lowercase hex of the right length, not a
    valid curve point) or a ballot that cannot be canonicalised gives False.
    """
    if not isinstance(public_key_hex, str) or not _PUBLIC_KEY_HEX.fullmatch(public_key_hex):
        return False
    if not isinstance(signature_hex, str) or not _SIGNATURE_HEX.fullmatch(signature_hex):
        return False
    try:
        message = ballot_message(simulation, voter, choices, nonce)
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, CanonicalizationError, TypeError, ValueError):
        return False
    return True


def require_ballot_signature(
    public_key_hex: str,
    simulation: str,
    voter: str,
    choices: Any,
    nonce: str,
    signature_hex: str,
) -> None:
    """Raise ``BallotSignatureInvalid`` unless :func:`verify_ballot_signature` accepts the ballot."""
    if not verify_ballot_signature(
        public_key_hex, simulation, voter, choices, nonce, signature_hex
    ):
        raise BallotSignatureInvalid(f"the signature of {voter!r}'s ballot does not verify")


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
