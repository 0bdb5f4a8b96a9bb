"""Where the AnchorRegistry lives: ``CIVIC_CONTRACT``, or the file written at first deploy."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ledger.settings import Settings


@dataclass(frozen=True)
class DeploymentInfo:
    address: str
    chain_id: int
    tx_hash: str
    block_number: int
    rpc: str


def read_deployment(path: Path) -> DeploymentInfo | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return DeploymentInfo(**data)


def write_deployment(path: Path, info: DeploymentInfo) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def contract_address(settings: Settings) -> str | None:
    if settings.contract:
        return settings.contract
    info = read_deployment(settings.deployment_file)
    return info.address if info else None
