"""``civic-verify``: check civic-ledger receipts and trails against the chain (PROTOCOL §5).

``civic-verify receipt PATH`` checks one receipt; ``civic-verify trail CODE --api URL`` fetches a
suggestion's trail from the service and checks every record, its links and its transitions,
and from the map of trail heads that it is the whole trail as of the latest anchored batch.
The service is trusted for nothing but handing over the records: anchoring is read from the
chain. ``civic-verify audit --database-url URL`` is the inspectors' audit of a whole store
(``verifier.audit``), read through a read-only connection. ``civic-verify tally SIM_ID --api
URL`` checks a simulation's anchored tally, recounts it from the signed ballots when they are
shown, and with ``--my-ballot HASH`` proves that ballot is counted (``verifier.tally``).

Exit status: 0 when the verdict is ``valid``; 1 for any other verdict (including ``redacted``
and ``pending``); 2 when no verdict could be reached (bad usage, unreadable input, unknown
tracking code, service or chain unreachable). ``audit`` exits 0 only when the store is clean,
1 when there are findings, 2 when it could not audit (store or chain unreachable).

``civic-verify receipt PATH --log-key VKEY [--witness VKEY ...] [--quorum W]`` checks a
version 2 receipt from its cosigned checkpoint instead of the chain (PROTOCOL §11,
``verifier.checkpoint``); with ``--rpc`` as well, both.

``civic-verify serve`` runs the verifier's HTTP service (``verifier.service``); with
``--log-key``, ``--witness`` and ``--quorum`` it checks receipts from their checkpoints as
``civic-verify receipt`` does (without ``--rpc``: no chain; with it: both).
``civic-verify witness serve`` is a C2SP tlog-witness that cosigns checkpoints anchored on chain
(``verifier.cosigning``); ``civic-verify witness keygen`` makes its key.
``civic-verify witness --log LOG --key KEYFILE --api URL`` follows a log's batches and attests
each root it recomputed and found on chain (``verifier.witness``); with ``--once`` it exits 0
when all is well, 3 when it refused a batch (export and chain disagree), 2 on errors.

This module is the command plumbing: the options, which check each command runs, the exit
status. What the service publishes is fetched by ``verifier.fetch``; what is printed is
``verifier.present`` (and ``verifier.audit.report`` for the audit).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from core.note import Ed25519Verifier, NoteError, parse_verifier_key
from core.verdicts import Completeness, TrailVerdict, Verdict
from verifier.chain import Web3ChainReader
from verifier.checkpoint import CheckpointTrust, trust_from_keys
from verifier.errors import ReceiptUnreadable, UsageError, VerificationError
from verifier.fetch import fetch_checkpoint, fetch_tally_inputs, fetch_trail
from verifier.monitor import check_consistency, monitor_log
from verifier.present import ProgressBar, show_receipt, show_tally, show_trail, writable, write_json
from verifier.receipt import verify_receipt_json
from verifier.trail import SUGGESTIONS_LOG, verify_completeness, verify_trail

DEFAULT_RPC = "http://127.0.0.1:8545"
RPC_ENV = "CIVIC_CHAIN_RPC"

EXIT_VALID = 0
EXIT_NOT_VALID = 1
EXIT_NO_VERDICT = 2

if TYPE_CHECKING:  # the audit (which reads a store) and the service load when they run
    from verifier.audit.reading import StoreFactory
    from verifier.chain import ReaderFactory


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
    _checkpoint_options(receipt, "the receipt's")
    receipt.set_defaults(run=_run_receipt)

    trail = commands.add_parser(
        "trail",
        help="verify a suggestion's whole trail, and that it is complete (PROTOCOL §5, §11)",
        description=(
            "Fetch a suggestion's trail from the service and verify every record's receipt "
            "against the chain (or offline, from its cosigned checkpoint, with --log-key), the "
            "seq and prev links, the times and every transition of the published state "
            "machine; then, from the map of trail heads of the latest anchored batch, that the "
            "trail shown is the whole trail (completeness: complete, truncated, head_mismatch, "
            "unknown_subject, stale, altered). Exit 0 only for a valid and complete trail."
        ),
    )
    trail.add_argument("tracking_code", metavar="TRACKING_CODE", help="e.g. SG-7K2M-9QXD-4HTB")
    trail.add_argument(
        "--api", metavar="URL", required=True, help="the service's base URL, e.g. https://host"
    )
    _chain_options(trail, timeout_help="per HTTP request and per RPC call")
    _checkpoint_options(trail, "each receipt's (and the map head's)")
    trail.set_defaults(run=_run_trail)

    monitor = commands.add_parser(
        "monitor",
        help="follow a log: recompute every anchored root, check consistency (PROTOCOL §8-§9)",
        description=(
            "Fetch every checkpoint of a log and all its entries from the service, recompute "
            "the log's tree from the records themselves, and check each checkpoint's root, the "
            "consistency proofs between consecutive checkpoints and, with --rpc, each "
            "checkpoint against batchOf on chain; replay the map of trail heads from the "
            "entries and check every ledger.map_head (PROTOCOL §10, map_head_mismatch). "
            "Reports the first problem, naming its batch."
        ),
    )
    _log_options(monitor, "every checkpoint's signature must verify under it")
    monitor.add_argument(
        "--rpc", metavar="URL", help="also check each checkpoint against batchOf on this chain"
    )
    monitor.add_argument(
        "--contract", metavar="ADDR", help="the registry (default: the one the service names)"
    )
    monitor.set_defaults(run=_run_monitor)
    _add_consistency_command(commands)
    _add_tally_command(commands)
    _add_serve_command(commands)
    _add_witness_command(commands)
    _add_audit_command(commands)
    return parser


def _log_options(parser: argparse.ArgumentParser, log_key_help: str) -> None:
    """The options of the commands that follow a log over the service's API (``monitor``,
    ``consistency``); ``_log_key`` reads ``--log-key``."""
    parser.add_argument(
        "--api", metavar="URL", required=True, help="the service's base URL, e.g. https://host"
    )
    parser.add_argument("--log", default="suggestions", help="suggestions, votes or access")
    parser.add_argument("--log-key", metavar="VKEY", help=f"the log's verifier key: {log_key_help}")
    parser.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per request"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _checkpoint_options(parser: argparse.ArgumentParser, whose: str) -> None:
    """``--log-key``, ``--witness`` and ``--quorum`` (``receipt``, ``serve``); read by
    ``_checkpoint_trust``."""
    parser.add_argument(
        "--log-key",
        metavar="VKEY",
        help=f"the log's verifier key (<origin>+<key id>+<base64>): check {whose} signed "
        "checkpoint instead of the chain (PROTOCOL §11); the chain is asked as well only when "
        "--rpc is given",
    )
    parser.add_argument(
        "--witness",
        metavar="VKEY",
        action="append",
        default=[],
        help="a trusted witness's cosignature/v1 verifier key (repeat for each witness)",
    )
    parser.add_argument(
        "--quorum",
        metavar="W",
        type=_count,
        default=None,
        help="how many of the --witness keys must have cosigned (default: 1 when witnesses are "
        "given, else 0)",
    )


def _log_key(args: argparse.Namespace) -> Ed25519Verifier | None:
    if args.log_key is None:
        return None
    try:
        return parse_verifier_key(args.log_key)
    except NoteError as exc:
        raise UsageError(f"--log-key: {exc}") from exc


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


def _rpc_url(args: argparse.Namespace) -> str:
    return str(args.rpc or os.environ.get(RPC_ENV) or DEFAULT_RPC)


def _checkpoint_trust(args: argparse.Namespace) -> CheckpointTrust | None:
    if args.log_key is None:
        if args.witness or args.quorum:
            raise UsageError("--witness and --quorum need --log-key")
        return None
    quorum = args.quorum if args.quorum is not None else min(1, len(args.witness))
    try:
        return trust_from_keys(args.log_key, args.witness, quorum)
    except ValueError as exc:  # MalformedKey is a ValueError
        raise UsageError(f"--log-key/--witness/--quorum: {exc}") from exc


def _run_receipt(args: argparse.Namespace, tools: _Tools) -> int:
    trust = _checkpoint_trust(args)
    text = _read_receipt(args.path)
    # With the log's key the chain is a second, optional check: asked only when named.
    ask_chain = trust is None or args.rpc is not None
    reader = tools.reader_factory(_rpc_url(args), args.timeout) if ask_chain else None
    result = verify_receipt_json(
        text,
        reader,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
        trust=trust,
    )
    show_receipt(result, sys.stdout, as_json=args.json)
    return EXIT_VALID if result.verdict is Verdict.VALID else EXIT_NOT_VALID


def _run_trail(args: argparse.Namespace, tools: _Tools) -> int:
    trust = _checkpoint_trust(args)
    trail = fetch_trail(
        args.api, args.tracking_code, timeout=args.timeout, transport=tools.http_transport
    )
    # With the log's key the chain is a second, optional check: asked only when named.
    ask_chain = trust is None or args.rpc is not None
    reader = tools.reader_factory(_rpc_url(args), args.timeout) if ask_chain else None
    result = verify_trail(
        trail.records,
        reader,
        subject=args.tracking_code,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
        trust=trust,
    )
    # Completeness (PROTOCOL §11): is the map's batch the latest? nextBatch on chain, else the
    # log's latest cosigned checkpoint.
    latest = None
    if reader is None and trail.map is not None:
        latest = fetch_checkpoint(
            args.api, SUGGESTIONS_LOG, timeout=args.timeout, transport=tools.http_transport
        )
    completeness = verify_completeness(
        trail.map,
        trail.records,
        reader,
        subject=args.tracking_code,
        trust=trust,
        latest_checkpoint=latest,
        min_confirmations=args.min_confirmations,
        min_attestations=args.min_attestations,
    )
    show_trail(result, trail.state, sys.stdout, as_json=args.json, completeness=completeness)
    whole = result.verdict is TrailVerdict.VALID and completeness.verdict is Completeness.COMPLETE
    return EXIT_VALID if whole else EXIT_NOT_VALID


def _run_monitor(args: argparse.Namespace, tools: _Tools) -> int:
    log_key = _log_key(args)
    reader = tools.reader_factory(args.rpc, args.timeout) if args.rpc else None
    result = monitor_log(
        args.api,
        args.log,
        log_key=log_key,
        chain=reader,
        contract=args.contract,
        timeout=args.timeout,
        transport=tools.http_transport,
    )
    if args.json:
        write_json(result.to_dict(), sys.stdout)
    else:
        where = f" (batch {result.batch})" if result.batch is not None else ""
        if result.index is not None:
            where += f" (entry {result.index})"
        lines = [
            f"log {result.log}: {result.verdict.value}{where}",
            f"  {result.batches} checkpoints, {result.entries} entries recomputed",
        ]
        if result.detail:
            lines.append(f"  {result.detail}")
        lines += [f"  note: {note}" for note in result.notes]
        sys.stdout.write(writable("\n".join(lines) + "\n", sys.stdout))
    return EXIT_VALID if result.verdict is Verdict.VALID else EXIT_NOT_VALID


def _add_consistency_command(commands: Any) -> None:
    consistency = commands.add_parser(
        "consistency",
        help="check that a log at one anchored size extends it at another (PROTOCOL §8)",
        description=(
            "Fetch the service's consistency proof between two anchored sizes of a log and the "
            "two checkpoints of those sizes, check the checkpoints' signatures with --log-key, "
            "and verify the proof between their roots (RFC 9162 §2.1.4.2). Verdict valid or "
            "inconsistent."
        ),
    )
    _log_options(consistency, "both checkpoints' signatures must verify under it")
    consistency.add_argument(
        "--from", dest="old", metavar="N", type=_count, required=True, help="the older size"
    )
    consistency.add_argument(
        "--to", dest="new", metavar="M", type=_count, required=True, help="the newer size"
    )
    consistency.set_defaults(run=_run_consistency)


def _run_consistency(args: argparse.Namespace, tools: _Tools) -> int:
    log_key = _log_key(args)
    if not 0 < args.old <= args.new:
        raise UsageError(f"need 1 <= --from <= --to; got {args.old} and {args.new}")
    result = check_consistency(
        args.api,
        args.log,
        args.old,
        args.new,
        log_key=log_key,
        timeout=args.timeout,
        transport=tools.http_transport,
    )
    if args.json:
        write_json(result.to_dict(), sys.stdout)
    else:
        lines = [f"log {result.log} {result.old} -> {result.new}: {result.verdict.value}"]
        if result.old_batch is not None:
            lines.append(
                f"  checkpoint {result.old_batch} (size {result.old}) root {result.old_root}"
            )
            lines.append(
                f"  checkpoint {result.new_batch} (size {result.new}) root {result.new_root}"
            )
        if not result.signatures_checked:
            lines.append("  note: checkpoint signatures not checked (no --log-key)")
        if result.detail:
            lines.append(f"  {result.detail}")
        sys.stdout.write(writable("\n".join(lines) + "\n", sys.stdout))
    return EXIT_VALID if result.verdict is Verdict.VALID else EXIT_NOT_VALID


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


def _run_tally(args: argparse.Namespace, tools: _Tools) -> int:
    from verifier.tally import tally_pending, verify_tally

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
    show_tally(result, sys.stdout, as_json=args.json)
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
            "over HTTP (OpenAPI docs at /docs). Holds no database. With --log-key, receipts are "
            "checked from their cosigned checkpoints (PROTOCOL §11), as civic-verify receipt "
            "--log-key does: without --rpc no chain is asked (trails and batches then answer "
            "503), with --rpc the chain is asked as well and both must pass."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port (default: $CIVIC_VERIFIER_PORT, else 8001)")
    serve.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC}; with --log-key: "
        "none unless given)",
    )
    _checkpoint_options(serve, "each receipt's")
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

    trust = _checkpoint_trust(args)
    # With the log's key the chain is a second, optional check: asked only when named.
    rpc = _rpc_url(args) if trust is None or args.rpc is not None else None
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
        rpc_url=rpc,
        api_url=api,
        reader_factory=tools.reader_factory,
        http_transport=tools.http_transport,
        cors_origins=origins,
        timeout=args.timeout,
        cache=not args.no_cache,
        production=os.environ.get("CIVIC_ENV", "").strip() == "production",
        trust=trust,
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
            "Follow batches 0, 1, 2, ... of one log from the service's public export (version "
            "2), recompute the log's root at each batch's end from the frontier of the tree "
            "before it and the batch's leaf hashes, compare it with the export and with the "
            "chain, check that the frontier gives the root anchored for the batch before, and "
            "call attest() for each batch that checks out, signed with the witness key (which "
            "needs WITNESS_ROLE). A mismatch is reported loudly and never attested. Exit status "
            f"with --once: 0 when all is well, {EXIT_MISMATCH} when a batch was refused, "
            f"{EXIT_NO_VERDICT} on errors."
        ),
    )
    witness.add_argument("--log", choices=sorted(LOGS), help="which log (required)")
    witness.add_argument(
        "--key",
        metavar="KEYFILE",
        help="hex private key file, or an encrypted keystore with --password-file; mode 0600 "
        "(required)",
    )
    witness.add_argument(
        "--password-file",
        metavar="FILE",
        help="the password of an encrypted keystore --key (mode 0600)",
    )
    witness.add_argument(
        "--api", metavar="URL", help="the service's base URL, e.g. https://host (required)"
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
    kinds = witness.add_subparsers(dest="witness_command", metavar="[serve|keygen]")
    _add_witness_serve_command(kinds)
    _add_witness_keygen_command(kinds)


DEFAULT_WITNESS_PORT = 8002


def _add_witness_serve_command(kinds: Any) -> None:
    serve = kinds.add_parser(
        "serve",
        help="cosign checkpoints over HTTP (C2SP tlog-witness)",
        description=(
            "Serve POST <prefix>/add-checkpoint as C2SP tlog-witness says (400, 403, 404, 409 "
            "with text/x.tlog.size, 422), and, beyond it, cosign a checkpoint only when an "
            "anchored batch of its log has exactly its size and root on chain (409 or 422 "
            "otherwise, 503 when the chain cannot be asked). What was cosigned per origin is "
            "kept in a SQLite state file, committed before answering."
        ),
    )
    serve.add_argument(
        "--log",
        dest="log_keys",
        metavar="VKEY",
        action="append",
        required=True,
        help="a log's verifier key, <deployment>/<log>+<key id>+<base64> (repeat per log)",
    )
    serve.add_argument(
        "--key",
        dest="witness_key",
        metavar="KEYFILE",
        required=True,
        help="the witness's cosignature/v1 signer key (civic-verify witness keygen), mode 0600",
    )
    serve.add_argument(
        "--state",
        metavar="FILE",
        help="the SQLite state file (default: KEYFILE.state.sqlite)",
    )
    serve.add_argument(
        "--rpc",
        metavar="URL",
        help=f"chain JSON-RPC endpoint (default: ${RPC_ENV}, else {DEFAULT_RPC})",
    )
    serve.add_argument(
        "--contract",
        metavar="ADDR",
        type=_address,
        required=True,
        help="the version 2 AnchorRegistry whose batchOf a checkpoint must match",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument(
        "--port", type=_port, default=DEFAULT_WITNESS_PORT, help=f"port ({DEFAULT_WITNESS_PORT})"
    )
    serve.add_argument(
        "--prefix", default="", help="the submission prefix, e.g. /witness (default: none)"
    )
    serve.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=10.0, help="per RPC call"
    )
    serve.set_defaults(run=_run_witness_serve)


def _add_witness_keygen_command(kinds: Any) -> None:
    keygen = kinds.add_parser(
        "keygen",
        help="make a witness's cosignature/v1 key",
        description=(
            "Write a new Ed25519 cosignature/v1 (type 0x04) signer key to a new file of mode "
            "0600 and print its verifier key, the one to publish."
        ),
    )
    keygen.add_argument("--name", required=True, help="the witness's name, e.g. witness.example")
    keygen.add_argument("--out", metavar="FILE", required=True, help="the key file to create")
    keygen.set_defaults(run=_run_witness_keygen)


def _run_witness_serve(args: argparse.Namespace, tools: _Tools) -> int:
    import uvicorn

    from verifier.chain import Web3ChainReader as ChainIndex
    from verifier.cosigning import (
        CheckpointWitness,
        create_witness_app,
        load_cosigner,
        log_keys_from,
    )

    key_path = Path(args.witness_key)
    cosigner = load_cosigner(key_path)
    witness = CheckpointWitness(
        cosigner=cosigner,
        log_keys=log_keys_from(args.log_keys),
        state_path=Path(args.state) if args.state else Path(f"{key_path}.state.sqlite"),
        chain=ChainIndex(_rpc_url(args), args.timeout),
        contract=args.contract,
    )
    sys.stdout.write(
        f"witness: {cosigner.verifier_key} cosigning {', '.join(sorted(witness.log_keys))}\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        create_witness_app(witness, args.prefix), host=args.host, port=args.port, log_level="info"
    )
    return EXIT_VALID


def _run_witness_keygen(args: argparse.Namespace, tools: _Tools) -> int:
    from verifier.cosigning import write_new_cosigner

    try:
        cosigner = write_new_cosigner(Path(args.out), args.name)
    except ValueError as exc:  # not a key name
        raise UsageError(f"--name: {exc}") from exc
    sys.stdout.write(cosigner.verifier_key + "\n")
    return EXIT_VALID


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

    missing = [f"--{name}" for name in ("log", "key", "api") if getattr(args, name) is None]
    if missing:
        raise UsageError(f"civic-verify witness needs {', '.join(missing)}")

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
            "connection, recompute each log's tree from its records and compare its root at "
            "every batch's end with the root anchored on chain, and report "
            "altered, missing, inserted and reordered records, broken trails, anchored batches "
            "the store lacks, batches left unanchored and map heads that do not commit to the "
            "map of trail heads the records give (map_head_mismatch). Exit status: 0 only when "
            "the store is "
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
        write_json(report.to_dict(), out)
    else:
        out.write(writable(format_audit(report, store=_display_url(args.database_url)), out))
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
        sys.stderr.write(writable(f"civic-verify: {exc}\n", sys.stderr))
        return EXIT_NO_VERDICT
    return result


if __name__ == "__main__":
    sys.exit(main())
