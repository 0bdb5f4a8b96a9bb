"""C2SP transparency log checkpoints (c2sp.org/tlog-checkpoint), signed and cosigned.

PROTOCOL §9: for every anchored batch the service issues a checkpoint whose note text is
exactly ``<origin>\\n<size>\\n<base64 of root>\\n``, with no extension lines, signed by the
log's Ed25519 key whose key name is the origin, ``<deployment name>/<log name>``. Witnesses
add cosignature/v1 lines (``core.cosignature``).

The format, per the spec: at least three non-empty lines, each ending in a newline; the origin
(non-empty), the tree size in decimal without leading zeroes, the RFC 6962 / RFC 9162 root in
base64, then optional non-empty extension lines. We parse extension lines and never produce
them. Where the spec leaves room we are strict: the root is canonical base64 of 32 bytes, and
sizes fit an unsigned 64-bit integer (as in every tlog implementation).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.cosignature import CosignatureVerifier, timestamp_of
from core.merkle import HASH_SIZE
from core.note import (
    Ed25519Signer,
    Ed25519Verifier,
    Note,
    UnknownKey,
    decode_base64,
    encode_base64,
    is_valid_key_name,
    open_note,
    sign_note,
)

MAX_SIZE = 2**64 - 1
_SIZE = re.compile(r"0|[1-9][0-9]*")


class MalformedCheckpoint(ValueError):
    """A note text that is not a tlog-checkpoint (lines, size, root)."""


class WrongOrigin(ValueError):
    """A checkpoint whose origin is not the name of the log key it was checked with (§11)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, tree size and root hash, and any extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedCheckpoint("the origin is one non-empty line")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise MalformedCheckpoint(f"the size is an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_SIZE:
            raise MalformedCheckpoint(f"the size is 0 to 2^64 - 1, got {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise MalformedCheckpoint("the root is 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise MalformedCheckpoint("an extension line is one non-empty line")

    @property
    def text(self) -> str:
        """The checkpoint's note text: ``<origin>\\n<size>\\n<base64 root>\\n`` and extensions."""
        lines = [self.origin, str(self.size), encode_base64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def log_origin(deployment: str, log: str) -> str:
    """PROTOCOL §9's origin of a log, ``<deployment name>/<log name>``.

    It is also the log key's name, so it must be a signed-note key name (no Unicode spaces,
    no ``+``); ValueError otherwise.
    """
    origin = f"{deployment}/{log}"
    if not deployment or not log or not is_valid_key_name(origin):
        raise ValueError(f"{origin!r} cannot be an origin and key name (no spaces, no '+')")
    return origin


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its note text (as ``core.note.open_note`` returns it).

    Raises MalformedCheckpoint: fewer than three lines, an empty line, a size with leading
    zeroes or beyond 2^64 − 1, a root that is not canonical base64 of 32 bytes.
    """
    if not text.endswith("\n"):
        raise MalformedCheckpoint("a checkpoint's text ends in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint("a checkpoint has an origin, a size and a root line")
    if any(not line for line in lines):
        raise MalformedCheckpoint("a checkpoint has no empty line")
    origin, size_text, root_text, *extensions = lines
    if not _SIZE.fullmatch(size_text) or int(size_text) > MAX_SIZE:
        raise MalformedCheckpoint(
            f"the size line is a decimal without leading zeroes, got {size_text!r}"
        )
    try:
        root = decode_base64(root_text)
    except ValueError as exc:
        raise MalformedCheckpoint(f"the root line: {exc}") from exc
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, log_key: Ed25519Signer) -> str:
    """The signed note of a checkpoint as PROTOCOL §9 issues it.

    ValueError when the checkpoint has extension lines or its origin is not the key's name.
    """
    if checkpoint.extensions:
        raise ValueError("civic-ledger checkpoints carry no extension lines (PROTOCOL §9)")
    if checkpoint.origin != log_key.name:
        raise ValueError(
            f"the log key is named {log_key.name!r}, the checkpoint's origin is "
            f"{checkpoint.origin!r}: they are the same (PROTOCOL §9)"
        )
    return sign_note(checkpoint.text, log_key)


@dataclass(frozen=True, slots=True)
class WitnessCosignature:
    """A verified cosignature/v1 on a checkpoint: which witness key, and when."""

    name: str
    key_id: bytes
    timestamp: int


@dataclass(frozen=True, slots=True)
class OpenedCheckpoint:
    """A checkpoint whose log signature verified, with the witnesses' verified cosignatures.

    ``witnesses`` are the distinct trusted witness keys that cosigned (what a quorum counts);
    ``cosignatures`` every verified line, a key possibly more than once.
    """

    checkpoint: Checkpoint
    note: Note
    cosignatures: tuple[WitnessCosignature, ...]

    @property
    def witnesses(self) -> frozenset[tuple[str, bytes]]:
        """The (name, key ID) of each trusted witness with a verified cosignature."""
        return frozenset((c.name, c.key_id) for c in self.cosignatures)


def open_checkpoint(
    note: str | bytes, log_key: Ed25519Verifier, witnesses: Iterable[CosignatureVerifier] = ()
) -> OpenedCheckpoint:
    """Verify a (cosigned) checkpoint with the log's key and the trusted witnesses' keys.

    Checks, in order: the note's format and every line by a given key (``core.note``:
    MalformedNote, BadSignature), that the log key signed it (UnknownKey otherwise, even when
    witnesses did), the checkpoint format (MalformedCheckpoint), and that the origin is the
    log key's name (WrongOrigin). Lines by other keys are ignored. The quorum is the caller's.
    """
    trusted = list(witnesses)
    opened = open_note(note, [log_key, *trusted])
    if (log_key.name, log_key.key_id) not in opened.signed_by:
        raise UnknownKey(f"the checkpoint is not signed by the log key {log_key.verifier_key}")
    checkpoint = parse_checkpoint(opened.text)
    if checkpoint.origin != log_key.name:
        raise WrongOrigin(
            f"the checkpoint's origin {checkpoint.origin!r} is not the log {log_key.name!r}"
        )
    witness_ids = {(w.name, w.key_id) for w in trusted}
    cosignatures = tuple(
        WitnessCosignature(line.name, line.key_id, timestamp_of(line))
        for line in opened.signatures
        if (line.name, line.key_id) in witness_ids
    )
    return OpenedCheckpoint(checkpoint, opened, cosignatures)
