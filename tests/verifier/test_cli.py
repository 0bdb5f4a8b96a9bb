"""civic-verify: exit codes and output, with the chain reader injected.

The end-to-end run against a real node lives with the integration suite.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.verifier.fakes import Batch, FakeChain, suggestion_batch
from verifier.chain import ChainReader
from verifier.cli import DEFAULT_RPC, main

INDEX = 5


@pytest.fixture(scope="module")
def batch() -> Batch:
    return Batch.of(suggestion_batch(7))


@pytest.fixture
def chain(batch: Batch) -> FakeChain:
    return FakeChain().anchor(batch)


@pytest.fixture
def asked() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def factory(chain: FakeChain, asked: list[tuple[str, float]]) -> Any:
    def make(rpc_url: str, timeout: float) -> ChainReader:
        asked.append((rpc_url, timeout))
        return chain

    return make


def write(tmp_path: Path, receipt: Any, name: str = "receipt.json") -> str:
    path = tmp_path / name
    text = (
        receipt if isinstance(receipt, str) else json.dumps(receipt, ensure_ascii=False, indent=2)
    )
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_valid_receipt_exits_0_with_verdict_first(
    tmp_path: Path, batch: Batch, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, batch.receipt(INDEX))
    assert main(["receipt", path], reader_factory=factory) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("VALID: the record is leaf 5 of batch 3 of log 'suggestions'")
    assert lines[1] == f"record hash: {batch.records[INDEX].record_hash}"
    checks = lines[2:]
    assert len(checks) == 8
    assert all(line.startswith("  ✓ [") for line in checks)
    assert "✗" not in out
    assert "  ✓ [3] inclusion proof: recomputed root" in out
    assert "  ✓ [5] confirmations: 21 confirmations" in out


def test_altered_receipt_exits_1_and_marks_the_failed_check(
    tmp_path: Path, batch: Batch, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    receipt = batch.receipt(INDEX)
    receipt["record"]["body"]["title"] = "改过的标题"
    assert main(["receipt", write(tmp_path, receipt)], reader_factory=factory) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ALTERED: recomputed root ")
    assert lines[-1].startswith("  ✗ [3] inclusion proof: ")
    assert [line[2] for line in lines[2:]] == ["✓", "✓", "✗"]


@pytest.mark.parametrize(
    ("change", "options", "verdict"),
    [
        ("none", ["--min-confirmations", "22"], "unconfirmed"),
        ("none", ["--min-attestations", "3"], "unconfirmed"),
        ("batch 9", [], "not_anchored"),
        ("chain 5", [], "wrong_chain"),
        ("v 3", [], "malformed"),
        ("redacted", [], "redacted"),
    ],
)
def test_every_other_verdict_exits_1(
    change: str,
    options: list[str],
    verdict: str,
    tmp_path: Path,
    batch: Batch,
    factory: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    receipt = batch.redacted_receipt(INDEX) if change == "redacted" else batch.receipt(INDEX)
    if change == "batch 9":
        receipt["proof"]["batch"] = 9
    elif change == "chain 5":
        receipt["anchor"]["chain_id"] = 5
    elif change == "v 3":
        receipt["v"] = 3
    assert main(["receipt", write(tmp_path, receipt), *options], reader_factory=factory) == 1
    assert capsys.readouterr().out.startswith(verdict.upper() + ": ")


def test_requirements_that_are_met_exit_0(
    tmp_path: Path, batch: Batch, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, batch.receipt(INDEX))
    options = ["--min-confirmations", "21", "--min-attestations", "2"]
    assert main(["receipt", path, *options], reader_factory=factory) == 0
    assert "21 required" in capsys.readouterr().out


def test_json_output(
    tmp_path: Path, batch: Batch, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["receipt", write(tmp_path, batch.receipt(INDEX)), "--json"], reader_factory=factory)
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "valid"
    assert result["record_hash"] == batch.records[INDEX].record_hash
    assert [c["step"] for c in result["checks"]] == [1, 2, 3, 4, 4, 4, 5, 5]
    assert all(c["ok"] for c in result["checks"])

    receipt = batch.receipt(INDEX)
    receipt["proof"]["path"].reverse()
    assert main(["receipt", write(tmp_path, receipt), "--json"], reader_factory=factory) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "altered"
    assert result["checks"][-1]["ok"] is False


def test_receipt_from_stdin(
    batch: Batch, factory: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.dumps(batch.receipt(INDEX), ensure_ascii=False).encode("utf-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbf" + data)))
    assert main(["receipt", "-"], reader_factory=factory) == 0
    assert capsys.readouterr().out.startswith("VALID: ")


@pytest.mark.parametrize(
    "text",
    ["not json", '{"v": 1, "v": 1}', '{"v": NaN}', ""],
    ids=["garbage", "dup", "nan", "empty"],
)
def test_text_that_is_not_strict_json_is_malformed_not_an_error(
    text: str, tmp_path: Path, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", write(tmp_path, text)], reader_factory=factory) == 1
    assert capsys.readouterr().out.startswith("MALFORMED: ")


def test_unreadable_receipt_exits_2(
    tmp_path: Path, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["receipt", str(tmp_path / "missing.json")], reader_factory=factory) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("civic-verify: cannot read receipt ")
    assert "No such file or directory" in captured.err
    assert main(["receipt", str(tmp_path)], reader_factory=factory) == 2  # a directory


def test_unreachable_chain_exits_2(
    tmp_path: Path, batch: Batch, chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    chain.unreachable = True
    assert main(["receipt", write(tmp_path, batch.receipt(INDEX))], reader_factory=factory) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "civic-verify: cannot reach http://fake (test)\n"


def test_a_malformed_receipt_needs_no_chain(
    tmp_path: Path, chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    chain.unreachable = True
    assert main(["receipt", write(tmp_path, "[]")], reader_factory=factory) == 1
    assert capsys.readouterr().out.startswith("MALFORMED: the receipt must be a JSON object")


def test_real_reader_on_a_closed_port_exits_2(
    tmp_path: Path, batch: Batch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, batch.receipt(INDEX))
    assert main(["receipt", path, "--rpc", "http://127.0.0.1:1", "--timeout", "2"]) == 2
    assert capsys.readouterr().err.startswith("civic-verify: cannot reach http://127.0.0.1:1 ")
    assert main(["receipt", path, "--rpc", "ws://127.0.0.1:8546"]) == 2
    assert "is not an http(s) JSON-RPC endpoint" in capsys.readouterr().err


def test_console_module_runs(tmp_path: Path, batch: Batch) -> None:
    path = write(tmp_path, batch.receipt(INDEX))
    done = subprocess.run(
        [sys.executable, "-m", "verifier.cli", "receipt", path, "--rpc", "http://127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot reach" in done.stderr


def test_rpc_url_comes_from_option_then_environment_then_default(
    tmp_path: Path,
    batch: Batch,
    factory: Any,
    asked: list[tuple[str, float]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, batch.receipt(INDEX))
    monkeypatch.delenv("CIVIC_CHAIN_RPC", raising=False)
    main(["receipt", path], reader_factory=factory)
    monkeypatch.setenv("CIVIC_CHAIN_RPC", "http://node.example:8545")
    main(["receipt", path, "--timeout", "2.5"], reader_factory=factory)
    main(["receipt", path, "--rpc", "https://other.example"], reader_factory=factory)
    assert asked == [
        (DEFAULT_RPC, 10.0),
        ("http://node.example:8545", 2.5),
        ("https://other.example", 10.0),
    ]
    capsys.readouterr()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["audit-everything", "x"],
        ["trail", "x"],
        ["receipt"],
        ["receipt", "r.json", "--min-confirmations", "-1"],
        ["receipt", "r.json", "--min-attestations", "two"],
        ["receipt", "r.json", "--timeout", "0"],
        ["receipt", "r.json", "--bogus"],
    ],
    ids=[
        "nothing",
        "unknown command",
        "trail without --api",
        "no path",
        "negative K",
        "W not a number",
        "zero timeout",
        "bogus",
    ],
)
def test_usage_errors_exit_2(
    argv: list[str],
    factory: Any,
    asked: list[tuple[str, float]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(argv, reader_factory=factory) == 2
    assert "usage: civic-verify" in capsys.readouterr().err
    assert asked == []


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["receipt", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--min-confirmations K" in out
    assert "CIVIC_CHAIN_RPC" in out


def test_a_console_without_unicode_gets_plain_marks(
    tmp_path: Path, batch: Batch, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="ascii"))
    assert (
        main(["receipt", write(tmp_path, batch.redacted_receipt(INDEX))], reader_factory=factory)
        == 1
    )
    sys.stdout.flush()
    out = buffer.getvalue().decode("ascii")
    assert out.startswith("REDACTED: the record's content was erased (???? (PIPL art. 47))")
    assert "  + [1] receipt is well-formed: v1 redacted receipt" in out

    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="ascii"))
    assert (
        main(
            ["receipt", write(tmp_path, batch.redacted_receipt(INDEX)), "--json"],
            reader_factory=factory,
        )
        == 1
    )
    sys.stdout.flush()
    assert json.loads(buffer.getvalue().decode("ascii"))["verdict"] == "redacted"
