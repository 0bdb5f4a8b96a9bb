"""deploy/besu/generate.py: the four-validator QBFT network it writes is what Besu and
civic-ledger need. Besu itself cannot be run here, so every file is checked on its own terms:
the genesis and its QBFT extraData (decoded back to the four validators), the milestone that
matches the contracts' EVM version, free gas, identical allowlists naming the anchoring and
witness accounts, keystores that open with their password files through the very loaders the
service and the witness use, and no secret readable by anyone but its owner.

The keys are then used for real on anvil set up like the Besu network (chain 1337, London
rules, base fee 0, nobody holding ether): deploy, grant WITNESS_ROLE with grant_role.py,
anchor and attest. And ChainClient reads QBFT-shaped headers (extraData far beyond 32 bytes).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
OUTSIDE_WITNESS = "0x000000000000000000000000000000000000bEEF"
HOSTS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]


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
    assert genesis["config"]["chainId"] == 1337
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
    assert permissions["nodes-allowlist"] == static

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
    secrets += [
        accounts / f"{n}.{ext}"
        for n in ("anchor", "witness-1", "witness-2")
        for ext in ("json", "password")
    ]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for directory in [network, accounts, *(network / f"node{n}" for n in range(1, 5))]:
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


def test_the_compose_file_runs_the_four_nodes_at_the_generated_addresses() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "deploy" / "besu" / "docker-compose.yml").read_text())
    services = compose["services"]
    assert sorted(services) == [f"besu-node{n}" for n in range(1, 5)]
    default_hosts = [f"172.28.0.{11 + i}" for i in range(4)]  # generate.py's defaults
    for n, host in enumerate(default_hosts, start=1):
        service = services[f"besu-node{n}"]
        assert service["networks"]["besu"]["ipv4_address"] == host
        # "${BESU_NETWORK:-./network}/node1/key:/besu/key:ro": the target is the second-last part
        mounts = {v.rsplit(":", 2)[-2]: v for v in service["volumes"]}
        assert mounts["/besu/key"].endswith(f"node{n}/key:/besu/key:ro")
        assert mounts["/besu/config.toml"].endswith(f"node{n}/config.toml:/besu/config.toml:ro")
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:")  # RPC only on the loopback interface


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
