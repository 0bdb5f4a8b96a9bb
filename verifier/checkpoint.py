"""Step 4 of a version 2 receipt done offline, from its cosigned checkpoint (PROTOCOL §11).

A receipt's ``"checkpoint"`` is its batch's C2SP checkpoint, signed by the log's key and
cosigned by witnesses (§9). Given the log's verifier key and the trusted witnesses' keys, it
stands in for ``batchOf``: the log's signature verifies, the origin is the log's, the size
and root are the receipt's ``proof.size`` and ``proof.root``, and at least ``quorum`` of the
trusted witnesses cosigned it.

How a failure maps to a verdict (the reading in docs/PROTOCOL-NOTES.md, "Version 2"):

* the log key is named for another log (its name does not end in ``/<proof.log>``), or the
  checkpoint is signed by the log key with another origin: ``wrong_chain``;
* a line by the log key or by a trusted witness that does not verify: ``bad_signature``;
* no line by the log key: the checkpoint's (unverified) origin decides. When it is the log
  key's name, someone else signed in our log's name: ``bad_signature``; otherwise it is the
  checkpoint of another log: ``wrong_chain``. An origin is trusted only after the signature
  verifies, so this is the one place the unverified text is read, and only to name the fault;
* not a signed note or not a checkpoint: ``malformed``;
* a verified checkpoint whose size or root differs from the receipt's: ``root_mismatch``;
* fewer than ``quorum`` distinct trusted witnesses cosigned: ``unconfirmed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from core.checkpoint import (
    MalformedCheckpoint,
    OpenedCheckpoint,
    WrongOrigin,
    open_checkpoint,
    parse_checkpoint,
)
from core.cosignature import CosignatureVerifier
from core.cosignature import parse_verifier_key as parse_witness_key
from core.note import (
    BadSignature,
    Ed25519Verifier,
    MalformedKey,
    MalformedNote,
    UnknownKey,
    split_note,
)
from core.note import parse_verifier_key as parse_log_key
from core.verdicts import Verdict

__all__ = [
    "CheckpointCheck",
    "CheckpointTrust",
    "MalformedKey",
    "check_receipt_checkpoint",
    "cosigners",
    "trust_from_keys",
]


@dataclass(frozen=True, slots=True)
class CheckpointTrust:
    """What a verifier trusts instead of the chain: the log's key, the witnesses' keys, and
    how many of those witnesses must have cosigned (W)."""

    log_key: Ed25519Verifier
    witnesses: tuple[CosignatureVerifier, ...] = ()
    quorum: int = 0

    def __post_init__(self) -> None:
        if self.quorum < 0:
            raise ValueError("the witness quorum cannot be negative")
        if self.quorum > len({(w.name, w.key_id) for w in self.witnesses}):
            raise ValueError(
                f"a quorum of {self.quorum} needs at least {self.quorum} distinct witness keys, "
                f"{len(self.witnesses)} given"
            )


def trust_from_keys(
    log_key: str, witnesses: Sequence[str] = (), quorum: int = 0
) -> CheckpointTrust:
    """A CheckpointTrust from verifier key texts; MalformedKey or ValueError when one is wrong."""
    return CheckpointTrust(
        parse_log_key(log_key.strip()),
        tuple(parse_witness_key(w.strip()) for w in witnesses),
        quorum,
    )


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """The outcome of the offline step 4: ``verdict`` is None when it passed; ``details`` are
    the passed checks' texts in order (the last one the failure's when it failed)."""

    verdict: Verdict | None
    details: list[str] = field(default_factory=list)
    opened: OpenedCheckpoint | None = None


def _unverified_origin(note: str) -> str | None:
    try:
        text, _ = split_note(note)
        return parse_checkpoint(text).origin
    except (MalformedNote, MalformedCheckpoint):
        return None


def check_receipt_checkpoint(
    note: str, *, log: str, size: int, root: bytes, trust: CheckpointTrust
) -> CheckpointCheck:
    """Check a receipt's checkpoint against ``trust`` and the receipt's log, size and root."""
    key = trust.log_key
    done: list[str] = []
    if not key.name.endswith(f"/{log}"):
        done.append(
            f"the log key {key.name!r} is not the key of log {log!r} (its name ends in /{log})"
        )
        return CheckpointCheck(Verdict.WRONG_CHAIN, done)
    try:
        opened = open_checkpoint(note, key, trust.witnesses)
    except BadSignature as exc:
        done.append(f"the checkpoint's line by {exc.name}+{exc.key_id.hex()} does not verify")
        return CheckpointCheck(Verdict.BAD_SIGNATURE, done)
    except UnknownKey:
        origin = _unverified_origin(note)
        if origin == key.name:
            done.append(
                f"the checkpoint names log {origin!r} but is not signed by its key "
                f"{key.verifier_key}"
            )
            return CheckpointCheck(Verdict.BAD_SIGNATURE, done)
        done.append(
            f"the checkpoint is not signed by the log key {key.name!r}; it claims to be of "
            f"{origin!r}: another log's"
        )
        return CheckpointCheck(Verdict.WRONG_CHAIN, done)
    except WrongOrigin as exc:
        done.append(str(exc))
        return CheckpointCheck(Verdict.WRONG_CHAIN, done)
    except (MalformedNote, MalformedCheckpoint) as exc:
        done.append(f"the checkpoint is not a signed C2SP checkpoint: {exc}")
        return CheckpointCheck(Verdict.MALFORMED, done)
    checkpoint = opened.checkpoint
    done.append(f"the checkpoint of {checkpoint.origin!r} is signed by the log key {key.name}")
    if checkpoint.size != size or checkpoint.root != root:
        done.append(
            f"the checkpoint has size {checkpoint.size} and root {checkpoint.root.hex()}; the "
            f"receipt claims size {size} and root {root.hex()}"
        )
        return CheckpointCheck(Verdict.ROOT_MISMATCH, done, opened)
    done.append(f"its size {size} and root {root.hex()} are the receipt's")
    cosigned = sorted(name for name, _ in opened.witnesses)
    names = ", ".join(cosigned) if cosigned else "none"
    counted = (
        f"{len(cosigned)} of {len({(w.name, w.key_id) for w in trust.witnesses})} trusted "
        f"witnesses cosigned ({names}); {trust.quorum or 'none'} required"
    )
    done.append(counted)
    if len(cosigned) < trust.quorum:
        return CheckpointCheck(Verdict.UNCONFIRMED, done, opened)
    return CheckpointCheck(None, done, opened)


def cosigners(note: str, trust: CheckpointTrust) -> list[dict[str, object]]:
    """The trusted witnesses whose cosignatures of ``note`` verify, each once (its name, key ID
    in hex and the earliest timestamp it cosigned with), sorted by name; empty when the note
    does not open under ``trust`` (not signed by the log key, a bad line, not a checkpoint)."""
    try:
        opened = open_checkpoint(note, trust.log_key, trust.witnesses)
    except (BadSignature, UnknownKey, WrongOrigin, MalformedNote, MalformedCheckpoint):
        return []
    earliest: dict[tuple[str, bytes], int] = {}
    for line in opened.cosignatures:
        key = (line.name, line.key_id)
        earliest[key] = min(earliest.get(key, line.timestamp), line.timestamp)
    return [
        {"name": name, "key_id": key_id.hex(), "timestamp": timestamp}
        for (name, key_id), timestamp in sorted(earliest.items())
    ]
