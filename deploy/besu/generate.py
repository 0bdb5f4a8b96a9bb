#!/usr/bin/env python3
"""Generate a four-validator Besu QBFT network for civic-ledger, and the witnesses' own nodes.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python deploy/besu/generate.py [--out deploy/besu/network] [--hosts IP,IP,IP,IP]
        [--data-path /var/lib/besu] [--witness-node IP[=NAME]] [--witness-address ADDR] ...
    .venv/bin/python deploy/besu/generate.py --check deploy/besu/network

Writes, into a directory that must not exist yet (keys are never overwritten):

    genesis.json               QBFT genesis: the four validators in extraData, free gas
    permissions_config.toml    local node and account allowlists
    static-nodes.json          the four validators' enode URLs
    network.json               what is public: chain id, validators, nodes, allowed accounts
    node1 … node4/             one validator each: config.toml, key (the node key, hex, mode
                               0600), address, enode, a copy of each of the three files above
                               and data/ (for the compose file)
    witness-node1 …/           with --witness-node: a witness institution's own node, which
                               follows the chain without validating; the same files
    accounts/                  anchor.json + anchor.password (and witness-N.json + .password
                               with --witnesses N): Web3 Secret Storage (v3, scrypt) keystores
                               and their passwords, all mode 0600; anchor.env for the services

A node directory is all its host needs: its files go to /besu, the database to --data-path
(/var/lib/besu, the one path besu.service lets Besu write and where the compose file mounts
the node's data/).

Choices:

* The genesis enables the hard forks up to the EVM version the contracts are compiled for
  (``contracts/build``, pinned by scripts/compile_contracts): ``london`` is Besu's
  ``londonBlock`` milestone, set to 0 with every earlier one, and nothing later. Later
  milestones would run bytecode fine, but the chain and the compiler then state one rule set.
* Free gas: ``zeroBaseFee`` and ``baseFeePerGas`` 0 (London-era genesis; without the latter
  block 0 carries a base fee of 1 gwei) and ``min-gas-price=0`` on every node. Nobody holds
  ether; transactions pay nothing (civic-ledger: ``CIVIC_GAS_PRICE_WEI=0``).
* Chain id 4409686 (0x434956, "CIV" in ASCII) unless ``--chain-id`` says otherwise: not a
  public chain's id, nor the development chains' 1337 and 31337, so a transaction signed for
  one of those cannot be replayed here, nor ours there.
* Permissioning is local (``permissions_config.toml``). Besu's on-chain permissioning was
  deprecated in 24.12 and removed in 25.6.0. Only the anchoring account and the witness
  accounts may send transactions; only the validators and the witness nodes may connect. A
  node checks the account allowlist when it accepts a transaction, not when it imports a
  block, so a validator with a looser file would let anyone's transactions into the chain:
  every node gets the same file, and ``--check`` says whether the copies still agree.
* Node keys cannot be encrypted for Besu (short of an HSM plugin): they are plain hex, 0600.
  Account keys are encrypted keystores, loaded by ``contracts.keys`` (``CIVIC_KEY_FILE`` and
  ``CIVIC_KEY_PASSWORD_FILE``) and by ``civic-verify witness --key … --password-file …``.
  ``--witnesses`` (keystores for demonstration witnesses, held by whoever runs this) is 0
  by default: a real witness makes its own key and sends only its address
  (``--witness-address``).
* Listeners: JSON-RPC over HTTP with ETH, NET and WEB3 only, and the metrics, on the node's own
  address (never 0.0.0.0); the host allowlist names localhost, 127.0.0.1, that address and any
  ``=NAME`` given with it (Besu compares the Host header exactly). Besu has one HTTP listener,
  so QBFT (validator votes), ADMIN and PERM go to a second one, JSON-RPC over WebSocket on
  127.0.0.1:8546, for the operator on the node's own host (``deploy/besu/admin_rpc.py``).
* No option is written as an empty TOML list: Besu joins a list into one comma-separated
  value, so ``[]`` becomes "", which options such as ``rpc-http-cors-origins`` refuse at
  start-up. CORS stays at Besu's default (none): no browser calls these nodes.

The QBFT ``extraData`` is RLP([32-byte vanity, [validator addresses], vote, round, seals]);
in the genesis the vote is an empty list, the round 0 and there are no seals.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make the project importable
    sys.path.insert(0, str(REPO))

import rlp  # noqa: E402  (web3's own dependency)
from eth_keys.datatypes import PrivateKey  # noqa: E402

from contracts import load_artifact  # noqa: E402
from contracts.keys import address_of, generate_key, load_or_create_key  # noqa: E402

VALIDATORS = 4
DEFAULT_OUT = Path(__file__).resolve().parent / "network"  # ignored by deploy/besu/.gitignore
DEFAULT_HOSTS = [f"172.28.0.{11 + i}" for i in range(VALIDATORS)]  # docker-compose.yml's subnet
DEFAULT_CHAIN_ID = 0x434956  # 4409686, "CIV": see the module doc
CONFIG_ROOT = "/besu"  # where each node finds its files (the compose file mounts them there)
DATA_PATH = "/var/lib/besu"  # besu.service's ReadWritePaths; the compose file mounts data/ there
OPERATOR_WS_PORT = 8546  # the loopback WebSocket listener with QBFT, ADMIN and PERM
METRICS_PORT = 9545
PUBLIC_APIS = ["ETH", "NET", "WEB3"]
OPERATOR_APIS = ["QBFT", "ADMIN", "PERM"]
#: The files every node must have byte for byte the same (``--check``).
SHARED_FILES = ("genesis.json", "permissions_config.toml", "static-nodes.json")
# The BFT mix hash Besu requires in IBFT 2.0 and QBFT genesis files.
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"
# A DNS label: letters, digits and inner hyphens; a host name is labels joined by dots.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")

# Besu's milestone names, in activation order. Every fork up to the contracts' EVM version is
# enabled at genesis (block 0, or time 0 for the timestamp-scheduled ones), none after it.
MILESTONES = [
    "homesteadBlock",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "berlinBlock",
    "londonBlock",
    "shanghaiTime",
    "cancunTime",
]
# solc's evmVersion → the Besu milestone that introduces that EVM. (solc's "paris" has no QBFT
# milestone of its own: Besu ties it to the Merge, which a QBFT network never has.)
EVM_MILESTONE = {
    "istanbul": "istanbulBlock",
    "berlin": "berlinBlock",
    "london": "londonBlock",
    "shanghai": "shanghaiTime",
    "cancun": "cancunTime",
}


class GenerateError(Exception):
    """The network cannot be generated as asked (or a generated one is inconsistent)."""


@dataclass(frozen=True)
class Host:
    """Where a node runs: ``address`` (IPv4) goes into its enode URL and its listeners bind to
    it; ``names`` are further host names its JSON-RPC answers to."""

    address: str
    names: tuple[str, ...] = ()


def parse_host(spec: str) -> Host:
    """``IP`` or ``IP=NAME``: the node's IPv4 address, and a host name its RPC answers to."""
    address, *names = (part.strip() for part in spec.split("="))
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise GenerateError(
            f"{spec!r}: give a node's IPv4 address, optionally =NAME (a host name its RPC "
            "also answers to)"
        ) from None
    if len(names) > 1 or not all(_HOST_NAME.fullmatch(n) for n in names):
        raise GenerateError(f"{spec!r}: after the address, one host name (IP=NAME)")
    return Host(address, tuple(names))


def milestones_for(evm_version: str) -> dict[str, int]:
    """The genesis ``config`` milestones that run exactly ``evm_version``'s rules."""
    if evm_version not in EVM_MILESTONE:
        raise GenerateError(
            f"the contracts are compiled for EVM {evm_version!r}; a Besu QBFT genesis can "
            f"match one of {', '.join(EVM_MILESTONE)}: set evmVersion in scripts/compile_contracts"
        )
    last = EVM_MILESTONE[evm_version]
    result: dict[str, int] = {}
    for name in MILESTONES:
        result[name] = 0
        if name == last:
            return result
    raise AssertionError("unreachable: every EVM_MILESTONE value is in MILESTONES")


def qbft_extra_data(validators: list[bytes]) -> str:
    """RLP([vanity (32 zero bytes), [validators], vote (none: empty list), round 0, no seals])."""
    if any(len(v) != 20 for v in validators):
        raise GenerateError("validator addresses are 20 bytes")
    encoded: bytes = rlp.encode([bytes(32), list(validators), [], 0, []])
    return "0x" + encoded.hex()


def _write_secret(path: Path, content: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (O_EXCL: never overwrite a secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())


def _write_public(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _toml_list(option: str, values: list[str]) -> str:
    """``option=[…]``, refusing an empty list or item: Besu joins a TOML array into one
    comma-separated value, and an empty one fails at start-up (or means something else)."""
    if not values or not all(v.strip() for v in values):
        raise GenerateError(f"{option}: Besu cannot take an empty list or an empty item")
    return f"{option}=[" + ", ".join(json.dumps(v) for v in values) + "]"


def _account(directory: Path, name: str) -> str:
    """A fresh key as ``name``.json (v3 keystore) with ``name``.password; returns its address."""
    password = secrets.token_urlsafe(32)
    password_file = directory / f"{name}.password"
    _write_secret(password_file, (password + "\n").encode())
    # contracts.keys writes the keystore itself (0600, O_EXCL, fsynced): the very loader the
    # service uses in production reads it back.
    key = load_or_create_key(directory / f"{name}.json", password)
    return address_of(key)


@dataclass(frozen=True)
class _Node:
    name: str  # node1 … node4, witness-node1 …
    role: str
    host: Host
    key: bytes
    enode: str


def _node_config(
    node: _Node, *, rpc_port: int, p2p_port: int, bootnodes: list[str], data_path: str
) -> str:
    root, host = CONFIG_ROOT, node.host.address
    allowed_hosts = ["localhost", "127.0.0.1", host, *node.host.names]
    return f"""# Besu node configuration (generated by deploy/besu/generate.py): {node.name}, {node.role}.
# Files are where the node sees them: {root} (the compose file mounts them there; on a host,
# install them there) and the database in {data_path}.
genesis-file="{root}/genesis.json"
data-path="{data_path}"
node-private-key-file="{root}/key"
sync-mode="FULL"

# peer-to-peer: this node's address as the other nodes' allowlists name it
p2p-host="{host}"
p2p-interface="0.0.0.0"
p2p-port={p2p_port}
static-nodes-file="{root}/static-nodes.json"
{_toml_list("bootnodes", bootnodes)}

# local permissioning: permissions_config.toml is byte for byte the same on every node
permissions-nodes-config-file-enabled=true
permissions-nodes-config-file="{root}/permissions_config.toml"
permissions-accounts-config-file-enabled=true
permissions-accounts-config-file="{root}/permissions_config.toml"

# free gas (genesis has zeroBaseFee); revert reasons for civic-ledger's error mapping
min-gas-price=0
revert-reason-enabled=true

# JSON-RPC for civic-ledger, the verifier and the witnesses, on this node's private address
# only: ETH, NET and WEB3, nothing that votes, administers or edits allowlists. Besu compares
# the Host header exactly with host-allowlist. (No rpc-http-cors-origins: Besu's default is
# none, and an empty list would stop the node at start-up.)
rpc-http-enabled=true
rpc-http-host="{host}"
rpc-http-port={rpc_port}
{_toml_list("rpc-http-api", PUBLIC_APIS)}
{_toml_list("host-allowlist", allowed_hosts)}

# The operator's listener, on the loopback interface only: QBFT (validator votes), ADMIN
# (peers) and PERM (reloading the allowlists). deploy/besu/admin_rpc.py speaks to it.
rpc-ws-enabled=true
rpc-ws-host="127.0.0.1"
rpc-ws-port={OPERATOR_WS_PORT}
{_toml_list("rpc-ws-api", OPERATOR_APIS)}

metrics-enabled=true
metrics-host="{host}"
metrics-port={METRICS_PORT}
logging="INFO"
"""


def _service_env(key: Path, password: Path, rpc: str, chain_id: int) -> str:
    return (
        "# civic-ledger settings for this account on the generated Besu network\n"
        f"CIVIC_CHAIN_RPC={rpc}\n"
        f"CIVIC_KEY_FILE={key}\n"
        f"CIVIC_KEY_PASSWORD_FILE={password}\n"
        "CIVIC_TX_TYPE=auto\n"
        "CIVIC_GAS_PRICE_WEI=0\n"
        f"# chain id {chain_id}\n"
    )


def check_network(out: Path) -> dict[str, str]:
    """Check that every node directory under ``out`` holds exactly the network's shared files
    (:data:`SHARED_FILES`); return their SHA-256 digests, to compare on every host."""
    node_dirs = sorted(p.parent for p in out.glob("*/config.toml"))
    if len(node_dirs) < VALIDATORS:
        raise GenerateError(f"{out}: not a generated network (fewer than {VALIDATORS} nodes)")
    digests: dict[str, str] = {}
    differing: list[str] = []
    for name in SHARED_FILES:
        expected = (out / name).read_bytes()
        digests[name] = hashlib.sha256(expected).hexdigest()
        for node_dir in node_dirs:
            copy = node_dir / name
            if not copy.is_file() or copy.read_bytes() != expected:
                differing.append(f"{node_dir.name}/{name}")
    if differing:
        raise GenerateError(
            "these differ from the network's own file (every node must have the same): "
            + ", ".join(differing)
        )
    return digests


def generate(
    out: Path,
    *,
    chain_id: int = DEFAULT_CHAIN_ID,
    hosts: list[str] | None = None,
    p2p_port: int = 30303,
    rpc_port: int = 8545,
    block_period: int = 2,
    epoch_length: int = 30000,
    request_timeout: int = 4,
    witnesses: int = 0,
    witness_addresses: list[str] | None = None,
    witness_nodes: list[str] | None = None,
    anchor_address: str | None = None,
    data_path: str = DATA_PATH,
) -> dict[str, object]:
    """Write the network into ``out`` (which must not exist); return what network.json holds.

    ``hosts`` are the validators' and ``witness_nodes`` the witness nodes' ``IP`` or
    ``IP=NAME`` (see :func:`parse_host`).
    """
    validator_hosts = [parse_host(h) for h in (hosts or DEFAULT_HOSTS)]
    if len(validator_hosts) != VALIDATORS:
        raise GenerateError(f"give exactly {VALIDATORS} hosts, one per validator")
    witness_hosts = [parse_host(h) for h in (witness_nodes or [])]
    addresses = [h.address for h in validator_hosts + witness_hosts]
    if len(set(addresses)) != len(addresses):
        raise GenerateError("every node needs an address of its own")
    for address in [*(witness_addresses or []), *([anchor_address] if anchor_address else [])]:
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise GenerateError(f"not an address: {address!r}")
    if block_period < 1 or request_timeout <= block_period or epoch_length < 1:
        raise GenerateError("need blockperiod >= 1 s, a request timeout above it, epoch >= 1")
    if witnesses < 0:
        raise GenerateError("--witnesses cannot be negative")
    if chain_id < 1:
        raise GenerateError("the chain id is a positive number")
    if not data_path.startswith("/"):
        raise GenerateError("--data-path is an absolute path (as the node sees it)")
    evm_version = load_artifact("AnchorRegistry").evm_version
    milestones = milestones_for(evm_version)

    out = out.resolve()
    if out.exists():
        raise GenerateError(f"{out} exists: refusing to overwrite a network (and its keys)")
    out.mkdir(parents=True, mode=0o700)
    os.chmod(out, 0o700)

    # -- nodes: keys, addresses, enode URLs (validators first: their addresses go in extraData)
    roles = [(f"node{i + 1}", "a QBFT validator", h) for i, h in enumerate(validator_hosts)]
    roles += [
        (f"witness-node{i + 1}", "a witness's own node (follows the chain, does not validate)", h)
        for i, h in enumerate(witness_hosts)
    ]
    nodes: list[_Node] = []
    for name, role, host in roles:
        key = generate_key()
        public = PrivateKey(key).public_key
        enode = f"enode://{public.to_bytes().hex()}@{host.address}:{p2p_port}"
        nodes.append(_Node(name, role, host, key, enode))
    validator_nodes = nodes[:VALIDATORS]
    validators = [PrivateKey(n.key).public_key.to_canonical_address() for n in validator_nodes]
    validator_enodes = [n.enode for n in validator_nodes]

    # -- accounts that may send transactions
    accounts_dir = out / "accounts"
    accounts_dir.mkdir(mode=0o700)
    rpc = f"http://{validator_hosts[0].address}:{rpc_port}"
    allowed: dict[str, str] = {}
    if anchor_address is None:
        allowed["anchor"] = _account(accounts_dir, "anchor")
        _write_public(
            accounts_dir / "anchor.env",
            _service_env(
                accounts_dir / "anchor.json", accounts_dir / "anchor.password", rpc, chain_id
            ),
        )
    else:
        allowed["anchor"] = anchor_address
    for n in range(1, witnesses + 1):
        allowed[f"witness-{n}"] = _account(accounts_dir, f"witness-{n}")
    for n, address in enumerate(witness_addresses or [], start=witnesses + 1):
        allowed[f"witness-{n}"] = address

    config: dict[str, object] = {"chainId": chain_id, **milestones}
    london = "londonBlock" in milestones
    if london:
        config["zeroBaseFee"] = True
    config["qbft"] = {
        "blockperiodseconds": block_period,
        "epochlength": epoch_length,
        "requesttimeoutseconds": request_timeout,
    }
    genesis: dict[str, object] = {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(int(time.time())),
        "gasLimit": "0x1fffffffffffff",
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "alloc": {},
        "extraData": qbft_extra_data(validators),
    }
    if london:
        genesis["baseFeePerGas"] = "0x0"  # zeroBaseFee alone leaves block 0 at 1 gwei
    shared = {
        "genesis.json": json.dumps(genesis, indent=2) + "\n",
        "static-nodes.json": json.dumps(validator_enodes, indent=2) + "\n",
        "permissions_config.toml": (
            "# Local permissioning (deploy/besu/generate.py). Every node must have this file\n"
            "# byte for byte: a node checks the accounts when it accepts a transaction, not when\n"
            "# it imports a block, so one looser copy lets anyone's transactions in.\n"
            "# Accounts that may send transactions: the anchoring account and the witnesses.\n"
            + _toml_list("accounts-allowlist", sorted(allowed.values(), key=str.lower))
            + "\n# Nodes that may connect: the validators and the witnesses' own nodes.\n"
            + _toml_list("nodes-allowlist", [n.enode for n in nodes])
            + "\n"
        ),
    }
    for name, text in shared.items():
        _write_public(out / name, text)

    for node in nodes:
        node_dir = out / node.name
        node_dir.mkdir(mode=0o700)
        (node_dir / "data").mkdir(mode=0o700)
        _write_secret(node_dir / "key", f"0x{node.key.hex()}".encode())
        node_address = PrivateKey(node.key).public_key.to_canonical_address()
        _write_public(node_dir / "address", "0x" + node_address.hex() + "\n")
        _write_public(node_dir / "enode", node.enode + "\n")
        for name, text in shared.items():
            _write_public(node_dir / name, text)
        bootnodes = [e for e in validator_enodes if e != node.enode]
        _write_public(
            node_dir / "config.toml",
            _node_config(
                node,
                rpc_port=rpc_port,
                p2p_port=p2p_port,
                bootnodes=bootnodes,
                data_path=data_path,
            ),
        )
    digests = check_network(out)

    summary: dict[str, object] = {
        "chain_id": chain_id,
        "evm_version": evm_version,
        "milestone": EVM_MILESTONE[evm_version],
        "validators": ["0x" + v.hex() for v in validators],
        "enodes": validator_enodes,
        "witness_nodes": {n.name: n.enode for n in nodes[VALIDATORS:]},
        "rpc": rpc,
        "accounts": allowed,
        "sha256": digests,
    }
    _write_public(out / "network.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a four-validator Besu QBFT network for civic-ledger."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"(default {DEFAULT_OUT})")
    parser.add_argument(
        "--check",
        type=Path,
        metavar="DIR",
        help="generate nothing: check that every node of the network in DIR has the same "
        "genesis, allowlists and static nodes, and print their SHA-256",
    )
    parser.add_argument(
        "--chain-id", type=int, default=DEFAULT_CHAIN_ID, help=f"(default {DEFAULT_CHAIN_ID})"
    )
    parser.add_argument(
        "--hosts",
        default=",".join(DEFAULT_HOSTS),
        help="the four validators' IPv4 addresses, comma-separated, each optionally =NAME "
        "(a host name its RPC also answers to); default: the compose file's subnet",
    )
    parser.add_argument(
        "--witness-node",
        action="append",
        default=[],
        metavar="IP[=NAME]",
        help="generate a witness institution's own (non-validator) node at this address "
        "(repeatable)",
    )
    parser.add_argument("--p2p-port", type=int, default=30303)
    parser.add_argument("--rpc-port", type=int, default=8545)
    parser.add_argument("--block-period", type=int, default=2, help="seconds (default 2)")
    parser.add_argument("--epoch-length", type=int, default=30000)
    parser.add_argument("--request-timeout", type=int, default=4, help="seconds (default 4)")
    parser.add_argument(
        "--witnesses",
        type=int,
        default=0,
        help="demonstration witness keystores to generate (default 0: real witnesses make "
        "their own keys and send --witness-address)",
    )
    parser.add_argument(
        "--witness-address",
        action="append",
        default=[],
        metavar="ADDR",
        help="a witness institution's own account to allow (repeatable)",
    )
    parser.add_argument(
        "--anchor-address",
        metavar="ADDR",
        help="allow this existing anchoring account instead of generating a keystore",
    )
    parser.add_argument(
        "--data-path",
        default=DATA_PATH,
        help=f"each node's database directory, as the node sees it (default {DATA_PATH}, "
        "which besu.service lets Besu write)",
    )
    args = parser.parse_args(argv)
    if args.check is not None:
        try:
            digests = check_network(args.check.resolve())
        except (GenerateError, OSError) as exc:
            print(f"generate --check: {exc}", file=sys.stderr)
            return 2
        print(f"every node of {args.check.resolve()} has the same shared files:")
        for name, digest in digests.items():
            print(f"  {digest}  {name}")
        return 0
    try:
        summary = generate(
            args.out,
            chain_id=args.chain_id,
            hosts=[h.strip() for h in args.hosts.split(",") if h.strip()],
            p2p_port=args.p2p_port,
            rpc_port=args.rpc_port,
            block_period=args.block_period,
            epoch_length=args.epoch_length,
            request_timeout=args.request_timeout,
            witnesses=args.witnesses,
            witness_addresses=args.witness_address,
            witness_nodes=args.witness_node,
            anchor_address=args.anchor_address,
            data_path=args.data_path,
        )
    except GenerateError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    validators: list[str] = list(summary["validators"])  # type: ignore[call-overload]
    witness_nodes: dict[str, str] = dict(summary["witness_nodes"])  # type: ignore[call-overload]
    accounts: dict[str, str] = dict(summary["accounts"])  # type: ignore[call-overload]
    print(f"Besu QBFT network written to {args.out.resolve()}")
    evm, milestone = summary["evm_version"], summary["milestone"]
    print(f"  chain id    {summary['chain_id']}  (EVM {evm}: {milestone} 0)")
    for n, address in enumerate(validators, start=1):
        print(f"  validator {n} {address}")
    for name, enode in witness_nodes.items():
        print(f"  {name} {enode}")
    for name, address in accounts.items():
        print(f"  {name:<11} {address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
