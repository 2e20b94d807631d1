"""Experiment definitions in the store."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Date, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tianping.store import Base
from tianping.store.types import UTCDateTime

STATUSES = ("draft", "running", "stopped")
METHODS = ("frequentist", "sequential", "bayesian")
CORRECTIONS = ("holm", "bh", "by")


class Experiment(Base):
    """One experiment: its hypothesis, assignment config and analysis plan.

    JSON columns: ``variants`` ``[{"name", "weight"}]`` (control first), ``secondary_metrics``
    ``[name]``, ``guardrails`` ``[{"metric", "higher_is_better"}]`` and ``forced``
    ``{unit_id: variant}``; ``alpha_split`` ``{group: weight}`` or null. ``rule`` is the
    resolved decision rule (:meth:`tianping.experiments.rule.DecisionRule.to_dict`), frozen
    at the first start (``rule_frozen_at``); each later change is kept in ``rule_changes``
    ``[{"at", "reason", "before", "after"}]`` and audited. ``shipped_variant`` (with ``shipped_at``) is set once, when the
    experiment is shipped: it is then stopped and that variant is served to every unit.
    """

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status"),
        CheckConstraint("method IN ('frequentist', 'sequential', 'bayesian')", name="method"),
        CheckConstraint("correction IN ('holm', 'bh', 'by')", name="correction"),
        CheckConstraint("traffic >= 0 AND traffic <= 1", name="traffic"),
        CheckConstraint("alpha > 0 AND alpha < 1", name="alpha"),
        CheckConstraint("power > 0 AND power < 1", name="power"),
        CheckConstraint(
            "layer_start >= 0 AND layer_start < layer_end AND layer_end <= 10000",
            name="layer_buckets",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    unit: Mapped[str] = mapped_column(String(50), default="buyer")
    salt: Mapped[str] = mapped_column(String(200))
    layer: Mapped[str | None] = mapped_column(String(200), index=True)
    layer_start: Mapped[int] = mapped_column(Integer, default=0)
    layer_end: Mapped[int] = mapped_column(Integer, default=10000)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    traffic: Mapped[float] = mapped_column(Float, default=1.0)
    forced: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    primary_metric: Mapped[str] = mapped_column(String(100))
    secondary_metrics: Mapped[list[str]] = mapped_column(JSON, default=list)
    guardrails: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    mde: Mapped[float | None] = mapped_column(Float)
    alpha: Mapped[float] = mapped_column(Float, default=0.05)
    power: Mapped[float] = mapped_column(Float, default=0.8)
    method: Mapped[str] = mapped_column(String(20), default="frequentist")
    correction: Mapped[str] = mapped_column(String(10), default="holm")
    alpha_split: Mapped[dict[str, float] | None] = mapped_column(JSON)
    cuped: Mapped[bool] = mapped_column(default=True)
    cupac: Mapped[bool] = mapped_column(default=False)
    winsorize: Mapped[float | None] = mapped_column(Float)
    rule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    rule_frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rule_changes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    shipped_variant: Mapped[str | None] = mapped_column(String(100))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
