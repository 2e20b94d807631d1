"""Experiments may split alpha between metric groups and correct with Benjamini–Yekutieli.

Revision ID: 0008_alpha_split
Revises: 0007_hardening
Create Date: 2027-01-10 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008_alpha_split"
down_revision: str | Sequence[str] | None = "0007_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alpha_split", sa.JSON(), nullable=True))
        batch_op.drop_constraint(op.f("ck_experiments_correction"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_experiments_correction"), "correction IN ('holm', 'bh', 'by')"
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_experiments_correction"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_experiments_correction"), "correction IN ('holm', 'bh')"
        )
        batch_op.drop_column("alpha_split")
