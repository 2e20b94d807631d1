"""Learned credit scorecard: optimal binning, weight of evidence, logistic regression, points.

Training (:func:`train`) bins every column with optbinning's ``BinningProcess`` (optimal,
monotonic-where-it-helps binning solved with OR-Tools), keeps the columns whose information
value reaches ``min_iv``, replaces each value by its bin's weight of evidence, fits a
scikit-learn logistic regression for ``P(bad)`` on a stratified training part and evaluates AUC,
KS and Gini on the held-out part. The result is a :class:`ScorecardModel`: plain data (bins,
WoE, coefficients, scaling, training metadata) saved as JSON whose ``version`` is the SHA-256
of its scoring content. Scoring (:meth:`ScorecardModel.score`) needs only NumPy.

Scaling (``docs/aftersales.md``): with ``factor = pdo / ln 2`` and
``offset = base_score - factor * ln(base_odds)``, a row with bad-probability ``p`` scores
``offset + factor * ln((1 - p) / p)``, rounded to an integer and clipped to 350–950. Defaults:
600 points at good:bad odds of 50:1, 20 points to double the odds.

Binning rules the model file records: numeric bins are ``[split_i, split_i+1)``; a missing (or,
for a numeric column, non-numeric) value gets the Missing bin's WoE (0 when training saw no
missing value of both classes there); a category never seen in training gets WoE 0, the
population average.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tianping.errors import InvalidInput, UsageError

if TYPE_CHECKING:
    import pandas as pd

FORMAT = "tianping-scorecard"
FORMAT_VERSION = 1
MIN_SCORE = 350
MAX_SCORE = 950


@dataclass(frozen=True)
class Scaling:
    """Points scaling: ``base_score`` at odds ``base_odds``:1 (good:bad), ``pdo`` to double."""

    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0
    min_score: int = MIN_SCORE
    max_score: int = MAX_SCORE

    def __post_init__(self) -> None:
        if not (self.pdo > 0 and self.base_odds > 0 and self.min_score < self.max_score):
            raise UsageError("scaling needs pdo > 0, base odds > 0 and min score < max score")

    @property
    def factor(self) -> float:
        """Points per unit of log-odds: ``pdo / ln 2`` (points to double the odds)."""
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        """Score at odds 1:1: ``base_score − factor · ln(base_odds)``."""
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, log_odds_bad: np.ndarray) -> np.ndarray:
        """Unclipped, unrounded score of a log-odds of bad."""
        return self.offset - self.factor * log_odds_bad

    def score(self, log_odds_bad: np.ndarray) -> np.ndarray:
        """Integer score in ``[min_score, max_score]``."""
        raw = np.rint(self.points(log_odds_bad))
        return np.clip(raw, self.min_score, self.max_score).astype(np.int64)


@dataclass(frozen=True)
class FeatureBins:
    """One scored column: its bins, their WoE and the column's coefficient.

    Attributes:
        name: the column.
        kind: ``numeric`` (bins cut at ``splits``) or ``categorical`` (bins are category lists).
        splits: numeric cut points; bin ``i`` holds ``splits[i-1] <= x < splits[i]``.
        categories: categorical bins, each a list of category strings.
        woe: weight of evidence per bin, ``ln(share of goods / share of bads)``.
        woe_missing: WoE of missing values.
        coefficient: the logistic regression's coefficient of this column's WoE.
        points: points per bin (the intercept shared equally across columns).
        points_missing: points of a missing value.
        iv: the column's information value on the training part.
    """

    name: str
    kind: str
    woe: list[float]
    woe_missing: float
    coefficient: float
    points: list[float]
    points_missing: float
    iv: float
    splits: list[float] = field(default_factory=list)
    categories: list[list[str]] = field(default_factory=list)

    def woe_of(self, values: np.ndarray) -> np.ndarray:
        """WoE of each value (missing and unseen values per the module rules)."""
        if self.kind == "numeric":
            x = _as_float(values)
            missing = np.isnan(x)
            idx = np.digitize(np.where(missing, 0.0, x), np.asarray(self.splits), right=False)
            out = np.asarray(self.woe)[idx]
        else:
            keys = _as_category(values)
            missing = np.array([k is None for k in keys], dtype=bool)
            lookup = {c: w for cats, w in zip(self.categories, self.woe, strict=True) for c in cats}
            out = np.array([lookup.get(k, 0.0) for k in keys], dtype=np.float64)
        return np.where(missing, self.woe_missing, out)


def _as_float(values: np.ndarray) -> np.ndarray:
    """Numbers as float; missing and non-numeric values become NaN."""
    arr = np.asarray(values)
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError):
        pass
    out = np.full(arr.shape, np.nan)
    for i, v in enumerate(arr):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _as_category(values: Any) -> list[str | None]:
    """Category keys: strings, integral floats written as integers, None for missing."""
    keys: list[str | None] = []
    for v in values:
        if v is None or (isinstance(v, float | np.floating) and math.isnan(v)):
            keys.append(None)
        elif isinstance(v, float | np.floating) and float(v).is_integer():
            keys.append(str(int(v)))
        else:
            text = str(v)
            keys.append(None if text in {"", "nan", "<NA>", "None"} else text)
    return keys


@dataclass(frozen=True)
class Evaluation:
    """Discrimination on one part of the data."""

    rows: int
    bad: int
    auc: float
    ks: float
    gini: float


@dataclass(frozen=True)
class ScorecardModel:
    """A trained scorecard; plain data, saved as JSON (see :meth:`to_json`)."""

    target: str
    bad: str
    id_column: str | None
    scaling: Scaling
    intercept: float
    features: tuple[FeatureBins, ...]
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """SHA-256 of the scoring content (everything but the training metadata)."""
        return hashlib.sha256(_canonical(self._content()).encode()).hexdigest()

    def _content(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "bad": self.bad,
            "id_column": self.id_column,
            "scaling": asdict(self.scaling),
            "intercept": self.intercept,
            "features": [asdict(f) for f in self.features],
        }

    def log_odds_bad(self, columns: Mapping[str, Any]) -> np.ndarray:
        """``intercept + sum(coefficient * WoE)`` per row."""
        missing = [f.name for f in self.features if f.name not in columns]
        if missing:
            raise UsageError(
                f"the table lacks column(s) the model needs: {', '.join(missing)}", field=missing[0]
            )
        total = None
        for f in self.features:
            term = f.coefficient * f.woe_of(np.asarray(columns[f.name], dtype=object))
            total = term if total is None else total + term
        return self.intercept + total

    def score(self, columns: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Score (350–950 by default) and probability of bad for every row, in order."""
        z = self.log_odds_bad(columns)
        return self.scaling.score(z), 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> str:
        """The model file: content, ``version`` and ``training`` metadata."""
        doc = {**self._content(), "version": self.version, "training": self.training}
        return json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "model") -> ScorecardModel:
        """Load a model file; its ``version`` must match its content."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
                raise UsageError(f"{source} is not a {FORMAT} file of format version 1")
            model = cls(
                target=doc["target"],
                bad=doc["bad"],
                id_column=doc["id_column"],
                scaling=Scaling(**doc["scaling"]),
                intercept=float(doc["intercept"]),
                features=tuple(FeatureBins(**f) for f in doc["features"]),
                training=doc.get("training", {}),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{source} is not a readable scorecard model: {exc}") from None
        if model.version != doc.get("version"):
            raise UsageError(f"{source} was changed after training: its version does not match")
        return model

    def save(self, path: Path) -> None:
        """Write the model as JSON to ``path`` (what :meth:`load` reads)."""
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> ScorecardModel:
        """A model saved by :meth:`save`; a missing or unreadable file is a :class:`UsageError`."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read model {path}: {exc.strerror}", field="model") from None
        return cls.from_json(text, source=str(path))


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- evaluation ----------------------------------------------------------------------------
def evaluate(is_bad: np.ndarray, probability_bad: np.ndarray) -> Evaluation:
    """AUC, KS (largest gap between the bads' and goods' cumulative distributions) and Gini."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y = np.asarray(is_bad, dtype=np.int64)
    auc = float(roc_auc_score(y, probability_bad))
    fpr, tpr, _ = roc_curve(y, probability_bad)
    return Evaluation(int(y.size), int(y.sum()), auc, float(np.max(tpr - fpr)), 2 * auc - 1)


# -- reading tables ------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; a one-line UsageError when it cannot be read."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no file {path}", field="file")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            sep=None if path.suffix.lower() == ".tsv" else ",",
            engine="python" if path.suffix.lower() == ".tsv" else "c",
        )
    except Exception as exc:  # pandas raises many types for a bad file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"cannot read {path}: {reason}", field="file") from None


# -- training ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trained:
    """A trained model and its evaluation on both parts."""

    model: ScorecardModel
    train: Evaluation
    holdout: Evaluation
    dropped: dict[str, str]


def bad_mask(target: pd.Series, bad: str) -> np.ndarray:
    """True where the target equals ``bad`` (numbers compared as numbers).

    Raises:
        UsageError: the target has more than two classes, ``bad`` is not one of them, or every
            row is bad.
    """
    import pandas as pd

    values = target.dropna()
    distinct = values.unique()
    if len(distinct) > 2:
        seen = ", ".join(sorted(str(v) for v in distinct[:10]))
        raise UsageError(
            f"the target column must have two classes (bad and good); it has {len(distinct)}: "
            f"{seen}{', ...' if len(distinct) > 10 else ''}",
            field="target",
        )
    if pd.api.types.is_numeric_dtype(target):
        try:
            hit = target.to_numpy(dtype=np.float64) == float(bad)
        except ValueError:
            hit = np.zeros(len(target), dtype=bool)
    else:
        hit = (target.astype("string") == bad).fillna(False).to_numpy(dtype=bool)
    if not hit.any():
        seen = ", ".join(sorted({str(v) for v in values.unique()[:10]}))
        raise UsageError(
            f"--bad {bad!r} is not a value of the target column (values: {seen})", field="bad"
        )
    if hit.all():
        raise UsageError(
            f"the target column has only one class: every row is {bad!r}; it needs bad and good rows",
            field="target",
        )
    return hit


def _prepare(
    frame: pd.DataFrame, target: str, id_column: str | None, categorical: Sequence[str]
) -> tuple[pd.DataFrame, list[str]]:
    import pandas as pd

    for name, what in ((target, "target"), (id_column, "id")):
        if name is not None and name not in frame.columns:
            raise UsageError(f"no {what} column {name!r} in the table", field=what)
    unknown = [c for c in categorical if c not in frame.columns]
    if unknown:
        raise UsageError(f"no column {unknown[0]!r} in the table", field="categorical")
    features = frame.drop(columns=[c for c in (target, id_column) if c is not None])
    if features.shape[1] == 0:
        raise UsageError("the table has no feature column besides the target and id")
    cats = [
        c for c in features.columns
        if c in categorical or not pd.api.types.is_numeric_dtype(features[c])
        or pd.api.types.is_bool_dtype(features[c])
    ]  # fmt: skip
    for c in cats:
        features[c] = pd.Series(_as_category(features[c].to_numpy(dtype=object)), dtype=object)
        features[c] = features[c].where(features[c].notna(), np.nan)
    return features.reset_index(drop=True), cats


def train(
    frame: pd.DataFrame,
    *,
    target: str,
    bad: str,
    id_column: str | None = None,
    scaling: Scaling | None = None,
    holdout: float = 0.3,
    seed: int = 0,
    min_iv: float = 0.02,
    categorical: Sequence[str] = (),
    trained_at: datetime | None = None,
) -> Trained:
    """Train a scorecard on a labelled table.

    Args:
        frame: the table; every column but ``target`` and ``id_column`` is a candidate.
        target: the label column; ``bad`` marks bad rows, every other value is good.
        bad: the bad value (numbers compared as numbers).
        id_column: an identifier column, left out of the features.
        scaling: points scaling; :class:`Scaling` defaults.
        holdout: fraction held out (stratified) for the evaluation.
        seed: seed of the split.
        min_iv: columns with a smaller information value are left out.
        categorical: columns to treat as categories even if numeric.
        trained_at: recorded in the metadata.

    Returns:
        The model (fitted on the training part) and its train and holdout evaluation.
    """
    if not 0 < holdout < 1:
        raise UsageError("--holdout must be strictly between 0 and 1", field="holdout")
    scaling = scaling or Scaling()
    if target not in frame.columns:
        raise UsageError(f"no target column {target!r} in the table", field="target")
    labelled = frame[frame[target].notna()].reset_index(drop=True)
    y = bad_mask(labelled[target], str(bad)).astype(np.int64)
    features, cats = _prepare(labelled, target, id_column, categorical)
    train_idx, test_idx = _split(y, holdout, seed)
    binning, kept, dropped = _fit_binning(features.iloc[train_idx], y[train_idx], cats, min_iv)
    woe_train = np.column_stack(
        [binning[c].woe_of(features[c].to_numpy(object)[train_idx]) for c in kept]
    )
    lr = _fit_lr(woe_train, y[train_idx], seed)
    model = _assemble(target, str(bad), id_column, scaling, lr, binning, kept)
    model = _with_training(
        model, labelled, frame, y, train_idx, test_idx, holdout, seed, min_iv, dropped, trained_at
    )
    _, p_train = model.score({c: features[c].to_numpy(object)[train_idx] for c in kept})
    _, p_test = model.score({c: features[c].to_numpy(object)[test_idx] for c in kept})
    return Trained(model, evaluate(y[train_idx], p_train), evaluate(y[test_idx], p_test), dropped)


def _split(y: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(y.size)
    try:
        return tuple(train_test_split(idx, test_size=holdout, stratify=y, random_state=seed))
    except ValueError as exc:
        raise UsageError(
            f"too few bad or good rows for a stratified holdout of {holdout:g}: {exc}",
            field="target",
        ) from None


def _quiet_optbinning():
    import contextlib
    import io
    import logging
    import sys

    # cvxpy (pulled in by optbinning, unused here) reports at import that its HiGHS binding
    # clashes with the HiGHS inside OR-Tools; its handler is bound to stderr at import time.
    swallowed = io.StringIO()
    with contextlib.redirect_stderr(swallowed):
        import optbinning
    for handler in logging.getLogger("__cvxpy__").handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is swallowed:
            handler.setStream(sys.stderr)
    return optbinning


def _fit_binning(
    features: pd.DataFrame, y: np.ndarray, cats: list[str], min_iv: float
) -> tuple[dict[str, _Binned], list[str], dict[str, str]]:
    optbinning = _quiet_optbinning()
    names = list(features.columns)
    process = optbinning.BinningProcess(
        names, categorical_variables=cats, selection_criteria={"iv": {"min": min_iv}}
    )
    try:
        process.fit(features, y)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"binning failed: {exc}") from None
    kept = [str(n) for n in process.get_support(names=True)]
    dropped = {}
    for n in names:
        if n not in kept:
            iv = process.summary().set_index("name").loc[n, "iv"]
            dropped[n] = f"information value {float(iv):.4f} < {min_iv:g}"
    if not kept:
        raise UsageError(
            f"no column separates bad from good rows (information value >= {min_iv:g})"
        )
    return {n: _binned(process.get_binned_variable(n), n) for n in kept}, kept, dropped


@dataclass(frozen=True)
class _Binned:
    name: str
    kind: str
    splits: list[float]
    categories: list[list[str]]
    woe: list[float]
    woe_missing: float
    iv: float

    def woe_of(self, values: np.ndarray) -> np.ndarray:
        return FeatureBins(
            self.name, self.kind, self.woe, self.woe_missing, 0.0, [], 0.0, self.iv,
            self.splits, self.categories,
        ).woe_of(values)  # fmt: skip


def _woe(events: np.ndarray, nonevents: np.ndarray) -> np.ndarray:
    """``ln(share of goods / share of bads)``; 0 for a bin without both classes (optbinning's rule)."""
    ok = (events > 0) & (nonevents > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        woe = np.log((nonevents / nonevents.sum()) / (events / events.sum()))
    return np.where(ok, woe, 0.0)


def _binned(optb: Any, name: str) -> _Binned:
    table = optb.binning_table.build()
    n_bins = len(table) - 3  # the table ends with Special, Missing and Totals
    events = table["Event"].to_numpy(dtype=np.float64)[:-1]
    nonevents = table["Non-event"].to_numpy(dtype=np.float64)[:-1]
    woe = _woe(events, nonevents)
    iv = float(table["IV"].to_numpy(dtype=np.float64)[:-1].sum())
    if optb.dtype == "numerical":
        splits, cats, kind = [float(s) for s in optb.splits], [], "numeric"
    else:
        splits, kind = [], "categorical"
        cats = [[str(c) for c in group] for group in optb.splits]
    return _Binned(name, kind, splits, cats, [float(w) for w in woe[:n_bins]], float(woe[-1]), iv)


def _fit_lr(x: np.ndarray, y: np.ndarray, seed: int):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000, random_state=seed).fit(x, y)


def _assemble(target, bad, id_column, scaling, lr, binning, kept) -> ScorecardModel:
    intercept = float(lr.intercept_[0])
    share = (scaling.offset - scaling.factor * intercept) / len(kept)
    features = []
    for coef, name in zip(lr.coef_[0], kept, strict=True):
        b = binning[name]
        pts = [share - scaling.factor * float(coef) * w for w in b.woe]
        features.append(
            FeatureBins(
                name,
                b.kind,
                b.woe,
                b.woe_missing,
                float(coef),
                pts,
                share - scaling.factor * float(coef) * b.woe_missing,
                b.iv,
                b.splits,
                b.categories,
            )  # fmt: skip
        )
    return ScorecardModel(target, bad, id_column, scaling, intercept, tuple(features))


def _with_training(
    model, labelled, frame, y, train_idx, test_idx, holdout, seed, min_iv, dropped, trained_at
):
    from importlib.metadata import version

    info = {
        "rows": int(len(frame)),
        "rows_without_target": int(len(frame) - len(labelled)),
        "train_rows": int(train_idx.size),
        "holdout_rows": int(test_idx.size),
        "bad_rate": float(y.mean()),
        "holdout_fraction": holdout,
        "seed": seed,
        "min_iv": min_iv,
        "dropped": dropped,
        "libraries": {p: version(p) for p in ("optbinning", "scikit-learn", "numpy")},
        "trained_at": trained_at.isoformat() if trained_at else None,
    }
    return ScorecardModel(
        model.target,
        model.bad,
        model.id_column,
        model.scaling,
        model.intercept,
        model.features,
        info,
    )


def score_table(model: ScorecardModel, frame: pd.DataFrame) -> pd.DataFrame:
    """One row per input row, in order: the id column (if the model has one), score, probability."""
    import pandas as pd

    columns = {c: frame[c].to_numpy(dtype=object) for c in frame.columns}
    score, prob = model.score(columns)
    out = {}
    if model.id_column is not None:
        if model.id_column not in frame.columns:
            raise UsageError(f"no id column {model.id_column!r} in the table", field="id")
        out[model.id_column] = frame[model.id_column].to_numpy()
    out["score"] = score
    out["probability_bad"] = prob
    return pd.DataFrame(out)


def train_file(file: Path, *, model_path: Path, target: str, bad: str, **options: Any) -> Trained:
    """Read a CSV/Parquet file, train a scorecard on it (see :func:`train`) and save the model."""
    trained = train(read_table(file), target=target, bad=bad, **options)
    try:
        trained.model.save(model_path)
    except OSError as exc:
        raise UsageError(
            f"cannot write model {model_path}: {exc.strerror}", field="model"
        ) from None
    return trained


def score_file(model_path: Path, file: Path, output: Path) -> int:
    """Score every row of a CSV/Parquet file into ``output`` (CSV, or Parquet by extension).

    Returns:
        The number of rows written (one per input row, in input order).
    """
    model = ScorecardModel.load(model_path)
    scores = score_table(model, read_table(file))
    try:
        if Path(output).suffix.lower() in {".parquet", ".pq"}:
            scores.to_parquet(output, index=False)
        else:
            scores.to_csv(output, index=False)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror}", field="output") from None
    return len(scores)
