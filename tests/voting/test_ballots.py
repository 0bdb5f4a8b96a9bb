"""Signed ballots (PROTOCOL §6 ``ballot.cast``): canonical message, Ed25519, key files."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from core.canonical import CanonicalizationError
from core.voting.ballots import (
    ballot_message,
    public_key_hex,
    require_ballot_signature,
    sign_ballot,
    verify_ballot_signature,
)
from core.voting.errors import BallotSignatureInvalid
from voting.ballots import generate_key, load_private_key, write_private_key
from voting.errors import KeyFileError

BALLOT: dict[str, Any] = {
    "simulation": "sim-2026-07",
    "voter": "deputy-017",
    "choices": {"p1": "yes", "p2": "abstain", "p3": "no"},
    "nonce": "5f2b1c0d9e8a7b6c5f2b1c0d9e8a7b6c",
}


def test_message_is_rfc8785_of_exactly_the_four_members() -> None:
    assert ballot_message(**BALLOT) == (
        b'{"choices":{"p1":"yes","p2":"abstain","p3":"no"},"nonce":"5f2b1c0d9e8a7b6c5f2b1c0d9e8a7b6c",'
        b'"simulation":"sim-2026-07","voter":"deputy-017"}'
    )
    assert ballot_message("s", "v", ["b", "a"], "n") == (
        b'{"choices":["b","a"],"nonce":"n","simulation":"s","voter":"v"}'
    )
    assert ballot_message("s", "代表", {"项目": 3}, "n") == (
        '{"choices":{"项目":3},"nonce":"n","simulation":"s","voter":"代表"}'.encode()
    )


def test_message_refuses_floats_and_non_strings() -> None:
    with pytest.raises(CanonicalizationError, match="floating-point"):
        ballot_message("s", "v", {"p1": 0.5}, "n")
    with pytest.raises(TypeError, match="voter must be a string"):
        ballot_message("s", 17, [], "n")  # type: ignore[arg-type]


def test_round_trip() -> None:
    key = generate_key()
    public = public_key_hex(key)
    assert len(public) == 64 and public == public.lower()
    assert public_key_hex(key.public_key()) == public
    signature = sign_ballot(key, **BALLOT)
    assert len(signature) == 128
    assert verify_ballot_signature(public, signature_hex=signature, **BALLOT)
    require_ballot_signature(public, signature_hex=signature, **BALLOT)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("simulation", "sim-2026-08"),
        ("voter", "deputy-018"),
        ("choices", {"p1": "yes", "p2": "yes", "p3": "no"}),
        ("choices", {"p1": "yes", "p2": "abstain"}),
        ("choices", ["p1"]),
        ("nonce", "5f2b1c0d9e8a7b6c5f2b1c0d9e8a7b6d"),
    ],
)
def test_any_changed_field_fails(field: str, value: Any) -> None:
    key = generate_key()
    signature = sign_ballot(key, **BALLOT)
    changed = {**BALLOT, field: value}
    assert not verify_ballot_signature(public_key_hex(key), signature_hex=signature, **changed)
    with pytest.raises(BallotSignatureInvalid, match="deputy-01"):
        require_ballot_signature(public_key_hex(key), signature_hex=signature, **changed)


def test_wrong_key_fails() -> None:
    signature = sign_ballot(generate_key(), **BALLOT)
    assert not verify_ballot_signature(
        public_key_hex(generate_key()), signature_hex=signature, **BALLOT
    )


def test_changed_signature_fails() -> None:
    key = generate_key()
    signature = sign_ballot(key, **BALLOT)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert not verify_ballot_signature(public_key_hex(key), signature_hex=flipped, **BALLOT)


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        ("zz" * 32, None),
        ("ab" * 31, None),
        ("AB" * 32, None),
        (" " + "ab" * 32, None),
        ("00" * 32, None),  # a low-order point, not the signer's key
        (None, "zz" * 64),
        (None, "ab" * 63),
        (None, "SIGNATURE"),
        (None, ""),
        (None, 1234),
        (b"\x00" * 32, None),
    ],
)
def test_malformed_hex_gives_false(public: Any, signature: Any) -> None:
    key = generate_key()
    good_signature = sign_ballot(key, **BALLOT)
    public = public_key_hex(key) if public is None else public
    signature = good_signature if signature is None else signature
    assert verify_ballot_signature(public, signature_hex=signature, **BALLOT) is False


def test_upper_case_signature_is_not_accepted() -> None:
    key = generate_key()
    signature = sign_ballot(key, **BALLOT)
    assert not verify_ballot_signature(
        public_key_hex(key), signature_hex=signature.upper(), **BALLOT
    )


def test_uncanonicalisable_ballot_gives_false() -> None:
    key = generate_key()
    signature = sign_ballot(key, **BALLOT)
    assert not verify_ballot_signature(
        public_key_hex(key), BALLOT["simulation"], BALLOT["voter"], 0.5, BALLOT["nonce"], signature
    )


def test_choices_nested_too_deep_to_walk_give_false() -> None:
    """Issue 21: ``choices`` nested 400 levels made canonicalisation raise RecursionError out
    of a function documented never to raise (a 500 for an anonymous ballot). The limit is
    lowered so that the test does not depend on what raised it (web3 sets 100000)."""
    choices: Any = ["p1"]
    for _ in range(400):
        choices = [choices]
    key = generate_key()
    signature = sign_ballot(key, **BALLOT)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        verified = verify_ballot_signature(
            public_key_hex(key),
            BALLOT["simulation"],
            BALLOT["voter"],
            choices,
            BALLOT["nonce"],
            signature,
        )
    finally:
        sys.setrecursionlimit(limit)
    assert verified is False


def test_key_file_round_trip_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deputy.key"
    key = generate_key()
    old = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        write_private_key(path, key)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(path)
    assert public_key_hex(loaded) == public_key_hex(key)


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "deputy.key"
    write_private_key(path, generate_key())
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(path, generate_key())
    assert path.read_bytes() == before
    link = tmp_path / "link.key"
    link.symlink_to(tmp_path / "elsewhere.key")
    with pytest.raises(KeyFileError, match="already exists"):
        write_private_key(link, generate_key())
    assert not (tmp_path / "elsewhere.key").exists()


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660])
def test_load_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "deputy.key"
    write_private_key(path, generate_key())
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}"):
        load_private_key(path)


def test_load_refuses_symlinks_missing_files_and_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "deputy.key"
    write_private_key(path, generate_key())
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_private_key(link)
    with pytest.raises(KeyFileError, match="cannot open"):
        load_private_key(tmp_path / "missing.key")
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"not a key")
    garbage.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PKCS #8 PEM"):
        load_private_key(garbage)
    ec = tmp_path / "ec.key"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ec.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an Ed25519 key"):
        load_private_key(ec)
