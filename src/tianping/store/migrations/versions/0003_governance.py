"""Governance: decisions, votes, evidence, rules and the audit log (the governance models).

Revision ID: 0003_governance
Revises: 0002_races
Create Date: 2026-12-02 17:16:23.810384

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003_governance"
down_revision: str | Sequence[str] | None = "0002_races"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_action", ["action"], unique=False)
        batch_op.create_index("ix_audit_log_actor", ["actor"], unique=False)
        batch_op.create_index("ix_audit_log_at", ["at"], unique=False)
        batch_op.create_index("ix_audit_log_subject", ["subject"], unique=False)

    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("proposer", sa.String(length=200), nullable=False),
        sa.Column("proposer_key_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("approvers", sa.JSON(), nullable=False),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("veto", sa.Boolean(), nullable=False),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("rules_version", sa.String(length=64), nullable=False),
        sa.Column("proposed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("effect_status", sa.String(length=10), nullable=False),
        sa.Column("effect", sa.JSON(), nullable=False),
        sa.CheckConstraint(
            "effect_status IN ('none', 'applied', 'pending')",
            name=op.f("ck_decisions_effect_status"),
        ),
        sa.CheckConstraint(
            "kind IN ('ship_experiment', 'ship_race_winner', 'refund_policy', 'spend', 'goal_change')",
            name=op.f("ck_decisions_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'vetoed', 'expired')",
            name=op.f("ck_decisions_status"),
        ),
        sa.CheckConstraint("required >= 1", name=op.f("ck_decisions_required")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decisions_kind"), ["kind"], unique=False)
        batch_op.create_index(
            "ix_decisions_status_proposed", ["status", "proposed_at"], unique=False
        )

    op.create_table(
        "governance_rules",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_governance_rules")),
    )
    op.create_table(
        "decision_evidence",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("ref", sa.String(length=500), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_evidence_decision_id_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_evidence")),
        sa.UniqueConstraint(
            "decision_id", "position", name=op.f("uq_decision_evidence_decision_id_position")
        ),
    )
    with op.batch_alter_table("decision_evidence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_decision_evidence_decision_id"), ["decision_id"], unique=False
        )

    op.create_table(
        "decision_votes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("voter", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=100), nullable=True),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("voted_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "choice IN ('approve', 'reject', 'veto')", name=op.f("ck_decision_votes_choice")
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"], ["decisions.id"], name=op.f("fk_decision_votes_decision_id_decisions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_votes")),
        sa.UniqueConstraint(
            "decision_id", "voter", name=op.f("uq_decision_votes_decision_id_voter")
        ),
    )
    with op.batch_alter_table("decision_votes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_decision_votes_decision_id"), ["decision_id"], unique=False
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("decision_votes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_votes_decision_id"))

    op.drop_table("decision_votes")
    with op.batch_alter_table("decision_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_evidence_decision_id"))

    op.drop_table("decision_evidence")
    op.drop_table("governance_rules")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_decisions_status_proposed")
        batch_op.drop_index(batch_op.f("ix_decisions_kind"))

    op.drop_table("decisions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_subject")
        batch_op.drop_index("ix_audit_log_at")
        batch_op.drop_index("ix_audit_log_actor")
        batch_op.drop_index("ix_audit_log_action")

    op.drop_table("audit_log")
