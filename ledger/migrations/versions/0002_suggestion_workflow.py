"""Suggestion workflow: accounts and tokens, workflow columns, private (encrypted) data,
attachments, and redaction (PROTOCOL §7) as the one permitted change to a record row.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A record row may change in exactly one way: its content is erased (canonical set to the
# empty string) after a redaction row for its leaf hash exists. Every other column stays.
_UNCHANGED = (
    "NEW.id = OLD.id AND NEW.log = OLD.log AND NEW.position = OLD.position "
    "AND NEW.subject = OLD.subject AND NEW.seq = OLD.seq AND NEW.type = OLD.type "
    "AND NEW.leaf_hash = OLD.leaf_hash AND NEW.accepted_at = OLD.accepted_at"
)
_REDACTION = (
    "length(NEW.canonical) = 0 AND length(OLD.canonical) > 0 AND "
    f"{_UNCHANGED} AND EXISTS (SELECT 1 FROM redactions r WHERE r.leaf_hash = OLD.leaf_hash)"
)

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION civic_records_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND {_REDACTION} THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'records are append-only: % on records is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("office", sa.String(32)),
        sa.Column("district", sa.String(64)),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("public_key", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_accounts_role_office", "accounts", ["role", "office"])

    with op.batch_alter_table("suggestions") as batch:
        batch.add_column(sa.Column("title", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("citizen_token_hash", sa.LargeBinary(32)))
        batch.add_column(
            sa.Column("submitter_role", sa.String(16), nullable=False, server_default="citizen")
        )
        batch.add_column(
            sa.Column("submitter_id", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("deputy_id", sa.String(32)))
        batch.add_column(sa.Column("lead_office", sa.String(32)))
        batch.add_column(sa.Column("offices", sa.Text))
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("first_answered_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("answered_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("answered_on_time", sa.Boolean))
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("reply_category", sa.String(1)))
        batch.add_column(sa.Column("last_level", sa.String(24)))
        batch.add_column(
            sa.Column("key_supervision", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("confidential", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("merged_into", sa.String(32)))
    for column in ("state", "district", "lead_office", "deputy_id", "submitted_at"):
        op.create_index(f"ix_suggestions_{column}", "suggestions", [column])

    op.create_table(
        "suggestion_private",
        sa.Column(
            "tracking_code",
            sa.String(32),
            sa.ForeignKey("suggestions.tracking_code"),
            primary_key=True,
        ),
        sa.Column("contact", sa.LargeBinary),  # AES-GCM: nonce || ciphertext
        sa.Column("text", sa.LargeBinary),  # AES-GCM, confidential suggestions only
    )
    op.create_table(
        "attachments",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("uploaded_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "redactions",
        sa.Column("leaf_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("at", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER records_append_only_update")
        op.execute(
            "CREATE TRIGGER records_append_only_update BEFORE UPDATE ON records "
            f"WHEN NOT ({_REDACTION}) BEGIN SELECT RAISE(ABORT, 'records are append-only: "
            "UPDATE on records is refused'); END"
        )


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: it would drop accounts and private data")
