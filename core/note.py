"""C2SP signed notes (c2sp.org/signed-note): text signed by one or more named keys.

PROTOCOL §9: a checkpoint is a signed note, signed by the log's Ed25519 key (signature type
0x01) whose key name is the checkpoint's origin; witnesses add cosignature lines
(``core.cosignature``, type 0x04). This module is the note format and the Ed25519 keys.

A note is its text (ending in a newline), a blank line, then one or more signature lines::

    — <key name> base64(4-byte key ID || signature)

with the em dash U+2014 and one space before the name and after it. The whole note is UTF-8
without any ASCII control character but the newline; the text is everything up to the last
blank line (it may hold blank lines itself).

Keys, in the text forms the spec and Go's ``golang.org/x/mod/sumdb/note`` use:

* key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]
* verifier key: ``<name>+<8 lowercase hex key ID>+<base64(type || public key)>``
* signer key (Go's form, not in the spec): ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``

Opening a note follows the spec's rules: signatures from unknown keys (name and key ID not
both known) are ignored; every signature from a known key must verify, or the note is refused
(:class:`BadSignature`); a note with no verified signature is refused (:class:`UnknownKey`).
We accept up to :data:`MAX_SIGNATURES` signature lines (the spec asks for at least 16; Go
allows 100). Where the spec leaves room we are strict, so that every note has one spelling:
base64 must be canonical (padded, no stray bits) and key IDs in text are lowercase hex.

Pure: keys are built from seeds the caller generated (``os.urandom(32)`` or a key file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_TYPE_ED25519 = 0x01
MAX_SIGNATURES = 100
KEY_ID_SIZE = 4
ED25519_KEY_SIZE = 32

_SIGNATURE_PREFIX = "— "  # U+2014 EM DASH, U+0020 SPACE
_SIGNER_KEY_PREFIX = "PRIVATE+KEY+"
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A note, a signature line or a key text that cannot be accepted."""


class MalformedNote(NoteError):
    """The note breaks the signed-note format (encoding, control characters, lines, base64)."""


class MalformedKey(NoteError):
    """A verifier or signer key text that is not in the spec's form, or whose key ID is wrong."""


class UnknownKey(NoteError):
    """No signature line of the note is by a key the caller knows (name and key ID)."""


class BadSignature(NoteError):
    """A signature line names a known key (name and key ID) but does not verify under it."""

    def __init__(self, name: str, key_id: bytes) -> None:
        super().__init__(f"the signature by {name}+{key_id.hex()} does not verify")
        self.name = name
        self.key_id = key_id


def is_valid_key_name(name: str) -> bool:
    """A key name is non-empty, with no Unicode space, no ``+`` and no control character."""
    return bool(name) and not any(
        c == "+" or c.isspace() or ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF for c in name
    )


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4], as the spec recommends
    and requires for Ed25519 (0x01) and cosignature/v1 (0x04) keys."""
    if not 0 <= signature_type <= 0xFF:
        raise ValueError(f"a signature type is one byte, got {signature_type}")
    message = name.encode() + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(message).digest()[:KEY_ID_SIZE]


def decode_base64(text: str) -> bytes:
    """Standard base64 (RFC 4648 §4) in its one canonical spelling; ValueError otherwise."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("not canonical base64")
    return raw


def encode_base64(raw: bytes) -> str:
    """Standard padded base64 (RFC 4648 §4)."""
    return base64.b64encode(raw).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Key texts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyText:
    """The three parts of a verifier or signer key text, checked for form only."""

    name: str
    key_id: bytes
    signature_type: int
    material: bytes


def split_key_text(text: str, *, private: bool = False) -> KeyText:
    """Split ``<name>+<hex key ID>+<base64(type || material)>`` (with ``PRIVATE+KEY+`` in
    front when ``private``). Checks the form; the caller checks the type and the key ID.

    Raises MalformedKey.
    """
    what = "signer key" if private else "verifier key"
    if private:
        if not text.startswith(_SIGNER_KEY_PREFIX):
            raise MalformedKey(f"a {what} starts with {_SIGNER_KEY_PREFIX!r}")
        text = text[len(_SIGNER_KEY_PREFIX) :]
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedKey(f"a {what} is <name>+<hex key ID>+<base64 key>")
    name, hex_id, encoded = parts
    if not is_valid_key_name(name):
        raise MalformedKey(f"{name!r} is not a key name (no spaces, no '+', not empty)")
    if not _KEY_ID_HEX.fullmatch(hex_id):
        raise MalformedKey(f"the key ID of a {what} is 8 lowercase hex digits, got {hex_id!r}")
    try:
        raw = decode_base64(encoded)
    except ValueError as exc:
        raise MalformedKey(f"the key of a {what}: {exc}") from exc
    if len(raw) < 2:
        raise MalformedKey(f"the key of a {what} is a type byte and key material")
    return KeyText(name, bytes.fromhex(hex_id), raw[0], raw[1:])


def format_verifier_key(name: str, signature_type: int, public_key: bytes) -> str:
    """``<name>+<hex key ID>+<base64(type || public key)>``, the key ID derived."""
    identifier = key_id(name, signature_type, public_key)
    return f"{name}+{identifier.hex()}+{encode_base64(bytes([signature_type]) + public_key)}"


def format_signer_key(name: str, signature_type: int, public_key: bytes, seed: bytes) -> str:
    """``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`` (Go's ``note`` form)."""
    identifier = key_id(name, signature_type, public_key)
    return (
        f"{_SIGNER_KEY_PREFIX}{name}+{identifier.hex()}+"
        f"{encode_base64(bytes([signature_type]) + seed)}"
    )


def ed25519_public_key(seed: bytes) -> bytes:
    """The RFC 8032 public key (32 bytes) of a 32-byte Ed25519 seed."""
    if len(seed) != ED25519_KEY_SIZE:
        raise ValueError(f"an Ed25519 seed is {ED25519_KEY_SIZE} bytes, got {len(seed)}")
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 Ed25519 verification; False for a signature of the wrong size."""
    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """RFC 8032 Ed25519 signature (64 bytes) with the key of a 32-byte seed."""
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


# ---------------------------------------------------------------------------------------------
# Verifiers and signers
# ---------------------------------------------------------------------------------------------


class NoteVerifier(Protocol):
    """A key that checks signature lines: the name and key ID it answers to, and the check.

    ``signature`` is what follows the key ID in the line; ``text`` the note text's bytes.
    """

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


class NoteSigner(Protocol):
    """A key that signs a note text: the name and key ID its lines carry, and the signing."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: bytes) -> bytes: ...


def _check_name(name: str) -> None:
    if not is_valid_key_name(name):
        raise ValueError(f"{name!r} is not a key name (no spaces, no '+', not empty)")


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    """A signed-note Ed25519 verifier key (signature type 0x01): a name and a public key."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != ED25519_KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is 32 bytes, got {len(self.public_key)}")

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    @property
    def verifier_key(self) -> str:
        """The key's text form, ``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return format_verifier_key(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of the note text."""
        return ed25519_verify(self.public_key, text, signature)


@dataclass(frozen=True, slots=True)
class Ed25519Signer:
    """A signed-note Ed25519 signer (type 0x01): a name and a 32-byte RFC 8032 seed.

    The seed never appears in ``repr``; ``signer_key`` is the one text that carries it.
    """

    name: str
    seed: bytes = field(repr=False)
    public_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "public_key", ed25519_public_key(self.seed))

    @property
    def key_id(self) -> bytes:
        """SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
        return key_id(self.name, SIGNATURE_TYPE_ED25519, self.public_key)

    @property
    def verifier(self) -> Ed25519Verifier:
        """The matching verifier key."""
        return Ed25519Verifier(self.name, self.public_key)

    @property
    def verifier_key(self) -> str:
        """The matching verifier key's text form (what PROTOCOL §9 publishes)."""
        return self.verifier.verifier_key

    @property
    def signer_key(self) -> str:
        """``PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>``: secret, for key files."""
        return format_signer_key(self.name, SIGNATURE_TYPE_ED25519, self.public_key, self.seed)

    def sign(self, text: bytes) -> bytes:
        """The Ed25519 signature of the note text (64 bytes)."""
        return ed25519_sign(self.seed, text)


class _IdentifiedKey(Protocol):
    @property
    def key_id(self) -> bytes: ...


_Key = TypeVar("_Key", bound=_IdentifiedKey)


def key_from_text(
    text: str,
    *,
    private: bool,
    signature_type: int,
    kind: str,
    make: Callable[[str, bytes], _Key],
) -> _Key:
    """A key of one signature type from its text form (a verifier key, or with ``private``
    Go's ``PRIVATE+KEY+…`` signer form): ``make(name, 32 bytes)``, whose key ID must be the one
    in the text. MalformedKey otherwise (another form or type, material of the wrong size, a
    key ID that does not belong to this name and key). ``kind`` names the expected key in the
    message, e.g. "an Ed25519 note key"."""
    parts = split_key_text(text, private=private)
    if parts.signature_type != signature_type:
        raise MalformedKey(
            f"not {kind} (type 0x{parts.signature_type:02x}, expected 0x{signature_type:02x})"
        )
    if len(parts.material) != ED25519_KEY_SIZE:
        material = "seed" if private else "public key"
        raise MalformedKey(f"an Ed25519 {material} is 32 bytes, got {len(parts.material)}")
    key = make(parts.name, parts.material)
    if key.key_id != parts.key_id:
        raise MalformedKey(f"the key ID {parts.key_id.hex()} does not belong to this name and key")
    return key


def parse_verifier_key(text: str) -> Ed25519Verifier:
    """An Ed25519 (type 0x01) verifier key from its text form; MalformedKey otherwise
    (another form or type, a public key of the wrong size, a key ID that does not match)."""
    return key_from_text(
        text,
        private=False,
        signature_type=SIGNATURE_TYPE_ED25519,
        kind="an Ed25519 note key",
        make=Ed25519Verifier,
    )


def parse_signer_key(text: str) -> Ed25519Signer:
    """An Ed25519 (type 0x01) signer from Go's ``PRIVATE+KEY+…`` form; MalformedKey otherwise.

    The key ID in the text must be the one of the seed's public key.
    """
    return key_from_text(
        text,
        private=True,
        signature_type=SIGNATURE_TYPE_ED25519,
        kind="an Ed25519 note key",
        make=Ed25519Signer,
    )


# ---------------------------------------------------------------------------------------------
# Signature lines and notes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key's name and ID, and the signature bytes after the ID."""

    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        """``— <name> <base64(key ID || signature)>`` and the newline."""
        return f"{_SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}\n"


def parse_signature_line(line: str) -> Signature:
    """One signature line, without its newline. Raises MalformedNote."""
    if not line.startswith(_SIGNATURE_PREFIX):
        raise MalformedNote("a signature line starts with an em dash (U+2014) and a space")
    name, space, encoded = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not space or not is_valid_key_name(name):
        raise MalformedNote(f"no valid key name in the signature line {line!r}")
    try:
        raw = decode_base64(encoded)
    except ValueError as exc:
        raise MalformedNote(f"the signature by {name}: {exc}") from exc
    if len(raw) <= KEY_ID_SIZE:
        raise MalformedNote(f"the signature by {name} is a key ID and at least one byte")
    return Signature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def parse_signature_lines(block: str) -> list[Signature]:
    """Signature lines, each ending in a newline (a tlog-witness answer, or a note's tail).

    At least one, at most :data:`MAX_SIGNATURES`. Raises MalformedNote.
    """
    _check_characters(block)
    if not block.endswith("\n"):
        raise MalformedNote("every signature line ends in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"more than {MAX_SIGNATURES} signature lines")
    return [parse_signature_line(line) for line in lines]


def _check_characters(text: str) -> None:
    for c in text:
        if (ord(c) < 0x20 and c != "\n") or 0xD800 <= ord(c) <= 0xDFFF:
            raise MalformedNote(
                f"a note holds no control character but the newline (found U+{ord(c):04X})"
            )


def _decode(note: str | bytes) -> str:
    if isinstance(note, bytes):
        try:
            return note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote(f"a note is UTF-8: {exc}") from exc
    return note


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the lines verified by known keys, and the lines ignored.

    ``signatures`` holds each verified line once, in note order; a key can appear twice (two
    cosignatures with different times), so count keys, not lines (``signed_by``).
    """

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...]

    @property
    def signed_by(self) -> frozenset[tuple[str, bytes]]:
        """The (name, key ID) of every key with a verified signature."""
        return frozenset((s.name, s.key_id) for s in self.signatures)


def check_note_text(text: str) -> None:
    """A note text ends in a newline and holds no control character but newlines.

    Raises MalformedNote.
    """
    _check_characters(text)
    if not text.endswith("\n"):
        raise MalformedNote("a note text ends in a newline")


def sign_note(text: str, *signers: NoteSigner) -> str:
    """The signed note: ``text``, a blank line, and one signature line per signer, in order.

    Raises MalformedNote when ``text`` is not a note text, ValueError without a signer or with
    a signer whose name is not a key name.
    """
    check_note_text(text)
    if not signers:
        raise ValueError("a signed note has at least one signature")
    message = text.encode("utf-8")
    lines = []
    for signer in signers:
        _check_name(signer.name)
        lines.append(Signature(signer.name, signer.key_id, signer.sign(message)).line)
    return text + "\n" + "".join(lines)


def split_note(note: str | bytes) -> tuple[str, list[Signature]]:
    """The text and the signature lines of a note, checked for form only (nothing verified).

    The text is everything up to the last blank line, its final newline included. Raises
    MalformedNote.
    """
    decoded = _decode(note)
    _check_characters(decoded)
    split = decoded.rfind("\n\n")
    if split < 0:
        raise MalformedNote("a note has a blank line between its text and its signatures")
    return decoded[: split + 1], parse_signature_lines(decoded[split + 2 :])


def open_note(note: str | bytes, known: Iterable[NoteVerifier]) -> Note:
    """Parse a note and verify it with the ``known`` keys (c2sp.org/signed-note).

    Lines whose name and key ID are not both those of a known key are ignored (kept in
    ``unverified``). Every line of a known key must verify. Raises, in this order of
    precedence: MalformedNote (the format), BadSignature (a known key's line fails),
    UnknownKey (no line is by a known key). ValueError when two different known keys share
    a name and key ID (ambiguous).
    """
    by_id: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in known:
        identity = (verifier.name, verifier.key_id)
        if identity in by_id and by_id[identity] != verifier:
            raise ValueError(f"two known keys are both {verifier.name}+{verifier.key_id.hex()}")
        by_id[identity] = verifier
    text, lines = split_note(note)
    message = text.encode("utf-8")
    verified: list[Signature] = []
    ignored: list[Signature] = []
    for line in lines:
        verifier_for_line = by_id.get((line.name, line.key_id))
        if verifier_for_line is None:
            if line not in ignored:
                ignored.append(line)
            continue
        if not verifier_for_line.verify(message, line.signature):
            raise BadSignature(line.name, line.key_id)
        if line not in verified:
            verified.append(line)
    if not verified:
        seen = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in ignored)
        raise UnknownKey(f"no signature by a known key (the note is signed by {seen})")
    return Note(text, tuple(verified), tuple(ignored))
