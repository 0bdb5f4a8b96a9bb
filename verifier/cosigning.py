"""A C2SP tlog-witness (c2sp.org/tlog-witness) that cosigns only what the chain anchored.

PROTOCOL §9: witnesses cosign checkpoints per C2SP ``tlog-cosignature`` and are driven per
``tlog-witness``. ``POST <prefix>/add-checkpoint`` takes ``old <size>\\n``, at most 63 base64
consistency proof lines, an empty line and the checkpoint note, and answers, in this order:

* 400 — the body is not of that form (or larger than 64 KiB), or ``old`` is above the size;
* 404 — the checkpoint's origin is not the name of a configured log key;
* 403 — no signature by the origin's key verifies (a line by it that fails included);
* 409 ``text/x.tlog.size``, body ``<size>\\n`` — ``old`` is not the size this witness last
  cosigned for the origin (0 when it never did);
* 409 — ``old`` equals the size but the root is not the one cosigned at that size (split view);
* 422 — the consistency proof from the stored (size, root) to the checkpoint does not verify;

then, beyond C2SP (PROTOCOL §9), it asks the chain whether some anchored batch of the log
holds exactly this size and root (``batchOf``; sizes grow with the batch number, §8, so the
batch is found by binary search in ``[0, nextBatch)``):

* 409 — a batch of that size is anchored with another root;
* 422 — no anchored batch has that size (yet);
* 503 — the chain cannot be asked; nothing is cosigned;
* 200 — the cosignature/v1 line of the witness key (``— <name> <base64>\\n``), timestamped now.

Every refusal after the signature verified is kept with the checkpoint in the state file's
``refused`` table (tlog-witness: it "might be proof of log misbehavior") and logged.

State: one SQLite file, ``cosigned(origin, size, root)``. The checks against the stored
state, the chain check and the update run inside one ``BEGIN IMMEDIATE`` transaction that is
committed (``synchronous=FULL``) before the answer, so two requests, in one process or in two
witness processes sharing the file, are serialised and cannot roll the state back, and a
crash leaves either the old state (nothing was answered) or the new one.

The log's name for ``batchOf`` is the origin's last path segment (``<deployment>/<log>``,
§9); a log key whose name does not end in ``/<log name>`` is refused at start.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from contracts.secretfile import SecretFileError, read_secret_file
from core.checkpoint import Checkpoint, MalformedCheckpoint, parse_checkpoint
from core.cosignature import Cosigner, parse_signer_key
from core.merkle import ZERO_ROOT, empty_root
from core.note import (
    BadSignature,
    Ed25519Verifier,
    MalformedKey,
    MalformedNote,
    UnknownKey,
    decode_base64,
    open_note,
    parse_verifier_key,
)
from core.records import LOGS
from core.tlog import verify_consistency
from verifier.chain import log_id
from verifier.errors import ChainError, ContractMismatch, VerificationError

log = logging.getLogger("civic.witness")

MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
MAX_SIZE = 2**64 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cosigned (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    checkpoint TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    origin TEXT NOT NULL,
    old_size INTEGER NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    checkpoint TEXT NOT NULL
);
"""


class WitnessKeyError(VerificationError):
    """The witness key file or a log key cannot be used."""


class AnchorIndex(Protocol):
    """What the witness reads from the chain (``Web3ChainReader`` is one)."""

    def batch_of(self, contract: str, log_id: bytes, batch: int) -> tuple[bytes, int, int, int]:
        """``batchOf(logId, batch)``: (root, size, anchoredAt, blockNumber)."""
        ...

    def next_batch(self, contract: str, log_id: bytes) -> int:
        """``nextBatch(logId)``."""
        ...


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, content type and body."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


class _Refused(Exception):
    def __init__(self, status: int, reason: str, content_type: str | None = None) -> None:
        super().__init__(reason)
        self.answer = Answer(status, reason if reason.endswith("\n") else reason + "\n")
        if content_type is not None:
            self.answer = Answer(status, reason, content_type)


@dataclass(frozen=True, slots=True)
class _Request:
    old_size: int
    proof: list[bytes]
    note: str


def parse_add_checkpoint(body: bytes) -> _Request:
    """The add-checkpoint body: ``old N``, up to 63 base64 hashes, an empty line, the note.

    Raises _Refused(400) on any other form.
    """
    if len(body) > MAX_BODY:
        raise _Refused(400, f"the body is larger than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(400, "the body is not UTF-8") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise _Refused(400, "no empty line between the old size and proof lines and the checkpoint")
    lines = head.split("\n")
    old_line, proof_lines = lines[0], lines[1:]
    if not old_line.startswith("old "):
        raise _Refused(400, "the first line is 'old <size>'")
    old_text = old_line[len("old ") :]
    if not _DECIMAL.fullmatch(old_text) or int(old_text) > MAX_SIZE:
        raise _Refused(400, f"the old size is a decimal without leading zeroes, got {old_text!r}")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise _Refused(400, f"at most {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(proof_lines, start=1):
        try:
            hash_ = decode_base64(line)
        except ValueError:
            raise _Refused(400, f"proof line {number} is not base64") from None
        if len(hash_) != 32:
            raise _Refused(400, f"proof line {number} is not a 32-byte hash")
        proof.append(hash_)
    return _Request(int(old_text), proof, note)


def load_cosigner(path: Path) -> Cosigner:
    """The witness's cosignature/v1 signer key from a file only its owner may read."""
    try:
        text = read_secret_file(path, "the witness key").decode("utf-8").strip()
        return parse_signer_key(text)
    except (SecretFileError, UnicodeDecodeError, MalformedKey, ValueError) as exc:
        raise WitnessKeyError(str(exc)) from exc


def write_new_cosigner(path: Path, name: str) -> Cosigner:
    """A new witness key named ``name``, written to a new file of mode 0600 (never replaced)."""
    cosigner = Cosigner(name, os.urandom(32))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WitnessKeyError(f"{path} exists: a witness key is never overwritten") from None
    except OSError as exc:
        raise WitnessKeyError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(cosigner.signer_key + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return cosigner


def log_keys_from(texts: Sequence[str]) -> dict[str, Ed25519Verifier]:
    """The configured log keys by origin; WitnessKeyError for a malformed or misnamed one."""
    keys: dict[str, Ed25519Verifier] = {}
    for text in texts:
        try:
            key = parse_verifier_key(text.strip())
        except MalformedKey as exc:
            raise WitnessKeyError(f"--log {text!r}: {exc}") from exc
        name = key.name.rsplit("/", 1)[-1]
        if "/" not in key.name or name not in LOGS:
            raise WitnessKeyError(
                f"--log {key.name}: a log key is named <deployment>/<log>, log one of {sorted(LOGS)}"
            )
        if key.name in keys:
            raise WitnessKeyError(f"two --log keys for {key.name}")
        keys[key.name] = key
    if not keys:
        raise WitnessKeyError("no --log key: the witness would know no log")
    return keys


class CheckpointWitness:
    """Checks and cosigns add-checkpoint requests (see the module doc)."""

    def __init__(
        self,
        *,
        cosigner: Cosigner,
        log_keys: dict[str, Ed25519Verifier],
        state_path: Path,
        chain: AnchorIndex,
        contract: str,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 30.0,
    ) -> None:
        self.cosigner = cosigner
        self.log_keys = dict(log_keys)
        self.state_path = state_path
        self.chain = chain
        self.contract = contract
        self.clock = clock
        self.busy_timeout = busy_timeout
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.state_path, timeout=self.busy_timeout, isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        return db

    def cosigned(self, origin: str) -> tuple[int, bytes] | None:
        """The (size, root) last cosigned for ``origin``, or None."""
        db = self._connect()
        try:
            row = db.execute(
                "SELECT size, root FROM cosigned WHERE origin = ?", (origin,)
            ).fetchone()
        finally:
            db.close()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def add_checkpoint(self, body: bytes) -> Answer:
        """The answer to ``POST add-checkpoint`` with ``body``."""
        try:
            request = parse_add_checkpoint(body)
            checkpoint = self._open(request.note)
            if request.old_size > checkpoint.size:
                raise _Refused(
                    400, f"old size {request.old_size} is above the checkpoint's {checkpoint.size}"
                )
            return self._check_and_cosign(request, checkpoint)
        except _Refused as refused:
            return refused.answer

    def _open(self, note: str) -> Checkpoint:
        try:
            text = note.partition("\n\n")[0] + "\n"
            origin = parse_checkpoint(text).origin
        except MalformedCheckpoint as exc:
            raise _Refused(400, f"not a checkpoint: {exc}") from None
        key = self.log_keys.get(origin)
        if key is None:
            raise _Refused(404, f"unknown origin {origin!r}")
        try:
            opened = open_note(note, [key])
        except MalformedNote as exc:
            raise _Refused(400, f"not a signed note: {exc}") from None
        except (BadSignature, UnknownKey) as exc:
            raise _Refused(403, f"no signature by {key.verifier_key} verifies: {exc}") from None
        try:
            return parse_checkpoint(opened.text)
        except MalformedCheckpoint as exc:
            raise _Refused(400, f"not a checkpoint: {exc}") from None

    def _check_and_cosign(self, request: _Request, checkpoint: Checkpoint) -> Answer:
        origin = checkpoint.origin
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check(db, request, checkpoint)
            except _Refused as refused:
                self._keep_refusal(db, request, checkpoint, refused)
                db.execute("COMMIT")
                raise
            except BaseException:
                db.execute("ROLLBACK")
                raise
            now = int(self.clock())
            db.execute(
                "INSERT INTO cosigned (origin, size, root, checkpoint, cosigned_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                "root = excluded.root, checkpoint = excluded.checkpoint, "
                "cosigned_at = excluded.cosigned_at",
                (origin, checkpoint.size, checkpoint.root, checkpoint.text, now),
            )
            db.execute("COMMIT")
        finally:
            db.close()
        line = self.cosigner.cosign(checkpoint.text, max(now, 1)).line
        log.info("cosigned %s at size %d", origin, checkpoint.size)
        return Answer(200, line)

    def _check(self, db: sqlite3.Connection, request: _Request, checkpoint: Checkpoint) -> None:
        row = db.execute(
            "SELECT size, root FROM cosigned WHERE origin = ?", (checkpoint.origin,)
        ).fetchone()
        stored_size, stored_root = (
            (0, empty_root()) if row is None else (int(row[0]), bytes(row[1]))
        )
        if request.old_size != stored_size:
            raise _Refused(409, f"{stored_size}\n", SIZE_CONTENT_TYPE)
        if stored_size == checkpoint.size and stored_root != checkpoint.root:
            raise _Refused(
                409,
                f"size {stored_size} was cosigned with root {stored_root.hex()}, this checkpoint "
                f"has root {checkpoint.root.hex()}: a split view",
            )
        if not verify_consistency(
            stored_size, checkpoint.size, stored_root, checkpoint.root, request.proof
        ):
            raise _Refused(
                422,
                f"the consistency proof from size {stored_size} to {checkpoint.size} does not verify",
            )
        self._check_on_chain(checkpoint)

    def _check_on_chain(self, checkpoint: Checkpoint) -> None:
        name = checkpoint.origin.rsplit("/", 1)[-1]
        lid = log_id(name)
        try:
            low, high = 0, self.chain.next_batch(self.contract, lid)
            while low < high:
                middle = (low + high) // 2
                root, size, _, _ = self.chain.batch_of(self.contract, lid, middle)
                if root == ZERO_ROOT:  # below nextBatch every batch is anchored
                    raise _Refused(503, f"batchOf({name}, {middle}) is empty below nextBatch")
                if size == checkpoint.size:
                    if root != checkpoint.root:
                        raise _Refused(
                            409,
                            f"batch {middle} of log {name!r} anchored size {size} with root "
                            f"{root.hex()} on chain, not {checkpoint.root.hex()}: never cosigned",
                        )
                    return
                if size < checkpoint.size:
                    low = middle + 1
                else:
                    high = middle
        except (ChainError, ContractMismatch) as exc:
            raise _Refused(503, f"the chain cannot be asked, nothing cosigned: {exc}") from None
        raise _Refused(
            422,
            f"no batch of log {name!r} anchored on chain at {self.contract} has size "
            f"{checkpoint.size}: never cosigned",
        )

    def _keep_refusal(
        self, db: sqlite3.Connection, request: _Request, checkpoint: Checkpoint, refused: _Refused
    ) -> None:
        reason = refused.answer.body.strip()
        if refused.answer.content_type == SIZE_CONTENT_TYPE:
            reason = f"old size {request.old_size}, cosigned size {reason}"
        log.warning(
            "refused %s size %d (%d): %s",
            checkpoint.origin,
            checkpoint.size,
            refused.answer.status,
            reason,
        )
        db.execute(
            "INSERT INTO refused (at, origin, old_size, size, root, status, reason, checkpoint) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                int(self.clock()),
                checkpoint.origin,
                request.old_size,
                checkpoint.size,
                checkpoint.root,
                refused.answer.status,
                reason,
                request.note,
            ),
        )


def create_witness_app(witness: CheckpointWitness, prefix: str = "") -> FastAPI:
    """The witness's HTTP app: ``POST <prefix>/add-checkpoint`` and nothing else."""
    app = FastAPI(title="civic-ledger witness (C2SP tlog-witness)", docs_url=None, redoc_url=None)

    @app.post(f"{prefix.rstrip('/')}/add-checkpoint")
    async def add_checkpoint(request: Request) -> Response:
        body = await request.body()
        answer = await run_in_threadpool(witness.add_checkpoint, body)
        # Set as a header: Starlette would add "; charset=utf-8" to a text/* media type, and
        # tlog-witness wants exactly text/x.tlog.size.
        return Response(
            answer.body.encode("utf-8"),
            status_code=answer.status,
            headers={"Content-Type": answer.content_type},
        )

    return app
