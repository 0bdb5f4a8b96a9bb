"""A local development chain: ganache from the project's node_modules, for ./scripts/run and tests,
and anvil (Foundry, from npm) as a second, independent EVM node the chain tests also run on.

Choices, each measured (see FIELD-NOTES and tests/ledger/test_devchain.py):

* Instant mining ("eager" instamine), never ``--miner.blockTime``: with a block time, some
  pipelined transactions stayed queued forever.
* ``--chain.hardfork london`` by default: the contracts are compiled for the london EVM, and a
  Besu QBFT genesis with londonBlock 0 is the production target, so the dev chain runs the same
  rules (base fee, type-2 transactions) as production.
* ``--database.dbPath`` keeps the whole chain (contract code, anchored batches, nonces) across
  restarts, including after SIGKILL. Restarting on an existing database with the same
  ``--wallet.accounts`` does not re-fund or reset anything: the stored state wins.
* The child gets PR_SET_PDEATHSIG on Linux, so a crashed parent never leaves a ganache behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEFAULT_BALANCE_WEI",
    "DevChain",
    "DevChainError",
    "anvil_bin",
    "die_with_parent",
    "free_port",
    "start_anvil",
    "start_ganache",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BALANCE_WEI = 10**6 * 10**18  # a million ether: never the reason a test fails
_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000


class DevChainError(RuntimeError):
    """The development chain could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it; another process may still race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ganache_bin() -> Path:
    """``$CIVIC_GANACHE_BIN``, else ``node_modules/.bin/ganache`` of this checkout."""
    override = os.environ.get("CIVIC_GANACHE_BIN")
    return Path(override) if override else REPO_ROOT / "node_modules" / ".bin" / "ganache"


@dataclass
class DevChain:
    """A running ganache or anvil (``db_path``: ganache's database or anvil's state file).

    Stop it with :meth:`stop` or use it as a context manager."""

    rpc_url: str
    process: subprocess.Popen[bytes]
    chain_id: int
    db_path: Path | None
    log_path: Path
    _owns_log: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds. Idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self._owns_log:
            with contextlib.suppress(FileNotFoundError):
                self.log_path.unlink()
            self._owns_log = False

    def kill(self) -> None:
        """SIGKILL without a chance to clean up: what a power cut or OOM kill does."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> DevChain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """preexec_fn: ask Linux to SIGTERM the child when the parent thread exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    # The parent may have died between fork and prctl: then nobody would ever signal us.
    if os.getppid() == 1:
        os._exit(1)


def _tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _rpc(rpc_url: str, method: str, params: list[object], timeout: float) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    request = urllib.request.Request(  # noqa: S310 - rpc_url is the http:// URL we built
        rpc_url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer = json.loads(response.read())
    if "error" in answer:
        raise DevChainError(f"{method} on {rpc_url}: {answer['error']}")
    return answer["result"]


def _rpc_chain_id(rpc_url: str, timeout: float) -> int:
    return int(str(_rpc(rpc_url, "eth_chainId", [], timeout)), 16)


def start_ganache(
    *,
    port: int,
    db_path: Path | None,
    funded_keys: Sequence[bytes],
    chain_id: int = 1337,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
    hardfork: str = "london",
    balance_wei: int = DEFAULT_BALANCE_WEI,
    gas_price_wei: int | None = None,
    startup_timeout: float = 30.0,
) -> DevChain:
    """Start ganache and return once ``eth_chainId`` answers over HTTP.

    ``funded_keys`` are 32-byte private keys given ``balance_wei`` each at genesis (ignored by
    ganache when ``db_path`` already holds a chain). ``gas_price_wei`` sets ganache's default
    and minimum gas price; with ``hardfork="berlin"`` (no base fee) and ``gas_price_wei=0`` it
    behaves like a zero-gas permissioned chain. Raises :class:`DevChainError` with the tail of
    ganache's log if it exits or does not answer within ``startup_timeout`` seconds.

    The child is tied to the calling *thread* on Linux (PR_SET_PDEATHSIG): start it from a
    thread that lives as long as the chain should.
    """
    binary = ganache_bin()
    if not binary.exists():
        raise DevChainError(f"ganache not found at {binary}; run ./scripts/setup")
    if not funded_keys:
        raise ValueError("give ganache at least one funded key")
    command = [
        str(binary),
        "--server.host",
        host,
        "--server.port",
        str(port),
        "--chain.chainId",
        str(chain_id),
        "--chain.hardfork",
        hardfork,
        "--miner.instamine",
        "eager",
        "--logging.quiet",
    ]
    for key in funded_keys:
        if len(key) != 32:
            raise ValueError("funded keys must be 32-byte private keys")
        command += ["--wallet.accounts", f"0x{key.hex()},{balance_wei}"]
    if gas_price_wei is not None:
        command += ["--miner.defaultGasPrice", str(gas_price_wei)]
    if db_path is not None:
        db_path.mkdir(parents=True, exist_ok=True)
        command += ["--database.dbPath", str(db_path)]

    return _launch(
        "ganache",
        command,
        host=host,
        port=port,
        chain_id=chain_id,
        db_path=db_path,
        log_path=log_path,
        startup_timeout=startup_timeout,
    )


def anvil_bin() -> Path:
    """``$CIVIC_ANVIL_BIN``, else the anvil of the npm package ``@foundry-rs/anvil-linux-amd64``."""
    override = os.environ.get("CIVIC_ANVIL_BIN")
    if override:
        return Path(override)
    return REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def start_anvil(
    *,
    port: int,
    state_path: Path | None,
    funded_keys: Sequence[bytes],
    chain_id: int = 1337,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
    hardfork: str = "london",
    balance_wei: int = DEFAULT_BALANCE_WEI,
    gas_price_wei: int | None = None,
    state_interval: int | None = None,
    startup_timeout: float = 30.0,
) -> DevChain:
    """Start anvil (Foundry) and return once ``eth_chainId`` answers over HTTP.

    The same shape as :func:`start_ganache`, for running the suite on a second, independent EVM
    implementation. anvil takes no private keys on its command line, so it starts with no dev
    accounts at all (``--accounts 0``: no well-known mnemonic key holds ether) and each of
    ``funded_keys`` gets ``balance_wei`` through ``anvil_setBalance`` once the node answers.
    Mining is instant (anvil's default automine: one block per transaction).

    ``state_path`` is anvil's ``--state`` file: loaded at start when it exists, written on
    SIGTERM and every ``state_interval`` seconds (anvil's default 60). Unlike ganache, a SIGKILL
    loses what was not dumped yet (FIELD-NOTES). Keys are funded only when the state is new, so
    a restart keeps balances and nonces as they were. ``gas_price_wei=0`` also sets the base fee
    to zero and drops the minimum priority fee: a zero-gas chain like Besu's ``zeroBaseFee``.
    """
    binary = anvil_bin()
    if not binary.exists():
        raise DevChainError(f"anvil not found at {binary}; run ./scripts/setup")
    if not funded_keys:
        raise ValueError("give anvil at least one funded key")
    if any(len(key) != 32 for key in funded_keys):
        raise ValueError("funded keys must be 32-byte private keys")
    command = [
        str(binary),
        "--host",
        host,
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--hardfork",
        hardfork,
        "--accounts",
        "0",
        "--color",
        "never",
    ]
    if gas_price_wei is not None:
        command += ["--gas-price", str(gas_price_wei)]
        if gas_price_wei == 0:
            command += ["--block-base-fee-per-gas", "0", "--disable-min-priority-fee"]
    fresh = True
    if state_path is not None:
        if state_path.exists() and state_path.stat().st_size == 0:
            # A kill during a dump leaves an empty file, which anvil refuses to load.
            raise DevChainError(f"{state_path} is empty (anvil was killed while dumping state)")
        fresh = not state_path.exists()
        state_path.parent.mkdir(parents=True, exist_ok=True)
        command += ["--state", str(state_path)]
        if state_interval is not None:
            command += ["--state-interval", str(state_interval)]
    chain = _launch(
        "anvil",
        command,
        host=host,
        port=port,
        chain_id=chain_id,
        db_path=state_path,
        log_path=log_path,
        startup_timeout=startup_timeout,
    )
    if fresh:
        try:
            for key in funded_keys:
                address = "0x" + _address(key).hex()
                _rpc(chain.rpc_url, "anvil_setBalance", [address, hex(balance_wei)], timeout=5.0)
        except BaseException:
            chain.stop()
            raise
    return chain


def _address(key: bytes) -> bytes:
    # Imported here: eth_keys comes with web3, and devchain stays importable without it.
    from eth_keys.datatypes import PrivateKey

    return bytes(PrivateKey(key).public_key.to_canonical_address())


def _launch(
    name: str,
    command: list[str],
    *,
    host: str,
    port: int,
    chain_id: int,
    db_path: Path | None,
    log_path: Path | None,
    startup_timeout: float,
) -> DevChain:
    """Start ``command`` with its output in ``log_path`` (a temporary file when None, removed
    at stop) and wait until it answers ``eth_chainId`` with ``chain_id``."""
    owns_log = log_path is None
    if log_path is None:
        fd, tmp_name = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
        os.close(fd)
        log_path = Path(tmp_name)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)

    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,  # only prctl: safe between fork and exec
        )
    chain = DevChain(
        rpc_url=f"http://{host}:{port}",
        process=process,
        chain_id=chain_id,
        db_path=db_path,
        log_path=log_path,
        _owns_log=owns_log,
    )
    deadline = time.monotonic() + startup_timeout
    while True:
        if process.poll() is not None:
            tail = _tail(log_path)
            chain.stop()
            raise DevChainError(
                f"{name} exited with status {process.returncode} before answering "
                f"on {chain.rpc_url}:\n{tail}"
            )
        try:
            answered = _rpc_chain_id(chain.rpc_url, timeout=1.0)
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            answered = None
        if answered is not None:
            if answered != chain_id:
                chain.stop()
                raise DevChainError(
                    f"{chain.rpc_url} answers chain id {answered}, expected {chain_id}: "
                    "is another node on that port?"
                )
            return chain
        if time.monotonic() > deadline:
            tail = _tail(log_path)
            chain.stop()
            raise DevChainError(
                f"{name} did not answer on {chain.rpc_url} within {startup_timeout:.0f} s:\n{tail}"
            )
        time.sleep(0.02 if name == "anvil" else 0.1)
