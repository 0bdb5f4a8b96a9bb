"""Account keys: the secp256k1 private key that signs an account's transactions. One loader for
the anchoring key (``civic-ledger``) and a witness's key (``civic-verify witness``).

At first run the key is generated from the OS CSPRNG and written with mode 0600. The file is
created under a temporary name with O_CREAT|O_EXCL and mode 0600 (so it is never readable by
anyone else, not even for a moment), filled and fsynced, then hard-linked into place: a crash
never leaves a half-written key at ``path``, and two processes starting together end up with
the same key. Loading refuses a file that group or others may read.

Formats: with a password, an Ethereum v3 keystore (scrypt, via eth_account); without, one line
of hex. The password case is for production; the plain form is for a development chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from eth_account import Account

from contracts.secretfile import SecretFileError, SecretFileMissing, read_secret_file

__all__ = [
    "KeyFileError",
    "KeyPasswordNeeded",
    "address_of",
    "generate_key",
    "load_key",
    "load_or_create_key",
]

# Order of the secp256k1 group: a private key is an integer in [1, n-1].
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeyFileError(Exception):
    """The key file is unsafe, unreadable, or does not match how it is being opened."""


class KeyPasswordNeeded(KeyFileError):
    """The file is an encrypted keystore and no password was given."""


def generate_key() -> bytes:
    """A fresh 32-byte secp256k1 private key from the OS CSPRNG."""
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            return key


def address_of(key: bytes) -> str:
    """The EIP-55 checksum address of a private key."""
    return str(Account.from_key(key).address)


def _encode(key: bytes, password: str | None) -> bytes:
    if password is None:
        return f"0x{key.hex()}\n".encode()
    return (json.dumps(Account.encrypt(key, password), sort_keys=True) + "\n").encode()


def _decode(path: Path, text: str, password: str | None) -> bytes:
    stripped = text.strip()
    if stripped.startswith("{"):
        if password is None:
            raise KeyPasswordNeeded(f"{path} is an encrypted keystore: a password is needed")
        try:
            key = bytes(Account.decrypt(json.loads(stripped), password))
        except ValueError as exc:  # eth_account says "MAC mismatch" for a wrong password
            raise KeyFileError(f"cannot decrypt {path}: {exc}") from exc
    else:
        if password is not None:
            raise KeyFileError(f"{path} holds an unencrypted key but a password was given")
        try:
            key = bytes.fromhex(stripped.removeprefix("0x"))
        except ValueError as exc:
            raise KeyFileError(f"{path} does not hold a hex private key") from exc
    if len(key) != 32 or not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
        raise KeyFileError(f"{path} does not hold a valid secp256k1 private key")
    return key


def _load(path: Path, password: str | None) -> bytes:
    """Raises FileNotFoundError when there is no file (the caller may create one)."""
    try:
        data = read_secret_file(path, "private key")
    except SecretFileMissing:
        raise FileNotFoundError(path) from None
    except SecretFileError as exc:
        raise KeyFileError(str(exc)) from None
    return _decode(path, data.decode("utf-8", errors="replace"), password)


def _create(path: Path, password: str | None) -> bytes:
    key = generate_key()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_encode(key, password))
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if the key exists: never overwrite one
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return key


def load_key(path: Path, password: str | None = None) -> bytes:
    """The 32-byte private key stored at ``path``; never creates one.

    Production uses this: a mistyped key path must stop the service, not quietly make a new
    account that holds no role. Raises :class:`KeyFileError` when the file is missing too.
    """
    path = Path(path)
    try:
        return _load(path, password)
    except FileNotFoundError:
        raise KeyFileError(f"{path} does not exist (production never creates keys)") from None


def load_or_create_key(path: Path, password: str | None = None) -> bytes:
    """The 32-byte private key stored at ``path``, created there (mode 0600) if absent.

    With ``password``, the file is an encrypted Ethereum keystore; without, hex. Raises
    :class:`KeyFileError` when the file is group- or world-accessible, is of the other format,
    or cannot be decrypted.
    """
    path = Path(path)
    try:
        return _load(path, password)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        return _create(path, password)
    except FileExistsError:
        # Another process created it between our load and our link: use theirs.
        return _load(path, password)
