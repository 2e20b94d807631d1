"""Experiments carry a pre-registered decision rule, frozen at start, with its changes.

Revision ID: 0010_decision_rule
Revises: 0009_cupac
Create Date: 2027-01-20 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010_decision_rule"
down_revision: str | Sequence[str] | None = "0009_cupac"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rule", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("rule_frozen_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("rule_changes", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("rule_changes")
        batch_op.drop_column("rule_frozen_at")
        batch_op.drop_column("rule")
