"""What the application holds for its lifetime: settings, engines, the chain probe."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.writer import WriterClient
from api.writes import WriteContext
from ledger.chain import ChainClient, ChainError
from ledger.checkpoints import LogKeys
from ledger.groupcommit import GroupCommitter
from ledger.pii import Vault
from ledger.reanchor import ExpectedAnchor, check_chain
from ledger.settings import Settings
from ledger.suggestions import Policy


@dataclass
class ChainProbe:
    """Asks the chain how it is at most every ``ttl`` seconds, with a short timeout, so
    /healthz stays fast and never hammers the node.

    Besides "does the node answer" and "is there code at the registry", it checks that the last
    batch the store calls anchored (per log) is still on chain: a wiped development chain, or a
    fresh node on the port, is reported as ``reanchor_needed`` with what is missing and the
    command that repairs it (``civic-ledger reanchor``), not as a mere outage.
    """

    rpc_url: str
    contract: str | None
    ttl: float = 3.0
    _cached: dict[str, Any] | None = None
    _at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, expected: Sequence[ExpectedAnchor] = ()) -> dict[str, Any]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._at < self.ttl:
                return self._cached
            self._cached = self._probe(expected)
            self._at = time.monotonic()
            return self._cached

    def _probe(self, expected: Sequence[ExpectedAnchor]) -> dict[str, Any]:
        result: dict[str, Any] = {"rpc": self.rpc_url, "contract": self.contract}
        try:
            client = ChainClient(self.rpc_url, request_timeout=2.0)
            result["block"] = client.ping()
            result["chain_id"] = client.chain_id
            if not self.contract:
                result["ok"] = False
                result["error"] = "no AnchorRegistry address configured"
                return result
            check = check_chain(client, self.contract, expected)
            result["contract_code"] = check.contract_code
            result["ok"] = check.ok
            if not check.ok:
                result["error"] = check.message
                result["problems"] = list(check.problems)
                result["reanchor_needed"] = check.state == "reset"
                if check.state == "conflict":
                    result["conflict"] = True
        except ChainError as exc:
            result["ok"] = False
            result["error"] = f"{type(exc).__name__}: {exc}"
        return result


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    read_engine: Engine  # read_sessions' engine, for one-statement reads (api.deps.run_read)
    chain_probe: ChainProbe
    vault: Vault
    policy: Policy
    # Where the hot writes go (api.writes): the writer process, or without one
    # (an application made in-process) a writer thread of this process.
    writer_client: WriterClient | None = None
    writer: GroupCommitter | None = None
    # The logs' checkpoint keys (PROTOCOL §9; ledger.checkpoints).
    log_keys: LogKeys | None = None

    @cached_property
    def write_context(self) -> WriteContext:
        """What the hot write operations need besides their arguments (api.writes)."""
        return WriteContext(vault=self.vault, policy=self.policy)

    @cached_property
    def reads_inline(self) -> bool:
        """SQLite: the hot reads run on the event loop (api.deps.run_read); PostgreSQL: in
        pool threads."""
        return self.engine.dialect.name == "sqlite"


T = TypeVar("T")
_made_once_lock = threading.Lock()


def made_once(app_state: Any, name: str, make: Callable[[AppState], T]) -> T:
    """``app.state.<name>``, made by ``make(app.state.civic)`` at first use (once, even when
    several request threads ask at the same moment) and kept for the app's lifetime."""
    value: T | None = getattr(app_state, name, None)
    if value is None:
        with _made_once_lock:
            value = getattr(app_state, name, None)
            if value is None:
                value = make(app_state.civic)
                setattr(app_state, name, value)
    return value
