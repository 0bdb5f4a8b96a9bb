"""The audit's checks of a log's positions: records occupy positions 0, 1, 2 … with no hole
(``missing``, naming the position and the batch that covers it) and nothing beyond the log's
head (``inserted``); records are not left waiting to be sealed past the deadline
(``unanchored``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from verifier.audit.batches import BatchLayout
from verifier.audit.findings import FindingKind, LogFindings, duration
from verifier.audit.reading import StoredRecord


class PositionChecks:
    """The positions of one log, as its records come in position order."""

    def __init__(self, head: int, pending_from: int) -> None:
        self.head = head  # the log's next free position
        self.pending_from = pending_from  # the first position no stored batch covers
        self.expected = 0
        self.holes: list[tuple[int, int]] = []
        self.beyond_head: list[StoredRecord] = []
        self.first_pending: StoredRecord | None = None

    def see(self, record: StoredRecord) -> str | None:
        """The next record; what is wrong when it repeats a position already seen."""
        position = record.position
        problem = None
        if position != self.expected:
            if position > self.expected:
                self.hole(self.expected, position)
            else:
                problem = f"a second record at position {position}"
        if position >= self.expected:
            self.expected = position + 1
        if position >= self.head:
            self.beyond_head.append(record)
        elif position >= self.pending_from and self.first_pending is None:
            self.first_pending = record
        return problem

    def hole(self, first: int, end: int) -> None:
        """Positions ``[first, end)`` hold no record: those below the head are missing."""
        end = min(end, self.head)
        if first < end:
            self.holes.append((first, end))

    def finish(self) -> None:
        """Every record seen: the positions after the last one, up to the head, are holes."""
        if self.expected < self.head:
            self.hole(self.expected, self.head)

    def report_holes(self, found: LogFindings, layout: BatchLayout, shift: int) -> None:
        """One ``missing`` per run of missing positions within one batch (or beyond them).

        ``shift`` is how far the batches' diagnosis found records moved at the end of the log.
        """
        limit = self.head + min(0, shift)
        for first, end in self.holes:
            end = min(end, limit)
            position = first
            while position < end:
                batch = layout.batch_at(position)
                stop = end
                if batch is not None:
                    stop = min(end, layout.end_of(batch))
                else:
                    stop = min([end, *layout.starts_after(position)])
                where = f"in batch {batch}" if batch is not None else "not yet sealed"
                if stop - position == 1:
                    detail = f"position {position} ({where}) holds no record"
                else:
                    detail = (
                        f"positions {position} to {stop - 1} ({stop - position} records, "
                        f"{where}) hold no record"
                    )
                found.find(FindingKind.MISSING, detail, position=position, batch=batch)
                position = stop

    def report_late(
        self, found: LogFindings, shift: int, *, now: datetime, deadline: timedelta
    ) -> None:
        """Records beyond the head, and records waiting too long to be sealed."""
        allowed = self.head + max(0, shift)
        for record in self.beyond_head:
            if record.position >= allowed:
                found.find_record(
                    FindingKind.INSERTED,
                    record,
                    f"position {record.position} is beyond the log's head (next position "
                    f"{self.head}): no append wrote it",
                )
        first = self.first_pending
        if first is not None:
            waited = now - first.accepted_at
            if waited > deadline:
                found.find_record(
                    FindingKind.UNANCHORED,
                    first,
                    f"records from position {first.position} on have waited {duration(waited)} "
                    f"to be sealed, longer than the {duration(deadline)} allowed",
                )
