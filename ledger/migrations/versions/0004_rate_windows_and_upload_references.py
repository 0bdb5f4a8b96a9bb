"""The anonymous limits counted once per service (``rate_windows``), and which uploads a record
cites (``attachments.referenced_at``), so that uploads nobody cites can be removed.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_windows",
        sa.Column("scope", sa.String(16), primary_key=True),
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("hits", sa.Text, nullable=False),  # JSON: Unix times of the hits in the window
        sa.Column("touched_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("referenced_at", sa.DateTime(timezone=True), nullable=True))
    # Files uploaded before this revision are kept: which records cite them was not tracked,
    # and removing a cited file would leave a record pointing at nothing.
    op.execute("UPDATE attachments SET referenced_at = created_at")
    op.create_index("ix_attachments_unreferenced", "attachments", ["referenced_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_attachments_unreferenced", table_name="attachments")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("referenced_at")
    op.drop_table("rate_windows")
