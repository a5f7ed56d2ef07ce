"""customers (issue 17B): a record per customer, every consultation pointing to one (existing
consultations grouped by ``customer_ref``, which becomes the customer's ``external_ref``);
consent given before a call; the journal of files a deletion still has to remove

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("email_key", sa.String(254), nullable=True),
        sa.Column("phone", sa.String(40), nullable=True),
        sa.Column("phone_key", sa.String(40), nullable=True),
        sa.Column("language", sa.String(8), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_into", sa.String(32), nullable=True),
        sa.Column("deletion_requested_at", sa.DateTime(timezone=True), nullable=True),
    )
    for column in ("name", "email_key", "phone_key", "external_ref"):
        op.create_index(f"ix_customers_{column}", "customers", [column])
    with op.batch_alter_table("consultations") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(32), nullable=True))
        batch.create_foreign_key(
            "fk_consultations_customer_id", "customers", ["customer_id"], ["id"]
        )
        batch.create_index("ix_consultations_customer_id", ["customer_id"])
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "customer_id",
            sa.String(32),
            sa.ForeignKey("customers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "consultation_id",
            sa.String(32),
            sa.ForeignKey("consultations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.String(16), nullable=False),
        sa.Column("kept", sa.JSON(), nullable=False),
        sa.Column("given_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_consents_customer_id", "consents", ["customer_id"])
    op.create_index("ix_consents_consultation_id", "consents", ["consultation_id"])
    op.create_table(
        "file_removals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("folder", sa.String(16), nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    )
    _customers_from_consultations()
    # One node at a time applies the retention policy: the lease row exists before anyone
    # competes for it.
    op.bulk_insert(sa.table("leases", sa.column("name", sa.String)), [{"name": "retention"}])


def _customers_from_consultations() -> None:
    """One customer per ``customer_ref`` (its latest consultation's name, email and language),
    and one per consultation without a reference."""
    bind = op.get_bind()
    consultations = sa.table(
        "consultations",
        sa.column("id", sa.String),
        sa.column("customer_name", sa.String),
        sa.column("customer_ref", sa.String),
        sa.column("customer_email", sa.String),
        sa.column("customer_language", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("customer_id", sa.String),
    )
    customers = sa.table(
        "customers",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("email", sa.String),
        sa.column("email_key", sa.String),
        sa.column("language", sa.String),
        sa.column("notes", sa.Text),
        sa.column("external_ref", sa.String),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = bind.execute(
        sa.select(consultations).order_by(consultations.c.created_at, consultations.c.id)
    ).all()
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(row.customer_ref or f"\x00{row.id}", []).append(row)
    now = datetime.now(UTC)
    new_customers: list[dict[str, Any]] = []
    assigned: list[dict[str, Any]] = []
    for group in groups.values():
        latest = group[-1]
        email = next((r.customer_email for r in reversed(group) if r.customer_email), None)
        customer_id = secrets.token_hex(8)
        new_customers.append(
            {
                "id": customer_id,
                "name": latest.customer_name,
                "email": email,
                "email_key": email.lower() if email else None,
                "language": latest.customer_language,
                "notes": "",
                "external_ref": latest.customer_ref,
                "created_at": group[0].created_at,
                "updated_at": now,
            }
        )
        assigned.extend({"row_id": r.id, "customer": customer_id} for r in group)
    if new_customers:
        bind.execute(customers.insert(), new_customers)
        bind.execute(
            consultations.update()
            .where(consultations.c.id == sa.bindparam("row_id"))
            .values(customer_id=sa.bindparam("customer")),
            assigned,
        )


def downgrade() -> None:
    op.execute("DELETE FROM leases WHERE name = 'retention'")
    op.drop_table("file_removals")
    op.drop_index("ix_consents_consultation_id", "consents")
    op.drop_index("ix_consents_customer_id", "consents")
    op.drop_table("consents")
    with op.batch_alter_table("consultations") as batch:
        batch.drop_index("ix_consultations_customer_id")
        batch.drop_constraint("fk_consultations_customer_id", type_="foreignkey")
        batch.drop_column("customer_id")
    for column in ("name", "email_key", "phone_key", "external_ref"):
        op.drop_index(f"ix_customers_{column}", "customers")
    op.drop_table("customers")
