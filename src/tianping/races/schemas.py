"""The race definition as people write it (YAML/JSON), validated with Pydantic."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tianping import yamldoc
from tianping.aftersales import policy_metrics
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
    kind: Literal["experiment", "refund_policy"] = "experiment"
    hypothesis: str = ""
    goal_metric: str = ""
    strategies: list[str] = Field(min_length=2, max_length=20)
    policies: dict[str, str] = Field(default_factory=dict)
    policy_versions: dict[str, str] = Field(default_factory=dict)
    handling_cost_minor: int = Field(default=policy_metrics.DEFAULT_HANDLING_COST_MINOR, ge=0)
    control: str | None = None
    control_share: float = Field(default=0.0, ge=0, lt=1)
    min_share: float = Field(default=0.02, ge=0, le=1)
    max_share: float = Field(default=1.0, gt=0, le=1)
    guardrails: list[str] | None = None
    guardrail_margins: dict[str, float] = Field(default_factory=dict)
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

    @model_validator(mode="after")
    def _consistent(self) -> RaceSpec:
        if self.kind == "refund_policy":
            self._policy_fields()
        else:
            self._experiment_fields()
        if self.confirm_against is None:
            self.confirm_against = "control" if self.control else "runner_up"
        self.rules()  # the race rules' own checks (shares, thresholds, control)
        for metric, margin in self.guardrail_margins.items():
            if metric not in self.guardrails:
                raise InvalidInput(
                    f"guardrail_margins: {metric} is not one of the guardrails", field=metric
                )
            if not margin > 0:
                raise InvalidInput(
                    f"guardrail_margins: the margin of {metric} must be positive", field=metric
                )
        return self

    def margins(self) -> dict[str, tuple[float, str]]:
        """Each guardrail's non-inferiority margin and scale in the confirmation: the
        experiments' decision-rule defaults (docs/experiments.md), or ``guardrail_margins``
        on the same scale."""
        from tianping.experiments.schemas import DEFAULT_MARGIN, DEFAULT_MARGINS

        out = {}
        for m in self.guardrails:
            if m == self.goal_metric:
                continue
            margin, scale = DEFAULT_MARGINS.get(m, (DEFAULT_MARGIN, "relative"))
            out[m] = (self.guardrail_margins.get(m, margin), scale)
        return out

    def _experiment_fields(self) -> None:
        if not self.goal_metric:
            raise InvalidInput("goal_metric: a race needs a goal metric", field="goal_metric")
        self.goal_metric = _named(get_metric, self.goal_metric, "goal_metric").name
        names = DEFAULT_GUARDRAILS if self.guardrails is None else self.guardrails
        self.guardrails = [_named(get_metric, v, "guardrails").name for v in names]
        for name in ("policies", "policy_versions"):
            if getattr(self, name):
                raise InvalidInput(
                    f"{name}: only a race of kind refund_policy races policies", field=name
                )

    def _policy_fields(self) -> None:
        self.goal_metric = self.goal_metric or policy_metrics.DEFAULT_GOAL
        _named(policy_metrics.get_policy_metric, self.goal_metric, "goal_metric")
        names = policy_metrics.DEFAULT_GUARDRAILS if self.guardrails is None else self.guardrails
        self.guardrails = [
            _named(policy_metrics.get_policy_metric, v, "guardrails").name for v in names
        ]
        for name in ("policies", "policy_versions"):
            unknown = sorted(set(getattr(self, name)) - set(self.strategies))
            if unknown:
                raise InvalidInput(
                    f"{name}: {', '.join(unknown)} is not one of the strategies", field=name
                )
        if self.budget is not None:
            raise InvalidInput("budget: a policy race has no budget mode", field="budget")

    def metric(self, name: str) -> tuple[str, bool]:
        """A goal or guardrail metric's type and direction, from the registry of the kind."""
        if self.kind == "refund_policy":
            m = policy_metrics.get_policy_metric(name)
            return m.type, m.higher_is_better
        d = get_metric(name)
        return d.type, d.higher_is_better

    def policy_ref(self, arm: str) -> str:
        """The policy file or built-in name that decides for ``arm`` (default: its name)."""
        return self.policies.get(arm, arm)

    def rules(self) -> RaceRules:
        """The pure core's view of the race."""
        metric_type, higher_is_better = self.metric(self.goal_metric)
        return RaceRules(
            arms=tuple(self.strategies),
            metric_type=metric_type,
            higher_is_better=higher_is_better,
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


def _named(lookup, name: str, field: str):
    """``lookup(name)``, its error naming the spec's field."""
    try:
        return lookup(name)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}: {exc.message}", field=field) from None


def parse_spec(data: Any, *, source: str = "race", text: str | None = None) -> RaceSpec:
    """Validate a definition; errors name the field.

    ``text``, the YAML the data was read from, lets errors name the line.

    Raises:
        InvalidInput: a field is missing, unknown (named with the key probably meant) or
            invalid.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: expected a mapping of fields", field=source)
    try:
        return RaceSpec.model_validate(data)
    except ValidationError as exc:
        raise yamldoc.validation_error(
            exc.errors(), model=RaceSpec, source=source, text=text
        ) from None
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc.message}", field=exc.field) from None
