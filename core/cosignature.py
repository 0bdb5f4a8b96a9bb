"""C2SP checkpoint cosignatures, Ed25519 ``cosignature/v1`` (c2sp.org/tlog-cosignature).

PROTOCOL §9: a witness states that a checkpoint is consistent with everything it saw of the
log by adding a note signature line to it. The line is an ordinary signed-note line
(``core.note``) whose key is of signature type 0x04:

* key ID = SHA-256(<name> || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]
* the signature bytes after the key ID are ``timestamped_signature``: the POSIX time in seconds
  as a big-endian uint64 (at most 2^63 − 1), then the 64-byte Ed25519 signature
* the signed message is ``cosignature/v1\\n``, ``time <decimal seconds>\\n`` and then the whole
  checkpoint text (the note text, its final newline included, no signature lines)
* verifier key: ``<name>+<hex key ID>+<base64(0x04 || public key)>``

The cosigned message does not name the cosigner, so each witness key serves one witness.
Signer keys use the ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>`` form that
transparency-dev's Go ``note`` package reads; the spec does not define one.

Pure: the time is a parameter, never read from a clock here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.note import (
    ED25519_KEY_SIZE,
    MalformedNote,
    Signature,
    check_note_text,
    ed25519_public_key,
    ed25519_sign,
    ed25519_verify,
    format_signer_key,
    format_verifier_key,
    is_valid_key_name,
    key_from_text,
    key_id,
)

SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1
TIMESTAMP_SIZE = 8
ED25519_SIGNATURE_SIZE = 64
_HEADER = b"cosignature/v1\n"


def cosignature_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosignature/v1 signs: the header line, the time line, the text.

    ``checkpoint_text`` is the checkpoint's note text (ending in a newline); ``timestamp``
    POSIX seconds, 0 to 2^63 − 1, written in decimal with no leading zeroes.
    """
    _check_timestamp(timestamp)
    return _HEADER + f"time {timestamp}\n".encode("ascii") + checkpoint_text.encode("utf-8")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"a timestamp is an int, got {type(timestamp).__name__}")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"a cosignature timestamp is 0 to 2^63 - 1, got {timestamp}")


def timestamp_of(signature: Signature) -> int:
    """The time a cosignature/v1 line carries (not verified here). Raises MalformedNote when
    the line is not 8 + 64 bytes after its key ID or the time exceeds 2^63 − 1."""
    payload = signature.signature
    if len(payload) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
        raise MalformedNote(
            f"a cosignature/v1 by {signature.name} is 72 bytes after the key ID, got {len(payload)}"
        )
    timestamp = int.from_bytes(payload[:TIMESTAMP_SIZE], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedNote(f"the cosignature by {signature.name} has a time above 2^63 - 1")
    return timestamp


@dataclass(frozen=True, slots=True)
class CosignatureVerifier:
    """A witness's cosignature/v1 verifier key (type 0x04): a name and an Ed25519 public key.

    It is a ``core.note.NoteVerifier``: pass it to ``open_note`` with the log's key.
    """

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(f"{self.name!r} is not a key name (no spaces, no '+', not empty)")
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(self.public_key)}")

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
        return key_id(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    @property
    def verifier_key(self) -> str:
        """``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        return format_verifier_key(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (time || Ed25519 signature) cosigns the note text ``text``."""
        if len(signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:TIMESTAMP_SIZE], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = _HEADER + f"time {timestamp}\n".encode("ascii") + text
        return ed25519_verify(self.public_key, message, signature[TIMESTAMP_SIZE:])


@dataclass(frozen=True, slots=True)
class Cosigner:
    """A witness's cosignature/v1 signing key: a name and a 32-byte Ed25519 seed.

    The seed never appears in ``repr``; ``signer_key`` is the one text that carries it.
    """

    name: str
    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name):
            raise ValueError(f"{self.name!r} is not a key name (no spaces, no '+', not empty)")
        object.__setattr__(self, "public_key", ed25519_public_key(self.seed))

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
        return key_id(self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key)

    @property
    def verifier(self) -> CosignatureVerifier:
        """The matching verifier key."""
        return CosignatureVerifier(self.name, self.public_key)

    @property
    def verifier_key(self) -> str:
        """The matching verifier key's text form, for ``CIVIC_WITNESSES`` and ``/keys``."""
        return self.verifier.verifier_key

    @property
    def signer_key(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``: secret, for key files."""
        return format_signer_key(
            self.name, SIGNATURE_TYPE_COSIGNATURE_V1, self.public_key, self.seed
        )

    def cosign(self, checkpoint_text: str, timestamp: int) -> Signature:
        """The cosignature/v1 of a checkpoint's note text at ``timestamp`` (POSIX seconds).

        C2SP tlog-witness forbids a zero time, so ``timestamp`` is 1 to 2^63 − 1. Checking
        that the text is a checkpoint consistent with what the witness saw is the caller's
        job; here it must only be a note text. ``.line`` of the result is the note line.
        """
        check_note_text(checkpoint_text)
        _check_timestamp(timestamp)
        if timestamp == 0:
            raise ValueError("a witness's cosignature carries a time, never 0 (tlog-witness)")
        signed = ed25519_sign(self.seed, cosignature_message(checkpoint_text, timestamp))
        return Signature(self.name, self.key_id, timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signed)


def parse_verifier_key(text: str) -> CosignatureVerifier:
    """A cosignature/v1 verifier key (type 0x04) from its text form; MalformedKey otherwise
    (another form or type, a public key of the wrong size, a key ID that does not match)."""
    return key_from_text(
        text,
        private=False,
        signature_type=SIGNATURE_TYPE_COSIGNATURE_V1,
        kind="a cosignature/v1 key",
        make=CosignatureVerifier,
    )


def parse_signer_key(text: str) -> Cosigner:
    """A cosigner from ``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>``;
    MalformedKey otherwise (the key ID must be the one of the seed's public key)."""
    return key_from_text(
        text,
        private=True,
        signature_type=SIGNATURE_TYPE_COSIGNATURE_V1,
        kind="a cosignature/v1 key",
        make=Cosigner,
    )
