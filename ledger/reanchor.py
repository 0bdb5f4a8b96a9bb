"""Surviving a chain that lost our anchors: detect it, and re-anchor every sealed batch.

A development chain can be wiped (``data/chain`` deleted, a fresh ganache on the port); a
test network can be reset. The store still holds every record and every sealed batch with its
root, so nothing is lost, but the roots are no longer on any chain: no receipt can be checked.

:func:`check_chain` tells the two apart cheaply (one ``getCode`` and one ``batchOf`` per log):

* ``ok``: the registry has code, and the last batch the store calls anchored is on chain with
  the same root and size;
* ``reset``: no code at the registry, or the store's anchored batches are missing on chain (or
  were anchored on another registry or chain): run ``civic-ledger reanchor``;
* ``conflict``: the chain holds a *different* root for a batch the store anchored. That is not
  a reset but an alteration (of the store or of the chain): re-anchoring would paper over it,
  so :func:`reanchor` refuses and the inspectors' audit is the next step.

:func:`reanchor` (``civic-ledger reanchor``, run while the service is stopped) deploys a new
``AnchorRegistry`` unless the recorded one is still there, anchors every sealed batch of every
log again with the same numbers, roots and sizes (the contract accepts batch *n* only as
``nextBatch``, so they go in order), then, in one transaction, points the batch rows at the new
anchors and appends a ``ledger.reanchored`` record to each log it touched (subject ``chain``),
naming the old and new registry, the chain, how many batches and why. Those records are sealed
and anchored like any other, so the event itself is on chain and in every audit.

It is safe to run again after a crash: batches already on the new registry are recognised by
``batchOf`` and their transactions found from the ``Anchored`` event; the rows and the records
change only in the final transaction.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, utc_now
from core.records import CHAIN_SUBJECT, LOGS, REANCHORED_TYPE
from ledger import repository as repo
from ledger import service, tree
from ledger.chain import ANCHOR_GAS_LIMIT, ChainClient, ChainError, SignedAnchor
from ledger.deployment import DeploymentInfo, read_deployment, write_deployment
from ledger.models import BatchRow, LogHead
from ledger.worker import LogLock

log = logging.getLogger("civic.reanchor")

REANCHOR_ACTOR = {"role": "system", "id": "civic-ledger-reanchor"}
REANCHOR_HINT = (
    "stop the service and run `civic-ledger reanchor` to anchor every sealed batch again "
    "(same batch numbers and roots) on a registry on this chain"
)


class ReanchorError(RuntimeError):
    """Re-anchoring cannot or must not go on; the message says why and what to do."""


# -- detection --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedAnchor:
    """The last batch of a log that the store calls anchored: the chain must hold it."""

    log: str
    number: int
    root: bytes
    size: int
    contract: str | None
    chain_id: int | None


def expected_anchors(session: Session) -> list[ExpectedAnchor]:
    """Per log, the last batch the store calls anchored (logs with none are left out)."""
    expected = []
    for head in repo.all_log_heads(session):
        batch = repo.last_anchored_batch(session, head.log)
        if batch is not None:
            # Version 2: the whole log's root and size (PROTOCOL §8). A batch sealed before
            # the log trees has none yet: what its version 1 anchor carried.
            root, size = (
                (bytes(batch.log_root), batch.end)
                if batch.log_root is not None
                else (bytes(batch.root), batch.size)
            )
            expected.append(
                ExpectedAnchor(batch.log, batch.number, root, size, batch.contract, batch.chain_id)
            )
    return expected


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`check_chain` found: ``state`` ok, reset or conflict, and the problems."""

    state: Literal["ok", "reset", "conflict"]
    problems: tuple[str, ...] = ()
    contract_code: bool = True

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    @property
    def message(self) -> str:
        if self.ok:
            return "the chain holds every batch the store anchored"
        found = "; ".join(self.problems)
        if self.state == "conflict":
            return (
                f"{found}. The chain and the store disagree about an anchored root: that is "
                "an alteration, not a reset. Do not re-anchor; run `civic-verify audit`."
            )
        return f"the chain lost our anchors ({found}): {REANCHOR_HINT}"


def check_chain(
    client: ChainClient, contract: str, expected: Iterable[ExpectedAnchor]
) -> ChainCheck:
    """Is every anchor the store knows of still on chain? Raises ChainUnavailable when the node
    does not answer (that is an outage, not a reset)."""
    chain_id = client.chain_id
    if not client.has_code(contract):
        return ChainCheck(
            "reset", (f"no contract code at {contract} on chain {chain_id}",), contract_code=False
        )
    if client.protocol_version(contract) != 2:
        return ChainCheck(
            "reset",
            (
                f"{contract} is a protocol version 1 registry (each anchor one batch's root): "
                "this service anchors version 2 roots (the whole log's tree, PROTOCOL §8), "
                "which go on a registry of their own",
            ),
        )
    problems: list[str] = []
    conflict = False
    for e in expected:
        if e.chain_id is not None and e.chain_id != chain_id:
            problems.append(
                f"batch {e.number} of log {e.log} was anchored on chain {e.chain_id}, "
                f"the node serves chain {chain_id}"
            )
            continue
        if e.contract is not None and e.contract.lower() != contract.lower():
            problems.append(
                f"batch {e.number} of log {e.log} was anchored on registry {e.contract}, "
                f"the service uses {contract}"
            )
            continue
        on_chain = client.batch_of(contract, e.log, e.number)
        if on_chain is None:
            problems.append(
                f"batch {e.number} of log {e.log} is anchored in the store but {contract} "
                "does not hold it"
            )
        elif (on_chain.root, on_chain.size) != (e.root, e.size):
            conflict = True
            problems.append(
                f"batch {e.number} of log {e.log} is on chain with root {on_chain.root.hex()} "
                f"({on_chain.size} records), the store anchored root {e.root.hex()} "
                f"({e.size} records)"
            )
    if conflict:
        return ChainCheck("conflict", tuple(problems))
    return ChainCheck("reset" if problems else "ok", tuple(problems))


# -- re-anchoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Anchor:
    tx_hash: str
    block_number: int
    raw: bytes | None = None
    nonce: int | None = None
    gas_used: int | None = None


@dataclass
class ReanchorResult:
    """What ``reanchor`` did: the registry before and after, and per log the batches moved
    and the hash of the ``ledger.reanchored`` record written."""

    old_contract: str | None
    old_chain_id: int | None
    new_contract: str
    chain_id: int
    deployed: bool
    reason: str
    batches: dict[str, int] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.batches.values())


def _previous_anchor(rows: Iterable[BatchRow]) -> tuple[str | None, int | None]:
    """The registry and chain the store's anchored batches name (the most common)."""
    contracts = Counter(r.contract for r in rows if r.state == "anchored" and r.contract)
    chains = Counter(r.chain_id for r in rows if r.state == "anchored" and r.chain_id)
    return (
        contracts.most_common(1)[0][0] if contracts else None,
        chains.most_common(1)[0][0] if chains else None,
    )


def _conflicts(
    client: ChainClient, contract: str, batches: Mapping[str, Sequence[BatchRow]]
) -> list[str]:
    """Batches ``contract`` already holds that differ from the store's (empty: consistent)."""
    found = []
    for name, rows in batches.items():
        held = client.next_batch(contract, name)
        if held > len(rows):
            found.append(
                f"{contract} holds {held} batches of log {name}, the store only {len(rows)}"
            )
            continue
        for row in rows[:held]:
            on_chain = client.batch_of(contract, name, row.number)
            if on_chain is None or (on_chain.root, on_chain.size) != (row.anchored_root, row.end):
                shown = f"root {on_chain.root.hex()}" if on_chain else "nothing"
                found.append(
                    f"{contract} holds {shown} for batch {row.number} of log {name}, the store "
                    f"sealed the log's root {row.anchored_root.hex()}"
                )
                break
    return found


def _target_registry(
    client: ChainClient,
    *,
    configured: str | None,
    deployment_file: Path | None,
    rpc: str,
    batches: Mapping[str, Sequence[BatchRow]],
) -> tuple[str, bool]:
    """The registry to anchor on, and whether it was deployed now.

    A configured (``CIVIC_CONTRACT``) or recorded registry that still has code is used when
    what it holds agrees with the store (a re-run after a crash finds its own half-done work
    there); one that holds other roots is refused. Without code, a new one is deployed and
    recorded (never with ``CIVIC_CONTRACT``: the operator names that one).
    """
    candidate = configured
    if candidate is None and deployment_file is not None:
        recorded = read_deployment(deployment_file)
        if recorded is not None and recorded.chain_id == client.chain_id:
            candidate = recorded.address
    if candidate is not None and client.has_code(candidate):
        if client.protocol_version(candidate) != 2:
            if configured is not None:
                raise ReanchorError(
                    f"CIVIC_CONTRACT={configured} is a protocol version 1 registry; version 2 "
                    "anchors go on a registry of their own: unset CIVIC_CONTRACT to let "
                    "reanchor deploy one, or name a version 2 registry"
                )
            return _deploy(client, deployment_file, rpc), True
        conflicts = _conflicts(client, candidate, batches)
        if conflicts:
            raise ReanchorError(
                "; ".join(conflicts) + ". The registry holds other roots than the store: that "
                "is an alteration, not a reset. Nothing was changed; run `civic-verify audit`."
            )
        return candidate, False
    if configured is not None:
        raise ReanchorError(
            f"CIVIC_CONTRACT={configured} has no contract code on {rpc}: deploy a registry "
            "there and name it, or unset CIVIC_CONTRACT to let reanchor deploy one"
        )
    return _deploy(client, deployment_file, rpc), True


def _deploy(client: ChainClient, deployment_file: Path | None, rpc: str) -> str:
    """Deploy a new registry and record it in ``deployment_file``; its address."""
    deployment = client.deploy_registry()
    if deployment_file is not None:
        write_deployment(
            deployment_file,
            DeploymentInfo(
                address=deployment.address,
                chain_id=deployment.chain_id,
                tx_hash=deployment.tx_hash,
                block_number=deployment.block_number,
                rpc=rpc,
            ),
        )
    log.info(
        "deployed a new AnchorRegistry at %s (chain %d, block %d)",
        deployment.address,
        deployment.chain_id,
        deployment.block_number,
    )
    return deployment.address


def _send_in_order(
    client: ChainClient,
    contract: str,
    name: str,
    rows: Sequence[BatchRow],
    *,
    window: int,
    timeout: float,
) -> dict[int, _Anchor]:
    """Anchor ``rows`` (consecutive batches from ``nextBatch`` on), ``window`` transactions in
    flight at a time with consecutive nonces; each must be mined and succeed."""
    done: dict[int, _Anchor] = {}
    for start in range(0, len(rows), window):
        chunk = rows[start : start + window]
        signed: list[SignedAnchor] = []
        for row in chunk:
            nonce = signed[0].nonce + len(signed) if signed else None
            # The estimate would fail for batch n+1 while n is in flight: a fixed limit.
            signed.append(
                client.sign_anchor(
                    contract,
                    name,
                    row.number,
                    row.anchored_root,
                    row.end,
                    nonce,
                    gas=ANCHOR_GAS_LIMIT,
                )
            )
        for tx in signed:
            client.send_raw(tx.raw)
        for row, tx in zip(chunk, signed, strict=True):
            receipt = client.wait_for_receipt(tx.tx_hash, timeout)
            if receipt is None:
                raise ReanchorError(
                    f"batch {row.number} of log {name}: transaction {tx.tx_hash} not mined "
                    f"within {timeout:.0f} s; run `civic-ledger reanchor` again"
                )
            if receipt.status != 1:
                raise ReanchorError(
                    f"batch {row.number} of log {name}: transaction {tx.tx_hash} reverted in "
                    f"block {receipt.block_number}; run `civic-ledger reanchor` again"
                )
            done[row.number] = _Anchor(
                tx.tx_hash, receipt.block_number, tx.raw, tx.nonce, receipt.gas_used
            )
        log.info("log %s: re-anchored batches up to %d", name, chunk[-1].number)
    return done


def _locked_heads(session: Session, names: Iterable[str]) -> list[LogHead]:
    return [
        repo.lock_log_head(session, head.log)
        for head in repo.all_log_heads(session)
        if head.log in set(names)
    ]


def _read_batches(
    sessions: sessionmaker[Session], names: Iterable[str]
) -> dict[str, list[BatchRow]]:
    with sessions() as session:
        batches = {
            name: list(
                session.scalars(
                    select(BatchRow).where(BatchRow.log == name).order_by(BatchRow.number)
                )
            )
            for name in names
        }
    for name, rows in batches.items():
        for expected, row in enumerate(rows):
            if row.number != expected:
                raise ReanchorError(
                    f"the store's batches of log {name} skip number {expected}: that is not a "
                    "reset; run `civic-verify audit`"
                )
    return batches


def reanchor(
    *,
    engine: Engine,
    sessions: sessionmaker[Session],
    client: ChainClient,
    rpc: str,
    contract: str | None = None,
    deployment_file: Path | None = None,
    reason: str | None = None,
    clock: Clock = utc_now,
    window: int = 32,
    receipt_timeout: float = 60.0,
) -> ReanchorResult:
    """Anchor every sealed batch of the store again on a registry of ``client``'s chain (see
    the module doc). Holds every log's worker lock throughout, so it refuses to run beside an
    anchoring worker."""
    started = time.monotonic()
    names = sorted(LOGS)
    locks: list[LogLock] = []
    try:
        for name in names:
            lock = LogLock(engine, name)
            if not lock.acquire():
                raise ReanchorError(
                    f"an anchoring worker is active on log {name}: stop the service "
                    "(civic-ledger run) before re-anchoring"
                )
            locks.append(lock)
        with sessions.begin() as session:
            # A store older than the log trees: each batch's log root, before anything is
            # compared with or sent to a chain (this is how a version 1 store moves to 2).
            filled = sum(tree.backfill(session, head) for head in _locked_heads(session, names))
        if filled:
            log.info("computed the whole log's root of %d batches sealed before", filled)
        batches = _read_batches(sessions, names)
        old_contract, old_chain_id = _previous_anchor(r for rows in batches.values() for r in rows)
        with sessions() as session:
            before = check_chain_or_none(client, old_contract, expected_anchors(session))
        target, deployed = _target_registry(
            client,
            configured=contract,
            deployment_file=deployment_file,
            rpc=rpc,
            batches=batches,
        )
        chain_id = client.chain_id
        why = (reason or "").strip() or (
            "the chain lost the anchors: " + "; ".join(before.problems)
            if before is not None and not before.ok
            else f"batches moved to registry {target} of chain {chain_id}"
        )
        result = ReanchorResult(old_contract, old_chain_id, target, chain_id, deployed, why)

        anchors: dict[tuple[str, int], _Anchor] = {}
        for name, rows in batches.items():
            if not rows:
                continue
            held = client.next_batch(target, name)
            for row in rows[:held]:  # on the registry already (a re-run after a crash)
                if row.state == "anchored" and row.contract == target and row.chain_id == chain_id:
                    continue
                found = client.find_anchor(target, name, row.number)
                if found is None:
                    raise ReanchorError(
                        f"batch {row.number} of log {name} is on {target} but its Anchored "
                        "event was not found"
                    )
                anchors[(name, row.number)] = _Anchor(*found)
            sent = _send_in_order(
                client, target, name, rows[held:], window=window, timeout=receipt_timeout
            )
            anchors.update({(name, number): a for number, a in sent.items()})

        if not anchors:
            result.seconds = time.monotonic() - started
            return result
        now = clock()
        moved = Counter(name for name, _number in anchors)
        with sessions.begin() as session:
            for (name, number), anchor in sorted(anchors.items()):
                stored = repo.batch(session, name, number)
                assert stored is not None
                row = stored
                row.state = "anchored"
                row.contract = target
                row.chain_id = chain_id
                row.tx_hash = anchor.tx_hash
                row.block_number = anchor.block_number
                row.raw_tx = anchor.raw
                row.nonce = anchor.nonce
                row.gas_used = anchor.gas_used
                row.sent_at = now if anchor.raw is not None else row.sent_at
                row.anchored_at = now
                row.last_error = None
            for name in sorted(moved):
                sealed = service.append_record(
                    session,
                    log=name,
                    type=REANCHORED_TYPE,
                    subject=CHAIN_SUBJECT,
                    actor=REANCHOR_ACTOR,
                    body={
                        "reason": why,
                        "old_contract": old_contract,
                        "old_chain_id": old_chain_id,
                        "new_contract": target,
                        "chain_id": chain_id,
                        "batches": moved[name],
                        "first_batch": min(n for lg, n in anchors if lg == name),
                        "last_batch": max(n for lg, n in anchors if lg == name),
                    },
                    clock=lambda: now,
                )
                result.records[name] = sealed.record_hash
        result.batches = dict(sorted(moved.items()))
        result.seconds = time.monotonic() - started
        log.info(
            "re-anchored %d batches on %s (chain %d) in %.1f s",
            result.total,
            target,
            chain_id,
            result.seconds,
        )
        return result
    finally:
        for lock in locks:
            lock.release()


def check_chain_or_none(
    client: ChainClient, contract: str | None, expected: Iterable[ExpectedAnchor]
) -> ChainCheck | None:
    """``check_chain`` against the registry the store's batches name; None without one."""
    if contract is None:
        return None
    try:
        return check_chain(client, contract, expected)
    except ChainError:
        return None
