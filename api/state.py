"""What the application holds for its lifetime: settings, engines, the chain probe."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.ratelimit import SlidingWindowLimiter
from ledger.chain import ChainClient, ChainError
from ledger.pii import Vault
from ledger.settings import Settings
from ledger.suggestions import Policy


@dataclass
class ChainProbe:
    """Asks the chain how it is at most every ``ttl`` seconds, with a short timeout, so
    /healthz stays fast and never hammers the node."""

    rpc_url: str
    contract: str | None
    ttl: float = 3.0
    _cached: dict[str, Any] | None = None
    _at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._at < self.ttl:
                return self._cached
            self._cached = self._probe()
            self._at = time.monotonic()
            return self._cached

    def _probe(self) -> dict[str, Any]:
        result: dict[str, Any] = {"rpc": self.rpc_url, "contract": self.contract}
        try:
            client = ChainClient(self.rpc_url, request_timeout=2.0)
            result["block"] = client.ping()
            result["chain_id"] = client.chain_id
            if self.contract:
                result["contract_code"] = client.has_code(self.contract)
                result["ok"] = bool(result["contract_code"])
                if not result["contract_code"]:
                    result["error"] = "no contract code at the configured address"
            else:
                result["ok"] = False
                result["error"] = "no AnchorRegistry address configured"
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
    chain_probe: ChainProbe
    vault: Vault
    policy: Policy
    submit_limiter: SlidingWindowLimiter
