from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.settings import Settings
from tests.fixtures.db import Database


def make_settings(database: Database, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database.url,
        "chain_rpc": "http://127.0.0.1:9",  # nothing listens: the API must not need the chain
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(database, tmp_path))) as test_client:
        yield test_client
