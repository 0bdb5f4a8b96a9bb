"""core.note: C2SP signed notes, against the spec's own example and its rules line by line.

The spec is c2sp.org/signed-note (C2SP/C2SP, signed-note.md). Go's golang.org/x/mod/sumdb/note
opens our notes and signs notes we open in test_go_interop.py.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from core.note import (
    MAX_SIGNATURES,
    BadSignature,
    Ed25519Signer,
    Ed25519Verifier,
    MalformedKey,
    MalformedNote,
    Signature,
    UnknownKey,
    is_valid_key_name,
    key_id,
    open_note,
    parse_signature_lines,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    split_note,
)

# The example of signed-note.md, "Verifier keys" / "Example".
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKu"
    "wHjG1Yu72IneyaQM=\n"
)

ALICE = Ed25519Signer("civic-ledger.localhost/suggestions", bytes(range(32)))
BOB = Ed25519Signer("witness.example/bob", bytes(range(1, 33)))


# ---------------------------------------------------------------------------------------------
# The spec's example
# ---------------------------------------------------------------------------------------------


def test_spec_example_verifies() -> None:
    verifier = parse_verifier_key(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id == bytes.fromhex("530d903a")
    assert verifier.verifier_key == SPEC_VKEY
    opened = open_note(SPEC_NOTE, [verifier])
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.signatures] == ["example.com/foo"]
    assert opened.unverified == ()
    assert open_note(SPEC_NOTE.encode(), [verifier]) == opened


def test_spec_example_key_id_is_the_recommended_hash() -> None:
    public_key = base64.b64decode("AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")[1:]
    expected = hashlib.sha256(b"example.com/foo\n\x01" + public_key).digest()[:4]
    assert expected == bytes.fromhex("530d903a") == key_id("example.com/foo", 1, public_key)


def test_spec_example_altered_text_is_a_bad_signature() -> None:
    altered = SPEC_NOTE.replace("an example", "another")
    with pytest.raises(BadSignature, match=r"example.com/foo\+530d903a"):
        open_note(altered, [parse_verifier_key(SPEC_VKEY)])


# ---------------------------------------------------------------------------------------------
# Signing
# ---------------------------------------------------------------------------------------------


def test_signed_note_layout() -> None:
    text = "civic-ledger.localhost/suggestions\n7\nAAAA\n"
    note = sign_note(text, ALICE)
    body, line = note.split("\n\n")
    assert body + "\n" == text
    assert line.startswith("\u2014 civic-ledger.localhost/suggestions ")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == ALICE.key_id
    Ed25519PublicKey.from_public_bytes(ALICE.public_key).verify(raw[4:], text.encode())
    assert note.endswith("\n")


def test_signatures_from_several_keys_each_verify() -> None:
    note = sign_note("hello\n\nworld\n", ALICE, BOB)
    opened = open_note(note, [ALICE.verifier, BOB.verifier])
    assert opened.text == "hello\n\nworld\n"  # blank lines inside the text are the text's
    assert opened.signed_by == {(ALICE.name, ALICE.key_id), (BOB.name, BOB.key_id)}
    only_bob = open_note(note, [BOB.verifier])
    assert [s.name for s in only_bob.signatures] == [BOB.name]
    assert [s.name for s in only_bob.unverified] == [ALICE.name]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("no final newline", MalformedNote),
        ("a tab\there\n", MalformedNote),
        ("carriage return\r\n", MalformedNote),
        ("nul \x00\n", MalformedNote),
    ],
)
def test_sign_refuses_what_is_not_a_note_text(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        sign_note(text, ALICE)


def test_sign_needs_a_signer() -> None:
    with pytest.raises(ValueError, match="at least one signature"):
        sign_note("text\n")


def test_text_may_end_in_a_blank_line() -> None:
    note = sign_note("Note\n\n", ALICE)
    assert open_note(note, [ALICE.verifier]).text == "Note\n\n"


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def test_key_texts_round_trip() -> None:
    assert parse_verifier_key(ALICE.verifier_key) == ALICE.verifier
    assert parse_signer_key(ALICE.signer_key) == ALICE
    assert ALICE.signer_key.startswith(f"PRIVATE+KEY+{ALICE.name}+{ALICE.key_id.hex()}+")
    prefix = f"{ALICE.name}+{ALICE.key_id.hex()}+"
    assert ALICE.verifier_key.startswith(prefix)
    assert base64.b64decode(ALICE.verifier_key[len(prefix) :]) == b"\x01" + ALICE.public_key


def test_the_seed_stays_out_of_repr() -> None:
    assert ALICE.seed.hex() not in repr(ALICE)
    assert "seed" not in repr(ALICE)


@pytest.mark.parametrize(
    "text",
    [
        "example.com/foo+530d903a",  # two parts
        "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # upper-case hex
        "example.com/foo+530d903+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # 7 hex digits
        "example.com/foo+00000000+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # wrong key ID
        "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # other name
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",  # bad base64
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2l",  # stray bits
        "example com+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # space in name
        "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",  # empty name
        "example.com/foo+530d903a+AQ==",  # no key material
        "example.com/foo+530d903a+" + base64.b64encode(b"\x01" + bytes(31)).decode(),  # 31 bytes
        "example.com/foo+530d903a+" + base64.b64encode(b"\x04" + bytes(32)).decode(),  # type 4
    ],
)
def test_malformed_verifier_keys(text: str) -> None:
    with pytest.raises(MalformedKey):
        parse_verifier_key(text)


def test_malformed_signer_keys() -> None:
    good = ALICE.signer_key
    with pytest.raises(MalformedKey, match="starts with"):
        parse_signer_key(good.removeprefix("PRIVATE+"))
    with pytest.raises(MalformedKey, match="does not belong"):
        parse_signer_key(good.replace(ALICE.key_id.hex(), "00000000"))
    with pytest.raises(MalformedKey):
        parse_signer_key(ALICE.verifier_key)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("example.com/log", True),
        ("人大建议/suggestions", True),
        ("", False),
        ("a+b", False),
        ("a b", False),
        ("a\u00a0b", False),  # no-break space
        ("a\u3000b", False),  # ideographic space
        ("a\nb", False),
        ("a\x01b", False),
    ],
)
def test_key_names(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid


def test_a_key_refuses_an_invalid_name() -> None:
    with pytest.raises(ValueError, match="not a key name"):
        Ed25519Signer("has space", bytes(32))
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519Verifier("name", bytes(31))


# ---------------------------------------------------------------------------------------------
# Opening: what is malformed
# ---------------------------------------------------------------------------------------------

GOOD = sign_note("line one\nline two\n", ALICE)


@pytest.mark.parametrize(
    ("note", "why"),
    [
        (GOOD.replace("\n\n", "\n"), "no blank line before the signatures"),
        (GOOD[:-1], "last signature line without its newline"),
        (GOOD.replace("\u2014", "-"), "hyphen instead of the em dash"),
        (GOOD.replace("\u2014 ", "\u2014"), "no space after the em dash"),
        (GOOD.replace("line one", "line\tone"), "a tab"),
        (GOOD.replace("line one", "line\rone"), "a carriage return"),
        (GOOD.replace("line one", "line\x1bone"), "an escape"),
        (GOOD + "\n", "a blank line after the signatures"),
        (GOOD + "— ", "a signature line without its newline"),
        (GOOD + "not a signature\n", "a text line among the signatures"),
        ("line one\n\n", "no signature line at all"),
        (GOOD.replace(f"{ALICE.name} ", f"{ALICE.name}+x "), "a '+' in the key name"),
        (GOOD.replace(f"{ALICE.name} ", f"{ALICE.name}  "), "two spaces"),
        ("text\n\n— name AAAAAA==\n", "a signature of 4 bytes (key ID only)"),
        ("text\n\n— name AAAAAAA\n", "base64 without its padding"),
        ("text\n\n— name AAAAAAB=\n", "base64 with stray bits"),
        ("text\n\n— name\n", "a line without a signature"),
    ],
)
def test_malformed_notes(note: str, why: str) -> None:
    with pytest.raises(MalformedNote):
        open_note(note, [ALICE.verifier])


def test_only_ascii_controls_are_refused() -> None:
    # "ASCII control characters (those below U+0020)": DEL and C1 controls are text.
    note = sign_note("del \x7f, next line \x85, 中文\n", ALICE)
    assert open_note(note, [ALICE.verifier]).text == "del \x7f, next line \x85, 中文\n"


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(MalformedNote, match="UTF-8"):
        open_note(GOOD.encode().replace(b"line one", b"line \xff"), [ALICE.verifier])
    with pytest.raises(MalformedNote):
        open_note(GOOD.replace("line one", "line \udc80"), [ALICE.verifier])


def test_signature_limit() -> None:
    other = Signature("x.example/other", bytes(4), bytes(64))
    at_limit = GOOD + other.line * (MAX_SIGNATURES - 1)
    assert open_note(at_limit, [ALICE.verifier]).signatures
    with pytest.raises(MalformedNote, match=f"more than {MAX_SIGNATURES}"):
        open_note(at_limit + other.line, [ALICE.verifier])
    # The spec asks verifiers to accept at least 16.
    assert MAX_SIGNATURES >= 16


def test_malformed_wins_over_a_bad_signature() -> None:
    forged = GOOD.replace("line one", "line 1") + "garbage\n"
    with pytest.raises(MalformedNote):
        open_note(forged, [ALICE.verifier])


# ---------------------------------------------------------------------------------------------
# Opening: known and unknown keys
# ---------------------------------------------------------------------------------------------


def test_no_known_key_is_unknown_key() -> None:
    with pytest.raises(UnknownKey, match=ALICE.name):
        open_note(GOOD, [BOB.verifier])
    with pytest.raises(UnknownKey):
        open_note(GOOD, [])


def test_a_key_sharing_only_the_name_or_only_the_id_is_ignored() -> None:
    same_name = Ed25519Signer(ALICE.name, bytes(range(2, 34)))
    assert same_name.key_id != ALICE.key_id
    with pytest.raises(UnknownKey):
        open_note(GOOD, [same_name.verifier])
    # A line that carries a known key ID under another name is someone else's line.
    renamed = GOOD.replace(f"\u2014 {ALICE.name} ", "\u2014 other.example/name ")
    with pytest.raises(UnknownKey):
        open_note(renamed, [ALICE.verifier])


def test_a_bad_signature_by_a_known_key_refuses_the_note() -> None:
    note = sign_note("text\n", ALICE, BOB)
    alice_line = sign_note("other\n", ALICE).split("\n\n")[1]
    forged = note.replace(note.split("\n\n")[1].split("\n")[0] + "\n", alice_line)
    # Bob's valid signature does not save it: every known key's line must verify.
    with pytest.raises(BadSignature) as caught:
        open_note(forged, [ALICE.verifier, BOB.verifier])
    assert (caught.value.name, caught.value.key_id) == (ALICE.name, ALICE.key_id)
    # With Alice unknown, her line is ignored and Bob's verifies.
    assert open_note(forged, [BOB.verifier]).signed_by == {(BOB.name, BOB.key_id)}


def test_an_unknown_keys_garbage_does_not_matter() -> None:
    garbage = Signature("x.example/w", b"\x00\x00\x00\x01", b"not a real signature")
    opened = open_note(GOOD + garbage.line, [ALICE.verifier])
    assert opened.unverified == (garbage,)


def test_a_repeated_line_counts_once() -> None:
    line = GOOD.split("\n\n")[1]
    opened = open_note(GOOD + line, [ALICE.verifier])
    assert len(opened.signatures) == 1


def test_two_different_known_keys_with_one_identity_are_refused() -> None:
    class Impostor:
        name = ALICE.name
        key_id = ALICE.key_id

        def verify(self, text: bytes, signature: bytes) -> bool:
            return True

    with pytest.raises(ValueError, match="two known keys"):
        open_note(GOOD, [ALICE.verifier, Impostor()])
    assert open_note(GOOD, [ALICE.verifier, ALICE.verifier]).signatures


def test_split_note_and_signature_lines() -> None:
    text, lines = split_note(GOOD)
    assert text == "line one\nline two\n"
    assert lines == parse_signature_lines(GOOD.split("\n\n")[1])
    assert lines[0].line == GOOD.split("\n\n")[1]
    with pytest.raises(MalformedNote):
        parse_signature_lines("")
