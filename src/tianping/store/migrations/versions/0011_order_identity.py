"""Orders carry the device, shipping-address hash and payment fingerprint they were placed with.

Revision ID: 0011_order_identity
Revises: 0010_decision_rule
Create Date: 2027-02-10 09:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011_order_identity"
down_revision: str | Sequence[str] | None = "0010_decision_rule"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("address_hash", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("payment_fingerprint", sa.String(length=100), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("payment_fingerprint")
        batch_op.drop_column("address_hash")
        batch_op.drop_column("device_id")
