"""Our trees, proofs, checkpoints and notes, checked by Go's independent implementation.

Go's ``golang.org/x/mod/sumdb/tlog`` and ``sumdb/note`` (Debian: golang-go and
golang-golang-x-mod-dev, installed by ./scripts/setup-go) are built into a small checker,
tests/core/gocheck/main.go, cached by the hash of its source. Go

* opens our signed checkpoints with the log's verifier key (``note.Open``, ``note.NewVerifier``)
  and reads their size and root (``tlog.ParseTree``, given the go.sum database's origin line);
* checks our consistency proofs between tree heads (``tlog.CheckTree``) and our inclusion
  proofs (``tlog.CheckRecord``), and refuses tampered ones;
* stores the same leaves itself (``tlog.StoredHashesForRecordHash``): its stored hashes are our
  node table, node for node, and its own proofs (``ProveRecord``, ``ProveTree``) are ours;
* signs notes with keys it generates (``note.GenerateKey``, ``note.NewSigner``, ``note.Sign``)
  that ``open_note`` must accept, with the same key IDs, and the same bytes when we sign.

Debian's x/mod (0.7.0) has no cosignatures: the cosignature/v1 checks at the end go through
``note.Open`` with a verifier of our own, a few lines of Go written from the spec, so they
check the byte layout against a second reading of the spec, not against another project.
The tests are skipped, saying why, only when Go or the x/mod sources are not installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from core import cosignature, note, tlog
from core.checkpoint import Checkpoint, sign_checkpoint
from core.merkle import leaf_hash
from core.tlog import Node

GOPATH = Path("/usr/share/gocode")
X_MOD = GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"
SOURCE = Path(__file__).parent / "gocheck" / "main.go"

Go = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("gocheck"))
    return tmp_path_factory.mktemp("gocheck")


@pytest.fixture(scope="module")
def go(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Go]:
    """Run the Go checker on a batch of cases; build it first if this source is not built."""
    go_tool = shutil.which("go")
    if go_tool is None:
        pytest.skip("Go interop: no `go` on PATH (Debian golang-go; ./scripts/setup-go)")
    if not (X_MOD / "note" / "note.go").is_file() or not (X_MOD / "tlog" / "tlog.go").is_file():
        pytest.skip(f"Go interop: no x/mod sources in {X_MOD} (Debian golang-golang-x-mod-dev)")
    cache = _cache_dir(request, tmp_path_factory)
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    binary = cache / f"gocheck-{digest}"
    if not binary.exists():
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": str(GOPATH),
            "GOCACHE": str(cache / "gocache"),
            "GOFLAGS": "",
        }
        partial = cache / f"gocheck-{digest}.partial"
        built = subprocess.run(
            [go_tool, "build", "-o", str(partial), str(SOURCE)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if built.returncode != 0:
            pytest.fail(f"building {SOURCE} failed:\n{built.stderr}")
        partial.replace(binary)
        for stale in cache.glob("gocheck-*"):  # builds of older sources
            if stale != binary:
                stale.unlink()

    def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [str(binary)],
            input=json.dumps({"cases": cases}),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
        assert len(results) == len(cases)
        return results

    yield run


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


class Log:
    """A log as the service keeps it: a node table grown batch by batch, with tree heads."""

    def __init__(self, batches: list[int]) -> None:
        self.nodes: dict[Node, bytes] = {}
        self.leaves: list[bytes] = []
        self.heads: list[tuple[int, bytes]] = []
        for count in batches:
            new = [leaf_hash(f"entry {len(self.leaves) + i}".encode()) for i in range(count)]
            done = tlog.append_leaves(len(self.leaves), new, self.read)
            self.nodes.update(done.nodes)
            self.leaves.extend(new)
            self.heads.append((done.size, done.root))

    def read(self, wanted: Sequence[Node]) -> list[bytes]:
        return [self.nodes[node] for node in wanted]


LOG = Log([7, 13, 1, 29, 64, 3])
ORIGIN = "civic-ledger.localhost/suggestions"
LOG_KEY = note.Ed25519Signer(ORIGIN, hashlib.sha256(b"interop log key").digest())
WITNESS = cosignature.Cosigner("witness.example/w1", hashlib.sha256(b"interop witness").digest())


def flip(raw: bytes) -> bytes:
    return bytes([raw[0] ^ 1]) + raw[1:]


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def test_go_opens_our_signed_checkpoints(go: Go) -> None:
    notes = [sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG_KEY) for size, root in LOG.heads]
    results = go([{"op": "open", "note": n, "vkeys": [LOG_KEY.verifier_key]} for n in notes])
    for (size, root), n, result in zip(LOG.heads, notes, results, strict=True):
        assert result["ok"], result
        assert result["text"] == n.split("\n\n")[0] + "\n"
        assert result["verified"] == [f"{ORIGIN}+{LOG_KEY.key_id.hex()}"]
        assert result["origin"] == ORIGIN
        assert (result["tree_size"], unb64(result["tree_root"])) == (size, root)


def test_go_refuses_altered_or_foreign_checkpoints(go: Go) -> None:
    size, root = LOG.heads[-1]
    good = sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG_KEY)
    other_key = note.Ed25519Signer(ORIGIN, bytes(32))
    cases = [
        good.replace(f"\n{size}\n", f"\n{size + 1}\n"),  # another size
        good.replace(b64(root), b64(flip(root))),  # another root
        sign_checkpoint(Checkpoint(ORIGIN, size, root), other_key),  # another key, same name
        good.replace("\n\n", "\n"),  # malformed
    ]
    results = go([{"op": "open", "note": n, "vkeys": [LOG_KEY.verifier_key]} for n in cases])
    assert [r["ok"] for r in results] == [False] * len(cases)
    assert "invalid signature" in results[0]["error"]
    assert "no verifiable signatures" in results[2]["error"]
    assert "malformed" in results[3]["error"]


# ---------------------------------------------------------------------------------------------
# Proofs
# ---------------------------------------------------------------------------------------------


def test_go_checks_our_consistency_proofs_between_tree_heads(go: Go) -> None:
    cases: list[dict[str, Any]] = []
    expect: list[bool] = []
    for i, (old, old_root) in enumerate(LOG.heads):
        for new, new_root in LOG.heads[i:]:
            proof = tlog.consistency_proof(old, new, LOG.read)
            case: dict[str, Any] = {
                "op": "check_tree",
                "old_size": old,
                "old_root": b64(old_root),
                "new_size": new,
                "new_root": b64(new_root),
                "proof": [b64(h) for h in proof],
            }
            cases.append(case)
            expect.append(True)
            if proof:
                wrong = [b64(flip(proof[0])), *case["proof"][1:]]
                cases.append({**case, "proof": wrong})
                expect.append(False)
            if old < new:
                cases.append({**case, "new_root": b64(flip(new_root))})
                expect.append(False)
    results = go(cases)
    assert [r["ok"] for r in results] == expect, [r for r in results if "error" in r][:3]


def test_go_checks_our_inclusion_proofs(go: Go) -> None:
    cases: list[dict[str, Any]] = []
    expect: list[bool] = []
    for size, root in LOG.heads:
        for index in range(size):
            proof = tlog.inclusion_proof(index, size, LOG.read)
            case: dict[str, Any] = {
                "op": "check_record",
                "index": index,
                "size": size,
                "leaf": b64(LOG.leaves[index]),
                "root": b64(root),
                "proof": [b64(h) for h in proof],
            }
            cases.append(case)
            expect.append(True)
            if proof:
                cases.append({**case, "proof": [b64(flip(proof[0])), *case["proof"][1:]]})
                expect.append(False)
            cases.append({**case, "leaf": b64(flip(LOG.leaves[index]))})
            expect.append(False)
    results = go(cases)
    assert [r["ok"] for r in results] == expect


def test_our_node_table_and_proofs_are_gos(go: Go) -> None:
    size = len(LOG.leaves)
    record_pairs = [(i, n) for n, _ in LOG.heads for i in range(0, n, 3)]
    tree_pairs = [(m, n) for n, _ in LOG.heads for m in range(1, n + 1, 2)]
    (result,) = go(
        [
            {
                "op": "tree",
                "leaves": [b64(h) for h in LOG.leaves],
                "record_proofs": [list(p) for p in record_pairs],
                "tree_proofs": [list(p) for p in tree_pairs],
            }
        ]
    )
    go_nodes = {Node(level, index): unb64(h) for level, index, h in result["nodes"]}
    assert go_nodes == LOG.nodes
    assert len(go_nodes) == tlog.stored_node_count(size)
    assert [unb64(r) for r in result["roots"]] == [
        tlog.tree_root(n, LOG.read) for n in range(1, size + 1)
    ]
    for (index, n), proof in zip(record_pairs, result["record_proofs"], strict=True):
        assert [unb64(h) for h in proof] == tlog.inclusion_proof(index, n, LOG.read)
    for (old, new), proof in zip(tree_pairs, result["tree_proofs"], strict=True):
        assert [unb64(h) for h in proof or []] == tlog.consistency_proof(old, new, LOG.read)


# ---------------------------------------------------------------------------------------------
# Notes Go signs
# ---------------------------------------------------------------------------------------------

TEXTS = [
    Checkpoint(ORIGIN, *LOG.heads[-1]).text,
    "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n",
    "人大代表建议\n\n",
]


@pytest.mark.parametrize("text", TEXTS)
def test_we_open_notes_go_signed_and_sign_the_same_bytes(go: Go, text: str) -> None:
    name = "go.example/signer"
    (result,) = go([{"op": "sign", "name": name, "text": text}])
    verifier = note.parse_verifier_key(result["vkey"])
    assert verifier.key_id.hex() == result["key_hash"]
    opened = note.open_note(result["note"], [verifier])
    assert opened.text == text
    assert opened.signed_by == {(name, verifier.key_id)}
    # Go's signer key is ours too, and Ed25519 is deterministic: the same note, byte for byte.
    signer = note.parse_signer_key(result["skey"])
    assert signer.verifier_key == result["vkey"]
    assert note.sign_note(text, signer) == result["note"]
    assert signer.signer_key == result["skey"]


def test_go_refuses_what_we_refuse(go: Go) -> None:
    (result,) = go([{"op": "sign", "name": "go.example/signer", "text": "text\n"}])
    verifier = note.parse_verifier_key(result["vkey"])
    altered = result["note"].replace("text", "txet")
    (checked,) = go([{"op": "open", "note": altered, "vkeys": [result["vkey"]]}])
    assert not checked["ok"]
    with pytest.raises(note.BadSignature):
        note.open_note(altered, [verifier])


# ---------------------------------------------------------------------------------------------
# cosignature/v1, both ways (Go side: our reading of the spec, see the module docstring)
# ---------------------------------------------------------------------------------------------


def test_go_opens_our_cosigned_checkpoint(go: Go) -> None:
    size, root = LOG.heads[-1]
    checkpoint = Checkpoint(ORIGIN, size, root)
    cosigned = (
        sign_checkpoint(checkpoint, LOG_KEY) + WITNESS.cosign(checkpoint.text, 1_800_000_000).line
    )
    forged = (
        sign_checkpoint(checkpoint, LOG_KEY)
        + WITNESS.cosign(Checkpoint(ORIGIN, size - 1, root).text, 1_800_000_000).line
    )
    results = go(
        [
            {
                "op": "open",
                "note": n,
                "vkeys": [LOG_KEY.verifier_key],
                "cosigners": [WITNESS.verifier_key],
            }
            for n in (cosigned, forged)
        ]
    )
    assert results[0]["ok"], results[0]
    assert results[0]["verified"] == [
        f"{ORIGIN}+{LOG_KEY.key_id.hex()}",
        f"{WITNESS.name}+{WITNESS.key_id.hex()}",
    ]
    assert not results[1]["ok"]


def test_we_verify_a_cosignature_go_made(go: Go) -> None:
    size, root = LOG.heads[-1]
    text = Checkpoint(ORIGIN, size, root).text
    (result,) = go(
        [{"op": "cosign", "name": "go.example/witness", "text": text, "timestamp": 1_700_000_000}]
    )
    witness = cosignature.parse_verifier_key(result["vkey"])
    opened = note.open_note(
        sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG_KEY) + result["line"],
        [LOG_KEY.verifier, witness],
    )
    assert (witness.name, witness.key_id) in opened.signed_by
    (line,) = [s for s in opened.signatures if s.name == witness.name]
    assert cosignature.timestamp_of(line) == 1_700_000_000
