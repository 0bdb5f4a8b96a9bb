"""The audit's report for people (``civic-verify audit`` without ``--json``): one line per log,
then the findings grouped by kind, each naming its record, then what is listed but is not a
finding (re-anchoring, erased records). The JSON report is ``AuditReport.to_dict``."""

from __future__ import annotations

from verifier.audit.findings import AuditReport, Finding, FindingKind


def _where(finding: Finding) -> str:
    parts = [finding.log]
    if finding.batch is not None:
        parts.append(f"batch {finding.batch}")
    if finding.position is not None:
        parts.append(f"position {finding.position}")
    if finding.subject is not None:
        parts.append(finding.subject)
    if finding.seq is not None:
        parts.append(f"seq {finding.seq}")
    if finding.record_hash is not None:
        parts.append(f"record {finding.record_hash}")
    return ", ".join(parts)


def format_audit(report: AuditReport, *, store: str | None = None) -> str:
    """The human report: one line per log, then the findings grouped by kind, each naming
    its record, then the erased records (which are not findings)."""
    lines = []
    chain = (
        f"chain {report.chain_id}, contract {report.contract}" if report.contract else "no chain"
    )
    lines.append(
        f"audit of {store or 'the store'} against {chain}: {report.records:,} records in "
        f"{report.seconds:.1f} s"
    )
    for s in report.logs:
        on_chain = f", {s.chain_batches} on chain" if s.chain_batches is not None else ""
        lines.append(
            f"  {s.log:<12} {s.records:>10,} records, {s.trails:,} trails, {s.batches:,} batches "
            f"({s.anchored_batches:,} anchored{on_chain}), {s.map_heads:,} map heads checked, "
            f"{s.pending_records:,} waiting to be "
            f"sealed, {s.redacted:,} erased: {s.findings:,} finding{'s' if s.findings != 1 else ''}"
        )
    for note in report.notes:
        lines.append(f"  note: {note}")
    if report.clean:
        lines.append(
            "CLEAN: every record hashes to its record hash, the log's tree recomputed from the "
            "records gives every batch's anchored root, every trail is whole, every map head "
            "commits to the map of trail heads the records give"
        )
    else:
        lines.append(f"NOT CLEAN: {len(report.findings)} finding(s)")
        grouped: dict[FindingKind, list[Finding]] = {}
        for finding in report.findings:
            grouped.setdefault(finding.kind, []).append(finding)
        for kind in FindingKind:
            found = grouped.get(kind)
            if not found:
                continue
            lines.append(f"{kind.value} ({len(found)}):")
            for finding in found:
                lines.append(f"  {_where(finding)}")
                lines.append(f"      {finding.detail}")
    if report.reanchored:
        lines.append(f"re-anchored after a chain reset ({len(report.reanchored)}, not findings):")
        for event in report.reanchored:
            lines.append(
                f"  {event.log}, position {event.position}, record {event.record_hash}: at "
                f"{event.at}, {event.batches} batch(es) from registry {event.old_contract} to "
                f"{event.new_contract} on chain {event.chain_id} ({event.reason})"
            )
    if report.redacted:
        lines.append(f"erased under PROTOCOL §7 ({len(report.redacted)}, not findings):")
        for erased in report.redacted:
            lines.append(
                f"  {erased.log}, position {erased.position}, {erased.subject}, seq {erased.seq}, "
                f"record {erased.record_hash}: erased {erased.at} ({erased.reason})"
            )
    return "\n".join(lines) + "\n"
