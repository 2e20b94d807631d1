"""CUPAC in the warehouse: learn from a sample of the unit table, predict every unit in-engine.

The steps (:func:`with_predictions`), each an Ibis expression that runs unchanged on DuckDB
and Spark:

1. every unit's hash bucket ``md5("cupac:" + unit_id)`` (first four hex digits, decoded in
   the engine) gives its fold, ``bucket mod K`` (:func:`tianping.stats.cupac.fold_of`
   computes the same in Python);
2. the units whose bucket is below a cutoff — all of them up to
   :data:`MAX_TRAINING_UNITS`, a hash sample of that size beyond — are read into Python with
   their features and outcomes (sorted by unit, so every engine hands the model the same
   rows), and one model per outcome and fold is fitted
   (:func:`tianping.stats.cupac.fit_cross_fitted`);
3. each model becomes one expression — a ``CASE`` per tree, summed from the baseline — and
   every unit gets, per outcome, the prediction of its own fold's model as the column
   ``cupac_<outcome>``: a covariate like the pre-period values, whose sums and cross
   products the one grouped query returns.

So CUPAC costs one extra read of the unit table (the training sample) and a few seconds of
fitting; the aggregation stays one pass.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from typing import Any

import ibis
import numpy as np

from tianping.stats.cupac import (
    FOLD_SALT,
    FOLDS,
    CupacFit,
    Ensemble,
    Tree,
    fit_cross_fitted,
    sample_cutoff,
)

#: At most this many units (a hash sample beyond) train the models.
MAX_TRAINING_UNITS = 200_000
#: Fewer units than this fit no model (a tree's leaf holds at least 100 units): the analysis
#: then runs without predictions, and the report says so.
MIN_TRAINING_UNITS = 200
#: Model inputs beyond the pre-period features: days from the first exposure to the end of
#: the window, and days with activity in the pre-period (both known at exposure).
EXTRA_FEATURES = ("exposed_days", "active_days_before")
#: Prefix of the prediction columns.
PREFIX = "cupac_"


def model_features(columns: Sequence[str]) -> tuple[str, ...]:
    """The model's inputs among a unit table's columns: every pre-period feature, the unit
    attribute ``returning`` and :data:`EXTRA_FEATURES`."""
    pre = sorted(c for c in columns if c.startswith("pre_"))
    rest = [c for c in ("returning", *EXTRA_FEATURES) if c in columns]
    return (*pre, *rest)


@ibis.udf.scalar.builtin
def md5(value: str) -> str:
    """The engine's own ``md5(text)``: lowercase hex on DuckDB, Spark and PostgreSQL alike
    (Ibis's ``hexdigest`` has no PostgreSQL rule)."""


def bucket(unit_id: ibis.Value) -> ibis.Value:
    """The unit's hash bucket ``0 .. 65535`` (:func:`tianping.stats.cupac.unit_bucket`)."""
    digest = md5(ibis.literal(FOLD_SALT).concat(unit_id.cast("string")))

    def digit(i: int) -> ibis.Value:
        code = digest.substr(i, 1).ascii_str().cast("int64")
        return ibis.ifelse(code >= 97, code - 87, code - 48)

    return ((digit(0) * 16 + digit(1)) * 16 + digit(2)) * 16 + digit(3)


def with_predictions(
    wh: Any,
    rows: ibis.Table,
    outcomes: Sequence[str],
    *,
    units: int,
    max_units: int = MAX_TRAINING_UNITS,
    folds: int = FOLDS,
) -> tuple[ibis.Table, tuple[CupacFit, ...]]:
    """The unit table with a cross-fitted prediction ``cupac_<outcome>`` per outcome.

    Args:
        wh: the warehouse (reads the training sample).
        rows: one row per unit: ``unit_id``, the model features and the outcomes.
        outcomes: the unit features to predict (those the metrics sum).
        units: about how many rows ``rows`` has (sizes the training sample).
        max_units: the training sample's size.
        folds: the folds of the cross-fitting.

    Returns:
        The table with the prediction columns, and the fits (their out-of-fold R²); the table
        unchanged and no fits when the sample has fewer than :data:`MIN_TRAINING_UNITS`.
    """
    features = model_features(rows.columns)
    rows = rows.mutate(_cupac_bucket=bucket(rows.unit_id))
    cutoff = sample_cutoff(units, max_units)
    sample = rows.filter(rows._cupac_bucket < cutoff)
    train = wh.execute(
        sample.select("unit_id", "_cupac_bucket", *features, *outcomes).order_by("unit_id")
    )
    if len(train) < MIN_TRAINING_UNITS:
        return rows.drop("_cupac_bucket"), ()
    X = train[list(features)].to_numpy(dtype=np.float64)
    fold = train["_cupac_bucket"].to_numpy(dtype=np.int64) % folds
    fits = tuple(
        fit_cross_fitted(
            X,
            train[o].to_numpy(dtype=np.float64),
            fold,
            features=features,
            outcome=o,
            folds=folds,
        )
        for o in outcomes
    )
    unit_fold = rows._cupac_bucket % folds
    columns = {f"{PREFIX}{fit.outcome}": prediction(fit, rows, unit_fold) for fit in fits}
    return rows.mutate(**columns).drop("_cupac_bucket"), fits


def prediction(fit: CupacFit, rows: ibis.Table, fold: ibis.Value) -> ibis.Value:
    """The cross-fitted prediction as an expression: the model of the unit's fold."""
    out = model_expr(fit.models[-1], rows)
    for k in range(fit.folds - 2, -1, -1):
        out = ibis.ifelse(fold == k, model_expr(fit.models[k], rows), out)
    return out


def model_expr(model: Ensemble, rows: ibis.Table) -> ibis.Value:
    """``baseline + Σ trees`` over the table's feature columns, summed in fitting order."""
    columns = [rows[f].cast("float64") for f in model.features]
    terms = [_tree(t, columns, 0) for t in model.trees]
    return functools.reduce(operator.add, terms, _double(model.baseline))


def _double(value: float) -> ibis.Value:
    """A DOUBLE literal on every engine: DuckDB reads a bare ``0.25`` as a DECIMAL, whose sums
    and products would be exact decimals (and overflow); the shortest repr parses back to
    the same double."""
    return ibis.literal(repr(float(value))).cast("float64")


def _tree(tree: Tree, columns: list[ibis.Value], node: int) -> ibis.Value:
    if tree.leaf[node]:
        return _double(tree.value[node])
    return ibis.ifelse(
        columns[tree.feature[node]] <= _double(tree.threshold[node]),
        _tree(tree, columns, tree.left[node]),
        _tree(tree, columns, tree.right[node]),
    )
