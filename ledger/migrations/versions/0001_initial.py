"""Initial store: append-only records, log and trail heads, batches, suggestions, worker status.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LOGS = ("suggestions", "votes", "access")

_PG_APPEND_ONLY = """
CREATE FUNCTION civic_records_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'records are append-only: % on records is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "log_heads",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("next_position", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("sealed_until", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(
        sa.table("log_heads", sa.column("log", sa.String)), [{"log": name} for name in LOGS]
    )
    op.create_table(
        "trail_heads",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("subject", sa.String(160), primary_key=True),
        sa.Column("next_seq", sa.Integer, nullable=False),
        sa.Column("last_leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "records",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("log", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(160), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("canonical", sa.LargeBinary, nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("log", "position", name="uq_records_log_position"),
        sa.UniqueConstraint("log", "subject", "seq", name="uq_records_trail_seq"),
    )
    op.create_table(
        "batches",
        sa.Column("log", sa.String(32), sa.ForeignKey("log_heads.log"), primary_key=True),
        sa.Column("number", sa.BigInteger, primary_key=True),
        sa.Column("first_position", sa.BigInteger, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chain_id", sa.BigInteger),
        sa.Column("contract", sa.String(42)),
        sa.Column("tx_hash", sa.String(66)),
        sa.Column("raw_tx", sa.LargeBinary),
        sa.Column("nonce", sa.BigInteger),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("block_number", sa.BigInteger),
        sa.Column("gas_used", sa.BigInteger),
        sa.Column("anchored_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("log", "first_position", name="uq_batches_log_first_position"),
    )
    op.create_index("ix_batches_state", "batches", ["state"])
    op.create_table(
        "suggestions",
        sa.Column("tracking_code", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "worker_status",
        sa.Column("log", sa.String(32), primary_key=True),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_APPEND_ONLY)
        op.execute(
            "CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON records "
            "FOR EACH ROW EXECUTE FUNCTION civic_records_append_only()"
        )
        op.execute(
            "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records "
            "FOR EACH STATEMENT EXECUTE FUNCTION civic_records_append_only()"
        )
    elif dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER records_append_only_{operation.lower()} BEFORE {operation} "
                f"ON records BEGIN SELECT RAISE(ABORT, 'records are append-only: "
                f"{operation} on records is refused'); END"
            )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS records_no_truncate ON records")
        op.execute("DROP TRIGGER IF EXISTS records_append_only ON records")
        op.execute("DROP FUNCTION IF EXISTS civic_records_append_only()")
    for table in ("worker_status", "suggestions", "batches", "records", "trail_heads", "log_heads"):
        op.drop_table(table)
