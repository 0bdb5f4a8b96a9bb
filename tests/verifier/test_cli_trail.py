"""civic-verify trail: the service answered through httpx.MockTransport, the chain by FakeChain.

Exit codes: 0 only for a valid and complete trail, 1 for any other verdict (pending included),
2 when no verdict could be reached (unknown tracking code, service or chain unreachable, usage).
These answers are a version 1 service's: no map of trail heads, so a valid trail's completeness
is ``no_map`` (not checked) and the exit is ``NO_MAP``, 1. Completeness against the real
service, its map and the chain: tests/verifier/test_trail_map.py.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import httpx
import pytest

from core.records import SealedRecord
from tests.verifier.fakes import (
    LOOP,
    SUBJECT,
    FakeChain,
    TrailWriter,
    loop_writer,
    redacted_entry,
    seal_trail,
    write_steps,
)
from verifier.chain import ChainReader
from verifier.cli import main

API = "http://civic.example"
NO_MAP = 1  # the exit of a valid trail whose completeness could not be checked
TRAIL_URL = f"{API}/api/v1/suggestions/{SUBJECT}/trail"


@pytest.fixture(scope="module")
def loop() -> list[SealedRecord]:
    return loop_writer().records


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


@pytest.fixture
def asked() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def factory(chain: FakeChain, asked: list[tuple[str, float]]) -> Any:
    def make(rpc_url: str, timeout: float) -> ChainReader:
        asked.append((rpc_url, timeout))
        return chain

    return make


class Service:
    """The trail endpoint as a MockTransport; remembers every request."""

    def __init__(self, answer: Any = None, status: int = 200, fail: Exception | None = None):
        self.answer = answer
        self.status = status
        self.fail = fail
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        if isinstance(self.answer, bytes):
            return httpx.Response(self.status, content=self.answer)
        return httpx.Response(self.status, json=self.answer)


def trail_answer(entries: list[dict[str, Any]], state: str = "CLOSED") -> dict[str, Any]:
    return {"tracking_code": SUBJECT, "state": state, "records": entries}


def run(service: Service, factory: Any, *options: str, code: str = SUBJECT, api: str = API) -> int:
    return main(
        ["trail", code, "--api", api, *options],
        reader_factory=factory,
        http_transport=service.transport(),
    )


def test_a_valid_trail_prints_its_timeline_and_exits_0(
    loop: list[SealedRecord],
    chain: FakeChain,
    factory: Any,
    asked: list[tuple[str, float]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain)))
    assert run(service, factory, "--rpc", "http://node.example:8545") == NO_MAP
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"trail of {SUBJECT} in the 'suggestions' log, 12 records"
    assert lines[1] == (
        "  0  2026-11-27T09:30:00.123Z  citizen  suggestion.submitted   → 已提交  ✓ valid"
    )
    assert lines[2] == (
        "  1  2026-11-27T09:31:00.123Z  deputy   suggestion.transition  已提交 → 代表受理  ✓ valid"
    )
    assert lines[7] == "  6  2026-11-27T09:36:00.123Z  staff    suggestion.flagged  ✓ valid"
    assert lines[10] == (
        "  9  2026-11-27T09:39:00.123Z  staff    suggestion.transition  办结 → 跟踪落实  ✓ valid"
    )
    assert len(lines) == 16
    assert lines[13].startswith("VALID: 12 records, seq 0 to 11: every receipt anchored")
    assert lines[14] == "state reached: 办结 (CLOSED)"
    assert lines[15] == (
        "COMPLETENESS NO_MAP: the service showed no map of trail heads: completeness cannot "
        "be checked"
    )
    [request] = service.requests
    assert str(request.url) == TRAIL_URL
    assert request.method == "GET"
    assert asked == [("http://node.example:8545", 10.0)]


def test_json_output(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain)))
    assert run(service, factory, "--json", api=API + "/") == NO_MAP
    result = json.loads(capsys.readouterr().out)
    assert result["verdict"] == "valid"
    assert result["completeness"]["verdict"] == "no_map"
    assert result["tracking_code"] == SUBJECT
    assert result["state"] == result["service_state"] == "CLOSED"
    assert result["first_bad"] is None
    assert [r["seq"] for r in result["records"]] == list(range(12))
    assert result["records"][4]["to_state"] == "ANSWERED"
    assert str(service.requests[0].url) == TRAIL_URL  # no double slash


def test_a_pending_trail_exits_1(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain, pending=2)))
    assert run(service, factory) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[11].endswith("跟踪落实 → 已答复  … pending")
    assert lines[12].endswith("已答复 → 办结  … pending")
    assert lines[13].startswith("PENDING: every check that can be made passed, but 2 of 12")


def test_a_bad_trail_exits_1_and_marks_the_record(
    chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = TrailWriter()
    writer.submitted()
    write_steps(writer, [("SUBMITTED", "ASSIGNED", "staff", {}), *LOOP[2:4]])
    service = Service(trail_answer(seal_trail(writer.records, chain), state="ANSWERED"))
    assert run(service, factory) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[2].endswith("已提交 → 已交办  ✓ valid")  # the receipt is fine; the step is not
    assert lines[3].startswith(
        "     ✗ illegal_transition: SUBMITTED → ASSIGNED only for a deputy's own suggestion"
    )
    assert "ILLEGAL_TRANSITION: record at position 1 (seq 1, record hash " in out


def test_a_failing_receipt_is_marked(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain)))
    assert run(service, factory, "--min-confirmations", "22") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("→ 已提交  ✗ unconfirmed")
    assert lines[2].startswith("     ✗ unconfirmed: receipt: 21 confirmations")
    assert run(service, factory, "--min-confirmations", "21", "--min-attestations", "2") == NO_MAP
    assert "VALID: 12 records" in capsys.readouterr().out
    capsys.readouterr()


def test_an_erased_record_is_shown_as_redacted(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = seal_trail(loop, chain)
    entries[2] = redacted_entry(entries[2])
    assert run(Service(trail_answer(entries)), factory) == NO_MAP
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("VALID: ") for line in lines)
    assert lines[3] == "  ?  (time erased)             ?        (content erased)  ✓ redacted"
    assert lines[4].startswith("       the record's content was erased (删除请求 (PIPL art. 47))")


def test_a_state_the_records_do_not_reach_is_pointed_out(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop[:5], chain), state="CLOSED"))
    assert run(service, factory) == NO_MAP  # the records are sound; the service's summary is not
    out = capsys.readouterr().out
    assert "VALID: 5 records" in out
    assert (
        "note: the service says the suggestion is 办结 (CLOSED); its records reach ANSWERED" in out
    )


@pytest.mark.parametrize(
    ("service", "message"),
    [
        (Service({"error": "NotFound"}, status=404), f"unknown tracking code {SUBJECT!r} at {API}"),
        (Service({"error": "Boom"}, status=500), f"{TRAIL_URL} answered HTTP 500, not a trail"),
        (Service(b"<html>maintenance</html>"), f"{TRAIL_URL} did not answer with strict JSON"),
        (Service({"tracking_code": SUBJECT}), f"{TRAIL_URL} did not answer with a trail"),
        (
            Service(fail=httpx.ConnectError("connection refused")),
            f"cannot reach {API}: connection refused",
        ),
        (
            Service(fail=httpx.ReadTimeout("timed out")),
            f"no answer from {TRAIL_URL} within 2.5 s",
        ),
    ],
    ids=["404", "500", "not json", "no records", "connection refused", "timeout"],
)
def test_no_trail_to_verify_exits_2(
    service: Service,
    message: str,
    factory: Any,
    asked: list[tuple[str, float]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(service, factory, "--timeout", "2.5") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"civic-verify: {message}")
    assert asked == []  # no chain is asked before there is a trail


def test_an_unreachable_chain_exits_2(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain)))
    chain.unreachable = True
    assert run(service, factory) == 2
    assert capsys.readouterr().err == "civic-verify: cannot reach http://fake (test)\n"


def test_a_real_client_on_a_closed_port_exits_2(
    factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["trail", SUBJECT, "--api", "http://127.0.0.1:1", "--timeout", "2"]
    assert main(argv, reader_factory=factory) == 2
    assert capsys.readouterr().err.startswith("civic-verify: cannot reach http://127.0.0.1:1: ")
    assert main(["trail", SUBJECT, "--api", "ftp://civic.example"], reader_factory=factory) == 2
    assert "is not an http(s) URL of the service" in capsys.readouterr().err


def test_the_tracking_code_is_one_path_segment(
    factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(status=404)
    assert run(service, factory, code="SG-1/../../admin?x=1") == 2
    assert service.requests[0].url.raw_path == (
        b"/api/v1/suggestions/SG-1%2F..%2F..%2Fadmin%3Fx%3D1/trail"
    )
    capsys.readouterr()


def test_records_of_another_suggestion_do_not_pass_for_the_one_asked(
    loop: list[SealedRecord], chain: FakeChain, factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain)))
    assert run(service, factory, code="SG-0000-0000-0000") == 1
    assert "BROKEN_LINK: record at position 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["trail", SUBJECT], ["trail", "--api", API], ["trail", SUBJECT, "--api", API, "--bogus"]],
    ids=["no --api", "no code", "bogus"],
)
def test_usage_errors_exit_2(
    argv: list[str], factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = Service(status=500)
    assert main(argv, reader_factory=factory, http_transport=service.transport()) == 2
    assert "usage: civic-verify" in capsys.readouterr().err
    assert service.requests == []


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trail", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--api URL" in out
    assert "--min-attestations W" in out


def test_a_console_without_unicode_gets_plain_marks(
    loop: list[SealedRecord],
    chain: FakeChain,
    factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = Service(trail_answer(seal_trail(loop, chain, pending=1)))
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buffer, encoding="ascii"))
    assert run(service, factory) == 1
    sys.stdout.flush()
    lines = buffer.getvalue().decode("ascii").splitlines()
    assert lines[1].endswith("suggestion.submitted   -> ???  + valid")
    assert lines[12].endswith("??? -> ??  ... pending")
