"""``civic-verify``: check civic-ledger receipts against the chain (PROTOCOL §5).

Exit status: 0 when the verdict is ``valid``; 1 for any other verdict (including ``redacted``);
2 when no verdict could be reached (bad usage, unreadable input, chain unreachable).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from verifier.chain import ChainReader, Web3ChainReader
from verifier.errors import ReceiptUnreadable, VerificationError
from verifier.receipt import verify_receipt_json
from verifier.verdicts import ReceiptVerification, Verdict

DEFAULT_RPC = "http://127.0.0.1:8545"
RPC_ENV = "CIVIC_CHAIN_RPC"

EXIT_VALID = 0
EXIT_NOT_VALID = 1
EXIT_NO_VERDICT = 2

ReaderFactory = Callable[[str, float], ChainReader]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="civic-verify",
        description="Independently verify civic-ledger records against the chain.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    receipt = commands.add_parser(
        "receipt",
        help="verify one receipt (PROTOCOL §5)",
        description="Verify one receipt: its record hash, inclusion proof and on-chain anchor.",
    )
    receipt.add_argument("path", metavar="PATH|-", help="receipt JSON file, or - for stdin")
    receipt.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    receipt.add_argument(
        "--min-confirmations",
        metavar="K",
        type=_count,
        default=0,
        help="require the anchoring block to have at least K confirmations",
    )
    receipt.add_argument(
        "--min-attestations",
        metavar="W",
        type=_count,
        default=0,
        help="require at least W witness attestations of the batch",
    )
    receipt.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per RPC call"
    )
    receipt.add_argument("--json", action="store_true", help="print the result as JSON")
    receipt.set_defaults(run=_run_receipt)
    # Later: `trail`, `audit`, `witness` subcommands, each with its own set_defaults(run=...).
    return parser


def _read_receipt(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        return Path(path).read_bytes()
    except OSError as exc:
        raise ReceiptUnreadable(f"cannot read receipt {path}: {exc.strerror or exc}") from exc


def _writable(text: str, stream: TextIO) -> str:
    """``text`` as the stream can encode it (a GBK console has no ✓)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        return text.encode("ascii", "replace").decode("ascii")
    return text


def format_report(result: ReceiptVerification, *, ok_mark: str = "✓", bad_mark: str = "✗") -> str:
    """The human-readable report: verdict first, then every check made, in order."""
    lines = [f"{result.verdict.value.upper()}: {result.reason}"]
    if result.record_hash is not None:
        lines.append(f"record hash: {result.record_hash}")
    for check in result.checks:
        mark = ok_mark if check.ok else bad_mark
        lines.append(f"  {mark} [{check.step}] {check.name}: {check.detail}")
    return "\n".join(lines) + "\n"


def _run_receipt(args: argparse.Namespace, reader_factory: ReaderFactory) -> int:
    text = _read_receipt(args.path)
    rpc_url = args.rpc or os.environ.get(RPC_ENV) or DEFAULT_RPC
    reader = reader_factory(rpc_url, args.timeout)
    result = verify_receipt_json(
        text,
        reader,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
    )
    out = sys.stdout
    if args.json:
        dumped = json.dumps(result.to_dict(), ensure_ascii=False, indent=2)
        if _writable(dumped, out) != dumped:  # escape rather than mangle what the console lacks
            dumped = json.dumps(result.to_dict(), ensure_ascii=True, indent=2)
        out.write(dumped + "\n")
    else:
        marks = ("✓", "✗") if _writable("✓✗", out) == "✓✗" else ("+", "x")
        out.write(_writable(format_report(result, ok_mark=marks[0], bad_mark=marks[1]), out))
    return EXIT_VALID if result.verdict is Verdict.VALID else EXIT_NOT_VALID


def main(
    argv: Sequence[str] | None = None, *, reader_factory: ReaderFactory = Web3ChainReader
) -> int:
    """Run ``civic-verify``; ``reader_factory(rpc_url, timeout)`` makes the chain reader."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_NO_VERDICT
    if args.command is None:
        parser.print_usage(sys.stderr)
        return EXIT_NO_VERDICT
    try:
        result: int = args.run(args, reader_factory)
    except VerificationError as exc:
        sys.stderr.write(_writable(f"civic-verify: {exc}\n", sys.stderr))
        return EXIT_NO_VERDICT
    return result


if __name__ == "__main__":
    sys.exit(main())
