"""CUPAC: a cross-fitted model's prediction of the outcome, used as a covariate (pure).

CUPAC ("control using predictions as covariates"; Li, Tang & Bauman, DoorDash engineering,
2020) replaces CUPED's single pre-period value by a machine-learning prediction of the
outcome from everything known before exposure. The prediction must not use the unit's own
outcome, or the adjustment would remove part of the treatment effect with the noise; so the
model is **cross-fitted** (Guo et al. 2021, "Machine learning for variance reduction in
online experiments", NeurIPS — MLRATE): units are split into ``K`` folds by a hash of their
id (:func:`fold_of`), a model is trained on the units outside fold ``k`` (both arms pooled,
without the treatment indicator), and only that model predicts the units of fold ``k``.
The prediction then enters the regression adjustment of :mod:`tianping.stats.covariates` as
one more covariate, so the effect, its variance and the coefficients are those of OLS.

The model is scikit-learn's ``HistGradientBoostingRegressor`` (squared error, shallow trees,
no early stopping, so a fit is deterministic). Each fitted model is read into an
:class:`Ensemble` — plain tuples of split features, thresholds and leaf values — that the
warehouse evaluates as one ``CASE`` expression per tree on every engine, and that
:meth:`Ensemble.predict` evaluates in NumPy; :func:`fit_cross_fitted` checks that this equals
scikit-learn's own ``predict`` on the training rows before it returns.

A unit with an empty pre-period (a new buyer) still gets a prediction: its features are
zeros, and the ones that exist for everybody (when it was first exposed) still inform the
model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tianping.errors import InvalidInput

#: Folds of the cross-fitting (each model learns from the other folds' units).
FOLDS = 2
#: Salt of the fold hash (``md5("cupac:" + unit_id)``).
FOLD_SALT = "cupac:"
#: Hash buckets: the first four hex digits of the md5, ``0 .. 65535``.
BUCKETS = 65536
#: The model's settings: shallow trees, so the warehouse expression stays small.
MODEL_PARAMS: dict[str, object] = {
    "max_iter": 20,
    "max_depth": 3,
    "learning_rate": 0.1,
    "min_samples_leaf": 100,
    "early_stopping": False,
    "random_state": 0,
}


@dataclass(frozen=True)
class Tree:
    """One regression tree in array form (node 0 is the root).

    Attributes:
        feature: the split feature's index per node (unused at leaves).
        threshold: go left when ``x[feature] <= threshold``.
        left: the left child of each node.
        right: the right child of each node.
        leaf: whether the node is a leaf.
        value: the leaf's contribution (the learning rate already applied).
    """

    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    leaf: tuple[bool, ...]
    value: tuple[float, ...]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Each row's leaf value."""
        node = np.zeros(X.shape[0], dtype=np.int64)
        feature, threshold = np.array(self.feature), np.array(self.threshold)
        left, right, leaf = np.array(self.left), np.array(self.right), np.array(self.leaf)
        rows = np.arange(X.shape[0])
        while not leaf[node].all():
            inner = ~leaf[node]
            go_left = X[rows, feature[node]] <= threshold[node]
            node = np.where(inner, np.where(go_left, left[node], right[node]), node)
        return np.array(self.value)[node]


@dataclass(frozen=True)
class Ensemble:
    """A fitted model: ``baseline + Σ trees``, over the named features.

    Attributes:
        features: the feature names, in column order.
        baseline: the constant the trees add to.
        trees: the trees, in the order they were fitted.
    """

    features: tuple[str, ...]
    baseline: float
    trees: tuple[Tree, ...]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``X`` (columns in :attr:`features` order), summed tree
        by tree from the baseline, as scikit-learn and the warehouse expression sum them."""
        out = np.full(X.shape[0], self.baseline, dtype=np.float64)
        for tree in self.trees:
            out = out + tree.predict(X)
        return out


@dataclass(frozen=True)
class CupacFit:
    """The cross-fitted models of one outcome.

    Attributes:
        outcome: the unit feature predicted (``gmv``, ``orders``, ...).
        models: ``models[k]`` was trained on the units outside fold ``k`` and predicts those
            in it.
        r2: the out-of-fold R² on the training units (the share of the outcome's variance
            the prediction explains; the covariate's own contribution to the adjustment).
        training_units: the units the models learned from (all folds together).
    """

    outcome: str
    models: tuple[Ensemble, ...]
    r2: float
    training_units: int

    @property
    def folds(self) -> int:
        """How many folds the units were split into."""
        return len(self.models)

    def predict(self, X: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Cross-fitted predictions: each row by the model of its own fold."""
        out = np.empty(X.shape[0], dtype=np.float64)
        for k, model in enumerate(self.models):
            mine = fold == k
            out[mine] = model.predict(X[mine])
        return out


def unit_bucket(unit_id: str) -> int:
    """The unit's hash bucket: the first four hex digits of ``md5("cupac:" + unit_id)``.

    >>> unit_bucket("B00000001")
    8299
    """
    return int(hashlib.md5((FOLD_SALT + str(unit_id)).encode()).hexdigest()[:4], 16)


def fold_of(unit_ids: Sequence[str], folds: int = FOLDS) -> np.ndarray:
    """Each unit's fold, ``bucket mod folds`` (the warehouse computes the same expression).

    >>> fold_of(["B00000001", "B00000002", "B00000003"]).tolist()
    [1, 0, 0]
    """
    _check_folds(folds)
    return np.array([unit_bucket(u) % folds for u in unit_ids], dtype=np.int64)


def sample_cutoff(units: int, max_units: int) -> int:
    """Train on the units whose bucket is below this: about ``max_units`` of ``units``."""
    if units <= max_units:
        return BUCKETS
    return max(1, math.ceil(BUCKETS * max_units / units))


def fit_cross_fitted(
    X: np.ndarray,
    y: np.ndarray,
    fold: np.ndarray,
    *,
    features: Sequence[str],
    outcome: str,
    folds: int = FOLDS,
) -> CupacFit:
    """Fit one model per fold on the other folds' units, and score them out of fold.

    Args:
        X: the units' features (rows: units; columns: ``features``), finite.
        y: the outcome per unit, finite.
        fold: each unit's fold (:func:`fold_of`).
        features: the column names of ``X``.
        outcome: the outcome's name.
        folds: the number of folds.

    Raises:
        InvalidInput: shapes that do not match, non-finite values, or a fold without units
            to learn from.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    X, y, fold = _checked(X, y, fold, features, folds)
    models, predicted = [], np.empty(y.size)
    # one thread: the warehouse and other work share the cores, and OpenMP threads that
    # wait for busy cores make a fit of a second take many
    with threadpool_limits(1):
        for k in range(folds):
            train = fold != k
            est = HistGradientBoostingRegressor(**MODEL_PARAMS).fit(X[train], y[train])
            model = _ensemble(est, tuple(features))
            _same_as_sklearn(model, est, X[train], outcome)
            models.append(model)
            predicted[~train] = model.predict(X[~train])
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 0.0 if sst == 0 else 1.0 - float(np.sum((y - predicted) ** 2)) / sst
    return CupacFit(outcome, tuple(models), r2, int(y.size))


def _checked(X, y, fold, features, folds):
    _check_folds(folds)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    fold = np.asarray(fold, dtype=np.int64)
    if X.ndim != 2 or X.shape[1] != len(features):
        raise InvalidInput(
            f"cupac: features must be a table with one column per feature ({len(features)})",
            field="features",
        )
    if y.shape != (X.shape[0],) or fold.shape != y.shape:
        raise InvalidInput("cupac: one outcome and one fold per unit are needed", field="y")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise InvalidInput("cupac: features and outcomes must be finite numbers", field="X")
    for k in range(folds):
        if np.count_nonzero(fold != k) < 2:
            raise InvalidInput(
                f"cupac: fold {k} has fewer than 2 other units to learn from "
                f"({y.size} units in all)",
                field="units",
            )
    return X, y, fold


def _check_folds(folds: int) -> None:
    if isinstance(folds, bool) or not isinstance(folds, int) or not 2 <= folds <= 16:
        raise InvalidInput(
            f"cupac: folds must be an integer in 2..16, got {folds!r}", field="folds"
        )


def _ensemble(est, features: tuple[str, ...]) -> Ensemble:
    """Read a fitted ``HistGradientBoostingRegressor`` into plain arrays."""
    trees = []
    for (predictor,) in est._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise InvalidInput("cupac: categorical splits are not supported", field="features")
        trees.append(
            Tree(
                feature=tuple(int(f) for f in nodes["feature_idx"]),
                threshold=tuple(float(t) for t in nodes["num_threshold"]),
                left=tuple(int(i) for i in nodes["left"]),
                right=tuple(int(i) for i in nodes["right"]),
                leaf=tuple(bool(b) for b in nodes["is_leaf"]),
                value=tuple(float(v) for v in nodes["value"]),
            )
        )
    baseline = float(np.asarray(est._baseline_prediction).ravel()[0])
    return Ensemble(features, baseline, tuple(trees))


def _same_as_sklearn(model: Ensemble, est, X: np.ndarray, outcome: str) -> None:
    """The array form must predict what scikit-learn predicts (guards its internals)."""
    ours, theirs = model.predict(X), est.predict(X)
    scale = max(1.0, float(np.max(np.abs(theirs))) if theirs.size else 1.0)
    if theirs.size and float(np.max(np.abs(ours - theirs))) > 1e-9 * scale:
        raise RuntimeError(
            f"cupac: the model of {outcome!r} read from scikit-learn predicts differently "
            "from scikit-learn (its tree layout changed?)"
        )
