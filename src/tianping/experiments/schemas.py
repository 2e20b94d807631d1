"""The experiment definition as people write it (YAML/JSON), validated with Pydantic."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tianping import yamldoc
from tianping.errors import InvalidInput
from tianping.experiments.assignment import BUCKETS, ExperimentConfig, Variant
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
        return self

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
