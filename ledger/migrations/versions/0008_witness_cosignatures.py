"""The witnesses' cosignatures (PROTOCOL §9, C2SP tlog-witness): ``witness_cosignatures``, the
cosignature lines each witness answered for each anchored batch's checkpoint, and
``witness_state``, the size each witness last cosigned per log (the ``old`` of the next
``add-checkpoint``), a conflict it reported and its last error (``ledger.witnesses``).
Nothing to fill in: the pusher sends every anchored batch to each witness from the start.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "witness_cosignatures",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("batch", sa.BigInteger, primary_key=True),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
        sa.Column("lines", sa.Text, nullable=False),
        sa.Column("cosigned_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "witness_state",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("witness", sa.String(255), primary_key=True),
        sa.Column("key_id", sa.LargeBinary(4), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("conflict", sa.Text, nullable=True),
        sa.Column("conflict_size", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("witness_state")
    op.drop_table("witness_cosignatures")
