"""Dashboard sessions held server-side; idempotency records scoped by the caller too.

Revision ID: 0007_hardening
Revises: 0006_ship
Create Date: 2026-12-04 16:00:00

Records written before this revision belong to no caller (``''``): no key's retry replays them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007_hardening"
down_revision: str | Sequence[str] | None = "0006_ship"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_dashboard_sessions_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_key_id"), "dashboard_sessions", ["key_id"], unique=False
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("caller", sa.String(length=8), nullable=False, server_default="")
        )
        batch_op.alter_column(
            "scope", existing_type=sa.String(length=100), type_=sa.String(length=300)
        )
        batch_op.drop_constraint("uq_idempotency_records_scope_key", type_="unique")
        batch_op.create_unique_constraint(
            "uq_idempotency_records_caller_scope_key", ["caller", "scope", "key"]
        )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.alter_column("caller", server_default=None, existing_type=sa.String(length=8))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_constraint("uq_idempotency_records_caller_scope_key", type_="unique")
        batch_op.create_unique_constraint("uq_idempotency_records_scope_key", ["scope", "key"])
        batch_op.alter_column(
            "scope", existing_type=sa.String(length=300), type_=sa.String(length=100)
        )
        batch_op.drop_column("caller")
    op.drop_index(op.f("ix_dashboard_sessions_key_id"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
