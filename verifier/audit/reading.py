"""What the audit reads: the store, through its one read-only reader, and the anchored batches
on the chain.

This is the only module of the verifier that imports the store (``ledger.reader``, see the
import-linter contracts in ``pyproject.toml``). The rest of the audit judges what is read here:
the reader's plain named tuples, named again below so that the checks take them from this
module, and the chain's ``batchOf`` answers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from core.merkle import ZERO_ROOT
from ledger.reader import StoredBatch as StoredBatch
from ledger.reader import StoredLogHead as StoredLogHead
from ledger.reader import StoredRecord as StoredRecord
from ledger.reader import StoredRedaction as StoredRedaction
from ledger.reader import StoredTrailHead as StoredTrailHead
from ledger.reader import StoreReader as StoreReader
from ledger.reader import StoreUnavailable as StoreUnavailable
from verifier.chain import ChainReader, log_id
from verifier.errors import AuditUnavailable

StoreFactory = Callable[[str], StoreReader]
# batchOf(logId, n): root, size, anchoredAt (unix seconds), block number (PROTOCOL §3).
ChainBatch = tuple[bytes, int, int, int]


def open_store(url: str) -> StoreReader:
    """The read-only reader of the store at ``url``; AuditUnavailable when it cannot be opened."""
    try:
        return StoreReader(url)
    except StoreUnavailable as exc:
        raise AuditUnavailable(str(exc)) from exc


def read_anchored_batches(
    chain: ChainReader, contract: str, log: str, stored: Collection[int]
) -> tuple[dict[int, ChainBatch], int]:
    """``batchOf`` of ``log`` for every batch number up to the highest stored one, and on for
    the anchored batches beyond them; and how many batches the chain holds.

    PROTOCOL §3 numbers batches 0, 1, 2 …: the first one with a zero root ends the log.
    """
    ident = log_id(log)
    answers: dict[int, ChainBatch] = {}
    top = max(stored) + 1 if stored else 0
    for number in range(top):
        answers[number] = chain.batch_of(contract, ident, number)
    number = top
    while True:
        answer = chain.batch_of(contract, ident, number)
        if answer[0] == ZERO_ROOT:
            break
        answers[number] = answer
        number += 1
    return answers, number


def read_window(reader: StoreReader, log: str, start: int, stop: int) -> list[StoredRecord]:
    """The records of ``log`` at positions ``[start, stop)`` that are there, in position order."""
    return list(reader.records(log, start=start, stop=stop))
