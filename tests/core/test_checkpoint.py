"""core.checkpoint: the tlog-checkpoint note text (c2sp.org/tlog-checkpoint) and PROTOCOL §9.

The spec's example body is parsed as published; Go's sumdb/tlog and sumdb/note read our
checkpoints in test_go_interop.py.
"""

from __future__ import annotations

import base64

import pytest

from core.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    MalformedCheckpoint,
    WrongOrigin,
    log_origin,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from core.cosignature import Cosigner
from core.merkle import empty_root
from core.note import BadSignature, Ed25519Signer, MalformedNote, UnknownKey, sign_note

# tlog-checkpoint.md, the example at the top.
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

ORIGIN = "civic-ledger.localhost/suggestions"
LOG = Ed25519Signer(ORIGIN, bytes(range(7, 39)))
ROOT = bytes(range(32))
W1 = Cosigner("witness.one.example/w", bytes(range(40, 72)))
W2 = Cosigner("witness.two.example/w", bytes(range(80, 112)))
W3 = Cosigner("witness.three.example/w", bytes(range(120, 152)))


def test_the_spec_example_body() -> None:
    checkpoint = parse_checkpoint(SPEC_TEXT)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.extensions == ()
    assert checkpoint.text == SPEC_TEXT


def test_our_body_is_exactly_origin_size_root() -> None:
    checkpoint = Checkpoint(ORIGIN, 1234, ROOT)
    encoded = base64.b64encode(ROOT).decode()
    assert checkpoint.text == f"{ORIGIN}\n1234\n{encoded}\n"
    assert parse_checkpoint(checkpoint.text) == checkpoint


def test_the_empty_tree() -> None:
    checkpoint = Checkpoint(ORIGIN, 0, empty_root())
    assert checkpoint.text.split("\n")[1] == "0"
    assert parse_checkpoint(checkpoint.text) == checkpoint


def test_extension_lines_are_parsed_and_kept() -> None:
    text = SPEC_TEXT + "first extension\nsecond — extension\n"
    checkpoint = parse_checkpoint(text)
    assert checkpoint.extensions == ("first extension", "second — extension")
    assert checkpoint.text == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("example.com/log\n5\n", "two lines"),
        (SPEC_TEXT[:-1], "no final newline"),
        ("\n5\n" + SPEC_TEXT.split("\n")[2] + "\n", "empty origin"),
        (SPEC_TEXT.replace("20852163", "020852163"), "a leading zero"),
        (SPEC_TEXT.replace("20852163", "00"), "zero written twice"),
        (SPEC_TEXT.replace("20852163", "-1"), "a negative size"),
        (SPEC_TEXT.replace("20852163", "+1"), "a plus sign"),
        (SPEC_TEXT.replace("20852163", " 1"), "a space"),
        (SPEC_TEXT.replace("20852163", "١٢"), "Arabic-Indic digits"),
        (SPEC_TEXT.replace("20852163", str(MAX_SIZE + 1)), "beyond 2^64 - 1"),
        (SPEC_TEXT.replace("20852163", "0x10"), "hex"),
        (
            SPEC_TEXT.replace(SPEC_TEXT.split("\n")[2], base64.b64encode(bytes(31)).decode()),
            "31 bytes",
        ),
        (SPEC_TEXT.replace("I=", "J="), "stray bits in the root"),
        (SPEC_TEXT.replace("I=", "I"), "a root without padding"),
        (SPEC_TEXT.replace("CsUY", "CsU_"), "URL-safe base64"),
        (SPEC_TEXT + "\n", "an empty extension line"),
        (SPEC_TEXT + "\nsomething\n", "an empty line before an extension"),
    ],
)
def test_malformed_checkpoints(text: str, why: str) -> None:
    with pytest.raises(MalformedCheckpoint):
        parse_checkpoint(text)


def test_the_largest_size_parses() -> None:
    assert parse_checkpoint(SPEC_TEXT.replace("20852163", str(MAX_SIZE))).size == MAX_SIZE


def test_a_checkpoint_value_is_checked() -> None:
    with pytest.raises(MalformedCheckpoint, match="32 bytes"):
        Checkpoint(ORIGIN, 1, ROOT[:31])
    with pytest.raises(MalformedCheckpoint, match="0 to 2"):
        Checkpoint(ORIGIN, -1, ROOT)
    with pytest.raises(MalformedCheckpoint, match="one non-empty line"):
        Checkpoint("two\nlines", 1, ROOT)
    with pytest.raises(MalformedCheckpoint, match="an int"):
        Checkpoint(ORIGIN, True, ROOT)


def test_log_origin() -> None:
    assert log_origin("civic-ledger.localhost", "suggestions") == ORIGIN
    assert log_origin("人大.example.gov.cn", "votes") == "人大.example.gov.cn/votes"
    for deployment, log in [("has space", "votes"), ("a+b", "votes"), ("", "votes"), ("x", "")]:
        with pytest.raises(ValueError, match="cannot be an origin"):
            log_origin(deployment, log)


# ---------------------------------------------------------------------------------------------
# Signed and cosigned checkpoints (PROTOCOL §9, §11)
# ---------------------------------------------------------------------------------------------


def cosigned(checkpoint: Checkpoint, *witnesses: Cosigner, at: int = 1_800_000_000) -> str:
    note = sign_checkpoint(checkpoint, LOG)
    return note + "".join(w.cosign(checkpoint.text, at).line for w in witnesses)


def test_sign_and_open() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_checkpoint(checkpoint, LOG)
    assert note.startswith(checkpoint.text + "\n\u2014 " + ORIGIN + " ")
    opened = open_checkpoint(note, LOG.verifier)
    assert opened.checkpoint == checkpoint
    assert opened.cosignatures == ()


def test_sign_refuses_extensions_and_another_origin() -> None:
    with pytest.raises(ValueError, match="no extension lines"):
        sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT, ("ext",)), LOG)
    with pytest.raises(ValueError, match="origin"):
        sign_checkpoint(Checkpoint("civic-ledger.localhost/votes", 1, ROOT), LOG)


def test_cosignatures_of_trusted_witnesses_are_counted_by_key() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = cosigned(checkpoint, W1, W2, W3)
    # W1 cosigned twice, at two times: one witness, two lines.
    note += W1.cosign(checkpoint.text, 1_800_000_100).line
    opened = open_checkpoint(note, LOG.verifier, [W1.verifier, W2.verifier])
    assert opened.witnesses == {(W1.name, W1.key_id), (W2.name, W2.key_id)}
    assert sorted(c.timestamp for c in opened.cosignatures if c.name == W1.name) == [
        1_800_000_000,
        1_800_000_100,
    ]
    assert [s.name for s in opened.note.unverified] == [W3.name]


@pytest.mark.parametrize("field", ["origin", "size", "root"])
def test_a_changed_field_breaks_the_log_signature(field: str) -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = cosigned(checkpoint, W1)
    lines = note.split("\n")
    index = {"origin": 0, "size": 1, "root": 2}[field]
    lines[index] = {
        "origin": "civic-ledger.localhost/votes",
        "size": "43",
        "root": base64.b64encode(bytes(32)).decode(),
    }[field]
    with pytest.raises(BadSignature, match=ORIGIN.replace("+", r"\+")):
        open_checkpoint("\n".join(lines), LOG.verifier, [W1.verifier])


def test_a_forged_cosignature_of_a_trusted_witness_is_a_bad_signature() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    other = Checkpoint(ORIGIN, 41, ROOT)
    note = sign_checkpoint(checkpoint, LOG) + W1.cosign(other.text, 1_800_000_000).line
    with pytest.raises(BadSignature, match=W1.name):
        open_checkpoint(note, LOG.verifier, [W1.verifier])
    # An untrusted witness's line is ignored, forged or not.
    assert open_checkpoint(note, LOG.verifier).cosignatures == ()


def test_only_witnesses_is_not_enough() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT)
    note = sign_note(checkpoint.text, Ed25519Signer("someone.else/log", bytes(32)))
    note += W1.cosign(checkpoint.text, 1_800_000_000).line
    with pytest.raises(UnknownKey, match="not signed by the log key"):
        open_checkpoint(note, LOG.verifier, [W1.verifier])


def test_a_log_key_signing_another_origin_is_the_wrong_log() -> None:
    note = sign_note(Checkpoint("civic-ledger.localhost/votes", 1, ROOT).text, LOG)
    with pytest.raises(WrongOrigin, match="votes"):
        open_checkpoint(note, LOG.verifier)


def test_a_signed_note_that_is_no_checkpoint() -> None:
    with pytest.raises(MalformedCheckpoint):
        open_checkpoint(sign_note("just text\n", LOG), LOG.verifier)
    with pytest.raises(MalformedNote):
        open_checkpoint(Checkpoint(ORIGIN, 1, ROOT).text, LOG.verifier)
