"""The map of trail heads (PROTOCOL §10): ``map_nodes``, the stored nodes of each log's map as
of its last sealed batch (a terminal carries its pair, an inner node its hash), and
``map_node_versions``, every version of every node with the batch that wrote it, from which
the proof of any batch is served; ``log_heads.map_until`` and ``map_trails``, how many entries and trails the map covers.
Nothing to fill in: the next seal of each log catches its map up from the records.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _columns(*, versioned: bool) -> list[sa.Column]:
    return [
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("depth", sa.SmallInteger, primary_key=True),
        sa.Column("prefix", sa.LargeBinary(32), primary_key=True),
        sa.Column("batch", sa.BigInteger, primary_key=versioned, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("pair", sa.LargeBinary(72), nullable=True),
    ]


def upgrade() -> None:
    op.create_table("map_nodes", *_columns(versioned=False))
    op.create_table("map_node_versions", *_columns(versioned=True))
    for column in ("map_until", "map_trails"):
        op.add_column(
            "log_heads",
            sa.Column(column, sa.BigInteger, nullable=False, server_default=sa.text("0")),
        )


def downgrade() -> None:
    op.drop_column("log_heads", "map_trails")
    op.drop_column("log_heads", "map_until")
    op.drop_table("map_node_versions")
    op.drop_table("map_nodes")
