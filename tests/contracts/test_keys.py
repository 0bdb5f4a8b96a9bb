"""The anchoring key file: created private (0600), reloaded identically, optionally encrypted,
and refused when others can read it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_account import Account

from contracts.keys import KeyFileError, address_of, generate_key, load_key, load_or_create_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_run_creates_a_private_key_file_and_reloads_it(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "anchor.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert _mode(path) == 0o600
    assert path.read_text().strip() == "0x" + key.hex()
    assert load_or_create_key(path) == key
    assert os.listdir(path.parent) == ["anchor.key"]  # no temporary file left behind


def test_file_is_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "anchor.key"
        load_or_create_key(path)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_keys_are_fresh_each_time(tmp_path: Path) -> None:
    assert load_or_create_key(tmp_path / "a.key") != load_or_create_key(tmp_path / "b.key")
    assert generate_key() != generate_key()


def test_encrypted_keystore(tmp_path: Path) -> None:
    path = tmp_path / "anchor.json"
    key = load_or_create_key(path, password="correct horse")
    assert _mode(path) == 0o600
    keystore = json.loads(path.read_text())
    assert keystore["version"] == 3 and key.hex() not in path.read_text()
    assert bytes(Account.decrypt(keystore, "correct horse")) == key
    assert load_or_create_key(path, password="correct horse") == key
    with pytest.raises(KeyFileError, match="cannot decrypt"):
        load_or_create_key(path, password="wrong")
    with pytest.raises(KeyFileError, match="password is needed"):
        load_or_create_key(path)


def test_plain_key_opened_with_a_password_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "anchor.key"
    load_or_create_key(path)
    with pytest.raises(KeyFileError, match="unencrypted"):
        load_or_create_key(path, password="pw")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "anchor.key"
    key = load_or_create_key(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=f"mode {mode:04o}"):
        load_or_create_key(path)
    path.chmod(0o600)
    assert load_or_create_key(path) == key


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "anchor.key"
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="hex private key"):
        load_or_create_key(path)
    path.write_text("0x" + "00" * 32)
    with pytest.raises(KeyFileError, match="valid secp256k1"):
        load_or_create_key(path)


def test_address_of_is_the_checksum_address() -> None:
    key = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    assert address_of(key) == "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


def test_load_key_never_creates_one(tmp_path: Path) -> None:
    # Production loads with load_key: a mistyped path must stop the service, not mint an
    # account that holds no role.
    path = tmp_path / "keys" / "anchor.json"
    with pytest.raises(KeyFileError, match="does not exist"):
        load_key(path, "pw")
    assert not path.exists()
    made = load_or_create_key(path, "pw")
    assert load_key(path, "pw") == made
