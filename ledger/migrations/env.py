"""Alembic environment. Migrations run through ``ledger.migrate.upgrade`` (or ``civic-ledger
migrate``), which hands us an open connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ledger.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    from ledger.db import make_engine

    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection")
    with make_engine(url).connect() as conn:
        _run(conn)
else:
    _run(connection)
