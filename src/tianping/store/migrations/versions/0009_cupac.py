"""Experiments may add a cross-fitted model's prediction to the covariates (CUPAC).

Revision ID: 0009_cupac
Revises: 0008_alpha_split
Create Date: 2027-01-12 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009_cupac"
down_revision: str | Sequence[str] | None = "0008_alpha_split"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cupac", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_column("cupac")
