"""Each log's growing tree (PROTOCOL §8): ``tree_nodes`` (complete subtrees of level 1 and up),
``log_heads.tree_size`` (how many entries the tree covers), ``batches.log_root`` (the whole
log's root at the batch's end: what a version 2 anchor carries) and ``batches.frontier`` (the
tree's right edge at the batch's start, for receipts and batch exports). Existing stores start with an empty tree: the sealer catches
it up from the records at its next seal (``ledger.tree.extend``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tree_nodes",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("level", sa.Integer, primary_key=True),
        sa.Column("idx", sa.BigInteger, primary_key=True),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    with op.batch_alter_table("log_heads") as batch:
        batch.add_column(
            sa.Column("tree_size", sa.BigInteger, nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("log_root", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("frontier", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("frontier")
        batch.drop_column("log_root")
    with op.batch_alter_table("log_heads") as batch:
        batch.drop_column("tree_size")
    op.drop_table("tree_nodes")
