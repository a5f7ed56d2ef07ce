"""staff accounts (owner, stylist), their password resets and API keys, consultations'
assignment, and the audit log

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "password_resets",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_password_resets_account_id", "password_resets", ["account_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: it would copy consultations into a new table and drop the old one,
        # and dropping it deletes, through ON DELETE CASCADE, every row that names a
        # consultation (messages, stills, ...). SQLite adds a column with its reference as is.
        op.execute(
            "ALTER TABLE consultations ADD COLUMN assigned_to VARCHAR(32)"
            " REFERENCES accounts (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("consultations", sa.Column("assigned_to", sa.String(32), nullable=True))
        op.create_foreign_key(
            "fk_consultations_assigned_to",
            "consultations",
            "accounts",
            ["assigned_to"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index("ix_consultations_assigned_to", "consultations", ["assigned_to"])
    # The audit log's pruning: one node at a time (consult/recording/leases.py).
    leases = sa.table("leases", sa.column("name", sa.String))
    op.bulk_insert(leases, [{"name": "audit-prune"}])


def downgrade() -> None:
    op.execute("DELETE FROM leases WHERE name = 'audit-prune'")
    op.drop_index("ix_consultations_assigned_to", "consultations")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite drops no column that a foreign key names: the table is rebuilt without it
        # (safe: the service migrates with foreign keys off, Database.migrating).
        with op.batch_alter_table("consultations", recreate="always") as batch:
            batch.drop_column("assigned_to")
    else:
        op.drop_constraint("fk_consultations_assigned_to", "consultations", type_="foreignkey")
        op.drop_column("consultations", "assigned_to")
    op.drop_table("audit_log")
    op.drop_table("api_keys")
    op.drop_table("password_resets")
    op.drop_table("accounts")
