"""civic-ledger contracts: Solidity sources, their compiled artifacts, and the loader for them.

The artifacts in ``contracts/build/`` are produced by ``scripts/compile_contracts`` and shipped
as package data, so a deployment needs neither Node nor a compiler. Importing this module stays
cheap on purpose (no web3): the verifier and the CLI import it too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Artifact", "ArtifactNotFound", "load_artifact"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class ArtifactNotFound(LookupError):
    """No compiled artifact of that name ships with the package."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract, as written by scripts/compile_contracts."""

    name: str
    abi: tuple[dict[str, Any], ...] = field(hash=False)  # dicts: hash by the other fields
    bytecode: str
    deployed_bytecode: str
    evm_version: str
    compiler: str


@cache
def load_artifact(name: str) -> Artifact:
    """The compiled artifact ``contracts/build/<name>.json``, e.g. ``"AnchorRegistry"``."""
    if not _NAME.match(name):
        raise ArtifactNotFound(f"not a contract name: {name!r}")
    resource = resources.files(__name__).joinpath("build", f"{name}.json")
    try:
        raw = json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactNotFound(
            f"no artifact for contract {name!r}; run scripts/compile_contracts"
        ) from exc
    return Artifact(
        name=raw["contractName"],
        abi=tuple(raw["abi"]),
        bytecode=raw["bytecode"],
        deployed_bytecode=raw["deployedBytecode"],
        evm_version=raw["evmVersion"],
        compiler=raw["compiler"],
    )
