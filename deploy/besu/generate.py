#!/usr/bin/env python3
"""Generate a four-validator Besu QBFT network for civic-ledger.

Usage (from the repository root, with the project's virtualenv):

    .venv/bin/python deploy/besu/generate.py [--out deploy/besu/network] [--witnesses 2] ...

Writes, into a directory that must not exist yet (keys are never overwritten):

    genesis.json               QBFT genesis: the four validators in extraData, free gas
    permissions_config.toml    local node and account allowlists, the same file for every node
    static-nodes.json          the four enode URLs
    network.json               what is public: chain id, validators, enodes, allowed accounts
    node1 … node4/             config.toml, key (the node key, hex, mode 0600), address, data/
    accounts/                  anchor.json + anchor.password, witness-N.json + witness-N.password:
                               Web3 Secret Storage (v3, scrypt) keystores and their passwords,
                               all mode 0600; anchor.env and witness-N.env for the services

Choices:

* The genesis enables the hard forks up to the EVM version the contracts are compiled for
  (``contracts/build``, pinned by scripts/compile_contracts): ``london`` is Besu's
  ``londonBlock`` milestone, set to 0 with every earlier one, and nothing later. Later
  milestones would run bytecode fine, but the chain and the compiler then state one rule set.
* Free gas: ``zeroBaseFee`` (London-era genesis) and ``min-gas-price=0`` on every node. Nobody
  holds ether; transactions pay nothing (civic-ledger: ``CIVIC_GAS_PRICE_WEI=0``).
* Permissioning is local (``permissions_config.toml``; Besu's on-chain permissioning is
  deprecated since 24.12). Only the anchoring account and the witness accounts may send
  transactions; only the four nodes may connect.
* Node keys cannot be encrypted for Besu (short of an HSM plugin): they are plain hex, 0600.
  Account keys are encrypted keystores, loaded by ``contracts.keys`` (``CIVIC_KEY_FILE`` and
  ``CIVIC_KEY_PASSWORD_FILE``) and by ``civic-verify witness --key … --password-file …``.
* The RPC APIs are ETH, NET and WEB3 only: QBFT (validator votes), ADMIN and PERM stay off the
  network-facing port; enable them on a loopback-only port when an operator needs them.

The QBFT ``extraData`` is RLP([32-byte vanity, [validator addresses], vote, round, seals]);
in the genesis the vote is an empty list, the round 0 and there are no seals.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
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
CONFIG_ROOT = "/besu"  # where each node finds its files (the compose file mounts them there)
# The BFT mix hash Besu requires in IBFT 2.0 and QBFT genesis files.
BFT_MIX_HASH = "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365"

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
    """The network cannot be generated as asked."""


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


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _account(directory: Path, name: str) -> str:
    """A fresh key as ``name``.json (v3 keystore) with ``name``.password; returns its address."""
    password = secrets.token_urlsafe(32)
    password_file = directory / f"{name}.password"
    _write_secret(password_file, (password + "\n").encode())
    # contracts.keys writes the keystore itself (0600, O_EXCL, fsynced): the very loader the
    # service uses in production reads it back.
    key = load_or_create_key(directory / f"{name}.json", password)
    return address_of(key)


def _node_config(
    *, host: str, p2p_port: int, rpc_port: int, bootnodes: list[str], data_path: str
) -> str:
    root = CONFIG_ROOT
    return f"""# Besu node configuration (generated by deploy/besu/generate.py). Paths are where the
# node sees its files: docker-compose.yml mounts them under {root}.
genesis-file="{root}/genesis.json"
data-path="{data_path}"
node-private-key-file="{root}/key"
sync-mode="FULL"

# peer-to-peer: this node's address as the other nodes' allowlists name it
p2p-host="{host}"
p2p-interface="0.0.0.0"
p2p-port={p2p_port}
static-nodes-file="{root}/static-nodes.json"
bootnodes={_toml_list(bootnodes)}

# local permissioning: the same permissions_config.toml on every node
permissions-nodes-config-file-enabled=true
permissions-nodes-config-file="{root}/permissions_config.toml"
permissions-accounts-config-file-enabled=true
permissions-accounts-config-file="{root}/permissions_config.toml"

# free gas (genesis has zeroBaseFee); revert reasons for civic-ledger's error mapping
min-gas-price=0
revert-reason-enabled=true

# JSON-RPC for civic-ledger, the verifier and the witnesses: no ADMIN, QBFT or PERM here
rpc-http-enabled=true
rpc-http-host="0.0.0.0"
rpc-http-port={rpc_port}
rpc-http-api=["ETH", "NET", "WEB3"]
host-allowlist=["localhost", "127.0.0.1", "{host}"]
rpc-http-cors-origins=[]

metrics-enabled=true
metrics-host="0.0.0.0"
metrics-port=9545
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


def generate(
    out: Path,
    *,
    chain_id: int = 1337,
    hosts: list[str] | None = None,
    p2p_port: int = 30303,
    rpc_port: int = 8545,
    block_period: int = 2,
    epoch_length: int = 30000,
    request_timeout: int = 4,
    witnesses: int = 2,
    witness_addresses: list[str] | None = None,
    anchor_address: str | None = None,
    data_path: str = f"{CONFIG_ROOT}/data",
) -> dict[str, object]:
    """Write the network into ``out`` (which must not exist); return what network.json holds."""
    hosts = hosts or DEFAULT_HOSTS
    if len(hosts) != VALIDATORS:
        raise GenerateError(f"give exactly {VALIDATORS} hosts, one per validator")
    for address in [*(witness_addresses or []), *([anchor_address] if anchor_address else [])]:
        if not re.fullmatch(r"0x[0-9a-fA-F]{40}", address):
            raise GenerateError(f"not an address: {address!r}")
    if block_period < 1 or request_timeout <= block_period or epoch_length < 1:
        raise GenerateError("need blockperiod >= 1 s, a request timeout above it, epoch >= 1")
    evm_version = load_artifact("AnchorRegistry").evm_version
    milestones = milestones_for(evm_version)

    out = out.resolve()
    if out.exists():
        raise GenerateError(f"{out} exists: refusing to overwrite a network (and its keys)")
    out.mkdir(parents=True, mode=0o700)
    os.chmod(out, 0o700)

    # -- validators: node keys, addresses, enode URLs
    node_keys = [generate_key() for _ in range(VALIDATORS)]
    publics = [PrivateKey(k).public_key for k in node_keys]
    validators = [p.to_canonical_address() for p in publics]
    enodes = [
        f"enode://{p.to_bytes().hex()}@{host}:{p2p_port}"
        for p, host in zip(publics, hosts, strict=True)
    ]

    # -- accounts that may send transactions
    accounts_dir = out / "accounts"
    accounts_dir.mkdir(mode=0o700)
    rpc = f"http://{hosts[0]}:{rpc_port}"
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

    genesis = {
        "config": {
            "chainId": chain_id,
            **milestones,
            "zeroBaseFee": "londonBlock" in milestones,
            "qbft": {
                "blockperiodseconds": block_period,
                "epochlength": epoch_length,
                "requesttimeoutseconds": request_timeout,
            },
        },
        "nonce": "0x0",
        "timestamp": hex(int(time.time())),
        "gasLimit": "0x1fffffffffffff",
        "difficulty": "0x1",
        "mixHash": BFT_MIX_HASH,
        "coinbase": "0x" + "00" * 20,
        "alloc": {},
        "extraData": qbft_extra_data(validators),
    }
    if "londonBlock" not in milestones:
        del genesis["config"]["zeroBaseFee"]  # type: ignore[attr-defined]
    _write_public(out / "genesis.json", json.dumps(genesis, indent=2) + "\n")
    _write_public(out / "static-nodes.json", json.dumps(enodes, indent=2) + "\n")
    _write_public(
        out / "permissions_config.toml",
        "# Local permissioning, identical on every node (deploy/besu/generate.py).\n"
        "# Accounts that may send transactions: the anchoring account and the witnesses.\n"
        f"accounts-allowlist={_toml_list(sorted(allowed.values(), key=str.lower))}\n"
        "# Nodes that may connect: the four validators.\n"
        f"nodes-allowlist={_toml_list(enodes)}\n",
    )

    for i in range(VALIDATORS):
        node_dir = out / f"node{i + 1}"
        node_dir.mkdir(mode=0o700)
        (node_dir / "data").mkdir(mode=0o700)
        _write_secret(node_dir / "key", f"0x{node_keys[i].hex()}".encode())
        _write_public(node_dir / "address", "0x" + validators[i].hex() + "\n")
        others = [e for j, e in enumerate(enodes) if j != i]
        _write_public(
            node_dir / "config.toml",
            _node_config(
                host=hosts[i],
                p2p_port=p2p_port,
                rpc_port=rpc_port,
                bootnodes=others,
                data_path=data_path,
            ),
        )

    summary: dict[str, object] = {
        "chain_id": chain_id,
        "evm_version": evm_version,
        "milestone": EVM_MILESTONE[evm_version],
        "validators": ["0x" + v.hex() for v in validators],
        "enodes": enodes,
        "rpc": rpc,
        "accounts": allowed,
    }
    _write_public(out / "network.json", json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a four-validator Besu QBFT network for civic-ledger."
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"(default {DEFAULT_OUT})")
    parser.add_argument("--chain-id", type=int, default=1337)
    parser.add_argument(
        "--hosts",
        default=",".join(DEFAULT_HOSTS),
        help="the four validators' IP addresses, comma-separated (default: the compose subnet)",
    )
    parser.add_argument("--p2p-port", type=int, default=30303)
    parser.add_argument("--rpc-port", type=int, default=8545)
    parser.add_argument("--block-period", type=int, default=2, help="seconds (default 2)")
    parser.add_argument("--epoch-length", type=int, default=30000)
    parser.add_argument("--request-timeout", type=int, default=4, help="seconds (default 4)")
    parser.add_argument(
        "--witnesses", type=int, default=2, help="witness keystores to generate (default 2)"
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
        "--data-path", default=f"{CONFIG_ROOT}/data", help="each node's data directory"
    )
    args = parser.parse_args(argv)
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
            anchor_address=args.anchor_address,
            data_path=args.data_path,
        )
    except GenerateError as exc:
        print(f"generate: {exc}", file=sys.stderr)
        return 2
    validators: list[str] = list(summary["validators"])  # type: ignore[call-overload]
    accounts: dict[str, str] = dict(summary["accounts"])  # type: ignore[call-overload]
    print(f"Besu QBFT network written to {args.out.resolve()}")
    evm, milestone = summary["evm_version"], summary["milestone"]
    print(f"  chain id    {summary['chain_id']}  (EVM {evm}: {milestone} 0)")
    for n, address in enumerate(validators, start=1):
        print(f"  validator {n} {address}")
    for name, address in accounts.items():
        print(f"  {name:<11} {address}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
