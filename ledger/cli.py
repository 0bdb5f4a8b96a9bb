"""``civic-ledger``: run the whole service, or one part of it.

    civic-ledger run        set up the data directory, chain, contract and database, then
                            supervise the API and the anchoring worker until Ctrl-C/SIGTERM
    civic-ledger api        the HTTP API alone
    civic-ledger worker     the anchoring worker alone
    civic-ledger migrate    bring the database schema up to date
    civic-ledger deploy     deploy AnchorRegistry and record its address
    civic-ledger users      add, list and disable accounts (tokens are shown once)
    civic-ledger redact     erase a record's content, keeping its proof (PROTOCOL §7)
    civic-ledger reanchor   after a chain reset: anchor every sealed batch again, same numbers
                            and roots, and record that in each log (ledger.reanchored)

The API runs in its own process, started by name (``api.app:create_app``), so the ledger
package never imports the HTTP layer that sits on top of it.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from ledger.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from ledger.devchain import DevChain

log = logging.getLogger("civic")


def configure_logging(name: str) -> None:
    logging.basicConfig(
        level=os.environ.get("CIVIC_LOG_LEVEL", "INFO").upper(),
        format=f"%(asctime)s {name:<10} %(levelname)-7s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin chatter is not news


def _stop_event() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def _prepare_data_dir(settings: Settings) -> Path:
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # it holds the anchoring key
    (data_dir / "logs").mkdir(exist_ok=True)
    return data_dir


def writer_socket(data_dir: Path) -> Path:
    """Where the writer process (api.writer) listens: ``data/writer.sock``, or, when that
    path is too long for a Unix socket (108 bytes on Linux), a fresh 0700 directory of this
    user's in the temporary directory."""
    path = data_dir / "writer.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="civic-writer-")) / "writer.sock"


def cmd_migrate(settings: Settings) -> int:
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    log.info("database schema is up to date (%s)", engine.url.render_as_string(hide_password=True))
    return 0


def _start_dev_chain(settings: Settings, data_dir: Path, key: bytes) -> DevChain:
    """The local ganache of ``run`` and ``reanchor``: kept in ``data/chain``, ``key`` funded."""
    from ledger.devchain import start_ganache

    return start_ganache(
        port=settings.chain_port,
        db_path=data_dir / "chain",
        funded_keys=[key],
        chain_id=settings.chain_id,
        log_path=data_dir / "logs" / "ganache.log",
    )


def _anchor_key(settings: Settings) -> bytes:
    from contracts.keys import load_key, load_or_create_key

    if settings.env == "production":
        return load_key(settings.resolved_key_file, settings.key_password)
    return load_or_create_key(settings.resolved_key_file, settings.key_password)


def ensure_contract(settings: Settings, key: bytes) -> str:
    """The AnchorRegistry address: configured, recorded at an earlier deploy, or deployed now."""
    from ledger.chain import ChainClient
    from ledger.deployment import DeploymentInfo, read_deployment, write_deployment

    client = ChainClient(
        settings.resolved_chain_rpc,
        key,
        tx_type=settings.tx_type,
        gas_price_wei=settings.gas_price_wei,
    )
    if settings.contract:
        if not client.has_code(settings.contract):
            raise SystemExit(
                f"CIVIC_CONTRACT={settings.contract} has no contract code on "
                f"{settings.resolved_chain_rpc}"
            )
        return settings.contract
    recorded = read_deployment(settings.deployment_file)
    if recorded is not None:
        if recorded.chain_id == client.chain_id and client.has_code(recorded.address):
            return recorded.address
        raise SystemExit(
            f"{settings.deployment_file} names AnchorRegistry {recorded.address} on chain "
            f"{recorded.chain_id}, but {settings.resolved_chain_rpc} (chain {client.chain_id}) has "
            "no code there: the chain was reset or is another chain. Anchored batches recorded "
            "in the store are no longer provable on it. Run `civic-ledger reanchor` to deploy a "
            "new registry and anchor every sealed batch again (same numbers and roots; the event "
            "is recorded in each log), or point CIVIC_CHAIN_RPC at the original chain."
        )
    deployment = client.deploy_registry()
    write_deployment(
        settings.deployment_file,
        DeploymentInfo(
            address=deployment.address,
            chain_id=deployment.chain_id,
            tx_hash=deployment.tx_hash,
            block_number=deployment.block_number,
            rpc=settings.resolved_chain_rpc,
        ),
    )
    log.info(
        "deployed AnchorRegistry at %s (chain %d, block %d)",
        deployment.address,
        deployment.chain_id,
        deployment.block_number,
    )
    return deployment.address


def refuse_lost_anchors(settings: Settings, contract: str) -> None:
    """Refuse to start on a chain that lost the store's anchors (a reset development chain):
    the worker could only fail, and every receipt would say ``wrong_chain`` or
    ``not_anchored``. The message names ``civic-ledger reanchor``."""
    from ledger.chain import ChainClient
    from ledger.db import make_engine, make_session_factory
    from ledger.reanchor import check_chain, expected_anchors

    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            expected = expected_anchors(session)
    finally:
        engine.dispose()
    check = check_chain(ChainClient(settings.resolved_chain_rpc), contract, expected)
    if not check.ok:
        raise SystemExit(f"civic-ledger run refused: {check.message}")


def cmd_reanchor(settings: Settings, args: argparse.Namespace) -> int:
    import json
    import socket

    from ledger.chain import ChainClient, ChainError
    from ledger.devchain import DevChainError
    from ledger.reanchor import ReanchorError, reanchor

    data_dir = _prepare_data_dir(settings)
    if settings.runs_dev_chain:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", settings.chain_port)) == 0:
                print(
                    f"civic-ledger reanchor: something answers on port {settings.chain_port}: "
                    "stop the service (civic-ledger run) first; reanchor starts the local chain "
                    "itself",
                    file=sys.stderr,
                )
                return 1
    key = _anchor_key(settings)
    engine, sessions = _session_scope(settings)
    chain = None
    try:
        if settings.runs_dev_chain:
            chain = _start_dev_chain(settings, data_dir, key)
        client = ChainClient(
            settings.resolved_chain_rpc,
            key,
            tx_type=settings.tx_type,
            gas_price_wei=settings.gas_price_wei,
        )
        result = reanchor(
            engine=engine,
            sessions=sessions,
            client=client,
            rpc=settings.resolved_chain_rpc,
            contract=settings.contract,
            deployment_file=None if settings.contract else settings.deployment_file,
            reason=args.reason,
            receipt_timeout=settings.receipt_timeout,
        )
    except (ReanchorError, ChainError, DevChainError) as exc:
        print(f"civic-ledger reanchor: {exc}", file=sys.stderr)
        return 1
    finally:
        if chain is not None:
            chain.stop()
        engine.dispose()
    if args.json:
        print(
            json.dumps(
                {
                    "old_contract": result.old_contract,
                    "old_chain_id": result.old_chain_id,
                    "new_contract": result.new_contract,
                    "chain_id": result.chain_id,
                    "deployed": result.deployed,
                    "batches": result.batches,
                    "records": result.records,
                    "reason": result.reason,
                    "seconds": round(result.seconds, 3),
                }
            )
        )
    elif not result.total:
        done = "deployed AnchorRegistry" if result.deployed else "registry"
        print(
            f"nothing to re-anchor: {done} {result.new_contract} on chain {result.chain_id} "
            "holds every batch the store sealed"
        )
    else:
        per_log = ", ".join(f"{name} {n}" for name, n in result.batches.items())
        print(
            f"re-anchored {result.total} batches ({per_log}) on AnchorRegistry "
            f"{result.new_contract} (chain {result.chain_id}"
            f"{', deployed now' if result.deployed else ''}) in {result.seconds:.1f} s\n"
            f"  before: registry {result.old_contract} on chain {result.old_chain_id}\n"
            f"  reason: {result.reason}\n"
            + "".join(
                f"  recorded in {name} as ledger.reanchored {record}\n"
                for name, record in result.records.items()
            ),
            end="",
        )
    return 0


def cmd_deploy(settings: Settings) -> int:
    _prepare_data_dir(settings)
    print(ensure_contract(settings, _anchor_key(settings)))
    return 0


def api_workers(settings: Settings) -> int:
    """CIVIC_API_WORKERS, or one API process per core (at most 4): one Python process uses
    one core at most (the GIL). Appends are safe across processes: SQLite serialises write
    transactions (BEGIN IMMEDIATE), PostgreSQL the log head's row lock. Measured with
    scripts/load on 2 cores: two processes beat one on SQLite and PostgreSQL alike."""
    return settings.api_workers or max(1, min(4, os.cpu_count() or 1))


def cmd_api(settings: Settings) -> int:
    import uvicorn

    from ledger.pii import load_or_create_pii_key

    cmd_migrate(settings)
    # Created here, once, so that several worker processes never race to create it.
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    load_or_create_pii_key(settings.resolved_pii_key_file)
    workers = api_workers(settings)
    uvicorn.run(
        # Several processes: each must die with this one (see api.app.create_worker_app).
        "api.app:create_worker_app" if workers > 1 else "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=workers,
        access_log=os.environ.get("CIVIC_ACCESS_LOG", "0") == "1",
        log_level="warning",
    )
    return 0


def cmd_worker(settings: Settings) -> int:
    from ledger.chain import ChainClient
    from ledger.db import make_engine, make_session_factory
    from ledger.deployment import contract_address
    from ledger.worker import AnchoringWorker, WorkerConfig

    contract = contract_address(settings)
    if contract is None:
        log.error("no AnchorRegistry address: set CIVIC_CONTRACT or run `civic-ledger deploy`")
        return 2
    cmd_migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    chain = ChainClient(
        settings.resolved_chain_rpc,
        _anchor_key(settings),
        tx_type=settings.tx_type,
        gas_price_wei=settings.gas_price_wei,
    )
    worker = AnchoringWorker(
        engine=engine,
        session_factory=make_session_factory(engine),
        chain=chain,
        config=WorkerConfig(
            contract=contract,
            anchor_interval=settings.anchor_interval,
            batch_max=settings.batch_max,
            receipt_timeout=settings.receipt_timeout,
        ),
    )
    worker.run(_stop_event())
    engine.dispose()
    return 0


@dataclass
class RestartPolicy:
    """When to restart a child that died: at once the first time, then after a delay that
    doubles up to ``max_delay``, so that a crash loop does not spin; never again once the
    child has kept failing for ``give_up_after`` seconds without once staying up for
    ``healthy_after`` seconds (a real fault, reported, not hidden).

    A database or chain outage makes restarted children fail at start-up (the migration
    cannot run): with these numbers the service rides out an outage of up to five minutes
    and comes back by itself.
    """

    first_delay: float = 0.5
    max_delay: float = 30.0
    healthy_after: float = 60.0
    give_up_after: float = 300.0
    failing_since: float | None = None
    last_start: float | None = None
    delay: float = 0.0

    def exited(self, now: float) -> float | None:
        """The child died at ``now``: seconds to wait before starting it again, or None to
        give up."""
        stayed_up = self.last_start is None or now - self.last_start >= self.healthy_after
        if stayed_up:
            self.failing_since, self.delay = now, 0.0
        elif self.failing_since is not None and now - self.failing_since >= self.give_up_after:
            return None
        else:
            self.delay = min(self.max_delay, max(self.first_delay, self.delay * 2))
        self.last_start = now + self.delay
        return self.delay


class Supervisor:
    """Starts the API and the worker as child processes, restarts one that dies (with
    :class:`RestartPolicy`), and stops everything on SIGTERM/SIGINT. Children die with the
    supervisor (PDEATHSIG)."""

    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, RestartPolicy] = {}

    def start(self, name: str) -> None:
        from ledger.devchain import die_with_parent

        # The verifier is started as its own program: it shares no code path with the store.
        command = {
            "verifier": [
                sys.executable,
                "-m",
                "verifier.cli",
                "serve",
                "--port",
                str(self.settings.verifier_port),
                "--rpc",
                self.env["CIVIC_CHAIN_RPC"],
                "--api",
                f"http://{self.settings.api_host}:{self.settings.api_port}",
            ],
            # It runs operations of both domains (suggestions, ballots): the top layer's CLI.
            "writer": [sys.executable, "-m", "api.cli", "writer"],
        }.get(name, [sys.executable, "-m", "ledger.cli", name])
        self.children[name] = subprocess.Popen(
            command,
            env=self.env,
            preexec_fn=die_with_parent,
        )

    def watch(self, stop: threading.Event) -> None:
        due: dict[str, float] = {}  # child name -> when to start it again
        while not stop.wait(0.5):
            now = time.monotonic()
            for name, proc in list(self.children.items()):
                if name in due:
                    if now >= due[name]:
                        del due[name]
                        self.start(name)
                    continue
                code = proc.poll()
                if code is None:
                    continue
                policy = self.restarts.setdefault(name, RestartPolicy())
                delay = policy.exited(now)
                if delay is None:
                    log.error(
                        "%s exited (code %s) and has not stayed up for %.0f s since %.0f s: "
                        "giving up",
                        name,
                        code,
                        policy.healthy_after,
                        policy.give_up_after,
                    )
                    stop.set()
                    return
                log.warning("%s exited with code %s; restarting it in %.1f s", name, code, delay)
                due[name] = now + delay

    def stop_all(self, timeout: float = 15.0) -> None:
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in self.children.items():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", name)
                proc.kill()
                proc.wait()


def cmd_run(settings: Settings) -> int:
    data_dir = _prepare_data_dir(settings)
    stop = _stop_event()
    key = _anchor_key(settings)
    cmd_migrate(settings)
    chain = None
    if settings.runs_dev_chain:
        log.info(
            "starting the local chain (ganache) on port %d, kept in %s",
            settings.chain_port,
            data_dir / "chain",
        )
        chain = _start_dev_chain(settings, data_dir, key)
    supervisor: Supervisor | None = None
    try:
        contract = ensure_contract(settings, key)
        refuse_lost_anchors(settings, contract)
        env = dict(os.environ)
        env.update(
            CIVIC_DATA_DIR=str(data_dir),
            CIVIC_CHAIN_RPC=settings.resolved_chain_rpc,
            CIVIC_CONTRACT=contract,
            CIVIC_DATABASE_URL=settings.resolved_database_url,
            CIVIC_WRITER_SOCKET=str(settings.writer_socket or writer_socket(data_dir)),
        )
        supervisor = Supervisor(settings, env)
        supervisor.start("worker")
        supervisor.start("writer")
        supervisor.start("api")
        supervisor.start("verifier")
        base = f"http://{settings.api_host}:{settings.api_port}"
        print(
            "\ncivic-ledger is running\n"
            f"  portal         {base}/   (提交建议 · 建议追踪 · 核验 · 工作台 · 政策沙盘 · 核查)\n"
            f"  API            {base}/api/v1   (OpenAPI docs: {base}/docs)\n"
            f"  health         {base}/healthz\n"
            f"  verifier       http://{settings.api_host}:{settings.verifier_port}/docs   "
            "(POST /verify/receipt, GET /verify/trail/{code})\n"
            f"  chain (RPC)    {settings.resolved_chain_rpc}\n"
            f"  AnchorRegistry {contract}\n"
            f"  data           {data_dir}\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        supervisor.watch(stop)
    finally:
        if supervisor is not None:
            supervisor.stop_all()
        if chain is not None:
            chain.stop()
        log.info("civic-ledger stopped")
    return 0


def _session_scope(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """A migrated database for a one-off command."""
    from ledger.db import make_engine, make_session_factory

    cmd_migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    return engine, make_session_factory(engine)


def cmd_users(settings: Settings, args: argparse.Namespace) -> int:
    import json

    from ledger import auth
    from ledger.errors import CivicError

    engine, sessions = _session_scope(settings)
    try:
        with sessions.begin() as session:
            if args.action == "add":
                created = auth.add_account(
                    session,
                    role=args.role,
                    name=args.name,
                    office=args.office,
                    district=args.district,
                    token_days=settings.token_days,
                )
                result = {
                    "id": created.id,
                    "role": created.role.value,
                    "token": created.token,
                    "token_expires_at": created.expires_at.isoformat(),
                }
                if args.json:
                    print(json.dumps(result))
                else:
                    print(
                        f"created {created.role.value} account {created.id}\n"
                        f"token (shown once, keep it secret): {created.token}\n"
                        f"expires {created.expires_at:%Y-%m-%d}"
                    )
            elif args.action == "list":
                rows = [
                    {
                        "id": a.id,
                        "role": a.role,
                        "name": a.name,
                        "office": a.office,
                        "district": a.district,
                        "disabled": a.disabled_at is not None,
                    }
                    for a in auth.list_accounts(session)
                ]
                if args.json:
                    print(json.dumps(rows, ensure_ascii=False))
                else:
                    for r in rows:
                        flag = " (disabled)" if r["disabled"] else ""
                        print(
                            f"{r['id']:<18} {r['role']:<9} {r['name']} {r['office'] or ''} "
                            f"{r['district'] or ''}{flag}"
                        )
            else:
                auth.disable_account(session, args.id)
                print(f"disabled {args.id}")
    except CivicError as exc:
        print(f"civic-ledger users: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def cmd_redact(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.errors import CivicError
    from ledger.redaction import redact

    engine, sessions = _session_scope(settings)
    try:
        with sessions.begin() as session:
            event = redact(session, args.record_hash, reason=args.reason, admin_id=args.admin)
    except CivicError as exc:
        print(f"civic-ledger redact: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"redacted {args.record_hash}; the redaction is record {event} in the access log")
    return 0


SIMPLE_COMMANDS = {
    "run": (cmd_run, "set up and supervise the whole service (what ./scripts/run does)"),
    "api": (cmd_api, "the HTTP API alone"),
    "worker": (cmd_worker, "the anchoring worker alone"),
    "migrate": (cmd_migrate, "bring the database schema up to date"),
    "deploy": (cmd_deploy, "deploy AnchorRegistry and record its address"),
}


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    """The parser and its sub-command table, which ``api.cli`` extends with the voting commands."""
    parser = argparse.ArgumentParser(
        prog="civic-ledger",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in SIMPLE_COMMANDS.items():
        sub.add_parser(name, help=help_text)

    users = sub.add_parser("users", help="manage accounts and their bearer tokens")
    users_sub = users.add_subparsers(dest="action", required=True)
    add = users_sub.add_parser("add", help="create an account; prints its token once")
    add.add_argument(
        "--role", required=True, choices=["deputy", "staff", "office", "inspector", "admin"]
    )
    add.add_argument("--name", required=True)
    add.add_argument("--office", help="office code (office accounts)")
    add.add_argument("--district", help="district (deputies)")
    add.add_argument("--json", action="store_true")
    listing = users_sub.add_parser("list", help="list accounts (no tokens)")
    listing.add_argument("--json", action="store_true")
    disable = users_sub.add_parser("disable", help="disable an account: its token stops working")
    disable.add_argument("id")

    redact = sub.add_parser("redact", help="erase a record's content (PROTOCOL §7), by an admin")
    redact.add_argument("record_hash")
    redact.add_argument("--reason", required=True)
    redact.add_argument("--admin", required=True, help="the admin account id doing it")

    reanchor = sub.add_parser(
        "reanchor",
        help="after a chain reset: deploy a registry and anchor every sealed batch again",
        description=(
            "Run while the service is stopped. Deploys a new AnchorRegistry (unless the recorded "
            "or configured one is there), anchors every sealed batch of every log again with the "
            "same numbers and roots, and appends a ledger.reanchored record to each log touched. "
            "Safe to run again after a failure."
        ),
    )
    reanchor.add_argument(
        "--reason",
        help="why, in the record (public: no personal data); default: what was detected",
    )
    reanchor.add_argument("--json", action="store_true")
    return parser, sub


def load_settings() -> Settings | None:
    try:
        return Settings()
    except ValueError as exc:
        print(f"civic-ledger: {exc}", file=sys.stderr)
        return None


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "users":
        return cmd_users(settings, args)
    if args.command == "redact":
        return cmd_redact(settings, args)
    if args.command == "reanchor":
        return cmd_reanchor(settings, args)
    return SIMPLE_COMMANDS[args.command][0](settings)


def main(argv: Sequence[str] | None = None) -> int:
    """The ledger's own commands (``python -m ledger.cli``); the ``civic-ledger`` console
    script is ``api.cli:main``, which adds the voting commands."""
    args = build_parser()[0].parse_args(argv)
    configure_logging(args.command)
    settings = load_settings()
    return 2 if settings is None else dispatch(args, settings)


if __name__ == "__main__":
    sys.exit(main())
