"""`civic-ledger users` and `civic-ledger redact` as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ledger import auth
from ledger.db import make_engine, make_session_factory


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIVIC_DATA_DIR": str(tmp_path / "data"), "CIVIC_LOG_LEVEL": "WARNING"}
    env.pop("CIVIC_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "ledger.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_users_add_prints_a_working_token_once(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run(
        tmp_path,
        "users",
        "add",
        "--role",
        "office",
        "--name",
        "市交通局",
        "--office",
        "JT",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["role"] == "office" and created["id"].startswith("office-")
    assert created["token"].startswith("clt_")
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'civic-ledger.db'}")
    with make_session_factory(engine)() as session:
        principal = auth.authenticate(session, created["token"])
    engine.dispose()
    assert (principal.id, principal.role, principal.office) == (
        created["id"],
        auth.Role.OFFICE,
        "JT",
    )

    listing = run(tmp_path, "users", "list", "--json")
    [row] = json.loads(listing.stdout)
    assert row["id"] == created["id"] and "token" not in row
    assert created["token"] not in listing.stdout


def test_users_add_refuses_bad_input_precisely(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    cases = [
        (["--role", "office", "--name", "市交通局"], "needs --office"),
        (["--role", "deputy", "--name", "王代表"], "needs --district"),
        (["--role", "staff", "--name", " "], "name must be"),
    ]
    for args, message in cases:
        result = run(tmp_path, "users", "add", *args)
        assert result.returncode == 2 and message in result.stderr
    result = run(tmp_path, "users", "add", "--role", "king", "--name", "x")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    assert json.loads(run(tmp_path, "users", "list", "--json").stdout) == []


def test_redact_needs_an_admin_and_a_known_record(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    result = run(tmp_path, "redact", "ab" * 32, "--reason", "本人申请", "--admin", "admin-00000000")
    assert result.returncode == 2 and "not an active admin" in result.stderr
    admin = json.loads(
        run(tmp_path, "users", "add", "--role", "admin", "--name", "管理员", "--json").stdout
    )
    result = run(tmp_path, "redact", "ab" * 32, "--reason", "本人申请", "--admin", admin["id"])
    assert result.returncode == 2 and "no record has hash" in result.stderr
