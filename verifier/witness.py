"""A witness: another institution recomputes every anchored root and co-signs it on chain.

PROTOCOL §3: accounts holding ``WITNESS_ROLE`` may call ``attest(logId, batch, root)`` after
recomputing the root themselves; the contract accepts only the anchored root, once per witness.
Under version 2 (§8) that root is the whole log's at the batch's end. ``Witness`` follows
batches 0, 1, 2, … of one log through the service's public export (version 2 only), checks each
with ``verify_batch_export`` (the frontier of the tree before the batch and the batch's leaves →
the root, export → chain, the frontier → the root anchored for the batch before, so the log was
not rewritten between the two anchors), and attests only a batch that checks out. Anything else
(``inconsistent`` included) is reported loudly and never attested, and the witness goes on with
the next batch.

Restarts are idempotent: progress is kept in a small state file beside the key, and before
attesting the witness asks the chain ``hasAttested`` (the contract's own record), so a lost or
stale state file never leads to a second attestation. Transactions are signed locally with
the witness's key (hex, as ``civic-ledger`` writes keys, or an encrypted keystore with its
password file: group and others must not be able to read either; ``contracts.keys`` loads
both) and sent raw, built, priced and signed the way the anchoring worker's are
(``contracts.transactions``): EIP-1559 when the chain has a base fee, legacy otherwise (or as
``tx_type`` says), or at a fixed ``gas_price_wei`` (0 on zero-gas permissioned chains). The ABI
is the registry's compiled artifact (``contracts.registry``).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    Web3Exception,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from contracts.keys import KeyFileError, KeyPasswordNeeded, load_key
from contracts.registry import log_id, registry_abi, role_id
from contracts.transactions import (
    FeePolicy,
    TransactionSigner,
    custom_errors,
    decode_revert,
    revert_data,
)
from verifier.batch import (
    BatchVerdict,
    BatchVerification,
    pending_batch,
    verify_batch_export,
)
from verifier.chain import ChainReader
from verifier.errors import (
    BatchUnavailable,
    ChainError,
    ChainUnreachable,
    UnknownBatch,
    VerificationError,
)
from verifier.fetch import fetch_batch_export

WITNESS_ROLE = role_id("WITNESS_ROLE")
# A version 1 export proves nothing about the batches before it: attest only version 2 ones.
WITNESSED_VERSIONS = (2,)


class WitnessError(VerificationError):
    """The witness cannot go on: unusable key, missing role, refused transaction."""


class KeyFileRefused(WitnessError):
    """The key file is missing, unsafe (readable by group or others) or not a hex key."""


class NotAWitness(WitnessError):
    """The key's account does not hold WITNESS_ROLE on the contract."""


def load_witness_key(path: Path, password: str | None = None) -> bytes:
    """The 32-byte secp256k1 key in ``path``: one line of hex (``0x`` optional), or, with
    ``password``, a Web3 Secret Storage (v3) keystore such as deploy/besu/generate.py writes.

    Refuses a file that group or others may access (as ``civic-ledger`` does for its own key),
    a symlink, and anything that is not a valid private key.
    """
    try:
        return load_key(path, password)
    except KeyPasswordNeeded as exc:
        raise KeyFileRefused(f"{exc}: give its --password-file") from None
    except KeyFileError as exc:
        raise KeyFileRefused(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Attested:
    """A mined ``attest`` transaction."""

    tx_hash: str
    block: int


class AttestSigner:
    """Signs and sends ``attest`` with one key over JSON-RPC (local keys; fees and signing as
    ``contracts.transactions`` does them for the anchoring worker too)."""

    def __init__(
        self,
        rpc_url: str,
        key: bytes,
        *,
        timeout: float = 10.0,
        tx_type: str = "auto",
        gas_price_wei: int | None = None,
        tx_timeout: float = 60.0,
        poll_interval: float = 0.1,
    ) -> None:
        policy = FeePolicy(tx_type, gas_price_wei)  # refuses a bad tx_type or a negative price
        self.rpc_url = rpc_url
        self.gas_price_wei = gas_price_wei
        self.tx_timeout = tx_timeout
        self.poll_interval = poll_interval
        self._w3 = Web3(
            HTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
            )
        )
        self._w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self._signer = TransactionSigner(self._w3, key, policy)
        self.address: ChecksumAddress = self._signer.address
        self._abi = registry_abi()
        self._errors = custom_errors(self._abi)

    @contextmanager
    def _asking(self, what: str) -> Iterator[None]:
        try:
            yield
        except (OSError, ProviderConnectionError, RequestTimedOut) as exc:
            # requests' ConnectionError and Timeout are OSErrors.
            raise ChainUnreachable(f"cannot reach {self.rpc_url} ({what}): {exc}") from exc
        except TimeExhausted as exc:
            raise ChainError(f"{what}: not mined within {self.tx_timeout:g} s") from exc
        except (Web3Exception, ValueError) as exc:
            raise ChainError(f"{self.rpc_url} failed on {what}: {exc}") from exc

    def _registry(self, contract: str) -> Any:
        return self._w3.eth.contract(address=to_checksum_address(contract), abi=self._abi)

    def is_witness(self, contract: str) -> bool:
        """Whether this key's account holds WITNESS_ROLE (OpenZeppelin ``hasRole``)."""
        with self._asking("hasRole"):
            try:
                fn = self._registry(contract).functions.hasRole(WITNESS_ROLE, self.address)
                return bool(fn.call())
            except (ContractLogicError, BadFunctionCallOutput) as exc:
                raise ChainError(f"{contract} does not answer hasRole: {exc}") from exc

    def has_attested(self, contract: str, log: str, batch: int) -> bool:
        """Whether this witness already attested the batch (the contract's own record)."""
        with self._asking("hasAttested"):
            try:
                fn = self._registry(contract).functions.hasAttested(
                    log_id(log), batch, self.address
                )
                return bool(fn.call())
            except (ContractLogicError, BadFunctionCallOutput) as exc:
                raise ChainError(f"{contract} does not answer hasAttested: {exc}") from exc

    def attest(self, contract: str, log: str, batch: int, root: bytes) -> Attested:
        """Sign, send and wait for ``attest(keccak256(log), batch, root)``.

        The gas estimate runs the contract's checks first, so a refusal (not anchored, another
        root, already attested, no role) arrives as a WitnessError naming it, before anything
        is signed.
        """
        fn = self._registry(contract).functions.attest(log_id(log), batch, bytes(root))
        with self._asking("attest"):
            try:
                gas = self._signer.estimate(fn)
            except (ContractLogicError, Web3RPCError) as exc:
                raise self._refused(exc, contract, log, batch) from exc
            signed = self._signer.sign(fn, gas=gas)
            try:
                tx_hash = self._w3.eth.send_raw_transaction(signed.raw)
            except (Web3RPCError, ValueError) as exc:
                raise WitnessError(f"the node refused the attest transaction: {exc}") from exc
            receipt = self._w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.tx_timeout, poll_latency=self.poll_interval
            )
        if int(receipt["status"]) != 1:
            raise WitnessError(
                f"attest transaction 0x{bytes(tx_hash).hex()} failed in block "
                f"{receipt['blockNumber']}"
            )
        return Attested("0x" + bytes(tx_hash).hex(), int(receipt["blockNumber"]))

    def _refused(self, exc: Exception, contract: str, log: str, batch: int) -> WitnessError:
        name, args = decode_revert(revert_data(exc), self._errors)
        where = f"batch {batch} of log {log!r} at {contract}"
        if name == "AccessControlUnauthorizedAccount":
            return NotAWitness(
                f"{self.address} does not hold WITNESS_ROLE on {contract}: ask the registry's "
                "admin to grant it"
            )
        if name == "AlreadyAttested":
            return WitnessError(f"{self.address} has already attested {where}")
        if name == "NotAnchored":
            return WitnessError(f"the contract says {where} is not anchored")
        if name == "AttestedRootMismatch" and {"anchored", "attested"} <= args.keys():
            anchored, attested = bytes(args["anchored"]).hex(), bytes(args["attested"]).hex()
            return WitnessError(
                f"the contract refuses root {attested} for {where}: it anchors {anchored}"
            )
        return WitnessError(f"attest of {where} refused: {exc}")


@dataclass
class WitnessState:
    """Where the witness is: the first batch not yet settled, and the batches it refused."""

    contract: str | None = None
    chain_id: int | None = None
    next_batch: int = 0
    refused: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                contract=raw.get("contract"),
                chain_id=raw.get("chain_id"),
                next_batch=int(raw.get("next_batch", 0)),
                refused={int(k): str(v) for k, v in dict(raw.get("refused", {})).items()},
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, AttributeError):
            # A damaged state file only costs a rescan: hasAttested on chain is the truth.
            return cls()

    def save(self, path: Path) -> None:
        data = {
            "contract": self.contract,
            "chain_id": self.chain_id,
            "next_batch": self.next_batch,
            "refused": {str(k): v for k, v in sorted(self.refused.items())},
        }
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, path)


def state_path_for(key_path: Path, log: str) -> Path:
    """The witness's progress file for ``log``: beside the key, e.g. ``witness.key.suggestions.json``."""
    return key_path.with_name(f"{key_path.name}.{log}.json")


@dataclass
class PassReport:
    """What one pass over the log did."""

    attested: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)
    refused: dict[int, BatchVerification] = field(default_factory=dict)
    waiting: str | None = None  # why the pass stopped before the end, if it did

    @property
    def mismatches(self) -> int:
        return len(self.refused)


class Witness:
    """Follows one log's batches and attests each one that checks out (see the module doc)."""

    def __init__(
        self,
        *,
        log: str,
        api_url: str,
        reader: ChainReader,
        signer: AttestSigner,
        state_path: Path,
        contract: str | None = None,
        timeout: float = 10.0,
        http_transport: httpx.BaseTransport | None = None,
        out: TextIO | None = None,
        err: TextIO | None = None,
    ) -> None:
        self.log = log
        self.api_url = api_url
        self.reader = reader
        self.signer = signer
        self.state_path = state_path
        self.contract = contract
        self.timeout = timeout
        self.http_transport = http_transport
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.state = WitnessState.load(state_path)
        if contract and self.state.contract and self.state.contract.lower() != contract.lower():
            self.state = WitnessState()  # progress kept for another deployment: start over
        self._role_checked: set[str] = set()
        self._rechecked = False

    def _say(self, text: str) -> None:
        self.out.write(f"witness: {text}\n")
        self.out.flush()

    def _alarm(self, result: BatchVerification) -> None:
        bar = "!" * 78
        self.err.write(
            f"{bar}\nwitness: MISMATCH in batch {result.batch} of log {self.log!r}: "
            f"{result.verdict.value.upper()}\n  {result.reason}\n  NOT attested.\n{bar}\n"
        )
        self.err.flush()

    def _check(self, batch: int) -> BatchVerification | None:
        """Fetch and verify one batch; None when the service has no such batch (yet)."""
        try:
            export = fetch_batch_export(
                self.api_url, self.log, batch, timeout=self.timeout, transport=self.http_transport
            )
        except UnknownBatch:
            return None
        if isinstance(export, str):
            return pending_batch(self.log, batch, export)
        return verify_batch_export(
            export,
            self.reader,
            log=self.log,
            batch=batch,
            contract=self.contract,
            versions=WITNESSED_VERSIONS,
        )

    def _settle(self, result: BatchVerification, report: PassReport) -> None:
        """Attest a batch that checked out, unless this witness already did."""
        contract = str(result.contract)
        if self.state.contract is not None and self.state.contract.lower() != contract.lower():
            self.state = WitnessState()  # another deployment: start over (hasAttested decides)
        self.state.contract, self.state.chain_id = contract, result.chain_id
        if self.signer.has_attested(contract, self.log, result.batch):
            report.already.append(result.batch)
            return
        if contract.lower() not in self._role_checked:
            if not self.signer.is_witness(contract):
                raise NotAWitness(
                    f"{self.signer.address} does not hold WITNESS_ROLE on {contract}: ask the "
                    "registry's admin to grant it"
                )
            self._role_checked.add(contract.lower())
        assert result.root is not None
        done = self.signer.attest(contract, self.log, result.batch, bytes.fromhex(result.root))
        report.attested.append(result.batch)
        self._say(
            f"attested batch {result.batch} of log {self.log!r}: root {result.root} "
            f"(tx {done.tx_hash}, block {done.block})"
        )

    def _recheck_refused(self, report: PassReport) -> None:
        """Once per process: look again at batches refused before (the export may be fixed)."""
        for batch in sorted(self.state.refused):
            result = self._check(batch)
            if result is None or result.verdict is BatchVerdict.PENDING:
                continue
            if result.valid:
                del self.state.refused[batch]
                self._settle(result, report)
            else:
                self.state.refused[batch] = f"{result.verdict.value}: {result.reason}"
                report.refused[batch] = result
                self._alarm(result)
            self.state.save(self.state_path)

    def run_pass(self) -> PassReport:
        """Check every batch from the first unsettled one until the service has no more."""
        report = PassReport()
        if not self._rechecked:
            self._recheck_refused(report)
            self._rechecked = True
        batch = self.state.next_batch
        while True:
            result = self._check(batch)
            if result is None:
                break
            if result.verdict is BatchVerdict.PENDING:
                report.waiting = f"batch {batch} is being anchored ({result.reason})"
                break
            if result.verdict is BatchVerdict.NOT_ANCHORED:
                # The service exports it as anchored but our node does not have it (yet): a
                # lagging node, or a lie; either way nothing later can be anchored before it.
                self.err.write(f"witness: batch {batch} not attested: {result.reason}\n")
                report.waiting = result.reason
                break
            if result.valid:
                self._settle(result, report)
            else:
                self.state.refused[batch] = f"{result.verdict.value}: {result.reason}"
                report.refused[batch] = result
                self._alarm(result)
            batch += 1
            self.state.next_batch = batch
            self.state.save(self.state_path)
        return report

    def follow(
        self,
        poll: float,
        *,
        passes: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Run passes every ``poll`` seconds (forever, or ``passes`` times). Errors reaching the
        service or the chain are reported and retried; a missing role or a bad key is not."""
        done = 0
        mismatches = 0
        while passes is None or done < passes:
            try:
                mismatches += self.run_pass().mismatches
            except (NotAWitness, KeyFileRefused):
                raise
            except (BatchUnavailable, ChainError, WitnessError) as exc:
                self.err.write(f"witness: {exc}; retrying in {poll:g} s\n")
                self.err.flush()
            done += 1
            if passes is None or done < passes:
                sleep(poll)
        return mismatches
