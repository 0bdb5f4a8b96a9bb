"""Which suggestion each attachment belongs to (``attachments.suggestion``) and which
attachments anyone may read (``attachments.public``, false for all): who may download a file
follows from them (issue 19, item 6; docs/SECURITY.md, "Attachments").

Files already cited get the suggestion whose record cited them first, read from the
suggestions log in log order (a submission's ``attachments``, a step's ``reply_sha256``). A
cited file whose citing record is redacted, or hides its attachments behind a commitment,
stays without a suggestion: only staff and inspectors read it, and no suggestion may cite it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ATTACHMENTS = sa.table(
    "attachments", sa.column("sha256", sa.String), sa.column("suggestion", sa.String)
)
_RECORDS = sa.table(
    "records",
    sa.column("log", sa.String),
    sa.column("position", sa.BigInteger),
    sa.column("subject", sa.String),
    sa.column("type", sa.String),
    sa.column("canonical", sa.LargeBinary),
)


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("suggestion", sa.String(32), nullable=True))
        batch.add_column(sa.Column("public", sa.Boolean, nullable=False, server_default=sa.false()))
    _bind_cited_files(op.get_bind())


def _bind_cited_files(conn: sa.Connection) -> None:
    unbound = set(
        conn.scalars(sa.select(_ATTACHMENTS.c.sha256).where(_ATTACHMENTS.c.suggestion.is_(None)))
    )
    if not unbound:
        return
    owners: dict[str, str] = {}
    citing = (
        sa.select(_RECORDS.c.subject, _RECORDS.c.canonical)
        .where(
            _RECORDS.c.log == "suggestions",
            _RECORDS.c.type.in_(["suggestion.submitted", "suggestion.transition"]),
        )
        .order_by(_RECORDS.c.position)
        # in batches (a server-side cursor on PostgreSQL); on the statement, not the
        # connection, whose options would stay set for Alembic's own statements after it
        .execution_options(yield_per=1000)
    )
    for subject, canonical in conn.execute(citing):
        if not canonical:  # redacted (PROTOCOL §7)
            continue
        body = json.loads(bytes(canonical)).get("body", {})
        cited = list(body.get("attachments") or [])
        if body.get("reply_sha256"):
            cited.append(body["reply_sha256"])
        for sha in cited:
            if sha in unbound and sha not in owners:
                owners[sha] = subject
    for sha, subject in owners.items():
        conn.execute(
            sa.update(_ATTACHMENTS).where(_ATTACHMENTS.c.sha256 == sha).values(suggestion=subject)
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("public")
        batch.drop_column("suggestion")
