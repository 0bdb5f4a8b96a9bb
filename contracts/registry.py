"""The AnchorRegistry as its callers name it (PROTOCOL §3): its artifact, its ABI, the ids of its
logs and of its roles. One definition each, for the ledger's chain client, the verifier's chain
reader and the witness.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_utils.crypto import keccak

from contracts import load_artifact

__all__ = ["REGISTRY", "ROLES", "log_id", "registry_abi", "role_id"]

#: The registry's artifact in ``contracts/build/``.
REGISTRY = "AnchorRegistry"

#: The roles of the registry (OpenZeppelin AccessControl).
ROLES = ("DEFAULT_ADMIN_ROLE", "ANCHORER_ROLE", "WITNESS_ROLE")


def registry_abi() -> list[dict[str, Any]]:
    """The registry's ABI, as compiled into ``contracts/build/AnchorRegistry.json``."""
    return list(load_artifact(REGISTRY).abi)


@lru_cache(maxsize=64)  # three logs, asked for on every verification
def log_id(name: str) -> bytes:
    """PROTOCOL §3: ``logId = keccak256(utf8(log name))`` (Keccak-256, not SHA3-256)."""
    return bytes(keccak(name.encode("utf-8")))


def role_id(name: str) -> bytes:
    """The bytes32 id of a role: zero for ``DEFAULT_ADMIN_ROLE``, else ``keccak256(name)``, as
    OpenZeppelin AccessControl and the registry define them."""
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}; one of {', '.join(ROLES)}")
    return bytes(32) if name == "DEFAULT_ADMIN_ROLE" else bytes(keccak(text=name))
