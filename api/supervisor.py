"""The process wiring of ``civic-ledger``: ``run`` (set everything up, then supervise the API,
the writer process, the anchoring worker, the verifier service and, in development, a local
witness) and ``api`` (the HTTP API alone, in one or several uvicorn processes).

It lives at the top layer, beside the API, because it names every part of the service: the
ledger below it (the data directory, the chain, the contract, the migrations: ``ledger.cli``)
never names what runs on top of it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.cosignature import Cosigner, parse_signer_key, parse_verifier_key
from ledger.checkpoints import LogKeys
from ledger.cli import (
    anchor_key,
    cmd_migrate,
    ensure_contract,
    prepare_data_dir,
    refuse_lost_anchors,
    start_dev_chain,
    stop_event,
)
from ledger.settings import Settings
from ledger.witnesses import Witness, format_witnesses

log = logging.getLogger("civic")


def writer_socket(data_dir: Path) -> Path:
    """Where the writer process (api.writer) listens: ``data/writer.sock``, or, when that
    path is too long for a Unix socket (108 bytes on Linux), a fresh 0700 directory of this
    user's in the temporary directory."""
    path = data_dir / "writer.sock"
    if len(os.fsencode(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="civic-writer-")) / "writer.sock"


DEV_WITNESS_NAME = "witness.localhost"
# Children the service works without: the local witness only adds cosignatures, so one that
# keeps failing (its port taken, say) is given up alone instead of stopping everything.
OPTIONAL_CHILDREN = frozenset({"witness"})


def dev_witness_key(data_dir: Path) -> Cosigner:
    """The local development witness's cosignature/v1 key, ``data/witness.key`` (C2SP signer
    key text, mode 0600), made at first use: `civic-verify witness serve` reads it."""
    path = data_dir / "witness.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_signer_key(path.read_text(encoding="ascii").strip())
    cosigner = Cosigner(DEV_WITNESS_NAME, secrets.token_bytes(32))
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(cosigner.signer_key + "\n")
    return cosigner


def runs_dev_witness(settings: Settings) -> bool:
    """`run` starts a local witness in development when CIVIC_WITNESSES is not set at all
    (set, even empty, it names the witnesses: an operator's choice)."""
    return settings.env != "production" and settings.witnesses is None


def api_workers(settings: Settings) -> int:
    """CIVIC_API_WORKERS, or one API process per core (at most 4): one Python process uses
    one core at most (the GIL). Appends are safe across processes: SQLite serialises write
    transactions (BEGIN IMMEDIATE), PostgreSQL the log head's row lock. Measured with
    scripts/load on 2 cores: two processes beat one on SQLite and PostgreSQL alike."""
    return settings.api_workers or max(1, min(4, os.cpu_count() or 1))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How ``civic-ledger api`` runs uvicorn.

    ``proxy_headers`` is off: uvicorn's default believes ``X-Forwarded-For`` from loopback
    (or from ``FORWARDED_ALLOW_IPS``), so any local client, or a proxy that passes the header
    on, could name its own address and escape the per-address limits. The app itself believes
    it only from ``CIVIC_TRUSTED_PROXIES`` (``api.security.install``), whatever server runs it.
    """
    workers = api_workers(settings)
    return {
        # Several processes: each must die with this one (see api.app.create_worker_app).
        "app": "api.app:create_worker_app" if workers > 1 else "api.app:create_app",
        "factory": True,
        "host": settings.api_host,
        "port": settings.api_port,
        "workers": workers,
        "proxy_headers": False,
        "forwarded_allow_ips": "",
        "access_log": os.environ.get("CIVIC_ACCESS_LOG", "0") == "1",
        "log_level": "warning",
    }


def cmd_api(settings: Settings) -> int:
    import uvicorn

    from ledger.pii import load_or_create_pii_key

    cmd_migrate(settings)
    # Created here, once, so that several worker processes never race to create it.
    settings.resolved_data_dir.mkdir(parents=True, exist_ok=True)
    load_or_create_pii_key(settings.resolved_pii_key_file)
    if os.environ.get("FORWARDED_ALLOW_IPS") and not settings.trusted_proxy_list:
        log.warning(
            "FORWARDED_ALLOW_IPS is ignored: name the reverse proxies in CIVIC_TRUSTED_PROXIES "
            "(until then every client is counted at the proxy's address)"
        )
    options = uvicorn_options(settings)
    uvicorn.run(options.pop("app"), **options)
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
    """Starts the API, the writer, the worker and the verifier service as child processes,
    restarts one that dies (with :class:`RestartPolicy`), and stops everything on
    SIGTERM/SIGINT. Children die with the supervisor (PDEATHSIG)."""

    def __init__(
        self, settings: Settings, env: dict[str, str], witness_args: list[str] | None = None
    ) -> None:
        self.settings = settings
        self.env = env
        self.witness_args = witness_args or []
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, RestartPolicy] = {}

    def command(self, name: str) -> list[str]:
        """The child's command line: a sub-command of this very program (``api.cli``, the
        ``civic-ledger`` console script), or the verifier's own program, which shares no code
        path with the store."""
        if name == "verifier":
            return [
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
            ]
        if name == "witness":  # the local development witness (C2SP tlog-witness)
            return [sys.executable, "-m", "verifier.cli", "witness", "serve", *self.witness_args]
        return [sys.executable, "-m", "api.cli", name]

    def start(self, name: str) -> None:
        from ledger.devchain import die_with_parent

        self.children[name] = subprocess.Popen(
            self.command(name),
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
                if delay is None and name in OPTIONAL_CHILDREN:
                    log.error(
                        "%s exited (code %s) and keeps failing: no longer restarted; the rest "
                        "of the service goes on (checkpoints stay without its cosignature)",
                        name,
                        code,
                    )
                    del self.children[name]
                    continue
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
    data_dir = prepare_data_dir(settings)
    stop = stop_event()
    key = anchor_key(settings)
    cmd_migrate(settings)
    chain = None
    if settings.runs_dev_chain:
        log.info(
            "starting the local chain (ganache) on port %d, kept in %s",
            settings.chain_port,
            data_dir / "chain",
        )
        chain = start_dev_chain(settings, data_dir, key)
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
        witness_args: list[str] = []
        if runs_dev_witness(settings):
            witness, witness_args = dev_witness(settings, data_dir, env, contract)
            env["CIVIC_WITNESSES"] = format_witnesses([witness])
        supervisor = Supervisor(settings, env, witness_args)
        if witness_args:
            supervisor.start("witness")
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
            + (
                f"  witness        http://127.0.0.1:{settings.witness_port}   (C2SP "
                "tlog-witness: cosigns each checkpoint, see /api/v1/logs/suggestions/checkpoint)\n"
                if witness_args
                else ""
            )
            + f"  chain (RPC)    {settings.resolved_chain_rpc}\n"
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


def dev_witness(
    settings: Settings, data_dir: Path, env: dict[str, str], contract: str
) -> tuple[Witness, list[str]]:
    """The local witness `run` starts in development, and the arguments of its
    `civic-verify witness serve`: its key in the data directory, every log's verifier key,
    the chain and the registry it checks each checkpoint against, its state file."""
    cosigner = dev_witness_key(data_dir)
    log_keys = LogKeys(settings)
    args = ["--key", str(data_dir / "witness.key")]
    for log_name in sorted(log_keys.signers):
        args += ["--log", log_keys.verifier_key(log_name)]
    args += [
        "--rpc",
        env["CIVIC_CHAIN_RPC"],
        "--contract",
        contract,
        "--state",
        str(data_dir / "witness.state.sqlite"),
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.witness_port),
    ]
    url = f"http://127.0.0.1:{settings.witness_port}"
    return Witness(url, parse_verifier_key(cosigner.verifier_key)), args


#: The sub-commands of ``civic-ledger`` that this module runs, with their help.
COMMANDS: dict[str, tuple[Callable[[Settings], int], str]] = {
    "run": (cmd_run, "set up and supervise the whole service (what ./scripts/run does)"),
    "api": (cmd_api, "the HTTP API alone"),
}
