"""civic-verify tally: an anchored simulation.tallied record checked and recounted.

The honest cases run the real service (FastAPI over a real database), a real AnchoringWorker
anchoring the votes log on a real ganache, and ``civic-verify tally`` reading the API through
an httpx transport that hands each request to the TestClient. The tampered cases need records
no honest service writes: they are built with the real core, anchored on the FakeChain, and
given to ``verify_tally`` directly.
"""

from __future__ import annotations

import copy
import json
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core.merkle import merkle_root, verify_inclusion
from core.records import SealedRecord, build_record
from core.voting.ballots import public_key_hex, sign_ballot
from core.voting.tally import tally
from ledger import auth
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.api.conftest import Account, People
from tests.api.test_simulations_api import PB, YN, Voter, opened
from tests.fixtures.db import Database
from tests.verifier.fakes import START, Batch, FakeChain, counter_salt
from verifier.chain import ChainReader, Web3ChainReader
from verifier.cli import main
from verifier.tally import TallyVerdict, TallyVerification, verify_tally
from voting.ballots import generate_key

API = "http://testserver"

# -- the real service, a real worker, a real chain ---------------------------------------


@pytest.fixture
def three(client: TestClient, people: People, database: Database) -> list[Voter]:
    """Three deputies with registered keys."""
    with database.sessions.begin() as session:
        extra = auth.add_account(session, role="deputy", name="赵代表", district="鼓楼区")
    out = [
        Voter(people.deputy),
        Voter(people.other_deputy),
        Voter(Account(extra.id, "deputy", extra.token)),
    ]
    for v in out:
        r = client.put(
            f"/api/v1/deputies/{v.account.id}/public-key",
            json={"public_key": public_key_hex(v.key)},
            headers=people.admin.headers,
        )
        assert r.status_code == 200, r.text
    return out


def bridge(client: TestClient) -> httpx.MockTransport:
    """An httpx transport that hands each request to the TestClient (the real app)."""

    def handle(request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "accept")}
        answer = client.request(request.method, request.url.raw_path.decode(), headers=headers)
        return httpx.Response(
            answer.status_code,
            content=answer.content,
            headers={"content-type": answer.headers.get("content-type", "application/json")},
        )

    return httpx.MockTransport(handle)


def anchor_votes(database: Database, registry: Any) -> None:
    worker = AnchoringWorker(
        engine=database.engine,
        session_factory=database.sessions,
        chain=registry.client,
        config=WorkerConfig(
            contract=registry.address, logs=["votes"], anchor_interval=0.0, receipt_timeout=10.0
        ),
    )
    try:
        while worker.step():
            pass
    finally:
        for state in worker.logs:
            state.lock.release()


def run_simulation(
    client: TestClient, people: People, voters: list[Voter], spec: dict[str, Any]
) -> tuple[str, dict[str, list[str]]]:
    """Open, cast (the first voter votes again last), close and tally; each voter's hashes."""
    sim = opened(client, people, spec)
    if spec["ballot_type"] == "approval":
        choices: list[Any] = [["A"], ["B", "C"], ["A", "B"], ["A", "C"]]
    else:
        choices = [{"A": "no"}, {"A": "yes", "B": "abstain"}, {"B": "yes"}, {"A": "yes"}]
    cast: dict[str, list[str]] = {}
    for voter, ballot in zip([*voters, voters[0]], choices, strict=True):
        r = client.post(f"/api/v1/simulations/{sim}/ballots", json=voter.ballot(sim, ballot))
        assert r.status_code == 201, r.text
        cast.setdefault(voter.account.id, []).append(r.json()["record_hash"])
    for step in ("close", "tally"):
        r = client.post(f"/api/v1/simulations/{sim}/{step}", headers=people.staff.headers)
        assert r.status_code == 201, r.text
    return sim, cast


def civic_verify(
    client: TestClient, rpc: str, sim: str, *options: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    code = main(
        ["tally", sim, "--api", API, "--rpc", rpc, "--json", *options],
        reader_factory=Web3ChainReader,
        http_transport=bridge(client),
    )
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.chain
def test_an_honest_open_simulation_is_valid_and_my_ballot_is_counted(
    client: TestClient,
    people: People,
    three: list[Voter],
    database: Database,
    registry: Any,
    ganache: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, cast = run_simulation(client, people, three, PB)
    anchor_votes(database, registry)
    mine = cast[three[0].account.id][-1]  # the revote is what counts
    code, result = civic_verify(client, ganache.rpc_url, sim, "--my-ballot", mine, capsys=capsys)
    assert (code, result["verdict"]) == (0, "valid"), result
    assert result["recounted"] is True and result["notes"] == []
    counted = sorted(hashes[-1] for hashes in cast.values())
    assert result["counted"] == counted
    view = client.get(f"/api/v1/simulations/{sim}").json()
    assert result["counted_root"] == view["result"]["counted_root"]
    assert result["tally_record"] == view["tally_record"]
    proof = result["my_ballot"]
    assert proof["index"] == counted.index(mine) and proof["size"] == 3
    assert verify_inclusion(
        bytes.fromhex(mine),
        proof["index"],
        proof["size"],
        [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(result["counted_root"]),
    )
    names = [(c["step"], c["name"]) for c in result["checks"]]
    assert names[:4] == [
        (1, "tally receipt"),
        (1, "tally record"),
        (1, "published tally"),
        (2, "opened record"),
    ]
    assert (3, "recount") in names and (5, "my ballot") in names
    assert all(c["ok"] for c in result["checks"])

    # The superseded first ballot was not counted: a proof of exclusion by the voter's revote.
    superseded = cast[three[0].account.id][0]
    code, result = civic_verify(
        client, ganache.rpc_url, sim, "--my-ballot", superseded, capsys=capsys
    )
    assert (code, result["verdict"]) == (1, "not_counted")
    assert f"superseded by a later ballot of the same voter ({mine})" in result["reason"]

    # The human report says the same, with the path spelled out.
    code = main(
        ["tally", sim, "--api", API, "--rpc", ganache.rpc_url, "--my-ballot", mine],
        reader_factory=Web3ChainReader,
        http_transport=bridge(client),
    )
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and lines[0].startswith("VALID: the anchored tally checks out: recounted")
    assert any(
        line.startswith(f"my ballot {mine}: leaf {counted.index(mine)} of 3") for line in lines
    )


@pytest.mark.chain
def test_secret_mode_checks_the_root_and_says_it_cannot_recount(
    client: TestClient,
    people: People,
    three: list[Voter],
    database: Database,
    registry: Any,
    ganache: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, cast = run_simulation(client, people, three, {**YN, "secrecy": "secret"})
    anchor_votes(database, registry)
    code, result = civic_verify(client, ganache.rpc_url, sim, capsys=capsys)
    assert (code, result["verdict"]) == (0, "valid"), result
    assert result["recounted"] is False
    assert any("cannot be recounted" in note for note in result["notes"])
    assert "could not be recounted" in result["reason"]
    assert result["counted"] == sorted(h[-1] for h in cast.values())
    receipts = next(c for c in result["checks"] if c["name"] == "ballot receipts")
    assert "4 with hidden contents" in receipts["detail"]

    # An inspector sees the ballots after closing: the same tally, recounted.
    code, result = civic_verify(
        client, ganache.rpc_url, sim, "--token", people.inspector.token, capsys=capsys
    )
    assert (code, result["verdict"], result["recounted"]) == (0, "valid", True), result

    # A voter sees only their own ballot: the root is checked, the outcome is not recounted,
    # and their ballot is proven counted.
    voter = three[1]
    mine = cast[voter.account.id][-1]
    code, result = civic_verify(
        client,
        ganache.rpc_url,
        sim,
        "--token",
        voter.account.token,
        "--my-ballot",
        mine,
        capsys=capsys,
    )
    assert (code, result["verdict"], result["recounted"]) == (0, "valid", False), result
    assert result["my_ballot"]["record_hash"] == mine


def test_a_tally_not_anchored_yet_is_pending_and_an_unknown_simulation_exits_2(
    client: TestClient,
    people: People,
    three: list[Voter],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim, _ = run_simulation(client, people, three, PB)
    unused = FakeChain()
    code = main(
        ["tally", sim, "--api", API, "--json"],
        reader_factory=lambda url, timeout: unused,
        http_transport=bridge(client),
    )
    result = json.loads(capsys.readouterr().out)
    assert (code, result["verdict"]) == (1, "pending")
    assert unused.calls == []
    code = main(
        ["tally", "SIM-00000000", "--api", API],
        reader_factory=lambda url, timeout: unused,
        http_transport=bridge(client),
    )
    assert code == 2 and "unknown simulation" in capsys.readouterr().err


# -- tampered tallies: records built by hand, anchored on the FakeChain ------------------------

SIM = "SIM-7K3M9QXD"
RULES: dict[str, Any] = {
    "title": "2027年民生实事项目",
    "ballot_type": "approval",
    "rule": "greedy",
    "projects": [
        {"id": "A", "name": "老旧小区加装电梯", "cost": 600},
        {"id": "B", "name": "社区食堂", "cost": 300},
        {"id": "C", "name": "口袋公园", "cost": 400},
    ],
    "budget": 1000,
    "slots": None,
    "min_choices": None,
    "max_choices": 2,
    "max_points": None,
    "add1_unit": 1,
    "quorum": [2, 3],
    "majority_of": "eligible",
    "secrecy": "open",
}


class Votes:
    """A votes log written as the service writes it, with the faults a test asks for."""

    def __init__(self, voters: int = 3) -> None:
        self.keys = {f"deputy-{i:08x}": generate_key() for i in range(1, voters + 1)}
        self.records: list[SealedRecord] = []
        self.trails: dict[str, list[SealedRecord]] = {}
        self.salt = counter_salt(500)
        self.ballots: list[tuple[SealedRecord, str, Any, str]] = []
        self.superseded: set[str] = set()

    def _append(
        self, type_: str, subject: str, actor: dict[str, str], body: dict[str, Any]
    ) -> SealedRecord:
        trail = self.trails.setdefault(subject, [])
        sealed = build_record(
            log="votes",
            type=type_,
            subject=subject,
            seq=len(trail),
            prev=trail[-1].leaf_hash if trail else None,
            actor=actor,
            body=body,
            now=START + timedelta(seconds=len(self.records)),
            salt=self.salt,
        )
        trail.append(sealed)
        self.records.append(sealed)
        return sealed

    def open(self, **changes: Any) -> SealedRecord:
        electorate = [
            {"voter": v, "public_key": public_key_hex(k)} for v, k in sorted(self.keys.items())
        ]
        body = {
            **RULES,
            "electorate": electorate,
            "simulation": SIM,
            "opens_at": "2026-11-27T09:30:00.123Z",
            "closes_at": None,
            **changes,
        }
        return self._append("simulation.opened", SIM, {"role": "staff", "id": "staff-1"}, body)

    def cast(self, voter: str, choices: Any, *, signature: str | None = None) -> SealedRecord:
        nonce = secrets.token_hex(16)
        sig = signature or sign_ballot(self.keys[voter], SIM, voter, choices, nonce)
        for earlier, who, _, _ in self.ballots:
            if who == voter:
                self.superseded.add(earlier.record_hash)
        body = {
            "simulation": SIM,
            "voter": voter,
            "choices": choices,
            "nonce": nonce,
            "signature": sig,
        }
        sealed = self._append(
            "ballot.cast", f"{SIM}/{voter}", {"role": "deputy", "id": voter}, body
        )
        self.ballots.append((sealed, voter, choices, nonce))
        return sealed

    def counted(self) -> list[tuple[SealedRecord, str, Any, str]]:
        return [b for b in self.ballots if b[0].record_hash not in self.superseded]

    def close_and_tally(self, **changes: Any) -> dict[str, Any]:
        counted = self.counted()
        self._append(
            "simulation.closed",
            SIM,
            {"role": "staff", "id": "staff-1"},
            {"simulation": SIM, "closed_at": "2026-11-27T10:00:00.000Z", "ballots": len(counted)},
        )
        opened = self.trails[SIM][0].record["body"]
        rules = {**opened, "electorate_ids": [e["voter"] for e in opened["electorate"]]}
        result = tally(rules, {voter: choices for _, voter, choices, _ in counted})
        leaves = sorted(b[0].leaf_hash for b in counted)
        body = {
            "simulation": SIM,
            "rule": opened["rule"],
            "ballots_counted": len(counted),
            **result,
            "counted_root": merkle_root(leaves).hex(),
            **changes,
        }
        self._append("simulation.tallied", SIM, {"role": "staff", "id": "staff-1"}, body)
        return body

    def anchored(self, chain: FakeChain) -> dict[str, dict[str, Any]]:
        """Anchor every record in one batch; each record's receipt by its hash."""
        batch = Batch.of(self.records, number=0)
        chain.anchor(batch)
        return {r.record_hash: batch.receipt(i) for i, r in enumerate(self.records)}

    def check(
        self,
        chain: FakeChain,
        *,
        hidden: bool = False,
        my_ballot: str | None = None,
        listing: list[dict[str, Any]] | None = None,
    ) -> TallyVerification:
        receipts = self.anchored(chain)
        trail = self.trails[SIM]
        tallied = trail[-1]
        simulation = {
            "id": SIM,
            "state": "tallied",
            "tally_record": tallied.record_hash,
            "result": tallied.record["body"],
        }
        if listing is None:
            listing = []
            for sealed, voter, choices, nonce in self.ballots:
                entry: dict[str, Any] = {
                    "record_hash": sealed.record_hash,
                    "superseded": sealed.record_hash in self.superseded,
                }
                if not hidden:
                    entry |= {"voter": voter, "choices": choices, "nonce": nonce}
                    entry |= {"receipt": copy.deepcopy(receipts[sealed.record_hash])}
                listing.append(entry)
        return verify_tally(
            simulation,
            receipts[tallied.record_hash],
            receipts[trail[0].record_hash],
            listing,
            chain,
            my_ballot=my_ballot,
            between_receipts=[receipts[r.record_hash] for r in trail[1:-1]],
        )


def honest(votes: Votes | None = None) -> Votes:
    votes = votes or Votes()
    votes.open()
    a, b, c = votes.keys
    votes.cast(a, ["A"])
    votes.cast(b, ["B", "C"])
    votes.cast(c, ["A", "B"])
    votes.cast(a, ["B"])  # a revote: the first ballot is superseded
    return votes


def failing(result: TallyVerification) -> list[tuple[int, str, str | None]]:
    return [(c.step, c.name, c.verdict) for c in result.checks if not c.ok]


def test_an_honest_hand_built_tally_is_valid() -> None:
    votes = honest()
    body = votes.close_and_tally()
    assert body["counts"] == {"A": 1, "B": 3, "C": 1}
    result = votes.check(FakeChain())
    assert result.verdict is TallyVerdict.VALID, result.to_dict()
    assert result.recounted and result.notes == []
    assert result.to_dict()["counted"] == sorted(b[0].record_hash for b in votes.counted())


def test_a_recount_that_differs_is_recount_mismatch() -> None:
    votes = honest()
    votes.close_and_tally(
        counts={"A": 2, "B": 2, "C": 1}, outcome={"selected": ["A", "B"], "cost": 900}
    )
    result = votes.check(FakeChain())
    assert result.verdict is TallyVerdict.RECOUNT_MISMATCH
    assert failing(result) == [(3, "recount", TallyVerdict.RECOUNT_MISMATCH)]
    assert "counts A: anchored 2, recount 1" in result.reason
    assert "outcome selected: anchored ['A', 'B'], recount ['B', 'A']" in result.reason


def test_a_forged_counted_root_is_root_mismatch() -> None:
    votes = honest()
    # Counting the superseded ballot too (and keeping the honest counts) changes only the root.
    forged = merkle_root(sorted(b[0].leaf_hash for b in votes.ballots)).hex()
    votes.close_and_tally(counted_root=forged)
    result = votes.check(FakeChain())
    assert result.verdict is TallyVerdict.ROOT_MISMATCH
    assert failing(result) == [(3, "counted root", TallyVerdict.ROOT_MISMATCH)]
    assert f"the tally record says counted_root {forged}" in result.reason
    mine = votes.counted()[0][0].record_hash
    result = votes.check(FakeChain(), my_ballot=mine)
    assert failing(result)[-1] == (5, "my ballot", TallyVerdict.ROOT_MISMATCH)


def test_a_ballot_with_a_bad_signature_is_signature_invalid() -> None:
    votes = Votes()
    votes.open()
    a, b, c = votes.keys
    votes.cast(a, ["A"])
    forged = sign_ballot(votes.keys[a], SIM, b, ["B", "C"], "0" * 32)  # a's key, b's name
    bad = votes.cast(b, ["B", "C"], signature=forged)
    votes.cast(c, ["A", "B"])
    votes.close_and_tally()
    result = votes.check(FakeChain())
    assert result.verdict is TallyVerdict.SIGNATURE_INVALID
    assert failing(result) == [(3, "ballot signature", TallyVerdict.SIGNATURE_INVALID)]
    assert result.reason == (
        f"ballot {bad.record_hash}: {b}'s signature does not verify under the key in the "
        "opened record"
    )


def test_a_voter_outside_the_electorate_is_signature_invalid() -> None:
    votes = honest()
    stranger = "deputy-99999999"
    votes.keys[stranger] = generate_key()  # signs, but the opened record has no key for them
    votes.cast(stranger, ["C"])
    votes.close_and_tally()
    result = votes.check(FakeChain())
    assert result.verdict is TallyVerdict.SIGNATURE_INVALID
    assert f"{stranger} is not in the electorate of the opened record" in result.reason


def test_a_superseded_ballot_is_not_counted() -> None:
    votes = honest()
    votes.close_and_tally()
    first = votes.ballots[0][0].record_hash
    result = votes.check(FakeChain(), my_ballot=first)
    assert result.verdict is TallyVerdict.NOT_COUNTED
    revote = votes.ballots[-1][0].record_hash
    assert result.reason == (
        f"{first} was not counted: it was superseded by a later ballot of the same voter ({revote})"
    )
    unknown = "ab" * 32
    result = votes.check(FakeChain(), my_ballot=unknown)
    assert result.reason == f"{unknown} was not counted: it is not among the simulation's ballots"


def test_secret_mode_checks_the_root_over_the_listed_hashes() -> None:
    votes = honest()
    votes.close_and_tally()
    result = votes.check(FakeChain(), hidden=True)
    assert result.verdict is TallyVerdict.VALID and not result.recounted
    assert result.notes == [
        "the outcome cannot be recounted: the contents of 3 of 3 counted ballots are hidden "
        "(secret mode; an inspector's token shows them after closing)"
    ]
    # A listing that hides a counted ballot (marks it superseded) no longer gives the root.
    listing = [
        {"record_hash": sealed.record_hash, "superseded": True} for sealed, *_ in votes.ballots
    ]
    result = votes.check(FakeChain(), listing=listing)
    assert result.verdict is TallyVerdict.ROOT_MISMATCH


def test_a_listing_that_shows_other_choices_than_the_record_is_altered() -> None:
    votes = honest()
    votes.close_and_tally()
    chain = FakeChain()
    receipts = votes.anchored(chain)
    listing = []
    for sealed, voter, choices, nonce in votes.ballots:
        listing.append(
            {
                "record_hash": sealed.record_hash,
                "superseded": sealed.record_hash in votes.superseded,
                "voter": voter,
                "choices": ["C"] if voter == votes.ballots[1][1] else choices,
                "nonce": nonce,
                "receipt": receipts[sealed.record_hash],
            }
        )
    result = votes.check(chain, listing=listing)
    assert failing(result)[0] == (3, "ballot record", TallyVerdict.ALTERED)
    assert "the listing shows other contents than its anchored record" in result.reason


def test_receipt_verdicts_pass_through() -> None:
    votes = honest()
    votes.close_and_tally()
    chain = FakeChain()
    receipts = votes.anchored(chain)
    tallied = votes.trails[SIM][-1]
    altered = copy.deepcopy(receipts[tallied.record_hash])
    altered["record"]["body"]["counts"]["A"] = 3
    result = verify_tally(
        {"id": SIM, "tally_record": tallied.record_hash}, altered, None, [], chain
    )
    assert (result.verdict, failing(result)) == (
        TallyVerdict.ALTERED,
        [(1, "tally receipt", TallyVerdict.ALTERED)],
    )
    unanchored: ChainReader = FakeChain()
    receipt = receipts[tallied.record_hash]
    result = verify_tally({"id": SIM}, receipt, None, [], unanchored)
    assert result.verdict is TallyVerdict.NOT_ANCHORED


def test_an_opened_record_of_another_trail_is_a_broken_link() -> None:
    votes = honest()
    votes.close_and_tally()
    other = Votes()
    other.keys = votes.keys
    other.open(title="另一次")
    chain = FakeChain()
    receipts = votes.anchored(chain)
    foreign = Batch.of(other.records, number=1)
    chain.anchor(foreign)
    trail = votes.trails[SIM]
    result = verify_tally(
        {"id": SIM},
        receipts[trail[-1].record_hash],
        foreign.receipt(0),
        [],
        chain,
        between_receipts=[receipts[r.record_hash] for r in trail[1:-1]],
    )
    assert failing(result)[0] == (2, "trail", TallyVerdict.BROKEN_LINK)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tally", SIM]) == 2  # --api is required
    assert main(["tally", SIM, "--api", API, "--my-ballot", "not-a-hash"]) == 2
    assert "not a record hash" in capsys.readouterr().err
    assert main(["tally", "--help"]) == 0
    assert "--my-ballot RECORD_HASH" in capsys.readouterr().out
