"""The race definition as people write it (YAML/JSON), validated with Pydantic."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tianping.errors import InvalidInput
from tianping.experiments.assignment import BUCKETS
from tianping.experiments.unit_metrics import DEFAULT_GUARDRAILS, get_metric
from tianping.money import exponent_of
from tianping.races.race import RaceRules


class BudgetSpec(BaseModel):
    """Budget mode: each period's money split by chance of the best return on spend."""

    model_config = ConfigDict(extra="forbid")
    period_minor: int = Field(gt=0, description="budget per step, in minor units")
    currency: str = "CNY"
    floor_minor: int = Field(default=0, ge=0)
    cap_minor: int | None = Field(default=None, gt=0)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        exponent_of(value)
        return value


class RaceSpec(BaseModel):
    """A race definition (see ``docs/races.md`` for every field)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=180, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    hypothesis: str = ""
    goal_metric: str
    strategies: list[str] = Field(min_length=2, max_length=20)
    control: str | None = None
    control_share: float = Field(default=0.0, ge=0, lt=1)
    min_share: float = Field(default=0.02, ge=0, le=1)
    max_share: float = Field(default=1.0, gt=0, le=1)
    guardrails: list[str] = Field(default_factory=lambda: list(DEFAULT_GUARDRAILS))
    best_threshold: float = Field(default=0.95, gt=0, lt=1)
    eliminate_below: float = Field(default=0.01, gt=0, lt=1)
    min_units: int = Field(default=100, ge=0)
    allocation: Literal["thompson", "top_two"] = "thompson"
    top_two_beta: float = Field(default=0.5, gt=0, lt=1)
    draws: int = Field(default=10_000, ge=100, le=1_000_000)
    seed: int = Field(default=0, ge=0, lt=2**31)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    confirm_against: Literal["control", "runner_up"] | None = None
    confirm_method: Literal["frequentist", "sequential"] = "frequentist"
    confirm_units: int = Field(default=1000, ge=2)
    budget: BudgetSpec | None = None
    layer: str | None = None
    layer_buckets: tuple[int, int] = (0, BUCKETS)
    traffic: float = Field(default=1.0, ge=0, le=1)
    start_date: date

    @field_validator("goal_metric")
    @classmethod
    def _known_goal(cls, value: str) -> str:
        return get_metric(value).name

    @field_validator("guardrails")
    @classmethod
    def _known_guardrails(cls, value: list[str]) -> list[str]:
        return [get_metric(v).name for v in value]

    @model_validator(mode="after")
    def _consistent(self) -> RaceSpec:
        if self.confirm_against is None:
            self.confirm_against = "control" if self.control else "runner_up"
        self.rules()  # the race rules' own checks (shares, thresholds, control)
        return self

    def rules(self) -> RaceRules:
        """The pure core's view of the race."""
        metric = get_metric(self.goal_metric)
        return RaceRules(
            arms=tuple(self.strategies),
            metric_type=metric.type,
            higher_is_better=metric.higher_is_better,
            control=self.control,
            control_share=self.control_share,
            min_share=self.min_share,
            max_share=self.max_share,
            best_threshold=self.best_threshold,
            eliminate_below=self.eliminate_below,
            min_units=self.min_units,
            allocation=self.allocation,
            top_two_beta=self.top_two_beta,
            draws=self.draws,
            alpha=self.alpha,
            confirm_against=self.confirm_against or "runner_up",
        )


def parse_spec(data: Any, *, source: str = "race") -> RaceSpec:
    """Validate a definition; errors name the field.

    Raises:
        InvalidInput: a field is missing, unknown or invalid.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping of fields", field=source)
    try:
        return RaceSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or source
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{source}: {where}: {message}", field=where) from None
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc.message}", field=exc.field) from None
