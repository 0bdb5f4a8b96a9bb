"""Personal data at rest: AES-256-GCM with a key file, and salted commitments for records.

A record never carries personal data (PROTOCOL §1). Where it must refer to some, it carries
``SHA-256(salt || canonical(value))`` in hex; the salt is kept encrypted beside the value, so
whoever may read the value can also show that the commitment opens to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contracts.secretfile import SecretFileError, read_secret_file
from core.canonical import canonical_bytes

_NONCE = 12


class PiiKeyError(RuntimeError):
    pass


def load_or_create_pii_key(path: Path) -> bytes:
    """The 32-byte data key, created at first use with mode 0600; refused if others may read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            text = read_secret_file(path, "the personal-data key").decode("ascii").strip()
            key = bytes.fromhex(text)
        except SecretFileError as exc:
            raise PiiKeyError(str(exc)) from None
        except ValueError:
            key = b""
        if len(key) != 32:
            raise PiiKeyError(f"{path} does not hold a 32-byte hex key") from None
        return key
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
    return key


class Vault:
    """Encrypts and decrypts personal data with one AES-GCM key; binds each ciphertext to
    its purpose (``aad``) so a contact blob cannot be replayed as another suggestion's."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, value: Mapping[str, Any], aad: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        plain = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        return nonce + self._aead.encrypt(nonce, plain, aad.encode())

    def open(self, blob: bytes, aad: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(
            self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad.encode())
        )
        return value


def commitment(value: Mapping[str, Any] | str, salt: bytes) -> str:
    """``SHA-256(salt || canonical(value))`` in hex; a string is committed as ``{"text": s}``."""
    obj = {"text": value} if isinstance(value, str) else value
    return hashlib.sha256(salt + canonical_bytes(obj)).hexdigest()


def new_commitment_salt() -> bytes:
    return secrets.token_bytes(16)
