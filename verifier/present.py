"""Presenting verifications to people: the text ``civic-verify`` prints for a receipt, a trail
and a tally (the verdict first, then every check), the same as JSON, and the audit's progress
bar; and the trail's JSON answer, which the verifier's HTTP service gives too.

What is written fits the console: a stream that cannot encode a mark (a GBK console has no
✓) gets plain ASCII marks, and JSON is escaped rather than mangled. The audit's own report is
``verifier.audit.report``.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from core.verdicts import (
    CompletenessVerification,
    ReceiptVerification,
    TrailRecordResult,
    TrailVerification,
    Verdict,
)
from core.workflow import CHINESE_NAMES, SuggestionState

if TYPE_CHECKING:  # the tally's checks (and core.voting) load only when a tally is checked
    from verifier.tally import TallyVerification

UNICODE_MARKS = {"ok": "✓", "bad": "✗", "pending": "…", "arrow": "→"}
ASCII_MARKS = {"ok": "+", "bad": "x", "pending": "...", "arrow": "->"}


def writable(text: str, stream: TextIO) -> str:
    """``text`` as the stream can encode it (a GBK console has no ✓)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        return text.encode("ascii", "replace").decode("ascii")
    return text


def write_json(result: dict[str, Any], out: TextIO) -> None:
    dumped = json.dumps(result, ensure_ascii=False, indent=2)
    if writable(dumped, out) != dumped:  # escape rather than mangle what the console lacks
        dumped = json.dumps(result, ensure_ascii=True, indent=2)
    out.write(dumped + "\n")


def marks_for(stream: TextIO, names: Sequence[str] = ("ok", "bad")) -> dict[str, str]:
    """The marks ``names`` as ``stream`` can show them: all Unicode, or all ASCII."""
    unicode = {name: UNICODE_MARKS[name] for name in names}
    shown = "".join(unicode.values())
    if writable(shown, stream) == shown:
        return unicode
    return {name: ASCII_MARKS[name] for name in names}


def format_report(result: ReceiptVerification, *, ok_mark: str = "✓", bad_mark: str = "✗") -> str:
    """The human-readable report: verdict first, then every check made, in order."""
    lines = [f"{result.verdict.value.upper()}: {result.reason}"]
    if result.record_hash is not None:
        lines.append(f"record hash: {result.record_hash}")
    for check in result.checks:
        mark = ok_mark if check.ok else bad_mark
        lines.append(f"  {mark} [{check.step}] {check.name}: {check.detail}")
    return "\n".join(lines) + "\n"


def _state_name(state: str | None) -> str:
    try:
        return CHINESE_NAMES[SuggestionState(state)] if state else ""
    except ValueError:
        return str(state)


def _receipt_mark(record: TrailRecordResult, marks: dict[str, str]) -> str:
    if record.status == "pending" and record.receipt_verdict is None:
        return f"{marks['pending']} pending"
    if record.receipt_verdict in (Verdict.VALID, Verdict.REDACTED):
        return f"{marks['ok']} {record.receipt_verdict}"
    return f"{marks['bad']} {record.receipt_verdict or 'not checked'}"


def _indented(text: str, indent: int) -> str:
    # Hashes stay whole, so they can be copied from the terminal.
    return textwrap.fill(
        text,
        width=100,
        initial_indent=" " * indent,
        subsequent_indent=" " * (indent + 2),
        break_long_words=False,
        break_on_hyphens=False,
    )


def format_timeline(
    result: TrailVerification,
    *,
    service_state: str | None = None,
    marks: dict[str, str] | None = None,
) -> str:
    """The trail as a timeline, one line per record, then the verdict and the state reached."""
    marks = marks or dict(UNICODE_MARKS)
    arrow = marks["arrow"]
    lines = [
        f"trail of {result.tracking_code or '?'} in the {result.log!r} log, "
        f"{len(result.records)} record{'s' if len(result.records) != 1 else ''}"
    ]
    for record in result.records:
        seq = f"{record.seq if record.seq is not None else '?':>3}"
        at = record.at or "(time erased)".ljust(24)
        role = record.actor_role or "?"
        kind = record.type or "(content erased)"
        moves = ""
        if record.to_state:
            moves = f"{_state_name(record.from_state)} {arrow} {_state_name(record.to_state)}"
            moves = moves.strip()
        line = f"{seq}  {at}  {role:<8} {kind:<22} {moves}".rstrip()
        lines.append(f"{line}  {_receipt_mark(record, marks)}")
        if not record.ok:
            lines.append(_indented(f"{marks['bad']} {record.verdict}: {record.problem}", 5))
        elif record.note:
            lines.append(_indented(record.note, 7))
    lines.append(f"{result.verdict.value.upper()}: {result.reason}")
    if result.state:
        lines.append(f"state reached: {_state_name(result.state)} ({result.state})")
    if service_state is not None and result.state is not None and service_state != result.state:
        lines.append(
            f"note: the service says the suggestion is {_state_name(service_state)} "
            f"({service_state}); its records reach {result.state}"
        )
    return "\n".join(lines) + "\n"


def format_tally(result: TallyVerification, *, marks: dict[str, str] | None = None) -> str:
    """The verdict, every check in order, the notes, and the inclusion proof of --my-ballot."""
    marks = marks or {"ok": UNICODE_MARKS["ok"], "bad": UNICODE_MARKS["bad"]}
    lines = [f"{result.verdict.value.upper()}: {result.reason}"]
    lines.append(f"simulation: {result.simulation}, tally record {result.tally_record or '?'}")
    for check in result.checks:
        mark = marks["ok"] if check.ok else marks["bad"]
        verdict = f" ({check.verdict})" if check.verdict is not None else ""
        lines.append(_indented(f"{mark} [{check.step}] {check.name}{verdict}: {check.detail}", 2))
    for note in result.notes:
        lines.append(_indented(f"note: {note}", 0))
    proof = result.my_ballot
    if proof is not None:
        lines.append(
            f"my ballot {proof.record_hash}: leaf {proof.index} of {proof.size} under "
            f"counted_root {proof.root}; inclusion path (nearest sibling first):"
        )
        lines += [f"  {h}" for h in proof.path] or ["  (none: the only counted ballot)"]
    return "\n".join(lines) + "\n"


def trail_answer(result: TrailVerification, service_state: str | None) -> dict[str, Any]:
    """A trail's verification as JSON, with the state the service says the suggestion is in."""
    return {**result.to_dict(), "service_state": service_state}


def show_receipt(result: ReceiptVerification, out: TextIO, *, as_json: bool) -> None:
    """Write a receipt's verification to ``out``: the report, or JSON."""
    if as_json:
        write_json(result.to_dict(), out)
        return
    marks = marks_for(out)
    out.write(writable(format_report(result, ok_mark=marks["ok"], bad_mark=marks["bad"]), out))


def format_completeness(
    result: CompletenessVerification, *, marks: dict[str, str] | None = None
) -> str:
    """Whether the trail shown is the whole trail (PROTOCOL §11): the verdict, then the checks
    that passed, in order."""
    marks = marks or dict(UNICODE_MARKS)
    lines = [f"COMPLETENESS {result.verdict.value.upper()}: {result.reason}"]
    lines += [_indented(f"{marks['ok']} {check}", 2) for check in result.checks]
    return "\n".join(lines) + "\n"


def show_trail(
    result: TrailVerification,
    service_state: str | None,
    out: TextIO,
    *,
    as_json: bool,
    completeness: CompletenessVerification | None = None,
) -> None:
    """Write a trail's verification to ``out``: the timeline, or JSON; with ``completeness``,
    its verdict too (separately: ``"completeness"`` in JSON)."""
    if as_json:
        answer = trail_answer(result, service_state)
        if completeness is not None:
            answer["completeness"] = completeness.to_dict()
        write_json(answer, out)
        return
    marks = marks_for(out, ("ok", "bad", "pending", "arrow"))
    text = format_timeline(result, service_state=service_state, marks=marks)
    if completeness is not None:
        text += format_completeness(completeness, marks=marks)
    out.write(writable(text, out))


def show_tally(result: TallyVerification, out: TextIO, *, as_json: bool) -> None:
    """Write a tally's verification to ``out``: the checks, or JSON."""
    if as_json:
        write_json(result.to_dict(), out)
        return
    out.write(writable(format_tally(result, marks=marks_for(out)), out))


class ProgressBar:
    """A one-line text progress bar, redrawn at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO, *, interval: float = 0.25, width: int = 30) -> None:
        self.stream = stream
        self.interval = interval
        self.width = width
        self.started = time.monotonic()
        self._drawn = float("-inf")
        self._shown = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._drawn < self.interval and done < total:
            return
        self._drawn = now
        fraction = min(1.0, done / total) if total else 1.0
        filled = int(self.width * fraction)
        rate = done / max(now - self.started, 1e-9)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {fraction:4.0%} {done:,}/{total:,} records, {rate:,.0f}/s")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
