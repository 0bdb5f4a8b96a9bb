"""The reasons of personal-data reads, sealed (``access_reasons``): a ``pii.read`` record
carries only a salted commitment to its reader's reason (issue 21, confidential suggestions).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_reasons",
        sa.Column("record_hash", sa.String(64), primary_key=True),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("access_reasons")
