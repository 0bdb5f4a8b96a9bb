"""deploy/besu/generate.py: the four-validator QBFT network it writes is what Besu and
civic-ledger need. Besu itself cannot be run here, so every file is checked on its own terms:
the genesis and its QBFT extraData (decoded back to the four validators), the milestone that
matches the contracts' EVM version, free gas from block 0, allowlists byte for byte the same on
every node (validators and witness nodes) naming the anchoring and witness accounts, listeners
on the node's own address, keystores that open with their password files through the very
loaders the service and the witness use, and no secret readable by anyone but its owner.

Since tomllib is not Besu, the TOML is also checked for what Besu reads differently (it joins a
list into one comma-separated value: no empty lists), and docs/DEPLOY.md, besu.service and the
compose file are checked against the generator: every shell snippet pastes, the documented
generate command runs, the systemd unit can write the data path it names.

The keys are then used for real on anvil set up like the Besu network (London rules, base fee
0, nobody holding ether): deploy, grant WITNESS_ROLE with grant_role.py, anchor and attest. And
ChainClient reads QBFT-shaped headers (extraData far beyond 32 bytes).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_keys import keys as eth_keys
from pydantic import ValidationError
from web3 import Web3
from web3.exceptions import ExtraDataLengthError

from contracts import load_artifact
from contracts.keys import address_of, load_or_create_key
from ledger.chain import ChainClient
from ledger.devchain import free_port, start_anvil
from ledger.settings import Settings
from verifier.witness import AttestSigner, KeyFileRefused, load_witness_key

REPO = Path(__file__).resolve().parents[2]
GENERATOR = REPO / "deploy" / "besu" / "generate.py"
GRANT = REPO / "deploy" / "besu" / "grant_role.py"
ADMIN_RPC = REPO / "deploy" / "besu" / "admin_rpc.py"
OUTSIDE_WITNESS = "0x000000000000000000000000000000000000bEEF"
HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
WITNESS_NODE, WITNESS_NODE_NAME = "10.0.1.1", "besu.court.example"
CHAIN_ID = 4409686  # generate.py's default: 0x434956, "CIV"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("besu") / "network"
    done = _run(
        GENERATOR,
        "--out",
        out,
        "--hosts",
        ",".join(HOSTS),
        "--witnesses",
        "2",
        "--witness-address",
        OUTSIDE_WITNESS,
        "--witness-node",
        f"{WITNESS_NODE}={WITNESS_NODE_NAME}",
    )
    assert done.returncode == 0, done.stderr
    return out


def _password(path: Path) -> str:
    return path.read_text(encoding="utf-8").rstrip("\n")


@pytest.fixture(scope="module")
def account_keys(network: Path) -> dict[str, bytes]:
    """The generated account keys, opened once (scrypt takes a second a keystore) with the
    loaders the service (contracts.keys) and the witness (verifier.witness) use in production."""
    accounts = network / "accounts"
    keys = {
        "anchor": load_or_create_key(
            accounts / "anchor.json", _password(accounts / "anchor.password")
        )
    }
    for name in ("witness-1", "witness-2"):
        keys[name] = load_witness_key(
            accounts / f"{name}.json", _password(accounts / f"{name}.password")
        )
    return keys


def _node_keys(network: Path) -> list[bytes]:
    return [
        bytes.fromhex((network / f"node{n}" / "key").read_text().strip().removeprefix("0x"))
        for n in range(1, 5)
    ]


def test_the_genesis_is_qbft_with_the_four_validators_in_extra_data(network: Path) -> None:
    genesis = json.loads((network / "genesis.json").read_text())
    qbft = genesis["config"]["qbft"]
    assert set(qbft) == {"blockperiodseconds", "epochlength", "requesttimeoutseconds"}
    assert qbft["requesttimeoutseconds"] > qbft["blockperiodseconds"] >= 1
    assert genesis["config"]["chainId"] == CHAIN_ID
    assert "ibft2" not in genesis["config"] and "clique" not in genesis["config"]

    vanity, validators, vote, round_, seals = rlp.decode(bytes.fromhex(genesis["extraData"][2:]))
    assert vanity == bytes(32) and vote == [] and round_ == b"" and seals == []
    # The validators are exactly the addresses of the four node keys, derived independently.
    expected = [
        eth_keys.PrivateKey(k).public_key.to_canonical_address() for k in _node_keys(network)
    ]
    assert validators == expected and len(set(validators)) == 4
    for n, address in enumerate(validators, start=1):
        assert (network / f"node{n}" / "address").read_text().strip() == "0x" + address.hex()


def test_free_gas_and_the_milestone_of_the_contracts_evm(network: Path) -> None:
    """The contracts are compiled for london (scripts/compile_contracts): Besu's milestone for
    that EVM is londonBlock. Every earlier fork is on at block 0, nothing later is on."""
    config = json.loads((network / "genesis.json").read_text())["config"]
    evm = load_artifact("AnchorRegistry").evm_version
    compile_script = (REPO / "scripts" / "compile_contracts").read_text()
    assert f'EVM_VERSION = "{evm}"' in compile_script
    assert evm == "london"
    assert config["londonBlock"] == 0 and config["berlinBlock"] == 0
    assert config["istanbulBlock"] == 0 and config["eip155Block"] == 0
    later = {"shanghaiTime", "cancunTime", "pragueTime", "osakaTime"}
    assert not later & set(config)
    assert config["zeroBaseFee"] is True
    for n in range(1, 5):
        node = tomllib.loads((network / f"node{n}" / "config.toml").read_text())
        assert node["min-gas-price"] == 0
        assert node["revert-reason-enabled"] is True


def test_every_node_has_the_same_allowlists_naming_the_nodes_and_the_accounts(
    network: Path, account_keys: dict[str, bytes]
) -> None:
    permissions = tomllib.loads((network / "permissions_config.toml").read_text())
    static = json.loads((network / "static-nodes.json").read_text())
    publics = [eth_keys.PrivateKey(k).public_key.to_bytes().hex() for k in _node_keys(network)]
    assert static == [f"enode://{p}@{h}:30303" for p, h in zip(publics, HOSTS, strict=True)]
    witness_node = (network / "witness-node1" / "enode").read_text().strip()
    assert witness_node.endswith(f"@{WITNESS_NODE}:30303")
    assert permissions["nodes-allowlist"] == [*static, witness_node]

    anchor = address_of(account_keys["anchor"])
    witnesses = [address_of(account_keys[f"witness-{n}"]) for n in (1, 2)]
    allowed = {a.lower() for a in permissions["accounts-allowlist"]}
    assert allowed == {a.lower() for a in [anchor, *witnesses, OUTSIDE_WITNESS]}

    for n in range(1, 5):
        node = tomllib.loads((network / f"node{n}" / "config.toml").read_text())
        # one permissions file for accounts and nodes, the same on every node
        assert node["permissions-nodes-config-file-enabled"] is True
        assert node["permissions-accounts-config-file-enabled"] is True
        assert node["permissions-nodes-config-file"] == node["permissions-accounts-config-file"]
        assert node["p2p-host"] == HOSTS[n - 1]
        assert node["bootnodes"] == [e for i, e in enumerate(static) if i != n - 1]
        assert node["static-nodes-file"].endswith("static-nodes.json")
        assert set(node["rpc-http-api"]) == {"ETH", "NET", "WEB3"}  # no ADMIN, QBFT, PERM
    summary = json.loads((network / "network.json").read_text())
    assert summary["milestone"] == "londonBlock" and summary["accounts"]["anchor"] == anchor
    assert summary["witness_nodes"] == {"witness-node1": witness_node}


def test_keystores_open_with_their_password_files_and_secrets_are_0600(
    network: Path, account_keys: dict[str, bytes]
) -> None:
    accounts = network / "accounts"
    for name, key in account_keys.items():  # opened with their password files (the fixture)
        keystore = json.loads((accounts / f"{name}.json").read_text())
        assert keystore["version"] == 3 and keystore["crypto"]["kdf"] == "scrypt"
        assert keystore["address"].lower() == address_of(key).lower()[2:]
        assert key.hex() not in (accounts / f"{name}.json").read_text()
    assert len(set(account_keys.values())) == 3
    with pytest.raises(KeyFileRefused, match="cannot decrypt"):
        load_witness_key(accounts / "witness-2.json", "not the password")
    with pytest.raises(KeyFileRefused, match="password-file"):
        load_witness_key(accounts / "witness-1.json")

    secrets = [network / f"node{n}" / "key" for n in range(1, 5)]
    secrets.append(network / "witness-node1" / "key")
    secrets += [
        accounts / f"{n}.{ext}"
        for n in ("anchor", "witness-1", "witness-2")
        for ext in ("json", "password")
    ]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    node_dirs = [network / f"node{n}" for n in range(1, 5)] + [network / "witness-node1"]
    for directory in [network, accounts, *node_dirs, *(d / "data" for d in node_dirs)]:
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    for public in ("genesis.json", "permissions_config.toml", "static-nodes.json", "network.json"):
        assert not (network / public).stat().st_mode & 0o022

    # The settings read the password file (it must be 0600), and production has no objection
    # to the key (it refuses a plain key file); other production requirements are not ours.
    lines = (accounts / "anchor.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert env["CIVIC_CHAIN_RPC"] == f"http://{HOSTS[0]}:8545"
    assert env["CIVIC_GAS_PRICE_WEI"] == "0"
    key_settings = {
        "key_file": Path(env["CIVIC_KEY_FILE"]),
        "key_password_file": Path(env["CIVIC_KEY_PASSWORD_FILE"]),
    }
    assert Settings(**key_settings).key_password == _password(accounts / "anchor.password")
    try:
        Settings(env="production", chain_rpc=env["CIVIC_CHAIN_RPC"], **key_settings)
    except ValidationError as exc:
        assert "CIVIC_KEY" not in str(exc)


def test_generated_keys_are_never_overwritten_nor_committed(network: Path, tmp_path: Path) -> None:
    before = (network / "node1" / "key").read_bytes()
    again = _run(GENERATOR, "--out", network)
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr
    assert (network / "node1" / "key").read_bytes() == before
    bad = _run(GENERATOR, "--out", tmp_path / "n", "--hosts", "10.0.0.1,10.0.0.2")
    assert bad.returncode == 2 and "exactly 4 hosts" in bad.stderr
    # The default output directory is ignored by git.
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/besu/network/node1/key"], cwd=REPO, check=False
    )
    assert ignored.returncode == 0


def test_the_defaults_make_the_compose_network_with_no_operator_held_witness_keys(
    tmp_path: Path,
) -> None:
    """With no options the generator writes the compose file's network: its addresses, its
    data mount, a chain id of its own (not the development 1337), and no witness keystores (a
    real witness makes its own key and sends only its address)."""
    out = tmp_path / "network"
    done = _run(GENERATOR, "--out", out)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "genesis.json").read_text())["config"]["chainId"] == CHAIN_ID
    assert sorted(p.name for p in (out / "accounts").iterdir()) == [
        "anchor.env",
        "anchor.json",
        "anchor.password",
    ]
    permissions = tomllib.loads((out / "permissions_config.toml").read_text())
    assert len(permissions["accounts-allowlist"]) == 1
    assert sorted(p.parent.name for p in out.glob("*/config.toml")) == [
        f"node{n}" for n in range(1, 5)
    ]

    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert sorted(services) == [f"besu-node{n}" for n in range(1, 5)]
    for n in range(1, 5):
        config = tomllib.loads((out / f"node{n}" / "config.toml").read_text())
        service = services[f"besu-node{n}"]
        assert service["networks"]["besu"]["ipv4_address"] == config["p2p-host"]
        # The image's entry script would chown and re-run Besu as uid 1000, which cannot read
        # a key of another owner (BESU_UID=0): Besu is the entrypoint, run as BESU_UID.
        assert service["entrypoint"] == ["/opt/besu/bin/besu"]
        assert service["command"] == ["--config-file=/besu/config.toml"]
        # The image's BESU_RPC_WS_HOST=0.0.0.0 would override config.toml's loopback.
        assert service["environment"]["BESU_RPC_WS_HOST"] == config["rpc-ws-host"] == "127.0.0.1"
        mounts = {}
        for volume in service["volumes"]:
            source, target, *mode = volume.replace("${BESU_NETWORK:-./network}", "NET").split(":")
            mounts[target] = (source, mode)
        assert mounts["/besu"] == (f"NET/node{n}", ["ro"])  # the node's own directory
        assert mounts[config["data-path"]] == (f"NET/node{n}/data", [])
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:")  # RPC only on the loopback interface
            assert published.endswith(":8545")  # never the operator's 8546


@pytest.mark.chain
def test_the_generated_accounts_anchor_and_attest_on_a_free_gas_london_chain(
    network: Path, account_keys: dict[str, bytes]
) -> None:
    accounts = network / "accounts"
    anchor_key, witness_key = account_keys["anchor"], account_keys["witness-1"]
    with start_anvil(
        port=free_port(),
        state_path=None,
        funded_keys=[anchor_key, witness_key],
        balance_wei=0,  # as on the Besu network: nobody holds ether
        gas_price_wei=0,
    ) as chain:
        client = ChainClient(chain.rpc_url, anchor_key, gas_price_wei=0)
        contract = client.deploy_registry().address
        env = {
            **os.environ,
            "CIVIC_CHAIN_RPC": chain.rpc_url,
            "CIVIC_CONTRACT": contract,
            "CIVIC_KEY_FILE": str(accounts / "anchor.json"),
            "CIVIC_KEY_PASSWORD_FILE": str(accounts / "anchor.password"),
            "CIVIC_GAS_PRICE_WEI": "0",
        }
        witness = address_of(witness_key)
        granted = _run(GRANT, "WITNESS_ROLE", witness, env=env)
        assert granted.returncode == 0, granted.stderr
        assert "WITNESS_ROLE granted" in granted.stdout

        root = os.urandom(31) + b"\x01"
        signed = client.sign_anchor(contract, "suggestions", 0, root, 7)
        client.send_raw(signed.raw)
        assert client.wait_for_receipt(signed.tx_hash, 10).status == 1  # type: ignore[union-attr]
        signer = AttestSigner(chain.rpc_url, witness_key, gas_price_wei=0)
        signer.attest(contract, "suggestions", 0, root)
        assert client.attestations(contract, "suggestions", 0) == 1
        assert client.w3.eth.get_balance(client.address) == 0


# -- QBFT headers ---------------------------------------------------------------------------


class _QbftHeaders(BaseHTTPRequestHandler):
    """Answers the few JSON-RPC calls ChainClient makes to read a block, with a QBFT header.

    No node here produces extraData longer than 32 bytes (ganache caps it, anvil's --init
    ignores it), so this stands in for Besu's answer: the one thing under test is how web3
    decodes such a header, not a node's behaviour.
    """

    extra_data = "0x"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        block = {
            "number": "0x5",
            "hash": "0x" + "ab" * 32,
            "parentHash": "0x" + "cd" * 32,
            "nonce": "0x0000000000000000",
            "sha3Uncles": "0x" + "00" * 32,
            "logsBloom": "0x" + "00" * 256,
            "transactionsRoot": "0x" + "00" * 32,
            "stateRoot": "0x" + "00" * 32,
            "receiptsRoot": "0x" + "00" * 32,
            "miner": "0x" + "00" * 20,
            "difficulty": "0x1",
            "totalDifficulty": "0x6",
            "extraData": self.extra_data,
            "size": "0x200",
            "gasLimit": "0x1fffffffffffff",
            "gasUsed": "0x0",
            "timestamp": "0x6b0a0000",
            "mixHash": "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365",
            "baseFeePerGas": "0x0",
            "transactions": [],
            "uncles": [],
        }
        results: dict[str, Any] = {
            "eth_chainId": "0x539",
            "eth_blockNumber": "0x5",
            "eth_getBlockByNumber": block,
        }
        answer = {"jsonrpc": "2.0", "id": request["id"], "result": results[request["method"]]}
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def qbft_rpc(network: Path) -> Iterator[str]:
    genesis = json.loads((network / "genesis.json").read_text())
    handler = type("Handler", (_QbftHeaders,), {"extra_data": genesis["extraData"]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_chain_client_reads_qbft_headers_and_fills_zero_fees(qbft_rpc: str, network: Path) -> None:
    genesis_extra = json.loads((network / "genesis.json").read_text())["extraData"]
    assert len(genesis_extra) > 2 + 2 * 32  # beyond what web3 accepts without the middleware
    plain = Web3(Web3.HTTPProvider(qbft_rpc))
    with pytest.raises(ExtraDataLengthError):  # why ChainClient injects the POA middleware
        plain.eth.get_block("latest")

    client = ChainClient(qbft_rpc, os.urandom(31) + b"\x01", gas_price_wei=0)
    block = client.w3.eth.get_block("latest")
    assert block["proofOfAuthorityData"] == bytes.fromhex(genesis_extra[2:])
    assert client.chain_id == 1337
    assert client._fees() == {"maxFeePerGas": 0, "maxPriorityFeePerGas": 0}
    legacy = ChainClient(qbft_rpc, os.urandom(31) + b"\x01", tx_type="legacy", gas_price_wei=0)
    assert legacy._fees() == {"gasPrice": 0}


# -- what stopped a real network (issue 22) ----------------------------------------------------

DEPLOY_MD = REPO / "docs" / "DEPLOY.md"
UNIT = REPO / "deploy" / "besu" / "besu.service"
COMPOSE = REPO / "deploy" / "besu" / "docker-compose.yml"
SHELL_FENCE = re.compile(r"^[ \t]*```(?:bash|sh)[ \t]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
# A backslash followed by blanks (and perhaps a comment) escapes the blank, not the newline: the
# "continuation" ends there and the next line runs as a command of its own.
BROKEN_CONTINUATION = re.compile(r"\\[ \t]+(#.*)?$", re.MULTILINE)


def _node_configs(network: Path) -> dict[str, dict[str, Any]]:
    return {
        path.parent.name: tomllib.loads(path.read_text())
        for path in sorted(network.glob("*/config.toml"))
    }


def test_no_generated_toml_option_is_an_empty_list(network: Path) -> None:
    """Besu joins a TOML array into one comma-separated value: ``[]`` becomes "", which options
    such as rpc-http-cors-origins refuse at start-up ("Domain cannot be empty string")."""
    files = sorted(network.rglob("*.toml"))
    assert len(files) >= 5
    for path in files:
        for option, value in tomllib.loads(path.read_text()).items():
            if isinstance(value, list):
                assert value, f"{path.relative_to(network)}: {option} is an empty list"
                assert all(str(item).strip() for item in value), f"{option}: an empty item"
    for name, config in _node_configs(network).items():
        assert "rpc-http-cors-origins" not in config, name  # Besu's default: none


def test_the_genesis_starts_with_a_zero_base_fee(network: Path) -> None:
    """Without baseFeePerGas, block 0 of a London genesis carries 1 gwei, zeroBaseFee or not."""
    genesis = json.loads((network / "genesis.json").read_text())
    assert genesis["config"]["zeroBaseFee"] is True
    assert int(genesis["baseFeePerGas"], 16) == 0


def test_rpc_and_metrics_listen_on_the_nodes_private_address(network: Path) -> None:
    configs = _node_configs(network)
    assert [f"node{n}" for n in range(1, 5)] == sorted(c for c in configs if c.startswith("node"))
    for n, host in enumerate(HOSTS, start=1):
        config = configs[f"node{n}"]
        assert config["rpc-http-host"] == host
        assert config["metrics-host"] == host
        assert host in config["host-allowlist"]
    for name, config in configs.items():
        for option in ("rpc-http-host", "rpc-ws-host", "metrics-host"):
            assert not ip_address(config[option]).is_unspecified, f"{name}: {option}"
        assert "graphql-http-enabled" not in config


def test_every_node_gets_the_same_allowlists_byte_for_byte(network: Path) -> None:
    """Besu checks the account allowlist when a node accepts a transaction, not when it imports
    a block: one validator with a looser file would let anyone's transactions in. So every
    node's directory carries the one file, and the generator checks that they agree."""
    shared = ("permissions_config.toml", "genesis.json", "static-nodes.json")
    node_dirs = sorted(p.parent for p in network.glob("*/config.toml"))
    assert len(node_dirs) >= 4
    for name in shared:
        expected = (network / name).read_bytes()
        for node_dir in node_dirs:
            assert (node_dir / name).read_bytes() == expected, f"{node_dir.name}/{name}"
    for name, config in _node_configs(network).items():
        assert config["permissions-accounts-config-file"] == "/besu/permissions_config.toml", name
        assert config["permissions-nodes-config-file"] == "/besu/permissions_config.toml", name
    checked = _run(GENERATOR, "--check", network)
    assert checked.returncode == 0, checked.stderr


def _unit() -> dict[str, str]:
    settings: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings


def _shell_snippets() -> list[str]:
    snippets = SHELL_FENCE.findall(DEPLOY_MD.read_text())
    assert len(snippets) >= 5
    return snippets


def test_every_shell_snippet_of_deploy_md_can_be_pasted() -> None:
    for snippet in _shell_snippets():
        assert not BROKEN_CONTINUATION.search(snippet), snippet
        checked = subprocess.run(
            ["bash", "-n"], input=snippet, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, f"{checked.stderr}\n{snippet}"


def _documented_generate_command() -> str:
    commands = [s for s in _shell_snippets() if "deploy/besu/generate.py" in s and "--hosts" in s]
    assert len(commands) == 1, "DEPLOY.md §5 shows one generate command"
    return commands[0]


def test_the_documented_generate_command_writes_a_network_the_systemd_unit_can_run(
    tmp_path: Path,
) -> None:
    """The command of DEPLOY.md §5 as written (only the output directory moved into a temporary
    one, and the interpreter the tests run on): it must run, and what it writes must agree with
    besu.service, whose ProtectSystem=strict makes only ReadWritePaths writable."""
    command = _documented_generate_command()
    assert "--out deploy/besu/network" in command
    out = tmp_path / "network"
    command = command.replace("--out deploy/besu/network", f"--out {shlex.quote(str(out))}")
    command = command.replace(".venv/bin/python", shlex.quote(sys.executable))
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    unit = _unit()
    writable = unit["ReadWritePaths"].split()
    config_file = unit["ExecStart"].split("--config-file=", 1)[1].split()[0]
    assert config_file == "/besu/config.toml"
    configs = _node_configs(out)
    assert len(configs) >= 4
    for name, config in configs.items():
        data_path = Path(config["data-path"])
        assert any(data_path.is_relative_to(w) for w in writable), (name, data_path, writable)
        assert not ip_address(config["rpc-http-host"]).is_unspecified
    # The unit's own instructions name the same data path.
    assert f"--data-path {configs['node1']['data-path']}" in UNIT.read_text()


def test_besu_versions_that_cannot_estimate_gas_on_qbft_are_not_used() -> None:
    """Besu 25.6.0 to 25.7.x answer eth_estimateGas on QBFT with an internal error (fixed in
    25.8.0). Both paths pin one vetted release, the same one, outside that range."""
    binary = _unit()["ExecStart"].split()[0]
    unit_version = re.fullmatch(r"/opt/besu-(\d+\.\d+\.\d+)/bin/besu", binary)
    assert unit_version, binary
    image = re.search(r"hyperledger/besu:(\d+\.\d+\.\d+)", COMPOSE.read_text())
    assert image and image[1] == unit_version[1]
    major_minor = tuple(int(p) for p in unit_version[1].split(".")[:2])
    assert not (25, 6) <= major_minor < (25, 8)
    assert "25.6.0" in DEPLOY_MD.read_text() and "25.8.0" in DEPLOY_MD.read_text()


def test_a_witness_node_follows_the_validators_and_answers_its_own_host_name(
    network: Path,
) -> None:
    """A witness institution runs its own, non-validator node: allowed to connect, pointed at
    the validators, and answering the Host names its witness uses (Besu compares them exactly)."""
    genesis = json.loads((network / "genesis.json").read_text())
    _, validators, *_ = rlp.decode(bytes.fromhex(genesis["extraData"][2:]))
    witness_dir = network / "witness-node1"
    key = bytes.fromhex((witness_dir / "key").read_text().strip().removeprefix("0x"))
    public = eth_keys.PrivateKey(key).public_key
    assert public.to_canonical_address() not in validators  # it does not validate
    enode = (witness_dir / "enode").read_text().strip()
    assert enode == f"enode://{public.to_bytes().hex()}@{WITNESS_NODE}:30303"
    permissions = tomllib.loads((network / "permissions_config.toml").read_text())
    assert enode in permissions["nodes-allowlist"]

    config = tomllib.loads((witness_dir / "config.toml").read_text())
    static = json.loads((network / "static-nodes.json").read_text())
    assert config["bootnodes"] == static  # the four validators
    assert config["p2p-host"] == config["rpc-http-host"] == WITNESS_NODE
    assert config["host-allowlist"] == ["localhost", "127.0.0.1", WITNESS_NODE, WITNESS_NODE_NAME]
    assert set(config["rpc-http-api"]) == {"ETH", "NET", "WEB3"}
    assert config["genesis-file"] == "/besu/genesis.json"


def test_the_operator_apis_are_on_a_loopback_websocket_only(network: Path) -> None:
    """Besu has one HTTP JSON-RPC listener: QBFT votes, ADMIN and PERM would be on the network
    with it. They get a WebSocket listener bound to 127.0.0.1 instead."""
    for name, config in _node_configs(network).items():
        assert config["rpc-ws-enabled"] is True, name
        assert config["rpc-ws-host"] == "127.0.0.1", name
        assert set(config["rpc-ws-api"]) == {"QBFT", "ADMIN", "PERM"}, name
        assert config["rpc-ws-port"] != config["rpc-http-port"]
        assert not {"QBFT", "ADMIN", "PERM"} & set(config["rpc-http-api"]), name


def test_check_refuses_a_node_whose_allowlist_differs(network: Path, tmp_path: Path) -> None:
    copy = tmp_path / "network"
    shutil.copytree(network, copy)
    loose = copy / "node3" / "permissions_config.toml"
    loose.write_text(
        loose.read_text().replace(
            "accounts-allowlist=[", 'accounts-allowlist=["0x' + "ab" * 20 + '", '
        )
    )
    checked = _run(GENERATOR, "--check", copy)
    assert checked.returncode == 2
    assert "node3/permissions_config.toml" in checked.stderr
    assert "node1" not in checked.stderr


def test_admin_rpc_speaks_json_rpc_over_a_websocket() -> None:
    """deploy/besu/admin_rpc.py (standard library only, for a Besu host) against an independent
    WebSocket server: one request out with typed parameters, the answer or the error back."""
    serve = pytest.importorskip("websockets.sync.server").serve
    seen: list[dict[str, Any]] = []

    def besu(websocket: Any) -> None:
        for message in websocket:
            request = json.loads(message)
            seen.append({"host": websocket.request.headers["Host"], **request})
            if request["method"] == "perm_addAccountsToAllowlist":
                error = {"code": -32604, "message": "Method not enabled"}
                websocket.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}))
            else:
                result = {"params": request["params"], "padding": "x" * 70_000}  # a 64-bit length
                websocket.send(
                    json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result})
                )

    with serve(besu, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
        voted = _run(ADMIN_RPC, "--url", url, "qbft_proposeValidatorVote", "0xAbC", "true")
        refused = _run(ADMIN_RPC, "--url", url, "perm_addAccountsToAllowlist", '["0x1"]')
        server.shutdown()
    assert voted.returncode == 0, voted.stderr
    assert json.loads(voted.stdout)["params"] == ["0xAbC", True]
    assert refused.returncode == 1 and "Method not enabled" in refused.stderr
    assert seen[0]["method"] == "qbft_proposeValidatorVote"
    assert seen[1]["params"] == [["0x1"]]
    assert seen[0]["host"] == url.removeprefix("ws://")  # what Besu's host-allowlist checks
    closed = _run(ADMIN_RPC, "--url", url, "admin_peers")
    assert closed.returncode == 2 and "admin_rpc:" in closed.stderr
