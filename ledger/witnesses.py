"""The witnesses that cosign the logs' checkpoints (PROTOCOL §9, C2SP tlog-witness), as the
service knows them: who they are (``CIVIC_WITNESSES``), what each cosigned (the
``witness_cosignatures`` rows the pusher stores, ``ledger.witness_pusher``), and the cosigned
checkpoint the API serves: the log's signed note and every stored cosignature line of the
batch.

``CIVIC_WITNESSES`` names each witness as ``<url>=<verifier key>``, entries separated by
commas or white space: ``url`` is the witness's submission prefix (``<url>/add-checkpoint``),
http or https, and the key its C2SP ``cosignature/v1`` verifier key (type 0x04,
``<name>+<hex key id>+<base64>``). A line a witness answers with another key is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from core.cosignature import CosignatureVerifier, parse_verifier_key
from core.note import NoteError
from ledger.db import DriverStatement
from ledger.models import BatchRow, WitnessCosignatureRow, WitnessState, table_of
from ledger.repository import ReadTarget


@dataclass(frozen=True, slots=True)
class Witness:
    """One witness: its submission prefix and its cosignature/v1 verifier key."""

    url: str
    verifier: CosignatureVerifier

    @property
    def name(self) -> str:
        return self.verifier.name

    @property
    def key(self) -> str:
        return self.verifier.verifier_key

    @property
    def add_checkpoint_url(self) -> str:
        return self.url.rstrip("/") + "/add-checkpoint"


def parse_witnesses(text: str) -> list[Witness]:
    """``CIVIC_WITNESSES``: ``<url>=<verifier key>`` entries separated by commas or white
    space. ValueError naming the entry for a URL that is not http(s)://host[:port][/path], a
    key that is not a cosignature/v1 verifier key, or a key named twice."""
    witnesses: list[Witness] = []
    for entry in re.split(r"[,\s]+", text.strip()):
        if not entry:
            continue
        # An Ed25519 verifier key's base64 (33 bytes) has no '=' and a URL without a query
        # none either: the last '=' splits the entry.
        url, sep, key = entry.rpartition("=")
        if not sep:
            raise ValueError(f"CIVIC_WITNESSES: {entry!r} is not <url>=<witness verifier key>")
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
            raise ValueError(
                f"CIVIC_WITNESSES: {url!r} is not an http:// or https:// URL without a query "
                "(the witness's submission prefix)"
            )
        try:
            verifier = parse_verifier_key(key)
        except (NoteError, ValueError) as exc:
            raise ValueError(
                f"CIVIC_WITNESSES: {key!r} is not a cosignature/v1 verifier key: {exc}"
            ) from None
        if any(w.verifier == verifier for w in witnesses):
            raise ValueError(f"CIVIC_WITNESSES names the witness key {verifier.name} twice")
        witnesses.append(Witness(url.rstrip("/"), verifier))
    return witnesses


def format_witnesses(witnesses: Iterable[Witness]) -> str:
    """The ``CIVIC_WITNESSES`` text of ``witnesses``."""
    return ",".join(f"{w.url}={w.key}" for w in witnesses)


_T = table_of(WitnessCosignatureRow)
_LINES_OF_BATCH = DriverStatement(
    select(_T.c.lines)
    .where(_T.c.log == bindparam("log_name"), _T.c.batch == bindparam("batch_number"))
    .order_by(_T.c.witness, _T.c.key_id)
)


def cosignature_lines(target: ReadTarget, log: str, batch: int) -> str:
    """Every stored cosignature line of a batch's checkpoint, by witness name."""
    return "".join(
        row[0] for row in _LINES_OF_BATCH.run(target, {"log_name": log, "batch_number": batch})
    )


def cosigned(note: str, lines: str) -> str:
    """A cosigned checkpoint (PROTOCOL §9): the log's signed note and the witnesses' lines
    (a note's signature lines each end in a newline, so they are simply appended)."""
    return note + lines


def lag(session: Session, witnesses: Sequence[Witness], logs: Iterable[str]) -> dict[str, Any]:
    """Each witness's standing per log, for /healthz/detail: the size it last cosigned for
    us, how many anchored batches end beyond it (not cosigned by it yet), a conflict it
    reported, its last error and when."""
    states = {(s.log, s.witness, s.key_id): s for s in session.scalars(select(WitnessState))}
    report: dict[str, Any] = {}
    for witness in witnesses:
        per_log: dict[str, Any] = {}
        for log in sorted(logs):
            state = states.get((log, witness.name, witness.verifier.key_id))
            size = state.size if state is not None else 0
            behind = session.scalar(
                select(func.count()).where(
                    BatchRow.log == log,
                    BatchRow.state == "anchored",
                    BatchRow.first_position + BatchRow.size > size,
                )
            )
            per_log[log] = {
                "cosigned_size": size,
                "batches_behind": behind or 0,
                "conflict": state.conflict if state is not None else None,
                "last_error": state.last_error if state is not None else None,
                "error_at": _iso(state.error_at) if state is not None else None,
            }
        report[witness.key] = {"name": witness.name, "url": witness.url, "logs": per_log}
    return report


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
