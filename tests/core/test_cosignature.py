"""core.cosignature: Ed25519 cosignature/v1 (c2sp.org/tlog-cosignature).

Debian's golang.org/x/mod (0.7.0) has no cosignature support, so the checks here are:

* a real cosigned checkpoint: a checkpoint of the CT log arche2025h1.staging.ct.transparency.dev
  cosigned by the public witness remora.n621.de, with both verifier keys, as published in the
  tests of florolf/tlog-scales (tests/test_signing.py, TestCheckpointVerification);
* the spec's own examples (tlog-cosignature.md): its signed message, and its example line,
  whose time field is the time of that message;
* the signature line taken apart by hand and checked with plain Ed25519 over a message
  written out from the spec's text, sharing nothing with ``cosignature_message``.

test_go_interop.py also has Go check our cosignatures and sign some for us, with a few lines of
Go of our own written from the spec (not x/mod), for the key ID and byte layout.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.checkpoint import open_checkpoint
from core.cosignature import (
    MAX_TIMESTAMP,
    CosignatureVerifier,
    Cosigner,
    cosignature_message,
    parse_signer_key,
    parse_verifier_key,
    timestamp_of,
)
from core.note import (
    Ed25519Signer,
    MalformedKey,
    MalformedNote,
    Signature,
    UnknownKey,
    open_note,
    parse_signature_line,
    sign_note,
)
from core.note import parse_verifier_key as parse_note_key

REAL_CHECKPOINT = """\
arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
"""
REAL_LOG_KEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
REAL_WITNESS_KEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"

# tlog-cosignature.md, "Ed25519 signed message" and the example at the top.
SPEC_MESSAGE = (
    "cosignature/v1\n"
    "time 1679315147\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_CHECKPOINT_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_LINE = (
    "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2"
    "oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA=="
)

WITNESS = Cosigner("witness.example/w1", bytes(range(100, 132)))
LOG = Ed25519Signer("civic-ledger.localhost/votes", bytes(range(50, 82)))
TEXT = "civic-ledger.localhost/votes\n12\n" + base64.b64encode(bytes(32)).decode() + "\n"


# ---------------------------------------------------------------------------------------------
# Published checkpoints and the spec's examples
# ---------------------------------------------------------------------------------------------


def test_a_real_witness_cosignature_verifies() -> None:
    witness = parse_verifier_key(REAL_WITNESS_KEY)
    assert witness.verifier_key == REAL_WITNESS_KEY
    opened = open_checkpoint(REAL_CHECKPOINT, parse_note_key(REAL_LOG_KEY), [witness])
    assert opened.checkpoint.size == 1432088532
    assert opened.witnesses == {("remora.n621.de", bytes.fromhex("da77ade7"))}
    (cosignature,) = opened.cosignatures
    assert cosignature.timestamp == 1779573024


def test_a_real_cosignature_on_an_altered_checkpoint_fails() -> None:
    witness = parse_verifier_key(REAL_WITNESS_KEY)
    altered = REAL_CHECKPOINT.replace("1432088532", "1432088533")
    text = altered.split("\n\n")[0] + "\n"
    line = next(
        parse_signature_line(s) for s in altered.split("\n") if s.startswith("— remora.n621.de")
    )
    assert not witness.verify(text.encode(), line.signature)


def test_the_spec_signed_message() -> None:
    assert cosignature_message(SPEC_CHECKPOINT_TEXT, 1679315147) == SPEC_MESSAGE.encode()


def test_the_spec_example_line_carries_the_time_of_the_spec_message() -> None:
    line = parse_signature_line(SPEC_LINE)
    assert len(line.signature) == 8 + 64
    assert timestamp_of(line) == 1679315147


def test_timestamp_of_transparency_dev_vector() -> None:
    # transparency-dev/formats note/note_cosigv1_test.go, TestCoSigV1Timestamp "works".
    line = parse_signature_line(
        "— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOwor"
        "DcFiEBYJXORmnFBOBA=="
    )
    assert timestamp_of(line) == 1727964367


# ---------------------------------------------------------------------------------------------
# Our cosignatures, taken apart by hand
# ---------------------------------------------------------------------------------------------


def test_cosignature_line_layout() -> None:
    line = WITNESS.cosign(TEXT, 1_800_000_000).line
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    raw = base64.b64decode(line.split(" ")[2])
    public_key = WITNESS.public_key
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + public_key).digest()[:4]
    assert raw[4:12] == (1_800_000_000).to_bytes(8, "big")
    message = b"cosignature/v1\ntime 1800000000\n" + TEXT.encode()
    Ed25519PublicKey.from_public_bytes(public_key).verify(raw[12:], message)
    assert len(raw) == 4 + 8 + 64


def test_cosigned_checkpoint_opens_with_log_and_witness_keys() -> None:
    note = sign_note(TEXT, LOG) + WITNESS.cosign(TEXT, 1_800_000_000).line
    opened = open_note(note, [LOG.verifier, WITNESS.verifier])
    assert opened.signed_by == {(LOG.name, LOG.key_id), (WITNESS.name, WITNESS.key_id)}
    # The witness key's ID differs from the ID the same key would have as a type 0x01 key.
    as_plain = Ed25519Signer(WITNESS.name, WITNESS.seed)
    assert as_plain.key_id != WITNESS.key_id
    with pytest.raises(UnknownKey):
        open_note(sign_note(TEXT, as_plain), [WITNESS.verifier])


@pytest.mark.parametrize(
    "tamper",
    [
        lambda raw: raw[:11] + bytes([raw[11] ^ 1]) + raw[12:],  # the time
        lambda raw: raw[:20] + bytes([raw[20] ^ 1]) + raw[21:],  # the signature
        lambda raw: raw[:-1],  # one byte short
    ],
)
def test_a_tampered_cosignature_does_not_verify(tamper: Callable[[bytes], bytes]) -> None:
    line = WITNESS.cosign(TEXT, 1_800_000_000)
    raw = tamper(line.key_id + line.signature)
    assert not WITNESS.verifier.verify(TEXT.encode(), raw[4:])


def test_a_cosignature_covers_the_whole_text() -> None:
    line = WITNESS.cosign(TEXT + "extension line\n", 1_800_000_000)
    verifier = WITNESS.verifier
    assert verifier.verify((TEXT + "extension line\n").encode(), line.signature)
    assert not verifier.verify((TEXT + "extension lime\n").encode(), line.signature)
    assert not verifier.verify(TEXT.encode(), line.signature)


def test_timestamps() -> None:
    assert timestamp_of(WITNESS.cosign(TEXT, MAX_TIMESTAMP)) == MAX_TIMESTAMP
    with pytest.raises(ValueError, match="never 0"):
        WITNESS.cosign(TEXT, 0)
    with pytest.raises(ValueError, match="2\\^63"):
        WITNESS.cosign(TEXT, MAX_TIMESTAMP + 1)
    with pytest.raises(TypeError):
        WITNESS.cosign(TEXT, 1.5)  # type: ignore[arg-type]
    # A time beyond 2^63 - 1 in a line never verifies and is malformed.
    line = WITNESS.cosign(TEXT, 5)
    beyond = Signature(line.name, line.key_id, b"\x80" + line.signature[1:])
    assert not WITNESS.verifier.verify(TEXT.encode(), beyond.signature)
    with pytest.raises(MalformedNote, match="2\\^63"):
        timestamp_of(beyond)
    with pytest.raises(MalformedNote, match="72 bytes"):
        timestamp_of(Signature("x", bytes(4), bytes(64)))


def test_cosign_needs_a_note_text() -> None:
    with pytest.raises(MalformedNote):
        WITNESS.cosign("no newline", 5)


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def test_key_texts_round_trip() -> None:
    assert parse_verifier_key(WITNESS.verifier_key) == WITNESS.verifier
    assert parse_signer_key(WITNESS.signer_key) == WITNESS
    encoded = WITNESS.verifier_key.split("+", 2)[2]
    assert base64.b64decode(encoded) == b"\x04" + WITNESS.public_key
    assert WITNESS.seed.hex() not in repr(WITNESS)


def test_a_note_key_is_not_a_cosignature_key() -> None:
    with pytest.raises(MalformedKey, match="expected 0x04"):
        parse_verifier_key(LOG.verifier_key)
    with pytest.raises(MalformedKey, match="expected 0x01"):
        parse_note_key(WITNESS.verifier_key)
    with pytest.raises(MalformedKey, match="expected 0x04"):
        parse_signer_key(LOG.signer_key)


def test_a_wrong_key_id_is_refused() -> None:
    wrong = WITNESS.verifier_key.replace(WITNESS.key_id.hex(), "00000000")
    with pytest.raises(MalformedKey, match="does not belong"):
        parse_verifier_key(wrong)


def test_a_cosignature_key_refuses_bad_names_and_sizes() -> None:
    with pytest.raises(ValueError, match="not a key name"):
        Cosigner("a+b", bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        CosignatureVerifier("w", bytes(33))
