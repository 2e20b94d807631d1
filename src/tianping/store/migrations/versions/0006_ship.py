"""Experiments and races remember the variant they shipped, and when.

Revision ID: 0006_ship
Revises: 0005_audit_append_only
Create Date: 2026-12-03 10:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006_ship"
down_revision: str | Sequence[str] | None = "0005_audit_append_only"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for table in ("experiments", "races"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("shipped_variant", sa.String(length=100), nullable=True))
            batch_op.add_column(sa.Column("shipped_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    for table in ("races", "experiments"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("shipped_at")
            batch_op.drop_column("shipped_variant")
