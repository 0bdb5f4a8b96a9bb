"""The restore drill of docs/DEPLOY.md: back the store up, keep anchoring, lose the database,
restore the backup, and let the audit prove what the restore lacks.

The chain outlives the database. Every batch anchored after the backup is on chain and not in
the restored store, and ``civic-verify audit --worker-stopped`` reports each one as
``missing_batch`` (with its root and size): a restore is complete only when that audit is clean.
Records accepted after the last anchored batch and not in the backup leave no trace anywhere:
they are the recovery point objective, bounded by the anchor interval plus the anchoring lag.

SQLite is backed up with its online backup API and restored by putting the copy back;
PostgreSQL with pg_dump and pg_restore of the store's schema (custom format), as documented.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from sqlalchemy import func, select

from ledger import service
from ledger.models import BatchRow, RecordRow
from ledger.worker import AnchoringWorker, WorkerConfig
from tests.fixtures.db import POSTGRES_URL, Database
from verifier.audit import audit_store
from verifier.audit.findings import FindingKind
from verifier.audit.reading import open_store
from verifier.chain import Web3ChainReader
from verifier.cli import main

pytestmark = pytest.mark.chain
BATCH_MAX = 4
LOG = "access"  # staff reads of personal data: trails with no state machine to satisfy


def append_records(db: Database, n: int, subject: str = "staff-7") -> None:
    """``n`` records of ``subject``'s trail in the access log, one transaction each."""
    for i in range(n):
        with db.sessions.begin() as session:
            service.append_record(
                session,
                log=LOG,
                type="pii.read",
                subject=subject,
                actor={"role": "staff", "id": subject},
                body={"suggestion": f"SG-{i:04d}", "field": "contact", "reason": "电话回访"},
            )


def _anchor_all(db: Database, registry: Any) -> None:
    worker = AnchoringWorker(
        engine=db.engine,
        session_factory=db.sessions,
        chain=registry.client,
        config=WorkerConfig(
            contract=registry.address,
            anchor_interval=0.0,
            batch_max=BATCH_MAX,
            receipt_timeout=10.0,
            logs=[LOG],
        ),
    )
    try:
        while worker.step():
            pass
    finally:
        for state in worker.logs:  # the worker stops: its lock goes
            state.lock.release()


def _schema(url: str) -> str:
    options = unquote(urlsplit(url).query)  # options=-csearch_path=t_…
    return options.rsplit("search_path=", 1)[1].split("&")[0]


def _backup(db: Database, to: Path) -> None:
    if db.backend == "sqlite":
        live = sqlite3.connect(db.url.removeprefix("sqlite:///"))
        copy = sqlite3.connect(to)
        with copy:
            live.backup(copy)  # consistent while the service keeps writing
        copy.close()
        live.close()
    else:
        assert POSTGRES_URL
        subprocess.run(
            [
                "pg_dump",
                "--format=custom",
                f"--schema={_schema(db.url)}",
                f"--file={to}",
                POSTGRES_URL,
            ],
            check=True,
            capture_output=True,
        )


def _restore(db: Database, backup: Path) -> None:
    """The database is lost; the backup is put back in its place."""
    db.engine.dispose()
    if db.backend == "sqlite":
        path = Path(db.url.removeprefix("sqlite:///"))
        for lost in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            lost.unlink(missing_ok=True)
        shutil.copyfile(backup, path)
    else:
        assert POSTGRES_URL
        schema = _schema(db.url)
        subprocess.run(
            ["psql", "-q", "-c", f"DROP SCHEMA {schema} CASCADE", POSTGRES_URL],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["pg_restore", "--exit-on-error", f"--dbname={POSTGRES_URL}", str(backup)],
            check=True,
            capture_output=True,
        )


def _batches_of(db: Database, registry: Any, count: int, subject: str = "staff-7") -> None:
    """``count`` batches of BATCH_MAX records each, anchored one after another (a batch takes
    every waiting record, then its map head: BATCH_MAX + 1 entries)."""
    for _ in range(count):
        append_records(db, BATCH_MAX, subject=subject)
        _anchor_all(db, registry)


def _counts(db: Database) -> tuple[int, int]:
    with db.sessions() as session:
        records = session.scalar(select(func.count()).select_from(RecordRow))
        batches = session.scalar(select(func.count()).select_from(BatchRow))
    return int(records or 0), int(batches or 0)


def test_an_audit_proves_what_a_restore_from_an_old_backup_lacks(
    database: Database, registry: Any, ganache: Any, tmp_path: Path
) -> None:
    _batches_of(database, registry, 3)  # batches 0, 1, 2
    backup = tmp_path / "nightly.backup"
    _backup(database, backup)

    _batches_of(database, registry, 2, subject="staff-8")  # 3, 4: on chain, not in the backup
    append_records(database, 3, subject="staff-9")  # accepted, never anchored: the RPO
    assert _counts(database) == (5 * (BATCH_MAX + 1) + 3, 5)
    lost_roots = {}
    for number in (3, 4):
        on_chain = registry.client.batch_of(registry.address, LOG, number)
        assert on_chain is not None
        lost_roots[number] = on_chain.root.hex()

    _restore(database, backup)
    assert _counts(database) == (3 * (BATCH_MAX + 1), 3)

    # With the worker stopped, as during a restore, the audit judges every chain batch.
    with open_store(database.url) as store:
        report = audit_store(store, Web3ChainReader(ganache.rpc_url), worker_stopped=True)
    assert not report.clean
    missing = [f for f in report.findings if f.kind is FindingKind.MISSING_BATCH]
    assert [f.batch for f in missing] == [3, 4]
    for finding in missing:
        assert "anchored on chain" in finding.detail
        assert lost_roots[finding.batch] in finding.detail  # type: ignore[index]
        assert f"{BATCH_MAX + 1} records" in finding.detail  # and its map head
    # Nothing else is wrong with what was restored: batches 0–2 and their records check out,
    # and nothing at all points at the three records that were never anchored.
    assert [f.kind for f in report.findings] == [FindingKind.MISSING_BATCH] * 2
    assert not [f for f in report.findings if f.subject == "staff-9"]
    assert [s.chain_batches for s in report.logs if s.log == LOG] == [5]

    # A running worker could have sealed and anchored those batches after the audit read the
    # store: without --worker-stopped, batches anchored minutes ago are only noted.
    with open_store(database.url) as store:
        relaxed = audit_store(store, Web3ChainReader(ganache.rpc_url))
    assert not [f for f in relaxed.findings if f.kind is FindingKind.MISSING_BATCH]
    assert sum("not judged" in note for note in relaxed.notes) == 2

    argv = ["audit", "--database-url", database.url, "--rpc", ganache.rpc_url, "--no-progress"]
    assert main([*argv, "--worker-stopped"]) == 1


def test_a_complete_restore_audits_clean(
    database: Database, registry: Any, ganache: Any, tmp_path: Path
) -> None:
    _batches_of(database, registry, 2)
    backup = tmp_path / "latest.backup"
    _backup(database, backup)  # taken after the last anchor: nothing anchored is missing
    _restore(database, backup)
    argv = ["audit", "--database-url", database.url, "--rpc", ganache.rpc_url, "--no-progress"]
    assert main([*argv, "--worker-stopped"]) == 0
