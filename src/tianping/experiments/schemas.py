"""The experiment definition as people write it (YAML/JSON), validated with Pydantic."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tianping import yamldoc
from tianping.errors import InvalidInput
from tianping.experiments.assignment import BUCKETS, ExperimentConfig, Variant
from tianping.experiments.rule import (
    DecisionRule,
    GuardrailRule,
    HealthRule,
    SuccessMetric,
)
from tianping.experiments.unit_metrics import DEFAULT_GUARDRAILS, METRICS, get_metric


class VariantSpec(BaseModel):
    """One arm; ``weight`` is its share of the experiment's traffic (any positive scale)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    weight: float = Field(default=1.0, gt=0)


class GuardrailSpec(BaseModel):
    """A metric that must not get significantly worse; direction defaults to the registry's."""

    model_config = ConfigDict(extra="forbid")
    metric: str
    higher_is_better: bool | None = None

    @model_validator(mode="after")
    def _direction(self) -> GuardrailSpec:
        if self.higher_is_better is None:
            self.higher_is_better = get_metric(self.metric).higher_is_better
        return self


#: Consumer-first defaults of the decision rule (docs/experiments.md, "Decision rules"): each
#: default guardrail's margin — NPS at most 2 points lower, the refund rate at most 5 %
#: higher, the review score 1 % lower, the door-delivery rate 2 % lower — shown at 95 %
#: one-sided confidence; any other guardrail 2 % worse; the success metric is sized for a
#: +2 % improvement unless ``mde`` says otherwise.
DEFAULT_MARGIN = 0.02
DEFAULT_MARGINS = {"nps": (2.0, "absolute"), "refund_rate": (0.05, "relative"),
                   "review_score": (0.01, "relative"),
                   "door_delivery_rate": (0.02, "relative")}  # fmt: skip
DEFAULT_MIN_EFFECT = 0.02
#: Unit attributes the sample ratio may be checked by (fixed before the first exposure).
SRM_DIMENSIONS = ("buyer_type", "channel")


class SuccessSpec(BaseModel):
    """A success metric of the rule; ``min_effect`` is relative (0.02 = +2 %)."""

    model_config = ConfigDict(extra="forbid")
    metric: str
    min_effect: float | None = Field(default=None, gt=0, lt=10)
    higher_is_better: bool | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return get_metric(value).name


class MarginSpec(BaseModel):
    """A guardrail of the rule: how much worse it may be (``scale``: relative or absolute,
    absolute in the units the report shows, NPS in points)."""

    model_config = ConfigDict(extra="forbid")
    metric: str
    margin: float | None = Field(default=None, gt=0)
    scale: Literal["relative", "absolute"] | None = None
    higher_is_better: bool | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return get_metric(value).name

    @model_validator(mode="after")
    def _defaults(self) -> MarginSpec:
        margin, scale = DEFAULT_MARGINS.get(self.metric, (DEFAULT_MARGIN, "relative"))
        if self.margin is None:
            self.margin = margin if self.scale in (None, scale) else DEFAULT_MARGIN
        self.scale = self.scale or scale
        return self


class HealthSpec(BaseModel):
    """The health gates' thresholds (docs/experiments.md)."""

    model_config = ConfigDict(extra="forbid")
    srm_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    dimensions: list[Literal["buyer_type", "channel"]] = Field(default_factory=list)
    max_multiple_exposed: float = Field(default=0.01, ge=0, le=1)
    imbalance_alpha: float = Field(default=0.001, gt=0, lt=0.5)
    novelty_alpha: float = Field(default=0.01, gt=0, lt=0.5)
    min_units: int | None = Field(default=None, gt=0)


class RuleAlphaSpec(BaseModel):
    """The alpha spent on each part of the rule (each one-sided)."""

    model_config = ConfigDict(extra="forbid")
    success: float | None = Field(default=None, gt=0, lt=0.5)
    guardrails: float | None = Field(default=None, gt=0, lt=0.5)


class RuleSpec(BaseModel):
    """The decision rule as written in the definition; what it leaves out takes the
    experiment's fields and the consumer-first defaults."""

    model_config = ConfigDict(extra="forbid")
    success: list[SuccessSpec] | None = Field(default=None, min_length=1)
    guardrails: list[MarginSpec] | None = None
    health: HealthSpec = Field(default_factory=HealthSpec)
    alpha: RuleAlphaSpec = Field(default_factory=RuleAlphaSpec)
    power: float | None = Field(default=None, gt=0, lt=1)

    @field_validator("success", mode="before")
    @classmethod
    def _success_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"metric": g} if isinstance(g, str) else g for g in value]
        return value

    @field_validator("guardrails", mode="before")
    @classmethod
    def _guardrail_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"metric": g} if isinstance(g, str) else g for g in value]
        return value


def rule_spec_of(rule: DecisionRule) -> dict[str, Any]:
    """The explicit YAML form of a resolved rule (what ``export`` writes)."""
    return {
        "success": [
            {"metric": s.metric, "min_effect": s.min_effect, "higher_is_better": s.higher_is_better}
            for s in rule.success
        ],
        "guardrails": [
            {
                "metric": g.metric,
                "margin": g.margin,
                "scale": g.scale,
                "higher_is_better": g.higher_is_better,
            }
            for g in rule.guardrails
        ],  # fmt: skip
        "health": {**rule.to_dict()["health"]},
        "alpha": {"success": rule.alpha_success, "guardrails": rule.alpha_guardrails},
        "power": rule.power,
    }


class ExperimentSpec(BaseModel):
    """An experiment definition (see ``docs/experiments.md`` for every field)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    hypothesis: str = ""
    unit: Literal["buyer"] = "buyer"
    salt: str | None = None
    layer: str | None = None
    layer_buckets: tuple[int, int] = (0, BUCKETS)
    variants: list[VariantSpec] = Field(min_length=2)
    traffic: float = Field(default=1.0, ge=0, le=1)
    forced: dict[str, str] = Field(default_factory=dict)
    status: Literal["draft", "running", "stopped"] = "draft"
    primary_metric: str
    secondary_metrics: list[str] = Field(default_factory=list)
    guardrails: list[GuardrailSpec] = Field(
        default_factory=lambda: [GuardrailSpec(metric=m) for m in DEFAULT_GUARDRAILS]
    )
    mde: float | None = Field(default=None, gt=0)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    method: Literal["frequentist", "sequential", "bayesian"] = "frequentist"
    correction: Literal["holm", "bh", "by"] = "holm"
    alpha_split: dict[Literal["primary", "secondary", "guardrails"], float] | None = None
    cuped: bool = True
    cupac: bool = False
    winsorize: float | None = Field(default=None, gt=0.5, lt=1)
    rule: RuleSpec | None = None
    start_date: date | None = None
    end_date: date | None = None

    @field_validator("variants", mode="before")
    @classmethod
    def _variant_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("guardrails", mode="before")
    @classmethod
    def _guardrail_names(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"metric": g} if isinstance(g, str) else g for g in value]
        return value

    @field_validator("alpha_split")
    @classmethod
    def _positive_shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not value:
            raise ValueError(
                "alpha_split needs at least one group (primary, secondary, guardrails)"
            )
        for group, weight in value.items():
            if not weight > 0 or weight == float("inf"):
                raise ValueError(f"the weight of {group} must be a positive number, got {weight}")
        return value

    @field_validator("primary_metric")
    @classmethod
    def _known_primary(cls, value: str) -> str:
        return get_metric(value).name

    @field_validator("secondary_metrics")
    @classmethod
    def _known_secondary(cls, value: list[str]) -> list[str]:
        return [get_metric(v).name for v in value]

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.cupac and not self.cuped:
            raise ValueError("cupac needs cuped: true (the prediction joins its covariates)")
        self.to_config()  # the assignment rules (unique variants, forced names, buckets)
        self._rule_consistent()
        return self

    def _rule_consistent(self) -> None:
        """The rule's guardrails are the experiment's; its success metrics are analysed."""
        if self.rule is None:
            return
        if self.rule.guardrails is not None:
            named = [GuardrailSpec(metric=g.metric, higher_is_better=g.higher_is_better)
                     for g in self.rule.guardrails]  # fmt: skip
            if "guardrails" in self.model_fields_set and [g.metric for g in named] != [
                g.metric for g in self.guardrails
            ]:
                raise ValueError(
                    "guardrails and rule.guardrails name different metrics; list them once, "
                    "under rule.guardrails"
                )
            self.guardrails = named
        analysed = {self.primary_metric, *self.secondary_metrics}
        for s in self.rule.success or ():
            if s.metric not in analysed:
                raise ValueError(
                    f"rule.success metric {s.metric} is neither the primary metric nor a "
                    "secondary one; add it to secondary_metrics"
                )

    def decision_rule(self) -> DecisionRule:
        """The rule this experiment decides by, with every default filled in."""
        r = self.rule or RuleSpec()
        success = r.success or [SuccessSpec(metric=self.primary_metric)]
        margins = {g.metric: g for g in r.guardrails or ()}
        for g in self.guardrails:
            margins.setdefault(g.metric, MarginSpec(metric=g.metric))
        return DecisionRule(
            success=tuple(
                SuccessMetric(
                    s.metric,
                    _direction(s.metric, s.higher_is_better),
                    s.min_effect or self.mde or DEFAULT_MIN_EFFECT,
                )
                for s in success
            ),
            guardrails=tuple(
                GuardrailRule(
                    g.metric,
                    bool(g.higher_is_better),
                    margins[g.metric].margin,
                    margins[g.metric].scale,
                )
                for g in self.guardrails
            ),
            health=HealthRule(
                srm_alpha=r.health.srm_alpha,
                dimensions=tuple(r.health.dimensions),
                max_multiple_exposed=r.health.max_multiple_exposed,
                imbalance_alpha=r.health.imbalance_alpha,
                novelty_alpha=r.health.novelty_alpha,
                min_units=r.health.min_units,
            ),
            alpha_success=r.alpha.success or self.alpha,
            alpha_guardrails=r.alpha.guardrails or self.alpha,
            power=r.power or self.power,
        )

    @property
    def metrics(self) -> tuple[str, ...]:
        """Primary, secondary and guardrail metrics, each once."""
        names = [self.primary_metric, *self.secondary_metrics, *(g.metric for g in self.guardrails)]
        return tuple(dict.fromkeys(names))

    def to_config(self) -> ExperimentConfig:
        """The assignment config SDKs use."""
        return ExperimentConfig(
            name=self.name,
            salt=self.salt or self.name,
            variants=tuple(Variant(v.name, v.weight) for v in self.variants),
            traffic=self.traffic,
            layer=self.layer,
            layer_buckets=tuple(self.layer_buckets),
            forced=tuple(sorted(self.forced.items())),
        )


def _direction(metric: str, given: bool | None) -> bool:
    return get_metric(metric).higher_is_better if given is None else given


def parse_spec(data: Any, *, source: str = "experiment", text: str | None = None) -> ExperimentSpec:
    """Validate a definition; errors name the field.

    ``text``, the YAML the data was read from, lets errors name the line.

    Raises:
        InvalidInput: a field is missing, unknown (named with the key probably meant) or
            invalid.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping of fields", field=source)
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise yamldoc.validation_error(
            exc.errors(), model=ExperimentSpec, source=source, text=text
        ) from None


def known_metrics() -> tuple[str, ...]:
    """The metric names an experiment may declare (docs/metrics.md)."""
    return tuple(METRICS)
