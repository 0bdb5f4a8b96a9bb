"""``civic-verify``: check civic-ledger receipts and trails against the chain (PROTOCOL §5).

``civic-verify receipt PATH`` checks one receipt; ``civic-verify trail CODE --api URL`` fetches a
suggestion's trail from the service and checks every record, its links and its transitions.
The service is trusted for nothing but handing over the records: anchoring is read from the
chain. ``civic-verify audit --database-url URL`` is the inspectors' audit of a whole store
(``verifier.audit``), read through a read-only connection. ``civic-verify tally SIM_ID --api
URL`` checks a simulation's anchored tally, recounts it from the signed ballots when they are
shown, and with ``--my-ballot HASH`` proves that ballot is counted (``verifier.tally``).

Exit status: 0 when the verdict is ``valid``; 1 for any other verdict (including ``redacted``
and ``pending``); 2 when no verdict could be reached (bad usage, unreadable input, unknown
tracking code, service or chain unreachable). ``audit`` exits 0 only when the store is clean,
1 when there are findings, 2 when it could not audit (store or chain unreachable).

``civic-verify serve`` runs the verifier's HTTP service (``verifier.service``).
``civic-verify witness --log LOG --key KEYFILE --api URL`` follows a log's batches and attests
each root it recomputed and found on chain (``verifier.witness``); with ``--once`` it exits 0
when all is well, 3 when it refused a batch (export and chain disagree), 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote, urlsplit

import httpx

from core.verdicts import (
    ReceiptVerification,
    TrailRecordResult,
    TrailVerdict,
    TrailVerification,
    Verdict,
)
from core.workflow import CHINESE_NAMES, SuggestionState
from verifier.chain import ChainReader, Web3ChainReader
from verifier.errors import (
    ReceiptMalformed,
    ReceiptUnreadable,
    TrailUnavailable,
    UnknownTrackingCode,
    VerificationError,
)
from verifier.receipt import receipt_from_json, verify_receipt_json
from verifier.trail import verify_trail

DEFAULT_RPC = "http://127.0.0.1:8545"
RPC_ENV = "CIVIC_CHAIN_RPC"

EXIT_VALID = 0
EXIT_NOT_VALID = 1
EXIT_NO_VERDICT = 2

TRAIL_PATH = "/api/v1/suggestions/{code}/trail"

if TYPE_CHECKING:  # only the audit reads a store, and is imported when it runs
    from verifier.audit.reading import StoreFactory
    from verifier.tally import TallyVerification

ReaderFactory = Callable[[str, float], ChainReader]


@dataclass(frozen=True, slots=True)
class _Tools:
    """What a subcommand may use from outside: injected in tests."""

    reader_factory: ReaderFactory
    http_transport: httpx.BaseTransport | None = None
    store_factory: StoreFactory | None = None  # opens the store for `audit`


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
    _chain_options(receipt, timeout_help="per RPC call")
    receipt.set_defaults(run=_run_receipt)

    trail = commands.add_parser(
        "trail",
        help="verify a suggestion's whole trail (PROTOCOL §5)",
        description=(
            "Fetch a suggestion's trail from the service and verify every record's receipt "
            "against the chain, the seq and prev links, the times and every transition of the "
            "published state machine. Records left off the end cannot be seen this way."
        ),
    )
    trail.add_argument("tracking_code", metavar="TRACKING_CODE", help="e.g. SG-7K2M-9QXD-4HTB")
    trail.add_argument(
        "--api", metavar="URL", required=True, help="the service's base URL, e.g. https://host"
    )
    _chain_options(trail, timeout_help="per HTTP request and per RPC call")
    trail.set_defaults(run=_run_trail)
    _add_tally_command(commands)
    _add_serve_command(commands)
    _add_witness_command(commands)
    _add_audit_command(commands)
    return parser


def _chain_options(parser: argparse.ArgumentParser, *, timeout_help: str) -> None:
    parser.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    parser.add_argument(
        "--min-confirmations",
        metavar="K",
        type=_count,
        default=0,
        help="require the anchoring block to have at least K confirmations",
    )
    parser.add_argument(
        "--min-attestations",
        metavar="W",
        type=_count,
        default=0,
        help="require at least W witness attestations of the batch",
    )
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help=timeout_help
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


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


def _write_json(result: dict[str, Any], out: TextIO) -> None:
    dumped = json.dumps(result, ensure_ascii=False, indent=2)
    if _writable(dumped, out) != dumped:  # escape rather than mangle what the console lacks
        dumped = json.dumps(result, ensure_ascii=True, indent=2)
    out.write(dumped + "\n")


def _rpc_url(args: argparse.Namespace) -> str:
    return str(args.rpc or os.environ.get(RPC_ENV) or DEFAULT_RPC)


def _run_receipt(args: argparse.Namespace, tools: _Tools) -> int:
    text = _read_receipt(args.path)
    reader = tools.reader_factory(_rpc_url(args), args.timeout)
    result = verify_receipt_json(
        text,
        reader,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
    )
    out = sys.stdout
    if args.json:
        _write_json(result.to_dict(), out)
    else:
        marks = ("✓", "✗") if _writable("✓✗", out) == "✓✗" else ("+", "x")
        out.write(_writable(format_report(result, ok_mark=marks[0], bad_mark=marks[1]), out))
    return EXIT_VALID if result.verdict is Verdict.VALID else EXIT_NOT_VALID


def fetch_trail(
    api: str, tracking_code: str, *, timeout: float, transport: httpx.BaseTransport | None = None
) -> dict[str, Any]:
    """``GET {api}/api/v1/suggestions/{code}/trail``: ``{"tracking_code", "state", "records"}``.

    Raises UnknownTrackingCode on 404 and TrailUnavailable when there is no trail to verify.
    The answer is parsed as strictly as a receipt (no duplicate keys, no NaN).
    """
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TrailUnavailable(f"{api!r} is not an http(s) URL of the service")
    url = api.rstrip("/") + TRAIL_PATH.format(code=quote(tracking_code, safe=""))
    try:
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True) as client:
            response = client.get(url, headers={"Accept": "application/json"})
    except httpx.TimeoutException as exc:
        raise TrailUnavailable(f"no answer from {url} within {timeout:g} s ({exc})") from exc
    except httpx.HTTPError as exc:
        raise TrailUnavailable(f"cannot reach {api}: {exc}") from exc
    if response.status_code == 404:
        raise UnknownTrackingCode(f"unknown tracking code {tracking_code!r} at {api} (HTTP 404)")
    if not response.is_success:
        raise TrailUnavailable(f"{url} answered HTTP {response.status_code}, not a trail")
    try:
        answer = receipt_from_json(response.content)
    except ReceiptMalformed as exc:
        raise TrailUnavailable(f"{url} did not answer with strict JSON: {exc}") from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("records"), list):
        raise TrailUnavailable(f"{url} did not answer with a trail (no records list)")
    return answer


def _state_name(state: str | None) -> str:
    try:
        return CHINESE_NAMES[SuggestionState(state)] if state else ""
    except ValueError:
        return str(state)


def _receipt_mark(record: TrailRecordResult, marks: dict[str, str]) -> str:
    if record.status == "pending" and record.receipt_verdict is None:
        return f"{marks['pending']} pending"
    if record.receipt_verdict in (Verdict.VALID, Verdict.REDACTED):
        return f"{marks['ok']} {record.receipt_verdict}"
    return f"{marks['bad']} {record.receipt_verdict or 'not checked'}"


def _indented(text: str, indent: int) -> str:
    # Hashes stay whole, so they can be copied from the terminal.
    return textwrap.fill(
        text,
        width=100,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent + 2),
        break_long_words=False,
        break_on_hyphens=False,
    )


def format_timeline(
    result: TrailVerification,
    *,
    service_state: str | None = None,
    marks: dict[str, str] | None = None,
) -> str:
    """The trail as a timeline, one line per record, then the verdict and the state reached."""
    marks = marks or {"ok": "✓", "bad": "✗", "pending": "…", "arrow": "→"}
    arrow = marks["arrow"]
    lines = [
        f"trail of {result.tracking_code or '?'} in the {result.log!r} log, "
        f"{len(result.records)} record{'s' if len(result.records) != 1 else ''}"
    ]
    for record in result.records:
        seq = f"{record.seq if record.seq is not None else '?':>3}"
        at = record.at or "(time erased)".ljust(24)
        role = record.actor_role or "?"
        kind = record.type or "(content erased)"
        moves = ""
        if record.to_state:
            moves = f"{_state_name(record.from_state)} {arrow} {_state_name(record.to_state)}"
            moves = moves.strip()
        line = f"{seq}  {at}  {role:<8} {kind:<22} {moves}".rstrip()
        lines.append(f"{line}  {_receipt_mark(record, marks)}")
        if not record.ok:
            lines.append(_indented(f"{marks['bad']} {record.verdict}: {record.problem}", 5))
        elif record.note:
            lines.append(_indented(record.note, 7))
    lines.append(f"{result.verdict.value.upper()}: {result.reason}")
    if result.state:
        lines.append(f"state reached: {_state_name(result.state)} ({result.state})")
    if service_state is not None and result.state is not None and service_state != result.state:
        lines.append(
            f"note: the service says the suggestion is {_state_name(service_state)} "
            f"({service_state}); its records reach {result.state}"
        )
    return "\n".join(lines) + "\n"


def _run_trail(args: argparse.Namespace, tools: _Tools) -> int:
    answer = fetch_trail(
        args.api, args.tracking_code, timeout=args.timeout, transport=tools.http_transport
    )
    reader = tools.reader_factory(_rpc_url(args), args.timeout)
    result = verify_trail(
        answer["records"],
        reader,
        subject=args.tracking_code,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
    )
    service_state = answer.get("state") if isinstance(answer.get("state"), str) else None
    out = sys.stdout
    if args.json:
        _write_json({**result.to_dict(), "service_state": service_state}, out)
    else:
        marks = {"ok": "✓", "bad": "✗", "pending": "…", "arrow": "→"}
        if _writable("".join(marks.values()), out) != "".join(marks.values()):
            marks = {"ok": "+", "bad": "x", "pending": "...", "arrow": "->"}
        text = format_timeline(result, service_state=service_state, marks=marks)
        out.write(_writable(text, out))
    return EXIT_VALID if result.verdict is TrailVerdict.VALID else EXIT_NOT_VALID


# -- tally: check a simulation's anchored tally --------------------------------------------


def _record_hash(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"not a record hash (64 hex characters): {text!r}")
    return value


def _add_tally_command(commands: Any) -> None:
    tally = commands.add_parser(
        "tally",
        help="check a simulation's anchored tally (PROTOCOL §6)",
        description=(
            "Fetch a simulation's simulation.tallied record, its simulation.opened record and its "
            "ballots from the service; verify their receipts against the chain, every shown "
            "ballot's signature, the counted_root, and recount the outcome when the ballots' "
            "contents are shown (open mode after closing, or with an inspector's token). "
            "--my-ballot proves that a ballot is among the counted ones."
        ),
    )
    tally.add_argument("simulation", metavar="SIM_ID", help="e.g. SIM-7K3M9QXD")
    tally.add_argument(
        "--api", metavar="URL", required=True, help="the service's base URL, e.g. https://host"
    )
    tally.add_argument(
        "--my-ballot",
        metavar="RECORD_HASH",
        type=_record_hash,
        help="a ballot's record hash: show its place among the counted ballots",
    )
    tally.add_argument(
        "--token",
        metavar="TOKEN",
        help="bearer token of an inspector (or of the voter) to see hidden ballots",
    )
    _chain_options(tally, timeout_help="per HTTP request and per RPC call")
    tally.set_defaults(run=_run_tally)


def format_tally(result: TallyVerification, *, marks: dict[str, str] | None = None) -> str:
    """The verdict, every check in order, the notes, and the inclusion proof of --my-ballot."""
    marks = marks or {"ok": "✓", "bad": "✗"}
    lines = [f"{result.verdict.value.upper()}: {result.reason}"]
    lines.append(f"simulation: {result.simulation}, tally record {result.tally_record or '?'}")
    for check in result.checks:
        mark = marks["ok"] if check.ok else marks["bad"]
        verdict = f" ({check.verdict})" if check.verdict is not None else ""
        lines.append(_indented(f"{mark} [{check.step}] {check.name}{verdict}: {check.detail}", 2))
    for note in result.notes:
        lines.append(_indented(f"note: {note}", 0))
    proof = result.my_ballot
    if proof is not None:
        lines.append(
            f"my ballot {proof.record_hash}: leaf {proof.index} of {proof.size} under "
            f"counted_root {proof.root}; inclusion path (nearest sibling first):"
        )
        lines += [f"  {h}" for h in proof.path] or ["  (none: the only counted ballot)"]
    return "\n".join(lines) + "\n"


def _run_tally(args: argparse.Namespace, tools: _Tools) -> int:
    from verifier.tally import fetch_tally_inputs, tally_pending, verify_tally

    inputs = fetch_tally_inputs(
        args.api,
        args.simulation,
        token=args.token,
        timeout=args.timeout,
        transport=tools.http_transport,
    )
    if inputs.tally_receipt is None:
        record = str(inputs.simulation.get("tally_record"))
        result = tally_pending(args.simulation, record, f"its receipt is {inputs.tally_status}")
    else:
        result = verify_tally(
            inputs.simulation,
            inputs.tally_receipt,
            inputs.opened_receipt,
            inputs.ballots,
            tools.reader_factory(_rpc_url(args), args.timeout),
            my_ballot=args.my_ballot,
            between_receipts=inputs.between_receipts,
            min_confirmations=args.min_confirmations,
            min_attestations=args.min_attestations,
        )
    out = sys.stdout
    if args.json:
        _write_json(result.to_dict(), out)
    else:
        marks = {"ok": "✓", "bad": "✗"}
        if _writable("✓✗", out) != "✓✗":
            marks = {"ok": "+", "bad": "x"}
        out.write(_writable(format_tally(result, marks=marks), out))
    return EXIT_VALID if result.valid else EXIT_NOT_VALID


# -- serve: the verifier's HTTP service ---------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, not {value}")
    return value


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the verifier's HTTP service",
        description=(
            "Serve POST /verify/receipt, GET /verify/trail/{code} and GET /verify/batch/{log}/{n} "
            "over HTTP (OpenAPI docs at /docs). Holds no database."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default: $CIVIC_VERIFIER_PORT, else 8001)")
    serve.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    serve.add_argument(
        "--api",
        metavar="URL",
        help="the civic-ledger API (default: $CIVIC_API_URL, else http://127.0.0.1:$CIVIC_API_PORT "
        "or port 8000)",
    )
    serve.add_argument(
        "--cors",
        metavar="ORIGINS",
        help="origins allowed to call it, comma-separated (default: $CIVIC_VERIFIER_CORS, else "
        "the API's own origin on 127.0.0.1 and localhost)",
    )
    serve.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per RPC/HTTP call"
    )
    serve.add_argument(
        "--no-cache", action="store_true", help="ask the chain for every anchored root"
    )
    serve.set_defaults(run=_run_serve)


def _api_port() -> str:
    return os.environ.get("CIVIC_API_PORT", "").strip() or "8000"


def _run_serve(args: argparse.Namespace, tools: _Tools) -> int:
    import uvicorn

    from verifier.service import CORS_ENV, cors_origins_from, create_verifier_app, default_port

    api = args.api or os.environ.get("CIVIC_API_URL") or f"http://127.0.0.1:{_api_port()}"
    try:
        origins = cors_origins_from(
            args.cors or os.environ.get(CORS_ENV),
            (f"http://127.0.0.1:{_api_port()}", f"http://localhost:{_api_port()}"),
        )
    except ValueError as exc:
        sys.stderr.write(f"civic-verify: --cors / {CORS_ENV}: {exc}\n")
        return EXIT_NO_VERDICT
    try:
        port = args.port or default_port()
    except ValueError:
        sys.stderr.write("civic-verify: CIVIC_VERIFIER_PORT is not a port number\n")
        return EXIT_NO_VERDICT
    app = create_verifier_app(
        rpc_url=_rpc_url(args),
        api_url=api,
        reader_factory=tools.reader_factory,
        http_transport=tools.http_transport,
        cors_origins=origins,
        timeout=args.timeout,
        cache=not args.no_cache,
        production=os.environ.get("CIVIC_ENV", "").strip() == "production",
    )
    uvicorn.run(app, host=args.host, port=port, log_level="info")
    return EXIT_VALID


# -- witness: attest batches that check out ------------------------------------------------

EXIT_MISMATCH = 3


def _address(text: str) -> str:
    if len(text) != 42 or not text.startswith("0x"):
        raise argparse.ArgumentTypeError(f"not an address (0x + 40 hex): {text!r}")
    try:
        bytes.fromhex(text[2:])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address (0x + 40 hex): {text!r}") from None
    return text


def _add_witness_command(commands: Any) -> None:
    from core.records import LOGS

    witness = commands.add_parser(
        "witness",
        help="follow a log's batches and attest each root that checks out",
        description=(
            "Follow batches 0, 1, 2, ... of one log from the service's public export, recompute "
            "each root from its leaf hashes, compare it with the export and with the chain, and "
            "call attest() for each batch that checks out, signed with the witness key (which "
            "needs WITNESS_ROLE). A mismatch is reported loudly and never attested. Exit status "
            f"with --once: 0 when all is well, {EXIT_MISMATCH} when a batch was refused, "
            f"{EXIT_NO_VERDICT} on errors."
        ),
    )
    witness.add_argument("--log", required=True, choices=sorted(LOGS), help="which log")
    witness.add_argument(
        "--key",
        metavar="KEYFILE",
        required=True,
        help="hex private key file, or an encrypted keystore with --password-file; mode 0600",
    )
    witness.add_argument(
        "--password-file",
        metavar="FILE",
        help="the password of an encrypted keystore --key (mode 0600)",
    )
    witness.add_argument(
        "--api", metavar="URL", required=True, help="the service's base URL, e.g. https://host"
    )
    witness.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    witness.add_argument(
        "--contract",
        metavar="ADDR",
        type=_address,
        help="the AnchorRegistry to attest on (default: the one the batch export names); an "
        "export naming another is refused",
    )
    witness.add_argument("--once", action="store_true", help="one pass over the log, then exit")
    witness.add_argument(
        "--poll", metavar="SECONDS", type=_seconds, default=5.0, help="pause between passes (5)"
    )
    witness.add_argument(
        "--gas-price-wei",
        metavar="WEI",
        type=_count,
        help="fixed gas price (0 on zero-gas chains); default: the chain's",
    )
    witness.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per RPC/HTTP call"
    )
    witness.set_defaults(run=_run_witness)


def _password(path: str) -> str:
    """A keystore's password from a file only its owner may read (like the key itself)."""
    from verifier.witness import KeyFileRefused

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise KeyFileRefused(f"cannot open password file {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "r", encoding="utf-8") as fh:
        mode = os.fstat(fh.fileno()).st_mode
        if mode & 0o077:
            raise KeyFileRefused(
                f"{path} has mode {mode & 0o777:04o}: group and others must have no access to "
                f"a password (chmod 600 {path})"
            )
        return fh.read().rstrip("\n")


def _run_witness(args: argparse.Namespace, tools: _Tools) -> int:
    from verifier.witness import AttestSigner, Witness, load_witness_key, state_path_for

    key_path = Path(args.key)
    password = _password(args.password_file) if args.password_file else None
    key = load_witness_key(key_path, password)
    rpc = _rpc_url(args)
    signer = AttestSigner(rpc, key, timeout=args.timeout, gas_price_wei=args.gas_price_wei)
    witness = Witness(
        log=args.log,
        api_url=args.api,
        reader=tools.reader_factory(rpc, args.timeout),
        signer=signer,
        state_path=state_path_for(key_path, args.log),
        contract=args.contract,
        timeout=args.timeout,
        http_transport=tools.http_transport,
    )
    sys.stdout.write(f"witness: {signer.address} on log {args.log!r}\n")
    if not args.once:
        try:
            witness.follow(args.poll)
        except KeyboardInterrupt:
            return EXIT_VALID
        return EXIT_VALID  # pragma: no cover - follow() returns only when given passes
    report = witness.run_pass()
    parts = [
        f"{len(report.attested)} attested",
        f"{len(report.already)} already attested",
        f"{report.mismatches} refused",
    ]
    if report.waiting:
        parts.append(f"stopped: {report.waiting}")
    sys.stdout.write(f"witness: {', '.join(parts)}\n")
    return EXIT_MISMATCH if report.mismatches else EXIT_VALID


# -- audit: the inspectors' audit of a whole store ------------------------------------------


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of minutes: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _add_audit_command(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="audit a whole store against the chain (inspectors)",
        description=(
            "Read every record, batch and trail of a civic-ledger store through a read-only "
            "connection, recompute every batch root and compare it with the chain, and report "
            "altered, missing, inserted and reordered records, broken trails, anchored batches "
            "the store lacks and batches left unanchored. Exit status: 0 only when the store is "
            f"clean, {EXIT_NOT_VALID} when there are findings, {EXIT_NO_VERDICT} when it could "
            "not audit."
        ),
    )
    audit.add_argument(
        "--database-url",
        metavar="URL",
        required=True,
        help="sqlite:///path/to/civic.db or postgresql://user@host/db (opened read-only)",
    )
    audit.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    audit.add_argument(
        "--contract",
        metavar="ADDR",
        type=_address,
        help="the AnchorRegistry's address (default: the one the store's batches name)",
    )
    audit.add_argument(
        "--deadline-minutes",
        metavar="N",
        type=_minutes,
        default=10.0,
        help="a batch or record still unanchored after N minutes is a finding (10)",
    )
    audit.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per RPC call"
    )
    audit.add_argument(
        "--worker-stopped",
        action="store_true",
        help="no anchoring worker runs on this store (after a restore): a batch on chain that "
        "the store lacks is a finding even when it was anchored minutes ago",
    )
    audit.add_argument("--json", action="store_true", help="print the report as JSON")
    shown = audit.add_mutually_exclusive_group()
    shown.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show the progress bar on stderr even when it is not a terminal",
    )
    shown.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    audit.set_defaults(run=_run_audit)


class ProgressBar:
    """A one-line text progress bar, redrawn at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO, *, interval: float = 0.25, width: int = 30) -> None:
        self.stream = stream
        self.interval = interval
        self.width = width
        self.started = time.monotonic()
        self._drawn = float("-inf")
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn < self.interval and done < total:
            return
        self._drawn = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(self.width * fraction)
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {fraction:4.0%} {done:,}/{total:,} records, {rate:,.0f}/s")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def _display_url(url: str) -> str:
    """The database URL without its password, for the report."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _run_audit(args: argparse.Namespace, tools: _Tools) -> int:
    # Imported here: only the audit needs the store reader (and SQLAlchemy); checking a
    # receipt must work on a machine without them.
    from datetime import timedelta

    from verifier.audit import audit_store
    from verifier.audit.reading import open_store
    from verifier.audit.report import format_audit

    err = sys.stderr
    show = args.progress if args.progress is not None else err.isatty()
    bar = ProgressBar(err) if show else None
    chain = tools.reader_factory(_rpc_url(args), args.timeout)
    with (tools.store_factory or open_store)(args.database_url) as store:
        try:
            report = audit_store(
                store,
                chain,
                contract=args.contract,
                unanchored_deadline=timedelta(minutes=args.deadline_minutes),
                progress=bar,
                worker_stopped=args.worker_stopped,
            )
        finally:
            if bar is not None:
                bar.finish()
    out = sys.stdout
    if args.json:
        _write_json(report.to_dict(), out)
    else:
        out.write(_writable(format_audit(report, store=_display_url(args.database_url)), out))
    return EXIT_VALID if report.clean else EXIT_NOT_VALID


def main(
    argv: Sequence[str] | None = None,
    *,
    reader_factory: ReaderFactory = Web3ChainReader,
    http_transport: httpx.BaseTransport | None = None,
    store_factory: StoreFactory | None = None,
) -> int:
    """Run ``civic-verify``; ``reader_factory(rpc_url, timeout)`` makes the chain reader,
    ``http_transport`` (tests: ``httpx.MockTransport``) carries requests to the service, and
    ``store_factory(url)`` opens the store for ``audit`` (default: the read-only reader)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 after --help
        return exc.code if isinstance(exc.code, int) else EXIT_NO_VERDICT
    if args.command is None:
        parser.print_usage(sys.stderr)
        return EXIT_NO_VERDICT
    try:
        result: int = args.run(args, _Tools(reader_factory, http_transport, store_factory))
    except VerificationError as exc:
        sys.stderr.write(_writable(f"civic-verify: {exc}\n", sys.stderr))
        return EXIT_NO_VERDICT
    return result


if __name__ == "__main__":
    sys.exit(main())
