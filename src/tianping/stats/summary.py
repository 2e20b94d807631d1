"""The summary-statistics interface: a JSON document of per-arm sums in, results out.

Teams that aggregate in their own warehouse send::

    {"metric_type": "mean" | "proportion" | "ratio",
     "method": "frequentist" | "sequential" | "bayesian",      (default frequentist)
     "alpha": 0.05, "alternative": "two-sided" | "greater" | "less",
     "cuped": false,
     "planned_weights": [0.5, 0.5],                             (optional, for SRM)
     "arms": [{"name": "control", "n": ..., "sum": ..., "sum_sq": ...,
               "den_sum": ..., "den_sum_sq": ..., "num_den_sum": ...,
               "pre_sum": ..., "pre_sum_sq": ..., "pre_cross_sum": ...}, ...]}

The first arm is the control; for proportions ``sum_sq`` may be omitted. Optional
extensions: ``correction`` (``holm`` default, ``bh``, ``by``, ``bonferroni``, ``none``) and
``tuning_n`` (sequential); per arm ``pre_den_cross_sum`` (sum of ``d*x``, needed for
CUPED on a ratio metric). Regression adjustment: ``"covariates": "regression"`` (or
``"ratio"``) and per arm ``"covariates": {"names": [...], "sum": [...], "cross": [[...]],
"y_cross": [...], "den_cross": [...]}`` (``den_cross`` for ratio metrics). Quantile metrics:
``"metric_type": "quantile"``, ``"quantile": 0.9`` and per arm ``n``, ``quantile``,
``quantile_lower``, ``quantile_upper`` (plus ``units``, ``below_sum``, ``below_sum_sq``,
``events_sum_sq``, ``below_events_sum`` for events clustered in units). Post-stratification:
``"strata": {"new": [arms...], "returning": [arms...]}`` in place of ``arms`` (the same arms,
control first, in every stratum). ``null`` counts as
omitted. Any other field is an error. The output shape is documented in docs/experiments.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tianping.errors import InvalidInput
from tianping.stats.analysis import AnalysisConfig, analyze
from tianping.stats.quantile import QuantileArm
from tianping.stats.stratified import analyze_stratified
from tianping.stats.sufficient import ArmStats, CovariateSums, arm_field_names

TOP_FIELDS = (
    "metric_type",
    "method",
    "alpha",
    "alternative",
    "cuped",
    "planned_weights",
    "arms",
    "correction",
    "tuning_n",
    "covariates",
    "quantile",
    "strata",
)
_CONFIG_FIELDS = (
    "metric_type",
    "method",
    "alpha",
    "alternative",
    "cuped",
    "correction",
    "tuning_n",
    "covariates",
)
_QUANTILE_ARM_FIELDS = (
    "name",
    "n",
    "quantile",
    "quantile_lower",
    "quantile_upper",
    "units",
    "below_sum",
    "below_sum_sq",
    "events_sum_sq",
    "below_events_sum",
)
_COVARIATE_FIELDS = ("names", "sum", "cross", "y_cross", "den_cross")


def analyze_summary(document: Mapping[str, Any]) -> dict[str, Any]:
    """Analyse a summary-statistics document (the parsed JSON) and return the results.

    Args:
        document: the input described in this module's docstring.

    Returns:
        ``{"metric_type", "method", "alpha", "alternative", "cuped", "correction",
        ["srm_pvalue", "srm_flagged",] "arms": [...], "comparisons": [...]}``; each
        comparison has ``control``, ``treatment``, ``effect_size``,
        ``effect_size_ci_lower/upper``, ``rel_effect_size``, ``rel_effect_size_ci_lower/upper``,
        ``pvalue``, ``pvalue_adjusted`` and, for Bayesian, ``chance_to_win``, ``risk``.

    Raises:
        InvalidInput: a missing, unknown or ill-typed field, or inconsistent sums.

    >>> out = analyze_summary({"metric_type": "proportion", "arms": [
    ...     {"name": "control", "n": 1000, "sum": 100}, {"name": "b", "n": 1000, "sum": 130}]})
    >>> out["comparisons"][0]["treatment"], round(out["comparisons"][0]["pvalue"], 4)
    ('b', 0.0354)
    """
    if not isinstance(document, Mapping):
        raise InvalidInput("the summary must be a JSON object", field="document")
    _reject_unknown(document, TOP_FIELDS, "the summary")
    config = AnalysisConfig(**_config_fields(document))
    level = _level(document, config.metric_type)
    weights = _weights(document.get("planned_weights"))
    if document.get("strata") is not None:
        if document.get("arms") is not None:
            raise InvalidInput("give either arms or strata, not both", field="strata")
        strata = _strata(document["strata"])
        return analyze_stratified(strata, planned_weights=weights, config=config).to_dict()
    arms = _arms(document.get("arms"), level)
    return analyze(arms, planned_weights=weights, config=config).to_dict()


def _strata(raw: Any) -> dict[str, list]:
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidInput(
            "strata must be an object: stratum value -> list of arms", field="strata"
        )
    out = {}
    for value, arms in raw.items():
        try:
            out[str(value)] = _arms(arms)
        except InvalidInput as exc:
            raise InvalidInput(f"strata[{value!r}]: {exc.message}", field=exc.field) from None
    return out


def _config_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    if document.get("metric_type") is None:
        raise InvalidInput(
            "metric_type is required (mean, proportion or ratio)", field="metric_type"
        )
    fields = {k: document[k] for k in _CONFIG_FIELDS if document.get(k) is not None}
    for key in ("metric_type", "method", "alternative", "correction", "covariates"):
        if key in fields and not isinstance(fields[key], str):
            raise InvalidInput(f"{key} must be a string, got {fields[key]!r}", field=key)
    if "tuning_n" in fields and not _is_number(fields["tuning_n"]):
        raise InvalidInput(
            f"tuning_n must be a number, got {fields['tuning_n']!r}", field="tuning_n"
        )
    return fields


def _level(document: Mapping[str, Any], metric_type: str) -> float | None:
    level = document.get("quantile")
    if metric_type != "quantile":
        if level is not None:
            raise InvalidInput("quantile is only for metric_type quantile", field="quantile")
        return None
    if not _is_number(level) or not 0 < level < 1:
        raise InvalidInput(
            f"quantile (the level, e.g. 0.9 for p90) must be a number in (0, 1), got {level!r}",
            field="quantile",
        )
    return float(level)


def _arms(raw: Any, level: float | None = None) -> list:
    if not isinstance(raw, list):
        raise InvalidInput("arms must be a list of objects, control first", field="arms")
    if len(raw) < 2:
        raise InvalidInput(
            f"need at least 2 arms (a control and a treatment), got {len(raw)}", field="arms"
        )
    return [_arm(i, item, len(raw), level) for i, item in enumerate(raw)]


def _arm(i: int, item: Any, count: int, level: float | None = None):
    if not isinstance(item, Mapping):
        raise InvalidInput(f"arms[{i}] must be an object", field="arms")
    label = f"arms[{i}]" + (f" ({item['name']!r})" if isinstance(item.get("name"), str) else "")
    allowed = _QUANTILE_ARM_FIELDS if level is not None else arm_field_names()
    _reject_unknown(item, allowed, label)
    values = {k: v for k, v in item.items() if v is not None}
    values.setdefault("name", _default_name(i, count))
    required = ("n", "quantile", "quantile_lower", "quantile_upper") if level else ("n", "sum")
    for key in required:
        if key not in values:
            raise InvalidInput(f"{label}: field {key!r} is required", field=key)
    covariates = values.pop("covariates", None)
    for key, value in values.items():
        if key != "name" and not _is_number(value):
            raise InvalidInput(f"{label}: {key} must be a number, got {value!r}", field=key)
    if level is not None:
        return QuantileArm(level=level, **values)
    if covariates is not None:
        values["covariates"] = _covariates(covariates, label)
    try:
        return ArmStats(**values)
    except InvalidInput as exc:
        raise InvalidInput(f"{label}: {exc.message}", field=exc.field) from None


def _covariates(raw: Any, label: str) -> CovariateSums:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{label}: covariates must be an object", field="covariates")
    _reject_unknown(raw, _COVARIATE_FIELDS, f"{label} covariates")
    for key in ("names", "sum", "cross", "y_cross"):
        if raw.get(key) is None:
            raise InvalidInput(f"{label}: covariates: field {key!r} is required", field=key)
    if not isinstance(raw["names"], list) or not all(isinstance(n, str) for n in raw["names"]):
        raise InvalidInput(f"{label}: covariates.names must be a list of strings", field="names")
    try:
        return CovariateSums(**{k: v for k, v in raw.items() if v is not None})
    except InvalidInput as exc:
        raise InvalidInput(f"{label}: {exc.message}", field=exc.field) from None


def _weights(raw: Any) -> list[float] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(_is_number(w) for w in raw):
        raise InvalidInput("planned_weights must be a list of numbers", field="planned_weights")
    return [float(w) for w in raw]


def _reject_unknown(obj: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise InvalidInput(
            f"{where}: unknown field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)}; allowed: {', '.join(allowed)}",
            field=str(unknown[0]),
        )


def _default_name(i: int, count: int) -> str:
    if i == 0:
        return "control"
    return "treatment" if count == 2 else f"treatment_{i}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
