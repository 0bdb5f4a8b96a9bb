"""Secrets only from files their owner alone may read, and production settings that refuse the
development defaults (docs/SECURITY.md, "Secrets")."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from contracts.keys import KeyFileError, load_or_create_key
from contracts.secretfile import SecretFileError, read_secret_file
from ledger.checkpoints import LogKeyError, load_log_key
from ledger.pii import PiiKeyError, load_or_create_pii_key
from ledger.settings import Settings


def production(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "env": "production",
        "data_dir": tmp_path,
        "database_url": "postgresql://civic@db.internal/civic",
        "chain_rpc": "https://chain.internal:8545",
        "contract": "0x" + "ab" * 20,
        "key_file": tmp_path / "anchor.json",
        "key_password_file": tmp_path / "anchor.password",
        "pii_key_file": tmp_path / "pii.key",
        "portal_secret_file": tmp_path / "portal.secret",
        "verifier_public_url": "https://verify.example.org",
        "public_url": "https://ledger.example.org",
        "log_key_dir": tmp_path / "log-keys",
        "log_name": "ledger.example.org",
    }
    values.update(overrides)
    return values


def test_complete_production_settings_are_accepted(tmp_path: Path) -> None:
    settings = Settings(**production(tmp_path))
    assert settings.env == "production" and settings.submit_rate == 30


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"chain_rpc": None}, "CIVIC_CHAIN_RPC must name the production chain"),
        ({"contract": None}, "CIVIC_CONTRACT must name the deployed AnchorRegistry"),
        ({"database_url": None}, "CIVIC_DATABASE_URL must point at PostgreSQL"),
        (
            {"database_url": "sqlite:////srv/civic.db"},
            "CIVIC_DATABASE_URL must point at PostgreSQL",
        ),
        ({"key_file": None}, "the plain development key is refused"),
        ({"key_password_file": None}, "the plain development key is refused"),
        ({"pii_key_file": None}, "CIVIC_PII_KEY_FILE must name the personal-data key"),
        ({"log_key_dir": None}, "CIVIC_LOG_KEY_DIR must name the logs' checkpoint keys"),
        ({"log_name": "civic-ledger.localhost"}, "CIVIC_LOG_NAME must be the deployment's"),
        ({"portal_secret_file": None}, "CIVIC_PORTAL_SECRET_FILE must name the portal's secret"),
        (
            {"verifier_public_url": "http://verify.example.org"},
            "CIVIC_VERIFIER_PUBLIC_URL must be https://",
        ),
        ({"submit_rate": 0}, "CIVIC_SUBMIT_RATE=0"),
        ({"upload_rate": 0}, "CIVIC_UPLOAD_RATE=0"),
        ({"public_url": None}, "CIVIC_PUBLIC_URL must be the https:// origin"),
        ({"public_url": "http://ledger.example.org"}, "CIVIC_PUBLIC_URL must be the https://"),
    ],
)
def test_production_refuses_each_development_default(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match="production settings refused") as refused:
        Settings(**production(tmp_path, **overrides))
    assert message in str(refused.value)
    # the same values are fine outside production
    Settings(**production(tmp_path, **overrides, env="development"))


def test_production_names_every_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(env="production", data_dir=tmp_path)
    text = str(refused.value)
    for name in (
        "CIVIC_CHAIN_RPC",
        "CIVIC_CONTRACT",
        "CIVIC_DATABASE_URL",
        "CIVIC_KEY_FILE",
        "CIVIC_PII_KEY_FILE",
        "CIVIC_LOG_KEY_DIR",
        "CIVIC_PORTAL_SECRET_FILE",
        "CIVIC_PUBLIC_URL",
    ):
        assert name in text


# -- key files ------------------------------------------------------------------------------

LOOSE_MODES = [0o640, 0o604, 0o660, 0o644, 0o610]


def write(path: Path, data: bytes, mode: int) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", LOOSE_MODES)
def test_a_secret_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "secret", b"s3cret\n", mode)
    with pytest.raises(SecretFileError, match=f"mode {mode:04o}.*chmod 600"):
        read_secret_file(path, "a test secret")
    path.chmod(0o600)
    assert read_secret_file(path, "a test secret") == b"s3cret\n"


def test_a_symlinked_or_missing_secret_is_refused(tmp_path: Path) -> None:
    target = write(tmp_path / "real", b"x", 0o600)
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(SecretFileError, match="cannot open"):
        read_secret_file(link, "a test secret")
    with pytest.raises(SecretFileError, match="does not exist"):
        read_secret_file(tmp_path / "absent", "a test secret")
    with pytest.raises(SecretFileError, match="not a regular file"):
        read_secret_file(tmp_path, "a test secret")


@pytest.mark.parametrize("mode", LOOSE_MODES)
def test_the_key_password_file_is_refused_when_others_may_read_it(
    tmp_path: Path, mode: int
) -> None:
    password = write(tmp_path / "anchor.password", b"correct horse\n", mode)
    settings = Settings(env="development", data_dir=tmp_path, key_password_file=password)
    with pytest.raises(SecretFileError, match="CIVIC_KEY_PASSWORD_FILE"):
        _ = settings.key_password
    password.chmod(0o600)
    assert settings.key_password == "correct horse"


@pytest.mark.parametrize("mode", LOOSE_MODES)
def test_the_anchor_key_is_refused_when_others_may_read_it(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "anchor.key"
    key = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="group and others must have no access"):
        load_or_create_key(path)
    path.chmod(0o600)
    assert load_or_create_key(path) == key


@pytest.mark.parametrize("mode", LOOSE_MODES)
def test_the_pii_key_is_refused_when_others_may_read_it(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "pii.key"
    key = load_or_create_pii_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(mode)
    with pytest.raises(PiiKeyError, match="chmod 600"):
        load_or_create_pii_key(path)
    path.chmod(0o600)
    assert load_or_create_pii_key(path) == key


def test_the_pii_key_is_created_0600_even_under_a_loose_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_pii_key(tmp_path / "pii.key")
        load_or_create_key(tmp_path / "anchor.key")
    finally:
        os.umask(old)
    for name in ("pii.key", "anchor.key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


@pytest.mark.parametrize("mode", LOOSE_MODES)
def test_the_portal_secret_is_refused_when_others_may_read_it(tmp_path: Path, mode: int) -> None:
    from api.portal import csrf

    path = tmp_path / "portal.secret"
    secret = csrf.load_or_create_portal_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(mode)
    with pytest.raises(csrf.PortalSecretError, match="chmod 600"):
        csrf.load_or_create_portal_secret(path)
    path.chmod(0o600)
    assert csrf.load_or_create_portal_secret(path) == secret
    with pytest.raises(csrf.PortalSecretError, match="does not exist"):
        csrf.load_or_create_portal_secret(tmp_path / "absent", create=False)


def test_api_processes_starting_together_share_one_portal_secret(tmp_path: Path) -> None:
    # Several uvicorn processes create the secret at first use: none may read a
    # half-written file, and all must end up with the same secret.
    import multiprocessing

    from api.portal import csrf

    path = tmp_path / "portal.secret"
    context = multiprocessing.get_context("fork")
    with context.Pool(8) as pool:
        secrets_seen = pool.map(csrf.load_or_create_portal_secret, [path] * 64)
    assert len(set(secrets_seen)) == 1
    assert bytes.fromhex(path.read_text().strip()) == secrets_seen[0]
    assert [p.name for p in tmp_path.iterdir()] == ["portal.secret"]


# -- the logs' checkpoint keys (PROTOCOL §9) ---------------------------------------------------


def test_a_log_key_is_generated_private_in_development_and_never_in_production(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "log-keys"
    with pytest.raises(LogKeyError, match="civic-ledger log-keys"):
        load_log_key(directory, "ledger.example.org", "votes", create=False)
    made = load_log_key(directory, "ledger.example.org", "votes", create=True)
    path = directory / "votes.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and made.name == "ledger.example.org/votes"
    assert load_log_key(directory, "ledger.example.org", "votes", create=False) == made
    # A key made for another deployment name is refused, and so is a loose file.
    with pytest.raises(LogKeyError, match="not of this log's origin"):
        load_log_key(directory, "other.example.org", "votes", create=False)
    path.chmod(0o644)
    with pytest.raises(LogKeyError, match="chmod 600"):
        load_log_key(directory, "ledger.example.org", "votes", create=False)


def test_the_log_keys_command_makes_missing_keys_and_prints_the_verifier_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cli import main

    monkeypatch.setenv("CIVIC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CIVIC_LOG_NAME", "ledger.example.org")
    kept = load_log_key(tmp_path / "log-keys", "ledger.example.org", "votes", create=True)
    assert main(["log-keys", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"suggestions", "votes", "access"}
    assert printed["votes"] == kept.verifier_key  # an existing key is kept
    assert printed["access"].startswith("ledger.example.org/access+")
