"""The inspectors' audit of a whole store against the chain (``civic-verify audit``).

A receipt proves one record; a trail verification proves the records a service chose to
show. Neither can see what was left out, put in or moved. The audit reads every record of
every log through the one read-only reader of the store (``ledger.reader``) and checks, per log:

1. **Positions.** Records occupy positions 0, 1, 2, … with no hole (``missing``, naming the
   position and the batch that covers it) and nothing beyond the log's head (``inserted``).
2. **Records.** Each record's leaf hash is SHA-256(0x00 ‖ canonical) (PROTOCOL §2; else
   ``altered``); its canonical bytes are RFC 8785 of a §1 record (``check_record_shape``) whose
   log, subject, seq and type are those of its row (else ``altered``). A record with empty
   content and a redaction row is erased under §7 and listed as ``redacted``, which is not a
   finding; empty content without a redaction row is ``altered``.
3. **Batches.** Version 2 (PROTOCOL §8) anchors, for batch n, the root of the whole log's tree
   of ``end(n)`` entries and ``size = end(n)``. The store's log root and end of each batch must
   equal the chain's ``batchOf(logId, n)`` (``root_mismatch`` when they disagree;
   ``not_anchored`` when the store says anchored and the chain holds nothing). The log's tree is
   recomputed once over the records in position order, keeping only its right edge, and its
   root compared with the anchored root as each batch's end is passed (``verifier.audit.tree``);
   that also checks that the anchored trees extend one another. From the first batch whose root
   the records do not give, each batch is judged from the anchored tree before it: the audit
   looks for the one change that explains it and names the record: a record slipped in with the
   later ones moved up (``inserted``), records out of acceptance order (``reordered``), a
   record whose leaf hash was rewritten where its trail remembers the old one (``altered``), a
   record taken out with the later ones moved down (``missing``); else the batch is ``altered``.
   Where the tree before a batch cannot be rebuilt from the records (positions missing, a
   batch nothing explains), the frontier the store keeps for the batch is taken when it folds
   to the root anchored for the batch before, else the batch is noted as not recomputed.
   Batches the chain holds and the store lacks are ``missing_batch``; batches (and records)
   still unanchored past the deadline are ``unanchored``. The store's batch-only ``root``
   (version 1's anchor, kept for diagnosis) is not judged: nothing anchors it any more.
4. **Trails.** Records grouped by (log, subject), walked in position order with the checks of
   ``verifier.trail`` (PROTOCOL §5): seq 0, 1, … (``gap`` when a seq is nowhere, ``broken_link``
   when it comes later or twice), every ``prev`` the leaf hash of the record before
   (``broken_link``), times never backwards (``time_reversed``), and in the suggestions log the
   published state machine (``illegal_transition``); one finding per trail, naming its first
   bad record. The service's trail heads must agree with the records (a trail cut short at its
   end is ``missing``: only an audit can see that). The trails ``chain`` and ``ledger/map``
   are no suggestions: no state machine.
5. **The map of trail heads** (PROTOCOL §10). The map is replayed from the records in position
   order (``verifier.audit.maps``: an in-memory map per log, updated once per batch with the
   heads that moved), and each ``ledger.map_head`` record must say what the replay says: its
   ``index`` its own position, ``batch`` the batch that covers it, ``map_root`` the replayed
   root, ``trails`` the number of pairs. Else ``map_head_mismatch``, naming the batch and the
   map head record: a map head the sealer got wrong (a trail left out, a head held back) is
   found even though it is anchored and every record and link checks out.

Every finding names its log and, where known, the batch, position, subject, seq and record hash.
The store is ``clean`` when there is no finding.

The audit never writes: the reader's connection is read-only at the database level.

Where each part lives: ``reading`` (the store and the chain, the one module that imports the
store), ``log`` (the audit of one log, in the order above), the checks ``positions`` (1),
``records`` (2), ``batches``, ``tree`` and ``diagnosis`` (3), ``trails`` (4), ``maps`` (5),
``findings`` (the report's contents) and ``report`` (the report for people).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from core.records import LOGS
from verifier.audit.batches import named_contract
from verifier.audit.findings import AuditReport, Finding, FindingKind, LogSummary, reanchor_notes
from verifier.audit.log import AuditRun, LogAudit
from verifier.audit.reading import StoredBatch, StoreReader, StoreUnavailable
from verifier.chain import ChainReader
from verifier.errors import AuditUnavailable, ContractMismatch

DEFAULT_DEADLINE = timedelta(minutes=10)

ProgressCallback = Callable[[int, int], None]


def audit_store(
    reader: StoreReader,
    chain: ChainReader | None,
    *,
    contract: str | None = None,
    unanchored_deadline: timedelta = DEFAULT_DEADLINE,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
    worker_stopped: bool = False,
) -> AuditReport:
    """Audit every log of the store behind ``reader`` against ``chain`` (see the module doc).

    ``contract`` is the AnchorRegistry's address; by default the one the batches name.
    ``now`` is when the audit counts deadlines from (default: the current time).
    ``worker_stopped`` says no anchoring worker runs (a restore drill, a store copied aside):
    then a batch anchored on chain in the last minutes that the store lacks is a finding too,
    not a note about a worker that may have sealed it after the store was read.
    ``progress(done, total)`` is called as records are read. Raises AuditUnavailable when the
    store cannot be read and ChainUnreachable/ChainError when the chain cannot be asked.
    """
    started = time.perf_counter()
    moment = now if now is not None else datetime.now(UTC)
    summaries: list[LogSummary] = []
    try:
        heads = {head.log: head for head in reader.log_heads()}
        redactions = {r.leaf_hash: r for r in reader.redactions()}
        names = sorted(LOGS | set(heads))
        total = reader.count_records()
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, total)

        audit = AuditRun(
            reader,
            now=moment,
            deadline=unanchored_deadline,
            worker_stopped=worker_stopped,
            redactions=redactions,
            advance=advance,
            contract=contract,
        )
        all_batches = [batch for name in names for batch in reader.batches(name)]
        try:
            _choose_registry(audit, chain, all_batches)
            for name in names:
                summaries.append(LogAudit(audit, name, heads.get(name)).run())
        except ContractMismatch as exc:
            audit.findings.add(
                Finding(
                    FindingKind.WRONG_CHAIN,
                    "*",
                    f"{audit.contract} does not answer as an AnchorRegistry: {exc}",
                )
            )
    except StoreUnavailable as exc:
        raise AuditUnavailable(str(exc)) from exc
    return AuditReport(
        findings=audit.findings.in_report_order(),
        redacted=audit.redacted,
        logs=summaries,
        contract=audit.contract,
        chain_id=audit.chain_id,
        audited_at=moment,
        seconds=time.perf_counter() - started,
        notes=[*audit.notes, *reanchor_notes(audit.reanchored)],
        reanchored=sorted(audit.reanchored, key=lambda e: (e.at, e.log)),
    )


def _choose_registry(
    audit: AuditRun, chain: ChainReader | None, batches: Sequence[StoredBatch]
) -> None:
    """``--contract``, else the one contract the anchored batches name; the chain is read only
    when there is code at that address on the endpoint."""
    if audit.contract is None:
        audit.contract = named_contract(batches)
    if audit.contract is None:
        if batches:
            audit.notes.append(
                "no batch names its contract and none was given (--contract): the chain "
                "was not consulted"
            )
        return
    if chain is None:
        audit.notes.append("no chain endpoint: batches were not compared with the chain")
        return
    audit.chain_id = chain.chain_id()
    if not chain.has_code(audit.contract):
        audit.findings.add(
            Finding(
                FindingKind.WRONG_CHAIN,
                "*",
                f"there is no contract at {audit.contract} on chain {audit.chain_id}: "
                "the batches cannot be compared with the chain",
            )
        )
        audit.contract = None
        return
    audit.chain = chain
