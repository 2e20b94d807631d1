"""Horse races and their steps (the races domain's models).

Revision ID: 0002_races
Revises: 0001_initial
Create Date: 2026-12-02 16:48:49.210120

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_races"
down_revision: str | Sequence[str] | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "races",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(length=64), nullable=False),
        sa.Column("experiment", sa.String(length=200), nullable=False),
        sa.Column("confirm_experiment", sa.String(length=200), nullable=True),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("active", sa.JSON(), nullable=False),
        sa.Column("winner", sa.String(length=100), nullable=True),
        sa.Column("comparator", sa.String(length=100), nullable=True),
        sa.Column("confirm_start", sa.Date(), nullable=True),
        sa.Column("decision", sa.String(length=20), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('ship', 'no_ship')", name=op.f("ck_races_decision")
        ),
        sa.CheckConstraint(
            "phase IN ('racing', 'confirming', 'decided', 'stopped')", name=op.f("ck_races_phase")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_races")),
        sa.UniqueConstraint("name", name=op.f("uq_races_name")),
    )
    op.create_table(
        "race_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("race_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(length=20), nullable=False),
        sa.Column("taken_at", sa.DateTime(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("leader", sa.String(length=100), nullable=True),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("standings", sa.JSON(), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("budget", sa.JSON(), nullable=True),
        sa.Column("confirmation", sa.JSON(), nullable=True),
        sa.Column("regret", sa.Float(), nullable=False),
        sa.Column("equal_split_regret", sa.Float(), nullable=False),
        sa.Column("moved_share", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["race_id"], ["races.id"], name=op.f("fk_race_steps_race_id_races")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_race_steps")),
        sa.UniqueConstraint("race_id", "number", name=op.f("uq_race_steps_race_id_number")),
    )
    op.create_index(op.f("ix_race_steps_race_id"), "race_steps", ["race_id"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_race_steps_race_id"), table_name="race_steps")

    op.drop_table("race_steps")
    op.drop_table("races")
