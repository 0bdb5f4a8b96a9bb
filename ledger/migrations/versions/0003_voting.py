"""Budget simulations and signed ballots (the votes log's summary tables).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "simulations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ballot_type", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("secrecy", sa.String(8), nullable=False),
        sa.Column("rules", sa.Text, nullable=False),  # JSON: the whole rule set
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True)),
        sa.Column("closes_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("result", sa.Text),  # JSON: the tally record's body
        sa.Column("tally_record", sa.String(64)),
    )
    op.create_table(
        "ballots",
        sa.Column(
            "simulation_id", sa.String(32), sa.ForeignKey("simulations.id"), primary_key=True
        ),
        sa.Column("voter", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("record_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("choices", sa.Text, nullable=False),  # JSON, as signed
        sa.Column("cast_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_ballots_current", "ballots", ["simulation_id", "superseded"])


def downgrade() -> None:
    op.drop_table("ballots")
    op.drop_table("simulations")
