"""Signed ballots: the bytes a voter signs, Ed25519 signing and checking, and key files.

PROTOCOL §6: a ``ballot.cast`` body carries ``simulation``, ``voter``, ``choices``, ``nonce`` and
the voter's Ed25519 ``signature`` (hex) over the RFC 8785 bytes of exactly
``{simulation, voter, choices, nonce}``. Ed25519 is RFC 8032 (pure Ed25519, no pre-hash).

Text forms, all lowercase hex: a public key is its 32 raw bytes (64 hex characters), a
signature its 64 raw bytes (128 hex characters). Anything else (upper case, spaces, ``0x``,
another length) does not verify, so every valid signature has exactly one spelling.

Pure: no key files and no randomness here (``voting.ballots`` makes and keeps keys).
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.canonical import CanonicalizationError, canonical_bytes
from core.voting.errors import BallotSignatureInvalid

_PUBLIC_KEY_HEX = re.compile(r"[0-9a-f]{64}")
_SIGNATURE_HEX = re.compile(r"[0-9a-f]{128}")


def ballot_message(simulation: str, voter: str, choices: Any, nonce: str) -> bytes:
    """The bytes a voter signs: RFC 8785 bytes of ``{simulation, voter, choices, nonce}``.

    ``choices`` is any JSON value a record may hold (no floats, PROTOCOL §1); raises
    ``core.canonical.CanonicalizationError`` otherwise, and ``TypeError`` when
    ``simulation``, ``voter`` or ``nonce`` is not a string.
    """
    for name, value in (("simulation", simulation), ("voter", voter), ("nonce", nonce)):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return canonical_bytes(
        {"simulation": simulation, "voter": voter, "choices": choices, "nonce": nonce}
    )


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
    valid curve point) or a ballot that cannot be canonicalised (a float, an integer beyond
    ±(2^53 − 1), ``choices`` nested too deep to walk) gives False.
    """
    if not isinstance(public_key_hex, str) or not _PUBLIC_KEY_HEX.fullmatch(public_key_hex):
        return False
    if not isinstance(signature_hex, str) or not _SIGNATURE_HEX.fullmatch(signature_hex):
        return False
    try:
        message = ballot_message(simulation, voter, choices, nonce)
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, CanonicalizationError, TypeError, ValueError, RecursionError):
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
