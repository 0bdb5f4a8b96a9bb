"""The ledger's commands of ``civic-ledger``, and the set-up they share.

    civic-ledger worker     the anchoring worker alone
    civic-ledger migrate    bring the database schema up to date
    civic-ledger deploy     deploy AnchorRegistry and record its address
    civic-ledger users      add, list and disable accounts (tokens are shown once)
    civic-ledger redact     erase a record's content, keeping its proof (PROTOCOL §7)
    civic-ledger reanchor   after a chain reset: anchor every sealed batch again, same numbers
                            and roots, and record that in each log (ledger.reanchored)

The set-up (data directory, anchoring key, local chain, contract, migrations) is public here
for the program that runs the whole service on top of the ledger.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
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


def stop_event() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def prepare_data_dir(settings: Settings) -> Path:
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # it holds the anchoring key
    (data_dir / "logs").mkdir(exist_ok=True)
    return data_dir


def cmd_migrate(settings: Settings) -> int:
    from ledger.db import make_engine
    from ledger.migrate import upgrade

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    engine.dispose()
    log.info("database schema is up to date (%s)", engine.url.render_as_string(hide_password=True))
    return 0


def start_dev_chain(settings: Settings, data_dir: Path, key: bytes) -> DevChain:
    """The local ganache of ``run`` and ``reanchor``: kept in ``data/chain``, ``key`` funded."""
    from ledger.devchain import start_ganache

    return start_ganache(
        port=settings.chain_port,
        db_path=data_dir / "chain",
        funded_keys=[key],
        chain_id=settings.chain_id,
        log_path=data_dir / "logs" / "ganache.log",
    )


def anchor_key(settings: Settings) -> bytes:
    """The anchoring key: created at first use in development, never in production."""
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

    data_dir = prepare_data_dir(settings)
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
    key = anchor_key(settings)
    engine, sessions = _session_scope(settings)
    chain = None
    try:
        if settings.runs_dev_chain:
            chain = start_dev_chain(settings, data_dir, key)
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


def cmd_log_keys(settings: Settings, args: argparse.Namespace) -> int:
    """Make the logs' missing checkpoint keys and print every log's verifier key."""
    from core.records import LOGS
    from ledger.checkpoints import LogKeyError, load_log_key

    found = {}
    for name in sorted(LOGS):
        try:
            key = load_log_key(settings.resolved_log_key_dir, settings.log_name, name, create=True)
        except LogKeyError as exc:
            print(f"civic-ledger log-keys: {exc}", file=sys.stderr)
            return 1
        found[name] = key.verifier_key
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        for name, verifier_key in found.items():
            print(f"{name}\t{verifier_key}")
    return 0


def cmd_map_rebuild(settings: Settings, args: argparse.Namespace) -> int:
    """Write each log's map of trail heads (PROTOCOL §10) again from its entries, checking
    every batch's ``ledger.map_head`` against the replay."""
    from core.records import LOGS
    from ledger import repository as repo
    from ledger import trailmap

    engine, sessions = _session_scope(settings)
    failed = 0
    try:
        for log in sorted(LOGS) if args.log is None else [args.log]:
            try:
                with sessions.begin() as session:
                    head = repo.lock_log_head(session, log)
                    replayed = trailmap.rebuild(session, head)
                    print(f"{log}\t{replayed} map heads replayed, {head.map_trails} trails")
            except RuntimeError as exc:  # a map head the entries do not give: nothing written
                print(f"civic-ledger map rebuild: {exc}", file=sys.stderr)
                failed = 1
    finally:
        engine.dispose()
    return failed


def cmd_deploy(settings: Settings) -> int:
    prepare_data_dir(settings)
    print(ensure_contract(settings, anchor_key(settings)))
    return 0


def cmd_worker(settings: Settings) -> int:
    from ledger.chain import ChainClient
    from ledger.db import make_engine, make_session_factory
    from ledger.deployment import contract_address
    from ledger.housekeeping import Housekeeper
    from ledger.worker import AnchoringWorker, WorkerConfig

    contract = contract_address(settings)
    if contract is None:
        log.error("no AnchorRegistry address: set CIVIC_CONTRACT or run `civic-ledger deploy`")
        return 2
    cmd_migrate(settings)
    engine = make_engine(settings.resolved_database_url)
    chain = ChainClient(
        settings.resolved_chain_rpc,
        anchor_key(settings),
        tx_type=settings.tx_type,
        gas_price_wei=settings.gas_price_wei,
    )
    sessions = make_session_factory(engine)
    worker = AnchoringWorker(
        engine=engine,
        session_factory=sessions,
        chain=chain,
        config=WorkerConfig(
            contract=contract,
            anchor_interval=settings.anchor_interval,
            batch_max=settings.batch_max,
            receipt_timeout=settings.receipt_timeout,
        ),
    )
    stop = stop_event()
    # Uploads no record cites, idle rate windows: beside the anchoring, in a thread of its own.
    housekeeping = Housekeeper(
        sessions, settings.attachments_dir, settings.attachment_grace_hours * 3600
    ).start(stop)
    # Every anchored checkpoint to every witness (PROTOCOL §9), in a thread of its own too.
    pushing = None
    if settings.witness_list:
        from ledger.checkpoints import LogKeys
        from ledger.witness_pusher import WitnessPusher

        pushing = WitnessPusher(sessions, LogKeys(settings), settings.witness_list).start(stop)
    worker.run(stop)
    stop.set()
    housekeeping.join(10)
    if pushing is not None:
        pushing.join(15)
    engine.dispose()
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
    "worker": (cmd_worker, "the anchoring worker alone"),
    "migrate": (cmd_migrate, "bring the database schema up to date"),
    "deploy": (cmd_deploy, "deploy AnchorRegistry and record its address"),
}


def build_parser(
    description: str | None = __doc__,
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:  # type: ignore[type-arg]
    """The parser and its sub-command table, which the ``civic-ledger`` program extends with
    the commands of the layers above."""
    parser = argparse.ArgumentParser(
        prog="civic-ledger",
        description=description,
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

    log_keys = sub.add_parser(
        "log-keys",
        help="make the logs' checkpoint keys (those missing) and print their verifier keys",
        description=(
            "Each log's checkpoint key (PROTOCOL §9) in CIVIC_LOG_KEY_DIR (development: "
            "<data dir>/log-keys), <log>.key, mode 0600, named <CIVIC_LOG_NAME>/<log>. Existing "
            "keys are kept. Prints each log's verifier key: publish them (witnesses and "
            "citizens check checkpoints with them)."
        ),
    )
    log_keys.add_argument("--json", action="store_true")

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

    map_command = sub.add_parser("map", help="the logs' maps of trail heads (PROTOCOL §10)")
    map_sub = map_command.add_subparsers(dest="action", required=True)
    rebuild = map_sub.add_parser(
        "rebuild",
        help="write the maps again from the entries, checking every batch's map head",
        description=(
            "Run while the worker is stopped (it takes each log's head lock). Replays every "
            "log's entries batch by batch, writes its map nodes again and checks each "
            "ledger.map_head record against the replay; a map head the entries do not give is "
            "reported, naming its batch, and that log is left as it was."
        ),
    )
    rebuild.add_argument("--log", choices=["suggestions", "votes", "access"])
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
    if args.command == "log-keys":
        return cmd_log_keys(settings, args)
    if args.command == "map":
        return cmd_map_rebuild(settings, args)
    return SIMPLE_COMMANDS[args.command][0](settings)


def main(argv: Sequence[str] | None = None) -> int:
    """The ledger's own commands (``python -m ledger.cli``); the ``civic-ledger`` console
    script adds the rest of the service's."""
    args = build_parser()[0].parse_args(argv)
    configure_logging(args.command)
    settings = load_settings()
    return 2 if settings is None else dispatch(args, settings)


if __name__ == "__main__":
    sys.exit(main())
