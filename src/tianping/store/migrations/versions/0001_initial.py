"""The store's initial schema: every domain's tables.

Revision ID: 0001_initial
Revises: (none)
Create Date: 2026-12-02 16:44:02.223939

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("buyer_id", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_spend_minor", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("replaces_coupon_id", sa.String(length=100), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_coupons_positive")),
        sa.CheckConstraint("min_spend_minor >= 0", name=op.f("ck_coupons_min_spend")),
        sa.ForeignKeyConstraint(
            ["replaces_coupon_id"],
            ["coupons.id"],
            name=op.f("fk_coupons_replaces_coupon_id_coupons"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("replaces_coupon_id", name=op.f("uq_coupons_replaces_coupon_id")),
    )
    op.create_index(op.f("ix_coupons_buyer_id"), "coupons", ["buyer_id"], unique=False)

    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=False),
        sa.Column("salt", sa.String(length=200), nullable=False),
        sa.Column("layer", sa.String(length=200), nullable=True),
        sa.Column("layer_start", sa.Integer(), nullable=False),
        sa.Column("layer_end", sa.Integer(), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("traffic", sa.Float(), nullable=False),
        sa.Column("forced", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("primary_metric", sa.String(length=100), nullable=False),
        sa.Column("secondary_metrics", sa.JSON(), nullable=False),
        sa.Column("guardrails", sa.JSON(), nullable=False),
        sa.Column("mde", sa.Float(), nullable=True),
        sa.Column("alpha", sa.Float(), nullable=False),
        sa.Column("power", sa.Float(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("correction", sa.String(length=10), nullable=False),
        sa.Column("cuped", sa.Boolean(), nullable=False),
        sa.Column("winsorize", sa.Float(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("correction IN ('holm', 'bh')", name=op.f("ck_experiments_correction")),
        sa.CheckConstraint(
            "method IN ('frequentist', 'sequential', 'bayesian')",
            name=op.f("ck_experiments_method"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped')", name=op.f("ck_experiments_status")
        ),
        sa.CheckConstraint("alpha > 0 AND alpha < 1", name=op.f("ck_experiments_alpha")),
        sa.CheckConstraint(
            "layer_start >= 0 AND layer_start < layer_end AND layer_end <= 10000",
            name=op.f("ck_experiments_layer_buckets"),
        ),
        sa.CheckConstraint("power > 0 AND power < 1", name=op.f("ck_experiments_power")),
        sa.CheckConstraint("traffic >= 0 AND traffic <= 1", name=op.f("ck_experiments_traffic")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("name", name=op.f("uq_experiments_name")),
    )
    op.create_index(op.f("ix_experiments_layer"), "experiments", ["layer"], unique=False)

    op.create_table(
        "goals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goals")),
        sa.UniqueConstraint("name", name=op.f("uq_goals_name")),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint("scope", "key", name=op.f("uq_idempotency_records_scope_key")),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=True),
        sa.Column("reverses_id", sa.String(length=200), nullable=True),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_transfers_reverses_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_transfers_reverses_id")),
    )
    op.create_index(
        op.f("ix_ledger_transfers_order_id"), "ledger_transfers", ["order_id"], unique=False
    )

    op.create_table(
        "market_figures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=100), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Numeric(precision=24, scale=2), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_market_figures")),
        sa.UniqueConstraint(
            "platform", "period", "metric", name=op.f("uq_market_figures_platform_period_metric")
        ),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("buyer_id", sa.String(length=100), nullable=False),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("coupon_id", sa.String(length=100), nullable=True),
        sa.Column("coupon_minor", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("reserved_minor", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_minor >= 0", name=op.f("ck_orders_amount")),
        sa.CheckConstraint(
            "refunded_minor + reserved_minor <= amount_minor",
            name=op.f("ck_orders_not_over_refunded"),
        ),
        sa.CheckConstraint(
            "refunded_minor >= 0 AND reserved_minor >= 0", name=op.f("ck_orders_nonnegative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_buyer_id"), "orders", ["buyer_id"], unique=False)
    op.create_index(op.f("ix_orders_merchant_id"), "orders", ["merchant_id"], unique=False)
    op.create_index(op.f("ix_orders_product_id"), "orders", ["product_id"], unique=False)

    op.create_table(
        "refund_policies",
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_refund_policies")),
    )
    op.create_table(
        "coupon_redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.String(length=100), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(), nullable=False),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.Column("refund_id", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["coupon_id"], ["coupons.id"], name=op.f("fk_coupon_redemptions_coupon_id_coupons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_redemptions")),
        sa.UniqueConstraint(
            "coupon_id", "order_id", name=op.f("uq_coupon_redemptions_coupon_id_order_id")
        ),
    )
    op.create_index(
        op.f("ix_coupon_redemptions_coupon_id"), "coupon_redemptions", ["coupon_id"], unique=False
    )
    op.create_index(
        op.f("ix_coupon_redemptions_order_id"), "coupon_redemptions", ["order_id"], unique=False
    )

    op.create_table(
        "goal_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("goal_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=50), nullable=False),
        sa.Column("grain", sa.String(length=10), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("baseline_period", sa.Date(), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["goal_id"], ["goals.id"], name=op.f("fk_goal_revisions_goal_id_goals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_goal_revisions")),
        sa.UniqueConstraint("goal_id", "number", name=op.f("uq_goal_revisions_goal_id_number")),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transfer_id", sa.String(length=200), nullable=False),
        sa.Column("account_kind", sa.String(length=40), nullable=False),
        sa.Column("account_owner", sa.String(length=100), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount_minor <> 0", name=op.f("ck_ledger_entries_nonzero")),
        sa.ForeignKeyConstraint(
            ["transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_entries_transfer_id_ledger_transfers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entries")),
    )
    op.create_index(
        "ix_ledger_entries_account",
        "ledger_entries",
        ["account_kind", "account_owner"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ledger_entries_transfer_id"), "ledger_entries", ["transfer_id"], unique=False
    )

    op.create_table(
        "refund_policy_activations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
        sa.Column("activated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["version"],
            ["refund_policies.version"],
            name=op.f("fk_refund_policy_activations_version_refund_policies"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_policy_activations")),
    )
    op.create_table(
        "refund_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("buyer_id", sa.String(length=100), nullable=False),
        sa.Column("merchant_id", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("requested_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("evidence_urls", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=True),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("payer", sa.String(length=20), nullable=True),
        sa.Column("returned", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint("refunded_minor >= 0", name=op.f("ck_refund_requests_refunded")),
        sa.CheckConstraint("requested_amount_minor > 0", name=op.f("ck_refund_requests_requested")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refund_requests_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_requests")),
    )
    op.create_index(
        op.f("ix_refund_requests_buyer_id"), "refund_requests", ["buyer_id"], unique=False
    )
    op.create_index(
        op.f("ix_refund_requests_merchant_id"), "refund_requests", ["merchant_id"], unique=False
    )
    op.create_index(
        op.f("ix_refund_requests_order_id"), "refund_requests", ["order_id"], unique=False
    )
    op.create_index(
        "ix_refund_requests_status_created",
        "refund_requests",
        ["status", "created_at"],
        unique=False,
    )

    op.create_table(
        "refund_decisions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("policy_name", sa.String(length=100), nullable=True),
        sa.Column("policy_version", sa.String(length=80), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("refund_amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("requires_return", sa.Boolean(), nullable=False),
        sa.Column("payer", sa.String(length=20), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refund_requests.id"],
            name=op.f("fk_refund_decisions_refund_id_refund_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_decisions")),
    )
    op.create_index(
        op.f("ix_refund_decisions_policy_version"),
        "refund_decisions",
        ["policy_version"],
        unique=False,
    )
    op.create_index(
        op.f("ix_refund_decisions_refund_id"), "refund_decisions", ["refund_id"], unique=False
    )

    op.create_table(
        "refund_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=30), nullable=True),
        sa.Column("to_status", sa.String(length=30), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refund_requests.id"],
            name=op.f("fk_refund_events_refund_id_refund_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_events")),
        sa.UniqueConstraint("refund_id", "seq", name=op.f("uq_refund_events_refund_id_seq")),
    )
    op.create_index(
        op.f("ix_refund_events_refund_id"), "refund_events", ["refund_id"], unique=False
    )

    op.create_table(
        "refund_timers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["refund_id"],
            ["refund_requests.id"],
            name=op.f("fk_refund_timers_refund_id_refund_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_timers")),
        sa.UniqueConstraint("refund_id", "kind", name=op.f("uq_refund_timers_refund_id_kind")),
    )
    op.create_index(
        "ix_refund_timers_state_due", "refund_timers", ["state", "due_at"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_refund_timers_state_due", table_name="refund_timers")

    op.drop_table("refund_timers")
    op.drop_index(op.f("ix_refund_events_refund_id"), table_name="refund_events")

    op.drop_table("refund_events")
    op.drop_index(op.f("ix_refund_decisions_refund_id"), table_name="refund_decisions")
    op.drop_index(op.f("ix_refund_decisions_policy_version"), table_name="refund_decisions")

    op.drop_table("refund_decisions")
    op.drop_index("ix_refund_requests_status_created", table_name="refund_requests")
    op.drop_index(op.f("ix_refund_requests_order_id"), table_name="refund_requests")
    op.drop_index(op.f("ix_refund_requests_merchant_id"), table_name="refund_requests")
    op.drop_index(op.f("ix_refund_requests_buyer_id"), table_name="refund_requests")

    op.drop_table("refund_requests")
    op.drop_table("refund_policy_activations")
    op.drop_index(op.f("ix_ledger_entries_transfer_id"), table_name="ledger_entries")
    op.drop_index("ix_ledger_entries_account", table_name="ledger_entries")

    op.drop_table("ledger_entries")
    op.drop_table("goal_revisions")
    op.drop_index(op.f("ix_coupon_redemptions_order_id"), table_name="coupon_redemptions")
    op.drop_index(op.f("ix_coupon_redemptions_coupon_id"), table_name="coupon_redemptions")

    op.drop_table("coupon_redemptions")
    op.drop_table("refund_policies")
    op.drop_index(op.f("ix_orders_product_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_merchant_id"), table_name="orders")
    op.drop_index(op.f("ix_orders_buyer_id"), table_name="orders")

    op.drop_table("orders")
    op.drop_table("market_figures")
    op.drop_index(op.f("ix_ledger_transfers_order_id"), table_name="ledger_transfers")

    op.drop_table("ledger_transfers")
    op.drop_table("idempotency_records")
    op.drop_table("goals")
    op.drop_index(op.f("ix_experiments_layer"), table_name="experiments")

    op.drop_table("experiments")
    op.drop_index(op.f("ix_coupons_buyer_id"), table_name="coupons")

    op.drop_table("coupons")
