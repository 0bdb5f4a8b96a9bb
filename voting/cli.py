"""Voting commands of ``civic-ledger``: deputy keys, casting a signed ballot, and importing a
real Pabulib election through the same service code the API uses."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from pathlib import Path
from typing import Any

from ledger.settings import Settings

PABULIB_RULES = {
    "greedy": "greedy",
    "equalshares": "mes",
    "equalshares/add1": "mes-add1",
    "equalshares/add1-comparison": "mes-add1-comparison",
}
COMMANDS = ("deputy", "vote", "simulation")


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deputy = sub.add_parser("deputy", help="a deputy's Ed25519 ballot key")
    deputy_sub = deputy.add_subparsers(dest="action", required=True)
    keygen = deputy_sub.add_parser(
        "keygen", help="write a new private key (mode 0600), print the public key"
    )
    keygen.add_argument("--out", required=True, type=Path)
    register = deputy_sub.add_parser(
        "register", help="record a deputy's public key (an admin does this)"
    )
    register.add_argument("deputy_id")
    register.add_argument("public_key", help="64 hex characters, as keygen printed it")
    register.add_argument("--admin", required=True, help="the admin account id doing it")

    vote = sub.add_parser("vote", help="sign a ballot with your key and submit it")
    vote.add_argument("simulation")
    vote.add_argument("--key", required=True, type=Path)
    vote.add_argument("--voter", required=True, help="your deputy account id")
    vote.add_argument("--api", required=True, help="e.g. http://127.0.0.1:8000")
    vote.add_argument(
        "--choices",
        required=True,
        help="approval/ordinal: p1,p2,…; cumulative: p1=3,p2=2; yes/no: p1=yes,p2=no,p3=abstain",
    )

    simulation = sub.add_parser("simulation", help="budget simulations")
    sim_sub = simulation.add_subparsers(dest="action", required=True)
    imp = sim_sub.add_parser("import-pabulib", help="replay a Pabulib election as signed ballots")
    imp.add_argument("path", type=Path)
    imp.add_argument("--rule", choices=["greedy", "mes-add1", "mes-add1-comparison"])
    imp.add_argument("--json", action="store_true")


def parse_choices(text: str, ballot_type: str) -> Any:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if ballot_type in ("approval", "ordinal"):
        return parts
    pairs = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r}: write project=value")
        pairs[key.strip()] = int(value) if ballot_type == "cumulative" else value.strip()
    return pairs


def cmd_keygen(args: argparse.Namespace) -> int:
    from core.voting.ballots import public_key_hex
    from voting.ballots import generate_key, write_private_key
    from voting.errors import KeyFileError

    key = generate_key()
    try:
        write_private_key(args.out, key)
    except KeyFileError as exc:
        print(f"civic-ledger deputy keygen: {exc.message}", file=sys.stderr)
        return 2
    print(public_key_hex(key))
    return 0


def cmd_register(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.auth import Principal, Role, get_account
    from ledger.db import make_engine, make_session_factory
    from ledger.errors import CivicError
    from ledger.migrate import upgrade
    from voting import service

    if not re.fullmatch(r"[0-9a-f]{64}", args.public_key):
        print(
            "civic-ledger deputy register: the public key is 64 lowercase hex characters",
            file=sys.stderr,
        )
        return 2
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    try:
        with make_session_factory(engine).begin() as session:
            admin = get_account(session, args.admin)
            if admin is None or admin.role != Role.ADMIN.value or admin.disabled_at is not None:
                print(
                    f"civic-ledger deputy register: {args.admin!r} is not an active admin",
                    file=sys.stderr,
                )
                return 2
            service.register_key(
                session, args.deputy_id, args.public_key, principal=Principal(Role.ADMIN, admin.id)
            )
    except CivicError as exc:
        print(f"civic-ledger deputy register: {exc.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"registered the ballot key of {args.deputy_id}")
    return 0


def cmd_vote(args: argparse.Namespace) -> int:
    import httpx

    from core.voting.ballots import sign_ballot
    from voting.ballots import load_private_key
    from voting.errors import KeyFileError

    try:
        key = load_private_key(args.key)
    except KeyFileError as exc:
        print(f"civic-ledger vote: {exc.message}", file=sys.stderr)
        return 2
    base = args.api.rstrip("/") + "/api/v1"
    try:
        with httpx.Client(timeout=15) as http:
            sim = http.get(f"{base}/simulations/{args.simulation}")
            if sim.status_code != 200:
                print(f"civic-ledger vote: {sim.json().get('detail', sim.text)}", file=sys.stderr)
                return 2
            choices = parse_choices(args.choices, sim.json()["ballot_type"])
            nonce = secrets.token_hex(16)
            ballot = {
                "simulation": args.simulation,
                "voter": args.voter,
                "choices": choices,
                "nonce": nonce,
                "signature": sign_ballot(key, args.simulation, args.voter, choices, nonce),
            }
            answer = http.post(f"{base}/simulations/{args.simulation}/ballots", json=ballot)
    except (httpx.HTTPError, ValueError) as exc:
        print(f"civic-ledger vote: {exc}", file=sys.stderr)
        return 2
    if answer.status_code != 201:
        body = answer.json()
        print(
            f"civic-ledger vote: refused ({answer.status_code} {body.get('error')}): {body.get('detail')}",
            file=sys.stderr,
        )
        return 1
    print(
        f"ballot recorded: {answer.json()['record_hash']}\nreceipt: {answer.json()['receipt_url']}"
    )
    return 0


def _voter_id(raw: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.:-]", "_", raw)[:60]
    return "pb-" + cleaned


def import_pabulib(
    settings: Settings, path: Path, rule: str | None = None, *, commit_every: int = 500
) -> dict[str, Any]:
    """Create a simulation from a Pabulib file, cast every vote as a signed ballot through
    ``voting.service.cast``, close and tally; the result as ``import-pabulib`` prints it."""
    from core.voting.ballots import public_key_hex, sign_ballot
    from ledger.auth import Principal, Role
    from ledger.db import make_engine, make_session_factory
    from ledger.migrate import upgrade
    from voting import service
    from voting.ballots import generate_key
    from voting.pabulib import load_pabulib
    from voting.schemas import BallotIn, ProjectIn, SimulationIn

    instance = load_pabulib(path)
    chosen = rule or PABULIB_RULES.get(instance.rule or "")
    if chosen is None:
        raise ValueError(f"the file's rule {instance.rule!r} is not supported; pass --rule")
    ballot_type = {
        "approval": "approval",
        "choose-1": "approval",
        "cumulative": "cumulative",
        "ordinal": "ordinal",
    }.get(instance.vote_type)
    if ballot_type is None:
        raise ValueError(f"vote_type {instance.vote_type!r} is not supported")
    keys = {_voter_id(v.voter_id): generate_key() for v in instance.votes}
    data = SimulationIn(
        title=(instance.meta.get("description") or path.stem)[:200],
        ballot_type=ballot_type,  # type: ignore[arg-type]
        rule=chosen,  # type: ignore[arg-type]
        projects=[
            ProjectIn(id=p.id, name=(p.name or p.id)[:200], cost=p.cost) for p in instance.projects
        ],
        budget=instance.budget,
        min_choices=instance.min_length,
        max_choices=instance.max_length,
        max_points=instance.meta_int("max_sum_points"),
        secrecy="open",
    )
    operator = Principal(Role.STAFF, "pabulib-import")
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    try:
        with sessions.begin() as session:
            row = service.create(
                session,
                data,
                principal=operator,
                keys={v: public_key_hex(k) for v, k in keys.items()},
            )
            service.open_simulation(session, row.id, principal=operator)
            sim_id = row.id
        pending = 0
        session = sessions()
        session.begin()
        for vote in instance.votes:
            voter = _voter_id(vote.voter_id)
            choices: Any = (
                dict(vote.points) if ballot_type == "cumulative" else list(vote.approvals)
            )
            nonce = secrets.token_hex(16)
            signature = sign_ballot(keys[voter], sim_id, voter, choices, nonce)
            service.cast(
                session,
                sim_id,
                BallotIn(
                    simulation=sim_id,
                    voter=voter,
                    choices=choices,
                    nonce=nonce,
                    signature=signature,
                ),
            )
            pending += 1
            if pending >= commit_every:
                session.commit()
                session.begin()
                pending = 0
        session.commit()
        session.close()
        with sessions.begin() as session:
            service.close(session, sim_id, principal=operator)
            tallied = service.tally_simulation(session, sim_id, principal=operator)
            result = json.loads(service.get(session, sim_id).result or "{}")
    finally:
        engine.dispose()
    return {
        "simulation": sim_id,
        "selected": result["outcome"]["selected"],
        "ballots": result["ballots_counted"],
        "tally_record": tallied.record_hash,
    }


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from core.voting.errors import VotingError
    from ledger.errors import CivicError

    try:
        out = import_pabulib(settings, args.path, args.rule)
    except (CivicError, VotingError) as exc:
        print(f"civic-ledger simulation import-pabulib: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"civic-ledger simulation import-pabulib: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(
            f"simulation {out['simulation']}: {out['ballots']} ballots; selected {', '.join(out['selected'])}\n"
            f"tally record {out['tally_record']}"
        )
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "deputy":
        return cmd_keygen(args) if args.action == "keygen" else cmd_register(settings, args)
    if args.command == "vote":
        return cmd_vote(args)
    return cmd_import(settings, args)
