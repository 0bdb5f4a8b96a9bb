from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger import auth
from ledger.settings import Settings
from tests.fixtures.db import Database


def make_settings(database: Database, data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": database.url,
        "chain_rpc": "http://127.0.0.1:9",  # nothing listens: the API must not need the chain
        "submit_rate": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def client(database: Database, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(database, tmp_path))) as test_client:
        yield test_client


@dataclass(frozen=True)
class Account:
    id: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class People:
    deputy: Account  # 鼓楼区
    other_deputy: Account  # 台江区
    staff: Account
    office: Account  # JT, 交通局
    other_office: Account  # ZJ, 住建局
    inspector: Account
    admin: Account


@pytest.fixture
def people(database: Database) -> People:
    def add(role: str, name: str, **kw: str) -> Account:
        with database.sessions.begin() as session:
            created = auth.add_account(session, role=role, name=name, **kw)
        return Account(created.id, role, created.token)

    return People(
        deputy=add("deputy", "王代表", district="鼓楼区"),
        other_deputy=add("deputy", "李代表", district="台江区"),
        staff=add("staff", "人大办 张"),
        office=add("office", "市交通局", office="JT"),
        other_office=add("office", "市住建局", office="ZJ"),
        inspector=add("inspector", "监察 陈"),
        admin=add("admin", "管理员"),
    )
